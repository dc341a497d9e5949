//! `wray build job.py`: a Python script to a job component, with
//! componentize-py.
//!
//! The component is CPython (componentize-py's build of it) with the `wray`
//! package (`guest-sdk/python`, compiled into this binary so that a build
//! needs no checkout), cloudpickle, the script and what it imports — all
//! imported once at build time: componentize-py keeps the interpreter's
//! memory as it was after those imports, so an instance starts with them
//! done, and a module not imported then cannot be imported at run time
//! (`wray/_preload.py` says which are).

use crate::Failure;
use anyhow::{Context, anyhow};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The componentize-py release `wray build` is made for (`scripts/setup`
/// installs it); the WIT bindings it generates are part of the SDK's
/// contract.
pub(crate) const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// `import ray`: the `wray` package under Ray's name (`guest-sdk/python/ray`).
const RAY_ALIAS: &str = include_str!("../../../../guest-sdk/python/ray/__init__.py");

/// The WIT world every job component implements.
const WIT: &str = include_str!("../../../../wit/runtime.wit");

/// The `wray` Python package, file by file.
const SDK: &[(&str, &str)] = &[
    ("__init__.py", include_str!("../../../../guest-sdk/python/wray/__init__.py")),
    ("_asyncio.py", include_str!("../../../../guest-sdk/python/wray/_asyncio.py")),
    ("_codec.py", include_str!("../../../../guest-sdk/python/wray/_codec.py")),
    ("_entry.py", include_str!("../../../../guest-sdk/python/wray/_entry.py")),
    ("_finalize.py", include_str!("../../../../guest-sdk/python/wray/_finalize.py")),
    ("_preload.py", include_str!("../../../../guest-sdk/python/wray/_preload.py")),
    ("_scalar.py", include_str!("../../../../guest-sdk/python/wray/_scalar.py")),
    ("_value.py", include_str!("../../../../guest-sdk/python/wray/_value.py")),
    ("actor.py", include_str!("../../../../guest-sdk/python/wray/actor.py")),
    ("exceptions.py", include_str!("../../../../guest-sdk/python/wray/exceptions.py")),
    ("serve.py", include_str!("../../../../guest-sdk/python/wray/serve.py")),
    ("tensor.py", include_str!("../../../../guest-sdk/python/wray/tensor.py")),
    ("util/__init__.py", include_str!("../../../../guest-sdk/python/wray/util/__init__.py")),
    ("util/actor_pool.py", include_str!("../../../../guest-sdk/python/wray/util/actor_pool.py")),
    ("util/multiprocessing.py", include_str!("../../../../guest-sdk/python/wray/util/multiprocessing.py")),
    ("util/placement_group.py", include_str!("../../../../guest-sdk/python/wray/util/placement_group.py")),
    ("util/queue.py", include_str!("../../../../guest-sdk/python/wray/util/queue.py")),
    ("util/scheduling_strategies.py", include_str!("../../../../guest-sdk/python/wray/util/scheduling_strategies.py")),
];

/// The module componentize-py wraps: it must not share a name with anything
/// a job imports.
const APP_MODULE: &str = "wray_job_app";

/// Where `scripts/setup` puts componentize-py when it is not on PATH.
fn default_venv() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    Some(PathBuf::from(home).join(".cache/wray/python"))
}

/// The componentize-py to run and the Python interpreter beside it (whose
/// site-packages hold cloudpickle): `WRAY_COMPONENTIZE_PY`, else the one on
/// PATH, else the one `scripts/setup` installed.
fn componentize_py() -> Result<(PathBuf, PathBuf), Failure> {
    let candidates: Vec<PathBuf> = std::env::var_os("WRAY_COMPONENTIZE_PY")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            std::env::var_os("PATH")
                .into_iter()
                .flat_map(|p| std::env::split_paths(&p).map(|d| d.join("componentize-py")).collect::<Vec<_>>()),
        )
        .chain(default_venv().map(|v| v.join("bin/componentize-py")))
        .collect();
    let found = candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        anyhow!(
            "componentize-py is not installed: run scripts/setup, or `pip install componentize-py=={COMPONENTIZE_PY_VERSION} cloudpickle` \
             (or set WRAY_COMPONENTIZE_PY to its path)"
        )
    })?;
    let dir = found.parent().unwrap_or(Path::new("."));
    let python = ["python3", "python"].iter().map(|n| dir.join(n)).find(|p| p.is_file()).unwrap_or("python3".into());
    Ok((found, python))
}

