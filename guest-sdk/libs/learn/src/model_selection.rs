//! Model selection as scikit-learn does it, in parallel as Ray's joblib
//! backend runs it: [`train_test_split`], [`KFold`], [`StratifiedKFold`],
//! and [`GridSearchCV`] / [`RandomizedSearchCV`] over any [`Estimator`] —
//! every (parameters, fold) pair a task, the data put in the object store
//! once, mean and standard deviation of the score per configuration, ranks,
//! and the best configuration refitted on all the data.

use crate::forest::{RandomForestClassifier, RandomForestRegressor};
use crate::gbdt::{XGBClassifier, XGBRegressor};
use crate::linear::{LinearRegression, LogisticRegression, Ridge};
use crate::tree::{Criterion, DecisionTreeClassifier, DecisionTreeRegressor};
use crate::{Matrix, invalid, metrics};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use wray_guest_core::{Code, Error, ObjectRef, Rng};

/// Configurations one search may try (each is `cv` tasks).
pub const MAX_CONFIGS: usize = 100_000;

/// A parameter value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Param {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// Python's `None` (no limit).
    None,
}

impl std::fmt::Display for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Param::Int(i) => write!(f, "{i}"),
            Param::Float(x) => write!(f, "{x}"),
            Param::Str(s) => write!(f, "'{s}'"),
            Param::None => f.write_str("None"),
        }
    }
}

impl From<i64> for Param {
    fn from(v: i64) -> Param {
        Param::Int(v)
    }
}
impl From<i32> for Param {
    fn from(v: i32) -> Param {
        Param::Int(v.into())
    }
}
impl From<usize> for Param {
    fn from(v: usize) -> Param {
        Param::Int(v as i64)
    }
}
impl From<f64> for Param {
    fn from(v: f64) -> Param {
        Param::Float(v)
    }
}
impl From<&str> for Param {
    fn from(v: &str) -> Param {
        Param::Str(v.into())
    }
}

impl Param {
    fn usize(&self, name: &str) -> Result<usize, Error> {
        match self {
            Param::Int(i) if *i >= 0 => Ok(*i as usize),
            other => Err(invalid(format!("parameter {name} takes a non-negative integer, got {other}"))),
        }
    }
    fn optional(&self, name: &str) -> Result<Option<usize>, Error> {
        match self {
            Param::None => Ok(None),
            other => other.usize(name).map(Some),
        }
    }
    fn f64(&self, name: &str) -> Result<f64, Error> {
        match self {
            Param::Int(i) => Ok(*i as f64),
            Param::Float(x) => Ok(*x),
            other => Err(invalid(format!("parameter {name} takes a number, got {other}"))),
        }
    }
    fn str(&self, name: &str) -> Result<&str, Error> {
        match self {
            Param::Str(s) => Ok(s),
            other => Err(invalid(format!("parameter {name} takes a string, got {other}"))),
        }
    }
}

/// Each fold's (train, test) row indices.
pub type Folds = Vec<(Vec<usize>, Vec<usize>)>;

/// One configuration: parameter names and values, names ascending.
pub type Params = BTreeMap<String, Param>;

/// Something `GridSearchCV` can tune: it takes parameters by name, fits
/// and predicts, and scores (accuracy for a classifier, R² for a
/// regressor, as scikit-learn's `score`).
pub trait Estimator: Clone + Serialize + DeserializeOwned + 'static {
    /// Whether it classifies (stratified folds, accuracy).
    const CLASSIFIER: bool;
    /// Sets a parameter by its scikit-learn / XGBoost name.
    fn set_param(&mut self, name: &str, value: &Param) -> Result<(), Error>;
    /// Trains.
    fn fit_rows(&mut self, x: &Matrix, y: &[f32]) -> Result<(), Error>;
    /// Predicts.
    fn predict_rows(&self, x: &Matrix) -> Result<Vec<f32>, Error>;
    /// scikit-learn's `score`.
    fn score(&self, x: &Matrix, y: &[f32]) -> Result<f64, Error> {
        let p = self.predict_rows(x)?;
        if Self::CLASSIFIER { metrics::accuracy_score(y, &p) } else { metrics::r2_score(y, &p) }
    }
}

fn unknown(estimator: &str, name: &str) -> Error {
    invalid(format!("{estimator} has no parameter {name:?}"))
}

