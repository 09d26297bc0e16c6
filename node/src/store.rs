//! Metadata storage in sled: manifests, retractions, settings and the durable index
//! queue. Everything sled-specific stays in this module; the manifests' envelopes
//! are files beside it ([`files`]).
//!
//! Trees (names carry a version):
//! - `manifests/v1`: pack id → seq (8 bytes, big-endian): the current version,
//!   whose envelope is the file `envelopes/<..>/<pack id>-<seq>`. A store written
//!   before the files kept the envelope in the value, after the seq, and such
//!   records are still read.
//! - `retractions/v1`: pack id → seq ++ the retraction envelope (small, kept here)
//! - `settings/v1`: name → value
//! - `peers/v1`: multiaddr of a peer met before → nothing
//! - `index-queue/v1`: queue id (u64, big-endian) → pack id. The indexer reads the
//!   pack's current state when it drains an entry, so entries are idempotent.
//! - `evicted/v1`: no longer written; a store that has it gives its records to
//!   the table of declined listings when it opens.
//! - `updates/v1`: author → when (unix seconds, u64 big-endian each) it replaced
//!   listings stored here with new versions in the last day, so the budget's
//!   per-author update count survives a restart.
//!
//! Beside the trees, the file `declined-v1` ([`declined`]) holds pack id → seq
//! (and a tag of the author) of each listing dropped to stay within the listing
//! budget, or declined by it (`budget.rs`): that version and older ones are not
//! stored again, and reconciliation counts them as held, so peers do not send them
//! again, until the node comes to deal with their author
//! ([`Store::undecline_author`]). They are written and forgotten as fast as a
//! flood comes, which sled's file does not follow.
//!
//! A stored envelope is the original envelope bytes, compressed with zstd when
//! that is smaller (it starts with zstd's magic or with the envelope's own `SMPL`).
//!
//! Accepting a manifest or retraction and enqueueing it for the indexer is one sled
//! transaction, flushed before the caller is told it succeeded when it is the
//! node's own; a manifest's file is written (and for the node's own, synced)
//! before that transaction, and the file of the version it replaces removed after.

mod declined;
mod files;

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{Transactional, Tree};
use smpl_protocol::sync::Item;
use smpl_protocol::{Envelope, Manifest, NodeId, PackId, ProtocolError, Retraction, Signed};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metadata database error: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored record for pack {pack} is unreadable: {source}")]
    Corrupt {
        pack: PackId,
        #[source]
        source: ProtocolError,
    },
    #[error("stored record is unreadable: {0}")]
    Unreadable(String),
    #[error("listing file: {0}")]
    File(#[from] std::io::Error),
    #[error("declined listings' table: {0}")]
    Declined(#[source] std::io::Error),
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(e: TransactionError<StoreError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Sled(e),
        }
    }
}

/// Peer addresses remembered at most.
pub const MAX_REMEMBERED_PEERS: usize = 256;

/// What happened to an offered manifest or retraction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Stored and queued for the index.
    New,
    /// We already hold this or a newer version.
    Stale,
    /// The pack was retracted at this or a higher seq.
    Retracted,
}

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    manifests: Tree,
    /// Per stored manifest: its seq, author and envelope length (48 bytes), so that
    /// counting listings at start and reconciling read no envelopes.
    listings: Tree,
    retractions: Tree,
    settings: Tree,
    peers: Tree,
    queue: Tree,
    updates: Tree,
    /// The reconciliation items, kept between reconciliations until a listing
    /// changes.
    items: Arc<ItemCache>,
    /// The listings declined or evicted.
    declined: Arc<declined::DeclinedTable>,
    /// The manifests' envelopes.
    files: Arc<files::EnvelopeFiles>,
}

/// [`Store::sync_items`]'s last answer, valid while `changes` has not moved.
#[derive(Default)]
struct ItemCache {
    /// Bumped after every write to the trees the items come from.
    changes: AtomicU64,
    built: Mutex<Option<(u64, Arc<Vec<Item>>)>>,
}

fn seq_of(value: &[u8]) -> u64 {
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&value[..8]);
    u64::from_be_bytes(seq)
}

/// A `listings` value: seq, author, envelope length.
fn summary(seq: u64, author: &NodeId, len: usize) -> [u8; 48] {
    let mut value = [0u8; 48];
    value[..8].copy_from_slice(&seq.to_be_bytes());
    value[8..40].copy_from_slice(&author.0);
    value[40..].copy_from_slice(&(len as u64).to_be_bytes());
    value
}

/// The `listings` value of a stored envelope.
fn summary_of_envelope(seq: u64, envelope: &[u8]) -> Option<[u8; 48]> {
    Some(summary(seq, &Envelope::claimed_signer(envelope)?, envelope.len()))
}

/// A `manifests` value of exactly a seq: its envelope is in a file.
fn in_file(value: &[u8]) -> bool {
    value.len() == 8
}

/// The first bytes of a zstd frame; an envelope starts with `SMPL`, so a record
/// says which of the two it holds.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// zstd's level for stored envelopes: about a third of their size (JSON with hex
/// fields) at a fraction of a millisecond per pack.
const ZSTD_LEVEL: i32 = 3;

/// Storing a manifest that takes longer says where its time went (at debug).
const SLOW_STORE: Duration = Duration::from_secs(1);

/// An envelope as stored: compressed with zstd when that makes it smaller
/// (envelopes written before compression are plain, and read as they are).
fn encode(envelope: &Envelope) -> Vec<u8> {
    let raw = envelope.as_bytes();
    match zstd::bulk::compress(raw, ZSTD_LEVEL) {
        Ok(packed) if packed.len() < raw.len() => packed,
        _ => raw.to_vec(),
    }
}

