//! Python jobs: scripts written against Ray's API with `import wray as
//! ray`, built by the real `wray build job.py` (componentize-py, installed by
//! scripts/setup) and run by the real `wray run`.

use crate::examples::check_dns;
use crate::util::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// The Python examples, built once per test run into `target/guests/python`
/// (two at a time: componentize-py uses one core for half a minute).
struct PythonGuests {
    dns: PathBuf,
    retrieve: PathBuf,
    pi: PathBuf,
    counter: PathBuf,
    tensors: PathBuf,
    wine_mlp: PathBuf,
    cross_language: PathBuf,
    instances: PathBuf,
    refs: PathBuf,
    async_actor: PathBuf,
    pools: PathBuf,
    generators: PathBuf,
}

fn python_guests() -> &'static PythonGuests {
    static GUESTS: OnceLock<PythonGuests> = OnceLock::new();
    GUESTS.get_or_init(|| {
        const NAMES: [&str; 12] = [
            "examples/python/dns.py",
            "examples/python/retrieve.py",
            "examples/python/pi.py",
            "examples/python/counter.py",
            "examples/python/tensors.py",
            "examples/python/wine_mlp.py",
            "examples/python/cross_language.py",
            "tests/programs/python/instances.py",
            "tests/programs/python/refs.py",
            "examples/python/async_actor.py",
            "examples/python/pools.py",
            "tests/programs/python/generators.py",
        ];
        let mut built: Vec<PathBuf> = Vec::new();
        for pair in NAMES.chunks(2) {
            let handles: Vec<_> = pair.iter().map(|n| std::thread::spawn(move || build_python(n))).collect();
            built.extend(handles.into_iter().map(|h| h.join().expect("build thread")));
        }
        let mut built = built.into_iter();
        let mut next = || built.next().expect("one per name");
        PythonGuests {
            dns: next(),
            retrieve: next(),
            pi: next(),
            counter: next(),
            tensors: next(),
            wine_mlp: next(),
            cross_language: next(),
            instances: next(),
            refs: next(),
            async_actor: next(),
            pools: next(),
            generators: next(),
        }
    })
}

/// `wray build SCRIPT -o target/guests/python/NAME.wasm` (`SCRIPT` relative
/// to the workspace, `NAME` its file stem).
pub(crate) fn build_python(script: &str) -> PathBuf {
    let script = workspace().join(script);
    let name = script.file_stem().unwrap().to_str().unwrap().to_string();
    let dir = target_dir().join("guests/python");
    std::fs::create_dir_all(&dir).unwrap();
    let output = dir.join(format!("{name}.wasm"));
    let out = wray_with(&["build", path(&script), "-o", path(&output)], &[], Duration::from_secs(600));
    assert_code(&out, 0);
    assert_eq!(stdout(&out).lines().last().map(str::trim), Some(path(&output)));
    output
}

#[test]
fn the_dns_tutorial_runs_unchanged_in_python() {
    // The tutorial's script as written (tasks hold a whole CPU, as in Ray:
    // eight CPUs let its three and five lookups overlap).
    let (out, _) = run_ok(&python_guests().dns, &["--cpus", "8"], &[], &[]);
    check_dns(&out);
}

#[test]
fn the_dns_tutorial_runs_unchanged_on_a_cluster() {
    // The same file, sent to a head with two workers: tasks and the actor
    // spread over the nodes, each node compiling the component once.
    let head = crate::cluster::Head::start_with_cpus("1");
    head.add_worker_with("4", &[]);
    head.add_worker_with("4", &[]);
    let out = head.run(&python_guests().dns, &[]);
    assert_code(&out, 0);
    check_dns(&stdout(&out));
}

#[test]
fn the_retrieve_example_runs_in_parallel_in_python() {
    let (out, _) = run_ok(&python_guests().retrieve, &["--cpus", "8"], &[], &[]);
    let seq = number_after(&out, "Sequential runtime:");
    let par = number_after(&out, "Runtime:");
    assert!(seq >= 2.8, "sequential took {seq} s, less than its sleeps\n{out}");
    assert!(par < 1.3, "the longest tasks did not overlap: {par} s\n{out}");
    let data: Vec<&str> = out.lines().skip_while(|l| !l.starts_with("Runtime:")).skip(1).collect();
    assert_eq!(
        data,
        [
            "(0, 'Learning')",
            "(1, 'Ray')",
            "(2, 'Flexible')",
            "(3, 'Distributed')",
            "(4, 'Python')",
            "(5, 'for')",
            "(6, 'Machine')",
            "(7, 'Learning')"
        ],
        "{out}"
    );
}

