//! `wray::train` scenarios: collectives between tasks, a trainer's loop with
//! reports, shards and checkpoints, a worker failing mid-run, data-parallel
//! `wray::nn`, and each kind of bad input.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use wray::Error;
use wray::data;
use wray::nn::{self, Init, Linear, Module, Optimizer, ReLU, Rng, Sequential, Var};
use wray::train::{
    self, Checkpoint, CheckpointConfig, DataParallelTrainer, FailureConfig, Group, Order, ReduceOp, RunConfig,
    ScalingConfig,
};

/// Runs every collective once as rank `group.rank()` and returns what it saw.
#[wray::remote]
fn member(mut group: Group, big: usize) -> Result<Vec<String>, Error> {
    let r = group.rank() as f32;
    let n = group.size();
    let mut out = Vec::new();
    for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
        let mut small = vec![r + 1.0, -r, 10.0 * r];
        group.allreduce(&mut small, op)?;
        out.push(format!("{op:?} {small:?}"));
    }
    // A buffer past ONE_ROUND_BYTES: two rounds of chunks.
    let mut large: Vec<f32> = (0..big).map(|i| (i % 1000) as f32 + r).collect();
    group.allreduce(&mut large, ReduceOp::Sum)?;
    let expected = |i: usize| n as f32 * (i % 1000) as f32 + (0..n).map(|k| k as f32).sum::<f32>();
    let wrong = (0..big).filter(|&i| large[i] != expected(i)).count();
    out.push(format!("large allreduce of {big}: {wrong} wrong"));
    let mut b = if group.rank() == 1 { vec![7.0, 8.0, 9.0] } else { vec![0.0] };
    group.broadcast(&mut b, 1)?;
    out.push(format!("broadcast {b:?}"));
    let gathered = group.allgather(&vec![r; group.rank() + 1])?;
    out.push(format!("allgather {gathered:?}"));
    let scattered = group.reduce_scatter(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], ReduceOp::Sum)?;
    out.push(format!("reduce_scatter {scattered:?}"));
    group.barrier()?;
    let t = wray::Tensor::from_vec(&[2, 2], &[r, r, 1.0, 2.0])?;
    out.push(format!("tensor {:?}", group.allreduce_tensor(&t, ReduceOp::Sum)?.to_vec()?));
    Ok(out)
}

/// Calls an allreduce of `len` elements, after `barriers` barriers (the
/// first operation meets through the group's actor, later ones in the
/// host).
#[wray::remote]
fn reduce_len(mut group: Group, len: usize, barriers: u32) -> Result<(), Error> {
    for _ in 0..barriers {
        group.barrier()?;
    }
    let mut v = vec![1.0; len];
    group.allreduce(&mut v, ReduceOp::Sum)
}

/// Waits in `n` barriers.
#[wray::remote]
fn wait_barriers(mut group: Group, n: u32) -> Result<(), Error> {
    for _ in 0..n {
        group.barrier()?;
    }
    Ok(())
}

