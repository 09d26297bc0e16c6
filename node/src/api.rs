//! The local HTTP API on 127.0.0.1: JSON in and out, a bearer token from
//! `api.token` on every request. The CLI is its client; the web app
//! ([`crate::web`]) is served by the same router.
//!
//! Every request passes [`guard`] first: its `Host` must name this node, and it
//! must carry the bearer token or the web app's session cookie; a state change
//! from another `Origin` is refused, and one authenticated by cookie must carry
//! the page's CSRF token ([`crate::web::Guard`]). Every answer carries the
//! hardening headers ([`crate::web::harden`]).
//!
//! | method | path | body | answer |
//! | --- | --- | --- | --- |
//! | GET | `/v1/id` | | [`NodeInfo`] |
//! | POST | `/v1/publish` | [`PublishRequest`] | JSON lines of [`PublishEvent`], the last `done` or `error` |
//! | POST | `/v1/search` | [`SearchQuery`] | [`smpl_index::SearchResults`] |
//! | GET | `/v1/packs/{id}` | | [`PackView`](crate::PackView) |
//! | POST | `/v1/packs/{id}/retract` | | `{"pack_id"}` |
//! | POST | `/v1/index/rebuild` | | `{"packs"}` |
//! | GET | `/v1/check` | | [`CheckReport`](crate::CheckReport) |
//! | GET | `/v1/peers` | | `[]` of [`PeerInfo`](crate::net::PeerInfo) |
//! | GET | `/v1/status` | | [`Status`](crate::Status): listings held, and what was dropped or refused |
//! | GET | `/v1/sales/refused` | | `[]` of [`RefusedOrder`](crate::trade::RefusedOrder), newest first |
//! | GET | `/v1/invite` | | `{"node_id","invite"}`: the line `smpl connect` takes |
//! | POST | `/v1/connect` | `{"addr"}` | [`PeerInfo`](crate::net::PeerInfo) once connected |
//! | POST | `/v1/packs/{id}/fetch` | `{"out"}` | JSON lines of [`FetchEvent`](crate::FetchEvent), the last `done` or `error` |
//! | GET | `/v1/packs/{id}/ticket` | | `{"pack_id","ticket"}` |
//! | POST | `/v1/packs/{id}/buy` | `{"payment_ref","wait_secs"}` | [`BuyOutcome`](crate::BuyOutcome) |
//! | GET | `/v1/packs/{id}/certificate` | | `{"pack_id","license_id","certificate"}` |
//! | GET | `/v1/sales?pending=true` | | `[]` of [`Order`](crate::Order) |
//! | POST | `/v1/sales/{id}/approve` | | [`Order`](crate::Order) |
//! | POST | `/v1/sales/{id}/reject` | `{"reason"}` | [`Order`](crate::Order) |
//! | GET | `/v1/licenses?issued=true` | | `[]` of [`LicenseView`](crate::LicenseView) |
//! | GET | `/v1/purchases` | | `[]` of [`Order`](crate::Order) |
//! | GET | `/v1/recommend?limit=N` | | `[]` of [`Recommendation`](crate::Recommendation) |
//! | GET | `/v1/packs/{id}/preview?sample=NAME` | | [`Preview`](crate::Preview) (the clip is written to its `path`) |
//!
//! A failed request answers `{"error": "<one line>"}` with the HTTP status of the
//! error's kind ([`ErrorKind`](crate::ErrorKind)): 404, 400, 403, 402 or 409 for
//! what the caller can act on, 503 for what may work later, 502 for a peer that
//! misbehaved, 500 only for this node's own failures. The handlers call the
//! [`Node`] facade only.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use smpl_index::SearchQuery;
use tokio::sync::mpsc;

use crate::home::NodeInfo;
use crate::node::{FetchEvent, Node, NodeError};
use crate::publish::{PublishEvent, PublishRequest};
use crate::web::{self, Refusal, Web};

#[derive(Clone)]
struct AppState {
    node: Arc<Node>,
    info: Arc<NodeInfo>,
    web: Arc<Web>,
}

/// An error answer: a status and a one-line message. A [`NodeError`] answers with
/// the status of its kind ([`NodeError::kind`]): 4xx for what the caller can fix,
/// 503 for what may work later, 502 for a misbehaving peer, 500 for this node's
/// own failures.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        ApiError(e.kind().status(), e.to_string())
    }
}

