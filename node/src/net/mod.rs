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
//!   score; a peer that sends more than [`INVALID_FORGIVEN`] in quick succession, or
//!   falls below the graylist threshold, is disconnected and banned).
//! - On every new connection both sides say `Hello` (their iroh addresses), then
//!   each reconciles its listing set with the other over `/smpl/sync/1` and fetches
//!   what it lacks; a timer repeats this so partitions heal.
//! - Kademlia on `/smpl/kad/1` finds peers and provider records (who serves a pack).
//! - `/smpl/purchase/1` carries purchase orders and license presentations
//!   ([`wire::TradeRequest`]); the host answers them on a blocking thread.
//! - Reach across NAT: AutoNAT v2 asks peers that run its server to dial this
//!   node's address candidates back, which tells it whether it is publicly
//!   reachable ([`Reachability`]). Every node reserves a slot on up to
//!   [`MAX_RELAYS`] relays among its peers (peers that speak the circuit relay v2
//!   hop protocol) and listens on the relayed address; the relay client confirms
//!   that address as external, so identify and Kademlia provider records carry it
//!   and never a private address alone. A connection that came through a relay is
//!   upgraded by DCUtR hole punching to a direct one when the NATs allow it.

pub mod behaviour;
mod host;
pub mod invite;
mod passed;
mod providers;
pub mod wire;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::core::transport::ListenerId;
use libp2p::gossipsub::{self, MessageAcceptance};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, Swarm, autonat, dcutr, identify, identity, kad, mdns, ping, relay};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use smpl_protocol::sync::Item;
use smpl_protocol::{Envelope, NodeId, PackId};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::util::background;
use crate::util::rate::Rate;
use behaviour::{Behaviour, BehaviourEvent, GRAYLIST_THRESHOLD};
pub use behaviour::{BuildError, LISTINGS_TOPIC, RelayLimits};
pub use host::{Host, Ingest, NodeHost, ingest};
pub use invite::{Invite, InviteError};
use passed::Passed;
use wire::{
    MAX_ANNOUNCED_BYTES, MAX_FETCH_IDS, RelayHome, RelayOffer, SyncRequest, SyncResponse, TradeRequest,
    TradeResponse,
};

/// How often every connected peer is reconciled with again.
const RESYNC_EVERY: Duration = Duration::from_secs(30);
/// How often Kademlia's routing table is refreshed (Kademlia's own default).
const ROUTES_EVERY: Duration = Duration::from_secs(5 * 60);
/// How long a reconciliation that left nothing to fetch stands for its peer: while
/// the peer's first answer is the same, a round ends there. Past it, a round goes
/// through again (the budget may have room for what it declined).
const SETTLED_FOR: Duration = Duration::from_secs(60 * 60);
/// Listings fetched from a peer and not taken (declined by the budget, or no newer
/// than ours) that the node remembers, over all peers (about 40 bytes each). The
/// budget's own records of declined listings are bounded by its share of the disk,
/// and a peer may hold more of them than that: without these, every round with it
/// would fetch again the ones the budget forgot. Each peer's are kept for
/// [`SETTLED_FOR`], then fetched once more (the budget may have room by then);
/// passed again, they are kept twice as long each time, up to a day
/// ([`passed::MAX_KEEP`]).
const MAX_PASSED: usize = 1 << 18;
/// How long a provider lookup or a connection attempt may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How soon the data plane is punched toward the same peer again.
const PUNCH_AGAIN: Duration = Duration::from_secs(30);

/// Relays this node holds a reservation on at most (each gives it one relayed
/// address).
pub const MAX_RELAYS: usize = 2;

#[derive(Clone, Debug)]
pub struct NetConfig {
    pub listen: Vec<Multiaddr>,
    pub bootstrap: Vec<Multiaddr>,
    pub mdns: bool,
    /// The limits of this node's relay for others.
    pub relay: RelayLimits,
    /// Relay (and serve AutoNAT) for others from the start (`--relay-server`);
    /// otherwise only while AutoNAT confirms this node public, if
    /// `relay.when_public`.
    pub relay_server: bool,
    /// Where the listings fetched from peers and not taken are kept while the node
    /// is stopped (see [`MAX_PASSED`]); `None` forgets them at each stop.
    pub passed_file: Option<PathBuf>,
}

/// A connected peer, as `smpl peers` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PeerInfo {
    pub node_id: NodeId,
    pub addrs: Vec<String>,
    /// `direct` when at least one connection to the peer is direct, else `relayed`.
    #[serde(default)]
    pub path: String,
    /// The relay the connection goes through, when it is relayed.
    #[serde(default)]
    pub relay: Option<NodeId>,
    /// Round-trip time of the last libp2p ping, in milliseconds.
    #[serde(default)]
    pub rtt_ms: Option<f64>,
    /// This node's own reachability as AutoNAT found it (`public`, `private`,
    /// `unknown`): whether this peer can dial us back directly.
    #[serde(default)]
    pub nat: String,
}

/// Whether this node can be dialled from outside, as AutoNAT found it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reachability {
    /// `public`: a peer dialled one of our addresses back; `private`: every
    /// address tested failed; `unknown`: nothing tested yet.
    pub nat: String,
    /// Addresses AutoNAT confirmed.
    pub public: Vec<String>,
    /// Our relayed addresses (`…/p2p-circuit`).
    pub relayed: Vec<String>,
}

impl std::fmt::Display for Reachability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.nat.as_str() {
            "public" => write!(f, "publicly reachable at {}", self.public.join(" "))?,
            "private" => write!(f, "not publicly reachable (behind NAT or a firewall)")?,
            _ => write!(f, "reachability not known yet")?,
        }
        if !self.relayed.is_empty() {
            write!(f, "; relayed at {}", self.relayed.join(" "))?;
        }
        Ok(())
    }
}

fn is_loopback(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

/// The IP address at the start of `addr`.
fn ip_of(addr: &Multiaddr) -> Option<std::net::IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(ip.into()),
        Protocol::Ip6(ip) => Some(ip.into()),
        _ => None,
    })
}

/// Whether `addr` goes through a relay.
fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| p == Protocol::P2pCircuit)
}

/// The address of a connection's other end; for a connection that came in
/// through a relay, the relayed address (`…/p2p/<relay>/p2p-circuit/p2p/<peer>`),
/// where the transport reports only `/p2p/<peer>`.
fn remote_of(peer: PeerId, endpoint: &libp2p::core::ConnectedPoint) -> Multiaddr {
    let remote = endpoint.get_remote_address();
    match endpoint {
        libp2p::core::ConnectedPoint::Listener { local_addr, .. }
            if is_relayed(local_addr) && !is_relayed(remote) =>
        {
            local_addr.clone().with(Protocol::P2p(peer))
        }
        _ => remote.clone(),
    }
}

