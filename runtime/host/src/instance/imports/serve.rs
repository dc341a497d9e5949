//! `serve`: start an application, call a deployment through a handle.
//!
//! What the guest declares is checked here (names, bounds, options) before
//! the node's [`Serving`](crate::Serving) sees it; everything after — the
//! proxy, replicas, routing — is the serving crate's.

use crate::bindings::wray::runtime::{actors, serve, types};
use crate::instance::convert::{check_name, check_size, options_from_wit, to_wit_error};
use crate::instance::imports::actors::generator_window;
use crate::instance::state::{RefGuard, State};
use crate::services::Application;
use std::time::Duration;
use wasmtime::component::Resource;
use wray_core::Error;
use wray_core::serve::{Autoscaling, Batching, Deployment, check_application};

/// A replica that crashes is rebuilt in place this many times unless the
/// deployment's options say otherwise (Ray Serve replaces dead replicas
/// without limit; a bound keeps a replica that crashes on every request
/// from restarting forever, and the controller replaces it once spent).
pub const REPLICA_MAX_RESTARTS: u32 = 100;

impl State {
    /// `serve.call` and `serve.call-with`: a method of a replica of the
    /// caller's application's `deployment`, its generator paced by
    /// `window` (0: not paced).
    async fn call_deployment(
        &mut self,
        deployment: String,
        method: String,
        args: Vec<types::Arg>,
        window: u32,
    ) -> wasmtime::Result<Result<Resource<RefGuard>, types::Error>> {
        if let Err(e) = check_name("deployment name", &deployment) {
            return Ok(Err(to_wit_error(e)));
        }
        let (_, args, seq) = match self.submission("method name", &method, None, args)? {
            Ok(s) => s,
            Err(e) => return Ok(Err(to_wit_error(e))),
        };
        let work = self.services.serve_call(&self.caller, seq, deployment, method, args, window);
        let r = self.call.clock.off_while_waiting(work).await;
        match r {
            Ok(id) => Ok(Ok(self.guard(id)?)),
            Err(e) => Ok(Err(to_wit_error(e))),
        }
    }
}

impl serve::Host for State {
    async fn run(
        &mut self,
        name: String,
        deployments: Vec<serve::Deployment>,
    ) -> wasmtime::Result<Result<(), types::Error>> {
        if deployments.len() > wray_core::serve::MAX_DEPLOYMENTS {
            let e = Error::InvalidArgument(format!(
                "{} deployments; an application has at most {}",
                deployments.len(),
                wray_core::serve::MAX_DEPLOYMENTS
            ));
            return Ok(Err(to_wit_error(e)));
        }
        let mut app = Application { name, job_label: None, deployments: Vec::with_capacity(deployments.len()) };
        for mut d in deployments {
            let init = std::mem::take(&mut d.init_args);
            let args = match self.args(init.into_iter().map(types::Arg::Value).collect())? {
                Ok(a) => a,
                Err(e) => return Ok(Err(to_wit_error(e))),
            };
            let deployment = match deployment_from_wit(d) {
                Ok(d) => d,
                Err(e) => return Ok(Err(to_wit_error(e))),
            };
            app.deployments.push((deployment, args));
        }
        let checked: Vec<Deployment> = app.deployments.iter().map(|(d, _)| d.clone()).collect();
        if let Err(e) = check_application(&app.name, &checked) {
            return Ok(Err(to_wit_error(e)));
        }
        self.apply_releases();
        let work = self.services.serve_run(&self.caller, app);
        let r = self.call.clock.off_while_waiting(work).await;
        Ok(r.map_err(to_wit_error))
    }

    async fn reconfigure(
        &mut self,
        deployment: String,
        user_config: Vec<u8>,
    ) -> wasmtime::Result<Result<(), types::Error>> {
        if let Err(e) = check_name("deployment name", &deployment).and_then(|()| check_size(user_config.len())) {
            return Ok(Err(to_wit_error(e)));
        }
        self.apply_releases();
        let work = self.services.serve_reconfigure(&self.caller, deployment, user_config);
        let r = self.call.clock.off_while_waiting(work).await;
        Ok(r.map_err(to_wit_error))
    }

    async fn call(
        &mut self,
        deployment: String,
        method: String,
        args: Vec<types::Arg>,
    ) -> wasmtime::Result<Result<Resource<RefGuard>, types::Error>> {
        self.call_deployment(deployment, method, args, 0).await
    }

    async fn call_with(
        &mut self,
        deployment: String,
        method: String,
        args: Vec<types::Arg>,
        options: actors::CallOptions,
    ) -> wasmtime::Result<Result<Resource<RefGuard>, types::Error>> {
        match generator_window(&options) {
            Ok(window) => self.call_deployment(deployment, method, args, window).await,
            Err(e) => Ok(Err(to_wit_error(e))),
        }
    }
}

fn deployment_from_wit(d: serve::Deployment) -> Result<Deployment, Error> {
    check_name("deployment class", &d.class)?;
    check_name("deployment method", &d.method)?;
    let mut options = options_from_wit(d.options.clone(), true)?;
    if options.name.is_some() || options.detached {
        return Err(Error::InvalidArgument(format!(
            "deployment {:?}: replicas cannot be named or detached (the controller creates and names them)",
            d.name
        )));
    }
    if d.options.max_restarts.is_none() {
        options.max_restarts = REPLICA_MAX_RESTARTS;
    }
    let ms = Duration::from_millis;
    Ok(Deployment {
        name: d.name,
        class: d.class,
        method: d.method,
        route_prefix: d.route_prefix,
        num_replicas: d.num_replicas,
        autoscaling: d.autoscaling.map(|a| Autoscaling {
            min_replicas: a.min_replicas,
            max_replicas: a.max_replicas,
            initial_replicas: a.initial_replicas.unwrap_or(a.min_replicas),
            target_ongoing_requests: a.target_ongoing_requests,
            upscale_delay: ms(a.upscale_delay_ms),
            downscale_delay: ms(a.downscale_delay_ms),
        }),
        max_ongoing_requests: d.max_ongoing_requests,
        max_queued_requests: d.max_queued_requests,
        batching: d
            .batching
            .map(|b| Batching { max_batch_size: b.max_batch_size, batch_wait_timeout: ms(b.batch_wait_timeout_ms) }),
        request_timeout: d.request_timeout_ms.map(ms),
        user_config: d.user_config,
        health_check_period: d.health_check_period_ms.map(ms),
        idempotent: d.idempotent,
        options,
    })
}
