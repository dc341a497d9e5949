//! The linker every job component is linked against, with the imports that
//! move large buffers served by hand-written bindings that read guest
//! memory in place.

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
    let mut tasks = linker.instance("wray:runtime/tasks@0.1.0")?;
    tasks.func_wrap_async("put-buffer", put_buffer_in_place)?;
    // `get` lowers each value straight from the store's shared buffer.
    tasks.func_wrap_async("get", get_shared)?;
    tasks.func_wrap_async("get-one", get_one_shared)?;
    // Likewise a snapshot is compared with the last one where it lies.
    linker.instance("wray:runtime/checkpoint@0.1.0")?.func_wrap_async("save", save_in_place)?;
    // And a collective's buffers are read where they lie and lowered into
    // the receiver straight from the host buffers holding them: an
    // allreduce of 100 MiB spent most of its time in copies and in page
    // faults on fresh vectors.
    let mut meeting = linker.instance("wray:runtime/meeting@0.1.0")?;
    meeting.func_wrap_async("exchange", exchange_in_place)?;
    meeting.func_wrap_async("wait-round", wait_round_into_place)?;
    linker.allow_shadowing(false);
    Ok(linker)
}

type PutResult = wasmtime::Result<(Result<Resource<RefGuard>, types::Error>,)>;

fn put_buffer_in_place(
    mut store: StoreContextMut<'_, State>,
    (data,): (wasmtime::component::WasmList<u8>,),
) -> Box<dyn std::future::Future<Output = PutResult> + Send + '_> {
    Box::new(async move {
        // Objects the guest dropped go first, so that their memory is free
        // for the copy (a loop of large puts reuses the same pages).
        store.data_mut().apply_releases();
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

type MeetResult = wasmtime::Result<(super::imports::meeting::Received,)>;

type ExchangeParams =
    (String, u32, u32, u64, String, wasmtime::component::WasmList<u8>, wasmtime::component::WasmList<u64>, u64);

fn exchange_in_place(
    mut store: StoreContextMut<'_, State>,
    (point, size, rank, round, what, parts, lengths, timeout_ms): ExchangeParams,
) -> Box<dyn std::future::Future<Output = MeetResult> + Send + '_> {
    Box::new(async move {
        let share = {
            let (parts, lengths) = (parts.as_le_slice(store.as_context()), lengths.as_le_slice(store.as_context()));
            super::imports::meeting::share_of(size, rank, what, parts, lengths)
        };
        match share {
            Ok(share) => Ok((store.data_mut().meet(point, rank, round, Some(share), timeout_ms).await,)),
            Err(e) => Ok((Err(to_wit_error(e)),)),
        }
    })
}

fn wait_round_into_place(
    mut store: StoreContextMut<'_, State>,
    (point, rank, round, timeout_ms): (String, u32, u64, u64),
) -> Box<dyn std::future::Future<Output = MeetResult> + Send + '_> {
    Box::new(async move { Ok((store.data_mut().meet(point, rank, round, None, timeout_ms).await,)) })
}

type GetResult = wasmtime::Result<(Result<Vec<bytes::Bytes>, types::Error>,)>;

fn get_shared(
    mut store: StoreContextMut<'_, State>,
    (refs, timeout_ms): (Vec<Resource<RefGuard>>, Option<u64>),
) -> Box<dyn std::future::Future<Output = GetResult> + Send + '_> {
    Box::new(async move { Ok((store.data_mut().get_shared(refs, timeout_ms).await?,)) })
}

type GetOneResult = wasmtime::Result<(Result<bytes::Bytes, types::Error>,)>;

fn get_one_shared(
    mut store: StoreContextMut<'_, State>,
    (r, timeout_ms): (Resource<RefGuard>, Option<u64>),
) -> Box<dyn std::future::Future<Output = GetOneResult> + Send + '_> {
    Box::new(async move { Ok((store.data_mut().get_one_shared(r, timeout_ms).await?,)) })
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
