//! Export: a stored pack as plain files a DAW opens.
//!
//! Files go to `<library>/<author name> (<author id>)/<pack title>/<file name>`,
//! where the author id is the first 8 hex digits of the author's node id: display
//! names are not authenticated, so the id keeps one author's packs apart from
//! those of another key that uses the same name (an author with no usable name
//! gets the first 16 hex digits alone). The author and title become one folder
//! name each, and every part of a file's relative path is checked the same way, so
//! nothing lands outside the pack folder whatever the manifest says. Every file
//! is staged under a temporary name in the home's `partial/` folder (never in the
//! library), checked against its BLAKE3 hash and renamed into place, so a file
//! under its real name is always whole and never damaged; several files are
//! exported at once. Where the library is on another file system than the home,
//! a file is staged beside its target instead, under a hidden `.smpl-part` name,
//! and removed if anything fails.
//!
//! A fetch never writes into a folder that belongs to another pack: 8 hex digits
//! keep honest authors apart, but a key whose id starts with another author's
//! digits can be found by trying keys. So each pack folder has a marker holding
//! its pack id, `.<pack folder>.smpl-pack`, written when the export creates the
//! folder; after each export it also lists the files exported (hash and path), so
//! the next version knows which files it dropped. The marker sits next to the pack folder, in the author folder, because
//! a pack folder holds exactly the pack's files (`smpl license verify --files`
//! refuses a folder with anything else in it). When `<pack title>` exists and its
//! marker names another pack, or it has no marker (a folder the producer made),
//! the pack goes to `<pack title> (<first 8 hex digits of the pack id>)`, then to
//! `<pack title> (<pack id>)`; if each of these belongs to someone else too, the
//! export fails. Exporting the same pack again (a newer version, or files that
//! went missing) reuses its folder and replaces the manifest's files there. A
//! file an earlier version exported and this one drops is removed only if its
//! bytes are still the ones exported; the producer's own files are never touched.
//!
//! A file is not copied out of the store when the store holds it as a file of
//! its own on the same file system (blobs over 16 KiB, stored by the node itself):
//!
//! - where the file system clones files (btrfs, XFS, APFS), it is a **reflink**, a
//!   copy-on-write clone that costs no bytes and is independent of the store;
//! - elsewhere (ext4) it is a **hard link** to the store's file, made read-only
//!   (mode 0444). Library and store then share one file: deleting, moving or
//!   replacing the library file (editors save by writing a new file) leaves the
//!   store alone, and the read-only mode stops a program from changing it in
//!   place, as git-annex does with the files it locks. If a user makes it writable
//!   and edits it anyway, the node does not spread the change: iroh-blobs checks
//!   every chunk it serves against the blob's hash tree and stops at the first that
//!   does not match, and peers fetch it elsewhere.
//!
//! Other blobs (small ones live in the store's database; another file system) are
//! copied. Copying a file out of the store is the largest cost of a fetch after the
//! download itself, and writing the files while they download costs about as much
//! (two writes and two new files each; figures in `docs/BENCHMARKS.md`, "Network:
//! pack transfer"). A link writes no data and takes no disk space, so fetched packs
//! take half the space.
//!
//! Nothing is `fsync`ed, as `cp`, `sendme` and BitTorrent clients do not, nor
//! iroh-blobs for complete blobs: forcing a 1 GiB pack to disk before `fetch`
//! returns ties the fetch to the disk's write speed (longer than the whole download
//! for a 1 GiB pack on a laptop disk). The kernel writes the files
//! back within seconds; a file that a power cut in those seconds damaged no longer
//! matches its hash, and the node refuses to serve it (see above).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use futures::StreamExt;
use iroh_blobs::format::collection::Collection;
use iroh_blobs::{Hash, HashAndFormat};
use smpl_protocol::{BlobHash, Manifest, NodeId, PackId, SampleEntry};

use super::TransferError;
use crate::blobs::{Blobs, to_iroh};

