//! Requests to a deployed `wasi:http` component run on workers: the head's
//! side ([`ClusterHttp`], the proxy's [`HttpNodes`]: which workers, and one
//! request sent to one of them) and the worker's
//! ([`Node::serve_http_call`]: the component compiled once and kept, one
//! fresh instance per request, the response sent back whole).
//!
//! One stream carries one request: [`Request::HttpCall`] and the body's
//! raw bytes, answered by [`Event::HttpAnswer`] and the response body's.
//! Both bodies are bounded by [`MAX_HTTP_BODY`] before anything is
//! allocated, headers by [`MAX_HTTP_HEADERS`]. Responses are not streamed
//! across nodes: a component's streamed body is collected on the worker.

use crate::cluster::head::Peers;
use crate::cluster::link::Link;
use crate::cluster::wire::{open_with, read_event, write_with};
use crate::{Node, lock};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use wray_host::{BoxFuture, HttpAnswer, HttpComponent, HttpForward, HttpGrants, HttpNodes};
use wray_net::proto::{self, Event, HttpCall, MAX_HTTP_BODY, MAX_HTTP_HEADERS, Request};
use wray_net::{NetError, frame};

/// Deployed components a worker keeps compiled; past it the oldest set is
/// dropped and compiled again when asked (a head serves a handful).
pub(crate) const MAX_HTTP_COMPONENTS: usize = 8;

/// The head's workers, for one deployed component.
pub(crate) struct ClusterHttp {
    pub(crate) peers: Arc<Peers>,
    pub(crate) name: String,
    pub(crate) hash: String,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) memory_limit: Option<u64>,
}

impl HttpNodes for ClusterHttp {
    fn nodes(&self) -> Vec<String> {
        lock(&self.peers.workers).iter().filter(|w| w.alive.load(Ordering::Relaxed)).map(|w| w.id.clone()).collect()
    }

    fn call(&self, node: String, request: HttpForward) -> BoxFuture<'static, Result<HttpAnswer, String>> {
        let conn = self.peers.connection(&node);
        let call = HttpCall {
            name: self.name.clone(),
            component_hash: self.hash.clone(),
            env: self.env.clone(),
            memory_limit: self.memory_limit,
            method: request.method,
            uri: request.uri,
            headers: request.headers,
            body_len: request.body.len() as u64,
        };
        Box::pin(async move {
            let conn = conn.ok_or_else(|| format!("{node} is gone"))?;
            let asked = async {
                let frame_bytes = proto::encode(&Request::HttpCall(call))?;
                let (mut send, mut recv) = open_with(&conn, &frame_bytes, vec![request.body]).await?;
                let _ = send.finish();
                match read_event(&mut recv).await? {
                    Event::HttpAnswer { status, headers, body_len } => {
                        if headers.len() > MAX_HTTP_HEADERS {
                            return Err(NetError::Malformed(format!("{} headers", headers.len())));
                        }
                        let mut body = Vec::new();
                        frame::read_raw_into(&mut recv, &mut body, body_len, MAX_HTTP_BODY).await?;
                        Ok(Ok(HttpAnswer { status, headers, body: body.into() }))
                    }
                    Event::Refused(why) => Ok(Err(why)),
                    other => Err(NetError::Malformed(format!("unexpected answer {other:?}"))),
                }
            };
            asked.await.map_err(|e| format!("cannot reach {node}: {e}"))?
        })
    }
}

impl Node {
    /// A worker's side of an [`HttpCall`]: the body read (bounded), the
    /// component run, the answer or the reason it failed sent back.
    pub(super) async fn serve_http_call(
        &self,
        call: HttpCall,
        send: &mut quinn::SendStream,
        recv: &mut quinn::RecvStream,
    ) -> Result<(), NetError> {
        if call.headers.len() > MAX_HTTP_HEADERS {
            return Err(NetError::Malformed(format!("an HTTP call with {} headers", call.headers.len())));
        }
        let mut body = Vec::new();
        frame::read_raw_into(recv, &mut body, call.body_len, MAX_HTTP_BODY).await?;
        let answer = match self.http_component(&call).await {
            Ok(component) => {
                let request =
                    HttpForward { method: call.method, uri: call.uri, headers: call.headers, body: body.into() };
                component.answer(request, MAX_HTTP_BODY as usize).await
            }
            Err(why) => Err(why),
        };
        match answer {
            Ok(a) => {
                let event = Event::HttpAnswer { status: a.status, headers: a.headers, body_len: a.body.len() as u64 };
                write_with(send, &event, vec![a.body]).await
            }
            Err(why) => frame::write(send, &proto::encode(&Event::Refused(why))?).await,
        }
    }

    /// Compiles a `wasi:http` component (off the async threads: a large one
    /// takes seconds).
    pub(super) async fn load_http_component(
        &self,
        name: &str,
        bytes: Vec<u8>,
        grants: HttpGrants,
    ) -> Result<HttpComponent, String> {
        let (engine, label) = (self.engine().clone(), name.to_string());
        tokio::task::spawn_blocking(move || HttpComponent::load(&engine, &label, &bytes, grants))
            .await
            .map_err(|e| format!("compiling {name} failed: {e}"))?
            .map_err(|e| e.to_string())
    }

    /// The component an [`HttpCall`] names, compiled here once (its bytes
    /// asked of the head) and kept with the call's grants.
    async fn http_component(&self, call: &HttpCall) -> Result<Arc<HttpComponent>, String> {
        let key = format!("{}/{:?}/{:?}", call.component_hash, call.env, call.memory_limit);
        if let Some(c) = lock(&self.inner.http_components).get(&key) {
            return Ok(c.clone());
        }
        // One compilation at a time: concurrent first requests wait for it.
        let _one_at_a_time = self.inner.loading.lock().await;
        if let Some(c) = lock(&self.inner.http_components).get(&key) {
            return Ok(c.clone());
        }
        let head = match self.inner.link.get() {
            Some(Link::Worker(w)) => w.head(),
            _ => return Err("only a worker runs a component's requests for the head".into()),
        };
        let bytes = crate::cluster::remote_task::fetch_component(&head, &call.component_hash).await?;
        let grants = HttpGrants { env: call.env.clone(), dirs: Vec::new(), memory: call.memory_limit };
        let component = Arc::new(self.load_http_component(&call.name, bytes, grants).await?);
        let mut cache = lock(&self.inner.http_components);
        if cache.len() >= MAX_HTTP_COMPONENTS {
            cache.clear();
        }
        cache.insert(key, component.clone());
        Ok(component)
    }
}