/// The directory of the cloudpickle package `python` imports.
fn cloudpickle_dir(python: &Path) -> Result<PathBuf, Failure> {
    let out = Command::new(python)
        .args(["-c", "import cloudpickle, os; print(os.path.dirname(cloudpickle.__file__))"])
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        return Err(anyhow!(
            "{} cannot import cloudpickle (wray's Python jobs ship functions with it): `{} -m pip install cloudpickle`",
            python.display(),
            python.display()
        )
        .into());
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// What a project's `pyproject.toml` says to `wray build`.
#[derive(Default)]
struct Project {
    /// `[project] name`.
    name: Option<String>,
    /// `[project] dependencies`: requirement strings for pip.
    dependencies: Vec<String>,
    /// `[tool.wray] main`: the script, relative to the project.
    main: Option<String>,
}

/// Reads `pyproject.toml` with the Python beside componentize-py (its
/// `tomllib`; Python 3.11 or later), so that wray needs no TOML parser.
fn read_project(python: &Path, file: &Path) -> Result<Project, Failure> {
    const READ: &str = "import json, sys, tomllib\n\
        d = tomllib.load(open(sys.argv[1], 'rb'))\n\
        p = d.get('project', {})\n\
        print(json.dumps({'name': p.get('name'), 'dependencies': p.get('dependencies', []), \
        'main': d.get('tool', {}).get('wray', {}).get('main')}))";
    let out = Command::new(python)
        .args(["-c", READ])
        .arg(file)
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or_default();
        return Err(anyhow!("cannot read {}: {last}", file.display()).into());
    }
    let bad = || {
        Failure::Usage(anyhow!(
            "cannot read {}: `[project] name` and `[tool.wray] main` must be strings, `[project] dependencies` a list of strings",
            file.display()
        ))
    };
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|_| bad())?;
    let text = |key: &str| match &v[key] {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) => Ok(Some(s.clone())),
        _ => Err(bad()),
    };
    let dependencies = match &v["dependencies"] {
        serde_json::Value::Array(items) => {
            items.iter().map(|d| d.as_str().map(str::to_string).ok_or_else(bad)).collect::<Result<_, _>>()?
        }
        _ => return Err(bad()),
    };
    Ok(Project { name: text("name")?, dependencies, main: text("main")? })
}

/// Builds a Python project: `dir/pyproject.toml` (`[tool.wray] main`, the
/// script, default `main.py`; `[project] dependencies`, installed with pip
/// into the build and bundled) or just `dir/main.py`. The component is
/// `output`, default `dir/NAME.wasm` (the project's name, else the
/// directory's).
pub(crate) fn build_project(dir: &Path, output: Option<PathBuf>) -> Result<(), Failure> {
    let tools = componentize_py()?;
    let plan = plan_project(&tools.1, dir, output)?;
    let key = project_key(&tools.0, &plan);
    let output = build_planned(&tools, &plan, key)?;
    println!("{}", output.display());
    Ok(())
}

/// `wray run DIR` of a Python project: its component (`DIR/NAME.wasm`, as
/// `wray build DIR` writes it) when that was built from the same inputs,
/// else built now — as [`built`] does for a script.
fn built_project(dir: &Path) -> Result<PathBuf, Failure> {
    let tools = componentize_py()?;
    let plan = plan_project(&tools.1, dir, None)?;
    let key = project_key(&tools.0, &plan);
    if is_current(&plan.output, key.as_deref()) {
        return Ok(plan.output);
    }
    build_planned(&tools, &plan, key)
}

/// What building a project takes, read from its directory.
struct ProjectPlan {
    manifest: PathBuf,
    script: PathBuf,
    output: PathBuf,
    dependencies: Vec<String>,
}

fn plan_project(python: &Path, dir: &Path, output: Option<PathBuf>) -> Result<ProjectPlan, Failure> {
    let manifest = dir.join("pyproject.toml");
    let project = if manifest.is_file() { read_project(python, &manifest)? } else { Project::default() };
    let script = dir.join(project.main.as_deref().unwrap_or("main.py"));
    if !script.is_file() {
        return Err(anyhow!(
            "{} has no script: add a main.py, or name the script in pyproject.toml ([tool.wray] main = \"job.py\")",
            script.display()
        )
        .into());
    }
    let name = project.name.clone().unwrap_or_else(|| {
        std::fs::canonicalize(dir)
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "main".into())
    });
    let output = output.unwrap_or_else(|| dir.join(format!("{name}.wasm")));
    Ok(ProjectPlan { manifest, script, output, dependencies: project.dependencies })
}

