//! What a deployment's requests did: counts by status class and a latency
//! histogram, as the dashboard and `/metrics` show them. Pure and cheap:
//! one lock and a few additions per request.

use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds (Prometheus' default
/// buckets, which span a no-op's microseconds to a slow model's seconds);
/// a last bucket takes everything above.
pub const LATENCY_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A deployment's request counters since it started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestStats {
    /// Answers below 400.
    pub ok: u64,
    /// 4xx answers.
    pub client_errors: u64,
    /// 5xx answers (a replica's failure, a queue full, a timeout).
    pub server_errors: u64,
    /// Requests per latency bucket (not cumulative); the last is `+Inf`.
    pub buckets: [u64; LATENCY_BUCKETS.len() + 1],
    /// Seconds spent in all of them.
    pub seconds: f64,
}

impl RequestStats {
    /// Records one answer.
    pub fn record(&mut self, status: u16, took: Duration) {
        match status {
            500.. => self.server_errors += 1,
            400..=499 => self.client_errors += 1,
            _ => self.ok += 1,
        }
        let s = took.as_secs_f64();
        let i = LATENCY_BUCKETS.iter().position(|b| s <= *b).unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i] += 1;
        self.seconds += s;
    }

    /// Requests answered.
    pub fn total(&self) -> u64 {
        self.ok + self.client_errors + self.server_errors
    }

    /// As the status JSON carries it.
    pub fn to_json(&self) -> serde_json::Value {
        let bounds: Vec<serde_json::Value> =
            LATENCY_BUCKETS.iter().map(|b| serde_json::json!(b)).chain([serde_json::json!("+Inf")]).collect();
        serde_json::json!({
            "total": self.total(),
            "ok": self.ok,
            "client_errors": self.client_errors,
            "server_errors": self.server_errors,
            "latency_seconds_sum": self.seconds,
            "latency_bucket_bounds": bounds,
            "latency_buckets": self.buckets.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_counted_by_class_and_latency() {
        let mut s = RequestStats::default();
        s.record(200, Duration::from_micros(150));
        s.record(404, Duration::from_millis(30));
        s.record(503, Duration::from_secs(60));
        assert_eq!((s.ok, s.client_errors, s.server_errors, s.total()), (1, 1, 1, 3));
        assert_eq!(s.buckets[0], 1, "150 µs is under 5 ms");
        assert_eq!(s.buckets[3], 1, "30 ms is under 50 ms");
        assert_eq!(s.buckets[LATENCY_BUCKETS.len()], 1, "a minute is above every bound");
        let json = s.to_json();
        assert_eq!(json["latency_buckets"].as_array().unwrap().len(), LATENCY_BUCKETS.len() + 1);
        assert_eq!(json["latency_bucket_bounds"][LATENCY_BUCKETS.len()], "+Inf");
    }
}
