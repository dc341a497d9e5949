//! Served applications that misbehave on purpose: slow, crashing, trapping,
//! scaling, batching, reconfigured and sick deployments, and applications
//! that must fail before serving.

use std::time::Duration;
use wray::serve::{self, Autoscaling, Chunk, Request, Response};

fn me() -> String {
    wray::runtime_context().actor_id.unwrap_or_default()
}

fn sleep_for(req: &Request) {
    let ms: u64 = req.query_param("ms").and_then(|v| v.parse().ok()).unwrap_or(0);
    std::thread::sleep(Duration::from_millis(ms));
}

/// `/echo`: what it was sent.
pub struct Echo;

#[wray::actor]
impl Echo {
    pub fn new() -> Echo {
        Echo
    }

    pub fn call(&mut self, req: Request) -> Response {
        Response::json(&serde_json::json!({
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "body_len": req.body.len(),
            "x_test": req.header("x-test"),
        }))
    }
}

/// `/slow?ms=N`: sleeps, one request at a time, two queued at most.
pub struct Slow;

#[wray::actor]
impl Slow {
    pub fn new() -> Slow {
        Slow
    }

    pub fn call(&mut self, req: Request) -> Response {
        sleep_for(&req);
        Response::text(200, "slept")
    }
}

/// `/fragile`: `?crash=1` panics, `?trap=1` traps; replicas are not
/// restarted in place (the controller replaces them) and requests are
/// idempotent (a request whose replica died goes to another).
pub struct Fragile;

#[wray::actor]
impl Fragile {
    pub fn new() -> Fragile {
        Fragile
    }

    pub fn call(&mut self, req: Request) -> Response {
        if req.query_param("crash").is_some() {
            panic!("asked to crash");
        }
        if req.query_param("trap").is_some() {
            core::arch::wasm32::unreachable();
        }
        sleep_for(&req);
        Response::text(200, me())
    }
}

/// `/scaled`: autoscaled between 1 and 3 replicas on load.
pub struct Scaled;

#[wray::actor]
impl Scaled {
    pub fn new() -> Scaled {
        Scaled
    }

    pub fn call(&mut self, req: Request) -> Response {
        sleep_for(&req);
        Response::text(200, me())
    }
}

/// `/batched`: answers each request with the size of its batch.
pub struct Batched;

#[wray::actor]
impl Batched {
    pub fn new() -> Batched {
        Batched
    }

    pub fn call(&mut self, reqs: Vec<Request>) -> Vec<Response> {
        let n = reqs.len();
        reqs.iter().map(|r| Response::text(200, format!("{n} {}", r.query))).collect()
    }
}

/// `user_config` for `/configured`.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct Config {
    pub threshold: u32,
}

/// `/configured`: shows its `user_config`; `?sick=1` makes its health check
/// fail, after which the controller replaces it.
pub struct Configured {
    config: Option<Config>,
    sick: bool,
}

#[wray::actor]
impl Configured {
    pub fn new() -> Configured {
        Configured { config: None, sick: false }
    }

    pub fn reconfigure(&mut self, config: Config) {
        self.config = Some(config);
    }

    pub fn check_health(&mut self) -> Result<(), String> {
        if self.sick { Err("asked to be sick".to_string()) } else { Ok(()) }
    }

    pub fn call(&mut self, req: Request) -> Response {
        if req.query_param("sick").is_some() {
            self.sick = true;
        }
        Response::text(200, format!("{} {}", self.config.as_ref().map_or(0, |c| c.threshold), me()))
    }
}

/// `/where`: the node it runs on; needs the `worker` resource, so its
/// replicas live on worker nodes.
pub struct Where;

#[wray::actor]
impl Where {
    pub fn new() -> Where {
        Where
    }

    pub fn call(&mut self, req: Request) -> Response {
        sleep_for(&req);
        Response::text(200, wray::runtime_context().node_id)
    }
}

/// `/where-stream?n=N&ms=M`: the replica's node as `n` server-sent events,
/// `ms` apart — a generator method, streamed to the client from wherever
/// the replica runs.
pub struct WhereStream;

#[wray::actor]
impl WhereStream {
    pub fn new() -> WhereStream {
        WhereStream
    }

    pub fn call(&mut self, req: Request) -> impl Iterator<Item = Chunk> {
        let n: u32 = req.query_param("n").and_then(|v| v.parse().ok()).unwrap_or(1);
        let pause = Duration::from_millis(req.query_param("ms").and_then(|v| v.parse().ok()).unwrap_or(0));
        let node = wray::runtime_context().node_id;
        (0..n).map(move |i| {
            if i > 0 {
                std::thread::sleep(pause);
            }
            Chunk::event(&node)
        })
    }
}

/// Makes words one by one — a model's tokens, say: a generator method
/// called through a handle.
pub struct Words;

#[wray::actor]
impl Words {
    pub fn new() -> Words {
        Words
    }

    pub fn words(&mut self, n: u32, ms: u64) -> impl Iterator<Item = String> {
        (0..n).map(move |i| {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(ms));
            }
            format!("word{i}")
        })
    }

    /// As the `stamped_items` task: `n` items of `bytes` bytes, each with
    /// the time it was made.
    pub fn stamped(&mut self, n: u32, bytes: u32) -> impl Iterator<Item = (u64, Vec<u8>)> + '_ {
        (0..n).map(move |_| (crate::micros_now(), vec![7u8; bytes as usize]))
    }
}

/// `/relay?n=N&ms=M`: streams what `Words` yields through its handle, each
/// word as it comes — Ray Serve's ingress calling
/// `handle.options(stream=True)`.
pub struct Relay {
    words: serve::DeploymentHandle<Words>,
}

