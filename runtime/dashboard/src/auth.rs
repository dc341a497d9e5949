//! Who may read and who may act (see the crate's docs for the rules).
//!
//! The session cookie holds no state on the server: it is a hash of the
//! token under a fixed context, so it is valid exactly as long as the token
//! is (a head restarted with the same token keeps its sessions; a new token
//! ends them all), and it does not reveal the token to a reader of the
//! browser's cookie jar.

use hyper::HeaderMap;
use hyper::header;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;

/// The session cookie's name.
pub const COOKIE: &str = "wray_session";

/// What `POST /logout` sets: the cookie, expired.
pub const CLEAR_COOKIE: &str = "wray_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0";

/// What a request may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Nothing: a remote client without the token.
    None,
    /// It presented a token, and it is wrong.
    WrongToken,
    /// Read every view (a loopback client).
    Read,
    /// Read and change state (it holds the token).
    Act,
}

pub struct Auth {
    token: Option<String>,
    session: Option<String>,
}

impl Auth {
    pub fn new(token: Option<String>) -> Auth {
        let token = token.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        let session = token.as_deref().map(session_value);
        Auth { token, session }
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    pub fn access(&self, headers: &HeaderMap, peer: SocketAddr) -> Access {
        if let Some(auth) = headers.get(header::AUTHORIZATION) {
            let presented = auth.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
            return match (presented, &self.token) {
                (Some(p), Some(t)) if same(p.as_bytes(), t.as_bytes()) => Access::Act,
                _ => Access::WrongToken,
            };
        }
        if let Some(expected) = &self.session
            && cookie(headers).is_some_and(|c| same(c.as_bytes(), expected.as_bytes()))
        {
            return Access::Act;
        }
        if peer.ip().to_canonical().is_loopback() { Access::Read } else { Access::None }
    }

    /// The `Set-Cookie` value for a login with `token`, if it is right.
    pub fn session_for(&self, token: &str) -> Option<String> {
        let t = self.token.as_deref()?;
        same(token.trim().as_bytes(), t.as_bytes())
            .then(|| format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", session_value(t)))
    }
}

fn session_value(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"wray dashboard session\0");
    h.update(token.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares in time that depends on the lengths only.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// A field of an `application/x-www-form-urlencoded` body, decoded.
pub fn form_value(body: &[u8], key: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    let raw = body.split('&').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))?;
    wray_codec::http::percent_decode(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 5000)
    }

    fn with(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, value.parse().unwrap());
        h
    }

    #[test]
    fn loopback_reads_remote_needs_the_token_and_a_wrong_one_is_refused() {
        let auth = Auth::new(Some("secret".into()));
        let none = HeaderMap::new();
        assert_eq!(auth.access(&none, peer("127.0.0.1")), Access::Read);
        assert_eq!(auth.access(&none, peer("::1")), Access::Read);
        assert_eq!(auth.access(&none, peer("::ffff:127.0.0.1")), Access::Read);
        assert_eq!(auth.access(&none, peer("10.0.0.2")), Access::None);
        let bearer = with(header::AUTHORIZATION, "Bearer secret");
        assert_eq!(auth.access(&bearer, peer("10.0.0.2")), Access::Act);
        let wrong = with(header::AUTHORIZATION, "Bearer secreT");
        assert_eq!(auth.access(&wrong, peer("127.0.0.1")), Access::WrongToken);
        let basic = with(header::AUTHORIZATION, "Basic c2VjcmV0");
        assert_eq!(auth.access(&basic, peer("127.0.0.1")), Access::WrongToken);
    }

    #[test]
    fn the_login_cookie_grants_what_the_token_does() {
        let auth = Auth::new(Some("secret".into()));
        assert!(auth.session_for("nope").is_none());
        let set = auth.session_for("secret").unwrap();
        let value = set.split(';').next().unwrap();
        let cookies = with(header::COOKIE, &format!("theme=dark; {value}"));
        assert_eq!(auth.access(&cookies, peer("10.0.0.2")), Access::Act);
        let stale = with(header::COOKIE, "wray_session=00");
        assert_eq!(auth.access(&stale, peer("10.0.0.2")), Access::None);
        // Without a token nobody acts, and nobody logs in.
        let open = Auth::new(None);
        assert!(open.session_for("").is_none());
        assert_eq!(open.access(&HeaderMap::new(), peer("127.0.0.1")), Access::Read);
    }

    #[test]
    fn form_values_are_decoded_and_bad_escapes_refused() {
        assert_eq!(form_value(b"a=1&token=ab%2Bc+d", "token").as_deref(), Some("ab+c d"));
        assert_eq!(form_value(b"token=", "token").as_deref(), Some(""));
        assert_eq!(form_value(b"tokens=x", "token"), None);
        assert_eq!(form_value(b"token=%zz", "token"), None);
        assert_eq!(form_value(b"token=%4", "token"), None);
        assert_eq!(form_value(b"token=%", "token"), None);
    }
}
