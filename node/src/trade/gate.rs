//! The paid-content gate: which peer may fetch which blob from this node.
//!
//! **Deny by default.** A blob is served only on the strength of its *provenance*:
//! how it came to be stored here, recorded in sled (`provenance/v1`) before anyone
//! can ask for it, and never derived from whatever manifest names it later. The
//! sources ([`Source`]):
//!
//! - published by this node, free or paid (which pack, which content);
//! - downloaded as part of a free pack (only blobs that were *not* here before the
//!   download: bytes already held under other terms do not become free because a
//!   new listing names them);
//! - held under a licence (pack, content, seller), whether the bytes arrived with
//!   it or were here already;
//! - a preview clip.
//!
//! The rule ([`LicenseGate::verdict`]): a blob goes to anyone when one of its sources
//! is free *and* none is a licence this node holds, nor a paid pack of its own
//! (unless this node also published it free itself: the author gave it away). Any
//! other blob with a paid source goes to the seller of that source and to a peer
//! granted that (seller, content) by a licence it presented. A blob with no source
//! goes to nobody.
//!
//! Grants (`grants/v1`) come from licence tokens a peer presented, checked against
//! its authenticated key, and are kept only for content this node holds for that
//! seller; each peer keeps at most [`MAX_GRANTS_PER_PEER`], the node at most
//! [`MAX_GRANTS`], the oldest evicted first. They survive restarts.
//!
//! Lookups are sled point reads and short prefix scans: the gate runs on the
//! provider's event task for every requested hash.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use smpl_protocol::{BlobHash, NodeId, PackId};

use crate::store::{Store, StoreError};
use crate::transfer::ServeGate;

/// Grants one peer may hold; past it its oldest grant goes.
pub const MAX_GRANTS_PER_PEER: usize = 256;
/// Grants the node keeps in all; past it the oldest grant goes.
pub const MAX_GRANTS: usize = 100_000;

/// How a blob came to be stored here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// Part of a free pack this node published.
    PublishedFree = 1,
    /// Part of a paid pack this node published.
    PublishedPaid = 2,
    /// Arrived in a download of a free pack.
    DownloadedFree = 3,
    /// Held under a licence this node holds as buyer.
    Licensed = 4,
    /// A preview clip (always free).
    Preview = 5,
}

impl Source {
    fn from_byte(b: u8) -> Option<Source> {
        Some(match b {
            1 => Source::PublishedFree,
            2 => Source::PublishedPaid,
            3 => Source::DownloadedFree,
            4 => Source::Licensed,
            5 => Source::Preview,
            _ => return None,
        })
    }

    fn is_paid(self) -> bool {
        matches!(self, Source::PublishedPaid | Source::Licensed)
    }
}

/// One reason a blob is stored here: the source and the pack terms it came with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    pub source: Source,
    pub pack: PackId,
    /// The content (collection root) of the pack version.
    pub content: BlobHash,
    /// Who may sign licences for it: the pack's author.
    pub seller: NodeId,
}

/// What the records of one blob allow.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Anyone may fetch it.
    pub free: bool,
    /// (seller, content) pairs whose licence holders (and seller) may fetch it.
    pub paid: Vec<(NodeId, BlobHash)>,
}

/// Key: blob (32) ‖ source (1) ‖ pack (16) ‖ content (32); value: seller (32).
fn record_key(hash: &BlobHash, origin: &Origin) -> Vec<u8> {
    let mut key = Vec::with_capacity(81);
    key.extend_from_slice(&hash.0);
    key.push(origin.source as u8);
    key.extend_from_slice(&origin.pack.0);
    key.extend_from_slice(&origin.content.0);
    key
}

fn decode_record(key: &[u8], value: &[u8]) -> Option<Origin> {
    if key.len() != 81 || value.len() != 32 {
        return None;
    }
    Some(Origin {
        source: Source::from_byte(key[32])?,
        pack: PackId(key[33..49].try_into().ok()?),
        content: BlobHash(key[49..81].try_into().ok()?),
        seller: NodeId(value.try_into().ok()?),
    })
}

/// Key: peer (32) ‖ seller (32) ‖ content (32); value: its position in `order`.
fn grant_key(peer: &NodeId, seller: &NodeId, content: &BlobHash) -> [u8; 96] {
    let mut key = [0u8; 96];
    key[..32].copy_from_slice(&peer.0);
    key[32..64].copy_from_slice(&seller.0);
    key[64..].copy_from_slice(&content.0);
    key
}

