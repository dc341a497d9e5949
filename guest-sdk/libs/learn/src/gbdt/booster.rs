//! The boosting loop, the estimators and the model format.

use super::bins::{Cuts, Sketch, sampled};
use super::grow::{Binned, Quantized, TreeParams, grow};
use super::objective::{Metric, Objective, argmax, sigmoid, softmax};
use super::tree::{Node, Tree};
use crate::{Matrix, invalid};
use serde::{Deserialize, Serialize};
use wray_guest_core::{Error, Rng};

/// Classes a classifier may have.
pub const MAX_CLASSES: usize = 10_000;

/// Nodes a loaded model may have in all (a JSON file is input like any
/// other: its size is bounded before it is trusted).
pub const MAX_MODEL_NODES: usize = 1 << 26;

/// The `format` field of a saved model.
pub const FORMAT: &str = "wray-gbdt";

/// Boosting parameters, named and defaulted as XGBoost's.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Params {
    /// `reg:squarederror`, `binary:logistic`, `multi:softprob`,
    /// `multi:softmax`; a classifier picks by its labels when empty.
    pub objective: String,
    /// Boosting rounds (default 100).
    pub n_estimators: usize,
    /// Shrinkage of each tree's leaves (`eta`, default 0.3).
    pub learning_rate: f64,
    /// Deepest split (default 6; 0: no limit, for `lossguide`).
    pub max_depth: usize,
    /// Most leaves per tree (0: no limit; what `lossguide` grows to).
    pub max_leaves: usize,
    /// `depthwise` (default) or `lossguide`.
    pub grow_policy: String,
    /// Least hessian sum in a child (default 1).
    pub min_child_weight: f64,
    /// Least rows in a child (LightGBM's `min_child_samples`, default 20
    /// there; 0 here, as XGBoost has no such limit).
    pub min_child_samples: usize,
    /// Least loss reduction for a split to stay (`min_split_loss`, default 0).
    pub gamma: f64,
    /// L2 regularisation of leaf weights (default 1).
    pub reg_lambda: f64,
    /// L1 regularisation of leaf weights (default 0).
    pub reg_alpha: f64,
    /// Share of rows each tree sees (default 1).
    pub subsample: f64,
    /// Share of features each tree sees (default 1).
    pub colsample_bytree: f64,
    /// Bins per feature (default 256, at most [`MAX_BIN`](super::MAX_BIN) used).
    pub max_bin: usize,
    /// The initial prediction (probability for `binary:logistic`); the
    /// labels' mean when `None`, as XGBoost estimates it.
    pub base_score: Option<f64>,
    /// Seeds row and column sampling.
    pub random_state: u64,
    /// The metric on the evaluation set (the objective's default if empty).
    pub eval_metric: String,
    /// Stop when the evaluation metric has not improved for this many
    /// rounds (needs an evaluation set).
    pub early_stopping_rounds: Option<usize>,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            objective: String::new(),
            n_estimators: 100,
            learning_rate: 0.3,
            max_depth: 6,
            max_leaves: 0,
            grow_policy: "depthwise".into(),
            min_child_weight: 1.0,
            min_child_samples: 0,
            gamma: 0.0,
            reg_lambda: 1.0,
            reg_alpha: 0.0,
            subsample: 1.0,
            colsample_bytree: 1.0,
            max_bin: 256,
            base_score: None,
            random_state: 0,
            eval_metric: String::new(),
            early_stopping_rounds: None,
        }
    }
}

impl Params {
    fn check(&self) -> Result<(), Error> {
        let unit = |name: &str, v: f64| {
            if v > 0.0 && v <= 1.0 { Ok(()) } else { Err(invalid(format!("{name} must be in (0, 1], got {v}"))) }
        };
        unit("subsample", self.subsample)?;
        unit("colsample_bytree", self.colsample_bytree)?;
        for (name, v) in [
            ("learning_rate", self.learning_rate),
            ("min_child_weight", self.min_child_weight),
            ("gamma", self.gamma),
            ("reg_lambda", self.reg_lambda),
            ("reg_alpha", self.reg_alpha),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(invalid(format!("{name} must be a non-negative number, got {v}")));
            }
        }
        if self.n_estimators == 0 {
            return Err(invalid("n_estimators must be at least 1".into()));
        }
        if self.max_bin < 2 {
            return Err(invalid(format!("max_bin must be at least 2, got {}", self.max_bin)));
        }
        match self.grow_policy.as_str() {
            "depthwise" if self.max_depth == 0 => {
                Err(invalid("max_depth 0 (no limit) needs grow_policy \"lossguide\"".into()))
            }
            "depthwise" | "lossguide" => Ok(()),
            other => Err(invalid(format!("unknown grow_policy {other:?} (depthwise or lossguide)"))),
        }
    }

    fn tree(&self) -> TreeParams {
        TreeParams {
            max_depth: self.max_depth,
            max_leaves: self.max_leaves,
            lossguide: self.grow_policy == "lossguide",
            min_child_weight: self.min_child_weight,
            min_child_samples: self.min_child_samples as i64,
            gamma: self.gamma,
            reg_lambda: self.reg_lambda,
            reg_alpha: self.reg_alpha,
            learning_rate: self.learning_rate,
        }
    }
}

