//! CART decision trees, as scikit-learn's `DecisionTreeClassifier` and
//! `DecisionTreeRegressor` grow them: exact splits at midpoints between
//! consecutive distinct values, Gini / entropy / squared-error criteria,
//! `max_depth`, `max_features` drawn at random per node, `min_samples_split`,
//! `min_samples_leaf`.
//!
//! The rows are sorted by each feature once, at the root, into one array per
//! feature; a node is a range of those arrays, and a split partitions the
//! range of every array stably in place, so no node sorts again and no node
//! allocates — a level costs one pass over rows × features.

use crate::{Matrix, invalid};
use serde::{Deserialize, Serialize};
use wray_guest_core::{Error, Rng};

/// Classes a tree classifier may have.
pub const MAX_TREE_CLASSES: usize = 10_000;

/// How a split's quality is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Criterion {
    /// Gini impurity (classification; scikit-learn's default).
    Gini,
    /// Shannon entropy (classification).
    Entropy,
    /// Variance (regression).
    SquaredError,
}

impl Criterion {
    /// scikit-learn's name: `gini`, `entropy`, `squared_error`.
    pub fn parse(name: &str) -> Result<Criterion, Error> {
        Ok(match name {
            "gini" => Criterion::Gini,
            "entropy" | "log_loss" => Criterion::Entropy,
            "squared_error" => Criterion::SquaredError,
            other => return Err(invalid(format!("unknown criterion {other:?} (gini, entropy, squared_error)"))),
        })
    }
}

/// A node of a fitted tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TreeNode {
    /// `x[feature] <= threshold` goes left.
    Split {
        /// The feature's column.
        feature: u32,
        /// The split value (a midpoint between two training values).
        threshold: f32,
        /// The left child.
        left: u32,
        /// The right child.
        right: u32,
    },
    /// A leaf: the predicted class (its most frequent, ties to the lowest)
    /// or value (its mean).
    Leaf {
        /// The prediction.
        value: f64,
        /// Training rows that reached it.
        samples: u32,
    },
}

/// The parameters, named and defaulted as scikit-learn's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TreeParams {
    /// `gini`, `entropy` (classifier) or `squared_error` (regressor).
    pub criterion: Criterion,
    /// Deepest split (`None`: until leaves are pure or too small).
    pub max_depth: Option<usize>,
    /// Features drawn per node (`None`: all).
    pub max_features: Option<usize>,
    /// Least rows a node needs to be split (default 2).
    pub min_samples_split: usize,
    /// Least rows in a leaf (default 1).
    pub min_samples_leaf: usize,
    /// Seeds the feature draws.
    pub random_state: u64,
}

/// A fitted tree.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    /// Node 0 is the root.
    pub nodes: Vec<TreeNode>,
    /// Features a row must have.
    pub num_features: usize,
    /// Classes (0 for a regressor).
    pub num_classes: usize,
}

impl Fitted {
    /// The prediction for one row.
    pub fn predict_row(&self, row: &[f32]) -> f64 {
        let mut i = 0;
        loop {
            match &self.nodes[i] {
                TreeNode::Leaf { value, .. } => return *value,
                TreeNode::Split { feature, threshold, left, right } => {
                    i = if row[*feature as usize] <= *threshold { *left } else { *right } as usize;
                }
            }
        }
    }

    /// Nodes (scikit-learn's `tree_.node_count`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Its depth (scikit-learn's `tree_.max_depth`).
    pub fn depth(&self) -> usize {
        fn walk(t: &Fitted, i: usize) -> usize {
            match &t.nodes[i] {
                TreeNode::Leaf { .. } => 0,
                TreeNode::Split { left, right, .. } => 1 + walk(t, *left as usize).max(walk(t, *right as usize)),
            }
        }
        if self.nodes.is_empty() { 0 } else { walk(self, 0) }
    }
}

/// A node waiting to be split: its range of the sorted arrays.
struct Pending {
    node: usize,
    depth: usize,
    start: usize,
    end: usize,
}

