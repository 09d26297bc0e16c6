//! The iroh-blobs file store (`blobs/`): every sample as a BLAKE3 blob, each pack's
//! files as a `Collection` kept alive by a named tag `pack/<pack id>`.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use iroh_blobs::api::TempTag;
use iroh_blobs::api::blobs::{AddPathOptions, AddProgress, AddProgressItem, BlobStatus, ImportMode};
use iroh_blobs::format::collection::Collection;
use iroh_blobs::hashseq::HashSeq;
use iroh_blobs::store::fs::FsStore;
use iroh_blobs::store::fs::options::{Options, PathOptions};
use iroh_blobs::store::{GcConfig, ProtectCb, ProtectOutcome};
use iroh_blobs::{BlobFormat, Hash, HashAndFormat};
use smpl_protocol::{BlobHash, PackId};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("cannot open the blob store at {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("cannot import {path} into the blob store: {reason}")]
    Import { path: String, reason: String },
    #[error("blob store error while {action}: {reason}")]
    Store { action: &'static str, reason: String },
}

fn store_err(action: &'static str) -> impl FnOnce(&dyn std::fmt::Display) -> BlobError {
    move |e| BlobError::Store { action, reason: e.to_string() }
}

#[derive(Clone, Debug)]
pub struct Blobs {
    store: FsStore,
    dir: PathBuf,
    downloading: Downloading,
}

/// Blobs of downloads under way: kept by garbage collection before they are
/// complete and tagged, and by provenance pruning before they arrive.
#[derive(Clone, Debug, Default)]
pub struct Downloading(Arc<Mutex<HashMap<Hash, usize>>>);

impl Downloading {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Hash, usize>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Protects `hashes` until the returned guard is dropped.
    pub fn protect(&self, hashes: &[BlobHash]) -> DownloadGuard {
        let mut map = self.lock();
        for hash in hashes {
            *map.entry(to_iroh(hash)).or_default() += 1;
        }
        DownloadGuard { downloading: self.clone(), hashes: hashes.to_vec() }
    }

    /// Every protected hash.
    pub fn hashes(&self) -> HashSet<BlobHash> {
        self.lock().keys().map(from_iroh).collect()
    }
}

/// Keeps a download's blobs protected while it lives.
#[derive(Debug)]
pub struct DownloadGuard {
    downloading: Downloading,
    hashes: Vec<BlobHash>,
}

impl Drop for DownloadGuard {
    fn drop(&mut self) {
        let mut map = self.downloading.lock();
        for hash in &self.hashes {
            let hash = to_iroh(hash);
            if let Some(n) = map.get_mut(&hash) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&hash);
                }
            }
        }
    }
}

pub fn to_iroh(hash: &BlobHash) -> Hash {
    Hash::from_bytes(hash.0)
}

pub fn from_iroh(hash: &Hash) -> BlobHash {
    BlobHash(*hash.as_bytes())
}

fn previews_tag(pack: &PackId) -> String {
    format!("previews/{pack}")
}

fn pack_tag(pack: &PackId) -> String {
    format!("pack/{pack}")
}

fn preview_tag(hash: &BlobHash) -> String {
    format!("preview/{hash}")
}

/// The largest pack collection (hash sequence) read whole: a collection of
/// [`smpl_protocol::limits::MAX_SAMPLES`] files plus its metadata, with headroom.
pub const MAX_HASH_SEQ_BYTES: u64 = 32 * (smpl_protocol::limits::MAX_SAMPLES as u64 + 16);

/// Files up to this size are read whole and handed to the store as bytes. That saves
/// the store's copy step, which for every file creates a temporary file, tries a
/// reflink, deletes it and creates it again: for many small files those file system
/// operations cost more than the bytes.
const READ_WHOLE_MAX: u64 = 1024 * 1024;

/// From this size on, a file's hashing is waited for on a timer (see [`finish_import`]).
const QUIET_MIN: u64 = 4 * 1024 * 1024;

