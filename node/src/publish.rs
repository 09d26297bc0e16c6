//! Publishing: folder → analysis and blob import (in parallel, off the runtime) →
//! collection → signed manifest → sled (with the index queue entry) in one step.
//!
//! A publish either completes or leaves no manifest behind: the manifest is written
//! only after every blob and the collection are stored and synced, so a crash at
//! any point leaves at most unreferenced blobs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use smpl_audio::Analysis;
use smpl_protocol::{
    BlobHash, Identity, Key, LicenseTerms, Manifest, Mode, Note, PackId, PaymentInfo, Price, SampleEntry,
    SampleKind, Signed, Source, Tempo, limits, slugify,
};
use tokio::sync::mpsc;

use crate::blobs::{BlobError, Blobs, from_iroh};
use crate::store::{Accepted, Store, StoreError};

/// What the producer asks to publish: a new pack, or (`update`) a new version of
/// one of theirs. A field left `None` takes the pack's current value in an update
/// and the default in a new pack.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PublishRequest {
    pub dir: PathBuf,
    /// The pack to publish a new version of (an id or a unique prefix of it);
    /// `None` makes a new pack, refused when the title names one of ours.
    #[serde(default)]
    pub update: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub genre: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
    /// A new price; `free` makes the pack free. Neither: free for a new pack, the
    /// current price for an update.
    #[serde(default)]
    pub price: Option<Price>,
    #[serde(default)]
    pub free: bool,
    /// `None`: royalty-free for a new pack, the current terms for an update.
    #[serde(default)]
    pub license: Option<LicenseTerms>,
    /// A tempo the producer states for the pack's loops (a file name that states
    /// one wins for that file).
    #[serde(default)]
    pub bpm: Option<f32>,
    /// A key the producer states for the pack's samples (a file name that states
    /// one wins for that file).
    #[serde(default)]
    pub key: Option<Key>,
    /// A cover image (PNG or JPEG); without one, a `cover.png`, `cover.jpg` or
    /// `cover.jpeg` at the top of the folder is used.
    #[serde(default)]
    pub cover: Option<PathBuf>,
    /// How buyers pay (shown before buying); `None` keeps the current one.
    #[serde(default)]
    pub payment: Option<PaymentInfo>,
    /// This version needs a new licence: licences of earlier versions do not cover it.
    #[serde(default)]
    pub paid_upgrade: bool,
    /// Go ahead with a change of price or licence terms (without it, such an
    /// update is refused with the difference, and nothing is published).
    #[serde(default)]
    pub confirm: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PublishOutcome {
    pub pack_id: PackId,
    pub seq: u64,
    pub samples: usize,
    pub skipped: Vec<Skipped>,
    /// An update whose content and fields equal the current version: no version
    /// was made, `seq` is the current one.
    #[serde(default)]
    pub unchanged: bool,
    /// What changed from the previous version, one line each (empty for a new pack).
    #[serde(default)]
    pub changes: Vec<String>,
}

/// Progress of a publish, streamed to the CLI as JSON lines.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PublishEvent {
    Started { files: usize, bytes: u64 },
    File { name: String, bytes: u64 },
    Skipped(Skipped),
    Done(PublishOutcome),
    Error { message: String },
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot read folder {path}: {source}")]
    ReadDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} is not a folder")]
    NotADir(PathBuf),
    #[error("no audio could be published from {dir}{details}")]
    NoAudio { dir: PathBuf, details: String },
    #[error("{dir} holds {count} audio files, over the limit of {max} per pack")]
    TooMany { dir: PathBuf, count: usize, max: usize },
    #[error("invalid pack: {0}")]
    Invalid(String),
    #[error("pack {0} was retracted; publish it under a new title")]
    Retracted(PackId),
    #[error(
        "you already have a pack titled {title:?} ({pack}); `smpl publish DIR --update {pack}` makes a new \
         version of it, or choose another title"
    )]
    TitleTaken { title: String, pack: PackId },
    #[error("cannot update: {0}")]
    Update(String),
    #[error("a new pack needs a title (--title)")]
    NoTitle,
    #[error("this update changes {}; run it again with --yes to publish it", .0.join(" and "))]
    NeedsConfirmation(Vec<String>),
    #[error("cover {path}: {reason}")]
    Cover { path: PathBuf, reason: String },
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("analysis task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A file found in the folder: its path and its name inside the pack.
struct Found {
    path: PathBuf,
    name: String,
    bytes: u64,
}

/// Walks `dir` (following no symlinks out of it) and splits audio from the rest.
fn scan(dir: &Path) -> Result<(Vec<Found>, Vec<Skipped>), PublishError> {
    let meta = std::fs::metadata(dir).map_err(|source| PublishError::ReadDir { path: dir.into(), source })?;
    if !meta.is_dir() {
        return Err(PublishError::NotADir(dir.into()));
    }
    let mut audio = Vec::new();
    let mut skipped = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let entries = std::fs::read_dir(&current)
            .map_err(|source| PublishError::ReadDir { path: current.clone(), source })?;
        for entry in entries {
            let entry = entry.map_err(|source| PublishError::ReadDir { path: current.clone(), source })?;
            let path = entry.path();
            let file_type =
                entry.file_type().map_err(|source| PublishError::ReadDir { path: path.clone(), source })?;
            let name = pack_name(dir, &path);
            if name.split('/').any(|part| part.starts_with('.')) {
                continue;
            }
            if file_type.is_dir() {
                stack.push(path);
            } else if !file_type.is_file() {
                skipped.push(Skipped { name, reason: "not a regular file".into() });
            } else if name.len() > limits::MAX_FILE_NAME {
                skipped.push(Skipped {
                    name,
                    reason: format!("path longer than {} bytes", limits::MAX_FILE_NAME),
                });
            } else if !smpl_audio::is_audio_candidate(&path) {
                skipped.push(Skipped { name, reason: "not an audio file".into() });
            } else {
                let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
                audio.push(Found { path, name, bytes });
            }
        }
    }
    audio.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((audio, skipped))
}

