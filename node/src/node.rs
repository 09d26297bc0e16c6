//! The node: owns the store, the blob store, the index and the indexer, and offers
//! the operations the local API exposes.

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use smpl_index::{Index, SearchQuery, SearchResults};
use smpl_protocol::{Identity, Manifest, NodeId, PackId, Retraction, Signed};
use tokio::sync::mpsc;

use crate::blobs::{BlobError, Blobs};
use crate::home::{Config, Home, HomeError};
use crate::indexer::IndexerHandle;
use crate::publish::{self, PublishError, PublishEvent, PublishOutcome, PublishRequest};
use crate::store::{Accepted, Store, StoreError};

/// How to run a node.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub home: Home,
    /// Where the local HTTP API listens (port 0 picks a free port).
    pub api: SocketAddr,
    pub listen: Vec<String>,
    pub bootstrap: Vec<String>,
    pub mdns: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("search index: {0}")]
    Index(#[from] smpl_index::IndexError),
    #[error("another node is already running for {home} ({reason})")]
    Locked { home: String, reason: String },
    #[error("no pack {0} here")]
    UnknownPack(PackId),
    #[error("no pack matches {0:?} (give a pack id or a unique prefix of one; `smpl search --packs` lists them)")]
    NoSuchPack(String),
    #[error("{0:?} matches several packs; give more of the pack id")]
    Ambiguous(String),
    #[error("pack {pack} belongs to {author}; only its author can retract it")]
    NotYours { pack: PackId, author: NodeId },
    #[error("signing failed: {0}")]
    Sign(#[from] smpl_protocol::ProtocolError),
    #[error("background task failed: {0}")]
    Task(String),
}

/// A pack as `smpl show` presents it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PackView {
    #[serde(flatten)]
    pub manifest: Manifest,
    /// The signed envelope, hex, as stored and forwarded.
    pub envelope_bytes: usize,
}

/// What `smpl check` reports: whether every stored pack is whole and indexed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CheckReport {
    /// Packs whose manifest is stored.
    pub packs: usize,
    /// Packs with a blob missing or incomplete in the blob store.
    pub incomplete: Vec<PackId>,
    /// Packs in the index.
    pub indexed: usize,
    /// Packs whose index entry disagrees with the store (missing, stale or extra).
    pub index_mismatch: Vec<PackId>,
    /// Entries still waiting in the index queue.
    pub queued: usize,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.incomplete.is_empty() && self.index_mismatch.is_empty() && self.queued == 0
    }
}