/// How often a quiet wait looks for the end of an import.
const QUIET_POLL: Duration = Duration::from_millis(1);

/// The contents of `path` if it holds at most [`READ_WHOLE_MAX`] bytes.
fn read_if_small(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    if size > READ_WHOLE_MAX {
        return Ok(None);
    }
    // Read one byte past the limit to notice a file that grew since its size was read.
    let mut data = Vec::with_capacity(size as usize);
    (&mut file).take(READ_WHOLE_MAX + 1).read_to_end(&mut data)?;
    Ok((data.len() as u64 <= READ_WHOLE_MAX).then_some(data))
}

/// Waits for the end of an import and returns its temp tag.
///
/// The store reports progress for every 16 KiB chunk group it hashes. Awaiting each
/// report wakes this task, which on a busy machine preempts the thread doing the
/// hashing: tens of thousands of wakeups and context switches per GiB, about a third
/// of the cost of the hashing itself. So once a large file is copied, this waits on a
/// timer instead and drains the reports without registering a waker. Reports are
/// best effort (the store drops those that find the channel full); the final result is
/// always delivered, and waits at most [`QUIET_POLL`] to be picked up.
async fn finish_import(progress: AddProgress<'_>) -> Result<TempTag, String> {
    fn outcome(item: Option<AddProgressItem>) -> Option<Result<TempTag, String>> {
        match item {
            None => Some(Err("the blob store ended the import without a result".to_string())),
            Some(AddProgressItem::Done(tag)) => Some(Ok(tag)),
            Some(AddProgressItem::Error(e)) => Some(Err(e.to_string())),
            Some(_) => None,
        }
    }
    let mut stream = pin!(progress.stream().await);
    let mut size = 0;
    loop {
        let item = stream.next().await;
        match item {
            Some(AddProgressItem::Size(s)) => size = s,
            Some(AddProgressItem::CopyDone) if size >= QUIET_MIN => break,
            item => {
                if let Some(result) = outcome(item) {
                    return result;
                }
            }
        }
    }
    // Hashing runs at a few GB/s: first sleep for about the time it needs at 4 GB/s.
    let mut wait = Duration::from_nanos(size / 4).max(QUIET_POLL);
    loop {
        tokio::time::sleep(wait).await;
        wait = QUIET_POLL;
        while let Some(item) = stream.next().now_or_never() {
            if let Some(result) = outcome(item) {
                return result;
            }
        }
    }
}

impl Blobs {
    /// Opens the store without garbage collection.
    pub async fn open(dir: &Path) -> Result<Blobs, BlobError> {
        Blobs::open_with_gc(dir, None).await
    }

    /// Opens the store; with `gc`, blobs that no tag (pack, previews, a fetched
    /// preview) and no download under way holds are deleted every `gc`.
    pub async fn open_with_gc(dir: &Path, gc: Option<Duration>) -> Result<Blobs, BlobError> {
        let downloading = Downloading::default();
        let mut options = Options::new(dir);
        options.gc = gc.map(|interval| {
            let downloading = downloading.clone();
            let protect: ProtectCb = Arc::new(move |live: &mut HashSet<Hash>| {
                live.extend(downloading.lock().keys().copied());
                Box::pin(async { ProtectOutcome::Continue })
            });
            GcConfig { interval, add_protected: Some(protect) }
        });
        let store = FsStore::load_with_opts(dir.join("blobs.db"), options)
            .await
            .map_err(|e| BlobError::Open { path: dir.display().to_string(), reason: e.to_string() })?;
        Ok(Blobs { store, dir: dir.to_path_buf(), downloading })
    }

    /// The downloads under way, for garbage collection and provenance pruning.
    pub fn downloading(&self) -> &Downloading {
        &self.downloading
    }

