//! Random forests as scikit-learn grows them — bootstrap samples, a random
//! subset of features at every node — with the trees grown in parallel
//! tasks (scikit-learn's `n_jobs`), the data put in the object store once.

use crate::tree::{Criterion, Fitted, TreeParams, fit};
use crate::{Matrix, invalid};
use serde::{Deserialize, Serialize};
use wray_guest_core::{Error, ObjectRef, Rng};

/// Trees one forest may have.
pub const MAX_TREES: usize = 100_000;

/// What a forest's trees are grown from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForestParams {
    /// Trees (default 100).
    pub n_estimators: usize,
    /// Each tree's parameters; `max_features` defaults to √features for a
    /// classifier and all features for a regressor, as scikit-learn's.
    pub tree: TreeParams,
    /// Whether each tree sees a bootstrap sample (default) or every row.
    pub bootstrap: bool,
}

/// Grows trees `seeds` (one per tree) on `x`, `y`: a task's share.
#[wray::remote]
fn grow_trees(
    x: Matrix,
    y: Vec<f32>,
    params: ForestParams,
    classes: u64,
    seeds: Vec<u64>,
) -> Result<Vec<Fitted>, Error> {
    seeds
        .into_iter()
        .map(|seed| {
            let mut p = params.tree.clone();
            p.random_state = seed;
            if !params.bootstrap {
                return fit(&p, &x, &y, classes as usize);
            }
            let mut rng = Rng::new(seed ^ 0x5EED_B007);
            let n = x.rows();
            let rows: Vec<usize> = (0..n).map(|_| rng.below(n)).collect();
            let yb: Vec<f32> = rows.iter().map(|&i| y[i]).collect();
            fit(&p, &x.select(&rows), &yb, classes as usize)
        })
        .collect()
}

/// Grows the forest: trees in chunks, about four chunks per CPU.
fn grow(params: &ForestParams, x: &Matrix, y: &[f32], classes: usize) -> Result<Vec<Fitted>, Error> {
    if params.n_estimators == 0 || params.n_estimators > MAX_TREES {
        return Err(invalid(format!("n_estimators must be 1 to {MAX_TREES}, got {}", params.n_estimators)));
    }
    // Fail on bad rows here, once, rather than in every task.
    if x.rows() == 0 || y.len() != x.rows() {
        return Err(invalid(format!("{} rows and {} labels", x.rows(), y.len())));
    }
    let cpus = wray_guest_core::cluster_resources().get("CPU").copied().unwrap_or(1.0).max(1.0) as usize;
    let chunk = params.n_estimators.div_ceil(4 * cpus).max(1);
    let xr: ObjectRef<Matrix> = wray_guest_core::try_put(x)?;
    let yr: ObjectRef<Vec<f32>> = wray_guest_core::try_put(&y.to_vec())?;
    let mut seeder = Rng::new(params.tree.random_state);
    let seeds: Vec<u64> = (0..params.n_estimators).map(|_| seeder.next_u64()).collect();
    let refs: Vec<ObjectRef<Vec<Fitted>>> =
        seeds.chunks(chunk).map(|s| grow_trees::remote(&xr, &yr, params.clone(), classes as u64, s.to_vec())).collect();
    Ok(wray_guest_core::get_all(&refs)?.into_iter().flatten().collect())
}

macro_rules! forest {
    ($ty:ident, $criterion:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub struct $ty {
            /// The parameters (also set by the builder methods).
            pub params: ForestParams,
            /// The fitted trees.
            pub trees: Vec<Fitted>,
        }

        impl Default for $ty {
            fn default() -> $ty {
                $ty {
                    params: ForestParams {
                        n_estimators: 100,
                        tree: TreeParams {
                            criterion: $criterion,
                            max_depth: None,
                            max_features: None,
                            min_samples_split: 2,
                            min_samples_leaf: 1,
                            random_state: 0,
                        },
                        bootstrap: true,
                    },
                    trees: Vec::new(),
                }
            }
        }

        impl $ty {
            /// scikit-learn's defaults.
            pub fn new() -> $ty {
                $ty::default()
            }
            /// Trees.
            pub fn n_estimators(mut self, n: usize) -> Self {
                self.params.n_estimators = n;
                self
            }
            /// Each tree's deepest split.
            pub fn max_depth(mut self, depth: usize) -> Self {
                self.params.tree.max_depth = Some(depth);
                self
            }
            /// Features drawn per node.
            pub fn max_features(mut self, n: usize) -> Self {
                self.params.tree.max_features = Some(n);
                self
            }
            /// Least rows in a leaf.
            pub fn min_samples_leaf(mut self, n: usize) -> Self {
                self.params.tree.min_samples_leaf = n;
                self
            }
            /// Whether trees see bootstrap samples.
            pub fn bootstrap(mut self, on: bool) -> Self {
                self.params.bootstrap = on;
                self
            }
            /// Seeds the samples and feature draws.
            pub fn random_state(mut self, seed: u64) -> Self {
                self.params.tree.random_state = seed;
                self
            }
            fn check_fitted(&self, x: &Matrix) -> Result<(), Error> {
                let t = self
                    .trees
                    .first()
                    .ok_or_else(|| invalid(concat!(stringify!($ty), ": predict before fit").into()))?;
                x.check_features(t.num_features, "the rows to predict", "the forest")
            }
        }
    };
}

forest!(
    RandomForestClassifier,
    Criterion::Gini,
    "scikit-learn's `RandomForestClassifier`: labels are class numbers; a row's class is the trees' most common vote."
);
forest!(RandomForestRegressor, Criterion::SquaredError, "scikit-learn's `RandomForestRegressor`: the trees' mean.");

impl RandomForestClassifier {
    /// Grows the trees in parallel tasks.
    pub fn fit(&mut self, x: &Matrix, y: &[f32]) -> Result<&mut Self, Error> {
        let classes = crate::class_count(y, crate::tree::MAX_TREE_CLASSES)?;
        let mut params = self.params.clone();
        if params.tree.max_features.is_none() {
            params.tree.max_features = Some(((x.cols() as f64).sqrt() as usize).max(1));
        }
        self.trees = grow(&params, x, y, classes)?;
        Ok(self)
    }

    /// The trees' most common vote per row (ties to the lower class).
    pub fn predict(&self, x: &Matrix) -> Result<Vec<f32>, Error> {
        self.check_fitted(x)?;
        let k = self.trees[0].num_classes;
        Ok((0..x.rows())
            .map(|r| {
                let mut votes = vec![0u32; k];
                for t in &self.trees {
                    votes[t.predict_row(x.row(r)) as usize] += 1;
                }
                (0..k).max_by(|a, b| votes[*a].cmp(&votes[*b]).then(b.cmp(a))).unwrap_or(0) as f32
            })
            .collect())
    }
}

impl RandomForestRegressor {
    /// Grows the trees in parallel tasks.
    pub fn fit(&mut self, x: &Matrix, y: &[f32]) -> Result<&mut Self, Error> {
        if let Some(i) = y.iter().position(|v| !v.is_finite()) {
            return Err(invalid(format!("label {i} is {}, not a finite number", y[i])));
        }
        self.trees = grow(&self.params, x, y, 0)?;
        Ok(self)
    }

    /// The trees' mean per row.
    pub fn predict(&self, x: &Matrix) -> Result<Vec<f32>, Error> {
        self.check_fitted(x)?;
        let n = self.trees.len() as f64;
        Ok((0..x.rows())
            .map(|r| (self.trees.iter().map(|t| t.predict_row(x.row(r))).sum::<f64>() / n) as f32)
            .collect())
    }
}
