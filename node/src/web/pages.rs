//! The pages (GET, changing nothing): login, search, pack, library, publish,
//! sales, my packs, network; the fragments pages swap in; previews, files and the
//! event stream.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use smpl_index::SearchQuery;
use smpl_protocol::{LicenseTerms, Manifest, PackId};

use super::html::{self, esc, url};
use super::search::{self, Looked, SearchParams};
use super::{Credential, Refusal, Web, WebError, refused};
use crate::trade::OrderStatus;

const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

fn csrf(credential: &Credential) -> &str {
    match credential {
        Credential::Session { csrf } => csrf,
        Credential::Bearer => "",
    }
}

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    token: String,
}

/// Swaps a one-time login token for a session cookie and sends the browser on
/// to `/`, so the token leaves the address bar and the history.
pub async fn login(State(web): State<Arc<Web>>, Query(query): Query<LoginQuery>) -> Response {
    let Some(session) = web.guard.redeem(&query.token) else {
        web.guard.refusals.count(Refusal::BadLoginToken, "a login token that is unknown, used or expired");
        return refused(Refusal::BadLoginToken, false);
    };
    let cookie = format!("{}={session}; HttpOnly; SameSite=Strict; Path=/", web.guard.cookie_name());
    tracing::info!("web: a browser logged in");
    no_store(
        (StatusCode::SEE_OTHER, [(header::LOCATION, "/".to_string()), (header::SET_COOKIE, cookie)])
            .into_response(),
    )
}

/// A new one-time login URL, for `smpl ui` (bearer token only).
pub async fn new_login(
    State(web): State<Arc<Web>>,
    Extension(credential): Extension<Credential>,
) -> Response {
    if credential != Credential::Bearer {
        return WebError(StatusCode::FORBIDDEN, "login links are made with the API token only".into())
            .into_response();
    }
    axum::Json(serde_json::json!({ "url": web.login_url() })).into_response()
}

pub async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT).into_response()
}

pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

pub async fn events(State(web): State<Arc<Web>>) -> Response {
    no_store(web.hub.stream().into_response())
}

/// Packs this node holds a licence for, and its own.
async fn licensed(web: &Web) -> Result<HashSet<PackId>, WebError> {
    Ok(web.node.licenses(false).await?.into_iter().map(|l| l.pack_id).collect())
}