/// Ways to rank features (XGBoost's `importance_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Importance {
    /// Splits on the feature (`weight`).
    Weight,
    /// Mean loss reduction of its splits (`gain`).
    Gain,
    /// Total loss reduction of its splits (`total_gain`).
    TotalGain,
    /// Mean hessian sum of its splits (`cover`).
    Cover,
}

/// A trained model: base margins and trees. Saved as JSON by
/// [`Booster::to_json`] (format in docs/LEARN.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Booster {
    /// Always [`FORMAT`].
    pub format: String,
    /// 1 for this layout.
    pub version: u32,
    /// XGBoost's name of the objective.
    pub objective: String,
    /// Classes (1 for regression and binary classification: one margin).
    pub num_class: usize,
    /// Features a row must have.
    pub num_features: usize,
    /// Margin before any tree, per class.
    pub base_margin: Vec<f64>,
    /// Trees, round by round; within a round one per class.
    pub trees: Vec<Tree>,
    /// The best round under early stopping (trees after it are dropped).
    pub best_iteration: Option<usize>,
    /// The evaluation metric per round, if there was an evaluation set.
    pub eval_history: Vec<f64>,
}

/// The evaluation metric `params` name, or the objective's default.
fn eval_metric(params: &Params, objective: Objective) -> Result<Metric, Error> {
    let metric =
        if params.eval_metric.is_empty() { objective.default_metric() } else { Metric::parse(&params.eval_metric)? };
    metric.check(objective)?;
    Ok(metric)
}

/// An evaluation set scored after every round, and early stopping's
/// decision (XGBoost's `evals` with `early_stopping_rounds`). One place for
/// a single process and for the driver of a distributed run, so that both
/// keep the same best round.
pub struct Evaluation<'a> {
    x: &'a Matrix,
    y: &'a [f32],
    k: usize,
    metric: Metric,
    patience: Option<usize>,
    /// The evaluation rows' margins so far (row-major, `k` per row).
    margins: Vec<f64>,
    history: Vec<f64>,
    best: Option<(usize, f64)>,
}

impl<'a> Evaluation<'a> {
    /// Checks the evaluation set (its features, and labels the objective
    /// can score) and starts it at the base margins.
    pub fn new(
        params: &Params,
        objective: Objective,
        num_features: usize,
        base_margin: &[f64],
        x: &'a Matrix,
        y: &'a [f32],
    ) -> Result<Evaluation<'a>, Error> {
        let metric = eval_metric(params, objective)?;
        x.check_features(num_features, "the evaluation set", "the model")?;
        if y.len() != x.rows() {
            return Err(invalid(format!("the evaluation set has {} rows and {} labels", x.rows(), y.len())));
        }
        let k = base_margin.len();
        if objective == Objective::SquaredError {
            if let Some(i) = y.iter().position(|v| !v.is_finite()) {
                return Err(invalid(format!("evaluation label {i} is {}, not a finite number", y[i])));
            }
        } else {
            let classes = if k == 1 { 2 } else { k };
            if let Some(i) =
                y.iter().position(|v| !(v.is_finite() && v.fract() == 0.0 && *v >= 0.0 && (*v as usize) < classes))
            {
                return Err(invalid(format!("evaluation label {i} is {}, not one of the {classes} classes", y[i])));
            }
        }
        let margins = (0..x.rows() * k).map(|i| base_margin[i % k]).collect();
        Ok(Evaluation {
            x,
            y,
            k,
            metric,
            patience: params.early_stopping_rounds,
            margins,
            history: Vec::new(),
            best: None,
        })
    }

    /// Adds round `round`'s trees (one per class) and scores the set;
    /// whether boosting should go on.
    pub fn round(&mut self, round: usize, new: &[Tree]) -> bool {
        for (c, tree) in new.iter().enumerate() {
            for i in 0..self.x.rows() {
                self.margins[i * self.k + c] += tree.predict(self.x.row(i));
            }
        }
        let score = self.metric.eval(&self.margins, self.y, self.k);
        self.history.push(score);
        let better = |b: f64| if self.metric.maximize() { score > b } else { score < b };
        if self.best.is_none_or(|(_, b)| better(b)) {
            self.best = Some((round, score));
        }
        !matches!((self.patience, self.best), (Some(patience), Some((at, _))) if round - at >= patience)
    }

    /// Under early stopping, the last round that could still be needed: the
    /// round whose score would stop boosting if no later round beats the
    /// best so far. A distributed run boosts no further than this before
    /// scoring again, so it grows exactly the rounds one process grows.
    pub fn decided_by(&self) -> Option<usize> {
        let patience = self.patience?;
        Some(self.best.map_or(patience, |(at, _)| at + patience))
    }

    /// The best round under early stopping (the trees after it dropped from
    /// `trees`), and the score of every round.
    pub fn finish(self, trees: &mut Vec<Tree>) -> (Option<usize>, Vec<f64>) {
        let best_iteration = self.patience.and(self.best.map(|(at, _)| at));
        if let Some(at) = best_iteration {
            trees.truncate((at + 1) * self.k);
        }
        (best_iteration, self.history)
    }
}

