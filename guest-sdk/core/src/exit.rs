//! `std::process::exit` in a job.
//!
//! The standard library's `exit` runs the C library's `atexit` work and
//! then `_Exit(status)`, which in wasi-libc calls WASI's `exit` — whose
//! argument carries only success or failure, so `exit(3)` would reach the
//! host as a bare failure. Defining `_Exit` here takes precedence over the
//! C library's (the linker only pulls an archive member for a symbol
//! nothing else defines) and hands the whole status to the host through
//! `tasks.exit`, which stops the instance.

/// The C library's last step of `exit`: report `status` and stop.
#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
#[unsafe(no_mangle)]
pub extern "C" fn _Exit(status: i32) -> ! {
    crate::bindings::wray::runtime::tasks::exit(status);
    // The host traps inside `exit`; a host that returned gets a trap here.
    core::arch::wasm32::unreachable()
}
