//! What a served application is made of, after validation: its deployments
//! (an actor class whose replicas answer HTTP requests or handle calls) and
//! how each scales, batches and limits its load.
//!
//! The guest declares these (`wray::serve`); the host's proxy
//! (`wray-serve-host`) runs them. Every number here is one a guest
//! controls, so each is checked against a named bound.

use crate::{Error, Options};
use std::time::Duration;

/// Deployments in one application, at most.
pub const MAX_DEPLOYMENTS: usize = 64;
/// Replicas of one deployment, at most (each is an actor: an instance).
pub const MAX_REPLICAS: u32 = 1024;
/// Requests one replica may have in flight, at most.
pub const MAX_ONGOING_REQUESTS: u32 = 100_000;
/// Requests one deployment may queue while its replicas are busy, at most.
pub const MAX_QUEUED_REQUESTS: u32 = 1_000_000;
/// Requests in one batch, at most.
pub const MAX_BATCH_SIZE: u32 = 4096;
/// The longest a batch may wait to fill.
pub const MAX_BATCH_WAIT: Duration = Duration::from_secs(60);
/// Length of a route prefix, at most.
pub const MAX_ROUTE_PREFIX: usize = 256;
/// The longest scaling delay or request timeout a guest may ask for.
pub const MAX_DELAY: Duration = Duration::from_secs(24 * 3600);

/// Ray Serve's default `max_ongoing_requests`.
pub const DEFAULT_MAX_ONGOING_REQUESTS: u32 = 5;
/// Ray Serve's default `target_ongoing_requests` for autoscaling.
pub const DEFAULT_TARGET_ONGOING_REQUESTS: f64 = 2.0;

/// How a deployment's replica count follows its load (Ray Serve's
/// `autoscaling_config`).
#[derive(Clone, Debug, PartialEq)]
pub struct Autoscaling {
    /// Never fewer replicas (0 allowed: scale to zero).
    pub min_replicas: u32,
    /// Never more.
    pub max_replicas: u32,
    /// Replicas at start (clamped into `[min, max]`).
    pub initial_replicas: u32,
    /// The ongoing requests per replica the scaler aims for.
    pub target_ongoing_requests: f64,
    /// How long the load must call for more replicas before they start.
    pub upscale_delay: Duration,
    /// How long the load must call for fewer before replicas stop.
    pub downscale_delay: Duration,
}

/// Requests gathered into one call of a batch method (Ray Serve's
/// `@serve.batch`).
#[derive(Clone, Debug, PartialEq)]
pub struct Batching {
    /// Requests per call, at most.
    pub max_batch_size: u32,
    /// How long the first request of a batch waits for others.
    pub batch_wait_timeout: Duration,
}

/// One deployment, validated.
#[derive(Clone, Debug)]
pub struct Deployment {
    /// Unique in its application; handles find it by this name.
    pub name: String,
    /// The actor class of its replicas.
    pub class: String,
    /// The method HTTP requests call: `(Request) -> Response`, or with
    /// batching `(Vec<Request>) -> Vec<Response>`.
    pub method: String,
    /// Requests whose path starts with this go here (none: reachable only
    /// through handles).
    pub route_prefix: Option<String>,
    /// Fixed replica count (ignored with `autoscaling`).
    pub num_replicas: u32,
    /// Replica count driven by load.
    pub autoscaling: Option<Autoscaling>,
    /// Requests a replica has at once; more wait in the deployment's queue.
    pub max_ongoing_requests: u32,
    /// Requests that may wait; past it the proxy answers 503 with
    /// `Retry-After`.
    pub max_queued_requests: u32,
    /// Gather requests into batches.
    pub batching: Option<Batching>,
    /// How long a request may take end to end before the proxy answers
    /// 504 (none: the server's default).
    pub request_timeout: Option<Duration>,
    /// Encoded value passed to each replica's `reconfigure` method after it
    /// starts (none: `reconfigure` is not called).
    pub user_config: Option<Vec<u8>>,
    /// How often each replica's `check_health` method is called (none:
    /// never); a replica whose check fails or traps is replaced.
    pub health_check_period: Option<Duration>,
    /// Requests that failed because their replica died may be sent to
    /// another replica (the method has no effects that must happen once).
    pub idempotent: bool,
    /// Each replica's options: resources, memory and time limits.
    pub options: Options,
}

