//! The 1 M-row boosting benchmark (benches/gbdt.sh runs it beside XGBoost):
//! reads the synthetic HIGGS-shaped table `benches/reference/gbdt_higgs.py`
//! writes (raw float32, 29 values a row, label last), trains XGBoost's
//! defaults (depth 6, eta 0.3, 256 bins) on the first 900,000 rows in one
//! process and on 2 worker actors, and prints seconds per round and the AUC
//! on the last 100,000 rows.
//!
//! ```text
//! wray run --dir /var/tmp/wray-bench-data::/data gbdt_bench.wasm -- /data/higgs_1m.f32 ROUNDS
//! ```

use std::time::Instant;
use wray::Error;
use wray::learn::{Matrix, XGBClassifier, metrics};
use wray::train::GbdtTrainer;

const FEATURES: usize = 28;
const TRAIN_ROWS: usize = 900_000;

fn run(path: &str, rounds: usize) -> Result<(), Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::InvalidArgument(format!("cannot read {path}: {e}")))?;
    let values: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let rows = values.len() / (FEATURES + 1);
    if rows <= TRAIN_ROWS {
        return Err(Error::InvalidArgument(format!(
            "{path} has {rows} rows; the benchmark needs more than {TRAIN_ROWS}"
        )));
    }
    let mut x = Vec::with_capacity(rows * FEATURES);
    let mut y = Vec::with_capacity(rows);
    for row in values.chunks_exact(FEATURES + 1) {
        x.extend_from_slice(&row[..FEATURES]);
        y.push(row[FEATURES]);
    }
    drop(values);
    let all = Matrix::new(x, FEATURES)?;
    let train: Vec<usize> = (0..TRAIN_ROWS).collect();
    let test: Vec<usize> = (TRAIN_ROWS..rows).collect();
    let (xt, xs) = (all.select(&train), all.select(&test));
    drop(all);
    let (yt, ys) = (&y[..TRAIN_ROWS], &y[TRAIN_ROWS..]);
    let model = XGBClassifier::new().n_estimators(rounds);
    let auc = |m: &XGBClassifier| -> Result<f64, Error> {
        let p: Vec<f64> = m.predict_proba(&xs)?.iter().map(|p| p[1]).collect();
        metrics::roc_auc_score(ys, &p)
    };
    let start = Instant::now();
    let mut alone = model.clone();
    alone.fit(&xt, yt)?;
    let seconds = start.elapsed().as_secs_f64() / rounds as f64;
    println!("wray-higgs 1 process rounds {rounds} seconds_per_round {seconds:.4} auc {:.4}", auc(&alone)?);
    let start = Instant::now();
    let workers = GbdtTrainer::new(model).num_workers(2).fit(&xt, yt)?;
    let seconds = start.elapsed().as_secs_f64() / rounds as f64;
    let same = workers.booster()?.to_json() == alone.booster()?.to_json();
    println!(
        "wray-higgs 2 workers rounds {rounds} seconds_per_round {seconds:.4} auc {:.4} same model {same}",
        auc(&workers)?
    );
    Ok(())
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), String> {
    let path = args.first().cloned().unwrap_or_else(|| "/data/higgs_1m.f32".into());
    let rounds = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(20);
    run(&path, rounds).map_err(|e| e.to_string())
}