/// Longest folder or file name written, in bytes (most file systems allow 255).
const MAX_COMPONENT_BYTES: usize = 200;
/// The mode of a library file that is a hard link to a stored blob.
#[cfg(unix)]
pub(crate) const READ_ONLY: u32 = 0o444;
/// Files copied at the same time.
const PARALLEL_WRITES: usize = 4;
/// Hex digits of the author's node id in an author folder's name, and of the pack
/// id in the name of a pack folder that moved aside for another pack.
const SHORT_ID: usize = 8;
/// Ends the name of the marker next to a pack folder that names the folder's pack.
const MARKER_SUFFIX: &str = ".smpl-pack";

/// Where a pack was exported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exported {
    /// The pack folder, `<library>/<author> (<author id>)/<title>`.
    pub path: PathBuf,
    pub files: usize,
    pub bytes: u64,
}

/// The pack folder and where each file of the manifest goes in it.
struct Targets<'a> {
    dir: PathBuf,
    files: Vec<(PathBuf, &'a SampleEntry)>,
}

/// The author folder, `<library>/<author> (<author id>)`, absolute, and the
/// preferred name of the pack folder in it.
fn pack_place(manifest: &Manifest, library: &Path) -> Result<(PathBuf, String), TransferError> {
    let library = std::path::absolute(library).map_err(TransferError::io("resolve", library))?;
    let author = author_folder(&manifest.author_name, &manifest.author);
    let title = folder_name(&manifest.title).unwrap_or_else(|| manifest.slug.clone());
    Ok((library.join(author), title))
}

/// `<name> (<first 8 hex digits of the author's id>)`, or the first 16 hex digits
/// alone when the name has no usable characters. A named folder always ends in
/// `)` and a nameless one never does, so the two kinds cannot meet.
fn author_folder(name: &str, author: &NodeId) -> String {
    let hex = author.to_hex();
    match folder_name(name) {
        Some(name) => with_tag(&name, &hex[..SHORT_ID]),
        None => hex[..16].to_string(),
    }
}

/// `<name> (<tag>)`, shortening `name` so the whole stays within
/// [`MAX_COMPONENT_BYTES`].
fn with_tag(name: &str, tag: &str) -> String {
    let room = MAX_COMPONENT_BYTES.saturating_sub(tag.len() + 3);
    let mut short = String::new();
    for c in name.chars() {
        if short.len() + c.len_utf8() > room {
            break;
        }
        short.push(c);
    }
    format!("{} ({tag})", short.trim_end_matches(['.', ' ']))
}

/// Each file of the manifest and its path inside the pack folder.
fn relative_files(manifest: &Manifest) -> Result<Vec<(PathBuf, &SampleEntry)>, TransferError> {
    let mut files = Vec::with_capacity(manifest.samples.len());
    let mut seen = HashSet::new();
    for sample in &manifest.samples {
        let relative = relative_path(&sample.name)?;
        // Case-insensitive file systems (macOS, Windows) would merge these.
        if !seen.insert(relative.to_string_lossy().to_lowercase()) {
            return Err(TransferError::BadName {
                name: sample.name.clone(),
                reason: "another file of the pack has the same name up to case".into(),
            });
        }
        files.push((relative, sample));
    }
    Ok(files)
}

/// The marker next to the pack folder `folder`: `.<folder>.smpl-pack`. Pack folder
/// names never start with a dot ([`folder_name`]), so a marker is never taken for
/// a pack folder. With a folder name of at most [`MAX_COMPONENT_BYTES`], the
/// marker's name stays within the 255 bytes file systems allow.
fn marker_name(folder: &str) -> String {
    format!(".{folder}{MARKER_SUFFIX}")
}

/// The pack whose marker is at `path`; `None` when there is no readable marker
/// naming a pack.
fn marked_pack(path: &Path) -> Option<PackId> {
    std::fs::read_to_string(path).ok()?.lines().next()?.trim().parse().ok()
}

