//! Objectives (gradients and hessians of the loss at the current margins)
//! and evaluation metrics, named as XGBoost names them.

use crate::invalid;
use wray_guest_core::Error;

/// A loss to minimise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Objective {
    /// `reg:squarederror`.
    SquaredError,
    /// `binary:logistic`: the margin is a log-odds.
    BinaryLogistic,
    /// `multi:softprob` (and `multi:softmax`, which predicts the same
    /// classes): one tree per class per round, softmax over the margins.
    Softmax,
}

impl Objective {
    /// XGBoost's name, as in a saved model.
    pub fn name(self) -> &'static str {
        match self {
            Objective::SquaredError => "reg:squarederror",
            Objective::BinaryLogistic => "binary:logistic",
            Objective::Softmax => "multi:softprob",
        }
    }

    /// Parses XGBoost's name.
    pub fn parse(name: &str) -> Result<Objective, Error> {
        Ok(match name {
            "reg:squarederror" => Objective::SquaredError,
            "binary:logistic" => Objective::BinaryLogistic,
            "multi:softprob" | "multi:softmax" => Objective::Softmax,
            other => {
                return Err(invalid(format!(
                    "unknown objective {other:?} (known: reg:squarederror, binary:logistic, multi:softprob, \
                     multi:softmax)"
                )));
            }
        })
    }

    /// The metric XGBoost reports for it by default.
    pub fn default_metric(self) -> Metric {
        match self {
            Objective::SquaredError => Metric::Rmse,
            Objective::BinaryLogistic => Metric::LogLoss,
            Objective::Softmax => Metric::MLogLoss,
        }
    }

    /// Gradients and hessians at `margins` (row-major, `k` per row) for
    /// `labels`, written to `g` and `h` (same layout).
    pub fn gradients(self, margins: &[f64], labels: &[f32], k: usize, g: &mut [f64], h: &mut [f64]) {
        match self {
            Objective::SquaredError => {
                for i in 0..labels.len() {
                    g[i] = margins[i] - f64::from(labels[i]);
                    h[i] = 1.0;
                }
            }
            Objective::BinaryLogistic => {
                for i in 0..labels.len() {
                    let p = sigmoid(margins[i]);
                    g[i] = p - f64::from(labels[i]);
                    h[i] = (p * (1.0 - p)).max(1e-16);
                }
            }
            Objective::Softmax => {
                let mut p = vec![0.0; k];
                for (i, &y) in labels.iter().enumerate() {
                    softmax(&margins[i * k..(i + 1) * k], &mut p);
                    for c in 0..k {
                        let target = if y as usize == c { 1.0 } else { 0.0 };
                        g[i * k + c] = p[c] - target;
                        h[i * k + c] = (2.0 * p[c] * (1.0 - p[c])).max(1e-16);
                    }
                }
            }
        }
    }
}

pub(crate) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The index of the largest of `p`, the first of equal maxima (numpy's
/// `argmax`).
pub(crate) fn argmax(p: &[f64]) -> usize {
    (0..p.len()).max_by(|a, b| p[*a].total_cmp(&p[*b]).then(b.cmp(a))).unwrap_or(0)
}

pub(crate) fn softmax(m: &[f64], out: &mut [f64]) {
    let max = m.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for (o, v) in out.iter_mut().zip(m) {
        *o = (v - max).exp();
        sum += *o;
    }
    for o in out.iter_mut() {
        *o /= sum;
    }
}

/// An evaluation metric (XGBoost's `eval_metric`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// `rmse`.
    Rmse,
    /// `mae`.
    Mae,
    /// `logloss` (binary).
    LogLoss,
    /// `error`: the share misclassified at 0.5 (binary).
    Error,
    /// `auc` (binary).
    Auc,
    /// `mlogloss`.
    MLogLoss,
    /// `merror`.
    MError,
}

impl Metric {
    /// Parses XGBoost's name.
    pub fn parse(name: &str) -> Result<Metric, Error> {
        Ok(match name {
            "rmse" => Metric::Rmse,
            "mae" => Metric::Mae,
            "logloss" => Metric::LogLoss,
            "error" => Metric::Error,
            "auc" => Metric::Auc,
            "mlogloss" => Metric::MLogLoss,
            "merror" => Metric::MError,
            other => {
                return Err(invalid(format!(
                    "unknown eval_metric {other:?} (known: rmse, mae, logloss, error, auc, mlogloss, merror)"
                )));
            }
        })
    }

    /// XGBoost's name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Rmse => "rmse",
            Metric::Mae => "mae",
            Metric::LogLoss => "logloss",
            Metric::Error => "error",
            Metric::Auc => "auc",
            Metric::MLogLoss => "mlogloss",
            Metric::MError => "merror",
        }
    }

    /// Whether a larger value is better.
    pub fn maximize(self) -> bool {
        self == Metric::Auc
    }

    /// Whether it fits the objective.
    pub fn check(self, objective: Objective) -> Result<(), Error> {
        let ok = match self {
            Metric::Rmse | Metric::Mae => true,
            Metric::LogLoss | Metric::Error | Metric::Auc => objective == Objective::BinaryLogistic,
            Metric::MLogLoss | Metric::MError => objective == Objective::Softmax,
        };
        if ok {
            Ok(())
        } else {
            Err(invalid(format!("eval_metric {} does not fit objective {}", self.name(), objective.name())))
        }
    }

    /// The metric of `margins` (row-major, `k` per row) against `labels`.
    pub fn eval(self, margins: &[f64], labels: &[f32], k: usize) -> f64 {
        let n = labels.len().max(1) as f64;
        let y = |i: usize| f64::from(labels[i]);
        match self {
            Metric::Rmse => {
                (labels.iter().enumerate().map(|(i, _)| (margins[i] - y(i)).powi(2)).sum::<f64>() / n).sqrt()
            }
            Metric::Mae => labels.iter().enumerate().map(|(i, _)| (margins[i] - y(i)).abs()).sum::<f64>() / n,
            Metric::LogLoss => {
                let p: Vec<f64> = margins.iter().map(|m| sigmoid(*m)).collect();
                crate::metrics::log_loss_binary(labels, &p)
            }
            Metric::Error => {
                labels.iter().enumerate().filter(|(i, _)| (sigmoid(margins[*i]) > 0.5) != (y(*i) > 0.5)).count() as f64
                    / n
            }
            Metric::Auc => {
                let p: Vec<f64> = margins.iter().map(|m| sigmoid(*m)).collect();
                crate::metrics::roc_auc(labels, &p)
            }
            Metric::MLogLoss | Metric::MError => {
                let mut p = vec![0.0; k];
                let mut total = 0.0;
                for (i, &label) in labels.iter().enumerate() {
                    softmax(&margins[i * k..(i + 1) * k], &mut p);
                    total += if self == Metric::MLogLoss {
                        -p[label as usize].clamp(1e-15, 1.0).ln()
                    } else {
                        let best = argmax(&p);
                        f64::from(u8::from(best != label as usize))
                    };
                }
                total / n
            }
        }
    }
}
