//! `checkpoint`: how an actor's SDK hands its memory to the host for a
//! snapshot and pulls it back on restore (the image itself: `crate::checkpoint`).

use crate::bindings::wray::runtime::{checkpoint, types};
use crate::checkpoint::MAX_LOAD_CHUNK;
use crate::instance::convert::to_wit_error;
use crate::instance::state::State;

impl checkpoint::Host for State {
    async fn standing(&mut self) -> wasmtime::Result<()> {
        self.standing = self.table.iter_mut().count();
        Ok(())
    }

    async fn save(&mut self, base: u32, memory: Vec<u8>) -> wasmtime::Result<Result<(), types::Error>> {
        // The linker serves `save` with `save_in_place`; this binding is
        // what a linker without that override would use.
        let saved = self.check_saveable().and_then(|()| self.image.record(base, &memory));
        Ok(saved.map(|changed| self.call.changed = Some(changed)).map_err(to_wit_error))
    }

    async fn image(&mut self) -> wasmtime::Result<Result<(u32, u64, u64), types::Error>> {
        let image = &self.image;
        if image.is_empty() {
            return Ok(Err(types::Error::InvalidArgument("there is no checkpoint to restore".into())));
        }
        Ok(Ok((image.base, image.memory_size, image.data.len() as u64)))
    }

    async fn load(&mut self, offset: u64, len: u32) -> wasmtime::Result<Result<Vec<u8>, types::Error>> {
        let data = &self.image.data;
        let range = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(len as usize)?))
            .filter(|r| len <= MAX_LOAD_CHUNK && r.end <= data.len());
        Ok(match range {
            Some(r) => Ok(data[r].to_vec()),
            None => Err(types::Error::InvalidArgument(format!(
                "cannot load {len} bytes at {offset} of a checkpoint of {} bytes (at most {MAX_LOAD_CHUNK} per call)",
                data.len()
            ))),
        })
    }
}
