//! Misusing a macro is a compile error pointing at the offending span.

use crate::util::*;
use std::process::Command;

const BAD: &str = r#"
#[wray::remote]
fn borrowed(name: &str) -> usize { name.len() }

#[wray::remote]
async fn not_sync() {}

#[wray::remote]
fn generic<T>(x: T) -> T { x }

#[wray::remote]
pub struct NotAFunction;

pub struct NoCtor;

#[wray::actor]
impl NoCtor {
    pub fn helper(&self) -> u32 { 1 }
}

#[wray::remote(num_cpus = 2)]
fn with_args() {}

#[wray::actor]
pub struct Counter { n: u32 }

#[wray::actor]
impl Counter {
    pub fn new() -> Self { Counter { n: 0 } }
    pub fn take(self) -> u32 { self.n }
}
"#;

/// (message, line of `BAD` the error must point at)
const EXPECTED: &[(&str, usize)] = &[
    ("parameters of a remote call must be owned types", 3),
    ("a remote function cannot be async", 6),
    ("a remote function cannot be generic", 9),
    ("#[wray::remote] goes on a free function", 12),
    ("an actor needs a constructor", 17),
    ("this attribute takes no arguments", 21),
    ("actor methods take `&self` or `&mut self`", 30),
];

#[test]
fn macro_misuse_is_a_spanned_compile_error() {
    let ws = workspace();
    let dir = target_dir().join("compile-fail/bad_macros");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let sdk = ws.join("guest-sdk/wray");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"bad_macros\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n\
             [dependencies]\nwray = {{ path = {sdk:?} }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\n\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), BAD).unwrap();
    // Same dependency versions as the workspace, so the guest build is reused.
    std::fs::copy(ws.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--target", "wasm32-wasip2", "--message-format=short"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", target_dir().join("guests"))
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the bad crate compiled");
    let err = String::from_utf8_lossy(&out.stderr);
    for (message, line) in EXPECTED {
        let hit =
            err.lines().find(|l| l.contains(message)).unwrap_or_else(|| panic!("no error {message:?} in:\n{err}"));
        assert!(hit.contains(&format!("src/lib.rs:{line}:")), "{message:?} should point at line {line}: {hit}");
    }
}
