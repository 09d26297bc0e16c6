//! The DHT's record store, with separate room for this node's own provider
//! records and for those other peers announce.
//!
//! libp2p's `MemoryStore` caps provider keys in one count for both, so peers that
//! announce enough keys would fill it, after which this node's own
//! `start_providing` fails. Here the node's own records live in one store, sized
//! for every pack a node may hold, and remote ones in another with a smaller cap
//! ([`MAX_REMOTE_KEYS`]); a remote record past it is dropped and counted
//! ([`ProviderStore::dropped`]). Value records are not used by smpl and not kept.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use libp2p::PeerId;
use libp2p::kad::store::{Error, MemoryStore, MemoryStoreConfig, RecordStore, Result};
use libp2p::kad::{ProviderRecord, Record, RecordKey};

/// Keys this node may provide itself (one per pack it holds).
pub const MAX_OWN_KEYS: usize = 1_000_000;
/// Keys other peers' provider records may take here.
pub const MAX_REMOTE_KEYS: usize = 100_000;

pub struct ProviderStore {
    local: PeerId,
    own: MemoryStore,
    remote: MemoryStore,
    /// Remote provider records dropped because [`MAX_REMOTE_KEYS`] were kept.
    pub dropped: Arc<AtomicU64>,
}

impl ProviderStore {
    pub fn new(local: PeerId, remote_keys: usize) -> ProviderStore {
        let config =
            |keys| MemoryStoreConfig { max_provided_keys: keys, max_records: 0, ..Default::default() };
        ProviderStore {
            local,
            own: MemoryStore::with_config(local, config(MAX_OWN_KEYS)),
            remote: MemoryStore::with_config(local, config(remote_keys)),
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl RecordStore for ProviderStore {
    type RecordsIter<'a> = std::iter::Empty<Cow<'a, Record>>;
    type ProvidedIter<'a> = <MemoryStore as RecordStore>::ProvidedIter<'a>;

    fn get(&self, _: &RecordKey) -> Option<Cow<'_, Record>> {
        None
    }

    fn put(&mut self, _: Record) -> Result<()> {
        Err(Error::MaxRecords)
    }

    fn remove(&mut self, _: &RecordKey) {}

    fn records(&self) -> Self::RecordsIter<'_> {
        std::iter::empty()
    }

    fn add_provider(&mut self, record: ProviderRecord) -> Result<()> {
        if record.provider == self.local {
            return self.own.add_provider(record);
        }
        tracing::debug!(provider = %record.provider, addrs = ?record.addresses, "storing a provider record");
        match self.remote.add_provider(record) {
            Err(Error::MaxProvidedKeys) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        dropped,
                        "provider records of other peers dropped: {MAX_REMOTE_KEYS} keys kept"
                    );
                }
                Ok(())
            }
            other => other,
        }
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        let mut all = self.own.providers(key);
        all.extend(self.remote.providers(key));
        all
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        self.own.provided()
    }

    fn remove_provider(&mut self, key: &RecordKey, provider: &PeerId) {
        if *provider == self.local {
            self.own.remove_provider(key, provider);
        } else {
            self.remote.remove_provider(key, provider);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: u64, provider: PeerId) -> ProviderRecord {
        ProviderRecord::new(RecordKey::new(&key.to_be_bytes()), provider, Vec::new())
    }

    /// 2,000,000 records from others against the node's own cap.
    #[test]
    fn a_full_remote_part_leaves_room_for_this_nodes_own_records() {
        let local = PeerId::random();
        let mut store = ProviderStore::new(local, MAX_REMOTE_KEYS);
        let strangers: Vec<PeerId> = (0..20).map(|_| PeerId::random()).collect();
        for key in 0..2_000_000u64 {
            store.add_provider(record(key, strangers[(key % 20) as usize])).unwrap();
        }
        assert_eq!(store.dropped.load(Ordering::Relaxed), 2_000_000 - MAX_REMOTE_KEYS as u64);
        for key in 0..3_000u64 {
            store.add_provider(record(10_000_000 + key, local)).unwrap();
        }
        assert_eq!(store.provided().count(), 3_000);
        assert_eq!(store.providers(&RecordKey::new(&10_000_500u64.to_be_bytes())).len(), 1);
        assert_eq!(store.providers(&RecordKey::new(&10u64.to_be_bytes())).len(), 1);
        store.remove_provider(&RecordKey::new(&10_000_500u64.to_be_bytes()), &local);
        assert_eq!(store.provided().count(), 2_999);
    }
}
