//! Trains the seeds' wine-quality MLP (11 → 10 → 8 → 1; ReLU, ReLU, sigmoid;
//! Kaiming/Xavier initialisation; BCE; SGD lr 0.01 momentum 0.9; batches of
//! 32) on the UCI red-wine data, target `quality >= 6`, features
//! standardised, 25 % test split (scikit-learn's split, `random_state=0`).
//!
//! ```text
//! wray run --dir examples/data::/data wine_mlp.wasm -- [--epochs N] [--gpus G] [--batch B]
//! mkdir -p /tmp/models && wray run --dir examples/data::/data --dir /tmp/models::/models wine_mlp.wasm -- --save /models/wine.json
//! ```
//!
//! `--save` writes the trained model as JSON — the scaler's mean and scale,
//! then each linear layer's weight (`inputs × outputs`, row-major) and bias
//! — which `examples/serve_wine` serves at `/predict`.
//!
//! Training runs in a task, so that `--gpus` (the task's `num_gpus`) puts
//! its tensors on a GPU; without one they use the CPU path.

use serde::{Deserialize, Serialize};
use std::time::Instant;
use wray::Error;
use wray::nn::{self, DataLoader, Init, Linear, Module, Optimizer, ReLU, Rng, Sequential, Sigmoid, Split, Tensor, Var};

/// What a training run reports.
#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    pub accuracy: f32,
    pub epoch_ms: f64,
    pub train_s: f64,
    pub final_loss: f32,
    pub device: String,
    pub model: SavedModel,
}

/// The trained model, as `--save` writes it.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedModel {
    /// The CSV's feature columns, in order.
    pub features: Vec<String>,
    /// The training rows' mean and standard deviation per feature.
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    /// `(inputs, outputs, weight, bias)` per linear layer; ReLU between
    /// layers, a sigmoid after the last.
    pub layers: Vec<(usize, usize, Vec<f32>, Vec<f32>)>,
}

fn model(seed: u64) -> Result<Sequential, Error> {
    let mut rng = Rng::new(seed);
    Ok(Sequential::new()
        .add(Linear::new(11, 10, Init::KaimingUniform, &mut rng)?)
        .add(ReLU)
        .add(Linear::new(10, 8, Init::KaimingUniform, &mut rng)?)
        .add(ReLU)
        .add(Linear::new(8, 1, Init::XavierUniform, &mut rng)?)
        .add(Sigmoid))
}

/// Features and `quality >= 6` labels from the CSV text, with the feature
/// names.
fn load(csv: &str) -> Result<(Split, Vec<String>), Error> {
    let table = nn::Table::from_csv(csv)?;
    let (x, quality) = table.split_target("quality")?;
    let y: Vec<f32> = quality.iter().map(|&q| if q >= 6.0 { 1.0 } else { 0.0 }).collect();
    let features = table.columns.iter().filter(|c| *c != "quality").cloned().collect();
    Ok((Split::standardized(&x, &y, 0.25, 0), features))
}

#[wray::remote]
fn train(csv: String, epochs: u32, batch: u32, seed: u64) -> Result<Report, Error> {
    let (data, features) = load(&csv)?;
    let model = model(seed)?;
    let mut opt = nn::Sgd::new(model.parameters(), 0.01, 0.9)?;
    let n = data.y_train.len();
    let mut loader = DataLoader::new(
        nn::to_tensor(&data.x_train)?,
        Tensor::from_vec(&[n, 1], &data.y_train)?,
        batch as usize,
        seed,
    )?;
    let start = Instant::now();
    let mut last = Var::constant(Tensor::scalar(0.0)?);
    for _ in 0..epochs {
        for batch in loader.epoch() {
            let batch = batch?;
            opt.zero_grad();
            let loss = nn::loss::bce(&model.forward(&Var::constant(batch.x))?, &Var::constant(batch.y))?;
            loss.backward()?;
            opt.step()?;
            last = loss;
        }
    }
    let train_s = start.elapsed().as_secs_f64();
    model.set_training(false);
    let p = model.forward(&Var::constant(nn::to_tensor(&data.x_test)?))?.value().to_vec()?;
    let params = model.parameters();
    let mut layers = Vec::new();
    for pair in params.chunks(2) {
        let shape = pair[0].value().shape();
        layers.push((shape[0], shape[1], pair[0].value().to_vec()?, pair[1].value().to_vec()?));
    }
    let saved = SavedModel { features, mean: data.scaler.mean.clone(), scale: data.scaler.scale.clone(), layers };
    Ok(Report {
        accuracy: nn::binary_accuracy(&p, &data.y_test),
        epoch_ms: train_s * 1000.0 / f64::from(epochs.max(1)),
        train_s,
        final_loss: last.value().item()?,
        device: nn::device(),
        model: saved,
    })
}

fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} needs a value")),
    }
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), String> {
    let path: String = flag(&args, "--data", "/data/winequality-red.csv".to_string())?;
    let epochs: u32 = flag(&args, "--epochs", 150)?;
    let gpus: f64 = flag(&args, "--gpus", 0.0)?;
    let batch: u32 = flag(&args, "--batch", 32)?;
    let csv = std::fs::read_to_string(&path).map_err(|e| {
        format!("cannot read {path}: {e} (grant the directory: wray run --dir examples/data::/data ...)")
    })?;
    let started = Instant::now();
    let report =
        wray::get(&train::options().num_gpus(gpus).remote(csv, epochs, batch, 0)).map_err(|e| e.to_string())?;
    println!("device: {}", report.device);
    println!("epochs: {epochs}, final batch loss {:.4}", report.final_loss);
    println!("epoch time: {:.2} ms", report.epoch_ms);
    println!("train time: {:.3} s (job {:.3} s)", report.train_s, started.elapsed().as_secs_f64());
    println!("test accuracy: {:.4}", report.accuracy);
    if let Some(i) = args.iter().position(|a| a == "--save") {
        let out = args.get(i + 1).ok_or("--save needs a path")?;
        let json = serde_json::to_string(&report.model).map_err(|e| e.to_string())?;
        std::fs::write(out, json).map_err(|e| format!("cannot write {out}: {e} (grant its directory with --dir)"))?;
        println!("model saved to {out}");
    }
    Ok(())
}
