//! `wray serve`: the real binary serving real components, driven with
//! plain HTTP over TCP (and curl for HTTP/2).

use crate::util::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// A `wray serve run` process on a free port; killed if the test fails.
struct Served {
    child: Option<Child>,
    addr: String,
    stderr: std::sync::Mutex<Receiver<String>>,
}

impl Served {
    fn start(job: &Path, flags: &[&str], args: &[&str]) -> Served {
        let mut cmd = Command::new(wray_bin());
        cmd.args(["serve", "run", "--port", "0"]).args(flags).arg(job);
        if !args.is_empty() {
            cmd.arg("--").args(args);
        }
        cmd.env("XDG_CACHE_HOME", target_dir().join("test-cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn wray serve run");
        let stderr = lines_of(child.stderr.take().expect("stderr"));
        let deadline = Instant::now() + Duration::from_secs(120);
        let addr = loop {
            match stderr.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some(a) = line.strip_prefix("wray: serving HTTP on http://") {
                        break a.split_whitespace().next().unwrap_or("").to_string();
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("wray serve run did not start serving: {:?}", child.wait_with_output());
                }
            }
        };
        let served = Served { child: Some(child), addr, stderr: std::sync::Mutex::new(stderr) };
        // The address prints before the application is up: wait for it.
        wait_until(
            Duration::from_secs(120),
            || served.get("/-/routes").body.len() > 2,
            || "the application never took its routes".into(),
        );
        served
    }

    fn request(&self, raw: &[u8]) -> Reply {
        request(&self.addr, raw)
    }

