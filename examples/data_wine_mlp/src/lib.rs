//! The wine-quality MLP of `wine_mlp`, fed by `wray::data`: the CSV read
//! with `read_csv`, split as scikit-learn's `train_test_split(test_size=0.25,
//! random_state=0)` splits it, standardised with the training part's mean
//! and (population) standard deviation in `map_batches_with`, and trained
//! through `iter_batches` with a local shuffle per epoch.
//!
//! ```text
//! wray run --dir examples/data::/data data_wine_mlp.wasm -- [--epochs N]
//! ```

use serde::{Deserialize, Serialize};
use wray::Error;
use wray::data::{self, Agg, Batch, IterBatches};
use wray::nn::{self, Init, Linear, Module, Optimizer, ReLU, Rng, Sequential, Sigmoid, Var};

const FEATURES: [&str; 11] = [
    "fixed acidity",
    "volatile acidity",
    "citric acid",
    "residual sugar",
    "chlorides",
    "free sulfur dioxide",
    "total sulfur dioxide",
    "density",
    "pH",
    "sulphates",
    "alcohol",
];

/// Per-feature mean and standard deviation of the training rows.
#[derive(Clone, Serialize, Deserialize)]
struct Scaler {
    mean: Vec<f32>,
    std: Vec<f32>,
}

fn standardize(s: &Scaler, batch: Batch) -> Result<Batch, Error> {
    let mut batch = batch;
    for (i, name) in FEATURES.iter().enumerate() {
        let x: Vec<f32> = batch.column::<f32>(name)?.iter().map(|v| (v - s.mean[i]) / s.std[i]).collect();
        batch = batch.with_column(name, x)?;
    }
    let good: Vec<f32> = batch.column::<f32>("quality")?.iter().map(|&q| if q >= 6.0 { 1.0 } else { 0.0 }).collect();
    batch.with_column("good", good)
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

fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} needs a value")),
    }
}

fn run(path: &str, epochs: u32) -> Result<(), Error> {
    data::DataContext::set(data::DataContext { progress: false, ..data::DataContext::current() });
    let wines = data::read_csv(path)?;
    let (train, test) = wines.train_test_split(0.25, Some(0))?;
    println!("rows: {} train, {} test", train.count()?, test.count()?);

    // StandardScaler: statistics of the training rows only.
    let aggs: Vec<Agg> = FEATURES.iter().flat_map(|f| [Agg::Mean(f.to_string()), Agg::Std(f.to_string())]).collect();
    let stats = train.aggregate(aggs).take_all_batches()?.remove(0);
    let n = train.count()? as f32;
    let mut scaler = Scaler { mean: Vec::new(), std: Vec::new() };
    for f in FEATURES {
        scaler.mean.push(stats.column::<f32>(&format!("mean({f})"))?[0]);
        // Ray's std is the sample one (ddof 1); scikit-learn scales by the
        // population one.
        let sample = stats.column::<f32>(&format!("std({f})"))?[0];
        scaler.std.push(sample * ((n - 1.0) / n).sqrt());
    }
    let train = train.map_batches_with(scaler.clone(), standardize, None).materialize()?;
    let test = test.map_batches_with(scaler, standardize, None);

    let model = model(0)?;
    let mut opt = nn::Sgd::new(model.parameters(), 0.01, 0.9)?;
    let mut last = 0.0;
    for epoch in 0..epochs {
        let options = IterBatches {
            local_shuffle_buffer_size: Some(2048),
            local_shuffle_seed: u64::from(epoch),
            ..IterBatches::new(32)
        };
        for batch in train.iter_batches_with(options)? {
            let batch = batch?;
            let x = Var::constant(batch.tensor(&FEATURES)?);
            let y = Var::constant(batch.tensor(&["good"])?);
            opt.zero_grad();
            let loss = nn::loss::bce(&model.forward(&x)?, &y)?;
            loss.backward()?;
            opt.step()?;
            last = loss.value().item()?;
        }
    }
    println!("epochs: {epochs}, final batch loss {last:.4}");

    model.set_training(false);
    let (mut predicted, mut labels) = (Vec::new(), Vec::new());
    for batch in test.iter_batches(1024)? {
        let batch = batch?;
        let x = Var::constant(batch.tensor(&FEATURES)?);
        predicted.extend(model.forward(&x)?.value().to_vec()?);
        labels.extend(batch.column::<f32>("good")?.iter().copied());
    }
    println!("test accuracy: {:.4}", nn::binary_accuracy(&predicted, &labels));
    Ok(())
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), String> {
    let path: String = flag(&args, "--data", "/data/winequality-red.csv".to_string())?;
    let epochs: u32 = flag(&args, "--epochs", 150)?;
    run(&path, epochs).map_err(|e| e.to_string())
}
