//! Builds the guest jobs the CLI carries inside it (today `wray rl`'s,
//! `rl-job/`) for wasm32-wasip2 and hands their paths to the crate as
//! environment variables for `include_bytes!`.
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
