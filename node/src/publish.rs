//! Publishing: folder → analysis and blob import (in parallel, off the runtime) →
//! collection → signed manifest → sled (with the index queue entry) in one step.
//!
//! A publish either completes or leaves no manifest behind: the manifest is written
//! only after every blob and the collection are stored and synced, so a crash at
//! any point leaves at most unreferenced blobs.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use smpl_audio::{Analysis, ONE_SHOT_KEY_CONFIDENCE};
use smpl_protocol::{
    BlobHash, Identity, Key, LicenseTerms, Manifest, Mode, PackId, Price, SampleEntry, SampleKind, Signed,
    Source, Tempo, limits, slugify,
};
use tokio::sync::mpsc;

use crate::blobs::{BlobError, Blobs, from_iroh};
use crate::store::{Accepted, Store, StoreError};

/// What the producer asks to publish.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PublishRequest {
    pub dir: PathBuf,
    pub title: String,
    #[serde(default)]
    pub genre: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub description: String,
    /// `None` publishes a free pack.
    #[serde(default)]
    pub price: Option<Price>,
    pub license: LicenseTerms,
    /// A tempo the producer states for the pack's loops (a file name that states
    /// one wins for that file).
    #[serde(default)]
    pub bpm: Option<f32>,
    /// A key the producer states for the pack's samples (a file name that states
    /// one wins for that file).
    #[serde(default)]
    pub key: Option<Key>,
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