#[test]
fn python_tasks_estimate_pi_from_the_arguments_after_the_double_dash() {
    let (out, _) = run_ok(&python_guests().pi, &[], &["10", "20000"], &[]);
    let line = out.lines().find(|l| l.starts_with("10 tasks x 20000 samples: pi ~ ")).expect(&out);
    let pi: f64 = line.split("pi ~ ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!((pi - std::f64::consts::PI).abs() < 0.03, "{line}");
}

#[test]
fn an_exception_in_the_driver_fails_the_job_with_its_traceback() {
    let out = wray(&["run", path(&python_guests().pi), "--", "many"]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("File \"pi.py\", line 25, in main"), "{err}");
    assert!(err.contains("ValueError: invalid literal for int() with base 10: 'many'"), "{err}");
    assert!(!err.contains("/wray/_entry.py"), "wray's own frames in the traceback: {err}");
}

#[test]
fn python_actors_refs_errors_and_cancellation_behave_as_in_ray() {
    let (out, _) = run_ok(&python_guests().counter, &["--cpus", "4"], &[], &[]);
    let expected = [
        "incr: 11 16",
        "from a task: 19",
        "by name: 19",
        "one actor, two handles: True 1",
        "nested tasks: 285",
        "num_returns: 2 [1, 3] [19, 38]",
        "num_returns through get_actor: [3, 6]",
        "named actors: ['counter', 'pair'] {'name': 'counter', 'namespace': 'default'}",
        "num_returns, a wrong count: ValueError: square returned one int, but num_returns=2",
        "num_returns=0: None",
        "put, then a task on it: 1000000",
        "a ref inside a value: 499500",
        "wait: [0.0] 1 not ready",
        "task error: ZeroDivisionError: division by zero",
        "traceback names the function: True",
        "caught as its cause: RayTaskError(ZeroDivisionError) True",
        "its cause, rebuilt: ZeroDivisionError ('division by zero',)",
        "the script's own exception: RayTaskError(Overdrawn) Overdrawn: overdrawn by 15",
        "get timed out",
        "cancelled",
        "time limit: True",
        "memory limit: True True",
        "within the limit: 16777216",
        "killed actor: RayActorError",
        "__ray_terminate__: calls before it: [10, 20] then RayActorError",
        "named after the kill: ['pair']",
        "session: pong",
        "exit_actor: RayActorError",
        "exit_actor outside an actor: exit_actor() must be called from one of an actor's methods",
        "in a placement group: 49",
        "spread: 64",
        "pinned to this node: 81",
        "pinned to a missing node: True",
        "soft affinity to a missing node: 100",
        r#"bad strategy: scheduling_strategy must be "DEFAULT", "SPREAD", a PlacementGroupSchedulingStrategy or a NodeAffinitySchedulingStrategy, not 'EVENLY'"#,
        "CPUs: 4.0",
        "nodes: [(True, True, 4.0, '')]",
        "node IP: 127.0.0.1",
        "assigned: {} {'CPU': 0.5}",
        "current_actor: True pong",
        "actor names: session None",
        "current_actor in the driver: current_actor is only available in an actor",
    ];
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, expected, "{out}");
}

#[test]
fn async_methods_tasks_and_asyncio_run_work_in_python_jobs() {
    let (out, _) = run_ok(&python_guests().async_actor, &[], &[], &[]);
    assert_lines(
        &out,
        &[
            "fetch: a.example: 9 bytes",
            "fetch_all: ['b.example: 9 bytes', 'cc.example: 10 bytes']",
            "fetched: 3",
            "async tasks: [0, 2, 4, 6]",
            "awaiting refs: 12",
            "waits for another call: True",
        ],
    );
}

