//! `wray::nn` and `wray::tune` from inside a job: gradients against finite
//! differences, tensor errors, tensors as objects, GPUs shared by tasks,
//! and Tune's errors, stoppers, PBT and resume.

use crate::*;

/// Reports where its tensors live and when it ran, so the test can see the
/// tasks overlap on one GPU.
#[wray::remote]
pub(crate) fn gpu_task(i: u32, ms: u64) -> Result<String, Error> {
    use wray::nn::Tensor;
    let t = Tensor::from_vec(&[2, 2], &[1.0, 2.0, 3.0, 4.0])?;
    let sq = t.matmul(&t)?.to_vec()?;
    let start = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    std::thread::sleep(Duration::from_millis(ms));
    let node = wray::runtime_context().node_id;
    Ok(format!("task {i}: gpu={} device={} matmul={sq:?} node={node} start={start}", t.on_gpu(), wray::nn::device()))
}

/// Every differentiable operation's gradient against central finite
/// differences, on small random inputs.
pub(crate) fn nn_gradcheck() -> Result<(), Error> {
    use wray::nn::{Rng, Tensor, Var, loss};
    let mut rng = Rng::new(7);
    let mut rand = |shape: &[usize], lo: f32, hi: f32| -> Result<Vec<f32>, Error> {
        Ok((0..shape.iter().product::<usize>()).map(|_| rng.uniform_in(lo, hi)).collect())
    };
    type F = Box<dyn Fn(&Var) -> Result<Var, Error>>;
    let other = Var::constant(Tensor::from_vec(&[3, 4], &rand(&[3, 4], 0.5, 1.5)?)?);
    let row = Var::constant(Tensor::from_vec(&[1, 4], &rand(&[1, 4], 0.5, 1.5)?)?);
    let mat = Var::constant(Tensor::from_vec(&[4, 2], &rand(&[4, 2], -1.0, 1.0)?)?);
    let target = Var::constant(Tensor::from_vec(&[3, 4], &rand(&[3, 4], 0.0, 1.0)?)?);
    let labels = Var::constant(Tensor::from_vec(&[3, 4], &[1., 0., 1., 1., 0., 0., 1., 0., 1., 1., 0., 0.])?);
    let cases: Vec<(&str, F)> = vec![
        (
            "add",
            Box::new({
                let o = row.clone();
                move |x| x.add(&o)?.mul(x)?.sum_all()
            }),
        ),
        (
            "sub",
            Box::new({
                let o = other.clone();
                move |x| o.sub(x)?.mul(x)?.sum_all()
            }),
        ),
        (
            "mul-broadcast",
            Box::new({
                let o = row.clone();
                move |x| x.mul(&o)?.sum_all()
            }),
        ),
        (
            "div",
            Box::new({
                let o = other.clone();
                move |x| o.div(&x.affine(1.0, 3.0)?)?.sum_all()
            }),
        ),
        (
            "matmul",
            Box::new({
                let m = mat.clone();
                move |x| x.matmul(&m)?.pow(2.0)?.sum_all()
            }),
        ),
        ("relu", Box::new(|x| x.relu()?.mul(x)?.sum_all())),
        ("sigmoid", Box::new(|x| x.sigmoid()?.sum_all())),
        ("tanh", Box::new(|x| x.tanh()?.mul(x)?.sum_all())),
        ("exp", Box::new(|x| x.exp()?.mean_all())),
        ("log", Box::new(|x| x.affine(1.0, 3.0)?.log()?.sum_all())),
        ("pow", Box::new(|x| x.affine(1.0, 3.0)?.pow(1.5)?.sum_all())),
        ("sum-axis", Box::new(|x| x.sum(0)?.pow(2.0)?.sum_all())),
        ("mean-axis", Box::new(|x| x.mean(1)?.pow(2.0)?.sum_all())),
        (
            "mse",
            Box::new({
                let t = target.clone();
                move |x| loss::mse(x, &t)
            }),
        ),
        (
            "bce",
            Box::new({
                let t = labels.clone();
                move |x| loss::bce(&x.sigmoid()?, &t)
            }),
        ),
        ("cross-entropy", Box::new(|x| loss::cross_entropy(x, &[3, 0, 2]))),
    ];
    let x0 = rand(&[3, 4], -1.0, 1.0)?;
    let mut worst = 0f32;
    for (name, f) in &cases {
        let x = Var::parameter(Tensor::from_vec(&[3, 4], &x0)?);
        f(&x)?.backward()?;
        let analytic = x.grad().expect("a gradient").to_vec()?;
        let h = 1e-2f32;
        for i in 0..x0.len() {
            let at = |d: f32| -> Result<f32, Error> {
                let mut v = x0.clone();
                v[i] += d;
                f(&Var::constant(Tensor::from_vec(&[3, 4], &v)?))?.value().item()
            };
            let numeric = (at(h)? - at(-h)?) / (2.0 * h);
            let err = (numeric - analytic[i]).abs() / numeric.abs().max(1.0);
            worst = worst.max(err);
            if err > 2e-2 {
                println!("gradcheck {name}: element {i}: analytic {} numeric {numeric}", analytic[i]);
            }
        }
    }
    println!("gradcheck: {} operations, worst relative error {worst:.2e}", cases.len());
    {
        use wray::nn::{Dropout, Module};
        let d = Dropout::new(0.25, 3)?;
        let x = Var::constant(Tensor::ones(&[10, 100])?);
        let y = d.forward(&x)?.value().to_vec()?;
        let kept = y.iter().filter(|v| **v != 0.0).count();
        let scaled = y.iter().all(|v| *v == 0.0 || (*v - 1.0 / 0.75).abs() < 1e-6);
        d.set_training(false);
        let same = d.forward(&x)?.value().to_vec()? == vec![1.0; 1000];
        println!("dropout: kept {kept} of 1000, scaled {scaled}, identity when evaluating {same}");
        println!(
            "dropout p=1: {}",
            Dropout::new(1.0, 0).map(|_| "accepted".to_string()).unwrap_or_else(|e| e.to_string())
        );
    }
    // A tiny network learns XOR end to end (autograd + SGD + Adam).
    for adam in [false, true] {
        use wray::nn::{Init, Linear, Module, Optimizer, Sequential, Sigmoid, Tanh};
        let mut rng = Rng::new(1);
        let model = Sequential::new()
            .add(Linear::new(2, 8, Init::XavierUniform, &mut rng)?)
            .add(Tanh)
            .add(Linear::new(8, 1, Init::XavierUniform, &mut rng)?)
            .add(Sigmoid);
        let x = Var::constant(Tensor::from_vec(&[4, 2], &[0., 0., 0., 1., 1., 0., 1., 1.])?);
        let y = Var::constant(Tensor::from_vec(&[4, 1], &[0., 1., 1., 0.])?);
        let mut opt: Box<dyn Optimizer> = if adam {
            Box::new(wray::nn::Adam::new(model.parameters(), 0.05)?)
        } else {
            Box::new(wray::nn::Sgd::new(model.parameters(), 0.5, 0.9)?)
        };
        for _ in 0..300 {
            opt.zero_grad();
            loss::bce(&model.forward(&x)?, &y)?.backward()?;
            opt.step()?;
        }
        let p = model.forward(&x)?.value().to_vec()?;
        println!(
            "xor {}: {:?}",
            if adam { "adam" } else { "sgd" },
            p.iter().map(|v| (v * 100.0).round() / 100.0).collect::<Vec<_>>()
        );
    }
    Ok(())
}