/// The files the marker at `path` says were exported: relative path → hash.
fn marked_files(path: &Path) -> HashMap<PathBuf, BlobHash> {
    let Ok(text) = std::fs::read_to_string(path) else { return HashMap::new() };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let (hash, name) = line.split_once(' ')?;
            Some((PathBuf::from(name), hash.parse().ok()?))
        })
        .collect()
}

/// Writes the marker: the pack id, then one `<hash> <relative path>` line per file.
fn write_marker(path: &Path, pack: &PackId, files: &[(PathBuf, BlobHash)]) -> std::io::Result<()> {
    let mut text = format!("{}\n", pack.to_hex());
    for (relative, hash) in files {
        text.push_str(&format!("{hash} {}\n", relative.display()));
    }
    let temp = path.with_extension("smpl-pack-new");
    std::fs::write(&temp, text)?;
    std::fs::rename(&temp, path)
}

/// The marker of the pack folder `dir`.
fn marker_of(dir: &Path) -> Option<PathBuf> {
    let name = dir.file_name()?.to_string_lossy().to_string();
    Some(dir.parent()?.join(marker_name(&name)))
}

/// BLAKE3 of a file's bytes.
fn file_hash(path: &Path) -> std::io::Result<BlobHash> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(path)?)?;
    Ok(BlobHash(*hasher.finalize().as_bytes()))
}

/// Library files whose bytes differ from what the last export of their pack
/// wrote (the markers list it), with their pack: `<library>/*/.*.smpl-pack`.
pub fn edited_library_files(library: &Path) -> Vec<(PackId, PathBuf)> {
    let mut edited = Vec::new();
    let Ok(authors) = std::fs::read_dir(library) else { return edited };
    for author in authors.flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
        let Ok(entries) = std::fs::read_dir(&author) else { continue };
        for marker in entries.flatten().map(|e| e.path()) {
            let name = marker.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let Some(folder) = name.strip_prefix('.').and_then(|n| n.strip_suffix(MARKER_SUFFIX)) else {
                continue;
            };
            let Some(pack) = marked_pack(&marker) else { continue };
            let dir = author.join(folder);
            for (relative, hash) in marked_files(&marker) {
                let path = dir.join(&relative);
                if path.exists() && file_hash(&path).is_ok_and(|h| h != hash) {
                    edited.push((pack, path));
                }
            }
        }
    }
    edited
}

/// Removes the files an earlier export wrote that `manifest` no longer has, if
/// their bytes are still those exported, and folders that this leaves empty.
fn remove_dropped(dir: &Path, before: &HashMap<PathBuf, BlobHash>, now: &HashSet<PathBuf>) -> usize {
    let mut removed = 0;
    for (relative, hash) in before {
        if now.contains(relative) {
            continue;
        }
        let path = dir.join(relative);
        if file_hash(&path).is_ok_and(|h| h == *hash) && std::fs::remove_file(&path).is_ok() {
            removed += 1;
            let mut parent = path.parent();
            while let Some(folder) = parent.filter(|p| *p != dir) {
                if std::fs::remove_dir(folder).is_err() {
                    break;
                }
                parent = folder.parent();
            }
        } else if path.exists() {
            tracing::info!(file = %path.display(), "kept a file the new version drops: it was changed since export");
        }
    }
    removed
}

