//! Fetching a pack collection from several providers.
//!
//! A download runs in three steps, each resuming from what the store already
//! holds (iroh-blobs keeps every verified chunk, also of incomplete blobs):
//!
//! 1. the collection's hash sequence (the list of its blobs), bounded in size;
//! 2. the size of every blob not stored yet, proven by its last chunk group: one
//!    request for all of them, verified in memory and not stored (as `sendme`
//!    does it), so the total is known up front;
//! 3. the blobs in *shards*: runs of consecutive blobs up to [`SHARD_BYTES`] or
//!    [`SHARD_BLOBS`], each fetched with one request for all the ranges its blobs
//!    miss, several shards at once, each starting at another provider so that
//!    several providers serve in parallel.
//!
//! A blob the request asks for whole and that is at most [`MEMORY_BLOB_MAX`] is
//! received into memory (verified chunk group by chunk group as it arrives, like
//! everything else) and then added to the store complete; a larger one, or the
//! rest of a partly stored one, streams into the store chunk group by chunk group.
//! The split decides the time of small files: iroh-blobs' file store turns a blob
//! that arrives in pieces into a partial entry on disk, with three `fsync`s before
//! it writes the first byte (about 10 ms per blob on a VM disk, 10 s for 1,000
//! files), while adding a complete blob writes it once and syncs nothing. Storing
//! the last chunk of every blob to learn the sizes would pay that price twice, and
//! one request per blob would pay a round trip, a store lookup and a gate check per
//! file; shards pay them once per run of files.
//! Small blobs are added to the store in the background while the response goes
//! on. Large blobs keep streaming to disk, so memory stays bounded (per request
//! one blob being received and about [`MEMORY_BLOB_MAX`] being stored, so at most
//! about 2 × `MAX_PARALLEL` × [`MEMORY_BLOB_MAX`] = 32 MiB) and an interrupted
//! download of a long file resumes from its last verified chunk group.
//!
//! `receive` reads one response into the store; this module plans the requests
//! and picks the providers.
//!
//! Each request goes to one provider at a time. A provider that cannot be
//! reached, refuses, fails, lacks the data or sends bytes that do not match
//! their BLAKE3 hash is dropped for the rest of the download and the request
//! moves on to the next one; only a "busy" answer (the provider's request limit)
//! is retried later. Data is verified chunk by chunk as it arrives, so a lying
//! provider is caught within one chunk group and nothing unverified is stored.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use iroh::endpoint::Connection;
use iroh::{Endpoint, EndpointId};
use iroh_blobs::api::Store;
use iroh_blobs::get::GetError;
use iroh_blobs::get::fsm::{self, ConnectedNext, DecodeError, EndBlobNext};
use iroh_blobs::hashseq::HashSeq;
use iroh_blobs::protocol::{ChunkRanges, ChunkRangesExt, ERR_LIMIT, ERR_PERMISSION, GetRequest};
use iroh_blobs::store::fs::FsStore;
use iroh_blobs::{Hash, HashAndFormat};
use smpl_protocol::{BlobHash, NodeId};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{TransferError, node_id};
use crate::blobs::to_iroh;

mod receive;

/// The largest hash sequence a pack collection can have: the metadata blob and
/// [`smpl_protocol::limits::MAX_SAMPLES`] files (32 bytes each), with headroom.
const MAX_ROOT_BYTES: u64 = 32 * (smpl_protocol::limits::MAX_SAMPLES as u64 + 16);
/// Requests in flight per provider, and in total.
const PARALLEL_PER_PROVIDER: usize = 4;
const MAX_PARALLEL: usize = 8;
/// A shard ends after this many bytes or blobs.
const SHARD_BYTES: u64 = 8 * 1024 * 1024;
const SHARD_BLOBS: usize = 64;
/// Blobs up to this size that are wholly missing are received into memory and
/// added to the store complete; a response keeps at most about this much of them
/// in memory while they are being stored.
const MEMORY_BLOB_MAX: u64 = 2 * 1024 * 1024;
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a new connection whose only path is a relay waits for a direct path
/// before data is asked for on it. Peers behind NATs punch toward each other when
/// they meet, often just before a fetch; a transfer started at once would run on
/// the relay (rate-limited, and someone else's bandwidth) while the direct path
/// opens. A peer that cannot be reached directly costs this once per download.
const DIRECT_GRACE: Duration = Duration::from_secs(2);
/// How often a request is retried at a provider that answered "busy".
const MAX_BUSY_RETRIES: u32 = 20;
const BUSY_BACKOFF: Duration = Duration::from_millis(100);
/// How often a provider whose connection was lost under a request gets a fresh
/// connection before it is dropped (a restarted peer's old connection can be
/// closed under the first request of its new one).
const MAX_LOST_RETRIES: u32 = 1;