/// [`source_key`] of the project's script, with its `pyproject.toml`
/// (its dependencies: a changed list builds again; an unpinned one takes
/// newer releases only when built again).
fn project_key(componentize: &Path, plan: &ProjectPlan) -> Option<String> {
    use sha2::{Digest, Sha256};
    let script = source_key(componentize, &plan.script)?;
    let manifest = std::fs::read(&plan.manifest).unwrap_or_default();
    Some(format!("{:x}", Sha256::new().chain_update(script).chain_update(manifest).finalize()))
}

/// Installs a project's dependencies into a scratch directory and builds
/// its script with them.
fn build_planned(tools: &(PathBuf, PathBuf), plan: &ProjectPlan, key: Option<String>) -> Result<PathBuf, Failure> {
    let python = &tools.1;
    let deps = tempfile::tempdir().context("creating a directory for dependencies")?;
    if !plan.dependencies.is_empty() {
        eprintln!("installing {} with pip ...", plan.dependencies.join(", "));
        let out = Command::new(python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile", "--target"])
            .arg(deps.path())
            .args(&plan.dependencies)
            .output()
            .with_context(|| format!("running {} -m pip", python.display()))?;
        if !out.status.success() {
            return Err(anyhow!(
                "pip cannot install the dependencies of {}:\n{}",
                plan.manifest.display(),
                String::from_utf8_lossy(&out.stderr).trim_end()
            )
            .into());
        }
    }
    build_with(tools, &plan.script, Some(plan.output.clone()), &[deps.path().to_path_buf()], key)
}

/// Builds `script` into `output` (default: beside it, `.wasm`); prints the
/// component's path as the last line.
pub(crate) fn build(script: &Path, output: Option<PathBuf>) -> Result<(), Failure> {
    let tools = componentize_py()?;
    // Hashed before the build: a file edited while it runs makes the next
    // `wray run` build again, instead of taking the edit as built.
    let key = source_key(&tools.0, script);
    let output = build_with(&tools, script, output, &[], key)?;
    println!("{}", output.display());
    Ok(())
}

/// The custom section in which a script's component records what it was
/// built from ([`source_key`]), so that `wray run job.py` can tell whether
/// the `job.wasm` beside it is current.
const SOURCE_SECTION: &str = "wray:python-source";

/// Files a script's directory may hold for [`source_key`] to hash them all;
/// past either bound there is no key, and `wray run job.py` builds every
/// time (a script in a home directory of thousands of files).
const MAX_SOURCE_FILES: usize = 10_000;
/// Bytes of `.py` files, likewise.
const MAX_SOURCE_BYTES: u64 = 256 << 20;

/// The component file a job path given to `wray run`, `job submit` or
/// `serve` names: for a Python script (`job.py`), [`built`]; for a Python
/// project's directory, [`built_project`]; else the path itself.
pub(crate) fn job_file(path: &Path) -> Result<PathBuf, Failure> {
    if path.extension().is_some_and(|e| e == "py") {
        return built(path);
    }
    if is_project(path) { built_project(path) } else { Ok(path.to_path_buf()) }
}

/// Whether `path` is a Python project's directory: no `Cargo.toml` (a
/// crate's is built by cargo), and a `pyproject.toml` or a `main.py` — as
/// `read_component` tells one when it is given where a component belongs.
pub(crate) fn is_project(path: &Path) -> bool {
    path.is_dir()
        && !path.join("Cargo.toml").is_file()
        && (path.join("pyproject.toml").is_file() || path.join("main.py").is_file())
}

/// Whether the component at `output` was built from what `key` hashes
/// (its [`SOURCE_SECTION`]), so a run can take it instead of building.
fn is_current(output: &Path, key: Option<&str>) -> bool {
    key.zip(std::fs::read(output).ok())
        .is_some_and(|(key, bytes)| wray_runtime::custom_section(&bytes, SOURCE_SECTION) == Some(key.as_bytes()))
}

/// `wray run job.py`: the script's component — `job.wasm` beside it, as
/// `wray build job.py` writes it, when that was built from the same inputs,
/// else built now (half a minute) into the same place.
fn built(script: &Path) -> Result<PathBuf, Failure> {
    if !script.is_file() {
        return Err(anyhow!("{} does not exist", script.display()).into());
    }
    let tools = componentize_py()?;
    let output = script.with_extension("wasm");
    // Hashed once, before a build (see `build`), and used for both the
    // check and the build.
    let key = source_key(&tools.0, script);
    if is_current(&output, key.as_deref()) {
        return Ok(output);
    }
    build_with(&tools, script, Some(output), &[], key)
}

/// A hash of everything a script's build reads that can change between two
/// runs: this wray's SDK and WIT, the componentize-py install (its path,
/// size and time), the script, and every `.py` file under the script's
/// directory (what it may import; hidden directories, `__pycache__` and
/// virtual environments skipped). `None` when the directory is past
/// [`MAX_SOURCE_FILES`] or [`MAX_SOURCE_BYTES`], or cannot be read.
fn source_key(componentize: &Path, script: &Path) -> Option<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut part = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    part(env!("CARGO_PKG_VERSION").as_bytes());
    part(WIT.as_bytes());
    part(RAY_ALIAS.as_bytes());
    for (file, text) in SDK {
        part(file.as_bytes());
        part(text.as_bytes());
    }
    let tool = std::fs::metadata(componentize).ok()?;
    part(componentize.as_os_str().as_encoded_bytes());
    part(&tool.len().to_le_bytes());
    part(format!("{:?}", tool.modified().ok()?).as_bytes());
    part(script.file_name()?.as_encoded_bytes());
    // The active virtual environment's packages are bundled too: its path,
    // and when each of its site-packages last changed (pip renames entries
    // there as it installs, upgrades or removes a package).
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        part(venv.as_encoded_bytes());
        let mut libs: Vec<PathBuf> = std::fs::read_dir(Path::new(&venv).join("lib"))
            .map(|entries| entries.filter_map(|e| Some(e.ok()?.path().join("site-packages"))).collect())
            .unwrap_or_default();
        libs.sort();
        for lib in libs {
            if let Ok(changed) = std::fs::metadata(&lib).and_then(|m| m.modified()) {
                part(lib.as_os_str().as_encoded_bytes());
                part(format!("{changed:?}").as_bytes());
            }
        }
    }
    let dir = script.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut files = Vec::new();
    let mut total = 0u64;
    python_files(dir, &mut files, &mut total).ok()?;
    files.sort();
    for file in files {
        part(file.strip_prefix(dir).unwrap_or(&file).as_os_str().as_encoded_bytes());
        part(&std::fs::read(&file).ok()?);
    }
    Some(format!("{:x}", h.finalize()))
}