    /// Where the store keeps the data of a complete blob that it holds as a file
    /// of its own (the iroh-blobs file store's layout, `<blobs>/data/<hash>.data`).
    /// Blobs up to 16 KiB live inside its database instead, and blobs imported by
    /// reference elsewhere: the file need not exist.
    pub fn owned_data_path(&self, hash: &Hash) -> PathBuf {
        PathOptions::new(&self.dir).data_path(hash)
    }

    pub fn store(&self) -> &FsStore {
        &self.store
    }

    /// Where exports stage files before renaming them into the library: the home's
    /// `partial/` folder, beside the store (so on its file system).
    pub fn staging_dir(&self) -> PathBuf {
        self.dir.parent().unwrap_or(&self.dir).join("partial")
    }

    /// Copies a file into the store, hashing it on the way. The returned tag keeps
    /// the blob alive until the pack's collection tag holds it.
    ///
    /// The store keeps its own copy, so a pack stays servable when the producer edits
    /// or moves the original files. A file up to [`READ_WHOLE_MAX`] is read here and
    /// handed over in one piece (the store writes it out once); a larger one is
    /// copied by the store in 1 MiB steps. Either way at most about 1 MiB of a file is
    /// in memory per import.
    pub async fn import_file(&self, path: &Path) -> Result<TempTag, BlobError> {
        let import_err = |reason: String| BlobError::Import { path: path.display().to_string(), reason };
        let owned = path.to_path_buf();
        let small = tokio::task::spawn_blocking(move || read_if_small(&owned))
            .await
            .map_err(|e| import_err(e.to_string()))?
            .map_err(|e| import_err(e.to_string()))?;
        let progress = match small {
            Some(data) => self.store.blobs().add_bytes(data),
            None => self.store.blobs().add_path_with_opts(AddPathOptions {
                // The store takes absolute paths only.
                path: std::path::absolute(path).map_err(|e| import_err(e.to_string()))?,
                mode: ImportMode::Copy,
                format: BlobFormat::Raw,
            }),
        };
        finish_import(progress).await.map_err(import_err)
    }

    /// Stores the collection of a pack's files, tags it as the pack's content and
    /// makes the store's metadata durable. Returns the collection hash.
    pub async fn store_pack(
        &self,
        pack: &PackId,
        files: Vec<(String, BlobHash)>,
    ) -> Result<BlobHash, BlobError> {
        let hash = self
            .store_collection(pack_tag(pack), files, ("storing a collection", "tagging a collection"))
            .await?;
        self.sync().await?;
        Ok(hash)
    }

    /// Stores bytes (a preview clip). The returned tag keeps the blob alive until
    /// [`Blobs::store_previews`] holds it.
    pub async fn add_bytes(&self, bytes: Vec<u8>) -> Result<TempTag, BlobError> {
        let progress = self.store.blobs().add_bytes(bytes);
        finish_import(progress).await.map_err(|reason| BlobError::Import { path: "a preview".into(), reason })
    }

    /// Keeps a pack's previews (sample name → preview hash) under the tag
    /// `previews/<pack id>`, apart from its content: previews are free to anyone.
    pub async fn store_previews(
        &self,
        pack: &PackId,
        previews: Vec<(String, BlobHash)>,
    ) -> Result<(), BlobError> {
        self.store_collection(previews_tag(pack), previews, ("storing previews", "tagging previews")).await?;
        Ok(())
    }

    /// Stores `files` (name → hash) as a collection kept under the tag `tag`;
    /// `actions` name the two steps in errors. Returns the collection hash.
    async fn store_collection(
        &self,
        tag: String,
        files: Vec<(String, BlobHash)>,
        (storing, tagging): (&'static str, &'static str),
    ) -> Result<BlobHash, BlobError> {
        let collection: Collection = files.into_iter().map(|(name, hash)| (name, to_iroh(&hash))).collect();
        let temp = collection.store(&self.store).await.map_err(|e| store_err(storing)(&e))?;
        self.store
            .tags()
            .set(tag, HashAndFormat::hash_seq(temp.hash()))
            .await
            .map_err(|e| store_err(tagging)(&e))?;
        Ok(from_iroh(&temp.hash()))
    }

