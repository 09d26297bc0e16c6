//! Fetching a pack collection from several providers.
//!
//! A download runs in three steps, each resuming from what the store already
//! holds (iroh-blobs keeps every verified chunk, also of incomplete blobs):
//!
//! 1. the collection's hash sequence (the list of its blobs), bounded in size;
//! 2. the last chunk of every blob, which proves each blob's size (so the total
//!    is known up front, as `sendme` does it);
//! 3. the blobs themselves, several at once, each request starting at a
//!    different provider so that several providers serve in parallel.
//!
//! Each request goes to one provider at a time. A provider that cannot be
//! reached, refuses, fails, lacks the data or sends bytes that do not match
//! their BLAKE3 hash is dropped for the rest of the download and the request
//! moves on to the next one; only a "busy" answer (the provider's request limit)
//! is retried later. Data is verified chunk by chunk as it arrives, so a lying
//! provider is caught within one chunk group and nothing unverified is stored.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use iroh::endpoint::Connection;
use iroh::{Endpoint, EndpointId};
use iroh_blobs::api::Store;
use iroh_blobs::api::remote::GetProgressItem;
use iroh_blobs::get::GetError;
use iroh_blobs::get::fsm::DecodeError;
use iroh_blobs::hashseq::HashSeq;
use iroh_blobs::protocol::{
    ChunkRanges, ChunkRangesExt, ChunkRangesSeq, ERR_LIMIT, ERR_PERMISSION, GetRequest,
};
use iroh_blobs::store::fs::FsStore;
use iroh_blobs::{Hash, HashAndFormat};
use smpl_protocol::{BlobHash, NodeId};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{TransferError, node_id};
use crate::blobs::to_iroh;

/// The largest hash sequence a pack collection can have: the metadata blob and
/// [`smpl_protocol::limits::MAX_SAMPLES`] files (32 bytes each), with headroom.
const MAX_ROOT_BYTES: u64 = 32 * (smpl_protocol::limits::MAX_SAMPLES as u64 + 16);
/// Blob requests in flight per provider, and in total.
const PARALLEL_PER_PROVIDER: usize = 4;
const MAX_PARALLEL: usize = 8;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a request is retried at a provider that answered "busy".
const MAX_BUSY_RETRIES: u32 = 20;
const BUSY_BACKOFF: Duration = Duration::from_millis(100);
/// Progress is reported at most once per this many bytes.
const PROGRESS_STEP: u64 = 64 * 1024;

/// How far a download is, in bytes of the pack's content (its hash sequence,
/// collection metadata and files).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DownloadProgress {
    /// Bytes stored, including what was stored before the download started.
    pub done: u64,
    /// All bytes of the content; `None` until the sizes are known.
    pub total: Option<u64>,
}

/// What a finished download did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Downloaded {
    /// All bytes of the content.
    pub total: u64,
    /// Bytes that were already stored before this download.
    pub had: u64,
    /// Verified bytes received from providers during this download.
    pub fetched: u64,
    /// Providers that were dropped on the way, and why.
    pub dropped: Vec<DroppedProvider>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DroppedProvider {
    pub node: NodeId,
    pub reason: DropReason,
}

/// Why a provider was dropped from a download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// No connection could be made.
    Unreachable(String),
    /// It refused the request (its gate did not allow it).
    Refused,
    /// It sent data that does not match the BLAKE3 hash asked for.
    Corrupt(String),
    /// The connection or stream failed, or it does not have the data.
    Failed(String),
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DropReason::Unreachable(e) => write!(f, "unreachable ({e})"),
            DropReason::Refused => f.write_str("refused the request"),
            DropReason::Corrupt(e) => write!(f, "sent corrupt data ({e})"),
            DropReason::Failed(e) => write!(f, "failed ({e})"),
        }
    }
}

/// How one attempt at one provider went wrong.
enum Failure {
    /// Over the provider's request limit: try again later.
    Busy,
    Drop(DropReason),
}

