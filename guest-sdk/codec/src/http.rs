//! The HTTP messages a served deployment receives and returns.
//!
//! The host's HTTP proxy (`wray-serve-host`) encodes each request it
//! routes to a replica as a [`Request`] and decodes the replica's answer as
//! a [`Response`]; the guest SDK (`wray::serve`) hands the same types to the
//! user's method. They live here, with the encoding both sides share, so
//! that there is one definition of the layout rather than two kept in step
//! by hand.
//!
//! Bodies are encoded as one length-prefixed byte string (not postcard's
//! element-by-element sequence), so a request body costs a `memcpy`.

use serde::{Deserialize, Serialize};

/// An HTTP request as a deployment sees it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path as the client sent it, route prefix included
    /// (`/predict/batch`).
    pub path: String,
    /// The raw query string, without the `?` (empty if none).
    pub query: String,
    /// Header names (lower case) and values, in the order received.
    /// Values that are not UTF-8 are dropped by the proxy.
    pub headers: Vec<(String, String)>,
    /// The body, whole.
    #[serde(with = "byte_string")]
    pub body: Vec<u8>,
}

/// An HTTP response from a deployment.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code (100–999; anything else becomes a 500 at the proxy).
    pub status: u16,
    /// Headers to send. `content-length` is set by the proxy; hop-by-hop
    /// headers (`connection`, `transfer-encoding`, ...) are dropped.
    pub headers: Vec<(String, String)>,
    /// The body.
    #[serde(with = "byte_string")]
    pub body: Vec<u8>,
}

/// One part of a streamed response. A deployment method that returns
/// `impl Iterator<Item = Chunk>` (a generator method) answers its request
/// as it goes — tokens of a language model, rows of a report, server-sent
/// events — Ray Serve's `StreamingResponse`: the proxy sends each chunk to
/// the client as soon as the replica yields it (chunked transfer in
/// HTTP/1.1, DATA frames in HTTP/2).
///
/// The first chunk may be a [`Chunk::Head`], whose status and headers the
/// response gets (and whose body, if any, is sent first); without one the
/// response is `200` with `content-type: application/octet-stream`. A head
/// anywhere else ends the response early (the status was already sent).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Chunk {
    /// The status and headers, and the start of the body.
    Head(Response),
    /// More of the body.
    Body(#[serde(with = "byte_string")] Vec<u8>),
}

impl Chunk {
    /// The response's status and headers (the first chunk only).
    pub fn head(response: Response) -> Chunk {
        Chunk::Head(response)
    }

    /// Body bytes.
    pub fn bytes(body: impl Into<Vec<u8>>) -> Chunk {
        Chunk::Body(body.into())
    }

    /// Body text.
    pub fn text(body: impl Into<String>) -> Chunk {
        Chunk::Body(body.into().into_bytes())
    }

    /// A server-sent event whose data is `data` (`data: <line>` for each of
    /// its lines, then a blank line). Start the stream with
    /// [`Chunk::event_stream`] so that browsers' `EventSource` reads it.
    pub fn event(data: &str) -> Chunk {
        let mut out = String::with_capacity(data.len() + 8);
        for line in data.split('\n') {
            out.push_str("data: ");
            out.push_str(line.strip_suffix('\r').unwrap_or(line));
            out.push('\n');
        }
        out.push('\n');
        Chunk::Body(out.into_bytes())
    }

    /// The head of a server-sent event stream: `200`,
    /// `content-type: text/event-stream`, `cache-control: no-cache`.
    pub fn event_stream() -> Chunk {
        Chunk::Head(
            Response::new(200)
                .with_header("content-type", "text/event-stream")
                .with_header("cache-control", "no-cache"),
        )
    }
}

impl From<Response> for Chunk {
    fn from(r: Response) -> Chunk {
        Chunk::Head(r)
    }
}

impl From<String> for Chunk {
    fn from(s: String) -> Chunk {
        Chunk::text(s)
    }
}