/// Bad tensor input comes back as errors naming the operation and shapes.
pub(crate) fn nn_errors() -> Result<(), Error> {
    use wray::nn::Tensor;
    let a = Tensor::zeros(&[2, 3])?;
    let b = Tensor::zeros(&[4, 5])?;
    let show = |r: Result<Tensor, Error>| match r {
        Ok(t) => format!("unexpected success: {t:?}"),
        Err(e) => e.to_string(),
    };
    println!("matmul: {}", show(a.matmul(&b)));
    println!("add: {}", show(a.add(&b)));
    println!("gather: {}", show(a.gather_rows(&[0, 7])));
    println!("xent: {}", show(a.cross_entropy(&[0, 9])));
    println!("from_vec: {}", show(Tensor::from_vec(&[2, 2], &[1.0])));
    println!("rank: {}", show(Tensor::zeros(&[1, 1, 1, 1, 1])));
    println!("huge: {}", show(Tensor::zeros(&[1 << 30, 1 << 30])));
    let c = a.clone();
    a.free();
    println!("freed: {}", show(c.relu()));
    println!(
        "sgd: {}",
        match b.sgd_step(&b, &Tensor::zeros(&[4, 5])?, 0.1, 0.9, 0.0) {
            Ok(()) => "unexpected success".into(),
            Err(e) => e.to_string(),
        }
    );
    // The memory limit covers tensors: 64 MiB tensors until it says no.
    let mut kept = Vec::new();
    let limit = loop {
        match Tensor::zeros(&[4096, 4096]) {
            Ok(t) => kept.push(t),
            Err(e) => break e.to_string(),
        }
        if kept.len() > 100 {
            break "no limit".into();
        }
    };
    println!("limit after {} tensors: {limit}", kept.len());
    drop(kept);
    println!("after dropping: {}", Tensor::zeros(&[4096, 4096]).is_ok());
    Ok(())
}

