//! `wray build`: compile a guest crate to a job component.

use crate::Failure;
use anyhow::Context;
use clap::Args;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Build a job component: a guest crate (a `cdylib` depending on the `wray`
/// SDK) into a wasm32-wasip2 component, in release mode — or a crate with
/// one binary (`fn main`) into a standard `wasi:cli/command` component,
/// which `wray run` runs too; or a Python script
/// (`job.py`, or a project directory: a `pyproject.toml` whose `[tool.wray]
/// main` names the script, default `main.py`, and whose `[project]
/// dependencies` are installed into the component) with componentize-py.
/// Prints the component's path as the last line of output.
#[derive(Args)]
#[command(after_help = "\
Examples:
  wray build                    build the crate in the current directory
  wray build examples/pi        build another crate
  wray run $(wray build examples/pi | tail -n1)
  wray build job.py             a Python job: writes job.wasm beside it
  wray build job.py -o /tmp/j.wasm")]
pub struct BuildCommand {
    /// The crate's directory, a Python script, or a Python project's
    /// directory (a `pyproject.toml` or a `main.py`; default: the current
    /// directory).
    #[arg(value_name = "PATH", default_value = ".")]
    dir: PathBuf,

    /// Where to write the component (Python jobs; default: the script's
    /// name with `.wasm` beside it, or the project's name in its
    /// directory).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Build with the dev profile instead of release (Rust crates).
    #[arg(long)]
    debug: bool,

    /// Build this binary of the crate, as a WASI command (Rust crates with
    /// several; one alone needs no flag).
    #[arg(long, value_name = "NAME")]
    bin: Option<String>,
}

impl BuildCommand {
    pub fn execute(self) -> Result<(), Failure> {
        let script = self.dir.extension().is_some_and(|e| e == "py");
        let project = !script && super::build_python::is_project(&self.dir);
        if (script || project) && self.bin.is_some() {
            return Err(Failure::Usage(anyhow::anyhow!("--bin applies to Rust crates")));
        }
        if script {
            if !self.dir.is_file() {
                return Err(anyhow::anyhow!("{} does not exist", self.dir.display()).into());
            }
            return super::build_python::build(&self.dir, self.output);
        }
        // Named before its contents are looked for: "/typo has no
        // Cargo.toml" sent people looking for a manifest.
        if !self.dir.exists() {
            return Err(anyhow::anyhow!("{} does not exist", self.dir.display()).into());
        }
        if project {
            return super::build_python::build_project(&self.dir, self.output);
        }
        if self.output.is_some() {
            return Err(
                anyhow::anyhow!("--output applies to Python jobs; a crate's component is where cargo puts it").into()
            );
        }
        let manifest = self.dir.join("Cargo.toml");
        if !manifest.is_file() {
            return Err(anyhow::anyhow!(
                "{} has no Cargo.toml: give the directory of a guest crate, a Python script or a directory with a main.py",
                self.dir.display()
            )
            .into());
        }
        check_wasm_target(&self.dir)?;
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.arg("build")
            .arg("--manifest-path")
            .arg(&manifest)
            .args(["--target", "wasm32-wasip2", "--message-format=json-render-diagnostics"])
            // Jobs carry no debug info: it would triple their size and
            // panics are reported by message and location anyway.
            .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
            .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if !self.debug {
            cmd.arg("--release");
        }
        if let Some(bin) = &self.bin {
            cmd.args(["--bin", bin]);
        }
        let mut child = cmd.spawn().context("running cargo (is a Rust toolchain installed?)")?;
        let stdout = child.stdout.take().expect("piped");
        let mut artifacts = Vec::new();
        // Binaries, (name, .wasm): a crate with no library is a WASI command.
        let mut bins: Vec<(String, PathBuf)> = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.context("reading cargo's output")?;
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if msg["reason"] != "compiler-artifact" {
                continue;
            }
            let kinds = msg["target"]["kind"].as_array().cloned().unwrap_or_default();
            if kinds.iter().any(|k| k == "bin")
                && let Some(exe) = msg["executable"].as_str()
            {
                bins.push((msg["target"]["name"].as_str().unwrap_or_default().to_string(), PathBuf::from(exe)));
            }
            if kinds.iter().any(|k| k == "cdylib") {
                for f in msg["filenames"].as_array().into_iter().flatten() {
                    if let Some(f) = f.as_str().filter(|f| f.ends_with(".wasm")) {
                        artifacts.push(PathBuf::from(f));
                    }
                }
            }
        }
        let status = child.wait().context("waiting for cargo")?;
        if !status.success() {
            return Err(Failure::Usage(anyhow::anyhow!("cargo build failed ({status})")));
        }
        // The binary asked for (cargo builds the crate's library beside it);
        // else a job's library first; else the crate's one binary, a command.
        if self.bin.is_some() {
            artifacts.clear();
        }
        // Several binaries cannot be told apart here: cargo builds them all.
        let path = match (artifacts.pop(), bins.len()) {
            (Some(path), _) => path,
            (None, 1) => bins.remove(0).1,
            (None, n) if n > 1 => {
                let names: Vec<&str> = bins.iter().map(|(name, _)| name.as_str()).collect();
                return Err(anyhow::anyhow!(
                    "{} builds {n} binaries ({}): name the one to build with --bin NAME",
                    self.dir.display(),
                    names.join(", ")
                )
                .into());
            }
            (None, _) => {
                return Err(anyhow::anyhow!(
                    "cargo built no cdylib and no binary in {}: a wray job is a library, \
                     add `[lib] crate-type = [\"cdylib\"]` to its Cargo.toml",
                    self.dir.display()
                )
                .into());
            }
        };
        println!("{}", path.display());
        Ok(())
    }
}

/// Fails with the fix in words if the toolchain that will build `dir` lacks
/// the wasm32-wasip2 target (cargo's own error is a confusing "can't find
/// crate for `core`").
fn check_wasm_target(dir: &std::path::Path) -> Result<(), Failure> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    // Run in the crate's directory so that rustup picks the toolchain the
    // build will use (a rust-toolchain.toml there, or the default).
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).current_dir(dir).output() else {
        return Ok(()); // no rustc on PATH: let cargo report it
    };
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if out.status.success() && !sysroot.join("lib/rustlib/wasm32-wasip2").is_dir() {
        return Err(anyhow::anyhow!(
            "the wasm32-wasip2 target is not installed for the toolchain at {}: run `rustup target add wasm32-wasip2` (or `rustup toolchain install` where a rust-toolchain.toml lists it)",
            sysroot.display()
        )
        .into());
    }
    Ok(())
}