/// The pack folder of `pack` in `author_dir`: the first of `<title>`,
/// `<title> (<8 hex of the pack id>)` and `<title> (<pack id>)` that either does
/// not exist yet (it is created and its marker written) or is marked as `pack`'s.
/// A folder marked for another pack or not marked at all belongs to someone else
/// and is never written to; when all three do, this fails.
fn claim_pack_dir(author_dir: &Path, title: &str, pack: &PackId) -> Result<PathBuf, TransferError> {
    std::fs::create_dir_all(author_dir).map_err(TransferError::io("create", author_dir))?;
    let hex = pack.to_hex();
    let candidates = [title.to_string(), with_tag(title, &hex[..SHORT_ID]), with_tag(title, &hex)];
    for name in &candidates {
        let dir = author_dir.join(name);
        let marker = author_dir.join(marker_name(name));
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                // A marker left by a pack folder that was deleted is replaced: the
                // folder is this pack's now.
                if let Err(e) = std::fs::write(&marker, format!("{hex}\n")) {
                    let _ = std::fs::remove_dir(&dir);
                    return Err(TransferError::io("write", &marker)(e));
                }
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if marked_pack(&marker) == Some(*pack) {
                    return Ok(dir);
                }
                tracing::debug!(
                    pack = %pack,
                    folder = %dir.display(),
                    "the folder belongs to another pack or was not made by smpl"
                );
            }
            Err(e) => return Err(TransferError::io("create", &dir)(e)),
        }
    }
    let source = std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!(
            "{:?}, {:?} and {:?} all belong to other packs or were not made by smpl",
            candidates[0], candidates[1], candidates[2]
        ),
    );
    Err(TransferError::Io {
        action: "choose a pack folder in",
        path: author_dir.display().to_string(),
        source,
    })
}

/// Checks that the pack is stored whole and matches its manifest.
async fn stored_pack(blobs: &Blobs, manifest: &Manifest) -> Result<(), TransferError> {
    let store = blobs.store();
    let content = manifest.content;
    let root = to_iroh(&content);
    let local = store
        .remote()
        .local(HashAndFormat::hash_seq(root))
        .await
        .map_err(|e| TransferError::store("reading local state")(&e))?;
    if !local.is_complete() {
        return Err(TransferError::Incomplete { content });
    }
    let collection = Collection::load(root, store.as_ref())
        .await
        .map_err(|e| TransferError::NotACollection { content, reason: e.to_string() })?;
    check_collection(manifest, &collection)
}

pub(super) async fn export(
    blobs: &Blobs,
    manifest: &Manifest,
    library: &Path,
    staging: &Path,
) -> Result<Exported, TransferError> {
    stored_pack(blobs, manifest).await?;
    let files = relative_files(manifest)?;
    let (author_dir, title) = pack_place(manifest, library)?;
    let pack = manifest.pack_id;
    let dir = tokio::task::spawn_blocking(move || claim_pack_dir(&author_dir, &title, &pack)).await??;
    let listed: Vec<(PathBuf, BlobHash)> = files.iter().map(|(r, s)| (r.clone(), s.hash)).collect();
    let files = files.into_iter().map(|(relative, sample)| (dir.join(relative), sample)).collect();
    let targets = Targets { dir, files };
    tokio::fs::create_dir_all(staging).await.map_err(TransferError::io("create", staging))?;
    write_files(blobs, manifest.content, &targets, staging).await?;
    let (dir, pack) = (targets.dir.clone(), manifest.pack_id);
    tokio::task::spawn_blocking(move || {
        let marker = marker_of(&dir).ok_or_else(|| {
            TransferError::io("find the marker of", &dir)(std::io::Error::other("no parent folder"))
        })?;
        let before = marked_files(&marker);
        let now: HashSet<PathBuf> = listed.iter().map(|(r, _)| r.clone()).collect();
        let removed = remove_dropped(&dir, &before, &now);
        if removed > 0 {
            tracing::info!(pack = %pack, removed, "removed files the new version dropped");
        }
        write_marker(&marker, &pack, &listed).map_err(TransferError::io("write", &marker))
    })
    .await??;
    Ok(exported(manifest, targets))
}

fn exported(manifest: &Manifest, targets: Targets<'_>) -> Exported {
    let bytes = targets.files.iter().map(|(_, sample)| sample.size).sum();
    let files = targets.files.len();
    tracing::info!(pack = %manifest.pack_id, path = %targets.dir.display(), files, bytes, "exported pack");
    Exported { path: targets.dir, files, bytes }
}

