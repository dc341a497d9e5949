//! Linear models as scikit-learn fits them: [`LinearRegression`] (least
//! squares), [`Ridge`] (L2-penalised least squares) and
//! [`LogisticRegression`], binary or multinomial (L2-penalised,
//! scikit-learn's objective, solved by Newton's method — the same optimum
//! scikit-learn's `lbfgs` converges to).
//! The intercept is never penalised: features and targets are centred
//! first.

use crate::gbdt::{argmax, sigmoid, softmax};
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
    /// Sets the penalty, as the other estimators' builders do.
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
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

/// Parameters (weights and intercepts, over all classes) a logistic
/// regression may have: Newton's method solves a system of that size.
pub const MAX_LOGISTIC_PARAMETERS: usize = 4096;

/// Classes a logistic regression may tell apart.
pub const MAX_LOGISTIC_CLASSES: usize = 256;

/// scikit-learn's `LogisticRegression(C=1.0)` with its default `lbfgs`
/// solver's objective: for two classes (labels 0 and 1) the binary model,
/// `C · Σ log-loss + ½‖w‖²`; for more (labels 0..k) the multinomial one,
/// `C · Σ cross-entropy of the softmax + ½ Σ_k ‖w_k‖²`. Intercepts are not
/// penalised; a multinomial model's intercepts sum to zero, as
/// scikit-learn's do. Solved by Newton's method with a backtracking line
/// search — the optimum `lbfgs` converges to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogisticRegression {
    /// Inverse regularisation strength (default 1).
    pub c: f64,
    /// Newton steps at most (default 100).
    pub max_iter: usize,
    /// Stop when the gradient's largest entry is below this (default 1e-8).
    pub tol: f64,
    /// The fitted model, scikit-learn's `coef_` rows with their
    /// `intercept_`: one (the log-odds of class 1) for two classes, one per
    /// class (its softmax logit) for more.
    pub model: Option<Vec<Linear>>,
}

impl Default for LogisticRegression {
    fn default() -> LogisticRegression {
        LogisticRegression { c: 1.0, max_iter: 100, tol: 1e-8, model: None }
    }
}

/// The penalised objective, its gradient and Hessian at `w`: `k` outputs
/// (1 for the binary model, its class-1 log-odds), each `d` weights then an
/// intercept, laid out output after output.
struct Newton<'a> {
    x: &'a Matrix,
    y: &'a [f32],
    k: usize,
    lam: f64,
}

impl Newton<'_> {
    fn width(&self) -> usize {
        self.x.cols() + 1
    }

    /// Each output's value for row `i`.
    fn logits(&self, w: &[f64], i: usize, out: &mut [f64]) {
        let (d, row) = (self.x.cols(), self.x.row(i));
        for (c, o) in out.iter_mut().enumerate() {
            let wc = &w[c * (d + 1)..(c + 1) * (d + 1)];
            *o = wc[d] + row.iter().zip(wc).map(|(v, wj)| f64::from(*v) * wj).sum::<f64>();
        }
    }

    /// Each output's probability for row `i` (the class-1 probability for
    /// the binary model); `z` holds the logits on the way.
    fn probabilities(&self, w: &[f64], i: usize, z: &mut [f64], p: &mut [f64]) {
        self.logits(w, i, z);
        if self.k == 1 {
            p[0] = sigmoid(z[0]);
        } else {
            softmax(z, p);
        }
    }

    fn loss(&self, w: &[f64]) -> f64 {
        let (d, mut z, mut p) = (self.x.cols(), vec![0.0; self.k], vec![0.0; self.k]);
        let mut total = 0.0;
        for (i, yi) in self.y.iter().enumerate() {
            self.probabilities(w, i, &mut z, &mut p);
            let truth = if self.k == 1 { if *yi == 1.0 { p[0] } else { 1.0 - p[0] } } else { p[*yi as usize] };
            total -= truth.max(1e-300).ln();
        }
        let penalty: f64 = (0..self.k).flat_map(|c| &w[c * (d + 1)..c * (d + 1) + d]).map(|v| v * v).sum();
        total + 0.5 * self.lam * penalty
    }

    /// The gradient and Hessian (row-major, `n × n` for `n` parameters) of
    /// `loss` at `w`.
    fn derivatives(&self, w: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (d, k, wd) = (self.x.cols(), self.k, self.width());
        let n = k * wd;
        let (mut g, mut h) = (vec![0.0; n], vec![0.0; n * n]);
        let (mut z, mut p) = (vec![0.0; k], vec![0.0; k]);
        let mut feat = vec![0.0; wd];
        for (i, yi) in self.y.iter().enumerate() {
            self.probabilities(w, i, &mut z, &mut p);
            for (j, f) in feat.iter_mut().enumerate() {
                *f = if j == d { 1.0 } else { f64::from(self.x.row(i)[j]) };
            }
            for a in 0..k {
                let truth = if k == 1 { f64::from(*yi) } else { f64::from(u8::from(*yi as usize == a)) };
                let r = p[a] - truth;
                for j in 0..wd {
                    g[a * wd + j] += r * feat[j];
                }
                // The lower triangle only; mirrored below.
                for b in 0..=a {
                    let s = if k == 1 {
                        (p[0] * (1.0 - p[0])).max(1e-12)
                    } else {
                        p[a] * (f64::from(u8::from(a == b)) - p[b])
                    };
                    for j in 0..wd {
                        let row = (a * wd + j) * n + b * wd;
                        let top = if a == b { j + 1 } else { wd };
                        for l in 0..top {
                            h[row + l] += s * feat[j] * feat[l];
                        }
                    }
                }
            }
        }
        for r in 0..n {
            for c in 0..r {
                h[c * n + r] = h[r * n + c];
            }
        }
        for a in 0..k {
            for j in 0..d {
                let at = a * wd + j;
                g[at] += self.lam * w[at];
                h[at * n + at] += self.lam;
            }
        }
        (g, h)
    }
}