pub struct Node {
    identity: Identity,
    home: Home,
    config: Config,
    store: Store,
    blobs: Blobs,
    index: Arc<Index>,
    indexer: IndexerHandle,
    indexer_thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Node {
    /// Opens (creating where missing) everything under the home and starts the indexer.
    pub async fn open(home: Home) -> Result<Node, NodeError> {
        let (identity, _) = home.init()?;
        let config = home.config()?;
        let db_dir = home.db_dir();
        let store = tokio::task::spawn_blocking(move || Store::open(&db_dir))
            .await
            .map_err(|e| NodeError::Task(e.to_string()))?
            .map_err(|e| match e {
                StoreError::Sled(sled::Error::Io(io)) if io.kind() == std::io::ErrorKind::WouldBlock => {
                    NodeError::Locked { home: home.root().display().to_string(), reason: io.to_string() }
                }
                other => NodeError::Store(other),
            })?;
        let blobs = Blobs::open(&home.blobs_dir()).await?;
        let index_dir = home.index_dir();
        let index = tokio::task::spawn_blocking(move || Index::open(&index_dir))
        .await
        .map_err(|e| NodeError::Task(e.to_string()))??;
        let index = Arc::new(index);
        let (indexer, join) = IndexerHandle::spawn(store.clone(), index.clone());
        Ok(Node {
            identity,
            home,
            config,
            store,
            blobs,
            index,
            indexer,
            indexer_thread: std::sync::Mutex::new(Some(join)),
        })
    }

    pub fn node_id(&self) -> NodeId {
        self.identity.node_id()
    }

    pub fn home(&self) -> &Home {
        &self.home
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Publishes a folder; returns once the pack is stored and searchable.
    pub async fn publish(
        &self,
        request: PublishRequest,
        progress: mpsc::Sender<PublishEvent>,
    ) -> Result<PublishOutcome, PublishError> {
        let outcome =
            publish::publish(&self.identity, &self.config.name, &self.store, &self.blobs, request, progress).await?;
        self.indexer.wake();
        self.indexer.flush().await;
        Ok(outcome)
    }

    pub async fn search(&self, query: SearchQuery) -> Result<SearchResults, NodeError> {
        let index = self.index.clone();
        Ok(tokio::task::spawn_blocking(move || index.search(&query))
            .await
            .map_err(|e| NodeError::Task(e.to_string()))??)
    }

    pub fn show(&self, pack: &PackId) -> Result<PackView, NodeError> {
        let (manifest, envelope) = self.store.manifest(pack)?.ok_or(NodeError::UnknownPack(*pack))?;
        Ok(PackView { manifest, envelope_bytes: envelope.as_bytes().len() })
    }

    /// Signs and applies a retraction of one of this node's packs.
    pub async fn retract(&self, pack: &PackId) -> Result<(), NodeError> {
        let (manifest, _) = self.store.manifest(pack)?.ok_or(NodeError::UnknownPack(*pack))?;
        if manifest.author != self.node_id() {
            return Err(NodeError::NotYours { pack: *pack, author: manifest.author });
        }
        let retraction = Retraction {
            pack_id: *pack,
            author: manifest.author,
            slug: manifest.slug.clone(),
            seq: manifest.seq,
            retracted_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        let envelope = retraction.sign(&self.identity)?;
        let store = self.store.clone();
        let accepted = tokio::task::spawn_blocking(move || store.accept_retraction(&retraction, &envelope))
            .await
            .map_err(|e| NodeError::Task(e.to_string()))??;
        if accepted == Accepted::New {
            self.blobs.untag_pack(pack).await?;
        }
        self.indexer.wake();
        self.indexer.flush().await;
        Ok(())
    }

    /// Rebuilds the search index from the manifests in the store.
    pub async fn rebuild_index(&self) {
        self.indexer.rebuild().await;
    }

    /// Resolves a full pack id or a unique prefix (at least 4 hex digits).
    pub fn resolve(&self, text: &str) -> Result<PackId, NodeError> {
        let text = text.trim().to_ascii_lowercase();
        if let Ok(id) = text.parse::<PackId>() {
            return Ok(id);
        }
        let unknown = || NodeError::NoSuchPack(text.clone());
        if text.len() < 4 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(unknown());
        }
        let mut matches = self.store.pack_seqs()?.into_iter().filter(|(id, _)| id.to_hex().starts_with(&text));
        match (matches.next(), matches.next()) {
            (Some((id, _)), None) => Ok(id),
            (Some(_), Some(_)) => Err(NodeError::Ambiguous(text)),
            _ => Err(unknown()),
        }
    }

    /// Checks that every stored pack is whole in the blob store and that the index
    /// agrees with the store (after draining the index queue).
    pub async fn check(&self) -> Result<CheckReport, NodeError> {
        self.indexer.flush().await;
        let mut report = CheckReport::default();
        let store = self.store.clone();
        let index = self.index.clone();
        let (stored, indexed) = tokio::task::spawn_blocking(move || {
            Ok::<_, NodeError>((store.pack_seqs()?, index.packs()?))
        })
        .await
        .map_err(|e| NodeError::Task(e.to_string()))??;
        report.packs = stored.len();
        report.indexed = indexed.len();
        report.queued = self.store.queue_len();
        let stored_map: std::collections::HashMap<_, _> = stored.iter().copied().collect();
        let indexed_map: std::collections::HashMap<_, _> = indexed.iter().copied().collect();
        for (id, seq) in &stored {
            if indexed_map.get(id) != Some(seq) {
                report.index_mismatch.push(*id);
            }
        }
        for (id, _) in &indexed {
            if !stored_map.contains_key(id) {
                report.index_mismatch.push(*id);
            }
        }
        for (id, _) in &stored {
            let Some((manifest, _)) = self.store.manifest(id)? else { continue };
            let mut whole = self.blobs.is_complete(&manifest.content).await?;
            for sample in &manifest.samples {
                whole = whole && self.blobs.is_complete(&sample.hash).await?;
            }
            if !whole {
                report.incomplete.push(*id);
            }
        }
        Ok(report)
    }

    /// Waits until the index holds everything queued so far.
    pub async fn flush_index(&self) {
        self.indexer.flush().await;
    }

    /// Stops the indexer and closes the stores.
    pub async fn shutdown(self) {
        let Node { indexer, indexer_thread, blobs, store, .. } = self;
        drop(indexer);
        let join = indexer_thread.lock().ok().and_then(|mut j| j.take());
        if let Some(join) = join {
            let _ = tokio::task::spawn_blocking(move || join.join()).await;
        }
        blobs.shutdown().await;
        let _ = tokio::task::spawn_blocking(move || store.flush()).await;
    }
}
