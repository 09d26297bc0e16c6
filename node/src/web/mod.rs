//! The web app: a sound browser served by the node itself, on the API's address.
//!
//! Pages are HTML rendered here (no build step, no framework), with one small
//! hand-written script (`assets/app.js`) for results as you type, audition with
//! the keyboard, waveforms on a canvas, and live changes by server-sent events.
//! Every handler calls the [`Node`] facade.
//!
//! - `auth`: the [`Guard`]: Host, Origin and CSRF checks, one-time login tokens
//!   swapped for an `HttpOnly; SameSite=Strict` session cookie, refusal counts.
//!   The middleware that applies it to every request lives in `api`.
//! - `html`: escaping, the layout, value formatting.
//! - `search`: the search page's URL state and its results fragment
//!   ([`results_fragment`], also what the benchmark renders).
//! - `pages`: the other pages (pack, library, publish, sales, my packs, network).
//! - `actions`: what changes state (buy, approve, reject, download, publish,
//!   retract, show in folder), each a POST answered with JSON.
//! - `events`: server-sent events and the watcher that finds changes that came
//!   from the network.
//! - `wav`: the WAV form of a preview for browsers without Ogg Vorbis.
//!
//! | method | path | what |
//! | --- | --- | --- |
//! | GET | `/login?token=T` | swaps a one-time token for the session cookie, redirects to `/` |
//! | POST | `/v1/ui/login` | (bearer only) a new one-time login URL, `{"url"}` |
//! | GET | `/`, `/ui/results` | the search page; its results fragment |
//! | GET | `/packs/{id}`, `/ui/packs/{id}/licence`, `/ui/packs/{id}/certificate` | a pack; its licence panel; its certificate as a file |
//! | GET | `/library`, `/publish`, `/sales`, `/mine`, `/network` | the other pages |
//! | GET | `/ui/preview/{id}?sample=NAME[&format=wav]` | a preview clip (Ogg Vorbis, or WAV) |
//! | GET | `/ui/library/file?path=P` | a file of the library (for dragging into a DAW) |
//! | GET | `/ui/publish/check?dir=D` | whether a folder can be published |
//! | GET | `/ui/events` | server-sent events |
//! | POST | `/ui/packs/{id}/buy`, `/ui/packs/{id}/fetch`, `/ui/packs/{id}/retract` | buy, download, retract |
//! | POST | `/ui/sales/{id}/approve`, `/ui/sales/{id}/reject` | decide an order |
//! | POST | `/ui/publish/analyse`, `/ui/publish/sign`, `/ui/publish/cancel` | publish in two steps |
//! | POST | `/ui/connect` | connect to a peer (`{"addr"}`: an invite line or an address) |
//! | POST | `/ui/show-in-folder` | open the file manager at a library folder |

mod actions;
mod auth;
mod events;
mod html;
mod pages;
mod search;
mod wav;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use auth::{CSRF_HEADER, Credential, Guard, LOGIN_TOKEN_TTL, Refusal};
pub use search::{Looked, RowInfo, SearchParams, results_fragment};

use crate::node::{Node, NodeError};

/// How the web app is reached besides the API's loopback address.
#[derive(Clone, Debug, Default)]
pub struct WebOptions {
    /// A further address (e.g. on the LAN, for a phone) serving the same app
    /// with the same login; the allowed `Host` list grows by exactly it.
    pub ui_listen: Option<SocketAddr>,
}

/// The web app's state: the node, the guard, live events, publish drafts.
pub struct Web {
    node: Arc<Node>,
    pub guard: Guard,
    hub: events::Hub,
    /// The loopback base URL, `http://127.0.0.1:<port>`.
    base: String,
    /// Analysed folders waiting to be signed: draft id → request.
    drafts: Mutex<HashMap<String, crate::publish::Draft>>,
    /// Waveforms of recently shown packs.
    waves: Mutex<WaveCache>,
}

/// The waveforms of one version of a pack: reading them means reading and
/// verifying the whole signed manifest, too slow to do for every row of every
/// keystroke's results.
pub(crate) struct PackWaves {
    pub seq: u64,
    pub author: smpl_protocol::NodeId,
    /// Sample name → waveform points.
    pub waves: HashMap<String, Vec<u8>>,
}

impl PackWaves {
    pub fn of(manifest: &smpl_protocol::Manifest) -> PackWaves {
        PackWaves {
            seq: manifest.seq,
            author: manifest.author,
            waves: manifest.samples.iter().map(|s| (s.name.clone(), s.waveform.clone())).collect(),
        }
    }
}

/// Packs whose waveforms are kept (at most 1,000 samples of 128 points each, so
/// a few tens of MB at worst).
const WAVE_CACHE_PACKS: usize = 256;

/// [`PackWaves`] of the packs shown last, by pack id; an entry of an older
/// version than the store holds is not used.
#[derive(Default)]
pub(crate) struct WaveCache {
    packs: HashMap<smpl_protocol::PackId, Arc<PackWaves>>,
    order: std::collections::VecDeque<smpl_protocol::PackId>,
}

impl WaveCache {
    pub fn get(&self, pack: &smpl_protocol::PackId, seq: u64) -> Option<Arc<PackWaves>> {
        self.packs.get(pack).filter(|e| e.seq == seq).cloned()
    }

