//! A binary classifier on the Wisconsin breast-cancer data (569 rows × 30
//! features): 30 → 16 → 8 → 1 (ReLU, ReLU, sigmoid), BCE, Adam, batches of
//! 32, 25 % test split (scikit-learn's, `random_state=0`), features
//! standardised on the training rows.
//!
//! ```text
//! wray run --dir examples/data::/data breast_cancer_mlp.wasm -- [--epochs N]
//! ```

use std::time::Instant;
use wray::Error;
use wray::nn::{
    self, Adam, DataLoader, Init, Linear, Module, Optimizer, ReLU, Rng, Sequential, Sigmoid, Split, Tensor, Var,
};

fn run(csv: &str, epochs: u32) -> Result<(f32, f64), Error> {
    let (x, y) = nn::Table::from_csv(csv)?.split_target("target")?;
    let data = Split::standardized(&x, &y, 0.25, 0);
    let mut rng = Rng::new(0);
    let model = Sequential::new()
        .add(Linear::new(30, 16, Init::KaimingUniform, &mut rng)?)
        .add(ReLU)
        .add(Linear::new(16, 8, Init::KaimingUniform, &mut rng)?)
        .add(ReLU)
        .add(Linear::new(8, 1, Init::XavierUniform, &mut rng)?)
        .add(Sigmoid);
    let mut opt = Adam::new(model.parameters(), 0.001)?;
    let n = data.y_train.len();
    let mut loader = DataLoader::new(nn::to_tensor(&data.x_train)?, Tensor::from_vec(&[n, 1], &data.y_train)?, 32, 0)?;
    let start = Instant::now();
    for _ in 0..epochs {
        for batch in loader.epoch() {
            let batch = batch?;
            opt.zero_grad();
            nn::loss::bce(&model.forward(&Var::constant(batch.x))?, &Var::constant(batch.y))?.backward()?;
            opt.step()?;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let p = model.forward(&Var::constant(nn::to_tensor(&data.x_test)?))?.value().to_vec()?;
    Ok((nn::binary_accuracy(&p, &data.y_test), secs))
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), String> {
    let epochs = match args.iter().position(|a| a == "--epochs") {
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or("--epochs needs a number")?,
        None => 100,
    };
    let path = "/data/breast_cancer.csv";
    let csv = std::fs::read_to_string(path).map_err(|e| {
        format!("cannot read {path}: {e} (grant the directory: wray run --dir examples/data::/data ...)")
    })?;
    let (accuracy, secs) = run(&csv, epochs).map_err(|e| e.to_string())?;
    println!("device: {}", nn::device());
    println!("epochs: {epochs}, train time: {secs:.3} s");
    println!("test accuracy: {accuracy:.4}");
    Ok(())
}