/// Tensors go into the object store and come back, and tasks pass them on.
pub(crate) fn nn_objects() -> Result<(), Error> {
    use wray::nn::{Tensor, TensorData};
    let t = Tensor::from_vec(&[2, 3], &[1., 2., 3., 4., 5., 6.])?;
    let r = t.to_object()?;
    let back = Tensor::from_object(&r)?;
    println!("round trip: {:?} {:?}", back.shape(), back.to_vec()?);
    let data: TensorData = wray::get(&r)?;
    println!("as value: {:?} {:?}", data.shape, data.data);
    let doubled = wray::get(&double_tensor::remote(r.clone()))?;
    println!("task: {:?}", Tensor::from_object(&doubled)?.to_vec()?);
    let not_tensor = wray::put(&String::from("hello"));
    // The same object under the wrong type: the host checks the bytes.
    let wrong: ObjectRef<TensorData> = ObjectRef::from_id(not_tensor.id())?;
    println!(
        "not a tensor: {}",
        Tensor::from_object(&wrong).map(|_| "unexpected success".to_string()).unwrap_or_else(|e| e.to_string())
    );
    Ok(())
}

#[wray::remote]
pub(crate) fn double_tensor(r: ObjectRef<wray::nn::TensorData>) -> Result<ObjectRef<wray::nn::TensorData>, Error> {
    let t = wray::nn::Tensor::from_object(&r)?;
    t.affine(2.0, 0.0)?.to_object()
}

/// A trainable for the tune tests: `x` decides how it behaves.
pub struct Probe {
    x: i64,
    count: u64,
    restored: bool,
    slow_ms: u64,
}

impl wray::tune::Trainable for Probe {
    fn setup(config: &wray::tune::Config) -> Result<Self, Error> {
        let x = config.i64("x")?;
        if let Ok(dir) = config.str("log") {
            use std::io::Write;
            let mut f =
                std::fs::OpenOptions::new().create(true).append(true).open(format!("{dir}/starts.log")).unwrap();
            writeln!(f, "start x={x}").unwrap();
        }
        Ok(Probe { x, count: 0, restored: false, slow_ms: config.i64("slow_ms").unwrap_or(0) as u64 })
    }
    fn step(&mut self) -> Result<wray::tune::Metrics, Error> {
        self.count += 1;
        std::thread::sleep(Duration::from_millis(self.slow_ms));
        match self.x {
            1 if self.count == 2 => return Err(Error::InvalidArgument("probe 1 gives up at step 2".into())),
            2 if self.count == 2 => panic!("probe 2 panics at step 2"),
            3 if self.count == 3 && !self.restored => {
                return Err(Error::InvalidArgument("probe 3 fails once at step 3".into()));
            }
            _ => {}
        }
        let m = wray::tune::metrics(&[("score", self.x as f64 * 10.0 + self.count as f64)]);
        Ok(if self.count >= 5 { wray::tune::done(m) } else { m })
    }
    fn save_checkpoint(&self) -> Result<Vec<u8>, Error> {
        Ok(self.count.to_le_bytes().to_vec())
    }
    fn load_checkpoint(&mut self, c: &[u8]) -> Result<(), Error> {
        self.count = u64::from_le_bytes(c.try_into().map_err(|_| Error::InvalidArgument("bad checkpoint".into()))?);
        self.restored = true;
        Ok(())
    }
}
wray::tune::trainable!(ProbeTrial, Probe);

