//! `wray::learn`: the seeds' boosted-tree examples reach the references'
//! accuracy inside a real job, a saved model is the documented JSON, and the
//! seeds' grid search runs its 400 fits as tasks to scikit-learn's best
//! score.

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

/// The seeds' grid search: 80 configurations × 5 stratified folds as tasks.
/// scikit-learn's `GridSearchCV` on the same split finds a best mean
/// accuracy of 0.7590 and 0.740 on the test rows
/// (benches/reference/grid_search.py).
#[test]
fn the_grid_search_scores_every_configuration_on_every_fold() {
    let data = workspace().join("examples/data");
    let grant = format!("{}::/data", data.display());
    let (out, _) = run_ok(&guests().grid_search, &["--dir", &grant], &["--top", "80"], &[]);
    assert!(out.contains("executed in ") && out.contains(", nodes ") && out.contains(", max_depth "), "{out}");
    let ranks: Vec<&str> = out.lines().filter(|l| l.starts_with("rank ")).collect();
    assert_eq!(ranks.len(), 80, "{out}");
    assert!(ranks[0].starts_with("rank 1: "), "{out}");
    let cv = line_value(&out, "best params:", "mean accuracy over 5 folds ");
    assert!(cv >= 0.75, "best mean accuracy {cv}\n{out}");
    let accuracy = number_after(&out, "test accuracy:");
    assert!(accuracy >= 0.72, "test accuracy {accuracy}\n{out}");
}

fn line_value(out: &str, prefix: &str, label: &str) -> f64 {
    let line = out.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix:?} in\n{out}"));
    line.split(label).nth(1).and_then(|v| v.trim().parse().ok()).unwrap_or_else(|| panic!("{line}"))
}

/// A randomized search over a tree, grid searches over boosted trees
/// (classifier and regressor) — all as tasks.
#[test]
fn randomized_and_boosted_searches_run_as_tasks() {
    let out = stdout(&scenario(&[], &["learn-search"]));
    assert!(out.contains("randomized: 12 configurations, best 0.9"), "{out}");
    assert!(out.contains("depth 1 scores below the best: true"), "{out}");
    assert!(
        out.contains("boosted grid: best max_depth=3 n_estimators=40") && out.contains("folds per config 3"),
        "{out}"
    );
    assert!(out.contains("regressor grid: best r2 above 0.9: true"), "{out}");
}

/// Bad input to estimators and searches is an error naming it.
#[test]
fn bad_input_to_models_and_searches_is_named() {
    let out = stdout(&scenario(&[], &["learn-errors"]));
    for want in [
        "unknown parameter: invalid argument: DecisionTreeClassifier has no parameter \"depth\"",
        "rare class: invalid argument: class 1 has 1 rows, fewer than the 5 folds",
        "infinite label: invalid argument: label 7 is inf, not a finite number",
        "other features: invalid argument: the rows to predict have 2 features; the model was trained on 3",
        "unknown objective: invalid argument: unknown objective \"rank:pairwise\"",
        "empty: invalid argument: the training set is empty",
    ] {
        assert!(out.contains(want), "{want}\n{out}");
    }
}

/// Random forests (trees grown in tasks, also inside a search's tasks) and
/// linear models fit held-out rows; least squares finds the plane.
#[test]
fn forests_and_linear_models_fit_held_out_rows() {
    let out = stdout(&scenario(&[], &["learn-models"]));
    let value = |label: &str| -> f64 { number_after(&out, label) };
    assert!(out.contains("forest: 40 trees, accuracy"), "{out}");
    assert!(line(&out, "forest:").split("accuracy ").nth(1).unwrap().parse::<f64>().unwrap() > 0.9, "{out}");
    assert!(value("logistic: accuracy") > 0.9, "{out}");
    assert!(value("logistic, 3 classes: accuracy") > 0.9, "{out}");
    assert!(out.contains(" with 3 models; probabilities sum to 1: true\n"), "{out}");
    assert!(
        out.contains("linear: coef [2.00, -0.00, -0.99]") || out.contains("linear: coef [2.00, 0.00, -0.99]"),
        "{out}"
    );
    assert!(out.contains("forest regressor: r2 above 0.8: true"), "{out}");
    assert!(["0.01", "1", "100"].iter().any(|c| out.contains(&format!("logistic grid: best C {c}\n"))), "{out}");
    assert!(out.contains("forest grid: best max_depth 8"), "{out}");
    assert!(value("ridge: r2") > 0.9, "{out}");
}

fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix:?} in\n{out}"))
}

/// Boosting on 1, 2 and 3 worker actors gives the model one process
/// trains, bit for bit (binary with row and column sampling; softmax; an
/// evaluation set with early stopping), also after a worker traps
/// mid-training and the group restarts from the last checkpointed round.
#[test]
fn boosting_on_workers_equals_boosting_in_one_process() {
    let out = stdout(&scenario(&[], &["learn-workers"]));
    for name in ["binary", "softmax"] {
        for workers in [1, 2, 3] {
            assert!(out.contains(&format!("{name}, {workers} workers: same model as one process: true")), "{out}");
        }
        assert!(out.contains(&format!("{name}: training accuracy above 0.9: true")), "{out}");
    }
    assert!(out.contains("no workers: invalid argument: GbdtTrainer: 0 workers"), "{out}");
    // An evaluation set with early stopping: the same best round, scores and
    // trees as one process, well before the 300 rounds asked for.
    assert!(out.contains("early stopping, 2 workers: same model as one process: true, stopped early: true"), "{out}");
    assert!(out.contains("from datasets: same model as from matrices: true"), "{out}");
    assert!(
        out.contains(
            r#"no such label: invalid argument: GbdtTrainer: no label column "quality" in ["a", "b", "c", "good"]"#
        ),
        "{out}"
    );
    assert!(
        out.contains("early stopping without an evaluation set: invalid argument: GbdtTrainer: early_stopping_rounds needs an evaluation set (fit_with_eval)"),
        "{out}"
    );
    // A worker that traps at round 13: the group restarts from the round-10
    // checkpoint and the model is still the one process's.
    assert!(out.contains("after a trapped worker: same model as one process: true"), "{out}");
    assert!(
        out.contains("without restarts: task GbdtTrainer failed: GbdtTrainer: worker rank 0 failed: task GbdtWorker.boost failed: trapped"),
        "{out}"
    );
}

/// The seeds' wine example on 2 workers: the same accuracy as one process.
#[test]
fn the_wine_booster_trains_on_two_workers() {
    let out = run(&["--workers", "2"]);
    assert!(out.contains("executed XGBoost on 2 workers in"), "{out}");
    assert_eq!(number_after(&out, "accuracy:"), 0.805, "{out}");
}