/// Grows a tree on `x` and targets `y` (class numbers when `classes > 0`).
pub(crate) fn fit(p: &TreeParams, x: &Matrix, y: &[f32], classes: usize) -> Result<Fitted, Error> {
    if x.rows() == 0 {
        return Err(invalid("the training set is empty".into()));
    }
    if y.len() != x.rows() {
        return Err(invalid(format!("{} rows and {} labels", x.rows(), y.len())));
    }
    if let Some(i) = (0..x.rows()).find(|&r| x.row(r).iter().any(|v| !v.is_finite())) {
        return Err(invalid(format!("row {i} has a missing or infinite value; decision trees need every value")));
    }
    if p.min_samples_split < 2 || p.min_samples_leaf < 1 {
        return Err(invalid("min_samples_split must be at least 2 and min_samples_leaf at least 1".into()));
    }
    if p.max_features == Some(0) {
        return Err(invalid("max_features must be at least 1".into()));
    }
    let cols = x.cols();
    let n = x.rows();
    let mut sorted: Vec<Vec<u32>> = (0..cols)
        .map(|f| {
            let mut idx: Vec<u32> = (0..n as u32).collect();
            // Row order breaks ties, so the sort is stable without being one.
            idx.sort_unstable_by(|a, b| x.get(*a as usize, f).total_cmp(&x.get(*b as usize, f)).then(a.cmp(b)));
            idx
        })
        .collect();
    let mut out = Fitted { nodes: vec![leaf(&sorted[0], y, classes)], num_features: cols, num_classes: classes };
    let mut rng = Rng::new(p.random_state);
    let mut left_mark = vec![false; n];
    let mut scratch: Vec<u32> = Vec::with_capacity(n);
    let mut stack = vec![Pending { node: 0, depth: 0, start: 0, end: n }];
    while let Some(pn) = stack.pop() {
        let (start, end) = (pn.start, pn.end);
        let rows = end - start;
        if rows < p.min_samples_split
            || p.max_depth.is_some_and(|d| pn.depth >= d)
            || is_pure(&sorted[0][start..end], y)
        {
            continue;
        }
        let view: Vec<&[u32]> = sorted.iter().map(|s| &s[start..end]).collect();
        let Some((feature, threshold)) = best_split(p, x, y, classes, &view, &mut rng) else { continue };
        for &r in view[0] {
            left_mark[r as usize] = x.get(r as usize, feature) <= threshold;
        }
        let mut mid = start;
        for list in &mut sorted {
            // Stable in place: left rows move down, right ones wait aside.
            scratch.clear();
            let mut write = start;
            for read in start..end {
                let r = list[read];
                if left_mark[r as usize] {
                    list[write] = r;
                    write += 1;
                } else {
                    scratch.push(r);
                }
            }
            list[write..end].copy_from_slice(&scratch);
            mid = write;
        }
        let (li, ri) = (out.nodes.len(), out.nodes.len() + 1);
        out.nodes.push(leaf(&sorted[0][start..mid], y, classes));
        out.nodes.push(leaf(&sorted[0][mid..end], y, classes));
        out.nodes[pn.node] = TreeNode::Split { feature: feature as u32, threshold, left: li as u32, right: ri as u32 };
        // Right pushed first: the left subtree is grown first, as
        // scikit-learn's depth-first builder numbers nodes.
        stack.push(Pending { node: ri, depth: pn.depth + 1, start: mid, end });
        stack.push(Pending { node: li, depth: pn.depth + 1, start, end: mid });
    }
    Ok(out)
}

fn is_pure(rows: &[u32], y: &[f32]) -> bool {
    rows.iter().all(|r| y[*r as usize] == y[rows[0] as usize])
}