/// Retries spent at one step of a download.
#[derive(Default)]
struct Retries {
    busy: u32,
    lost: u32,
}
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
    /// The connection went away under the request: try once more on a new one.
    Lost(String),
    Drop(DropReason),
    /// Our own store failed: the download stops, whoever the provider.
    Local(TransferError),
}

impl From<GetError> for Failure {
    fn from(error: GetError) -> Failure {
        classify(&error)
    }
}

impl From<DecodeError> for Failure {
    fn from(error: DecodeError) -> Failure {
        classify(&error.into())
    }
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
    if connection_lost(error) {
        return Failure::Lost(error.to_string());
    }
    Failure::Drop(DropReason::Failed(error.to_string()))
}

/// Whether the request failed because its connection was lost.
fn connection_lost(error: &GetError) -> bool {
    let io = error.remote_read().or_else(|| error.remote_write());
    io.and_then(|e| e.get_ref()).is_some_and(|e| {
        matches!(
            e.downcast_ref::<iroh::endpoint::ReadError>(),
            Some(iroh::endpoint::ReadError::ConnectionLost(_))
        ) || matches!(
            e.downcast_ref::<iroh::endpoint::WriteError>(),
            Some(iroh::endpoint::WriteError::ConnectionLost(_))
        )
    })
}

fn local(action: &'static str) -> impl FnOnce(&dyn std::fmt::Display) -> Failure {
    move |e| Failure::Local(TransferError::store(action)(e))
}

/// What follows in a response: the next child, or the end.
type Next = EndBlobNext;

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
        seq: OnceLock::new(),
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
    /// The collection's hash sequence, once stored (step 1).
    seq: OnceLock<HashSeq>,
    providers: Vec<EndpointId>,
    dropped: Mutex<Vec<(EndpointId, DropReason)>>,
    /// One connection per provider, made on first use.
    connections: Mutex<HashMap<EndpointId, Arc<tokio::sync::Mutex<Option<Connection>>>>>,
    /// Verified payload bytes received (of blobs received into memory: once stored).
    fetched: AtomicU64,
    reporter: tokio::sync::Mutex<Reporter>,
}

/// One request's worth of blobs: (child index, ranges it misses).
type Shard = Vec<(u64, ChunkRanges)>;

impl Session {
    /// Fetches everything; returns the total size and the bytes already stored.
    async fn fetch_all(self: Arc<Self>) -> Result<(u64, u64), TransferError> {
        let store_err = TransferError::store;
        let everything = HashAndFormat::hash_seq(self.root);
        let local =
            self.store.remote().local(everything).await.map_err(|e| store_err("reading local state")(&e))?;
        if local.is_complete() {
            let total = local.local_bytes();
            {
                let mut reporter = self.reporter.lock().await;
                reporter.base = total;
                reporter.total = Some(total);
            }
            self.report(true).await;
            return Ok((total, total));
        }
        if self.providers.is_empty() {
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
        let seq = self.seq.get_or_init(|| seq);

        // 2. Verified sizes of what is not complete here, hence the total.
        let mut sizes = vec![0; seq.len()];
        let mut unknown = Vec::new();
        for (index, hash) in seq.iter().enumerate() {
            let bitfield =
                self.store.observe(hash).await.map_err(|e| store_err("reading a blob's state")(&e))?;
            match bitfield.validated_size() {
                Some(size) if bitfield.is_complete() => sizes[index] = size,
                _ => unknown.push(index as u64),
            }
        }
        for (index, size) in self.probe_sizes(&unknown).await? {
            sizes[index as usize] = size;
        }
        let total = root_size + sizes.iter().sum::<u64>();
        let stored =
            self.store.remote().local(everything).await.map_err(|e| store_err("reading local state")(&e))?;
        let had = stored.local_bytes().saturating_sub(self.fetched.load(Ordering::Relaxed));
        {
            let mut reporter = self.reporter.lock().await;
            reporter.base = had;
            reporter.total = Some(total);
        }
        self.report(true).await;

        // 3. The blobs, in shards, several at a time, each starting at another
        //    provider.
        let shards = plan_shards(&stored.missing(), &sizes);
        let parallel = (PARALLEL_PER_PROVIDER * self.providers.len()).clamp(1, MAX_PARALLEL);
        let mut tasks = JoinSet::new();
        let mut queue = shards.into_iter().enumerate();
        loop {
            while tasks.len() < parallel {
                let Some((turn, shard)) = queue.next() else { break };
                let session = self.clone();
                tasks.spawn(async move {
                    let what = match (shard.first(), shard.last()) {
                        (Some((first, _)), Some((last, _))) if first != last => {
                            format!("files {first} to {last}")
                        }
                        (Some((first, _)), _) => format!("file {first}"),
                        _ => "nothing".into(),
                    };
                    let request = shard
                        .into_iter()
                        .fold(GetRequest::builder(), |b, (index, ranges)| b.child(index, ranges))
                        .build(session.root);
                    session.fetch(request, turn, &what).await
                });
            }
            let Some(joined) = tasks.join_next().await else { break };
            // An error ends the download; dropping the set aborts the others, and
            // what they verified so far stays stored.
            joined??;
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
        let mut retries = Retries::default();
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
            let Some((provider, connection)) = self.connect_next(&mut turn, what).await? else { continue };
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
                Err(failure) => self.failed(provider, failure, &mut retries, what).await?,
            }
        }
    }

