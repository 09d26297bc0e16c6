//! The paid-content gate: which peer may fetch which blob from this node.
//!
//! Every node that holds a paid pack (its author, and every buyer that fetched it)
//! installs a [`LicenseGate`] as its [`ServeGate`]. The gate knows, in memory, the
//! blobs of the paid packs this node holds or is about to hold ([`LicenseGate::register`]
//! runs before the first blob is stored or any listing names them) and which peers
//! showed a valid license for which content ([`LicenseGate::grant`], after the
//! token was verified against the presenting peer's authenticated key).
//!
//! A blob of a paid pack goes to the pack's author and to a peer granted that
//! pack's content by that author's license; anything else stored here (free packs,
//! previews, collection metadata) goes to anyone. A blob that is also part of a
//! free pack held here is free: somebody gave it away already.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use smpl_protocol::{BlobHash, LicenseToken, Manifest, NodeId};

use crate::transfer::ServeGate;

/// The most grants kept; past it all are forgotten (a buyer presents its license
/// again before every fetch, so forgetting costs one round trip).
const MAX_GRANTS: usize = 100_000;

/// A paid pack's content and who may sign licenses for it.
type Owner = (BlobHash, NodeId);

#[derive(Default)]
struct State {
    /// Blob → the paid contents (and their authors) it belongs to.
    paid: HashMap<BlobHash, Vec<Owner>>,
    /// Blobs of free packs held here.
    free: HashSet<BlobHash>,
    /// Peer → contents it showed a license for, in the order granted.
    grants: HashMap<NodeId, Vec<Owner>>,
    granted: usize,
}

/// The gate; cheap to clone, shared with the transfer's provider.
#[derive(Clone, Default)]
pub struct LicenseGate(Arc<RwLock<State>>);

impl LicenseGate {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records the blobs of a pack this node holds or is about to fetch.
    pub fn register(&self, manifest: &Manifest) {
        let mut state = self.write();
        let hashes = std::iter::once(manifest.content).chain(manifest.samples.iter().map(|s| s.hash));
        if manifest.is_free() {
            state.free.extend(hashes);
            return;
        }
        let owner = (manifest.content, manifest.author);
        for hash in hashes {
            let owners = state.paid.entry(hash).or_default();
            if !owners.contains(&owner) {
                owners.push(owner);
            }
        }
    }

    /// Lets `peer` fetch the content `token` licenses. The caller has verified the
    /// token and that `peer` (authenticated by the transport) is its buyer.
    pub fn grant(&self, peer: NodeId, token: &LicenseToken) {
        let mut state = self.write();
        if state.granted >= MAX_GRANTS {
            state.grants.clear();
            state.granted = 0;
        }
        let owner = (token.content, token.seller);
        let grants = state.grants.entry(peer).or_default();
        if !grants.contains(&owner) {
            grants.push(owner);
            state.granted += 1;
        }
    }
}

impl ServeGate for LicenseGate {
    fn allow(&self, peer: NodeId, hash: &BlobHash) -> bool {
        let state = self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(owners) = state.paid.get(hash) else { return true };
        if state.free.contains(hash) {
            return true;
        }
        let grants = state.grants.get(&peer);
        owners.iter().any(|owner| owner.1 == peer || grants.is_some_and(|g| g.contains(owner)))
    }
}
