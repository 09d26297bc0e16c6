//! Listings from the network: the node's side of [`net::Host`](crate::net::Host).
//! Every listing goes through [`ingest`] whichever way it came (gossip or sync):
//! limits and signature first, then decoding, then the store decides whether it is
//! newer than what we hold.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use libp2p::Multiaddr;
use smpl_protocol::sync::Item;
use smpl_protocol::{Envelope, Kind, Manifest, NodeId, PackId, Retraction, Signed};

use crate::indexer::IndexerHandle;
use crate::net::wire::{TradeRequest, TradeResponse};
use crate::net::{Host, Ingest};
use crate::store::{Accepted, Store};
use crate::trade::Trade;
use crate::transfer::Transfer;

/// Verifies and stores one signed listing from the network.
pub fn ingest(store: &Store, bytes: &[u8]) -> Ingest {
    let envelope = match Envelope::open(bytes) {
        Ok(envelope) => envelope,
        Err(e) => return Ingest::Invalid(e.to_string()),
    };
    let (pack, accepted) = match envelope.kind() {
        Kind::Manifest => match Manifest::from_envelope(&envelope) {
            Ok(m) => (m.pack_id, store.accept_manifest(&m, &envelope, false)),
            Err(e) => return Ingest::Invalid(e.to_string()),
        },
        Kind::Retraction => match Retraction::from_envelope(&envelope) {
            Ok(r) => (r.pack_id, store.accept_retraction(&r, &envelope, false)),
            Err(e) => return Ingest::Invalid(e.to_string()),
        },
        other => return Ingest::Invalid(format!("a {other} is not a listing")),
    };
    match accepted {
        Ok(Accepted::New) => Ingest::New(pack),
        Ok(_) => Ingest::Old,
        Err(e) => {
            tracing::error!("storing listing {pack} failed: {e}");
            Ingest::Old
        }
    }
}

pub struct NodeHost {
    pub store: Store,
    pub indexer: IndexerHandle,
    pub transfer: Arc<Transfer>,
    pub trade: Trade,
}

impl Host for NodeHost {
    fn ingest(&self, envelope: &[u8]) -> Ingest {
        let result = ingest(&self.store, envelope);
        if matches!(result, Ingest::New(_)) {
            self.indexer.wake();
        }
        result
    }

    fn sync_items(&self) -> Vec<Item> {
        self.store.sync_items().unwrap_or_else(|e| {
            tracing::error!("listing items for sync failed: {e}");
            Vec::new()
        })
    }

    fn envelopes(&self, ids: &[PackId]) -> Vec<Vec<u8>> {
        self.store.envelopes(ids).unwrap_or_else(|e| {
            tracing::error!("reading envelopes for sync failed: {e}");
            Vec::new()
        })
    }

    fn iroh_addrs(&self) -> Vec<SocketAddr> {
        self.transfer.local_addrs()
    }

    fn learned_iroh(&self, node: NodeId, addrs: Vec<SocketAddr>) {
        self.transfer.add_peer(node, addrs);
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
        self.trade.answer(peer, request)
    }

    fn remember_peer(&self, addr: &Multiaddr) {
        if let Err(e) = self.store.remember_peer(&addr.to_string()) {
            tracing::warn!("remembering peer {addr} failed: {e}");
        }
    }
}
