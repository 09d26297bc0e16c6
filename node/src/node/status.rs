//! What the node dropped or refused since it started, in one place: every input
//! it does not take is counted somewhere, and `smpl status`, `/v1/status` and the
//! web app's network page show the counts from here.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::{Node, NodeError};
use crate::transfer::RelayBytes;

/// The counts, each since the node started.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Dropped {
    /// Gossip listings that failed their checks (their senders lose score).
    pub gossip_invalid: u64,
    /// Gossip listings dropped unchecked while the validation queue was full,
    /// and because their peer sent more than its rate.
    pub gossip_unchecked: u64,
    pub gossip_rate_limited: u64,
    /// Gossip messages not sent because their peer's send queue was full.
    #[serde(default)]
    pub gossip_unsent: u64,
    /// Gossip listings checked too late to forward: gossip had let them go.
    #[serde(default)]
    pub gossip_unforwarded: u64,
    /// Sync requests refused because their peer asked more than its rate.
    pub sync_rate_limited: u64,
    /// Listings peers announced that were refused: not signed by the peer, or
    /// failing their checks.
    #[serde(default)]
    pub announces_refused: u64,
    /// Listings in sync answers refused as invalid.
    pub sync_invalid: u64,
    /// Peers banned for invalid listings.
    pub peers_banned: u64,
    /// Listings refused because their author was over its budget, and listings
    /// evicted to keep the total within the budget.
    pub listings_refused: u64,
    pub listings_evicted: u64,
    /// Records of declined and evicted listings forgotten to keep them within
    /// the budget's share for them: those listings may be fetched again.
    #[serde(default)]
    pub declined_forgotten: u64,
    /// Blob reads refused by the paid-content gate.
    pub blob_reads_refused: u64,
    /// Orders told to come back later: every payment hook slot taken, or their
    /// peer over the order rate.
    pub orders_busy: u64,
    pub orders_rate_limited: u64,
    /// Orders rejected before they were kept (`smpl sales --refused` lists them).
    pub orders_refused: u64,
    /// Other peers' DHT provider records dropped: their share was full.
    #[serde(default)]
    pub provider_records_dropped: u64,
}

/// Listing sync since the node started.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncCounts {
    /// Listings taken from peers' `Fetch` answers, and fetches of ours that
    /// failed (the peer went, or its answer could not be read).
    pub fetched: u64,
    pub fetches_failed: u64,
    /// `Fetch` answers this node sent, the bytes of listings in the largest, and
    /// the ids asked for that they left for a later answer to stay within the
    /// answer's limit.
    pub answers: u64,
    pub answer_bytes_max: u64,
    pub answer_deferred: u64,
}

/// The node's state at a glance.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    pub node_id: String,
    /// Listings (pack versions) stored, and how many wait to be indexed.
    pub listings: usize,
    pub index_queue: usize,
    pub dropped: Dropped,
    #[serde(default)]
    pub sync: SyncCounts,
    /// Data-plane bytes through iroh relays: sent and received by this node,
    /// and forwarded for others by the relay it runs (`--relay-server`).
    #[serde(default)]
    pub relay_bytes: RelayBytes,
}

impl Node {
    /// What was dropped or refused since the node started.
    pub fn dropped(&self) -> Dropped {
        let n = |v: &AtomicU64| v.load(Ordering::Relaxed);
        let mut dropped = Dropped {
            listings_refused: n(&self.budget.stats.refused),
            listings_evicted: n(&self.budget.stats.evicted),
            declined_forgotten: n(&self.budget.stats.forgotten),
            blob_reads_refused: n(&self.gate_stats().refused),
            orders_busy: n(&self.trade.busy),
            orders_rate_limited: n(&self.trade.rate_limited),
            orders_refused: n(&self.trade.refused),
            ..Dropped::default()
        };
        if let Some(network) = self.network() {
            let stats = network.stats();
            dropped.gossip_invalid = n(&stats.gossip_invalid);
            dropped.gossip_unchecked = n(&stats.gossip_dropped);
            dropped.gossip_rate_limited = n(&stats.gossip_rate_limited);
            dropped.gossip_unsent = n(&stats.gossip_unsent);
            dropped.gossip_unforwarded = n(&stats.gossip_unforwarded);
            dropped.sync_rate_limited = n(&stats.sync_rate_limited);
            dropped.announces_refused = n(&stats.announces_refused);
            dropped.sync_invalid = n(&stats.fetched_invalid);
            dropped.peers_banned = n(&stats.banned);
            dropped.provider_records_dropped = n(&stats.provider_records_dropped);
        }
        dropped
    }

    /// Listing sync since the node started.
    pub fn sync_counts(&self) -> SyncCounts {
        let Some(network) = self.network() else { return SyncCounts::default() };
        let stats = network.stats();
        let n = |v: &AtomicU64| v.load(Ordering::Relaxed);
        SyncCounts {
            fetched: n(&stats.fetched),
            fetches_failed: n(&stats.fetches_failed),
            answers: n(&stats.answers),
            answer_bytes_max: n(&stats.answer_bytes_max),
            answer_deferred: n(&stats.answer_deferred),
        }
    }

    pub async fn status(&self) -> Result<Status, NodeError> {
        let store = self.store.clone();
        let listings = tokio::task::spawn_blocking(move || store.pack_seqs().map(|p| p.len())).await??;
        Ok(Status {
            node_id: self.node_id().to_string(),
            listings,
            index_queue: self.store.queue_len(),
            dropped: self.dropped(),
            sync: self.sync_counts(),
            relay_bytes: self.transfer().map(|t| t.relay_bytes()).unwrap_or_default(),
        })
    }

    /// The orders rejected before they were kept, newest first.
    pub async fn refused_orders(&self) -> Result<Vec<crate::trade::RefusedOrder>, NodeError> {
        let trade = self.trade.clone();
        Ok(tokio::task::spawn_blocking(move || trade.refused_orders()).await??)
    }
}
