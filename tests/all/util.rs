//! Shared helpers: building guests once, running `wray` with a deadline.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// Cargo's target directory (CI may keep it outside the clone).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"))
}

pub fn wray_bin() -> &'static str {
    env!("CARGO_BIN_EXE_wray")
}

/// Runs `wray` with `args`; kills it and fails the test if it runs longer than
/// `limit` (a hang is a bug).
pub fn wray_with(args: &[&str], envs: &[(&str, &str)], limit: Duration) -> Output {
    let mut cmd = Command::new(wray_bin());
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
    // Tests keep their compile cache under the target directory, never in
    // the user's ~/.cache.
    cmd.env("XDG_CACHE_HOME", target_dir().join("test-cache"));
    // Software GPUs only where a test asks for them.
    cmd.env_remove("WRAY_ALLOW_SOFTWARE_GPU");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn wray");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "wray {args:?} did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn wray(args: &[&str]) -> Output {
    wray_with(args, &[], Duration::from_secs(120))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit code, showing the output on failure.
#[track_caller]
pub fn assert_code(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "unexpected exit status\nstdout:\n{}\nstderr:\n{}", stdout(o), stderr(o));
}

/// The guest components, built once per test run with `wray build`.
pub struct Guests {
    pub testjob: PathBuf,
    pub dns: PathBuf,
    pub retrieve: PathBuf,
    pub pi: PathBuf,
    pub wait: PathBuf,
    pub wine_mlp: PathBuf,
    pub breast_cancer_mlp: PathBuf,
    pub data_parallel_mlp: PathBuf,
    pub tune_grid: PathBuf,
    pub tune_hyperband: PathBuf,
    pub tune_bayesopt: PathBuf,
    pub tune_wine_mlp: PathBuf,
}

pub fn guests() -> &'static Guests {
    static GUESTS: OnceLock<Guests> = OnceLock::new();
    GUESTS.get_or_init(|| Guests {
        testjob: build("tests/programs/testjob"),
        dns: build("examples/dns"),
        retrieve: build("examples/retrieve"),
        pi: build("examples/pi"),
        wait: build("examples/wait"),
        wine_mlp: build("examples/wine_mlp"),
        breast_cancer_mlp: build("examples/breast_cancer_mlp"),
        data_parallel_mlp: build("examples/data_parallel_mlp"),
        tune_grid: build("examples/tune_grid"),
        tune_hyperband: build("examples/tune_hyperband"),
        tune_bayesopt: build("examples/tune_bayesopt"),
        tune_wine_mlp: build("examples/tune_wine_mlp"),
    })
}

/// `wray build DIR` into `target/guests`; returns the path it prints last.
pub fn build(dir: &str) -> PathBuf {
    let ws = workspace();
    let target = target_dir().join("guests");
    let out = wray_with(
        &["build", ws.join(dir).to_str().unwrap()],
        &[("CARGO_TARGET_DIR", target.to_str().unwrap())],
        Duration::from_secs(900),
    );
    assert_code(&out, 0);
    let path = PathBuf::from(stdout(&out).lines().last().expect("wray build printed a path").trim());
    assert!(path.is_file(), "wray build printed {path:?}, which is not a file");
    assert_eq!(path.extension().and_then(|e| e.to_str()), Some("wasm"));
    path
}

pub fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Runs a testjob scenario with extra flags before the file.
pub fn scenario(flags: &[&str], args: &[&str]) -> Output {
    let job = guests().testjob.clone();
    let mut all: Vec<&str> = vec!["run"];
    all.extend_from_slice(flags);
    all.push(path(&job));
    all.push("--");
    all.extend_from_slice(args);
    // `all` borrows `job`, which lives until the end of this function.
    let out = wray(&all);
    drop(job);
    out
}
