//! The seeds' wine-quality classifier (the 11-10-8-1 MLP of `wine_mlp`)
//! trained by a `DataParallelTrainer` with 2 workers: the CSV read with
//! `read_csv`, split as scikit-learn's `train_test_split(test_size=0.25,
//! random_state=0)` splits it, standardised by a `StandardScaler`
//! preprocessor fitted on the training rows (a distributed aggregation),
//! sharded between the workers, trained with gradients averaged by allreduce
//! after every batch, checkpointed with the scaler inside, then reloaded
//! from the checkpoint for batch prediction over the raw test rows on an
//! actor pool.
//!
//! ```text
//! wray run --dir examples/data::/data train_wine.wasm -- [--workers 2] [--epochs 150] [--storage /results]
//! ```

use serde::{Deserialize, Serialize};
use wray::Error;
use wray::data::{self, ActorPool, Batch, BatchMapper, IterBatches};
use wray::nn::{self, Init, Linear, Module, Optimizer, ReLU, Rng, Sequential, Sigmoid, Var};
use wray::train::{
    self, Checkpoint, CheckpointConfig, DataParallelTrainer, Order, Preprocessor, RunConfig, ScalingConfig,
};

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

/// The label: quality 6 or more is a good wine.
fn label(batch: Batch) -> Result<Batch, Error> {
    let good: Vec<f32> = batch.column::<f32>("quality")?.iter().map(|&q| if q >= 6.0 { 1.0 } else { 0.0 }).collect();
    batch.with_column("good", good)
}

/// The MLP, from a seed (every worker builds the same one) or from a
/// checkpoint's tensors.
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

fn model_from(checkpoint: &Checkpoint) -> Result<Sequential, Error> {
    let mut t = checkpoint.params("model")?.into_iter();
    let mut linear = || -> Result<Linear, Error> {
        let missing = || Error::InvalidArgument("the checkpoint's model has fewer than 6 tensors".into());
        let weight = Var::parameter(t.next().ok_or_else(missing)?);
        let bias = Var::parameter(t.next().ok_or_else(missing)?);
        Ok(Linear { weight, bias })
    };
    Ok(Sequential::new().add(linear()?).add(ReLU).add(linear()?).add(ReLU).add(linear()?).add(Sigmoid))
}

#[derive(Clone, Default, Serialize, Deserialize)]
struct Config {
    epochs: u32,
    lr: f32,
    batch_size: usize,
}

/// What every worker runs: its shard, the same model, averaged gradients.
fn train_loop(config: Config) -> Result<(), Error> {
    let ctx = train::get_context()?;
    let shard = train::get_dataset_shard("train")?;
    let model = train::prepare_model(model(0)?)?;
    let params = model.parameters();
    let mut opt = train::prepare_optimizer(nn::Sgd::new(params.clone(), config.lr, 0.9)?, params.clone());
    for epoch in 0..config.epochs {
        let options = IterBatches {
            local_shuffle_buffer_size: Some(2048),
            local_shuffle_seed: u64::from(epoch) * 1000 + ctx.world_rank as u64,
            ..IterBatches::new(config.batch_size)
        };
        let (mut sum, mut batches) = (0.0f32, 0u32);
        for batch in shard.iter_batches_with(options)? {
            let batch = batch?;
            let x = Var::constant(batch.tensor(&FEATURES)?);
            let y = Var::constant(batch.tensor(&["good"])?);
            opt.zero_grad();
            let loss = nn::loss::bce(&model.forward(&x)?, &y)?;
            loss.backward()?;
            opt.step()?;
            sum += loss.value().item()?;
            batches += 1;
        }
        // The mean batch loss over every worker's batches.
        let mut loss = [sum, batches as f32];
        train::allreduce(&mut loss, train::ReduceOp::Sum)?;
        let metrics = train::metrics(&[("epoch", f64::from(epoch + 1)), ("loss", f64::from(loss[0] / loss[1]))]);
        let last = epoch + 1 == config.epochs;
        let checkpoint = if last || (epoch + 1) % 50 == 0 {
            let mut c = Checkpoint::new();
            c.insert_params("model", &params)?.set_metadata("epoch", &(epoch + 1).to_string());
            Some(c)
        } else {
            None
        };
        // Only every 10th epoch, and the last, is shown.
        if last || (epoch + 1) % 10 == 0 || checkpoint.is_some() {
            train::report(metrics, checkpoint)?;
        }
    }
    Ok(())
}