/// A `retractions` value: seq, then the stored envelope.
fn record(seq: u64, envelope: &Envelope) -> Vec<u8> {
    let mut value = seq.to_be_bytes().to_vec();
    value.extend_from_slice(&encode(envelope));
    value
}

/// The envelope bytes of a record that holds its envelope.
fn envelope_of(value: &[u8]) -> Result<Cow<'_, [u8]>, ProtocolError> {
    decode_envelope(value.get(8..).ok_or(ProtocolError::Malformed("stored record shorter than its seq"))?)
}

/// The envelope bytes of a stored envelope.
fn decode_envelope(body: &[u8]) -> Result<Cow<'_, [u8]>, ProtocolError> {
    if !body.starts_with(&ZSTD_MAGIC) {
        return Ok(Cow::Borrowed(body));
    }
    let limit = smpl_protocol::limits::MAX_ENVELOPE_BYTES + 4096;
    zstd::bulk::decompress(body, limit)
        .map(Cow::Owned)
        .map_err(|_| ProtocolError::Malformed("stored record does not decompress"))
}

/// How long opening waits for the database's lock. The last handle of a store
/// closed in this process releases it only once sled's own threads let go of
/// the database, a moment later; another process holding it fails the open when
/// the wait is over.
const LOCK_WAIT: Duration = Duration::from_secs(2);

fn open_db(dir: &Path, cache_bytes: u64) -> Result<sled::Db, sled::Error> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new().path(dir).cache_capacity(cache_bytes).open() {
            Err(e) if is_locked(&e) && Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            opened => return opened,
        }
    }
}

/// Whether `e` says that another handle holds the database's lock (sled 0.34
/// reports it as an `Other` I/O error with this text).
pub(crate) fn is_locked(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock
        || io.to_string().contains("could not acquire lock"))
}

