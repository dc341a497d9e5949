//! The raw `serve` interface for the `wray-serve` library, which users
//! reach as `wray::serve`. Not part of the API.

use crate::arg::RawArg;
use crate::bindings::wray::runtime::{serve, types as wit};
use crate::{CallOptions, Error};
use std::time::Duration;

/// One deployment as the library declares it.
#[allow(missing_docs)]
pub struct RawDeployment {
    pub name: String,
    pub class: &'static str,
    /// Values only (a ref argument is refused by `run`).
    pub init_args: Vec<RawArg>,
    pub method: String,
    pub route_prefix: Option<String>,
    pub num_replicas: u32,
    /// min, max, initial, target ongoing requests, upscale and downscale delays.
    pub autoscaling: Option<(u32, u32, Option<u32>, f64, Duration, Duration)>,
    pub max_ongoing_requests: u32,
    pub max_queued_requests: u32,
    /// Max batch size and wait.
    pub batching: Option<(u32, Duration)>,
    pub request_timeout: Option<Duration>,
    pub user_config: Option<Vec<u8>>,
    pub health_check_period: Option<Duration>,
    pub idempotent: bool,
    pub options: CallOptions,
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

/// Gives the replicas of `deployment` an encoded user config in place.
pub fn reconfigure(deployment: &str, config: &[u8]) -> Result<(), Error> {
    serve::reconfigure(deployment, config).map_err(Error::from)
}

/// Serves the application until the server shuts down.
pub fn run(name: &str, deployments: Vec<RawDeployment>) -> Result<(), Error> {
    let mut wit_deployments = Vec::with_capacity(deployments.len());
    for d in deployments {
        let mut init_args = Vec::with_capacity(d.init_args.len());
        for a in d.init_args {
            match a {
                RawArg::Value(v) => init_args.push(v),
                RawArg::Ref(_) => {
                    return Err(Error::InvalidArgument(format!(
                        "deployment {:?}: constructor arguments are values; put a ref inside one instead",
                        d.name
                    )));
                }
            }
        }
        wit_deployments.push(serve::Deployment {
            name: d.name,
            class: d.class.to_string(),
            init_args,
            method: d.method,
            route_prefix: d.route_prefix,
            num_replicas: d.num_replicas,
            autoscaling: d.autoscaling.map(|(min, max, initial, target, up, down)| serve::Autoscaling {
                min_replicas: min,
                max_replicas: max,
                initial_replicas: initial,
                target_ongoing_requests: target,
                upscale_delay_ms: ms(up),
                downscale_delay_ms: ms(down),
            }),
            max_ongoing_requests: d.max_ongoing_requests,
            max_queued_requests: d.max_queued_requests,
            batching: d
                .batching
                .map(|(size, wait)| serve::Batching { max_batch_size: size, batch_wait_timeout_ms: ms(wait) }),
            request_timeout_ms: d.request_timeout.map(ms),
            user_config: d.user_config,
            health_check_period_ms: d.health_check_period.map(ms),
            idempotent: d.idempotent,
            options: d.options.to_wit(),
        });
    }
    serve::run(name, wit_deployments).map_err(|e: wit::Error| Error::from(e))
}
