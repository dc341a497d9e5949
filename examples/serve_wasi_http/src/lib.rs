//! A standard `wasi:http` component — the kind `wasmtime serve` and Spin
//! run — served by wray as is:
//!
//! ```text
//! wray serve run --instances 4 serve_wasi_http.wasm
//! curl http://127.0.0.1:8000/hello                      hello from a wasi:http component: GET /hello
//! curl -d 'to be or not to be' http://127.0.0.1:8000/count   {"bytes":18,"words":6}
//! ```
//!
//! `GET` anything: a greeting naming the method and path. `POST .../count`: the
//! body's byte and word counts as JSON. Every answer carries
//! `x-served-by: wasi-http-example`. The component asks for nothing: no
//! files, no environment, no outgoing requests.

use std::io::{Read, Write};
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wasip2::http::proxy::export!(WordCount);

struct WordCount;

/// Largest body `/count` reads.
const MAX_BODY: usize = 1 << 20;

impl wasip2::exports::http::incoming_handler::Guest for WordCount {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_else(|| "/".to_string());
        let (status, content_type, body) = match (request.method(), path.as_str()) {
            // Under any mount point: wray passes the whole path, prefix
            // included, as Ray Serve does.
            (Method::Post, p) if p == "/count" || p.ends_with("/count") => match read_body(&request) {
                Ok(text) => {
                    let words = text.split_whitespace().count();
                    (200, "application/json", format!("{{\"bytes\":{},\"words\":{words}}}", text.len()))
                }
                Err(why) => (400, "text/plain", format!("{why}\n")),
            },
            (method, path) => {
                let method = match method {
                    Method::Get => "GET".to_string(),
                    Method::Post => "POST".to_string(),
                    Method::Other(m) => m,
                    other => format!("{other:?}").to_uppercase(),
                };
                (200, "text/plain", format!("hello from a wasi:http component: {method} {path}\n"))
            }
        };
        respond(out, status, content_type, body.as_bytes());
    }
}

fn read_body(request: &IncomingRequest) -> Result<String, String> {
    let body = request.consume().map_err(|()| "the body was already taken".to_string())?;
    let mut bytes = Vec::new();
    {
        let mut stream = body.stream().map_err(|()| "the body has no stream".to_string())?;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match Read::read(&mut stream, &mut chunk) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("reading the body failed: {e}")),
            }
            if bytes.len() > MAX_BODY {
                return Err(format!("the body exceeds {MAX_BODY} bytes"));
            }
        }
    }
    IncomingBody::finish(body);
    String::from_utf8(bytes).map_err(|_| "the body is not UTF-8 text".to_string())
}

fn respond(out: ResponseOutparam, status: u16, content_type: &str, body: &[u8]) {
    let headers = Fields::from_list(&[
        ("content-type".to_string(), content_type.as_bytes().to_vec()),
        ("x-served-by".to_string(), b"wasi-http-example".to_vec()),
    ])
    .expect("valid headers");
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let outgoing = response.body().expect("the body is taken once");
    ResponseOutparam::set(out, Ok(response));
    let mut stream = outgoing.write().expect("the stream is taken once");
    let _ = stream.write_all(body);
    let _ = stream.flush();
    drop(stream);
    let _ = OutgoingBody::finish(outgoing, None);
}
