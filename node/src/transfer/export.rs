//! Export: a stored pack as plain files a DAW opens.
//!
//! Files go to `<library>/<author name>/<pack title>/<file name>`. The author and
//! title become one folder name each, and every part of a file's relative path is
//! checked the same way, so nothing lands outside the pack folder whatever the
//! manifest says. Every file appears under a temporary name, is checked against
//! its size and is renamed into place, so a file under its real name is always
//! whole; several files are exported at once.
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
//! copied. Copying was the largest cost of a fetch after the download itself
//! (issue 3, on the benchmark machine: 2.1 s of a 7.3 s fetch of a 1 GiB pack, 1.4
//! s of 3.2 s for 1,000 files; writing the files while they download instead cost
//! about as much, two writes and two new files each). A link writes no data and
//! takes no disk space, so fetched packs take half the space.
//!
//! Nothing is `fsync`ed, as `cp`, `sendme` and BitTorrent clients do not, nor
//! iroh-blobs for complete blobs: forcing a 1 GiB pack to disk before `fetch`
//! returns ties the fetch to the disk's write speed (about 7 s on the benchmark
//! machine, longer than the whole download; issue 3). The kernel writes the files
//! back within seconds; a file that a power cut in those seconds damaged no longer
//! matches its hash, and the node refuses to serve it (see above).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use futures::StreamExt;
use iroh_blobs::format::collection::Collection;
use iroh_blobs::{Hash, HashAndFormat};
use smpl_protocol::{BlobHash, Manifest, SampleEntry};

use super::TransferError;
use crate::blobs::{Blobs, to_iroh};

/// Longest folder or file name written, in bytes (most file systems allow 255).
const MAX_COMPONENT_BYTES: usize = 200;
/// The mode of a library file that is a hard link to a stored blob.
#[cfg(unix)]
pub(crate) const READ_ONLY: u32 = 0o444;
/// Files copied at the same time.
const PARALLEL_WRITES: usize = 4;

/// Where a pack was exported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exported {
    /// The pack folder, `<library>/<author>/<title>`.
    pub path: PathBuf,
    pub files: usize,
    pub bytes: u64,
}

/// The pack folder and where each file of the manifest goes in it.
struct Targets<'a> {
    dir: PathBuf,
    files: Vec<(PathBuf, &'a SampleEntry)>,
}

/// The pack folder, `<library>/<author>/<title>`, absolute.
fn pack_dir(manifest: &Manifest, library: &Path) -> Result<PathBuf, TransferError> {
    let library = std::path::absolute(library).map_err(TransferError::io("resolve", library))?;
    let author =
        folder_name(&manifest.author_name).unwrap_or_else(|| manifest.author.to_hex()[..16].to_string());
    let title = folder_name(&manifest.title).unwrap_or_else(|| manifest.slug.clone());
    Ok(library.join(author).join(title))
}

fn targets<'a>(manifest: &'a Manifest, library: &Path) -> Result<Targets<'a>, TransferError> {
    let dir = pack_dir(manifest, library)?;

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
        files.push((dir.join(relative), sample));
    }
    Ok(Targets { dir, files })
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
) -> Result<Exported, TransferError> {
    stored_pack(blobs, manifest).await?;
    let targets = targets(manifest, library)?;
    write_files(blobs, manifest.content, &targets).await?;
    Ok(exported(manifest, targets))
}

fn exported(manifest: &Manifest, targets: Targets<'_>) -> Exported {
    let bytes = targets.files.iter().map(|(_, sample)| sample.size).sum();
    let files = targets.files.len();
    tracing::info!(pack = %manifest.pack_id, path = %targets.dir.display(), files, bytes, "exported pack");
    Exported { path: targets.dir, files, bytes }
}

/// Creates the folders of `targets` and puts its files there, several at once.
async fn write_files(blobs: &Blobs, content: BlobHash, targets: &Targets<'_>) -> Result<(), TransferError> {
    tokio::fs::create_dir_all(&targets.dir).await.map_err(TransferError::io("create", &targets.dir))?;
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
        .map(|(target, sample)| write_file(blobs, content, target, sample, &reflinks))
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

/// Links or copies one blob to `target` through a temporary name in the same
/// folder.
async fn write_file(
    blobs: &Blobs,
    content: BlobHash,
    target: &Path,
    sample: &SampleEntry,
    reflinks: &Arc<AtomicBool>,
) -> Result<u64, TransferError> {
    // `stored_pack` checked that every blob is complete, and a blob's size
    // follows from its hash; a file of another length is a mismatch below.
    let hash = to_iroh(&sample.hash);
    let mismatch = |reason: String| TransferError::Mismatch { content, reason };
    let Some((parent, file_name)) = target.parent().zip(target.file_name()) else {
        return Err(TransferError::BadName { name: sample.name.clone(), reason: "no file name".into() });
    };
    let temp = parent.join(temp_name(file_name));
    let result = async {
        let task = |e: tokio::task::JoinError| TransferError::Task(e.to_string());
        let (owned, shared, expected) = (blobs.owned_data_path(&hash), temp.clone(), sample.size);
        let reflinks = reflinks.clone();
        let shared =
            tokio::task::spawn_blocking(move || share_stored_file(&owned, &shared, expected, &reflinks))
                .await
                .map_err(task)?;
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
        let expected = sample.size;
        tokio::task::spawn_blocking(move || finish_file(&temp, &target, expected)).await.map_err(task)?
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&temp).await;
    }
    result.map(|()| sample.size)
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

/// Checks the temporary file's length and renames it into place.
fn finish_file(temp: &Path, target: &Path, expected: u64) -> Result<(), TransferError> {
    let len = std::fs::metadata(temp).map_err(TransferError::io("inspect", temp))?.len();
    if len != expected {
        let source = std::io::Error::other(format!("it has {len} bytes, expected {expected}"));
        return Err(TransferError::Io { action: "verify", path: temp.display().to_string(), source });
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