fn leaf(rows: &[u32], y: &[f32], classes: usize) -> TreeNode {
    let value = if classes > 0 {
        let mut counts = vec![0u32; classes];
        rows.iter().for_each(|r| counts[y[*r as usize] as usize] += 1);
        (0..classes).max_by(|a, b| counts[*a].cmp(&counts[*b]).then(b.cmp(a))).unwrap_or(0) as f64
    } else {
        rows.iter().map(|r| f64::from(y[*r as usize])).sum::<f64>() / rows.len().max(1) as f64
    };
    TreeNode::Leaf { value, samples: rows.len() as u32 }
}

/// The split with the lowest weighted child impurity over the features
/// drawn for this node (more are drawn if none of them splits).
fn best_split(
    p: &TreeParams,
    x: &Matrix,
    y: &[f32],
    classes: usize,
    sorted: &[&[u32]],
    rng: &mut Rng,
) -> Option<(usize, f32)> {
    let cols = sorted.len();
    let mut order: Vec<usize> = (0..cols).collect();
    let want = p.max_features.unwrap_or(cols).min(cols);
    if want < cols {
        rng.shuffle(&mut order);
    }
    let mut best: Option<(f64, usize, f32)> = None;
    let mut visited = 0;
    for f in order {
        if visited >= want && best.is_some() {
            break;
        }
        let rows = sorted[f];
        let first = x.get(rows[0] as usize, f);
        let last = x.get(rows[rows.len() - 1] as usize, f);
        if first == last {
            // A constant feature does not count as drawn (scikit-learn).
            continue;
        }
        visited += 1;
        if let Some((cost, threshold)) = scan(p, x, y, classes, rows, f)
            && best.is_none_or(|(c, _, _)| cost < c)
        {
            best = Some((cost, f, threshold));
        }
    }
    best.map(|(_, f, t)| (f, t))
}

/// The best threshold of one feature: (weighted child impurity, threshold).
fn scan(p: &TreeParams, x: &Matrix, y: &[f32], classes: usize, rows: &[u32], f: usize) -> Option<(f64, f32)> {
    let n = rows.len();
    let min_leaf = p.min_samples_leaf;
    let mut best: Option<(f64, f32)> = None;
    if classes > 0 {
        let mut total = vec![0u32; classes];
        rows.iter().for_each(|r| total[y[*r as usize] as usize] += 1);
        let mut left = vec![0u32; classes];
        for i in 0..n - 1 {
            left[y[rows[i] as usize] as usize] += 1;
            let (a, b) = (x.get(rows[i] as usize, f), x.get(rows[i + 1] as usize, f));
            let nl = i + 1;
            if a == b || nl < min_leaf || n - nl < min_leaf {
                continue;
            }
            let cost = impurity(p.criterion, &left, nl) * nl as f64
                + impurity_right(p.criterion, &total, &left, n - nl) * (n - nl) as f64;
            if best.is_none_or(|(c, _)| cost < c - 1e-12 * c.abs().max(1.0)) {
                best = Some((cost, midpoint(a, b)));
            }
        }
    } else {
        let (mut sum, mut sq) = (0.0, 0.0);
        for r in rows {
            let v = f64::from(y[*r as usize]);
            sum += v;
            sq += v * v;
        }
        let (mut ls, mut lq) = (0.0, 0.0);
        for i in 0..n - 1 {
            let v = f64::from(y[rows[i] as usize]);
            ls += v;
            lq += v * v;
            let (a, b) = (x.get(rows[i] as usize, f), x.get(rows[i + 1] as usize, f));
            let nl = i + 1;
            if a == b || nl < min_leaf || n - nl < min_leaf {
                continue;
            }
            let nr = (n - nl) as f64;
            // n·variance of each side: Σv² − (Σv)²/n.
            let cost = (lq - ls * ls / nl as f64) + ((sq - lq) - (sum - ls) * (sum - ls) / nr);
            if best.is_none_or(|(c, _)| cost < c - 1e-12 * c.abs().max(1.0)) {
                best = Some((cost, midpoint(a, b)));
            }
        }
    }
    best
}

/// scikit-learn's threshold: the midpoint, or the lower value if the
/// midpoint rounds up to the upper one.
fn midpoint(a: f32, b: f32) -> f32 {
    let m = ((f64::from(a) + f64::from(b)) / 2.0) as f32;
    if m >= b { a } else { m }
}