#[test]
fn actor_pools_and_multiprocessing_pools_work_as_in_ray() {
    // Each pool process is an actor holding a CPU: two, whatever the machine.
    let (out, _) = run_ok(&python_guests().pools, &["--cpus", "2"], &[], &[]);
    assert_lines(
        &out,
        &[
            "ActorPool.map: [0, 10, 20, 30, 40, 50]",
            "ActorPool.map_unordered: [0, 10, 20, 30]",
            "submit, get_next: [70, 80, 90] False",
            "pushed twice: Actor already belongs to current ActorPool",
            "map: [0, 1, 8, 27, 64, 125, 216, 343]",
            "starmap: [3, 7]",
            "imap: [0, 1, 8, 27]",
            "imap_unordered: [0, 1, 8, 27]",
            "apply_async: 42 True",
            "apply with keywords: 6",
            "an item's exception: ValueError: bad item 3",
            "initializer: [1, 9, 81]",
            "queue between tasks: 100 4950",
            "queue batch: [1, 2] True",
            "empty queue: Empty",
        ],
    );
}

#[test]
fn generator_tasks_and_methods_stream_their_items_as_in_ray() {
    let (out, _) = run_ok(&python_guests().generators, &["--cpus", "2"], &[], &[]);
    assert_lines(
        &out,
        &[
            "countdown: [3, 2, 1, 0]",
            "first before the end: True",
            "the rest: [1, 2]",
            "finished: True None",
            "fails after two: [0, 1, 'ValueError: no item 2']",
            "nested: [[0, 1], [10, 11], [20, 21]]",
            "async generator task: [0, 1, 4, 9]",
            "streaming of a plain function: [] 7",
            "dynamic: num_returns=\"dynamic\" is not supported",
            "actor generator: ['A', 'B', 'C']",
            "async actor generator: [0, 1, 2]",
            "served: 3",
            "read in a task: 10",
            "cancelled: items before it, then TaskCancelledError: True",
            "next_ready, then: [2, 1, 0]",
            "wait on generators: True True",
            "not yet: True",
            "with a ref: 2 0 [0, 1]",
            "async for: [2, 1, 0]",
            "items handed on: 3 [1, 0] [2, 1, 0] [2, 1, 0]",
            "collected unread past the task's memory: True",
            "passed to a task: True",
            "backpressure: True True",
            "a window of 0: True",
            "method backpressure: True True",
        ],
    );
}

/// The job printed exactly `expected`, line by line.
fn assert_lines(out: &str, expected: &[&str]) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, expected, "{out}");
}

/// Writes `source` as `name` in a fresh directory; returns the directory
/// (kept alive by the caller) and the script's path.
fn script(name: &str, source: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, source).unwrap();
    (dir, file)
}

#[test]
fn a_syntax_error_fails_the_build_with_python_s_message() {
    let (_dir, file) = script("broken.py", "import wray\n\ndef f(:\n    pass\n");
    let out = wray_with(&["build", path(&file)], &[], Duration::from_secs(600));
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("broken.py") && err.contains("line 3") && err.contains("SyntaxError"), "{err}");
    assert!(!Path::new(&file.with_extension("wasm")).exists(), "a component was written");
}

#[test]
fn building_without_componentize_py_says_how_to_install_it() {
    let (dir, file) = script("job.py", "import wray\n");
    let home = dir.path().to_str().unwrap();
    let out = wray_with(
        &["build", path(&file)],
        &[("HOME", home), ("PATH", "/usr/bin:/bin"), ("WRAY_COMPONENTIZE_PY", "/nonexistent/componentize-py")],
        Duration::from_secs(60),
    );
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("componentize-py is not installed") && err.contains("scripts/setup"), "{err}");
}

