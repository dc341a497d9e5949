//! Builds the guest jobs the CLI carries inside it (today `wray rl`'s,
//! `rl-job/`) for wasm32-wasip2 and hands their paths to the crate as
//! environment variables for `include_bytes!`; and links `wray` with packed
//! relative relocations where the toolchain and the C library have them.
//!
//! The guests are built into `<target>/guests` with the flags `wray build`
//! uses, the directory and flags the integration tests build the examples
//! with, so that the SDK is compiled once for both. The nested cargo gets
//! a clean environment: variables cargo sets for build scripts (the host
//! profile's flags, a wrapper such as clippy-driver, the jobserver) would
//! otherwise leak into the guest build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest.join("../..");
    for watched in ["rl-job", "../../guest-sdk", "../../wit"] {
        println!("cargo:rerun-if-changed={}", manifest.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), PathBuf::from);
    let wasm = build_guest(&manifest.join("rl-job/Cargo.toml"), &target.join("guests"), "wray_rl_job");
    println!("cargo:rustc-env=WRAY_RL_JOB={}", wasm.display());
    if packs_relative_relocations() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether `wray` can be linked with its relative relocations packed
/// (`DT_RELR`, binutils >= 2.38 and glibc >= 2.36). `wray` is a position-
/// independent executable with ~64,000 of them: as a table of 24-byte
/// entries they are 1.5 MiB the loader reads at every start and keeps
/// resident (3.5-3.7 MiB of the idle process in all, with the pages that
/// fault in around them); packed they are 17 KiB. Measured by linking and
/// running a probe with the system's C compiler, rustc's linker here, so
/// that an older toolchain (which would warn at every link) or C library
/// (whose loader would refuse such a binary) simply links as before. Not
/// for cross builds or custom linkers.
fn packs_relative_relocations() -> bool {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let linker_set = std::env::vars().any(|(k, _)| k.starts_with("CARGO_TARGET_") && k.ends_with("_LINKER"));
    if var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || var("TARGET") != var("HOST")
        || linker_set
    {
        return false;
    }
    let out = PathBuf::from(var("OUT_DIR"));
    let (source, probe) = (out.join("relr_probe.c"), out.join("relr_probe"));
    if std::fs::write(&source, "int main(void) { return 0; }\n").is_err() {
        return false;
    }
    let linked = Command::new("cc")
        .args(["-pie", "-fPIE", "-Wl,-z,pack-relative-relocs", "-o"])
        .arg(&probe)
        .arg(&source)
        .output()
        // An older `ld` ignores the option with a warning: nothing to gain.
        .is_ok_and(|o| o.status.success() && o.stderr.is_empty());
    linked && Command::new(&probe).output().is_ok_and(|o| o.status.success())
}

fn build_guest(manifest: &Path, target: &Path, name: &str) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let leaks = (key.starts_with("CARGO") && key != "CARGO_HOME")
            || key.starts_with("RUSTC")
            || key.starts_with("DEP_")
            || ["RUSTFLAGS", "RUSTDOCFLAGS", "TARGET", "HOST", "OUT_DIR", "OPT_LEVEL", "PROFILE", "DEBUG", "NUM_JOBS"]
                .contains(&key.as_ref())
            || ["MAKEFLAGS", "MFLAGS"].contains(&key.as_ref());
        if leaks {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(manifest)
        .env("CARGO_TARGET_DIR", target)
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");
    let status = cmd.status().unwrap_or_else(|e| panic!("running cargo to build {}: {e}", manifest.display()));
    assert!(
        status.success(),
        "building {} for wasm32-wasip2 failed ({status}); is the target installed (`rustup toolchain install` in the repository)?",
        manifest.display()
    );
    target.join("wasm32-wasip2/release").join(format!("{name}.wasm"))
}