/// `fit_rows` and `predict_rows` as the estimator's own `fit` and
/// `predict`.
macro_rules! delegate {
    () => {
        fn fit_rows(&mut self, x: &Matrix, y: &[f32]) -> Result<(), Error> {
            self.fit(x, y).map(|_| ())
        }
        fn predict_rows(&self, x: &Matrix) -> Result<Vec<f32>, Error> {
            self.predict(x)
        }
    };
}

/// A tree's parameter by scikit-learn's name; `Ok(false)` for a name that
/// is not one (trees and forests share these).
fn set_tree_param(p: &mut crate::tree::TreeParams, name: &str, v: &Param) -> Result<bool, Error> {
    match name {
        "max_depth" => p.max_depth = v.optional(name)?,
        "max_features" => p.max_features = v.optional(name)?,
        "min_samples_split" => p.min_samples_split = v.usize(name)?,
        "min_samples_leaf" => p.min_samples_leaf = v.usize(name)?,
        "random_state" => p.random_state = v.usize(name)? as u64,
        "criterion" => p.criterion = Criterion::parse(v.str(name)?)?,
        _ => return Ok(false),
    }
    Ok(true)
}

macro_rules! tree_params {
    ($ty:ident, $classifier:expr) => {
        impl Estimator for $ty {
            const CLASSIFIER: bool = $classifier;
            fn set_param(&mut self, name: &str, v: &Param) -> Result<(), Error> {
                if set_tree_param(&mut self.params, name, v)? { Ok(()) } else { Err(unknown(stringify!($ty), name)) }
            }
            delegate!();
        }
    };
}
tree_params!(DecisionTreeClassifier, true);
tree_params!(DecisionTreeRegressor, false);

macro_rules! forest_params {
    ($ty:ident, $classifier:expr) => {
        impl Estimator for $ty {
            const CLASSIFIER: bool = $classifier;
            fn set_param(&mut self, name: &str, v: &Param) -> Result<(), Error> {
                let p = &mut self.params;
                match name {
                    "n_estimators" => p.n_estimators = v.usize(name)?,
                    "bootstrap" => p.bootstrap = v.usize(name)? != 0,
                    _ if set_tree_param(&mut p.tree, name, v)? => {}
                    _ => return Err(unknown(stringify!($ty), name)),
                }
                Ok(())
            }
            delegate!();
        }
    };
}
forest_params!(RandomForestClassifier, true);
forest_params!(RandomForestRegressor, false);

impl Estimator for LinearRegression {
    const CLASSIFIER: bool = false;
    fn set_param(&mut self, name: &str, _: &Param) -> Result<(), Error> {
        Err(unknown("LinearRegression", name))
    }
    delegate!();
}

impl Estimator for Ridge {
    const CLASSIFIER: bool = false;
    fn set_param(&mut self, name: &str, v: &Param) -> Result<(), Error> {
        match name {
            "alpha" => self.alpha = v.f64(name)?,
            _ => return Err(unknown("Ridge", name)),
        }
        Ok(())
    }
    delegate!();
}

impl Estimator for LogisticRegression {
    const CLASSIFIER: bool = true;
    fn set_param(&mut self, name: &str, v: &Param) -> Result<(), Error> {
        match name {
            "C" => self.c = v.f64(name)?,
            "max_iter" => self.max_iter = v.usize(name)?,
            "tol" => self.tol = v.f64(name)?,
            _ => return Err(unknown("LogisticRegression", name)),
        }
        Ok(())
    }
    delegate!();
}

macro_rules! xgb_params {
    ($ty:ident, $classifier:expr) => {
        impl Estimator for $ty {
            const CLASSIFIER: bool = $classifier;
            fn set_param(&mut self, name: &str, v: &Param) -> Result<(), Error> {
                let p = &mut self.params;
                match name {
                    "n_estimators" => p.n_estimators = v.usize(name)?,
                    "learning_rate" | "eta" => p.learning_rate = v.f64(name)?,
                    "max_depth" => p.max_depth = v.usize(name)?,
                    "max_leaves" => p.max_leaves = v.usize(name)?,
                    "grow_policy" => p.grow_policy = v.str(name)?.into(),
                    "min_child_weight" => p.min_child_weight = v.f64(name)?,
                    "min_child_samples" => p.min_child_samples = v.usize(name)?,
                    "gamma" | "min_split_loss" => p.gamma = v.f64(name)?,
                    "reg_lambda" => p.reg_lambda = v.f64(name)?,
                    "reg_alpha" => p.reg_alpha = v.f64(name)?,
                    "subsample" => p.subsample = v.f64(name)?,
                    "colsample_bytree" => p.colsample_bytree = v.f64(name)?,
                    "max_bin" => p.max_bin = v.usize(name)?,
                    "random_state" => p.random_state = v.usize(name)? as u64,
                    "objective" => p.objective = v.str(name)?.into(),
                    _ => return Err(unknown(stringify!($ty), name)),
                }
                Ok(())
            }
            delegate!();
        }
    };
}
xgb_params!(XGBClassifier, true);
xgb_params!(XGBRegressor, false);

