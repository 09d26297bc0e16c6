//! The network's port into the node: the [`Host`] trait is all the swarm actor
//! needs from the rest of the node, and [`NodeHost`] implements it over the
//! store, the blob store, the indexer, the iroh data plane and the trade ledger.
//!
//! Gossip validation lives here: every listing goes through [`ingest`] whichever
//! way it came (gossip or sync): limits and signature first, then decoding, then
//! the store decides whether it is newer than what we hold.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use libp2p::Multiaddr;
use serde_bytes::ByteBuf;
use smpl_protocol::sync::Item;
use smpl_protocol::{BlobHash, Envelope, Kind, Manifest, NodeId, PackId, Retraction, Signed};

use super::wire::{RelayHome, RelayOffer, TradeRequest, TradeResponse};
use crate::blobs::Blobs;
use crate::budget::Budget;
use crate::indexer::IndexerHandle;
use crate::store::{Accepted, Store};
use crate::trade::Trade;
use crate::transfer::Transfer;

/// What happened to a listing offered by the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ingest {
    /// Verified and newer than what we had: stored, and worth forwarding.
    New(PackId),
    /// Verified but not newer (a replay, or a version we already have), or not
    /// stored (over the budget): the listing's pack and version.
    Old(Item),
    /// Refused: forged, malformed or over the limits.
    Invalid(String),
}

/// What the network needs from the rest of the node. Methods may block (they run
/// on blocking threads).
pub trait Host: Send + Sync + 'static {
    /// Verifies and stores one signed listing (manifest or retraction).
    fn ingest(&self, envelope: &[u8]) -> Ingest;
    /// Whether a listing, not yet checked, claims to be by this node or an author
    /// it has dealt with: such listings are checked (and indexed) ahead of a flood
    /// of others. A false claim fails the signature check like any forgery.
    fn favoured(&self, _envelope: &[u8]) -> bool {
        false
    }
    /// Indexes a stored listing at once, ahead of the index queue.
    fn index_now(&self, _pack: &PackId) {}
    /// Every listing this node holds, as reconciliation items sorted by id.
    fn sync_items(&self) -> Arc<Vec<Item>>;
    /// The stored envelopes (manifest or retraction) of `ids`, in order, within
    /// `max_bytes`; and how many of `ids` were left for a later answer
    /// ([`Store::envelopes`]).
    fn envelopes(&self, ids: &[PackId], max_bytes: usize) -> (Vec<Vec<u8>>, usize);
    /// Our iroh data-plane addresses.
    fn iroh_addrs(&self) -> Vec<SocketAddr>;
    /// The iroh relay we run for peers, and the relay our endpoint is homed at.
    fn iroh_relays(&self) -> (Option<RelayOffer>, Option<RelayHome>) {
        (None, None)
    }
    /// Peers saw this node at these public IP addresses: where the data plane is
    /// probably reachable behind a home router.
    fn public_ips(&self, _ips: &[std::net::IpAddr]) {}
    /// A peer told us its iroh addresses, and the relay it is homed at.
    fn learned_iroh(&self, node: NodeId, addrs: Vec<SocketAddr>, home: Option<RelayHome>);
    /// A peer runs an iroh relay at `url`: a relay our endpoint may use.
    fn learned_relay(&self, _url: String, _cert: [u8; 32]) {}
    /// This node is publicly reachable: start the data plane's relay for others.
    fn serve_relay(&self) {}
    /// We met `node` through a relay: send to its iroh addresses now, so that the
    /// NAT in front of us lets its packets in when it connects (the data plane's
    /// hole punching, coordinated over libp2p).
    fn punch(&self, _node: NodeId) {}
    /// Addresses of peers met before, to rejoin after a restart.
    fn remembered_peers(&self) -> Vec<Multiaddr>;
    fn remember_peer(&self, addr: &Multiaddr);
    /// Answers a purchase order or license presentation from `peer`.
    fn trade(&self, peer: NodeId, request: TradeRequest) -> TradeResponse;
}

/// How far in the future a listing's time may be (clocks differ a little); a
/// later one would pin its pack at the top of "newest", and is refused.
pub const MAX_CLOCK_SKEW_SECS: u64 = 5 * 60;

/// Storing a listing from the network that takes longer is logged (at debug:
/// under a flood the checks run on lowered threads and wait for a core).
const SLOW_STORE: Duration = Duration::from_secs(1);

