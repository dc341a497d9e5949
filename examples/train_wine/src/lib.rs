//! The seeds' wine-quality classifier (the 11-10-8-1 MLP of `wine_mlp`)
//! trained by a `DataParallelTrainer` with 2 workers: the CSV read with
//! `read_csv`, split as scikit-learn's `train_test_split(test_size=0.25,
//! random_state=0)` splits it, standardised by a `StandardScaler`
//! preprocessor fitted on the training rows (a distributed aggregation) and
//! joined into one feature vector by a `Concatenator`, sharded between the
//! workers, trained with gradients averaged by allreduce after every batch,
//! checkpointed with the preprocessors inside, then reloaded from the
//! checkpoint for batch prediction over the raw test rows on an actor pool.
//!
//! `--tune N` hands the trainer to Tune instead: N samples of the learning
//! rate and hidden sizes, each trial a 2-worker group, ASHA stopping the
//! poor ones early; the best trial's checkpoint then predicts the test rows.
//! `--dataset breast-cancer` does all of it for the Wisconsin breast-cancer
//! data (30 features, a 30-16-8-1 MLP).
//!
//! ```text
//! wray run --dir examples/data::/data train_wine.wasm -- [--dataset wine|breast-cancer]
//!     [--workers 2] [--epochs 150] [--storage /results] [--tune N]
//! ```

use wray::Error;
use wray::data::{self, ActorPool, Batch, BatchMapper, IterBatches};
use wray::nn::{self, Init, Linear, Module, Optimizer, ReLU, Rng, Sequential, Sigmoid, Var};
use wray::train::{
    self, Checkpoint, CheckpointConfig, DataParallelTrainer, Order, Preprocessor, RunConfig, ScalingConfig,
};
use wray::tune::{self, Config, Space};

/// The column the model reads: every feature, standardised and joined.
const FEATURES: &str = "features";

/// A dataset the example knows: where it is, how its label is made, and the
/// MLP's hidden sizes.
struct Task {
    name: &'static str,
    path: &'static str,
    /// The CSV's label column (not a feature).
    source: &'static str,
    hidden: (i64, i64),
}

const TASKS: [Task; 2] = [
    Task { name: "wine", path: "/data/winequality-red.csv", source: "quality", hidden: (10, 8) },
    Task { name: "breast-cancer", path: "/data/breast_cancer.csv", source: "target", hidden: (16, 8) },
];

/// The label, from the CSV's `source` column: for the wines, quality 6 or
/// more is a good wine; for the tumours, scikit-learn's `target` (1: benign).
#[allow(clippy::ptr_arg)] // `map_batches_with` hands its argument by reference
fn label(source: &String, batch: Batch) -> Result<Batch, Error> {
    let values = batch.column::<f32>(source)?;
    let label: Vec<f32> = match source.as_str() {
        "quality" => values.iter().map(|&q| if q >= 6.0 { 1.0 } else { 0.0 }).collect(),
        _ => values.into_owned(),
    };
    batch.with_column("label", label)
}