/// scikit-learn's `train_test_split(test_size, random_state)` on `n` rows:
/// the same permutation (NumPy's), so the same rows. Returns (train, test)
/// row indices.
pub fn train_test_split(n: usize, test_size: f64, random_state: u32) -> Result<(Vec<usize>, Vec<usize>), Error> {
    if !(test_size > 0.0 && test_size < 1.0) {
        return Err(invalid(format!("test_size must be in (0, 1), got {test_size}")));
    }
    let test = (test_size * n as f64).ceil() as usize;
    let perm = wray_guest_core::numpy_permutation(n, random_state);
    Ok((perm[test..].to_vec(), perm[..test].to_vec()))
}

/// scikit-learn's `KFold(n_splits)` without shuffling: contiguous folds,
/// the first `n % n_splits` one row longer.
#[derive(Clone, Copy, Debug)]
pub struct KFold {
    /// Folds (at least 2).
    pub n_splits: usize,
}

impl KFold {
    /// (train, test) row indices of each fold.
    pub fn split(&self, n: usize) -> Result<Folds, Error> {
        check_splits(self.n_splits, n)?;
        let mut folds = Vec::new();
        let mut start = 0;
        for k in 0..self.n_splits {
            let size = n / self.n_splits + usize::from(k < n % self.n_splits);
            let test: Vec<usize> = (start..start + size).collect();
            let train: Vec<usize> = (0..start).chain(start + size..n).collect();
            folds.push((train, test));
            start += size;
        }
        Ok(folds)
    }
}

fn check_splits(k: usize, n: usize) -> Result<(), Error> {
    if k < 2 || k > n {
        return Err(invalid(format!("n_splits must be between 2 and the {n} rows, got {k}")));
    }
    Ok(())
}

/// scikit-learn's `StratifiedKFold(n_splits)` without shuffling: each fold
/// holds each class in about its overall share — the same folds as
/// scikit-learn's.
#[derive(Clone, Copy, Debug)]
pub struct StratifiedKFold {
    /// Folds (at least 2).
    pub n_splits: usize,
}

impl StratifiedKFold {
    /// (train, test) row indices of each fold for labels `y`.
    pub fn split(&self, y: &[f32]) -> Result<Folds, Error> {
        let (k, n) = (self.n_splits, y.len());
        check_splits(k, n)?;
        // Classes numbered by first appearance, as scikit-learn encodes them.
        let mut order: Vec<f32> = Vec::new();
        let encoded: Vec<usize> = y
            .iter()
            .map(|v| match order.iter().position(|c| c == v) {
                Some(i) => i,
                None => {
                    order.push(*v);
                    order.len() - 1
                }
            })
            .collect();
        let classes = order.len();
        let mut counts = vec![0usize; classes];
        encoded.iter().for_each(|c| counts[*c] += 1);
        if let Some(c) = (0..classes).find(|c| counts[*c] < k) {
            return Err(invalid(format!(
                "class {} has {} rows, fewer than the {k} folds: a fold would miss it",
                order[c], counts[c]
            )));
        }
        // allocation[fold][class]: class counts of every k-th row of the
        // sorted labels, starting at row `fold`.
        let mut sorted = encoded.clone();
        sorted.sort_unstable();
        let mut allocation = vec![vec![0usize; classes]; k];
        for (i, c) in sorted.iter().enumerate() {
            allocation[i % k][*c] += 1;
        }
        let mut test_fold = vec![0usize; n];
        for c in 0..classes {
            let folds: Vec<usize> =
                allocation.iter().enumerate().flat_map(|(f, a)| std::iter::repeat_n(f, a[c])).collect();
            for (slot, i) in (0..n).filter(|i| encoded[*i] == c).enumerate() {
                test_fold[i] = folds[slot];
            }
        }
        Ok((0..k)
            .map(|f| {
                let test: Vec<usize> = (0..n).filter(|i| test_fold[*i] == f).collect();
                let train: Vec<usize> = (0..n).filter(|i| test_fold[*i] != f).collect();
                (train, test)
            })
            .collect())
    }
}