/// Serves the API and the web app on `listener` (and the app on `ui`, the
/// `--ui-listen` address) until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ui: Option<tokio::net::TcpListener>,
    node: Arc<Node>,
    info: NodeInfo,
    web: Arc<Web>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = AppState { node, info: Arc::new(info), web: web.clone() };
    let api = Router::new()
        .route("/v1/id", get(id))
        .route("/v1/publish", post(publish))
        .route("/v1/search", post(search))
        .route("/v1/packs/{id}", get(show))
        .route("/v1/packs/{id}/retract", post(retract))
        .route("/v1/index/rebuild", post(rebuild))
        .route("/v1/check", get(check))
        .route("/v1/peers", get(peers))
        .route("/v1/status", get(status))
        .route("/v1/sales/refused", get(refused_sales))
        .route("/v1/invite", get(invite))
        .route("/v1/connect", post(connect))
        .route("/v1/packs/{id}/fetch", post(fetch))
        .route("/v1/packs/{id}/ticket", get(ticket))
        .route("/v1/packs/{id}/buy", post(buy))
        .route("/v1/packs/{id}/certificate", get(certificate))
        .route("/v1/sales", get(sales))
        .route("/v1/sales/{id}/approve", post(approve))
        .route("/v1/sales/{id}/reject", post(reject))
        .route("/v1/licenses", get(licenses))
        .route("/v1/purchases", get(purchases))
        .route("/v1/packs/{id}/preview", get(preview))
        .route("/v1/recommend", get(recommend))
        .with_state(state.clone());
    let app = api.merge(web::router(web.clone())).layer(middleware::from_fn_with_state(state, guard));
    let stop = tokio_util::sync::CancellationToken::new();
    let watcher = web.watch(stop.child_token());
    let (trigger, closing) = (stop.clone(), web.clone());
    tokio::spawn(async move {
        shutdown.await;
        closing.close_events();
        trigger.cancel();
    });
    let main = axum::serve(listener, app.clone()).with_graceful_shutdown(stop.clone().cancelled_owned());
    let served = match ui {
        Some(ui) => {
            let second = axum::serve(ui, app).with_graceful_shutdown(stop.clone().cancelled_owned());
            tokio::try_join!(main.into_future(), second.into_future()).map(|_| ())
        }
        None => main.await,
    };
    stop.cancel();
    let _ = watcher.await;
    served
}

/// Lets a request through when its Host is this node's and it carries the bearer
/// token or a session cookie (state changes: own Origin, CSRF token with the
/// cookie); `/login` needs the Host check only. Every refusal is counted.
async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let json = path.starts_with("/v1/") || path.starts_with("/ui/");
    let guard = &state.web.guard;
    let checked = if path == "/login" {
        if guard.host_ok(request.headers()) { Ok(None) } else { Err(Refusal::ForeignHost) }
    } else {
        guard.check(request.method(), request.headers()).map(Some)
    };
    let mut response = match checked {
        Ok(credential) => {
            if let Some(credential) = credential {
                request.extensions_mut().insert(credential);
            }
            next.run(request).await
        }
        Err(refusal) => {
            let detail = format!("{} {}", request.method(), request.uri().path());
            guard.refusals.count(refusal, &detail);
            web::refused(refusal, json)
        }
    };
    web::harden(&mut response);
    response
}

async fn id(State(state): State<AppState>) -> Json<NodeInfo> {
    Json((*state.info).clone())
}

async fn publish(State(state): State<AppState>, Json(request): Json<PublishRequest>) -> Response {
    let (tx, rx) = mpsc::channel::<PublishEvent>(64);
    let node = state.node.clone();
    tokio::spawn(async move {
        let last = match node.publish(request, tx.clone()).await {
            Ok(outcome) => PublishEvent::Done(outcome),
            Err(e) => PublishEvent::Error { message: e.to_string() },
        };
        let _ = tx.send(last).await;
    });
    json_lines(rx)
}

#[derive(serde::Deserialize)]
struct FetchBody {
    #[serde(default)]
    out: Option<std::path::PathBuf>,
}

async fn fetch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<FetchBody>,
) -> Response {
    let pack = match state.node.resolve(&id) {
        Ok(pack) => pack,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let (tx, rx) = mpsc::channel::<FetchEvent>(64);
    let node = state.node.clone();
    tokio::spawn(async move {
        let last = match node.fetch(&pack, body.out, tx.clone()).await {
            Ok(outcome) => FetchEvent::Done(outcome),
            Err(e) => FetchEvent::Error { message: e.to_string() },
        };
        let _ = tx.send(last).await;
    });
    json_lines(rx)
}

async fn ticket(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let pack = state.node.resolve(&id)?;
    let ticket = state.node.share(&pack)?;
    Ok(Json(json!({ "pack_id": pack, "ticket": ticket })).into_response())
}

async fn invite(State(state): State<AppState>) -> Result<Response, ApiError> {
    let invite = state.node.invite().await?;
    Ok(Json(json!({ "node_id": state.node.node_id(), "invite": invite.line() })).into_response())
}

async fn status(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(state.node.status().await?).into_response())
}

