//! Linear models as scikit-learn fits them: [`LinearRegression`] (least
//! squares), [`Ridge`] (L2-penalised least squares) and binary
//! [`LogisticRegression`] (L2-penalised, scikit-learn's objective, solved by
//! Newton's method — the same optimum scikit-learn's `lbfgs` converges to).
//! The intercept is never penalised: features and targets are centred
//! first.

use crate::{Matrix, invalid};
use serde::{Deserialize, Serialize};
use wray_guest_core::Error;

/// Features a linear model may have (its normal equations are d × d).
pub const MAX_LINEAR_FEATURES: usize = 4096;

/// A fitted linear function: `x · coef + intercept`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    /// One weight per feature (scikit-learn's `coef_`).
    pub coef: Vec<f64>,
    /// scikit-learn's `intercept_`.
    pub intercept: f64,
}

impl Linear {
    fn value(&self, row: &[f32]) -> f64 {
        self.intercept + row.iter().zip(&self.coef).map(|(x, w)| f64::from(*x) * w).sum::<f64>()
    }
}

fn check(x: &Matrix, y: &[f32]) -> Result<(), Error> {
    if x.rows() == 0 {
        return Err(invalid("the training set is empty".into()));
    }
    if y.len() != x.rows() {
        return Err(invalid(format!("{} rows and {} labels", x.rows(), y.len())));
    }
    if x.cols() > MAX_LINEAR_FEATURES {
        return Err(invalid(format!("{} features; linear models take at most {MAX_LINEAR_FEATURES}", x.cols())));
    }
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(invalid(format!("label {i} is {}, not a finite number", y[i])));
    }
    if let Some(r) = (0..x.rows()).find(|&r| x.row(r).iter().any(|v| !v.is_finite())) {
        return Err(invalid(format!("row {r} has a missing or infinite value")));
    }
    Ok(())
}

/// Solves `a · w = b` for a symmetric positive (semi)definite `a` (d × d,
/// row-major) by Cholesky; a singular `a` gets the smallest ridge that makes
/// it definite, which gives the least-norm solution's neighbourhood rather
/// than a failure.
fn solve(mut a: Vec<f64>, b: &[f64]) -> Vec<f64> {
    let d = b.len();
    let trace: f64 = (0..d).map(|i| a[i * d + i]).sum::<f64>().max(1e-300);
    let mut jitter = 0.0;
    loop {
        if let Some(l) = cholesky(&a, d) {
            // L y = b, then Lᵀ w = y.
            let mut y = vec![0.0; d];
            for i in 0..d {
                y[i] = (b[i] - (0..i).map(|k| l[i * d + k] * y[k]).sum::<f64>()) / l[i * d + i];
            }
            let mut w = vec![0.0; d];
            for i in (0..d).rev() {
                w[i] = (y[i] - (i + 1..d).map(|k| l[k * d + i] * w[k]).sum::<f64>()) / l[i * d + i];
            }
            return w;
        }
        let add = if jitter == 0.0 { trace * 1e-12 } else { jitter * 9.0 };
        for i in 0..d {
            a[i * d + i] += add;
        }
        jitter += add;
    }
}

fn cholesky(a: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = a[i * d + j] - (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum::<f64>();
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * d + i] = s.sqrt();
            } else {
                l[i * d + j] = s / l[j * d + j];
            }
        }
    }
    Some(l)
}

/// Least squares with an L2 penalty `alpha` on the weights.
fn least_squares(x: &Matrix, y: &[f32], alpha: f64) -> Linear {
    let (n, d) = (x.rows(), x.cols());
    let mean_x: Vec<f64> = (0..d).map(|j| (0..n).map(|i| f64::from(x.get(i, j))).sum::<f64>() / n as f64).collect();
    let mean_y = y.iter().map(|v| f64::from(*v)).sum::<f64>() / n as f64;
    let mut a = vec![0.0; d * d];
    let mut b = vec![0.0; d];
    let mut row = vec![0.0; d];
    for (i, yi) in y.iter().enumerate() {
        for j in 0..d {
            row[j] = f64::from(x.get(i, j)) - mean_x[j];
        }
        let t = f64::from(*yi) - mean_y;
        for j in 0..d {
            b[j] += row[j] * t;
            for k in 0..=j {
                a[j * d + k] += row[j] * row[k];
            }
        }
    }
    for j in 0..d {
        for k in 0..j {
            a[k * d + j] = a[j * d + k];
        }
        a[j * d + j] += alpha;
    }
    let coef = solve(a, &b);
    let intercept = mean_y - coef.iter().zip(&mean_x).map(|(w, m)| w * m).sum::<f64>();
    Linear { coef, intercept }
}