    /// The verified sizes of the children `indices` of the collection: one request
    /// for their last chunk groups, checked and dropped.
    async fn probe_sizes(&self, indices: &[u64]) -> Result<Vec<(u64, u64)>, TransferError> {
        if indices.is_empty() {
            return Ok(Vec::new());
        }
        let request = indices
            .iter()
            .fold(GetRequest::builder(), |b, index| b.child(*index, ChunkRanges::last_chunk()))
            .build(self.root);
        let (mut turn, mut retries) = (0, Retries::default());
        loop {
            let Some((provider, connection)) = self.connect_next(&mut turn, "the file sizes").await? else {
                continue;
            };
            match self.probe(connection, request.clone()).await {
                Ok(sizes) if sizes.len() == indices.len() => return Ok(sizes),
                Ok(_) => self.drop_provider(provider, DropReason::Failed("does not have all files".into())),
                Err(failure) => self.failed(provider, failure, &mut retries, "the file sizes").await?,
            }
        }
    }

    async fn probe(&self, connection: Connection, request: GetRequest) -> Result<Vec<(u64, u64)>, Failure> {
        let mut sizes = Vec::new();
        let mut next = match self.open(connection, request).await? {
            // Not asked for by a probe; read over it.
            ConnectedNext::StartRoot(start) => start.next().drain().await?.next(),
            ConnectedNext::StartChild(child) => Next::MoreChildren(child),
            ConnectedNext::Closing(closing) => Next::Closing(closing),
        };
        loop {
            match next {
                Next::MoreChildren(child) => {
                    let index = child.offset() - 1;
                    let Some(hash) = self.child_hash(index) else {
                        next = Next::Closing(child.finish());
                        continue;
                    };
                    let (content, size) = child.next(hash).next().await.map_err(DecodeError::from)?;
                    next = content.drain().await?.next();
                    sizes.push((index, size));
                }
                Next::Closing(closing) => {
                    closing.next().await.map_err(GetError::from)?;
                    return Ok(sizes);
                }
            }
        }
    }

    /// Sends `request`; returns what comes first in the response.
    async fn open(&self, connection: Connection, request: GetRequest) -> Result<ConnectedNext, Failure> {
        let connected =
            fsm::start(connection, request, Default::default()).next().await.map_err(GetError::from)?;
        Ok(connected.next().await.map_err(GetError::from)?)
    }

    fn child_hash(&self, index: u64) -> Option<Hash> {
        self.seq.get()?.get(usize::try_from(index).ok()?)
    }

    /// Handles a failed attempt: waits after "busy", connects again after a lost
    /// connection, drops the provider otherwise; a local failure ends the download.
    async fn failed(
        &self,
        provider: EndpointId,
        failure: Failure,
        retries: &mut Retries,
        what: &str,
    ) -> Result<(), TransferError> {
        match failure {
            Failure::Busy if retries.busy < MAX_BUSY_RETRIES => {
                retries.busy += 1;
                tracing::debug!(provider = %node_id(&provider), what, "provider busy; retrying later");
                tokio::time::sleep(BUSY_BACKOFF * retries.busy).await;
            }
            Failure::Lost(reason) if retries.lost < MAX_LOST_RETRIES => {
                retries.lost += 1;
                tracing::debug!(provider = %node_id(&provider), what, "{reason}; connecting again");
                self.forget_connection(provider);
            }
            Failure::Lost(reason) => {
                self.forget_connection(provider);
                self.drop_provider(provider, DropReason::Failed(reason));
            }
            Failure::Busy => self.drop_provider(provider, DropReason::Failed("stayed busy".into())),
            Failure::Drop(reason) => {
                self.forget_connection(provider);
                self.drop_provider(provider, reason);
            }
            Failure::Local(e) => return Err(e),
        }
        Ok(())
    }