/// Creates the subfolders of the pack folder (which [`claim_pack_dir`] made) and
/// puts the files of `targets` there, several at once.
async fn write_files(
    blobs: &Blobs,
    content: BlobHash,
    targets: &Targets<'_>,
    staging: &Path,
) -> Result<(), TransferError> {
    let folders: HashSet<&Path> = targets.files.iter().filter_map(|(target, _)| target.parent()).collect();
    for folder in folders {
        tokio::fs::create_dir_all(folder).await.map_err(TransferError::io("create", folder))?;
    }
    // The futures are made up front: a lazily mapped stream would keep a closure
    // over borrowed entries in the future's type, which `tokio::spawn` rejects.
    let reflinks = Arc::new(AtomicBool::new(true));
    let writes: Vec<_> = targets
        .files
        .iter()
        .map(|(target, sample)| write_file(blobs, content, target, sample, staging, &reflinks))
        .collect();
    let mut writes = futures::stream::iter(writes).buffer_unordered(PARALLEL_WRITES);
    while let Some(written) = writes.next().await {
        written?;
    }
    Ok(())
}

/// The collection and the manifest list the same files with the same hashes.
fn check_collection(manifest: &Manifest, collection: &Collection) -> Result<(), TransferError> {
    let mismatch = |reason: String| TransferError::Mismatch { content: manifest.content, reason };
    let listed: HashMap<&str, Hash> = collection.iter().map(|(name, hash)| (name.as_str(), *hash)).collect();
    if listed.len() != collection.len() {
        return Err(mismatch("the collection lists a file name twice".into()));
    }
    if listed.len() != manifest.samples.len() {
        return Err(mismatch(format!(
            "the collection has {} files, the manifest {}",
            listed.len(),
            manifest.samples.len()
        )));
    }
    for sample in &manifest.samples {
        match listed.get(sample.name.as_str()) {
            Some(hash) if *hash == to_iroh(&sample.hash) => {}
            Some(_) => return Err(mismatch(format!("{:?} has another hash in the collection", sample.name))),
            None => return Err(mismatch(format!("{:?} is not in the collection", sample.name))),
        }
    }
    Ok(())
}

/// Links or copies one blob to `target` through a temporary name in `staging`
/// (or beside the target when the two are on different file systems), checks
/// its hash, and renames it into place. A target that already is the store's
/// file (a hard link from an earlier export) is checked and left as it is.
async fn write_file(
    blobs: &Blobs,
    content: BlobHash,
    target: &Path,
    sample: &SampleEntry,
    staging: &Path,
    reflinks: &Arc<AtomicBool>,
) -> Result<u64, TransferError> {
    // `stored_pack` checked that every blob is complete, and a blob's size
    // follows from its hash; a file of another length is a mismatch below.
    let hash = to_iroh(&sample.hash);
    let mismatch = |reason: String| TransferError::Mismatch { content, reason };
    let damaged = || TransferError::Damaged { name: sample.name.clone(), hash: sample.hash };
    let Some((parent, file_name)) = target.parent().zip(target.file_name()) else {
        return Err(TransferError::BadName { name: sample.name.clone(), reason: "no file name".into() });
    };
    let owned = blobs.owned_data_path(&hash);
    let (stored, at) = (owned.clone(), target.to_path_buf());
    match tokio::task::spawn_blocking(move || already_linked(&stored, &at)).await? {
        Some(true) => return Ok(sample.size),
        Some(false) => return Err(damaged()),
        None => {}
    }
    let same_fs = same_file_system(staging, parent);
    let temp = if same_fs { staging } else { parent }.join(temp_name(file_name));
    let result = async {
        let (shared, expected) = (temp.clone(), sample.size);
        let reflinks = reflinks.clone();
        let shared =
            tokio::task::spawn_blocking(move || share_stored_file(&owned, &shared, expected, &reflinks))
                .await?;
        if !shared {
            let _ = tokio::fs::remove_file(&temp).await;
            let size = blobs
                .store()
                .blobs()
                .export(hash, &temp)
                .await
                .map_err(|e| TransferError::store("exporting a blob")(&e))?;
            if size != sample.size {
                return Err(mismatch(format!(
                    "{:?}: exported {size} bytes, expected {}",
                    sample.name, sample.size
                )));
            }
        }
        let (temp, target) = (temp.clone(), target.to_path_buf());
        let (expected, expected_hash) = (sample.size, sample.hash);
        tokio::task::spawn_blocking(move || finish_file(&temp, &target, expected, &expected_hash)).await?
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&temp).await;
    }
    match result {
        Err(TransferError::Io { action: "verify the hash of", .. }) => Err(damaged()),
        other => other.map(|()| sample.size),
    }
}