/// Every combination of the listed values (scikit-learn's `ParameterGrid`:
/// names in ascending order, the last varying fastest).
#[derive(Clone, Debug, Default)]
pub struct ParamGrid(BTreeMap<String, Vec<Param>>);

impl ParamGrid {
    /// An empty grid (one configuration: the estimator as it is).
    pub fn new() -> ParamGrid {
        ParamGrid::default()
    }

    /// Adds a parameter and its values.
    pub fn with<V: Into<Param>>(mut self, name: &str, values: impl IntoIterator<Item = V>) -> ParamGrid {
        self.0.insert(name.to_string(), values.into_iter().map(Into::into).collect());
        self
    }

    /// The configurations, in scikit-learn's order.
    pub fn configs(&self) -> Result<Vec<Params>, Error> {
        let mut out: Vec<Params> = vec![Params::new()];
        for (name, values) in &self.0 {
            if values.is_empty() {
                return Err(invalid(format!("parameter {name} has no values to try")));
            }
            out = out
                .into_iter()
                .flat_map(|c| {
                    values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.insert(name.clone(), v.clone());
                        c
                    })
                })
                .collect();
            if out.len() > MAX_CONFIGS {
                return Err(invalid(format!("the grid has more than {MAX_CONFIGS} configurations")));
            }
        }
        Ok(out)
    }
}

/// What a search found (scikit-learn's `cv_results_` and `best_*_`).
#[derive(Clone, Debug)]
pub struct SearchResult<E> {
    /// Per configuration, in the order tried.
    pub cv_results: Vec<CvResult>,
    /// The best configuration's index (the first of the best mean scores).
    pub best_index: usize,
    /// Its parameters.
    pub best_params: Params,
    /// Its mean score over the folds.
    pub best_score: f64,
    /// The estimator with those parameters, refitted on all the data.
    pub best_estimator: E,
}

/// One configuration's scores.
#[derive(Clone, Debug)]
pub struct CvResult {
    /// The parameters.
    pub params: Params,
    /// Each fold's score.
    pub split_test_scores: Vec<f64>,
    /// Their mean.
    pub mean_test_score: f64,
    /// Their (population) standard deviation.
    pub std_test_score: f64,
    /// 1 for the best; ties share the lowest rank.
    pub rank_test_score: usize,
}

/// scikit-learn's `GridSearchCV(estimator, param_grid, cv=5)`: every
/// configuration of the grid scored on every fold by a task.
pub struct GridSearchCV<E: Estimator> {
    estimator: E,
    grid: ParamGrid,
    cv: usize,
}

impl<E: Estimator> GridSearchCV<E> {
    /// A search over `grid`, 5-fold (stratified for classifiers).
    pub fn new(estimator: E, grid: ParamGrid) -> GridSearchCV<E> {
        GridSearchCV { estimator, grid, cv: 5 }
    }

    /// Folds.
    pub fn cv(mut self, folds: usize) -> Self {
        self.cv = folds;
        self
    }

    /// Scores every configuration on every fold, in parallel, then refits
    /// the best on all of `x`, `y`.
    pub fn fit(&self, x: &Matrix, y: &[f32]) -> Result<SearchResult<E>, Error> {
        search(&self.estimator, self.grid.configs()?, self.cv, x, y)
    }
}

/// How `RandomizedSearchCV` draws a parameter.
#[derive(Clone, Debug)]
pub enum Distribution {
    /// One of these values, equally likely.
    Choice(Vec<Param>),
    /// An integer in `[low, high)`.
    RandInt(i64, i64),
    /// A float uniform in `[low, high)`.
    Uniform(f64, f64),
    /// A float whose logarithm is uniform in `[ln low, ln high)`.
    LogUniform(f64, f64),
}

/// scikit-learn's `RandomizedSearchCV(estimator, param_distributions,
/// n_iter, cv=5, random_state)`.
pub struct RandomizedSearchCV<E: Estimator> {
    estimator: E,
    distributions: BTreeMap<String, Distribution>,
    n_iter: usize,
    cv: usize,
    random_state: u64,
}

