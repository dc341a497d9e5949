//! `tasks` (submit, get, wait, put, cancel, panics, exit) and the
//! `object-ref` resource of `types`.

use crate::bindings::wray::runtime::{tasks, types};
use crate::instance::GuestExit;
use crate::instance::convert::{check_size, check_value, from_wit_id, to_wit_error, to_wit_id};
use crate::instance::state::{RefGuard, State};
use crate::services::NextItems;
use std::time::Duration;
use wasmtime::component::Resource;
use wray_core::{Error, ObjectId, limits};

impl types::Host for State {}

impl types::HostObjectRef for State {
    async fn id(&mut self, r: Resource<RefGuard>) -> wasmtime::Result<types::ObjectId> {
        Ok(to_wit_id(self.table.get(&r)?.id))
    }

    async fn clone_ref(&mut self, r: Resource<RefGuard>) -> wasmtime::Result<Resource<RefGuard>> {
        let id = self.table.get(&r)?.id;
        // The caller holds a ref, so the object exists and is this job's.
        self.services.add_ref(self.caller.job, id).map_err(|e| wasmtime::format_err!("clone-ref: {e}"))?;
        self.guard(id)
    }

    async fn from_id(&mut self, id: types::ObjectId) -> wasmtime::Result<Result<Resource<RefGuard>, types::Error>> {
        let id = from_wit_id(id);
        // A ref the guest dropped frees its object before this looks for
        // it, as it would have without the batching.
        self.apply_releases();
        match self.services.add_ref(self.caller.job, id) {
            Ok(()) => Ok(Ok(self.guard(id)?)),
            Err(e) => Ok(Err(to_wit_error(e))),
        }
    }

    fn drop(&mut self, r: Resource<RefGuard>) -> wasmtime::Result<()> {
        let guard = self.table.delete(r)?;
        self.defer_release(guard);
        Ok(())
    }
}

impl State {
    /// `tasks.get`: the values as the store holds them, shared, so that the
    /// linker lowers each into the guest's memory straight from the store's
    /// buffer (a large object used to be copied into a fresh vector first:
    /// a copy plus a page fault per 4 KiB).
    pub(crate) async fn get_shared(
        &mut self,
        refs: Vec<Resource<RefGuard>>,
        timeout_ms: Option<u64>,
    ) -> wasmtime::Result<Result<Vec<bytes::Bytes>, types::Error>> {
        let ids = self.ids(&refs)?;
        // Most reads find everything ready: answered without a future and
        // without touching the clock.
        let values = match self.services.get_now(&ids) {
            Some(now) => now,
            None => self.wait_for_values(ids, timeout_ms).await,
        };
        // Results read together are mostly dropped together: known small,
        // their releases can be batched. (A single `get`'s ref is released
        // at once, as before: noting its size cost a lookup per read.)
        if let Ok(values) = &values {
            self.note_sizes(&refs, values)?;
        }
        Ok(values.map_err(to_wit_error))
    }

    /// `tasks.get-one`: as [`Self::get_shared`] for one object.
    pub(crate) async fn get_one_shared(
        &mut self,
        r: Resource<RefGuard>,
        timeout_ms: Option<u64>,
    ) -> wasmtime::Result<Result<bytes::Bytes, types::Error>> {
        let id = self.table.get(&r)?.id;
        let values = match self.services.get_now(&[id]) {
            Some(now) => now,
            None => self.wait_for_values(vec![id], timeout_ms).await,
        };
        Ok(values
            .and_then(|v| v.into_iter().next().ok_or_else(|| Error::ObjectLost(format!("object {id} has no value"))))
            .map_err(to_wit_error))
    }

    /// The values of `ids`, some not ready yet: the caller's clock stops
    /// while it waits.
    async fn wait_for_values(
        &mut self,
        ids: Vec<ObjectId>,
        timeout_ms: Option<u64>,
    ) -> Result<Vec<bytes::Bytes>, Error> {
        self.apply_releases();
        let work = self.services.get(&self.caller, ids, timeout_ms.map(Duration::from_millis));
        self.call.clock.off_while_waiting(work).await
    }
}

impl tasks::Host for State {
    async fn submit(
        &mut self,
        function: String,
        args: Vec<types::Arg>,
        options: types::Options,
    ) -> wasmtime::Result<Result<Resource<RefGuard>, types::Error>> {
        let (options, args, seq) = match self.submission("function name", &function, Some((options, false)), args)? {
            Ok(s) => s,
            Err(e) => return Ok(Err(to_wit_error(e))),
        };
        let work = self.services.submit(&self.caller, seq, function, args, options);
        let r = self.call.clock.off_while_waiting(work).await;
        match r {
            Ok(id) => Ok(Ok(self.guard(id)?)),
            Err(e) => Ok(Err(to_wit_error(e))),
        }
    }

    /// Not reached at run time: `linker` shadows it with `get_shared`,
    /// which lowers the values without this copy. Kept correct for
    /// completeness.
    async fn get(
        &mut self,
        refs: Vec<Resource<RefGuard>>,
        timeout_ms: Option<u64>,
    ) -> wasmtime::Result<Result<Vec<Vec<u8>>, types::Error>> {
        Ok(self.get_shared(refs, timeout_ms).await?.map(|vs| vs.into_iter().map(|v| v.to_vec()).collect()))
    }