impl Booster {
    /// Trains on `x`, `labels` (checked by the caller) with `params`.
    fn train(
        params: &Params,
        objective: Objective,
        k: usize,
        x: &Matrix,
        labels: &[f32],
        eval: Option<(&Matrix, &[f32])>,
    ) -> Result<Booster, Error> {
        params.check()?;
        eval_metric(params, objective)?;
        if params.early_stopping_rounds.is_some() && eval.is_none() {
            return Err(invalid("early_stopping_rounds needs an evaluation set (fit_with_eval)".into()));
        }
        let (cuts, base_margin) = prepare(params, objective, k, x, labels)?;
        let mut evaluation =
            eval.map(|(ex, ey)| Evaluation::new(params, objective, x.cols(), &base_margin, ex, ey)).transpose()?;
        let mut trees = Vec::new();
        let mut on_round = |round: usize, new: &[Tree]| evaluation.as_mut().is_none_or(|e| e.round(round, new));
        let mut progress = Progress::default();
        let reducer = &mut Alone;
        boost(
            params,
            objective,
            k,
            &cuts,
            &base_margin,
            x,
            labels,
            0,
            reducer,
            &mut progress,
            &mut trees,
            None,
            &mut on_round,
        )?;
        let (best_iteration, history) = match evaluation {
            Some(e) => e.finish(&mut trees),
            None => (None, Vec::new()),
        };
        Ok(Booster {
            format: FORMAT.into(),
            version: 1,
            objective: objective.name().into(),
            num_class: k,
            num_features: x.cols(),
            base_margin,
            trees,
            best_iteration,
            eval_history: history,
        })
    }

    /// A model from trees grown elsewhere (by [`boost`] on several workers).
    pub fn assemble(objective: Objective, num_features: usize, base_margin: Vec<f64>, trees: Vec<Tree>) -> Booster {
        Booster {
            format: FORMAT.into(),
            version: 1,
            objective: objective.name().into(),
            num_class: base_margin.len(),
            num_features,
            base_margin,
            trees,
            best_iteration: None,
            eval_history: Vec::new(),
        }
    }

    /// Margins (row-major, `num_class` per row) of `x`'s rows.
    pub fn predict_margin(&self, x: &Matrix) -> Result<Vec<f64>, Error> {
        x.check_features(self.num_features, "the rows to predict", "the model")?;
        let k = self.num_class;
        let mut out = Vec::with_capacity(x.rows() * k);
        for r in 0..x.rows() {
            let row = x.row(r);
            let mut m = self.base_margin.clone();
            for (i, t) in self.trees.iter().enumerate() {
                m[i % k] += t.predict(row);
            }
            out.extend(m);
        }
        Ok(out)
    }

    /// Rounds trained (kept).
    pub fn rounds(&self) -> usize {
        self.trees.len() / self.num_class.max(1)
    }

    /// Feature scores by `kind`: one per feature (0 for features no split
    /// uses).
    pub fn feature_importances(&self, kind: Importance) -> Vec<f64> {
        let mut count = vec![0usize; self.num_features];
        let mut gain = vec![0.0; self.num_features];
        let mut cover = vec![0.0; self.num_features];
        for t in &self.trees {
            let reachable = reachable(t);
            for (i, node) in t.nodes.iter().enumerate() {
                if let (true, Node::Split { feature, gain: g, cover: c, .. }) = (reachable[i], node) {
                    let f = *feature as usize;
                    count[f] += 1;
                    gain[f] += g;
                    cover[f] += c;
                }
            }
        }
        let mean = |v: &[f64]| v.iter().zip(&count).map(|(s, n)| if *n == 0 { 0.0 } else { s / *n as f64 }).collect();
        match kind {
            Importance::Weight => count.iter().map(|c| *c as f64).collect(),
            Importance::Gain => mean(&gain),
            Importance::TotalGain => gain,
            Importance::Cover => mean(&cover),
        }
    }

    /// The model as JSON (docs/LEARN.md describes the fields).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a booster is plain data")
    }

    /// A model from [`Booster::to_json`]'s output, checked: the format,
    /// version, objective, class count, tree shapes and node count.
    pub fn from_json(json: &str) -> Result<Booster, Error> {
        let b: Booster = serde_json::from_str(json).map_err(|e| invalid(format!("not a {FORMAT} model: {e}")))?;
        if b.format != FORMAT || b.version != 1 {
            return Err(invalid(format!(
                "not a {FORMAT} version 1 model (format {:?}, version {})",
                b.format, b.version
            )));
        }
        let objective = Objective::parse(&b.objective)?;
        if b.num_class == 0 || b.num_class > MAX_CLASSES || b.base_margin.len() != b.num_class {
            return Err(invalid(format!(
                "the model has {} classes and {} base margins",
                b.num_class,
                b.base_margin.len()
            )));
        }
        if (objective == Objective::Softmax) != (b.num_class > 1) {
            return Err(invalid(format!("objective {} with {} classes", b.objective, b.num_class)));
        }
        if !b.trees.len().is_multiple_of(b.num_class) {
            return Err(invalid(format!("{} trees for {} classes per round", b.trees.len(), b.num_class)));
        }
        let nodes: usize = b.trees.iter().map(|t| t.nodes.len()).sum();
        if nodes > MAX_MODEL_NODES {
            return Err(invalid(format!("the model has {nodes} nodes, more than {MAX_MODEL_NODES}")));
        }
        for (i, t) in b.trees.iter().enumerate() {
            t.validate(b.num_features).map_err(|e| invalid(format!("tree {i}: {e}")))?;
        }
        Ok(b)
    }
}

