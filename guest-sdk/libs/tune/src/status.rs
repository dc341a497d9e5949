//! Publishing an experiment's progress for the dashboard (its Experiments
//! view) and `wray list experiments`: a callback that keeps a summary of
//! every trial and hands it to the host as JSON under
//! `<kind>/<experiment name>`, at most once per [`PUBLISH_INTERVAL`] and
//! once more when the experiment ends. Tune adds one to every `fit`; Train
//! adds one to a run (a run is a one-trial experiment to Tune's callbacks).
//!
//! What it sends is bounded to the host's limit on a published body: each
//! metric's series is thinned to [`MAX_SERIES_POINTS`] points, and past
//! [`MAX_TRIALS_SHOWN`] trials only the best and the most recent are listed
//! (the rest are counted).

use super::Metrics;
use super::callbacks::{Callback, json_number, json_string};
use super::results::{Status, Trial};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How often a running experiment's summary is published at most.
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// Points kept of each metric's series, evenly spread, the last included.
pub const MAX_SERIES_POINTS: usize = 100;

/// Trials listed in full.
pub const MAX_TRIALS_SHOWN: usize = 100;

/// Metrics a trial's series are kept for (Train reports a few; Tune's
/// experiment metric comes first).
const MAX_SERIES_METRICS: usize = 6;

/// Metrics the library adds to every result, not worth a chart.
const BOOKKEEPING: [&str; 3] = ["training_iteration", "time_total_s", "trial_id"];

struct Row {
    name: String,
    status: Status,
    config: String,
    error: Option<String>,
    last: Metrics,
    series: BTreeMap<String, Vec<f64>>,
    iterations: usize,
}

/// Publishes an experiment's trial table (see the module's docs).
pub struct StatusPublisher {
    kind: &'static str,
    name: String,
    metric: Option<String>,
    max: bool,
    started: Instant,
    last_sent: Option<Instant>,
    rows: BTreeMap<usize, Row>,
    finished: bool,
    /// Publishing failed once (an old host without the import, a topic
    /// refused): said once, then quiet.
    failed: bool,
}

impl StatusPublisher {
    /// A publisher of experiment `name`; `metric` and `mode` (`"min"` or
    /// `"max"`) name the best trial.
    pub fn new(kind: &'static str, name: &str, metric: Option<&str>, mode: Option<&str>) -> StatusPublisher {
        StatusPublisher {
            kind,
            name: name.to_string(),
            metric: metric.map(str::to_string),
            max: mode == Some("max"),
            started: Instant::now(),
            last_sent: None,
            rows: BTreeMap::new(),
            finished: false,
            failed: false,
        }
    }

    fn row(&mut self, trial: &Trial) -> &mut Row {
        let row = self.rows.entry(trial.id).or_insert_with(|| Row {
            name: trial.name.clone(),
            status: trial.status,
            config: trial.config.to_string(),
            error: None,
            last: Metrics::new(),
            series: BTreeMap::new(),
            iterations: 0,
        });
        row.status = trial.status;
        row.error = trial.error.clone();
        row
    }

    /// The value the best trial is chosen by, if the trial has one.
    fn score(&self, row: &Row) -> Option<f64> {
        let v = *row.last.get(self.metric.as_ref()?)?;
        v.is_finite().then_some(if self.max { v } else { -v })
    }

