//! The `wray::train` benchmark (benches/train.sh runs it beside its
//! references): what one `report` and one allreduce of the wine model's
//! gradients cost inside a training loop, allreduce bandwidth on 100 MiB
//! against a memcpy of the same buffer, and samples/s of a data-parallel
//! MLP of about a million parameters on 1 and 2 workers.
//!
//! ```text
//! wray run train_bench.wasm -- [--quick] [--bandwidth]
//! wray run --address HEAD --token T train_bench.wasm -- --two-nodes
//! ```
//!
//! `--two-nodes` (on a cluster of two nodes) runs the allreduces only, with
//! the two workers on different nodes (STRICT_SPREAD), so every buffer
//! crosses QUIC. `--bandwidth` runs the 100 MiB allreduce alone (for
//! profiling it).

use serde::{Deserialize, Serialize};
use std::time::Instant;
use wray::Error;
use wray::nn::{self, Init, Linear, Module, Optimizer, ReLU, Rng, Sequential, Var};
use wray::train::{self, DataParallelTrainer, Metrics, ReduceOp, RunConfig, ScalingConfig};

#[derive(Clone, Default, Serialize, Deserialize)]
enum Bench {
    #[default]
    Report,
    Allreduce,
    Mlp,
}

#[derive(Clone, Default, Serialize, Deserialize)]
struct Config {
    bench: Bench,
    /// Repetitions (reports, allreduces or steps).
    n: u32,
    /// Elements per allreduce; batch rows per worker for the MLP.
    len: usize,
}

fn report_loop(c: &Config) -> Result<Metrics, Error> {
    for _ in 0..10 {
        train::report(Metrics::new(), None)?;
    }
    let t = Instant::now();
    for _ in 0..c.n {
        train::report(Metrics::new(), None)?;
    }
    Ok(train::metrics(&[("us", t.elapsed().as_secs_f64() * 1e6 / f64::from(c.n))]))
}

fn allreduce_loop(c: &Config) -> Result<Metrics, Error> {
    let mut data: Vec<f32> = (0..c.len).map(|i| (i % 97) as f32).collect();
    for _ in 0..3 {
        train::allreduce(&mut data, ReduceOp::Mean)?;
    }
    let t = Instant::now();
    for _ in 0..c.n {
        train::allreduce(&mut data, ReduceOp::Mean)?;
    }
    let seconds = t.elapsed().as_secs_f64() / f64::from(c.n);
    // The reference: one copy of the same buffer in this instance.
    let t = Instant::now();
    let copy = std::hint::black_box(data.clone());
    let memcpy = t.elapsed().as_secs_f64();
    drop(copy);
    let bytes = (c.len * 4) as f64;
    Ok(train::metrics(&[("us", seconds * 1e6), ("gb_s", bytes / seconds / 1e9), ("memcpy_gb_s", bytes / memcpy / 1e9)]))
}

/// 784-1024-256-10: 1,068,810 parameters.
fn mlp() -> Result<Sequential, Error> {
    let mut rng = Rng::new(0);
    Ok(Sequential::new()
        .add(Linear::new(784, 1024, Init::KaimingUniform, &mut rng)?)
        .add(ReLU)
        .add(Linear::new(1024, 256, Init::KaimingUniform, &mut rng)?)
        .add(ReLU)
        .add(Linear::new(256, 10, Init::XavierUniform, &mut rng)?))
}