/// How a boosting run meets the workers that hold the other rows: sums of
/// histogram integers and maxima of gradients, across every worker, in
/// place. A process training alone uses [`Alone`].
pub trait Reducer {
    /// Sums `v` element-wise across the workers.
    fn sum(&mut self, v: &mut [i64]) -> Result<(), Error>;
    /// Takes the element-wise maximum of `v` across the workers.
    fn max(&mut self, v: &mut [f64]) -> Result<(), Error>;
    /// Whether this process is the only worker (`sum` and `max` change
    /// nothing): growth then skips gathering buffers to reduce.
    fn alone(&self) -> bool {
        false
    }
}

/// The [`Reducer`] of a process that holds every row.
pub struct Alone;

impl Reducer for Alone {
    fn sum(&mut self, _: &mut [i64]) -> Result<(), Error> {
        Ok(())
    }
    fn max(&mut self, _: &mut [f64]) -> Result<(), Error> {
        Ok(())
    }
    fn alone(&self) -> bool {
        true
    }
}

/// What every worker must agree on before boosting, computed from all the
/// rows by one process: the bins and the initial margins.
pub fn prepare(
    params: &Params,
    objective: Objective,
    k: usize,
    x: &Matrix,
    labels: &[f32],
) -> Result<(Cuts, Vec<f64>), Error> {
    params.check()?;
    let cuts = Sketch::of(x, 0, x.rows() as u64).cuts(params.max_bin);
    Ok((cuts, base_margin(params, objective, k, labels)?))
}

/// What a process that boosts in several calls (a worker boosting a chunk
/// of rounds at a time) keeps between them: its rows' bins, and their
/// margins — the base plus every tree so far — so that a call neither bins
/// the rows again nor replays the trees. Use one per set of rows, cuts and
/// base margins; a call given trees other than those it was last left with
/// (by count) replays them.
#[derive(Default)]
pub struct Progress {
    /// The rows' bins, column-major (see `Binned`).
    columns: Vec<u8>,
    margins: Vec<f64>,
    /// Trees summed into `margins`.
    trees: usize,
}

/// Boosts on the rows this worker holds (global rows `first_row..`),
/// meeting the others through `reducer`: every worker grows the same trees,
/// equal bit for bit to those one process holding every row grows. Rounds
/// continue after the ones already in `trees` (a checkpoint's), up to
/// `until` (or `n_estimators`); each round's trees are appended;
/// `on_round(round, its trees)` returning false stops early.
#[allow(clippy::too_many_arguments)]
pub fn boost(
    params: &Params,
    objective: Objective,
    k: usize,
    cuts: &Cuts,
    base_margin: &[f64],
    x: &Matrix,
    labels: &[f32],
    first_row: u64,
    reducer: &mut dyn Reducer,
    progress: &mut Progress,
    trees: &mut Vec<Tree>,
    until: Option<usize>,
    on_round: &mut dyn FnMut(usize, &[Tree]) -> bool,
) -> Result<(), Error> {
    params.check()?;
    if !trees.len().is_multiple_of(k) {
        return Err(invalid(format!("{} trees to continue from, not whole rounds of {k}", trees.len())));
    }
    if cuts.cuts.len() != x.cols() || base_margin.len() != k {
        return Err(invalid(format!(
            "bins for {} features and {} margins, for rows of {} features and {k} classes",
            cuts.cuts.len(),
            base_margin.len(),
            x.cols()
        )));
    }
    let n = x.rows();
    if progress.columns.len() != n * x.cols() {
        progress.columns = cuts.apply_by_column(x);
    }
    if progress.trees != trees.len() || progress.margins.len() != n * k {
        progress.margins = (0..n * k).map(|i| base_margin[i % k]).collect();
        for (t, tree) in trees.iter().enumerate() {
            for i in 0..n {
                progress.margins[i * k + t % k] += tree.predict(x.row(i));
            }
        }
        progress.trees = trees.len();
    }
    let Progress { columns, margins, trees: summed } = progress;
    let data = Binned::new(columns, x.cols(), cuts);
    let first_round = trees.len() / k;
    let last_round = until.unwrap_or(params.n_estimators).min(params.n_estimators);
    let tp = params.tree();
    let (mut g, mut h) = (vec![0.0; n * k], vec![0.0; n * k]);
    let cols = x.cols();
    let keep = ((params.colsample_bytree * cols as f64).round() as usize).clamp(1, cols);
    for round in first_round..last_round {
        objective.gradients(margins, labels, k, &mut g, &mut h);
        let rows: Vec<u32> = if params.subsample < 1.0 {
            (0..n as u32)
                .filter(|r| sampled(params.random_state, round, first_row + u64::from(*r), params.subsample))
                .collect()
        } else {
            (0..n as u32).collect()
        };
        // Every worker draws the same features: the generator is seeded by
        // the round alone.
        let mut features: Vec<usize> = (0..cols).collect();
        if keep < cols {
            let mut rng = Rng::new(params.random_state.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ round as u64);
            rng.shuffle(&mut features);
            features.truncate(keep);
            features.sort_unstable();
        }
        let mut new = Vec::with_capacity(k);
        for c in 0..k {
            // One class: the gradients as they are; softmax: this class's.
            let (gc, hc) = (class_column(&g, k, c), class_column(&h, k, c));
            let mut maxima =
                [max_of(rows.iter().map(|&r| gc[r as usize].abs())), max_of(rows.iter().map(|&r| hc[r as usize]))];
            reducer.max(&mut maxima)?;
            let mut count = [rows.len() as i64];
            reducer.sum(&mut count)?;
            let q = Quantized::new(&gc, &hc, maxima[0], maxima[1], count[0] as usize);
            let alone = reducer.alone();
            let mut reduce = |v: &mut [i64]| reducer.sum(v);
            let grown = grow(&data, rows.clone(), &q, &features, &tp, (!alone).then_some(&mut reduce as _))?;
            let tree = grown.tree;
            if grown.pruned || rows.len() < n {
                for i in 0..n {
                    margins[i * k + c] += tree.predict(x.row(i));
                }
            } else {
                // Every row's leaf is known from the partition.
                for &(node, start, end) in &grown.leaves {
                    let Node::Leaf { value, .. } = tree.nodes[node] else { continue };
                    for &r in &grown.rows[start..end] {
                        margins[r as usize * k + c] += value;
                    }
                }
            }
            new.push(tree);
        }
        let go_on = on_round(round, &new);
        trees.extend(new);
        *summed = trees.len();
        if !go_on {
            break;
        }
    }
    Ok(())
}