    /// The next provider not dropped yet, going round from `turn`.
    fn provider(&self, turn: &mut usize, what: &str) -> Result<EndpointId, TransferError> {
        let dropped = self.dropped.lock().unwrap_or_else(|p| p.into_inner());
        let n = self.providers.len();
        for _ in 0..n {
            let candidate = self.providers[*turn % n];
            *turn += 1;
            if !dropped.iter().any(|(id, _)| *id == candidate) {
                return Ok(candidate);
            }
        }
        drop(dropped);
        Err(self.unavailable(what.to_string()))
    }

    /// The next provider not dropped yet ([`Self::provider`]) and a connection to
    /// it; `None` when it cannot be reached, and then it is dropped.
    async fn connect_next(
        &self,
        turn: &mut usize,
        what: &str,
    ) -> Result<Option<(EndpointId, Connection)>, TransferError> {
        let provider = self.provider(turn, what)?;
        match self.connection(provider).await {
            Ok(connection) => Ok(Some((provider, connection))),
            Err(e) => {
                self.drop_provider(provider, DropReason::Unreachable(e));
                Ok(None)
            }
        }
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
        if !direct_within(&connection, DIRECT_GRACE).await {
            tracing::debug!(provider = %node_id(&provider), "no direct path within {DIRECT_GRACE:?}; using the relay");
        }
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

/// Splits what `missing` asks of the collection's children into shards of
/// consecutive blobs, each at most [`SHARD_BYTES`] (a larger blob is a shard of
/// its own) and [`SHARD_BLOBS`] blobs. `sizes` are the children's sizes.
fn plan_shards(missing: &GetRequest, sizes: &[u64]) -> Vec<Shard> {
    let mut shards = Vec::new();
    let mut shard: Shard = Vec::new();
    let mut bytes = 0;
    // Offset 0 is the hash sequence itself (complete by now), offset i + 1 child i.
    for (offset, ranges) in missing.ranges.iter_infinite().enumerate().take(sizes.len() + 1).skip(1) {
        if ranges.is_empty() {
            continue;
        }
        let index = offset as u64 - 1;
        let size = sizes[offset - 1];
        if !shard.is_empty() && (bytes + size > SHARD_BYTES || shard.len() >= SHARD_BLOBS) {
            shards.push(std::mem::take(&mut shard));
            bytes = 0;
        }
        shard.push((index, ranges.clone()));
        bytes += size;
    }
    if !shard.is_empty() {
        shards.push(shard);
    }
    shards
}

/// Whether `connection` has (or gets, within `grace`) a direct path selected for
/// its data; a connection with no relay path counts as direct.
pub(super) async fn direct_within(connection: &Connection, grace: Duration) -> bool {
    use futures::StreamExt;
    let direct = |paths: &iroh::endpoint::PathList<'_>| {
        paths.iter().any(|p| p.is_selected() && p.is_ip()) || !paths.iter().any(|p| p.is_relay())
    };
    let mut paths = connection.paths_stream();
    let opened = async {
        while let Some(list) = paths.next().await {
            if direct(&list) {
                return true;
            }
        }
        false
    };
    tokio::time::timeout(grace, opened).await.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_runs_of_missing_blobs_bounded_in_bytes_and_count() {
        let mib = 1024 * 1024;
        // Child 1 is complete, child 3 is partly stored, child 4 is big.
        let sizes = [100, 200, 300, 10 * mib, 12 * mib, 3 * mib, 6 * mib];
        let partial = ChunkRanges::bytes(16 * 1024..);
        let missing = GetRequest::builder()
            .child(0, ChunkRanges::all())
            .child(2, ChunkRanges::all())
            .child(3, partial.clone())
            .child(4, ChunkRanges::all())
            .child(5, ChunkRanges::all())
            .child(6, ChunkRanges::all())
            .build(Hash::EMPTY);
        let shards = plan_shards(&missing, &sizes);
        let indices: Vec<Vec<u64>> = shards.iter().map(|s| s.iter().map(|(i, _)| *i).collect()).collect();
        assert_eq!(indices, vec![vec![0, 2], vec![3], vec![4], vec![5], vec![6]]);
        assert_eq!(shards[1][0].1, partial);

        let many = vec![1000; 200];
        let missing =
            (0..200).fold(GetRequest::builder(), |b, i| b.child(i, ChunkRanges::all())).build(Hash::EMPTY);
        let sizes: Vec<usize> = plan_shards(&missing, &many).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![SHARD_BLOBS, SHARD_BLOBS, SHARD_BLOBS, 200 - 3 * SHARD_BLOBS]);
    }
}