fn mlp_loop(c: &Config) -> Result<Metrics, Error> {
    let ctx = train::get_context()?;
    let model = train::prepare_model(mlp()?)?;
    let params = model.parameters();
    let mut opt = train::prepare_optimizer(nn::Sgd::new(params.clone(), 0.01, 0.9)?, params.clone());
    let mut rng = Rng::new(1 + ctx.world_rank as u64);
    let x: Vec<f32> = (0..c.len * 784).map(|_| rng.normal()).collect();
    let labels: Vec<u32> = (0..c.len).map(|i| (i % 10) as u32).collect();
    let x = Var::constant(wray::Tensor::from_vec(&[c.len, 784], &x)?);
    let step = |opt: &mut train::DistributedOptimizer<nn::Sgd>| -> Result<(), Error> {
        opt.zero_grad();
        let loss = nn::loss::cross_entropy(&model.forward(&x)?, &labels)?;
        loss.backward()?;
        opt.step()
    };
    step(&mut opt)?;
    let t = Instant::now();
    for _ in 0..c.n {
        step(&mut opt)?;
    }
    let seconds = t.elapsed().as_secs_f64();
    let samples = (c.len * ctx.world_size) as f64 * f64::from(c.n);
    Ok(train::metrics(&[("samples_s", samples / seconds)]))
}

fn bench_loop(c: Config) -> Result<(), Error> {
    let m = match c.bench {
        Bench::Report => report_loop(&c)?,
        Bench::Allreduce => allreduce_loop(&c)?,
        Bench::Mlp => mlp_loop(&c)?,
    };
    train::report(m, None)
}

fn run(c: Config, workers: usize) -> Result<Metrics, Error> {
    run_placed(c, ScalingConfig::new(workers))
}

fn run_placed(c: Config, scaling: ScalingConfig) -> Result<Metrics, Error> {
    let quiet = RunConfig { verbose: false, ..RunConfig::default() };
    let r =
        DataParallelTrainer::new(bench_loop).train_loop_config(c).scaling_config(scaling).run_config(quiet).fit()?;
    match r.error {
        Some(e) => Err(e),
        None => Ok(r.metrics),
    }
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), Error> {
    let quick = args.iter().any(|a| a == "--quick");
    let n = if quick { 200 } else { 2000 };
    if args.iter().any(|a| a == "--two-nodes") {
        let spread = || ScalingConfig::new(2).placement_strategy(wray::PlacementStrategy::StrictSpread);
        let r = run_placed(Config { bench: Bench::Allreduce, n: n / 4, len: 217 }, spread())?;
        println!("allreduce of 217 floats (the wine model), 2 workers on two nodes: {:.1} us each", r["us"]);
        let r = run_placed(
            Config { bench: Bench::Allreduce, n: if quick { 1 } else { 5 }, len: (100 << 20) / 4 },
            spread(),
        )?;
        println!(
            "allreduce of 100 MiB, 2 workers on two nodes: {:.1} ms each, {:.2} GB/s of buffer; memcpy of it: {:.2} GB/s",
            r["us"] / 1000.0,
            r["gb_s"],
            r["memcpy_gb_s"]
        );
        return Ok(());
    }
    let bandwidth_only = args.iter().any(|a| a == "--bandwidth");
    if !bandwidth_only {
        let r = run(Config { bench: Bench::Report, n, len: 0 }, 2)?;
        println!("report, 2 workers: {:.1} us each", r["us"]);
        // The wine MLP's 217 parameters.
        let r = run(Config { bench: Bench::Allreduce, n, len: 217 }, 2)?;
        println!("allreduce of 217 floats (the wine model), 2 workers: {:.1} us each", r["us"]);
    }
    let big = 100 << 20;
    let r = run(Config { bench: Bench::Allreduce, n: if quick { 1 } else { 5 }, len: big / 4 }, 2)?;
    println!(
        "allreduce of 100 MiB, 2 workers on one node: {:.1} ms each, {:.2} GB/s of buffer; memcpy of it: {:.2} GB/s",
        r["us"] / 1000.0,
        r["gb_s"],
        r["memcpy_gb_s"]
    );
    if bandwidth_only {
        return Ok(());
    }
    let steps = if quick { 5 } else { 30 };
    let one = run(Config { bench: Bench::Mlp, n: steps, len: 256 }, 1)?["samples_s"];
    let two = run(Config { bench: Bench::Mlp, n: steps, len: 256 }, 2)?["samples_s"];
    println!(
        "MLP of 1,068,810 parameters, batch 256 per worker: 1 worker {one:.0} samples/s, 2 workers {two:.0} samples/s ({:.2}x)",
        two / one
    );
    Ok(())
}
