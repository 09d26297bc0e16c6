//! The iroh-blobs file store (`blobs/`): every sample as a BLAKE3 blob, each pack's
//! files as a `Collection` kept alive by a named tag `pack/<pack id>`.

use std::path::Path;

use iroh_blobs::api::TempTag;
use iroh_blobs::api::blobs::{AddPathOptions, BlobStatus, ImportMode};
use iroh_blobs::format::collection::Collection;
use iroh_blobs::store::fs::FsStore;
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
}

pub fn to_iroh(hash: &BlobHash) -> Hash {
    Hash::from_bytes(hash.0)
}

pub fn from_iroh(hash: &Hash) -> BlobHash {
    BlobHash(*hash.as_bytes())
}

fn pack_tag(pack: &PackId) -> String {
    format!("pack/{pack}")
}

impl Blobs {
    pub async fn open(dir: &Path) -> Result<Blobs, BlobError> {
        let store = FsStore::load(dir)
            .await
            .map_err(|e| BlobError::Open { path: dir.display().to_string(), reason: e.to_string() })?;
        Ok(Blobs { store })
    }

    pub fn store(&self) -> &FsStore {
        &self.store
    }

    /// Copies a file into the store, hashing it on the way. The returned tag keeps
    /// the blob alive until the pack's collection tag holds it.
    pub async fn import_file(&self, path: &Path) -> Result<TempTag, BlobError> {
        let opts =
            AddPathOptions { path: path.to_path_buf(), mode: ImportMode::Copy, format: BlobFormat::Raw };
        self.store
            .blobs()
            .add_path_with_opts(opts)
            .temp_tag()
            .await
            .map_err(|e| BlobError::Import { path: path.display().to_string(), reason: e.to_string() })
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
