//! The iroh-blobs file store (`blobs/`): every sample as a BLAKE3 blob, each pack's
//! files as a `Collection` kept alive by a named tag `pack/<pack id>`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use iroh_blobs::api::TempTag;
use iroh_blobs::api::blobs::{AddPathOptions, AddProgress, AddProgressItem, BlobStatus, ImportMode};
use iroh_blobs::format::collection::Collection;
use iroh_blobs::store::fs::FsStore;
use iroh_blobs::store::fs::options::PathOptions;
use iroh_blobs::{BlobFormat, Hash, HashAndFormat};
use smpl_protocol::{BlobHash, PackId};

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
    pub async fn open(dir: &Path) -> Result<Blobs, BlobError> {
        let store = FsStore::load(dir)
            .await
            .map_err(|e| BlobError::Open { path: dir.display().to_string(), reason: e.to_string() })?;
        Ok(Blobs { store, dir: dir.to_path_buf() })
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
        let collection: Collection = files.into_iter().map(|(name, hash)| (name, to_iroh(&hash))).collect();
        let tag = collection.store(&self.store).await.map_err(|e| store_err("storing a collection")(&e))?;
        self.store
            .tags()
            .set(pack_tag(pack), HashAndFormat::hash_seq(tag.hash()))
            .await
            .map_err(|e| store_err("tagging a collection")(&e))?;
        self.sync().await?;
        Ok(from_iroh(&tag.hash()))
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
        let collection: Collection =
            previews.into_iter().map(|(name, hash)| (name, to_iroh(&hash))).collect();
        let tag = collection.store(&self.store).await.map_err(|e| store_err("storing previews")(&e))?;
        self.store
            .tags()
            .set(previews_tag(pack), HashAndFormat::hash_seq(tag.hash()))
            .await
            .map_err(|e| store_err("tagging previews")(&e))?;
        Ok(())
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

    /// Flushes the blob store's metadata database.
    pub async fn sync(&self) -> Result<(), BlobError> {
        self.store.sync_db().await.map_err(|e| store_err("syncing the database")(&e))
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

    /// Whether this store holds the whole content of `pack` (its tag is set only
    /// once everything is stored).
    pub async fn has_pack(&self, pack: &PackId) -> Result<bool, BlobError> {
        let tag = self.store.tags().get(pack_tag(pack)).await.map_err(|e| store_err("reading a tag")(&e))?;
        Ok(tag.is_some())
    }

    /// Drops the pack's tag so its blobs may be collected.
    pub async fn untag_pack(&self, pack: &PackId) -> Result<(), BlobError> {
        self.store.tags().delete(pack_tag(pack)).await.map_err(|e| store_err("deleting a tag")(&e))?;
        Ok(())
    }

    pub async fn shutdown(&self) {
        let _ = self.store.shutdown().await;
    }
}