/// The largest of `values` and 0 (NaN ignored) — by comparison: `f64::max`
/// is a library call in Wasm, whose `max` instruction treats NaN otherwise.
fn max_of(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(0.0, |m, v| if v > m { v } else { m })
}

/// Class `c`'s values of row-major `v` (`k` per row): `v` itself for one.
fn class_column(v: &[f64], k: usize, c: usize) -> std::borrow::Cow<'_, [f64]> {
    if k == 1 { std::borrow::Cow::Borrowed(v) } else { v.iter().skip(c).step_by(k).copied().collect() }
}

/// Nodes reachable from the root (gamma pruning leaves orphans behind).
fn reachable(t: &Tree) -> Vec<bool> {
    let mut seen = vec![false; t.nodes.len()];
    let mut stack = vec![0usize];
    while let Some(i) = stack.pop() {
        if i >= seen.len() || seen[i] {
            continue;
        }
        seen[i] = true;
        if let Node::Split { left, right, .. } = t.nodes[i] {
            stack.extend([left as usize, right as usize]);
        }
    }
    seen
}

/// XGBoost's estimate of the intercept: the labels' mean (a probability for
/// `binary:logistic`, turned into log-odds); 0 per class for softmax — what
/// [`prepare`] computes beside the cuts, for a driver that gathers the
/// labels and the sketches from its workers.
pub fn base_margin(params: &Params, objective: Objective, k: usize, labels: &[f32]) -> Result<Vec<f64>, Error> {
    let mean = labels.iter().map(|v| f64::from(*v)).sum::<f64>() / labels.len().max(1) as f64;
    Ok(match objective {
        Objective::SquaredError => vec![params.base_score.unwrap_or(mean)],
        Objective::BinaryLogistic => {
            let p = params.base_score.unwrap_or(mean);
            if !(p > 0.0 && p < 1.0) {
                return Err(invalid(format!("base_score for binary:logistic must be in (0, 1), got {p}")));
            }
            vec![(p / (1.0 - p)).ln()]
        }
        Objective::Softmax => vec![params.base_score.unwrap_or(0.0); k],
    })
}

/// Labels must be finite (and, for a classifier, class numbers).
fn check_labels(x: &Matrix, y: &[f32]) -> Result<(), Error> {
    if y.len() != x.rows() {
        return Err(invalid(format!("{} rows and {} labels", x.rows(), y.len())));
    }
    check_label_values(y)
}

fn check_label_values(y: &[f32]) -> Result<(), Error> {
    if y.is_empty() {
        return Err(invalid("the training set is empty".into()));
    }
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(invalid(format!("label {i} is {}, not a finite number", y[i])));
    }
    Ok(())
}