async fn refused_sales(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(state.node.refused_orders().await?).into_response())
}

async fn peers(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(state.node.peers().await?).into_response())
}

#[derive(serde::Deserialize)]
struct ConnectBody {
    addr: String,
}

async fn connect(State(state): State<AppState>, Json(body): Json<ConnectBody>) -> Result<Response, ApiError> {
    Ok(Json(state.node.connect_to(&body.addr).await?).into_response())
}

/// Streams events as JSON lines until the sender is dropped.
fn json_lines<T: serde::Serialize + Send + 'static>(rx: mpsc::Receiver<T>) -> Response {
    let lines = futures::stream::unfold(rx, |mut rx| async move {
        let event = rx.recv().await?;
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        Some((Ok::<_, Infallible>(Bytes::from(line)), rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(lines))
        .unwrap_or_else(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())
}

async fn search(State(state): State<AppState>, Json(query): Json<SearchQuery>) -> Result<Response, ApiError> {
    Ok(Json(state.node.search(query).await?).into_response())
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let pack = state.node.resolve(&id)?;
    Ok(Json(state.node.show(&pack)?).into_response())
}

async fn retract(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let pack = state.node.resolve(&id)?;
    state.node.retract(&pack).await?;
    Ok(Json(json!({ "pack_id": pack })).into_response())
}

async fn rebuild(State(state): State<AppState>) -> Result<Response, ApiError> {
    let packs = state.node.rebuild_index().await?;
    Ok(Json(json!({ "packs": packs })).into_response())
}

async fn check(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(state.node.check().await?).into_response())
}

#[derive(serde::Deserialize)]
struct BuyBody {
    #[serde(default)]
    payment_ref: Option<String>,
    #[serde(default)]
    wait_secs: u64,
}

/// The longest `buy --wait` the API accepts.
const MAX_WAIT_SECS: u64 = 3600;

async fn buy(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<BuyBody>,
) -> Result<Response, ApiError> {
    let pack = state.node.resolve(&id)?;
    let wait = std::time::Duration::from_secs(body.wait_secs.min(MAX_WAIT_SECS));
    Ok(Json(state.node.buy(&pack, body.payment_ref, wait).await?).into_response())
}

async fn certificate(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let pack = state.node.resolve(&id)?;
    let (license_id, certificate) = state.node.certificate(&pack).await?;
    Ok(Json(json!({ "pack_id": pack, "license_id": license_id, "certificate": certificate })).into_response())
}

#[derive(serde::Deserialize)]
struct ListQuery {
    #[serde(default)]
    pending: bool,
    #[serde(default)]
    issued: bool,
}

async fn sales(State(state): State<AppState>, Query(query): Query<ListQuery>) -> Result<Response, ApiError> {
    Ok(Json(state.node.sales(query.pending).await?).into_response())
}

async fn approve(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(state.node.approve(&id).await?).into_response())
}

#[derive(serde::Deserialize)]
struct RejectBody {
    #[serde(default)]
    reason: Option<String>,
}

async fn reject(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<RejectBody>,
) -> Result<Response, ApiError> {
    Ok(Json(state.node.reject(&id, body.reason).await?).into_response())
}

async fn licenses(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    Ok(Json(state.node.licenses(query.issued).await?).into_response())
}

async fn purchases(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(state.node.purchases().await?).into_response())
}

#[derive(serde::Deserialize)]
struct PreviewQuery {
    sample: String,
}

async fn preview(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<PreviewQuery>,
) -> Result<Response, ApiError> {
    let pack = state.node.resolve(&id)?;
    Ok(Json(state.node.preview(&pack, &query.sample).await?).into_response())
}

#[derive(serde::Deserialize)]
struct RecommendQuery {
    #[serde(default = "default_recommendations")]
    limit: usize,
}

fn default_recommendations() -> usize {
    10
}

async fn recommend(
    State(state): State<AppState>,
    Query(query): Query<RecommendQuery>,
) -> Result<Response, ApiError> {
    Ok(Json(state.node.recommend(query.limit.min(100)).await?).into_response())
}
