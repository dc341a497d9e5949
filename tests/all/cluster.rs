//! A head node in its own process, jobs sent to it over QUIC with mutual TLS.

use crate::util::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A head started with `wray start --head` in the background, with its own
/// HOME (so `wray stop` sees only it). Stopped when dropped.
pub(crate) struct Head {
    pub(crate) home: tempfile::TempDir,
    pub(crate) data: std::path::PathBuf,
    pub(crate) address: String,
    pub(crate) token: String,
    /// Its node id (`node-`, its pid in hex, a random part).
    id: String,
    /// Its HTTP proxy (`--serve-port`), HOST:PORT.
    pub(crate) serve: Option<String>,
    /// Its dashboard, HOST:PORT (on a free port unless the flags say).
    pub(crate) dashboard: Option<String>,
}

/// The nodes the tests started, by pid: their ids, as `wray start` printed
/// them.
static NODE_IDS: std::sync::Mutex<Vec<(u32, String)>> = std::sync::Mutex::new(Vec::new());

/// The pid a background `wray start` reports on stderr; the node id it
/// printed (`node: …`) is remembered for [`node_id`].
fn started_pid(out: &Output) -> u32 {
    let err = stderr(out);
    let pid = err
        .split("(pid ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    let text = stdout(out);
    let id = text.lines().find_map(|l| l.strip_prefix("node: ")).unwrap_or_else(|| panic!("no node id in:\n{text}"));
    assert_eq!(pid_of(id), pid, "a node id carries its pid");
    NODE_IDS.lock().unwrap().push((pid, id.to_string()));
    pid
}

/// The id of the node the tests started as process `pid`.
pub(crate) fn node_id(pid: u32) -> String {
    let ids = NODE_IDS.lock().unwrap();
    ids.iter().rev().find(|(p, _)| *p == pid).map(|(_, id)| id.clone()).unwrap_or_else(|| panic!("no node {pid}"))
}

/// The pid a node id carries (`node-PID-RANDOM`, the pid in hex).
pub(crate) fn pid_of(id: &str) -> u32 {
    id.strip_prefix("node-")
        .and_then(|rest| rest.split('-').next())
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .unwrap_or_else(|| panic!("not a node id: {id}"))
}

fn wray_in(home: &Path, args: &[&str]) -> Output {
    wray_in_env(home, args, &[])
}

/// `wray_in` with extra environment variables (inherited by the nodes it
/// starts).
fn wray_in_env(home: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let child = Command::new(wray_bin())
        .args(args)
        .env_remove("WRAY_ALLOW_SOFTWARE_GPU")
        .envs(envs.iter().copied())
        .env("HOME", home)
        .env("XDG_CACHE_HOME", target_dir().join("test-cache"))
        // Every node of every test shares the compile cache of the tests'
        // local runs: the test job is 20 MB of Wasm, and compiling it in each
        // node's fresh data directory took longer than tests wait for a job.
        .env("WRAY_CACHE_DIR", target_dir().join("test-cache").join("wray"))
        .env_remove("WRAY_ADDRESS")
        .env_remove("WRAY_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_exit(child, &format!("wray {args:?}"), Duration::from_secs(120))
}

impl Head {
    fn start() -> Head {
        Head::start_with_cpus("2")
    }

    pub(crate) fn start_with_cpus(cpus: &str) -> Head {
        Head::start_with_flags(cpus, &[])
    }

    pub(crate) fn start_with_flags(cpus: &str, flags: &[&str]) -> Head {
        let home = tempfile::tempdir().unwrap();
        let data = home.path().join("head");
        let mut args = vec!["start", "--head", "--port", "0", "--cpus", cpus, "--data-dir", data.to_str().unwrap()];
        // Tests run many heads at once: each dashboard on a port of its own.
        if !flags.iter().any(|f| f.starts_with("--dashboard-port") || *f == "--no-dashboard") {
            args.extend(["--dashboard-port", "0"]);
        }
        args.extend_from_slice(flags);
        let out = wray_in(home.path(), &args);
        assert_code(&out, 0);
        let text = stdout(&out);
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("no `{name}` line in:\n{text}"))
                .trim()
                .to_string()
        };
        let (address, token) = (field("address: "), field("token: "));
        let url = |prefix: &str| text.lines().find_map(|l| l.strip_prefix(prefix)).map(|s| s.trim().to_string());
        let (serve, dashboard) = (url("serve: http://"), url("dashboard: http://"));
        Head { home, data, address, token, id: node_id(started_pid(&out)), serve, dashboard }
    }

    pub(crate) fn wray(&self, args: &[&str]) -> Output {
        wray_in(self.home.path(), args)
    }

    pub(crate) fn run(&self, job: &Path, args: &[&str]) -> Output {
        let mut all = vec!["run", "--address", &self.address, "--token", &self.token, path(job), "--"];
        all.extend_from_slice(args);
        self.wray(&all)
    }

    /// Starts `wray run testjob.wasm -- args` against this cluster without
    /// waiting, its output piped, for tests that act while it runs.
    fn spawn_testjob(&self, args: &[&str]) -> std::process::Child {
        Command::new(wray_bin())
            .args(["run", "--address", &self.address, "--token", &self.token, path(&guests().testjob), "--"])
            .args(args)
            .env("HOME", self.home.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn jobs_running(&self) -> u64 {
        let out = self.wray(&["status", "--address", &self.address, "--token", &self.token]);
        assert_code(&out, 0);
        let text = stdout(&out);
        text.lines()
            .find_map(|l| l.trim().strip_prefix("jobs running: "))
            .and_then(|n| n.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{text}"))
    }
}

impl Head {
    /// `wray serve deploy JOB -- ARGS` to this head's proxy.
    pub(crate) fn serve_deploy(&self, job: &Path, args: &[&str]) -> Output {
        let server = self.serve.clone().expect("the head was started with --serve-port");
        let mut all =
            vec!["serve", "deploy", "--address", &self.address, "--token", &self.token, "--server", &server, path(job)];
        if !args.is_empty() {
            all.push("--");
            all.extend_from_slice(args);
        }
        self.wray(&all)
    }

    /// SIGKILLs the head, waits until it is gone and starts it again on its
    /// port and data directory.
    pub(crate) fn crash_and_restart(&mut self, cpus: &str) {
        kill_and_wait(pid_of(&self.id));
        let port = self.address.rsplit(':').next().unwrap();
        let out = self.wray(&[
            "start",
            "--head",
            "--port",
            port,
            "--cpus",
            cpus,
            "--data-dir",
            path(&self.data),
            "--dashboard-port",
            "0",
        ]);
        assert_code(&out, 0);
        assert!(stdout(&out).contains(&format!("token: {}", self.token)), "{}", stdout(&out));
        self.id = node_id(started_pid(&out));
    }
}

/// SIGKILLs a node and waits until it is gone (or a zombie: it holds no
/// locks and no port any more).
pub(crate) fn kill_and_wait(pid: u32) {
    Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    let gone = || {
        !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
    };
    wait_until(Duration::from_secs(10), gone, || format!("the killed node {pid} lingers"));
}

impl Drop for Head {
    fn drop(&mut self) {
        let _ = self.wray(&["stop"]);
    }
}

/// As `ray status` on the head's machine: without `--address` the cluster
/// commands find the head `wray start --head` runs on this machine for this
/// user (its address and token from its data directory), `wray run
/// --address auto` sends a job there and `wray start --address auto` a
/// worker, and no head or two heads are errors that say so. A worker of
/// the same user is not taken for a head.
#[test]
fn commands_without_an_address_find_the_head_on_this_machine() {
    let nobody = tempfile::tempdir().unwrap();
    let out = wray_in(nobody.path(), &["status"]);
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("no head node started with `wray start --head` runs on this machine"),
        "{}",
        stderr(&out)
    );
    let out = wray_in(nobody.path(), &["run", "--address", "auto", path(&guests().testjob), "--", "basics"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("--address auto: no head node"), "{}", stderr(&out));
    let out = wray_in(nobody.path(), &["start", "--address", "127.0.0.1:1", "--dry-run"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("--address needs --token"), "{}", stderr(&out));

    let head = Head::start();
    // A worker joins it the same way, on the same machine.
    let worker = head.home.path().join("worker");
    let out = head.wray(&["start", "--address", "auto", "--cpus", "1", "--data-dir", path(&worker)]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert_eq!(text.lines().next(), Some(format!("joined: {}", head.address).as_str()), "{text}");
    // Its id, with the pid it runs as (`wray start` waits for it in the
    // background).
    let id = text.lines().find_map(|l| l.strip_prefix("node: ")).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(pid_of(id), started_pid(&out));
    let out = head.wray(&["status"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains(&format!("node {} (alive)", head.id)), "{}", stdout(&out));
    let out = head.wray(&["list", "nodes", "--json"]);
    assert_code(&out, 0);
    let nodes: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(nodes.as_array().map(Vec::len), Some(2), "{nodes}");
    let out = head.wray(&["run", "--address", "auto", path(&guests().testjob), "--", "basics"]);
    assert_code(&out, 0);
    assert!(stdout(&out).lines().any(|l| l == "cluster CPU: 3"), "{}", stdout(&out));
    // A plain wasi:cli command runs on the cluster too: its arguments, the
    // job's environment, its output and its failing exit come back.
    let out = head.wray(&[
        "run",
        "--address",
        "auto",
        "--env",
        "WC_REQUESTED_BY=cluster",
        path(&guests().wasi_command),
        "--",
        "/no-such-file",
    ]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("wc: /no-such-file: No such file or directory"), "{}", stderr(&out));
    assert!(stdout(&out).contains("requested by cluster"), "{}", stdout(&out));
    // And a preview-1 module, adapted where it runs.
    let out = head.wray(&["run", "--address", "auto", path(&wc_preview1()), "--", "/no-such-file"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("wc: /no-such-file: No such file or directory"), "{}", stderr(&out));
    let out = head.wray(&["job", "list"]);
    assert_code(&out, 0);
    // `ray summary tasks`: the job's tasks by function, their states counted.
    let out = head.wray(&["summary", "tasks", "--json"]);
    assert_code(&out, 0);
    let groups: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let finished = |g: &serde_json::Value| g["states"]["FINISHED"].as_u64().unwrap_or(0);
    let ours: Vec<&serde_json::Value> = groups
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["function"].as_str().is_some_and(|f| f.starts_with("testjob::")))
        .collect();
    assert!(!ours.is_empty() && ours.iter().all(|g| finished(g) >= 1), "{groups}");
    assert!(ours.iter().all(|g| g["total"].as_u64() >= Some(finished(g))), "{groups}");
    let out = head.wray(&["summary", "tasks"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("FUNCTION") && stdout(&out).contains("FINISHED: "), "{}", stdout(&out));
    // `ray timeline`: the same tasks as a Chrome trace, one process per node.
    let file = head.home.path().join("trace.json");
    let out = head.wray(&["timeline", "--output", path(&file)]);
    assert_code(&out, 0);
    let trace: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let bars =
        events.iter().filter(|e| e["ph"] == "X" && e["name"].as_str().is_some_and(|n| n.starts_with("testjob::")));
    assert!(bars.clone().count() >= ours.len(), "{trace}");
    assert!(bars.clone().all(|e| e["ts"].as_u64() > Some(0) && e["dur"].as_u64().is_some()), "{trace}");
    assert!(events.iter().any(|e| e["name"] == "process_name" && e["args"]["name"] == head.id), "{trace}");
    assert!(stdout(&out).contains(&format!("tasks written to {}", file.display())), "{}", stdout(&out));
    // A token given with `auto` is the one used.
    let wrong = "00".repeat(32);
    let out = head.wray(&["status", "--address", "auto", "--token", &wrong]);
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    // An address without a token is not completed with the local head's.
    let out = head.wray(&["status", "--address", &head.address]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("needs --token"), "{}", stderr(&out));

    let second = head.home.path().join("second");
    let out = head.wray(&["start", "--head", "--port", "0", "--no-dashboard", "--data-dir", path(&second)]);
    assert_code(&out, 0);
    let out = head.wray(&["status"]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("2 head nodes run on this machine") && err.contains(&head.address), "{err}");
    // With an address, the others do not matter.
    let out = head.wray(&["status", "--address", &head.address, "--token", &head.token]);
    assert_code(&out, 0);
}

#[test]
fn a_job_runs_unchanged_on_a_head_node() {
    let head = Head::start();
    let out = head.run(&guests().testjob, &["basics"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    for line in ["add: 3", "nested refs in arg: 10", "counter after tasks: 17", "many: 2001000", "cluster CPU: 2"] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
    }
    let out = head.run(&guests().testjob, &["panic-main"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("the driver gave up"), "{}", stderr(&out));
    // A driver's `exit(3)` is the client's exit status, as locally.
    let out = head.run(&guests().testjob, &["exit", "3"]);
    assert_code(&out, 3);
    assert!(stderr(&out).lines().count() <= 1, "{}", stderr(&out));
    // A bad component is bad input, as locally.
    let junk = tempfile::Builder::new().suffix(".wasm").tempfile().unwrap();
    std::fs::write(junk.path(), b"not wasm").unwrap();
    let out = head.run(junk.path(), &[]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("is not a WebAssembly file"), "{}", stderr(&out));
}

/// On a cluster, actors end with their last handle as on one node —
/// hosted on a worker too — except one whose handle went to another node,
/// which counts it apart: that actor stays (`local/actor_handles.rs`).
#[test]
fn actors_end_with_their_last_handle_on_a_cluster_wherever_their_handles_went() {
    // Handles sent to the other node — to a task, in a call to an actor
    // there, back in a result — are copies lent from the job's node
    // (`cluster/lent_handles.rs`): the actor lives while any is held there,
    // and ends once the last is given back.
    let head = Head::start_with_cpus("1");
    head.add_worker("2");
    let out = head.run(&guests().testjob, &["actor-lifetimes", "elsewhere"]);
    assert_code(&out, 0);
    has_lines(
        &stdout(&out),
        &[
            "six 1-CPU actors in turn: [1, 11, 21, 31, 41, 51]",
            "calls queued before the handle went: [1, 2, 3, 4, 5]",
            "the name went with the last handle: true",
            "a task elsewhere keeps it: true",
            "the task elsewhere's call: 1",
            "gone once the task elsewhere ended: true",
            "through the handle it returned: 1",
            "gone with the returned handle: true",
            "an actor holding the only handle calls it: 6",
            "the held actor ended with its holder: true",
            "a 2-CPU task after them: 7",
        ],
    );
}

#[test]
fn actors_made_or_found_by_tasks_on_other_nodes_are_the_job_s_like_any_other() {
    // Before, such an actor lived in the job's stand-in on the task's node:
    // no other node could call it ("does not exist in this job"), and it
    // ended 500 ms after the job's last task there. The task then calls the
    // actor it placed next to itself through the job's node: the call's
    // result, made on the task's node, once freed the task's own pending
    // result of the same id ("object lost", under load). The handles a task
    // takes there — of an actor it made, or looked up by name — are copies
    // lent by the job's node, counted like any other.
    let head = Head::start_with_cpus("1");
    head.add_worker("2");
    let out = head.run(&guests().testjob, &["actors-from-afar"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("its name taken again from afar is refused: true"), "{text}");
    has_lines(
        &text,
        &[
            "a task's actor, called from the driver: 42",
            "placed where the task asked: true",
            "found by name: 43",
            "a chain made afar on a handle from here: 13",
            "an actor's method's actor: 6",
            "placed next to its maker by default: true",
            "killed from the driver: true",
            "a task's actor answers: 2",
            "a task's actor ended with its last handle: true",
            "a task sent while the cluster was full: 1",
            "its actor ended with its last handle: true",
            "looked up by name from there: 100",
            "an actor looked up from there ended with its last handle: true",
        ],
    );
}

#[test]
fn status_shows_the_node() {
    let head = Head::start();
    let out = head.wray(&["status", "--address", &head.address, "--token", &head.token]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("(alive)") && text.contains("CPU: 2") && text.contains("jobs running: 0"), "{text}");
    assert!(text.contains("tasks queued or running: 0, live actors: 0"), "{text}");
    // Where it listens: the port the client reached it on.
    let port = head.address.rsplit(':').next().unwrap();
    assert!(text.lines().any(|l| l.starts_with("  address: ") && l.ends_with(&format!(":{port}"))), "{text}");
}

#[test]
fn a_wrong_token_is_refused_at_the_handshake() {
    let head = Head::start();
    let wrong = "0".repeat(64);
    let out = head.wray(&["run", "--address", &head.address, "--token", &wrong, path(&guests().pi)]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("handshake failed"), "{}", stderr(&out));
    let out = head.wray(&["status", "--address", &head.address, "--token", "not-a-token"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("invalid token"), "{}", stderr(&out));
    // The refusal is logged, and the head still serves the right token.
    let log = std::fs::read_to_string(head.data.join("node.log")).unwrap();
    assert!(log.contains("refused connection"), "{log}");
    assert_code(&head.run(&guests().pi, &["2"]), 0);
}

#[test]
fn garbage_datagrams_do_not_hurt_the_head() {
    let head = Head::start();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rng = Rng::new(0x9e37_79b9);
    for len in [1usize, 20, 1200, 1500, 60_000] {
        let junk: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = sock.send_to(&junk, &head.address);
    }
    let out = head.run(&guests().pi, &["2"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("pi ~ 3."), "{}", stdout(&out));
}

/// How many lines of `log` contain `needle`.
pub(crate) fn log_count(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log).unwrap_or_default().lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn replayed_datagrams_are_dropped_and_run_nothing_twice() {
    // A relay between a client and the head sends every datagram of the
    // client twice (a replay inside the live connection) and records them;
    // afterwards the whole recording is replayed at the head from the
    // relay's address and from a new one. QUIC drops duplicates by packet
    // number and cannot complete a handshake from a recording (the keys are
    // fresh per connection), so the job runs once and a replay ends as a
    // refused connection.
    use std::net::{SocketAddr, UdpSocket};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let head = Head::start_with_flags("2", &["--peer-timeout", "1.5"]);
    let log = head.data.join("node.log");
    let head_addr: SocketAddr = head.address.parse().unwrap();
    let relay = UdpSocket::bind("127.0.0.1:0").unwrap();
    relay.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let relay_addr = relay.local_addr().unwrap().to_string();
    let recorded = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let relaying = {
        let (relay, recorded, stop) = (relay.try_clone().unwrap(), recorded.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut client = None;
            let mut buf = vec![0u8; 65536];
            while !stop.load(Ordering::Relaxed) {
                let Ok((n, from)) = relay.recv_from(&mut buf) else { continue };
                if from == head_addr {
                    if let Some(c) = client {
                        let _ = relay.send_to(&buf[..n], c);
                    }
                } else {
                    client = Some(from);
                    recorded.lock().unwrap().push(buf[..n].to_vec());
                    let _ = relay.send_to(&buf[..n], head_addr);
                    let _ = relay.send_to(&buf[..n], head_addr);
                }
            }
        })
    };
    let out = wray_in(
        head.home.path(),
        &["run", "--address", &relay_addr, "--token", &head.token, path(&guests().pi), "--", "2"],
    );
    stop.store(true, Ordering::Relaxed);
    relaying.join().unwrap();
    assert_code(&out, 0);
    assert_eq!(stdout(&out).matches("pi ~ 3.").count(), 1, "{}", stdout(&out));
    assert_eq!(log_count(&log, "running job "), 1);

    let recorded = recorded.lock().unwrap().clone();
    assert!(recorded.len() > 5, "only {} datagrams went through the relay", recorded.len());
    // Replayed on the old path at once: the connection's state (closed, or
    // still draining) absorbs it without a word.
    for datagram in &recorded {
        relay.send_to(datagram, head_addr).unwrap();
    }
    // Replayed from a new address: while the old connection's state lives
    // (closed and draining, or idle until the peer timeout — 1.5 s on this
    // head, `--peer-timeout`), the head may route the replayed handshake to
    // it by its id and absorb it silently; once that state is gone, the
    // handshake cannot complete and is refused when it times out. So the
    // recording is replayed until a replay is refused.
    let refused = || log_count(&log, "refused connection from ") >= 1;
    let mut replays = 0;
    while !refused() {
        assert!(replays < 10, "replays were not refused:\n{}", std::fs::read_to_string(&log).unwrap());
        replays += 1;
        let fresh = UdpSocket::bind("127.0.0.1:0").unwrap();
        for datagram in &recorded {
            fresh.send_to(datagram, head_addr).unwrap();
        }
        holds_within(Duration::from_secs(4), refused);
    }
    // Nothing replayed ran, and the head serves the next client.
    assert_eq!(log_count(&log, "running job "), 1);
    let out = head.run(&guests().pi, &["2"]);
    assert_code(&out, 0);
    assert_eq!(log_count(&log, "running job "), 2);
}

#[test]
fn ctrl_c_or_sigterm_on_the_client_cancels_the_remote_job() {
    let head = Head::start();
    for (signal, code) in [("-INT", 130), ("-TERM", 143)] {
        let child = head.spawn_testjob(&["spin-task"]);
        wait_until(Duration::from_secs(30), || head.jobs_running() > 0, || format!("{signal}: the job never started"));
        Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
        let out = child.wait_with_output().unwrap();
        assert_code(&out, code);
        wait_until(
            Duration::from_secs(5),
            || head.jobs_running() == 0,
            || format!("{signal}: the remote job was not cancelled"),
        );
    }
}

/// A head that does not answer (a UDP socket that swallows the handshake)
/// keeps `wray run --address` connecting for seconds: SIGTERM stops it
/// there too, at once.
#[test]
fn sigterm_while_connecting_stops_the_client() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap().to_string();
    let token = "ab".repeat(32);
    let child = Command::new(wray_bin())
        .args(["run", "--address", &address, "--token", &token, path(&guests().pi)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its first handshake packet: it is connecting, its handlers in place.
    silent.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    silent.recv_from(&mut [0u8; 2048]).expect("a handshake packet from the client");
    let sent = std::time::Instant::now();
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let out = wait_for_exit(child, "wray run --address after SIGTERM", Duration::from_secs(10));
    assert_code(&out, 143);
    assert!(sent.elapsed() < Duration::from_secs(2), "took {:?}", sent.elapsed());
}

#[test]
fn stop_ends_the_head_and_a_restart_keeps_its_token() {
    let head = Head::start();
    let pid_alive = || head.wray(&["status", "--address", &head.address, "--token", &head.token]).status.success();
    assert!(pid_alive());
    let out = head.wray(&["stop"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("stopped node"), "{}", stdout(&out));
    assert!(!pid_alive(), "the head still answers after wray stop");
    let out = head.wray(&["start", "--head", "--port", "0", "--data-dir", head.data.to_str().unwrap()]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains(&format!("token: {}", head.token)), "{}", stdout(&out));
}

#[test]
fn jobs_run_detached_and_their_records_survive_a_restart() {
    let head = Head::start();
    let (addr, token) = (head.address.clone(), head.token.clone());
    let job = |args: &[&str]| {
        let mut all = vec!["job", "--address", &addr, "--token", &token];
        all.extend_from_slice(args);
        head.wray(&all)
    };
    let out = job(&["submit", path(&guests().pi), "--", "4"]);
    assert_code(&out, 0);
    let id = stdout(&out).trim().to_string();
    assert!(id.starts_with("job-"), "{id}");
    // --follow returns when the job ends, with all of its output.
    let out = job(&["logs", "--follow", &id]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("4 tasks x 1000000 samples: pi ~ 3.1"), "{}", stdout(&out));
    let out = job(&["status", &id]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("SUCCEEDED"), "{}", stdout(&out));

    let out = job(&["submit", path(&guests().testjob), "--", "spin-task"]);
    let spinning = stdout(&out).trim().to_string();
    assert_code(&job(&["stop", &spinning]), 0);
    let stopped = || {
        let out = job(&["status", &spinning]);
        stdout(&out).contains("STOPPED") && out.status.code() == Some(1)
    };
    wait_until(Duration::from_secs(10), stopped, || stdout(&job(&["status", &spinning])));
    let out = job(&["status", "job-999999"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("no job"), "{}", stderr(&out));
    // Stopping one that ended, or one that never was, says which.
    let out = job(&["stop", &id]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("is not running: it is SUCCEEDED"), "{}", stderr(&out));
    let out = job(&["stop", "job-999999"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("no job \"job-999999\""), "{}", stderr(&out));

    // Restart the head on the same data directory: the records are still there.
    assert_code(&head.wray(&["stop"]), 0);
    let out = head.wray(&["start", "--head", "--port", "0", "--data-dir", head.data.to_str().unwrap()]);
    assert_code(&out, 0);
    let addr2 = stdout(&out).lines().find_map(|l| l.strip_prefix("address: ")).unwrap().trim().to_string();
    let out = head.wray(&["job", "list", "--address", &addr2, "--token", &token]);
    assert_code(&out, 0);
    let list = stdout(&out);
    assert!(list.contains(&format!("{id}   SUCCEEDED")) && list.contains(&format!("{spinning}   STOPPED")), "{list}");
}

impl Head {
    /// Starts a worker joining this head; returns its pid.
    pub(crate) fn add_worker(&self, cpus: &str) -> u32 {
        self.add_worker_with(cpus, &[])
    }

    /// Starts a worker with more `wray start` flags; returns its pid.
    pub(crate) fn add_worker_with(&self, cpus: &str, flags: &[&str]) -> u32 {
        self.add_worker_env(cpus, flags, &[])
    }

    /// The same, callable from other test modules.
    pub(crate) fn add_worker_flags(&self, cpus: &str, flags: &[&str]) -> u32 {
        self.add_worker_env(cpus, flags, &[])
    }

    /// Starts a worker with more flags and environment variables.
    fn add_worker_env(&self, cpus: &str, flags: &[&str], envs: &[(&str, &str)]) -> u32 {
        let dir = tempfile::Builder::new().prefix("worker-").tempdir_in(self.home.path()).unwrap().keep();
        let mut args =
            vec!["start", "--address", &self.address, "--token", &self.token, "--cpus", cpus, "--data-dir", path(&dir)];
        args.extend_from_slice(flags);
        let out = wray_in_env(self.home.path(), &args, envs);
        assert_code(&out, 0);
        assert!(stdout(&out).starts_with("joined: "), "{}", stdout(&out));
        started_pid(&out)
    }

    /// Every worker's `node.log`, one after another.
    fn worker_logs(&self) -> String {
        std::fs::read_dir(self.home.path())
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("node.log")).ok())
            .collect()
    }

    /// Runs 200 tasks of 100 ms (`spread`), SIGKILLing the worker `pid`
    /// while it runs some; checks every result came back and returns the
    /// job's output and when the worker was killed.
    fn spread_killing(&self, pid: u32) -> (String, Instant) {
        let run = self.spawn_testjob(&["spread", "200", "100"]);
        let killed = self.kill_once_busy(pid);
        let out = run.wait_with_output().unwrap();
        assert_code(&out, 0);
        let text = stdout(&out);
        assert!(text.contains("spread ok: 200"), "{text}");
        (text, killed)
    }

    /// SIGKILLs the worker `pid` once it is running some task (as the
    /// head's status shows); returns when.
    fn kill_once_busy(&self, pid: u32) -> Instant {
        self.signal_once_busy(pid, "-KILL")
    }

    /// Sends `signal` to the worker `pid` once it is running some task;
    /// returns when.
    fn signal_once_busy(&self, pid: u32, signal: &str) -> Instant {
        let section = format!("node {} (alive)", node_id(pid));
        let busy = || {
            let status = self.status_text();
            status
                .split("node ")
                .find(|s| format!("node {s}").starts_with(&section))
                .is_some_and(|s| !s.contains("tasks queued or running: 0,"))
        };
        wait_until(Duration::from_secs(60), busy, || format!("no task reached the worker: {}", self.status_text()));
        Command::new("kill").args([signal, &pid.to_string()]).status().unwrap();
        Instant::now()
    }

    fn status_text(&self) -> String {
        let out = self.wray(&["status", "--address", &self.address, "--token", &self.token]);
        assert_code(&out, 0);
        stdout(&out)
    }
}

#[test]
fn workers_join_and_jobs_spread_across_nodes() {
    let head = Head::start_with_cpus("1");
    head.add_worker("3");
    head.add_worker("5");
    let status = head.status_text();
    assert_eq!(status.matches("(alive)").count(), 3, "{status}");
    assert!(status.contains("CPU: 3") && status.contains("CPU: 5"), "{status}");
    // Three jobs at once land on three nodes (each sleeps, so they overlap).
    let runs: Vec<_> = (0..3)
        .map(|_| {
            Command::new(wray_bin())
                .args([
                    "run",
                    "--address",
                    &head.address,
                    "--token",
                    &head.token,
                    path(&guests().testjob),
                    "--",
                    "whereami",
                ])
                .env("HOME", head.home.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut nodes = std::collections::BTreeSet::new();
    for child in runs {
        let out = child.wait_with_output().unwrap();
        assert_code(&out, 0);
        let line = stdout(&out);
        nodes.insert(line.split_whitespace().nth(1).unwrap_or_default().to_string());
    }
    assert_eq!(nodes.len(), 3, "jobs did not spread: {nodes:?}");
}

#[test]
fn a_dead_worker_is_detected_and_its_jobs_go_elsewhere() {
    let head = Head::start_with_cpus("1");
    let pid = head.add_worker("8");
    Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    // The next job would go to the (idle, bigger) worker; it runs on the head.
    let out = head.run(&guests().testjob, &["whereami"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains(&format!("node: {}", head.id)), "{}", stdout(&out));
    wait_until(
        Duration::from_secs(8),
        || head.status_text().contains("(dead)"),
        || format!("the dead worker was not detected: {}", head.status_text()),
    );
}

#[test]
fn nodes_offer_gpus_and_custom_resources() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("head");
    let out = wray_in(
        home.path(),
        &[
            "start",
            "--head",
            "--port",
            "0",
            "--cpus",
            "2",
            "--gpus",
            "1",
            "--resources",
            r#"{"accelerator": 2.5}"#,
            "--data-dir",
            data.to_str().unwrap(),
            "--no-dashboard",
        ],
    );
    assert_code(&out, 0);
    let text = stdout(&out);
    let address = text.lines().find_map(|l| l.strip_prefix("address: ")).unwrap().trim().to_string();
    let token = text.lines().find_map(|l| l.strip_prefix("token: ")).unwrap().trim().to_string();
    assert!(!text.contains("dashboard:"), "--no-dashboard started one:\n{text}");
    let head = Head { home, data, address, token, id: node_id(started_pid(&out)), serve: None, dashboard: None };
    let status = head.status_text();
    assert!(status.contains("GPU: 1") && status.contains("accelerator: 2.5"), "{status}");
    for bad in [r#"[1, 2]"#, r#"{"x": -1}"#, "not json"] {
        let out = head.wray(&["start", "--head", "--port", "0", "--resources", bad, "--data-dir", "/tmp/unused"]);
        assert_code(&out, 2);
        assert!(stderr(&out).contains("--resources"), "{}", stderr(&out));
    }
    let out = head.wray(&["start", "--head", "--gpus", "-1"]);
    assert_code(&out, 2);
}

#[test]
fn components_cross_the_network_once_per_node() {
    let head = Head::start_with_cpus("1");
    let worker = node_id(head.add_worker("4"));
    // Two jobs of the same file, one after the other: both go to the bigger,
    // idle worker; the client and the head send the bytes only the first time.
    for _ in 0..2 {
        let out = head.run(&guests().testjob, &["whereami"]);
        assert_code(&out, 0);
        assert!(stdout(&out).contains(&format!("node: {worker} cpus: 5")), "{}", stdout(&out));
    }
    let log = std::fs::read_to_string(head.data.join("node.log")).unwrap();
    assert_eq!(log.matches("stored component").count(), 1, "{log}");
    assert_eq!(log.matches("sending component").count(), 1, "{log}");
}

#[test]
fn tasks_spread_over_the_nodes_and_survive_a_killed_worker() {
    // The job runs on the (bigger) head; its 200 tasks spill onto the
    // workers as the head fills up. One worker is SIGKILLed midway: the
    // head notices within its node timeout and the tasks that were running
    // there run again elsewhere; every result is checked by the job.
    let head = Head::start_with_cpus("2");
    let doomed = head.add_worker("1");
    head.add_worker("1");
    let (_, killed) = head.spread_killing(doomed);
    let log = std::fs::read_to_string(head.data.join("node.log")).unwrap();
    assert!(log.contains(&format!("worker {} is dead", node_id(doomed))), "{log}");
    assert!(log.contains("retrying testjob::tasks::square_where elsewhere"), "{log}");
    // Detected within the default 3 s timeout (plus a tick), not the job's end.
    let status = head.status_text();
    assert!(status.contains("(dead)"), "{status}");
    assert!(killed.elapsed() < Duration::from_secs(60));
}

/// A worker frozen mid-job (SIGSTOP: a stalled VM, a long pause) past the
/// node timeout is a dead node to the cluster: its tasks run again
/// elsewhere and the job's results are exact. Thawed, it finds its
/// connection closed, drops what it was running, joins again on its own
/// and takes work like any node.
#[test]
fn a_frozen_worker_is_dead_to_the_cluster_then_joins_again() {
    let head = Head::start_with_cpus("3");
    let frozen = head.add_worker("2");
    let id = node_id(frozen);
    let run = head.spawn_testjob(&["spread", "300", "100"]);
    head.signal_once_busy(frozen, "-STOP");
    // (Not `wray status`: it shows a node that does not answer as dead
    // before the head has declared it so.)
    let dead = format!("worker {id} is dead: it missed its heartbeats");
    let log = || std::fs::read_to_string(head.data.join("node.log")).unwrap_or_default();
    let declared = wait_for(Duration::from_secs(30), || log().contains(&dead));
    Command::new("kill").args(["-CONT", &frozen.to_string()]).status().unwrap();
    assert!(declared, "the frozen worker was not declared dead: {}", log());
    let out = run.wait_with_output().unwrap();
    assert_code(&out, 0);
    assert!(stdout(&out).contains("spread ok: 300"), "{}", stdout(&out));
    assert!(log().contains("retrying testjob::tasks::square_where elsewhere"), "{}", log());

    let alive = format!("node {id} (alive)");
    wait_until(Duration::from_secs(30), || head.status_text().contains(&alive), || head.status_text());
    // Once: no stale entry beside the new one.
    assert_eq!(head.status_text().matches(&format!("node {id} ")).count(), 1, "{}", head.status_text());
    let out = head.run(&guests().testjob, &["spread", "200", "100"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    let ran_there = text
        .lines()
        .find_map(|l| l.strip_prefix("ran ")?.strip_suffix(&format!(" on {id}"))?.parse::<u32>().ok())
        .unwrap_or(0);
    assert!(text.contains("spread ok: 200") && ran_there > 0, "{text}");
}

#[test]
fn tasks_with_large_arguments_stay_with_their_data() {
    // The job runs on the (bigger) head, which is busy; the workers are
    // idle, yet tasks carrying 32 MiB each stay where the object is.
    let head = Head::start_with_cpus("2");
    head.add_worker("1");
    let out = head.run(&guests().testjob, &["locality"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("locality nodes: 1") && text.contains("ran on job node: true"), "{text}");
}

/// A task asking for a resource no node has yet waits a moment for a node
/// that has it (the head's join grace) instead of failing: what a job meets
/// right after a head restart, before its workers are back.
#[test]
fn a_demand_waits_briefly_for_a_worker_that_meets_it() {
    let head = Head::start_with_cpus("1");
    let mut run = head.spawn_testjob(&["special"]);
    let lines = lines_of(run.stdout.take().unwrap());
    // The job starts (its task asks for a node a moment later) before the
    // worker does; the worker then joins within the grace.
    let log = head.data.join("node.log");
    wait_until(Duration::from_secs(30), || log_count(&log, "running job ") >= 1, || "the job never started".into());
    let special = node_id(head.add_worker_with("2", &["--resources", r#"{"special": 2}"#]));
    wait_for_line(&lines, &format!("special: 49 on {special}"), Duration::from_secs(60));
    assert_code(&wait_for_exit(run, "the job", Duration::from_secs(60)), 0);
}

#[test]
fn a_restarted_head_waits_for_the_workers_it_knew() {
    // The only `special` worker and the head both die; the restarted head
    // remembers the worker from its data directory, so a job asking for
    // `special` waits past the short grace (3 s) for it to be replaced
    // (the chaos soak's seed 1796306607129648795 lost an actor to a head
    // that had forgotten its workers).
    let mut head = Head::start_with_cpus("1");
    let pid = head.add_worker_with("2", &["--resources", r#"{"special": 2}"#]);
    kill_and_wait(pid);
    head.crash_and_restart("1");
    let mut run = head.spawn_testjob(&["special"]);
    let lines = lines_of(run.stdout.take().unwrap());
    let log = head.data.join("node.log");
    wait_until(Duration::from_secs(30), || log_count(&log, "running job ") >= 1, || "the job never started".into());
    std::thread::sleep(Duration::from_secs(5));
    assert!(run.try_wait().unwrap().is_none(), "the job gave up on the remembered worker");
    let special = node_id(head.add_worker_with("2", &["--resources", r#"{"special": 2}"#]));
    wait_for_line(&lines, &format!("special: 49 on {special}"), Duration::from_secs(60));
    assert_code(&wait_for_exit(run, "the job", Duration::from_secs(60)), 0);
}

/// `wray rl train --address` sends the built-in RL job to a cluster: its
/// env runner actors spread over the nodes and the iterations stream back.
#[test]
fn the_rl_command_trains_on_a_cluster() {
    let head = Head::start_with_cpus("1");
    head.add_worker("2");
    let out = head.wray(&[
        "rl",
        "train",
        "--algo",
        "PPO",
        "--env",
        "CartPole-v1",
        "--stop-iters",
        "2",
        "--num-env-runners",
        "2",
        "--address",
        &head.address,
        "--token",
        &head.token,
    ]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("training PPO on CartPole-v1 with 2 env runners"), "{text}");
    assert!(text.contains("iter    2  env steps     8000"), "{text}");
    assert!(!text.contains("checkpoint:"), "no local checkpoint with --address:\n{text}");
}

/// Generator tasks on a worker, read by the job on the head: each item
/// crosses as it is made (`Event::Item`), before the task's result; a
/// failed attempt's items are kept and the retry's repeats dropped; a
/// generator the job drops is stopped on the worker (its `special` comes
/// back at once).
#[test]
fn generator_items_come_from_another_node_as_they_are_made() {
    // The job goes to the node with the most CPUs (the head), the
    // generators to the `special` worker.
    let head = Head::start_with_cpus("2");
    head.add_worker_with("1", &["--resources", r#"{"special": 4}"#]);
    let out = head.run(&guests().testjob, &["generators", "special"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    for line in [
        "countdown: [3, 2, 1, 0]",
        "first item 0 before the task ended: true",
        "made here: false",
        "then: 1,2",
        "fails after two: 0, 1, error (no item 2)",
        "fails before any: true",
        "in batches: 200 items, values right: true, again: true, all ready: true, get_all: true",
        "nested: [[0, 1], [10, 11], [20, 21]]",
        "kept: 2",
        "retried: [0, 1, 2, 3] in 2 attempts",
        "read in a task: 10",
        "next_timeout: an item, then timed out: true",
        r#"cancelled: items, then Some(Err("task cancelled"))"#,
        "dropped: the generator stopped early: true",
        "dropped while paused: stopped: true",
        "first count 11 before the call ended: true",
        "then counts: [12, 13], the actor at 13",
        "dropped method: stopped early: true",
        "counts read in a task: 10",
        "dropped method in a task: stopped early: true",
    ] {
        assert!(text.lines().any(|l| l == line), "expected {line:?} in:\n{text}");
    }
    // Across nodes a window of 2 bounds the items of 1 MiB made ahead of
    // the reader to the window on each node and the 16 MiB a stream has in
    // flight (19 measured); without it all 60 are made before the late
    // reader takes the first.
    let (bounded, unbounded) = items_made_ahead(&text, "backpressure");
    assert!(bounded <= 22.0 && unbounded == 59.0, "{bounded} and {unbounded} made ahead:\n{text}");
    // The same for the method of an actor on the worker, the window sent
    // with the call.
    let (bounded, unbounded) = items_made_ahead(&text, "method backpressure");
    assert!(bounded <= 22.0 && unbounded == 59.0, "method: {bounded} and {unbounded} made ahead:\n{text}");
    // And for a task on the worker reading the method of an actor on the
    // job's node (the head), its window sent back on the call's stream.
    let (bounded, unbounded) = items_made_ahead(&text, "method backpressure in a task");
    assert!(bounded <= 22.0 && unbounded == 59.0, "method in a task: {bounded} and {unbounded} made ahead:\n{text}");
}

/// The node running a generator is SIGKILLed after three items: the task
/// runs again on the other `spot` worker, whose repeats of the items
/// already read are dropped — each item read once, in order.
#[test]
fn a_generator_whose_node_dies_goes_on_elsewhere_without_repeating_items() {
    let head = Head::start_with_cpus("2");
    head.add_worker_with("1", &["--resources", r#"{"spot": 1}"#]);
    head.add_worker_with("1", &["--resources", r#"{"spot": 1}"#]);
    let text = run_killing_named_nodes(head.spawn_testjob(&["generator-node-loss"]));
    assert!(text.contains("items after a lost node: true"), "{text}");
    assert!(text.contains("made on nodes: 2"), "{text}");
}

#[test]
fn tasks_go_where_their_resources_are() {
    let head = Head::start_with_cpus("1");
    let special = node_id(head.add_worker_with("2", &["--resources", r#"{"special": 2}"#]));
    let out = head.run(&guests().testjob, &["special"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    // The task needs `special`, which only the worker has.
    assert!(text.contains(&format!("special: 49 on {special}")), "{text}");
    // wray::cluster_resources() is the whole cluster's.
    assert!(text.contains("cluster CPU: 3") && text.contains("cluster special: 2"), "{text}");
    // wray::nodes() lists both, the head first, from the driver and from a
    // task on the worker (which asks the head).
    let nodes = format!(
        "[head 1cpu address alive=true free<=total=true] [worker {special} 2cpu address alive=true free<=total=true]"
    );
    assert!(text.contains(&format!("nodes from the driver: {nodes}")), "{text}");
    assert!(text.contains(&format!("nodes from {special}: {nodes}")), "{text}");
    assert!(text.contains(r#"env on the worker: [Some("far")]"#), "{text}");
    // More than any node has: a clear error, not a hang.
    let out = head.run(&guests().testjob, &["special", "5"]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("special failed: invalid argument: no node in the cluster has {CPU: 0.5, special: 5}"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_worker_offers_the_gpu_it_finds_and_gpu_tasks_go_there() {
    // The head has no usable GPU; the worker may use lavapipe and offers it
    // as `GPU: 1` without being told.
    let head = Head::start_with_cpus("1");
    let gpu_node = node_id(head.add_worker_env("4", &[], &[("WRAY_ALLOW_SOFTWARE_GPU", "1")]));
    let status = head.status_text();
    assert!(status.contains("GPU: 1"), "{status}");
    let out = head.run(&guests().testjob, &["gpu-share", "4"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    let tasks: Vec<&str> = text.lines().filter(|l| l.starts_with("task ") && l.contains("gpu=true")).collect();
    assert_eq!(tasks.len(), 4, "{text}");
    for t in tasks {
        assert!(t.contains(&format!("node={gpu_node}")) && t.contains("device=gpu 0: "), "{t}");
    }
}

#[test]
fn a_large_object_made_on_one_node_is_consumed_on_another() {
    // 1 GiB made by a task on the `producer` worker, checked byte by byte by
    // a task on the `consumer` worker; the job runs on the head, which
    // spills the object to disk as it lands (over its 1 GiB budget) and
    // keeps serving meanwhile.
    let head = Head::start_with_flags("2", &["--node-timeout", "30"]);
    let store = ["--object-store-memory", "3GiB"];
    head.add_worker_with("1", &[&["--resources", r#"{"producer": 1}"#][..], &store].concat());
    let consumer = node_id(head.add_worker_with("1", &[&["--resources", r#"{"consumer": 1}"#][..], &store].concat()));
    let out = head.run(&guests().testjob, &["big", "1024"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains(&format!("big: 1073741824 bytes intact=true consumed on {consumer}")), "{text}");
}

/// Bytes node `node` received over its cluster connections, from the
/// head's `/metrics`.
fn received_bytes(head: &Head, node: &str) -> f64 {
    metric(head, &format!("wray_network_received_bytes_total{{node=\"{node}\"}} "))
}

/// The value on the head's `/metrics` line that starts with `line`.
fn metric(head: &Head, line: &str) -> f64 {
    let dash = head.dashboard.as_deref().expect("the head runs a dashboard");
    let reply = request(dash, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    reply
        .body
        .lines()
        .find_map(|l| l.strip_prefix(line))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line:?} in:\n{}", reply.body))
}

#[test]
fn workers_move_objects_to_each_other_without_the_head() {
    // The job lands on the biggest worker; a 64 MiB object made on the
    // `producer` worker stays there (the job's node reached it directly)
    // and the `consumer` worker fetches it from there. The head places
    // both tasks, and the job's node owns the object, but neither of them
    // carries its bytes: they go from worker to worker.
    big_object_between_workers(false);
}

#[test]
fn a_job_on_the_head_leaves_large_results_where_they_were_made() {
    // The same with the job on the head (the node with the most CPUs): the
    // head places the producer's task on its own connection to that
    // worker, which keeps the result, and the consumer fetches it from the
    // producer over their own connection.
    big_object_between_workers(true);
}

/// `big 64` on a head and three workers — the job's (3 CPUs, or the head
/// has them), a `producer` and a `consumer` — checking that the 64 MiB
/// object reaches only the consumer, and that a task needing only a CPU
/// goes to the 32 MiB it takes.
fn big_object_between_workers(job_on_head: bool) {
    let head = Head::start_with_cpus(if job_on_head { "3" } else { "1" });
    let home = if job_on_head { head.id.clone() } else { node_id(head.add_worker("3")) };
    // Two CPUs on the producer: room for the task drawn to its result even
    // while the head still counts the CPU of the task that made it (it is
    // credited when the job's node closes that task's stream to the head,
    // which may arrive after the next request).
    let producer_pid = head.add_worker_with("2", &["--resources", r#"{"producer": 1}"#]);
    let producer = node_id(producer_pid);
    let consumer_pid = head.add_worker_with("1", &["--resources", r#"{"consumer": 1}"#]);
    let consumer = node_id(consumer_pid);
    let (head_before, home_before) = (received_bytes(&head, &head.id), received_bytes(&head, &home));
    let consumer_before = received_bytes(&head, &consumer);
    let out = head.run(&guests().testjob, &["big", "64"]);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), head.worker_logs());
    let text = stdout(&out);
    assert!(text.contains(&format!("big: 67108864 bytes intact=true consumed on {consumer}")), "{text}");
    assert!(text.contains("big parts: 3 intact=true"), "{text}");
    // A task whose argument is held elsewhere goes to it.
    assert!(text.contains(&format!("near: 33554432 bytes intact=true consumed on {producer}")), "{text}");
    if !job_on_head {
        let through_head = received_bytes(&head, &head.id) - head_before;
        assert!(through_head < 8.0 * 1048576.0, "the head received {through_head} bytes of a 64 MiB object's trip");
    }
    // The job's component (22 MiB, to a worker) and the three 1 MiB parts
    // the job reads reach its node during the run; the 64 MiB object does
    // not.
    let through_home = received_bytes(&head, &home) - home_before;
    assert!(through_home < 32.0 * 1048576.0, "the job's node received {through_home} bytes of an object it never read");
    assert!(received_bytes(&head, &consumer) - consumer_before > 64.0 * 1048576.0);
    // The job's stand-ins on the producer and the consumer are kept a
    // moment after their last task (STAND_IN_LINGER), not counted as
    // running jobs, and then end.
    wait_until(
        Duration::from_secs(10),
        || {
            let text = head.status_text();
            text.lines().filter(|l| l.contains("jobs running:")).all(|l| l.trim() == "jobs running: 0")
        },
        || format!("the job's stand-ins did not end:\n{}", head.status_text()),
    );
    // The consumer read the object into a recycled buffer, which went back
    // to the pool when the object was freed with the job. Nobody takes it
    // again, so it is given back within `buffers::MAX_IDLE` (10 s, looked
    // at every second) instead of being kept for ever.
    let after_job = rss(consumer_pid);
    wait_until(
        Duration::from_secs(30),
        || rss(consumer_pid) + 48 * 1048576 < after_job,
        || {
            format!(
                "the consumer kept its memory: {} MiB after the job, {} MiB now",
                after_job >> 20,
                rss(consumer_pid) >> 20
            )
        },
    );
    // The producer's task grew its instance's memory by twice the object's
    // size (the vector and its encoding); that memory goes back when the
    // instance ends, not once enough later instances have ended to fill a
    // batch of decommits (`DECOMMIT_BATCH`): 85 MiB after the job in a
    // debug build, 274 MiB when it stayed.
    wait_until(
        Duration::from_secs(30),
        || rss(producer_pid) < 160 * 1048576,
        || format!("the producer kept its memory: {} MiB", rss(producer_pid) >> 20),
    );
}

#[test]
fn a_result_left_on_a_node_is_freed_when_its_owner_dies() {
    // A 16 MiB result stays on the producer for the job's node; that node
    // (the job's, the object's owner) is SIGKILLed: the producer frees the
    // object once the stream its owner held breaks, rather than keep it
    // for an owner that is gone.
    use std::io::BufRead;
    let head = Head::start_with_cpus("1");
    head.add_worker("3");
    // A short peer timeout on the producer: the dead owner's connection
    // to it (made by the owner) times out at the shorter of the two ends'.
    let flags = ["--resources", r#"{"producer": 1}"#, "--peer-timeout", "2"];
    let producer = node_id(head.add_worker_with("1", &flags));
    let memory = || metric(&head, &format!("wray_object_store_memory_bytes{{node=\"{producer}\"}} "));
    let mut run = head.spawn_testjob(&["held-orphan"]);
    let mut text = String::new();
    for line in std::io::BufReader::new(run.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "made: 1" {
            // The dashboard's figures are at most a refresh old.
            let held = wait_for(Duration::from_secs(10), || memory() >= 16.0 * 1048576.0);
            assert!(held, "the producer does not hold the result: {} bytes", memory());
        }
        if let Some(id) = line.strip_prefix("kill: ") {
            let pid = pid_of(id);
            Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
        }
        text.push_str(&line);
        text.push('\n');
    }
    assert!(text.contains("kill: "), "{text}");
    let _ = run.wait();
    let killed = Instant::now();
    assert!(wait_for(Duration::from_secs(30), || memory() < 1048576.0), "still held: {} bytes", memory());
    assert!(killed.elapsed() < Duration::from_secs(15), "freed only after {:?}", killed.elapsed());
}

#[test]
fn a_result_left_on_a_killed_node_is_made_again_for_its_readers() {
    // A 16 MiB result stays on the producer that made it; that producer
    // is SIGKILLed. The consumer's fetch fails, the job's node runs the
    // producing task again on the other producer (lineage
    // reconstruction), and the consumer and the job both get the bytes.
    let head = Head::start_with_cpus("1");
    head.add_worker("3");
    let doomed = node_id(head.add_worker_with("1", &["--resources", r#"{"producer": 1}"#]));
    head.add_worker_with("1", &["--resources", r#"{"producer": 1}"#]);
    let consumer = node_id(head.add_worker_with("1", &["--resources", r#"{"consumer": 1}"#]));
    let started = std::time::Instant::now();
    let text = run_killing_named_nodes(head.spawn_testjob(&["held-lost", &doomed]));
    assert!(text.contains(&format!("kill: {doomed}")), "{text}");
    assert!(text.contains(&format!("held-lost: 16777216 bytes intact=true consumed on {consumer}")), "{text}");
    assert!(text.contains("held-lost at home: 16777216 bytes intact=true"), "{text}");
    let logs = head.worker_logs();
    assert!(logs.contains("the result of testjob::tasks::produce was lost"), "{logs}");
    assert!(started.elapsed() < Duration::from_secs(90));
}

#[test]
fn a_worker_s_tasks_go_direct_relayed_or_to_the_head_and_survive_a_killed_worker() {
    // The job runs on the biggest worker; its tasks spill over to the head
    // (which runs them itself), to a worker that listens (reached
    // directly) and to one started with --no-direct (reached through the
    // head's relay). The listening one is SIGKILLed while it runs some:
    // the head, on declaring it dead, resets the streams of the placements
    // it gave out there, and the job's node runs those tasks again
    // elsewhere. Every result is checked by the job.
    let head = Head::start_with_cpus("1");
    head.add_worker("3");
    let doomed = head.add_worker("1");
    let relayed = node_id(head.add_worker_with("1", &["--no-direct"]));
    let (text, killed) = head.spread_killing(doomed);
    for node in [&head.id, &relayed] {
        assert!(
            text.lines().any(|l| l.starts_with("ran ") && l.ends_with(node.as_str())),
            "nothing ran on {node}:\n{text}"
        );
    }
    // The job's node saw those tasks lost and ran them again.
    let logs = head.worker_logs();
    assert!(logs.contains("reached node "), "no direct connection in:\n{logs}");
    // The job's node dialed the listening worker once, however many of the
    // tasks it sent there in a burst asked for the connection at once.
    let dialed = format!("reached node {} directly", node_id(doomed));
    assert_eq!(logs.matches(&dialed).count(), 1, "{logs}");
    assert!(logs.contains("retrying testjob::tasks::square_where elsewhere"), "{logs}");
    assert!(killed.elapsed() < Duration::from_secs(60));
}

#[test]
fn actors_are_placed_by_resources_and_reached_from_every_node() {
    let head = Head::start_with_cpus("2");
    let special = node_id(head.add_worker_with("2", &["--resources", r#"{"special": 1}"#]));
    head.add_worker_with("2", &["--resources", r#"{"elsewhere": 1}"#]);
    let out = head.run(&guests().testjob, &["actors-cluster"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    for line in [
        format!("actor on: {special}"),
        r#"its name there: Some("shared")"#.into(),
        "after incr: 15".into(),
        // A task on the other worker, through a handle and by name.
        "bump: 25".into(),
        "bump_named: 125".into(),
        // Asked of the job's node (the head) from a worker.
        r#"named from the other worker: ["shared"]"#.into(),
        // A task on the actor's own node.
        "bump_named on its node: 225".into(),
        "final: 225".into(),
        "after kill: actor died: testjob::actors::Counter was killed: wray::kill".into(),
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
    }
}

#[test]
fn a_node_holds_more_actors_than_quic_allows_streams_by_default() {
    // Each actor placed on a worker holds a stream of the head's connection
    // to it; quinn's default cap of 100 streams hung the 100th actor (and
    // every later request to that worker) instead of running it.
    let head = Head::start_with_cpus("1");
    head.add_worker_with("1", &["--resources", r#"{"special": 1}"#]);
    let out = head.run(&guests().testjob, &["actors-on-one-node", "150"]);
    assert_code(&out, 0);
    // 0 + 1 + ... + 149, all on the one node with `special`.
    assert!(stdout(&out).lines().any(|l| l == "actors: 150, sum: 11175, nodes: 1"), "{}", stdout(&out));
}

#[test]
fn a_burst_of_actors_fills_every_node_without_overfilling_one() {
    // 90 actors, each taking one of the 30 `special` of each of three
    // workers, placed in one burst. A heartbeat measured before some of
    // them reached their node used to erase their charges in the head's
    // view, which then sent more to that node than it had room for: the
    // extra actors queued there for ever while another node had room.
    let head = Head::start_with_cpus("1");
    for _ in 0..3 {
        head.add_worker_with("1", &["--resources", r#"{"special": 30}"#]);
    }
    let out = head.run(&guests().testjob, &["actors-on-one-node", "90", "1"]);
    assert_code(&out, 0);
    // 0 + 1 + ... + 89, over all three workers.
    assert!(stdout(&out).lines().any(|l| l == "actors: 90, sum: 4005, nodes: 3"), "{}", stdout(&out));
}

/// A 1-CPU head and two 1-CPU workers that also offer `spot`, which the
/// scheduling scenarios use to find the workers.
fn head_and_two_spot_workers() -> Head {
    let head = Head::start_with_cpus("1");
    for _ in 0..2 {
        head.add_worker_with("1", &["--resources", r#"{"spot": 1}"#]);
    }
    head
}

#[test]
fn spread_takes_the_nodes_in_turn_and_default_stays_home() {
    let head = head_and_two_spot_workers();
    let out = head.run(&guests().testjob, &["spread-strategy"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    has_lines(
        &text,
        &[
            "spread actors per node: 2 2 2",
            "default actors per node: 6",
            "spread tasks per node: 2 2 2",
            "default tasks per node: 6",
            "spread from a worker: 1 1 1 (from a worker: true, its own node among them: true)",
        ],
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("spread in a placement group: ")
                && l.contains("leave the scheduling strategy default")),
        "{text}"
    );
}

#[test]
fn node_affinity_pins_tasks_and_actors_to_a_node_and_soft_affinity_bends() {
    let head = head_and_two_spot_workers();
    let out = head.run(&guests().testjob, &["node-affinity"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    has_lines(
        &text,
        &[
            "pinned to the job's node runs there: true",
            "soft affinity to a missing node runs: true",
            "workers found: 2",
            "hard affinity tasks on the named worker: 4 of 4",
            "hard affinity actor on the named worker: true",
            "soft affinity to a busy worker went elsewhere: true",
            "from a worker, pinned to the head: true",
            "from a worker, pinned to the other worker: true",
        ],
    );
    // On a cluster the head answers: no live node has that id.
    for prefix in ["pinned to a missing node: ", "actor pinned to a missing node: "] {
        assert!(
            text.lines().any(|l| l.starts_with(prefix) && l.contains(r#"node affinity names node "node-nowhere""#)),
            "{prefix:?} in:\n{text}"
        );
    }
}

#[test]
fn an_actor_whose_node_dies_is_restarted_on_another() {
    use std::io::BufRead;
    let head = Head::start_with_cpus("1");
    head.add_worker_with("1", &["--resources", r#"{"spot": 1}"#]);
    head.add_worker_with("1", &["--resources", r#"{"spot": 1}"#]);
    let mut run = head.spawn_testjob(&["actor-restart"]);
    let mut lines = std::io::BufReader::new(run.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let host = first.strip_prefix("actor on: ").unwrap_or_else(|| panic!("{first}"));
    let pid = pid_of(host);
    Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = run.wait().unwrap();
    assert!(status.success(), "{rest:?}");
    let text = rest.join("\n");
    assert!(text.contains("restarted on: node-") && !text.contains(&format!("restarted on: {host}")), "{text}");
    // The constructor ran again: the state starts over.
    assert!(text.contains("count after restart: 1"), "{text}");
}

/// Reads a job's output to its end, SIGKILLing each node it names on a
/// `kill: node-…` line (node ids carry the pid, [`pid_of`]); checks that the job
/// succeeded and returns its output.
fn run_killing_named_nodes(mut run: std::process::Child) -> String {
    use std::io::BufRead;
    let mut text = String::new();
    for line in std::io::BufReader::new(run.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("kill: ") {
            let pid = pid_of(id);
            Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
        }
        text.push_str(&line);
        text.push('\n');
    }
    assert!(run.wait().unwrap().success(), "{text}");
    text
}

#[test]
fn crash_restarts_on_another_node_and_node_losses_share_one_budget() {
    let head = Head::start_with_cpus("1");
    head.add_worker_with("1", &["--resources", r#"{"spot": 1}"#]);
    head.add_worker_with("1", &["--resources", r#"{"spot": 1}"#]);
    let text = run_killing_named_nodes(head.spawn_testjob(&["restart-budget"]));
    assert!(text.contains("after a crash: 1"), "{text}");
    assert!(
        text.contains("after the node's loss: actor died: testjob::actors::Counter was lost with its node")
            && text.contains("has no restarts left"),
        "{text}"
    );
}

#[test]
fn an_actor_with_checkpoints_continues_from_its_snapshot_on_another_node() {
    let head = Head::start_with_cpus("1");
    head.add_worker_with("1", &["--resources", r#"{"spot": 1}"#]);
    head.add_worker_with("1", &["--resources", r#"{"spot": 1}"#]);
    // 4 M entries: a snapshot of ~40 MB, shipped to the owner in parts.
    let text = run_killing_named_nodes(head.spawn_testjob(&["checkpoint-node", "4000000"]));
    let text: String = text.lines().filter(|l| !l.starts_with("ledger: k")).map(|l| format!("{l}\n")).collect();
    assert!(text.contains("before: 4000051 entries"), "{text}");
    assert!(text.contains("moved: true\nafter: 4000051 entries"), "{text}");
    assert!(text.contains("state kept: true"), "{text}");
    // Its constructor ran once, on the first node.
    assert_eq!(text.matches("ledger: constructor ran").count(), 1, "{text}");
}

#[test]
fn calls_in_flight_on_a_dead_node_run_again_with_max_task_retries() {
    calls_in_flight_run_again(false);
}

#[test]
fn a_job_on_a_worker_runs_its_actors_over_direct_sessions_that_survive_a_dead_node() {
    // The same, the job on a worker: its actors' sessions go to the `spot`
    // workers directly, and the head, on declaring the killed one dead,
    // closes the way to it (`host_direct`'s watcher).
    calls_in_flight_run_again(true);
}

/// `actor-node-retry` on a head and three 1-CPU `spot` workers (plus, with
/// `job_on_worker`, a bigger worker the job lands on), killing the node
/// hosting the actor while calls are in flight.
fn calls_in_flight_run_again(job_on_worker: bool) {
    let head = Head::start_with_cpus("1");
    for _ in 0..3 {
        head.add_worker_with("1", &["--resources", r#"{"spot": 1}"#]);
    }
    if job_on_worker {
        head.add_worker("3");
    }
    let text = run_killing_named_nodes(head.spawn_testjob(&["actor-node-retry"]));
    if job_on_worker {
        assert!(head.worker_logs().contains("reached node "), "no direct connection in:\n{}", head.worker_logs());
    }
    // With a retry, the slow call and the one queued behind it ran again
    // on the restarted actor (its constructor ran again: 0 + 1).
    assert!(text.contains("retries 1: slow: 4000\nretries 1: after: 1\nretries 1: moved: true"), "{text}");
    // Without, both fail naming the loss; the actor itself restarted.
    assert!(
        text.contains(
            "retries 0: slow: error: actor died: testjob::actors::Counter was lost with the node hosting it while running slow"
        ),
        "{text}"
    );
    assert!(text.contains("retries 0: after: error: actor died:") && text.contains("retries 0: moved: true"), "{text}");
}

#[test]
fn placement_groups_spread_and_pack_bundles_over_nodes() {
    let head = Head::start_with_cpus("1");
    head.add_worker("2");
    head.add_worker("2");
    let run = |args: &[&str]| {
        let out = head.run(&guests().testjob, args);
        assert_code(&out, 0);
        stdout(&out)
    };
    let text = run(&["groups", "strict-spread", "3"]);
    assert!(text.contains("group nodes: 3") && text.contains("tasks ran in their bundles: 3"), "{text}");
    assert!(text.contains("actor ran in its bundle") && text.contains("removed"), "{text}");
    let text = run(&["groups", "pack", "2"]);
    assert!(text.contains("group nodes: 1") && text.contains("tasks ran in their bundles: 2"), "{text}");
    let text = run(&["groups", "strict-pack", "3"]);
    assert!(text.contains("group failed: invalid argument: no node has room for all 3 bundles together"), "{text}");
    let text = run(&["groups", "strict-spread", "4"]);
    assert!(text.contains("on a node of its own"), "{text}");
    // Removing a group (and a job ending) gives the resources back.
    let status = head.status_text();
    assert!(!status.contains("_group_"), "{status}");
}

#[test]
fn the_head_survives_a_crash_with_its_workers_and_detached_actors() {
    let mut head = Head::start_with_cpus("1");
    head.add_worker("2");
    let run = |head: &Head, args: &[&str]| head.run(&guests().testjob, args);
    let text = stdout(&run(&head, &["detached-create"]));
    assert!(text.contains("keeper: 105"), "{text}");
    // It outlives the job that made it.
    let text = stdout(&run(&head, &["detached-use"]));
    assert!(text.contains("keeper: 106"), "{text}");
    // The job runs on the worker (the bigger node), which asks the head
    // for the detached actors' names.
    assert!(text.contains(r#"named: ["keeper"]"#), "{text}");
    // A task of the job on the head finds it through the job's node.
    assert!(text.contains("keeper from another node: 206"), "{text}");
    assert!(text.contains(r#"named from another node: ["keeper"]"#), "{text}");
    // One taking snapshots, which the head keeps on disk.
    let text = stdout(&run(&head, &["detached-ledger", "a"]));
    assert!(text.contains("ledger: 2 entries, sum 11, totals {\"a\": 10}"), "{text}");
    let text = stdout(&run(&head, &["detached-ledger", "b"]));
    assert!(text.contains("ledger: 3 entries, sum 21"), "{text}");

    head.crash_and_restart("1");
    // The worker notices the old head is gone and joins the new one.
    wait_until(
        Duration::from_secs(60),
        || head.status_text().matches("(alive)").count() >= 2,
        || format!("the worker did not rejoin: {}", head.status_text()),
    );
    // The detached actor is back under its name, re-created by its
    // constructor (its state starts over from the recorded arguments).
    let out = run(&head, &["detached-use"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("keeper: 101"), "{}", stdout(&out));
    assert!(stdout(&out).contains(r#"named: ["keeper", "ledger"]"#), "{}", stdout(&out));
    // The one with snapshots continues where it was: both earlier entries
    // are there.
    let text = stdout(&run(&head, &["detached-ledger", "c"]));
    assert!(text.contains("ledger: 4 entries, sum 31, totals {\"a\": 10, \"b\": 10, \"c\": 10}"), "{text}");
    let out = run(&head, &["detached-kill"]);
    assert_code(&out, 0);
    let out = run(&head, &["detached-use"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("no actor named \"keeper\""), "{}", stderr(&out));
}

#[test]
fn objects_handed_to_a_detached_actor_outlive_their_owners_node() {
    use std::io::BufRead;
    // The job runs on the worker (the biggest node), so it owns its objects
    // there; the detached actor it hands refs to is kept by the head.
    let head = Head::start_with_cpus("1");
    let worker = node_id(head.add_worker("3"));
    let mut run = head.spawn_testjob(&["vault-fill"]);
    let mut lines = std::io::BufReader::new(run.stdout.take().unwrap()).lines();
    let held = lines.next().unwrap().unwrap();
    assert_eq!(held, "vault holds: 2");
    let node = lines.next().unwrap().unwrap();
    assert_eq!(node, format!("node: {worker}"));
    // The owner dies with its node (Ray's ObjectLost case).
    let pid = pid_of(&worker);
    Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(3), "the job was lost with its node");
    let out = head.run(&guests().testjob, &["vault-read"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("vault total: 42"), "{}", stdout(&out));
}

#[test]
fn a_job_on_a_worker_reaches_its_actors_from_every_node() {
    // The job lands on the biggest worker; its actor on the other one,
    // reached directly; a task next to the actor asks the job's node for the
    // actor's name, a worker-to-worker request (an upcall) that takes the
    // connection the job's node made and named (`Hello`).
    let head = Head::start_with_cpus("1");
    let special = node_id(head.add_worker_with("2", &["--resources", r#"{"special": 1}"#]));
    let home = node_id(head.add_worker_with("3", &["--resources", r#"{"elsewhere": 1}"#]));
    let out = head.run(&guests().testjob, &["actors-cluster"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    for line in [format!("actor on: {special}"), "bump_named on its node: 225".into(), "final: 225".into()] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
    }
    let out = head.run(&guests().testjob, &["whereami"]);
    assert!(stdout(&out).contains(&format!("node: {home}")), "{}", stdout(&out));
    let logs = head.worker_logs();
    assert!(logs.contains(&format!("node {home} connected directly from")), "{logs}");
}

#[test]
fn hostile_jobs_fail_alone_while_good_jobs_run_beside_them() {
    // One node, four jobs at once: one whose tasks loop, bomb memory and
    // recurse without end; one that floods 120 000 submissions while holding
    // every ref (more than wasmtime's default handle limit, and more than
    // the pending-task limit, so the driver waits); one that forges object,
    // actor and resource handles, uses stale ones and puts a list over the
    // size limit; and a well-behaved one. Each hostile act fails only its
    // own task with a clear error, every result is exact, and the node
    // serves a fifth job afterwards.
    let head = Head::start_with_flags("2", &["--node-timeout", "30"]);
    let spawn = |args: &[&str]| {
        let mut all = vec!["run", "--address", &head.address, "--token", &head.token, path(&guests().testjob), "--"];
        all.extend_from_slice(args);
        Command::new(wray_bin())
            .args(&all)
            .env("HOME", head.home.path())
            .env("XDG_CACHE_HOME", target_dir().join("test-cache"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let hostile = spawn(&["limits"]);
    let flood = spawn(&["flood", "120000"]);
    let forger = spawn(&["forged"]);
    let good = spawn(&["spread", "20", "50"]);
    let out = hostile.wait_with_output().unwrap();
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("loop: task testjob::tasks::spin failed: time limit exceeded"), "{text}");
    assert!(text.contains("memory: task testjob::tasks::hog failed: memory limit exceeded"), "{text}");
    assert!(text.contains("recursion: task testjob::tasks::recurse failed: stack overflow"), "{text}");
    assert!(text.contains("after limits: 4"), "{text}");
    let out = flood.wait_with_output().unwrap();
    assert_code(&out, 0);
    assert!(stdout(&out).contains("flood: 120000 tasks, sum 7200060000 (expected 7200060000)"), "{}", stdout(&out));
    let out = forger.wait_with_output().unwrap();
    assert_code(&out, 0);
    let text = stdout(&out);
    for line in [
        "stale ref: error: object lost: object ",
        "forged ref: error: forge: argument `fake`: object lost: object ffffffffffffffff0000000000000007.3 does not exist",
        "forged actor: error: task testjob::hostile::call_forged_actor failed: panicked at",
        "killed actor: error: actor died: testjob::actors::Counter was killed",
        "forged handle: error: task testjob::hostile::forged_handle failed:",
        "huge put: invalid argument: a value of 2147483649 bytes exceeds the object size limit of 2147483648 bytes",
        "after forgeries: 4",
    ] {
        assert!(text.lines().any(|l| l.starts_with(line)), "no line starting {line:?} in:\n{text}");
    }
    assert!(text.contains("does not exist in this job") && text.contains("unknown handle index"), "{text}");
    let out = good.wait_with_output().unwrap();
    assert_code(&out, 0);
    // Every square checked inside the job.
    assert!(stdout(&out).contains("spread ok: 20"), "{}", stdout(&out));
    let out = head.run(&guests().testjob, &["basics"]);
    assert_code(&out, 0);
}

/// `wray::data` on a head and two workers sharing a directory (`wray start
/// --dir`): write and read tasks run on every node, and the driver (on the
/// head) and an actor pool consume blocks made elsewhere.
#[test]
fn a_data_pipeline_spreads_over_the_nodes_that_share_a_directory() {
    let shared = tempfile::tempdir().unwrap();
    let grant = format!("{}::/work", shared.path().display());
    let head = Head::start_with_flags("1", &["--dir", &grant]);
    head.add_worker_with("1", &["--dir", &grant]);
    head.add_worker_with("1", &["--dir", &grant]);
    let out = head.run(&guests().testjob, &["data-cluster", "/work"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    let line = |prefix: &str| text.lines().find_map(|l| l.strip_prefix(prefix)).unwrap_or_else(|| panic!("{text}"));
    assert!(line("written: ").starts_with("400000 rows in "), "{text}");
    // range(400000) makes 7 blocks: with three CPU slots in the cluster they
    // cannot all have been written on one node.
    let writers: u32 = line("nodes that wrote: ").parse().unwrap();
    let readers: u32 = line("nodes that read: ").parse().unwrap();
    assert!(writers >= 2 && readers >= 2, "{text}");
    assert_eq!(line("even rows: "), "(200000, 39999800000.0)");
    assert_eq!(line("actor pool: "), "(200000, 40000000000.0)");
}

/// A remote job's standard output and standard error reach the client's
/// own two streams, the driver's and its tasks' alike.
#[test]
fn a_remote_job_s_two_streams_stay_apart() {
    let head = Head::start_with_cpus("1");
    let out = head.run(&guests().testjob, &["streams"]);
    assert_code(&out, 0);
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(o.contains("driver to stdout\n") && o.contains("task to stdout\n") && !o.contains("to stderr"), "{o}");
    assert!(e.contains("driver to stderr\n") && e.contains("task to stderr\n") && !e.contains("to stdout"), "{e}");
}

/// A trainer's two workers on different nodes reduce and report across the
/// network; SIGKILLing the worker node under one of them mid-run restarts
/// the group from the latest checkpoint on the nodes left, and the run ends
/// with the same metrics as an undisturbed one.
#[test]
fn a_trainer_survives_a_sigkilled_worker_node() {
    let head = Head::start_with_cpus("1");
    let workers = [head.add_worker_with("1", &[]), head.add_worker_with("1", &[])];
    let mut run = head.spawn_testjob(&["train-cluster", "killable"]);
    // The status lines are on standard error, the results on standard
    // output: a remote job's streams reach the client as they left the job.
    let lines = lines_of_both(&mut run);
    let mut seen = Vec::new();
    let next = |seen: &mut Vec<String>| match lines.recv_timeout(Duration::from_secs(60)) {
        Ok(line) => {
            seen.push(line.clone());
            Some(line)
        }
        Err(_) => None,
    };
    // "[train] cluster: worker ranks 0..2 on nodes ["node-…", "node-…"] (attempt 0)"
    let nodes_line = loop {
        match next(&mut seen) {
            Some(line) if line.contains("worker ranks 0..2 on nodes") => break line,
            Some(_) => {}
            None => panic!("no nodes line; output so far:\n{}", seen.join("\n")),
        }
    };
    // A worker node (never the head, where the driver runs) under a rank.
    let victim = *workers.iter().find(|pid| nodes_line.contains(&node_id(**pid))).expect(&nodes_line);
    loop {
        match next(&mut seen) {
            Some(line) if line.contains("cluster iteration 3 ") => break,
            Some(_) => {}
            None => panic!("no third iteration; output so far:\n{}", seen.join("\n")),
        }
    }
    Command::new("kill").args(["-KILL", &victim.to_string()]).status().unwrap();
    // Read to the end of the output (the job exits): a hang shows where it
    // stopped, and the head's view of the cluster at that moment.
    loop {
        match lines.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => seen.push(line),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let tasks = head.wray(&["list", "tasks", "--address", &head.address, "--token", &head.token]);
                let actors = head.wray(&["list", "actors", "--address", &head.address, "--token", &head.token]);
                let status = head.wray(&["status", "--address", &head.address, "--token", &head.token]);
                panic!(
                    "the training job stopped for 120 s after its worker node was killed; output so far:\n{}\n\
                     tasks:\n{}\nactors:\n{}\nstatus:\n{}",
                    seen.join("\n"),
                    stdout(&tasks),
                    stdout(&actors),
                    stdout(&status)
                );
            }
        }
    }
    let out = wait_for_exit(run, "the training job", Duration::from_secs(30));
    assert_code(&out, 0);
    let text = seen.join("\n");
    let line = |prefix: &str| text.lines().find_map(|l| l.strip_prefix(prefix)).unwrap_or_else(|| panic!("{text}"));
    let expected = line("expected total: ");
    assert_eq!(line("cluster: "), format!("total {expected} after 20 iterations, error None"), "{text}");
    let failures: u32 = line("failures: ").parse().unwrap();
    assert!(failures >= 1, "{text}");
}

/// An actor that found every node full waits as a movable demand: when a
/// node other than the job's frees up, it goes there instead of waiting for
/// the job's node for ever (a restarted worker group hung this way: the
/// job's node was held by the group's other member, waiting for it).
#[test]
fn a_waiting_actor_takes_room_that_frees_up_on_another_node() {
    let head = Head::start_with_cpus("1");
    head.add_worker_with("1", &[]);
    let out = head.run(&guests().testjob, &["waits-for-room"]);
    assert_code(&out, 0);
    let o = stdout(&out);
    assert!(o.contains("third actor waits while both nodes are full: true"), "{o}");
    assert!(o.contains("third actor placed on the freed node: true"), "{o}");
}

/// Boosted trees on two workers of different nodes: SIGKILLing the worker
/// node under one of them mid-run restarts the group from the last
/// checkpointed round on the nodes left, and the model equals one process's,
/// bit for bit.
#[test]
fn boosting_survives_a_sigkilled_worker_node() {
    let head = Head::start_with_cpus("1");
    let workers = [head.add_worker_with("1", &[]), head.add_worker_with("1", &[])];
    let mut run = head.spawn_testjob(&["learn-cluster"]);
    let lines = lines_of_both(&mut run);
    let mut seen = Vec::new();
    // Long enough for the head to notice the killed node.
    let mut next = |what: &str| loop {
        match lines.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => {
                seen.push(line.clone());
                if line.contains(what) {
                    break line;
                }
            }
            Err(_) => panic!("no line with {what:?}; output so far:\n{}", seen.join("\n")),
        }
    };
    // "[gbdt] worker ranks 0..2 on nodes ["node-…", "node-…"] (attempt 0)"
    let nodes_line = next("worker ranks 0..2 on nodes");
    let victim = *workers.iter().find(|pid| nodes_line.contains(&node_id(**pid))).expect(&nodes_line);
    next("[gbdt] round 6 of 30 checkpointed");
    Command::new("kill").args(["-KILL", &victim.to_string()]).status().unwrap();
    let restarted = next("restarting the worker group from round");
    let result = next("gbdt cluster: ");
    let out = wait_for_exit(run, "the boosting job", Duration::from_secs(60));
    assert_code(&out, 0);
    let text = seen.join("\n");
    assert!(restarted.contains("GbdtTrainer: worker rank"), "{text}");
    assert_eq!(result, "gbdt cluster: same model as one process: true", "{text}");
}

#[test]
fn a_head_keeps_running_after_whoever_read_its_token_stops_reading() {
    // `wray start --block | head -2`, or a supervisor that closes the pipe
    // once it has the address and token: the lines printed after (the
    // dashboard's URL) must not take the head down with a broken pipe.
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut head = std::process::Command::new(wray_bin())
        .args(["start", "--head", "--port", "0", "--dashboard-port", "0", "--block", "--data-dir"])
        .arg(dir.path())
        .env("HOME", dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let first = std::io::BufReader::new(head.stdout.take().unwrap()).lines().next().unwrap().unwrap();
    assert!(first.starts_with("address: "), "{first}");
    // The reader is gone now; the head prints its token and URL into the
    // closed pipe, then writes the URL to its data directory: once that
    // file exists, every line has gone into the closed pipe.
    let url = dir.path().join("dashboard");
    wait_until(
        Duration::from_secs(30),
        || url.exists() || head.try_wait().unwrap().is_some(),
        || "the head neither wrote its dashboard URL nor exited".into(),
    );
    let alive = head.try_wait().unwrap().is_none();
    let _ = head.kill();
    let _ = head.wait();
    assert!(alive, "the head exited when its stdout closed");
}