/// Whether `target` is already the store's own file `stored` (a hard link made
/// by an earlier export): `Some(true)` if its bytes still match their hash,
/// `Some(false)` if they do not, `None` if it is another file or none.
fn already_linked(stored: &Path, target: &Path) -> Option<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let (a, b) = (std::fs::metadata(stored).ok()?, std::fs::symlink_metadata(target).ok()?);
        if (a.dev(), a.ino()) != (b.dev(), b.ino()) {
            return None;
        }
        let name = stored.file_stem()?.to_string_lossy().to_string();
        let expected: iroh_blobs::Hash = name.parse().ok()?;
        Some(file_hash(stored).is_ok_and(|h| h.0 == *expected.as_bytes()))
    }
    #[cfg(not(unix))]
    {
        let _ = (stored, target);
        None
    }
}

/// Whether two existing folders are on one file system (a rename between them works).
fn same_file_system(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        matches!((std::fs::metadata(a), std::fs::metadata(b)), (Ok(a), Ok(b)) if a.dev() == b.dev())
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        false
    }
}

/// Puts the store's own file of a blob at `path` without copying its bytes: a
/// reflink (a copy-on-write clone, independent of the store's file) where the file
/// system has them, otherwise a hard link made read-only. False when neither works
/// (no such file, another file system) or the file is not the complete blob.
/// A failed reflink costs a file created and deleted, so after one failure an
/// export stops trying (`reflinks`). The caller checks the new file's length
/// again before renaming it into place.
fn share_stored_file(stored: &Path, path: &Path, expected: u64, reflinks: &AtomicBool) -> bool {
    if !std::fs::metadata(stored).is_ok_and(|m| m.len() == expected) {
        return false;
    }
    if reflinks.load(Ordering::Relaxed) {
        if reflink_copy::reflink(stored, path).is_ok() {
            return true;
        }
        reflinks.store(false, Ordering::Relaxed);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::hard_link(stored, path).is_ok()
            && std::fs::set_permissions(path, std::fs::Permissions::from_mode(READ_ONLY)).is_ok()
    }
    #[cfg(not(unix))]
    false
}

/// Checks the temporary file's length and hash and renames it into place.
fn finish_file(temp: &Path, target: &Path, expected: u64, hash: &BlobHash) -> Result<(), TransferError> {
    let len = std::fs::metadata(temp).map_err(TransferError::io("inspect", temp))?.len();
    if len != expected {
        let source = std::io::Error::other(format!("it has {len} bytes, expected {expected}"));
        return Err(TransferError::Io { action: "verify", path: temp.display().to_string(), source });
    }
    if file_hash(temp).map_err(TransferError::io("read", temp))? != *hash {
        let source = std::io::Error::other("its bytes do not match the pack's hash");
        return Err(TransferError::Io {
            action: "verify the hash of",
            path: temp.display().to_string(),
            source,
        });
    }
    std::fs::rename(temp, target).map_err(TransferError::io("rename into place", target))
}

