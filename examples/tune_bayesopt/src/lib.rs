//! Model-based search (the seeds' BayesOpt example): the objective
//! `weight·sqrt(step) + bias` over 30 steps, lower is better, searched by
//! the Gaussian-process searcher after 4 random warm-up trials, then by TPE
//! for comparison, then by random search.
//!
//! ```text
//! wray run tune_bayesopt.wasm -- [--samples N]
//! ```

use wray::Error;
use wray::tune::{self, BayesOptSearch, Config, Metrics, ResultGrid, Searcher, Space, TpeSearch, Tuner};

fn objective(config: &Config, step: usize) -> Result<Metrics, Error> {
    let (w, b) = (config.f64("weight")?, config.f64("bias")?);
    let m = tune::metrics(&[("score", w * (step as f64).sqrt() + b)]);
    Ok(if step >= 30 { tune::done(m) } else { m })
}
wray::tune::function!(Objective, objective);

fn space() -> Space {
    Space::new().with("weight", tune::uniform(0.0, 1.0)).with("bias", tune::uniform(0.0, 1.0))
}

fn run(searcher: Option<impl Searcher + 'static>, samples: usize) -> Result<ResultGrid, Error> {
    let tuner = Tuner::<Objective>::new(space()).metric("score", "min").num_samples(samples).seed(3);
    match searcher {
        Some(s) => tuner.searcher(s).fit(),
        None => tuner.fit(),
    }
}

fn report(name: &str, r: &ResultGrid) -> Result<(), Error> {
    let best = r.best_config().expect("trials ran");
    println!(
        "{name}: {} trials, best weight={:.3} bias={:.3} score={:.3}",
        r.trials.len(),
        best.f64("weight")?,
        best.f64("bias")?,
        r.best_result().unwrap()["score"]
    );
    Ok(())
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), Error> {
    let samples = match args.iter().position(|a| a == "--samples") {
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(20),
        None => 20,
    };
    report("bayesopt", &run(Some(BayesOptSearch::new(4)), samples)?)?;
    report("tpe", &run(Some(TpeSearch::new(4)), samples)?)?;
    report("random", &run(None::<BayesOptSearch>, samples)?)?;
    Ok(())
}
