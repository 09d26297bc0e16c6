//! The control plane: a libp2p swarm actor.
//!
//! [`Network::start`] builds the swarm (see `behaviour`) and runs it on its own task;
//! the cloneable [`Network`] handle sends it commands with `oneshot` replies. The
//! actor never touches storage itself: everything that reads or writes the store
//! goes through the [`Host`] trait on blocking threads, and the results come back
//! to the loop as messages, so gossip bursts never stall the network. `host` is
//! that port into the node: the trait, its implementation over the node's parts
//! ([`NodeHost`]), and the one verification every listing passes ([`ingest`]).
//!
//! - Listings arrive by gossip on `smpl/listings/1`. Gossipsub holds each message
//!   until [`Host::ingest`] has verified and stored it: new listings are forwarded,
//!   stale ones dropped silently, invalid ones rejected (which costs the sender peer
//!   score; peers below the graylist threshold are disconnected and banned).
//! - On every new connection both sides say `Hello` (their iroh addresses), then
//!   each reconciles its listing set with the other over `/smpl/sync/1` and fetches
//!   what it lacks; a timer repeats this so partitions heal.
//! - Kademlia on `/smpl/kad/1` finds peers and provider records (who serves a pack).
//! - `/smpl/purchase/1` carries purchase orders and license presentations
//!   ([`wire::TradeRequest`]); the host answers them on a blocking thread.

pub mod behaviour;
mod host;
pub mod wire;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, MessageAcceptance};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, identify, identity, kad, mdns};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use smpl_protocol::{NodeId, PackId};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use behaviour::{Behaviour, BehaviourEvent, GRAYLIST_THRESHOLD};
pub use behaviour::{BuildError, LISTINGS_TOPIC};
pub use host::{Host, Ingest, NodeHost, ingest};
use wire::{MAX_FETCH_IDS, SyncRequest, SyncResponse, TradeRequest, TradeResponse};

/// How often every connected peer is reconciled with again.
const RESYNC_EVERY: Duration = Duration::from_secs(30);
/// How long a provider lookup or a connection attempt may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct NetConfig {
    pub listen: Vec<Multiaddr>,
    pub bootstrap: Vec<Multiaddr>,
    pub mdns: bool,
}

/// A connected peer, as `smpl peers` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PeerInfo {
    pub node_id: NodeId,
    pub addrs: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
    #[error("the network task has stopped")]
    Stopped,
    #[error("node {node} did not answer: {reason}")]
    NoAnswer { node: NodeId, reason: String },
}

enum Command {
    Publish { envelope: Vec<u8> },
    Provide(PackId),
    FindProviders { pack: PackId, reply: oneshot::Sender<Vec<NodeId>> },
    Connect { node: NodeId, reply: oneshot::Sender<bool> },
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Dial(Multiaddr),
    SyncAll(oneshot::Sender<()>),
    Trade { node: NodeId, request: TradeRequest, reply: oneshot::Sender<Result<TradeResponse, String>> },
}

/// Results of blocking work, back to the loop.
enum Done {
    Validated { id: gossipsub::MessageId, source: PeerId, acceptance: MessageAcceptance },
    Respond { channel: ResponseChannel<SyncResponse>, response: SyncResponse },
    TradeRespond { channel: ResponseChannel<TradeResponse>, response: TradeResponse },
    Reconciled { peer: PeerId, next: Option<Vec<u8>>, need: Vec<PackId> },
    FetchedInvalid(PeerId),
    ConnectTimeout(PeerId),
}

enum Pending {
    Hello,
    Reconcile,
    Fetch,
}

/// Counters of the sync protocol and of listings from the network, for tests and
/// benchmarks.
#[derive(Debug, Default)]
pub struct SyncStats {
    /// Reconciliation rounds this node started or answered.
    pub rounds: AtomicU64,
    /// Bytes of reconciliation messages sent and received.
    pub reconcile_bytes: AtomicU64,
    /// Envelopes received in `Fetch` answers.
    pub fetched: AtomicU64,
    /// Fetched envelopes verified but not newer, and refused as invalid.
    pub fetched_stale: AtomicU64,
    pub fetched_invalid: AtomicU64,
    /// Gossip listings verified: new (stored, forwarded), stale (ignored), invalid
    /// (rejected, which costs the sender score).
    pub gossip_new: AtomicU64,
    pub gossip_stale: AtomicU64,
    pub gossip_invalid: AtomicU64,
    /// Peers disconnected and banned for sending invalid listings.
    pub banned: AtomicU64,
}