/// What both estimators have: construction, `fit`, the builder methods
/// for every parameter, the model.
macro_rules! estimator {
    ($ty:ident) => {
        impl $ty {
            /// XGBoost's defaults.
            pub fn new() -> $ty {
                $ty::default()
            }
            /// An estimator around a trained (or loaded) model.
            pub fn from_booster(booster: Booster) -> $ty {
                $ty { params: Params::default(), booster: Some(booster) }
            }
            /// Trains on `x` and labels (class numbers for a classifier) `y`.
            pub fn fit(&mut self, x: &Matrix, y: &[f32]) -> Result<&mut Self, Error> {
                self.fit_eval(x, y, None)
            }
            /// Trains, evaluating every round on `(eval_x, eval_y)` — what
            /// early stopping watches.
            pub fn fit_with_eval(
                &mut self,
                x: &Matrix,
                y: &[f32],
                eval_x: &Matrix,
                eval_y: &[f32],
            ) -> Result<&mut Self, Error> {
                self.fit_eval(x, y, Some((eval_x, eval_y)))
            }
            /// Boosting rounds.
            pub fn n_estimators(mut self, n: usize) -> Self {
                self.params.n_estimators = n;
                self
            }
            /// Shrinkage (`eta`).
            pub fn learning_rate(mut self, eta: f64) -> Self {
                self.params.learning_rate = eta;
                self
            }
            /// Deepest split (0: none, with `lossguide`).
            pub fn max_depth(mut self, depth: usize) -> Self {
                self.params.max_depth = depth;
                self
            }
            /// Most leaves per tree.
            pub fn max_leaves(mut self, leaves: usize) -> Self {
                self.params.max_leaves = leaves;
                self
            }
            /// `depthwise` or `lossguide`.
            pub fn grow_policy(mut self, policy: &str) -> Self {
                self.params.grow_policy = policy.into();
                self
            }
            /// Least hessian sum in a child.
            pub fn min_child_weight(mut self, w: f64) -> Self {
                self.params.min_child_weight = w;
                self
            }
            /// Least rows in a child (LightGBM's `min_child_samples`).
            pub fn min_child_samples(mut self, rows: usize) -> Self {
                self.params.min_child_samples = rows;
                self
            }
            /// Least loss reduction for a split (`min_split_loss`).
            pub fn gamma(mut self, gamma: f64) -> Self {
                self.params.gamma = gamma;
                self
            }
            /// L2 regularisation.
            pub fn reg_lambda(mut self, lambda: f64) -> Self {
                self.params.reg_lambda = lambda;
                self
            }
            /// L1 regularisation.
            pub fn reg_alpha(mut self, alpha: f64) -> Self {
                self.params.reg_alpha = alpha;
                self
            }
            /// Share of rows per tree.
            pub fn subsample(mut self, share: f64) -> Self {
                self.params.subsample = share;
                self
            }
            /// Share of features per tree.
            pub fn colsample_bytree(mut self, share: f64) -> Self {
                self.params.colsample_bytree = share;
                self
            }
            /// Bins per feature.
            pub fn max_bin(mut self, bins: usize) -> Self {
                self.params.max_bin = bins;
                self
            }
            /// The initial prediction.
            pub fn base_score(mut self, score: f64) -> Self {
                self.params.base_score = Some(score);
                self
            }
            /// Seeds the sampling.
            pub fn random_state(mut self, seed: u64) -> Self {
                self.params.random_state = seed;
                self
            }
            /// The objective, by XGBoost's name.
            pub fn objective(mut self, name: &str) -> Self {
                self.params.objective = name.into();
                self
            }
            /// The evaluation metric, by XGBoost's name.
            pub fn eval_metric(mut self, name: &str) -> Self {
                self.params.eval_metric = name.into();
                self
            }
            /// Early stopping patience, in rounds.
            pub fn early_stopping_rounds(mut self, rounds: usize) -> Self {
                self.params.early_stopping_rounds = Some(rounds);
                self
            }
            /// The trained model.
            pub fn booster(&self) -> Result<&Booster, Error> {
                self.booster.as_ref().ok_or_else(|| invalid(concat!(stringify!($ty), ": predict before fit").into()))
            }
            /// Feature scores of the trained model.
            pub fn feature_importances(&self, kind: Importance) -> Result<Vec<f64>, Error> {
                Ok(self.booster()?.feature_importances(kind))
            }
        }
    };
}

/// XGBoost's `XGBClassifier`: labels are class numbers 0, 1, ..., k-1;
/// `binary:logistic` for two classes, `multi:softprob` for more, unless
/// `objective` says otherwise.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct XGBClassifier {
    /// The parameters (also set by the builder methods).
    pub params: Params,
    booster: Option<Booster>,
}

estimator!(XGBClassifier);

impl XGBClassifier {
    /// The objective and the margins per row (1, or the classes for
    /// softmax) this classifier trains `x`, `y` with; checks the labels.
    pub fn plan(&self, x: &Matrix, y: &[f32]) -> Result<(Objective, usize), Error> {
        check_labels(x, y)?;
        self.plan_labels(y)
    }

    /// [`plan`](XGBClassifier::plan) from the labels alone: what a driver
    /// whose workers hold the rows checks.
    pub fn plan_labels(&self, y: &[f32]) -> Result<(Objective, usize), Error> {
        check_label_values(y)?;
        let classes = crate::class_count(y, MAX_CLASSES)?;
        let objective = match self.params.objective.as_str() {
            "" if classes == 2 => Objective::BinaryLogistic,
            "" => Objective::Softmax,
            name => Objective::parse(name)?,
        };
        let k = match objective {
            Objective::Softmax => classes,
            Objective::BinaryLogistic if classes == 2 => 1,
            _ => {
                return Err(invalid(format!("objective {} does not classify {classes} classes", objective.name())));
            }
        };
        Ok((objective, k))
    }

    /// Installs a model trained elsewhere (or loaded).
    pub fn set_booster(&mut self, booster: Booster) {
        self.booster = Some(booster);
    }

