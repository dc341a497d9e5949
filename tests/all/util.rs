//! Shared helpers: building guests once, running `wray` with a deadline.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// xorshift64*: a small deterministic generator for the tests' random
/// choices (kills, mutations, junk), replayable from its seed.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value; zero is avoided).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

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
    let child = cmd.spawn().expect("spawn wray");
    wait_for_exit(child, &format!("wray {args:?}"), limit)
}

/// How often the waiting helpers look again.
const POLL: Duration = Duration::from_millis(20);

/// Waits until `done` holds, looking every 20 ms; fails the test with
/// `describe()` if it does not within `limit`. Tests wait for conditions
/// with this, never for a fixed time.
#[track_caller]
pub fn wait_until(limit: Duration, done: impl FnMut() -> bool, describe: impl FnOnce() -> String) {
    if !holds_within(limit, done) {
        panic!("waited {limit:?} in vain: {}", describe());
    }
}

/// Whether `done` comes to hold within `limit` (looked at every 20 ms).
pub fn holds_within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(POLL);
    }
    true
}

/// The lines a child writes to `pipe`, as they come (read by a thread of
/// their own, so that waiting for one can time out).
pub fn lines_of(pipe: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    forward_lines(pipe, tx);
    rx
}

/// The lines of a child's stdout and stderr, in one channel as they come
/// (each stream's lines in order); it disconnects when both streams end.
pub fn lines_of_both(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    forward_lines(child.stdout.take().expect("stdout piped"), tx.clone());
    forward_lines(child.stderr.take().expect("stderr piped"), tx);
    rx
}

fn forward_lines(pipe: impl std::io::Read + Send + 'static, tx: std::sync::mpsc::Sender<String>) {
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
}

/// Waits for a line containing `needle`; fails the test after `limit`.
#[track_caller]
pub fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, needle: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return,
            Ok(_) => {}
            Err(_) => panic!("no line with {needle:?} within {limit:?}"),
        }
    }
}

/// Waits for `child` to exit and returns its output; kills it and fails the
/// test if it runs longer than `limit` (a hang is a bug).
#[track_caller]
pub fn wait_for_exit(mut child: Child, what: &str, limit: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{what} did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(POLL);
    }
    child.wait_with_output().expect("output")
}

pub fn wray(args: &[&str]) -> Output {
    wray_with(args, &[], Duration::from_secs(120))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts that each of `lines` is a whole line of `text`.
#[track_caller]
pub fn has_lines(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(text.lines().any(|l| l == *line), "expected the line {line:?} in:\n{text}");
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit code, showing the output on failure.
#[track_caller]
pub fn assert_code(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "unexpected exit status\nstdout:\n{}\nstderr:\n{}", stdout(o), stderr(o));
}

/// The guest components, each built with `wray build` the first time a
/// test asks for it.
///
/// Built one by one as the tests come to need them rather than all before
/// the first test: a guest's build (seconds, once the SDK is built) then
/// overlaps the tests another thread runs meanwhile, most of which wait on
/// processes and sockets rather than use a core. Building them all up front
/// held every test thread for the ~2 minutes of 25 builds.
pub struct Guests {
    pub testjob: Guest,
    pub dns: Guest,
    pub retrieve: Guest,
    pub pi: Guest,
    pub wait: Guest,
    pub wine_mlp: Guest,
    pub breast_cancer_mlp: Guest,
    pub data_parallel_mlp: Guest,
    pub tune_grid: Guest,
    pub tune_hyperband: Guest,
    pub tune_bayesopt: Guest,
    pub tune_wine_mlp: Guest,
    pub data_walkthrough: Guest,
    pub data_wine_mlp: Guest,
    pub train_wine: Guest,
    pub gbdt_wine: Guest,
    pub grid_search: Guest,
    pub rl_cartpole: Guest,
    pub rl_tune: Guest,
    pub rl_maze: Guest,
    pub rl_offline: Guest,
    pub rl_multi_agent: Guest,
    pub serve_wine: Guest,
    pub serve_hello: Guest,
    pub serve_wasi_http: Guest,
    pub wasi_command: Guest,
}

/// One guest component: its crate's directory, and the `.wasm` built from it
/// once (the path is what the field dereferences to).
pub struct Guest {
    dir: &'static str,
    built: OnceLock<PathBuf>,
}

impl Guest {
    const fn new(dir: &'static str) -> Guest {
        Guest { dir, built: OnceLock::new() }
    }
}

impl std::ops::Deref for Guest {
    type Target = PathBuf;

    fn deref(&self) -> &PathBuf {
        self.built.get_or_init(|| build(self.dir))
    }
}

impl AsRef<Path> for Guest {
    fn as_ref(&self) -> &Path {
        self
    }
}

pub fn guests() -> &'static Guests {
    static GUESTS: Guests = Guests {
        testjob: Guest::new("tests/programs/testjob"),
        dns: Guest::new("examples/dns"),
        retrieve: Guest::new("examples/retrieve"),
        pi: Guest::new("examples/pi"),
        wait: Guest::new("examples/wait"),
        wine_mlp: Guest::new("examples/wine_mlp"),
        breast_cancer_mlp: Guest::new("examples/breast_cancer_mlp"),
        data_parallel_mlp: Guest::new("examples/data_parallel_mlp"),
        tune_grid: Guest::new("examples/tune_grid"),
        tune_hyperband: Guest::new("examples/tune_hyperband"),
        tune_bayesopt: Guest::new("examples/tune_bayesopt"),
        tune_wine_mlp: Guest::new("examples/tune_wine_mlp"),
        data_walkthrough: Guest::new("examples/data_walkthrough"),
        data_wine_mlp: Guest::new("examples/data_wine_mlp"),
        train_wine: Guest::new("examples/train_wine"),
        gbdt_wine: Guest::new("examples/gbdt_wine"),
        grid_search: Guest::new("examples/grid_search"),
        rl_cartpole: Guest::new("examples/rl_cartpole"),
        rl_tune: Guest::new("examples/rl_tune"),
        rl_maze: Guest::new("examples/rl_maze"),
        rl_offline: Guest::new("examples/rl_offline"),
        rl_multi_agent: Guest::new("examples/rl_multi_agent"),
        serve_wine: Guest::new("examples/serve_wine"),
        serve_hello: Guest::new("examples/serve_hello"),
        serve_wasi_http: Guest::new("examples/serve_wasi_http"),
        wasi_command: Guest::new("examples/wasi_command"),
    };
    &GUESTS
}