fn classify(error: &GetError) -> Failure {
    match error.iroh_error_code() {
        Some(code) if code == ERR_LIMIT => return Failure::Busy,
        Some(code) if code == ERR_PERMISSION => return Failure::Drop(DropReason::Refused),
        _ => {}
    }
    if let GetError::Decode { source, .. } = error
        && matches!(source, DecodeError::LeafHashMismatch { .. } | DecodeError::ParentHashMismatch { .. })
    {
        return Failure::Drop(DropReason::Corrupt(source.to_string()));
    }
    Failure::Drop(DropReason::Failed(error.to_string()))
}

pub(super) async fn run(
    endpoint: &Endpoint,
    store: &FsStore,
    content: BlobHash,
    providers: Vec<EndpointId>,
    progress: Option<mpsc::Sender<DownloadProgress>>,
) -> Result<Downloaded, TransferError> {
    let mut unique = Vec::new();
    for provider in providers {
        if provider != endpoint.id() && !unique.contains(&provider) {
            unique.push(provider);
        }
    }
    let session = Arc::new(Session {
        endpoint: endpoint.clone(),
        store: store.as_ref().clone(),
        content,
        root: to_iroh(&content),
        providers: unique,
        dropped: Mutex::new(Vec::new()),
        connections: Mutex::new(HashMap::new()),
        fetched: AtomicU64::new(0),
        reporter: tokio::sync::Mutex::new(Reporter { tx: progress, base: 0, total: None, last: None }),
    });
    let result = session.clone().fetch_all().await;
    session.close_connections();
    let dropped = session.dropped();
    for DroppedProvider { node, reason } in &dropped {
        tracing::warn!(%content, provider = %node, "dropped a provider: {reason}");
    }
    let (total, had) = result?;
    Ok(Downloaded { total, had, fetched: session.fetched.load(Ordering::Relaxed), dropped })
}

struct Reporter {
    tx: Option<mpsc::Sender<DownloadProgress>>,
    /// Bytes stored that this download did not fetch.
    base: u64,
    total: Option<u64>,
    last: Option<u64>,
}

struct Session {
    endpoint: Endpoint,
    store: Store,
    content: BlobHash,
    root: Hash,
    providers: Vec<EndpointId>,
    dropped: Mutex<Vec<(EndpointId, DropReason)>>,
    /// One connection per provider, made on first use.
    connections: Mutex<HashMap<EndpointId, Arc<tokio::sync::Mutex<Option<Connection>>>>>,
    /// Verified payload bytes received.
    fetched: AtomicU64,
    reporter: tokio::sync::Mutex<Reporter>,
}

