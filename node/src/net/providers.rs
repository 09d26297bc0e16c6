//! The DHT's record store, with separate room for this node's own provider
//! records and for those other peers announce.
//!
//! libp2p's `MemoryStore` caps provider keys in one count for both, so peers that
//! announce enough keys would fill it, after which this node's own
//! `start_providing` fails. Here the node's own records live in a `MemoryStore`
//! sized for every pack a node may hold, and remote ones in a table of their own
//! with a smaller cap ([`MAX_REMOTE_KEYS`]); a remote record past it is dropped
//! and counted ([`ProviderStore::dropped`]). The remote table keeps a key's
//! providers in a plain list, and at most [`MAX_ADDRESSES`] addresses of each:
//! `MemoryStore` sets room for 20 providers aside for every key, about 4 KB a key,
//! so 100,000 keys of strangers took 400 MB or more (about 100 MB now). Expired
//! remote records go when their key is looked up (libp2p removes them), and all
//! at once when the table is full ([`SWEEP_EVERY`]). Value records are not used
//! by smpl and not kept.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::kad::store::{Error, MemoryStore, MemoryStoreConfig, RecordStore, Result};
use libp2p::kad::{K_VALUE, ProviderRecord, Record, RecordKey};

/// Keys this node may provide itself (one per pack it holds).
pub const MAX_OWN_KEYS: usize = 1_000_000;
/// Keys other peers' provider records may take here.
pub const MAX_REMOTE_KEYS: usize = 100_000;
/// Addresses kept of a remote provider: a record may carry as many as fit a
/// 16 KiB message, and a peer dials one that answers.
pub const MAX_ADDRESSES: usize = 4;
/// While the remote table is full, expired records are swept out at most this
/// often before a new key is dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub struct ProviderStore {
    local: PeerId,
    own: MemoryStore,
    remote: HashMap<RecordKey, Vec<ProviderRecord>>,
    remote_keys: usize,
    swept: Option<Instant>,
    /// Remote provider records dropped because [`MAX_REMOTE_KEYS`] were kept.
    pub dropped: Arc<AtomicU64>,
}

impl ProviderStore {
    pub fn new(local: PeerId, remote_keys: usize) -> ProviderStore {
        let config =
            MemoryStoreConfig { max_provided_keys: MAX_OWN_KEYS, max_records: 0, ..Default::default() };
        ProviderStore {
            local,
            own: MemoryStore::with_config(local, config),
            remote: HashMap::new(),
            remote_keys,
            swept: None,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Whether a new remote key fits, once expired records are swept out if the
    /// table is full and the last sweep is old enough.
    fn room_for_a_key(&mut self) -> bool {
        if self.remote.len() < self.remote_keys {
            return true;
        }
        let now = Instant::now();
        if self.swept.is_some_and(|at| now.duration_since(at) < SWEEP_EVERY) {
            return false;
        }
        self.swept = Some(now);
        self.remote.retain(|_, providers| {
            providers.retain(|p| !p.is_expired(now));
            !providers.is_empty()
        });
        self.remote.len() < self.remote_keys
    }

    fn add_remote(&mut self, mut record: ProviderRecord) {
        tracing::debug!(provider = %record.provider, addrs = ?record.addresses, "storing a provider record");
        record.addresses.truncate(MAX_ADDRESSES);
        if !self.remote.contains_key(&record.key) && !self.room_for_a_key() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped,
                    "provider records of other peers dropped: {} keys kept",
                    self.remote_keys
                );
            }
            return;
        }
        let providers = self.remote.entry(record.key.clone()).or_default();
        if let Some(known) = providers.iter_mut().find(|p| p.provider == record.provider) {
            *known = record;
        } else if providers.len() < K_VALUE.get() {
            providers.push(record);
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
        self.add_remote(record);
        Ok(())
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        let mut all = self.own.providers(key);
        all.extend(self.remote.get(key).into_iter().flatten().cloned());
        all
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        self.own.provided()
    }

    fn remove_provider(&mut self, key: &RecordKey, provider: &PeerId) {
        if *provider == self.local {
            self.own.remove_provider(key, provider);
        } else if let Some(providers) = self.remote.get_mut(key) {
            providers.retain(|p| p.provider != *provider);
            if providers.is_empty() {
                self.remote.remove(key);
            }
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

    #[test]
    fn a_remote_record_keeps_a_few_addresses_and_a_key_a_bounded_list_of_providers() {
        let mut store = ProviderStore::new(PeerId::random(), 10);
        let stranger = PeerId::random();
        let mut many = record(1, stranger);
        many.addresses =
            (0..500u16).map(|port| format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()).collect();
        store.add_provider(many).unwrap();
        let kept = store.providers(&RecordKey::new(&1u64.to_be_bytes()));
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].addresses.len(), MAX_ADDRESSES);

        // The same provider again replaces its record; past K_VALUE providers a key
        // takes no more.
        store.add_provider(record(1, stranger)).unwrap();
        assert!(store.providers(&RecordKey::new(&1u64.to_be_bytes()))[0].addresses.is_empty());
        for _ in 0..50 {
            store.add_provider(record(1, PeerId::random())).unwrap();
        }
        assert_eq!(store.providers(&RecordKey::new(&1u64.to_be_bytes())).len(), K_VALUE.get());
        store.remove_provider(&RecordKey::new(&1u64.to_be_bytes()), &stranger);
        assert_eq!(store.providers(&RecordKey::new(&1u64.to_be_bytes())).len(), K_VALUE.get() - 1);
    }

    #[test]
    fn a_full_remote_part_makes_room_by_sweeping_out_expired_records() {
        let mut store = ProviderStore::new(PeerId::random(), 10);
        let stranger = PeerId::random();
        for key in 0..10u64 {
            let mut expired = record(key, stranger);
            expired.expires = Some(Instant::now());
            store.add_provider(expired).unwrap();
        }
        // Full of expired records: the next key sweeps them out and fits.
        store.add_provider(record(100, stranger)).unwrap();
        assert_eq!(store.dropped.load(Ordering::Relaxed), 0);
        assert_eq!(store.remote.len(), 1);
        for key in 101..120u64 {
            store.add_provider(record(key, stranger)).unwrap();
        }
        // Full of live ones: the rest are dropped and counted.
        assert_eq!(store.remote.len(), 10);
        assert_eq!(store.dropped.load(Ordering::Relaxed), 10);
    }
}