    fn get(&self, path: &str) -> Reply {
        self.request(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
    }

    fn post(&self, path: &str, body: &str) -> Reply {
        self.request(
            format!(
                "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    }

    fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.get("/-/status").body).expect("/-/status is JSON")
    }

    /// The `/-/status` entry of `deployment`.
    fn deployment(&self, deployment: &str) -> serde_json::Value {
        self.status()["applications"][0]["deployments"]
            .as_array()
            .and_then(|ds| ds.iter().find(|d| d["name"] == deployment).cloned())
            .unwrap_or_default()
    }

    /// (requests running on replicas, requests queued) of `deployment`.
    fn load_of(&self, deployment: &str) -> (u64, u64) {
        let d = self.deployment(deployment);
        let running =
            d["replicas"].as_array().map_or(0, |rs| rs.iter().filter_map(|r| r["ongoing_requests"].as_u64()).sum());
        (running, d["queued_requests"].as_u64().unwrap_or(0))
    }

    /// Replicas of `deployment` that are running.
    fn running(&self, deployment: &str) -> Vec<String> {
        let d = self.deployment(deployment);
        d["replicas"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .filter(|r| r["state"] == "RUNNING")
                    .map(|r| r["actor"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `/configured` answers with its user config's threshold (7) and its
    /// replica; once `?sick=1` makes that replica fail its health checks,
    /// another one answers with the same threshold.
    fn a_sick_replica_is_replaced(&self) {
        let first = self.get("/configured").body;
        let (threshold, replica) = first.split_once(' ').expect("threshold and replica");
        assert_eq!(threshold, "7", "{first}");
        self.get("/configured?sick=1");
        wait_until(
            Duration::from_secs(20),
            || {
                let r = self.get("/configured").body;
                r.starts_with("7 ") && !r.ends_with(replica)
            },
            || format!("the sick replica was not replaced: {}", self.status()),
        );
    }

    /// Ctrl-C, then what the process printed and how it exited.
    fn interrupt(mut self) -> (Output, Vec<String>) {
        let child = self.child.take().expect("running");
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let out = wait_for_exit(child, "wray serve run after SIGINT", Duration::from_secs(60));
        let lines: Vec<String> = self.stderr.lock().unwrap().try_iter().collect();
        (out, lines)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Clients calling `ask` in a loop on `threads` threads while `during`
/// runs; returns every answer. `during` gets a [`Load`] to wait for more
/// answers instead of waiting for time. The clients stop when `during`
/// returns or fails (a failed assertion must not leave the scope waiting
/// for them forever).
fn under_load<T: Send>(threads: usize, ask: impl Fn() -> T + Sync, during: impl FnOnce(&Load)) -> Vec<T> {
    use std::sync::atomic::Ordering::Relaxed;
    let load = Load { stop: Default::default(), answered: Default::default() };
    std::thread::scope(|s| {
        let clients: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut seen = Vec::new();
                    while !load.stop.load(Relaxed) {
                        seen.push(ask());
                        load.answered.fetch_add(1, Relaxed);
                    }
                    seen
                })
            })
            .collect();
        struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Relaxed);
            }
        }
        let stop = StopOnDrop(&load.stop);
        during(&load);
        drop(stop);
        clients.into_iter().flat_map(|c| c.join().unwrap()).collect()
    })
}

/// The clients of [`under_load`].
struct Load {
    stop: std::sync::atomic::AtomicBool,
    answered: std::sync::atomic::AtomicUsize,
}

impl Load {
    /// Waits until the clients have had `n` more answers.
    #[track_caller]
    fn more_answers(&self, n: usize) {
        let target = self.answered.load(std::sync::atomic::Ordering::Relaxed) + n;
        wait_until(
            Duration::from_secs(60),
            || self.answered.load(std::sync::atomic::Ordering::Relaxed) >= target,
            || format!("the clients did not get {n} more answers"),
        );
    }
}

/// The wine model as the test computes it from the saved JSON: standardise,
/// dense layers, ReLU between, sigmoid at the end.
fn expected_probability(model: &serde_json::Value, x: &[f64]) -> f64 {
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    let mut h: Vec<f64> =
        x.iter().enumerate().map(|(i, v)| (v - f(&model["mean"][i])) / f(&model["scale"][i])).collect();
    let layers = model["layers"].as_array().unwrap();
    for (l, layer) in layers.iter().enumerate() {
        let (fan_in, fan_out) = (layer[0].as_u64().unwrap() as usize, layer[1].as_u64().unwrap() as usize);
        let mut out: Vec<f64> = (0..fan_out).map(|j| f(&layer[3][j])).collect();
        for i in 0..fan_in {
            for (j, o) in out.iter_mut().enumerate() {
                *o += h[i] * f(&layer[2][i * fan_out + j]);
            }
        }
        h = out
            .into_iter()
            .map(|v| if l + 1 == layers.len() { 1.0 / (1.0 + (-v).exp()) } else { v.max(0.0) })
            .collect();
    }
    h[0]
}

/// The seeds' wine model, trained and saved by `wine_mlp --save`, answers
/// at `/predict`, through the preprocessor deployment at `/composed`, and
/// batched at `/batched`, each exactly as the saved weights say; bad input
/// gets a 400 naming the problem; `wray serve status` shows the replicas;
/// Ctrl-C ends the server with status 0 and the access log has every
/// request.
#[test]
fn the_wine_model_answers_at_predict_composed_and_batched() {
    let g = guests();
    let dir = tempfile::tempdir().unwrap();
    let models = format!("{}::/models", dir.path().display());
    let data = format!("{}::/data", workspace().join("examples/data").display());
    run_ok(&g.wine_mlp, &["--dir", &data, "--dir", &models], &["--epochs", "10", "--save", "/models/wine.json"], &[]);
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("wine.json")).unwrap()).unwrap();
    let served = Served::start(&g.serve_wine, &["--dir", &models], &["--model", "/models/wine.json"]);
    let csv = std::fs::read_to_string(workspace().join("examples/data/winequality-red.csv")).unwrap();
    for line in csv.lines().skip(1).step_by(97).take(8) {
        let x: Vec<f64> = line.split(',').take(11).map(|v| v.trim().parse().unwrap()).collect();
        let p = expected_probability(&model, &x);
        let body = serde_json::json!({ "features": x }).to_string();
        for route in ["/predict", "/composed", "/batched"] {
            let r = served.post(route, &body);
            assert_eq!(r.status, 200, "{route}: {r:?}");
            let got: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            let class = u64::from(p >= 0.5);
            assert_eq!(got["class"].as_u64(), Some(class), "{route}: {r:?}");
            let prob = got["probability"].as_f64().unwrap();
            let want = if class == 1 { p } else { 1.0 - p };
            assert!((prob - want).abs() < 1e-4, "{route}: probability {prob}, the saved model says {want}");
        }
    }
    // Named columns work too.
    let named: serde_json::Map<String, serde_json::Value> = model["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n.as_str().unwrap().to_string(), serde_json::json!(1.0)))
        .collect();
    assert_eq!(served.post("/predict", &serde_json::Value::Object(named).to_string()).status, 200);
    let short = served.post("/predict", r#"{"features": [1, 2]}"#);
    assert_eq!(short.status, 400, "{short:?}");
    assert!(short.body.contains("array of 11 numbers"), "{short:?}");
    let garbage = served.post("/composed", "not json");
    assert_eq!(garbage.status, 400, "{garbage:?}");
    assert!(garbage.body.contains("bad JSON body"), "{garbage:?}");

    let status = wray(&["serve", "status", "--server", &served.addr]);
    assert_code(&status, 0);
    let text = stdout(&status);
    assert!(text.contains("application wine"), "{text}");
    assert!(text.contains("deployment WineModel at /predict: HEALTHY, 2 of 2 replicas running"), "{text}");
    assert!(text.contains("deployment Preprocessor at /composed: HEALTHY"), "{text}");

    let (out, log) = served.interrupt();
    assert_code(&out, 0);
    assert!(log.iter().any(|l| l.contains("\"POST /composed HTTP/1.1\" 400")), "{log:?}");
    assert_eq!(log.iter().filter(|l| l.contains("\"POST /predict HTTP/1.1\" 200")).count(), 9, "{log:?}");
}

/// Unknown routes get 404, malformed HTTP 400, oversized headers 431 and
/// bodies 413; clients that never finish their headers hold no replica and
/// do not slow anyone else; HTTP/2 works on the same port; the server binds
/// 127.0.0.1 by default.
#[test]
fn bad_and_slow_clients_get_clear_answers_and_hold_nothing() {
    let served = Served::start(&guests().testjob, &["--max-body", "1KiB"], &["serve-faults"]);
    assert!(served.addr.starts_with("127.0.0.1:"), "{}", served.addr);
    let r = served.get("/nowhere");
    assert_eq!((r.status, r.body.trim()), (404, "no route for /nowhere"));
    let r = served.get("/echo/sub?a=1");
    assert_eq!(r.status, 200, "{r:?}");
    let echo: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!((echo["path"].as_str(), echo["query"].as_str()), (Some("/echo/sub"), Some("a=1")));
    assert_eq!(served.request(b"NOT HTTP AT ALL\r\n\r\n").status, 400);
    let big_header =
        format!("GET /echo HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "a".repeat(40_000));
    assert_eq!(served.request(big_header.as_bytes()).status, 431);
    let r = served.post("/echo", &"x".repeat(2000));
    assert_eq!(r.status, 413, "{r:?}");
    // A chunked body has no length up front: it is cut off at the limit.
    let chunk = "y".repeat(800);
    let chunked = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n320\r\n{chunk}\r\n320\r\n{chunk}\r\n0\r\n\r\n"
    );
    assert_eq!(served.request(chunked.as_bytes()).status, 413);
    let r = served.post("/echo", &"z".repeat(1000));
    assert_eq!(serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["body_len"], 1000, "{r:?}");

    // Slowloris: connections that send half a request head and stop.
    let slow: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(&served.addr).unwrap();
            s.write_all(b"GET /echo HTTP/1.1\r\nHost: t\r\nX-Slow: ").unwrap();
            s
        })
        .collect();
    let start = Instant::now();
    for _ in 0..20 {
        assert_eq!(served.get("/echo").status, 200);
    }
    assert!(start.elapsed() < Duration::from_secs(5), "20 requests took {:?} beside slow clients", start.elapsed());
    drop(slow);

    // HTTP/2 (cleartext, prior knowledge) on the same port.
    let curl = Command::new("curl")
        .args([
            "-s",
            "--http2-prior-knowledge",
            "-w",
            "\n%{http_version} %{http_code}",
            &format!("http://{}/echo", served.addr),
        ])
        .output()
        .expect("curl (scripts/setup installs it)");
    let text = String::from_utf8_lossy(&curl.stdout);
    assert!(text.trim_end().ends_with("2 200"), "{text}");
    assert!(text.contains("\"method\":\"GET\""), "{text}");
}