impl Session {
    /// Fetches everything; returns the total size and the bytes already stored.
    async fn fetch_all(self: Arc<Self>) -> Result<(u64, u64), TransferError> {
        let store_err = TransferError::store;
        let everything = HashAndFormat::hash_seq(self.root);
        let local =
            self.store.remote().local(everything).await.map_err(|e| store_err("reading local state")(&e))?;
        if !local.is_complete() && self.providers.is_empty() {
            return Err(TransferError::NoProviders { content: self.content });
        }
        self.report(false).await;

        // 1. The hash sequence: its first MAX_ROOT_BYTES and its last chunk, which
        //    proves its size; a longer one is no pack collection.
        let root_ranges = ChunkRanges::bytes(..MAX_ROOT_BYTES) | ChunkRanges::last_chunk();
        self.fetch(GetRequest::builder().root(root_ranges).build(self.root), 0, "the file list").await?;
        let root_size = self.validated_size(self.root).await?;
        if root_size > MAX_ROOT_BYTES {
            return Err(self.not_a_collection(format!("its hash sequence has {root_size} bytes")));
        }
        let bytes = self
            .store
            .blobs()
            .get_bytes(self.root)
            .await
            .map_err(|e| store_err("reading a hash sequence")(&e))?;
        let seq = HashSeq::try_from(bytes).map_err(|e| self.not_a_collection(e.to_string()))?;
        if seq.is_empty() {
            return Err(self.not_a_collection("its hash sequence is empty".into()));
        }

        // 2. The last chunk of every blob: verified sizes, hence the total.
        let last_chunks =
            ChunkRangesSeq::from_ranges_infinite([ChunkRanges::empty(), ChunkRanges::last_chunk()]);
        self.fetch(GetRequest::new(self.root, last_chunks), 0, "the file sizes").await?;
        let mut total = root_size;
        let mut missing = Vec::new();
        for (index, hash) in seq.iter().enumerate() {
            let bitfield =
                self.store.observe(hash).await.map_err(|e| store_err("reading a blob's state")(&e))?;
            let size = bitfield
                .validated_size()
                .ok_or_else(|| self.unavailable(format!("the size of file {index}")))?;
            total += size;
            if !bitfield.is_complete() {
                missing.push(index);
            }
        }
        let stored =
            self.store.remote().local(everything).await.map_err(|e| store_err("reading local state")(&e))?;
        let had = stored.local_bytes().saturating_sub(self.fetched.load(Ordering::Relaxed));
        {
            let mut reporter = self.reporter.lock().await;
            reporter.base = had;
            reporter.total = Some(total);
        }
        self.report(true).await;

        // 3. The blobs, several at a time, each starting at another provider.
        let parallel = (PARALLEL_PER_PROVIDER * self.providers.len()).clamp(1, MAX_PARALLEL);
        let mut tasks = JoinSet::new();
        let mut queue = missing.into_iter();
        loop {
            while tasks.len() < parallel {
                let Some(index) = queue.next() else { break };
                let session = self.clone();
                tasks.spawn(async move {
                    let request =
                        GetRequest::builder().child(index as u64, ChunkRanges::all()).build(session.root);
                    session.fetch(request, index, &format!("file {index}")).await
                });
            }
            let Some(joined) = tasks.join_next().await else { break };
            // An error ends the download; dropping the set aborts the others, and
            // what they verified so far stays stored.
            joined.map_err(|e| TransferError::Task(e.to_string()))??;
        }

        let stored =
            self.store.remote().local(everything).await.map_err(|e| store_err("reading local state")(&e))?;
        if !stored.is_complete() {
            return Err(self.unavailable("all files".into()));
        }
        self.report(true).await;
        Ok((total, had))
    }

    /// Makes the locally stored part of `request` complete, trying providers in
    /// turn starting with the `first`-th.
    async fn fetch(&self, request: GetRequest, first: usize, what: &str) -> Result<(), TransferError> {
        let mut turn = first;
        let mut busy = 0;
        loop {
            let local = self
                .store
                .remote()
                .local_for_request(request.clone())
                .await
                .map_err(|e| TransferError::store("reading local state")(&e))?;
            if local.is_complete() {
                return Ok(());
            }
            let Some(provider) = self.next_provider(&mut turn) else {
                return Err(self.unavailable(what.to_string()));
            };
            let connection = match self.connection(provider).await {
                Ok(connection) => connection,
                Err(e) => {
                    self.drop_provider(provider, DropReason::Unreachable(e));
                    continue;
                }
            };
            match self.get(connection, local.missing()).await {
                Ok(()) => {
                    let after = self
                        .store
                        .remote()
                        .local_for_request(request.clone())
                        .await
                        .map_err(|e| TransferError::store("reading local state")(&e))?;
                    if !after.is_complete() {
                        // It answered, but without everything: it does not hold it all.
                        self.drop_provider(provider, DropReason::Failed(format!("does not have {what}")));
                    }
                }
                Err(Failure::Busy) if busy < MAX_BUSY_RETRIES => {
                    busy += 1;
                    tracing::debug!(provider = %node_id(&provider), what, "provider busy; retrying later");
                    tokio::time::sleep(BUSY_BACKOFF * busy).await;
                }
                Err(Failure::Busy) => {
                    self.drop_provider(provider, DropReason::Failed("stayed busy".into()));
                }
                Err(Failure::Drop(reason)) => {
                    self.forget_connection(provider);
                    self.drop_provider(provider, reason);
                }
            }
        }
    }

    /// Runs one get request on one connection, counting verified bytes.
    async fn get(&self, connection: Connection, request: GetRequest) -> Result<(), Failure> {
        let stream = self.store.remote().execute_get(connection, request).stream();
        futures::pin_mut!(stream);
        let mut last = 0;
        while let Some(item) = stream.next().await {
            match item {
                GetProgressItem::Progress(read) => {
                    self.fetched.fetch_add(read.saturating_sub(last), Ordering::Relaxed);
                    last = read;
                    self.report(false).await;
                }
                GetProgressItem::Done(_) => return Ok(()),
                GetProgressItem::Error(e) => return Err(classify(&e)),
            }
        }
        Err(Failure::Drop(DropReason::Failed("the transfer ended without a result".into())))
    }