/// The gate; cheap to clone, shared with the transfer's provider.
#[derive(Clone)]
pub struct LicenseGate {
    db: sled::Db,
    records: sled::Tree,
    grants: sled::Tree,
    /// Grant order id (big-endian, increasing) → grant key: the eviction order.
    order: sled::Tree,
    stats: Arc<GateStats>,
}

/// What the gate decided since the node started.
#[derive(Debug, Default)]
pub struct GateStats {
    /// Licences presented to this node, and those kept as grants.
    pub presented: AtomicU64,
    pub granted: AtomicU64,
    /// Blob reads refused (per requested hash).
    pub refused: AtomicU64,
}

fn storage(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unreadable(format!("provenance: {e}"))
}

impl LicenseGate {
    pub fn open(store: &Store) -> Result<LicenseGate, StoreError> {
        let db = store.db().clone();
        Ok(LicenseGate {
            records: db.open_tree("provenance/v1")?,
            grants: db.open_tree("grants/v1")?,
            order: db.open_tree("grant-order/v1")?,
            stats: Arc::default(),
            db,
        })
    }

    pub fn stats(&self) -> &GateStats {
        &self.stats
    }

    /// Whether no provenance was ever recorded (a new or an older home).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Records that `hashes` are stored here because of `origin`, durably.
    pub fn record(&self, hashes: &[BlobHash], origin: &Origin) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for hash in hashes {
            batch.insert(record_key(hash, origin), &origin.seller.0);
        }
        self.records.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Every source recorded for `hash`.
    pub fn origins(&self, hash: &BlobHash) -> Result<Vec<Origin>, StoreError> {
        let mut origins = Vec::new();
        for item in self.records.scan_prefix(hash.0) {
            let (k, v) = item?;
            match decode_record(&k, &v) {
                Some(origin) => origins.push(origin),
                None => tracing::warn!(%hash, "skipping an unreadable provenance record"),
            }
        }
        Ok(origins)
    }

    /// What the recorded sources of `hash` allow (see the module docs).
    pub fn verdict(&self, hash: &BlobHash) -> Result<Verdict, StoreError> {
        let origins = self.origins(hash)?;
        let has = |s: Source| origins.iter().any(|o| o.source == s);
        let given_away = has(Source::PublishedFree) || has(Source::DownloadedFree) || has(Source::Preview);
        let free = given_away
            && !has(Source::Licensed)
            && (!has(Source::PublishedPaid) || has(Source::PublishedFree));
        let paid = origins.iter().filter(|o| o.source.is_paid()).map(|o| (o.seller, o.content)).collect();
        Ok(Verdict { free, paid })
    }

    /// Whether every one of `hashes` may be served under the terms of a pack by
    /// `seller` with `content`: to anyone (`free`), or to that pack's licence holders.
    pub fn servable(&self, hashes: &[BlobHash], free: bool, seller: &NodeId, content: &BlobHash) -> bool {
        hashes.iter().all(|hash| match self.verdict(hash) {
            Ok(v) if free => v.free,
            Ok(v) => v.free || v.paid.contains(&(*seller, *content)),
            Err(e) => {
                tracing::error!("reading the provenance of {hash} failed: {e}");
                false
            }
        })
    }

    /// Whether this node holds `content` under a paid source of `seller`'s: the
    /// condition for keeping a grant for it.
    pub fn holds_paid(&self, content: &BlobHash, seller: &NodeId) -> Result<bool, StoreError> {
        Ok(self
            .origins(content)?
            .iter()
            .any(|o| o.source.is_paid() && o.content == *content && o.seller == *seller))
    }