impl Deployment {
    /// Replicas to start with.
    pub fn initial_replicas(&self) -> u32 {
        match &self.autoscaling {
            Some(a) => a.initial_replicas.clamp(a.min_replicas, a.max_replicas),
            None => self.num_replicas,
        }
    }

    /// Checks every number and name against its bound.
    pub fn check(&self) -> Result<(), Error> {
        let bad = |what: String| Err(Error::InvalidArgument(format!("deployment {:?}: {what}", self.name)));
        if self.name.is_empty() || self.name.len() > 256 || self.name.chars().any(|c| c.is_control() || c == '/') {
            return bad("a name is 1 to 256 characters, without '/' or control characters".into());
        }
        if let Some(p) = &self.route_prefix {
            check_route_prefix(p).or_else(bad)?;
        }
        if self.num_replicas > MAX_REPLICAS {
            return bad(format!("{} replicas; at most {MAX_REPLICAS}", self.num_replicas));
        }
        if self.autoscaling.is_none() && self.num_replicas == 0 {
            return bad("0 replicas: ask for at least 1, or autoscaling with min_replicas 0".into());
        }
        if let Some(a) = &self.autoscaling {
            if a.max_replicas == 0 || a.max_replicas > MAX_REPLICAS || a.min_replicas > a.max_replicas {
                return bad(format!(
                    "autoscaling needs 0 <= min_replicas <= max_replicas, 1 <= max_replicas <= {MAX_REPLICAS}; got {} and {}",
                    a.min_replicas, a.max_replicas
                ));
            }
            if !(a.target_ongoing_requests.is_finite() && a.target_ongoing_requests > 0.0) {
                return bad(format!("target_ongoing_requests must be positive, got {}", a.target_ongoing_requests));
            }
            if a.upscale_delay > MAX_DELAY || a.downscale_delay > MAX_DELAY {
                return bad(format!("scaling delays are at most {} s", MAX_DELAY.as_secs()));
            }
        }
        if self.max_ongoing_requests == 0 || self.max_ongoing_requests > MAX_ONGOING_REQUESTS {
            return bad(format!(
                "max_ongoing_requests must be 1 to {MAX_ONGOING_REQUESTS}, got {}",
                self.max_ongoing_requests
            ));
        }
        if self.max_queued_requests > MAX_QUEUED_REQUESTS {
            return bad(format!(
                "max_queued_requests must be at most {MAX_QUEUED_REQUESTS}, got {}",
                self.max_queued_requests
            ));
        }
        if let Some(b) = &self.batching {
            if b.max_batch_size == 0 || b.max_batch_size > MAX_BATCH_SIZE {
                return bad(format!("max_batch_size must be 1 to {MAX_BATCH_SIZE}, got {}", b.max_batch_size));
            }
            if b.batch_wait_timeout > MAX_BATCH_WAIT {
                return bad(format!("batch_wait_timeout is at most {} s", MAX_BATCH_WAIT.as_secs()));
            }
        }
        if self.request_timeout.is_some_and(|t| t.is_zero() || t > MAX_DELAY) {
            return bad(format!("request_timeout must be between 1 ms and {} s", MAX_DELAY.as_secs()));
        }
        if self.health_check_period.is_some_and(|t| t < Duration::from_millis(10) || t > MAX_DELAY) {
            return bad(format!("health_check_period must be between 10 ms and {} s", MAX_DELAY.as_secs()));
        }
        Ok(())
    }
}

/// A route prefix starts with `/`, holds only URL path characters, and
/// does not end with `/` (except `/` itself).
pub fn check_route_prefix(p: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "/-._~!$&'()*+,;=:@%".contains(c);
    if !p.starts_with('/') || p.len() > MAX_ROUTE_PREFIX || !p.chars().all(ok_char) || (p.len() > 1 && p.ends_with('/'))
    {
        return Err(format!(
            "route prefix {p:?}: it must start with '/', not end with '/', hold only URL path characters and be at most {MAX_ROUTE_PREFIX} long"
        ));
    }
    Ok(())
}