impl<E: Estimator> RandomizedSearchCV<E> {
    /// `n_iter` configurations drawn from `distributions` (by name).
    pub fn new(estimator: E, distributions: &[(&str, Distribution)], n_iter: usize) -> RandomizedSearchCV<E> {
        let distributions = distributions.iter().map(|(k, d)| (k.to_string(), d.clone())).collect();
        RandomizedSearchCV { estimator, distributions, n_iter, cv: 5, random_state: 0 }
    }

    /// Folds.
    pub fn cv(mut self, folds: usize) -> Self {
        self.cv = folds;
        self
    }

    /// Seeds the draws.
    pub fn random_state(mut self, seed: u64) -> Self {
        self.random_state = seed;
        self
    }

    /// Draws the configurations, then searches as [`GridSearchCV`] does.
    pub fn fit(&self, x: &Matrix, y: &[f32]) -> Result<SearchResult<E>, Error> {
        if self.n_iter == 0 || self.n_iter > MAX_CONFIGS {
            return Err(invalid(format!("n_iter must be 1 to {MAX_CONFIGS}, got {}", self.n_iter)));
        }
        let mut rng = Rng::new(self.random_state);
        let mut configs = Vec::with_capacity(self.n_iter);
        for _ in 0..self.n_iter {
            let mut c = Params::new();
            for (name, d) in &self.distributions {
                let v = match d {
                    Distribution::Choice(values) if !values.is_empty() => values[rng.below(values.len())].clone(),
                    Distribution::RandInt(lo, hi) if lo < hi => Param::Int(lo + rng.below((hi - lo) as usize) as i64),
                    Distribution::Uniform(lo, hi) if lo < hi => Param::Float(lo + (hi - lo) * f64::from(rng.uniform())),
                    Distribution::LogUniform(lo, hi) if *lo > 0.0 && lo < hi => {
                        Param::Float((lo.ln() + (hi.ln() - lo.ln()) * f64::from(rng.uniform())).exp())
                    }
                    other => return Err(invalid(format!("parameter {name}: an empty or inverted {other:?}"))),
                };
                c.insert(name.clone(), v);
            }
            configs.push(c);
        }
        search(&self.estimator, configs, self.cv, x, y)
    }
}

/// One fold of one configuration, run by [`cv_task`]: decodes the
/// estimator, sets the parameters, fits on `train`, scores on `test`.
type FoldFn = fn(&[u8], &Params, &Matrix, &[f32], &[u32], &[u32]) -> Result<f64, Error>;

fn fold<E: Estimator>(
    estimator: &[u8],
    params: &Params,
    x: &Matrix,
    y: &[f32],
    train: &[u32],
    test: &[u32],
) -> Result<f64, Error> {
    let mut e: E = wray_codec::decode(estimator).map_err(|e| invalid(format!("the estimator does not decode: {e}")))?;
    for (name, v) in params {
        e.set_param(name, v)?;
    }
    let pick = |rows: &[u32]| rows.iter().map(|r| *r as usize).collect::<Vec<usize>>();
    let (train, test) = (pick(train), pick(test));
    let ty: Vec<f32> = train.iter().map(|&i| y[i]).collect();
    e.fit_rows(&x.select(&train), &ty)?;
    let sy: Vec<f32> = test.iter().map(|&i| y[i]).collect();
    e.score(&x.select(&test), &sy)
}

/// A fold as a task. `x` and `y` come from the object store, put once.
#[wray::remote]
fn cv_task(
    code: Code<FoldFn>,
    estimator: Vec<u8>,
    params: Params,
    x: Matrix,
    y: Vec<f32>,
    train: Vec<u32>,
    test: Vec<u32>,
) -> Result<f64, Error> {
    (code.get()?)(&estimator, &params, &x, &y, &train, &test)
}