/// `wray run job.py`, as `python job.py`: the script is built beside itself
/// first (`job.wasm`, what `wray build job.py` writes), that build is taken
/// again while neither the script nor a module beside it changed, and an
/// edit of the module it imports builds it again.
#[test]
fn wray_run_builds_a_script_and_reuses_the_build() {
    let (dir, file) = script(
        "job.py",
        "import wray as ray\nimport helper\n\n@ray.remote\ndef twice(x):\n    return 2 * x\n\nprint(helper.NAME, ray.get(twice.remote(21)))\n",
    );
    std::fs::write(dir.path().join("helper.py"), "NAME = 'first'\n").unwrap();
    let run = || wray_with(&["run", path(&file)], &[], Duration::from_secs(600));
    let out = run();
    assert_code(&out, 0);
    assert_eq!(stdout(&out).trim(), "first 42");
    assert!(stderr(&out).contains("building"), "{}", stderr(&out));
    assert!(file.with_extension("wasm").is_file(), "no job.wasm beside the script");
    let out = run();
    assert_code(&out, 0);
    assert_eq!(stdout(&out).trim(), "first 42");
    assert!(!stderr(&out).contains("building"), "built again with nothing changed: {}", stderr(&out));
    std::fs::write(dir.path().join("helper.py"), "NAME = 'second'\n").unwrap();
    let out = run();
    assert_code(&out, 0);
    assert_eq!(stdout(&out).trim(), "second 42");
    assert!(stderr(&out).contains("building"), "{}", stderr(&out));
    // A missing script is named, as by `wray build`.
    let out = wray(&["run", "/nonexistent/job.py"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("/nonexistent/job.py does not exist"), "{}", stderr(&out));
}

#[test]
fn building_a_missing_script_names_it() {
    let out = wray(&["build", "/nonexistent/job.py"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("/nonexistent/job.py"), "{}", stderr(&out));
}

#[test]
fn python_reaches_the_host_s_tensors_and_fits_a_line_with_them() {
    let (out, _) = run_ok(&python_guests().tensors, &[], &[], &[]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "shape: (2, 2) device: cpu",
            "x @ x: [[7.0, 10.0], [15.0, 22.0]]",
            "relu(x - 2.5) * 2 + 1: [[1.0, 1.0], [2.0, 4.0]]",
            "sum along axis 1: [[3.0], [7.0]]",
            "softmax rows sum to: [1.0, 1.0]",
            "bytes round trip: True",
            "through the object store: [[1.0, 2.0], [3.0, 4.0]]",
            "fitted w, b: [2.0, 1.0]",
            "shapes that do not fit: InvalidArgumentError",
        ],
        "{out}"
    );
}

#[test]
fn the_seeds_wine_mlp_trains_in_python_on_the_host_s_kernels() {
    let data = format!("{}::/data", workspace().join("examples/data").display());
    let (out, _) = run_ok(&python_guests().wine_mlp, &["--dir", &data], &[], &[]);
    assert!(out.contains("device: cpu"), "{out}");
    // The majority class is 53 % of the test rows; the Rust port reaches
    // 0.7525 (scikit-learn's MLP too), this one 0.695-0.74 over seeds 0-5 —
    // as numpy does with the same random streams (docs/PYTHON.md).
    let accuracy = number_after(&out, "test accuracy:");
    assert!(accuracy >= 0.68, "accuracy {accuracy}\n{out}");
}

#[test]
fn a_project_directory_builds_its_named_script_with_its_modules_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "pyproject.toml",
        "[project]\nname = \"squares\"\nversion = \"0.1.0\"\ndependencies = []\n\n[tool.wray]\nmain = \"app.py\"\n",
    );
    write("helper.py", "def square(x):\n    return x * x\n");
    write(
        "app.py",
        "import wray\nfrom helper import square\n\n@wray.remote\ndef f(i):\n    return square(i)\n\nprint(wray.get([f.remote(i) for i in range(4)]))\n",
    );
    let out = wray_with(&["build", path(dir.path())], &[], Duration::from_secs(600));
    assert_code(&out, 0);
    let job = dir.path().join("squares.wasm");
    assert_eq!(stdout(&out).lines().last().map(str::trim), Some(path(&job)));
    let (ran, _) = run_ok(&job, &[], &[], &[]);
    assert_eq!(ran.trim(), "[0, 1, 4, 9]");

    // `wray run DIR` takes what `wray build DIR` made while nothing changed,
    // and builds again once a module did.
    let run = || wray_with(&["run", path(dir.path())], &[], Duration::from_secs(600));
    let out = run();
    assert_code(&out, 0);
    assert_eq!(stdout(&out).trim(), "[0, 1, 4, 9]");
    assert!(!stderr(&out).contains("building"), "built again with nothing changed: {}", stderr(&out));
    write("helper.py", "def square(x):\n    return x * x * x\n");
    let out = run();
    assert_code(&out, 0);
    assert_eq!(stdout(&out).trim(), "[0, 1, 8, 27]");
    assert!(stderr(&out).contains("building"), "{}", stderr(&out));

    // A pyproject.toml naming a script that is not there, or with a value
    // of the wrong kind: usage errors that say so.
    write("pyproject.toml", "[tool.wray]\nmain = \"missing.py\"\n");
    let out = wray(&["build", path(dir.path())]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("missing.py") && stderr(&out).contains("[tool.wray] main"), "{}", stderr(&out));
    write("pyproject.toml", "[tool.wray]\nmain = 3\n");
    let out = wray(&["build", path(dir.path())]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("must be strings"), "{}", stderr(&out));
}

