//! The smallest served application: a greeting at `/hello` and a no-op at
//! `/noop` (what the serve benchmark measures), two replicas each.
//!
//! ```text
//! wray serve run serve_hello.wasm -- [--replicas N] [--greeting Hi]
//! curl 'http://127.0.0.1:8000/hello?name=wray'    {"message":"Hello, wray!"}
//! curl http://127.0.0.1:8000/noop                  {"ok":true}
//! ```

use wray::serve::{self, Request, Response};

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
    serve::run("hello", hello.with(noop)).map_err(|e| e.to_string())
}
