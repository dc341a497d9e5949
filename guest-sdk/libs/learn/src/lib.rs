//! Classic machine learning inside wray jobs: wray's counterpart of
//! xgboost-ray, lightgbm-ray and the scikit-learn models Ray users train in
//! parallel. Gradient-boosted trees ([`XGBClassifier`], [`XGBRegressor`],
//! XGBoost's `hist` method and parameter names), scikit-learn's decision
//! trees ([`DecisionTreeClassifier`], [`DecisionTreeRegressor`]), model
//! selection ([`GridSearchCV`], [`RandomizedSearchCV`], [`KFold`],
//! [`StratifiedKFold`], [`train_test_split`]) with every fit a task, and
//! scikit-learn's metrics ([`metrics`]), in pure Rust, inside the guest.
//!
//! ```no_run
//! use wray::learn::{Matrix, XGBClassifier, metrics};
//!
//! # fn main() -> Result<(), wray::Error> {
//! let x = Matrix::from_rows(&[vec![0.0, 1.0], vec![1.0, 0.0], vec![0.5, 0.5], vec![0.9, 0.1]])?;
//! let y = [0.0, 1.0, 0.0, 1.0];
//! let mut model = XGBClassifier::new().n_estimators(20).max_depth(3);
//! model.fit(&x, &y)?;
//! let predicted = model.predict(&x)?;
//! println!("accuracy {}", metrics::accuracy_score(&y, &predicted)?);
//! let json = model.booster()?.to_json();   // the documented JSON format
//! # Ok(()) }
//! ```
//!
//! A grid search (each configuration × fold a task):
//!
//! ```no_run
//! use wray::learn::{DecisionTreeClassifier, GridSearchCV, Matrix, ParamGrid};
//!
//! # fn f(x: Matrix, y: Vec<f32>) -> Result<(), wray::Error> {
//! let grid = ParamGrid::new().with("max_depth", 10..20).with("max_features", 3..11);
//! let search = GridSearchCV::new(DecisionTreeClassifier::new().random_state(1), grid).fit(&x, &y)?;
//! println!("{:?}: {:.4}", search.best_params, search.best_score);
//! let predicted = search.best_estimator.predict(&x)?;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

// The remote macro names the SDK as `wray`.
extern crate wray_guest_core as wray;

pub mod forest;
pub mod gbdt;
pub mod linear;
mod matrix;
pub mod metrics;
pub mod model_selection;
pub mod tree;

pub use forest::{RandomForestClassifier, RandomForestRegressor};
pub use gbdt::{Booster, Importance, XGBClassifier, XGBRegressor};
pub use linear::{LinearRegression, LogisticRegression, MAX_LOGISTIC_CLASSES, MAX_LOGISTIC_PARAMETERS, Ridge};
pub use matrix::Matrix;
pub use model_selection::{
    Distribution, Estimator, GridSearchCV, KFold, Param, ParamGrid, RandomizedSearchCV, StratifiedKFold,
    train_test_split,
};
pub use tree::{DecisionTreeClassifier, DecisionTreeRegressor};

pub(crate) fn invalid(what: String) -> wray_guest_core::Error {
    wray_guest_core::Error::InvalidArgument(what)
}

/// The number of classes of labels that must be class numbers 0..k-1 (at
/// most `max`), with at least two present.
pub(crate) fn class_count(y: &[f32], max: usize) -> Result<usize, wray_guest_core::Error> {
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(invalid(format!("label {i} is {}, not a finite number", y[i])));
    }
    if let Some(i) = y.iter().position(|v| v.fract() != 0.0 || *v < 0.0) {
        return Err(invalid(format!("label {i} is {}: a classifier's labels are class numbers 0, 1, ...", y[i])));
    }
    let k = y.iter().map(|v| *v as usize).max().unwrap_or(0) + 1;
    if k > max {
        return Err(invalid(format!("labels go up to {}; at most {max} classes", k - 1)));
    }
    let mut seen = vec![false; k];
    y.iter().for_each(|v| seen[*v as usize] = true);
    let present = seen.iter().filter(|s| **s).count();
    if present < 2 {
        return Err(invalid(format!("the labels hold {present} class; a classifier needs at least 2")));
    }
    Ok(k)
}