/// Refuses a listing dated more than [`MAX_CLOCK_SKEW_SECS`] after `now`.
fn check_time(what: &str, at: u64, now: u64) -> Result<(), String> {
    if at > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(format!("the {what} is dated {} s in the future", at - now));
    }
    Ok(())
}

/// Verifies and stores one signed listing from the network, within the listing
/// budget: a listing whose author is over its budget is dropped like a stale one
/// (not forwarded, the sender not penalised: it may only be passing it on), and
/// storing one may evict others.
pub fn ingest(store: &Store, budget: &Budget, bytes: &[u8]) -> Ingest {
    let envelope = match Envelope::open(bytes) {
        Ok(envelope) => envelope,
        Err(e) => return Ingest::Invalid(e.to_string()),
    };
    let (item, accepted) = match envelope.kind() {
        Kind::Manifest => match Manifest::from_envelope(&envelope) {
            Ok(m) => {
                if let Err(reason) = check_time("manifest", m.created_at, crate::util::now()) {
                    return Ingest::Invalid(reason);
                }
                let started = Instant::now();
                if let Err(reason) = budget.admit(&m, bytes.len()) {
                    tracing::debug!(pack = %m.pack_id, "listing not stored: {reason}");
                    return Ingest::Old(Item::manifest(m.pack_id, m.seq));
                }
                let admitted = started.elapsed();
                let accepted = store.accept_manifest(&m, &envelope, false);
                let stored = started.elapsed();
                if matches!(accepted, Ok(Accepted::New)) {
                    if budget.dealt_with(&m.author) {
                        budget.stored_unless_busy(&m, bytes.len());
                    } else {
                        budget.stored(&m, bytes.len());
                        if let Err(e) = budget.evict() {
                            tracing::error!("evicting listings over the budget failed: {e}");
                        }
                    }
                }
                let took = started.elapsed();
                if took > SLOW_STORE {
                    tracing::debug!(
                        pack = %m.pack_id,
                        "storing a listing was slow: admitted after {admitted:?}, stored after \
                         {stored:?}, counted and others evicted after {took:?}"
                    );
                }
                (Item::manifest(m.pack_id, m.seq), accepted)
            }
            Err(e) => return Ingest::Invalid(e.to_string()),
        },
        Kind::Retraction => match Retraction::from_envelope(&envelope) {
            Ok(r) => match check_time("retraction", r.retracted_at, crate::util::now()) {
                Ok(()) => {
                    let accepted = store.accept_retraction(&r, &envelope, false);
                    if matches!(accepted, Ok(Accepted::New)) {
                        budget.removed(&r.author, &r.pack_id);
                    }
                    (Item::retraction(r.pack_id, r.seq), accepted)
                }
                Err(reason) => return Ingest::Invalid(reason),
            },
            Err(e) => return Ingest::Invalid(e.to_string()),
        },
        other => return Ingest::Invalid(format!("a {other} is not a listing")),
    };
    match accepted {
        Ok(Accepted::New) => Ingest::New(item.id),
        Ok(_) => Ingest::Old(item),
        Err(e) => {
            tracing::error!("storing listing {} failed: {e}", item.id);
            Ingest::Old(item)
        }
    }
}

/// The node as the network sees it: what [`Network::start`](super::Network::start)
/// is given by the node's facade.
pub struct NodeHost {
    pub store: Store,
    pub budget: Arc<Budget>,
    pub blobs: Blobs,
    pub indexer: IndexerHandle,
    pub transfer: Arc<Transfer>,
    /// Bytes a second each peer may send through our iroh relay.
    pub relay_rate: u32,
    pub trade: Trade,
    /// Possession proofs being computed; each reads a whole blob.
    pub proving: AtomicUsize,
    /// The node's runtime, where the relay tasks and possession proofs run: the
    /// swarm calls from a runtime of its own.
    pub runtime: tokio::runtime::Handle,
}

/// Possession proofs computed at once; more are refused as busy.
const MAX_PROOFS: usize = 2;