/// Tempo and key a producer put in a file name, e.g. `Bass_128bpm_Amin.wav`.
pub fn stated_from_name(name: &str) -> (Option<Tempo>, Option<Key>) {
    let stem = name.rsplit('/').next().unwrap_or(name);
    let stem = stem.rsplit_once('.').map_or(stem, |(s, _)| s);
    let tokens: Vec<&str> =
        stem.split(['_', '-', ' ', '.', '(', ')', '[', ']']).filter(|t| !t.is_empty()).collect();
    let mut tempo = None;
    let mut key = None;
    for (i, token) in tokens.iter().enumerate() {
        let lower = token.to_ascii_lowercase();
        let number = lower.strip_suffix("bpm").filter(|n| !n.is_empty()).or_else(|| {
            tokens.get(i + 1).filter(|next| next.eq_ignore_ascii_case("bpm")).map(|_| lower.as_str())
        });
        if let Some(bpm) = number.and_then(|n| n.parse::<f32>().ok()).filter(|b| (40.0..=300.0).contains(b)) {
            tempo.get_or_insert(Tempo { bpm, source: Source::Stated, confidence: 1.0 });
            continue;
        }
        if key.is_none() && looks_like_key(token) {
            key = Key::parse(token).ok();
        }
    }
    (tempo, key)
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

/// Publishes `request` as a new version of the pack its title names.
/// `before_store` sees the signed manifest before it is stored, i.e. before any
/// peer can learn of it (the node records the provenance of its blobs there).
pub async fn publish(
    identity: &Identity,
    author_name: &str,
    store: &Store,
    blobs: &Blobs,
    request: PublishRequest,
    progress: mpsc::Sender<PublishEvent>,
    before_store: &(dyn Fn(&Manifest) -> Result<(), StoreError> + Send + Sync),
) -> Result<PublishOutcome, PublishError> {
    let dir = request.dir.clone();
    let scan_dir = dir.clone();
    let (found, mut skipped) = tokio::task::spawn_blocking(move || scan(&scan_dir)).await??;
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
    let results: Vec<_> = stream::iter(found)
        .map(|file| async move {
            let path = file.path.clone();
            let analysis = tokio::task::spawn_blocking(move || smpl_audio::analyze_file(&path));
            let import = blobs.import_file(&file.path);
            let (analysis, import) = tokio::join!(analysis, import);
            (file, analysis, import)
        })
        .buffer_unordered(concurrency())
        .collect()
        .await;

    let mut entries = Vec::new();
    let mut tags = Vec::new();
    let mut previews = Vec::new();
    for (file, analysis, import) in results {
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

    let author = identity.node_id();
    let slug = slugify(&request.title);
    let pack_id = PackId::derive(&author, &slug);
    let seq = store.latest_seq(&pack_id)?.map_or(1, |s| s + 1);
    let files = entries.iter().map(|e| (e.name.clone(), e.hash)).collect();
    blobs.store_previews(&pack_id, previews).await?;
    let content = blobs.store_pack(&pack_id, files).await?;
    drop(tags);

    let manifest = Manifest {
        pack_id,
        author,
        author_name: author_name.to_string(),
        slug,
        seq,
        title: request.title.trim().to_string(),
        description: request.description,
        genre: request.genre.trim().to_lowercase(),
        tags: normalize_tags(&request.tags),
        price: request.price,
        license: request.license,
        created_at: now(),
        content,
        cover: None,
        samples: entries,
    };
    let envelope = manifest.sign(identity).map_err(|e| PublishError::Invalid(e.to_string()))?;
    before_store(&manifest)?;
    let samples = manifest.samples.len();
    let store2 = store.clone();
    let accepted =
        tokio::task::spawn_blocking(move || store2.accept_manifest(&manifest, &envelope, true)).await??;
    if accepted == Accepted::Retracted {
        return Err(PublishError::Retracted(pack_id));
    }
    Ok(PublishOutcome { pack_id, seq, samples, skipped })
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

/// Tempo and key of one file: stated in its name, else stated for the pack, else
/// detected (tempo for loops only; key for one-shots only when quite sure).
fn tempo_and_key(name: &str, a: &Analysis, request: &PublishRequest) -> (Option<Tempo>, Option<Key>) {
    let (named_tempo, named_key) = stated_from_name(name);
    let is_loop = a.kind == SampleKind::Loop;
    let stated_tempo = request
        .bpm
        .filter(|_| is_loop)
        .filter(|b| (limits::MIN_BPM..=limits::MAX_BPM).contains(b))
        .map(|bpm| Tempo { bpm, source: Source::Stated, confidence: 1.0 });
    let detected_tempo = a.tempo.filter(|_| is_loop).map(|t| Tempo {
        bpm: (t.bpm * 100.0).round() / 100.0,
        source: Source::Detected,
        confidence: t.confidence,
    });
    let stated_key = request.key.map(|k| Key { source: Source::Stated, ..k });
    let detected_key = a.key.filter(|k| is_loop || k.confidence >= ONE_SHOT_KEY_CONFIDENCE).map(|k| Key {
        tonic: k.tonic,
        mode: if k.minor { Mode::Minor } else { Mode::Major },
        source: Source::Detected,
    });
    (named_tempo.or(stated_tempo).or(detected_tempo), named_key.or(stated_key).or(detected_key))
}

fn sample_entry(
    name: String,
    size: u64,
    hash: BlobHash,
    a: Analysis,
    preview: Option<BlobHash>,
    request: &PublishRequest,
) -> SampleEntry {
    let (tempo, key) = tempo_and_key(&name, &a, request);
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
        tags: Vec::new(),
        waveform: a.waveform,
        preview,
        descriptor: a.descriptor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smpl_audio::{KeyEstimate, TempoEstimate};

    #[test]
    fn stated_tempo_and_key_from_file_names() {
        let (t, k) = stated_from_name("Loops/Dusty_Keys_92bpm_Amin.wav");
        assert_eq!(t.map(|t| t.bpm), Some(92.0));
        let k = k.unwrap();
        assert_eq!((k.tonic, k.mode), (9, Mode::Minor));
        let (t, k) = stated_from_name("groove 128 BPM F#m.flac");
        assert_eq!(t.map(|t| t.bpm), Some(128.0));
        assert_eq!(k.map(|k| k.name()), Some("F#m".to_string()));
        assert_eq!(stated_from_name("Kick_01.wav"), (None, None));
        assert_eq!(stated_from_name("Am_I_Dreaming.wav").0, None);
    }

    fn analysis(kind: SampleKind, key_confidence: f32) -> Analysis {
        Analysis {
            format: smpl_protocol::AudioFormat::Wav,
            frames: 44_100 * 4,
            sample_rate: 44_100,
            channels: 2,
            bit_depth: Some(16),
            peak_dbfs: -1.0,
            loudness_lufs: Some(-12.0),
            kind,
            waveform: Vec::new(),
            preview: None,
            descriptor: None,
            tempo: Some(TempoEstimate { bpm: 100.004, confidence: 0.7 }),
            key: Some(KeyEstimate { tonic: 2, minor: true, confidence: key_confidence }),
        }
    }

    fn request(bpm: Option<f32>, key: Option<&str>) -> PublishRequest {
        PublishRequest {
            dir: PathBuf::new(),
            title: "t".into(),
            genre: String::new(),
            tags: Vec::new(),
            description: String::new(),
            price: None,
            license: LicenseTerms::Named("royalty-free".into()),
            bpm,
            key: key.map(|k| Key::parse(k).unwrap()),
        }
    }

    #[test]
    fn stated_values_win_over_detected_ones() {
        let looped = analysis(SampleKind::Loop, 0.3);
        let plain = request(None, None);
        // Detected, and marked so.
        let (t, k) = tempo_and_key("Groove.wav", &looped, &plain);
        let t = t.unwrap();
        assert_eq!((t.bpm, t.source, t.confidence), (100.0, Source::Detected, 0.7));
        assert_eq!(k.map(|k| (k.name(), k.source)), Some(("Dm".to_string(), Source::Detected)));
        // Stated for the pack.
        let (t, k) = tempo_and_key("Groove.wav", &looped, &request(Some(92.0), Some("F major")));
        assert_eq!(t.map(|t| (t.bpm, t.source)), Some((92.0, Source::Stated)));
        assert_eq!(k.map(|k| (k.name(), k.source)), Some(("F".to_string(), Source::Stated)));
        // Stated in the file name: wins over both.
        let (t, k) = tempo_and_key("Groove_124bpm_Amin.wav", &looped, &request(Some(92.0), Some("F")));
        assert_eq!(t.map(|t| (t.bpm, t.source)), Some((124.0, Source::Stated)));
        assert_eq!(k.map(|k| k.name()), Some("Am".to_string()));
        // One-shots: no tempo; a key only when the detector is quite sure.
        let (t, k) = tempo_and_key("Stab.wav", &analysis(SampleKind::OneShot, 0.3), &plain);
        assert_eq!((t, k), (None, None));
        let (_, k) = tempo_and_key("Stab.wav", &analysis(SampleKind::OneShot, 0.8), &plain);
        assert_eq!(k.map(|k| k.name()), Some("Dm".to_string()));
    }
}
