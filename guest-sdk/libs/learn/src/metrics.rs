//! Classification and regression metrics, as scikit-learn computes them.

use crate::invalid;
use wray_guest_core::Error;

fn same_len(a: usize, b: usize) -> Result<(), Error> {
    if a != b {
        return Err(invalid(format!("{a} labels and {b} predictions")));
    }
    if a == 0 {
        return Err(invalid("no labels to score".into()));
    }
    Ok(())
}

/// The share of predictions equal to the labels.
pub fn accuracy_score(y_true: &[f32], y_pred: &[f32]) -> Result<f64, Error> {
    same_len(y_true.len(), y_pred.len())?;
    Ok(y_true.iter().zip(y_pred).filter(|(a, b)| a == b).count() as f64 / y_true.len() as f64)
}

/// The classes present in either, ascending.
fn labels_of(y_true: &[f32], y_pred: &[f32]) -> Vec<f32> {
    let mut l: Vec<f32> = y_true.iter().chain(y_pred).copied().collect();
    l.sort_by(f32::total_cmp);
    l.dedup();
    l
}

/// `matrix[i][j]`: rows whose label is class `i` predicted as class `j`,
/// classes ascending (scikit-learn's `confusion_matrix`).
pub fn confusion_matrix(y_true: &[f32], y_pred: &[f32]) -> Result<(Vec<f32>, Vec<Vec<usize>>), Error> {
    same_len(y_true.len(), y_pred.len())?;
    let labels = labels_of(y_true, y_pred);
    let at = |v: f32| labels.iter().position(|l| *l == v).unwrap_or(0);
    let mut m = vec![vec![0usize; labels.len()]; labels.len()];
    for (t, p) in y_true.iter().zip(y_pred) {
        m[at(*t)][at(*p)] += 1;
    }
    Ok((labels, m))
}

/// Per class (ascending): precision, recall, F1 and support — 0 where
/// undefined, as scikit-learn's `zero_division=0`.
pub fn precision_recall_fscore_support(y_true: &[f32], y_pred: &[f32]) -> Result<Vec<(f32, [f64; 3], usize)>, Error> {
    let (labels, m) = confusion_matrix(y_true, y_pred)?;
    Ok((0..labels.len())
        .map(|i| {
            let tp = m[i][i] as f64;
            let predicted: usize = m.iter().map(|r| r[i]).sum();
            let support: usize = m[i].iter().sum();
            let p = if predicted == 0 { 0.0 } else { tp / predicted as f64 };
            let r = if support == 0 { 0.0 } else { tp / support as f64 };
            let f = if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) };
            (labels[i], [p, r, f], support)
        })
        .collect())
}

/// Precision of class 1 (binary).
pub fn precision_score(y_true: &[f32], y_pred: &[f32]) -> Result<f64, Error> {
    Ok(of_positive(y_true, y_pred)?[0])
}

/// Recall of class 1 (binary).
pub fn recall_score(y_true: &[f32], y_pred: &[f32]) -> Result<f64, Error> {
    Ok(of_positive(y_true, y_pred)?[1])
}

/// F1 of class 1 (binary).
pub fn f1_score(y_true: &[f32], y_pred: &[f32]) -> Result<f64, Error> {
    Ok(of_positive(y_true, y_pred)?[2])
}

fn of_positive(y_true: &[f32], y_pred: &[f32]) -> Result<[f64; 3], Error> {
    Ok(precision_recall_fscore_support(y_true, y_pred)?
        .into_iter()
        .find(|(l, _, _)| *l == 1.0)
        .map(|(_, s, _)| s)
        .unwrap_or([0.0; 3]))
}

/// scikit-learn's `classification_report`, laid out as it prints it.
pub fn classification_report(y_true: &[f32], y_pred: &[f32]) -> Result<String, Error> {
    let rows = precision_recall_fscore_support(y_true, y_pred)?;
    let total: usize = rows.iter().map(|r| r.2).sum();
    let width = rows.iter().map(|r| format!("{}", r.0).len()).max().unwrap_or(0).max("weighted avg".len());
    let mut out = format!("{:>width$} {:>9} {:>9} {:>9} {:>9}\n\n", "", "precision", "recall", "f1-score", "support");
    for (label, [p, r, f], s) in &rows {
        out += &format!("{:>width$} {p:>9.2} {r:>9.2} {f:>9.2} {s:>9}\n", format!("{label}"));
    }
    let accuracy = accuracy_score(y_true, y_pred)?;
    out += &format!("\n{:>width$} {:>9} {:>9} {accuracy:>9.2} {total:>9}\n", "accuracy", "", "");
    let n = rows.len() as f64;
    let macro_avg: Vec<f64> = (0..3).map(|j| rows.iter().map(|r| r.1[j]).sum::<f64>() / n).collect();
    let weighted: Vec<f64> =
        (0..3).map(|j| rows.iter().map(|r| r.1[j] * r.2 as f64).sum::<f64>() / total.max(1) as f64).collect();
    for (name, v) in [("macro avg", macro_avg), ("weighted avg", weighted)] {
        out += &format!("{name:>width$} {:>9.2} {:>9.2} {:>9.2} {total:>9}\n", v[0], v[1], v[2]);
    }
    Ok(out)
}

