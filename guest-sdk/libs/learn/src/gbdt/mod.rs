//! Gradient-boosted trees with XGBoost's `hist` method, in pure Rust inside
//! the guest: [`XGBClassifier`] and [`XGBRegressor`] (scikit-learn's API as
//! XGBoost gives it, XGBoost's parameter names) over a [`Booster`] — the
//! trees, saved and loaded as documented JSON.
//!
//! Each round computes every row's gradient and hessian at the current
//! margins, then grows a tree (one per class for softmax) on quantile bins
//! of the features: histograms of the gradients per node, the larger
//! child's by subtraction, the best split per node with L1/L2
//! regularisation, `min_child_weight` and `gamma`, missing values sent the
//! way that reduces the loss more. Trees grow depth-wise to `max_depth`
//! (XGBoost's default) or loss-guided to `max_leaves` (LightGBM's
//! leaf-wise growth: `grow_policy("lossguide")`).

mod bins;
mod booster;
mod grow;
mod objective;
mod tree;

pub use bins::{Cuts, MAX_BIN, SKETCH_ROWS, Sketch};
pub use booster::{
    Alone, Booster, Evaluation, FORMAT, Importance, MAX_CLASSES, MAX_MODEL_NODES, Params, Progress, Reducer,
    XGBClassifier, XGBRegressor, base_margin, boost, prepare,
};
pub use objective::{Metric, Objective};
pub(crate) use objective::{argmax, sigmoid, softmax};
pub use tree::{Node, Tree};
