//! `wray::learn` scenarios: a randomized search and a grid search over
//! boosted trees as tasks, and each kind of bad input.

use wray::Error;
use wray::learn::{
    DecisionTreeClassifier, Distribution, GridSearchCV, LinearRegression, LogisticRegression, Matrix, Param, ParamGrid,
    RandomForestClassifier, RandomForestRegressor, RandomizedSearchCV, Ridge, XGBClassifier, XGBRegressor, metrics,
};

/// Two noisy blobs: class 1 where x0 + x1 > 1.
fn blobs(n: usize) -> (Matrix, Vec<f32>) {
    let mut rng = wray::Rng::new(5);
    let rows: Vec<Vec<f32>> = (0..n).map(|_| vec![rng.uniform(), rng.uniform(), rng.uniform()]).collect();
    let y = rows.iter().map(|r| f32::from(u8::from(r[0] + r[1] + 0.2 * r[2] > 1.1))).collect();
    (Matrix::from_rows(&rows).unwrap(), y)
}

pub fn run(scenario: &str) -> Result<(), Error> {
    match scenario {
        "learn-search" => search(),
        "learn-errors" => errors(),
        "learn-models" => models(),
        "learn-workers" => workers(),
        "learn-cluster" => cluster(),
        other => Err(Error::InvalidArgument(format!("unknown scenario {other}"))),
    }
}

fn search() -> Result<(), Error> {
    let (x, y) = blobs(400);
    let random = RandomizedSearchCV::new(
        DecisionTreeClassifier::new().random_state(1),
        &[
            ("max_depth", Distribution::RandInt(1, 12)),
            ("criterion", Distribution::Choice(vec!["gini".into(), "entropy".into()])),
        ],
        12,
    )
    .random_state(3)
    .fit(&x, &y)?;
    println!("randomized: {} configurations, best {:.4}", random.cv_results.len(), random.best_score);
    let shallow = random.cv_results.iter().find(|r| r.params["max_depth"] == Param::Int(1));
    if let Some(s) = shallow {
        println!("depth 1 scores below the best: {}", s.mean_test_score < random.best_score);
    }
    let grid = ParamGrid::new().with("max_depth", [1, 3]).with("n_estimators", [5, 40]);
    let boosted = GridSearchCV::new(XGBClassifier::new(), grid).cv(3).fit(&x, &y)?;
    let best: Vec<String> = boosted.best_params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!(
        "boosted grid: best {} ({:.4}), folds per config {}",
        best.join(" "),
        boosted.best_score,
        boosted.cv_results[0].split_test_scores.len()
    );
    let z: Vec<f32> = (0..x.rows()).map(|i| 3.0 * x.get(i, 0) - x.get(i, 1)).collect();
    let reg = GridSearchCV::new(XGBRegressor::new(), ParamGrid::new().with("max_depth", [2, 4])).fit(&x, &z)?;
    println!("regressor grid: best r2 above 0.9: {}", reg.best_score > 0.9);
    Ok(())
}

fn errors() -> Result<(), Error> {
    let (x, y) = blobs(40);
    let show = |r: Result<String, Error>| r.unwrap_or_else(|e| e.to_string());
    println!(
        "unknown parameter: {}",
        show(
            GridSearchCV::new(DecisionTreeClassifier::new(), ParamGrid::new().with("depth", [3]))
                .fit(&x, &y)
                .map(|_| String::new())
        )
    );
    let mut rare = y.clone();
    rare.iter_mut().for_each(|v| *v = 0.0);
    rare[0] = 1.0;
    println!(
        "rare class: {}",
        show(GridSearchCV::new(DecisionTreeClassifier::new(), ParamGrid::new()).fit(&x, &rare).map(|_| String::new()))
    );
    let mut nan = y.clone();
    nan[7] = f32::INFINITY;
    println!("infinite label: {}", show(XGBClassifier::new().fit(&x, &nan).map(|_| String::new())));
    let mut m = XGBClassifier::new();
    m.fit(&x, &y)?;
    let narrow = Matrix::new(vec![0.5; 4], 2)?;
    println!("other features: {}", show(m.predict(&narrow).map(|_| String::new())));
    println!(
        "unknown objective: {}",
        show(XGBClassifier::new().objective("rank:pairwise").fit(&x, &y).map(|_| String::new()))
    );
    println!("empty: {}", show(XGBClassifier::new().fit(&Matrix::from_rows(&[])?, &[]).map(|_| String::new())));
    Ok(())
}