/// A deployment at capacity queues, then refuses with 503 and
/// `Retry-After`; a request past its deployment's timeout gets 504; Ctrl-C
/// lets a request in flight finish, then `serve::run` returns and the
/// process exits 0.
#[test]
fn busy_deployments_queue_then_refuse_and_slow_requests_time_out() {
    let served = Served::start(&guests().testjob, &[], &["serve-faults"]);
    // One running and two queued: the other two are refused at once.
    let slow = |ms: u32| served.get(&format!("/slow?ms={ms}"));
    let at = |load: (u64, u64)| {
        wait_until(
            Duration::from_secs(10),
            || served.load_of("Slow") == load,
            || format!("/slow never reached {load:?}"),
        )
    };
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let first = s.spawn(|| slow(800));
        at((1, 0));
        let queued: Vec<_> = (0..2).map(|_| s.spawn(|| slow(200))).collect();
        at((1, 2));
        let mut replies = vec![slow(200), slow(200)];
        replies.push(first.join().unwrap());
        replies.extend(queued.into_iter().map(|q| q.join().unwrap()));
        replies
    });
    let mut codes: Vec<u16> = replies.iter().map(|r| r.status).collect();
    codes.sort_unstable();
    assert_eq!(codes, [200, 200, 200, 503, 503], "{replies:?}");
    let refused = replies.iter().find(|r| r.status == 503).unwrap();
    assert_eq!(refused.header("retry-after"), Some("1"), "{refused:?}");
    assert!(refused.body.contains("at capacity"), "{refused:?}");
    let r = served.get("/slow?ms=3000");
    assert_eq!(r.status, 504, "{r:?}");
    assert!(r.body.contains("did not answer within 1500 ms"), "{r:?}");

    // A request in flight when Ctrl-C comes still gets its answer.
    wait_until(Duration::from_secs(10), || served.get("/slow?ms=1").status == 200, || "/slow never freed".into());
    let addr = served.addr.clone();
    let in_flight = std::thread::spawn(move || {
        request(&addr, b"GET /slow?ms=800 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    });
    wait_until(Duration::from_secs(10), || served.load_of("Slow").0 == 1, || "the request never reached /slow".into());
    let (out, _) = served.interrupt();
    assert_eq!(in_flight.join().unwrap().status, 200);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("serve::run returned"), "{}", stdout(&out));
}

/// Under load, a request that panics or traps its replica fails with 500
/// and every other request succeeds (requests the dead replica had queued
/// are idempotent here, so they go to the other replica); the controller
/// brings the deployment back to two replicas, saying why it replaced one.
#[test]
fn a_crashing_replica_fails_only_its_own_request_and_is_replaced() {
    let served = Served::start(&guests().testjob, &[], &["serve-faults"]);
    // Routes are served once one replica runs; the second may still be
    // starting (seen on a loaded machine).
    wait_until(
        Duration::from_secs(20),
        || served.running("Fragile").len() == 2,
        || format!("Fragile never ran two replicas: {}", served.status()),
    );
    let before = served.running("Fragile");
    // One fault at a time: the second comes once the first replica's
    // replacement runs (two dead at once would fail the retries too).
    let replaced = |known: &[String]| {
        wait_until(
            Duration::from_secs(20),
            || {
                let now = served.running("Fragile");
                now.len() == 2 && now.iter().any(|a| !known.contains(a))
            },
            || format!("Fragile was not brought back to two replicas: {}", served.status()),
        );
        served.running("Fragile")
    };
    let answers = under_load(
        6,
        || served.get("/fragile?ms=10"),
        |load| {
            load.more_answers(20);
            let crash = served.get("/fragile?crash=1");
            assert_eq!(crash.status, 500, "{crash:?}");
            assert!(crash.body.contains("asked to crash"), "{crash:?}");
            let after_crash = replaced(&before);
            load.more_answers(20);
            let trap = served.get("/fragile?trap=1");
            assert_eq!(trap.status, 500, "{trap:?}");
            replaced(&after_crash);
            load.more_answers(20);
        },
    );
    let ok = answers.iter().filter(|r| r.status == 200).count();
    let failed: Vec<&Reply> = answers.iter().filter(|r| r.status != 200).collect();
    assert!(failed.is_empty(), "{} requests failed beside the crashes: {failed:?}", failed.len());
    assert!(ok > 50, "{ok}");
    assert_eq!(served.get("/fragile").status, 200);
    let status = served.status().to_string();
    assert!(status.contains("no restarts left"), "{status}");
}

/// Autoscaling adds replicas while requests pile up and removes them once
/// the load is gone; batches gather concurrent requests; every replica gets
/// its `user_config` through `reconfigure`; a replica whose health check
/// fails is replaced by one that is configured again.
#[test]
fn autoscaling_batching_reconfiguration_and_health_checks() {
    let served = Served::start(&guests().testjob, &[], &["serve-faults"]);
    assert_eq!(served.running("Scaled").len(), 1);
    let statuses = under_load(
        6,
        || served.get("/scaled?ms=50").status,
        |_| {
            wait_until(
                Duration::from_secs(20),
                || served.running("Scaled").len() == 3,
                || format!("Scaled never reached 3 replicas: {}", served.status()),
            );
        },
    );
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    wait_until(
        Duration::from_secs(20),
        || served.running("Scaled").len() == 1,
        || format!("Scaled did not scale back to 1: {}", served.status()),
    );

    let sizes: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let served = &served;
                s.spawn(move || served.get(&format!("/batched?i{i}")))
            })
            .collect();
        hs.into_iter()
            .map(|h| {
                let r = h.join().unwrap();
                assert_eq!(r.status, 200, "{r:?}");
                r.body
            })
            .collect()
    });
    for (i, b) in sizes.iter().enumerate() {
        assert!(b.ends_with(&format!(" i{i}")), "each request gets its own answer: {sizes:?}");
    }
    let largest = sizes.iter().map(|b| b.split(' ').next().unwrap().parse::<u32>().unwrap()).max().unwrap();
    assert!(largest > 1, "no batch held more than one request: {sizes:?}");

    served.a_sick_replica_is_replaced();

    // A new config reaches the running replica in place: same actor, new
    // threshold; a replica may not reconfigure its own deployment.
    let before = served.get("/configured").body;
    let actor = before.split_once(' ').unwrap().1.to_string();
    let r = served.get("/admin?threshold=9");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("cannot reconfigure its own deployment"), "{r:?}");
    assert_eq!(served.get("/configured").body, format!("9 {actor}"));
}