/// `train-collective`: three member tasks, every operation; then the errors.
fn scenario_collective() -> Result<(), Error> {
    let groups = train::collective::create_group("demo", 3)?;
    let runs: Vec<_> = groups.into_iter().map(|g| member::options().num_cpus(0.5).remote(g, 300_000)).collect();
    for (rank, lines) in wray::get_all(&runs)?.into_iter().enumerate() {
        for line in lines {
            println!("rank {rank}: {line}");
        }
    }
    // The same errors twice: in the first operation, which meets through
    // the group's actor, and in the second, which meets in the host.
    for (path, warmup) in [("", 0), (" (host)", 1)] {
        // Sizes that disagree fail in every rank, naming both.
        let g = train::collective::create_group("mismatch", 2)?;
        let a = reduce_len::options().num_cpus(0.5).remote(g[0].clone(), 4, warmup);
        let b = reduce_len::options().num_cpus(0.5).remote(g[1].clone(), 5, warmup);
        println!("mismatch{path} rank 0: {}", wray::get(&a).unwrap_err());
        println!("mismatch{path} rank 1: {}", wray::get(&b).unwrap_err());
        // A rank that never comes: the other gives up after its timeout.
        let g = train::collective::create_group("lonely", 2)?;
        let short = Duration::from_millis(300);
        let alone = wait_barriers::options().num_cpus(0.5).remote(g[0].clone().with_timeout(short), warmup + 1);
        let gone = wait_barriers::options().num_cpus(0.5).remote(g[1].clone(), warmup);
        wray::get(&gone)?;
        println!("timeout{path}: {}", wray::get(&alone).unwrap_err());
        // An abort reaches a member that is waiting.
        let g = train::collective::create_group("aborted", 2)?;
        let waiting = wait_barriers::options().num_cpus(0.5).remote(g[0].clone(), warmup + 1);
        let other = wait_barriers::options().num_cpus(0.5).remote(g[1].clone(), warmup);
        wray::get(&other)?;
        // Give rank 0 time to start waiting: the driver cannot observe
        // that it waits (an abort fails an operation about to start just
        // as well, so a slow start does not change the outcome, only which
        // case it covers).
        std::thread::sleep(Duration::from_millis(100));
        g[1].abort("rank 1 died: killed by the test");
        println!("abort{path}: {}", wray::get(&waiting).unwrap_err());
    }
    // A long name (400 bytes of four-byte characters) still names a meeting
    // point the host takes.
    let g = train::collective::create_group(&"𝄞".repeat(100), 2)?;
    let runs: Vec<_> = g.into_iter().map(|g| wait_barriers::options().num_cpus(0.5).remote(g, 3)).collect();
    println!("long name: {:?}", wray::get_all(&runs).map(|_| "three barriers"));
    println!("bad size: {}", train::collective::create_group("none", 0).err().unwrap());
    Ok(())
}

#[derive(Clone, Default, Serialize, Deserialize)]
struct LoopConfig {
    epochs: u32,
    /// Rank that panics at this epoch on the first attempt (0: none).
    fail_rank: u32,
    fail_epoch: u32,
    /// Report NaN as the score.
    nan: bool,
    /// Rank that skips its reports.
    silent_rank: Option<u32>,
    /// A pause per epoch (to act while the run goes on).
    sleep_ms: u64,
}

/// The test loop: sums its shard, allreduces it, reports, checkpoints its
/// progress, and resumes from a checkpoint.
fn test_loop(config: LoopConfig) -> Result<(), Error> {
    let ctx = train::get_context()?;
    let shard = train::get_dataset_shard("train")?;
    let rows: Vec<u64> = shard.take_all()?;
    let mut start = 0;
    let mut total = 0.0f64;
    if let Some(c) = train::get_checkpoint()? {
        start = c.value::<u32>("epoch")?;
        total = c.value::<f64>("total")?;
    }
    for epoch in start + 1..=config.epochs {
        if ctx.attempt == 0 && config.fail_epoch == epoch && ctx.world_rank as u32 == config.fail_rank {
            panic!("rank {} fails at epoch {epoch} as the test asked", ctx.world_rank);
        }
        std::thread::sleep(Duration::from_millis(config.sleep_ms));
        let mut sums = [rows.iter().sum::<u64>() as f32 * epoch as f32, rows.len() as f32];
        train::allreduce(&mut sums, ReduceOp::Sum)?;
        total += sums[0] as f64;
        if config.silent_rank == Some(ctx.world_rank as u32) {
            continue;
        }
        let score = if config.nan { f64::NAN } else { (epoch % 3) as f64 };
        let m = train::metrics(&[
            ("epoch", epoch as f64),
            ("rows", sums[1] as f64),
            ("total", total),
            ("score", score),
            ("world_size", ctx.world_size as f64),
            ("local_rank", ctx.local_rank as f64),
        ]);
        let mut c = Checkpoint::new();
        c.insert_value("epoch", &epoch)?.insert_value("total", &total)?;
        c.set_metadata("rank", &ctx.world_rank.to_string());
        train::report(m, Some(c))?;
    }
    Ok(())
}

