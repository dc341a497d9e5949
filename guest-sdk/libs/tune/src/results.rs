//! Trials and the results of an experiment.

use super::Metrics;
use super::schedulers::Mode;
use super::space::Config;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a trial is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Waiting to start.
    Pending,
    /// Running steps.
    Running,
    /// Stopped by its scheduler for now (checkpointed).
    Paused,
    /// Finished or stopped.
    Terminated,
    /// Failed more than `max_failures` times.
    Error,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pending => "PENDING",
            Status::Running => "RUNNING",
            Status::Paused => "PAUSED",
            Status::Terminated => "TERMINATED",
            Status::Error => "ERROR",
        })
    }
}

/// One trial: its config, what it reported, how it ended.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Trial {
    /// Its number, from 0.
    pub id: usize,
    /// `trial_00003`-style name (directory of its logs).
    pub name: String,
    /// Its config.
    pub config: Config,
    /// Its state.
    pub status: Status,
    /// Every result it reported, in order (with `training_iteration`,
    /// `time_total_s` and `trial_id` added).
    pub history: Vec<Metrics>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Failures so far (each retried from the last checkpoint while under
    /// `max_failures`).
    pub failures: u32,
    /// Its last checkpoint.
    pub checkpoint: Option<Vec<u8>>,
}

impl Trial {
    /// The last result (empty before the first).
    pub fn last_result(&self) -> Metrics {
        self.history.last().cloned().unwrap_or_default()
    }

    /// Iterations run.
    pub fn iterations(&self) -> usize {
        self.history.len()
    }

    /// Whether it ended (terminated or failed).
    pub fn is_finished(&self) -> bool {
        matches!(self.status, Status::Terminated | Status::Error)
    }
}

/// The outcome of an experiment (Ray's `ResultGrid` / `ExperimentAnalysis`).
#[derive(Clone, Debug)]
pub struct ResultGrid {
    /// Every trial, by id.
    pub trials: Vec<Trial>,
    /// The experiment's metric.
    pub metric: String,
    /// Its mode.
    pub mode: Mode,
    /// Wall-clock time of the experiment, in seconds.
    pub time_s: f64,
}

impl ResultGrid {
    /// The trial with the best last result for `metric` and `mode` (trials
    /// that never reported it do not count).
    pub fn get_best_trial(&self, metric: &str, mode: Mode) -> Option<&Trial> {
        self.trials
            .iter()
            .filter_map(|t| t.history.last().and_then(|r| r.get(metric)).map(|v| (t, mode.signed(*v))))
            .filter(|(_, v)| !v.is_nan())
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(t, _)| t)
    }

    /// The best trial for the experiment's metric and mode.
    pub fn best_trial(&self) -> Option<&Trial> {
        self.get_best_trial(&self.metric, self.mode)
    }

    /// The best trial's config.
    pub fn best_config(&self) -> Option<&Config> {
        self.best_trial().map(|t| &t.config)
    }

    /// The best trial's last result.
    pub fn best_result(&self) -> Option<Metrics> {
        self.best_trial().map(Trial::last_result)
    }

    /// The best config for another metric or mode.
    pub fn get_best_config(&self, metric: &str, mode: Mode) -> Option<&Config> {
        self.get_best_trial(metric, mode).map(|t| &t.config)
    }

    /// Trials that failed.
    pub fn errors(&self) -> Vec<&Trial> {
        self.trials.iter().filter(|t| t.status == Status::Error).collect()
    }

    /// One CSV row per trial: id, status, iterations, every config parameter
    /// and every metric of its last result.
    pub fn to_csv(&self) -> String {
        let mut params: Vec<String> = Vec::new();
        let mut metrics: Vec<String> = Vec::new();
        for t in &self.trials {
            for k in t.config.0.keys() {
                if !params.contains(k) {
                    params.push(k.clone());
                }
            }
            for k in t.last_result().keys() {
                if !metrics.contains(k) {
                    metrics.push(k.clone());
                }
            }
        }
        let mut out = String::from("trial_id,status,iterations");
        for p in &params {
            out.push_str(&format!(",config/{}", csv_field(p)));
        }
        for m in &metrics {
            out.push_str(&format!(",{}", csv_field(m)));
        }
        out.push('\n');
        for t in &self.trials {
            out.push_str(&format!("{},{},{}", t.name, t.status, t.iterations()));
            for p in &params {
                let v = t.config.get(p).map(|v| csv_field(&v.to_string())).unwrap_or_default();
                out.push_str(&format!(",{v}"));
            }
            let last = t.last_result();
            for m in &metrics {
                out.push_str(&format!(",{}", last.get(m).map(|v| v.to_string()).unwrap_or_default()));
            }
            out.push('\n');
        }
        out
    }
}

pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}