fn search<E: Estimator>(
    estimator: &E,
    configs: Vec<Params>,
    cv: usize,
    x: &Matrix,
    y: &[f32],
) -> Result<SearchResult<E>, Error> {
    if x.rows() == 0 || y.len() != x.rows() {
        return Err(invalid(format!("{} rows and {} labels to search on", x.rows(), y.len())));
    }
    // Every parameter name is checked once here, before any task starts.
    for c in &configs {
        let mut e = estimator.clone();
        for (name, v) in c {
            e.set_param(name, v)?;
        }
    }
    let folds = if E::CLASSIFIER {
        StratifiedKFold { n_splits: cv }.split(y)?
    } else {
        KFold { n_splits: cv }.split(y.len())?
    };
    let folds: Vec<(Vec<u32>, Vec<u32>)> = folds
        .into_iter()
        .map(|(a, b)| (a.into_iter().map(|i| i as u32).collect(), b.into_iter().map(|i| i as u32).collect()))
        .collect();
    let bytes = wray_codec::encode(estimator).map_err(|e| invalid(format!("the estimator does not encode: {e}")))?;
    let xr: ObjectRef<Matrix> = wray_guest_core::try_put(x)?;
    let yr: ObjectRef<Vec<f32>> = wray_guest_core::try_put(&y.to_vec())?;
    let code: Code<FoldFn> = Code::of(fold::<E> as FoldFn);
    let refs: Vec<ObjectRef<f64>> = configs
        .iter()
        .flat_map(|c| {
            folds.iter().map(|(train, test)| {
                cv_task::remote(code, bytes.clone(), c.clone(), &xr, &yr, train.clone(), test.clone())
            })
        })
        .collect();
    let scores = wray_guest_core::get_all(&refs)?;
    let mut cv_results: Vec<CvResult> = configs
        .into_iter()
        .zip(scores.chunks(cv))
        .map(|(params, s)| {
            let mean = s.iter().sum::<f64>() / s.len() as f64;
            let std = (s.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / s.len() as f64).sqrt();
            CvResult {
                params,
                split_test_scores: s.to_vec(),
                mean_test_score: mean,
                std_test_score: std,
                rank_test_score: 0,
            }
        })
        .collect();
    let means: Vec<f64> = cv_results.iter().map(|r| r.mean_test_score).collect();
    for r in &mut cv_results {
        r.rank_test_score = 1 + means.iter().filter(|m| **m > r.mean_test_score).count();
    }
    let best_index = (0..means.len()).find(|i| cv_results[*i].rank_test_score == 1).unwrap_or(0);
    let best_params = cv_results[best_index].params.clone();
    let mut best_estimator = estimator.clone();
    for (name, v) in &best_params {
        best_estimator.set_param(name, v)?;
    }
    best_estimator.fit_rows(x, y)?;
    Ok(SearchResult { best_index, best_score: means[best_index], best_params, best_estimator, cv_results })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_scikit_learns() {
        // KFold(3).split(range(7)): test folds [0,1,2], [3,4], [5,6].
        let tests: Vec<Vec<usize>> = KFold { n_splits: 3 }.split(7).unwrap().into_iter().map(|f| f.1).collect();
        assert_eq!(tests, [vec![0, 1, 2], vec![3, 4], vec![5, 6]]);
        // What scikit-learn 1.9's StratifiedKFold(3).split gives for these labels.
        let folds = |y: &[f32]| -> Vec<Vec<usize>> {
            StratifiedKFold { n_splits: 3 }.split(y).unwrap().into_iter().map(|f| f.1).collect()
        };
        assert_eq!(
            folds(&[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]),
            [vec![0, 1, 4, 5], vec![2, 3, 6], vec![7, 8, 9]]
        );
        assert_eq!(
            folds(&[2.0, 0.0, 1.0, 1.0, 0.0, 2.0, 2.0, 1.0, 0.0, 0.0, 1.0, 2.0, 1.0, 0.0]),
            [vec![0, 1, 2, 3, 5], vec![4, 6, 7, 8, 10], vec![9, 11, 12, 13]]
        );
        assert!(StratifiedKFold { n_splits: 5 }.split(&[0.0, 0.0, 1.0, 1.0, 1.0, 0.0]).is_err());
    }

    #[test]
    fn a_grid_lists_every_combination_in_scikit_learns_order() {
        let grid = ParamGrid::new().with("max_depth", [1, 2]).with("criterion", ["gini", "entropy"]);
        let configs = grid.configs().unwrap();
        let shown: Vec<String> =
            configs.iter().map(|c| c.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")).collect();
        assert_eq!(
            shown,
            [
                "criterion='gini',max_depth=1",
                "criterion='gini',max_depth=2",
                "criterion='entropy',max_depth=1",
                "criterion='entropy',max_depth=2"
            ]
        );
        let mut tree = DecisionTreeClassifier::new();
        assert!(tree.set_param("depth", &Param::Int(3)).unwrap_err().to_string().contains("no parameter \"depth\""));
    }
}
