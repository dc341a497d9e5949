//! The linker every job component is linked against, with the two imports
//! served by hand-written bindings that read guest memory in place.

use super::convert::{check_size, to_wit_error};
use super::state::{RefGuard, State};
use crate::bindings::Job;
use crate::bindings::wray::runtime::types;
use crate::engine::Engine;

use wasmtime::AsContext;
use wasmtime::StoreContextMut;
use wasmtime::component::{HasSelf, Linker, Resource};

/// Builds the linker every job component is linked against: WASI p2 (what
/// the Rust standard library imports) and the `wray:runtime` interfaces.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<State>> {
    let mut linker = Linker::new(engine.wasmtime());
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    Job::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?;
    // `put-buffer` replaces the generated binding with one that reads the
    // guest's bytes in place (a `WasmList` view) and copies them once, into
    // a recycled buffer, instead of into a fresh `Vec` first.
    linker.allow_shadowing(true);
    linker.instance("wray:runtime/tasks@0.1.0")?.func_wrap_async("put-buffer", put_buffer_in_place)?;
    // Likewise a snapshot is compared with the last one where it lies.
    linker.instance("wray:runtime/checkpoint@0.1.0")?.func_wrap_async("save", save_in_place)?;
    linker.allow_shadowing(false);
    Ok(linker)
}

type PutResult = wasmtime::Result<(Result<Resource<RefGuard>, types::Error>,)>;

fn put_buffer_in_place(
    mut store: StoreContextMut<'_, State>,
    (data,): (wasmtime::component::WasmList<u8>,),
) -> Box<dyn std::future::Future<Output = PutResult> + Send + '_> {
    Box::new(async move {
        let bytes = {
            let slice = data.as_le_slice(store.as_context());
            if let Err(e) = check_size(slice.len()) {
                return Ok((Err(to_wit_error(e)),));
            }
            crate::buffers::copy_to_bytes(slice)
        };
        Ok((store.data_mut().put_bytes(bytes)?,))
    })
}

type SaveResult = wasmtime::Result<(Result<(), types::Error>,)>;

fn save_in_place(
    mut store: StoreContextMut<'_, State>,
    (base, memory): (u32, wasmtime::component::WasmList<u8>),
) -> Box<dyn std::future::Future<Output = SaveResult> + Send + '_> {
    Box::new(async move {
        // The image is taken out of the state while the guest's memory is
        // borrowed for reading.
        if let Err(e) = store.data_mut().check_saveable() {
            return Ok((Err(to_wit_error(e)),));
        }
        let mut image = std::mem::take(&mut store.data_mut().image);
        let recorded = image.record(base, memory.as_le_slice(store.as_context()));
        let s = store.data_mut();
        s.image = image;
        Ok((recorded.map(|changed| s.call.changed = Some(changed)).map_err(to_wit_error),))
    })
}