/// The MLP, from a seed (every worker builds the same one) or from a
/// checkpoint's tensors.
fn model(inputs: usize, hidden: (usize, usize), seed: u64) -> Result<Sequential, Error> {
    let mut rng = Rng::new(seed);
    Ok(Sequential::new()
        .add(Linear::new(inputs, hidden.0, Init::KaimingUniform, &mut rng)?)
        .add(ReLU)
        .add(Linear::new(hidden.0, hidden.1, Init::KaimingUniform, &mut rng)?)
        .add(ReLU)
        .add(Linear::new(hidden.1, 1, Init::XavierUniform, &mut rng)?)
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

/// What every worker runs: its shard, the same model, averaged gradients.
/// The config is Tune's parameter map, so that Tune can hand trials theirs
/// (`epochs`, `lr`, `batch_size`, `inputs`, `hidden1`, `hidden2`).
fn train_loop(config: Config) -> Result<(), Error> {
    let ctx = train::get_context()?;
    let shard = train::get_dataset_shard("train")?;
    let epochs = config.i64("epochs")? as u32;
    let hidden = (config.i64("hidden1")? as usize, config.i64("hidden2")? as usize);
    let model = train::prepare_model(model(config.i64("inputs")? as usize, hidden, 0)?)?;
    let params = model.parameters();
    let mut opt =
        train::prepare_optimizer(nn::Sgd::new(params.clone(), config.f64("lr")? as f32, 0.9)?, params.clone());
    let batch_size = config.i64("batch_size")? as usize;
    // Under Tune, rows held out of training judge the trials.
    let valid = train::get_dataset_shard("valid").ok();
    for epoch in 0..epochs {
        let options = IterBatches {
            local_shuffle_buffer_size: Some(2048),
            local_shuffle_seed: u64::from(epoch) * 1000 + ctx.world_rank as u64,
            ..IterBatches::new(batch_size)
        };
        let (mut sum, mut batches) = (0.0f32, 0u32);
        for batch in shard.iter_batches_with(options)? {
            let batch = batch?;
            let x = Var::constant(batch.tensor(&[FEATURES])?);
            let y = Var::constant(batch.tensor(&["label"])?);
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
        let mut metrics = train::metrics(&[("epoch", f64::from(epoch + 1)), ("loss", f64::from(loss[0] / loss[1]))]);
        let last = epoch + 1 == epochs;
        let shown = last || (epoch + 1) % 10 == 0;
        if shown && let Some(valid) = &valid {
            model.set_training(false);
            metrics.insert("val_accuracy".into(), accuracy(&model, valid)?);
            model.set_training(true);
        }
        let checkpoint = if last || (epoch + 1) % 50 == 0 {
            let mut c = Checkpoint::new();
            c.insert_params("model", &params)?.set_metadata("epoch", &(epoch + 1).to_string());
            Some(c)
        } else {
            None
        };
        // Only every 10th epoch, and the last, is shown.
        if shown || checkpoint.is_some() {
            train::report(metrics, checkpoint)?;
        }
    }
    Ok(())
}

/// The share of `valid`'s rows the model classifies right, over every
/// worker's shard.
fn accuracy(model: &Sequential, valid: &data::Dataset) -> Result<f64, Error> {
    let (mut right, mut rows) = (0.0f32, 0.0f32);
    for batch in valid.iter_batches(1024)? {
        let batch = batch?;
        let p = model.forward(&Var::constant(batch.tensor(&[FEATURES])?))?.value().to_vec()?;
        let labels = batch.column::<f32>("label")?;
        right += nn::binary_accuracy(&p, &labels) * p.len() as f32;
        rows += p.len() as f32;
    }
    let mut counts = [right, rows];
    train::allreduce(&mut counts, train::ReduceOp::Sum)?;
    Ok(f64::from(counts[0] / counts[1].max(1.0)))
}

/// Batch prediction: one model per actor, loaded once from the checkpoint
/// with the preprocessors fitted in training, applied to the raw rows first.
struct Predictor {
    model: Sequential,
    preprocessor: Preprocessor,
}

impl BatchMapper for Predictor {
    type Args = Vec<u8>;
    fn new(checkpoint: Vec<u8>) -> Result<Self, Error> {
        let checkpoint = Checkpoint::from_bytes(&checkpoint)?;
        let model = model_from(&checkpoint)?;
        model.set_training(false);
        Ok(Predictor { model, preprocessor: checkpoint.value("preprocessor")? })
    }
    fn call(&mut self, batch: Batch) -> Result<Batch, Error> {
        let batch = self.preprocessor.transform_batch(batch)?;
        let x = Var::constant(batch.tensor(&[FEATURES])?);
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

/// What the command line asked for.
struct Args {
    task: &'static Task,
    path: String,
    workers: usize,
    epochs: u32,
    storage: Option<String>,
    tune: usize,
}

fn run(args: Args) -> Result<(), Error> {
    data::DataContext::set(data::DataContext { progress: false, ..data::DataContext::current() });
    let task = args.task;
    let rows = data::read_csv(&args.path)?;
    let features: Vec<String> = rows.columns()?.into_iter().filter(|c| c != task.source).collect();
    let features: Vec<&str> = features.iter().map(String::as_str).collect();
    let (train_rows, test_rows) = rows.train_test_split(0.25, Some(0))?;

    // scikit-learn's StandardScaler, fitted on the training rows by one
    // distributed pass, then the features joined into one vector; the test
    // rows stay raw until prediction.
    let mut preprocessor = Preprocessor::chain(vec![
        Preprocessor::standard_scaler(&features),
        Preprocessor::concatenator(&features, FEATURES),
    ]);
    let source = task.source.to_string();
    let train_set = preprocessor.fit_transform(&train_rows)?.map_batches_with(source.clone(), label, None);
    let test_set = test_rows.map_batches_with(source, label, None);

    let config = Config::default()
        .with("epochs", i64::from(args.epochs))
        .with("lr", 0.01)
        .with("batch_size", 32)
        .with("inputs", features.len() as i64)
        .with("hidden1", task.hidden.0)
        .with("hidden2", task.hidden.1);
    let run = RunConfig {
        name: format!("train_{}", task.name.replace('-', "_")),
        storage_path: args.storage,
        checkpoint_config: CheckpointConfig {
            num_to_keep: Some(2),
            score_attribute: Some("loss".into()),
            order: Some(Order::Min),
        },
        ..RunConfig::default()
    };
    let trainer = |config: &Config| {
        DataParallelTrainer::new(train_loop)
            .train_loop_config(config.clone())
            .scaling_config(ScalingConfig::new(args.workers))
            .run_config(run.clone())
    };
    let started = std::time::Instant::now();
    let mut config = config;
    if args.tune > 0 {
        // A fifth of the training rows are held out to judge the trials.
        let (fit_set, valid_set) = train_set.train_test_split(0.2, Some(0))?;
        let tuning = trainer(&config).dataset("train", fit_set).dataset("valid", valid_set);
        // The learning rate and hidden sizes, sampled; ASHA ends the trials
        // whose validation accuracy trails at each rung (reports come every
        // 10 epochs).
        let space = Space::new()
            .with("lr", tune::loguniform(0.002, 0.05))
            .with("hidden1", tune::choice([8, 16, 32]))
            .with("hidden2", tune::choice([4, 8]));
        let rungs = f64::from(args.epochs / 10);
        let grid = tuning
            .tuner(space)?
            .metric("val_accuracy", "max")
            .num_samples(args.tune)
            .seed(0)
            .scheduler(tune::Asha::with(rungs, 3.0, 2.0, 1))
            .fit()?;
        if let Some(t) = grid.errors().first() {
            return Err(Error::InvalidArgument(format!("{} failed: {}", t.name, t.error.clone().unwrap_or_default())));
        }
        let best = grid.best_trial().ok_or_else(|| Error::InvalidArgument("no trial reported an accuracy".into()))?;
        let stopped = grid.trials.iter().filter(|t| t.iterations() < rungs as usize).count();
        println!(
            "tuned {} trials ({stopped} stopped early) in {:.3} s; best {}: validation accuracy {:.4}",
            grid.trials.len(),
            started.elapsed().as_secs_f64(),
            best.config,
            best.last_result()["val_accuracy"]
        );
        // As GridSearchCV refits: the best parameters, trained on every
        // training row.
        for (k, v) in &best.config.0 {
            config.set(k, v.clone());
        }
    }
    let result = trainer(&config).dataset("train", train_set).fit()?;
    if let Some(e) = result.error {
        return Err(e);
    }
    println!(
        "trained by {} workers: {} reports, final loss {:.4}, {:.3} s in all",
        args.workers,
        result.metrics_history.len(),
        result.metrics["loss"],
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &result.path {
        println!("results in {path}");
    }
    let mut checkpoint =
        result.checkpoint.ok_or_else(|| Error::InvalidArgument("no checkpoint was reported".into()))?;
    // The model and the preprocessors it was trained behind travel together.
    checkpoint.insert_value("preprocessor", &preprocessor)?;
    println!("checkpoint of epoch {}", checkpoint.metadata()["epoch"]);

    // Reload and predict: the checkpoint's bytes go to each actor of the pool.
    let predicted = test_set.map_batches_on_actors::<Predictor>(checkpoint.to_bytes(), ActorPool::fixed(1), 256);
    let (mut p, mut labels) = (Vec::new(), Vec::new());
    for batch in predicted.iter_batches(1024)? {
        let batch = batch?;
        p.extend(batch.column::<f32>("predicted")?.iter().copied());
        labels.extend(batch.column::<f32>("label")?.iter().copied());
    }
    println!("test accuracy: {:.4}", nn::binary_accuracy(&p, &labels));
    Ok(())
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), String> {
    let name: String = flag(&args, "--dataset", "wine".to_string())?;
    let task = TASKS.iter().find(|t| t.name == name).ok_or_else(|| {
        format!("--dataset {name}: unknown (one of {:?})", TASKS.iter().map(|t| t.name).collect::<Vec<_>>())
    })?;
    let args = Args {
        task,
        path: flag(&args, "--data", task.path.to_string())?,
        workers: flag(&args, "--workers", 2)?,
        epochs: flag(&args, "--epochs", 150)?,
        storage: args.iter().position(|a| a == "--storage").and_then(|i| args.get(i + 1).cloned()),
        tune: flag(&args, "--tune", 0)?,
    };
    run(args).map_err(|e| e.to_string())
}
