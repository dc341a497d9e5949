//! How many replicas a deployment should have: Ray Serve's rule, as a pure
//! function of time and load.
//!
//! The scaler wants `ceil(load / target_ongoing_requests)` replicas
//! (`load` = requests running on replicas plus those queued), clamped to
//! `[min_replicas, max_replicas]`. It moves only after wanting more for
//! `upscale_delay`, or fewer for `downscale_delay`, without a break — a
//! burst shorter than the delay changes nothing — except that a
//! deployment scaled to zero starts a replica for the first request at
//! once (a request must not wait out a delay with nobody to serve it).

use std::time::Duration;
use wray_core::serve::Autoscaling;

/// One deployment's scaler.
#[derive(Debug)]
pub struct Scaler {
    cfg: Autoscaling,
    /// Since when the scaler has wanted more (less) than it has.
    up_since: Option<Duration>,
    down_since: Option<Duration>,
}

impl Scaler {
    /// A scaler following `cfg`.
    pub fn new(cfg: Autoscaling) -> Scaler {
        Scaler { cfg, up_since: None, down_since: None }
    }

    /// The replica count the load asks for, clamped.
    pub fn wanted(&self, load: f64) -> u32 {
        let raw = (load.max(0.0) / self.cfg.target_ongoing_requests).ceil();
        (raw.min(f64::from(u32::MAX)) as u32).clamp(self.cfg.min_replicas, self.cfg.max_replicas)
    }

    /// The replica count to have at `now` (time since the deployment
    /// started), having `current` and seeing `load`.
    pub fn decide(&mut self, now: Duration, current: u32, load: f64) -> u32 {
        let want = self.wanted(load);
        if want > current {
            self.down_since = None;
            let since = *self.up_since.get_or_insert(now);
            if current == 0 || now.saturating_sub(since) >= self.cfg.upscale_delay {
                self.up_since = None;
                return want;
            }
        } else if want < current {
            self.up_since = None;
            let since = *self.down_since.get_or_insert(now);
            if now.saturating_sub(since) >= self.cfg.downscale_delay {
                self.down_since = None;
                return want;
            }
        } else {
            self.up_since = None;
            self.down_since = None;
        }
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scaler(min: u32, max: u32) -> Scaler {
        Scaler::new(Autoscaling {
            min_replicas: min,
            max_replicas: max,
            initial_replicas: min,
            target_ongoing_requests: 2.0,
            upscale_delay: Duration::from_secs(1),
            downscale_delay: Duration::from_secs(5),
        })
    }

    #[test]
    fn load_must_last_a_delay_before_the_count_moves() {
        let s = |ms| Duration::from_millis(ms);
        let mut sc = scaler(1, 4);
        assert_eq!(sc.wanted(7.0), 4);
        assert_eq!(sc.wanted(100.0), 4, "clamped to max");
        assert_eq!(sc.wanted(0.0), 1, "clamped to min");
        assert_eq!(sc.decide(s(0), 1, 6.0), 1, "wants 3 but waits");
        assert_eq!(sc.decide(s(500), 1, 6.0), 1);
        assert_eq!(sc.decide(s(700), 1, 2.0), 1, "the burst ended: the wait starts over");
        assert_eq!(sc.decide(s(800), 1, 6.0), 1);
        assert_eq!(sc.decide(s(1800), 1, 6.0), 3, "a full second of wanting 3");
        assert_eq!(sc.decide(s(2000), 3, 0.0), 3);
        assert_eq!(sc.decide(s(6900), 3, 0.0), 3);
        assert_eq!(sc.decide(s(7000), 3, 0.0), 1, "five seconds idle: back to min");
    }

    #[test]
    fn a_deployment_at_zero_starts_a_replica_at_once() {
        let mut sc = scaler(0, 2);
        assert_eq!(sc.decide(Duration::ZERO, 0, 0.0), 0);
        assert_eq!(sc.decide(Duration::from_millis(1), 0, 1.0), 1);
    }
}
