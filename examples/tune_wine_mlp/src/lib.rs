//! Tuning the seeds' wine-quality MLP (11→10→8→1, BCE, SGD, batches of 32):
//! `lr` log-uniform in [1e-4, 1e-1] and `momentum` uniform in [0.1, 0.9],
//! 100 samples × up to 50 epochs, with ASHA stopping the weak ones early.
//! Each trial is an actor training its own model; a step is one epoch,
//! reporting the test accuracy.
//!
//! ```text
//! wray run --dir examples/data::/data tune_wine_mlp.wasm -- [--samples N] [--epochs E]
//! ```

use wray::Error;
use wray::nn::{self, DataLoader, Init, Linear, Module, Optimizer, Rng, Split, Tensor, Var};
use wray::tune::{self, Asha, Config, Metrics, Space, Trainable, Tuner};

/// One trial: a model, its optimiser and the data.
pub struct WineTrial {
    layers: [Linear; 3],
    opt: nn::Sgd,
    loader: DataLoader,
    x_test: Var,
    y_test: Vec<f32>,
    config: Config,
}

fn forward(layers: &[Linear; 3], x: &Var) -> Result<Var, Error> {
    let h = layers[0].forward(x)?.relu()?;
    let h = layers[1].forward(&h)?.relu()?;
    layers[2].forward(&h)?.sigmoid()
}

fn parameters(layers: &[Linear; 3]) -> Vec<Var> {
    layers.iter().flat_map(Module::parameters).collect()
}

fn build(config: &Config, layers: [Linear; 3]) -> Result<WineTrial, Error> {
    let csv = std::fs::read_to_string("/data/winequality-red.csv")
        .map_err(|e| Error::InvalidArgument(format!("cannot read the data ({e}): grant examples/data at /data")))?;
    let (x, quality) = nn::Table::from_csv(&csv)?.split_target("quality")?;
    let y: Vec<f32> = quality.iter().map(|&q| if q >= 6.0 { 1.0 } else { 0.0 }).collect();
    let data = Split::standardized(&x, &y, 0.25, 0);
    let n = data.y_train.len();
    let loader = DataLoader::new(nn::to_tensor(&data.x_train)?, Tensor::from_vec(&[n, 1], &data.y_train)?, 32, 0)?;
    let opt = nn::Sgd::new(parameters(&layers), config.f64("lr")? as f32, config.f64("momentum")? as f32)?;
    Ok(WineTrial {
        layers,
        opt,
        loader,
        x_test: Var::constant(nn::to_tensor(&data.x_test)?),
        y_test: data.y_test,
        config: config.clone(),
    })
}

impl Trainable for WineTrial {
    fn setup(config: &Config) -> Result<Self, Error> {
        let mut rng = Rng::new(0);
        let layers = [
            Linear::new(11, 10, Init::KaimingUniform, &mut rng)?,
            Linear::new(10, 8, Init::KaimingUniform, &mut rng)?,
            Linear::new(8, 1, Init::XavierUniform, &mut rng)?,
        ];
        build(config, layers)
    }

    fn step(&mut self) -> Result<Metrics, Error> {
        let mut loss = 0.0;
        for batch in self.loader.epoch() {
            let batch = batch?;
            self.opt.zero_grad();
            let l = nn::loss::bce(&forward(&self.layers, &Var::constant(batch.x))?, &Var::constant(batch.y))?;
            l.backward()?;
            self.opt.step()?;
            loss = l.value().item()?;
        }
        let p = forward(&self.layers, &self.x_test)?.value().to_vec()?;
        Ok(tune::metrics(&[("accuracy", f64::from(nn::binary_accuracy(&p, &self.y_test))), ("loss", f64::from(loss))]))
    }

    /// The weights, as f32s: shapes are fixed by the architecture.
    fn save_checkpoint(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        for p in parameters(&self.layers) {
            out.extend(p.value().to_vec()?.iter().flat_map(|v| v.to_le_bytes()));
        }
        Ok(out)
    }

    fn load_checkpoint(&mut self, checkpoint: &[u8]) -> Result<(), Error> {
        let mut floats = checkpoint.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        let mut take = |shape: &[usize]| -> Result<Var, Error> {
            let data: Vec<f32> = floats.by_ref().take(shape.iter().product()).collect();
            Ok(Var::parameter(Tensor::from_vec(shape, &data)?))
        };
        let mut layers = [(11, 10), (10, 8), (8, 1)].map(|_| None);
        for (slot, (i, o)) in layers.iter_mut().zip([(11, 10), (10, 8), (8, 1)]) {
            *slot = Some(Linear { weight: take(&[i, o])?, bias: take(&[1, o])? });
        }
        let [a, b, c] = layers.map(|l| l.expect("filled"));
        *self = build(&self.config, [a, b, c])?;
        Ok(())
    }
}
wray::tune::trainable!(Wine, WineTrial);

fn flag(args: &[String], name: &str, default: usize) -> usize {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), Error> {
    let samples = flag(&args, "--samples", 100);
    let epochs = flag(&args, "--epochs", 50) as f64;
    let space = Space::new().with("lr", tune::loguniform(1e-4, 1e-1)).with("momentum", tune::uniform(0.1, 0.9));
    let results = Tuner::<Wine>::new(space)
        .metric("accuracy", "max")
        .num_samples(samples)
        .scheduler(Asha::with(epochs, 1.0, 3.0, 1))
        .seed(1)
        .fit()?;
    let mut by_epochs = std::collections::BTreeMap::new();
    for t in &results.trials {
        *by_epochs.entry(t.iterations()).or_insert(0) += 1;
    }
    let first_rung = by_epochs.get(&1).copied().unwrap_or(0);
    println!("trials by epochs run: {by_epochs:?}");
    println!("stopped after the first rung: {first_rung} of {}", results.trials.len());
    let best = results.best_trial().expect("trials ran");
    println!("best config: lr={:.5} momentum={:.3}", best.config.f64("lr")?, best.config.f64("momentum")?);
    println!("best accuracy: {:.4} after {} epochs", best.last_result()["accuracy"], best.iterations());
    Ok(())
}
