//! Classic machine learning inside wray jobs: wray's counterpart of
//! xgboost-ray, lightgbm-ray and the scikit-learn models Ray users train in
//! parallel. Gradient-boosted trees ([`XGBClassifier`], [`XGBRegressor`],
//! XGBoost's `hist` method and parameter names) and scikit-learn's metrics
//! ([`metrics`]), in pure Rust, running inside the guest.
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

#![deny(missing_docs)]

pub mod gbdt;
mod matrix;
pub mod metrics;

pub use gbdt::{Booster, Importance, Params, XGBClassifier, XGBRegressor};
pub use matrix::Matrix;

pub(crate) fn invalid(what: String) -> wray_guest_core::Error {
    wray_guest_core::Error::InvalidArgument(what)
}