fn fit(config: LoopConfig, run: RunConfig, workers: usize) -> Result<train::TrainResult, Error> {
    DataParallelTrainer::new(test_loop)
        .train_loop_config(config)
        .scaling_config(ScalingConfig::new(workers))
        .dataset("train", data::range(1000))
        .run_config(run)
        .fit()
}

/// `train-loop DIR`: two workers, reports, shards, checkpoints kept by score.
fn scenario_loop(dir: &str) -> Result<(), Error> {
    let run = RunConfig {
        name: "loop".into(),
        storage_path: Some(format!("{dir}/results")),
        checkpoint_config: CheckpointConfig {
            num_to_keep: Some(2),
            score_attribute: Some("score".into()),
            order: Some(Order::Max),
        },
        ..RunConfig::default()
    };
    let results = std::path::PathBuf::from(format!("{dir}/results"));
    let r = DataParallelTrainer::new(test_loop)
        .train_loop_config(LoopConfig { epochs: 5, ..LoopConfig::default() })
        .scaling_config(ScalingConfig::new(2))
        .dataset("train", data::range(1000))
        .run_config(run)
        .callback(train::TensorBoardLogger::new(&results))
        .callback(train::MlflowLogger::new(&results, "loop"))
        .fit()?;
    println!("error: {:?}", r.error.map(|e| e.to_string()));
    println!("iterations: {}", r.metrics_history.len());
    println!("final: epoch {} rows {} total {}", r.metrics["epoch"], r.metrics["rows"], r.metrics["total"]);
    println!("world size {}, local ranks {}", r.metrics["world_size"], r.metrics["local_rank"]);
    let kept: Vec<String> = r
        .best_checkpoints
        .iter()
        .map(|(c, m)| format!("{}@{}", c.value::<u32>("epoch").unwrap_or(0), m["score"]))
        .collect();
    println!("kept: {kept:?}");
    println!("latest: epoch {}", r.checkpoint.as_ref().map(|c| c.value::<u32>("epoch").unwrap_or(0)).unwrap_or(0));
    let list = |path: &str| -> Result<Vec<String>, Error> {
        let mut names: Vec<String> = std::fs::read_dir(path)
            .map_err(|e| Error::InvalidArgument(format!("{path}: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .map(|n| if n.starts_with("events.out.tfevents.") { "events.out.tfevents.*".into() } else { n })
            .collect();
        names.sort();
        Ok(names)
    };
    let mut dirs = list(&format!("{dir}/results/loop"))?;
    dirs.sort();
    println!("run dir: {dirs:?}");
    let lines = std::fs::read_to_string(format!("{dir}/results/loop/result.json")).unwrap_or_default();
    println!("result.json lines: {}", lines.lines().count());
    let csv = std::fs::read_to_string(format!("{dir}/results/loop/progress.csv")).unwrap_or_default();
    println!("progress.csv lines: {}", csv.lines().count());
    let runs = list(&format!("{dir}/results/mlruns/0"))?;
    println!("mlflow experiment: {:?}", runs.iter().filter(|r| r.len() != 32).collect::<Vec<_>>());
    let run_id = runs.iter().find(|r| r.len() == 32).cloned().unwrap_or_default();
    let mlrun = format!("{dir}/results/mlruns/0/{run_id}");
    let total = std::fs::read_to_string(format!("{mlrun}/metrics/total")).unwrap_or_default();
    println!(
        "mlflow total: {} lines, last {:?}",
        total.lines().count(),
        total.lines().last().map(|l| l.split(' ').skip(1).collect::<Vec<_>>())
    );
    let meta = std::fs::read_to_string(format!("{mlrun}/meta.yaml")).unwrap_or_default();
    println!("mlflow status: {:?}", meta.lines().find(|l| l.starts_with("status:")));
    let back = Checkpoint::from_directory(&format!("{dir}/results/loop/checkpoint_000005"))?;
    println!("from_directory: epoch {} rank {}", back.value::<u32>("epoch")?, back.metadata()["rank"]);
    Ok(())
}

/// `train-fail`: a worker panics at epoch 3; the group restarts from the
/// latest checkpoint and ends where a clean run ends. Without restarts the
/// run fails naming the rank.
fn scenario_fail() -> Result<(), Error> {
    let quiet = RunConfig { verbose: false, ..RunConfig::default() };
    let clean = fit(LoopConfig { epochs: 5, ..LoopConfig::default() }, quiet.clone(), 2)?;
    let failing = LoopConfig { epochs: 5, fail_rank: 1, fail_epoch: 3, ..LoopConfig::default() };
    let restarted = fit(
        failing.clone(),
        RunConfig { failure_config: FailureConfig { max_failures: 1 }, ..RunConfig::default() },
        2,
    )?;
    println!("clean: total {} after {} iterations", clean.metrics["total"], clean.metrics_history.len());
    println!(
        "restarted: total {} after {} iterations, {} failures, error {:?}",
        restarted.metrics["total"],
        restarted.metrics_history.len(),
        restarted.failures,
        restarted.error.map(|e| e.to_string())
    );
    let failed = fit(failing, quiet, 2)?;
    println!("no restarts: {}", failed.error.map(|e| e.to_string()).unwrap_or_default());
    Ok(())
}

/// `train-bad`: each kind of bad input, one line each.
fn scenario_bad(dir: &str) -> Result<(), Error> {
    let quiet = RunConfig { verbose: false, ..RunConfig::default() };
    let show = |what: &str, r: Result<train::TrainResult, Error>| match r {
        Err(e) => println!("{what}: Err {e}"),
        Ok(r) => println!("{what}: error {}", r.error.map(|e| e.to_string()).unwrap_or("none".into())),
    };
    show("too many workers", fit(LoopConfig { epochs: 1, ..LoopConfig::default() }, quiet.clone(), 64));
    show(
        "gpu",
        DataParallelTrainer::new(test_loop)
            .train_loop_config(LoopConfig::default())
            .scaling_config(ScalingConfig::new(1).use_gpu(true))
            .dataset("train", data::range(10))
            .fit(),
    );
    show(
        "never reports",
        // A loop taking `()` needs no `train_loop_config`.
        DataParallelTrainer::new(|(): ()| Ok(())).scaling_config(ScalingConfig::new(2)).run_config(quiet.clone()).fit(),
    );
    show(
        "one rank silent",
        fit(LoopConfig { epochs: 2, silent_rank: Some(1), ..LoopConfig::default() }, quiet.clone(), 2),
    );
    let nan = RunConfig {
        checkpoint_config: CheckpointConfig { score_attribute: Some("score".into()), ..CheckpointConfig::default() },
        ..quiet.clone()
    };
    show("nan score", fit(LoopConfig { epochs: 2, nan: true, ..LoopConfig::default() }, nan, 2));
    show(
        "unknown shard",
        DataParallelTrainer::new(|(): ()| train::get_dataset_shard("test").map(|_| ())).run_config(quiet.clone()).fit(),
    );
    // A loop's own error (`Error::msg`) and a failed file read through `?`
    // (`From<std::io::Error>`) end the run naming the rank and the cause.
    show(
        "own error",
        DataParallelTrainer::new(|(): ()| Err(Error::msg("loss diverged at epoch 7"))).run_config(quiet.clone()).fit(),
    );
    show(
        "io error",
        DataParallelTrainer::new(|(): ()| std::fs::read("/work/no-such-file").map(|_| ()).map_err(Error::from))
            .run_config(quiet.clone())
            .fit(),
    );
    show("no config", DataParallelTrainer::new(test_loop).run_config(quiet.clone()).fit());
    println!("outside a trainer: {}", train::report(train::metrics(&[]), None).unwrap_err());
    println!("not a directory: {}", Checkpoint::from_directory(&format!("{dir}/no-such-checkpoint")).unwrap_err());
    println!("not a checkpoint: {}", Checkpoint::from_bytes(b"hello").unwrap_err());
    Ok(())
}

fn ddp_model(seed: u64, hidden: usize) -> Result<Sequential, Error> {
    let mut rng = Rng::new(seed);
    Ok(Sequential::new().add(Linear::new(4, hidden, Init::KaimingUniform, &mut rng)?).add(ReLU).add(Linear::new(
        hidden,
        1,
        Init::XavierUniform,
        &mut rng,
    )?))
}

/// Data-parallel regression: every step, every rank checks that all ranks
/// hold the same weights. Seed 99: each rank builds its model from its own
/// seed (`prepare_model` copies rank 0's); seed 98: rank 1 builds a bigger
/// model (refused).
fn ddp_loop(seed: u64) -> Result<(), Error> {
    let ctx = train::get_context()?;
    let rank = ctx.world_rank as u64;
    let own_seed = seed + rank * u64::from(seed == 99);
    let hidden = if seed == 98 && rank == 1 { 9 } else { 8 };
    let model = train::prepare_model(ddp_model(own_seed, hidden)?)?;
    let params = model.parameters();
    let mut opt = train::prepare_optimizer(nn::Sgd::new(params.clone(), 0.05, 0.9)?, params.clone());
    let mut rng = Rng::new(100 + ctx.world_rank as u64);
    let mut identical = true;
    let mut loss_value = 0.0;
    for _step in 0..20 {
        let x: Vec<f32> = (0..32 * 4).map(|_| rng.normal()).collect();
        let y: Vec<f32> = x.chunks(4).map(|r| r[0] - 2.0 * r[1] + 0.5 * r[2] * r[3]).collect();
        let (x, y) = (
            Var::constant(wray::Tensor::from_vec(&[32, 4], &x)?),
            Var::constant(wray::Tensor::from_vec(&[32, 1], &y)?),
        );
        opt.zero_grad();
        let loss = nn::loss::mse(&model.forward(&x)?, &y)?;
        loss.backward()?;
        opt.step()?;
        loss_value = loss.value().item()?;
        let mut flat = Vec::new();
        for p in &params {
            flat.extend(p.value().to_vec()?);
        }
        let all = train::with_group(|g| g.allgather(&flat))?;
        identical &= all.iter().all(|w| w.iter().zip(&all[0]).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
    let on_gpu = f64::from(u8::from(params.iter().all(|p| p.value().on_gpu())));
    train::report(
        train::metrics(&[
            ("identical", f64::from(u8::from(identical))),
            ("loss", loss_value as f64),
            ("on_gpu", on_gpu),
        ]),
        None,
    )
}

/// Two `ddp_loop` workers for `seed` with `scaling`: prints `label:` and
/// the metrics named, then the run's error.
fn ddp_run(label: &str, seed: u64, scaling: ScalingConfig, shown: &[&str]) -> Result<(), Error> {
    let r = DataParallelTrainer::new(ddp_loop)
        .train_loop_config(seed)
        .scaling_config(scaling)
        .run_config(RunConfig { verbose: false, ..RunConfig::default() })
        .fit()?;
    let metrics: Vec<String> =
        shown.iter().map(|k| format!("{k} {}", r.metrics.get(*k).copied().unwrap_or(-1.0))).collect();
    println!("{label}: {} error {:?}", metrics.join(" "), r.error.map(|e| e.to_string()));
    Ok(())
}

/// `train-ddp`: two replicas stay bit-identical, also when built from
/// different seeds; replicas of different sizes are refused by
/// `prepare_model`.
fn scenario_ddp() -> Result<(), Error> {
    for (label, seed) in [("ddp", 7), ("different seeds", 99), ("different sizes", 98)] {
        ddp_run(label, seed, ScalingConfig::new(2), &["identical"])?;
    }
    Ok(())
}

/// `train-ddp-gpu`: two replicas built from different seeds, each holding
/// half of the node's GPU, so that their tensors (and the weights
/// `prepare_model` writes) live in GPU memory.
fn scenario_ddp_gpu() -> Result<(), Error> {
    // What `get_gpu_ids` says: nothing in the driver or a task without a
    // GPU, the node's GPU 0 in one holding half of it.
    let with = gpu_ids::options().num_gpus(0.5).remote();
    println!("gpu ids: {:?} {:?} {:?}", wray::get_gpu_ids(), wray::get(&gpu_ids::remote())?, wray::get(&with)?);
    let scaling = ScalingConfig::new(2).resources_per_worker(&[("CPU", 0.5), ("GPU", 0.5)]);
    ddp_run("ddp on gpu", 99, scaling, &["identical", "on_gpu"])
}

/// The GPUs the task's tensors run on.
#[wray::remote]
fn gpu_ids() -> Vec<u32> {
    wray::get_gpu_ids()
}

/// Prints column `c` of `ds` as the reference script prints it.
fn show(label: &str, ds: &data::Dataset, c: &str) -> Result<(), Error> {
    let mut cells = Vec::new();
    for b in ds.take_all_batches()? {
        for v in b.column::<f64>(c)?.iter() {
            let s = format!("{v:.6}");
            cells.push(if s == "-0.000000" { "0.000000".to_string() } else { s });
        }
    }
    println!("{label}: {}", cells.join(" "));
    Ok(())
}

/// `train-preprocess DIR`: every preprocessor on DIR/preprocess.csv (in 3
/// blocks, so fitting merges summaries), printed as
/// tests/reference/preprocess.py prints scikit-learn's outputs.
fn scenario_preprocess(dir: &str) -> Result<(), Error> {
    use wray::train::preprocessors::{Category, Norm, Preprocessor as P, Strategy};
    let ds = data::read_csv(format!("{dir}/preprocess.csv"))?.repartition(3).materialize()?;
    for (name, mut p) in [
        ("standard", P::standard_scaler(&["x", "y"])),
        ("minmax", P::min_max_scaler(&["x", "y"])),
        ("maxabs", P::max_abs_scaler(&["x", "y"])),
        ("robust", P::robust_scaler(&["x", "y"])),
        ("robust 10-90", P::robust_scaler_with(&["x", "y"], (0.1, 0.9))),
    ] {
        let out = p.fit_transform(&ds)?;
        show(&format!("{name} x"), &out, "x")?;
        show(&format!("{name} y"), &out, "y")?;
    }
    for (name, norm) in [("l2", Norm::L2), ("l1", Norm::L1), ("max", Norm::Max)] {
        let out = P::normalizer(&["x", "y"], norm).transform(&ds);
        show(&format!("normalizer {name} x"), &out, "x")?;
        show(&format!("normalizer {name} y"), &out, "y")?;
    }
    show("ordinal color", &P::ordinal_encoder(&["color"]).fit_transform(&ds)?, "color")?;
    let mut onehot = P::one_hot_encoder(&["color"]);
    let out = onehot.fit_transform(&ds)?;
    for cat in onehot.categories("color").unwrap_or_default().to_vec() {
        show(&format!("onehot color_{cat}"), &out, &format!("color_{cat}"))?;
    }
    let labels = P::label_encoder("label").fit_transform(&ds)?;
    let codes: Vec<f64> = labels
        .take_all_batches()?
        .iter()
        .flat_map(|b| b.column::<i64>("label").map(|c| c.to_vec()).unwrap_or_default())
        .map(|v| v as f64)
        .collect();
    println!("label: {}", codes.iter().map(|v| format!("{v:.6}")).collect::<Vec<_>>().join(" "));
    for (name, strategy) in [
        ("mean", Strategy::Mean),
        ("most_frequent", Strategy::MostFrequent),
        ("median", Strategy::Median),
        ("constant", Strategy::Constant(Category::Number(-1.0))),
    ] {
        show(&format!("impute {name} z"), &P::simple_imputer(&["z"], strategy).fit_transform(&ds)?, "z")?;
    }
    let mut chain = P::chain(vec![P::simple_imputer(&["z"], Strategy::Mean), P::standard_scaler(&["x", "z"])]);
    chain.fit(&ds)?;
    // Saved in a checkpoint and loaded back, it transforms the same.
    let mut c = Checkpoint::new();
    c.insert_value("preprocessor", &chain)?;
    let back: P = Checkpoint::from_bytes(&c.to_bytes())?.value("preprocessor")?;
    let out = back.transform(&ds);
    show("chain x", &out, "x")?;
    show("chain z", &out, "z")?;
    let concat = P::concatenator(&["x", "y"], "features").transform(&ds);
    let mut matrix = Vec::new();
    for b in concat.take_all_batches()? {
        assert!(b.array("x").is_err(), "the concatenated columns are replaced");
        matrix.extend(b.tensor(&["features"])?.to_vec()?.into_iter().map(f64::from));
    }
    println!("concat x,y: {}", matrix.iter().map(|v| format!("{v:.6}")).collect::<Vec<_>>().join(" "));
    // Bad input.
    let unseen = data::from_items(vec![Color { color: "purple".into() }])?;
    let err = P::ordinal_encoder(&["color"]).fit(&ds)?.transform(&unseen).take_all_batches().err();
    println!("unseen category: {}", err.map(|e| e.to_string()).unwrap_or_default());
    println!(
        "unfitted: {}",
        P::standard_scaler(&["x"]).transform(&ds).count().err().map(|e| e.to_string()).unwrap_or_default()
    );
    println!(
        "no such column: {}",
        P::standard_scaler(&["w"]).fit(&ds).err().map(|e| e.to_string()).unwrap_or_default()
    );
    println!(
        "bad quantile range: {}",
        P::robust_scaler_with(&["x"], (0.9, 0.1)).fit(&ds).err().map(|e| e.to_string()).unwrap_or_default()
    );
    println!(
        "text scaled: {}",
        P::standard_scaler(&["color"]).fit(&ds).err().map(|e| e.to_string()).unwrap_or_default()
    );
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct Color {
    color: String,
}

/// `train-cluster [KILLABLE]`: two workers on a cluster, 20 slow epochs with
/// a checkpoint each; with `killable` the test SIGKILLs a node under it and
/// the run must end as a clean one does.
fn scenario_cluster(killable: bool) -> Result<(), Error> {
    let run =
        RunConfig { name: "cluster".into(), failure_config: FailureConfig { max_failures: 3 }, ..RunConfig::default() };
    let epochs = 20;
    let config = LoopConfig { epochs, sleep_ms: if killable { 300 } else { 0 }, ..LoopConfig::default() };
    let r = fit(config, run, 2)?;
    println!(
        "cluster: total {} after {} iterations, error {:?}",
        r.metrics.get("total").copied().unwrap_or(-1.0),
        r.metrics_history.len(),
        r.error.map(|e| e.to_string())
    );
    println!("failures: {}", r.failures);
    // 499500 per epoch, weighted by the epoch: 499500 * (1 + ... + 20).
    println!("expected total: {}", 499_500.0 * f64::from(epochs * (epochs + 1) / 2));
    Ok(())
}

pub fn run(scenario: &str, args: &[String]) -> Result<(), Error> {
    let dir = args.first().map(String::as_str).unwrap_or("/work");
    match scenario {
        "train-collective" => scenario_collective(),
        "train-tune" => scenario_tune(),
        "train-loop" => scenario_loop(dir),
        "train-fail" => scenario_fail(),
        "train-bad" => scenario_bad(dir),
        "train-ddp" => scenario_ddp(),
        "train-ddp-gpu" => scenario_ddp_gpu(),
        "train-preprocess" => scenario_preprocess(dir),
        "train-cluster" => scenario_cluster(args.first().is_some_and(|a| a == "killable")),
        other => panic!("unknown scenario {other}"),
    }
}

/// A loop whose config is Tune's: `score` grows with `lr` per epoch,
/// averaged over the workers; it checkpoints every epoch and resumes from
/// the checkpoint it is given.
fn tuned_loop(config: wray::tune::Config) -> Result<(), Error> {
    let lr = config.f64("lr")?;
    let epochs = config.i64("epochs")? as u32;
    let ctx = train::get_context()?;
    let start = train::get_checkpoint()?.map(|c| c.value::<u32>("epoch")).transpose()?.unwrap_or(0);
    for epoch in start..epochs {
        let mut score = [lr as f32 * (epoch + 1) as f32 + ctx.world_rank as f32];
        train::allreduce(&mut score, ReduceOp::Mean)?;
        let mut checkpoint = Checkpoint::new();
        checkpoint.insert_value("epoch", &(epoch + 1))?;
        let m = train::metrics(&[
            ("score", score[0] as f64),
            ("epoch", (epoch + 1) as f64),
            ("world_size", ctx.world_size as f64),
            ("hidden", config.i64("hidden")? as f64),
        ]);
        train::report(m, Some(checkpoint))?;
    }
    Ok(())
}

/// `train-tune`: a trainer handed to Tune; ASHA ends the poor trials.
fn scenario_tune() -> Result<(), Error> {
    use wray::tune::{self, Space, Verbosity};
    let base = wray::tune::Config::default().with("epochs", 8).with("hidden", 4);
    let trainer = DataParallelTrainer::new(tuned_loop)
        .train_loop_config(base)
        .scaling_config(ScalingConfig::new(2).resources_per_worker(&[("CPU", 0.5)]))
        .run_config(RunConfig { name: "tuned".into(), ..RunConfig::default() });
    let space = Space::new()
        .with("train_loop_config/lr", tune::grid_search([0.5, 1.0, 2.0, 4.0]))
        .with("hidden", tune::grid_search([8, 16]));
    let grid = trainer
        .tuner(space)?
        .metric("score", "max")
        .scheduler(tune::Asha::with(8.0, 2.0, 2.0, 1))
        .verbose(Verbosity::Quiet)
        .fit()?;
    for t in &grid.trials {
        let last = t.last_result();
        println!(
            "trial lr={} hidden={}: {} after {} iterations, world size {}, hidden seen {}, checkpoint epoch {:?}",
            t.config.f64("train_loop_config/lr")?,
            t.config.i64("hidden")?,
            t.status,
            t.iterations(),
            last.get("world_size").copied().unwrap_or(0.0),
            last.get("hidden").copied().unwrap_or(0.0),
            t.checkpoint
                .as_ref()
                .map(|c| Checkpoint::from_bytes(c).and_then(|c| c.value::<u32>("epoch")))
                .transpose()?,
        );
    }
    let best = grid.best_trial().ok_or_else(|| Error::InvalidArgument("no best trial".into()))?;
    println!("best: {} score {}", best.config, best.last_result()["score"]);
    // Workers no node can hold: every trial fails, naming the resource.
    let too_big = DataParallelTrainer::new(tuned_loop)
        .train_loop_config(wray::tune::Config::default().with("epochs", 2).with("hidden", 1).with("lr", 1.0))
        .scaling_config(ScalingConfig::new(64))
        .tuner(Space::new().with("x", tune::grid_search([1])))?
        .metric("score", "max")
        .verbose(Verbosity::Quiet)
        .fit()?;
    println!("too big: {}", too_big.trials[0].error.clone().unwrap_or_default());
    Ok(())
}