/// scikit-learn's `LinearRegression`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LinearRegression {
    /// The fitted model.
    pub model: Option<Linear>,
}

/// scikit-learn's `Ridge(alpha)` (default 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ridge {
    /// The penalty on the squared weights.
    pub alpha: f64,
    /// The fitted model.
    pub model: Option<Linear>,
}

impl Default for Ridge {
    fn default() -> Ridge {
        Ridge { alpha: 1.0, model: None }
    }
}

impl LinearRegression {
    /// A model to fit.
    pub fn new() -> LinearRegression {
        LinearRegression::default()
    }
    /// Fits by least squares.
    pub fn fit(&mut self, x: &Matrix, y: &[f32]) -> Result<&mut Self, Error> {
        check(x, y)?;
        self.model = Some(least_squares(x, y, 0.0));
        Ok(self)
    }
    /// Predictions.
    pub fn predict(&self, x: &Matrix) -> Result<Vec<f32>, Error> {
        predict_linear(self.model.as_ref(), x, "LinearRegression")
    }
}

impl Ridge {
    /// `Ridge(alpha)`.
    pub fn new(alpha: f64) -> Ridge {
        Ridge { alpha, model: None }
    }
    /// Fits by penalised least squares.
    pub fn fit(&mut self, x: &Matrix, y: &[f32]) -> Result<&mut Self, Error> {
        check(x, y)?;
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return Err(invalid(format!("alpha must be a non-negative number, got {}", self.alpha)));
        }
        self.model = Some(least_squares(x, y, self.alpha));
        Ok(self)
    }
    /// Predictions.
    pub fn predict(&self, x: &Matrix) -> Result<Vec<f32>, Error> {
        predict_linear(self.model.as_ref(), x, "Ridge")
    }
}

/// The fitted model, checked against `x`'s features.
fn fitted<'a>(model: Option<&'a Linear>, x: &Matrix, who: &str) -> Result<&'a Linear, Error> {
    let m = model.ok_or_else(|| invalid(format!("{who}: predict before fit")))?;
    x.check_features(m.coef.len(), "the rows to predict", "the model")?;
    Ok(m)
}

fn predict_linear(model: Option<&Linear>, x: &Matrix, who: &str) -> Result<Vec<f32>, Error> {
    let m = fitted(model, x, who)?;
    Ok((0..x.rows()).map(|r| m.value(x.row(r)) as f32).collect())
}

/// scikit-learn's binary `LogisticRegression(C=1.0)`: minimises
/// `C · Σ log-loss + ½‖w‖²` (the intercept unpenalised). Labels 0 and 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogisticRegression {
    /// Inverse regularisation strength (default 1).
    pub c: f64,
    /// Newton steps at most (default 100).
    pub max_iter: usize,
    /// Stop when the gradient's largest entry is below this (default 1e-8).
    pub tol: f64,
    /// The fitted model (the log-odds).
    pub model: Option<Linear>,
}

impl Default for LogisticRegression {
    fn default() -> LogisticRegression {
        LogisticRegression { c: 1.0, max_iter: 100, tol: 1e-8, model: None }
    }
}

impl LogisticRegression {
    /// scikit-learn's defaults.
    pub fn new() -> LogisticRegression {
        LogisticRegression::default()
    }