/// Forests (trees grown in tasks) and linear models, each scored on rows it
/// did not see; a forest and a logistic regression under a grid search.
fn models() -> Result<(), Error> {
    let (x, y) = blobs(600);
    let train: Vec<usize> = (0..450).collect();
    let test: Vec<usize> = (450..600).collect();
    let (xt, xs) = (x.select(&train), x.select(&test));
    let (yt, ys): (Vec<f32>, Vec<f32>) = (train.iter().map(|&i| y[i]).collect(), test.iter().map(|&i| y[i]).collect());
    let mut forest = RandomForestClassifier::new().n_estimators(40).random_state(2);
    forest.fit(&xt, &yt)?;
    println!(
        "forest: {} trees, accuracy {:.3}",
        forest.trees.len(),
        metrics::accuracy_score(&ys, &forest.predict(&xs)?)?
    );
    let mut logistic = LogisticRegression::new();
    logistic.fit(&xt, &yt)?;
    println!("logistic: accuracy {:.3}", metrics::accuracy_score(&ys, &logistic.predict(&xs)?)?);
    // Three classes (the largest feature): the multinomial model.
    let largest = |i: usize| {
        let r = x.row(i);
        (1..3).fold(0, |b, c| if r[c] > r[b] { c } else { b }) as f32
    };
    let (y3t, y3s): (Vec<f32>, Vec<f32>) =
        (train.iter().map(|&i| largest(i)).collect(), test.iter().map(|&i| largest(i)).collect());
    let mut multi = LogisticRegression { c: 100.0, ..LogisticRegression::new() };
    multi.fit(&xt, &y3t)?;
    let proba = multi.predict_proba(&xs)?;
    println!(
        "logistic, 3 classes: accuracy {:.3} with {} models; probabilities sum to 1: {}",
        metrics::accuracy_score(&y3s, &multi.predict(&xs)?)?,
        multi.model.as_ref().map_or(0, Vec::len),
        proba.iter().all(|p| p.len() == 3 && (p.iter().sum::<f64>() - 1.0).abs() < 1e-9)
    );
    // A plane with noise: linear models find it, a forest approximates it.
    let mut rng = wray::Rng::new(8);
    let z: Vec<f32> = (0..x.rows()).map(|i| 2.0 * x.get(i, 0) - x.get(i, 2) + 0.05 * rng.normal()).collect();
    let (zt, zs): (Vec<f32>, Vec<f32>) = (train.iter().map(|&i| z[i]).collect(), test.iter().map(|&i| z[i]).collect());
    let mut linear = LinearRegression::new();
    linear.fit(&xt, &zt)?;
    let coef = &linear.model.as_ref().expect("fitted").coef;
    println!(
        "linear: coef [{:.2}, {:.2}, {:.2}], r2 {:.3}",
        coef[0],
        coef[1],
        coef[2],
        metrics::r2_score(&zs, &linear.predict(&xs)?)?
    );
    let mut ridge = Ridge::new(10.0);
    ridge.fit(&xt, &zt)?;
    println!("ridge: r2 {:.3}", metrics::r2_score(&zs, &ridge.predict(&xs)?)?);
    let mut rf = RandomForestRegressor::new().n_estimators(30).random_state(1);
    rf.fit(&xt, &zt)?;
    println!("forest regressor: r2 above 0.8: {}", metrics::r2_score(&zs, &rf.predict(&xs)?)? > 0.8);
    let search =
        GridSearchCV::new(LogisticRegression::new(), ParamGrid::new().with("C", [0.01, 1.0, 100.0])).fit(&xt, &yt)?;
    println!("logistic grid: best C {}", search.best_params["C"]);
    let search =
        GridSearchCV::new(RandomForestClassifier::new().n_estimators(10), ParamGrid::new().with("max_depth", [1, 8]))
            .cv(3)
            .fit(&xt, &yt)?;
    println!("forest grid: best max_depth {}", search.best_params["max_depth"]);
    Ok(())
}

/// `learn-cluster`: boosting on two worker actors of a cluster, slowed down
/// (each worker sleeps after each round) so that the test can SIGKILL the
/// node under one of them; the group restarts from the last checkpointed
/// round and the model equals one process's.
fn cluster() -> Result<(), Error> {
    use wray::train::GbdtTrainer;
    let (x, y) = blobs(3000);
    let model = XGBClassifier::new().n_estimators(30).max_depth(4);
    let trained = GbdtTrainer::new(model.clone())
        .num_workers(2)
        .checkpoint_every(3)
        .max_failures(3)
        .pause_each_round(std::time::Duration::from_millis(150))
        .fit(&x, &y)?;
    let mut alone = model;
    alone.fit(&x, &y)?;
    println!("gbdt cluster: same model as one process: {}", trained.booster()?.to_json() == alone.booster()?.to_json());
    Ok(())
}

