//! The smallest served application: a greeting at `/hello` and a no-op at
//! `/noop` (what the serve benchmark measures), two replicas each, and a
//! streamed countdown at `/countdown` (one replica).
//!
//! ```text
//! wray serve run serve_hello.wasm -- [--replicas N] [--greeting Hi]
//! curl 'http://127.0.0.1:8000/hello?name=wray'    {"message":"Hello, wray!"}
//! curl http://127.0.0.1:8000/noop                  {"ok":true}
//! curl -N 'http://127.0.0.1:8000/countdown?from=3' data: 3, then 2, 1, 0, 100 ms apart
//! ```

use std::time::Duration;
use wray::serve::{self, Chunk, Request, Response};

/// Greets whoever `?name=` says.
pub struct Hello {
    greeting: String,
}

#[wray::actor]
impl Hello {
    pub fn new(greeting: String) -> Hello {
        Hello { greeting }
    }

    pub fn call(&mut self, req: Request) -> Response {
        let name = req.query_param("name").unwrap_or_else(|| "world".to_string());
        Response::json(&serde_json::json!({ "message": format!("{}, {name}!", self.greeting) }))
    }
}

/// Answers `{"ok": true}` to anything.
pub struct Noop;

#[wray::actor]
impl Noop {
    pub fn new() -> Noop {
        Noop
    }

    pub fn call(&mut self, _req: Request) -> Response {
        Response::new(200).with_header("content-type", "application/json").with_body(&b"{\"ok\": true}"[..])
    }
}

/// Counts down from `?from=` (default 3, at most 1,000) as server-sent
/// events, `?pause_ms=` (default 100, at most 10,000) apart. A generator
/// method: the proxy sends each event the moment it is yielded, and stops
/// the countdown when the client goes away. `?fail_at=n` panics instead of
/// yielding `n`, to show a stream cut short; `?pad=` (at most 65,536) adds
/// that many bytes to each event, to show a slow client of a large stream
/// holding the replica back rather than filling the object store.
pub struct Countdown;

#[wray::actor]
impl Countdown {
    pub fn new() -> Countdown {
        Countdown
    }

    pub fn call(&mut self, req: Request) -> impl Iterator<Item = Chunk> {
        let param = |name: &str, default: u64, max: u64| {
            req.query_param(name).and_then(|v| v.parse().ok()).unwrap_or(default).min(max)
        };
        let from = param("from", 3, 1000);
        let pause = Duration::from_millis(param("pause_ms", 100, 10_000));
        let fail_at = req.query_param("fail_at").and_then(|v| v.parse::<u64>().ok());
        let pad = " ".repeat(param("pad", 0, 65_536) as usize);
        let events = (0..=from).rev().map(move |i| {
            if i < from {
                std::thread::sleep(pause);
            }
            if fail_at == Some(i) {
                panic!("asked to fail at {i}");
            }
            Chunk::event(&format!("{i}{pad}"))
        });
        std::iter::once(Chunk::event_stream()).chain(events)
    }
}

fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} needs a value")),
    }
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), String> {
    let replicas: u32 = flag(&args, "--replicas", 2)?;
    let greeting: String = flag(&args, "--greeting", "Hello".to_string())?;
    let hello = serve::deployment::<Hello>().num_replicas(replicas).route_prefix("/hello").bind((greeting,));
    let noop = serve::deployment::<Noop>().num_replicas(replicas).route_prefix("/noop").bind(());
    let countdown = serve::deployment::<Countdown>().route_prefix("/countdown").bind(());
    serve::run("hello", hello.with(noop).with(countdown)).map_err(|e| e.to_string())
}