/// The `.py` files under `dir` into `files`, counting their bytes; an
/// error past the bounds of [`source_key`].
fn python_files(dir: &Path, files: &mut Vec<PathBuf>, total: &mut u64) -> std::io::Result<()> {
    if dir.join("pyvenv.cfg").is_file() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let kind = entry.file_type()?;
        if kind.is_dir() && !name.starts_with('.') && name != "__pycache__" {
            python_files(&entry.path(), files, total)?;
        } else if kind.is_file() && name.ends_with(".py") {
            *total += entry.metadata()?.len();
            files.push(entry.path());
            if files.len() > MAX_SOURCE_FILES || *total > MAX_SOURCE_BYTES {
                return Err(std::io::Error::other("too many Python files to hash"));
            }
        }
    }
    Ok(())
}

/// [`build`] with the tools found ([`componentize_py`]) and more
/// directories for imports (a project's installed dependencies); returns
/// the component's path. `key`, taken before the build (a script's
/// [`source_key`], a project's [`project_key`]), is recorded in the
/// component's [`SOURCE_SECTION`]; `None` records nothing.
fn build_with(
    (componentize, python): &(PathBuf, PathBuf),
    script: &Path,
    output: Option<PathBuf>,
    paths: &[PathBuf],
    key: Option<String>,
) -> Result<PathBuf, Failure> {
    let source = std::fs::read_to_string(script)
        .map_err(|e| Failure::Usage(anyhow!("cannot read {}: {e}", script.display())))?;
    let dir = script.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = script.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "job.py".into());
    let output = output.unwrap_or_else(|| script.with_extension("wasm"));
    let cloudpickle = cloudpickle_dir(python)?;

    // Everything componentize-py reads, in one scratch directory.
    let work = tempfile::tempdir().context("creating a build directory")?;
    let wit = work.path().join("wit");
    let lib = work.path().join("lib");
    let sdk = lib.join("wray");
    std::fs::create_dir_all(&wit)
        .and_then(|()| std::fs::create_dir_all(&sdk))
        .context("writing the build directory")?;
    std::fs::write(wit.join("runtime.wit"), WIT).context("writing the WIT world")?;
    for (file, text) in SDK {
        let file = sdk.join(file);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).context("writing the wray package")?;
        }
        std::fs::write(file, text).context("writing the wray package")?;
    }
    // `wray.__version__` (and `ray.__version__`): the wray that built it.
    std::fs::write(sdk.join("_version.py"), format!("__version__ = {}\n", python_str(env!("CARGO_PKG_VERSION"))))
        .context("writing the wray package")?;
    std::fs::create_dir_all(lib.join("ray"))
        .and_then(|()| std::fs::write(lib.join("ray/__init__.py"), RAY_ALIAS))
        .context("writing the ray alias package")?;
    copy_dir(&cloudpickle, &lib.join("cloudpickle")).context("copying cloudpickle")?;
    // The component's top module: the export, and the script (imported
    // from, and syntax-checked, at build time).
    let app = format!(
        "from wray._entry import Entry, set_script\nset_script({}, {})\n",
        python_str(&name),
        python_str(&source)
    );
    std::fs::write(lib.join(format!("{APP_MODULE}.py")), app).context("writing the app module")?;

    // Built in the scratch directory and renamed into place once whole: a
    // failed build leaves no file, and a second `wray run job.py` at the
    // same moment reads the old component or the new one, never half.
    let built = work.path().join("job.wasm");
    eprintln!("building {} with componentize-py (about half a minute) ...", script.display());
    let out = Command::new(componentize)
        .arg("-d")
        .arg(&wit)
        .args(["-w", "job", "componentize", APP_MODULE, "-p"])
        .arg(&lib)
        .arg("-p")
        .arg(dir)
        .args(paths.iter().flat_map(|p| [std::ffi::OsStr::new("-p"), p.as_os_str()]))
        .arg("-o")
        .arg(&built)
        .output()
        .with_context(|| format!("running {}", componentize.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Failure::Usage(anyhow!("{} does not build:\n{}", script.display(), python_error(&stderr))));
    }
    // Python tasks reuse their instances within a job (a fresh interpreter
    // instance costs milliseconds; docs/PYTHON.md, "Speed"): the component
    // says so in a custom section the host reads at load.
    let mut bytes = wray_runtime::with_reuse_section(
        std::fs::read(&built).with_context(|| format!("reading {}", built.display()))?,
    );
    if let Some(key) = key {
        bytes = wray_runtime::with_custom_section(bytes, SOURCE_SECTION, key.as_bytes());
    }
    let partial = output.with_extension(format!("wasm.{}.partial", std::process::id()));
    std::fs::write(&partial, bytes)
        .and_then(|()| std::fs::rename(&partial, &output))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })
        .with_context(|| format!("writing {}", output.display()))?;
    Ok(output)
}

