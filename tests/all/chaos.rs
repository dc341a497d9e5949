//! The chaos soak: jobs run on a head and two workers while workers are
//! SIGKILLed and restarted at random, and the head once; every job must end
//! with exactly the output of a fault-free run.
//!
//! `WRAY_SOAK_SECS` (default 30: the CI tier) is how long new jobs keep
//! being started and nodes killed; `WRAY_SOAK_SEED` replays the timing and
//! choice of the kills. The test prints its figures (docs/RELIABILITY.md
//! quotes a long run's).

use crate::cluster::{Head, kill_and_wait, log_count};
use crate::util::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `wray run` clients starting jobs one after another, side by side.
const CLIENTS: usize = 2;
/// Distinct jobs (the soak scenario's seed argument), each checked against
/// its own fault-free run.
const JOB_SEEDS: u64 = 2;
/// How often `wray run` may run a lost job again. Each kill loses at most
/// the jobs on the dead node, so a job needs one retry per kill it meets.
const JOB_RETRIES: &str = "8";

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// What one client saw.
#[derive(Default)]
struct ClientReport {
    jobs: u32,
    /// Lost attempts that `wray run` ran again.
    retries: u32,
    /// Jobs whose start found the head down (not jobs: they never began).
    unreachable: u32,
    /// Anything but the exact reference output, described.
    wrong: Vec<String>,
}

/// The `soak ok: …` lines of a job's output.
fn soak_lines(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("soak ok: ")).collect()
}

/// Starts jobs one after another until `deadline`, checking each.
fn client(head: (&str, &str, &std::path::Path), first: u64, deadline: Instant, reference: &[String]) -> ClientReport {
    let (address, token, home) = head;
    let mut report = ClientReport::default();
    let mut next = first;
    while Instant::now() < deadline {
        let seed = 1 + next % JOB_SEEDS;
        next += 1;
        let child = Command::new(wray_bin())
            .args(["run", "--address", address, "--token", token, "--max-retries", JOB_RETRIES])
            .arg(path(&guests().testjob))
            .args(["--", "soak", &seed.to_string(), "100", "spot"])
            .env("HOME", home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let (text, err) = (stdout(&out), stderr(&out));
        if out.status.code() == Some(2) && text.is_empty() && err.contains("is the address right") {
            // The head was down when this job was to start.
            report.unreachable += 1;
            continue;
        }
        report.jobs += 1;
        report.retries += err.matches("running it again").count() as u32;
        let lines = soak_lines(&text);
        let want = &reference[(seed - 1) as usize];
        if out.status.code() != Some(0) || lines.is_empty() || lines.iter().any(|l| l != want) {
            report
                .wrong
                .push(format!("job seed {seed}: exit {:?}\nstdout:\n{text}\nstderr:\n{err}", out.status.code()));
        }
    }
    report
}

/// How many lines of the nodes' logs (head and every worker ever started)
/// contain `needle`.
fn count_in_logs(head: &Head, needle: &str) -> usize {
    let mut logs = vec![head.data.join("node.log")];
    for entry in std::fs::read_dir(head.home.path()).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("worker-") {
            logs.push(entry.path().join("node.log"));
        }
    }
    logs.iter().map(|log| log_count(log, needle)).sum()
}

#[test]
fn chaos_soak_every_job_finishes_exactly_while_nodes_die() {
    let secs = env_number("WRAY_SOAK_SECS").unwrap_or(30);
    let seed = env_number("WRAY_SOAK_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    let mut rng = Rng::new(seed);
    let mut head = Head::start_with_cpus("1");
    // Workers offer `spot`, which each job's actor asks for: actors live on
    // the nodes that die.
    let worker = |head: &Head| head.add_worker_with("2", &["--resources", r#"{"spot": 2}"#]);
    let mut workers: Vec<u32> = (0..2).map(|_| worker(&head)).collect();
    let reference: Vec<String> = (1..=JOB_SEEDS)
        .map(|s| {
            let out = head.run(&guests().testjob, &["soak", &s.to_string(), "100", "spot"]);
            assert_code(&out, 0);
            soak_lines(&stdout(&out)).first().expect("a soak line").to_string()
        })
        .collect();

    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    // The head dies once, somewhere in the middle third.
    let head_kill = start + Duration::from_secs(secs) * (33 + rng.below(34) as u32) / 100;
    let (mut worker_kills, mut head_kills) = (0u32, 0u32);
    let (address, token, home) = (head.address.clone(), head.token.clone(), head.home.path().to_path_buf());
    let reports: Vec<ClientReport> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS as u64)
            .map(|c| {
                let (address, token, home, reference) = (&address, &token, &home, &reference);
                scope.spawn(move || client((address, token, home), c, deadline, reference))
            })
            .collect();
        // The fault schedule: the pauses between kills are the soak's
        // randomness (seeded), not a wait for anything.
        loop {
            std::thread::sleep(Duration::from_millis(2000 + rng.below(3000)));
            if Instant::now() >= deadline {
                break;
            }
            if head_kills == 0 && Instant::now() >= head_kill {
                head.crash_and_restart("1");
                head_kills += 1;
            } else {
                let pid = workers.swap_remove(rng.below(workers.len() as u64) as usize);
                kill_and_wait(pid);
                std::thread::sleep(Duration::from_millis(500 + rng.below(1000)));
                workers.push(worker(&head));
                worker_kills += 1;
            }
        }
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let wall = start.elapsed();

    let jobs: u32 = reports.iter().map(|r| r.jobs).sum();
    let retries: u32 = reports.iter().map(|r| r.retries).sum();
    let unreachable: u32 = reports.iter().map(|r| r.unreachable).sum();
    let tasks_rerun = count_in_logs(&head, "elsewhere (attempt");
    let actors_moved = count_in_logs(&head, "restarting actor");
    let restored = count_in_logs(&head, "continues from its snapshot");
    println!(
        "chaos soak (seed {seed}): {jobs} jobs with exact results in {:.0} s; kills survived: {worker_kills} workers, \
         {head_kills} head; jobs run again after a loss: {retries}; tasks re-run elsewhere (their results rebuilt): \
         {tasks_rerun}; actors restarted elsewhere: {actors_moved} (from a snapshot: {restored}); job starts that \
         found the head down: {unreachable}",
        wall.as_secs_f64()
    );
    let wrong: Vec<&String> = reports.iter().flat_map(|r| &r.wrong).collect();
    assert!(wrong.is_empty(), "{} of {jobs} jobs went wrong (seed {seed}):\n{}", wrong.len(), wrong[0]);
    assert!(jobs as u64 >= CLIENTS as u64, "too few jobs ran: {jobs}");
    assert!(worker_kills > 0 && head_kills == 1, "kills: {worker_kills} workers, {head_kills} head");
}
