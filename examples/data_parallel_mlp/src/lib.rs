//! The wine-quality MLP trained data-parallel: N worker actors each hold a
//! shard of the training rows; every step each computes gradients on a
//! batch of its shard, the driver hands every worker all the gradients (as
//! tensor objects: they go from one worker's tensors to another's through
//! the object store, never through guest memory), and each worker averages
//! them and applies the same SGD step, so the replicas stay identical — a
//! first, simple all-reduce. For comparison the same model is then trained
//! by one worker on all rows.
//!
//! ```text
//! wray run --dir examples/data::/data data_parallel_mlp.wasm -- [--workers N] [--epochs E]
//! ```

use std::time::Instant;
use wray::nn::{self, Init, Linear, Module, Optimizer, ReLU, Rng, Sequential, Sigmoid, Split, Tensor, TensorData, Var};
use wray::{Error, ObjectRef};

const BATCH: usize = 32;

fn model() -> Result<Sequential, Error> {
    // Every replica starts from the same seed, hence the same weights.
    let mut rng = Rng::new(0);
    Ok(Sequential::new()
        .add(Linear::new(11, 10, Init::KaimingUniform, &mut rng)?)
        .add(ReLU)
        .add(Linear::new(10, 8, Init::KaimingUniform, &mut rng)?)
        .add(ReLU)
        .add(Linear::new(8, 1, Init::XavierUniform, &mut rng)?)
        .add(Sigmoid))
}

fn load(csv: &str) -> Result<Split, Error> {
    let (x, quality) = nn::Table::from_csv(csv)?.split_target("quality")?;
    let y: Vec<f32> = quality.iter().map(|&q| if q >= 6.0 { 1.0 } else { 0.0 }).collect();
    Ok(Split::standardized(&x, &y, 0.25, 0))
}

/// One replica with its shard of the training rows.
#[wray::actor]
pub struct Worker {
    model: Sequential,
    opt: nn::Sgd,
    x: Tensor,
    y: Tensor,
    order: Vec<u32>,
    next: usize,
    batch: usize,
    rng: Rng,
    x_test: Vec<Vec<f32>>,
    y_test: Vec<f32>,
}

#[wray::actor]
impl Worker {
    /// Worker `rank` of `world` (rows `rank, rank + world, ...`).
    pub fn new(csv: String, rank: u32, world: u32) -> Result<Self, Error> {
        let data = load(&csv)?;
        let rows: Vec<usize> = (rank as usize..data.x_train.len()).step_by(world as usize).collect();
        let (x, y) = (nn::select(&data.x_train, &rows), nn::select(&data.y_train, &rows));
        let model = model()?;
        let opt = nn::Sgd::new(model.parameters(), 0.01, 0.9)?;
        Ok(Worker {
            model,
            opt,
            x: nn::to_tensor(&x)?,
            y: Tensor::from_vec(&[y.len(), 1], &y)?,
            order: Vec::new(),
            next: 0,
            batch: BATCH / world as usize,
            rng: Rng::new(u64::from(rank) + 1),
            x_test: data.x_test,
            y_test: data.y_test,
        })
    }

    /// Gradients of the loss on this worker's next batch, one tensor object
    /// per parameter.
    pub fn gradients(&mut self) -> Result<Vec<ObjectRef<TensorData>>, Error> {
        if self.next >= self.order.len() {
            self.order = (0..self.y.shape()[0] as u32).collect();
            self.rng.shuffle(&mut self.order);
            self.next = 0;
        }
        let end = (self.next + self.batch).min(self.order.len());
        let idx = &self.order[self.next..end];
        self.next = end;
        self.opt.zero_grad();
        let p = self.model.forward(&Var::constant(self.x.gather_rows(idx)?))?;
        nn::loss::bce(&p, &Var::constant(self.y.gather_rows(idx)?))?.backward()?;
        self.model.parameters().iter().map(|p| p.grad().expect("every parameter has a gradient").to_object()).collect()
    }

    /// Averages every worker's gradients and takes one SGD step.
    pub fn apply(&mut self, all: Vec<Vec<ObjectRef<TensorData>>>) -> Result<(), Error> {
        let scale = 1.0 / all.len() as f32;
        for (i, p) in self.model.parameters().iter().enumerate() {
            let mut sum: Option<Tensor> = None;
            for worker in &all {
                let g = Tensor::from_object(&worker[i])?;
                sum = Some(match sum {
                    Some(s) => s.add(&g)?,
                    None => g,
                });
            }
            p.set_grad(sum.map(|s| s.affine(scale, 0.0)).transpose()?);
        }
        self.opt.step()
    }

    /// Accuracy of this replica on the test rows.
    pub fn accuracy(&self) -> Result<f32, Error> {
        let p = self.model.forward(&Var::constant(nn::to_tensor(&self.x_test)?))?.value().to_vec()?;
        Ok(nn::binary_accuracy(&p, &self.y_test))
    }

    /// A checksum of the weights, to show the replicas agree.
    pub fn checksum(&self) -> Result<f64, Error> {
        let mut s = 0f64;
        for p in self.model.parameters() {
            s += p.value().to_vec()?.iter().map(|v| f64::from(*v)).sum::<f64>();
        }
        Ok(s)
    }
}

fn flag(args: &[String], name: &str, default: u32) -> Result<u32, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} needs a number")),
    }
}

fn train(csv: &str, workers: u32, epochs: u32) -> Result<(f32, Vec<f64>, f64), Error> {
    let handles: Vec<_> = (0..workers).map(|r| Worker::remote(csv.to_string(), r, workers)).collect();
    let rows = load(csv)?.y_train.len();
    let steps = rows.div_ceil(BATCH) * epochs as usize;
    let start = Instant::now();
    for _ in 0..steps {
        let grads = wray::get_all(&handles.iter().map(|w| w.gradients()).collect::<Vec<_>>())?;
        let applied: Vec<_> = handles.iter().map(|w| w.apply(grads.clone())).collect();
        wray::get_all(&applied)?;
    }
    let secs = start.elapsed().as_secs_f64();
    let sums = wray::get_all(&handles.iter().map(|w| w.checksum()).collect::<Vec<_>>())?;
    Ok((wray::get(&handles[0].accuracy())?, sums, secs))
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), String> {
    let workers = flag(&args, "--workers", 2)?.max(1);
    let epochs = flag(&args, "--epochs", 40)?;
    let path = "/data/winequality-red.csv";
    let csv = std::fs::read_to_string(path).map_err(|e| {
        format!("cannot read {path}: {e} (grant the directory: wray run --dir examples/data::/data ...)")
    })?;
    let (parallel, sums, secs) = train(&csv, workers, epochs).map_err(|e| e.to_string())?;
    let agree = sums.iter().all(|s| (s - sums[0]).abs() < 1e-3);
    println!("{workers} workers, {epochs} epochs: {secs:.2} s, replicas identical: {agree}");
    println!("data-parallel test accuracy: {parallel:.4}");
    let (single, _, secs) = train(&csv, 1, epochs).map_err(|e| e.to_string())?;
    println!("1 worker, {epochs} epochs: {secs:.2} s");
    println!("single-worker test accuracy: {single:.4}");
    Ok(())
}
