//! Who may talk to the node over HTTP, and how the browser logs in.
//!
//! - **Host**: every request names one of the node's own addresses in `Host`
//!   (`127.0.0.1:<port>`, `localhost:<port>`, and the `--ui-listen` address);
//!   anything else is refused, so a page on another name that a DNS rebinding
//!   points at 127.0.0.1 gets nothing.
//! - **Credentials**: the CLI's bearer token (`api.token`, unchanged), or a
//!   session cookie (`HttpOnly; SameSite=Strict`) that a one-time login token
//!   was swapped for at `/login?token=…`.
//! - **State changes** (any method but GET and HEAD): an `Origin`, when sent, must
//!   be the node's own; a cookie-authenticated change must send its origin and
//!   the session's CSRF token in `x-smpl-csrf`.
//!
//! Every refusal is logged and counted by reason ([`Refusals`]).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, header};

use crate::util::random;

/// How long a login token can be used.
pub const LOGIN_TOKEN_TTL: Duration = Duration::from_secs(60 * 60);
/// Login tokens kept at once; the oldest unused one goes first.
const MAX_LOGIN_TOKENS: usize = 32;
/// Sessions kept at once; the least recently created goes first.
const MAX_SESSIONS: usize = 64;
/// The header a cookie-authenticated state change carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-smpl-csrf";

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `Host` is not one of the node's addresses.
    ForeignHost,
    /// A state change from another origin.
    ForeignOrigin,
    /// Neither a valid bearer token nor a session cookie.
    NoCredentials,
    /// A login token that is unknown, used already or expired.
    BadLoginToken,
    /// A cookie-authenticated state change without its CSRF token (or origin).
    MissingCsrf,
    /// A path outside the library was asked to be shown or served.
    OutsideLibrary,
}

impl Refusal {
    pub fn name(self) -> &'static str {
        match self {
            Refusal::ForeignHost => "foreign_host",
            Refusal::ForeignOrigin => "foreign_origin",
            Refusal::NoCredentials => "no_credentials",
            Refusal::BadLoginToken => "bad_login_token",
            Refusal::MissingCsrf => "missing_csrf",
            Refusal::OutsideLibrary => "outside_library",
        }
    }

    const ALL: [Refusal; 6] = [
        Refusal::ForeignHost,
        Refusal::ForeignOrigin,
        Refusal::NoCredentials,
        Refusal::BadLoginToken,
        Refusal::MissingCsrf,
        Refusal::OutsideLibrary,
    ];
}

/// Refusals counted by reason since the node started.
#[derive(Default)]
pub struct Refusals([AtomicU64; 6]);

impl Refusals {
    pub fn count(&self, refusal: Refusal, detail: &str) {
        let i = Refusal::ALL.iter().position(|r| *r == refusal).unwrap_or(0);
        let total = self.0[i].fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(reason = refusal.name(), total, "web: refused a request: {detail}");
    }

    /// `(reason, count)` for every reason.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        Refusal::ALL.iter().zip(&self.0).map(|(r, n)| (r.name(), n.load(Ordering::Relaxed))).collect()
    }
}

/// How a request proved who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    Bearer,
    /// A browser session, with its CSRF token.
    Session {
        csrf: String,
    },
}

/// Sessions, login tokens and the addresses this node answers to.
pub struct Guard {
    /// `host:port` values a request may name in `Host`.
    hosts: Vec<String>,
    /// The port of the API listener, part of the cookie's name (cookies are not
    /// kept apart by port, so two nodes on one machine need two names).
    port: u16,
    bearer: String,
    login: Mutex<VecDeque<(String, Instant)>>,
    /// Session id → CSRF token.
    sessions: Mutex<(HashMap<String, String>, VecDeque<String>)>,
    pub refusals: Refusals,
}

impl Guard {
    /// A guard for the API on `api` (and the app on `ui`, when given), with the
    /// CLI's bearer token.
    pub fn new(api: SocketAddr, ui: Option<SocketAddr>, bearer: String) -> Guard {
        let mut hosts = Vec::new();
        for addr in std::iter::once(api).chain(ui) {
            let port = addr.port();
            // An API on all interfaces is reached on loopback by the CLI and the login link.
            if addr.ip().is_loopback() || addr.ip().is_unspecified() {
                hosts.push(format!("127.0.0.1:{port}"));
                hosts.push(format!("localhost:{port}"));
                hosts.push(format!("[::1]:{port}"));
            }
            hosts.push(addr.to_string());
        }
        hosts.dedup();
        Guard {
            hosts,
            port: api.port(),
            bearer,
            login: Mutex::new(VecDeque::new()),
            sessions: Mutex::new((HashMap::new(), VecDeque::new())),
            refusals: Refusals::default(),
        }
    }

