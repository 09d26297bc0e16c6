//! The listing budget: how much of other producers' listings a node keeps.
//!
//! Keys cost nothing, so anyone can sign listings as thousands of authors. Every
//! listing from the network passes [`Budget::admit`] before it is stored: one
//! author may have at most [`BudgetConfig::packs_per_author`] listings and
//! [`BudgetConfig::bytes_per_author`] bytes of them here, and replace listings it
//! has here with new versions at most [`BudgetConfig::updates_per_author_day`]
//! times in 24 hours (the times are kept in the store: a restart does not reset
//! the count). A listing refused is recorded as declined (`Store::decline`), so
//! sync does not fetch that version again and again. When the listings stored
//! pass seven eighths of [`BudgetConfig::max_bytes`] (less 2 MiB the store takes
//! whatever it holds) or [`BudgetConfig::max_listings`] in all, bytes counted as
//! the disk a listing takes (its file in whole blocks, its share of the index and
//! its records, see [`cost`]), [`Budget::evict`] drops listings until they fit
//! again, in this order:
//!
//! 1. never the node's own packs, packs it holds (fetched, bought) and packs of
//!    authors it has dealt with (whose packs it fetched or bought);
//! 2. of the rest, first the listings of the author who takes the most bytes, the
//!    largest of them first: a flood of keys or of large listings pays for itself,
//!    while an author with a few packs keeps them.
//!
//! An evicted listing leaves the store and the index, and that version is not
//! stored again: reconciliation counts it as held, so it is not fetched again
//! from the same peer (`Store::evict`). Listings refused or evicted are counted
//! ([`BudgetStats`]) and logged. Once the node deals with an author
//! ([`Budget::keep`] says so the first time), the node forgets that author's
//! records of listings declined and evicted (`Store::undecline_author`) and asks
//! its peers for them again.
//!
//! What counts is an estimate: sled and tantivy hold, beyond their live records,
//! pages and segments they have not reclaimed yet, and a merge of the index takes
//! megabytes more for a few seconds. So the node also measures the disk its store
//! and index take ([`disk_taken`], by [`watch_disk`]); the most they took beyond
//! the count in the last minute or so comes off the listings' share
//! ([`Budget::measured`]), up to a quarter of it, and listings are evicted to
//! match. Evicting frees a listing's file at once and its index share at the next
//! merge, but not its sled records (sled reuses their pages for later writes):
//! evicting a listing raises the measured excess by its records' and index share
//! of its cost, at most about a quarter of it (400 + 1,008 of 5,504 bytes for a
//! listing of 4,032), so the evictions a measure starts come to a little over the
//! excess and end; the quarter bounds them whatever the measure says.

//! The records of declined and evicted listings take the last eighth of the
//! budget ([`BudgetConfig::max_declined`]); past it the node forgets some of them.
//! A peer that offers a forgotten listing again is answered by the budget again,
//! and a reconciliation with a peer whose listings have not changed since one
//! that left nothing to fetch ends at its first answer (`net`), so forgetting
//! does not turn into fetching the same listings round after round.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, TryLockError, mpsc};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use smpl_protocol::{Manifest, NodeId, PackId};

use crate::store::{Store, StoreError};

/// Limits on the listings of others a node keeps; the defaults suit a laptop.
#[derive(Clone, Copy, Debug)]
pub struct BudgetConfig {
    /// Disk taken by the listings of others, in all: the listings kept ([`cost`])
    /// and, in an eighth of it, the records of listings declined
    /// ([`BudgetConfig::max_declined`]).
    pub max_bytes: u64,
    /// Listings kept in all.
    pub max_listings: usize,
    pub packs_per_author: usize,
    /// Disk one author's listings may take ([`cost`]).
    pub bytes_per_author: u64,
    /// New versions of listings already here, per author in any 24 hours.
    pub updates_per_author_day: usize,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            max_bytes: 2 * 1024 * 1024 * 1024,
            max_listings: 200_000,
            packs_per_author: 1_000,
            bytes_per_author: 64 * 1024 * 1024,
            updates_per_author_day: 50,
        }
    }
}

impl BudgetConfig {
    /// Declined listings remembered at most: their records fill the budget's
    /// share for them. Past it, the node forgets some, and may fetch those again
    /// from a peer whose listings changed since (one that did not is not asked).
    pub fn max_declined(&self) -> usize {
        usize::try_from(self.max_bytes / DECLINED_SHARE / DECLINED_RECORD).unwrap_or(usize::MAX)
    }

    /// Disk the listings kept may take: the budget less the declined listings'
    /// share and the store's fixed part.
    fn listing_bytes(&self) -> u64 {
        (self.max_bytes - self.max_bytes / DECLINED_SHARE).saturating_sub(STORE_FIXED)
    }
}

