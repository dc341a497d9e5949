//! Bad files and flags: a clear message naming the problem, exit code 2,
//! never a panic or a hang.

use crate::util::*;
use std::io::Write;

fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".wasm").tempfile().unwrap();
    f.write_all(bytes).unwrap();
    f
}

#[track_caller]
fn rejects(bytes: &[u8], expect: &str) {
    let f = file_with(bytes);
    let name = f.path().to_str().unwrap().to_string();
    let out = wray(&["run", &name]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains(&name), "the message should name the file: {err}");
    assert!(err.contains(expect), "expected {expect:?} in: {err}");
    assert!(!err.contains("panicked"), "the host panicked: {err}");
}

#[test]
fn a_text_file_is_not_wasm() {
    rejects(b"#!/bin/sh\necho hello\n", "is not a WebAssembly file");
}

#[test]
fn an_empty_file_is_not_wasm() {
    rejects(b"", "is not a WebAssembly file");
}

#[test]
fn a_core_module_is_not_a_component() {
    rejects(b"\0asm\x01\0\0\0", "core WebAssembly module");
}

#[test]
fn a_truncated_component_is_invalid() {
    let bytes = std::fs::read(&guests().testjob).unwrap();
    rejects(&bytes[..bytes.len() / 2], "is not a valid component");
}

#[test]
fn a_component_of_another_world_is_not_a_job() {
    // The smallest valid component: no imports, no exports.
    rejects(b"\0asm\x0d\0\x01\0", "is not a wray job");
}

#[test]
fn a_missing_file_is_named() {
    let out = wray(&["run", "/no/such/job.wasm"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("cannot read /no/such/job.wasm"), "{}", stderr(&out));
}

#[test]
fn bad_flags_are_usage_errors() {
    let job = guests().testjob.clone();
    for flags in [
        vec!["--memory-limit", "lots"],
        vec!["--timeout", "soon"],
        vec!["--cpus", "-1"],
        vec!["--env", "NOEQUALS"],
        vec!["--dir", "/definitely/not/a/dir::/x"],
    ] {
        let mut args = vec!["run"];
        args.extend(flags.iter().copied());
        args.push(path(&job));
        let out = wray(&args);
        assert_code(&out, 2);
        assert!(!stderr(&out).is_empty(), "no message for {flags:?}");
    }
}

#[test]
fn help_shows_examples() {
    for args in [vec!["--help"], vec!["run", "--help"], vec!["build", "--help"]] {
        let out = wray(&args);
        assert_code(&out, 0);
        assert!(stdout(&out).contains("Examples:"), "{args:?}: {}", stdout(&out));
    }
}

#[test]
fn build_names_a_directory_without_a_crate() {
    let dir = tempfile::tempdir().unwrap();
    let out = wray(&["build", dir.path().to_str().unwrap()]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("has no Cargo.toml"), "{}", stderr(&out));
}

#[test]
fn build_explains_a_missing_wasm_target() {
    use std::os::unix::fs::PermissionsExt;
    // A rustc whose sysroot has no wasm32-wasip2 target.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("rustc");
    std::fs::write(&fake, format!("#!/bin/sh\necho {}\n", dir.path().display())).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let crate_dir = workspace().join("examples/pi");
    let out = wray_with(
        &["build", crate_dir.to_str().unwrap()],
        &[("RUSTC", fake.to_str().unwrap())],
        std::time::Duration::from_secs(60),
    );
    assert_code(&out, 2);
    assert!(stderr(&out).contains("rustup target add wasm32-wasip2"), "{}", stderr(&out));
}