/// What componentize-py printed, reduced to the Python error when there is
/// one (its own wrapping names the build's scratch files, not the user's).
fn python_error(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    match lines.iter().position(|l| l.starts_with("Traceback (most recent call last)")) {
        Some(start) => lines[start..]
            .iter()
            .filter(|l| !l.contains(APP_MODULE) && !l.contains("/wray/_entry.py") && !l.contains("/wray/_preload.py"))
            .take_while(|l| !l.starts_with("Caused by") && !l.starts_with("Stack backtrace"))
            .copied()
            .collect::<Vec<_>>()
            .join("\n")
            .trim_end()
            .to_string(),
        None => stderr.trim_end().to_string(),
    }
}

/// `s` as a Python string literal.
fn python_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            if entry.file_name() != "__pycache__" {
                copy_dir(&path, &to.join(entry.file_name()))?;
            }
        } else {
            std::fs::copy(&path, to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_become_python_literals() {
        assert_eq!(python_str("a\"b\\c\nd\te\u{1}"), r#""a\"b\\c\nd\te\x01""#);
        assert_eq!(python_str("é"), "\"é\"");
    }

    #[test]
    fn the_python_error_is_kept_and_the_scratch_frames_dropped() {
        let stderr = "Error: initialization failed\n\nTraceback (most recent call last):\n  File \"/tmp/x/lib/wray_job_app.py\", line 2, in <module>\n  File \"/tmp/x/lib/wray/_entry.py\", line 40, in set_script\n  File \"job.py\", line 3\n    def f(:\n          ^\nSyntaxError: invalid syntax\n\nCaused by:\n    x";
        let kept = python_error(stderr);
        assert!(kept.starts_with("Traceback") && kept.ends_with("SyntaxError: invalid syntax"), "{kept}");
        assert!(!kept.contains("wray_job_app") && !kept.contains("_entry.py"), "{kept}");
    }
}