/// Boosting on worker actors equals boosting in one process, bit for bit:
/// binary with row and column sampling, and softmax.
fn workers() -> Result<(), Error> {
    use wray::train::GbdtTrainer;
    let (x, y) = blobs(3000);
    let three: Vec<f32> = (0..x.rows()).map(|i| (x.get(i, 0) * 3.0).floor().min(2.0)).collect();
    for (name, model, labels) in [
        ("binary", XGBClassifier::new().n_estimators(20).subsample(0.8).colsample_bytree(0.67).random_state(4), &y),
        ("softmax", XGBClassifier::new().n_estimators(8).max_depth(4), &three),
    ] {
        let mut alone = model.clone();
        alone.fit(&x, labels)?;
        let reference = alone.booster()?.to_json();
        for workers in [1, 2, 3] {
            let trained = GbdtTrainer::new(model.clone()).num_workers(workers).cpus_per_worker(0.5).fit(&x, labels)?;
            let same = trained.booster()?.to_json() == reference;
            println!("{name}, {workers} workers: same model as one process: {same}");
        }
        let accuracy = metrics::accuracy_score(labels, &alone.predict(&x)?)?;
        println!("{name}: training accuracy above 0.9: {}", accuracy > 0.9);
    }
    // An evaluation set and early stopping: the driver scores each chunk of
    // rounds and stops where one process stops, with the same best round
    // and scores.
    let (fit_rows, eval_rows): (Vec<usize>, Vec<usize>) = ((0..2400).collect(), (2400..3000).collect());
    let (fx, ex) = (x.select(&fit_rows), x.select(&eval_rows));
    let (fy, ey): (Vec<f32>, Vec<f32>) = (y[..2400].to_vec(), y[2400..].to_vec());
    let model = XGBClassifier::new().n_estimators(300).learning_rate(0.3).early_stopping_rounds(5);
    let mut alone = model.clone();
    alone.fit_with_eval(&fx, &fy, &ex, &ey)?;
    let trained = GbdtTrainer::new(model).num_workers(2).cpus_per_worker(0.5).fit_with_eval(&fx, &fy, &ex, &ey)?;
    let best = trained.booster()?.best_iteration;
    println!(
        "early stopping, 2 workers: same model as one process: {}, stopped early: {}",
        trained.booster()?.to_json() == alone.booster()?.to_json(),
        best.is_some_and(|b| b + 1 < 300) && trained.booster()?.eval_history.len() < 300
    );
    // The same rows as datasets (Ray's `datasets=` and `label_column`): the
    // same model.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Point {
        a: f32,
        b: f32,
        c: f32,
        good: u8,
    }
    let points = |m: &Matrix, labels: &[f32]| {
        let items = (0..m.rows())
            .map(|i| Point { a: m.get(i, 0), b: m.get(i, 1), c: m.get(i, 2), good: labels[i] as u8 })
            .collect();
        wray::data::from_items(items)
    };
    let from_data =
        GbdtTrainer::new(XGBClassifier::new().n_estimators(300).learning_rate(0.3).early_stopping_rounds(5))
            .num_workers(2)
            .cpus_per_worker(0.5)
            .fit_dataset_with_eval(&points(&fx, &fy)?, &points(&ex, &ey)?, "good")?;
    println!(
        "from datasets: same model as from matrices: {}",
        from_data.booster()?.to_json() == trained.booster()?.to_json()
    );
    let unlabelled = GbdtTrainer::new(XGBClassifier::new()).fit_dataset(&points(&fx, &fy)?, "quality");
    println!("no such label: {}", unlabelled.err().map(|e| e.to_string()).unwrap_or_default());
    let no_eval = GbdtTrainer::new(XGBClassifier::new().early_stopping_rounds(5)).fit(&fx, &fy);
    println!("early stopping without an evaluation set: {}", no_eval.err().map(|e| e.to_string()).unwrap_or_default());
    // Worker 1 traps at round 13 of 20: the group restarts from the round-10
    // checkpoint and ends with the same model.
    let model = XGBClassifier::new().n_estimators(20).max_depth(4);
    let mut alone = model.clone();
    alone.fit(&x, &y)?;
    let recovered = GbdtTrainer::new(model.clone())
        .num_workers(2)
        .cpus_per_worker(0.5)
        .checkpoint_every(5)
        .max_failures(1)
        .trap_worker_at(1, 13)
        .fit(&x, &y)?;
    println!(
        "after a trapped worker: same model as one process: {}",
        recovered.booster()?.to_json() == alone.booster()?.to_json()
    );
    let failed = GbdtTrainer::new(model).num_workers(2).cpus_per_worker(0.5).trap_worker_at(0, 3).fit(&x, &y);
    println!("without restarts: {}", failed.err().map(|e| e.to_string()).unwrap_or_default());
    let too_many = GbdtTrainer::new(XGBClassifier::new()).num_workers(0).fit(&x, &y).err().map(|e| e.to_string());
    println!("no workers: {}", too_many.unwrap_or_default());
    Ok(())
}
