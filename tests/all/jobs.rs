//! The programming model, end to end through `wray run`: tasks, refs,
//! actors, failures, limits and capabilities.

use crate::util::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[track_caller]
fn ok(flags: &[&str], args: &[&str]) -> String {
    let out = scenario(flags, args);
    assert_code(&out, 0);
    stdout(&out)
}

#[track_caller]
fn has(text: &str, line: &str) {
    assert!(text.lines().any(|l| l == line), "expected the line {line:?} in:\n{text}");
}

#[test]
fn tasks_refs_and_values() {
    let out = ok(&[], &["basics"]);
    has(&out, "add: 3");
    has(&out, "ref arg: 13");
    has(&out, "nested refs in arg: 10");
    has(&out, "refs returned by a task: 10");
    has(&out, "buffer round trip: true");
    has(&out, "buffer in task: 1000000 2999997");
    has(&out, r#"struct: Point { x: 3.0, label: "p", tags: [1, 2] }"#);
    has(&out, "counter: 7");
    has(&out, "actor id: 32 hex digits");
    has(&out, "local helper: 4");
    has(&out, "counter after tasks: 17");
    has(&out, "many: 2001000");
    has(&out, "chain: 300");
    has(&out, "fan-out: 800");
    has(&out, "wait splits: [1, 2] then [3], 1 left, 10 after a timeout");
    has(&out, "context task empty in driver: true");
}

#[test]
fn cluster_resources_follow_cpus_flag() {
    let out = ok(&["--cpus", "3"], &["basics"]);
    has(&out, "cluster CPU: 3");
    // wray::nodes(): the embedded runtime is one node, its own head.
    has(&out, "nodes: [head 3cpu no address alive=true free<=total=true]");
    // runtime_context().assigned_resources: what the caller holds.
    has(&out, r#"assigned: driver {}, task {"CPU": 0.5}"#);
}

#[test]
fn placement_groups_reserve_and_free_resources() {
    for strategy in ["pack", "spread", "strict-pack"] {
        let out = ok(&["--cpus", "4"], &["groups", strategy, "2"]);
        has(&out, "group nodes: 1");
        has(&out, "cpu reserved: 2");
        has(&out, "tasks ran in their bundles: 2");
        has(&out, "actor ran in its bundle");
        has(&out, "removed");
    }
    // One node cannot hold two bundles each on a node of its own, nor
    // more than it has.
    let out = ok(&["--cpus", "4"], &["groups", "strict-spread", "2"]);
    has(&out, "group failed: invalid argument: no node has room for bundle 1 ({CPU: 1}) on a node of its own");
    let out = ok(&["--cpus", "1"], &["groups", "pack", "2"]);
    has(&out, "group failed: invalid argument: no node has room for bundle 1 ({CPU: 1})");
}

/// A task that only an actor's end can make room for waits, and the job
/// is told why on stderr, once, naming the task and what the actors hold;
/// it runs once an actor is killed.
#[test]
fn a_task_waiting_on_actors_for_resources_is_warned_about() {
    let out = scenario(&["--cpus", "2"], &["stuck-behind-actors"]);
    assert_code(&out, 0);
    has(&stdout(&out), "the task waits while actors hold every CPU: true");
    has(&stdout(&out), "the task ran once an actor was killed: 7");
    let err = stderr(&out);
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("wray: warning:")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    for part in [
        "task testjob::tasks::add (asking {CPU: 1}) has waited 10s on node",
        "of the node's {CPU: 2}, actors and placement groups hold {CPU: 2}",
        "drop the handles of an actor no longer needed, or `wray::kill` it",
    ] {
        assert!(warnings[0].contains(part), "{part:?} not in {warnings:?}");
    }
}

/// Actors end once their last handle is gone — in the driver, a stored
/// value, a running task's arguments — after the calls queued to them, and
/// free their CPUs and names; one still waiting for room ends at once.
/// With `--cpus 2` every step but the second would wait for ever if they
/// did not.
#[test]
fn actors_end_when_their_last_handle_is_dropped() {
    let out = ok(&["--cpus", "2"], &["actor-lifetimes"]);
    has_lines(
        &out,
        &[
            "six 1-CPU actors in turn: [1, 11, 21, 31, 41, 51]",
            "calls queued before the handle went: [1, 2, 3, 4, 5]",
            "through a stored handle: 11",
            "found by name while a handle lives: true",
            "the running task's call: 12",
            "the name went with the last handle: true",
            "listed: []",
            "an actor holding the only handle calls it: 6",
            "the held actor ended with its holder: true",
            "a 2-CPU task after them: 7",
        ],
    );
}

#[test]
fn node_affinity_on_one_node_pins_to_it_and_names_a_missing_node() {
    let out = ok(&["--cpus", "2"], &["node-affinity-basics"]);
    has(&out, "pinned to the job's node runs there: true");
    has(
        &out,
        r#"pinned to a missing node: invalid argument: its node affinity names node "node-nowhere", which is not a live node of the cluster or never has {CPU: 1}"#,
    );
    assert!(
        out.lines().any(|l| l.starts_with("actor pinned to a missing node: ")
            && l.contains(r#"cannot be placed: invalid argument: its node affinity names node "node-nowhere""#)),
        "{out}"
    );
    has(&out, "soft affinity to a missing node runs: true");
}

#[test]
fn failures_name_the_function_and_cause() {
    let out = ok(&[], &["errors"]);
    has(&out, "err: task testjob::tasks::fail failed: boom");
    assert!(
        out.contains("panic: task testjob::tasks::explode failed: panicked at tests/programs/testjob/src/tasks.rs:"),
        "{out}"
    );
    assert!(out.contains("exploded with code 7"), "{out}");
    // A failed dependency fails its dependent with the same error.
    assert!(out.contains("dependent: task testjob::tasks::explode failed:") && out.contains("code 9"), "{out}");
    has(&out, "still fine: 0");
    assert!(out.contains("decode: decode error: cannot decode value as alloc::string::String"), "{out}");
}

#[test]
fn limits_fail_only_their_task() {
    let out = ok(&[], &["limits"]);
    assert!(out.contains("loop: task testjob::tasks::spin failed: time limit exceeded"), "{out}");
    assert!(out.contains("memory: task testjob::tasks::hog failed: memory limit exceeded"), "{out}");
    assert!(out.contains("recursion: task testjob::tasks::recurse failed: stack overflow"), "{out}");
    has(&out, "after limits: 4");
}

#[test]
fn queued_tasks_start_in_the_order_they_were_submitted() {
    let out = ok(&["--cpus", "1"], &["queue-order"]);
    has(&out, "started in submission order: true");
}

#[test]
fn generator_tasks_hand_over_items_as_they_are_made() {
    let out = ok(&[], &["generators"]);
    has(&out, "countdown: [3, 2, 1, 0]");
    has(&out, "one item: 1");
    has(&out, "first item 0 before the task ended: true");
    has(&out, "made here: true");
    has(&out, "then: 1,2");
    has(&out, "fails after two: 0, 1, error (no item 2)");
    has(&out, "after the error: true");
    has(&out, "its result: true");
    has(&out, "fails before any: true");
    has(&out, "checked: [0, 1, 2]");
    has(&out, "in batches: 200 items, values right: true, again: true, all ready: true, get_all: true");
    // What the SDK keeps of values handed out with refs is bounded.
    has(&out, "collected unread past the task's memory: Ok(true)");
    has(&out, "nested: [[0, 1], [10, 11], [20, 21]]");
    has(&out, "kept: 2");
    has(&out, "retried: [0, 1, 2, 3] in 2 attempts");
    has(&out, "read in a task: 10");
    has(&out, "next_timeout: an item, then timed out: true");
    has(&out, r#"cancelled: items, then Some(Err("task cancelled"))"#);
    has(&out, "dropped: the generator stopped early: true");
    // `generator_backpressure(2)`: the generator pauses with two items
    // unread, so when the reader takes one at most one more is made;
    // without it, all 30 are made before the late reader takes the first.
    let (bounded, unbounded) = items_made_ahead(&out, "backpressure");
    assert!(bounded <= 1.0 && unbounded == 29.0, "{bounded} and {unbounded} made ahead:\n{out}");
    // The same for an actor's generator method through a handle with the
    // window (`with_generator_backpressure`), and not through one without.
    let (bounded, unbounded) = items_made_ahead(&out, "method backpressure");
    assert!(bounded <= 1.0 && unbounded == 29.0, "method: {bounded} and {unbounded} made ahead:\n{out}");
    has(&out, "dropped while paused: stopped: true");
    has(&out, "first count 11 before the call ended: true");
    has(&out, "then counts: [12, 13], the actor at 13");
    has(&out, "dropped method: stopped early: true");
    has(&out, "counts read in a task: 10");
    has(&out, "dropped method in a task: stopped early: true");
    let (bounded, unbounded) = items_made_ahead(&out, "method backpressure in a task");
    assert!(bounded <= 1.0 && unbounded == 29.0, "method in a task: {bounded} and {unbounded} made ahead:\n{out}");
}

#[test]
fn actors_keep_state_order_calls_and_restart() {
    let out = ok(&[], &["actors"]);
    has(&out, "named via task: 100");
    has(&out, "get_actor: 100");
    has(&out, r#"named: ["a-second", "main-counter"]"#);
    has(&out, r#"actor names: Some("main-counter") None"#);
    has(&out, r#"named from a task: ["a-second", "main-counter"]"#);
    has(&out, r#"named after a kill: ["main-counter"]"#);
    has(&out, r#"missing name: invalid argument: no actor named "nobody" in this job"#);
    has(&out, r#"duplicate name: invalid argument: an actor named "main-counter" already exists in this job"#);
    has(&out, "in order: true");
    has(&out, "relay through 8 actors, 20 times: {36}");
    has(&out, "strict actor: later call finished first = false");
    has(&out, "concurrent actor: later call finished first = true");
    assert!(out.contains("crash: task Counter.crash failed: panicked"), "{out}");
    // The restart re-ran the constructor: state is back to its start.
    has(&out, "after restart: 10");
    assert!(out.contains("after restarts used up: actor died:") && out.contains("no restarts left"), "{out}");
    has(&out, "killed: actor died: testjob::actors::Counter was killed: wray::kill");
    has(&out, "killed while sleeping: actor died: testjob::actors::Counter was killed while running slow: wray::kill");
    has(&out, "kill took under a second: true");
    has(
        &out,
        "killed with calls queued: actor died: testjob::actors::Counter was killed while running slow: wray::kill",
    );
    has(&out, "queued calls failed after the kill: 1000 of 1000");
    has(&out, "the last queued call: actor died: testjob::actors::Counter was killed: wray::kill");
    has(&out, "a kill amid a stream of calls stops it: true");
    has(&out, "before exit_actor: 7");
    has(&out, "exit_actor: actor died: testjob::actors::Counter was killed while running quit: it called exit_actor");
    has(&out, "after exit_actor: actor died: testjob::actors::Counter was killed: it called exit_actor");
    has(&out, "constructor error: actor died: testjob::actors::Fragile: its constructor failed: refusing to start");
    has(&out, "constructor ok: pong");
}

#[test]
fn calls_interrupted_by_a_crash_are_retried_on_the_restarted_actor() {
    let out = ok(&[], &["task-retries"]);
    // Two crashes, two restarts, the third run succeeds.
    has(&out, "retried: Ok(3)");
    assert!(
        out.contains("not retried: Err(\"task Flaky.work failed: panicked at") && out.contains("flaky crash 1"),
        "{out}"
    );
    // Retries need restarts: with one restart the second crash is final.
    assert!(out.contains("restarts used up: Err(") && out.contains("flaky crash 2"), "{out}");
}

#[test]
fn actors_with_checkpoints_continue_from_their_snapshot_after_a_crash() {
    let run = scenario(&[], &["checkpoints"]);
    assert_code(&run, 0);
    let out = stdout(&run);
    let contains = |part: &str| assert!(out.contains(part), "expected {part:?} in:\n{out}");
    // Every call snapshotted: megabytes of heap state survive two crashes,
    // and the constructor ran once (the restarts restored instead).
    contains("before: 300021 entries, sum 149850197");
    has(&out, "state kept: true");
    has(&out, "state kept again: true");
    has(&out, "add after restore: 149851197");
    // The restored actor prints through the standard streams it held.
    has(&out, "ledger: k0 += 1000");
    // Every third call: back to the snapshot after the third (0 + 1 + 2 + 3).
    contains("every 3, after 5 adds and a crash: 4 entries, sum 6");
    // Holding an object ref disqualifies (said once, in the log); the
    // constructor runs again.
    let log = String::from_utf8_lossy(&run.stderr);
    assert_eq!(log.matches("no snapshot taken").count(), 1, "{log}");
    assert!(log.contains("Keeper): no snapshot taken: invalid argument: the actor holds 1 host resource(s)"), "{log}");
    has(&out, "keeper calls after a crash: 0");
    // Without checkpoints, Ray's behaviour: the state starts over.
    contains("without checkpoints: 1 entries, sum 0");
    // Constructors: once for each checkpointed ledger (their restarts
    // restored), twice for the plain one.
    assert_eq!(out.matches("ledger: constructor ran").count(), 4, "{out}");
}

#[test]
fn cancel_and_timeouts() {
    let out = ok(&[], &["cancel"]);
    has(&out, "cancelled: task cancelled");
    has(&out, "cancel took under a second: true");
    has(&out, "cancelled while waiting for its argument: task cancelled");
    has(&out, "that cancel took under a second: true");
    has(&out, "cancelled spin: task cancelled");
    has(&out, "wait timeout: 0 1");
    has(&out, "get timeout: timed out");
    has(&out, "the task went on: Ok(300)");
    // Time blocked in `get` is not execution time.
    has(&out, "blocked in get past its time limit: Ok(900)");
}

#[test]
fn nested_tasks_do_not_deadlock_one_cpu() {
    let out = ok(&["--cpus", "1"], &["nested"]);
    has(&out, "nested: 16");
}

#[test]
fn an_actor_call_reads_an_earlier_call_s_result_from_the_same_batch() {
    // An actor settles the results of calls run back to back together
    // (`RESULT_BATCH`); a call waiting for one of them lets them go first.
    let out = ok(&["--timeout", "60s"], &["actor-reads-its-own-results"]);
    // 2 × (50 + 51 + 52 + 53 + 54) + 5.
    has(&out, "own results read: 525");
}

#[test]
fn a_dropped_ref_is_released_while_its_guest_computes() {
    // Drops are released in batches (`RELEASE_BATCH`), but never later
    // than the next epoch tick of a guest that keeps computing.
    let out = ok(&[], &["release-while-computing"]);
    has(&out, "watched alive: true");
    has(&out, "freed while the dropper computed: true");
}

#[test]
fn objects_spill_to_disk_and_come_back() {
    // 32 MiB of objects through an 8 MiB budget.
    let out = ok(&["--object-store-memory", "8MiB"], &["spill"]);
    has(&out, "spill: 32 of 32 objects intact");
}

#[test]
fn a_spill_directory_in_use_is_refused_at_start() {
    // The first process holds the directory while its driver spins; the
    // spill database inside is only made by a first spill, so what is
    // refused here is the directory itself.
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("spill");
    let job = guests().testjob.clone();
    let mut holder = Command::new(wray_bin())
        .args(["run", "--timeout", "60s", "--spill-dir", path(&spill), path(&job), "--", "spin-main"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = spill.join("wray-spill.lock");
    wait_until(Duration::from_secs(30), || lock.exists(), || format!("{} was never taken", path(&spill)));
    let out = scenario(&["--spill-dir", path(&spill)], &["basics"]);
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains(&format!("another process is using {} as its spill directory", path(&spill))), "{err}");
    // Free again once its holder is gone.
    let out = ok(&["--spill-dir", path(&spill)], &["basics"]);
    has(&out, "add: 3");
}

#[test]
fn a_full_disk_is_a_clear_error_and_loses_nothing() {
    // The spill directory is a 4 MiB tmpfs mounted in a private mount
    // namespace (as root, or in a user namespace otherwise): a real
    // ENOSPC from the kernel, nothing simulated.
    let mnt = tempfile::tempdir().unwrap();
    let job = path(&guests().testjob);
    let script = format!(
        "mount -t tmpfs -o size=4m tmpfs {m} && exec {wray} run --object-store-memory 4MiB --spill-dir {m}/spill {job} -- store-full",
        m = path(mnt.path()),
        wray = wray_bin(),
    );
    let run = |ns: &str| Command::new("unshare").args([ns, "sh", "-c", &script]).output().unwrap();
    let mut out = run("-m");
    if !out.status.success() && stderr(&out).contains("unshare") {
        out = run("-rm");
    }
    assert_code(&out, 0);
    let text = stdout(&out);
    let refused = text.lines().find(|l| l.starts_with("refused after ")).unwrap_or_else(|| panic!("{text}"));
    // 4 MiB in memory and at most 4 MiB on the disk: refused in between.
    let n: usize = refused["refused after ".len()..].split(' ').next().unwrap().parse().unwrap();
    assert!((4..=9).contains(&n), "{text}");
    assert!(refused.contains("object store full:") && refused.contains("No space left on device"), "{text}");
    assert!(text.contains("task result: object store full:"), "{text}");
    has(&text, &format!("intact: {n} of {n}"));
    has(&text, "after freeing half: true");
    // Logged once while it lasts, not once per object.
    assert_eq!(stderr(&out).matches("cannot spill objects to disk").count(), 1, "{}", stderr(&out));
}

#[test]
fn no_filesystem_without_a_grant() {
    let out = ok(&[], &["read", "/etc/passwd"]);
    assert!(out.starts_with("cannot read /etc/passwd"), "{out}");
    let out = ok(&[], &["read-main", "/etc/passwd"]);
    assert!(out.starts_with("main cannot read"), "{out}");
    let out = ok(&["--dir", "/etc::/etc"], &["read", "/etc/passwd"]);
    assert!(out.starts_with("read ") && out.contains(" bytes"), "{out}");
}

#[test]
fn no_environment_without_a_grant() {
    let out = ok(&[], &["env", "HOME"]);
    has(&out, "env: Err(NotPresent)");
    has(&out, "task env: None");
    let out = ok(&["--env", "WRAY_TEST=yes"], &["env", "WRAY_TEST"]);
    has(&out, r#"env: Ok("yes")"#);
    has(&out, r#"task env: Some("yes")"#);
}

#[test]
fn output_streams_from_the_guest() {
    let out = scenario(&[], &["print"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "line 0\nline 1\nline 2\n");
    assert!(stderr(&out).contains("to stderr"));
}

#[track_caller]
fn job_fails(flags: &[&str], args: &[&str], expect: &str) {
    let out = scenario(flags, args);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("testjob.wasm"), "the message should name the job: {err}");
    assert!(err.contains(expect), "expected {expect:?} in: {err}");
    assert!(!err.contains("RUST_BACKTRACE"), "the host panicked: {err}");
}

#[test]
fn a_panicking_driver_fails_the_job() {
    job_fails(&[], &["panic-main"], "panicked at tests/programs/testjob/src/lib.rs");
    job_fails(&[], &["panic-main"], "the driver gave up");
}

#[test]
fn a_driver_error_fails_the_job() {
    job_fails(&[], &["fail-main"], "main returned an error: invalid argument: the driver returned an error");
}

/// `std::process::exit(n)` in the driver ends the job with status n and at
/// most a one-line message: no wasm backtrace, no "failed".
#[test]
fn a_driver_calling_exit_ends_the_job_with_its_status() {
    for status in [0, 3, 42] {
        let out = scenario(&[], &["exit", &status.to_string()]);
        assert_code(&out, status);
        assert!(stdout(&out).contains(&format!("exiting with {status}")), "{}", stdout(&out));
        let err = stderr(&out);
        assert!(err.lines().count() <= 1, "more than one line for exit({status}):\n{err}");
        assert!(!err.contains("wasm") && !err.contains("backtrace"), "{err}");
    }
    // In a task, exit fails that task only.
    let out = scenario(&[], &["exit-task"]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("exit-task: task testjob::tasks::exit_with failed: the guest called exit(4)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn an_endless_driver_is_stopped_by_the_timeout() {
    let start = std::time::Instant::now();
    job_fails(&["--timeout", "1s"], &["spin-main"], "time limit exceeded");
    assert!(start.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn job_wide_limits_apply_to_tasks() {
    job_fails(&["--memory-limit", "64MiB"], &["hog-task"], "task testjob::tasks::hog failed: memory limit exceeded");
    job_fails(&["--timeout", "500ms"], &["spin-task"], "task testjob::tasks::spin failed: time limit exceeded");
    job_fails(&[], &["recurse-task"], "task testjob::tasks::recurse failed: stack overflow");
}

/// How many of the scenario's four tasks (300 ms each) ran at one instant.
fn most_at_once(cpus: &str) -> usize {
    let out = ok(&["--cpus", cpus], &["parallel"]);
    let n = out.trim().strip_prefix("parallel: at most ").and_then(|s| s.strip_suffix(" at once"));
    n.and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{out}"))
}

#[test]
fn tasks_run_in_parallel_up_to_the_cpu_count() {
    // 4 tasks of 300 ms, 1 CPU each: one at a time on 1 CPU, all four
    // together on 4 (they are submitted at once and each outlasts the
    // others' start by far).
    assert_eq!(most_at_once("1"), 1, "with 1 CPU the tasks must run one at a time");
    assert_eq!(most_at_once("4"), 4, "with 4 CPUs the tasks must all run at once");
}

#[test]
fn ctrl_c_cancels_a_running_job() {
    // The task says when it spins: Ctrl-C then lands on a running task.
    let tmp = tempfile::tempdir().unwrap();
    let (child, _stdout) = spinning_job_in(tmp.path());
    let interrupted = std::time::Instant::now();
    send("-INT", &child);
    let out = wait_for_exit(child, "wray run after Ctrl-C", Duration::from_secs(10));
    assert_code(&out, 130);
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    assert!(interrupted.elapsed() < Duration::from_secs(10));
    assert_eq!(spill_dirs_in(tmp.path()), Vec::<String>::new(), "removed on the way out");
}

/// A signal while the job's component compiles (seconds for a new one)
/// ends the run at once with the signal's status, before the job starts —
/// also when serving, where a job started after the server shut down used
/// to fail in `serve::run` — and the spill directory goes.
#[test]
fn a_signal_while_the_component_compiles_stops_the_run_at_once() {
    for (command, signal, code) in [("serve", "-INT", 130), ("run", "-TERM", 143)] {
        let tmp = tempfile::tempdir().unwrap();
        let mut args = vec![command];
        if command == "serve" {
            args.extend(["run", "--port", "0"]);
        }
        // Not from the cache: compiled now, for seconds.
        args.extend(["--no-cache", path(&guests().testjob), "--", "serve-faults"]);
        let child = std::process::Command::new(wray_bin())
            .args(&args)
            .env("TMPDIR", tmp.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The runtime exists (its spill directory), so the compile runs.
        wait_until(
            Duration::from_secs(60),
            || !spill_dirs_in(tmp.path()).is_empty(),
            || format!("wray {command} made no spill directory"),
        );
        let signalled = std::time::Instant::now();
        send(signal, &child);
        let out = wait_for_exit(child, "wray during the compile", Duration::from_secs(10));
        assert_code(&out, code);
        assert!(signalled.elapsed() < Duration::from_secs(5), "{:?}", signalled.elapsed());
        assert!(!stderr(&out).contains("serving HTTP"), "{}", stderr(&out));
        assert_eq!(spill_dirs_in(tmp.path()), Vec::<String>::new(), "removed on the way out");
    }
}

/// Sends `signal` (`-INT`, `-TERM`, `-KILL`) to `child`.
fn send(signal: &str, child: &std::process::Child) {
    let status = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(status.success(), "kill {signal} {}", child.id());
}

/// The spill directories `wray run` made for itself in `tmp` (its TMPDIR).
fn spill_dirs_in(tmp: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(wray_runtime::TEMP_SPILL_PREFIX))
        .collect();
    names.sort();
    names
}

/// Starts `wray run testjob.wasm -- spin-task` with `tmp` as its TMPDIR and
/// returns once its task spins (its runtime, and so its spill directory,
/// exists by then), with the lines it writes to stdout from then on.
fn spinning_job_in(tmp: &Path) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = std::process::Command::new(wray_bin())
        .args(["run", path(&guests().testjob), "--", "spin-task"])
        .env("XDG_CACHE_HOME", target_dir().join("test-cache"))
        .env("TMPDIR", tmp)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(child.stdout.take().unwrap());
    wait_for_line(&lines, "spinning", Duration::from_secs(60));
    (child, lines)
}

/// SIGTERM — what `kill`, `timeout`, systemd and Kubernetes send — stops a
/// job as Ctrl-C does: the job is cancelled and the runtime cleans up. Left
/// to its default action it killed `wray run` outright, and the spill
/// directory with whatever had been spilled stayed in the temp directory.
#[test]
fn sigterm_cancels_a_running_job_and_its_spill_directory_goes() {
    let tmp = tempfile::tempdir().unwrap();
    let (child, _stdout) = spinning_job_in(tmp.path());
    assert_eq!(spill_dirs_in(tmp.path()).len(), 1, "a running job's spill directory");
    send("-TERM", &child);
    let out = wait_for_exit(child, "wray run after SIGTERM", Duration::from_secs(10));
    assert_code(&out, 143);
    assert!(stderr(&out).contains("terminated"), "{}", stderr(&out));
    assert_eq!(spill_dirs_in(tmp.path()), Vec::<String>::new(), "removed on the way out");
}

/// A process killed outright cannot clean up: the next run in the same
/// temp directory removes what it left, and leaves a running one's alone.
#[test]
fn a_killed_runs_spill_directory_is_removed_by_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (killed, _) = spinning_job_in(tmp.path());
    send("-KILL", &killed);
    let _ = wait_for_exit(killed, "wray run after SIGKILL", Duration::from_secs(10));
    let left = spill_dirs_in(tmp.path());
    assert_eq!(left.len(), 1, "what the killed run left");
    let (running, _stdout) = spinning_job_in(tmp.path());
    let theirs = spill_dirs_in(tmp.path());
    assert!(theirs.len() == 1 && theirs != left, "the killed run's is gone once the next one starts: {theirs:?}");
    let out =
        wray_with(&["run", path(&guests().pi)], &[("TMPDIR", tmp.path().to_str().unwrap())], Duration::from_secs(120));
    assert_code(&out, 0);
    assert_eq!(spill_dirs_in(tmp.path()), theirs, "a running job's spill directory stays");
    send("-TERM", &running);
    assert_code(&wait_for_exit(running, "wray run after SIGTERM", Duration::from_secs(10)), 143);
    assert_eq!(spill_dirs_in(tmp.path()), Vec::<String>::new());
}

/// `wray::util::Pool`, Ray's multiprocessing pool: every call form returns
/// what Python's would, at most `processes` chunks run at once, and a
/// panicking function fails the iterator's next item with the panic.
#[test]
fn a_pool_maps_in_parallel_tasks() {
    let out = scenario(&[], &["pool"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    for want in [
        "map: [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]",
        "imap in order: true",
        "imap_unordered has all: true",
        "starmap: [3, 7, 0]",
        "apply_async: ready true value 144",
        "apply: 42",
        "naps: at most 2 at once",
        "panicking item: 10 results before the error; task wray_guest_core::util::pool_chunk failed: panicked at",
    ] {
        assert!(text.contains(want), "{want}\n{text}");
    }
    assert!(text.contains("unlucky 13"), "{text}");
}

/// Processes that meet a new job at the same moment (a cluster's nodes
/// started on one machine, parallel runs of a rebuilt job) compile it once:
/// one holds the cache's lock for it while the others wait, then load its
/// artifact.
#[test]
fn processes_loading_a_new_job_at_once_compile_it_once() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A job no cache has seen: the pi example with a custom section of its
    // own appended (id 0, its size, the name's size and name, a payload).
    let mut bytes = std::fs::read(&guests().pi).unwrap();
    let nonce = format!("{:?}", std::time::SystemTime::now());
    let name = b"wray-test-nonce";
    let body_len = 1 + name.len() + nonce.len();
    assert!(body_len < 128 && name.len() < 128, "one-byte LEB128 sizes");
    bytes.extend([0u8, body_len as u8, name.len() as u8]);
    bytes.extend(name);
    bytes.extend(nonce.as_bytes());
    let job = dir.path().join("pi.wasm");
    std::fs::write(&job, &bytes).unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(wray_bin())
                .args(["run", path(&job), "--", "2"])
                .env("XDG_CACHE_HOME", cache.path())
                .env("WRAY_LOG", "wray_host=debug")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut compiles = 0;
    for child in children {
        let out = wait_for_exit(child, "wray run of a new job", Duration::from_secs(120));
        assert_code(&out, 0);
        compiles += stderr(&out).lines().filter(|l| l.contains("compiling") && l.contains("bytes of Wasm")).count();
    }
    assert_eq!(compiles, 1, "three processes loading the same new job at once");
    let left: Vec<_> = std::fs::read_dir(cache.path().join("wray"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(left.len() == 1 && left[0].ends_with(".cwasm"), "the artifact alone, no lock left: {left:?}");
}