    pub fn cookie_name(&self) -> String {
        format!("smpl_session_{}", self.port)
    }

    /// Whether `Host` names this node.
    pub fn host_ok(&self, headers: &HeaderMap) -> bool {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Whether `origin` is this node's own (`http://` and one of its hosts).
    fn own_origin(&self, origin: &str) -> bool {
        origin
            .strip_prefix("http://")
            .is_some_and(|host| self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)))
    }

    /// The credential a request carries, if any is valid.
    pub fn credential(&self, headers: &HeaderMap) -> Option<Credential> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if bearer.is_some_and(|t| constant_time_eq(t.as_bytes(), self.bearer.as_bytes())) {
            return Some(Credential::Bearer);
        }
        let session = cookie(headers, &self.cookie_name())?;
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions
            .0
            .iter()
            .find(|(id, _)| constant_time_eq(id.as_bytes(), session.as_bytes()))
            .map(|(_, csrf)| Credential::Session { csrf: csrf.clone() })
    }

    /// Checks a request: host, credential, and for state changes origin and CSRF.
    pub fn check(&self, method: &Method, headers: &HeaderMap) -> Result<Credential, Refusal> {
        if !self.host_ok(headers) {
            return Err(Refusal::ForeignHost);
        }
        let changes = !matches!(*method, Method::GET | Method::HEAD);
        let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
        if changes && origin.is_some_and(|o| !self.own_origin(o)) {
            return Err(Refusal::ForeignOrigin);
        }
        let credential = self.credential(headers).ok_or(Refusal::NoCredentials)?;
        if changes && let Credential::Session { csrf } = &credential {
            let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            if origin.is_none() || !constant_time_eq(sent.as_bytes(), csrf.as_bytes()) {
                return Err(Refusal::MissingCsrf);
            }
        }
        Ok(credential)
    }

    /// A new one-time login token.
    pub fn new_login_token(&self) -> String {
        let token = hex(&random::<24>());
        let mut login = self.login.lock().unwrap_or_else(|e| e.into_inner());
        login.retain(|(_, at)| at.elapsed() < LOGIN_TOKEN_TTL);
        while login.len() >= MAX_LOGIN_TOKENS {
            login.pop_front();
        }
        login.push_back((token.clone(), Instant::now()));
        token
    }

    /// Swaps a login token for a new session (the token is used up); returns the
    /// session id, or `None` for a token that is unknown, used or expired.
    pub fn redeem(&self, token: &str) -> Option<String> {
        let mut login = self.login.lock().unwrap_or_else(|e| e.into_inner());
        let i = login.iter().position(|(t, _)| constant_time_eq(t.as_bytes(), token.as_bytes()))?;
        let (_, at) = login.remove(i)?;
        drop(login);
        if at.elapsed() >= LOGIN_TOKEN_TTL {
            return None;
        }
        let (id, csrf) = (hex(&random::<32>()), hex(&random::<16>()));
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        while sessions.1.len() >= MAX_SESSIONS {
            if let Some(old) = sessions.1.pop_front() {
                sessions.0.remove(&old);
            }
        }
        sessions.0.insert(id.clone(), csrf);
        sessions.1.push_back(id.clone());
        Some(id)
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn guard() -> Guard {
        Guard::new("127.0.0.1:4000".parse().unwrap(), Some("192.168.1.5:4001".parse().unwrap()), "t".into())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn hosts_are_the_node_s_own_and_the_ui_address_only() {
        let g = guard();
        for ok in ["127.0.0.1:4000", "localhost:4000", "192.168.1.5:4001"] {
            assert!(g.host_ok(&headers(&[("host", ok)])), "{ok}");
        }
        for bad in ["evil.example:4000", "127.0.0.1:4001", "192.168.1.5:4000", ""] {
            assert!(!g.host_ok(&headers(&[("host", bad)])), "{bad}");
        }
    }

    #[test]
    fn a_login_token_works_once() {
        let g = guard();
        let token = g.new_login_token();
        let session = g.redeem(&token).expect("first use");
        assert!(g.redeem(&token).is_none(), "second use");
        let cookie = format!("{}={session}", g.cookie_name());
        let h = headers(&[("host", "127.0.0.1:4000"), ("cookie", &cookie)]);
        assert!(matches!(g.check(&Method::GET, &h), Ok(Credential::Session { .. })));
        assert_eq!(g.check(&Method::POST, &h), Err(Refusal::MissingCsrf));
    }
}