/// What the budget refused and dropped since the node started.
#[derive(Debug, Default)]
pub struct BudgetStats {
    /// Listings refused because their author was over its budget.
    pub refused: AtomicU64,
    /// Listings evicted to keep the total within the budget.
    pub evicted: AtomicU64,
    /// Declined listings forgotten to keep their records within the budget.
    pub forgotten: AtomicU64,
}

/// The window [`BudgetConfig::updates_per_author_day`] counts in, seconds.
const DAY: u64 = 24 * 60 * 60;

/// The file system's block: the least disk a file takes.
const BLOCK: usize = 4096;
/// What compression may add to an envelope that does not compress.
const FRAME: usize = 64;
/// The disk a listing's two sled records take (its seq, and its author and
/// length): sled takes 110–175 bytes for a record of a 16-byte key and a value of
/// 8–48 bytes inserted in random key order, and about 1.3× that in a store that
/// evicts and forgets as it goes (measured under the flood benchmark).
const LISTING_RECORDS: usize = 400;
/// The disk counted for one declined listing's record: a slot of 32 bytes in a
/// table at most three quarters full, and three eighths full just after it
/// doubled, so at most 86 bytes, counted with room to spare (`store/declined.rs`).
pub const DECLINED_RECORD: u64 = 128;
/// Disk the store takes whatever it holds: the 256 folders of the envelope files
/// (4 KB each) and sled's own files.
const STORE_FIXED: u64 = 2 << 20;
/// The budget's share kept for declined listings' records: one part in this many.
const DECLINED_SHARE: u64 = 8;
/// The measures [`Budget::measured`] holds the largest excess of: a merge of the
/// index or a rewrite of sled's file takes megabytes for a few seconds, and the
/// budget keeps room for the next one.
const PEAK_MEASURES: usize = 30;
/// The most of the listings' share that disk measured beyond the count may take
/// back ([`Budget::measured`]): one part in this many.
const OVERRUN_SHARE: u64 = 4;

/// What a signed listing of `len` bytes costs the budget: the disk blocks of its
/// file, its share of the index and its records. The store compresses each
/// envelope into a file of its own, and a file takes whole blocks, so a listing of
/// 3 KB takes 4 KB on disk whatever it compresses to. The search index takes
/// 0.2–0.25× the envelopes' length (measured with 4 and with 100 samples a
/// listing), counted here as a quarter.
pub fn cost(len: usize) -> usize {
    (len + FRAME).div_ceil(BLOCK) * BLOCK + len / 4 + LISTING_RECORDS
}

/// The least time between two measures of the disk ([`watch_disk`]).
const MEASURE_EVERY: Duration = Duration::from_secs(2);
/// Measuring takes at most one part in this many of a core: the measures of a
/// store of many listings come further apart.
const MEASURE_SHARE: u32 = 100;

/// What `path` takes on disk: the blocks of every file and folder in it.
pub fn disk_taken(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    let own = meta.blocks() * 512;
    if !meta.is_dir() {
        return own;
    }
    let entries = std::fs::read_dir(path).into_iter().flatten().filter_map(Result::ok);
    own + entries.map(|e| disk_taken(&e.path())).sum::<u64>()
}

/// Measures the disk `dirs` (the store's and the index's) take, on a thread at
/// the lower priority, and gives it to [`Budget::measured`], until `cancel`.
pub async fn watch_disk(budget: Arc<Budget>, dirs: Vec<PathBuf>, cancel: CancellationToken) {
    let mut wait = MEASURE_EVERY;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let (budget, dirs) = (budget.clone(), dirs.clone());
        let measured = crate::util::background::run_lowered("smpl-disk", move || {
            let started = crate::util::thread_cpu_time();
            let disk = dirs.iter().map(|dir| disk_taken(dir)).sum();
            let spent = crate::util::thread_cpu_time().saturating_sub(started);
            (budget.measured(disk), spent)
        })
        .await;
        let spent = match measured {
            Ok((evicted, spent)) => {
                if let Err(e) = evicted {
                    tracing::error!("evicting listings over the measured disk failed: {e}");
                }
                spent
            }
            Err(e) => {
                tracing::error!("measuring the listings' disk failed: {e}");
                Duration::ZERO
            }
        };
        wait = (spent * MEASURE_SHARE).max(MEASURE_EVERY);
    }
}

/// One author's listings here and their sizes.
#[derive(Default)]
struct AuthorUse {
    packs: HashMap<PackId, usize>,
    bytes: u64,
    /// When each of its updates in the last [`DAY`] was stored (unix seconds),
    /// oldest first.
    updates: VecDeque<u64>,
}