/// The `/`-separated name of `path` inside `dir`, with characters a pack name may
/// not hold replaced.
fn pack_name(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    rel.components()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .chars()
                .map(|ch| if ch.is_control() || ch == '\\' || ch == ':' { '_' } else { ch })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Tempo and key a producer put in a file name, marked [`Source::Name`]: a tempo as
/// `128bpm`, `128 BPM`, or a bare `128` (60–200) that ends the name or comes just before
/// a key (`Rollin 128.wav`, `Pad 90 Am.wav`); a key as a note with an explicit mode
/// (`Amin`, `F#m`, `Cmaj`).
pub fn stated_from_name(name: &str) -> (Option<Tempo>, Option<Key>) {
    let tokens = name_tokens(name);
    let mut tempo = None;
    let mut key = None;
    for (i, token) in tokens.iter().enumerate() {
        let lower = token.to_ascii_lowercase();
        let next = tokens.get(i + 1);
        let marked = lower
            .strip_suffix("bpm")
            .filter(|n| !n.is_empty())
            .or_else(|| next.filter(|next| next.eq_ignore_ascii_case("bpm")).map(|_| lower.as_str()))
            .and_then(|n| n.parse::<f32>().ok())
            .filter(|b| (40.0..=300.0).contains(b));
        let bare = Some(lower.as_str())
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0'))
            .filter(|_| next.is_none_or(|next| looks_like_key(next)))
            .and_then(|n| n.parse::<f32>().ok())
            .filter(|b| (60.0..=200.0).contains(b));
        if let Some(bpm) = marked.or(bare) {
            tempo.get_or_insert(Tempo { bpm, source: Source::Name, confidence: 1.0 });
            continue;
        }
        if key.is_none() && looks_like_key(token) {
            key = Key::parse(token).ok().map(|k| Key { source: Source::Name, ..k });
        }
    }
    (tempo, key)
}

/// The words of a file name without its folders and extension.
fn name_tokens(name: &str) -> Vec<&str> {
    let stem = name.rsplit('/').next().unwrap_or(name);
    let stem = stem.rsplit_once('.').map_or(stem, |(s, _)| s);
    stem.split(['_', '-', ' ', '.', '(', ')', '[', ']']).filter(|t| !t.is_empty()).collect()
}

/// A note with its octave in a file name (`Piano_C4.wav`, `Bass F#1.wav`): how one-shots
/// state their root note. A bare letter is too ambiguous to count.
fn note_from_name(name: &str) -> Option<Note> {
    name_tokens(name).iter().find_map(|token| {
        let mut chars = token.chars();
        let first = chars.next()?;
        if !('A'..='G').contains(&first) {
            return None;
        }
        let rest = chars.as_str();
        let (accidental, digits) = match rest.strip_prefix(['#', 'b']) {
            Some(d) => (&rest[..1], d),
            None => ("", rest),
        };
        let octave: i8 = digits.parse().ok().filter(|o| (0..=8).contains(o))?;
        if digits.len() != 1 {
            return None;
        }
        let key = Key::parse(&format!("{first}{accidental}")).ok()?;
        Some(Note { pitch_class: key.tonic, octave: Some(octave), source: Source::Name })
    })
}

/// A token that names a key unambiguously: a note with an explicit mode suffix.
fn looks_like_key(token: &str) -> bool {
    let mut chars = token.chars();
    let Some(first) = chars.next() else { return false };
    if !('A'..='G').contains(&first) {
        return false;
    }
    let rest = chars.as_str();
    let rest = rest.strip_prefix(['#', 'b']).unwrap_or(rest);
    matches!(rest, "m" | "min" | "minor" | "maj" | "major" | "Min" | "Maj")
}

/// How many files a publish analyses and imports at once: two per core. An import
/// passes a file through several threads (the read, the blob store's actor, its
/// hashing task, the wait for the result), so with only one file per core a core
/// idles at every hand-over; analysis is CPU-bound and does not mind the overlap.
pub fn concurrency() -> usize {
    2 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The fields of a pack a publish sets: the request's, else the previous
/// version's (an update), else the defaults (a new pack).
struct Fields {
    title: String,
    genre: String,
    tags: Vec<String>,
    description: String,
    price: Option<Price>,
    license: LicenseTerms,
    payment: Option<PaymentInfo>,
}

impl Fields {
    fn of(request: &PublishRequest, previous: Option<&Manifest>) -> Result<Fields, PublishError> {
        let title = match (&request.title, previous) {
            (Some(title), _) if !title.trim().is_empty() => title.trim().to_string(),
            (_, Some(m)) => m.title.clone(),
            _ => return Err(PublishError::NoTitle),
        };
        let price = if request.free {
            None
        } else {
            request.price.clone().or_else(|| previous.and_then(|m| m.price.clone()))
        };
        Ok(Fields {
            title,
            genre: request
                .genre
                .as_deref()
                .map(smpl_protocol::normalize_genre)
                .or_else(|| previous.map(|m| m.genre.clone()))
                .unwrap_or_default(),
            tags: request
                .tags
                .as_deref()
                .map(normalize_tags)
                .or_else(|| previous.map(|m| m.tags.clone()))
                .unwrap_or_default(),
            description: request
                .description
                .clone()
                .or_else(|| previous.map(|m| m.description.clone()))
                .unwrap_or_default(),
            price,
            license: request
                .license
                .clone()
                .or_else(|| previous.map(|m| m.license.clone()))
                .unwrap_or_else(|| LicenseTerms::Named("royalty-free".into())),
            payment: request.payment.clone().or_else(|| previous.and_then(|m| m.payment.clone())),
        })
    }

    /// The changes of price and terms a producer must confirm.
    fn needs_confirmation(&self, previous: &Manifest) -> Vec<String> {
        let mut changes = Vec::new();
        if self.price != previous.price {
            changes.push(format!(
                "the price from {} to {}",
                price_text(&previous.price),
                price_text(&self.price)
            ));
        }
        if self.license != previous.license {
            changes.push(format!(
                "the licence from {} to {}",
                terms_text(&previous.license),
                terms_text(&self.license)
            ));
        }
        changes
    }
}

fn price_text(price: &Option<Price>) -> String {
    price.as_ref().map_or("free".to_string(), |p| p.to_string())
}

fn terms_text(terms: &LicenseTerms) -> String {
    match terms {
        LicenseTerms::Named(name) => name.clone(),
        LicenseTerms::Custom(text) => format!("custom terms {text:?}"),
    }
}

/// What changed from `previous` to `next`, one line each, for the producer.
fn changes(previous: &Manifest, next: &Manifest) -> Vec<String> {
    let mut lines = Vec::new();
    let mut field = |name: &str, before: String, after: String| {
        if before != after {
            lines.push(format!("{name}: {before:?} → {after:?}"));
        }
    };
    field("title", previous.title.clone(), next.title.clone());
    field("genre", previous.genre.clone(), next.genre.clone());
    field("tags", previous.tags.join(","), next.tags.join(","));
    field("description", previous.description.clone(), next.description.clone());
    field("price", price_text(&previous.price), price_text(&next.price));
    field("licence", terms_text(&previous.license), terms_text(&next.license));
    let payment = |m: &Manifest| {
        m.payment.as_ref().map_or(String::new(), |p| format!("{} {}", p.text, p.url.as_deref().unwrap_or("")))
    };
    field("payment", payment(previous), payment(next));
    let old: std::collections::HashMap<&str, BlobHash> =
        previous.samples.iter().map(|s| (s.name.as_str(), s.hash)).collect();
    let new: std::collections::HashMap<&str, BlobHash> =
        next.samples.iter().map(|s| (s.name.as_str(), s.hash)).collect();
    let added = new.keys().filter(|n| !old.contains_key(*n)).count();
    let removed = old.keys().filter(|n| !new.contains_key(*n)).count();
    let changed = new.iter().filter(|(n, h)| old.get(*n).is_some_and(|o| o != *h)).count();
    if added + removed + changed > 0 {
        lines.push(format!("files: {added} added, {changed} changed, {removed} removed"));
    } else if previous.samples != next.samples {
        lines.push("sample details (stated tempo or key)".into());
    }
    if previous.cover != next.cover {
        lines.push("cover".into());
    }
    if next.licenses_from != previous.licenses_from {
        lines.push("paid upgrade: licences of earlier versions do not cover this one".into());
    }
    lines
}

/// The largest cover image accepted.
pub const MAX_COVER_BYTES: u64 = 2 * 1024 * 1024;

/// The cover file of a publish: the one asked for, or a `cover.*` image at the
/// top of the folder.
fn cover_path(request: &PublishRequest) -> Option<PathBuf> {
    if let Some(path) = &request.cover {
        return Some(path.clone());
    }
    ["cover.png", "cover.jpg", "cover.jpeg", "Cover.png", "Cover.jpg"]
        .iter()
        .map(|name| request.dir.join(name))
        .find(|path| path.is_file())
}

/// Reads and checks a cover image: PNG or JPEG, at most [`MAX_COVER_BYTES`].
fn read_cover(path: &Path) -> Result<Vec<u8>, PublishError> {
    let bad = |reason: String| PublishError::Cover { path: path.to_path_buf(), reason };
    let len = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?.len();
    if len > MAX_COVER_BYTES {
        return Err(bad(format!("{len} bytes, over the limit of {MAX_COVER_BYTES}")));
    }
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    if !(bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.starts_with(&[0xff, 0xd8, 0xff])) {
        return Err(bad("not a PNG or JPEG image".into()));
    }
    Ok(bytes)
}

/// The name a pack's cover has in its previews collection (sample names never
/// start with a dot).
pub const COVER_NAME: &str = ".cover";

/// A folder analysed and imported but not signed: [`prepare`] makes one and
/// [`finish`] signs and stores it. Dropping it publishes nothing; its temp tags
/// are what keep the imported blobs, so they are collected after it.
pub struct Draft {
    /// The manifest to sign (`seq`, `created_at` and `licenses_from` are set by
    /// [`finish`]).
    pub manifest: Manifest,
    pub skipped: Vec<Skipped>,
    /// What differs from the current version (empty for a new pack).
    pub changes: Vec<String>,
    /// The current version, for an update.
    pub previous: Option<Manifest>,
    previews: Vec<(String, BlobHash)>,
    tags: Vec<iroh_blobs::api::TempTag>,
    paid_upgrade: bool,
    /// How long [`prepare`] took: the folder's analysis and import.
    pub prepared_in: Duration,
}

impl Draft {
    /// An update that changes nothing: [`finish`] makes no version of it.
    pub fn unchanged(&self) -> bool {
        let Some(previous) = &self.previous else { return false };
        let same = Manifest {
            seq: previous.seq,
            created_at: previous.created_at,
            licenses_from: self.licenses_from(previous.seq + 1),
            ..self.manifest.clone()
        };
        same == *previous || (self.changes.is_empty() && same.samples == previous.samples)
    }

    fn licenses_from(&self, seq: u64) -> Option<u64> {
        if self.paid_upgrade && self.manifest.price.is_some() {
            Some(seq)
        } else {
            self.previous.as_ref().and_then(|m| m.licenses_from)
        }
    }
}

/// Step one of a publish (a new pack, or a new version of `previous`, one of
/// this node's packs that the caller resolved from `request.update`): checks the fields, analyses every file of the folder
/// and imports it into the blob store. Nothing is signed or announced.
pub async fn prepare(
    identity: &Identity,
    author_name: &str,
    store: &Store,
    blobs: &Blobs,
    request: PublishRequest,
    previous: Option<Manifest>,
    progress: mpsc::Sender<PublishEvent>,
) -> Result<Draft, PublishError> {
    let started = Instant::now();
    let fields = Fields::of(&request, previous.as_ref())?;
    let author = identity.node_id();
    let slug = previous.as_ref().map_or_else(|| slugify(&fields.title), |m| m.slug.clone());
    let pack_id = PackId::derive(&author, &slug);
    match &previous {
        Some(previous) => {
            let confirm = fields.needs_confirmation(previous);
            if !confirm.is_empty() && !request.confirm {
                return Err(PublishError::NeedsConfirmation(confirm));
            }
        }
        None => {
            if store.retraction(&pack_id)?.is_some() {
                return Err(PublishError::Retracted(pack_id));
            }
            if store.latest_seq(&pack_id)?.is_some() {
                return Err(PublishError::TitleTaken { title: fields.title.clone(), pack: pack_id });
            }
        }
    }
    let cover = match cover_path(&request) {
        Some(path) => Some((read_cover(&path)?, path)),
        None => None,
    };

    let dir = request.dir.clone();
    let scan_dir = dir.clone();
    let (found, mut skipped) = tokio::task::spawn_blocking(move || scan(&scan_dir)).await??;
    if let Some((_, path)) = &cover {
        skipped.retain(|s| dir.join(&s.name) != *path);
    }
    if found.len() > limits::MAX_SAMPLES {
        return Err(PublishError::TooMany { dir, count: found.len(), max: limits::MAX_SAMPLES });
    }
    let total_bytes = found.iter().map(|f| f.bytes).sum();
    let _ = progress.send(PublishEvent::Started { files: found.len(), bytes: total_bytes }).await;
    for s in &skipped {
        let _ = progress.send(PublishEvent::Skipped(s.clone())).await;
    }

    // Analyse and import every file, a few at a time; the temp tags keep the
    // imported blobs alive until the collection holds them.
    let mut results = stream::iter(found)
        .map(|file| async move {
            let path = file.path.clone();
            let analysis = tokio::task::spawn_blocking(move || smpl_audio::analyze_file(&path));
            let import = blobs.import_file(&file.path);
            let (analysis, import) = tokio::join!(analysis, import);
            (file, analysis, import)
        })
        .buffer_unordered(concurrency());

    let mut entries = Vec::new();
    let mut tags = Vec::new();
    let mut previews = Vec::new();
    while let Some((file, analysis, import)) = results.next().await {
        let outcome = match (analysis, import) {
            (Ok(Ok(a)), Ok(tag)) => Ok((a, tag)),
            (Ok(Err(e)), _) => Err(e.to_string()),
            (Err(e), _) => Err(format!("analysis crashed: {e}")),
            (_, Err(e)) => Err(e.to_string()),
        };
        match outcome {
            Ok((mut analysis, tag)) => {
                let _ =
                    progress.send(PublishEvent::File { name: file.name.clone(), bytes: file.bytes }).await;
                let preview = match analysis.preview.take() {
                    Some(clip) => {
                        let preview_tag = blobs.add_bytes(clip).await?;
                        let hash = from_iroh(&preview_tag.hash());
                        previews.push((file.name.clone(), hash));
                        tags.push(preview_tag);
                        Some(hash)
                    }
                    None => None,
                };
                entries.push(sample_entry(
                    file.name,
                    file.bytes,
                    from_iroh(&tag.hash()),
                    analysis,
                    preview,
                    &request,
                ));
                tags.push(tag);
            }
            Err(reason) => {
                let s = Skipped { name: file.name, reason };
                let _ = progress.send(PublishEvent::Skipped(s.clone())).await;
                skipped.push(s);
            }
        }
    }
    if entries.is_empty() {
        let details = if skipped.is_empty() {
            " (the folder is empty)".to_string()
        } else {
            let list: Vec<String> =
                skipped.iter().take(5).map(|s| format!("{}: {}", s.name, s.reason)).collect();
            format!(" (skipped {}: {})", skipped.len(), list.join("; "))
        };
        return Err(PublishError::NoAudio { dir, details });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    skipped.sort_by(|a, b| a.name.cmp(&b.name));
    let cover_hash = match cover {
        Some((bytes, _)) => {
            let tag = blobs.add_bytes(bytes).await?;
            let hash = from_iroh(&tag.hash());
            previews.push((COVER_NAME.to_string(), hash));
            tags.push(tag);
            Some(hash)
        }
        None => previous.as_ref().and_then(|m| m.cover),
    };
    let content = smpl_protocol::collection::content_hash(entries.iter().map(|e| (e.name.as_str(), e.hash)));
    let mut draft = Draft {
        manifest: Manifest {
            pack_id,
            author,
            author_name: author_name.to_string(),
            slug,
            seq: 0,
            title: fields.title,
            description: fields.description,
            genre: fields.genre,
            tags: fields.tags,
            price: fields.price,
            license: fields.license,
            created_at: 0,
            content,
            cover: cover_hash,
            samples: entries,
            licenses_from: None,
            payment: fields.payment,
        },
        skipped,
        changes: Vec::new(),
        previous,
        previews,
        tags,
        paid_upgrade: request.paid_upgrade,
        prepared_in: started.elapsed(),
    };
    if let Some(previous) = &draft.previous {
        let next =
            Manifest { licenses_from: draft.licenses_from(previous.seq + 1), ..draft.manifest.clone() };
        draft.changes = changes(previous, &next);
    }
    Ok(draft)
}

/// Storing a publish that takes longer than this is a warning: it waited for
/// something (the disk, or a lock held by a thread without a core).
const SLOW_STORE: Duration = Duration::from_secs(2);

/// Step two: stores the draft's collection, signs the manifest and stores it.
/// `before_store` sees the signed manifest before it is stored, i.e. before any
/// peer can learn of it (the node records the provenance of its blobs there).
/// An unchanged update stores nothing.
pub async fn finish(
    identity: &Identity,
    store: &Store,
    blobs: &Blobs,
    draft: Draft,
    before_store: &(dyn Fn(&Manifest) -> Result<(), StoreError> + Send + Sync),
) -> Result<PublishOutcome, PublishError> {
    let pack_id = draft.manifest.pack_id;
    if let Some(previous) = draft.previous.as_ref().filter(|_| draft.unchanged()) {
        return Ok(PublishOutcome {
            pack_id,
            seq: previous.seq,
            samples: previous.samples.len(),
            skipped: draft.skipped,
            unchanged: true,
            changes: Vec::new(),
        });
    }
    let started = Instant::now();
    let seq = store.latest_seq(&pack_id)?.map_or(1, |s| s + 1);
    if draft.previous.is_none() && seq > 1 {
        let title = draft.manifest.title.clone();
        return Err(PublishError::TitleTaken { title, pack: pack_id });
    }
    let mut manifest =
        Manifest { seq, created_at: now(), licenses_from: draft.licenses_from(seq), ..draft.manifest };
    let files = manifest.samples.iter().map(|e| (e.name.clone(), e.hash)).collect();
    let read = started.elapsed();
    blobs.store_previews(&pack_id, draft.previews).await?;
    let stored = blobs.store_pack(&pack_id, files).await?;
    if stored != manifest.content {
        let content = manifest.content;
        return Err(PublishError::Invalid(format!("the collection hashes to {stored}, expected {content}")));
    }
    drop(draft.tags);
    manifest.content = stored;

    let blobs_stored = started.elapsed();
    let envelope = manifest.sign(identity).map_err(|e| PublishError::Invalid(e.to_string()))?;
    before_store(&manifest)?;
    let recorded = started.elapsed();
    let samples = manifest.samples.len();
    let store2 = store.clone();
    let accepted =
        tokio::task::spawn_blocking(move || store2.accept_manifest(&manifest, &envelope, true)).await??;
    if accepted == Accepted::Retracted {
        return Err(PublishError::Retracted(pack_id));
    }
    let took = started.elapsed();
    let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    let steps = format!(
        "the last version read after {}, the files stored after {}, signed and recorded for serving after {}, the listing stored after {}",
        secs(read),
        secs(blobs_stored),
        secs(recorded),
        secs(took)
    );
    if took > SLOW_STORE {
        tracing::warn!(pack = %pack_id, "storing a publish was slow: {steps}");
    } else {
        tracing::debug!(pack = %pack_id, "stored a publish: {steps}");
    }
    Ok(PublishOutcome {
        pack_id,
        seq,
        samples,
        skipped: draft.skipped,
        unchanged: false,
        changes: draft.changes,
    })
}

pub fn normalize_tags(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for tag in tags {
        let tag = tag.trim().to_lowercase();
        if !tag.is_empty() && !out.contains(&tag) {
            out.push(tag);
        }
    }
    out
}

/// How far (relative) a loop's detected tempo may be from the pack's stated tempo, or
/// from its double or half, for the stated tempo to apply.
const STATED_TEMPO_AGREEMENT: f32 = 0.04;
/// Below this confidence a detected tempo does not stand against a stated one.
const CONFIDENT_TEMPO: f32 = 0.4;

/// Whether `frames` at `rate` last a whole number of 4/4 bars (within 1 %) at `bpm`.
fn whole_bars(bpm: f32, frames: u64, rate: u32) -> bool {
    let beats = bpm * frames as f32 / rate.max(1) as f32 / 60.0;
    let bars = (beats / 4.0).round();
    bars >= 1.0 && (beats / (4.0 * bars) - 1.0).abs() <= 0.01
}

/// Tempo, key and root note of one file.
///
/// - Tempo, loops only: the file name's, else the pack's stated tempo where the audio
///   does not contradict it (no confident detection, a detection within
///   [`STATED_TEMPO_AGREEMENT`] of it or of its double or half, or a loop that lasts
///   whole bars at it), else the detected one. A 137 BPM break in a pack stated as
///   124 BPM keeps its 137.
/// - Key: the file name's, else the pack's stated key for tonal material only (loops
///   and one-shots the harmonicity test finds pitched; never drums), else the detected
///   key, which analysis gives tonal loops and chords only.
/// - Root note, for tonal one-shots and loops that hold one pitch (analysis decides):
///   for a one-shot, a note with its octave in the file name, else the detected one.
fn tempo_and_key(
    name: &str,
    a: &Analysis,
    request: &PublishRequest,
) -> (Option<Tempo>, Option<Key>, Option<Note>) {
    let (named_tempo, named_key) = stated_from_name(name);
    let is_loop = a.kind == SampleKind::Loop;
    // A loop given a key is tonal material, the harmonicity test's verdict aside.
    let tonal = smpl_audio::is_tonal(a.kind, &a.tonality) || a.key.is_some();
    let detected_tempo = a.tempo.filter(|_| is_loop).map(|t| Tempo {
        bpm: (t.bpm * 100.0).round() / 100.0,
        source: Source::Detected,
        confidence: t.confidence,
    });
    let stated_tempo = request
        .bpm
        .filter(|_| is_loop)
        .filter(|b| (limits::MIN_BPM..=limits::MAX_BPM).contains(b))
        .filter(|&stated| {
            let agrees = |t: &Tempo| {
                [1.0, 2.0, 0.5].iter().any(|m| (t.bpm / (stated * m) - 1.0).abs() <= STATED_TEMPO_AGREEMENT)
            };
            match detected_tempo {
                None => true,
                Some(t) => {
                    t.confidence < CONFIDENT_TEMPO
                        || agrees(&t)
                        || whole_bars(stated, a.frames, a.sample_rate)
                }
            }
        })
        .map(|bpm| Tempo { bpm, source: Source::Stated, confidence: 1.0 });
    let tempo = named_tempo.filter(|_| is_loop).or(stated_tempo).or(detected_tempo);

    let stated_key = request.key.filter(|_| tonal).map(|k| Key { source: Source::Stated, ..k });
    let detected_key = a.key.map(|k| Key {
        tonic: k.tonic,
        mode: if k.minor { Mode::Minor } else { Mode::Major },
        source: Source::Detected,
    });
    let key = named_key.or(stated_key).or(detected_key);

    // Analysis gives a root note to tonal one-shots and to loops that hold one pitch.
    let detected_note =
        a.note.map(|n| Note { pitch_class: n.pitch_class, octave: n.octave, source: Source::Detected });
    let note = if is_loop { detected_note } else { note_from_name(name).or(detected_note) };
    (tempo, key, note)
}

fn sample_entry(
    name: String,
    size: u64,
    hash: BlobHash,
    a: Analysis,
    preview: Option<BlobHash>,
    request: &PublishRequest,
) -> SampleEntry {
    let (tempo, key, note) = tempo_and_key(&name, &a, request);
    SampleEntry {
        name,
        hash,
        size,
        format: a.format,
        frames: a.frames,
        sample_rate: a.sample_rate,
        channels: a.channels,
        bit_depth: a.bit_depth,
        peak_dbfs: a.peak_dbfs,
        loudness_lufs: a.loudness_lufs,
        kind: a.kind,
        tempo,
        key,
        note,
        tags: Vec::new(),
        waveform: a.waveform,
        preview,
        descriptor: a.descriptor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smpl_audio::{KeyEstimate, RootNote, TempoEstimate, Tonality};

    #[test]
    fn tempo_and_key_from_file_names() {
        let (t, k) = stated_from_name("Loops/Dusty_Keys_92bpm_Amin.wav");
        assert_eq!(t.map(|t| (t.bpm, t.source)), Some((92.0, Source::Name)));
        let k = k.unwrap();
        assert_eq!((k.tonic, k.mode, k.source), (9, Mode::Minor, Source::Name));
        let (t, k) = stated_from_name("groove 128 BPM F#m.flac");
        assert_eq!(t.map(|t| t.bpm), Some(128.0));
        assert_eq!(k.map(|k| k.name()), Some("F#m".to_string()));
        // Bare tempi: at the end of the name, or just before a key.
        for name in ["Rollin' 128.wav", "Rollin 128bpm.wav", "Rollin_128_BPM.wav", "Pad 128 Am.wav"] {
            assert_eq!(stated_from_name(name).0.map(|t| t.bpm), Some(128.0), "{name}");
        }
        // Numbers that are not tempi: take numbers, model numbers, out of range.
        for name in ["Kick_01.wav", "Kick 120 Soft.wav", "TR 808.wav", "Take 2.wav", "Loop 0128.wav"] {
            assert_eq!(stated_from_name(name).0, None, "{name}");
        }
        assert_eq!(stated_from_name("Kick_01.wav"), (None, None));
        assert_eq!(stated_from_name("Am_I_Dreaming.wav").0, None);
    }

    #[test]
    fn root_notes_from_file_names() {
        let note = |name: &str| note_from_name(name).map(|n| (n.full_name(), n.source));
        assert_eq!(note("Keys/Piano_C4.wav"), Some(("C4".into(), Source::Name)));
        assert_eq!(note("Sub Bass F#1.wav"), Some(("F#1".into(), Source::Name)));
        assert_eq!(note("Bell Bb3 soft.wav"), Some(("A#3".into(), Source::Name)));
        for name in ["bass_hit_c.wav", "Kick 909.wav", "Stab.wav", "E12.wav", "Am.wav"] {
            assert_eq!(note(name), None, "{name}");
        }
    }

    fn tonal() -> Tonality {
        Tonality { tonality: 0.9, steady_seconds: 1.0, pitch: Some((50, true)), ..Tonality::default() }
    }

    fn drum() -> Tonality {
        Tonality { tonality: 0.02, ..Tonality::default() }
    }

    /// What analysis gives: a key for tonal loops, a root note for tonal one-shots.
    fn analysis(kind: SampleKind, tonality: Tonality, bpm: f32, seconds: f32) -> Analysis {
        let tonal = smpl_audio::is_tonal(kind, &tonality);
        let looped = kind == SampleKind::Loop;
        Analysis {
            format: smpl_protocol::AudioFormat::Wav,
            frames: (44_100.0 * seconds) as u64,
            sample_rate: 44_100,
            channels: 2,
            bit_depth: Some(16),
            peak_dbfs: -1.0,
            loudness_lufs: Some(-12.0),
            kind,
            waveform: Vec::new(),
            preview: None,
            descriptor: None,
            tempo: Some(TempoEstimate { bpm, confidence: 0.7 }),
            key: (tonal && looped).then_some(KeyEstimate {
                tonic: 2,
                minor: true,
                confidence: 0.6,
                fit: 0.9,
            }),
            note: (tonal && !looped).then_some(RootNote { pitch_class: 2, octave: Some(3) }),
            key_estimate: None,
            tonality,
        }
    }

    fn request(bpm: Option<f32>, key: Option<&str>) -> PublishRequest {
        PublishRequest { bpm, key: key.map(|k| Key::parse(k).unwrap()), ..PublishRequest::default() }
    }

    /// Tempo and source, key name and source, note name.
    type Shown = (Option<(f32, Source)>, Option<(String, Source)>, Option<String>);

    fn shown(facts: (Option<Tempo>, Option<Key>, Option<Note>)) -> Shown {
        let (t, k, n) = facts;
        (t.map(|t| (t.bpm, t.source)), k.map(|k| (k.name(), k.source)), n.map(|n| n.full_name()))
    }

    #[test]
    fn file_names_win_then_statements_then_detection() {
        // 100 BPM detected, 4.8 s: eight beats, two bars.
        let looped = analysis(SampleKind::Loop, tonal(), 100.004, 4.8);
        let (t, k, n) = tempo_and_key("Groove.wav", &looped, &request(None, None));
        let t = t.unwrap();
        assert_eq!((t.bpm, t.source, t.confidence), (100.0, Source::Detected, 0.7));
        assert_eq!(k.map(|k| (k.name(), k.source)), Some(("Dm".to_string(), Source::Detected)));
        assert_eq!(n, None, "loops have keys, not root notes");
        // Stated for the pack, agreeing with the audio (or its double): stated.
        let facts = tempo_and_key("Groove.wav", &looped, &request(Some(99.0), Some("F major")));
        assert_eq!(shown(facts), (Some((99.0, Source::Stated)), Some(("F".into(), Source::Stated)), None));
        let (t, _, _) = tempo_and_key("Groove.wav", &looped, &request(Some(200.0), None));
        assert_eq!(t.map(|t| t.source), Some(Source::Stated));
        // The file name wins over both.
        let facts = tempo_and_key("Groove_124bpm_Amin.wav", &looped, &request(Some(92.0), Some("F")));
        assert_eq!(shown(facts), (Some((124.0, Source::Name)), Some(("Am".into(), Source::Name)), None));
        let (t, _, _) = tempo_and_key("Rollin' 128.wav", &looped, &request(Some(100.0), None));
        assert_eq!(t.map(|t| (t.bpm, t.source)), Some((128.0, Source::Name)));
    }

    #[test]
    fn a_stated_tempo_does_not_relabel_a_loop_that_plays_another() {
        // A 137 BPM break, 16 beats long, in a pack stated as 124 BPM: it keeps 137.
        let brk = analysis(SampleKind::Loop, drum(), 137.0, 16.0 * 60.0 / 137.0);
        let (t, k, n) = tempo_and_key("Break 03.wav", &brk, &request(Some(124.0), Some("Am")));
        assert_eq!(t.map(|t| (t.bpm, t.source)), Some((137.0, Source::Detected)));
        assert_eq!((k, n), (None, None), "a stated key never goes on drums");
        // Unless the loop lasts whole bars at the stated tempo (the detection is off).
        let fits = analysis(SampleKind::Loop, drum(), 137.0, 16.0 * 60.0 / 124.0);
        let (t, _, _) = tempo_and_key("Break 04.wav", &fits, &request(Some(124.0), None));
        assert_eq!(t.map(|t| (t.bpm, t.source)), Some((124.0, Source::Stated)));
        // A loop with no confident tempo takes the stated one.
        let mut unsure = brk.clone();
        unsure.tempo = None;
        let (t, _, _) = tempo_and_key("Break 05.wav", &unsure, &request(Some(124.0), None));
        assert_eq!(t.map(|t| (t.bpm, t.source)), Some((124.0, Source::Stated)));
    }

    #[test]
    fn one_shots_get_root_notes_and_drums_get_nothing() {
        let plain = request(None, None);
        let stab = analysis(SampleKind::OneShot, tonal(), 100.0, 1.0);
        let facts = tempo_and_key("Stab.wav", &stab, &plain);
        assert_eq!(shown(facts), (None, None, Some("D3".into())));
        // A stated key goes on tonal one-shots (beside their note), never on drums.
        let facts = tempo_and_key("Stab.wav", &stab, &request(Some(120.0), Some("Am")));
        assert_eq!(shown(facts), (None, Some(("Am".into(), Source::Stated)), Some("D3".into())));
        let kick = analysis(SampleKind::OneShot, drum(), 100.0, 0.5);
        assert_eq!(
            shown(tempo_and_key("Kick.wav", &kick, &request(Some(120.0), Some("Am")))),
            (None, None, None)
        );
        // A note in the name wins.
        let facts = tempo_and_key("Stab_C4.wav", &stab, &plain);
        assert_eq!(facts.2.map(|n| (n.full_name(), n.source)), Some(("C4".into(), Source::Name)));
    }
}
