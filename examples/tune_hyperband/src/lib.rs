//! Early stopping (the seeds' HyperBand example): the score
//! `weight·sqrt(step) + bias`, reported 30 times per trial, lower is better; 20 samples of
//! weight and bias, run once with HyperBand and once with ASHA. Both stop
//! most trials early and find a small weight and bias.
//!
//! ```text
//! wray run tune_hyperband.wasm -- [--samples N]     (or -- --bench)
//! ```

use wray::Error;
use wray::tune::{self, Asha, Config, HyperBand, Metrics, ResultGrid, Space, TrialScheduler, Tuner};

fn objective(config: &Config, step: usize) -> Result<Metrics, Error> {
    let (w, b) = (config.f64("weight")?, config.f64("bias")?);
    let m = tune::metrics(&[("score", w * (step as f64).sqrt() + b)]);
    Ok(if step >= 30 { tune::done(m) } else { m })
}
wray::tune::function!(Objective, objective);

fn run(scheduler: impl TrialScheduler + 'static, samples: usize) -> Result<ResultGrid, Error> {
    let space = Space::new().with("weight", tune::uniform(0.0, 1.0)).with("bias", tune::uniform(0.0, 1.0));
    Tuner::<Objective>::new(space).metric("score", "min").num_samples(samples).scheduler(scheduler).seed(7).fit()
}

fn report(name: &str, r: &ResultGrid) -> Result<(), Error> {
    let iterations: usize = r.trials.iter().map(|t| t.iterations()).sum();
    let full = r.trials.iter().filter(|t| t.iterations() >= 30).count();
    let best = r.best_config().expect("trials ran");
    println!(
        "{name}: {} trials, {iterations} iterations in all ({full} ran all 30), best weight={:.3} bias={:.3} score={:.3}",
        r.trials.len(),
        best.f64("weight")?,
        best.f64("bias")?,
        r.best_result().unwrap()["score"]
    );
    Ok(())
}

/// The benchmark of docs/BENCHMARKS.md: 200 trials × up to 30 reports of
/// the objective, with ASHA and with FIFO, nothing printed while they run.
fn bench() -> Result<(), Error> {
    for (name, asha) in [("asha", true), ("fifo", false)] {
        let space = Space::new().with("weight", tune::uniform(0.0, 1.0)).with("bias", tune::uniform(0.0, 1.0));
        let tuner =
            Tuner::<Objective>::new(space).metric("score", "min").num_samples(200).verbose(tune::Verbosity::Quiet);
        let start = std::time::Instant::now();
        let r = if asha { tuner.scheduler(Asha::with(30.0, 1.0, 4.0, 1)).fit()? } else { tuner.fit()? };
        let reports: usize = r.trials.iter().map(|t| t.iterations()).sum();
        println!("bench {name}: 200 trials, {reports} reports in {:.3} s", start.elapsed().as_secs_f64());
    }
    Ok(())
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), Error> {
    if args.iter().any(|a| a == "--bench") {
        return bench();
    }
    let samples = match args.iter().position(|a| a == "--samples") {
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(20),
        None => 20,
    };
    report("hyperband", &run(HyperBand::new(30.0, 3.0), samples)?)?;
    report("asha", &run(Asha::with(30.0, 1.0, 3.0, 1), samples)?)?;
    Ok(())
}