#[derive(Default)]
struct Usage {
    authors: HashMap<NodeId, AuthorUse>,
    bytes: u64,
    listings: usize,
    /// Packs held here and authors dealt with: never evicted.
    kept_packs: HashSet<PackId>,
    kept_authors: HashSet<NodeId>,
    /// The authors eviction may choose from (not dealt with), by the bytes of
    /// their listings here: the largest last, found without a scan.
    by_bytes: BTreeSet<(u64, NodeId)>,
}

impl Usage {
    /// Counts a listing of `author`; an update (a pack already counted) stored
    /// `at` joins the author's updates, which are returned then.
    fn add(&mut self, author: NodeId, pack: PackId, len: usize, at: Option<u64>) -> Option<Vec<u64>> {
        let entry = self.authors.entry(author).or_default();
        let before = entry.bytes;
        let old = entry.packs.insert(pack, len).map_or(0, |old| old as u64);
        let updates = at.filter(|_| old > 0).map(|at| {
            entry.updates.push_back(at);
            while entry.updates.front().is_some_and(|first| at.saturating_sub(*first) >= DAY) {
                entry.updates.pop_front();
            }
            entry.updates.iter().copied().collect()
        });
        entry.bytes = entry.bytes - old + len as u64;
        let after = entry.bytes;
        self.bytes = self.bytes - old + len as u64;
        if old == 0 {
            self.listings += 1;
        }
        self.rank(author, before, Some(after));
        updates
    }

    fn remove(&mut self, author: &NodeId, pack: &PackId) {
        if let Some(entry) = self.authors.get_mut(author)
            && let Some(len) = entry.packs.remove(pack)
        {
            let before = entry.bytes;
            entry.bytes -= len as u64;
            let after = (!entry.packs.is_empty()).then_some(entry.bytes);
            self.bytes -= len as u64;
            self.listings -= 1;
            if after.is_none() {
                self.authors.remove(author);
            }
            self.rank(*author, before, after);
        }
    }

    fn keep(&mut self, pack: PackId, author: NodeId) {
        self.kept_packs.insert(pack);
        self.kept_authors.insert(author);
        if let Some(bytes) = self.authors.get(&author).map(|e| e.bytes) {
            self.by_bytes.remove(&(bytes, author));
        }
    }

    /// Moves `author` in [`Usage::by_bytes`] from `before` to `after` bytes
    /// (`None`: out of it).
    fn rank(&mut self, author: NodeId, before: u64, after: Option<u64>) {
        self.by_bytes.remove(&(before, author));
        if let Some(after) = after.filter(|_| !self.kept_authors.contains(&author)) {
            self.by_bytes.insert((after, author));
        }
    }
}

/// A listing stored and not counted yet ([`Budget::stored_unless_busy`]).
struct Uncounted {
    author: NodeId,
    pack: PackId,
    cost: usize,
    /// When it was stored (unix seconds).
    at: u64,
}

impl Uncounted {
    fn of(manifest: &Manifest, len: usize) -> Uncounted {
        Uncounted { author: manifest.author, pack: manifest.pack_id, cost: cost(len), at: crate::util::now() }
    }
}

/// The node's listing budget; see the module docs.
pub struct Budget {
    store: Store,
    me: NodeId,
    pub(crate) config: BudgetConfig,
    usage: Mutex<Usage>,
    /// The authors dealt with, apart from `usage`: the swarm's own thread asks
    /// about every gossip listing, and must not wait for a background thread
    /// that holds `usage`.
    dealt_with: RwLock<HashSet<NodeId>>,
    /// Listings from authors dealt with, stored while `usage` was held
    /// ([`Budget::stored_unless_busy`]): counted by its next holder
    /// ([`Budget::usage`]), who alone takes `uncounted`.
    uncount: mpsc::Sender<Uncounted>,
    uncounted: Mutex<mpsc::Receiver<Uncounted>>,
    /// Held by the one [`Budget::evict`] running: two at once would pick the same
    /// victims.
    evicting: Mutex<()>,
    /// Set by each call of [`Budget::evict`] and by each listing counted without
    /// one: the one running looks at the totals again before it ends.
    evict_again: AtomicBool,
    /// Disk the store and the index took beyond what the budget counts, the most
    /// of the last [`PEAK_MEASURES`] measures, up to a [`OVERRUN_SHARE`]th of the
    /// listings' share: the listings kept are held that much under it.
    overrun: AtomicU64,
    /// The excess of the last measures, newest last.
    excesses: Mutex<VecDeque<u64>>,
    pub stats: BudgetStats,
}