    fn fit_eval(&mut self, x: &Matrix, y: &[f32], eval: Option<(&Matrix, &[f32])>) -> Result<&mut Self, Error> {
        let (objective, k) = self.plan(x, y)?;
        self.booster = Some(Booster::train(&self.params, objective, k, x, y, eval)?);
        Ok(self)
    }

    /// Each row's class probabilities.
    pub fn predict_proba(&self, x: &Matrix) -> Result<Vec<Vec<f64>>, Error> {
        let b = self.booster()?;
        let m = b.predict_margin(x)?;
        Ok(if b.num_class == 1 {
            m.iter().map(|v| sigmoid(*v)).map(|p| vec![1.0 - p, p]).collect()
        } else {
            m.chunks(b.num_class)
                .map(|c| {
                    let mut p = vec![0.0; c.len()];
                    softmax(c, &mut p);
                    p
                })
                .collect()
        })
    }

    /// Each row's most probable class.
    pub fn predict(&self, x: &Matrix) -> Result<Vec<f32>, Error> {
        Ok(self.predict_proba(x)?.iter().map(|p| argmax(p) as f32).collect())
    }
}

/// XGBoost's `XGBRegressor` (`reg:squarederror`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct XGBRegressor {
    /// The parameters (also set by the builder methods).
    pub params: Params,
    booster: Option<Booster>,
}

estimator!(XGBRegressor);

impl XGBRegressor {
    fn fit_eval(&mut self, x: &Matrix, y: &[f32], eval: Option<(&Matrix, &[f32])>) -> Result<&mut Self, Error> {
        check_labels(x, y)?;
        let objective = match self.params.objective.as_str() {
            "" => Objective::SquaredError,
            name => Objective::parse(name)?,
        };
        if objective != Objective::SquaredError {
            return Err(invalid(format!("XGBRegressor takes reg:squarederror, not {}", objective.name())));
        }
        self.booster = Some(Booster::train(&self.params, objective, 1, x, y, eval)?);
        Ok(self)
    }

