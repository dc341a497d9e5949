//! The examples run and print what their READMEs promise.

use crate::util::*;

fn run_example(job: &std::path::Path, args: &[&str]) -> String {
    run_ok(job, &[], args, &[]).0
}

/// The elapsed seconds on each `name:\t address (S seconds)` line of the
/// section that `heading` opens, with the name and address.
fn lookups(out: &str, heading: &str) -> Vec<(String, String, Option<f64>)> {
    let mut lines = out.lines().skip_while(|l| *l != heading).skip(1);
    let mut found = Vec::new();
    for line in lines.by_ref().take_while(|l| !l.starts_with('#')) {
        let (name, rest) = line.split_once(":\t ").unwrap_or_else(|| panic!("bad line {line:?} in:\n{out}"));
        let (address, secs) = match rest.split_once(" (") {
            Some((a, s)) => {
                (a, Some(s.trim_end_matches(" seconds)").parse().unwrap_or_else(|_| panic!("bad {line:?}"))))
            }
            None => (rest, None),
        };
        found.push((name.to_string(), address.to_string(), secs));
    }
    found
}

/// The seed's DNS tutorial: its table, its names and its output lines.
#[test]
fn dns_tasks_beat_sequential_lookups() {
    check_dns(&run_example(&guests().dns, &[]));
}

/// The DNS tutorial's four steps, as the Rust and the Python port print
/// them: the same names and addresses, the lookups one after another slower
/// than the ones as tasks.
pub(crate) fn check_dns(out: &str) {
    let table = [("google.com", "4.3.2.1"), ("microsoft.com", "4.3.2.2"), ("amazon.com", "4.3.2.3")];
    let names = |found: &[(String, String, Option<f64>)]| -> Vec<(String, String)> {
        found.iter().map(|(n, a, _)| (n.clone(), a.clone())).collect()
    };
    let expected: Vec<_> = table.iter().map(|(n, a)| (n.to_string(), a.to_string())).collect();

    let sequential = lookups(out, "# lookups one after another");
    assert_eq!(names(&sequential), expected, "{out}");
    for (i, (_, _, secs)) in sequential.iter().enumerate() {
        let secs = secs.expect("elapsed seconds");
        let due = 0.5 * (i + 1) as f64;
        assert!(secs >= due, "lookup {i} done after {secs} s, before its {due} s of sleeps\n{out}");
    }

    let tasks = lookups(out, "# lookups as tasks, all started before waiting");
    assert_eq!(names(&tasks), expected, "{out}");
    // Each lookup sleeps 0.5 s: if any two had run one after the other, the
    // last answer would come after 1 s.
    assert!(tasks.iter().all(|(.., s)| s.unwrap() < 1.0), "the three tasks did not overlap\n{out}");

    let mut all = expected.clone();
    all.extend([("twitter.com".to_string(), "4.3.2.4".to_string()), ("instagram.com".into(), "4.3.2.5".into())]);
    let server = lookups(out, "# a DNSServer actor");
    assert_eq!(names(&server), all, "{out}");
    assert!(server.iter().all(|(.., s)| s.is_none()), "{out}");

    let through_actor = lookups(out, "# lookups as tasks asking the actor");
    assert_eq!(names(&through_actor), all, "{out}");
    assert!(through_actor.iter().all(|(.., s)| s.unwrap() < 1.0), "the five tasks did not overlap\n{out}");
}

