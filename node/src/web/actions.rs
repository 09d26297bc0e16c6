//! What the web app changes, each a POST answered with JSON (`{"error"}` and the
//! error's status when it fails): buy, download, retract, approve, reject,
//! publish in two steps (analyse, then sign or cancel), show a library folder,
//! connect to a peer.
//! Long work reports progress as server-sent events.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use smpl_protocol::{Key, LicenseTerms, Price, Source};
use tokio::sync::mpsc;

use super::html::{self, esc};
use super::pages::inside_library;
use super::{Web, WebError};
use crate::node::FetchEvent;
use crate::publish::{PublishEvent, PublishRequest};

/// Drafts (analysed folders waiting to be signed) kept at once.
const MAX_DRAFTS: usize = 8;

fn bad(text: impl Into<String>) -> WebError {
    WebError(StatusCode::BAD_REQUEST, text.into())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct BuyBody {
    payment_ref: String,
}

pub async fn buy(
    State(web): State<Arc<Web>>,
    UrlPath(id): UrlPath<String>,
    Json(body): Json<BuyBody>,
) -> Result<Response, WebError> {
    let pack = web.node.resolve(&id)?;
    let reference = Some(body.payment_ref.trim().to_string()).filter(|r| !r.is_empty());
    // A short wait: a free pack or an automatic seller answers at once; a manual
    // one leaves the order pending and the page learns the outcome by events.
    let outcome = web.node.buy(&pack, reference, Duration::from_secs(2)).await?;
    web.hub.send("purchases", &json!({ "pack_id": pack }));
    Ok(Json(outcome).into_response())
}

/// Starts a download; progress and the outcome arrive as `download` events.
pub async fn fetch(State(web): State<Arc<Web>>, UrlPath(id): UrlPath<String>) -> Result<Response, WebError> {
    let pack = web.node.resolve(&id)?;
    let (tx, mut rx) = mpsc::channel::<FetchEvent>(64);
    let hub = web.hub.clone();
    let hex = pack.to_hex();
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            hub.send("download", &json!({ "pack_id": hex, "event": event }));
        }
    });
    let node = web.node.clone();
    tokio::spawn(async move {
        let last = match node.fetch(&pack, None, tx.clone()).await {
            Ok(outcome) => FetchEvent::Done(outcome),
            Err(e) => FetchEvent::Error { message: e.to_string() },
        };
        let _ = tx.send(last).await;
    });
    Ok((StatusCode::ACCEPTED, Json(json!({ "pack_id": pack, "started": true }))).into_response())
}