/// The relay a relayed address goes through: the peer id before `/p2p-circuit`.
fn relay_of(addr: &Multiaddr) -> Option<PeerId> {
    let mut last = None;
    for p in addr.iter() {
        match p {
            Protocol::P2p(peer) => last = Some(peer),
            Protocol::P2pCircuit => return last,
            _ => {}
        }
    }
    None
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
    #[error("cannot start the threads that take listings in: {0}")]
    Threads(#[from] std::io::Error),
}

enum Command {
    Publish {
        envelope: Vec<u8>,
    },
    Provide(PackId),
    FindProviders {
        pack: PackId,
        reply: oneshot::Sender<Vec<NodeId>>,
    },
    Connect {
        node: NodeId,
        reply: oneshot::Sender<bool>,
    },
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Dial(Multiaddr),
    SyncAll(oneshot::Sender<()>),
    Reconsider {
        packs: Vec<PackId>,
        reply: oneshot::Sender<()>,
    },
    Trade {
        node: NodeId,
        request: TradeRequest,
        reply: oneshot::Sender<Result<TradeResponse, String>>,
    },
    /// Listen addresses and external ones (confirmed by AutoNAT or a relay).
    Invite(oneshot::Sender<Vec<Multiaddr>>),
}

/// Results of blocking work, back to the loop (`Fetched`: a fetch answer was taken
/// in, and whether it held an invalid listing; `BadReconcile`: the peer's
/// reconciliation message did not decode, so what the round would have fetched is
/// not known).
enum Done {
    /// [`LOOKUP_TIMEOUT`] passed since a provider lookup began to wait for a peer.
    NoPeerKnown,
    Validated {
        id: gossipsub::MessageId,
        source: PeerId,
        acceptance: MessageAcceptance,
    },
    Respond {
        channel: ResponseChannel<SyncResponse>,
        response: SyncResponse,
    },
    TradeRespond {
        channel: ResponseChannel<TradeResponse>,
        response: TradeResponse,
    },
    Reconciled {
        peer: PeerId,
        next: Option<Vec<u8>>,
        need: Vec<Item>,
    },
    BadReconcile {
        peer: PeerId,
    },
    /// A fetch's listings taken in; `passed` are those not taken.
    Fetched {
        peer: PeerId,
        invalid: bool,
        passed: Vec<Item>,
    },
    /// An announced listing checked: `gossip` holds it when it was new here.
    Announced {
        peer: PeerId,
        channel: ResponseChannel<SyncResponse>,
        gossip: Option<Vec<u8>>,
        invalid: bool,
    },
    ConnectTimeout(PeerId),
}

enum Pending {
    Hello,
    Reconcile,
    /// The ids asked for.
    Fetch(Vec<PackId>),
    Announce,
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
    /// Gossip listings dropped unchecked because [`MAX_VALIDATING`] were being
    /// checked already (not forwarded; the sender is not penalised, and sync
    /// brings any honest one later).
    pub gossip_dropped: AtomicU64,
    /// Gossip listings dropped unchecked because their peer sent more than its
    /// rate, and sync requests refused for the same reason.
    pub gossip_rate_limited: AtomicU64,
    pub sync_rate_limited: AtomicU64,
    /// Listings peers announced that were new here, and announcements refused:
    /// not signed by the peer that sent them, or failing their checks.
    pub announced_new: AtomicU64,
    pub announces_refused: AtomicU64,
    /// Gossip messages (forwards, publishes, gossip about them) not sent because
    /// the peer's send queue was full: a slow or stalled peer.
    pub gossip_unsent: AtomicU64,
    /// Gossip listings whose check ended after gossipsub had let them go from its
    /// cache: kept if valid, but not forwarded, and their sender not scored.
    pub gossip_unforwarded: AtomicU64,
    /// Rounds this node started that ended at the peer's first answer: the same as
    /// in the last round with it that left nothing to fetch.
    pub rounds_settled: AtomicU64,
    /// Listings reconciliation found missing that were not fetched: fetched from
    /// the same peer before and not taken (see [`MAX_PASSED`]).
    pub fetches_skipped: AtomicU64,
    /// `Fetch` answers this node sent, and the bytes of envelopes in the largest.
    pub answers: AtomicU64,
    pub answer_bytes_max: AtomicU64,
    /// Ids asked for that a `Fetch` answer of ours left out to stay within the
    /// answer's byte budget (the requester asks again for them).
    pub answer_deferred: AtomicU64,
    /// Fetches of ours that failed: the peer went, or timed out, or its answer
    /// could not be read (over the size limit, say).
    pub fetches_failed: AtomicU64,
    /// Provider records of other peers the DHT dropped: their share of the store
    /// was full ([`providers::MAX_REMOTE_KEYS`]).
    pub provider_records_dropped: Arc<AtomicU64>,
    /// Peers disconnected and banned for sending invalid listings.
    pub banned: AtomicU64,
    /// Relay reservations accepted for this node, and refused or failed.
    pub reservations: AtomicU64,
    pub reservations_failed: AtomicU64,
    /// Relayed connections upgraded to direct ones by hole punching, and attempts
    /// that failed.
    pub hole_punched: AtomicU64,
    pub hole_punch_failed: AtomicU64,
    /// As a relay server: reservations and circuits granted, and refused (over
    /// the limits, or to a peer without a reservation).
    pub relay_reservations: AtomicU64,
    pub relay_circuits: AtomicU64,
    pub relay_refused: AtomicU64,
}

/// The handle to the swarm actor.
#[derive(Clone)]
pub struct Network {
    tx: mpsc::Sender<Command>,
    peer_id: PeerId,
    stats: Arc<SyncStats>,
    reachability: watch::Receiver<Reachability>,
}

pub fn peer_id_of(node: &NodeId) -> Option<PeerId> {
    let key = identity::ed25519::PublicKey::try_from_bytes(node.as_bytes()).ok()?;
    Some(identity::PublicKey::from(key).to_peer_id())
}

pub fn node_id_of(peer: &PeerId) -> Option<NodeId> {
    let key = identity::PublicKey::try_decode_protobuf(peer.as_ref().digest()).ok()?;
    Some(NodeId(key.try_into_ed25519().ok()?.to_bytes()))
}

/// Gossip listings being checked or waiting for it; more are dropped, except
/// from a peer with fewer than [`PEER_CHECKS`] of them, up to twice this.
pub const MAX_VALIDATING: usize = 64;
/// Gossip listings from one peer that are checked however full the queue is:
/// enough to find a forger out (three invalid listings ban it, and some of
/// what it sends may be genuine replays, which cost it nothing), so that a flood
/// from other peers cannot hide one, nor crowd out an honest peer.
const PEER_CHECKS: usize = 8;
/// The nice value of the swarm's thread (connections, gossip, sync, the DHT): one
/// step below searches, so that a search waking up takes the core from it at
/// once (at the same priority it may wait for the swarm's slice, a few
/// milliseconds), while it keeps nearly the share of a core it had beside other
/// programs (at nice 3, a node on a core busy with other programs fell far
/// behind). A step is not enough while the swarm is busy, as under a flood: the
/// thread also yields its core every 0.2 ms it runs (`background::Yielding`).
const SWARM_NICE: libc::c_int = 1;
/// Fetches from one peer being asked or taken in at once: what one peer's listings
/// may hold of the node's memory and cores while it syncs, so that a flood of
/// listings by sync leaves room for gossip and searches.
const MAX_FETCHES_IN_FLIGHT: usize = 4;

/// A reconciliation round with one peer, from its start until its fetches end.
#[derive(Default)]
struct Round {
    /// The hash of the peer's first answer: it depends only on the peer's set (and
    /// on whether ours is small or equal), so an unchanged one means that the
    /// peer's listings did not change.
    first_answer: Option<blake3::Hash>,
    /// A request of the round failed: what it would have fetched is not known.
    failed: bool,
}

/// The fetches of one peer's listings that reconciliation found missing.
#[derive(Default)]
struct Fetches {
    waiting: VecDeque<Vec<PackId>>,
    in_flight: usize,
}

/// Gossip listings taken from one peer: a burst, then one per refill (250 a
/// second); past it they are dropped unchecked, and sync brings honest ones later.
const GOSSIP_BURST: u32 = 1_000;
const GOSSIP_REFILL: Duration = Duration::from_millis(4);

/// Invalid gossip listings a peer is forgiven: one more within
/// [`INVALID_FORGIVEN_EVERY`] of them bans it, whatever its gossipsub score. The
/// score alone does not: gossipsub scores a rejected listing only while it still
/// holds the message (a few heartbeats, which a listing checked after a queue
/// under a flood has outlived), and a peer's time in the mesh raises its score by
/// far more than a few invalid listings lower it. An honest peer forwards only
/// listings it has checked itself, so it sends invalid ones only when its rules or
/// its clock differ from this node's.
pub const INVALID_FORGIVEN: u32 = 2;
const INVALID_FORGIVEN_EVERY: Duration = Duration::from_secs(20);

/// Sync requests answered for one peer: a burst, then one per refill (20 a
/// second); past it they are refused, and the peer asks again at its next round.
const SYNC_BURST: u32 = 200;
const SYNC_REFILL: Duration = Duration::from_millis(50);

/// The bytes of envelopes one `Fetch` answer carries at most: the requester's
/// read limit less room for the encoding.
const ANSWER_BUDGET: usize = smpl_protocol::wire::MAX_SYNC_RESPONSE_BYTES as usize - 64 * 1024;

const MAX_ENVELOPE_BYTES: usize = smpl_protocol::limits::MAX_ENVELOPE_BYTES;

/// The pack a listing envelope (manifest or retraction) is about, to tell where a
/// `Fetch` answer stopped; the envelope is ingested (and checked) separately.
fn listing_id(bytes: &[u8]) -> Option<PackId> {
    use smpl_protocol::Signed as _;
    let envelope = smpl_protocol::Envelope::open(bytes).ok()?;
    match envelope.kind() {
        smpl_protocol::Kind::Manifest => {
            smpl_protocol::Manifest::from_envelope(&envelope).ok().map(|m| m.pack_id)
        }
        smpl_protocol::Kind::Retraction => {
            smpl_protocol::Retraction::from_envelope(&envelope).ok().map(|r| r.pack_id)
        }
        _ => None,
    }
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
    /// Builds the swarm, starts listening and runs the actor until `cancel`, on a
    /// thread of its own at [`SWARM_NICE`].
    pub async fn start(
        identity: &smpl_protocol::Identity,
        config: NetConfig,
        host: Arc<dyn Host>,
        cancel: CancellationToken,
    ) -> Result<(Network, tokio::task::JoinHandle<()>), NetError> {
        let identity = identity.clone();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (ended_tx, ended_rx) = oneshot::channel::<()>();
        std::thread::Builder::new().name("smpl-swarm".into()).spawn(move || {
            let _ended = ended_tx;
            background::lower_priority_to(SWARM_NICE);
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(NetError::Threads(e)));
                    return;
                }
            };
            runtime.block_on(async move {
                match Network::build(&identity, config, host) {
                    Ok((network, mut actor)) => {
                        let _ = ready_tx.send(Ok(network));
                        background::Yielding(Box::pin(actor.run(cancel))).await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
            // Host work the actor handed out ends quickly; none outlives the node.
            runtime.shutdown_timeout(Duration::from_secs(5));
        })?;
        let network = ready_rx.await.map_err(|_| NetError::Stopped)??;
        let join = tokio::spawn(async move {
            let _ = ended_rx.await;
        });
        Ok((network, join))
    }

    /// The swarm, listening, and its actor with the peers to dial queued, on the
    /// runtime that is to drive them.
    fn build(
        identity: &smpl_protocol::Identity,
        config: NetConfig,
        host: Arc<dyn Host>,
    ) -> Result<(Network, Actor), NetError> {
        let mut swarm = behaviour::build_swarm(identity, config.mdns, &config.relay, config.relay_server)?;
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| NetError::Listen { addr: addr.clone(), reason: e.to_string() })?;
        }
        let peer_id = *swarm.local_peer_id();
        let (tx, rx) = mpsc::channel(256);
        let provider_records_dropped = swarm.behaviour_mut().kad.store_mut().dropped.clone();
        let stats = Arc::new(SyncStats { provider_records_dropped, ..SyncStats::default() });
        let unknown = Reachability { nat: "unknown".into(), ..Default::default() };
        let (reach_tx, reachability) = watch::channel(unknown);
        // As many as the machine has cores, at most 4: sync takes listings in
        // faster than one core checks their signatures.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).min(4);
        // Listings fetched by sync, and those gossiped or announced by authors
        // not dealt with, are checked and stored at the lowest priority, so that
        // searches and the swarm go first, on no more threads than cores: with a
        // thread for each listing they took the cores from searches.
        let ingest = background::Pool::new("smpl-ingest", cores)?;
        let checks = background::Pool::new("smpl-gossip", cores)?;
        let mut actor = Actor::new(swarm, host, rx, stats.clone(), reach_tx, [ingest, checks]);
        actor.relay_server = config.relay_server;
        actor.loopback_only = !config.listen.is_empty() && config.listen.iter().all(is_loopback);
        if let Some(path) = config.passed_file {
            actor.passed = passed::take(&path, SETTLED_FOR, MAX_PASSED);
            let listings: usize = actor.passed.values().map(|p| p.versions.len()).sum();
            if listings > 0 {
                tracing::info!(
                    peers = actor.passed.len(),
                    "{listings} listings fetched before and not taken are not fetched again"
                );
            }
            actor.passed_file = Some(path);
        }
        let mut dial: Vec<Multiaddr> = config.bootstrap.clone();
        dial.extend(actor.host.remembered_peers());
        for addr in dial {
            actor.dial(addr);
        }
        Ok((Network { tx, peer_id, stats, reachability }, actor))
    }

    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    pub fn stats(&self) -> &SyncStats {
        &self.stats
    }

    /// Whether this node is publicly reachable, updated as AutoNAT and relays
    /// report.
    pub fn reachability(&self) -> watch::Receiver<Reachability> {
        self.reachability.clone()
    }

    /// The addresses an invite carries: external ones (confirmed by AutoNAT, or
    /// relayed) and listen addresses that can be dialled, each with `/p2p/<us>`.
    pub async fn invite_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.ask(Command::Invite).await
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

    /// Fetches `packs` again from whichever peer offers them, though they were
    /// fetched and not taken before (the node now deals with their author), and
    /// reconciles with every connected peer now.
    pub async fn reconsider(&self, packs: Vec<PackId>) -> Result<(), NetError> {
        self.ask(|reply| Command::Reconsider { packs, reply }).await
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
    /// Per peer, the round under way (reconciling or fetching).
    rounds: HashMap<PeerId, Round>,
    /// Per peer, the first answer of its last round that ended with every fetch
    /// done, and when: a round whose first answer is the same ends there.
    settled: HashMap<PeerId, (blake3::Hash, Instant)>,
    /// Per peer, the listings fetched from it and not taken.
    passed: HashMap<PeerId, Passed>,
    /// Where `passed` is kept while the node is stopped.
    passed_file: Option<PathBuf>,
    /// Peers to reconcile with again as soon as the round under way and its
    /// fetches are over (asked while they were going).
    again: HashSet<PeerId>,
    /// Per peer, the listings to fetch from it, asked [`MAX_FETCHES_IN_FLIGHT`] at a time.
    fetches: HashMap<PeerId, Fetches>,
    /// Remote addresses of current connections.
    addrs: HashMap<PeerId, Vec<Multiaddr>>,
    provider_queries: HashMap<kad::QueryId, (HashSet<NodeId>, oneshot::Sender<Vec<NodeId>>)>,
    /// Provider lookups asked while Kademlia knew no peer (a node just started
    /// learns its peers' addresses from identify): a lookup then would end at
    /// once with nobody. Started when the first peer is known, or after
    /// [`LOOKUP_TIMEOUT`].
    lookups_waiting: Vec<(PackId, oneshot::Sender<Vec<NodeId>>)>,
    connect_waiters: HashMap<PeerId, Vec<oneshot::Sender<bool>>>,
    trades: HashMap<OutboundRequestId, oneshot::Sender<Result<TradeResponse, String>>>,
    /// Whether this node was declared a relay for others (then it holds no
    /// reservations itself).
    relay_server: bool,
    /// Whether this node relays for others now, declared or found public.
    relaying: bool,
    /// Whether every listen address is loopback (tests).
    loopback_only: bool,
    /// Connected peers that offer the relay hop protocol.
    hop_peers: HashSet<PeerId>,
    /// Peers that offer the relay hop protocol, with the address we reach them at.
    relays: HashMap<PeerId, Multiaddr>,
    /// Our listeners on relays (`…/p2p/<relay>/p2p-circuit`).
    relay_listeners: HashMap<ListenerId, PeerId>,
    /// Last ping round-trip per peer.
    rtt: HashMap<PeerId, Duration>,
    /// AutoNAT results per tested address: reachable or not.
    tested: HashMap<Multiaddr, bool>,
    /// When we last punched the data plane toward a peer.
    punched: HashMap<PeerId, std::time::Instant>,
    /// Our IPv4 addresses as peers saw them (identify), newest last.
    observed: Vec<std::net::IpAddr>,
    /// The relays our last Hellos named.
    told_relays: (Option<RelayOffer>, Option<RelayHome>),
    reachability: watch::Sender<Reachability>,
    stats: Arc<SyncStats>,
    /// Gossip listings being checked or waiting for it, in all and by the peer
    /// they came from.
    validating: usize,
    checking: HashMap<PeerId, usize>,
    /// Where listings fetched by sync are taken in.
    ingest: background::Pool,
    /// Where gossip listings from authors not dealt with are checked: apart from
    /// sync's, so that neither waits for the other.
    checks: background::Pool,
    gossip_rate: Rate<PeerId>,
    sync_rate: Rate<PeerId>,
    /// Invalid gossip listings forgiven, by the peer that sent them.
    forgiven: Rate<PeerId>,
}

impl Actor {
    fn new(
        swarm: Swarm<Behaviour>,
        host: Arc<dyn Host>,
        commands: mpsc::Receiver<Command>,
        stats: Arc<SyncStats>,
        reachability: watch::Sender<Reachability>,
        [ingest, checks]: [background::Pool; 2],
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
            rounds: HashMap::new(),
            settled: HashMap::new(),
            passed: HashMap::new(),
            passed_file: None,
            again: HashSet::new(),
            fetches: HashMap::new(),
            addrs: HashMap::new(),
            provider_queries: HashMap::new(),
            lookups_waiting: Vec::new(),
            connect_waiters: HashMap::new(),
            trades: HashMap::new(),
            relay_server: false,
            relaying: false,
            loopback_only: false,
            hop_peers: HashSet::new(),
            relays: HashMap::new(),
            relay_listeners: HashMap::new(),
            rtt: HashMap::new(),
            tested: HashMap::new(),
            observed: Vec::new(),
            told_relays: (None, None),
            punched: HashMap::new(),
            reachability,
            stats,
            validating: 0,
            checking: HashMap::new(),
            ingest,
            checks,
            gossip_rate: Rate::new(GOSSIP_BURST, GOSSIP_REFILL),
            forgiven: Rate::new(INVALID_FORGIVEN, INVALID_FORGIVEN_EVERY),
            sync_rate: Rate::new(SYNC_BURST, SYNC_REFILL),
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
        // Relays whose reservation was lost are asked again while connected.
        self.hop_peers.retain(|p| connected.contains(p));
        for relay in self.hop_peers.clone() {
            self.use_relay(relay);
        }
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
        let mut routes = tokio::time::interval(ROUTES_EVERY);
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
                    self.forget_passed();
                    self.reconcile_all();
                }
                _ = scores.tick() => {
                    self.drop_bad_peers();
                    self.tell_relays();
                }
                _ = routes.tick() => self.refresh_routes(),
            }
        }
        self.forget_passed();
        if let Some(path) = &self.passed_file
            && let Err(e) = passed::save(path, &self.passed)
        {
            tracing::warn!("cannot keep the listings not taken from peers: {e}");
        }
    }

    /// Refreshes Kademlia's routing table (a lookup of this node's own id and of
    /// random ones) when it holds a peer to ask.
    fn refresh_routes(&mut self) {
        let kad = &mut self.swarm.behaviour_mut().kad;
        if kad.kbuckets().any(|bucket| bucket.num_entries() > 0) {
            let _ = kad.bootstrap();
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

    /// [`Actor::blocking`] on `pool`: a bounded number of threads, which for sync
    /// run at a lower priority, so that its listings wait while the node answers
    /// searches.
    fn in_background(
        &self,
        pool: &background::Pool,
        work: impl FnOnce(&dyn Host) -> Option<Done> + Send + 'static,
    ) {
        let host = self.host.clone();
        let done = self.done_tx.clone();
        pool.spawn(move || {
            if let Some(result) = work(host.as_ref()) {
                let _ = done.blocking_send(result);
            }
        });
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Publish { envelope } => {
                let topic = gossipsub::IdentTopic::new(LISTINGS_TOPIC);
                match self.swarm.behaviour_mut().gossipsub.publish(topic, envelope.clone()) {
                    Ok(id) => tracing::debug!(%id, "listing published to gossip"),
                    // No peers yet is normal: sync delivers it when they come.
                    Err(e) => tracing::debug!("gossip publish: {e}"),
                }
                // Gossip sends what this node publishes behind what it forwards; under
                // a flood of others' listings its own would wait. Its peers get it
                // straight away too (a larger one travels by gossip and sync alone).
                if envelope.len() <= MAX_ANNOUNCED_BYTES {
                    let peers: Vec<PeerId> = self.greeted.iter().copied().collect();
                    for peer in peers {
                        let request = SyncRequest::Announce(ByteBuf::from(envelope.clone()));
                        let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                        self.pending.insert(id, (peer, Pending::Announce));
                    }
                }
            }
            Command::Provide(pack) => {
                if let Err(e) = self.swarm.behaviour_mut().kad.start_providing(kad::RecordKey::new(&pack.0)) {
                    tracing::warn!("cannot announce {pack} in the DHT: {e}");
                }
            }
            Command::FindProviders { pack, reply } => {
                let known = self.swarm.behaviour_mut().kad.kbuckets().any(|bucket| bucket.num_entries() > 0);
                if known {
                    self.find_providers(pack, reply);
                    return;
                }
                if self.lookups_waiting.is_empty() {
                    let done = self.done_tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(LOOKUP_TIMEOUT).await;
                        let _ = done.send(Done::NoPeerKnown).await;
                    });
                }
                self.lookups_waiting.push((pack, reply));
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
                    && let Err(e) = self.swarm.dial(self.dial_opts(peer))
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
                let infos = peers.into_keys().filter_map(|peer| self.peer_info(peer)).collect();
                let _ = reply.send(infos);
            }
            Command::ListenAddrs(reply) => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::Invite(reply) => {
                let us = *self.swarm.local_peer_id();
                let mut addrs: Vec<Multiaddr> = Vec::new();
                // Loopback addresses only for a node that listens on nothing else.
                let listeners = self
                    .swarm
                    .listeners()
                    .filter(|a| dialable(a) && !is_relayed(a) && (self.loopback_only || !is_loopback(a)));
                for addr in self.swarm.external_addresses().chain(listeners) {
                    let addr = addr.clone().with_p2p(us).unwrap_or_else(|a| a);
                    if !addrs.contains(&addr) {
                        addrs.push(addr);
                    }
                }
                // Direct addresses first, then relayed ones.
                addrs.sort_by_key(is_relayed);
                let _ = reply.send(addrs);
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
                self.reconcile_all();
                let _ = reply.send(());
            }
            Command::Reconsider { packs, reply } => {
                for passed in self.passed.values_mut() {
                    for pack in &packs {
                        passed.versions.remove(pack);
                    }
                }
                // A peer's first answer does not change with what we hold: a
                // settled round would end before fetching them.
                self.settled.clear();
                self.reconcile_all();
                let _ = reply.send(());
            }
        }
    }

    /// Has the data plane send to `peer`'s iroh addresses now (see
    /// [`Host::punch`]), at most once per [`PUNCH_AGAIN`].
    fn punch(&mut self, peer: PeerId, why: &str) {
        let Some(node) = node_id_of(&peer) else { return };
        if self.punched.get(&peer).is_some_and(|at| at.elapsed() < PUNCH_AGAIN) {
            return;
        }
        tracing::info!("punching the data plane toward {peer} ({why})");
        self.punched.insert(peer, std::time::Instant::now());
        self.host.punch(node);
    }

    /// Our iroh addresses for a Hello: the endpoint's own, and the same ports at
    /// the public addresses peers saw us at (a home router that maps endpoint-
    /// independently usually keeps the port), so a peer behind another NAT can
    /// reach us once we punched toward it.
    fn iroh_addrs(&self) -> Vec<SocketAddr> {
        let mut addrs = self.host.iroh_addrs();
        let ports: Vec<u16> = addrs.iter().filter(|a| a.is_ipv4()).map(|a| a.port()).collect();
        for ip in &self.observed {
            for port in &ports {
                let addr = SocketAddr::new(*ip, *port);
                if !addrs.contains(&addr) {
                    addrs.push(addr);
                }
            }
        }
        addrs
    }

    fn peer_info(&self, peer: PeerId) -> Option<PeerInfo> {
        let node_id = node_id_of(&peer)?;
        let remote = self.addrs.get(&peer).map(Vec::as_slice).unwrap_or_default();
        let direct = remote.is_empty() || remote.iter().any(|a| !is_relayed(a));
        let relay = if direct { None } else { remote.iter().find_map(relay_of) };
        Some(PeerInfo {
            node_id,
            addrs: self.peer_addrs(&peer),
            path: if direct { "direct" } else { "relayed" }.into(),
            relay: relay.as_ref().and_then(node_id_of),
            rtt_ms: self.rtt.get(&peer).map(|d| d.as_secs_f64() * 1000.0),
            nat: self.reachability.borrow().nat.clone(),
        })
    }

    /// How to dial `peer`: the addresses Kademlia and identify know, and the peer
    /// through each of our relays (a NATed peer holding a reservation there
    /// answers, and DCUtR may then make the connection direct).
    fn dial_opts(&self, peer: PeerId) -> DialOpts {
        let through_relays: Vec<Multiaddr> = self
            .relays
            .iter()
            .filter(|(relay, _)| **relay != peer)
            .filter_map(|(relay, addr)| {
                let addr = addr.clone().with_p2p(*relay).ok()?;
                Some(addr.with(Protocol::P2pCircuit).with(Protocol::P2p(peer)))
            })
            .collect();
        DialOpts::peer_id(peer).addresses(through_relays).extend_addresses_through_behaviour().build()
    }

    /// Reserves a slot on `relay` (which speaks the hop protocol) and listens on
    /// the relayed address, unless this node relays itself or has enough relays.
    fn use_relay(&mut self, relay: PeerId) {
        if self.relay_server || self.relays.contains_key(&relay) || self.relays.len() >= MAX_RELAYS {
            return;
        }
        // The address we reach the relay at directly: the one we dialled.
        let Some(addr) = self
            .addrs
            .get(&relay)
            .and_then(|addrs| addrs.iter().find(|a| !is_relayed(a) && dialable(a)))
            .cloned()
        else {
            return;
        };
        let addr = addr.iter().filter(|p| !matches!(p, Protocol::P2p(_))).collect::<Multiaddr>();
        let circuit = addr.clone().with(Protocol::P2p(relay)).with(Protocol::P2pCircuit);
        match self.swarm.listen_on(circuit.clone()) {
            Ok(id) => {
                tracing::info!("asking {relay} for a relayed address: {circuit}");
                self.relays.insert(relay, addr);
                self.relay_listeners.insert(id, relay);
                if self.greeted.contains(&relay) {
                    self.punch(relay, "a relay");
                }
            }
            Err(e) => {
                self.stats.reservations_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("cannot listen through relay {relay}: {e}");
            }
        }
    }

    /// Relays for others while this node is public (AutoNAT confirmed a direct
    /// address), unless it was declared a relay or asked not to: the libp2p
    /// relay, and the data plane's iroh relay, which keeps running once started.
    fn relay_when_public(&mut self, public: bool) {
        let Some(relay) = self.swarm.behaviour_mut().relay.as_mut() else { return };
        if self.relay_server || self.relaying == public {
            return;
        }
        self.relaying = public;
        relay.set_status(Some(if public { relay::Status::Enable } else { relay::Status::Disable }));
        if public {
            tracing::info!("publicly reachable: relaying for peers behind NAT");
            self.host.serve_relay();
        } else {
            tracing::info!("no longer publicly reachable: not relaying for others");
        }
    }

    /// Remembers the IPv4 address a peer saw us at, when it is not one of ours.
    fn observed_at(&mut self, addr: &Multiaddr) {
        const KEEP: usize = 4;
        let Some(ip) = addr.iter().find_map(|p| match p {
            Protocol::Ip4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(std::net::IpAddr::V4(ip)),
            _ => None,
        }) else {
            return;
        };
        if self.observed.contains(&ip) || self.host.iroh_addrs().iter().any(|a| a.ip() == ip) {
            return;
        }
        if self.observed.len() >= KEEP {
            self.observed.remove(0);
        }
        self.observed.push(ip);
        self.host.public_ips(&self.observed);
    }

    /// Recomputes what AutoNAT and the relays told us and publishes it.
    fn update_reachability(&mut self) {
        let mut public: Vec<String> =
            self.tested.iter().filter(|(_, ok)| **ok).map(|(a, _)| a.to_string()).collect();
        // A relay server's operator declared it public: its addresses count as
        // confirmed even with no AutoNAT server among its peers to test them.
        if self.relay_server {
            for addr in self.swarm.external_addresses().filter(|a| !is_relayed(a)) {
                let addr = addr.to_string();
                if !public.contains(&addr) {
                    public.push(addr);
                }
            }
        }
        let nat = if !public.is_empty() {
            "public"
        } else if self.tested.is_empty() {
            "unknown"
        } else {
            "private"
        };
        self.relay_when_public(nat == "public");
        let relayed =
            self.swarm.external_addresses().filter(|a| is_relayed(a)).map(|a| a.to_string()).collect();
        let next = Reachability { nat: nat.into(), public, relayed };
        self.reachability.send_if_modified(|now| {
            if *now == next {
                return false;
            }
            tracing::info!("reachability: {next}");
            *now = next;
            true
        });
    }

    fn on_nat_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Ping(ping::Event { peer, result: Ok(rtt), .. }) => {
                self.rtt.insert(peer, rtt);
            }
            BehaviourEvent::Autonat(autonat::v2::client::Event { tested_addr, server, result, .. }) => {
                match &result {
                    Ok(()) => tracing::info!("{server} reached us at {tested_addr}"),
                    Err(e) => tracing::info!("{server} could not reach us at {tested_addr}: {e}"),
                }
                // Only addresses of our own say whether we are reachable; a relayed
                // candidate (or a bare `/p2p/<us>`) says nothing about the NAT.
                let ip = tested_addr.iter().any(|p| matches!(p, Protocol::Ip4(_) | Protocol::Ip6(_)));
                if ip && !is_relayed(&tested_addr) {
                    self.tested.insert(tested_addr, result.is_ok());
                    self.update_reachability();
                }
            }
            BehaviourEvent::RelayClient(event) => {
                match event {
                    relay::client::Event::ReservationReqAccepted { relay_peer_id, renewal, .. } => {
                        if !renewal {
                            self.stats.reservations.fetch_add(1, Ordering::Relaxed);
                            tracing::info!("relay {relay_peer_id} accepted our reservation");
                        }
                    }
                    relay::client::Event::OutboundCircuitEstablished { relay_peer_id, .. } => {
                        tracing::debug!("relayed connection out through {relay_peer_id}");
                    }
                    relay::client::Event::InboundCircuitEstablished { src_peer_id, .. } => {
                        tracing::debug!("relayed connection in from {src_peer_id}");
                    }
                }
                self.update_reachability();
            }
            BehaviourEvent::Dcutr(dcutr::Event { remote_peer_id, result }) => match result {
                Ok(_) => {
                    self.stats.hole_punched.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("direct connection to {remote_peer_id} by hole punching");
                }
                Err(e) => {
                    self.stats.hole_punch_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("hole punching to {remote_peer_id} failed: {e}");
                }
            },
            BehaviourEvent::Relay(event) => self.on_relay_server_event(event),
            _ => {}
        }
    }

    fn on_relay_server_event(&mut self, event: relay::Event) {
        let stats = &self.stats;
        match event {
            relay::Event::ReservationReqAccepted { src_peer_id, renewed: false } => {
                stats.relay_reservations.fetch_add(1, Ordering::Relaxed);
                tracing::info!("relaying for {src_peer_id}");
            }
            relay::Event::CircuitReqAccepted { src_peer_id, dst_peer_id } => {
                stats.relay_circuits.fetch_add(1, Ordering::Relaxed);
                tracing::info!("relaying a connection from {src_peer_id} to {dst_peer_id}");
            }
            relay::Event::ReservationReqDenied { src_peer_id, status } => {
                stats.relay_refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("refused to relay for {src_peer_id}: {status:?}");
            }
            relay::Event::CircuitReqDenied { src_peer_id, dst_peer_id, status } => {
                stats.relay_refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("refused to relay from {src_peer_id} to {dst_peer_id}: {status:?}");
            }
            relay::Event::CircuitClosed { src_peer_id, dst_peer_id, error } => {
                tracing::debug!("relayed connection {src_peer_id} → {dst_peer_id} closed: {error:?}");
            }
            _ => {}
        }
    }

    fn peer_addrs(&self, peer: &PeerId) -> Vec<String> {
        self.addrs.get(peer).map(|a| a.iter().map(|a| a.to_string()).collect()).unwrap_or_default()
    }

    fn find_providers(&mut self, pack: PackId, reply: oneshot::Sender<Vec<NodeId>>) {
        let id = self.swarm.behaviour_mut().kad.get_providers(kad::RecordKey::new(&pack.0));
        self.provider_queries.insert(id, (HashSet::new(), reply));
    }

    /// Starts the provider lookups that waited for a peer to ask.
    fn start_waiting_lookups(&mut self) {
        for (pack, reply) in std::mem::take(&mut self.lookups_waiting) {
            self.find_providers(pack, reply);
        }
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::NoPeerKnown => self.start_waiting_lookups(),
            Done::ConnectTimeout(peer) => {
                for waiter in self.connect_waiters.remove(&peer).unwrap_or_default() {
                    let _ = waiter.send(self.greeted.contains(&peer));
                }
            }
            Done::Validated { id, source, acceptance } => {
                self.validating -= 1;
                if let Some(n) = self.checking.get_mut(&source) {
                    *n -= 1;
                    if *n == 0 {
                        self.checking.remove(&source);
                    }
                }
                let rejected = acceptance == MessageAcceptance::Reject;
                let cached = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &source, acceptance);
                if !cached {
                    let late = self.stats.gossip_unforwarded.fetch_add(1, Ordering::Relaxed) + 1;
                    if late.is_power_of_two() {
                        tracing::warn!(
                            late,
                            "gossip listings checked after gossip let them go: kept if valid, not forwarded"
                        );
                    }
                }
                // Past its forgiven ones, ban the peer at once (see
                // [`INVALID_FORGIVEN`]): until then gossipsub takes its messages in,
                // and drops them only after decoding them and checking their
                // signatures (the abuse tests saw ~1,400 in a second).
                if rejected && !self.banned.contains(&source) && !self.forgiven.take(source, Instant::now()) {
                    self.ban(source, "it sent too many invalid listings");
                }
            }
            Done::Fetched { peer, invalid: true, .. } => {
                self.fetches.remove(&peer);
                self.ban(peer, "it answered a fetch with invalid listings");
            }
            Done::Fetched { peer, invalid: false, passed } => {
                self.remember_passed(peer, passed);
                self.fetch_done(peer);
            }
            Done::Announced { peer, channel, invalid: true, .. } => {
                self.refuse_announce(peer, channel, "the listing failed its checks");
            }
            Done::Announced { channel, gossip, .. } => {
                let _ = self.swarm.behaviour_mut().sync.send_response(channel, SyncResponse::Received);
                if let Some(envelope) = gossip {
                    let topic = gossipsub::IdentTopic::new(LISTINGS_TOPIC);
                    // A duplicate when its gossip copy came first: nothing to do then.
                    if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(topic, envelope) {
                        tracing::debug!("gossiping an announced listing on: {e}");
                    }
                }
            }
            Done::Respond { channel, response } => {
                let _ = self.swarm.behaviour_mut().sync.send_response(channel, response);
            }
            Done::TradeRespond { channel, response } => {
                let _ = self.swarm.behaviour_mut().trade.send_response(channel, response);
            }
            Done::BadReconcile { peer } => {
                self.round_failed(peer);
                self.reconciling.remove(&peer);
                self.round_over(peer);
            }
            Done::Reconciled { peer, next, need } => {
                let need = self.not_passed(peer, need);
                if !need.is_empty() {
                    let fetches = self.fetches.entry(peer).or_default();
                    fetches.waiting.extend(need.chunks(MAX_FETCH_IDS).map(<[PackId]>::to_vec));
                    self.send_fetches(peer);
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
                        self.round_over(peer);
                    }
                }
            }
        }
    }

    fn count(&self, bytes: usize) {
        self.stats.rounds.fetch_add(1, Ordering::Relaxed);
        self.stats.reconcile_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Asks `peer` for the next waiting fetches while fewer than
    /// [`MAX_FETCHES_IN_FLIGHT`] are.
    fn send_fetches(&mut self, peer: PeerId) {
        let Some(fetches) = self.fetches.get_mut(&peer) else { return };
        while fetches.in_flight < MAX_FETCHES_IN_FLIGHT {
            let Some(ids) = fetches.waiting.pop_front() else { break };
            fetches.in_flight += 1;
            let id = self.swarm.behaviour_mut().sync.send_request(&peer, SyncRequest::Fetch(ids.clone()));
            self.pending.insert(id, (peer, Pending::Fetch(ids)));
        }
        if fetches.in_flight == 0 {
            self.fetches.remove(&peer);
            self.round_over(peer);
        }
    }

    /// Whether a gossip listing from `peer`, by an author not dealt with, may wait
    /// to be checked: see [`MAX_VALIDATING`] and [`PEER_CHECKS`].
    fn room_to_check(&self, peer: &PeerId) -> bool {
        let all = self.validating;
        let theirs = self.checking.get(peer).copied().unwrap_or(0);
        all < MAX_VALIDATING || (theirs < PEER_CHECKS && all < 2 * MAX_VALIDATING)
    }

    /// Starts the round asked for while the last one was going, once that one
    /// and its fetches are over.
    fn round_over(&mut self, peer: PeerId) {
        if self.reconciling.contains(&peer) || self.fetches.contains_key(&peer) {
            return;
        }
        if let Some(round) = self.rounds.remove(&peer) {
            match round.first_answer.filter(|_| !round.failed) {
                Some(answer) => self.settled.insert(peer, (answer, Instant::now())),
                None => self.settled.remove(&peer),
            };
        }
        if self.again.remove(&peer) {
            self.start_reconcile(peer);
        }
    }

    /// Marks the round with `peer` as one whose outcome is not fully known.
    fn round_failed(&mut self, peer: PeerId) {
        if let Some(round) = self.rounds.get_mut(&peer) {
            round.failed = true;
        }
    }

    /// A fetch from `peer` ended (taken in, failed or refused): the next one goes.
    fn fetch_done(&mut self, peer: PeerId) {
        if let Some(fetches) = self.fetches.get_mut(&peer) {
            fetches.in_flight = fetches.in_flight.saturating_sub(1);
        }
        self.send_fetches(peer);
    }

    /// Starts a round with every peer whose Hello we have.
    fn reconcile_all(&mut self) {
        let peers: Vec<PeerId> = self.greeted.iter().copied().collect();
        for peer in peers {
            self.start_reconcile(peer);
        }
    }

    /// Starts reconciling our listings with `peer` unless a round is under way or
    /// the last one's fetches are still going (they would be found missing again).
    fn start_reconcile(&mut self, peer: PeerId) {
        if self.fetches.contains_key(&peer) || !self.reconciling.insert(peer) {
            self.again.insert(peer);
            return;
        }
        self.rounds.insert(peer, Round::default());
        self.blocking(move |host| {
            let items = host.sync_items();
            let first = smpl_protocol::sync::initiate(&items);
            Some(Done::Reconciled { peer, next: Some(first), need: Vec::new() })
        });
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!("listening on {address}");
                // A relay server was declared public by its operator: its listen
                // addresses are what it hands out in reservations. Loopback ones
                // only when it listens on nothing else (tests).
                if self.relay_server && (!is_loopback(&address) || self.loopback_only) {
                    self.swarm.add_external_address(address);
                    self.update_reachability();
                }
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                tracing::info!("confirmed external address {address}");
                self.update_reachability();
            }
            SwarmEvent::ExternalAddrExpired { .. } => self.update_reachability(),
            SwarmEvent::ListenerClosed { listener_id, reason, .. } => {
                if let Some(relay) = self.relay_listeners.remove(&listener_id) {
                    // Another relay, or this one again once identify sees it, may
                    // take its place.
                    self.relays.remove(&relay);
                    self.stats.reservations_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("relayed address through {relay} closed: {reason:?}");
                    self.update_reachability();
                }
            }
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, num_established, .. } => {
                if self.banned.contains(&peer_id) {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                let remote = remote_of(peer_id, &endpoint);
                if endpoint.is_dialer() {
                    self.host.remember_peer(&remote);
                }
                self.addrs.entry(peer_id).or_default().push(remote);
                if num_established.get() == 1 {
                    self.send_hello(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, endpoint, num_established, .. } => {
                if let Some(addrs) = self.addrs.get_mut(&peer_id) {
                    let remote = remote_of(peer_id, &endpoint);
                    addrs.retain(|a| *a != remote);
                }
                if num_established == 0 {
                    self.greeted.remove(&peer_id);
                    self.reconciling.remove(&peer_id);
                    self.rounds.remove(&peer_id);
                    self.settled.remove(&peer_id);
                    self.again.remove(&peer_id);
                    self.fetches.remove(&peer_id);
                    self.addrs.remove(&peer_id);
                    self.rtt.remove(&peer_id);
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
                // One peer's share is bounded, and a bounded number of listings
                // from others wait to be checked (each peer keeps a few places in
                // the queue): past either, a listing is dropped unchecked (ignored,
                // so its sender loses no score), which keeps a flood from queueing
                // unbounded work or crowding out other peers. Listings claiming an
                // author this node has dealt with skip the second bound, and are
                // checked on a thread of their own and indexed at once: a flood of
                // others' listings does not hold them up.
                let favoured = self.host.favoured(&message.data);
                let (counter, why) = if !self.gossip_rate.take(propagation_source, Instant::now()) {
                    (Some(&self.stats.gossip_rate_limited), "their peer sent more than its rate")
                } else if !favoured && !self.room_to_check(&propagation_source) {
                    (Some(&self.stats.gossip_dropped), "too many being checked at once")
                } else {
                    (None, "")
                };
                if let Some(counter) = counter {
                    let dropped = counter.fetch_add(1, Ordering::Relaxed) + 1;
                    if dropped.is_power_of_two() {
                        tracing::warn!(dropped, "gossip listings dropped unchecked: {why}");
                    }
                    let _ = self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        MessageAcceptance::Ignore,
                    );
                    return;
                }
                let data = message.data;
                let stats = self.stats.clone();
                self.validating += 1;
                *self.checking.entry(propagation_source).or_default() += 1;
                let received = Instant::now();
                let work = move |host: &dyn Host| {
                    let started = received.elapsed();
                    let ingested = host.ingest(&data);
                    let (acceptance, counter) = match ingested {
                        Ingest::New(pack) => {
                            if favoured {
                                let stored = received.elapsed();
                                host.index_now(&pack);
                                tracing::debug!(
                                    %pack,
                                    "a listing by an author dealt with: checked after {started:?}, \
                                     stored after {stored:?}, indexed after {:?}",
                                    received.elapsed()
                                );
                            }
                            (MessageAcceptance::Accept, &stats.gossip_new)
                        }
                        Ingest::Old(_) => (MessageAcceptance::Ignore, &stats.gossip_stale),
                        Ingest::Invalid(reason) => {
                            tracing::debug!("invalid listing from {propagation_source}: {reason}");
                            (MessageAcceptance::Reject, &stats.gossip_invalid)
                        }
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    Some(Done::Validated { id: message_id, source: propagation_source, acceptance })
                };
                // Listings of authors dealt with on a thread of their own; others
                // on the gossip pool's few threads.
                if favoured {
                    self.blocking(work);
                } else {
                    self.in_background(&self.checks, work);
                }
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::SlowPeer { peer_id, failed_messages }) => {
                let failed = (failed_messages.priority + failed_messages.non_priority) as u64;
                let before = self.stats.gossip_unsent.fetch_add(failed, Ordering::Relaxed);
                let after = before + failed;
                // Said when the count passes a power of two, not once per message.
                if failed > 0 && (before == 0 || before.ilog2() != after.ilog2()) {
                    tracing::warn!(
                        unsent = after,
                        %peer_id,
                        "gossip messages not sent: the peer's send queue was full (a slow peer)"
                    );
                }
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                self.observed_at(&info.observed_addr);
                if info.protocols.contains(&relay::HOP_PROTOCOL_NAME) {
                    self.hop_peers.insert(peer_id);
                    self.use_relay(peer_id);
                }
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
            BehaviourEvent::Kad(kad::Event::RoutingUpdated { .. }) => self.start_waiting_lookups(),
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
            event @ (BehaviourEvent::Ping(_)
            | BehaviourEvent::Autonat(_)
            | BehaviourEvent::RelayClient(_)
            | BehaviourEvent::Dcutr(_)
            | BehaviourEvent::Relay(_)) => self.on_nat_event(event),
            BehaviourEvent::Sync(request_response::Event::OutboundFailure {
                request_id,
                peer,
                error,
                ..
            }) => {
                tracing::debug!("sync request to {peer} failed: {error}");
                match self.pending.remove(&request_id) {
                    Some((peer, Pending::Reconcile)) => {
                        self.round_failed(peer);
                        self.reconciling.remove(&peer);
                        self.round_over(peer);
                    }
                    Some((peer, Pending::Fetch(_))) => {
                        self.stats.fetches_failed.fetch_add(1, Ordering::Relaxed);
                        self.round_failed(peer);
                        self.fetch_done(peer);
                    }
                    _ => {}
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
        if !matches!(request, SyncRequest::Hello { .. }) && !self.sync_rate.take(peer, Instant::now()) {
            let limited = self.stats.sync_rate_limited.fetch_add(1, Ordering::Relaxed) + 1;
            if limited.is_power_of_two() {
                tracing::warn!(limited, %peer, "sync requests refused: this peer asks more than its rate");
            }
            let refused = SyncResponse::Refused("busy: too many sync requests; ask again later".into());
            let _ = self.swarm.behaviour_mut().sync.send_response(channel, refused);
            return;
        }
        match request {
            SyncRequest::Hello { iroh, relay, home } => {
                self.greet(peer, iroh, relay, home);
                let (relay, home) = self.host.iroh_relays();
                let reply = SyncResponse::Hello { iroh: self.iroh_addrs(), relay, home };
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
                let stats = self.stats.clone();
                self.blocking(move |host| {
                    // Envelopes in the order asked, as many as fit the byte budget
                    // (no more are read); the requester asks again for the rest.
                    let (envelopes, deferred) = host.envelopes(&ids, ANSWER_BUDGET);
                    let bytes: usize = envelopes.iter().map(Vec::len).sum();
                    stats.answers.fetch_add(1, Ordering::Relaxed);
                    stats.answer_bytes_max.fetch_max(bytes as u64, Ordering::Relaxed);
                    stats.answer_deferred.fetch_add(deferred as u64, Ordering::Relaxed);
                    let envelopes = envelopes.into_iter().map(ByteBuf::from).collect();
                    Some(Done::Respond { channel, response: SyncResponse::Envelopes(envelopes) })
                })
            }
            SyncRequest::Announce(envelope) => self.on_announce(peer, envelope.into_vec(), channel),
        }
    }

    /// Refuses an announced listing, counted. The peer is not banned: a node
    /// whose clock runs ahead announces listings dated in the future in good faith,
    /// and the sync rate bounds what the refusals cost.
    fn refuse_announce(&mut self, peer: PeerId, channel: ResponseChannel<SyncResponse>, why: &str) {
        let refused = self.stats.announces_refused.fetch_add(1, Ordering::Relaxed) + 1;
        if refused.is_power_of_two() {
            tracing::warn!(refused, %peer, "announced listings refused: {why}");
        }
        let _ = self.swarm.behaviour_mut().sync.send_response(channel, SyncResponse::Refused(why.into()));
    }

    /// A listing `peer` signed itself, sent straight to us: checked like one from
    /// gossip, with the same ahead-of-the-flood treatment for authors dealt with,
    /// and gossiped on when new (its gossip copy, when it comes, is then a
    /// duplicate: it is not lost for the peers behind us).
    fn on_announce(&mut self, peer: PeerId, envelope: Vec<u8>, channel: ResponseChannel<SyncResponse>) {
        let own = Envelope::claimed_signer(&envelope).and_then(|signer| peer_id_of(&signer)) == Some(peer);
        if !own {
            self.refuse_announce(peer, channel, "a node announces only listings it signed");
            return;
        }
        let favoured = self.host.favoured(&envelope);
        let stats = self.stats.clone();
        let received = Instant::now();
        let work = move |host: &dyn Host| {
            let (gossip, invalid) = match host.ingest(&envelope) {
                Ingest::New(pack) => {
                    if favoured {
                        let stored = received.elapsed();
                        host.index_now(&pack);
                        tracing::debug!(
                            %pack,
                            "a listing announced by an author dealt with: stored after {stored:?}, \
                             indexed after {:?}",
                            received.elapsed()
                        );
                    }
                    stats.announced_new.fetch_add(1, Ordering::Relaxed);
                    (Some(envelope), false)
                }
                Ingest::Old(_) => (None, false),
                Ingest::Invalid(reason) => {
                    tracing::debug!("invalid listing announced by {peer}: {reason}");
                    (None, true)
                }
            };
            Some(Done::Announced { peer, channel, gossip, invalid })
        };
        if favoured {
            self.blocking(work);
        } else {
            self.in_background(&self.checks, work);
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

    /// Tells `peer` our data-plane addresses and relays.
    fn send_hello(&mut self, peer: PeerId) {
        let (relay, home) = self.host.iroh_relays();
        let hello = SyncRequest::Hello { iroh: self.iroh_addrs(), relay, home };
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, hello);
        self.pending.insert(id, (peer, Pending::Hello));
    }

    /// Greets every peer again when the relays our Hello names changed (our
    /// endpoint's home relay, or the relay we run), so that they use the new ones.
    fn tell_relays(&mut self) {
        let relays = self.host.iroh_relays();
        if relays == self.told_relays {
            return;
        }
        if let Some(home) = &relays.1 {
            tracing::info!("the data plane is reachable through the iroh relay {}", home.url);
        }
        self.told_relays = relays;
        let peers: Vec<PeerId> = self.greeted.iter().copied().collect();
        for peer in peers {
            self.send_hello(peer);
        }
    }

    fn greet(
        &mut self,
        peer: PeerId,
        iroh: Vec<SocketAddr>,
        relay: Option<RelayOffer>,
        home: Option<RelayHome>,
    ) {
        // A peer's own relay is at the address we reach that peer at directly.
        if let Some(relay) = relay {
            let direct = self.addrs.get(&peer).into_iter().flatten().filter(|a| !is_relayed(a));
            if let Some(ip) = direct.filter_map(ip_of).next() {
                let url = crate::transfer::relay_url(SocketAddr::new(ip, relay.port));
                self.host.learned_relay(url, relay.cert);
            }
        }
        if let Some(node) = node_id_of(&peer) {
            self.host.learned_iroh(node, iroh.into_iter().take(16).collect(), home);
            // Met through a relay only: both of us are probably behind NATs, and
            // both send to the other's iroh addresses now, as DCUtR does for libp2p.
            let relayed_only =
                self.addrs.get(&peer).is_some_and(|a| !a.is_empty() && a.iter().all(is_relayed));
            if relayed_only {
                self.punch(peer, "met through a relay");
            }
        }
        // A relay is reached directly: talking to it from the data plane's socket
        // too gives that socket its mapping in our NAT before any punch crosses a
        // peer's (a NAT that has no mapping for a port when a peer's packet comes
        // keeps that packet's flow, and then maps our answer to another port).
        if self.relays.contains_key(&peer) {
            self.punch(peer, "a relay");
        }
        if self.greeted.insert(peer) {
            self.start_reconcile(peer);
        }
        for waiter in self.connect_waiters.remove(&peer).unwrap_or_default() {
            let _ = waiter.send(true);
        }
    }

    /// Remembers listings fetched from `peer` and not taken, within [`MAX_PASSED`].
    fn remember_passed(&mut self, peer: PeerId, items: Vec<Item>) {
        if items.is_empty() {
            return;
        }
        let held: usize = self.passed.values().map(|p| p.versions.len()).sum();
        let passed = self.passed.entry(peer).or_insert_with(|| Passed::new(SETTLED_FOR));
        passed.passed_again();
        for item in items.into_iter().take(MAX_PASSED.saturating_sub(held)) {
            let version = passed.versions.entry(item.id).or_default();
            *version = (*version).max(item.version);
        }
    }

    /// The ids of `need` without the listings fetched from `peer` before, at the
    /// same version, and not taken: a newer version is fetched.
    fn not_passed(&mut self, peer: PeerId, need: Vec<Item>) -> Vec<PackId> {
        let Some(passed) = self.passed.get(&peer) else {
            return need.into_iter().map(|item| item.id).collect();
        };
        let before = need.len();
        let need: Vec<PackId> = need
            .into_iter()
            .filter(|item| passed.versions.get(&item.id).is_none_or(|passed| *passed < item.version))
            .map(|item| item.id)
            .collect();
        let skipped = before - need.len();
        if skipped > 0 {
            tracing::debug!(
                "not fetching {skipped} listings from {peer} again: fetched before and not taken"
            );
            self.stats.fetches_skipped.fetch_add(skipped as u64, Ordering::Relaxed);
        }
        need
    }

    /// Lets each peer's listings not taken lapse once they are due, and ends its
    /// settled round, so that its next round fetches them once more.
    fn forget_passed(&mut self) {
        for peer in passed::lapse(&mut self.passed, SETTLED_FOR) {
            self.settled.remove(&peer);
        }
    }

    /// Whether `answer` is the first of a round with `peer` and the same as the
    /// first of its last settled round (within [`SETTLED_FOR`]); the round's first
    /// answer is recorded either way.
    fn unchanged_since_settled(&mut self, peer: PeerId, answer: &[u8]) -> bool {
        let Some(round) = self.rounds.get_mut(&peer).filter(|r| r.first_answer.is_none()) else {
            return false;
        };
        let hash = blake3::hash(answer);
        round.first_answer = Some(hash);
        self.settled.get(&peer).is_some_and(|(settled, at)| *settled == hash && at.elapsed() < SETTLED_FOR)
    }

    fn on_response(&mut self, peer: PeerId, request_id: OutboundRequestId, response: SyncResponse) {
        let Some((_, pending)) = self.pending.remove(&request_id) else { return };
        match (pending, response) {
            (Pending::Hello, SyncResponse::Hello { iroh, relay, home }) => {
                self.greet(peer, iroh, relay, home)
            }
            (Pending::Reconcile, SyncResponse::Reconcile(Some(message))) => {
                self.count(message.len());
                if self.unchanged_since_settled(peer, &message) {
                    self.stats.rounds_settled.fetch_add(1, Ordering::Relaxed);
                    // Settled when it was; this round does not renew that.
                    self.rounds.remove(&peer);
                    self.reconciling.remove(&peer);
                    self.round_over(peer);
                    return;
                }
                self.blocking(move |host| {
                    let items = host.sync_items();
                    match smpl_protocol::sync::respond(&items, &message) {
                        Ok((next, need)) => Some(Done::Reconciled { peer, next, need }),
                        Err(e) => {
                            tracing::debug!("bad reconciliation message from {peer}: {e}");
                            Some(Done::BadReconcile { peer })
                        }
                    }
                })
            }
            (Pending::Reconcile, SyncResponse::Reconcile(None)) => {
                self.reconciling.remove(&peer);
                self.round_over(peer);
            }
            (Pending::Reconcile, _) => {
                self.round_failed(peer);
                self.reconciling.remove(&peer);
                self.round_over(peer);
            }
            (Pending::Fetch(asked), SyncResponse::Envelopes(envelopes)) => {
                self.stats.fetched.fetch_add(envelopes.len() as u64, Ordering::Relaxed);
                // An answer stops at its byte budget: when it came near it, ask at
                // once for the ids after the last one it carried.
                let bytes: usize = envelopes.iter().map(|e| e.len()).sum();
                let last = envelopes.last().and_then(|e| listing_id(e));
                let at = last.and_then(|last| asked.iter().position(|id| *id == last));
                if let Some(at) =
                    at.filter(|at| at + 1 < asked.len() && bytes + MAX_ENVELOPE_BYTES > ANSWER_BUDGET)
                {
                    // Next in line, asked when a fetch in flight ends.
                    self.fetches.entry(peer).or_default().waiting.push_front(asked[at + 1..].to_vec());
                }
                let stats = self.stats.clone();
                self.in_background(&self.ingest, move |host| {
                    let (mut invalid, mut passed) = (false, Vec::new());
                    for envelope in envelopes.into_iter().take(MAX_FETCH_IDS) {
                        match host.ingest(&envelope) {
                            Ingest::New(_) => {}
                            Ingest::Old(item) => {
                                stats.fetched_stale.fetch_add(1, Ordering::Relaxed);
                                passed.push(item);
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
                    Some(Done::Fetched { peer, invalid, passed })
                })
            }
            (Pending::Announce, SyncResponse::Refused(reason)) => {
                tracing::debug!("{peer} refused the listing this node announced: {reason}")
            }
            (Pending::Announce, _) => {}
            (Pending::Fetch(_), other) => {
                tracing::debug!("unexpected answer to a fetch from {peer}: {other:?}");
                self.round_failed(peer);
                self.fetch_done(peer);
            }
            (_, other) => tracing::debug!("unexpected sync answer from {peer}: {other:?}"),
        }
    }
}