#[test]
fn retrieve_in_parallel() {
    let out = run_example(&guests().retrieve, &[]);
    let seq = number_after(&out, "sequential:");
    let par = number_after(&out, "as tasks:");
    // Item i sleeps 0.1·i s: 2.8 s one after the other; as tasks, the two
    // longest (0.7 s and 0.6 s) would take 1.3 s if they had not overlapped.
    assert!(seq >= 2.8, "sequential took {seq} s, less than its sleeps\n{out}");
    assert!(par < 1.3, "the longest tasks did not overlap: {par} s\n{out}");
    assert!(
        out.contains(r#"items: ["item-0", "item-1", "item-2", "item-3", "item-4", "item-5", "item-6", "item-7"]"#),
        "{out}"
    );
}

#[test]
fn pi_estimate_is_close() {
    let out = run_example(&guests().pi, &[]);
    let line = out.lines().find(|l| l.starts_with("100 tasks x 1000000 samples: pi ~ ")).expect(&out);
    let pi: f64 = line.split("pi ~ ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!((pi - std::f64::consts::PI).abs() < 0.005, "{line}");
}

#[test]
fn wait_processes_results_as_they_finish() {
    let out = run_example(&guests().wait, &[]);
    assert!(out.contains("completion order: [100, 200, 300, 400]"), "{out}");
    assert!(out.contains("after a 100 ms timeout: 0 ready, 1 pending"), "{out}");
    assert!(out.contains("nested: sum of squares 1..=10 = 385"), "{out}");
}

#[test]
fn wait_nested_tasks_with_one_cpu() {
    let job = &guests().wait;
    let out = wray(&["run", "--cpus", "1", path(job)]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("nested: sum of squares 1..=10 = 385"), "{}", stdout(&out));
}

/// A plain WASI program (`fn main`, no wray SDK), built by `wray build` into
/// a wasi:cli/command component, runs as a job as under `wasmtime run`: its
/// arguments after its name, the job's `--env` and `--dir` grants, its
/// standard input, its output; a failure exits 1; the job's limits hold.
#[test]
fn a_wasi_command_runs_as_a_job() {
    let wc = guests().wasi_command.clone();
    let data = format!("{}::/data", workspace().join("examples/data").display());
    // `--env NAME` passes wray's own value, as `wasmtime run --env NAME`.
    let out = wray_with(
        &[
            "run",
            "--dir",
            &data,
            "--env",
            "WC_REQUESTED_BY",
            path(&wc),
            "--",
            "/data/winequality-red.csv",
            "/data/breast_cancer.csv",
        ],
        &[("WC_REQUESTED_BY", "tests")],
        std::time::Duration::from_secs(60),
    );
    assert_code(&out, 0);
    // `wc`'s own figures for the two files.
    let lines: Vec<Vec<String>> =
        stdout(&out).lines().map(|l| l.split_whitespace().map(str::to_string).collect()).collect();
    assert_eq!(lines[0], ["1600", "1608", "91969", "/data/winequality-red.csv"], "{}", stdout(&out));
    assert_eq!(lines[1], ["570", "606", "121385", "/data/breast_cancer.csv"], "{}", stdout(&out));
    assert_eq!(lines[2], ["2170", "2214", "213354", "total"], "{}", stdout(&out));
    assert_eq!(lines[3].join(" "), "requested by tests");

    // Without files, `wc` counts its standard input: `wray run`'s own.
    let mut child = std::process::Command::new(wray_bin())
        .args(["run", path(&wc)])
        .env("XDG_CACHE_HOME", target_dir().join("test-cache"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"one two\nthree\n").unwrap();
    let out = wait_for_exit(child, "wray run wc.wasm < text", std::time::Duration::from_secs(60));
    assert_code(&out, 0);
    assert_eq!(stdout(&out).split_whitespace().collect::<Vec<_>>(), ["2", "3", "14"], "{}", stderr(&out));

    // Nothing outside the grants: the file is not there, and the program
    // says so and fails.
    let out = wray(&["run", path(&wc), "--", "/data/winequality-red.csv"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("wc: /data/winequality-red.csv: No such file or directory"), "{}", stderr(&out));

    // A job's memory limit stops it: `wc` reading an endless file.
    let out = wray(&["run", "--memory-limit", "64MiB", "--dir", "/dev::/dev", path(&wc), "--", "/dev/zero"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("memory limit exceeded"), "{}", stderr(&out));
}

/// `wray build` of a crate with two binaries asks which one, and builds the
/// one `--bin` names into a command that runs.
#[test]
fn build_takes_the_binary_named_by_bin() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::copy(workspace().join("rust-toolchain.toml"), root.join("rust-toolchain.toml")).unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"twobins\"\nversion = \"0.1.0\"\nedition = \"2024\"\n[workspace]\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("src/bin")).unwrap();
    std::fs::write(root.join("src/main.rs"), "fn main() { println!(\"first\"); }\n").unwrap();
    std::fs::write(
        root.join("src/bin/second.rs"),
        "fn main() { println!(\"second {:?}\", std::env::args().nth(1)); }\n",
    )
    .unwrap();
    let target = format!("{}", target_dir().join("guests").display());
    let build = |extra: &[&str]| {
        let mut args = vec!["build"];
        args.extend_from_slice(extra);
        args.push(path(root));
        wray_with(&args, &[("CARGO_TARGET_DIR", &target)], std::time::Duration::from_secs(600))
    };
    let out = build(&[]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("builds 2 binaries (") && err.contains("name the one to build with --bin NAME"), "{err}");
    assert!(err.contains("twobins") && err.contains("second"), "{err}");
    let out = build(&["--bin", "second"]);
    assert_code(&out, 0);
    let second = stdout(&out).lines().last().unwrap().trim().to_string();
    assert!(second.ends_with("second.wasm"), "{second}");
    let out = wray(&["run", &second, "--", "hello"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out).trim(), "second Some(\"hello\")");
}

/// WebAssembly text runs as `wasmtime run` takes it: the classic preview-1
/// hello world written by hand; text that does not parse is named with its
/// line and column, and text that is not UTF-8 is refused.
#[test]
fn webassembly_text_runs_as_a_job() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &[u8]| {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        file
    };
    let hello = write(
        "hello.wat",
        br#";; fd_write of one line, from WASI preview 1
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  (export "memory" (memory 0))
  (data (i32.const 8) "hello from text\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 8))
    (i32.store (i32.const 4) (i32.const 16))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 100)))))
"#,
    );
    let out = wray(&["run", path(&hello)]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "hello from text\n");
    let bad = write("bad.wat", b"(module\n  (func (export \"_start\")\n    (i32.bogus 1)))\n");
    let out = wray(&["run", path(&bad)]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("is WebAssembly text that cannot be read: unknown operator"), "{}", stderr(&out));
    assert!(stderr(&out).contains("bad.wat:3:6"), "{}", stderr(&out));
    let binary = write("noise.wat", &[0xff, 0xfe, 0x28, 0x00, 0x80, 0x81, 0x82, 0x83, 0x84]);
    let out = wray(&["run", path(&binary)]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("input bytes aren't valid utf-8"), "{}", stderr(&out));
    // A job built with another wray's SDK, importing a wray function this
    // wray does not have, is refused with the likely cause.
    let skew = write(
        "skew.wat",
        b"(component\n  (import \"wray:runtime/actors@0.1.0\" (instance (export \"from-the-future\" (func)))))\n",
    );
    let out = wray(&["run", path(&skew)]);
    assert_code(&out, 2);
    for part in ["instance export `from-the-future`", "built with the SDK of another wray than this one"] {
        assert!(stderr(&out).contains(part), "{part:?} not in {}", stderr(&out));
    }
}

/// The same `wc` built for wasm32-wasip1 — a core module importing WASI
/// preview 1, what TinyGo, Zig and older wasi-sdk targets write — runs too:
/// `wray run` adapts it into a command with wasmtime's adapter, as
/// `wasmtime run` does.
#[test]
fn a_wasi_preview1_program_runs_as_a_job() {
    let wc = wc_preview1();
    assert_eq!(&std::fs::read(&wc).unwrap()[..8], b"\0asm\x01\0\0\0", "a core module, not a component");
    let data = format!("{}::/data", workspace().join("examples/data").display());
    for _ in 0..2 {
        // The second run compiles nothing: the adapted module's artifact is
        // cached under the module's own hash.
        let out = wray(&["run", "--dir", &data, path(&wc), "--", "/data/winequality-red.csv"]);
        assert_code(&out, 0);
        let text = stdout(&out);
        let line: Vec<&str> = text.lines().next().unwrap_or_default().split_whitespace().collect();
        assert_eq!(line, ["1600", "1608", "91969", "/data/winequality-red.csv"], "{}", stderr(&out));
    }
    let out = wray(&["run", path(&wc), "--", "/data/winequality-red.csv"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("wc: /data/winequality-red.csv: No such file or directory"), "{}", stderr(&out));
}
