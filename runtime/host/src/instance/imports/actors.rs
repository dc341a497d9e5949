//! `actors`: create, take a handle, call (with options or without), find by name (one or all), kill.

use crate::bindings::wray::runtime::{actors, types};
use crate::instance::convert::{from_wit_actor, to_wit_actor, to_wit_error};
use crate::instance::state::{RefGuard, State};
use wasmtime::component::Resource;
use wray_core::Error;

impl State {
    /// Queues a method call whose generator, if it is one, pauses while
    /// `window` of its items wait unread (0: no bound).
    async fn call_method(
        &mut self,
        actor: types::ActorId,
        method: String,
        args: Vec<types::Arg>,
        window: u32,
    ) -> wasmtime::Result<Result<Resource<RefGuard>, types::Error>> {
        let (_, args, seq) = match self.submission("method name", &method, None, args)? {
            Ok(s) => s,
            Err(e) => return Ok(Err(to_wit_error(e))),
        };
        let work = self.services.call_actor(&self.caller, seq, from_wit_actor(actor), method, args, window);
        let r = self.call.clock.off_while_waiting(work).await;
        match r {
            Ok(id) => Ok(Ok(self.guard(id)?)),
            Err(e) => Ok(Err(to_wit_error(e))),
        }
    }
}

impl actors::Host for State {
    async fn create(
        &mut self,
        class: String,
        args: Vec<types::Arg>,
        options: types::Options,
    ) -> wasmtime::Result<Result<types::ActorId, types::Error>> {
        let (options, args, seq) = match self.submission("class name", &class, Some((options, true)), args)? {
            Ok(s) => s,
            Err(e) => return Ok(Err(to_wit_error(e))),
        };
        let r = self.services.create_actor(&self.caller, seq, class, args, options).await;
        Ok(r.map(to_wit_actor).map_err(to_wit_error))
    }

    async fn call(
        &mut self,
        actor: types::ActorId,
        method: String,
        args: Vec<types::Arg>,
    ) -> wasmtime::Result<Result<Resource<RefGuard>, types::Error>> {
        self.call_method(actor, method, args, 0).await
    }

    async fn call_with(
        &mut self,
        actor: types::ActorId,
        method: String,
        args: Vec<types::Arg>,
        options: actors::CallOptions,
    ) -> wasmtime::Result<Result<Resource<RefGuard>, types::Error>> {
        match generator_window(&options) {
            Ok(window) => self.call_method(actor, method, args, window).await,
            Err(e) => Ok(Err(to_wit_error(e))),
        }
    }

    async fn handle(
        &mut self,
        actor: types::ActorId,
    ) -> wasmtime::Result<Result<Option<Resource<RefGuard>>, types::Error>> {
        match self.services.actor_handle(&self.caller, from_wit_actor(actor)) {
            Ok(Some(id)) => Ok(Ok(Some(self.guard(id)?))),
            Ok(None) => Ok(Ok(None)),
            Err(e) => Ok(Err(to_wit_error(e))),
        }
    }

    async fn get_named(&mut self, name: String) -> wasmtime::Result<Result<(types::ActorId, String), types::Error>> {
        Ok(self
            .services
            .named_actor(&self.caller, &name)
            .await
            .map(|(id, class)| (to_wit_actor(id), class))
            .map_err(to_wit_error))
    }

    async fn list_named(&mut self) -> wasmtime::Result<Result<Vec<String>, types::Error>> {
        Ok(self.services.named_actors(&self.caller).await.map_err(to_wit_error))
    }

    async fn kill(&mut self, actor: types::ActorId, no_restart: bool) -> wasmtime::Result<Result<(), types::Error>> {
        Ok(self.services.kill_actor(&self.caller, from_wit_actor(actor), no_restart).map_err(to_wit_error))
    }
}

/// A call's generator window from its options: 0 for none (the method runs
/// ahead of its reader), an error for an explicit 0.
pub(crate) fn generator_window(options: &actors::CallOptions) -> Result<u32, Error> {
    match options.generator_backpressure {
        None => Ok(0),
        Some(0) => Err(Error::InvalidArgument("generator_backpressure must be at least 1".into())),
        Some(n) => Ok(n),
    }
}