    /// Each row's prediction.
    pub fn predict(&self, x: &Matrix) -> Result<Vec<f32>, Error> {
        Ok(self.booster()?.predict_margin(x)?.iter().map(|v| *v as f32).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` rows of `cols` features from a seeded generator.
    fn random(n: usize, cols: usize, seed: u64) -> Matrix {
        let mut rng = Rng::new(seed);
        Matrix::new((0..n * cols).map(|_| rng.uniform()).collect(), cols).unwrap()
    }

    #[test]
    fn a_regressor_learns_a_step_and_a_slope() {
        let x = random(2000, 3, 1);
        let y: Vec<f32> = (0..x.rows()).map(|i| if x.get(i, 0) > 0.5 { 2.0 } else { -1.0 } + x.get(i, 1)).collect();
        let mut m = XGBRegressor::new();
        m.fit(&x, &y).unwrap();
        let mse = crate::metrics::mean_squared_error(&y, &m.predict(&x).unwrap()).unwrap();
        assert!(mse < 0.01, "mse {mse}");
        // The noise feature matters least.
        let gain = m.feature_importances(Importance::Gain).unwrap();
        assert!(gain[0] > gain[2] && gain[1] > gain[2], "{gain:?}");
    }

    #[test]
    fn a_classifier_separates_classes_and_learns_where_missing_values_go() {
        let mut x = random(1000, 2, 2);
        let mut rows: Vec<Vec<f32>> = (0..x.rows()).map(|i| x.row(i).to_vec()).collect();
        let mut y: Vec<f32> = rows.iter().map(|r| f32::from(u8::from(r[0] + r[1] > 1.0))).collect();
        // A tenth of the rows miss feature 0, and all of those are class 1.
        for (i, r) in rows.iter_mut().enumerate().filter(|(i, _)| i % 10 == 0) {
            r[0] = f32::NAN;
            y[i] = 1.0;
        }
        x = Matrix::from_rows(&rows).unwrap();
        let mut m = XGBClassifier::new();
        m.fit(&x, &y).unwrap();
        let acc = crate::metrics::accuracy_score(&y, &m.predict(&x).unwrap()).unwrap();
        assert!(acc > 0.97, "accuracy {acc}");
        let p = m.predict_proba(&Matrix::from_rows(&[vec![f32::NAN, 0.1]]).unwrap()).unwrap();
        assert!(p[0][1] > 0.9, "a missing value goes where its class went: {p:?}");
    }

    #[test]
    fn softmax_classifies_three_classes() {
        let x = random(900, 2, 3);
        let y: Vec<f32> = (0..x.rows()).map(|i| (x.get(i, 0) * 3.0).floor().min(2.0)).collect();
        let mut m = XGBClassifier::new().n_estimators(30);
        m.fit(&x, &y).unwrap();
        let b = m.booster().unwrap();
        assert_eq!((b.num_class, b.trees.len(), b.objective.as_str()), (3, 90, "multi:softprob"));
        let acc = crate::metrics::accuracy_score(&y, &m.predict(&x).unwrap()).unwrap();
        assert!(acc > 0.98, "accuracy {acc}");
    }

    #[test]
    fn lossguide_grows_to_max_leaves_and_depthwise_to_max_depth() {
        let x = random(3000, 4, 4);
        let y: Vec<f32> = (0..x.rows()).map(|i| (x.get(i, 0) * 7.0).sin() + x.get(i, 1) * x.get(i, 2)).collect();
        let mut leafy = XGBRegressor::new().grow_policy("lossguide").max_depth(0).max_leaves(13).n_estimators(5);
        leafy.fit(&x, &y).unwrap();
        assert!(leafy.booster().unwrap().trees.iter().all(|t| t.leaves() == 13));
        let mut deep = XGBRegressor::new().max_depth(3).n_estimators(5);
        deep.fit(&x, &y).unwrap();
        assert!(deep.booster().unwrap().trees.iter().all(|t| t.depth() == 3 && t.leaves() <= 8));
    }

    #[test]
    fn gamma_and_regularisation_shrink_trees() {
        let x = random(1000, 2, 5);
        let y: Vec<f32> = (0..x.rows()).map(|i| x.get(i, 0)).collect();
        let leaves = |m: XGBRegressor| {
            let mut m = m.n_estimators(3);
            m.fit(&x, &y).unwrap();
            m.booster().unwrap().trees.iter().map(|t| reachable(t).iter().filter(|r| **r).count()).sum::<usize>()
        };
        let plain = leaves(XGBRegressor::new());
        assert!(leaves(XGBRegressor::new().gamma(5.0)) < plain);
        assert!(leaves(XGBRegressor::new().min_child_weight(200.0)) < plain);
    }

    #[test]
    fn early_stopping_keeps_the_best_round() {
        let x = random(600, 2, 6);
        let mut rng = Rng::new(9);
        // Labels with noise: the evaluation loss turns up after a while.
        let y: Vec<f32> = (0..x.rows()).map(|i| f32::from(u8::from(x.get(i, 0) + 0.6 * rng.uniform() > 0.8))).collect();
        let (tx, ty) = (x.select(&(0..400).collect::<Vec<_>>()), &y[..400]);
        let (ex, ey) = (x.select(&(400..600).collect::<Vec<_>>()), &y[400..]);
        let mut m = XGBClassifier::new().n_estimators(300).early_stopping_rounds(10);
        m.fit_with_eval(&tx, ty, &ex, ey).unwrap();
        let b = m.booster().unwrap();
        let best = b.best_iteration.unwrap();
        assert!(best < 290, "stopped early: {best}");
        assert_eq!(b.rounds(), best + 1);
        let min = b.eval_history.iter().copied().fold(f64::INFINITY, f64::min);
        assert_eq!(b.eval_history[best], min);
    }

    #[test]
    fn the_json_model_round_trips_and_bad_models_are_refused() {
        let x = random(300, 3, 7);
        let y: Vec<f32> = (0..x.rows()).map(|i| f32::from(u8::from(x.get(i, 2) > 0.3))).collect();
        let mut m = XGBClassifier::new().n_estimators(10);
        m.fit(&x, &y).unwrap();
        let json = m.booster().unwrap().to_json();
        let back = XGBClassifier::from_booster(Booster::from_json(&json).unwrap());
        assert_eq!(back.predict_proba(&x).unwrap(), m.predict_proba(&x).unwrap());
        assert!(Booster::from_json("{}").unwrap_err().to_string().contains("not a wray-gbdt model"));
        let cyclic = json.replacen("\"left\":1,", "\"left\":0,", 1);
        assert!(Booster::from_json(&cyclic).unwrap_err().to_string().contains("not a later node"), "{cyclic}");
        let wide = json.replacen("\"feature\":2", "\"feature\":9", 1);
        assert!(Booster::from_json(&wide).unwrap_err().to_string().contains("splits on feature 9 of 3"));
    }

    #[test]
    fn bad_input_is_named() {
        let x = random(10, 2, 8);
        let err = |r: Result<&mut XGBClassifier, Error>| r.err().map(|e| e.to_string()).unwrap_or_default();
        let mut y = vec![0.0f32; 10];
        y[1] = 1.0;
        let mut nan = y.clone();
        nan[3] = f32::NAN;
        assert!(err(XGBClassifier::new().fit(&x, &nan)).contains("label 3 is NaN"));
        assert!(err(XGBClassifier::new().fit(&x, &[0.0; 10])).contains("1 class; a classifier needs at least 2"));
        assert!(err(XGBClassifier::new().fit(&x, &[0.5; 10])).contains("label 0 is 0.5"));
        assert!(
            err(XGBClassifier::new().objective("binary:hinge").fit(&x, &y))
                .contains("unknown objective \"binary:hinge\"")
        );
        assert!(err(XGBClassifier::new().eval_metric("f2").fit(&x, &y)).contains("unknown eval_metric \"f2\""));
        assert!(err(XGBClassifier::new().subsample(0.0).fit(&x, &y)).contains("subsample must be in (0, 1]"));
        let empty = Matrix::from_rows(&[]).unwrap();
        assert!(err(XGBClassifier::new().fit(&empty, &[])).contains("the training set is empty"));
        let mut m = XGBClassifier::new();
        assert!(m.predict(&x).unwrap_err().to_string().contains("predict before fit"));
        m.fit(&x, &y).unwrap();
        let narrow = Matrix::new(vec![0.0; 3], 1).unwrap();
        assert!(m.predict(&narrow).unwrap_err().to_string().contains("have 1 features; the model was trained on 2"));
    }
}
