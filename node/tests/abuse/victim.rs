//! The victim: a real node that holds one pack by another author, and the state that
//! no bad listing may change.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use libp2p::PeerId;
use smpl_node::net::{Network, SyncStats};
use smpl_node::{Home, Multiaddr, Node};
use smpl_protocol::sync::Item;
use smpl_protocol::{Identity, PackId, Signed};
use tokio::time::timeout;

use crate::listings::manifest;
use crate::{HELD_SEQ, SLUG, STEP, TITLE, common};

/// The node under attack, and the pack it holds.
pub struct Victim {
    pub node: Arc<Node>,
    pub addr: Multiaddr,
    pub peer: PeerId,
    /// The author of the pack the victim holds (a test identity, not the victim).
    pub author: Identity,
    pub pack: PackId,
}

/// What must not change: stored packs and seqs, indexed packs and seqs, the sync
/// items, and the bytes of the held listing.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub stored: Vec<(PackId, u64)>,
    pub indexed: Vec<(PackId, u64)>,
    pub items: Vec<Item>,
    pub envelope: Vec<Vec<u8>>,
}

impl Victim {
    pub async fn start(root: &Path) -> Victim {
        let options = common::options(Home::new(root.join("victim")), &[], Default::default());
        let node = timeout(STEP, Node::start(&options)).await.expect("victim start timed out").unwrap();
        // The victim holds one pack by another author, at seq HELD_SEQ, ingested as a
        // listing from the network would be, and indexed.
        let author = Identity::from_secret_bytes([0xa7; 32]);
        let held = manifest(&author.node_id(), SLUG, HELD_SEQ, TITLE);
        let envelope = held.sign(&author).unwrap();
        assert_eq!(node.store().accept_manifest(&held, &envelope, true).unwrap(), smpl_node::Accepted::New);
        timeout(STEP, node.flush_index()).await.expect("indexing timed out");
        let network = node.network().expect("the victim runs a network");
        let peer = network.peer_id();
        let addr = common::addr(&node).await;
        Victim { node: Arc::new(node), addr, peer, author, pack: held.pack_id }
    }

    pub fn network(&self) -> &Network {
        self.node.network().expect("the victim runs a network")
    }

    pub fn stats(&self) -> &SyncStats {
        self.network().stats()
    }

    pub async fn snapshot(&self) -> Snapshot {
        timeout(STEP, self.node.flush_index()).await.expect("indexing timed out");
        let store = self.node.store();
        Snapshot {
            stored: store.pack_seqs().unwrap(),
            indexed: self.node.index().packs().unwrap(),
            items: store.sync_items().unwrap().to_vec(),
            envelope: store.envelopes(&[self.pack], usize::MAX).unwrap().0,
        }
    }

    /// Checks the index agrees with the store and nothing waits in the index queue.
    pub async fn assert_consistent(&self) {
        let report = timeout(STEP, self.node.check()).await.expect("check timed out").unwrap();
        assert!(report.index_mismatch.is_empty() && report.queued == 0, "{report:?}");
        assert_eq!((report.packs, report.indexed), (1, 1), "{report:?}");
    }

    pub async fn shutdown(self) {
        let node = Arc::try_unwrap(self.node).ok().expect("the probe still holds the victim");
        timeout(STEP, node.shutdown()).await.expect("victim shutdown timed out");
    }
}

pub fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}