impl NodeHost {
    /// Shows `peer` that this node holds `blob` (see [`smpl_protocol::possession`]):
    /// only for a blob the gate has a record of, stored whole.
    fn prove(&self, peer: NodeId, blob: BlobHash, chunk: u64) -> TradeResponse {
        if self.proving.fetch_add(1, Ordering::SeqCst) >= MAX_PROOFS {
            self.proving.fetch_sub(1, Ordering::SeqCst);
            tracing::info!(%peer, "refused a possession proof: busy");
            return TradeResponse::Refused("busy; ask again later".into());
        }
        let held = self.trade.gate().origins(&blob).map(|o| !o.is_empty()).unwrap_or(false);
        let proof = if held { self.runtime.block_on(self.blobs.prove(&blob, chunk)) } else { Ok(None) };
        self.proving.fetch_sub(1, Ordering::SeqCst);
        match proof {
            Ok(Some(hashes)) => {
                TradeResponse::Proof(hashes.into_iter().map(|h| ByteBuf::from(h.to_vec())).collect())
            }
            Ok(None) => TradeResponse::Refused(format!("this node does not hold {blob} whole")),
            Err(e) => {
                tracing::warn!("proving possession of {blob} for {peer} failed: {e}");
                TradeResponse::Refused(format!("cannot prove possession of {blob}"))
            }
        }
    }
}

impl Host for NodeHost {
    fn ingest(&self, envelope: &[u8]) -> Ingest {
        let result = ingest(&self.store, &self.budget, envelope);
        if matches!(result, Ingest::New(_)) {
            self.indexer.wake();
        }
        result
    }

    fn index_now(&self, pack: &PackId) {
        self.indexer.index_now(pack);
    }

    fn favoured(&self, envelope: &[u8]) -> bool {
        Envelope::claimed_signer(envelope).is_some_and(|author| self.budget.dealt_with(&author))
    }

    fn sync_items(&self) -> Arc<Vec<Item>> {
        self.store.sync_items().unwrap_or_else(|e| {
            tracing::error!("listing items for sync failed: {e}");
            Arc::default()
        })
    }

    fn envelopes(&self, ids: &[PackId], max_bytes: usize) -> (Vec<Vec<u8>>, usize) {
        self.store.envelopes(ids, max_bytes).unwrap_or_else(|e| {
            tracing::error!("reading envelopes for sync failed: {e}");
            (Vec::new(), 0)
        })
    }

    fn iroh_addrs(&self) -> Vec<SocketAddr> {
        self.transfer.local_addrs()
    }

    fn public_ips(&self, ips: &[std::net::IpAddr]) {
        self.transfer.set_public_ips(ips);
    }

    fn iroh_relays(&self) -> (Option<RelayOffer>, Option<RelayHome>) {
        let offer = self.transfer.own_relay().map(|(port, cert)| RelayOffer { port, cert });
        let home = self.transfer.home_relay().map(|(url, cert)| RelayHome { url, cert });
        (offer, home)
    }

    fn learned_iroh(&self, node: NodeId, addrs: Vec<SocketAddr>, home: Option<RelayHome>) {
        if let Some(home) = &home {
            self.transfer.pin_relay(&home.url, home.cert);
        }
        self.transfer.add_peer(node, addrs, home.as_ref().map(|h| h.url.as_str()));
    }

    fn serve_relay(&self) {
        let (transfer, rate) = (self.transfer.clone(), self.relay_rate);
        self.runtime.spawn(async move {
            if let Err(e) = transfer.serve_relay(rate).await {
                tracing::warn!("cannot start the iroh relay for peers: {e}");
            }
        });
    }

    fn learned_relay(&self, url: String, cert: [u8; 32]) {
        let transfer = self.transfer.clone();
        self.runtime.spawn(async move {
            if let Err(e) = transfer.use_relay(&url, cert).await {
                tracing::warn!("cannot use the iroh relay a peer offered: {e}");
            }
        });
    }

    fn punch(&self, node: NodeId) {
        self.transfer.punch(node);
    }

    fn remembered_peers(&self) -> Vec<Multiaddr> {
        self.store
            .remembered_peers()
            .unwrap_or_default()
            .iter()
            .filter_map(|a| Multiaddr::from_str(a).ok())
            .collect()
    }

    fn trade(&self, peer: NodeId, request: TradeRequest) -> TradeResponse {
        match request {
            TradeRequest::Prove { blob, chunk } => self.prove(peer, blob, chunk),
            request => self.trade.answer(peer, request),
        }
    }

    fn remember_peer(&self, addr: &Multiaddr) {
        if let Err(e) = self.store.remember_peer(&addr.to_string()) {
            tracing::warn!("remembering peer {addr} failed: {e}");
        }
    }
}