#[wray::actor]
impl Relay {
    pub fn new(words: serve::DeploymentHandle<Words>) -> Relay {
        Relay { words }
    }

    /// With `window=W`, instead: reads `Words::stamped` slowly through
    /// the handle, its window `W` (0: none), and answers one event with how
    /// many items it found made ahead at most.
    pub fn call(&mut self, req: Request) -> impl Iterator<Item = Chunk> + '_ {
        let n = req.query_param("n").and_then(|v| v.parse().ok()).unwrap_or(1);
        let ms = req.query_param("ms").and_then(|v| v.parse().ok()).unwrap_or(0);
        let measured = req.query_param("window").and_then(|w| w.parse::<u32>().ok()).map(|w| {
            let words = if w > 0 { self.words.with_generator_backpressure(w) } else { self.words.clone() };
            match crate::scenarios::most_ahead(words.stamped(n, 16)) {
                Ok(ahead) => Chunk::event(&format!("ahead {ahead}")),
                Err(e) => Chunk::event(&format!("error: {e}")),
            }
        });
        let relayed = measured.is_none().then(|| {
            self.words.words(n, ms).map(|word| match word.and_then(|w| wray::get(&w)) {
                Ok(w) => Chunk::event(&w),
                Err(e) => Chunk::event(&format!("error: {e}")),
            })
        });
        measured.into_iter().chain(relayed.into_iter().flatten())
    }
}

/// `/admin?threshold=N`: gives `Configured` a new config in place.
pub struct Admin;

#[wray::actor]
impl Admin {
    pub fn new() -> Admin {
        Admin
    }

    pub fn call(&mut self, req: Request) -> Response {
        let threshold = req.query_param("threshold").and_then(|t| t.parse().ok()).unwrap_or(0);
        let own = serve::reconfigure("Admin", &Config { threshold }).err().map(|e| e.to_string()).unwrap_or_default();
        match serve::reconfigure("Configured", &Config { threshold }) {
            Ok(()) => Response::text(200, format!("reconfigured; own: {own}")),
            Err(e) => Response::text(500, e.to_string()),
        }
    }
}

/// Fails in its constructor.
pub struct Broken;

#[wray::actor]
impl Broken {
    pub fn new() -> Result<Broken, String> {
        Err("the model file is missing".to_string())
    }

    pub fn call(&mut self, _req: Request) -> Response {
        Response::new(200)
    }
}

pub fn run(scenario: &str) -> Result<(), wray::Error> {
    match scenario {
        "serve-faults" => {
            let echo = serve::deployment::<Echo>().num_replicas(2).route_prefix("/echo").bind(());
            let slow = serve::deployment::<Slow>()
                .route_prefix("/slow")
                .max_ongoing_requests(1)
                .max_queued_requests(2)
                .request_timeout(Duration::from_millis(1500))
                .bind(());
            let fragile = serve::deployment::<Fragile>()
                .num_replicas(2)
                .max_restarts(0)
                .max_ongoing_requests(100)
                .idempotent()
                .route_prefix("/fragile")
                .bind(());
            let scaled = serve::deployment::<Scaled>()
                .autoscaling(Autoscaling {
                    min_replicas: 1,
                    max_replicas: 3,
                    initial_replicas: None,
                    target_ongoing_requests: 1.0,
                    upscale_delay: Duration::ZERO,
                    downscale_delay: Duration::from_millis(500),
                })
                .route_prefix("/scaled")
                .bind(());
            let batched =
                serve::deployment::<Batched>().route_prefix("/batched").batch(8, Duration::from_millis(200)).bind(());
            let configured = serve::deployment::<Configured>()
                .user_config(&Config { threshold: 7 })
                .health_check_period(Duration::from_millis(100))
                .route_prefix("/configured")
                .bind(());
            let admin = serve::deployment::<Admin>().route_prefix("/admin").bind(());
            let app = echo.with(slow).with(fragile).with(scaled).with(batched).with(configured).with(admin);
            serve::run("faults", app)?;
            println!("serve::run returned");
        }
        "serve-remote" => {
            let d = serve::deployment::<Where>()
                .num_replicas(2)
                .resource("worker", 0.5)
                .max_ongoing_requests(20)
                .idempotent()
                .route_prefix("/where")
                .bind(());
            serve::run("remote", d)?;
        }
        "serve-relay" => {
            // Reached only through its handle: no route, so it needs no
            // `call` (Ray Serve's model behind an ingress).
            let words = serve::deployment::<Words>().bind(());
            let relay = serve::deployment::<Relay>().route_prefix("/relay").bind((words.handle(),));
            serve::run("relay", relay.with(words))?;
        }
        "serve-remote-stream" => {
            let d = serve::deployment::<WhereStream>().resource("worker", 1.0).route_prefix("/where-stream").bind(());
            serve::run("remote-stream", d)?;
        }
        "serve-broken" => serve::run("broken", serve::deployment::<Broken>().bind(()))?,
        "serve-bad-bound" => {
            let d = serve::deployment::<Echo>().num_replicas(5000).bind(());
            serve::run("bad", d)?
        }
        "serve-no-method" => {
            let d = serve::deployment::<Echo>().method("predict").bind(());
            serve::run("bad", d)?
        }
        "serve-bad-route" => {
            let d = serve::deployment::<Echo>().route_prefix("echo").bind(());
            serve::run("bad", d)?
        }
        other => panic!("unknown scenario {other}"),
    }
    Ok(())
}
