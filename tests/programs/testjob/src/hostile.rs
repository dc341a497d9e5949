//! A hostile guest: forged and stale refs and actor ids, a made-up
//! resource handle, a put past the object size limit — each must fail only
//! the task that tries it.

use crate::*;

/// Bytes a value of type `T` decodes from when its wire form is `fake`'s:
/// how a hostile guest forges an `ObjectRef` or `ActorHandle` without the
/// SDK's help (ids are plain numbers on the wire).
pub(crate) fn forge<T: serde::de::DeserializeOwned + 'static>(fake: &(impl Serialize + 'static)) -> Result<T, String> {
    let Ok(value) = wray::__private::encode_ok(fake) else { unreachable!("tuples encode") };
    wray::__private::decode_arg("forge", "fake", &value.data)
}

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "wray:runtime/types@0.1.0")]
unsafe extern "C" {
    /// The raw canonical-ABI import behind `ObjectRef::id`: a handle index
    /// and where to write the record.
    #[link_name = "[method]object-ref.id"]
    fn raw_object_ref_id(handle: i32, ret: *mut u8);
}

// `cargo test --workspace` builds this crate for the host as well, where the
// raw imports do not exist: stand-ins that are never called there.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) unsafe fn raw_object_ref_id(_handle: i32, _ret: *mut u8) {
    unreachable!("raw imports exist only in the wasm32 job")
}
#[cfg(not(target_arch = "wasm32"))]
pub(crate) unsafe fn raw_put_buffer(_ptr: *const u8, _len: usize, _ret: *mut u32) {
    unreachable!("raw imports exist only in the wasm32 job")
}

/// Calls a host method on a resource handle that was never issued.
#[wray::remote]
pub(crate) fn forged_handle() -> u32 {
    let mut ret = [0u8; 24];
    // SAFETY: deliberately unsound towards the host: the handle is made up.
    // The component model checks it and traps this instance.
    unsafe { raw_object_ref_id(0x7fff_fff0, ret.as_mut_ptr()) };
    ret[0].into()
}

/// Calls a method of an actor id that was never issued.
#[wray::remote]
pub(crate) fn call_forged_actor() -> Result<String, String> {
    let fake = forge::<ActorHandle<Counter>>(&(0xdead_u64, 0xbeef_u64, None::<wray::ObjectRef<()>>))?;
    Ok(wray::get(&fake.get()).map_or_else(|e| format!("error: {e}"), |v| v.to_string()))
}

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "wray:runtime/tasks@0.1.0")]
unsafe extern "C" {
    /// The raw import behind `put` of a buffer: the list's address and
    /// length, and where to write the `result<object-ref, error>`.
    #[link_name = "put-buffer"]
    fn raw_put_buffer(ptr: *const u8, len: usize, ret: *mut u32);
}

/// Puts a list one byte over the object size limit (2 GiB). The SDK cannot
/// build one (a wasm32 `Vec` stops at 2 GiB - 1), so this goes around it:
/// the list is untouched fresh memory, handed over with the raw import.
#[wray::remote]
pub(crate) fn huge_put() -> String {
    let len = (2usize << 30) + 1;
    let pages = len.div_ceil(65536);
    // `cargo test --workspace` compiles this crate for the host too, where
    // there is no wasm memory to grow: there it only has to type-check.
    #[cfg(target_arch = "wasm32")]
    let grown = core::arch::wasm32::memory_grow(0, pages);
    #[cfg(not(target_arch = "wasm32"))]
    let grown = {
        let _ = pages;
        usize::MAX
    };
    let Some(base) = grown.checked_mul(65536) else {
        return "memory.grow failed".into();
    };
    // result<own<object-ref>, error>: the case at 0, the error's case at 4,
    // its message (address, length) at 8 and 12.
    let mut ret = [0u32; 6];
    // SAFETY: [base, base + len) was just grown, so it lies inside memory.
    unsafe { raw_put_buffer(base as *const u8, len, ret.as_mut_ptr()) };
    match (ret[0] & 0xff, ret[1] & 0xff) {
        (0, _) => "stored".into(),
        (1, 5) => {
            // SAFETY: the host wrote an error message of this length there.
            let message = unsafe { std::slice::from_raw_parts(ret[2] as *const u8, ret[3] as usize) };
            format!("invalid argument: {}", String::from_utf8_lossy(message))
        }
        (_, case) => format!("an error of case {case}"),
    }
}

/// Forged and stale handles, and a put over the size limit: each a clear
/// error for the guest that tries it, and nothing else.
pub(crate) fn forged() -> Result<(), Error> {
    let show = |r: Result<String, Error>| r.unwrap_or_else(|e| format!("error: {e}"));
    // A ref to an object this job freed.
    let r = wray::put(&5i64);
    let id = r.id();
    drop(r);
    println!("stale ref: {}", show(ObjectRef::<i64>::from_id(id).map(|_| "accepted".into())));
    // A ref to an id the job never had.
    let forged = forge::<ObjectRef<i64>>(&(u64::MAX, 7u64, 3u32)).map(|_| "accepted".into());
    println!("forged ref: {}", forged.unwrap_or_else(|e| format!("error: {e}")));
    // An actor that does not exist, and one that was killed.
    // Calling it panics the caller (as any refused submission does), so the
    // call runs in a task of its own.
    println!("forged actor: {}", show(wray::get(&call_forged_actor::remote())));
    let c = Counter::remote(1);
    wray::get(&c.get())?;
    wray::kill(&c);
    println!("killed actor: {}", show(wray::get(&c.get()).map(|v| v.to_string())));
    // A made-up resource handle: traps its own task only.
    println!("forged handle: {}", show(wray::get(&forged_handle::remote()).map(|v| v.to_string())));
    println!("huge put: {}", show(wray::get(&huge_put::remote())));
    println!("after forgeries: {}", wray::get(&add::remote(2, 2))?);
    Ok(())
}