fn impurity(c: Criterion, counts: &[u32], n: usize) -> f64 {
    let n = n as f64;
    match c {
        Criterion::Gini => 1.0 - counts.iter().map(|k| (f64::from(*k) / n).powi(2)).sum::<f64>(),
        _ => -counts
            .iter()
            .filter(|k| **k > 0)
            .map(|k| {
                let q = f64::from(*k) / n;
                q * q.log2()
            })
            .sum::<f64>(),
    }
}

fn impurity_right(c: Criterion, total: &[u32], left: &[u32], n: usize) -> f64 {
    let nf = n as f64;
    match c {
        Criterion::Gini => 1.0 - total.iter().zip(left).map(|(t, l)| (f64::from(t - l) / nf).powi(2)).sum::<f64>(),
        _ => -total
            .iter()
            .zip(left)
            .filter(|(t, l)| *t > *l)
            .map(|(t, l)| {
                let q = f64::from(t - l) / nf;
                q * q.log2()
            })
            .sum::<f64>(),
    }
}

macro_rules! tree_estimator {
    ($ty:ident, $default:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub struct $ty {
            /// The parameters (also set by the builder methods).
            pub params: TreeParams,
            /// The fitted tree (after `fit`).
            pub tree: Option<Fitted>,
        }

        impl Default for $ty {
            fn default() -> $ty {
                $ty {
                    params: TreeParams {
                        criterion: $default,
                        max_depth: None,
                        max_features: None,
                        min_samples_split: 2,
                        min_samples_leaf: 1,
                        random_state: 0,
                    },
                    tree: None,
                }
            }
        }

        impl $ty {
            /// scikit-learn's defaults.
            pub fn new() -> $ty {
                $ty::default()
            }
            /// The split criterion, by scikit-learn's name.
            pub fn criterion(mut self, name: &str) -> Result<Self, Error> {
                self.params.criterion = Criterion::parse(name)?;
                Ok(self)
            }
            /// Deepest split.
            pub fn max_depth(mut self, depth: usize) -> Self {
                self.params.max_depth = Some(depth);
                self
            }
            /// Features drawn per node.
            pub fn max_features(mut self, n: usize) -> Self {
                self.params.max_features = Some(n);
                self
            }
            /// Least rows to split a node.
            pub fn min_samples_split(mut self, n: usize) -> Self {
                self.params.min_samples_split = n;
                self
            }
            /// Least rows in a leaf.
            pub fn min_samples_leaf(mut self, n: usize) -> Self {
                self.params.min_samples_leaf = n;
                self
            }
            /// Seeds the feature draws.
            pub fn random_state(mut self, seed: u64) -> Self {
                self.params.random_state = seed;
                self
            }
            /// The fitted tree.
            pub fn fitted(&self) -> Result<&Fitted, Error> {
                self.tree.as_ref().ok_or_else(|| invalid(concat!(stringify!($ty), ": predict before fit").into()))
            }
            /// Each row's prediction.
            pub fn predict(&self, x: &Matrix) -> Result<Vec<f32>, Error> {
                let t = self.fitted()?;
                x.check_features(t.num_features, "the rows to predict", "the tree")?;
                Ok((0..x.rows()).map(|r| t.predict_row(x.row(r)) as f32).collect())
            }
        }
    };
}

tree_estimator!(
    DecisionTreeClassifier,
    Criterion::Gini,
    "scikit-learn's `DecisionTreeClassifier`: labels are class numbers 0, 1, ..."
);
tree_estimator!(DecisionTreeRegressor, Criterion::SquaredError, "scikit-learn's `DecisionTreeRegressor`.");

