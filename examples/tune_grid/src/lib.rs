//! Grid search (the seeds' first Tune example): `objective(x, y) =
//! sqrt((x² + y²) / 2)` over x, y ∈ {-1, -0.5, 0, 0.5, 1}; 25 trials, each an
//! actor; the best is x = y = 0.
//!
//! ```text
//! wray run tune_grid.wasm
//! ```

use wray::Error;
use wray::tune::{self, Config, Metrics, Space, Tuner, Verbosity};

fn objective(config: &Config, _iteration: usize) -> Result<Metrics, Error> {
    let (x, y) = (config.f64("x")?, config.f64("y")?);
    Ok(tune::done(tune::metrics(&[("score", ((x * x + y * y) / 2.0).sqrt())])))
}
wray::tune::function!(Objective, objective);

#[wray::main]
fn main() -> Result<(), Error> {
    let grid = [-1.0, -0.5, 0.0, 0.5, 1.0];
    let space = Space::new().with("x", tune::grid_search(grid)).with("y", tune::grid_search(grid));
    let results = Tuner::<Objective>::new(space).metric("score", "min").verbose(Verbosity::Table).fit()?;
    let best = results.best_config().expect("25 trials ran");
    println!("trials: {}", results.trials.len());
    println!("best config: x={} y={}", best.f64("x")?, best.f64("y")?);
    println!("best score: {}", results.best_result().unwrap()["score"]);
    Ok(())
}