impl LogisticRegression {
    /// scikit-learn's defaults.
    pub fn new() -> LogisticRegression {
        LogisticRegression::default()
    }

    // Builders, as the trees' and boosters' are; the fields stay public.

    /// Inverse regularisation strength, scikit-learn's `C`.
    pub fn c(mut self, c: f64) -> Self {
        self.c = c;
        self
    }
    /// Newton steps at most.
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }
    /// Tolerance on the gradient's largest entry.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    /// Fits by Newton's method on the penalised log-likelihood.
    pub fn fit(&mut self, x: &Matrix, y: &[f32]) -> Result<&mut Self, Error> {
        check(x, y)?;
        let classes =
            crate::class_count(y, MAX_LOGISTIC_CLASSES).map_err(|e| invalid(format!("LogisticRegression: {e}")))?;
        if !(self.c.is_finite() && self.c > 0.0) {
            return Err(invalid(format!("C must be a positive number, got {}", self.c)));
        }
        let d = x.cols();
        // The binary model has one output, the multinomial one per class.
        let k = if classes == 2 { 1 } else { classes };
        if k * (d + 1) > MAX_LOGISTIC_PARAMETERS {
            return Err(invalid(format!(
                "LogisticRegression: {classes} classes × {} features and intercept is {} parameters; at most {MAX_LOGISTIC_PARAMETERS}",
                d,
                k * (d + 1)
            )));
        }
        let problem = Newton { x, y, k, lam: 1.0 / self.c };
        let mut w = vec![0.0; k * (d + 1)];
        let mut loss = problem.loss(&w);
        for _ in 0..self.max_iter {
            let (g, h) = problem.derivatives(&w);
            if g.iter().all(|v| v.abs() < self.tol) {
                break;
            }
            let step = solve(h, &g);
            // Halve the step until the objective goes down (a full Newton
            // step can overshoot far from the optimum).
            let mut t = 1.0;
            let (next, next_loss) = loop {
                let mut next: Vec<f64> = w.iter().zip(&step).map(|(wj, sj)| wj - t * sj).collect();
                if k > 1 {
                    // The softmax is the same for intercepts shifted
                    // together: keep them summing to zero.
                    let mean = (0..k).map(|c| next[c * (d + 1) + d]).sum::<f64>() / k as f64;
                    (0..k).for_each(|c| next[c * (d + 1) + d] -= mean);
                }
                let l = problem.loss(&next);
                if l <= loss || t < 1e-10 {
                    break (next, l);
                }
                t *= 0.5;
            };
            let stalled = loss - next_loss <= f64::EPSILON * loss.abs();
            w = next;
            loss = next_loss;
            if stalled {
                break;
            }
        }
        self.model = Some(w.chunks(d + 1).map(|c| Linear { coef: c[..d].to_vec(), intercept: c[d] }).collect());
        Ok(self)
    }

    /// Each row's probability of every class (columns 0..k).
    pub fn predict_proba(&self, x: &Matrix) -> Result<Vec<Vec<f64>>, Error> {
        let models = self.model.as_deref().unwrap_or_default();
        fitted(models.first(), x, "LogisticRegression")?;
        Ok((0..x.rows())
            .map(|r| {
                let z: Vec<f64> = models.iter().map(|m| m.value(x.row(r))).collect();
                if let [log_odds] = z[..] {
                    let p = sigmoid(log_odds);
                    vec![1.0 - p, p]
                } else {
                    let mut p = vec![0.0; z.len()];
                    softmax(&z, &mut p);
                    p
                }
            })
            .collect())
    }

    /// Each row's most probable class (for two classes: 1 where its
    /// probability is above one half).
    pub fn predict(&self, x: &Matrix) -> Result<Vec<f32>, Error> {
        Ok(self.predict_proba(x)?.iter().map(|p| argmax(p) as f32).collect())
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
        let mut ridge = Ridge::default().alpha(100.0);
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
        let fitted = &m.model.as_ref().unwrap()[0];
        assert!((fitted.coef[0] - 0.7670537).abs() < 1e-6, "{fitted:?}");
        assert!((fitted.intercept + 1.9176343).abs() < 1e-6, "{fitted:?}");
        // A smaller C penalises the weight harder.
        let mut strong = LogisticRegression::new().c(0.01).max_iter(50).tol(1e-10);
        strong.fit(&x, &[0.0, 0.0, 1.0, 0.0, 1.0, 1.0]).unwrap();
        let shrunk = &strong.model.as_ref().unwrap()[0];
        assert!(shrunk.coef[0] > 0.0 && shrunk.coef[0] < 0.5 * fitted.coef[0], "{shrunk:?}");
        assert!(m.fit(&x, &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0]).unwrap_err().to_string().contains("at least 2"));
    }

    #[test]
    fn multinomial_logistic_regression_matches_scikit_learns_optimum() {
        // sklearn 1.9: LogisticRegression(tol=1e-12, max_iter=10000).fit(X, y)
        let rows = [
            [0.0, 1.5],
            [1.0, 0.0],
            [2.0, 2.5],
            [3.0, 1.0],
            [4.0, 4.0],
            [5.0, 2.0],
            [1.0, 3.0],
            [2.0, 5.0],
            [0.5, 4.0],
            [3.0, 3.5],
            [4.0, 0.0],
            [5.0, 5.5],
            [2.0, 1.0],
            [3.0, 4.5],
        ];
        let y = [0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 1.0, 2.0, 0.0, 1.0, 0.0, 2.0, 0.0, 2.0];
        let x = Matrix::from_rows(&rows.map(|r| r.to_vec())).unwrap();
        let mut m = LogisticRegression::new();
        m.fit(&x, &y).unwrap();
        let coef = [[-0.737900475, -0.770940555], [-0.134696929, -0.087405732], [0.872597404, 0.858346288]];
        let intercept = [3.787787379, 1.039725177, -4.827512555];
        let fitted = m.model.as_ref().unwrap();
        assert_eq!(fitted.len(), 3);
        for (c, f) in fitted.iter().enumerate() {
            for (got, want) in f.coef.iter().zip(coef[c]) {
                assert!((got - want).abs() < 1e-6, "class {c}: {f:?}");
            }
            assert!((f.intercept - intercept[c]).abs() < 1e-6, "class {c}: {f:?}");
        }
        // predict_proba([[2, 3]]) = [[0.306168301, 0.509323978, 0.184507721]]
        let p = m.predict_proba(&Matrix::new(vec![2.0, 3.0], 2).unwrap()).unwrap();
        for (got, want) in p[0].iter().zip([0.306168301, 0.509323978, 0.184507721]) {
            assert!((got - want).abs() < 1e-6, "{p:?}");
        }
        assert_eq!(m.predict(&Matrix::new(vec![2.0, 3.0, 0.0, 0.0, 5.0, 6.0], 2).unwrap()).unwrap(), [1.0, 0.0, 2.0]);
        // Bad labels are named.
        let err = m.fit(&x, &y.map(|v| v + 0.5)).unwrap_err().to_string();
        assert!(err.contains("class numbers"), "{err}");
    }
}