/// Checks an application: its deployments, unique names and routes.
pub fn check_application(name: &str, deployments: &[Deployment]) -> Result<(), Error> {
    if name.is_empty() || name.len() > 256 || name.chars().any(|c| c.is_control()) {
        return Err(Error::InvalidArgument(format!(
            "application name {name:?}: 1 to 256 characters, no control characters"
        )));
    }
    if deployments.is_empty() || deployments.len() > MAX_DEPLOYMENTS {
        return Err(Error::InvalidArgument(format!(
            "application {name:?} has {} deployments; it needs 1 to {MAX_DEPLOYMENTS}",
            deployments.len()
        )));
    }
    for (i, d) in deployments.iter().enumerate() {
        d.check()?;
        if deployments[..i].iter().any(|e| e.name == d.name) {
            return Err(Error::InvalidArgument(format!(
                "application {name:?}: two deployments are named {:?}",
                d.name
            )));
        }
        if let Some(p) = &d.route_prefix
            && let Some(e) = deployments[..i].iter().find(|e| e.route_prefix.as_ref() == Some(p))
        {
            return Err(Error::InvalidArgument(format!(
                "application {name:?}: deployments {:?} and {:?} both claim route prefix {p:?}",
                e.name, d.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Deployment {
        Deployment {
            name: "Model".into(),
            class: "app::Model".into(),
            method: "call".into(),
            route_prefix: Some("/predict".into()),
            num_replicas: 2,
            autoscaling: None,
            max_ongoing_requests: DEFAULT_MAX_ONGOING_REQUESTS,
            max_queued_requests: 100,
            batching: None,
            request_timeout: None,
            user_config: None,
            health_check_period: None,
            idempotent: false,
            options: Options::default(),
        }
    }

    #[test]
    fn bounds_and_names_are_checked_with_messages_that_name_them() {
        assert!(deployment().check().is_ok());
        let err = |d: Deployment| d.check().unwrap_err().to_string();
        assert!(err(Deployment { route_prefix: Some("predict".into()), ..deployment() }).contains("start with '/'"));
        assert!(err(Deployment { route_prefix: Some("/a/".into()), ..deployment() }).contains("not end with '/'"));
        assert!(err(Deployment { num_replicas: 0, ..deployment() }).contains("0 replicas"));
        assert!(err(Deployment { num_replicas: MAX_REPLICAS + 1, ..deployment() }).contains("at most 1024"));
        assert!(err(Deployment { max_ongoing_requests: 0, ..deployment() }).contains("max_ongoing_requests"));
        let scaling = |min, max, target| Autoscaling {
            min_replicas: min,
            max_replicas: max,
            initial_replicas: 7,
            target_ongoing_requests: target,
            upscale_delay: Duration::ZERO,
            downscale_delay: Duration::ZERO,
        };
        assert!(err(Deployment { autoscaling: Some(scaling(3, 2, 1.0)), ..deployment() }).contains("min_replicas"));
        assert!(err(Deployment { autoscaling: Some(scaling(0, 2, f64::NAN)), ..deployment() }).contains("target"));
        let d = Deployment { autoscaling: Some(scaling(0, 3, 1.0)), num_replicas: 0, ..deployment() };
        assert!(d.check().is_ok());
        assert_eq!(d.initial_replicas(), 3, "initial replicas are clamped into [min, max]");
        let batch = Batching { max_batch_size: 0, batch_wait_timeout: Duration::ZERO };
        assert!(err(Deployment { batching: Some(batch), ..deployment() }).contains("max_batch_size"));
    }

    #[test]
    fn an_application_needs_unique_names_and_routes() {
        assert!(check_application("app", &[deployment()]).is_ok());
        assert!(check_application("app", &[]).unwrap_err().to_string().contains("1 to 64"));
        let two = [deployment(), Deployment { name: "Other".into(), ..deployment() }];
        assert!(
            check_application("app", &two).unwrap_err().to_string().contains("both claim route prefix \"/predict\"")
        );
        let same = [deployment(), Deployment { route_prefix: None, ..deployment() }];
        assert!(check_application("app", &same).unwrap_err().to_string().contains("two deployments are named"));
    }
}