    /// The next provider not dropped yet, going round from `turn`.
    fn next_provider(&self, turn: &mut usize) -> Option<EndpointId> {
        let dropped = self.dropped.lock().unwrap_or_else(|p| p.into_inner());
        let n = self.providers.len();
        for _ in 0..n {
            let candidate = self.providers[*turn % n];
            *turn += 1;
            if !dropped.iter().any(|(id, _)| *id == candidate) {
                return Some(candidate);
            }
        }
        None
    }

    fn drop_provider(&self, provider: EndpointId, reason: DropReason) {
        let mut dropped = self.dropped.lock().unwrap_or_else(|p| p.into_inner());
        if !dropped.iter().any(|(id, _)| *id == provider) {
            tracing::info!(content = %self.content, provider = %node_id(&provider), "dropping provider: {reason}");
            dropped.push((provider, reason));
        }
    }

    fn dropped(&self) -> Vec<DroppedProvider> {
        let dropped = self.dropped.lock().unwrap_or_else(|p| p.into_inner());
        dropped
            .iter()
            .map(|(id, reason)| DroppedProvider { node: node_id(id), reason: reason.clone() })
            .collect()
    }

    async fn connection(&self, provider: EndpointId) -> Result<Connection, String> {
        let slot = {
            let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
            connections.entry(provider).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some(connection) = slot.as_ref()
            && connection.close_reason().is_none()
        {
            return Ok(connection.clone());
        }
        let connection =
            tokio::time::timeout(CONNECT_TIMEOUT, self.endpoint.connect(provider, iroh_blobs::ALPN))
                .await
                .map_err(|_| format!("no connection within {CONNECT_TIMEOUT:?}"))?
                .map_err(|e| e.to_string())?;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    fn forget_connection(&self, provider: EndpointId) {
        let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = connections.remove(&provider)
            && let Ok(slot) = slot.try_lock()
            && let Some(connection) = slot.as_ref()
        {
            connection.close(0u32.into(), b"dropped");
        }
    }

    fn close_connections(&self) {
        let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        for (_, slot) in connections.drain() {
            if let Ok(slot) = slot.try_lock()
                && let Some(connection) = slot.as_ref()
            {
                connection.close(0u32.into(), b"done");
            }
        }
    }

    async fn validated_size(&self, hash: Hash) -> Result<u64, TransferError> {
        let bitfield =
            self.store.observe(hash).await.map_err(|e| TransferError::store("reading a blob's state")(&e))?;
        bitfield.validated_size().ok_or_else(|| self.unavailable("the size of the file list".into()))
    }

    /// Sends a progress update when it moved far enough (or always, if `force`).
    /// Holding the lock while sending makes a slow receiver slow everything down,
    /// which keeps the updates in order and memory bounded.
    async fn report(&self, force: bool) {
        let mut reporter = self.reporter.lock().await;
        let Some(tx) = reporter.tx.clone() else { return };
        let mut done = reporter.base + self.fetched.load(Ordering::Relaxed);
        if let Some(total) = reporter.total {
            done = done.min(total);
        }
        if !force && reporter.last.is_some_and(|last| done < last + PROGRESS_STEP) {
            return;
        }
        reporter.last = Some(done);
        if tx.send(DownloadProgress { done, total: reporter.total }).await.is_err() {
            reporter.tx = None;
        }
    }

    fn unavailable(&self, what: String) -> TransferError {
        let dropped = self.dropped();
        let reasons = if dropped.is_empty() {
            "no provider has it".to_string()
        } else {
            dropped.iter().map(|d| format!("{} {}", d.node, d.reason)).collect::<Vec<_>>().join("; ")
        };
        TransferError::Unavailable { content: self.content, what, reasons }
    }

    fn not_a_collection(&self, reason: String) -> TransferError {
        TransferError::NotACollection { content: self.content, reason }
    }
}