#[test]
fn plain_values_cross_between_python_and_rust_jobs_through_detached_actors() {
    // A Rust job's detached actor, called by a Python job with every kind of
    // plain data; a Python job's detached actor, called by a Rust job — on
    // a head, where detached actors live between jobs.
    let head = crate::cluster::Head::start_with_cpus("2");
    let rust = build("examples/cross_language");
    let python = &python_guests().cross_language;
    let run = |job: &Path, mode: &str| {
        let out = head.run(job, &[mode]);
        assert_code(&out, 0);
        stdout(&out)
    };
    assert_eq!(run(&rust, "serve").trim(), "inventory is up: true");
    let out = run(python, "use-rust");
    let expected = [
        "inventory is a cross_language::Inventory",
        "nothing: None same",
        "flag: True same",
        "count: 42 same",
        "ratio: 0.25 same",
        "name: 'wray' same",
        r"raw: b'\x00\xff' same",
        "mixed: [1, 'two', [3.0, None]] same",
        "config: {'lr': 0.01, 'layers': [11, 10, 8, 1]} same",
        "weights: array('d', [0.5, 1.5, 2.0]) same",
        "ids: array('q', [7, 8, 9]) same",
        "created by: rust",
        "describe: {'count': 11, 'kinds': {'created by': 'str', 'nothing': 'none', 'flag': 'bool', 'count': 'int', \
         'ratio': 'float', 'name': 'str', 'raw': 'bytes', 'mixed': 'list', 'config': 'dict', 'weights': 'f64 array', \
         'ids': 'i64 array'}}",
        "total: 6.5",
        "total of an array: 0.75",
        "TypeError: cross_language::Inventory.put: argument 1: value is a tuple, which only Python reads: values that \
         cross to another language are None, bool, int, float, str, bytes, list, dict and array.array('d', 'f', 'q', 'i')",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected, "{out}");

    assert_eq!(run(python, "serve").trim(), "tally is up: 1");
    let out = run(&rust, "use-python");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..11],
        [
            "tally is a Tally",
            "add(\"wasm\", 3) -> 3",
            "add(\"ray\", 2) -> 2",
            "add(\"wasm\", 4) -> 7",
            "counts[python] = 1",
            "counts[wasm] = 7",
            "counts[ray] = 2",
            "summary: mean 2 of 2 values, words [\"python\", \"ray\", \"wasm\"]",
            "each: python=1 ray=2 wasm=7",
            "made ahead of a slow reader: at most 1 paced true, 15 or more unpaced true",
            "python_only failed: task Tally.python_only failed: TypeError: Tally.python_only answers a caller in \
             another language: value is a set, which only Python reads: values that cross to another language are \
             None, bool, int, float, str, bytes, list, dict and array.array('d', 'f', 'q', 'i')",
        ],
        "{out}"
    );
    assert_eq!(lines.len(), 11, "{out}");
}

