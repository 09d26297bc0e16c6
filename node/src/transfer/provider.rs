//! Serving: the iroh-blobs provider with smpl's rules.
//!
//! The stock provider ([`iroh_blobs::provider::handle_connection`]) does the
//! protocol work; it reports every connection and request to an event handler
//! that can refuse it. Ours is a small actor (`run_policy`) that
//!
//! - refuses every push (`EventMask::push = Disabled`): nobody writes into this
//!   node's store;
//! - caps connections in total and per peer, and concurrent requests per peer
//!   ([`Limits`]); over a cap the request is answered with "rate limited", which a
//!   well-behaved client retries later. A peer at its own connection cap gets its
//!   new connection and loses its oldest one instead: a peer restarted after a
//!   crash would otherwise wait for its dead connections to time out;
//! - asks the [`ServeGate`] about every hash a get, get-many or observe request
//!   would read: the root and, for a hash-sequence request, each requested child.
//!
//! The handler does not shut the store down when the router stops (the stock
//! `BlobsProtocol` does): the store belongs to the node and outlives the endpoint.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use iroh::EndpointId;
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler};
use iroh_blobs::Hash;
use iroh_blobs::api::Store;
use iroh_blobs::api::blobs::BlobStatus;
use iroh_blobs::hashseq::HashSeq;
use iroh_blobs::protocol::{GetManyRequest, GetRequest};
use iroh_blobs::provider::events::{
    AbortReason, ConnectMode, EventMask, EventResult, EventSender, ObserveMode, ProviderMessage, RequestMode,
    ThrottleMode,
};
use smpl_protocol::{BlobHash, NodeId};
use tokio_util::sync::CancellationToken;

use super::node_id;
use crate::blobs::{MAX_HASH_SEQ_BYTES, from_iroh};

/// Events waiting for the policy actor before the provider's tasks wait.
const EVENT_QUEUE: usize = 64;

/// Decides whether a peer may fetch a blob from this node.
///
/// Consulted for every request this node serves, with the authenticated node id
/// of the requester (proven by the QUIC handshake) and each hash the request
/// would read: the request's root (a pack collection, or a single blob such as a
/// preview) and, for requests into a hash sequence, every requested child. A
/// single `false` refuses the whole request.
///
/// It runs on the provider's event task, so it must be quick (an in-memory map or
/// a point lookup). This is where the paid-content gate plugs in: allow free and
/// preview blobs, and paid ones only to a peer holding a license for their pack.
pub trait ServeGate: Send + Sync + 'static {
    fn allow(&self, peer: NodeId, hash: &BlobHash) -> bool;
}

impl<F> ServeGate for F
where
    F: Fn(NodeId, &BlobHash) -> bool + Send + Sync + 'static,
{
    fn allow(&self, peer: NodeId, hash: &BlobHash) -> bool {
        self(peer, hash)
    }
}

/// A gate that lets anyone fetch everything stored here: for tests and tools that
/// serve a store of their own, never for a node (which starts with its licence gate).
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAll;

impl ServeGate for AllowAll {
    fn allow(&self, _peer: NodeId, _hash: &BlobHash) -> bool {
        true
    }
}

/// The gate in force, swappable while the endpoint runs.
#[derive(Clone)]
pub(super) struct GateCell(Arc<RwLock<Arc<dyn ServeGate>>>);

impl std::fmt::Debug for GateCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GateCell")
    }
}

impl GateCell {
    pub(super) fn new(gate: Arc<dyn ServeGate>) -> GateCell {
        GateCell(Arc::new(RwLock::new(gate)))
    }

    pub(super) fn set(&self, gate: Arc<dyn ServeGate>) {
        match self.0.write() {
            Ok(mut slot) => *slot = gate,
            Err(poisoned) => *poisoned.into_inner() = gate,
        }
    }

