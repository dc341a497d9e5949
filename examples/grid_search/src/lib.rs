//! The seeds' grid search (their Ray-joblib example): scikit-learn's
//! `GridSearchCV(DecisionTreeClassifier(random_state=1), {max_depth: 10..19,
//! max_features: 3..10}, scoring="accuracy")` on the wine data — 80
//! configurations × 5 stratified folds, every fit a wray task — then the
//! best tree's size and scikit-learn's classification report on the test
//! rows. As in the seeds, the search is fitted twice and both fits are
//! timed.
//!
//! ```text
//! wray run --dir examples/data::/data grid_search.wasm -- [--top 5]
//! ```

use std::time::Instant;
use wray::Error;
use wray::learn::{DecisionTreeClassifier, GridSearchCV, Matrix, ParamGrid, metrics, train_test_split};
use wray::nn::{self, StandardScaler};

fn run(top: usize) -> Result<(), Error> {
    let path = "/data/winequality-red.csv";
    let csv = std::fs::read_to_string(path).map_err(|e| {
        Error::InvalidArgument(format!("cannot read {path}: {e} (grant it: wray run --dir examples/data::/data ...)"))
    })?;
    let table = nn::Table::from_csv(&csv)?;
    let (x, quality) = table.split_target("quality")?;
    let y: Vec<f32> = quality.iter().map(|q| f32::from(u8::from(*q >= 6.0))).collect();
    let x = Matrix::from_rows(&StandardScaler::fit(&x).transform(&x))?;
    let (train, test) = train_test_split(x.rows(), 0.25, 0)?;
    let (x_train, x_test) = (x.select(&train), x.select(&test));
    let y_train: Vec<f32> = train.iter().map(|&i| y[i]).collect();
    let y_test: Vec<f32> = test.iter().map(|&i| y[i]).collect();

    let grid = ParamGrid::new().with("max_depth", 10..20).with("max_features", 3..11);
    let start = Instant::now();
    let search = GridSearchCV::new(DecisionTreeClassifier::new().random_state(1), grid);
    let _ = search.fit(&x_train, &y_train)?;
    let model = search.fit(&x_train, &y_train)?;
    let tree = model.best_estimator.fitted()?;
    println!("executed in {}, nodes {}, max_depth {}", start.elapsed().as_secs_f64(), tree.node_count(), tree.depth());
    let best: Vec<String> = model.best_params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("best params: {}, mean accuracy over 5 folds {:.4}", best.join(", "), model.best_score);
    let mut ranked: Vec<_> = model.cv_results.iter().collect();
    ranked.sort_by_key(|r| r.rank_test_score);
    for r in ranked.iter().take(top) {
        let p: Vec<String> = r.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "rank {}: {} mean {:.4} std {:.4}",
            r.rank_test_score,
            p.join(", "),
            r.mean_test_score,
            r.std_test_score
        );
    }
    let predicted = model.best_estimator.predict(&x_test)?;
    print!("{}", metrics::classification_report(&y_test, &predicted)?);
    println!("test accuracy: {:.4}", metrics::accuracy_score(&y_test, &predicted)?);
    Ok(())
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), String> {
    let top = match args.iter().position(|a| a == "--top") {
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or("--top needs a number")?,
        None => 5,
    };
    run(top).map_err(|e| e.to_string())
}