#[test]
fn scalars_pickled_by_hand_read_back_as_pickle_reads_them() {
    // `_scalar` writes the pickle of a lone scalar without a Pickler (the
    // hot path of every small result and argument): under the host's
    // CPython, every value it takes must come back from pickle.loads with
    // its type and value, and anything else must be left to pickle.
    check_sdk_module_on_host(
        "_scalar.py",
        "s",
        r#"
import math, pickle, random
rng = random.Random(11)
edges = [None, True, False, 0, 255, 256, -1, 2**31 - 1, -2**31, 0.0, -0.0, 1.5, float("inf"), float("nan"),
         b"", b"x" * 255, b"x" * 256, "", "\u00e9" * 127, "\u00e9" * 128, "\ud800", "a" * 70000]
for v in [2**31, -2**31 - 1, 2**70, 1j, [1], (1,), bytearray(b"x"), {}, type("S", (str,), {})("sub")]:
    assert s.dumps(v) is None, v
values = list(edges)
for _ in range(20000):
    k = rng.randrange(5)
    if k == 0: values.append(rng.randrange(-2**31, 2**31))
    elif k == 1: values.append(rng.uniform(-1e300, 1e300))
    elif k == 2: values.append(bytes(rng.randrange(256) for _ in range(rng.randrange(600))))
    elif k == 3: values.append("".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(300))))
    else: values.append(rng.randrange(-300, 300))
for v in values:
    data = s.dumps(v)
    assert data is not None, v
    back = pickle.loads(data)
    assert type(back) is type(v), (v, back)
    if isinstance(v, float):
        assert back == v or (math.isnan(v) and math.isnan(back)), (v, back)
        assert math.copysign(1, back) == math.copysign(1, v), v
    else:
        assert back == v, (v, back)
"#,
    );
}

#[test]
fn the_python_value_encoding_writes_the_documented_bytes_and_refuses_bad_ones() {
    // The SDK's encoder is pure Python: checked here under the host's
    // CPython against the bytes wray_codec::value documents (and its own
    // test checks on the Rust side).
    check_sdk_module_on_host(
        "_value.py",
        "v",
        r#"
import random
doc = bytes.fromhex("f5777601" "0801000000" "050100000061" "0702000000" "030100000000000000" "00")
assert v.dumps({"a": [1, None]}) == doc, v.dumps({"a": [1, None]}).hex()
assert v.loads(doc) == {"a": [1, None]}
for bad, why in [(b"\x80\x05K\x01.", "no magic"), (doc[:-1], "ends early"), (doc + b"\x00", "trailing"),
                 (v.MAGIC + b"\x07\xff\xff\xff\xff", "runs past"), (v.MAGIC + b"\x42", "unknown tag"),
                 (v.MAGIC + b"\x07\x01\x00\x00\x00" * 200 + b"\x00", "nest deeper")]:
    try:
        v.loads(bad)
        raise SystemExit(f"accepted {bad[:16]!r}")
    except ValueError as e:
        assert why in str(e), (why, str(e))
rng = random.Random(7)
for _ in range(5000):
    data = v.MAGIC + bytes(rng.randrange(16) for _ in range(rng.randrange(30)))
    try:
        v.loads(data)
    except ValueError:
        pass
for bad in [(1, 2), {1, 2}, 1 << 70, object()]:
    try:
        v.dumps([bad])
        raise SystemExit(f"encoded {bad!r}")
    except TypeError as e:
        assert "value[0]" in str(e), str(e)
"#,
    );
}