    /// Lets `peer` fetch `seller`'s `content`. The caller has verified a licence
    /// token that covers it and that `peer` (authenticated by the transport) is
    /// its buyer. Returns false, keeping nothing, when this node does not hold
    /// that content for that seller.
    pub fn grant(&self, peer: NodeId, seller: &NodeId, content: &BlobHash) -> Result<bool, StoreError> {
        self.stats.presented.fetch_add(1, Ordering::Relaxed);
        if !self.holds_paid(content, seller)? {
            return Ok(false);
        }
        let key = grant_key(&peer, seller, content);
        let position = self.db.generate_id()?.to_be_bytes();
        // Over the per-peer cap, the peer's oldest grant makes room.
        let mut evict: Option<(Vec<u8>, Vec<u8>)> = None;
        let mut count = 0;
        for item in self.grants.scan_prefix(peer.0) {
            let (k, v) = item?;
            if *k == key[..] {
                continue;
            }
            count += 1;
            if evict.as_ref().is_none_or(|(_, old)| v[..] < old[..]) {
                evict = Some((k.to_vec(), v.to_vec()));
            }
        }
        let evict = evict.filter(|_| count >= MAX_GRANTS_PER_PEER);
        (&self.grants, &self.order)
            .transaction(|(grants, order)| {
                if let Some(old) = grants.insert(&key[..], &position[..])? {
                    order.remove(old)?;
                }
                order.insert(&position[..], &key[..])?;
                if let Some((k, v)) = &evict {
                    grants.remove(k.as_slice())?;
                    order.remove(v.as_slice())?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Abort(e) => e,
                sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
            })?;
        // Over the total, the oldest grants of all go.
        while self.grants.len() > MAX_GRANTS {
            let Some((position, key)) = self.order.pop_min()? else { break };
            if self.grants.get(&key)?.is_some_and(|p| p == position) {
                self.grants.remove(&key)?;
            }
        }
        self.db.flush()?;
        self.stats.granted.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    fn granted(&self, peer: &NodeId, seller: &NodeId, content: &BlobHash) -> bool {
        self.grants.contains_key(grant_key(peer, seller, content)).unwrap_or(false)
    }

    /// Drops the records of blobs that are no longer stored (after a garbage
    /// collection), except those in `keep` (downloads under way record their
    /// blobs before they arrive). Returns how many records went.
    pub fn prune(
        &self,
        stored: impl Fn(&BlobHash) -> bool,
        keep: &HashSet<BlobHash>,
    ) -> Result<usize, StoreError> {
        let mut batch = sled::Batch::default();
        let mut removed = 0;
        let mut last: Option<(BlobHash, bool)> = None;
        for item in self.records.iter().keys() {
            let key = item?;
            let Ok(bytes) = <[u8; 32]>::try_from(&key[..32.min(key.len())]) else {
                batch.remove(key);
                continue;
            };
            let hash = BlobHash(bytes);
            let gone = match last {
                Some((h, gone)) if h == hash => gone,
                _ => {
                    let gone = !keep.contains(&hash) && !stored(&hash);
                    last = Some((hash, gone));
                    gone
                }
            };
            if gone {
                batch.remove(key);
                removed += 1;
            }
        }
        self.records.apply_batch(batch).map_err(storage)?;
        if removed > 0 {
            self.db.flush()?;
        }
        Ok(removed)
    }
}

impl ServeGate for LicenseGate {
    fn allow(&self, peer: NodeId, hash: &BlobHash) -> bool {
        let verdict = match self.verdict(hash) {
            Ok(verdict) => verdict,
            Err(e) => {
                tracing::error!("reading the provenance of {hash} failed, refusing it: {e}");
                return false;
            }
        };
        let allowed = verdict.free
            || verdict
                .paid
                .iter()
                .any(|(seller, content)| *seller == peer || self.granted(&peer, seller, content));
        if !allowed {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: u8) -> NodeId {
        NodeId([n; 32])
    }

    fn hash(n: u8) -> BlobHash {
        BlobHash([n; 32])
    }

    fn origin(source: Source, content: u8, seller: u8) -> Origin {
        Origin { source, pack: PackId([content; 16]), content: hash(content), seller: node(seller) }
    }

    fn gate() -> (tempfile::TempDir, LicenseGate) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        (dir, LicenseGate::open(&store).unwrap())
    }

    #[test]
    fn unknown_blobs_go_to_nobody() {
        let (_dir, gate) = gate();
        assert!(!gate.allow(node(1), &hash(9)));
    }

    #[test]
    fn a_later_free_listing_does_not_free_licensed_or_own_paid_bytes() {
        let (_dir, gate) = gate();
        // Bytes held under a licence from seller 1 for content 10.
        gate.record(&[hash(50)], &origin(Source::Licensed, 10, 1)).unwrap();
        // A forged free pack (content 20, "author" 3) names them; suppose it was
        // even recorded as downloaded free.
        gate.record(&[hash(50)], &origin(Source::DownloadedFree, 20, 3)).unwrap();
        assert!(!gate.allow(node(4), &hash(50)), "a stranger");
        assert!(gate.allow(node(1), &hash(50)), "the seller");
        assert!(!gate.servable(&[hash(50)], true, &node(3), &hash(20)));

        // Our own paid pack, named by someone else's free listing.
        gate.record(&[hash(60)], &origin(Source::PublishedPaid, 30, 9)).unwrap();
        gate.record(&[hash(60)], &origin(Source::DownloadedFree, 40, 3)).unwrap();
        assert!(!gate.allow(node(4), &hash(60)));
        // The author itself giving it away in a free pack does free it.
        gate.record(&[hash(60)], &origin(Source::PublishedFree, 41, 9)).unwrap();
        assert!(gate.allow(node(4), &hash(60)));
    }

    #[test]
    fn free_and_preview_blobs_go_to_anyone() {
        let (_dir, gate) = gate();
        gate.record(&[hash(1), hash(2)], &origin(Source::DownloadedFree, 10, 1)).unwrap();
        gate.record(&[hash(3)], &origin(Source::Preview, 11, 1)).unwrap();
        for h in [1, 2, 3] {
            assert!(gate.allow(node(8), &hash(h)));
        }
        assert!(gate.servable(&[hash(1), hash(2)], true, &node(1), &hash(10)));
        assert!(!gate.servable(&[hash(1), hash(4)], true, &node(1), &hash(10)));
    }

    #[test]
    fn grants_need_held_content_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(&dir.path().join("db")).unwrap();
            let gate = LicenseGate::open(&store).unwrap();
            gate.record(&[hash(10), hash(11)], &origin(Source::Licensed, 10, 1)).unwrap();
            assert!(!gate.allow(node(5), &hash(11)));
            assert!(!gate.grant(node(5), &node(1), &hash(12)).unwrap(), "content not held here");
            assert!(!gate.grant(node(5), &node(2), &hash(10)).unwrap(), "held for another seller");
            assert!(gate.grant(node(5), &node(1), &hash(10)).unwrap());
            assert!(gate.allow(node(5), &hash(11)));
            assert!(!gate.allow(node(6), &hash(11)));
        }
        let store = Store::open(&dir.path().join("db")).unwrap();
        let gate = LicenseGate::open(&store).unwrap();
        assert!(gate.allow(node(5), &hash(11)), "grants survive a restart");
    }