fn temp_name(file_name: &std::ffi::OsStr) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(".{}.{}-{n}.smpl-part", file_name.to_string_lossy(), std::process::id())
}

/// One folder or file name from arbitrary text: characters that are separators,
/// control characters or not allowed on common file systems become `_`, leading
/// dots and trailing dots and spaces go, Windows device names get a `_` prefix,
/// and the result is at most [`MAX_COMPONENT_BYTES`] long. `None` if nothing is
/// left.
pub(super) fn folder_name(text: &str) -> Option<String> {
    let replaced: String = text
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = replaced.trim().trim_start_matches('.').trim_end_matches(['.', ' ']);
    let mut name = String::new();
    for c in trimmed.chars() {
        if name.len() + c.len_utf8() > MAX_COMPONENT_BYTES {
            break;
        }
        name.push(c);
    }
    let name = name.trim_end_matches(['.', ' ']).to_string();
    if name.is_empty() {
        return None;
    }
    let stem = name.split('.').next().unwrap_or("").to_ascii_uppercase();
    let device = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    Some(if device { format!("_{name}") } else { name })
}

/// A file's path inside the pack folder: every `/`-separated part must survive
/// [`folder_name`] and none may be `.` or `..`.
pub(crate) fn relative_path(name: &str) -> Result<PathBuf, TransferError> {
    let bad = |reason: &str| TransferError::BadName { name: name.to_string(), reason: reason.to_string() };
    if name.starts_with('/') || name.starts_with('\\') {
        return Err(bad("absolute paths are not allowed"));
    }
    let mut path = PathBuf::new();
    for part in name.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(bad("empty, . and .. path parts are not allowed"));
        }
        let Some(clean) = folder_name(part) else {
            return Err(bad("a path part has no usable characters"));
        };
        path.push(clean);
    }
    if path.as_os_str().is_empty() {
        return Err(bad("the name is empty"));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_are_single_safe_components() {
        for (text, expected) in [
            ("DJ Dusty", Some("DJ Dusty")),
            ("../../etc", Some("_.._etc")),
            ("/abs/path", Some("_abs_path")),
            ("a\\b:c*d?e\"f<g>h|i", Some("a_b_c_d_e_f_g_h_i")),
            ("tab\there\nnewline\u{7}", Some("tab_here_newline_")),
            ("..", None),
            (".", None),
            ("   ", None),
            ("...hidden", Some("hidden")),
            ("trailing. . ", Some("trailing")),
            ("CON", Some("_CON")),
            ("com1.wav", Some("_com1.wav")),
            ("Console", Some("Console")),
            ("Café 808s", Some("Café 808s")),
        ] {
            assert_eq!(folder_name(text).as_deref(), expected, "{text:?}");
        }
        let long = folder_name(&"é".repeat(300)).unwrap();
        assert!(long.len() <= MAX_COMPONENT_BYTES && long.chars().all(|c| c == 'é'));
    }

    #[test]
    fn author_folders_carry_a_short_id() {
        let id = NodeId([0xab; 32]);
        assert_eq!(author_folder("alice", &id), "alice (abababab)");
        assert_eq!(author_folder("../a/b", &id), "_a_b (abababab)");
        assert_eq!(author_folder(" .. ", &id), "abababababababab");
        assert_ne!(author_folder("alice", &NodeId([0xcd; 32])), author_folder("alice", &id));
        let long = author_folder(&"é".repeat(300), &id);
        assert!(long.len() <= MAX_COMPONENT_BYTES && long.ends_with("é (abababab)"), "{long}");
    }

    fn marker(author: &Path, folder: &str) -> Option<PackId> {
        marked_pack(&author.join(marker_name(folder)))
    }

    #[test]
    fn a_pack_folder_is_reused_by_its_pack_and_never_taken_from_another() {
        let library = tempfile::tempdir().unwrap();
        let author = library.path().join("alice (abababab)");
        let (a, b) = (PackId([0xaa; 16]), PackId([0xbb; 16]));

        let dir_a = claim_pack_dir(&author, "Drums", &a).unwrap();
        assert_eq!(dir_a, author.join("Drums"));
        assert_eq!(marker(&author, "Drums"), Some(a));
        std::fs::write(dir_a.join("Kick.wav"), b"a's kick").unwrap();

        // Same author folder, same title, another pack: it moves aside.
        let dir_b = claim_pack_dir(&author, "Drums", &b).unwrap();
        assert_eq!(dir_b, author.join("Drums (bbbbbbbb)"));
        assert_eq!(marker(&author, "Drums (bbbbbbbb)"), Some(b));
        // Each pack finds its own folder again (a newer version, say).
        assert_eq!(claim_pack_dir(&author, "Drums", &a).unwrap(), dir_a);
        assert_eq!(claim_pack_dir(&author, "Drums", &b).unwrap(), dir_b);
        assert_eq!(std::fs::read(dir_a.join("Kick.wav")).unwrap(), b"a's kick");

        // A pack whose id starts like b's gets the whole id.
        let mut c = PackId([0xcc; 16]);
        c.0[..4].copy_from_slice(&[0xbb; 4]);
        let dir_c = claim_pack_dir(&author, "Drums", &c).unwrap();
        assert_eq!(dir_c, author.join(format!("Drums ({})", c.to_hex())));
        assert_eq!(claim_pack_dir(&author, "Drums", &c).unwrap(), dir_c);

        // Once all three names are other packs', the export fails.
        let mut d = PackId([0xdd; 16]);
        d.0[..4].copy_from_slice(&[0xbb; 4]);
        std::fs::create_dir(author.join(format!("Drums ({})", d.to_hex()))).unwrap();
        let err = claim_pack_dir(&author, "Drums", &d).unwrap_err();
        assert!(matches!(err, TransferError::Io { .. }), "{err}");
        assert_eq!(marker(&author, &format!("Drums ({})", d.to_hex())), None);
        assert_eq!(marker(&author, "Drums"), Some(a));
    }

    #[test]
    fn a_folder_smpl_did_not_make_is_left_alone() {
        let library = tempfile::tempdir().unwrap();
        let author = library.path().join("alice (abababab)");
        let own = author.join("Drums");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(own.join("notes.txt"), b"mine").unwrap();
        let a = PackId([0xaa; 16]);

        let dir = claim_pack_dir(&author, "Drums", &a).unwrap();
        assert_eq!(dir, author.join("Drums (aaaaaaaa)"));
        assert_eq!(marker(&author, "Drums"), None);
        let names: Vec<_> = std::fs::read_dir(&own).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["notes.txt"]);
        assert_eq!(std::fs::read(own.join("notes.txt")).unwrap(), b"mine");

        // A marker that names no pack is no marker.
        std::fs::create_dir(author.join("Kit")).unwrap();
        std::fs::write(author.join(marker_name("Kit")), "not a pack id").unwrap();
        assert_eq!(claim_pack_dir(&author, "Kit", &a).unwrap(), author.join("Kit (aaaaaaaa)"));
    }

    #[test]
    fn relative_paths_stay_inside() {
        assert_eq!(relative_path("kicks/kick 01.wav").unwrap(), PathBuf::from("kicks").join("kick 01.wav"));
        assert_eq!(relative_path("a:b/c.wav").unwrap(), PathBuf::from("a_b").join("c.wav"));
        for bad in ["", "/etc/passwd", "\\x", "a/../b", "../b", "a//b", "./a", "a/", "a/..."] {
            assert!(matches!(relative_path(bad), Err(TransferError::BadName { .. })), "{bad:?}");
        }
        for name in ["x.wav", "deep/er/x.wav", "weird ../x", "..a/b"] {
            let path = relative_path(name).unwrap();
            assert!(path.components().all(|c| matches!(c, std::path::Component::Normal(_))), "{name:?}");
        }
    }
}
