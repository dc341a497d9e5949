//! `wray::learn`: the seeds' boosted-tree examples reach the references'
//! accuracy inside a real job, and a saved model is the documented JSON.

use crate::util::*;

fn run(args: &[&str]) -> String {
    let data = workspace().join("examples/data");
    let grant = format!("{}::/data", data.display());
    run_ok(&guests().gbdt_wine, &["--dir", &grant], args, &[]).0
}

/// The seeds' example 10-3: `XGBClassifier(random_state=1)` on the wine
/// data; XGBoost itself reaches 0.7925 on the same split
/// (benches/reference/gbdt_wine.py).
#[test]
fn boosted_trees_classify_the_wines_as_xgboost_does() {
    let out = run(&[]);
    assert!(out.contains("Rows, columns: (1599, 12)") && out.contains("label 1: 855, label 0: 744"), "{out}");
    assert!(out.contains("executed XGBoost in"), "{out}");
    // scikit-learn's report: a row per class, accuracy, averages.
    for row in ["precision    recall  f1-score   support", "accuracy", "macro avg", "weighted avg"] {
        assert!(out.contains(row), "{out}");
    }
    let accuracy = number_after(&out, "accuracy:");
    assert!(accuracy >= 0.79, "accuracy {accuracy}\n{out}");
    assert!(out.contains("most important (gain): alcohol"), "{out}");
}

/// Example 10-5: LightGBM's parameters — leaf-wise to 150 leaves; LightGBM
/// itself reaches 0.800.
#[test]
fn leaf_wise_trees_classify_the_wines_as_lightgbm_does() {
    let out = run(&["--lightgbm"]);
    assert!(out.contains("executed LightGBM in"), "{out}");
    let accuracy = number_after(&out, "accuracy:");
    assert!(accuracy >= 0.79, "accuracy {accuracy}\n{out}");
}

/// Breast cancer, and the model saved as JSON that a reader can parse.
#[test]
fn boosted_trees_classify_tumours_and_save_their_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = workspace().join("examples/data");
    let grants = [format!("{}::/data", data.display()), format!("{}::/out", dir.path().display())];
    let (out, _) = run_ok(
        &guests().gbdt_wine,
        &["--dir", &grants[0], "--dir", &grants[1]],
        &["--dataset", "breast-cancer", "--save", "/out/model.json"],
        &[],
    );
    let accuracy = number_after(&out, "accuracy:");
    assert!(accuracy >= 0.965, "accuracy {accuracy}\n{out}");
    let json = std::fs::read_to_string(dir.path().join("model.json")).unwrap();
    for field in [
        "\"format\":\"wray-gbdt\"",
        "\"version\":1",
        "\"objective\":\"binary:logistic\"",
        "\"num_features\":30",
        "\"split\":{\"feature\":",
        "\"leaf\":{\"value\":",
    ] {
        assert!(json.contains(field), "{field} in {}", &json[..json.len().min(400)]);
    }
}