    /// Fits by Newton's method on the penalised log-likelihood.
    pub fn fit(&mut self, x: &Matrix, y: &[f32]) -> Result<&mut Self, Error> {
        check(x, y)?;
        let classes = crate::class_count(y, 2)
            .map_err(|e| invalid(format!("LogisticRegression classifies two classes, labelled 0 and 1 ({e})")))?;
        debug_assert_eq!(classes, 2);
        if !(self.c.is_finite() && self.c > 0.0) {
            return Err(invalid(format!("C must be a positive number, got {}", self.c)));
        }
        let d = x.cols();
        // Parameters: d weights then the intercept.
        let mut w = vec![0.0; d + 1];
        let lam = 1.0 / self.c;
        for _ in 0..self.max_iter {
            let mut g = vec![0.0; d + 1];
            let mut h = vec![0.0; (d + 1) * (d + 1)];
            for (i, yi) in y.iter().enumerate() {
                let row = x.row(i);
                let z = w[d] + row.iter().zip(&w).map(|(v, wj)| f64::from(*v) * wj).sum::<f64>();
                let p = 1.0 / (1.0 + (-z).exp());
                let r = p - f64::from(*yi);
                let s = (p * (1.0 - p)).max(1e-12);
                let feat = |j: usize| if j == d { 1.0 } else { f64::from(row[j]) };
                for j in 0..=d {
                    g[j] += r * feat(j);
                    for k in 0..=j {
                        h[j * (d + 1) + k] += s * feat(j) * feat(k);
                    }
                }
            }
            for j in 0..=d {
                for k in 0..j {
                    h[k * (d + 1) + j] = h[j * (d + 1) + k];
                }
                if j < d {
                    g[j] += lam * w[j];
                    h[j * (d + 1) + j] += lam;
                }
            }
            if g.iter().all(|v| v.abs() < self.tol) {
                break;
            }
            let step = solve(h, &g);
            for (wj, sj) in w.iter_mut().zip(step) {
                *wj -= sj;
            }
        }
        let intercept = w.pop().unwrap_or(0.0);
        self.model = Some(Linear { coef: w, intercept });
        Ok(self)
    }

    /// Each row's probabilities of classes 0 and 1.
    pub fn predict_proba(&self, x: &Matrix) -> Result<Vec<[f64; 2]>, Error> {
        let m = fitted(self.model.as_ref(), x, "LogisticRegression")?;
        Ok((0..x.rows())
            .map(|r| {
                let p = 1.0 / (1.0 + (-m.value(x.row(r))).exp());
                [1.0 - p, p]
            })
            .collect())
    }

    /// Each row's class (1 where its probability is above one half).
    pub fn predict(&self, x: &Matrix) -> Result<Vec<f32>, Error> {
        Ok(self.predict_proba(x)?.iter().map(|p| f32::from(u8::from(p[1] > 0.5))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_squares_recovers_a_plane_and_ridge_shrinks_it() {
        // y = 2 x0 - 3 x1 + 5, exactly.
        let rows: Vec<Vec<f32>> = (0..50).map(|i| vec![(i % 7) as f32, (i % 5) as f32 * 0.5]).collect();
        let y: Vec<f32> = rows.iter().map(|r| 2.0 * r[0] - 3.0 * r[1] + 5.0).collect();
        let x = Matrix::from_rows(&rows).unwrap();
        let mut lr = LinearRegression::new();
        lr.fit(&x, &y).unwrap();
        let m = lr.model.as_ref().unwrap();
        assert!((m.coef[0] - 2.0).abs() < 1e-9 && (m.coef[1] + 3.0).abs() < 1e-9 && (m.intercept - 5.0).abs() < 1e-9);
        let mut ridge = Ridge::new(100.0);
        ridge.fit(&x, &y).unwrap();
        let r = ridge.model.as_ref().unwrap();
        assert!(r.coef[0].abs() < 2.0 && r.coef[1].abs() < 3.0);
    }

    #[test]
    fn logistic_regression_matches_scikit_learns_optimum() {
        // sklearn: LogisticRegression().fit([[0],[1],[2],[3],[4],[5]], [0,0,1,0,1,1])
        // with tol=1e-12: coef_ [[0.7670537]], intercept_ [-1.9176343]
        let x = Matrix::new(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0], 1).unwrap();
        let mut m = LogisticRegression::new();
        m.fit(&x, &[0.0, 0.0, 1.0, 0.0, 1.0, 1.0]).unwrap();
        let fitted = m.model.as_ref().unwrap();
        assert!((fitted.coef[0] - 0.7670537).abs() < 1e-6, "{fitted:?}");
        assert!((fitted.intercept + 1.9176343).abs() < 1e-6, "{fitted:?}");
        assert!(m.fit(&x, &[0.0, 1.0, 2.0, 0.0, 1.0, 2.0]).unwrap_err().to_string().contains("two classes"));
    }
}