    /// The whole of a complete blob, if it is at most `max` bytes.
    pub async fn read(&self, hash: &BlobHash, max: u64) -> Result<Option<bytes::Bytes>, BlobError> {
        let status =
            self.store.blobs().status(to_iroh(hash)).await.map_err(|e| store_err("reading status")(&e))?;
        match status {
            BlobStatus::Complete { size } if size <= max => {
                let bytes = self.store.blobs().get_bytes(to_iroh(hash)).await;
                Ok(Some(bytes.map_err(|e| store_err("reading a blob")(&e))?))
            }
            _ => Ok(None),
        }
    }

    /// The possession proof of chunk `chunk` of a complete blob (see
    /// [`smpl_protocol::possession`]), reading it in pieces; `None` when the blob is
    /// not complete here, a single chunk, or `chunk` is out of range.
    pub async fn prove(&self, hash: &BlobHash, chunk: u64) -> Result<Option<Vec<[u8; 32]>>, BlobError> {
        use smpl_protocol::possession::{CHUNK_BYTES, chunks, path};
        let status =
            self.store.blobs().status(to_iroh(hash)).await.map_err(|e| store_err("reading status")(&e))?;
        let BlobStatus::Complete { size } = status else { return Ok(None) };
        if chunks(size) < 2 || chunk >= chunks(size) {
            return Ok(None);
        }
        let mut ranges: Vec<(u64, u64)> = path(size, chunk).iter().map(|s| s.sibling).collect();
        ranges.push((chunk, chunk + 1));
        let mut reader = self.store.blobs().reader(to_iroh(hash));
        let mut proof = Vec::with_capacity(ranges.len());
        let mut buf = vec![0u8; 64 * 1024];
        for (first, end) in ranges {
            let (start, stop) = (first * CHUNK_BYTES, (end * CHUNK_BYTES).min(size));
            reader
                .seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(|e| store_err("seeking a blob")(&e))?;
            let mut hasher = blake3::Hasher::new();
            blake3::hazmat::HasherExt::set_input_offset(&mut hasher, start);
            let mut left = stop - start;
            while left > 0 {
                let want = left.min(buf.len() as u64) as usize;
                reader.read_exact(&mut buf[..want]).await.map_err(|e| store_err("reading a blob")(&e))?;
                hasher.update(&buf[..want]);
                left -= want as u64;
            }
            proof.push(blake3::hazmat::HasherExt::finalize_non_root(&hasher));
        }
        Ok(Some(proof))
    }

    /// Flushes the blob store's metadata database.
    pub async fn sync(&self) -> Result<(), BlobError> {
        self.store.sync_db().await.map_err(|e| store_err("syncing the database")(&e))
    }

    /// Whether any of the blob is stored (complete or partial); errors count as
    /// stored, so nothing is forgotten because of a failed read.
    pub async fn is_stored(&self, hash: &BlobHash) -> bool {
        !matches!(self.store.blobs().status(to_iroh(hash)).await, Ok(BlobStatus::NotFound))
    }

    /// Whether the blob is stored completely.
    pub async fn is_complete(&self, hash: &BlobHash) -> Result<bool, BlobError> {
        let status =
            self.store.blobs().status(to_iroh(hash)).await.map_err(|e| store_err("reading status")(&e))?;
        Ok(matches!(status, BlobStatus::Complete { .. }))
    }

    /// Tags a downloaded pack's collection so it is kept and served.
    pub async fn tag_pack(&self, pack: &PackId, content: &BlobHash) -> Result<(), BlobError> {
        self.store
            .tags()
            .set(pack_tag(pack), HashAndFormat::hash_seq(to_iroh(content)))
            .await
            .map_err(|e| store_err("tagging a collection")(&e))?;
        self.sync().await
    }