/// Runs `body` under the host's CPython with the SDK's pure-Python module
/// `file` loaded as `alias`; passes if it runs to the end.
fn check_sdk_module_on_host(file: &str, alias: &str, body: &str) {
    let module = workspace().join("guest-sdk/python/wray").join(file);
    let script = format!(
        "import importlib.util\nspec = importlib.util.spec_from_file_location({alias:?}, {module:?})\n\
         {alias} = importlib.util.module_from_spec(spec)\nspec.loader.exec_module({alias})\n{body}\nprint(\"ok\")\n"
    );
    let out = std::process::Command::new("python3").args(["-c", &script]).output().expect("python3");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[test]
fn a_python_job_s_tasks_reuse_their_instances_as_ray_workers_do() {
    // One CPU: each task runs after the last. A succeeded task's instance
    // runs the next one (a module global keeps counting, and the function
    // is loaded once per instance); a failed task's is dropped; instances
    // are kept per memory limit; the driver is an instance of its own.
    // The node has a (software) GPU, for `get_gpu_ids`.
    let flags = ["--cpus", "1", "--gpus", "1", "--env", "GRANTED=job"];
    let (out, _) = run_ok(&python_guests().instances, &flags, &[], &[SOFTWARE_GPU]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "one after another: [1, 2, 3, 4, 5]",
            "failed task: its instance is dropped",
            "after the failure: 1",
            "another memory limit: [1, 2, 3]",
            "back to the first: 2",
            "in the driver: 0",
            "max_calls=2: [3, 4, 1, 2, 1]",
            "env, granted: ['job', None]",
            "env, the task's own: ['task', 'a']",
            "env, the next plain task: ['job', None]",
            "env, job-wide: ['yes', None]",
            "env, inherited: ['outer', 'yes']",
            "env, an actor's: actor yes",
            "env, pip: runtime_env field pip cannot be set in wray: a job's code and packages are in its component \
             (`wray build` bundles a pyproject's dependencies) and its files are granted with `wray run --dir`; \
             only env_vars applies",
            "env, a bad name: env vars: \"A=B\" is not a variable name (empty, or with '=' or NUL)",
            "import ray: True True True No module named 'ray.data'",
            "version: True True",
            "gpu ids: [] [] [0]",
        ],
        "{out}"
    );
}

#[test]
fn a_python_job_s_refs_release_their_objects_when_they_die() {
    // Every host handle Python holds is dropped by wray's finalizer: when
    // the last reference goes, when a cycle holding it is collected, and
    // for refs that went to tasks; the job's code sees the standard
    // weakref.finalize.
    let (out, _) = run_ok(&python_guests().refs, &["--cpus", "2"], &[], &[]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "weakref.finalize is the standard one: True",
            "held: True",
            "last ref gone: False",
            "in a cycle, before collecting: True",
            "in a cycle, collected: False",
            "passed to tasks: 1000 1000",
            "after the tasks, last ref gone, released: True",
            "10,000 refs made and dropped, any left: False",
            "six 1-CPU actors in turn, each handle dropped: [0, 10, 20, 30, 40, 50]",
            "kept by a stored handle: 70",
            "named actors after its last handle: []",
        ],
        "{out}"
    );
}

#[test]
fn rust_tasks_still_get_a_fresh_instance_each() {
    // The same count in Rust: without the component's reuse section every
    // task starts from its instance's initial memory.
    let out = scenario(&["--cpus", "1"], &["fresh-instances"]);
    assert_code(&out, 0);
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        [
            "one after another, fresh: 100 of 100",
            "in a batch, fresh: 100 of 100",
            "kept by an ended task's instance, then freed: true",
        ],
        "{}",
        stdout(&out)
    );
}

#[test]
fn rust_tasks_and_actors_set_their_own_environment_variables() {
    // CallOptions::env: over the job's granted variables, apart between
    // reused instances, inherited by what a task submits, on actors.
    let out = scenario(&["--cpus", "1", "--env", "GRANTED=job"], &["environments"]);
    assert_code(&out, 0);
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        [
            r#"granted: [Some("job"), None]"#,
            r#"the task's own: [Some("task"), Some("a")]"#,
            r#"reused, alternating: ["x", "y", "x", "y"]"#,
            r#"reused, none set: [Some("job"), None]"#,
            r#"inherited: [Some("outer"), Some("job")]"#,
            r#"an actor's: Some("actor")"#,
            "an actor holds: {}",
            r#"a bad name: invalid argument: env vars: "A=B" is not a variable name (empty, or with '=' or NUL)"#,
        ],
        "{}",
        stdout(&out)
    );
}

#[test]
fn rust_tasks_that_ask_reuse_their_job_s_instances() {
    // `reuse_instance(true)`: the Python rules, per call.
    let out = scenario(&["--cpus", "1"], &["reused-instances"]);
    assert_code(&out, 0);
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        [
            "one after another: [1, 2, 3, 4, 5]",
            "not asking: 1",
            "asking again: 6",
            "failed task: its instance is dropped",
            "after the failure: 1",
            "another memory limit: [1, 2, 3]",
            "back to the first: 2",
            "in the driver: 0",
            "max_calls(2): [3, 4, 1, 2, 1]",
        ],
        "{}",
        stdout(&out)
    );
}