    /// Not reached at run time: `linker` shadows it with
    /// `get_one_shared`. Kept correct for completeness.
    async fn get_one(
        &mut self,
        r: Resource<RefGuard>,
        timeout_ms: Option<u64>,
    ) -> wasmtime::Result<Result<Vec<u8>, types::Error>> {
        Ok(self.get_one_shared(r, timeout_ms).await?.map(|v| v.to_vec()))
    }

    async fn wait(
        &mut self,
        refs: Vec<Resource<RefGuard>>,
        num_returns: u32,
        timeout_ms: Option<u64>,
    ) -> wasmtime::Result<Result<Vec<bool>, types::Error>> {
        self.apply_releases();
        let ids = self.ids(&refs)?;
        let work = self.services.wait(&self.caller, ids, num_returns as usize, timeout_ms.map(Duration::from_millis));
        let r = self.call.clock.off_while_waiting(work).await;
        Ok(r.map_err(to_wit_error))
    }

    async fn put(&mut self, value: types::Value) -> wasmtime::Result<Result<Resource<RefGuard>, types::Error>> {
        if let Err(e) = check_value(&value) {
            return Ok(Err(to_wit_error(e)));
        }
        self.call.puts += 1;
        let id = ObjectId::put_by(self.caller.task, self.call.puts);
        let value = self.take_value(value)?;
        let size = value.data.len();
        match self.services.put(&self.caller, id, value) {
            Ok(()) => Ok(Ok(self.guard_sized(id, Some(size))?)),
            Err(e) => Ok(Err(to_wit_error(e))),
        }
    }

    /// Not reached at run time: `linker` shadows it with
    /// `put_buffer_in_place`. Kept correct for completeness.
    async fn put_buffer(&mut self, data: Vec<u8>) -> wasmtime::Result<Result<Resource<RefGuard>, types::Error>> {
        if let Err(e) = check_size(data.len()) {
            return Ok(Err(to_wit_error(e)));
        }
        self.put_bytes(bytes::Bytes::from(data))
    }

    async fn yield_item(&mut self, value: types::Value) -> wasmtime::Result<Result<(), types::Error>> {
        if let Err(e) = check_value(&value) {
            return Ok(Err(to_wit_error(e)));
        }
        let index = self.call.yielded;
        if index >= limits::MAX_GENERATOR_ITEMS {
            return Ok(Err(to_wit_error(Error::InvalidArgument(format!(
                "a generator yields at most {} items (MAX_GENERATOR_ITEMS)",
                limits::MAX_GENERATOR_ITEMS
            )))));
        }
        self.call.yielded += 1;
        let value = self.take_value(value)?;
        match self.services.yield_item(&self.caller, index, value) {
            Ok(false) => Ok(Ok(())),
            // Its window of unread items is full: the task pauses here,
            // off its execution clock, until its reader takes one.
            Ok(true) => {
                self.call.clock.off_while_waiting(self.services.wait_for_reader(&self.caller)).await;
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(to_wit_error(e))),
        }
    }

    async fn next_items(
        &mut self,
        generator: Resource<RefGuard>,
        index: u32,
        max: u32,
        timeout_ms: Option<u64>,
    ) -> wasmtime::Result<Result<tasks::GeneratorRead, types::Error>> {
        self.apply_releases();
        let id = self.table.get(&generator)?.id;
        let work = self.services.next_items(&self.caller, id, index, max, timeout_ms.map(Duration::from_millis));
        let items = match self.call.clock.off_while_waiting(work).await {
            Ok(NextItems::Items(items)) => items,
            Ok(NextItems::Ended { failed: false }) => return Ok(Ok(tasks::GeneratorRead::Ended)),
            Ok(NextItems::Ended { failed: true }) => return Ok(Ok(tasks::GeneratorRead::Failed)),
            Err(e) => return Ok(Err(to_wit_error(e))),
        };
        let mut read = Vec::with_capacity(items.len());
        let mut items = items.into_iter();
        while let Some((item, value)) = items.next() {
            // An item comes with its value only when small.
            match self.guard_sized(item, value.as_ref().map(|v| v.len())) {
                Ok(item) => read.push(tasks::GeneratorItem { item, value: value.map(|v| v.to_vec()) }),
                Err(e) => {
                    // Too many handles: the guest traps, and the references
                    // taken for the items not handed out are given back (the
                    // failed one's went with its guard).
                    for (rest, _) in items {
                        self.services.release(self.caller.job, rest);
                    }
                    return Err(e);
                }
            }
        }
        Ok(Ok(tasks::GeneratorRead::Items(read)))
    }

    async fn cancel(&mut self, r: Resource<RefGuard>) -> wasmtime::Result<Result<(), types::Error>> {
        let id = self.table.get(&r)?.id;
        Ok(self.services.cancel(&self.caller, id).map_err(to_wit_error))
    }

    async fn report_panic(&mut self, message: String) -> wasmtime::Result<()> {
        let mut message = message;
        if message.len() > limits::MAX_PANIC_MESSAGE {
            let mut cut = limits::MAX_PANIC_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str("...");
        }
        self.call.panic = Some(message);
        Ok(())
    }

    async fn exit(&mut self, status: i32) -> wasmtime::Result<()> {
        // A trap, as WASI's own `exit` is: nothing of the guest runs after it.
        Err(wasmtime::Error::new(GuestExit(status)))
    }
}