/// An application that cannot start fails `wray serve run` with the
/// reason; outside `wray serve` an application says how to run it; a port
/// in use is a usage error naming the address.
#[test]
fn applications_that_cannot_start_say_why() {
    let job = guests().testjob.clone();
    let job = path(&job);
    let serve = |scenario: &str| wray(&["serve", "run", "--port", "0", job, "--", scenario]);
    let out = serve("serve-broken");
    assert_code(&out, 1);
    assert!(stderr(&out).contains("the model file is missing"), "{}", stderr(&out));
    let out = serve("serve-bad-bound");
    assert_code(&out, 1);
    assert!(stderr(&out).contains("5000 replicas; at most 1024"), "{}", stderr(&out));
    let out = serve("serve-no-method");
    assert_code(&out, 1);
    assert!(stderr(&out).contains("has no remote method \"predict\" (it has: call)"), "{}", stderr(&out));
    let out = serve("serve-bad-route");
    assert_code(&out, 1);
    assert!(stderr(&out).contains("must start with '/'"), "{}", stderr(&out));
    let out = wray(&["run", job, "--", "serve-broken"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("does not serve HTTP: run the application with `wray serve run"), "{}", stderr(&out));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = wray(&["serve", "run", "--port", &port, job, "--", "serve-faults"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains(&format!("cannot listen for HTTP on 127.0.0.1:{port}")), "{}", stderr(&out));
}

/// The smallest example: a greeting built from the query, and the no-op
/// the benchmark measures, over keep-alive HTTP/1.1.
#[test]
fn the_hello_example_greets_and_its_noop_answers() {
    let served = Served::start(&guests().serve_hello, &[], &["--greeting", "Hi"]);
    let r = served.get("/hello?name=w%20ray");
    assert_eq!((r.status, r.body.as_str()), (200, r#"{"message":"Hi, w ray!"}"#));
    // Several requests on one kept-alive connection.
    let mut s = TcpStream::connect(&served.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut seen = String::new();
    for _ in 0..3 {
        s.write_all(b"GET /noop HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert_eq!(seen.matches("HTTP/1.1 200 OK").count(), 3, "{seen}");
    assert_eq!(seen.matches("{\"ok\": true}").count(), 3, "{seen}");
}

/// A streamed HTTP/1.1 response read as it arrives: the head, the body
/// (de-chunked), when each event (`data: ...`) arrived after the request
/// was sent, and whether the body ended properly (the last, empty chunk).
struct Stream {
    head: String,
    body: String,
    arrived: Vec<(String, Duration)>,
    complete: bool,
}

/// Sends `GET path` and reads the streamed answer; `stop_after` gives up
/// (drops the connection) once that event has arrived.
fn stream(addr: &str, path: &str, stop_after: Option<&str>) -> Stream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let sent = Instant::now();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let (mut raw, mut arrived) = (Vec::new(), Vec::new());
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        for line in String::from_utf8_lossy(&buf[..n]).lines().filter(|l| l.starts_with("data: ")) {
            arrived.push((line.to_string(), sent.elapsed()));
        }
        if stop_after.is_some_and(|e| arrived.iter().any(|(l, _)| l == e)) {
            break;
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, mut rest) = text.split_once("\r\n\r\n").map(|(h, b)| (h.to_string(), b)).unwrap_or_default();
    let (mut body, mut complete) = (String::new(), false);
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 {
            complete = after == "\r\n";
            break;
        }
        let Some(data) = after.get(..n) else { break };
        body.push_str(data);
        rest = after.get(n + 2..).unwrap_or("");
    }
    Stream { head, body, arrived, complete }
}

/// A deployment whose method is a generator of `Chunk`s streams its answer
/// (`serve_hello`'s `/countdown`, server-sent events): each event reaches
/// the client as it is yielded, not at the end; a generator that fails
/// midway cuts the response off (no final chunk), so the client sees it
/// incomplete; a client that goes away stops the generator (the replica,
/// which runs one call at a time, answers the next request at once instead
/// of after the rest of a 50 s countdown); HTTP/2 streams the same; a gap
/// between chunks longer than the request timeout cuts the stream.
#[test]
fn a_generator_deployment_streams_its_answer_as_it_is_made() {
    let served = Served::start(&guests().serve_hello, &[], &[]);
    let s = stream(&served.addr, "/countdown?from=3&pause_ms=400", None);
    assert!(s.head.starts_with("HTTP/1.1 200"), "{}", s.head);
    assert!(s.head.to_ascii_lowercase().contains("content-type: text/event-stream"), "{}", s.head);
    assert!(s.head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{}", s.head);
    assert_eq!(s.body, "data: 3\n\ndata: 2\n\ndata: 1\n\ndata: 0\n\n");
    assert!(s.complete);
    let when = |e: &str| s.arrived.iter().find(|(l, _)| l == e).map(|(_, t)| *t).unwrap();
    // Three pauses of 400 ms lie between the first event and the last.
    assert!(when("data: 0") - when("data: 3") > Duration::from_millis(900), "{:?}", s.arrived);

    let cut = stream(&served.addr, "/countdown?from=3&pause_ms=10&fail_at=1", None);
    assert!(cut.head.starts_with("HTTP/1.1 200"), "{}", cut.head);
    assert_eq!(cut.body, "data: 3\n\ndata: 2\n\n");
    assert!(!cut.complete, "a failed stream must not end like a whole one");

    let gone = stream(&served.addr, "/countdown?from=1000&pause_ms=50", Some("data: 999"));
    drop(gone);
    let start = Instant::now();
    let next = stream(&served.addr, "/countdown?from=0", None);
    assert_eq!((next.body.as_str(), next.complete), ("data: 0\n\n", true));
    assert!(start.elapsed() < Duration::from_secs(10), "the abandoned countdown went on: {:?}", start.elapsed());

    // A client that stops reading a large stream holds the replica back:
    // its generator pauses once 16 chunks wait unread beside the proxy's 16
    // read ahead, rather than yielding all 1,001 (64 MiB) into the store.
    // Read on afterwards, the stream resumes and ends whole.
    let pid = served.child.as_ref().expect("running").id();
    let before = rss(pid);
    let mut slow = TcpStream::connect(&served.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    slow.write_all(b"GET /countdown?from=1000&pause_ms=0&pad=65536 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 4096];
    let n = slow.read(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    // Watched for 3 s while the client reads nothing: the memory never
    // grows past the bound.
    let grown = || rss(pid).saturating_sub(before);
    let outgrown = holds_within(Duration::from_secs(3), || grown() >= 32 << 20);
    assert!(!outgrown, "{} MiB more resident beside a client that reads nothing", grown() >> 20);
    let mut all = first[..n].to_vec();
    slow.read_to_end(&mut all).unwrap();
    let events = String::from_utf8_lossy(&all).matches("data: ").count();
    let end = String::from_utf8_lossy(&all[all.len().saturating_sub(40)..]).into_owned();
    assert!(events == 1001 && end.ends_with("\n\n\r\n0\r\n\r\n"), "{events} events, ending {end:?}");

    let curl = Command::new("curl")
        .args(["-sN", "--http2-prior-knowledge", "-w", "%{http_version}"])
        .arg(format!("http://{}/countdown?from=2&pause_ms=10", served.addr))
        .output()
        .expect("curl (scripts/setup installs it)");
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "data: 2\n\ndata: 1\n\ndata: 0\n\n2");
    drop(served);

    // The request timeout bounds each gap between chunks too: a countdown
    // that pauses 3 s under a 1 s timeout is cut after its first event.
    let served = Served::start(&guests().serve_hello, &["--request-timeout", "1s"], &[]);
    let slow = stream(&served.addr, "/countdown?from=2&pause_ms=3000", None);
    assert_eq!((slow.body.as_str(), slow.complete), ("data: 2\n\n", false));
    assert!(slow.arrived.len() == 1 && slow.arrived[0].1 < Duration::from_secs(3), "{:?}", slow.arrived);
}

/// On a cluster: the head's proxy (`wray start --head --serve-port`) serves
/// what `wray serve deploy` sends; deploying a new version of the
/// application while clients keep calling it rolls over without one failed
/// request (the old version's job ends by itself); `wray serve shutdown`
/// stops the application, whose job ends as STOPPED.
#[test]
fn a_deployed_application_rolls_to_a_new_version_without_dropping_a_request() {
    let head = crate::cluster::Head::start_with_flags("2", &["--serve-port", "0"]);
    let server = head.serve.clone().expect("the head prints its serve address");
    let hello = guests().serve_hello.clone();
    let deploy = |greeting: &str| {
        let out = head.serve_deploy(&hello, &["--greeting", greeting]);
        assert_code(&out, 0);
        stdout(&out).trim().to_string()
    };
    let v1 = deploy("v1");
    assert!(v1.starts_with("job-"), "{v1}");
    let greet = || request(&server, b"GET /hello?name=x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(greet().body, r#"{"message":"v1, x!"}"#);

    let mut v2 = String::new();
    let answers = under_load(
        4,
        || {
            let r = greet();
            (r.status, r.body)
        },
        |load| {
            load.more_answers(10);
            v2 = deploy("v2");
            wait_until(Duration::from_secs(30), || greet().body.contains("v2"), || "v2 never answered".into());
            load.more_answers(10);
        },
    );
    let failed: Vec<_> = answers.iter().filter(|(status, _)| *status != 200).collect();
    assert!(failed.is_empty(), "{} of {} requests failed during the roll: {failed:?}", failed.len(), answers.len());
    assert!(answers.iter().any(|(_, b)| b.contains("v1")) && answers.iter().any(|(_, b)| b.contains("v2")));
    let status =
        |id: &str| stdout(&head.wray(&["job", "status", "--address", &head.address, "--token", &head.token, id]));
    wait_until(Duration::from_secs(20), || status(&v1).contains("SUCCEEDED"), || status(&v1));

    let out =
        head.wray(&["serve", "shutdown", "--address", &head.address, "--token", &head.token, "--server", &server]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("stopped 1 application(s)"), "{}", stdout(&out));
    wait_until(Duration::from_secs(20), || status(&v2).contains("STOPPED"), || status(&v2));
    assert_eq!(request(&server, b"GET /-/routes HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").body, "{}");
}

/// A standard `wasi:http/proxy` component (no wray in it) is served as it
/// is: each request in a fresh instance, GET and a POST body, HTTP/2, its
/// instances in `/-/status`; `wray run` says to serve it instead.
#[test]
fn a_standard_wasi_http_component_is_served_as_it_is() {
    let component = guests().serve_wasi_http.clone();
    let served = Served::start(&component, &["--instances", "2"], &[]);
    let r = served.get("/hello");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-served-by"), Some("wasi-http-example"), "{r:?}");
    assert!(r.body.contains("hello from a wasi:http component: GET /hello"), "{r:?}");
    let r = served.request(
        b"POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: 18\r\nConnection: close\r\n\r\nto be or not to be",
    );
    assert!(r.body.contains(r#"{"bytes":18,"words":6}"#), "{r:?}");
    // Concurrent requests share the two instances' slots.
    let codes: Vec<u16> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..12)
            .map(|i| {
                let served = &served;
                s.spawn(move || served.get(&format!("/n{i}")).status)
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(codes.iter().all(|c| *c == 200), "{codes:?}");
    let status = served.status();
    let d = &status["applications"][0]["deployments"][0];
    assert_eq!((d["target_replicas"].as_u64(), d["handled"].as_u64()), (Some(2), Some(14)), "{status}");
    assert_eq!(status["applications"][0]["kind"], "wasi:http component", "{status}");
    let curl = Command::new("curl")
        .args(["-s", "--http2-prior-knowledge", "-w", "\n%{http_version}", &format!("http://{}/two", served.addr)])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&curl.stdout);
    assert!(text.contains("GET /two") && text.trim_end().ends_with('2'), "{text}");
    let (out, _) = served.interrupt();
    assert_code(&out, 0);

    let out = wray(&["run", path(&component)]);
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("is a wasi:http component, not a wray job: serve it with `wray serve run`"),
        "{}",
        stderr(&out)
    );
}

/// `wray serve deploy` of a standard `wasi:http` component on a cluster:
/// the head's proxy serves it as a job of its own (listed, logged,
/// stopped), its requests answered by the head and the workers in turn; a
/// second deployment of the same component rolls over under load without a
/// failed request, and so does a worker's death; bad combinations are
/// refused by name.
#[test]
fn a_wasi_http_component_is_deployed_to_a_cluster_and_rolled_over() {
    let head = crate::cluster::Head::start_with_flags("1", &["--serve-port", "0"]);
    let server = head.serve.clone().expect("the head prints its serve address");
    let first = head.add_worker_flags("1", &[]);
    let second = head.add_worker_flags("1", &[]);
    let workers = [crate::cluster::node_id(first), crate::cluster::node_id(second)];
    let component = guests().serve_wasi_http.clone();
    let cluster = ["--address", head.address.as_str(), "--token", head.token.as_str(), "--server", server.as_str()];
    // `wray serve SUB` against the cluster, then `rest`.
    let serve = |sub: &str, rest: &[&str]| {
        let mut all = vec!["serve", sub];
        all.extend_from_slice(&cluster);
        all.extend_from_slice(rest);
        head.wray(&all)
    };
    let deploy = |flags: &[&str]| serve("deploy", &[flags, &[path(&component)]].concat());
    let out = deploy(&["--instances", "2", "--route-prefix", "/api"]);
    assert_code(&out, 0);
    let v1 = stdout(&out).trim().to_string();
    assert!(v1.starts_with("job-"), "{v1}");
    let get =
        |p: &str| request(&server, format!("GET {p} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes());
    let r = get("/api/hello");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("hello from a wasi:http component: GET /api/hello"), "{r:?}");
    assert_eq!(get("/elsewhere").status, 404);
    let status = || -> serde_json::Value { serde_json::from_str(&get("/-/status").body).expect("status is JSON") };
    let s = status();
    assert_eq!(s["applications"][0]["job"], v1.as_str(), "{s}");
    assert_eq!(s["applications"][0]["deployments"][0]["target_replicas"], 2, "{s}");
    let logs = stdout(&head.wray(&["job", "logs", "--address", &head.address, "--token", &head.token, &v1]));
    assert!(
        logs.contains("serving serve_wasi_http.wasm (a wasi:http component) at /api, 2 request(s) at once"),
        "{logs}"
    );
    assert!(logs.contains("on the head and its workers in turn"), "{logs}");
    // The head and both workers take turns: of 30 requests, each worker
    // answers 10, bodies and headers intact.
    for i in 0..30 {
        let r = request(
            &server,
            format!("POST /api/count HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\nConnection: close\r\n\r\nn {i:<7}")
                .as_bytes(),
        );
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.body.contains(r#"{"bytes":9,"words":2}"#), "{r:?}");
        assert_eq!(r.header("x-served-by"), Some("wasi-http-example"), "{r:?}");
    }
    let s = status();
    let elsewhere = &s["applications"][0]["answered_elsewhere"];
    for w in &workers {
        assert_eq!(elsewhere[w.as_str()], 10, "{s}");
    }
    assert_eq!(s["applications"][0]["nodes"], 3, "{s}");

    // Refused, by name: running one as a job, arguments, component flags
    // for a wray job, a prefix held by another component.
    let out = head.wray(&["job", "submit", "--address", &head.address, "--token", &head.token, path(&component)]);
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("is a wasi:http component, not a wray job: deploy it with `wray serve deploy`"),
        "{}",
        stderr(&out)
    );
    let out = serve("deploy", &[path(&component), "--", "x"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("is a wasi:http component: it takes no arguments after --"), "{}", stderr(&out));
    let out = serve("deploy", &["--instances", "3", path(&guests().serve_hello)]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("are for wasi:http components"), "{}", stderr(&out));
    let out = deploy(&["--instances", "0"]);
    assert!(!out.status.success() && stderr(&out).contains("concurrency must be 1 to"), "{}", stderr(&out));

    // A new version (here: three instances) under load.
    let mut v2 = String::new();
    let answers = under_load(
        4,
        || get("/api/load").status,
        |load| {
            load.more_answers(20);
            // On the head's machine no flag names the cluster or its proxy:
            // both are read from the head's data directory.
            let out = head.wray(&["serve", "deploy", "--instances", "3", "--route-prefix", "/api", path(&component)]);
            assert_code(&out, 0);
            v2 = stdout(&out).trim().to_string();
            load.more_answers(20);
        },
    );
    assert!(answers.iter().all(|s| *s == 200), "requests failed during the roll: {answers:?}");
    let s = status();
    assert_eq!(s["applications"].as_array().map(Vec::len), Some(1), "{s}");
    assert_eq!(s["applications"][0]["job"], v2.as_str(), "{s}");
    assert_eq!(s["applications"][0]["deployments"][0]["target_replicas"], 3, "{s}");
    let job_status =
        |id: &str| stdout(&head.wray(&["job", "status", "--address", &head.address, "--token", &head.token, id]));
    wait_until(Duration::from_secs(20), || job_status(&v1).contains("SUCCEEDED"), || job_status(&v1));

    // A worker dies under load: its turns fail over to the head (GET may
    // run twice), so no request fails, and the dead worker drops out.
    let answers = under_load(
        4,
        || get("/api/load").status,
        |load| {
            load.more_answers(20);
            crate::cluster::kill_and_wait(first);
            load.more_answers(40);
            wait_until(Duration::from_secs(20), || status()["applications"][0]["nodes"] == 2, || status().to_string());
            load.more_answers(20);
        },
    );
    assert!(answers.iter().all(|s| *s == 200), "requests failed when a worker died: {answers:?}");

    let out = serve("shutdown", &[]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("stopped 1 application(s)"), "{}", stdout(&out));
    wait_until(Duration::from_secs(20), || job_status(&v2).contains("STOPPED"), || job_status(&v2));
    assert_eq!(get("/-/routes").body, "{}");
}

/// A deployment streams what another deployment's generator method yields
/// through its handle (`serve-relay`): a handle's call to a generator
/// method gives an `ObjectRefGenerator`, read item by item as it comes.
#[test]
fn an_ingress_streams_what_a_handle_s_generator_yields() {
    let served = Served::start(&guests().testjob, &[], &["serve-relay"]);
    let s = stream(&served.addr, "/relay?n=3&ms=400", None);
    assert!(s.complete, "{} {}", s.head, s.body);
    assert_eq!(s.body, "data: word0\n\ndata: word1\n\ndata: word2\n\n");
    assert!(s.arrived[2].1 - s.arrived[0].1 > Duration::from_millis(600), "{:?}", s.arrived);
    // A handle with a window holds the generator it calls back to its
    // reader (here the ingress, reading one item every 20 ms); without it
    // the generator runs ahead to its end.
    let ahead = |window: u32| {
        let s = stream(&served.addr, &format!("/relay?n=30&window={window}"), None);
        assert!(s.complete, "{} {}", s.head, s.body);
        number_after(&s.body, "data: ahead ")
    };
    let (paced, unpaced) = (ahead(2), ahead(0));
    assert!(paced <= 1.0, "{paced} items made ahead through a handle with a window of 2");
    assert!(unpaced >= 20.0, "only {unpaced} items made ahead through a handle without a window");
}

/// A generator replica on a worker streams through the head's proxy: its
/// events cross to the head and on to the client as they are yielded.
#[test]
fn a_generator_replica_on_a_worker_streams_through_the_head() {
    let head = crate::cluster::Head::start_with_flags("1", &["--serve-port", "0"]);
    let server = head.serve.clone().expect("the head prints its serve address");
    let worker = head.add_worker_flags("1", &["--resources", r#"{"worker": 1}"#]);
    let out = head.serve_deploy(&guests().testjob, &["serve-remote-stream"]);
    assert_code(&out, 0);
    let s = stream(&server, "/where-stream?n=3&ms=400", None);
    assert!(s.head.starts_with("HTTP/1.1 200"), "{}", s.head);
    assert!(s.complete, "{}", s.body);
    let on_worker = format!("data: {}", crate::cluster::node_id(worker));
    assert_eq!(s.arrived.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(), [on_worker.as_str(); 3]);
    assert!(s.arrived[2].1 - s.arrived[0].1 > Duration::from_millis(600), "{:?}", s.arrived);
    // A client that goes away stops the replica on the worker too (its
    // node is told when the next chunk reaches the head): the replica, one
    // call at a time, answers the next request at once rather than after
    // the rest of 100 events 100 ms apart.
    drop(stream(&server, "/where-stream?n=100&ms=100", Some(&on_worker)));
    let start = Instant::now();
    let next = stream(&server, "/where-stream?n=1&ms=0", None);
    assert!(next.complete, "{}", next.body);
    assert!(start.elapsed() < Duration::from_secs(5), "the abandoned stream went on: {:?}", start.elapsed());
}

/// On a cluster, replicas that need a worker's resource run on workers,
/// one on each (spread), and the head's proxy reaches them there; when a worker is SIGKILLed under
/// load, the requests it held fail with a 5xx (none hangs), its replicas
/// come back on the other worker, and every request after that succeeds.
#[test]
fn replicas_on_a_worker_that_dies_come_back_on_another() {
    let head = crate::cluster::Head::start_with_flags("1", &["--serve-port", "0"]);
    let server = head.serve.clone().expect("the head prints its serve address");
    let first = head.add_worker_flags("1", &["--resources", r#"{"worker": 1}"#]);
    let second = head.add_worker_flags("1", &["--resources", r#"{"worker": 1}"#]);
    let job = guests().testjob.clone();
    let out = head.serve_deploy(&job, &["serve-remote"]);
    assert_code(&out, 0);
    let ask = || request(&server, b"GET /where?ms=20 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let nodes: std::collections::BTreeSet<String> = (0..20).map(|_| ask().body.trim().to_string()).collect();
    let workers = [crate::cluster::node_id(first), crate::cluster::node_id(second)];
    assert!(!nodes.is_empty() && nodes.iter().all(|n| workers.contains(n)), "replicas off the workers: {nodes:?}");
    // Spread (Serve's default): one replica on each worker, though one
    // worker has room for both.
    assert_eq!(nodes.len(), 2, "both replicas on one worker: {nodes:?}");
    // `serve status` says where each replica runs.
    let status = stdout(&head.wray(&["serve", "status", "--server", &server]));
    for w in &workers {
        assert_eq!(status.matches(&format!(" on {w}: ")).count(), 1, "{status}");
    }
    let victim = if nodes.contains(&crate::cluster::node_id(first)) { first } else { second };
    let survivor = crate::cluster::node_id(if victim == first { second } else { first });

    let timed = || {
        let t = Instant::now();
        let r = ask();
        (r.status, r.body, t, t.elapsed())
    };
    let mut recovered = None;
    let answers = under_load(4, timed, |load| {
        load.more_answers(10);
        crate::cluster::kill_and_wait(victim);
        wait_until(
            Duration::from_secs(60),
            || {
                (0..5).all(|_| {
                    let r = ask();
                    r.status == 200 && r.body.trim() == survivor
                })
            },
            || "the replicas did not come back on the surviving worker".into(),
        );
        recovered = Some(Instant::now());
        load.more_answers(40);
    });
    let failed: Vec<_> = answers.iter().filter(|(s, ..)| *s != 200).collect();
    assert!(failed.iter().all(|(s, ..)| (500..600).contains(s)), "{failed:?}");
    assert!(answers.iter().all(|(.., took)| *took < Duration::from_secs(30)), "a request hung");
    // Every request sent after the recovery was answered by the survivor
    // (per request, not per client: a client can spend the whole recovery
    // waiting for one answer).
    let recovered = recovered.expect("the load ran to its end");
    let after: Vec<_> = answers.iter().filter(|(_, _, sent, _)| *sent >= recovered).collect();
    assert!(after.len() >= 20, "only {} requests after the recovery", after.len());
    assert!(after.iter().all(|(s, b, ..)| *s == 200 && b.trim() == survivor), "survivor {survivor}: {after:?}");
}

/// A Python application (`examples/python/serve_model.py`, the seeds' Serve
/// example): a function deployment and class deployments answer under
/// their routes with what they return — JSON, a generator streamed as it is
/// made — a failing request is a 500 naming the script's line, and a bound
/// deployment arrives in its ingress as a handle it awaits.
#[test]
fn a_python_application_serves_as_ray_serve_does() {
    let job = crate::python::build_python("examples/python/serve_model.py");
    let served = Served::start(&job, &[], &[]);
    let routes: serde_json::Value = serde_json::from_str(&served.get("/-/routes").body).unwrap();
    assert_eq!(
        routes,
        serde_json::json!({"/model": "default", "/hello": "default", "/countdown": "default", "/double": "default",
            "/tokens": "default"})
    );
    let r = served.get("/model?query=What%27s%20the%20meaning%20of%20life%3F");
    assert_eq!((r.status, r.header("content-type")), (200, Some("application/json")), "{}", r.body);
    assert_eq!(
        r.body,
        r#"[{"generated_text":"What's the meaning of life? Forty-two, said the computer, after seven and a half million years."}]"#
    );
    // The user's error: a 500 with the traceback, down to the script's line.
    let r = served.get("/model");
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(
        r.body.contains("serve_model.py\", line") && r.body.trim_end().ends_with("KeyError: 'query'"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("wray/serve.py"), "wray's own frames are left out: {}", r.body);
    // A class with a constructor argument, two replicas, `async def` and
    // `await request.json()`.
    assert_eq!(served.get("/hello?name=wray").body, r#"{"message":"Hello, wray!"}"#);
    assert_eq!(served.post("/hello", r#"{"name": "post"}"#).body, r#"{"message":"Hello, post!"}"#);
    // The application takes its routes once each deployment has a replica;
    // the second starts beside them (as the Rust tests wait for theirs).
    wait_until(
        Duration::from_secs(60),
        || served.running("Greeter").len() == 2,
        || format!("two Greeter replicas never ran: {}", served.get("/-/status").body),
    );
    // A StreamingResponse of a generator: each event as it is yielded.
    let s = stream(&served.addr, "/countdown?from=3&pause_ms=300", None);
    assert!(s.complete && s.head.contains("text/event-stream"), "{} {}", s.head, s.body);
    assert_eq!(s.body, "data: 3\n\ndata: 2\n\ndata: 1\n\ndata: 0\n\n");
    assert!(s.arrived[3].1 - s.arrived[0].1 > Duration::from_millis(600), "{:?}", s.arrived);
    // Composition: the ingress awaits the bound deployment's method.
    let r = served.get("/double?x=21");
    assert_eq!((r.status, r.body.as_str()), (200, "42"));
    // A generator method through a streaming handle, streamed on.
    let s = stream(&served.addr, "/tokens?n=3", None);
    assert!(s.complete, "{} {}", s.head, s.body);
    assert_eq!(s.body, "data: token-0\n\ndata: token-1\n\ndata: token-2\n\n");
}

/// A Python application deployed to a cluster (`wray serve deploy` of
/// `serve_checks.py cluster`): the deployment calling another through a
/// handle runs on a worker (it needs the worker's resource), where nothing
/// serves HTTP — its calls and its stream reach the replica the head picks.
#[test]
fn a_python_application_is_deployed_to_a_cluster() {
    let job = serve_checks();
    let head = crate::cluster::Head::start_with_flags("1", &["--serve-port", "0"]);
    let server = head.serve.clone().expect("the head prints its serve address");
    let worker = head.add_worker_flags("1", &["--resources", r#"{"worker": 1}"#]);
    let out = head.serve_deploy(&job, &["cluster"]);
    assert_code(&out, 0);
    let get =
        |p: &str| request(&server, format!("GET {p} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes());
    wait_until(Duration::from_secs(60), || get("/sum").status == 200, || format!("{:?}", get("/sum")));
    let status = stdout(&head.wray(&["serve", "status", "--server", &server]));
    let summer = status.split("deployment Summer").nth(1).unwrap_or_default();
    assert!(
        summer.contains(&format!(" on {}: ", crate::cluster::node_id(worker))),
        "Summer is not on the worker:\n{status}"
    );
    for _ in 0..4 {
        assert_eq!(get("/sum").body, "5");
        let s = stream(&server, "/sum?n=4", None);
        assert!(s.complete, "{} {}", s.head, s.body);
        assert_eq!(s.body, "0,1,2,3,");
        assert_eq!(get("/raw").status, 201);
    }
}

/// Python deployments beyond the example (`tests/programs/python/
/// serve_checks.py`): a `user_config` reaches `reconfigure` before the
/// first request, a replica whose `check_health` raises is replaced, a
/// `serve.Response` sets status and headers, a plain generator streams, a
/// handle's `.result()` works in sync code; applications that cannot start
/// say why.
#[test]
fn python_deployments_take_a_user_config_health_checks_and_their_own_responses() {
    let job = serve_checks();
    let served = Served::start(&job, &[], &[]);
    served.a_sick_replica_is_replaced();
    let r = served.get("/raw");
    assert_eq!((r.status, r.header("x-kind"), r.header("content-type")), (201, Some("raw"), Some("application/x-raw")));
    assert_eq!(r.body.as_bytes(), [0, 1]);
    assert_eq!(r.header("x-where"), Some("default/raw"), "serve.get_replica_context()");
    let s = stream(&served.addr, "/letters?word=wray", None);
    assert!(s.complete && s.head.contains("application/octet-stream"), "{} {}", s.head, s.body);
    assert_eq!(s.body, "wray");
    assert_eq!(served.get("/sum").body, "5");
    assert_eq!(stream(&served.addr, "/sum?n=3", None).body, "0,1,2,");
    assert_eq!(served.get("/sum?chain=1").body, "15");
    assert_eq!(stream(&served.addr, "/asum?n=3", None).body, "0;1;2;");
    // `@serve.batch`: eight requests at once are answered in batches, each
    // its own answer; through a handle, one call is a batch of one.
    let answers: Vec<String> = std::thread::scope(|s| {
        let served = &served;
        let hs: Vec<_> = (0..8).map(|i| s.spawn(move || served.get(&format!("/batched?i={i}")).body)).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, a) in answers.iter().enumerate() {
        assert!(a.ends_with(&format!(" {i}")), "each request gets its own answer: {answers:?}");
    }
    let largest = answers.iter().filter_map(|a| a.split(' ').next()?.parse::<u32>().ok()).max().unwrap_or(0);
    assert!(largest > 1, "no batch held more than one request: {answers:?}");
    assert_eq!(served.get("/sum?double=21").body, "42");
    drop(served);

    let serve = |mode: &str| wray(&["serve", "run", "--port", "0", path(&job), "--", mode]);
    for (mode, why) in [
        ("no-call", "NoCall lacks methods its deployment calls: __call__ (it has a route and answers HTTP requests)"),
        (
            "no-reconfigure",
            "NoCall lacks methods its deployment calls: __call__ (it has a route and answers HTTP requests), reconfigure (it has a user_config)",
        ),
        ("bad-option", "unknown deployment option(s) ['num_replica']"),
        ("not-bound", "serve.run takes a bound deployment (Model.bind(...)), not Deployment"),
    ] {
        let out = serve(mode);
        assert_code(&out, 1);
        assert!(stderr(&out).contains(why), "{mode}: {}", stderr(&out));
    }
}

/// `tests/programs/python/serve_checks.py`, built once for the tests that
/// serve it (two builds at once would write the same file).
fn serve_checks() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| crate::python::build_python("tests/programs/python/serve_checks.py")).clone()
}