    pub fn put(&mut self, pack: smpl_protocol::PackId, entry: Arc<PackWaves>) {
        if self.packs.insert(pack, entry).is_none() {
            self.order.push_back(pack);
        }
        while self.order.len() > WAVE_CACHE_PACKS {
            if let Some(old) = self.order.pop_front() {
                self.packs.remove(&old);
            }
        }
    }
}

impl Web {
    /// The app of `node`, whose API listens on `api` (and the app also on `ui`).
    pub fn new(node: Arc<Node>, api: SocketAddr, ui: Option<SocketAddr>, bearer: String) -> Web {
        let host =
            if api.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], api.port())) } else { api };
        Web {
            node,
            guard: Guard::new(api, ui, bearer),
            hub: events::Hub::default(),
            base: format!("http://{host}"),
            drafts: Mutex::new(HashMap::new()),
            waves: Mutex::new(WaveCache::default()),
        }
    }

    /// A new one-time login URL on the loopback address.
    pub fn login_url(&self) -> String {
        format!("{}/login?token={}", self.base, self.guard.new_login_token())
    }

    /// Ends the open event streams, so that a graceful shutdown need not wait for them.
    pub fn close_events(&self) {
        self.hub.close();
    }

    /// Watches the node for changes to tell open pages about, until `cancel`.
    pub fn watch(
        self: &Arc<Self>,
        cancel: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(events::watch(self.node.clone(), self.hub.clone(), cancel))
    }
}

/// The app's routes, with `web` as their state.
pub fn router(web: Arc<Web>) -> Router {
    Router::new()
        .route("/login", get(pages::login))
        .route("/v1/ui/login", post(pages::new_login))
        .route("/", get(pages::search_page))
        .route("/ui/results", get(pages::results))
        .route("/packs/{id}", get(pages::pack))
        .route("/ui/packs/{id}/licence", get(pages::licence_panel))
        .route("/ui/packs/{id}/certificate", get(pages::certificate))
        .route("/library", get(pages::library))
        .route("/publish", get(pages::publish))
        .route("/sales", get(pages::sales))
        .route("/mine", get(pages::mine))
        .route("/network", get(pages::network))
        .route("/ui/preview/{id}", get(pages::preview))
        .route("/ui/library/file", get(pages::library_file))
        .route("/ui/publish/check", get(actions::check_folder))
        .route("/ui/events", get(pages::events))
        .route("/ui/packs/{id}/buy", post(actions::buy))
        .route("/ui/packs/{id}/fetch", post(actions::fetch))
        .route("/ui/packs/{id}/retract", post(actions::retract))
        .route("/ui/sales/{id}/approve", post(actions::approve))
        .route("/ui/sales/{id}/reject", post(actions::reject))
        .route("/ui/publish/analyse", post(actions::analyse))
        .route("/ui/publish/sign", post(actions::sign))
        .route("/ui/publish/cancel", post(actions::cancel))
        .route("/ui/connect", post(actions::connect))
        .route("/ui/show-in-folder", post(actions::show_in_folder))
        .route("/static/app.js", get(pages::script))
        .route("/static/app.css", get(pages::style))
        .with_state(web)
}

/// The headers every answer carries: no framing, no sniffing, scripts and
/// styles from this origin only, no referrer.
pub fn harden(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static("default-src 'self'"));
    headers.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("no-referrer"));
}

/// A failed web request: status and one line, as JSON for actions or as a page.
pub(crate) struct WebError(pub StatusCode, pub String);

impl From<NodeError> for WebError {
    fn from(e: NodeError) -> Self {
        WebError(e.kind().status(), e.to_string())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

/// A refusal that says what to do: JSON `{"error"}` for the API and actions
/// (`json`), else a short page.
pub fn refused(refusal: Refusal, json: bool) -> Response {
    let (status, text) = match refusal {
        Refusal::ForeignHost => (StatusCode::FORBIDDEN, "This node does not answer to that host name."),
        Refusal::ForeignOrigin => {
            (StatusCode::FORBIDDEN, "Changes are accepted from this node's own pages only.")
        }
        Refusal::NoCredentials => (
            StatusCode::UNAUTHORIZED,
            "Not logged in. Open the login link that `smpl node` printed, or run `smpl ui` for a new one. \
             (The CLI sends the bearer token from api.token.)",
        ),
        Refusal::BadLoginToken => (
            StatusCode::FORBIDDEN,
            "This login link is unknown, expired or used already. Run `smpl ui` for a new one.",
        ),
        Refusal::MissingCsrf => {
            (StatusCode::FORBIDDEN, "The request lacks this page's CSRF token; reload the page.")
        }
        Refusal::OutsideLibrary => (StatusCode::FORBIDDEN, "Only folders inside the library can be shown."),
    };
    let mut response = if json {
        let text = if refusal == Refusal::NoCredentials {
            "missing or wrong API token (see api.token in the node's home)"
        } else {
            text
        };
        (status, axum::Json(serde_json::json!({ "error": text }))).into_response()
    } else {
        let body =
            format!("<!doctype html><meta charset=\"utf-8\"><title>smpl</title><p>{}</p>", html::esc(text));
        (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
    };
    response.extensions_mut().insert(refusal);
    response
}
