//! Standard `wasi:http/proxy` components — what `wasmtime serve` and Spin
//! run — served by wray's HTTP proxy.
//!
//! Such a component exports `wasi:http/incoming-handler` and imports only
//! WASI; it knows nothing of wray. Each request gets a fresh instance (the
//! component model's request isolation, as `wasmtime serve` does), made
//! from a pre-linked `ProxyPre` in the node's engine, so it shares the
//! pooling allocator, the epoch ticker and the sandbox rules of every wray
//! instance: nothing granted but what `--dir` and `--env` grant, a memory
//! limit, and no outgoing HTTP (`wasi:http/outgoing-handler` answers
//! `HTTP-request-denied`: the network is a capability wray does not grant).

use crate::LoadError;
use crate::engine::Engine;
use crate::services::{HttpAnswer, HttpForward};
use std::path::PathBuf;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// The export that makes a component a `wasi:http` proxy.
const INCOMING_HANDLER: &str = "wasi:http/incoming-handler@0.2";

/// What a served component may touch.
#[derive(Clone, Debug, Default)]
pub struct HttpGrants {
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Host directories and where the component sees them.
    pub dirs: Vec<(PathBuf, String)>,
    /// Linear-memory limit of each instance (none: the 4 GiB of wasm32).
    pub memory: Option<u64>,
}

/// Whether `bytes` is a component that exports `wasi:http/incoming-handler`
/// (read from its export section, without compiling it).
pub fn is_http_proxy(bytes: &[u8]) -> bool {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(wasmparser::Payload::ComponentExportSection(exports)) => {
                for e in exports.into_iter().flatten() {
                    if e.name.name.starts_with(INCOMING_HANDLER) {
                        return true;
                    }
                }
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// A compiled, pre-linked `wasi:http` component.
pub struct HttpComponent {
    name: String,
    pre: ProxyPre<HttpState>,
    grants: HttpGrants,
}

/// One request's store data.
struct HttpState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limits: StoreLimits,
    hooks: DenyOutgoing,
}

impl WasiView for HttpState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HttpState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// Refuses every outgoing request.
struct DenyOutgoing;

impl WasiHttpHooks for DenyOutgoing {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

impl HttpComponent {
    /// Compiles `bytes` (named `name` in errors) and links it against WASI
    /// and `wasi:http`. Fails naming the problem for anything that is not a
    /// `wasi:http/proxy` component.
    pub fn load(engine: &Engine, name: &str, bytes: &[u8], grants: HttpGrants) -> Result<HttpComponent, LoadError> {
        let invalid = |reason: String| LoadError::Invalid { name: name.to_string(), reason };
        let component = Component::new(engine.wasmtime(), bytes).map_err(|e| invalid(format!("{e:#}")))?;
        let mut linker = Linker::<HttpState>::new(engine.wasmtime());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| invalid(format!("{e:#}")))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(|e| invalid(format!("{e:#}")))?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(ProxyPre::new)
            .map_err(|e| invalid(format!("not a wasi:http/proxy component: {e:#}")))?;
        Ok(HttpComponent { name: name.to_string(), pre, grants })
    }

    /// The component's name (its file).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs one request (its body already read whole) in a fresh instance.
    /// The response's body streams from the instance, which lives until it
    /// has written the body; a guest that traps or never sets a response
    /// gives an error naming what happened.
    pub async fn handle(
        &self,
        parts: http::request::Parts,
        body: bytes::Bytes,
    ) -> Result<hyper::Response<HyperOutgoingBody>, String> {
        use http_body_util::BodyExt;
        let body = http_body_util::Full::new(body)
            .map_err(|never: std::convert::Infallible| -> wasmtime_wasi_http::Error { match never {} });
        let req = hyper::Request::from_parts(parts, body);
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stdout().inherit_stderr();
        for (k, v) in &self.grants.env {
            wasi.env(k, v);
        }
        for (host, guest) in &self.grants.dirs {
            wasi.preopened_dir(host, guest, wasmtime_wasi::FsPerms::ReadWrite)
                .map_err(|e| format!("granting {}: {e:#}", host.display()))?;
        }
        let mut limits = StoreLimitsBuilder::new().trap_on_grow_failure(true);
        if let Some(m) = self.grants.memory {
            limits = limits.memory_size(usize::try_from(m).unwrap_or(usize::MAX));
        }
        let state = HttpState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limits: limits.build(),
            hooks: DenyOutgoing,
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limits);
        // Yield to the executor on every epoch tick, so a guest that loops
        // cannot hold a worker thread (and a dropped request stops it).
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store.data_mut().http().new_incoming_request(Scheme::Http, req).map_err(|e| format!("{e:#}"))?;
        let out = store.data_mut().http().new_response_outparam(sender).map_err(|e| format!("{e:#}"))?;
        let pre = self.pre.clone();
        let task = tokio::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await
        });
        match receiver.await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(code)) => Err(format!("the component answered with an error: {code:?}")),
            Err(_) => match task.await {
                Ok(Ok(())) => Err("the component returned without setting a response".to_string()),
                Ok(Err(e)) => Err(format!("the component failed: {e:#}")),
                Err(e) => Err(format!("the component's task failed: {e}")),
            },
        }
    }

    /// Runs one request forwarded from another node's proxy and collects
    /// the response whole (at most `max_body` bytes of body), to send back.
    pub async fn answer(&self, request: HttpForward, max_body: usize) -> Result<HttpAnswer, String> {
        use http_body_util::BodyExt;
        let mut builder = http::Request::builder().method(request.method.as_str()).uri(request.uri.as_str());
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_slice());
        }
        let (parts, ()) = builder.body(()).map_err(|e| format!("a malformed forwarded request: {e}"))?.into_parts();
        let (parts, body) = self.handle(parts, request.body).await?.into_parts();
        let body = http_body_util::Limited::new(body, max_body)
            .collect()
            .await
            .map_err(|e| format!("reading {}'s response (at most {max_body} bytes): {e}", self.name))?
            .to_bytes();
        let headers = parts.headers.iter().map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec())).collect();
        Ok(HttpAnswer { status: parts.status.as_u16(), headers, body })
    }
}