impl Store {
    /// Opens the store with the default page cache
    /// ([`MemoryConfig`](crate::home::MemoryConfig)'s).
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with_cache(dir, crate::home::MemoryConfig::default().store_cache_mb << 20)
    }

    /// Opens the store with a page cache of `cache_bytes` (sled's default, 1 GiB,
    /// would hold most of a large catalogue in memory).
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        let db = open_db(dir, cache_bytes)?;
        let files = files::EnvelopeFiles::open(&dir.join("envelopes"))?;
        let store = Store {
            manifests: db.open_tree("manifests/v1")?,
            listings: db.open_tree("listings/v1")?,
            retractions: db.open_tree("retractions/v1")?,
            settings: db.open_tree("settings/v1")?,
            peers: db.open_tree("peers/v1")?,
            queue: db.open_tree("index-queue/v1")?,
            updates: db.open_tree("updates/v1")?,
            items: Arc::default(),
            declined: Arc::new(
                declined::DeclinedTable::open(&dir.join("declined-v1")).map_err(StoreError::Declined)?,
            ),
            files: Arc::new(files),
            db,
        };
        store.move_declined_out_of_sled()?;
        store.match_files()?;
        if store.listings.is_empty() && !store.manifests.is_empty() {
            store.summarise_listings()?;
        }
        Ok(store)
    }

    /// Brings the envelope files and `manifests` together after a crash: removes
    /// files no record names (and temporary ones), and forgets listings whose file
    /// is missing or empty, queueing them so the index drops them too; sync fetches
    /// them again.
    fn match_files(&self) -> Result<(), StoreError> {
        let mut files = HashMap::new();
        for found in self.files.list()? {
            match found.version {
                Some(version) if found.len > 0 => {
                    files.insert(version, found.path);
                }
                _ => remove_stray(&found.path),
            }
        }
        let mut lost = Vec::new();
        for item in self.manifests.iter() {
            let (k, v) = item?;
            let pack = pack_id_of(&k);
            if in_file(&v) && files.remove(&(pack, seq_of(&v))).is_none() {
                lost.push(pack);
            }
        }
        // What is left is named by no record.
        files.values().for_each(|path| remove_stray(path));
        if lost.is_empty() {
            return Ok(());
        }
        tracing::warn!(listings = lost.len(), "listing files lost in a crash; they will be fetched again");
        for pack in &lost {
            self.manifests.remove(pack.0)?;
            self.listings.remove(pack.0)?;
            self.queue.insert(self.db.generate_id()?.to_be_bytes(), &pack.0)?;
        }
        self.flush()
    }

    /// Gives the records of a store written before the table of declined
    /// listings to it, and drops their tree. A crash on the way moves them again.
    fn move_declined_out_of_sled(&self) -> Result<(), StoreError> {
        const OLD: &str = "evicted/v1";
        if !self.db.tree_names().iter().any(|name| name.as_ref() == OLD.as_bytes()) {
            return Ok(());
        }
        for item in self.db.open_tree(OLD)?.iter() {
            let (k, v) = item?;
            self.declined.record(&pack_id_of(&k), seq_of(&v), None).map_err(StoreError::Declined)?;
        }
        self.db.drop_tree(OLD)?;
        Ok(())
    }

    /// Writes the `listings` tree from the stored manifests, once, for a store
    /// written before it existed.
    fn summarise_listings(&self) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for item in self.manifests.iter() {
            let (k, v) = item?;
            let envelope = self.stored_envelope(&pack_id_of(&k), &v)?;
            let value = summary_of_envelope(seq_of(&v), &envelope)
                .ok_or_else(|| StoreError::Unreadable("a stored listing's header".into()))?;
            batch.insert(k, &value[..]);
        }
        self.listings.apply_batch(batch)?;
        self.flush()
    }

    /// The envelope of a `manifests` record, from its file or from the record.
    fn stored_envelope(&self, pack: &PackId, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        let corrupt = |source| StoreError::Corrupt { pack: *pack, source };
        if !in_file(value) {
            return Ok(envelope_of(value).map_err(corrupt)?.into_owned());
        }
        let body = self.files.read(pack, seq_of(value))?;
        Ok(decode_envelope(&body).map_err(corrupt)?.into_owned())
    }

    /// The current `manifests` record of `pack` and its envelope. A newer version
    /// stored between reading the record and its file removes the file: the
    /// record is read again then.
    fn current_envelope(&self, pack: &PackId) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let mut tries = 0;
        loop {
            let Some(value) = self.manifests.get(pack.0)? else { return Ok(None) };
            match self.stored_envelope(pack, &value) {
                Ok(envelope) => return Ok(Some((seq_of(&value), envelope))),
                Err(StoreError::File(e)) if e.kind() == std::io::ErrorKind::NotFound && tries < 3 => {
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The database, for the other storage modules that share it (`ledger`).
    pub(crate) fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Makes everything written so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Stores a verified manifest unless a newer version or a retraction wins.
    /// `durable` flushes before returning (our own publishes); listings from the
    /// network can be fetched again, so they ride on sled's periodic flush.
    pub fn accept_manifest(
        &self,
        manifest: &Manifest,
        envelope: &Envelope,
        durable: bool,
    ) -> Result<Accepted, StoreError> {
        let started = Instant::now();
        let (pack, seq) = (&manifest.pack_id, manifest.seq);
        let key = pack.0;
        let newer = |tree: &Tree| -> Result<bool, StoreError> {
            Ok(tree.get(key)?.is_some_and(|old| seq_of(&old) >= seq))
        };
        // Most offers are of versions already here: they write no file.
        if newer(&self.retractions)? {
            return Ok(Accepted::Retracted);
        }
        let declined = self.declined.get(pack).map_err(StoreError::Declined)?;
        if newer(&self.manifests)? || declined.is_some_and(|old| old >= seq) {
            return Ok(Accepted::Stale);
        }
        let looked_up = started.elapsed();
        self.files.write(pack, seq, &encode(envelope), durable)?;
        let written = started.elapsed();
        let listed = summary(seq, &manifest.author, envelope.as_bytes().len());
        let trees = (&self.manifests, &self.retractions, &self.queue, &self.listings);
        let (outcome, replaced) = trees.transaction(|(m, r, q, l)| {
            if r.get(key)?.is_some_and(|old| seq_of(&old) >= seq) {
                return Ok((Accepted::Retracted, None));
            }
            let old = m.get(key)?;
            if old.as_ref().is_some_and(|old| seq_of(old) >= seq) {
                return Ok((Accepted::Stale, None));
            }
            m.insert(&key, &seq.to_be_bytes())?;
            l.insert(&key, &listed[..])?;
            q.insert(&q.generate_id()?.to_be_bytes(), &key)?;
            let replaced = old.filter(|old| in_file(old)).map(|old| seq_of(&old));
            Ok::<_, ConflictableTransactionError<StoreError>>((Accepted::New, replaced))
        })?;
        let committed = started.elapsed();
        if outcome == Accepted::New {
            // An older version declined is held now.
            self.declined.remove_below(pack, seq).map_err(StoreError::Declined)?;
            self.listings_changed();
            if durable {
                self.flush()?;
            }
            if let Some(old) = replaced {
                self.files.remove(pack, old);
            }
        } else if !self.manifests.get(key)?.is_some_and(|v| in_file(&v) && seq_of(&v) == seq) {
            // Lost to a newer version or a retraction stored meanwhile; the same
            // version stored by another offer keeps the file.
            self.files.remove(pack, seq);
        }
        let took = started.elapsed();
        if took > SLOW_STORE {
            tracing::debug!(
                %pack,
                "storing a listing was slow: looked up after {looked_up:?}, its file written after \
                 {written:?}, committed after {committed:?}, done after {took:?}"
            );
        }
        Ok(outcome)
    }

    /// Stores a verified retraction and removes the versions it covers.
    pub fn accept_retraction(
        &self,
        retraction: &Retraction,
        envelope: &Envelope,
        durable: bool,
    ) -> Result<Accepted, StoreError> {
        let key = retraction.pack_id.0;
        let value = record(retraction.seq, envelope);
        let trees = (&self.manifests, &self.retractions, &self.queue, &self.listings);
        let (outcome, removed) = trees.transaction(|(m, r, q, l)| {
            // A retraction older than what we hold (either kind) removes nothing: a replay.
            let old = m.get(key)?;
            if r.get(key)?.is_some_and(|old| seq_of(&old) >= retraction.seq)
                || old.as_ref().is_some_and(|old| seq_of(old) > retraction.seq)
            {
                return Ok((Accepted::Stale, None));
            }
            r.insert(&key, value.as_slice())?;
            if old.is_some() {
                m.remove(&key)?;
                l.remove(&key)?;
            }
            q.insert(&q.generate_id()?.to_be_bytes(), &key)?;
            let removed = old.filter(|old| in_file(old)).map(|old| seq_of(&old));
            Ok::<_, ConflictableTransactionError<StoreError>>((Accepted::New, removed))
        })?;
        if outcome == Accepted::New {
            self.listings_changed();
            if durable {
                self.flush()?;
            }
            if let Some(old) = removed {
                self.files.remove(&retraction.pack_id, old);
            }
        }
        Ok(outcome)
    }

    /// Drops the stored listing of `pack` to stay within the listing budget: it
    /// leaves the store (and, through the index queue, the index), and this version
    /// or older is not stored again (until the node deals with its `author`).
    /// Returns whether there was a listing.
    pub fn evict(&self, pack: &PackId, author: &NodeId) -> Result<bool, StoreError> {
        let key = pack.0;
        let trees = (&self.manifests, &self.queue, &self.listings);
        let removed = trees.transaction(|(m, q, l)| {
            let Some(old) = m.remove(&key)? else { return Ok(None) };
            l.remove(&key)?;
            q.insert(&q.generate_id()?.to_be_bytes(), &key)?;
            Ok::<_, ConflictableTransactionError<StoreError>>(Some(old))
        })?;
        let Some(old) = removed else { return Ok(false) };
        // A crash before this line forgets the version: the budget is asked
        // about it again if it is offered again.
        self.declined.record(pack, seq_of(&old), Some(author)).map_err(StoreError::Declined)?;
        self.listings_changed();
        if in_file(&old) {
            self.files.remove(pack, seq_of(&old));
        }
        Ok(true)
    }

    /// Records that version `seq` of `pack` by `author` was declined (its author
    /// over its budget): it, and older versions, are not stored or fetched again
    /// (until the node deals with `author`).
    pub fn decline(&self, pack: &PackId, seq: u64, author: &NodeId) -> Result<(), StoreError> {
        self.declined.record(pack, seq, Some(author)).map_err(StoreError::Declined)?;
        self.listings_changed();
        Ok(())
    }

    /// Forgets the listings of `author` declined or evicted: the node now deals
    /// with it, so they may be stored, and fetched, again. Returns their ids.
    pub fn undecline_author(&self, author: &NodeId) -> Result<Vec<PackId>, StoreError> {
        let packs = self.declined.remove_author(author).map_err(StoreError::Declined)?;
        if !packs.is_empty() {
            self.listings_changed();
        }
        Ok(packs)
    }

    /// Listings declined or evicted that the store remembers.
    pub fn declined(&self) -> usize {
        self.declined.len()
    }

    /// Forgets up to `n` declined listings, chosen from `near`'s place in their
    /// table on (as good as a random choice): they may be stored, and fetched,
    /// again.
    pub fn forget_declined(&self, near: &PackId, n: usize) -> Result<usize, StoreError> {
        let forgotten = self.declined.forget_near(near, n).map_err(StoreError::Declined)?;
        self.listings_changed();
        Ok(forgotten)
    }

    /// Records when `author` replaced listings here in the last day (unix
    /// seconds); an empty list forgets it.
    pub fn record_updates(&self, author: &NodeId, times: &[u64]) -> Result<(), StoreError> {
        if times.is_empty() {
            self.updates.remove(author.0)?;
        } else {
            let value: Vec<u8> = times.iter().flat_map(|t| t.to_be_bytes()).collect();
            self.updates.insert(author.0, value)?;
        }
        Ok(())
    }

    /// What [`Store::record_updates`] recorded, per author.
    pub fn updates(&self) -> Result<Vec<(NodeId, Vec<u64>)>, StoreError> {
        self.updates
            .iter()
            .map(|item| {
                let (k, v) = item?;
                let author = NodeId(
                    k.as_ref().try_into().map_err(|_| StoreError::Unreadable("an update record".into()))?,
                );
                let times =
                    v.chunks_exact(8).map(|c| u64::from_be_bytes(c.try_into().expect("8 bytes"))).collect();
                Ok((author, times))
            })
            .collect()
    }

    /// Every stored listing's author and envelope length.
    pub fn listing_sizes(&self) -> Result<Vec<(PackId, NodeId, usize)>, StoreError> {
        self.listings
            .iter()
            .map(|item| {
                let (k, v) = item?;
                let bad = || StoreError::Unreadable("a listing summary".into());
                let author = NodeId(v.get(8..40).and_then(|a| a.try_into().ok()).ok_or_else(bad)?);
                let len = u64::from_be_bytes(v.get(40..48).and_then(|l| l.try_into().ok()).ok_or_else(bad)?);
                Ok((pack_id_of(&k), author, len as usize))
            })
            .collect()
    }

    /// The current manifest of a pack and its original envelope.
    pub fn manifest(&self, pack: &PackId) -> Result<Option<(Manifest, Envelope)>, StoreError> {
        match self.current_envelope(pack)? {
            None => Ok(None),
            Some((_, envelope)) => decode(pack, &envelope).map(Some),
        }
    }

    /// The retraction of a pack, if its author retracted it.
    pub fn retraction(&self, pack: &PackId) -> Result<Option<Retraction>, StoreError> {
        let Some(value) = self.retractions.get(pack.0)? else { return Ok(None) };
        let corrupt = |source| StoreError::Corrupt { pack: *pack, source };
        if value.len() < 8 {
            return Err(corrupt(ProtocolError::Malformed("stored record shorter than its seq")));
        }
        Ok(Some(Retraction::open(&envelope_of(&value).map_err(corrupt)?).map_err(corrupt)?.0))
    }

    /// Every retracted pack id.
    pub fn retracted_ids(&self) -> Result<Vec<PackId>, StoreError> {
        self.retractions
            .iter()
            .keys()
            .map(|k| {
                Ok(PackId(
                    k?.as_ref().try_into().map_err(|_| StoreError::Unreadable("a retraction key".into()))?,
                ))
            })
            .collect()
    }

    /// The highest seq this pack has had, as manifest or retraction.
    pub fn latest_seq(&self, pack: &PackId) -> Result<Option<u64>, StoreError> {
        let m = self.manifests.get(pack.0)?.map(|v| seq_of(&v));
        let r = self.retractions.get(pack.0)?.map(|v| seq_of(&v));
        Ok(m.max(r))
    }

    /// Every stored pack id with its seq, in id order.
    pub fn pack_seqs(&self) -> Result<Vec<(PackId, u64)>, StoreError> {
        self.listings
            .iter()
            .map(|item| {
                let (k, v) = item?;
                Ok((pack_id_of(&k), seq_of(&v)))
            })
            .collect()
    }

    /// Every stored manifest (decoding each; for rebuilds and listings).
    pub fn manifests(&self) -> impl Iterator<Item = Result<Manifest, StoreError>> + '_ {
        self.manifests.iter().keys().filter_map(|key| {
            let pack = match key {
                Ok(key) => pack_id_of(&key),
                Err(e) => return Some(Err(e.into())),
            };
            // A listing removed since the iterator passed its key is skipped.
            match self.manifest(&pack) {
                Ok(found) => found.map(|(m, _)| Ok(m)),
                Err(e) => Some(Err(e)),
            }
        })
    }

    /// Every listing as a reconciliation item: version `2·seq` for a manifest,
    /// `2·seq + 1` for a retraction (so a retraction wins at the same seq). Read
    /// from the trees once and shared until a listing changes.
    pub fn sync_items(&self) -> Result<Arc<Vec<Item>>, StoreError> {
        let cache = &self.items;
        let changes = cache.changes.load(Ordering::Acquire);
        if let Some((at, items)) = &*cache.built.lock().unwrap_or_else(PoisonError::into_inner)
            && *at == changes
        {
            return Ok(items.clone());
        }
        let items = Arc::new(self.read_sync_items()?);
        // Kept only if nothing changed while it was read.
        if cache.changes.load(Ordering::Acquire) == changes {
            *cache.built.lock().unwrap_or_else(PoisonError::into_inner) = Some((changes, items.clone()));
        }
        Ok(items)
    }

    /// Marks the cached items stale; called after every write to the trees they
    /// come from.
    fn listings_changed(&self) {
        self.items.changes.fetch_add(1, Ordering::AcqRel);
    }

    fn read_sync_items(&self) -> Result<Vec<Item>, StoreError> {
        let mut items: Vec<Item> = Vec::with_capacity(self.manifests.len() + self.retractions.len());
        for item in self.listings.iter() {
            let (k, v) = item?;
            items.push(Item { id: pack_id_of(&k), version: seq_of(&v).saturating_mul(2) });
        }
        for item in self.retractions.iter() {
            let (k, v) = item?;
            items.push(Item { id: pack_id_of(&k), version: seq_of(&v).saturating_mul(2).saturating_add(1) });
        }
        // Evicted listings count as held, so peers do not send them again.
        for (id, seq) in self.declined.records().map_err(StoreError::Declined)? {
            items.push(Item { id, version: seq.saturating_mul(2) });
        }
        items.sort_by(|a, b| a.id.cmp(&b.id).then(b.version.cmp(&a.version)));
        items.dedup_by(|later, first| later.id == first.id);
        Ok(items)
    }

    /// The newest stored envelope (manifest or retraction) of each of `ids` held,
    /// in order, while their bytes stay within `max_bytes`; and how many of `ids`
    /// were not read: the one whose envelope would pass `max_bytes` and those after
    /// it. So a sync answer holds at most one envelope more than it sends, however
    /// large the listings asked for.
    pub fn envelopes(&self, ids: &[PackId], max_bytes: usize) -> Result<(Vec<Vec<u8>>, usize), StoreError> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut bytes = 0;
        for (at, id) in ids.iter().enumerate() {
            let m = self.current_envelope(id)?;
            let r = self.retractions.get(id.0)?;
            let retraction = match (&m, r) {
                (Some((seq, _)), Some(r)) if seq_of(&r) < *seq => None,
                (_, r) => r,
            };
            let envelope = if let Some(value) = retraction {
                envelope_of(&value).map_err(|source| StoreError::Corrupt { pack: *id, source })?.into_owned()
            } else if let Some((_, envelope)) = m {
                envelope
            } else {
                continue;
            };
            bytes += envelope.len();
            if bytes > max_bytes {
                return Ok((out, ids.len() - at));
            }
            out.push(envelope);
        }
        Ok((out, 0))
    }

    /// Remembers a peer's address to dial at start and while not connected; past
    /// [`MAX_REMEMBERED_PEERS`] addresses, new ones are not kept.
    pub fn remember_peer(&self, addr: &str) -> Result<(), StoreError> {
        if self.peers.len() < MAX_REMEMBERED_PEERS || self.peers.contains_key(addr.as_bytes())? {
            self.peers.insert(addr.as_bytes(), &[])?;
        }
        Ok(())
    }

    pub fn remembered_peers(&self) -> Result<Vec<String>, StoreError> {
        self.peers.iter().keys().map(|k| Ok(String::from_utf8_lossy(&k?).into_owned())).collect()
    }

    pub fn setting(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.settings.get(name)?.map(|v| v.to_vec()))
    }

    pub fn set_setting(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.settings.insert(name, value)?;
        self.flush()
    }

    /// Queues `packs` for the indexer (used by index rebuilds).
    pub fn enqueue(&self, packs: impl IntoIterator<Item = PackId>) -> Result<(), StoreError> {
        for pack in packs {
            self.queue.insert(self.db.generate_id()?.to_be_bytes(), &pack.0)?;
        }
        self.flush()
    }

    /// Up to `max` queue entries, oldest first.
    pub fn queue_peek(&self, max: usize) -> Result<Vec<(u64, PackId)>, StoreError> {
        self.queue
            .iter()
            .take(max)
            .map(|item| {
                let (k, v) = item?;
                let mut id = [0u8; 8];
                id.copy_from_slice(&k);
                Ok((u64::from_be_bytes(id), pack_id_of(&v)))
            })
            .collect()
    }

    /// Removes drained entries after the index committed them.
    pub fn queue_remove(&self, ids: &[u64]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for id in ids {
            batch.remove(&id.to_be_bytes());
        }
        self.queue.apply_batch(batch)?;
        self.flush()
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }
}