/// The handle to the swarm actor.
#[derive(Clone)]
pub struct Network {
    tx: mpsc::Sender<Command>,
    peer_id: PeerId,
    stats: Arc<SyncStats>,
}

pub fn peer_id_of(node: &NodeId) -> Option<PeerId> {
    let key = identity::ed25519::PublicKey::try_from_bytes(node.as_bytes()).ok()?;
    Some(identity::PublicKey::from(key).to_peer_id())
}

pub fn node_id_of(peer: &PeerId) -> Option<NodeId> {
    let key = identity::PublicKey::try_decode_protobuf(peer.as_ref().digest()).ok()?;
    Some(NodeId(key.try_into_ed25519().ok()?.to_bytes()))
}

/// The first pause before remembered peers are dialled again; it doubles up to
/// [`REDIAL_MAX`].
const REDIAL_FIRST: Duration = Duration::from_secs(5);
const REDIAL_MAX: Duration = Duration::from_secs(10 * 60);

/// Whether an address a peer reports listening on can be dialled (not 0.0.0.0).
fn dialable(addr: &Multiaddr) -> bool {
    !addr.iter().any(|p| match p {
        libp2p::multiaddr::Protocol::Ip4(ip) => ip.is_unspecified(),
        libp2p::multiaddr::Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

impl Network {
    /// Builds the swarm, starts listening and runs the actor until `cancel`.
    pub async fn start(
        identity: &smpl_protocol::Identity,
        config: NetConfig,
        host: Arc<dyn Host>,
        cancel: CancellationToken,
    ) -> Result<(Network, tokio::task::JoinHandle<()>), NetError> {
        let mut swarm = behaviour::build_swarm(identity, config.mdns)?;
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| NetError::Listen { addr: addr.clone(), reason: e.to_string() })?;
        }
        let peer_id = *swarm.local_peer_id();
        let (tx, rx) = mpsc::channel(256);
        let stats = Arc::new(SyncStats::default());
        let mut actor = Actor::new(swarm, host, rx, stats.clone());
        let mut dial: Vec<Multiaddr> = config.bootstrap.clone();
        dial.extend(actor.host.remembered_peers());
        for addr in dial {
            actor.dial(addr);
        }
        let join = tokio::spawn(async move { actor.run(cancel).await });
        Ok((Network { tx, peer_id, stats }, join))
    }

    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    pub fn stats(&self) -> &SyncStats {
        &self.stats
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Gossips a signed listing (already stored locally).
    pub async fn publish(&self, envelope: Vec<u8>) -> Result<(), NetError> {
        self.tx.send(Command::Publish { envelope }).await.map_err(|_| NetError::Stopped)
    }

    /// Announces in the DHT that this node serves `pack`'s content.
    pub async fn provide(&self, pack: PackId) -> Result<(), NetError> {
        self.tx.send(Command::Provide(pack)).await.map_err(|_| NetError::Stopped)
    }

    /// Nodes that announced they serve `pack` (DHT provider records).
    pub async fn find_providers(&self, pack: PackId) -> Result<Vec<NodeId>, NetError> {
        self.ask(|reply| Command::FindProviders { pack, reply }).await
    }

    /// Makes sure we are connected to `node` and know its iroh addresses.
    pub async fn connect(&self, node: NodeId) -> Result<bool, NetError> {
        self.ask(|reply| Command::Connect { node, reply }).await
    }

    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NetError> {
        self.ask(Command::Peers).await
    }

    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.ask(Command::ListenAddrs).await
    }

    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetError> {
        self.tx.send(Command::Dial(addr)).await.map_err(|_| NetError::Stopped)
    }

    /// Sends a trade message to `node` (connect first) and waits for its answer.
    pub async fn trade(&self, node: NodeId, request: TradeRequest) -> Result<TradeResponse, NetError> {
        self.ask(|reply| Command::Trade { node, request, reply })
            .await?
            .map_err(|reason| NetError::NoAnswer { node, reason })
    }

    /// Reconciles with every connected peer now.
    pub async fn sync_all(&self) -> Result<(), NetError> {
        self.ask(Command::SyncAll).await
    }
}

struct Actor {
    swarm: Swarm<Behaviour>,
    host: Arc<dyn Host>,
    commands: mpsc::Receiver<Command>,
    done_tx: mpsc::Sender<Done>,
    done_rx: mpsc::Receiver<Done>,
    pending: HashMap<OutboundRequestId, (PeerId, Pending)>,
    /// Peers whose Hello we have; their iroh addresses are with the host.
    greeted: HashSet<PeerId>,
    banned: HashSet<PeerId>,
    /// Reconciliation in progress with these peers (one at a time per peer).
    reconciling: HashSet<PeerId>,
    /// Remote addresses of current connections.
    addrs: HashMap<PeerId, Vec<Multiaddr>>,
    provider_queries: HashMap<kad::QueryId, (HashSet<NodeId>, oneshot::Sender<Vec<NodeId>>)>,
    connect_waiters: HashMap<PeerId, Vec<oneshot::Sender<bool>>>,
    trades: HashMap<OutboundRequestId, oneshot::Sender<Result<TradeResponse, String>>>,
    stats: Arc<SyncStats>,
}

impl Actor {
    fn new(
        swarm: Swarm<Behaviour>,
        host: Arc<dyn Host>,
        commands: mpsc::Receiver<Command>,
        stats: Arc<SyncStats>,
    ) -> Actor {
        let (done_tx, done_rx) = mpsc::channel(1024);
        Actor {
            swarm,
            host,
            commands,
            done_tx,
            done_rx,
            pending: HashMap::new(),
            greeted: HashSet::new(),
            banned: HashSet::new(),
            reconciling: HashSet::new(),
            addrs: HashMap::new(),
            provider_queries: HashMap::new(),
            connect_waiters: HashMap::new(),
            trades: HashMap::new(),
            stats,
        }
    }

    fn dial(&mut self, addr: Multiaddr) {
        if let Err(e) = self.swarm.dial(addr.clone()) {
            tracing::debug!("dialing {addr} failed: {e}");
        }
    }

    /// Dials the remembered peers this node is not connected to.
    fn redial(&mut self) {
        let connected: HashSet<PeerId> = self.swarm.connected_peers().copied().collect();
        for addr in self.host.remembered_peers() {
            let peer = addr.iter().find_map(|p| match p {
                libp2p::multiaddr::Protocol::P2p(peer) => Some(peer),
                _ => None,
            });
            if peer.is_some_and(|p| {
                connected.contains(&p) || self.banned.contains(&p) || p == *self.swarm.local_peer_id()
            }) {
                continue;
            }
            self.dial(addr);
        }
    }

    async fn run(&mut self, cancel: CancellationToken) {
        let mut resync = tokio::time::interval(RESYNC_EVERY);
        let mut scores = tokio::time::interval(Duration::from_secs(1));
        // Remembered peers are dialled again, first soon and then less and less
        // often, while this node is not connected to them.
        let mut redial_pause = REDIAL_FIRST;
        let redial = tokio::time::sleep(redial_pause);
        tokio::pin!(redial);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = &mut redial => {
                    self.redial();
                    redial_pause = (redial_pause * 2).min(REDIAL_MAX);
                    redial.as_mut().reset(tokio::time::Instant::now() + redial_pause);
                }
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some(cmd) = self.commands.recv() => self.on_command(cmd),
                Some(done) = self.done_rx.recv() => self.on_done(done),
                _ = resync.tick() => {
                    let peers: Vec<PeerId> = self.greeted.iter().copied().collect();
                    for peer in peers {
                        self.start_reconcile(peer);
                    }
                }
                _ = scores.tick() => self.drop_bad_peers(),
            }
        }
    }

    /// Disconnects and bans peers whose gossip score fell below the graylist.
    fn drop_bad_peers(&mut self) {
        let bad: Vec<PeerId> = self
            .swarm
            .connected_peers()
            .filter(|p| {
                self.swarm.behaviour().gossipsub.peer_score(p).is_some_and(|s| s < GRAYLIST_THRESHOLD)
            })
            .copied()
            .collect();
        for peer in bad {
            self.ban(peer, "it sent too many invalid listings");
        }
    }

    fn ban(&mut self, peer: PeerId, why: &str) {
        tracing::warn!("disconnecting {peer}: {why}");
        if self.banned.insert(peer) {
            self.stats.banned.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    /// Runs blocking host work and sends its result back to the loop.
    fn blocking(&self, work: impl FnOnce(&dyn Host) -> Option<Done> + Send + 'static) {
        let host = self.host.clone();
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            if let Ok(Some(result)) = tokio::task::spawn_blocking(move || work(host.as_ref())).await {
                let _ = done.send(result).await;
            }
        });
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Publish { envelope } => {
                let topic = gossipsub::IdentTopic::new(LISTINGS_TOPIC);
                if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(topic, envelope) {
                    // No peers yet is normal: sync delivers it when they come.
                    tracing::debug!("gossip publish: {e}");
                }
            }
            Command::Provide(pack) => {
                if let Err(e) = self.swarm.behaviour_mut().kad.start_providing(kad::RecordKey::new(&pack.0)) {
                    tracing::warn!("cannot announce {pack} in the DHT: {e}");
                }
            }
            Command::FindProviders { pack, reply } => {
                let id = self.swarm.behaviour_mut().kad.get_providers(kad::RecordKey::new(&pack.0));
                self.provider_queries.insert(id, (HashSet::new(), reply));
            }
            Command::Connect { node, reply } => {
                let Some(peer) = peer_id_of(&node) else {
                    let _ = reply.send(false);
                    return;
                };
                if self.greeted.contains(&peer) {
                    let _ = reply.send(true);
                    return;
                }
                self.connect_waiters.entry(peer).or_default().push(reply);
                if !self.swarm.is_connected(&peer)
                    && let Err(e) = self.swarm.dial(peer)
                {
                    tracing::debug!("dialing {node}: {e}");
                    for waiter in self.connect_waiters.remove(&peer).unwrap_or_default() {
                        let _ = waiter.send(false);
                    }
                    return;
                }
                let done = self.done_tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(LOOKUP_TIMEOUT).await;
                    let _ = done.send(Done::ConnectTimeout(peer)).await;
                });
            }
            Command::Peers(reply) => {
                let mut peers: HashMap<PeerId, Vec<String>> = HashMap::new();
                for peer in self.swarm.connected_peers() {
                    peers.entry(*peer).or_default();
                }
                let infos = peers
                    .into_keys()
                    .filter_map(|peer| {
                        let node_id = node_id_of(&peer)?;
                        let addrs = self.peer_addrs(&peer);
                        Some(PeerInfo { node_id, addrs })
                    })
                    .collect();
                let _ = reply.send(infos);
            }
            Command::ListenAddrs(reply) => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::Dial(addr) => self.dial(addr),
            Command::Trade { node, request, reply } => match peer_id_of(&node) {
                Some(peer) => {
                    let id = self.swarm.behaviour_mut().trade.send_request(&peer, request);
                    self.trades.insert(id, reply);
                }
                None => {
                    let _ = reply.send(Err("not a valid node id".into()));
                }
            },
            Command::SyncAll(reply) => {
                let peers: Vec<PeerId> = self.greeted.iter().copied().collect();
                for peer in peers {
                    self.start_reconcile(peer);
                }
                let _ = reply.send(());
            }
        }
    }

    fn peer_addrs(&self, peer: &PeerId) -> Vec<String> {
        self.addrs.get(peer).map(|a| a.iter().map(|a| a.to_string()).collect()).unwrap_or_default()
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::ConnectTimeout(peer) => {
                for waiter in self.connect_waiters.remove(&peer).unwrap_or_default() {
                    let _ = waiter.send(self.greeted.contains(&peer));
                }
            }
            Done::Validated { id, source, acceptance } => {
                let rejected = acceptance == MessageAcceptance::Reject;
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &source, acceptance);
                // Ban at once, not at the next score check: until then gossipsub drops
                // a graylisted peer's messages only after decoding them and checking
                // their signatures (the abuse tests saw ~1,400 in that second).
                let graylisted = |s: f64| s < GRAYLIST_THRESHOLD;
                if rejected && self.swarm.behaviour().gossipsub.peer_score(&source).is_some_and(graylisted) {
                    self.ban(source, "it sent too many invalid listings");
                }
            }
            Done::FetchedInvalid(peer) => {
                self.ban(peer, "it answered a fetch with invalid listings");
            }
            Done::Respond { channel, response } => {
                let _ = self.swarm.behaviour_mut().sync.send_response(channel, response);
            }
            Done::TradeRespond { channel, response } => {
                let _ = self.swarm.behaviour_mut().trade.send_response(channel, response);
            }
            Done::Reconciled { peer, next, need } => {
                if !need.is_empty() {
                    for chunk in need.chunks(MAX_FETCH_IDS) {
                        let id = self
                            .swarm
                            .behaviour_mut()
                            .sync
                            .send_request(&peer, SyncRequest::Fetch(chunk.to_vec()));
                        self.pending.insert(id, (peer, Pending::Fetch));
                    }
                }
                match next {
                    Some(message) => {
                        self.count(message.len());
                        let id = self
                            .swarm
                            .behaviour_mut()
                            .sync
                            .send_request(&peer, SyncRequest::Reconcile(ByteBuf::from(message)));
                        self.pending.insert(id, (peer, Pending::Reconcile));
                    }
                    None => {
                        self.reconciling.remove(&peer);
                    }
                }
            }
        }
    }

    fn count(&self, bytes: usize) {
        self.stats.rounds.fetch_add(1, Ordering::Relaxed);
        self.stats.reconcile_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Starts reconciling our listings with `peer` unless a round is under way.
    fn start_reconcile(&mut self, peer: PeerId) {
        if !self.reconciling.insert(peer) {
            return;
        }
        self.blocking(move |host| {
            let items = host.sync_items();
            let first = smpl_protocol::sync::initiate(&items);
            Some(Done::Reconciled { peer, next: Some(first), need: Vec::new() })
        });
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => tracing::info!("listening on {address}"),
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, num_established, .. } => {
                if self.banned.contains(&peer_id) {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                let remote = endpoint.get_remote_address().clone();
                if endpoint.is_dialer() {
                    self.host.remember_peer(&remote);
                }
                self.addrs.entry(peer_id).or_default().push(remote);
                if num_established.get() == 1 {
                    let hello = SyncRequest::Hello { iroh: self.host.iroh_addrs() };
                    let id = self.swarm.behaviour_mut().sync.send_request(&peer_id, hello);
                    self.pending.insert(id, (peer_id, Pending::Hello));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, endpoint, num_established, .. } => {
                if let Some(addrs) = self.addrs.get_mut(&peer_id) {
                    addrs.retain(|a| a != endpoint.get_remote_address());
                }
                if num_established == 0 {
                    self.greeted.remove(&peer_id);
                    self.reconciling.remove(&peer_id);
                    self.addrs.remove(&peer_id);
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), .. }
                if !self.swarm.is_connected(&peer) =>
            {
                for waiter in self.connect_waiters.remove(&peer).unwrap_or_default() {
                    let _ = waiter.send(false);
                }
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                let data = message.data;
                let stats = self.stats.clone();
                self.blocking(move |host| {
                    let (acceptance, counter) = match host.ingest(&data) {
                        Ingest::New(_) => (MessageAcceptance::Accept, &stats.gossip_new),
                        Ingest::Old => (MessageAcceptance::Ignore, &stats.gossip_stale),
                        Ingest::Invalid(reason) => {
                            tracing::debug!("invalid listing from {propagation_source}: {reason}");
                            (MessageAcceptance::Reject, &stats.gossip_invalid)
                        }
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    Some(Done::Validated { id: message_id, source: propagation_source, acceptance })
                });
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                for addr in info.listen_addrs {
                    if dialable(&addr) {
                        self.host.remember_peer(&addr.clone().with_p2p(peer_id).unwrap_or(addr.clone()));
                    }
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    self.swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
                    if !self.swarm.is_connected(&peer) {
                        self.dial(addr);
                    }
                }
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetProviders(result),
                step,
                ..
            }) => {
                if let Some((found, _)) = self.provider_queries.get_mut(&id)
                    && let Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) = result
                {
                    found.extend(providers.iter().filter_map(node_id_of));
                }
                if step.last
                    && let Some((found, reply)) = self.provider_queries.remove(&id)
                {
                    let _ = reply.send(found.into_iter().collect());
                }
            }
            BehaviourEvent::Sync(request_response::Event::Message { peer, message, .. }) => match message {
                request_response::Message::Request { request, channel, .. } => {
                    self.on_request(peer, request, channel)
                }
                request_response::Message::Response { request_id, response } => {
                    self.on_response(peer, request_id, response)
                }
            },
            BehaviourEvent::Trade(event) => self.on_trade_event(event),
            BehaviourEvent::Sync(request_response::Event::OutboundFailure {
                request_id,
                peer,
                error,
                ..
            }) => {
                tracing::debug!("sync request to {peer} failed: {error}");
                if let Some((peer, Pending::Reconcile)) = self.pending.remove(&request_id) {
                    self.reconciling.remove(&peer);
                }
            }
            _ => {}
        }
    }

    fn on_request(&mut self, peer: PeerId, request: SyncRequest, channel: ResponseChannel<SyncResponse>) {
        if self.banned.contains(&peer) {
            let _ = self
                .swarm
                .behaviour_mut()
                .sync
                .send_response(channel, SyncResponse::Refused("banned".into()));
            return;
        }
        match request {
            SyncRequest::Hello { iroh } => {
                self.greet(peer, iroh);
                let reply = SyncResponse::Hello { iroh: self.host.iroh_addrs() };
                let _ = self.swarm.behaviour_mut().sync.send_response(channel, reply);
            }
            SyncRequest::Reconcile(message) => {
                self.count(message.len());
                let stats = self.stats.clone();
                self.blocking(move |host| {
                    let items = host.sync_items();
                    let response = match smpl_protocol::sync::respond(&items, &message) {
                        Ok((next, _need)) => {
                            let len = next.as_ref().map_or(0, Vec::len) as u64;
                            stats.reconcile_bytes.fetch_add(len, Ordering::Relaxed);
                            SyncResponse::Reconcile(next.map(ByteBuf::from))
                        }
                        Err(e) => SyncResponse::Refused(e.to_string()),
                    };
                    Some(Done::Respond { channel, response })
                })
            }
            SyncRequest::Fetch(ids) => {
                let ids: Vec<PackId> = ids.into_iter().take(MAX_FETCH_IDS).collect();
                self.blocking(move |host| {
                    let envelopes = host.envelopes(&ids).into_iter().map(ByteBuf::from).collect();
                    Some(Done::Respond { channel, response: SyncResponse::Envelopes(envelopes) })
                })
            }
        }
    }

    fn on_trade_event(&mut self, event: request_response::Event<TradeRequest, TradeResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    let Some(node) = node_id_of(&peer).filter(|_| !self.banned.contains(&peer)) else {
                        let refused = TradeResponse::Refused("refused".into());
                        let _ = self.swarm.behaviour_mut().trade.send_response(channel, refused);
                        return;
                    };
                    self.blocking(move |host| {
                        Some(Done::TradeRespond { channel, response: host.trade(node, request) })
                    });
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some(reply) = self.trades.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure { request_id, error, .. } => {
                if let Some(reply) = self.trades.remove(&request_id) {
                    let _ = reply.send(Err(error.to_string()));
                }
            }
            _ => {}
        }
    }

    fn greet(&mut self, peer: PeerId, iroh: Vec<SocketAddr>) {
        if let Some(node) = node_id_of(&peer) {
            self.host.learned_iroh(node, iroh.into_iter().take(16).collect());
        }
        if self.greeted.insert(peer) {
            self.start_reconcile(peer);
        }
        for waiter in self.connect_waiters.remove(&peer).unwrap_or_default() {
            let _ = waiter.send(true);
        }
    }

    fn on_response(&mut self, peer: PeerId, request_id: OutboundRequestId, response: SyncResponse) {
        let Some((_, pending)) = self.pending.remove(&request_id) else { return };
        match (pending, response) {
            (Pending::Hello, SyncResponse::Hello { iroh }) => self.greet(peer, iroh),
            (Pending::Reconcile, SyncResponse::Reconcile(Some(message))) => {
                self.count(message.len());
                self.blocking(move |host| {
                    let items = host.sync_items();
                    match smpl_protocol::sync::respond(&items, &message) {
                        Ok((next, need)) => Some(Done::Reconciled { peer, next, need }),
                        Err(e) => {
                            tracing::debug!("bad reconciliation message from {peer}: {e}");
                            Some(Done::Reconciled { peer, next: None, need: Vec::new() })
                        }
                    }
                })
            }
            (Pending::Reconcile, _) => {
                self.reconciling.remove(&peer);
            }
            (Pending::Fetch, SyncResponse::Envelopes(envelopes)) => {
                self.stats.fetched.fetch_add(envelopes.len() as u64, Ordering::Relaxed);
                let stats = self.stats.clone();
                self.blocking(move |host| {
                    let mut invalid = false;
                    for envelope in envelopes.into_iter().take(MAX_FETCH_IDS) {
                        match host.ingest(&envelope) {
                            Ingest::New(_) => {}
                            Ingest::Old => {
                                stats.fetched_stale.fetch_add(1, Ordering::Relaxed);
                            }
                            Ingest::Invalid(reason) => {
                                tracing::debug!("invalid listing from {peer} over sync: {reason}");
                                stats.fetched_invalid.fetch_add(1, Ordering::Relaxed);
                                invalid = true;
                            }
                        }
                    }
                    // An honest peer serves only listings it verified itself, so one
                    // invalid listing in an answer is enough to ban it; unpunished, a
                    // peer could claim newer listings and feed garbage at every resync.
                    invalid.then_some(Done::FetchedInvalid(peer))
                })
            }
            (_, other) => tracing::debug!("unexpected sync answer from {peer}: {other:?}"),
        }
    }
}