/// Area under the ROC curve of scores `p` for binary labels (ties share
/// their rank, as scikit-learn's); NaN with one class.
pub fn roc_auc(y_true: &[f32], p: &[f64]) -> f64 {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|a, b| p[*a].total_cmp(&p[*b]));
    let (mut rank_sum, mut pos) = (0.0, 0usize);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && p[idx[j + 1]] == p[idx[i]] {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if y_true[k] > 0.5 {
                rank_sum += mean_rank;
                pos += 1;
            }
        }
        i = j + 1;
    }
    let neg = p.len() - pos;
    if pos == 0 || neg == 0 {
        return f64::NAN;
    }
    (rank_sum - (pos * (pos + 1)) as f64 / 2.0) / (pos * neg) as f64
}

/// [`roc_auc`], checked.
pub fn roc_auc_score(y_true: &[f32], p: &[f64]) -> Result<f64, Error> {
    same_len(y_true.len(), p.len())?;
    let auc = roc_auc(y_true, p);
    if auc.is_nan() {
        return Err(invalid("roc_auc_score needs both classes among the labels".into()));
    }
    Ok(auc)
}

/// Mean negative log-likelihood of binary labels under probabilities `p`
/// (clipped to [1e-15, 1 - 1e-15]).
pub fn log_loss_binary(y_true: &[f32], p: &[f64]) -> f64 {
    let n = y_true.len().max(1) as f64;
    y_true
        .iter()
        .zip(p)
        .map(|(y, p)| {
            let p = p.clamp(1e-15, 1.0 - 1e-15);
            if *y > 0.5 { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum::<f64>()
        / n
}

/// [`log_loss_binary`], checked.
pub fn log_loss(y_true: &[f32], p: &[f64]) -> Result<f64, Error> {
    same_len(y_true.len(), p.len())?;
    Ok(log_loss_binary(y_true, p))
}

/// Mean squared error.
pub fn mean_squared_error(y_true: &[f32], y_pred: &[f32]) -> Result<f64, Error> {
    same_len(y_true.len(), y_pred.len())?;
    Ok(y_true.iter().zip(y_pred).map(|(a, b)| f64::from(a - b).powi(2)).sum::<f64>() / y_true.len() as f64)
}

/// The coefficient of determination R².
pub fn r2_score(y_true: &[f32], y_pred: &[f32]) -> Result<f64, Error> {
    same_len(y_true.len(), y_pred.len())?;
    let mean = y_true.iter().map(|v| f64::from(*v)).sum::<f64>() / y_true.len() as f64;
    let ss_tot: f64 = y_true.iter().map(|v| (f64::from(*v) - mean).powi(2)).sum();
    let ss_res: f64 = y_true.iter().zip(y_pred).map(|(a, b)| f64::from(a - b).powi(2)).sum();
    Ok(if ss_tot == 0.0 { if ss_res == 0.0 { 1.0 } else { 0.0 } } else { 1.0 - ss_res / ss_tot })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_scikit_learn() {
        let y = [0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
        let p = [0.0, 1.0, 0.0, 0.0, 1.0, 1.0];
        assert!((accuracy_score(&y, &p).unwrap() - 5.0 / 6.0).abs() < 1e-12);
        assert_eq!(precision_score(&y, &p).unwrap(), 1.0);
        assert!((recall_score(&y, &p).unwrap() - 0.75).abs() < 1e-12);
        assert!((f1_score(&y, &p).unwrap() - 6.0 / 7.0).abs() < 1e-12);
        // sklearn.metrics.roc_auc_score([0,0,1,1], [0.1,0.4,0.35,0.8]) == 0.75
        assert!((roc_auc(&[0.0, 0.0, 1.0, 1.0], &[0.1, 0.4, 0.35, 0.8]) - 0.75).abs() < 1e-12);
        let (labels, m) = confusion_matrix(&y, &p).unwrap();
        assert_eq!((labels, m), (vec![0.0, 1.0], vec![vec![2, 0], vec![1, 3]]));
        assert!((r2_score(&[3.0, -0.5, 2.0, 7.0], &[2.5, 0.0, 2.0, 8.0]).unwrap() - 0.9486081370449679).abs() < 1e-6);
        assert!(accuracy_score(&y, &p[..3]).unwrap_err().to_string().contains("6 labels and 3 predictions"));
    }

    #[test]
    fn the_report_reads_as_scikit_learns() {
        let report = classification_report(&[0.0, 1.0, 1.0, 0.0], &[0.0, 1.0, 0.0, 0.0]).unwrap();
        assert!(report.contains("accuracy"), "{report}");
        assert!(
            report.lines().any(|l| l.trim_start().starts_with("0      0.67      1.00      0.80         2")),
            "{report}"
        );
    }
}