impl Budget {
    /// Counts what the store holds.
    pub fn open(store: &Store, me: NodeId, config: BudgetConfig) -> Result<Budget, StoreError> {
        let mut usage = Usage::default();
        for (pack, author, len) in store.listing_sizes()? {
            usage.add(author, pack, cost(len), None);
        }
        for (author, times) in store.updates()? {
            match usage.authors.get_mut(&author) {
                Some(entry) => entry.updates = times.into(),
                None => store.record_updates(&author, &[])?,
            }
        }
        let (uncount, uncounted) = mpsc::channel();
        Ok(Budget {
            store: store.clone(),
            me,
            config,
            usage: Mutex::new(usage),
            dealt_with: RwLock::default(),
            uncount,
            uncounted: Mutex::new(uncounted),
            evicting: Mutex::new(()),
            evict_again: AtomicBool::new(false),
            overrun: AtomicU64::new(0),
            excesses: Mutex::default(),
            stats: BudgetStats::default(),
        })
    }

    /// `usage`, with the listings stored while it was held counted.
    fn usage(&self) -> MutexGuard<'_, Usage> {
        let mut usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        self.count_uncounted(&mut usage);
        usage
    }

    fn count_uncounted(&self, usage: &mut Usage) {
        let uncounted = self.uncounted.lock().unwrap_or_else(PoisonError::into_inner);
        for listing in uncounted.try_iter() {
            self.count(usage, listing);
        }
    }

    fn count(&self, usage: &mut Usage, Uncounted { author, pack, cost, at }: Uncounted) {
        let updates = usage.add(author, pack, cost, Some(at));
        self.record_updates(&author, updates);
    }

    /// Keeps an author's updates (what [`Usage::add`] returns) in the store.
    fn record_updates(&self, author: &NodeId, updates: Option<Vec<u64>>) {
        if let Some(times) = updates
            && let Err(e) = self.store.record_updates(author, &times)
        {
            tracing::error!("recording an author's updates failed: {e}");
        }
    }

    /// Never evicts `pack` (held here) nor the listings of its `author` (dealt with).
    /// Returns whether `author` is newly dealt with.
    pub fn keep(&self, pack: PackId, author: NodeId) -> bool {
        self.usage().keep(pack, author);
        self.dealt_with.write().unwrap_or_else(PoisonError::into_inner).insert(author)
    }

    /// Whether `author` is this node or an author it has dealt with.
    pub fn dealt_with(&self, author: &NodeId) -> bool {
        *author == self.me || self.dealt_with.read().unwrap_or_else(PoisonError::into_inner).contains(author)
    }

    fn protected(&self, usage: &Usage, author: &NodeId, pack: &PackId) -> bool {
        *author == self.me || usage.kept_authors.contains(author) || usage.kept_packs.contains(pack)
    }

    /// Whether a listing of `len` bytes from the network may be stored: `Err`
    /// with the reason when its author is over its budget (an update of a pack
    /// already here is judged by its new size).
    pub fn admit(&self, manifest: &Manifest, len: usize) -> Result<(), String> {
        // Kept whatever the totals, and without waiting for `usage`.
        if self.dealt_with(&manifest.author) {
            return Ok(());
        }
        let size = cost(len);
        let mut usage = self.usage();
        if self.protected(&usage, &manifest.author, &manifest.pack_id) {
            return Ok(());
        }
        let entry = usage.authors.get_mut(&manifest.author);
        let current = entry.as_ref().and_then(|e| e.packs.get(&manifest.pack_id)).map_or(0, |n| *n as u64);
        let others = entry.as_ref().map_or(0, |e| e.packs.len() - usize::from(current > 0));
        let bytes = entry.as_ref().map_or(0, |e| e.bytes - current);
        let updates = match entry {
            Some(e) if current > 0 => {
                let now = crate::util::now();
                while e.updates.front().is_some_and(|at| now.saturating_sub(*at) >= DAY) {
                    e.updates.pop_front();
                }
                e.updates.len()
            }
            _ => 0,
        };
        let reason = if others >= self.config.packs_per_author {
            format!("its author has {others} listings here, the most one author may have")
        } else if bytes + size as u64 > self.config.bytes_per_author {
            format!("its author's listings would take over {} bytes here", self.config.bytes_per_author)
        } else if updates >= self.config.updates_per_author_day {
            format!("its author updated {updates} listings here in 24 hours, the most one author may")
        } else if self.first_evicted(&usage, manifest, size, current) {
            "the listing budget is full, and this listing would be the first evicted".to_string()
        } else {
            return Ok(());
        };
        drop(usage);
        if let Err(e) = self.store.decline(&manifest.pack_id, manifest.seq, &manifest.author) {
            tracing::error!("recording a declined listing failed: {e}");
        }
        self.bound_declined(&manifest.pack_id);
        let refused = self.stats.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if refused.is_power_of_two() {
            tracing::warn!(refused, author = %manifest.author, "listings refused by the listing budget");
        }
        Err(reason)
    }

    /// Whether storing `manifest` (`len` bytes, replacing `current`) would pass
    /// the totals and make it the listing [`Budget::evict`] drops first: its
    /// author would take the most bytes of the authors eviction chooses from, and
    /// it would be that author's largest listing. Such a listing is declined
    /// instead of written and evicted at once, which under a flood of keys is
    /// nearly every listing offered.
    fn first_evicted(&self, usage: &Usage, manifest: &Manifest, len: usize, current: u64) -> bool {
        let new = current == 0;
        let over = usage.bytes - current + len as u64 > self.limit()
            || usage.listings + usize::from(new) > self.config.max_listings;
        if !over {
            return false;
        }
        let entry = usage.authors.get(&manifest.author);
        let bytes = entry.map_or(0, |e| e.bytes) - current + len as u64;
        let largest_other = usage.by_bytes.iter().rev().find(|(_, author)| *author != manifest.author);
        let largest_own = entry
            .into_iter()
            .flat_map(|e| &e.packs)
            .filter(|(pack, _)| **pack != manifest.pack_id && !usage.kept_packs.contains(pack))
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0);
        largest_other.is_none_or(|(other, _)| bytes >= *other) && len >= largest_own
    }

    /// Counts a listing just stored.
    pub fn stored(&self, manifest: &Manifest, len: usize) {
        let Uncounted { author, pack, cost, at } = Uncounted::of(manifest, len);
        // Recorded once the counts are released.
        let updates = self.usage().add(author, pack, cost, Some(at));
        self.record_updates(&author, updates);
    }

    /// [`Budget::stored`] for a listing from an author dealt with, stored on a
    /// thread at the normal priority so that it is searchable at once: it does
    /// not wait for `usage`, which a checking thread at `SCHED_IDLE` may hold
    /// while a busy core keeps it waiting for seconds. Counted now if `usage` is
    /// free, else by its next holder; the eviction it may call for is left to
    /// the next [`Budget::evict`] (the next listing stored from the network, or
    /// the disk's next measure, [`watch_disk`]).
    pub fn stored_unless_busy(&self, manifest: &Manifest, len: usize) {
        let listing = Uncounted::of(manifest, len);
        match self.usage.try_lock() {
            Ok(mut usage) => {
                self.count_uncounted(&mut usage);
                self.count(&mut usage, listing);
            }
            Err(TryLockError::Poisoned(poisoned)) => self.count(&mut poisoned.into_inner(), listing),
            Err(TryLockError::WouldBlock) => {
                let _ = self.uncount.send(listing);
            }
        }
        self.evict_again.store(true, Ordering::SeqCst);
    }

    /// Counts a listing that left the store (retracted).
    pub fn removed(&self, author: &NodeId, pack: &PackId) {
        self.usage().remove(author, pack);
    }

    /// Drops listings, in the module's order, until the store is within the
    /// totals again. Returns the packs evicted. One eviction runs at a time; a
    /// call while one runs waits for it, which holds the checking threads that
    /// store listings back while an eviction catches up with them.
    pub fn evict(&self) -> Result<Vec<PackId>, StoreError> {
        self.evict_again.store(true, Ordering::SeqCst);
        let mut evicted = Vec::new();
        loop {
            let one_at_a_time = self.evicting.lock().unwrap_or_else(PoisonError::into_inner);
            while self.evict_again.swap(false, Ordering::SeqCst) {
                self.evict_to_fit(&mut evicted)?;
            }
            drop(one_at_a_time);
            // A listing counted after the last look, which did not evict.
            if !self.evict_again.load(Ordering::SeqCst) {
                break;
            }
        }
        if let Some(last) = evicted.last() {
            self.bound_declined(last);
        }
        if !evicted.is_empty() {
            let n = evicted.len() as u64;
            let total = self.stats.evicted.fetch_add(n, Ordering::Relaxed) + n;
            // Logged as the total passes each power of two: a flood does not flood the log.
            if (total - n + 1..=total).any(u64::is_power_of_two) {
                tracing::info!(total, "listings evicted to stay within the listing budget");
            }
        }
        Ok(evicted)
    }

    /// [`Budget::evict`]'s work, under its lock: evicts until the totals fit,
    /// adding the packs evicted to `evicted`.
    fn evict_to_fit(&self, evicted: &mut Vec<PackId>) -> Result<(), StoreError> {
        loop {
            let victim = {
                let usage = self.usage();
                if usage.bytes <= self.limit() && usage.listings <= self.config.max_listings {
                    break;
                }
                usage.by_bytes.iter().rev().filter(|(_, author)| *author != self.me).find_map(
                    |(_, author)| {
                        usage
                            .authors
                            .get(author)?
                            .packs
                            .iter()
                            .filter(|(pack, _)| !usage.kept_packs.contains(pack))
                            .max_by_key(|(_, n)| **n)
                            .map(|(pack, _)| (*author, *pack))
                    },
                )
            };
            let Some((author, pack)) = victim else {
                tracing::warn!(
                    "over the listing budget, but everything left is kept (own, held or dealt with)"
                );
                break;
            };
            let stored = self.store.evict(&pack, &author)?;
            self.usage().remove(&author, &pack);
            if stored {
                evicted.push(pack);
            }
        }
        Ok(())
    }

    /// Past [`BudgetConfig::max_declined`], forgets a sixteenth of them (so not at
    /// every listing declined), those whose ids follow `near`.
    fn bound_declined(&self, near: &PackId) {
        let max = self.config.max_declined();
        let held = self.store.declined();
        if held <= max {
            return;
        }
        match self.store.forget_declined(near, held - max + max / 16) {
            Ok(n) => {
                let total = self.stats.forgotten.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
                tracing::info!(total, "declined listings forgotten to keep their records within the budget");
            }
            Err(e) => tracing::error!("forgetting declined listings failed: {e}"),
        }
    }

    /// The bytes of listings kept: their share, less the disk measured beyond
    /// the count ([`Budget::measured`]).
    fn limit(&self) -> u64 {
        self.config.listing_bytes().saturating_sub(self.overrun.load(Ordering::Relaxed))
    }

    /// Takes `disk`, what the store and the index take on disk now: the most
    /// they took beyond the count in the last [`PEAK_MEASURES`] measures comes
    /// off the listings' share (up to a quarter of it), and listings are evicted
    /// to match. Returns the packs evicted.
    pub fn measured(&self, disk: u64) -> Result<Vec<PackId>, StoreError> {
        let counted = self.usage().bytes + self.store.declined() as u64 * DECLINED_RECORD + STORE_FIXED;
        let peak = {
            let mut excesses = self.excesses.lock().unwrap_or_else(PoisonError::into_inner);
            excesses.push_back(disk.saturating_sub(counted));
            if excesses.len() > PEAK_MEASURES {
                excesses.pop_front();
            }
            excesses.iter().copied().max().unwrap_or(0)
        };
        let overrun = peak.min(self.config.listing_bytes() / OVERRUN_SHARE);
        let before = self.overrun.swap(overrun, Ordering::Relaxed);
        tracing::debug!(disk, counted, overrun, "measured the store's and index's disk");
        if overrun.abs_diff(before) >= self.config.max_bytes / 64 {
            tracing::info!(
                disk,
                counted,
                overrun,
                "measured the store's and index's disk: listings kept that much under their share"
            );
        }
        self.evict()
    }

    /// Listings and bytes stored now.
    pub fn totals(&self) -> (usize, u64) {
        let usage = self.usage();
        (usage.listings, usage.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `by_bytes` must hold: every author not dealt with, by its bytes.
    fn expected(usage: &Usage) -> BTreeSet<(u64, NodeId)> {
        usage
            .authors
            .iter()
            .filter(|(author, _)| !usage.kept_authors.contains(*author))
            .map(|(author, entry)| (entry.bytes, *author))
            .collect()
    }

    /// One signed listing of one sample from each of `authors` keys.
    fn one_listing_each(authors: std::ops::RangeInclusive<u8>) -> Vec<(Manifest, smpl_protocol::Envelope)> {
        use smpl_protocol::Signed;
        use smpl_testkit::manifest::{identity, manifest, sample};
        authors
            .map(|n| {
                let who = identity(n);
                let m = manifest(who.node_id(), "one", 1, vec![sample("Kick.wav")]);
                let envelope = m.sign(&who).unwrap();
                (m, envelope)
            })
            .collect()
    }

    #[test]
    fn authors_stay_ranked_by_bytes_through_adds_updates_removals_and_keeps() {
        let mut usage = Usage::default();
        let (a, b, c) = (NodeId([1; 32]), NodeId([2; 32]), NodeId([3; 32]));
        let pack = |n: u8| PackId([n; 16]);
        usage.add(a, pack(1), 100, None);
        usage.add(a, pack(2), 50, None);
        usage.add(b, pack(3), 120, None);
        usage.add(c, pack(4), 10, None);
        assert_eq!(usage.by_bytes, expected(&usage));
        assert_eq!(usage.by_bytes.last(), Some(&(150, a)));
        // An update replaces a pack's size; a removal takes it away.
        assert_eq!(usage.add(b, pack(3), 400, Some(1_000)), Some(vec![1_000]));
        assert_eq!(usage.by_bytes.last(), Some(&(400, b)));
        usage.remove(&b, &pack(3));
        assert_eq!(usage.by_bytes, expected(&usage));
        assert!(!usage.authors.contains_key(&b));
        // An author dealt with leaves the ranking, and does not come back with more.
        usage.keep(pack(1), a);
        assert_eq!(usage.by_bytes, expected(&usage));
        usage.add(a, pack(5), 1_000, None);
        assert_eq!(usage.by_bytes, expected(&usage));
        assert_eq!(usage.by_bytes.last(), Some(&(10, c)));
        assert_eq!((usage.listings, usage.bytes), (4, 1_160));
    }

    /// A listing counts as the disk blocks its file takes, its share of the index
    /// and its records: a budget whose listings' share holds two such costs keeps
    /// two small listings, however small.
    #[test]
    fn a_listing_costs_its_file_blocks_index_share_and_records() {
        let (small, full) = (BLOCK - FRAME, BLOCK - FRAME + 1);
        assert_eq!(cost(1), BLOCK + LISTING_RECORDS);
        assert_eq!(cost(small), BLOCK + small / 4 + LISTING_RECORDS);
        assert_eq!(cost(full), 2 * BLOCK + full / 4 + LISTING_RECORDS);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let offers = one_listing_each(1..=3);
        assert!(offers.iter().all(|(_, envelope)| envelope.as_bytes().len() < BLOCK / 2));
        let two = 2 * cost(offers[0].1.as_bytes().len()) as u64;
        // Seven eighths of the budget, less the store's fixed part, for listings:
        // just over two of them.
        let config = BudgetConfig { max_bytes: (two + STORE_FIXED) * 8 / 7 + 8, ..BudgetConfig::default() };
        assert!(config.listing_bytes() >= two && config.listing_bytes() < two + 64);
        let budget = Budget::open(&store, NodeId([9; 32]), config).unwrap();
        for (m, envelope) in &offers {
            if budget.admit(m, envelope.as_bytes().len()).is_ok() {
                store.accept_manifest(m, envelope, false).unwrap();
                budget.stored(m, envelope.as_bytes().len());
                budget.evict().unwrap();
            }
        }
        assert_eq!(store.listing_sizes().unwrap().len(), 2);
        assert_eq!(budget.totals(), (2, two));
        // A restart counts the same.
        let reopened = Budget::open(&store, NodeId([9; 32]), config).unwrap();
        assert_eq!(reopened.totals(), (2, two));
    }

    /// A listing from an author dealt with is admitted, counted and left for
    /// the next eviction without waiting for `usage`, which a checking thread
    /// that a busy core holds up may hold (held here, by the test).
    #[test]
    fn a_listing_from_an_author_dealt_with_does_not_wait_for_the_counts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let config = BudgetConfig { max_listings: 2, ..BudgetConfig::default() };
        let budget = Arc::new(Budget::open(&store, NodeId([9; 32]), config).unwrap());
        let mut listings = one_listing_each(1..=3);
        let (favoured, envelope) = listings.pop().unwrap();
        for (m, envelope) in &listings {
            store.accept_manifest(m, envelope, false).unwrap();
            budget.stored(m, envelope.as_bytes().len());
        }
        budget.keep(PackId([0xee; 16]), favoured.author);
        let held = budget.usage.lock().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let other = budget.clone();
        std::thread::spawn(move || {
            let len = envelope.as_bytes().len();
            let admitted = other.admit(&favoured, len);
            other.stored_unless_busy(&favoured, len);
            tx.send((admitted, favoured.pack_id)).unwrap();
        });
        let (admitted, pack) =
            rx.recv_timeout(Duration::from_secs(10)).expect("the listing waited for the counts' lock");
        assert_eq!(admitted, Ok(()));
        drop(held);
        assert_eq!(budget.totals().0, 3, "counted by the next holder of the counts");
        assert!(budget.evict_again.load(Ordering::SeqCst), "no eviction asked for");
        let evicted = budget.evict().unwrap();
        assert_eq!(evicted.len(), 1);
        assert_ne!(evicted[0], pack, "the listing of the author dealt with was evicted");
        assert_eq!(budget.totals().0, 2);
    }

    /// Declined listings' records stay within their share of the budget: past
    /// it, some are forgotten, and counted. (A budget this small has no room for
    /// listings at all: every one is declined.)
    #[test]
    fn declined_listings_stay_within_their_share() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let config =
            BudgetConfig { max_bytes: DECLINED_SHARE * DECLINED_RECORD * 32, ..BudgetConfig::default() };
        assert_eq!((config.max_declined(), config.listing_bytes()), (32, 0));
        let budget = Budget::open(&store, NodeId([9; 32]), config).unwrap();
        for (m, envelope) in one_listing_each(1..=100) {
            assert!(budget.admit(&m, envelope.as_bytes().len()).is_err());
            assert!(store.declined() <= 32, "{} declined records kept", store.declined());
        }
        let forgotten = budget.stats.forgotten.load(Ordering::Relaxed);
        assert_eq!(forgotten as usize + store.declined(), 100, "every declined listing is kept or counted");
        assert!(store.declined() >= 30, "{} kept", store.declined());
    }

    /// With the totals full, a listing that eviction would drop first is declined
    /// before it is written; one from an author with less here is stored, and
    /// eviction takes from the author with the most.
    #[test]
    fn a_full_budget_declines_the_listing_it_would_evict_first() {
        use smpl_protocol::Signed;
        use smpl_testkit::manifest::{identity, manifest, sample};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let config = BudgetConfig { max_listings: 3, ..BudgetConfig::default() };
        let budget = Budget::open(&store, NodeId([9; 32]), config).unwrap();
        let (a, b, c) = (identity(1), identity(2), identity(3));
        let offer = |who: &smpl_protocol::Identity, slug: &str| {
            let m = manifest(who.node_id(), slug, 1, vec![sample("Kick.wav")]);
            let envelope = m.sign(who).unwrap();
            let len = envelope.as_bytes().len();
            budget.admit(&m, len)?;
            store.accept_manifest(&m, &envelope, false).unwrap();
            budget.stored(&m, len);
            budget.evict().unwrap();
            Ok::<_, String>(m.pack_id)
        };
        offer(&a, "a1").unwrap();
        offer(&a, "a2").unwrap();
        offer(&b, "b1").unwrap();
        let refused = offer(&b, "b2").unwrap_err();
        assert!(refused.contains("first evicted"), "{refused}");
        assert_eq!(budget.stats.refused.load(Ordering::Relaxed), 1);
        let c1 = offer(&c, "c1").unwrap();
        assert_eq!(budget.stats.evicted.load(Ordering::Relaxed), 1);
        let authors: Vec<NodeId> =
            store.listing_sizes().unwrap().into_iter().map(|(_, who, _)| who).collect();
        assert_eq!(authors.iter().filter(|who| **who == a.node_id()).count(), 1, "{authors:?}");
        assert!(store.manifest(&c1).unwrap().is_some());
    }

    /// Disk measured beyond what the budget counts holds the listings under their
    /// share, evicting to match, for as long as the peak is among the last
    /// measures; a measure far beyond it takes at most a quarter of the share,
    /// however much it says.
    #[test]
    fn disk_measured_beyond_the_count_evicts_up_to_a_quarter_of_the_share() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let offers = one_listing_each(1..=8);
        let each = cost(offers[0].1.as_bytes().len()) as u64;
        // Room for exactly eight listings.
        let config =
            BudgetConfig { max_bytes: (8 * each + STORE_FIXED) * 8 / 7 + 8, ..BudgetConfig::default() };
        let budget = Budget::open(&store, NodeId([9; 32]), config).unwrap();
        for (m, envelope) in &offers {
            budget.admit(m, envelope.as_bytes().len()).unwrap();
            store.accept_manifest(m, envelope, false).unwrap();
            budget.stored(m, envelope.as_bytes().len());
        }
        let counted = 8 * each + STORE_FIXED;
        assert!(budget.measured(counted).unwrap().is_empty(), "the disk as counted evicts nothing");
        // Two listings' worth more on disk than counted: two go.
        assert_eq!(budget.measured(counted + 2 * each).unwrap().len(), 2);
        assert_eq!(budget.totals(), (6, 6 * each));
        // The disk does not shrink as they go (sled keeps its file): the measure
        // now counts them as excess too, but no more than a quarter of the share
        // comes off it, so six of the eight listings' room stays.
        assert!(budget.measured(counted + 100 * each).unwrap().len() <= 1);
        assert!(budget.totals().0 >= 5, "{:?}", budget.totals());
        assert_eq!(budget.stats.evicted.load(Ordering::Relaxed), 8 - budget.totals().0 as u64);
        // The disk as counted again: the room stays kept for the peak until it
        // leaves the last measures, and then the whole share is open.
        let (kept, bytes) = budget.totals();
        let as_counted = bytes + store.declined() as u64 * DECLINED_RECORD + STORE_FIXED;
        budget.measured(as_counted).unwrap();
        assert!(budget.limit() < config.listing_bytes());
        for _ in 1..PEAK_MEASURES {
            budget.measured(as_counted).unwrap();
        }
        assert_eq!(budget.limit(), config.listing_bytes());
        assert_eq!(budget.totals().0, kept);
    }
}