    fn get(&self) -> Arc<dyn ServeGate> {
        match self.0.read() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Caps on what peers may use of this node's provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Open iroh-blobs connections from all peers together.
    pub connections: usize,
    /// Open connections from one peer.
    pub connections_per_peer: usize,
    /// Requests being served to one peer at the same time (over all its
    /// connections). Our own downloader keeps below this.
    pub requests_per_peer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { connections: 256, connections_per_peer: 4, requests_per_peer: 16 }
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct PeerLoad {
    /// Its open connections, oldest first.
    connections: VecDeque<u64>,
    requests: usize,
}

/// The connections being served, by id, so that the policy can close one.
type Open = Arc<Mutex<HashMap<u64, Connection>>>;

/// Who is connected and how much each peer is asking for.
#[derive(Debug)]
struct Load {
    limits: Limits,
    connections: HashMap<u64, EndpointId>,
    peers: HashMap<EndpointId, PeerLoad>,
}

impl Load {
    fn new(limits: Limits) -> Load {
        Load { limits, connections: HashMap::new(), peers: HashMap::new() }
    }

    /// Admits `connection` from `peer`. A peer at its own cap is admitted in place of
    /// its oldest connection, whose id is returned to be closed.
    fn connect(&mut self, connection: u64, peer: EndpointId) -> Result<Option<u64>, AbortReason> {
        let replaced = match self.peers.get_mut(&peer) {
            Some(load) if load.connections.len() >= self.limits.connections_per_peer => {
                let oldest = load.connections.pop_front();
                if let Some(oldest) = oldest {
                    self.connections.remove(&oldest);
                }
                oldest
            }
            _ if self.connections.len() >= self.limits.connections => return Err(AbortReason::RateLimited),
            _ => None,
        };
        self.peers.entry(peer).or_default().connections.push_back(connection);
        self.connections.insert(connection, peer);
        Ok(replaced)
    }

    fn closed(&mut self, connection: u64) {
        if let Some(peer) = self.connections.remove(&connection) {
            self.update(peer, |load| load.connections.retain(|&id| id != connection));
        }
    }

    /// Takes a request slot for the peer behind `connection`.
    fn start_request(&mut self, connection: u64) -> Result<EndpointId, AbortReason> {
        let Some(&peer) = self.connections.get(&connection) else {
            return Err(AbortReason::Permission);
        };
        let load = self.peers.entry(peer).or_default();
        if load.requests >= self.limits.requests_per_peer {
            return Err(AbortReason::RateLimited);
        }
        load.requests += 1;
        Ok(peer)
    }

    fn end_request(&mut self, peer: EndpointId) {
        self.update(peer, |load| load.requests = load.requests.saturating_sub(1));
    }

    fn update(&mut self, peer: EndpointId, f: impl FnOnce(&mut PeerLoad)) {
        if let Some(load) = self.peers.get_mut(&peer) {
            f(load);
            if *load == PeerLoad::default() {
                self.peers.remove(&peer);
            }
        }
    }
}

/// The iroh-blobs protocol handler: the stock provider over our store and events.
#[derive(Debug, Clone)]
pub(super) struct Provider {
    store: Store,
    events: EventSender,
    open: Open,
}

impl Provider {
    pub(super) fn new(store: Store, (events, open): (EventSender, Open)) -> Provider {
        Provider { store, events, open }
    }
}

impl ProtocolHandler for Provider {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let id = connection.stable_id() as u64;
        lock(&self.open).insert(id, connection.clone());
        iroh_blobs::provider::handle_connection(connection, self.store.clone(), self.events.clone()).await;
        lock(&self.open).remove(&id);
        Ok(())
    }
}

fn lock(open: &Open) -> std::sync::MutexGuard<'_, HashMap<u64, Connection>> {
    open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts the policy actor; the returned sender and table of open connections go
/// to the [`Provider`].
pub(super) fn spawn_policy(
    store: Store,
    gate: GateCell,
    limits: Limits,
    cancel: CancellationToken,
) -> ((EventSender, Open), tokio::task::JoinHandle<()>) {
    let mask = EventMask {
        connected: ConnectMode::Intercept,
        get: RequestMode::Intercept,
        get_many: RequestMode::Intercept,
        push: RequestMode::Disabled,
        observe: ObserveMode::Intercept,
        throttle: ThrottleMode::None,
    };
    let (events, rx) = EventSender::channel(EVENT_QUEUE, mask);
    let open = Open::default();
    let task = tokio::spawn(run_policy(rx, store, gate, limits, open.clone(), cancel));
    ((events, open), task)
}

/// What a request would read, for the gate.
enum Check {
    Get(GetRequest),
    GetMany(GetManyRequest),
    Observe(Hash),
}

async fn run_policy(
    mut rx: tokio::sync::mpsc::Receiver<ProviderMessage>,
    store: Store,
    gate: GateCell,
    limits: Limits,
    open: Open,
    cancel: CancellationToken,
) {
    let mut load = Load::new(limits);
    // One future per admitted request: the gate's verdict, then the wait for the
    // request to finish; it yields the peer whose slot to release.
    let mut running: FuturesUnordered<BoxFuture<'static, EndpointId>> = FuturesUnordered::new();
    loop {
        let msg = tokio::select! {
            _ = cancel.cancelled() => break,
            Some(peer) = running.next(), if !running.is_empty() => {
                load.end_request(peer);
                continue;
            }
            msg = rx.recv() => match msg {
                Some(msg) => msg,
                None => break,
            },
        };
        let (connection, check, tx, mut updates) = match msg {
            ProviderMessage::ClientConnected(msg) => {
                let verdict = match msg.inner.endpoint_id {
                    Some(peer) => load.connect(msg.inner.connection_id, peer),
                    None => Err(AbortReason::Permission),
                };
                match verdict {
                    Err(reason) => {
                        tracing::debug!(peer = ?msg.inner.endpoint_id, ?reason, "refusing a blobs connection")
                    }
                    Ok(Some(oldest)) => {
                        tracing::debug!(peer = ?msg.inner.endpoint_id, "a new blobs connection replaces the oldest");
                        if let Some(connection) = lock(&open).remove(&oldest) {
                            connection
                                .close(iroh_blobs::protocol::ERR_LIMIT, b"replaced by a newer connection");
                        }
                    }
                    Ok(None) => {}
                }
                msg.tx.send(verdict.map(|_| ())).await.ok();
                continue;
            }
            ProviderMessage::ConnectionClosed(msg) => {
                load.closed(msg.inner.connection_id);
                continue;
            }
            ProviderMessage::PushRequestReceived(msg) => {
                // Not reached while pushes are disabled in the mask; refuse anyway.
                tracing::warn!(connection = msg.inner.connection_id, "refusing a push");
                msg.tx.send(Err(AbortReason::Permission)).await.ok();
                continue;
            }
            ProviderMessage::Throttle(msg) => {
                msg.tx.send(Ok(())).await.ok();
                continue;
            }
            ProviderMessage::GetRequestReceived(msg) => {
                (msg.inner.connection_id, Check::Get(msg.inner.request), msg.tx, msg.rx)
            }
            ProviderMessage::GetManyRequestReceived(msg) => {
                (msg.inner.connection_id, Check::GetMany(msg.inner.request), msg.tx, msg.rx)
            }
            ProviderMessage::ObserveRequestReceived(msg) => {
                (msg.inner.connection_id, Check::Observe(msg.inner.request.hash), msg.tx, msg.rx)
            }
            // Notifications we did not ask for; nothing to answer.
            _ => continue,
        };
        let peer = match load.start_request(connection) {
            Ok(peer) => peer,
            Err(reason) => {
                tracing::debug!(connection, ?reason, "refusing a blobs request");
                tx.send(Err(reason)).await.ok();
                continue;
            }
        };
        let store = store.clone();
        let gate = gate.get();
        running.push(Box::pin(async move {
            let verdict = verdict(&store, gate.as_ref(), node_id(&peer), &check).await;
            if let Err(reason) = verdict {
                tracing::info!(peer = %node_id(&peer), ?reason, "refused a blobs request");
            }
            if tx.send(verdict).await.is_ok() && verdict.is_ok() {
                // The provider holds the sending side until the request is done.
                while let Ok(Some(_)) = updates.recv().await {}
            }
            peer
        }));
    }
}

async fn verdict(store: &Store, gate: &dyn ServeGate, peer: NodeId, check: &Check) -> EventResult {
    let hashes = match check {
        Check::Observe(hash) => vec![*hash],
        Check::GetMany(request) => request
            .hashes
            .iter()
            .zip(request.ranges.iter_infinite())
            .filter(|(_, ranges)| !ranges.is_empty())
            .map(|(hash, _)| *hash)
            .collect(),
        Check::Get(request) => requested_hashes(store, request).await?,
    };
    if hashes.iter().all(|hash| gate.allow(peer, &from_iroh(hash))) {
        Ok(())
    } else {
        Err(AbortReason::Permission)
    }
}

/// The root of a get request and every child of it the request asks for.
async fn requested_hashes(store: &Store, request: &GetRequest) -> Result<Vec<Hash>, AbortReason> {
    let mut hashes = vec![request.hash];
    if request.ranges.is_blob() {
        return Ok(hashes);
    }
    let status = store.blobs().status(request.hash).await.map_err(|_| AbortReason::Permission)?;
    let size = match status {
        // Nothing to serve: the provider answers "not found" by itself.
        BlobStatus::NotFound => return Ok(hashes),
        BlobStatus::Partial { .. } => return Err(AbortReason::Permission),
        BlobStatus::Complete { size } => size,
    };
    // Children of anything bigger than a pack collection are not resolved.
    if size > MAX_HASH_SEQ_BYTES {
        return Err(AbortReason::Permission);
    }
    let bytes = store.blobs().get_bytes(request.hash).await.map_err(|_| AbortReason::Permission)?;
    let seq = HashSeq::try_from(bytes).map_err(|_| AbortReason::Permission)?;
    // Offset 0 is the root itself, offset i + 1 the child i.
    for (offset, ranges) in request.ranges.iter_infinite().enumerate().take(seq.len() + 1).skip(1) {
        if let Some(child) = seq.get(offset - 1)
            && !ranges.is_empty()
        {
            hashes.push(child);
        }
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use iroh::SecretKey;

    use super::*;

    fn peer(n: u8) -> EndpointId {
        SecretKey::from_bytes(&[n; 32]).public()
    }

    #[test]
    fn connection_and_request_caps() {
        let mut load = Load::new(Limits { connections: 3, connections_per_peer: 2, requests_per_peer: 2 });
        let (a, b) = (peer(1), peer(2));
        assert_eq!(load.connect(1, a), Ok(None));
        assert_eq!(load.connect(2, a), Ok(None));
        assert_eq!(load.connect(4, b), Ok(None));
        assert_eq!(load.connect(5, peer(3)), Err(AbortReason::RateLimited), "over the total");
        // A peer at its cap replaces its oldest connection, even at the total cap.
        assert_eq!(load.connect(3, a), Ok(Some(1)), "third connection of one peer");
        assert_eq!(load.start_request(1), Err(AbortReason::Permission), "the replaced connection");
        load.closed(1);
        assert_eq!(load.peers[&a].connections, [2, 3]);
        assert_eq!(load.connect(1, a), Ok(Some(2)));
        load.closed(3);
        assert_eq!(load.connect(3, a), Ok(None));

        // Requests count per peer, over all its connections.
        assert_eq!(load.start_request(1), Ok(a));
        assert_eq!(load.start_request(3), Ok(a));
        assert_eq!(load.start_request(1), Err(AbortReason::RateLimited));
        assert_eq!(load.start_request(4), Ok(b), "another peer is not affected");
        assert_eq!(load.start_request(99), Err(AbortReason::Permission), "unknown connection");
        load.end_request(a);
        assert_eq!(load.start_request(3), Ok(a));

        // A peer's entry goes away once it has neither connections nor requests.
        load.closed(1);
        load.closed(3);
        assert!(load.peers.contains_key(&a), "requests still running");
        load.end_request(a);
        load.end_request(a);
        assert!(!load.peers.contains_key(&a));
        assert_eq!(load.connect(6, a), Ok(None));
        load.closed(6);
        load.closed(6);
        assert!(!load.peers.contains_key(&a));
    }

    #[test]
    fn closures_are_gates() {
        let only = NodeId(*peer(1).as_bytes());
        let gate = move |who: NodeId, _hash: &BlobHash| who == only;
        assert!(gate.allow(only, &BlobHash([0; 32])));
        assert!(!gate.allow(NodeId(*peer(2).as_bytes()), &BlobHash([0; 32])));
        assert!(AllowAll.allow(only, &BlobHash([0; 32])));
    }
}