/// Removes a listing file no record names (or an empty or temporary one).
fn remove_stray(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!(path = %path.display(), "could not remove a stray listing file: {e}");
    }
}

fn pack_id_of(key: &[u8]) -> PackId {
    let mut id = [0u8; 16];
    let n = key.len().min(16);
    id[..n].copy_from_slice(&key[..n]);
    PackId(id)
}

fn decode(pack: &PackId, envelope: &[u8]) -> Result<(Manifest, Envelope), StoreError> {
    Manifest::open(envelope).map_err(|source| StoreError::Corrupt { pack: *pack, source })
}

#[cfg(test)]
mod tests {
    use smpl_protocol::{Retraction, Signed};
    use smpl_testkit::manifest::{identity, manifest, sample};

    use super::*;

    #[test]
    fn listing_summaries_follow_the_manifests_and_are_written_for_an_older_store() {
        let dir = tempfile::tempdir().unwrap();
        let me = identity(1);
        let signed = |slug: &str, seq| {
            let m = manifest(me.node_id(), slug, seq, vec![sample("Kick.wav")]);
            let envelope = m.sign(&me).unwrap();
            (m, envelope)
        };
        let store = Store::open(dir.path()).unwrap();
        let mut sizes = Vec::new();
        for slug in ["a", "b", "c"] {
            let (m, envelope) = signed(slug, 1);
            store.accept_manifest(&m, &envelope, false).unwrap();
            sizes.push((m.pack_id, me.node_id(), envelope.as_bytes().len()));
        }
        sizes.sort();
        assert_eq!(store.listing_sizes().unwrap(), sizes);

        // An evicted and a retracted listing leave the summaries with the manifests.
        let (a, b) = (sizes[0].0, sizes[1].0);
        store.evict(&a, &me.node_id()).unwrap();
        let slug = store.manifest(&b).unwrap().unwrap().0.slug;
        let retraction =
            Retraction { pack_id: b, author: me.node_id(), slug, seq: 1, retracted_at: 1_700_000_000 };
        store.accept_retraction(&retraction, &retraction.sign(&me).unwrap(), false).unwrap();
        assert_eq!(store.listing_sizes().unwrap(), sizes[2..]);
        assert_eq!(store.pack_seqs().unwrap(), [(sizes[2].0, 1)]);

        // A store written before the summaries existed gets them when it is opened.
        store.listings.clear().unwrap();
        store.flush().unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.listing_sizes().unwrap(), sizes[2..]);
    }

    /// A store written when the declined listings were a sled tree gives them
    /// to their table when it opens, and drops the tree.
    #[test]
    fn declined_listings_of_an_older_store_move_to_their_table() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<PackId> = (1..=300u32)
            .map(|n| PackId(*blake3::hash(&n.to_be_bytes()).as_bytes().first_chunk().unwrap()))
            .collect();
        {
            let db = sled::open(dir.path()).unwrap();
            let old = db.open_tree("evicted/v1").unwrap();
            for (n, id) in ids.iter().enumerate() {
                old.insert(id.0, &(n as u64).to_be_bytes()).unwrap();
            }
            db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.declined(), 300);
        assert!(!store.db.tree_names().iter().any(|name| name.as_ref() == b"evicted/v1"));
        let items = store.sync_items().unwrap();
        assert_eq!(items.len(), 300);
        assert!(
            ids.iter()
                .enumerate()
                .all(|(n, id)| items.iter().any(|i| i.id == *id && i.version == 2 * n as u64))
        );
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.declined(), 300, "kept after a restart, not moved twice");
    }

    /// A store opened while another handle still holds the database waits for
    /// it, as a restart in one process must (sled's threads keep the lock for
    /// a moment after the last handle goes).
    #[test]
    fn a_store_opened_while_the_last_handle_closes_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path()).unwrap();
        let closing = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(first);
        });
        let second = Store::open(dir.path());
        closing.join().unwrap();
        assert!(second.is_ok(), "{:?}", second.err());
        // Held for longer than the wait, the lock fails the open with a clear error.
        let held = second.unwrap();
        let started = Instant::now();
        let err = Store::open(dir.path()).err().expect("a held database does not open twice");
        assert!(started.elapsed() >= LOCK_WAIT, "gave up after {:?}", started.elapsed());
        assert!(matches!(&err, StoreError::Sled(e) if is_locked(e)), "{err}");
        drop(held);
    }

    /// The count of declined listings follows declines, evictions and a newer
    /// version stored over a declined one, and survives a restart; forgetting
    /// takes any but the one named.
    #[test]
    fn declined_listings_are_counted_and_forgotten_near_an_id() {
        let dir = tempfile::tempdir().unwrap();
        let me = identity(1);
        let store = Store::open(dir.path()).unwrap();
        let ids: Vec<PackId> = (1..=8u8).map(|n| PackId([n * 16; 16])).collect();
        let other = identity(2).node_id();
        for id in &ids {
            store.decline(id, 1, &other).unwrap();
        }
        store.decline(&ids[0], 2, &other).unwrap();
        assert_eq!(store.declined(), 8, "a newer decline of the same pack is one record");

        let m = manifest(me.node_id(), "kept", 1, vec![sample("Kick.wav")]);
        store.accept_manifest(&m, &m.sign(&me).unwrap(), false).unwrap();
        store.evict(&m.pack_id, &me.node_id()).unwrap();
        assert_eq!(store.declined(), 9);
        let newer = manifest(me.node_id(), "kept", 2, vec![sample("Kick.wav")]);
        assert_eq!(store.accept_manifest(&newer, &newer.sign(&me).unwrap(), false).unwrap(), Accepted::New);
        assert_eq!(store.declined(), 8, "a newer version stored is no longer declined");

        assert_eq!(store.forget_declined(&ids[6], 3).unwrap(), 3);
        assert_eq!(store.declined(), 5);
        let left = store.declined.records().unwrap();
        assert_eq!(left.len(), 5);
        assert!(left.iter().all(|(id, _)| ids.contains(id)));
        // Asked for more than there are: all but the one named.
        let named = left[0].0;
        assert_eq!(store.forget_declined(&named, 100).unwrap(), 4);
        assert_eq!(store.declined(), 1);
        assert!(store.sync_items().unwrap().iter().all(|i| i.id == named || i.id == m.pack_id));

        store.flush().unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.declined(), 1, "counted again after a restart");
    }

    /// The cached reconciliation items follow every write: a new version, an
    /// eviction, a decline, an author's declines forgotten and a retraction each
    /// show in the next call, and a call with no write between shares the previous
    /// answer.
    #[test]
    fn sync_items_are_shared_until_a_listing_changes() {
        let dir = tempfile::tempdir().unwrap();
        let me = identity(1);
        let store = Store::open(dir.path()).unwrap();
        let version = |slug: &str, seq: u64| {
            let m = manifest(me.node_id(), slug, seq, vec![sample("Kick.wav")]);
            let envelope = m.sign(&me).unwrap();
            store.accept_manifest(&m, &envelope, false).unwrap();
            m.pack_id
        };
        let items = |store: &Store| -> Vec<(PackId, u64)> {
            store.sync_items().unwrap().iter().map(|i| (i.id, i.version)).collect()
        };
        let a = version("a", 1);
        let first = store.sync_items().unwrap();
        assert!(Arc::ptr_eq(&first, &store.sync_items().unwrap()), "read again with nothing changed");
        assert_eq!(items(&store), [(a, 2)]);

        version("a", 2);
        let b = version("b", 1);
        let mut expected = vec![(a, 4), (b, 2)];
        expected.sort();
        assert_eq!(items(&store), expected);

        store.evict(&b, &me.node_id()).unwrap();
        assert_eq!(items(&store), expected, "an evicted listing still counts as held");
        let c = PackId([0xcc; 16]);
        let other = identity(2).node_id();
        store.decline(&c, 7, &other).unwrap();
        expected.push((c, 14));
        expected.sort();
        assert_eq!(items(&store), expected);

        // Dealing with an author forgets its listings declined and evicted.
        assert_eq!(store.undecline_author(&me.node_id()).unwrap(), [b]);
        expected.retain(|(id, _)| *id != b);
        assert_eq!(items(&store), expected);
        assert_eq!(store.undecline_author(&other).unwrap(), [c]);
        expected.retain(|(id, _)| *id != c);
        assert_eq!(items(&store), expected);
        store.decline(&c, 7, &other).unwrap();
        expected.push((c, 14));
        expected.sort();

        let retraction =
            Retraction { pack_id: a, author: me.node_id(), slug: "a".into(), seq: 2, retracted_at: 1 };
        store.accept_retraction(&retraction, &retraction.sign(&me).unwrap(), false).unwrap();
        expected.retain(|(id, _)| *id != a);
        expected.push((a, 5));
        expected.sort();
        assert_eq!(items(&store), expected);
    }

    #[test]
    fn envelopes_stop_at_the_byte_limit_and_say_how_many_ids_were_left() {
        let dir = tempfile::tempdir().unwrap();
        let me = identity(1);
        let store = Store::open(dir.path()).unwrap();
        let mut ids = Vec::new();
        let mut sizes = Vec::new();
        for slug in ["one", "two", "three"] {
            let samples = (0..50).map(|n| sample(&format!("{slug}/Hit_{n:03}.wav"))).collect();
            let m = manifest(me.node_id(), slug, 1, samples);
            let envelope = m.sign(&me).unwrap();
            store.accept_manifest(&m, &envelope, false).unwrap();
            ids.push(m.pack_id);
            sizes.push(envelope.as_bytes().len());
        }
        let missing = PackId([7; 16]);
        let asked = [ids[0], missing, ids[1], ids[2]];
        let (all, left) = store.envelopes(&asked, usize::MAX).unwrap();
        assert_eq!((all.len(), left), (3, 0), "an id not held is skipped");

        // Room for the first two and a byte less than the third.
        let (some, left) = store.envelopes(&asked, sizes[0] + sizes[1] + sizes[2] - 1).unwrap();
        assert_eq!(some, all[..2]);
        assert_eq!(left, 1, "the third is left for a later answer");
        let (none, left) = store.envelopes(&asked, sizes[0] - 1).unwrap();
        assert!(none.is_empty());
        assert_eq!(left, 4);
    }

    #[test]
    fn envelopes_are_stored_compressed_and_plain_records_of_an_older_store_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let me = identity(1);
        let store = Store::open(dir.path()).unwrap();
        let samples = (0..100).map(|n| sample(&format!("Loops/Dusty_Loop_{n:03}.wav"))).collect();
        let big = manifest(me.node_id(), "dusty", 1, samples);
        let big_envelope = big.sign(&me).unwrap();
        store.accept_manifest(&big, &big_envelope, false).unwrap();
        assert_eq!(store.manifests.get(big.pack_id.0).unwrap().unwrap(), 1u64.to_be_bytes());
        let stored = store.files.read(&big.pack_id, 1).unwrap();
        assert!(stored.starts_with(&ZSTD_MAGIC));
        assert!(
            stored.len() < big_envelope.as_bytes().len() / 2,
            "{} of {}",
            stored.len(),
            big_envelope.as_bytes().len()
        );
        assert_eq!(store.manifest(&big.pack_id).unwrap().unwrap().0, big);
        assert_eq!(
            store.envelopes(&[big.pack_id], usize::MAX).unwrap().0,
            [big_envelope.as_bytes().to_vec()]
        );

        // A record as stores wrote them before compression: seq, then the envelope.
        let old = manifest(me.node_id(), "plain", 1, vec![sample("Kick.wav")]);
        let old_envelope = old.sign(&me).unwrap();
        let mut plain = 1u64.to_be_bytes().to_vec();
        plain.extend_from_slice(old_envelope.as_bytes());
        store.manifests.insert(old.pack_id.0, plain).unwrap();
        assert_eq!(store.manifest(&old.pack_id).unwrap().unwrap().0, old);
        assert_eq!(
            store.envelopes(&[old.pack_id], usize::MAX).unwrap().0,
            [old_envelope.as_bytes().to_vec()]
        );

        // Summaries written from both kinds count the envelopes' own lengths.
        store.listings.clear().unwrap();
        store.flush().unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let mut sizes = vec![
            (big.pack_id, me.node_id(), big_envelope.as_bytes().len()),
            (old.pack_id, me.node_id(), old_envelope.as_bytes().len()),
        ];
        sizes.sort();
        assert_eq!(store.listing_sizes().unwrap(), sizes);

        // A file that says it is compressed but is not is an error, not a panic.
        std::fs::write(listing_file(dir.path(), &big.pack_id, 1), [&ZSTD_MAGIC[..], &[0xff; 40]].concat())
            .unwrap();
        assert!(matches!(store.manifest(&big.pack_id), Err(StoreError::Corrupt { .. })));
        // So is such a record.
        let mut broken = 1u64.to_be_bytes().to_vec();
        broken.extend_from_slice(&ZSTD_MAGIC);
        broken.extend_from_slice(&[0xff; 40]);
        store.manifests.insert(old.pack_id.0, broken).unwrap();
        assert!(matches!(store.manifest(&old.pack_id), Err(StoreError::Corrupt { .. })));
    }

    fn listing_file(db: &Path, pack: &PackId, seq: u64) -> std::path::PathBuf {
        db.join("envelopes").join(format!("{:02x}", pack.0[0])).join(format!("{pack}-{seq}"))
    }

    /// Each listing version is one file: a new version, a retraction and an
    /// eviction remove the file of the version they replace, an offer of a
    /// version already here writes none, and opening after a crash removes files
    /// no record names and forgets (and queues for the index) listings whose file
    /// was lost.
    #[test]
    fn listing_files_follow_the_records_and_a_crash_is_mended_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let me = identity(1);
        let store = Store::open(dir.path()).unwrap();
        let offer = |slug: &str, seq| {
            let m = manifest(me.node_id(), slug, seq, vec![sample("Kick.wav")]);
            let envelope = m.sign(&me).unwrap();
            (store.accept_manifest(&m, &envelope, seq == 1).unwrap(), m.pack_id)
        };
        let (_, a) = offer("a", 1);
        assert!(listing_file(dir.path(), &a, 1).exists());
        offer("a", 2);
        assert!(!listing_file(dir.path(), &a, 1).exists(), "the replaced version's file stays");
        assert!(listing_file(dir.path(), &a, 2).exists());
        assert_eq!(offer("a", 1).0, Accepted::Stale);
        assert!(!listing_file(dir.path(), &a, 1).exists(), "a stale offer wrote a file");
        assert_eq!(store.manifest(&a).unwrap().unwrap().0.seq, 2);

        let (_, b) = offer("b", 1);
        assert!(store.evict(&b, &me.node_id()).unwrap());
        assert!(!listing_file(dir.path(), &b, 1).exists());
        let (_, c) = offer("c", 1);
        let retraction =
            Retraction { pack_id: c, author: me.node_id(), slug: "c".into(), seq: 1, retracted_at: 1 };
        store.accept_retraction(&retraction, &retraction.sign(&me).unwrap(), false).unwrap();
        assert!(!listing_file(dir.path(), &c, 1).exists());
        assert_eq!(store.envelopes(&[c], usize::MAX).unwrap().0.len(), 1, "the retraction is served");

        // A crash: one listing's file never reached the disk, another is empty, and
        // a file of a version the store never recorded was left behind.
        let (_, d) = offer("d", 1);
        let (_, e) = offer("e", 1);
        std::fs::remove_file(listing_file(dir.path(), &d, 1)).unwrap();
        std::fs::write(listing_file(dir.path(), &e, 1), b"").unwrap();
        std::fs::write(listing_file(dir.path(), &a, 9), b"stray").unwrap();
        store.flush().unwrap();
        let queued = store.queue_len();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert!(store.manifest(&d).unwrap().is_none() && store.manifest(&e).unwrap().is_none());
        assert_eq!(store.queue_len(), queued + 2, "the index is told to drop them");
        assert!(!listing_file(dir.path(), &a, 9).exists());
        assert_eq!(store.manifest(&a).unwrap().unwrap().0.seq, 2);
        let held: Vec<PackId> = store.pack_seqs().unwrap().into_iter().map(|(p, _)| p).collect();
        assert_eq!(held, [a]);
    }
}