/// Batch prediction: one model per actor, loaded once from the checkpoint
/// with the scaler fitted in training, applied to the raw rows first.
struct Predictor {
    model: Sequential,
    scaler: Preprocessor,
}

impl BatchMapper for Predictor {
    type Args = Vec<u8>;
    fn new(checkpoint: Vec<u8>) -> Result<Self, Error> {
        let checkpoint = Checkpoint::from_bytes(&checkpoint)?;
        let model = model_from(&checkpoint)?;
        model.set_training(false);
        Ok(Predictor { model, scaler: checkpoint.value("preprocessor")? })
    }
    fn call(&mut self, batch: Batch) -> Result<Batch, Error> {
        let batch = self.scaler.transform_batch(batch)?;
        let x = Var::constant(batch.tensor(&FEATURES)?);
        let p = self.model.forward(&x)?.value().to_vec()?;
        batch.with_column("predicted", p)
    }
}

fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} needs a value")),
    }
}

fn run(path: &str, workers: usize, epochs: u32, storage: Option<String>) -> Result<(), Error> {
    data::DataContext::set(data::DataContext { progress: false, ..data::DataContext::current() });
    let wines = data::read_csv(path)?;
    let (train_rows, test_rows) = wines.train_test_split(0.25, Some(0))?;

    // scikit-learn's StandardScaler, fitted on the training rows by one
    // distributed pass; the test rows stay raw until prediction.
    let mut scaler = Preprocessor::standard_scaler(&FEATURES);
    let train_set = scaler.fit_transform(&train_rows)?.map_batches(label, None);
    let test_set = test_rows.map_batches(label, None);

    let run = RunConfig {
        name: "train_wine".into(),
        storage_path: storage,
        checkpoint_config: CheckpointConfig {
            num_to_keep: Some(2),
            score_attribute: Some("loss".into()),
            order: Some(Order::Min),
        },
        ..RunConfig::default()
    };
    let started = std::time::Instant::now();
    let result = DataParallelTrainer::new(train_loop)
        .train_loop_config(Config { epochs, lr: 0.01, batch_size: 32 })
        .scaling_config(ScalingConfig::new(workers))
        .dataset("train", train_set)
        .run_config(run)
        .fit()?;
    if let Some(e) = result.error {
        return Err(e);
    }
    println!(
        "trained by {workers} workers: {} reports, final loss {:.4}, fit {:.3} s",
        result.metrics_history.len(),
        result.metrics["loss"],
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &result.path {
        println!("results in {path}");
    }
    let mut checkpoint =
        result.checkpoint.ok_or_else(|| Error::InvalidArgument("no checkpoint was reported".into()))?;
    // The model and the scaler it was trained behind travel together.
    checkpoint.insert_value("preprocessor", &scaler)?;
    println!("checkpoint of epoch {}", checkpoint.metadata()["epoch"]);

    // Reload and predict: the checkpoint's bytes go to each actor of the pool.
    let predicted = test_set.map_batches_on_actors::<Predictor>(checkpoint.to_bytes(), ActorPool::fixed(1), 256);
    let (mut p, mut labels) = (Vec::new(), Vec::new());
    for batch in predicted.iter_batches(1024)? {
        let batch = batch?;
        p.extend(batch.column::<f32>("predicted")?.iter().copied());
        labels.extend(batch.column::<f32>("good")?.iter().copied());
    }
    println!("test accuracy: {:.4}", nn::binary_accuracy(&p, &labels));
    Ok(())
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), String> {
    let path: String = flag(&args, "--data", "/data/winequality-red.csv".to_string())?;
    let workers: usize = flag(&args, "--workers", 2)?;
    let epochs: u32 = flag(&args, "--epochs", 150)?;
    let storage = args.iter().position(|a| a == "--storage").and_then(|i| args.get(i + 1).cloned());
    run(&path, workers, epochs, storage).map_err(|e| e.to_string())
}