    /// Whether this store holds the whole content of some version of `pack`.
    pub async fn has_pack(&self, pack: &PackId) -> Result<bool, BlobError> {
        Ok(self.pack_content(pack).await?.is_some())
    }

    /// The content this store holds whole for `pack`, if any (its tag is set only
    /// once everything is stored).
    pub async fn pack_content(&self, pack: &PackId) -> Result<Option<BlobHash>, BlobError> {
        let tag = self.store.tags().get(pack_tag(pack)).await.map_err(|e| store_err("reading a tag")(&e))?;
        Ok(tag.map(|t| from_iroh(&t.hash)))
    }

    /// Every pack whose content is tagged here, with that content.
    pub async fn tagged_packs(&self) -> Result<Vec<(PackId, BlobHash)>, BlobError> {
        self.tagged("pack/").await
    }

    /// Every pack whose previews are tagged here, with the previews' collection.
    pub async fn tagged_previews(&self) -> Result<Vec<(PackId, BlobHash)>, BlobError> {
        self.tagged("previews/").await
    }

    async fn tagged(&self, prefix: &str) -> Result<Vec<(PackId, BlobHash)>, BlobError> {
        let mut list =
            self.store.tags().list_prefix(prefix).await.map_err(|e| store_err("listing tags")(&e))?;
        let mut tagged = Vec::new();
        while let Some(item) = list.next().await {
            let info = item.map_err(|e| store_err("listing tags")(&e))?;
            let name = String::from_utf8_lossy(info.name.as_ref()).into_owned();
            if let Some(pack) = name.strip_prefix(prefix).and_then(|id| id.parse::<PackId>().ok()) {
                tagged.push((pack, from_iroh(&info.hash)));
            }
        }
        Ok(tagged)
    }

    /// The children of a stored collection (its metadata blob, then its files),
    /// or `None` when the collection is not stored whole.
    pub async fn children(&self, root: &BlobHash) -> Result<Option<Vec<BlobHash>>, BlobError> {
        let Some(bytes) = self.read(root, MAX_HASH_SEQ_BYTES).await? else { return Ok(None) };
        match HashSeq::try_from(bytes) {
            Ok(seq) => Ok(Some(seq.iter().map(|h| from_iroh(&h)).collect())),
            Err(_) => Ok(None),
        }
    }

    /// Keeps a fetched preview clip (previews of other nodes' packs) from being
    /// collected.
    pub async fn tag_preview(&self, hash: &BlobHash) -> Result<(), BlobError> {
        self.store
            .tags()
            .set(preview_tag(hash), HashAndFormat::raw(to_iroh(hash)))
            .await
            .map_err(|e| store_err("tagging a preview")(&e))
    }

    /// Whether a complete blob's stored bytes still hash to it. Blobs the store
    /// keeps in a file of its own are read from that file (a library hard link
    /// shares it); smaller ones live in its database and are taken as sound.
    pub async fn verify(&self, hash: &BlobHash) -> Result<bool, BlobError> {
        let path = self.owned_data_path(&to_iroh(hash));
        let expected = *hash;
        let verdict = tokio::task::spawn_blocking(move || {
            let file = match std::fs::File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return true,
                Err(_) => return false,
            };
            let mut hasher = blake3::Hasher::new();
            hasher.update_reader(file).is_ok() && *hasher.finalize().as_bytes() == expected.0
        })
        .await
        .map_err(|e| store_err("verifying a blob")(&e))?;
        Ok(verdict)
    }

    /// Drops the pack's tags (content and previews) so its blobs may be collected.
    pub async fn untag_pack(&self, pack: &PackId) -> Result<(), BlobError> {
        for tag in [pack_tag(pack), previews_tag(pack)] {
            self.store.tags().delete(tag).await.map_err(|e| store_err("deleting a tag")(&e))?;
        }
        self.sync().await
    }

    pub async fn shutdown(&self) {
        let _ = self.store.shutdown().await;
    }
}