    #[test]
    fn each_peer_keeps_a_bounded_number_of_grants() {
        let (_dir, gate) = gate();
        let n = MAX_GRANTS_PER_PEER + 3;
        for i in 0..n {
            let content = BlobHash(blake3::hash(&(i as u64).to_be_bytes()).into());
            let o = Origin { source: Source::Licensed, pack: PackId([1; 16]), content, seller: node(1) };
            gate.record(&[content], &o).unwrap();
            assert!(gate.grant(node(5), &node(1), &content).unwrap());
        }
        assert_eq!(gate.grants.scan_prefix(node(5).0).count(), MAX_GRANTS_PER_PEER);
        let first = BlobHash(blake3::hash(&0u64.to_be_bytes()).into());
        let last = BlobHash(blake3::hash(&((n - 1) as u64).to_be_bytes()).into());
        assert!(!gate.allow(node(5), &first), "the oldest grant was evicted");
        assert!(gate.allow(node(5), &last));
        assert_eq!(gate.order.len(), gate.grants.len(), "the eviction order has no strays");
    }

    #[test]
    fn prune_drops_records_of_deleted_blobs_but_not_downloads_under_way() {
        let (_dir, gate) = gate();
        gate.record(&[hash(1), hash(2), hash(3)], &origin(Source::DownloadedFree, 10, 1)).unwrap();
        let keep = HashSet::from([hash(3)]);
        let removed = gate.prune(|h| *h == hash(1), &keep).unwrap();
        assert_eq!(removed, 1);
        assert!(gate.allow(node(2), &hash(1)));
        assert!(!gate.allow(node(2), &hash(2)));
        assert!(gate.allow(node(2), &hash(3)));
    }
}