/// Runs a search and looks up the waveforms and licences of its rows (waveforms
/// from the packs' manifests, kept in [`super::WaveCache`] by pack and version).
async fn run_search(
    web: &Arc<Web>,
    params: &SearchParams,
) -> Result<(smpl_index::SearchResults, Looked), WebError> {
    let query: SearchQuery = params.query().map_err(|e| WebError(StatusCode::BAD_REQUEST, e))?;
    let results = web.node.search(query).await?;
    let mut licensed = licensed(web).await?;
    let me = web.node.node_id();
    let wanted: Vec<(PackId, String)> =
        results.hits.iter().filter_map(|h| h.sample.clone().map(|s| (h.pack_id, s))).collect();
    let packs: HashSet<PackId> = results.hits.iter().map(|h| h.pack_id).collect();
    let cache = web.clone();
    let (waves, own) = tokio::task::spawn_blocking(move || {
        let store = cache.node.store();
        let mut own = Vec::new();
        let mut found: HashMap<PackId, Arc<super::PackWaves>> = HashMap::new();
        for pack in packs {
            let Ok(Some(seq)) = store.latest_seq(&pack) else { continue };
            let cached = cache.waves.lock().unwrap_or_else(|e| e.into_inner()).get(&pack, seq);
            let entry = match cached {
                Some(entry) => entry,
                None => {
                    let Ok(Some((manifest, _))) = store.manifest(&pack) else { continue };
                    let entry = Arc::new(super::PackWaves::of(&manifest));
                    cache.waves.lock().unwrap_or_else(|e| e.into_inner()).put(pack, entry.clone());
                    entry
                }
            };
            if entry.author == me {
                own.push(pack);
            }
            found.insert(pack, entry);
        }
        let mut waves = HashMap::new();
        for (pack, sample) in wanted {
            if let Some(points) = found.get(&pack).and_then(|e| e.waves.get(&sample)) {
                waves.insert((pack, sample), points.clone());
            }
        }
        (waves, own)
    })
    .await
    .map_err(|e| WebError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    licensed.extend(own);
    Ok((results, Looked { waves, licensed }))
}

pub async fn search_page(
    State(web): State<Arc<Web>>,
    Extension(credential): Extension<Credential>,
    Query(params): Query<SearchParams>,
) -> Response {
    let mut body = search::form(&params);
    body.push_str("<div id=\"results\" class=\"results\" aria-live=\"polite\">");
    match run_search(&web, &params).await {
        Ok((results, looked)) => body.push_str(&search::results_fragment(&params, &results, &looked)),
        Err(WebError(_, e)) => body.push_str(&html::message("error", &e)),
    }
    body.push_str(
        "</div><p class=\"keys\">Keys: <kbd>/</kbd> search · <kbd>↑</kbd><kbd>↓</kbd> move and play · \
                   <kbd>Space</kbd> play · <kbd>Enter</kbd> open the pack</p>",
    );
    Html(html::page("Search", "/", csrf(&credential), &body)).into_response()
}

pub async fn results(State(web): State<Arc<Web>>, Query(params): Query<SearchParams>) -> Response {
    match run_search(&web, &params).await {
        Ok((results, looked)) => Html(search::results_fragment(&params, &results, &looked)).into_response(),
        Err(WebError(status, e)) => (status, Html(html::message("error", &e))).into_response(),
    }
}

fn not_found(csrf: &str, what: &str) -> Response {
    (StatusCode::NOT_FOUND, Html(html::page("Not found", "", csrf, &html::message("error", what))))
        .into_response()
}

pub async fn pack(
    State(web): State<Arc<Web>>,
    Extension(credential): Extension<Credential>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let csrf = csrf(&credential);
    let view = match web.node.resolve(&id).and_then(|p| web.node.show(&p)) {
        Ok(view) => view,
        Err(e) => return not_found(csrf, &e.to_string()),
    };
    let m = &view.manifest;
    let pack = m.pack_id.to_hex();
    let mut body = String::with_capacity(8192);
    let _ = write!(
        body,
        "<article class=\"pack\" data-pack=\"{pack}\"><h1>{}</h1><p class=\"by\">by <a href=\"/?author={}\">{}</a> \
         <code title=\"{}\">{}</code> · version {}</p>",
        esc(&m.title),
        m.author.to_hex(),
        esc(&m.author_name),
        m.author.to_hex(),
        html::short(&m.author),
        m.seq
    );
    if !m.description.is_empty() {
        let _ = write!(body, "<p class=\"description\">{}</p>", esc(&m.description));
    }
    let _ = write!(
        body,
        "<dl class=\"facts\"><dt>Genre</dt><dd>{}</dd><dt>Tags</dt><dd>{}</dd><dt>Licence</dt><dd>{}</dd>\
         <dt>Price</dt><dd>{}</dd><dt>Samples</dt><dd>{}</dd></dl>",
        esc(&m.genre),
        esc(&m.tags.join(", ")),
        esc(&html::terms(&m.license)),
        esc(&html::price(&m.price)),
        m.samples.len()
    );
    let _ = write!(body, "<section id=\"licence\" class=\"licence\" data-pack=\"{pack}\">");
    body.push_str(&licence_html(&web, &m.pack_id).await);
    body.push_str("</section>");
    body.push_str(
        "<table class=\"hits\" id=\"hits\"><thead><tr><th></th><th>Sample</th><th>Kind</th><th>BPM</th>\
                   <th>Key</th><th>Length</th><th>Loudness</th></tr></thead><tbody>",
    );
    for s in &m.samples {
        body.push_str("<tr class=\"hit\"");
        let _ = write!(
            body,
            " data-pack=\"{pack}\" data-sample=\"{}\" data-wave=\"{}\"",
            esc(&s.name),
            html::wave_hex(&s.waveform)
        );
        if s.preview.is_some() {
            let _ = write!(body, " data-preview=\"/ui/preview/{pack}?sample={}\"", url(&s.name));
        }
        body.push_str(
            "><td><button class=\"play\" type=\"button\" tabindex=\"-1\" aria-label=\"Play\">▶</button></td>",
        );
        let _ = write!(
            body,
            "<td class=\"name\"><span class=\"sname\">{}</span><canvas class=\"wave\" width=\"240\" height=\"28\"></canvas></td>",
            esc(&s.name)
        );
        let ms = if s.sample_rate == 0 { 0 } else { s.frames * 1000 / u64::from(s.sample_rate) };
        let _ = write!(
            body,
            "<td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            s.kind.name(),
            s.tempo.as_ref().map(|t| format!("{:.0}", t.bpm)).unwrap_or_default(),
            s.key.as_ref().map(|k| k.to_string()).unwrap_or_default(),
            html::duration(ms),
            s.loudness_lufs.map(|l| format!("{l:.1} LUFS")).unwrap_or_default()
        );
    }
    body.push_str("</tbody></table></article>");
    Html(html::page(&m.title, "", csrf, &body)).into_response()
}

/// The licence panel of a pack page: what this node may do with the pack now.
async fn licence_html(web: &Web, pack: &PackId) -> String {
    let manifest = match web.node.show(pack) {
        Ok(view) => view.manifest,
        Err(e) => return html::message("error", &e.to_string()),
    };
    let hex = pack.to_hex();
    let mut out = String::new();
    let download = format!(
        "<button class=\"fetch\" type=\"button\" data-pack=\"{hex}\">Download</button>\
         <progress class=\"progress\" hidden max=\"1\" value=\"0\"></progress><p class=\"fetched\"></p>"
    );
    if manifest.author == web.node.node_id() {
        out.push_str("<p class=\"state own\">Your pack.</p>");
        return out;
    }
    let licences = web.node.licenses(false).await.unwrap_or_default();
    if let Some(licence) = licences.iter().rev().find(|l| l.pack_id == *pack) {
        let _ = write!(
            out,
            "<p class=\"state issued\">Licence <code>{}</code> issued by the seller (version {}).</p>\
             <p><a class=\"view-certificate\" href=\"/ui/packs/{hex}/certificate?view=1\" target=\"_blank\">View the certificate</a> · \
             <a class=\"certificate\" href=\"/ui/packs/{hex}/certificate\" download>Save it</a></p>",
            licence.license_id, licence.seq
        );
        if licence.seq == manifest.seq || manifest.is_free() {
            out.push_str(&download);
        }
        return out;
    }
    if manifest.is_free() {
        out.push_str("<p class=\"state free\">Free to download.</p>");
        out.push_str(&download);
        return out;
    }
    let orders = web.node.purchases().await.unwrap_or_default();
    if let Some(order) = orders.iter().rev().find(|o| o.pack_id == *pack && o.seq == manifest.seq) {
        match order.status {
            OrderStatus::Pending => {
                let _ = write!(
                    out,
                    "<p class=\"state pending\">Order <code>{}</code> is pending: the seller decides. \
                     This page shows the licence when it is issued.</p>",
                    esc(&order.order_id)
                );
                return out;
            }
            OrderStatus::Rejected => {
                let _ = write!(
                    out,
                    "<p class=\"state rejected\">The seller rejected order <code>{}</code>{}.</p>",
                    esc(&order.order_id),
                    order.reason.as_deref().map(|r| format!(": {}", esc(r))).unwrap_or_default()
                );
            }
            OrderStatus::Issued => {}
        }
    }
    let _ = write!(
        out,
        "<form class=\"buy\" data-pack=\"{hex}\"><label>Payment reference <input name=\"payment_ref\" \
         autocomplete=\"off\" placeholder=\"e.g. the invoice or transfer id\" autofocus></label> \
         <button type=\"submit\">Buy for {}</button></form>",
        esc(&html::price(&manifest.price))
    );
    out
}

pub async fn licence_panel(State(web): State<Arc<Web>>, UrlPath(id): UrlPath<String>) -> Response {
    match web.node.resolve(&id) {
        Ok(pack) => no_store(Html(licence_html(&web, &pack).await).into_response()),
        Err(e) => WebError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct CertificateQuery {
    #[serde(default)]
    view: Option<String>,
}

/// The certificate of our licence for a pack, as a file to save or (`view`) to read.
pub async fn certificate(
    State(web): State<Arc<Web>>,
    UrlPath(id): UrlPath<String>,
    Query(query): Query<CertificateQuery>,
) -> Response {
    let pack = match web.node.resolve(&id) {
        Ok(pack) => pack,
        Err(e) => return WebError::from(e).into_response(),
    };
    match web.node.certificate(&pack).await {
        Ok((license_id, text)) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "{}; filename=\"licence-{license_id}.txt\"",
                        if query.view.is_some() { "inline" } else { "attachment" }
                    ),
                ),
            ],
            text,
        )
            .into_response(),
        Err(e) => WebError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct PreviewQuery {
    sample: String,
    #[serde(default)]
    format: Option<String>,
}

/// A preview clip: Ogg Vorbis as stored, or WAV decoded from it.
pub async fn preview(
    State(web): State<Arc<Web>>,
    UrlPath(id): UrlPath<String>,
    Query(query): Query<PreviewQuery>,
) -> Response {
    let result = async {
        let pack = web.node.resolve(&id)?;
        let preview = web.node.preview(&pack, &query.sample).await?;
        let bytes = tokio::fs::read(&preview.path).await.map_err(|e| {
            WebError(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the preview failed: {e}"))
        })?;
        if query.format.as_deref() == Some("wav") {
            let wav = tokio::task::spawn_blocking(move || super::wav::ogg_to_wav(bytes))
                .await
                .map_err(|e| WebError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
                .map_err(|e| WebError(StatusCode::INTERNAL_SERVER_ERROR, e))?;
            return Ok::<_, WebError>(([(header::CONTENT_TYPE, "audio/wav")], wav).into_response());
        }
        Ok(([(header::CONTENT_TYPE, "audio/ogg")], bytes).into_response())
    }
    .await;
    match result {
        Ok(mut response) => {
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("private, max-age=86400"));
            response
        }
        Err(e) => e.into_response(),
    }
}

/// The library folder, resolved (so that links and symlinks cannot lead out of it).
pub(super) fn library_root(web: &Web) -> Result<PathBuf, WebError> {
    let library = web
        .node
        .home()
        .config()
        .map_err(|e| WebError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .library;
    std::fs::create_dir_all(&library).and_then(|_| library.canonicalize()).map_err(|e| {
        WebError(StatusCode::INTERNAL_SERVER_ERROR, format!("the library {}: {e}", library.display()))
    })
}

/// `path`, resolved, when it lies inside the library; otherwise a counted refusal.
pub(super) fn inside_library(web: &Web, path: &Path) -> Result<PathBuf, WebError> {
    let root = library_root(web)?;
    match path.canonicalize() {
        Ok(real) if real.starts_with(&root) => Ok(real),
        _ => {
            web.guard
                .refusals
                .count(Refusal::OutsideLibrary, &format!("{} is not inside the library", path.display()));
            Err(WebError(StatusCode::FORBIDDEN, "only folders and files inside the library".into()))
        }
    }
}

#[derive(Deserialize)]
pub struct FileQuery {
    path: PathBuf,
}

/// A file of the library, for dragging a sample into a DAW.
pub async fn library_file(State(web): State<Arc<Web>>, Query(query): Query<FileQuery>) -> Response {
    let real = match inside_library(&web, &query.path) {
        Ok(real) => real,
        Err(e) => return e.into_response(),
    };
    let file = match tokio::fs::File::open(&real).await {
        Ok(file) => file,
        Err(e) => return WebError(StatusCode::NOT_FOUND, format!("{}: {e}", real.display())).into_response(),
    };
    let length = file.metadata().await.map(|m| m.len()).ok();
    let kind = match real.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("wav" | "wave") => "audio/wav",
        Some("flac") => "audio/flac",
        Some("ogg" | "oga") => "audio/ogg",
        Some("mp3") => "audio/mpeg",
        Some("aif" | "aiff" | "aifc") => "audio/aiff",
        _ => "application/octet-stream",
    };
    // Streamed in 64 KiB pieces: a library file can be large.
    let chunks = futures::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let mut response =
        ([(header::CONTENT_TYPE, kind)], axum::body::Body::from_stream(chunks)).into_response();
    if let Some(length) = length {
        response.headers_mut().insert(header::CONTENT_LENGTH, length.into());
    }
    response
}

/// Pack folders in the library: `<author (id)>/<pack>`, with their files.
fn library_folders(root: &Path) -> Vec<(PathBuf, Vec<PathBuf>)> {
    let mut out = Vec::new();
    let Ok(authors) = std::fs::read_dir(root) else { return out };
    for author in authors.flatten().filter(|e| e.path().is_dir()) {
        let Ok(packs) = std::fs::read_dir(author.path()) else { continue };
        for pack in packs.flatten().filter(|e| e.path().is_dir()) {
            let mut files = Vec::new();
            let mut stack = vec![pack.path()];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                    let path = entry.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if smpl_audio::is_audio_candidate(&path) && files.len() < 500 {
                        files.push(path);
                    }
                }
            }
            files.sort();
            out.push((pack.path(), files));
        }
    }
    out.sort();
    out
}