pub async fn retract(
    State(web): State<Arc<Web>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, WebError> {
    let pack = web.node.resolve(&id)?;
    web.node.retract(&pack).await?;
    Ok(Json(json!({ "pack_id": pack })).into_response())
}

pub async fn approve(
    State(web): State<Arc<Web>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, WebError> {
    let order = web.node.approve(&id).await?;
    web.hub.send("sales", &json!({ "order_id": order.order_id }));
    Ok(Json(order).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RejectBody {
    reason: String,
}

pub async fn reject(
    State(web): State<Arc<Web>>,
    UrlPath(id): UrlPath<String>,
    Json(body): Json<RejectBody>,
) -> Result<Response, WebError> {
    let reason = Some(body.reason.trim().to_string()).filter(|r| !r.is_empty());
    let order = web.node.reject(&id, reason).await?;
    web.hub.send("sales", &json!({ "order_id": order.order_id }));
    Ok(Json(order).into_response())
}

#[derive(Deserialize)]
pub struct ShowBody {
    path: PathBuf,
}

/// Opens the file manager at a folder of the library (a file's folder for a
/// file); any other path is refused.
pub async fn show_in_folder(State(web): State<Arc<Web>>, Json(body): Json<ShowBody>) -> Response {
    let real = match inside_library(&web, &body.path) {
        Ok(real) => real,
        Err(e) => return e.into_response(),
    };
    let folder = if real.is_dir() { real } else { real.parent().map(Path::to_path_buf).unwrap_or(real) };
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let spawned = tokio::process::Command::new(opener)
        .arg(&folder)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match spawned {
        Ok(mut child) => {
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
            Json(json!({ "opened": true, "path": folder })).into_response()
        }
        Err(e) => Json(json!({ "opened": false, "path": folder, "reason": format!("{opener}: {e}") }))
            .into_response(),
    }
}

#[derive(Deserialize)]
pub struct CheckQuery {
    #[serde(default)]
    dir: String,
}

#[derive(Deserialize)]
pub struct ConnectBody {
    addr: String,
}

/// Connects to a peer from its invite line or address, as `smpl connect` does.
pub async fn connect(
    State(web): State<Arc<Web>>,
    Json(body): Json<ConnectBody>,
) -> Result<Response, WebError> {
    let peer = web.node.connect_to(body.addr.trim()).await.map_err(|e| bad(e.to_string()))?;
    Ok(Json(peer).into_response())
}

/// Whether a folder can be published: as the producer types its path.
pub async fn check_folder(Query(query): Query<CheckQuery>) -> Response {
    let dir = PathBuf::from(query.dir.trim());
    let answer = tokio::task::spawn_blocking(move || {
        if dir.as_os_str().is_empty() {
            return json!({ "ok": false, "message": "" });
        }
        if !dir.is_absolute() {
            return json!({ "ok": false, "message": "give the full path, starting with /" });
        }
        match scan(&dir) {
            Ok(Scanned { audio, other }) if audio.is_empty() => {
                json!({ "ok": false, "message": format!("no audio files here ({})", count(other.len(), "other file")) })
            }
            Ok(Scanned { audio, other }) => json!({
                "ok": true,
                "message": format!("{}{}", count(audio.len(), "audio file"),
                    if other.is_empty() { String::new() } else { format!(", {} skipped", count(other.len(), "other file")) }),
            }),
            Err(e) => json!({ "ok": false, "message": e }),
        }
    })
    .await
    .unwrap_or_else(|e| json!({ "ok": false, "message": e.to_string() }));
    Json(answer).into_response()
}

/// `n thing` or `n things`.
fn count(n: usize, thing: &str) -> String {
    if n == 1 { format!("1 {thing}") } else { format!("{n} {thing}s") }
}

/// A folder's files as publishing sees them (hidden files are left out).
struct Scanned {
    /// Path and name in the pack of each audio file.
    audio: Vec<(PathBuf, String)>,
    /// Name and why skipped of every other file.
    other: Vec<(String, String)>,
}

fn scan(dir: &Path) -> Result<Scanned, String> {
    if !dir.is_dir() {
        return Err(format!("{} is not a folder", dir.display()));
    }
    let mut audio = Vec::new();
    let mut other = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let entries =
            std::fs::read_dir(&current).map_err(|e| format!("cannot read {}: {e}", current.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            if name.split('/').any(|part| part.starts_with('.')) {
                continue;
            }
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                stack.push(path);
            } else if !kind.is_file() {
                other.push((name, "not a regular file".to_string()));
            } else if smpl_audio::is_audio_candidate(&path) {
                audio.push((path, name));
            } else {
                other.push((name, "not an audio file".to_string()));
            }
        }
        if audio.len() + other.len() > 10_000 {
            return Err("more than 10,000 files: choose the pack's own folder".into());
        }
    }
    audio.sort_by(|a, b| a.1.cmp(&b.1));
    other.sort();
    Ok(Scanned { audio, other })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PublishForm {
    dir: String,
    /// A pack of this node's to publish a new version of (its id); empty for a
    /// new pack.
    update: String,
    title: String,
    genre: String,
    tags: String,
    description: String,
    price: String,
    currency: String,
    license: String,
    bpm: String,
    key: String,
}

impl PublishForm {
    fn request(self) -> Result<PublishRequest, WebError> {
        let dir = PathBuf::from(self.dir.trim());
        if !dir.is_absolute() {
            return Err(bad("the folder: give the full path, starting with /"));
        }
        let title = self.title.trim().to_string();
        if title.is_empty() {
            return Err(bad("the pack needs a title"));
        }
        let price = match self.price.trim() {
            "" | "0" | "free" => None,
            text => {
                let amount: f64 = text
                    .replace(',', ".")
                    .parse()
                    .map_err(|_| bad(format!("price {text:?} is not a number")))?;
                if !(0.0..=10_000.0).contains(&amount) {
                    return Err(bad("a price is between 0 and 10,000"));
                }
                let currency = self.currency.trim().to_ascii_uppercase();
                if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(bad(format!("currency {currency:?}: use a three-letter code such as USD")));
                }
                let minor = (amount * 100.0).round() as u64;
                (minor > 0).then_some(Price { amount_minor: minor, currency })
            }
        };
        let bpm = match self.bpm.trim() {
            "" => None,
            text => Some(
                text.parse::<f32>()
                    .ok()
                    .filter(|b| (20.0..=400.0).contains(b))
                    .ok_or_else(|| bad(format!("BPM {text:?}: a tempo between 20 and 400")))?,
            ),
        };
        let key = match self.key.trim() {
            "" => None,
            text => {
                Some(text.parse::<Key>().map_err(|_| bad(format!("key {text:?}: e.g. Am, F#, C major")))?)
            }
        };
        let license = match self.license.trim() {
            "" => "royalty-free".to_string(),
            text => text.to_string(),
        };
        let update = Some(self.update.trim().to_string()).filter(|u| !u.is_empty());
        Ok(PublishRequest {
            dir,
            // The form shows an update's changes of price and terms before it
            // is signed: signing it is the confirmation.
            confirm: update.is_some(),
            update,
            title: Some(title),
            genre: Some(self.genre.trim().to_string()),
            tags: Some(
                self.tags.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
            ),
            description: Some(self.description.trim().to_string()),
            free: price.is_none(),
            price,
            license: Some(LicenseTerms::Named(license)),
            bpm,
            key,
            ..PublishRequest::default()
        })
    }
}

/// Step one of publishing: analyses every file of the folder and imports it
/// into the blob store (nothing is signed or announced), and answers the result
/// per file, what an update changes, and a draft to sign.
pub async fn analyse(
    State(web): State<Arc<Web>>,
    Json(form): Json<PublishForm>,
) -> Result<Response, WebError> {
    let request = form.request()?;
    let (tx, mut rx) = mpsc::channel::<PublishEvent>(64);
    let hub = web.hub.clone();
    tokio::spawn(async move {
        let (mut done, mut total) = (0usize, 0usize);
        while let Some(event) = rx.recv().await {
            let file = match event {
                PublishEvent::Started { files, .. } => {
                    total = files;
                    continue;
                }
                PublishEvent::File { name, .. } => name,
                _ => continue,
            };
            done += 1;
            hub.send("publish", &json!({ "stage": "analyse", "done": done, "total": total, "file": file }));
        }
    });
    let draft = web.node.prepare_publish(request, tx).await.map_err(|e| bad(e.to_string()))?;
    let m = &draft.manifest;
    let mut table = String::new();
    if let Some(previous) = &draft.previous {
        if draft.unchanged() {
            let text = format!("Nothing changed from version {}: there is nothing to publish.", previous.seq);
            return Ok(Json(json!({ "draft": null, "html": html::message("note", &text), "files": 0 }))
                .into_response());
        }
        let _ = write!(table, "<p>Changes from version {}:</p><ul class=\"changes\">", previous.seq);
        for change in &draft.changes {
            let _ = write!(table, "<li>{}</li>", esc(change));
        }
        table.push_str("</ul>");
    }
    table.push_str(
        "<table class=\"list analysis\"><thead><tr><th>File</th><th>Kind</th><th>Length</th><th>Loudness</th>\
         <th>Tempo</th><th>Key</th></tr></thead><tbody>",
    );
    let source = |s: Source| match s {
        Source::Stated => " (stated)",
        Source::Name => " (named)",
        Source::Detected => "",
    };
    for s in &m.samples {
        let tempo = s.tempo.as_ref().map(|t| format!("{:.0}{}", t.bpm, source(t.source))).unwrap_or_default();
        let key = match (&s.key, &s.note) {
            (Some(k), _) => format!("{k}{}", source(k.source)),
            (None, Some(n)) => format!("{n}{}", source(n.source)),
            (None, None) => String::new(),
        };
        let _ = write!(
            table,
            "<tr class=\"ok\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.name),
            s.kind.name(),
            html::duration(s.frames * 1000 / u64::from(s.sample_rate.max(1))),
            s.loudness_lufs.map(|l| format!("{l:.1} LUFS")).unwrap_or_default(),
            esc(&tempo),
            esc(&key)
        );
    }
    for skipped in &draft.skipped {
        let _ = write!(
            table,
            "<tr class=\"skipped\"><td>{}</td><td colspan=\"5\">skipped: {}</td></tr>",
            esc(&skipped.name),
            esc(&skipped.reason)
        );
    }
    table.push_str("</tbody></table>");
    let (files, skipped) = (m.samples.len(), draft.skipped.len());
    let id = crate::util::random::<12>().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    {
        let mut drafts = web.drafts.lock().unwrap_or_else(|e| e.into_inner());
        if drafts.len() >= MAX_DRAFTS {
            drafts.clear();
        }
        drafts.insert(id.clone(), draft);
    }
    Ok(Json(json!({ "draft": id, "html": table, "files": files, "skipped": skipped })).into_response())
}

#[derive(Deserialize)]
pub struct DraftBody {
    draft: String,
}

/// Step two: signs and announces the analysed and imported folder.
pub async fn sign(State(web): State<Arc<Web>>, Json(body): Json<DraftBody>) -> Result<Response, WebError> {
    let draft =
        web.drafts.lock().unwrap_or_else(|e| e.into_inner()).remove(&body.draft).ok_or_else(|| {
            WebError(StatusCode::NOT_FOUND, "no such draft: analyse the folder again".into())
        })?;
    let outcome = web.node.finish_publish(draft).await.map_err(|e| bad(e.to_string()))?;
    web.hub.send("listings", &json!({ "pack_id": outcome.pack_id }));
    Ok(Json(outcome).into_response())
}

/// Drops an analysed folder: nothing is published.
pub async fn cancel(State(web): State<Arc<Web>>, Json(body): Json<DraftBody>) -> Response {
    let removed = web.drafts.lock().unwrap_or_else(|e| e.into_inner()).remove(&body.draft).is_some();
    Json(json!({ "cancelled": removed })).into_response()
}