impl DecisionTreeClassifier {
    /// Grows the tree on `x` and class labels `y`.
    pub fn fit(&mut self, x: &Matrix, y: &[f32]) -> Result<&mut Self, Error> {
        if self.params.criterion == Criterion::SquaredError {
            return Err(invalid("DecisionTreeClassifier takes gini or entropy, not squared_error".into()));
        }
        let classes = crate::class_count(y, MAX_TREE_CLASSES)?;
        self.tree = Some(fit(&self.params, x, y, classes)?);
        Ok(self)
    }
}

impl DecisionTreeRegressor {
    /// Grows the tree on `x` and targets `y`.
    pub fn fit(&mut self, x: &Matrix, y: &[f32]) -> Result<&mut Self, Error> {
        if self.params.criterion != Criterion::SquaredError {
            return Err(invalid("DecisionTreeRegressor takes squared_error".into()));
        }
        if let Some(i) = y.iter().position(|v| !v.is_finite()) {
            return Err(invalid(format!("label {i} is {}, not a finite number", y[i])));
        }
        self.tree = Some(fit(&self.params, x, y, 0)?);
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xor(n: usize) -> (Matrix, Vec<f32>) {
        let mut rng = Rng::new(3);
        let rows: Vec<Vec<f32>> = (0..n).map(|_| vec![rng.uniform(), rng.uniform(), rng.uniform()]).collect();
        let y = rows.iter().map(|r| f32::from(u8::from((r[0] > 0.5) != (r[1] > 0.5)))).collect();
        (Matrix::from_rows(&rows).unwrap(), y)
    }

    #[test]
    fn a_full_tree_fits_its_training_rows_and_depth_limits_it() {
        let (x, y) = xor(400);
        let mut t = DecisionTreeClassifier::new();
        t.fit(&x, &y).unwrap();
        assert_eq!(crate::metrics::accuracy_score(&y, &t.predict(&x).unwrap()).unwrap(), 1.0);
        let mut shallow = DecisionTreeClassifier::new().max_depth(2);
        shallow.fit(&x, &y).unwrap();
        assert!(shallow.fitted().unwrap().depth() <= 2);
        let mut leafy = DecisionTreeClassifier::new().min_samples_leaf(50);
        leafy.fit(&x, &y).unwrap();
        let min_leaf = leafy
            .fitted()
            .unwrap()
            .nodes
            .iter()
            .filter_map(|n| if let TreeNode::Leaf { samples, .. } = n { Some(*samples) } else { None })
            .min();
        assert!(min_leaf.unwrap() >= 50);
    }

    #[test]
    fn thresholds_are_midpoints_as_scikit_learns() {
        // sklearn: DecisionTreeClassifier().fit([[1],[2],[3],[4]], [0,0,1,1]).tree_.threshold[0] == 2.5
        let x = Matrix::new(vec![1.0, 2.0, 3.0, 4.0], 1).unwrap();
        let mut t = DecisionTreeClassifier::new();
        t.fit(&x, &[0.0, 0.0, 1.0, 1.0]).unwrap();
        assert!(matches!(t.fitted().unwrap().nodes[0], TreeNode::Split { threshold: 2.5, .. }));
        let mut r = DecisionTreeRegressor::new();
        r.fit(&x, &[1.0, 1.0, 5.0, 5.0]).unwrap();
        assert_eq!(r.predict(&Matrix::new(vec![2.4, 2.6], 1).unwrap()).unwrap(), [1.0, 5.0]);
    }

    #[test]
    fn entropy_and_max_features_still_separate() {
        let (x, y) = xor(400);
        let mut t = DecisionTreeClassifier::new().criterion("entropy").unwrap().max_features(1).random_state(7);
        t.fit(&x, &y).unwrap();
        assert_eq!(crate::metrics::accuracy_score(&y, &t.predict(&x).unwrap()).unwrap(), 1.0);
        assert!(DecisionTreeClassifier::new().criterion("mse").is_err());
        let nan = Matrix::new(vec![f32::NAN, 1.0], 1).unwrap();
        assert!(DecisionTreeClassifier::new().fit(&nan, &[0.0, 1.0]).unwrap_err().to_string().contains("row 0"));
    }
}