pub(crate) fn tune_errors() -> Result<(), Error> {
    use wray::tune::{self, Space, Tuner, Verbosity};
    let show = |r: Result<tune::ResultGrid, Error>| match r {
        Ok(g) => format!("unexpected success: {} trials", g.trials.len()),
        Err(e) => e.to_string(),
    };
    let ok = || Space::new().with("x", tune::grid_search([0, 4]));
    println!(
        "empty choice: {}",
        show(
            Tuner::<ProbeTrial>::new(Space::new().with("x", tune::choice(Vec::<i64>::new())))
                .metric("score", "max")
                .fit()
        )
    );
    println!(
        "low >= high: {}",
        show(Tuner::<ProbeTrial>::new(Space::new().with("lr", tune::uniform(1.0, 0.5))).metric("score", "max").fit())
    );
    println!(
        "loguniform: {}",
        show(
            Tuner::<ProbeTrial>::new(Space::new().with("lr", tune::loguniform(-1.0, 1.0))).metric("score", "max").fit()
        )
    );
    println!("mode: {}", show(Tuner::<ProbeTrial>::new(ok()).metric("score", "maximum").fit()));
    println!("no metric: {}", show(Tuner::<ProbeTrial>::new(ok()).fit()));
    println!(
        "unknown metric: {}",
        show(Tuner::<ProbeTrial>::new(ok()).metric("accuracy", "max").verbose(Verbosity::Quiet).fit())
    );
    // Trials that fail, panic, or fail once and recover from a checkpoint.
    let space = Space::new().with("x", tune::grid_search([0, 1, 2, 3, 4]));
    let counts = std::rc::Rc::new(std::cell::RefCell::new(std::collections::BTreeMap::<&'static str, usize>::new()));
    let grid = Tuner::<ProbeTrial>::new(space)
        .metric("score", "max")
        .max_failures(1)
        .checkpoint_freq(1)
        .callback(CallbackCounter(counts.clone()))
        .verbose(Verbosity::Table)
        .fit()?;
    println!("callbacks: {:?}", counts.borrow());
    for t in &grid.trials {
        println!(
            "trial x={}: {} after {} iterations, {} failures, last iteration {}{}",
            t.config.i64("x")?,
            t.status,
            t.iterations(),
            t.failures,
            t.last_result().get("training_iteration").copied().unwrap_or(0.0),
            t.error.as_ref().map(|e| format!(", error: {e}")).unwrap_or_default()
        );
    }
    println!("best x: {}", grid.best_config().unwrap().i64("x")?);
    println!("csv header: {}", grid.to_csv().lines().next().unwrap_or(""));
    Ok(())
}

/// Counts callback invocations.
pub(crate) struct CallbackCounter(std::rc::Rc<std::cell::RefCell<std::collections::BTreeMap<&'static str, usize>>>);

impl CallbackCounter {
    fn bump(&self, what: &'static str) {
        *self.0.borrow_mut().entry(what).or_default() += 1;
    }
}

impl wray::tune::Callback for CallbackCounter {
    fn on_trial_start(&mut self, _: &wray::tune::Trial) {
        self.bump("start");
    }
    fn on_trial_result(&mut self, _: &wray::tune::Trial, _: &wray::tune::Metrics) {
        self.bump("result");
    }
    fn on_trial_complete(&mut self, _: &wray::tune::Trial) {
        self.bump("complete");
    }
    fn on_trial_error(&mut self, _: &wray::tune::Trial) {
        self.bump("error");
    }
    fn on_checkpoint(&mut self, _: &wray::tune::Trial) {
        self.bump("checkpoint");
    }
    fn on_experiment_end(&mut self, _: &[wray::tune::Trial]) {
        self.bump("end");
    }
}

// Two function trainables in one module: each `function!` defines only its
// actor class, so they do not collide.
pub(crate) fn rising(config: &wray::tune::Config, iteration: usize) -> Result<wray::tune::Metrics, Error> {
    let score = config.f64("x")? * iteration as f64;
    Ok(if iteration == 3 {
        wray::tune::done(wray::tune::metrics(&[("score", score)]))
    } else {
        wray::tune::metrics(&[("score", score)])
    })
}
pub(crate) fn falling(config: &wray::tune::Config, iteration: usize) -> Result<wray::tune::Metrics, Error> {
    rising(config, iteration).map(|mut m| {
        m.insert("score".into(), -m["score"]);
        m
    })
}
wray::tune::function!(RisingTrial, rising);
wray::tune::function!(FallingTrial, falling);

/// Runs both function trainables of this module over the same grid.
pub(crate) fn tune_two_functions() -> Result<(), Error> {
    use wray::tune::{Space, Tuner, Verbosity, grid_search};
    let space = || Space::new().with("x", grid_search([1.0, 2.0]));
    let up = Tuner::<RisingTrial>::new(space()).metric("score", "max").verbose(Verbosity::Quiet).fit()?;
    let down = Tuner::<FallingTrial>::new(space()).metric("score", "max").verbose(Verbosity::Quiet).fit()?;
    let best = |r: &wray::tune::ResultGrid| r.best_result().map(|m| m["score"]).unwrap_or(f64::NAN);
    println!("two functions: rising best {}, falling best {}", best(&up), best(&down));
    Ok(())
}

pub(crate) fn tune_stoppers() -> Result<(), Error> {
    use wray::tune::{self, Criteria, Space, StopFn, Tuner, Verbosity};
    let space = || Space::new().with("x", tune::grid_search([0, 4, 5])).with("slow_ms", 0);
    let its = |g: &tune::ResultGrid| g.trials.iter().map(|t| t.iterations()).collect::<Vec<_>>();
    let g = Tuner::<ProbeTrial>::new(space())
        .metric("score", "max")
        .stop(Criteria::new(&[("training_iteration", 2.0)]))
        .verbose(Verbosity::Quiet)
        .fit()?;
    println!("criteria iterations: {:?}", its(&g));
    let g = Tuner::<ProbeTrial>::new(space())
        .metric("score", "max")
        .stop(StopFn(|_, r: &tune::Metrics| r["score"] >= 43.0))
        .verbose(Verbosity::Quiet)
        .fit()?;
    println!("stop fn iterations: {:?}", its(&g));
    let slow = Space::new().with("x", tune::grid_search([0, 4, 5, 6, 7, 8])).with("slow_ms", 100);
    let start = std::time::Instant::now();
    let g = Tuner::<ProbeTrial>::new(slow)
        .metric("score", "max")
        .time_budget(Duration::from_millis(250))
        .verbose(Verbosity::Quiet)
        .fit()?;
    println!(
        "time budget: stopped after {:.1} s, {} trials terminated, {} iterations in all",
        start.elapsed().as_secs_f64(),
        g.trials.iter().filter(|t| t.status == tune::Status::Terminated).count(),
        g.trials.iter().map(|t| t.iterations()).sum::<usize>()
    );
    Ok(())
}

/// 12 slow trials with checkpoints under `dir`; run twice (the second time
/// with `resume`) by the resume test, which kills the first run midway.
pub(crate) fn tune_resume(dir: &str, resume: bool) -> Result<(), Error> {
    use wray::tune::{self, Space, Tuner, Verbosity};
    let space = Space::new()
        .with("x", tune::grid_search([0, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]))
        .with("slow_ms", 60)
        .with("log", dir);
    let grid = Tuner::<ProbeTrial>::new(space)
        .metric("score", "max")
        .name("resumable")
        .storage_path(dir)
        .checkpoint_freq(1)
        .max_concurrent_trials(2)
        .resume(resume)
        .verbose(Verbosity::Summary)
        .fit()?;
    let done = grid.trials.iter().filter(|t| t.status == wray::tune::Status::Terminated && t.iterations() == 5).count();
    println!("finished with 5 iterations: {done} of {}", grid.trials.len());
    Ok(())
}

/// Grows its score by `lr` each step; its checkpoint is the score, so a
/// trial that exploits another continues from that trial's score.
pub struct Grower {
    lr: f64,
    score: f64,
}

impl wray::tune::Trainable for Grower {
    fn setup(config: &wray::tune::Config) -> Result<Self, Error> {
        Ok(Grower { lr: config.f64("lr")?, score: 0.0 })
    }
    fn step(&mut self) -> Result<wray::tune::Metrics, Error> {
        self.score += self.lr;
        // Steps mostly wait, so the eight trials advance side by side.
        std::thread::sleep(Duration::from_millis(10));
        Ok(wray::tune::metrics(&[("score", self.score)]))
    }
    fn save_checkpoint(&self) -> Result<Vec<u8>, Error> {
        Ok(self.score.to_le_bytes().to_vec())
    }
    fn load_checkpoint(&mut self, c: &[u8]) -> Result<(), Error> {
        self.score = f64::from_le_bytes(c.try_into().map_err(|_| Error::InvalidArgument("bad checkpoint".into()))?);
        Ok(())
    }
}
wray::tune::trainable!(GrowerTrial, Grower);

pub(crate) fn tune_pbt() -> Result<(), Error> {
    use wray::tune::{self, Criteria, Pbt, Space, Tuner, Verbosity};
    let space = Space::new().with("lr", tune::grid_search([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]));
    let grid = Tuner::<GrowerTrial>::new(space.clone())
        .metric("score", "max")
        .scheduler(Pbt::new(4.0, Space::new().with("lr", tune::uniform(0.1, 1.0)), 3))
        .stop(Criteria::new(&[("training_iteration", 20.0)]))
        .max_concurrent_trials(8)
        .verbose(Verbosity::Quiet)
        .fit()?;
    let lrs: Vec<f64> = grid.trials.iter().map(|t| t.config.f64("lr").unwrap()).collect();
    let scores: Vec<f64> = grid.trials.iter().map(|t| t.last_result()["score"]).collect();
    let mean_lr = lrs.iter().sum::<f64>() / lrs.len() as f64;
    let min_score = scores.iter().copied().fold(f64::MAX, f64::min);
    println!(
        "pbt: {} trials, mean final lr {mean_lr:.3} (started at 0.450), min final score {min_score:.2}",
        grid.trials.len()
    );
    println!("pbt: iterations {:?}", grid.trials.iter().map(|t| t.iterations()).collect::<Vec<_>>());
    Ok(())
}

/// A loop trial (`Tuner::function`): its score climbs at `rate` per step.
/// The trial with `fail` set fails once at step 5 and restarts from the
/// step-4 checkpoint it reported; `stall` sleeps past stoppers. Each loop
/// says where `report` told it to stop, so the test can check that no loop
/// ran ahead of its scheduler.
fn climbing_loop(config: &wray::tune::Config) -> Result<(), Error> {
    use wray::tune;
    let rate = config.f64("rate")?;
    let fail = config.get("fail").is_some_and(|v| v.as_f64() == Some(1.0));
    let mut step = match tune::get_checkpoint()? {
        Some(c) => u64::from_le_bytes(c.try_into().map_err(|_| Error::InvalidArgument("checkpoint".into()))?),
        None => 0,
    };
    let restarted = step > 0;
    while step < 12 {
        step += 1;
        if fail && !restarted && step == 5 {
            return Err(Error::InvalidArgument(format!("rate {rate} fails at step {step}")));
        }
        let score = rate * step as f64;
        match tune::report(tune::metrics(&[("score", score), ("step", step as f64)]), Some(step.to_le_bytes().to_vec()))
        {
            Err(Error::Cancelled) => {
                println!("loop rate={rate}: stopped after report {step}");
                return Err(Error::Cancelled);
            }
            r => r?,
        }
    }
    println!("loop rate={rate}: returned after report {step}");
    Ok(())
}

fn silent_loop(_config: &wray::tune::Config) -> Result<(), Error> {
    Ok(())
}

/// `tune-loop`: loop trials under ASHA, with a failure and a retry; a loop
/// that never reports.
pub(crate) fn tune_loop() -> Result<(), Error> {
    use wray::tune::{self, Space, Tuner, Verbosity};
    let space = Space::new().with("rate", tune::grid_search([3.2, 1.6, 0.8, 0.4, 0.2, 0.1])).with(
        "fail",
        tune::sample_from(|c: &tune::Config, _: &mut wray::Rng| {
            tune::Value::Int(if c.f64("rate").unwrap_or(0.0) == 3.2 { 1 } else { 0 })
        }),
    );
    let grid = Tuner::function(climbing_loop, space)
        .metric("score", "max")
        .scheduler(tune::Asha::with(12.0, 1.0, 2.0, 1))
        .max_failures(1)
        .max_concurrent_trials(2)
        .verbose(Verbosity::Quiet)
        .fit()?;
    for t in &grid.trials {
        println!(
            "trial rate={}: {} after {} iterations, {} failures, checkpoint {:?}",
            t.config.f64("rate")?,
            t.status,
            t.iterations(),
            t.failures,
            t.checkpoint.as_ref().and_then(|c| c.clone().try_into().ok()).map(u64::from_le_bytes)
        );
    }
    let best = grid.best_trial().ok_or_else(|| Error::InvalidArgument("no best trial".into()))?;
    println!("best rate: {} score {}", best.config.f64("rate")?, best.last_result()["score"]);
    let silent = Tuner::function(silent_loop, Space::new().with("x", tune::grid_search([1])))
        .metric("score", "max")
        .verbose(Verbosity::Quiet)
        .fit();
    println!("silent: {:?}", silent.map(|g| g.trials.len()).map_err(|e| e.to_string()));
    println!("report outside a trial: {:?}", tune::report(tune::metrics(&[]), None).map_err(|e| e.to_string()));
    Ok(())
}