    /// The summary as JSON, listing at most `shown` trials.
    fn json(&self, shown: usize) -> String {
        let best = self
            .rows
            .iter()
            .filter_map(|(id, r)| Some((*id, self.score(r)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(id, _)| id);
        // The best, then the most recent trials.
        let mut ids: Vec<usize> = best.into_iter().collect();
        ids.extend(self.rows.keys().rev().filter(|id| Some(**id) != best).take(shown.saturating_sub(ids.len())));
        ids.sort_unstable();
        let trials: Vec<String> = ids
            .iter()
            .map(|id| {
                let r = &self.rows[id];
                let last: Vec<String> = r
                    .last
                    .iter()
                    .filter(|(k, _)| !BOOKKEEPING.contains(&k.as_str()))
                    .map(|(k, v)| format!("{}:{}", json_string(k), json_number(*v)))
                    .collect();
                let series: Vec<String> = r
                    .series
                    .iter()
                    .map(|(k, v)| {
                        let points: Vec<String> = thin(v).into_iter().map(json_number).collect();
                        format!("{}:[{}]", json_string(k), points.join(","))
                    })
                    .collect();
                format!(
                    "{{\"name\":{},\"status\":{},\"config\":{},\"iterations\":{},\"error\":{},\"last\":{{{}}},\"series\":{{{}}}}}",
                    json_string(&r.name),
                    json_string(&r.status.to_string()),
                    json_string(&r.config),
                    r.iterations,
                    r.error.as_deref().map_or_else(|| "null".to_string(), json_string),
                    last.join(","),
                    series.join(",")
                )
            })
            .collect();
        let best = best.map_or_else(
            || "null".to_string(),
            |id| {
                let r = &self.rows[&id];
                let value = self.metric.as_ref().and_then(|m| r.last.get(m)).copied().unwrap_or(f64::NAN);
                format!("{{\"name\":{},\"value\":{}}}", json_string(&r.name), json_number(value))
            },
        );
        format!(
            "{{\"kind\":{},\"name\":{},\"metric\":{},\"mode\":{},\"state\":{},\"elapsed_s\":{},\"trials\":[{}],\"trial_count\":{},\"best\":{}}}",
            json_string(self.kind),
            json_string(&self.name),
            self.metric.as_deref().map_or_else(|| "null".to_string(), json_string),
            json_string(if self.max { "max" } else { "min" }),
            json_string(if self.finished { "FINISHED" } else { "RUNNING" }),
            json_number(self.started.elapsed().as_secs_f64()),
            trials.join(","),
            self.rows.len(),
            best
        )
    }

    /// Publishes now if due (or `force`).
    fn publish(&mut self, force: bool) {
        if self.failed || (!force && self.last_sent.is_some_and(|t| t.elapsed() < PUBLISH_INTERVAL)) {
            return;
        }
        self.last_sent = Some(Instant::now());
        let mut shown = MAX_TRIALS_SHOWN;
        let mut body = self.json(shown);
        // Fewer trials until it fits the host's limit.
        while body.len() > wray_guest_core::MAX_STATUS_BYTES && shown > 1 {
            shown /= 2;
            body = self.json(shown);
        }
        let topic = format!("{}/{}", self.kind, self.name);
        if let Err(e) = wray_guest_core::publish_status(&topic, &body) {
            eprintln!("wray::{}: the dashboard will not show {}: {e}", self.kind, self.name);
            self.failed = true;
        }
    }
}

/// At most [`MAX_SERIES_POINTS`] of `v`, evenly spread, first and last kept.
fn thin(v: &[f64]) -> Vec<f64> {
    if v.len() <= MAX_SERIES_POINTS {
        return v.to_vec();
    }
    let last = v.len() - 1;
    (0..MAX_SERIES_POINTS).map(|i| v[i * last / (MAX_SERIES_POINTS - 1)]).collect()
}

impl Callback for StatusPublisher {
    fn on_trial_start(&mut self, trial: &Trial) {
        self.row(trial);
        self.publish(false);
    }

    fn on_trial_result(&mut self, trial: &Trial, result: &Metrics) {
        let metric = self.metric.clone();
        let row = self.row(trial);
        row.iterations = trial.iterations();
        row.last = result.clone();
        // The experiment's metric first, then the others in name order.
        let names = metric
            .iter()
            .filter(|m| result.contains_key(*m))
            .chain(result.keys().filter(|k| Some(*k) != metric.as_ref() && !BOOKKEEPING.contains(&k.as_str())))
            .take(MAX_SERIES_METRICS)
            .cloned()
            .collect::<Vec<_>>();
        for name in names {
            row.series.entry(name.clone()).or_default().push(result[&name]);
        }
        // Thinned as it grows, so a long trial's memory stays bounded too.
        for s in row.series.values_mut() {
            if s.len() > 4 * MAX_SERIES_POINTS {
                *s = thin(s);
            }
        }
        self.publish(false);
    }

    fn on_trial_complete(&mut self, trial: &Trial) {
        self.row(trial);
        self.publish(false);
    }

    fn on_trial_error(&mut self, trial: &Trial) {
        self.row(trial);
        self.publish(false);
    }

    fn on_experiment_end(&mut self, trials: &[Trial]) {
        for t in trials {
            self.row(t);
        }
        self.finished = true;
        self.publish(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_thinned_to_the_bound_keeping_both_ends() {
        let v: Vec<f64> = (0..1000).map(f64::from).collect();
        let t = thin(&v);
        assert_eq!(t.len(), MAX_SERIES_POINTS);
        assert_eq!((t[0], *t.last().unwrap()), (0.0, 999.0));
        assert_eq!(thin(&v[..10]), v[..10].to_vec());
    }
}