/// `examples/wasi_command` built for wasm32-wasip1 (a WASI preview-1 core
/// module) into `target/guests`, once.
pub fn wc_preview1() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target = target_dir().join("guests");
            let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "--release", "--quiet", "--target", "wasm32-wasip1", "--manifest-path"])
                .arg(workspace().join("examples/wasi_command/Cargo.toml"))
                .env("CARGO_TARGET_DIR", &target)
                .current_dir(workspace())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "cargo build --target wasm32-wasip1: {err}");
            target.join("wasm32-wasip1/release/wc.wasm")
        })
        .clone()
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

/// Runs `wray run FLAGS JOB -- ARGS` with `envs`, expecting success;
/// returns what it printed (stdout, stderr).
/// Lets a job use a software Vulkan adapter (lavapipe) as its GPU.
pub const SOFTWARE_GPU: (&str, &str) = ("WRAY_ALLOW_SOFTWARE_GPU", "1");

pub fn run_ok(job: &Path, flags: &[&str], args: &[&str], envs: &[(&str, &str)]) -> (String, String) {
    let mut all: Vec<&str> = vec!["run"];
    all.extend_from_slice(flags);
    all.push(path(job));
    if !args.is_empty() {
        all.push("--");
        all.extend_from_slice(args);
    }
    let out = wray_with(&all, envs, Duration::from_secs(300));
    assert_code(&out, 0);
    (stdout(&out), stderr(&out))
}

/// The number after `label` on the line that starts with it (a unit such
/// as `s` after the number is ignored).
#[track_caller]
pub fn number_after(out: &str, label: &str) -> f64 {
    let line = out.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no {label:?} line in:\n{out}"));
    let word = line[label.len()..].split_whitespace().next().unwrap_or_default();
    word.trim_end_matches('s').parse().unwrap_or_else(|_| panic!("bad line {line:?}"))
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends `raw` on a new connection and reads the answer to the end (the
/// requests say `Connection: close`).
pub fn request(addr: &str, raw: &[u8]) -> Reply {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(raw).expect("send");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Reply { status, head: head.to_string(), body: body.to_string() }
}

/// Polls `ok` every 200 ms until it holds or `limit` passes; whether it
/// held.
pub fn wait_for(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    loop {
        if ok() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A backpressure line of the testjob `generators` scenario (`label` is
/// `backpressure` for the tasks', `method backpressure` for the actor
/// method's): how many items a generator had made ahead of its slow reader
/// at most, with a window of 2 and without one.
pub fn items_made_ahead(out: &str, label: &str) -> (f64, f64) {
    let bounded = number_after(out, &format!("{label}: at most "));
    let prefix = format!("{label}: ");
    let unbounded = out.lines().find_map(|l| l.strip_prefix(prefix.as_str())?.rsplit_once(", ")).map(|(_, w)| w);
    (bounded, number_after(unbounded.unwrap_or_else(|| panic!("no {label:?} line in:\n{out}")), ""))
}

/// Resident memory of process `pid`, in bytes (0 once it is gone).
pub(crate) fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok());
    kib.unwrap_or(0u64) * 1024
}