impl From<&str> for Chunk {
    fn from(s: &str) -> Chunk {
        Chunk::text(s)
    }
}

impl From<Vec<u8>> for Chunk {
    fn from(b: Vec<u8>) -> Chunk {
        Chunk::Body(b)
    }
}

impl Default for Response {
    fn default() -> Response {
        Response::new(200)
    }
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The first value of query parameter `name`, percent-decoded (`+` is a
    /// space, as in forms). `None` if absent or not valid UTF-8 once decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k)? == name).then(|| percent_decode(v)).flatten()
        })
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.body)
    }

    /// The body parsed as JSON into `T`. On failure, a 400 response naming
    /// what is wrong, ready to return to the client.
    #[cfg(feature = "json")]
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Response> {
        serde_json::from_slice(&self.body).map_err(|e| Response::text(400, format!("bad JSON body: {e}\n")))
    }
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Vec::new() }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::new(status)
            .with_header("content-type", "text/plain; charset=utf-8")
            .with_body(body.into().into_bytes())
    }

    /// A `200` response with `value` as JSON (`application/json`). A value
    /// that cannot be written as JSON (a map with non-string keys) gives a
    /// 500 naming the problem.
    #[cfg(feature = "json")]
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Response {
        match serde_json::to_vec(value) {
            Ok(body) => Response::new(200).with_header("content-type", "application/json").with_body(body),
            Err(e) => Response::text(500, format!("the response is not JSON: {e}\n")),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Decodes `%XX` escapes and `+` (a query string's or a form's value);
/// `None` for a bad escape or bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Serde for a `Vec<u8>` as one byte string.
mod byte_string {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(Bytes)
    }

    struct Bytes;

    impl<'de> Visitor<'de> for Bytes {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string")
        }
        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
        // Self-describing formats (JSON) give a sequence of numbers.
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(b) = seq.next_element()? {
                out.push(b);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_with_its_body_as_one_byte_string() {
        let req = Request {
            method: "POST".into(),
            path: "/predict".into(),
            query: "a=1".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: vec![7; 1000],
        };
        let bytes = crate::encode(&req).unwrap();
        // Varint length (2 bytes for 1000) then the bytes: no per-byte cost.
        assert!(bytes.len() < 1000 + 64, "{}", bytes.len());
        assert_eq!(crate::decode::<Request>(&bytes).unwrap(), req);
        let resp = Response::text(404, "no route");
        assert_eq!(crate::decode::<Response>(&crate::encode(&resp).unwrap()).unwrap(), resp);
    }

    #[test]
    fn chunks_round_trip_and_events_are_framed_as_server_sent_events() {
        for c in
            [Chunk::event_stream(), Chunk::text("tok"), Chunk::bytes(vec![0u8, 255]), Chunk::from(Response::new(201))]
        {
            assert_eq!(crate::decode::<Chunk>(&crate::encode(&c).unwrap()).unwrap(), c);
        }
        assert_eq!(Chunk::event("a\r\nb"), Chunk::text("data: a\ndata: b\n\n"));
        assert_eq!(Chunk::event(""), Chunk::text("data: \n\n"));
        // A Response is never mistaken for a chunk (statuses start at 100,
        // a chunk's variant index is 0 or 1), should one be yielded by mistake.
        assert!(crate::decode::<Chunk>(&crate::encode(&Response::text(200, "x")).unwrap()).is_err());
    }

    #[test]
    fn query_parameters_are_percent_decoded() {
        let req = Request { query: "name=a%20b+c&x=%E2%9C%93&bad=%zz&flag".into(), ..Request::default() };
        assert_eq!(req.query_param("name").as_deref(), Some("a b c"));
        assert_eq!(req.query_param("x").as_deref(), Some("✓"));
        assert_eq!(req.query_param("bad"), None);
        assert_eq!(req.query_param("flag").as_deref(), Some(""));
        assert_eq!(req.query_param("missing"), None);
        assert_eq!(req.header("Content-Type"), None);
    }
}