pub async fn library(State(web): State<Arc<Web>>, Extension(credential): Extension<Credential>) -> Response {
    let mut body = String::from("<h1>Library</h1>");
    let root = match library_root(&web) {
        Ok(root) => root,
        Err(WebError(_, e)) => {
            return Html(html::page("Library", "/library", csrf(&credential), &html::message("error", &e)))
                .into_response();
        }
    };
    let _ = write!(
        body,
        "<p class=\"note\">Packs are written to <code>{}</code>. Drag a sample into your DAW.</p>",
        esc(&root.display().to_string())
    );
    let scan_root = root.clone();
    let folders = tokio::task::spawn_blocking(move || library_folders(&scan_root)).await.unwrap_or_default();
    if folders.is_empty() {
        body.push_str("<p class=\"empty\">Nothing downloaded yet.</p>");
    }
    for (folder, files) in &folders {
        let rel = folder.strip_prefix(&root).unwrap_or(folder).display().to_string();
        let _ = write!(
            body,
            "<section class=\"folder\"><h2>{}</h2><button class=\"show\" type=\"button\" data-path=\"{}\">Show in folder</button><ul class=\"files\">",
            esc(&rel),
            esc(&folder.display().to_string())
        );
        for file in files {
            let name = file.strip_prefix(folder).unwrap_or(file).display().to_string();
            let href = format!("/ui/library/file?path={}", url(&file.display().to_string()));
            let _ = write!(
                body,
                "<li><a class=\"drag\" draggable=\"true\" href=\"{}\" data-name=\"{}\">{}</a></li>",
                esc(&href),
                esc(&name),
                esc(&name)
            );
        }
        body.push_str("</ul></section>");
    }
    body.push_str("<h2>Licences</h2>");
    match web.node.licenses(false).await {
        Ok(licences) if !licences.is_empty() => {
            body.push_str("<table class=\"list\"><thead><tr><th>Pack</th><th>Licence</th><th>Price</th><th></th></tr></thead><tbody>");
            for l in licences {
                let _ = write!(
                    body,
                    "<tr><td><a href=\"/packs/{}\">{}</a></td><td><code>{}</code></td><td>{}</td>\
                     <td><a href=\"/ui/packs/{}/certificate\" download>certificate</a></td></tr>",
                    l.pack_id.to_hex(),
                    esc(&l.title),
                    l.license_id,
                    esc(&html::price(&l.price)),
                    l.pack_id.to_hex()
                );
            }
            body.push_str("</tbody></table>");
        }
        Ok(_) => body.push_str("<p class=\"empty\">No licences yet.</p>"),
        Err(e) => body.push_str(&html::message("error", &e.to_string())),
    }
    body.push_str("<h2>You may like</h2>");
    match web.node.recommend(10).await {
        Ok(recs) if !recs.is_empty() => {
            body.push_str("<ul class=\"recs\">");
            for r in recs {
                let _ = write!(
                    body,
                    "<li><a href=\"/packs/{}\">{}</a> by {} · {} — <span class=\"why\">{}</span></li>",
                    r.pack_id.to_hex(),
                    esc(&r.title),
                    esc(&r.author_name),
                    esc(&html::price(&r.price)),
                    esc(&r.reason)
                );
            }
            body.push_str("</ul>");
        }
        Ok(_) => body.push_str("<p class=\"empty\">Recommendations follow from what is in your library.</p>"),
        Err(e) => body.push_str(&html::message("error", &e.to_string())),
    }
    Html(html::page("Library", "/library", csrf(&credential), &body)).into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PublishQuery {
    /// One of this node's packs, to publish a new version of.
    update: String,
}

/// The publish form: empty for a new pack; for `?update=PACK`, filled with the
/// pack's current fields.
pub async fn publish(
    State(web): State<Arc<Web>>,
    Extension(credential): Extension<Credential>,
    Query(query): Query<PublishQuery>,
) -> Response {
    let current = match query.update.trim() {
        "" => None,
        text => match web.node.resolve(text).and_then(|pack| web.node.show(&pack)) {
            Ok(view) if view.manifest.author == web.node.node_id() => Some(view.manifest),
            Ok(_) => return not_found(csrf(&credential), "one of your packs"),
            Err(e) => {
                let body = html::message("error", &e.to_string());
                return Html(html::page("Publish", "/publish", csrf(&credential), &body)).into_response();
            }
        },
    };
    let field = |f: fn(&Manifest) -> String| current.as_ref().map(f).unwrap_or_default();
    let mut body = match &current {
        Some(m) => format!(
            "<h1>New version of <a href=\"/packs/{}\">{}</a></h1><p>Version {} is listed now. Buyers of it get \
             this version free, unless it is a paid upgrade (<code>smpl publish --paid-upgrade</code>).</p>",
            m.pack_id.to_hex(),
            esc(&m.title),
            m.seq
        ),
        None => "<h1>Publish a pack</h1>".to_string(),
    };
    let _ = write!(
        body,
        "<div class=\"publish-page\"><form id=\"publish\" class=\"publish\">\
        <input type=\"hidden\" name=\"update\" value=\"{update}\">\
        <label>Folder on this machine <input name=\"dir\" required autocomplete=\"off\" placeholder=\"/home/me/packs/dusty-drums\"></label>\
        <p id=\"dir-check\" class=\"check\" aria-live=\"polite\"></p>\
        <label>Title <input name=\"title\" required value=\"{title}\"></label>\
        <label>Genre <input name=\"genre\" value=\"{genre}\"></label>\
        <label>Tags <input name=\"tags\" placeholder=\"dusty, vinyl, drums\" value=\"{tags}\"></label>\
        <label>Description <textarea name=\"description\" rows=\"3\">{description}</textarea></label>\
        <div class=\"row\"><label>Price <input name=\"price\" size=\"6\" placeholder=\"free\" value=\"{price}\"></label>\
        <label>Currency <input name=\"currency\" size=\"4\" value=\"{currency}\"></label>\
        <label>Licence <input name=\"license\" value=\"{license}\"></label></div>\
        <div class=\"row\"><label>Stated BPM <input name=\"bpm\" size=\"5\"></label>\
        <label>Stated key <input name=\"key\" size=\"5\" placeholder=\"Am\"></label></div>\
        <button type=\"submit\">Analyse</button></form>\
        <div><progress id=\"publish-progress\" hidden max=\"1\" value=\"0\"></progress>\
        <section id=\"analysis\" aria-live=\"polite\"></section></div></div>",
        update = field(|m| m.pack_id.to_hex()),
        title = esc(&field(|m| m.title.clone())),
        genre = esc(&field(|m| m.genre.clone())),
        tags = esc(&field(|m| m.tags.join(", "))),
        description = esc(&field(|m| m.description.clone())),
        price = field(|m| m.price.as_ref().map(|p| format!("{:.2}", p.amount())).unwrap_or_default()),
        currency = esc(&current
            .as_ref()
            .and_then(|m| m.price.as_ref())
            .map_or("USD".into(), |p| p.currency.clone())),
        license = esc(&current.as_ref().map_or("royalty-free".into(), |m| match &m.license {
            LicenseTerms::Named(name) => name.clone(),
            LicenseTerms::Custom(text) => text.clone(),
        })),
    );
    Html(html::page("Publish", "/publish", csrf(&credential), &body)).into_response()
}

pub async fn sales(State(web): State<Arc<Web>>, Extension(credential): Extension<Credential>) -> Response {
    let mut body = String::from("<h1>Sales</h1><section id=\"orders\">");
    match web.node.sales(false).await {
        Ok(orders) if !orders.is_empty() => {
            body.push_str(
                "<table class=\"list\"><thead><tr><th>Order</th><th>Pack</th><th>Buyer</th><th>Price</th>\
                           <th>Payment ref</th><th>Status</th><th></th></tr></thead><tbody>",
            );
            for o in orders.iter().rev() {
                let _ = write!(
                    body,
                    "<tr data-order=\"{id}\"><td><code>{id}</code></td><td><a href=\"/packs/{}\">{}</a></td><td><code>{}</code></td>\
                     <td>{}</td><td>{}</td><td class=\"status {}\">{}</td><td>",
                    o.pack_id.to_hex(),
                    esc(&o.title),
                    html::short(&o.buyer),
                    esc(&html::price(&o.price)),
                    esc(o.payment_ref.as_deref().unwrap_or("")),
                    o.status,
                    o.status,
                    id = esc(&o.order_id),
                );
                if o.status == OrderStatus::Pending {
                    let _ = write!(
                        body,
                        "<button class=\"approve\" type=\"button\" data-order=\"{id}\">Approve</button> \
                         <input class=\"reason\" placeholder=\"reason\" aria-label=\"Reason to reject\" size=\"10\"> \
                         <button class=\"reject\" type=\"button\" data-order=\"{id}\">Reject</button>",
                        id = esc(&o.order_id)
                    );
                } else if let Some(reason) = &o.reason {
                    body.push_str(&esc(reason));
                }
                body.push_str("</td></tr>");
            }
            body.push_str("</tbody></table>");
        }
        Ok(_) => body.push_str("<p class=\"empty\">No orders yet.</p>"),
        Err(e) => body.push_str(&html::message("error", &e.to_string())),
    }
    body.push_str("</section><h2>Issued licences</h2>");
    match web.node.licenses(true).await {
        Ok(licences) if !licences.is_empty() => {
            body.push_str("<table class=\"list\"><thead><tr><th>Licence</th><th>Pack</th><th>Buyer</th><th>Price</th></tr></thead><tbody>");
            for l in licences {
                let _ = write!(
                    body,
                    "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                    l.license_id,
                    esc(&l.title),
                    html::short(&l.buyer),
                    esc(&html::price(&l.price))
                );
            }
            body.push_str("</tbody></table>");
        }
        Ok(_) => body.push_str("<p class=\"empty\">None yet.</p>"),
        Err(e) => body.push_str(&html::message("error", &e.to_string())),
    }
    no_store(Html(html::page("Sales", "/sales", csrf(&credential), &body)).into_response())
}

pub async fn mine(State(web): State<Arc<Web>>, Extension(credential): Extension<Credential>) -> Response {
    let mut body = String::from("<h1>My packs</h1>");
    let query =
        SearchQuery { author: Some(web.node.node_id()), packs: true, limit: 500, ..SearchQuery::default() };
    match web.node.search(query).await {
        Ok(results) if !results.hits.is_empty() => {
            body.push_str("<table class=\"list\"><thead><tr><th>Pack</th><th>Genre</th><th>Price</th><th></th></tr></thead><tbody>");
            for h in results.hits {
                let _ = write!(
                    body,
                    "<tr><td><a href=\"/packs/{id}\">{}</a></td><td>{}</td><td>{}</td>\
                     <td><a class=\"button\" href=\"/publish?update={id}\">New version</a> \
                     <button class=\"retract\" type=\"button\" data-pack=\"{id}\">Retract</button></td></tr>",
                    esc(&h.pack_title),
                    esc(&h.genre),
                    esc(&html::price(&h.price)),
                    id = h.pack_id.to_hex()
                );
            }
            body.push_str("</tbody></table>");
        }
        Ok(_) => body.push_str(
            "<p class=\"empty\">You have not published a pack. <a href=\"/publish\">Publish one</a>.</p>",
        ),
        Err(e) => body.push_str(&html::message("error", &e.to_string())),
    }
    Html(html::page("My packs", "/mine", csrf(&credential), &body)).into_response()
}

pub async fn network(
    State(web): State<Arc<Web>>,
    Extension(credential): Extension<Credential>,
    headers: HeaderMap,
) -> Response {
    let node = &web.node;
    let mut body = String::from("<h1>Network</h1><dl class=\"facts\">");
    let _ = write!(body, "<dt>Node id</dt><dd><code class=\"id\">{}</code></dd>", node.node_id());
    match node.invite().await {
        Ok(invite) => {
            let _ = write!(
                body,
                "<dt>Invite line to give a friend</dt><dd><code class=\"invite\">{}</code> \
                 (<code>smpl connect</code> takes it)</dd>",
                esc(&invite.line())
            );
        }
        Err(e) => {
            let _ = write!(body, "<dt>Invite line</dt><dd>{}</dd>", esc(&e.to_string()));
        }
    }
    let listen = node.listen_addrs().await;
    body.push_str("<dt>Listen addresses</dt><dd><ul class=\"addrs\">");
    for a in &listen {
        let _ = write!(body, "<li><code>{}</code></li>", esc(a));
    }
    body.push_str("</ul></dd>");
    if let Some(network) = node.network() {
        let reach = network.reachability().borrow().to_string();
        let _ = write!(body, "<dt>Reachability</dt><dd>{}</dd>", esc(&reach));
        let stats = network.stats();
        let n = |v: &std::sync::atomic::AtomicU64| v.load(std::sync::atomic::Ordering::Relaxed);
        let _ = write!(
            body,
            "<dt>Sync</dt><dd id=\"sync\">{} reconciliation rounds, {} listings fetched by sync; gossip: {} new, \
             {} already known, {} invalid</dd>",
            n(&stats.rounds),
            n(&stats.fetched),
            n(&stats.gossip_new),
            n(&stats.gossip_stale),
            n(&stats.gossip_invalid)
        );
    }
    let status = node.status().await;
    let (listings, queue) = match &status {
        Ok(s) => (s.listings.to_string(), s.index_queue.to_string()),
        Err(_) => ("?".into(), "?".into()),
    };
    let _ = write!(body, "<dt>Listings known</dt><dd id=\"listings\">{listings}</dd>");
    let _ = write!(body, "<dt>Waiting to be indexed</dt><dd>{queue}</dd>");
    if let Ok(s) = &status {
        let r = s.relay_bytes;
        let _ = write!(
            body,
            "<dt>Through relays</dt><dd id=\"relay-bytes\">{} bytes sent, {} received; {} forwarded for others</dd>",
            r.sent, r.received, r.forwarded
        );
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let _ = write!(body, "<dt>This page</dt><dd><code>http://{}</code></dd></dl>", esc(host));
    body.push_str(
        "<h2>Peers</h2><form id=\"connect\" class=\"connect row\"><label>Connect to a friend \
         <input name=\"addr\" required autocomplete=\"off\" size=\"40\" \
         placeholder=\"the invite line they gave you, or an address\"></label>\
         <button type=\"submit\">Connect</button></form><section id=\"peers\">",
    );
    match node.peers().await {
        Ok(peers) if !peers.is_empty() => {
            body.push_str("<ul class=\"peers\">");
            for p in peers {
                let rtt = p.rtt_ms.map(|ms| format!(", {ms:.0} ms")).unwrap_or_default();
                let _ = write!(
                    body,
                    "<li><code>{}</code> {}{} {}</li>",
                    p.node_id,
                    esc(&p.path),
                    esc(&rtt),
                    esc(&p.addrs.join(", "))
                );
            }
            body.push_str("</ul>");
        }
        Ok(_) => body.push_str("<p class=\"empty\">No peers connected.</p>"),
        Err(e) => body.push_str(&html::message("error", &e.to_string())),
    }
    body.push_str("</section>");
    body.push_str("<h2>Dropped or refused since the node started</h2><ul class=\"dropped\">");
    let dropped = status.map(|s| s.dropped).unwrap_or_else(|_| node.dropped());
    if let Ok(serde_json::Value::Object(counts)) = serde_json::to_value(dropped) {
        for (what, n) in counts {
            let _ = write!(body, "<li>{}: {n}</li>", what.replace('_', " "));
        }
    }
    body.push_str("</ul><h2>Refused requests to this page</h2><ul class=\"refusals\">");
    for (reason, n) in web.guard.refusals.snapshot() {
        let _ = write!(body, "<li>{reason}: {n}</li>");
    }
    body.push_str("</ul>");
    no_store(Html(html::page("Network", "/network", csrf(&credential), &body)).into_response())
}
