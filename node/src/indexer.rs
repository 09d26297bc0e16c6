//! The indexer: a thread that drains the durable index queue into tantivy in
//! batched commits. Gossip bursts and publishes only append to the queue; a crash
//! loses nothing because entries leave the queue only after their commit (the
//! commit is not synced, but a crashed process's writes are in the kernel's
//! hands, and an index the machine stopped under is rebuilt: `smpl_index::Index::close`).

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use smpl_index::{Index, IndexOp};
use smpl_protocol::PackId;
use tokio::sync::{mpsc, oneshot};

use crate::store::Store;

/// Most queue entries folded into one tantivy commit.
const BATCH: usize = 2048;
/// Most samples (index documents) held in memory for one commit: a burst of large
/// packs is committed in steps instead of decoded all at once (about 10 MB of
/// documents per 10,000 samples).
const BATCH_SAMPLES: usize = 10_000;
/// Least time from the start of one drain to the start of the next that a wake
/// starts. Listings trickling in from a flood each wake the indexer; drained at
/// once, each would be a commit of a few listings, and tantivy's work per commit
/// (a segment written, merged into others, the readers reopened) took
/// half of what the node used of its core. A drain commits once, and again at
/// once only while the queue holds more than a batch: a steady stream is
/// committed once an interval, not commit after commit as it comes (figures in
/// `docs/BENCHMARKS.md`, "Index under churn"). The node's own packs and those of
/// authors it has dealt with do not wait: they are indexed ahead of the queue
/// ([`IndexerHandle::index_now`]).
const DRAIN_INTERVAL: Duration = Duration::from_millis(500);

enum Command {
    /// New entries are in the queue.
    Wake,
    /// Reply once the queue is empty.
    Flush(oneshot::Sender<()>),
    /// Empty the index and queue every stored pack again.
    Rebuild(oneshot::Sender<()>),
}

/// A cloneable handle to the indexer thread. Dropping every handle stops it.
#[derive(Clone)]
pub struct IndexerHandle {
    tx: mpsc::Sender<Command>,
    store: Store,
    index: Arc<Index>,
}

impl IndexerHandle {
    /// Starts the indexer; it first drains whatever a previous run left queued.
    pub fn spawn(store: Store, index: Arc<Index>) -> (IndexerHandle, thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(64);
        let join = {
            let (store, index) = (store.clone(), index.clone());
            thread::Builder::new()
                .name("smpl-indexer".into())
                .spawn(move || run(store, index, rx))
                .expect("spawning the indexer thread")
        };
        let _ = tx.try_send(Command::Wake);
        (IndexerHandle { tx, store, index }, join)
    }

    /// Indexes the current state of `pack` now, on the calling thread, ahead of
    /// whatever the queue holds: for the node's own packs and listings of authors
    /// it has dealt with, which a flood of others' listings must not hold up. Its
    /// queue entry stays, and indexing it again later changes nothing. Blocks.
    pub fn index_now(&self, pack: &PackId) {
        let op = match self.store.manifest(pack) {
            Ok(Some((manifest, _))) => IndexOp::Upsert(manifest),
            Ok(None) => IndexOp::Remove(*pack),
            Err(e) => {
                tracing::warn!(%pack, "reading a listing to index it failed (it stays queued): {e}");
                return;
            }
        };
        if let Err(e) = self.index.apply(&[op]) {
            tracing::warn!(%pack, "indexing a listing failed (it stays queued): {e}");
        }
    }

    pub fn wake(&self) {
        let _ = self.tx.try_send(Command::Wake);
    }

    /// Waits until every entry queued before it is in the index.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Rebuilds the index from the manifests in the store.
    pub async fn rebuild(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Rebuild(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

fn run(store: Store, index: Arc<Index>, mut rx: mpsc::Receiver<Command>) {
    // Indexing a flood of listings can take the cores for minutes, and the queue
    // only has to catch up: searches and the network go first.
    crate::util::background::lower_priority();
    if index.needs_rebuild() {
        rebuild(&store, &index, &rx);
    }
    let mut drained: Option<Instant> = None;
    // A command read while passing over wakes, served next.
    let mut next = None;
    while let Some(cmd) = next.take().or_else(|| rx.blocking_recv()) {
        match cmd {
            Command::Wake => {
                if let Some(at) = drained {
                    thread::sleep(DRAIN_INTERVAL.saturating_sub(at.elapsed()));
                }
                // This drain serves the wakes that came while it slept.
                next = std::iter::from_fn(|| rx.try_recv().ok()).find(|cmd| !matches!(cmd, Command::Wake));
                drained = Some(Instant::now());
                drain(&store, &index, &rx);
            }
            Command::Flush(reply) => {
                drain(&store, &index, &rx);
                let _ = reply.send(());
            }
            Command::Rebuild(reply) => {
                rebuild(&store, &index, &rx);
                let _ = reply.send(());
            }
        }
        // Every handle is gone: the node stops, and the wakes still buffered would
        // find the channel closed too.
        if rx.is_closed() {
            return;
        }
    }
}

fn rebuild(store: &Store, index: &Index, rx: &mpsc::Receiver<Command>) {
    if let Err(e) = index.clear() {
        tracing::error!("clearing the index failed: {e}");
        return;
    }
    match store.pack_seqs() {
        Ok(packs) => {
            if let Err(e) = store.enqueue(packs.into_iter().map(|(id, _)| id)) {
                tracing::error!("queueing packs for a rebuild failed: {e}");
            }
        }
        Err(e) => tracing::error!("listing packs for a rebuild failed: {e}"),
    }
    drain(store, index, rx);
}

/// Indexes queued packs in batches until a commit takes all the queue held when
/// it began (what comes in meanwhile has woken the indexer, which comes back to
/// it), the node stops (every handle dropped: a queue of a large catalogue takes
/// minutes) or an error stops it; the entries left stay queued for the next wake
/// or start.
fn drain(store: &Store, index: &Index, rx: &mpsc::Receiver<Command>) {
    let mut batches = 0;
    loop {
        let entries = match store.queue_peek(BATCH) {
            Ok(entries) if entries.is_empty() => break,
            Ok(entries) => entries,
            Err(e) => {
                tracing::error!("reading the index queue failed: {e}");
                return;
            }
        };
        if rx.is_closed() {
            tracing::info!("the node stops: the listings still queued are indexed at the next start");
            return;
        }
        let mut ops = Vec::with_capacity(entries.len());
        let mut seen = std::collections::HashSet::new();
        let mut samples = 0;
        // The entries taken, in queue order, up to BATCH_SAMPLES samples; an op reads
        // the pack's current state, so a pack queued twice needs one op.
        let mut taken = 0;
        for (_, pack) in &entries {
            if samples >= BATCH_SAMPLES {
                break;
            }
            taken += 1;
            if !seen.insert(*pack) {
                continue;
            }
            match store.manifest(pack) {
                Ok(Some((manifest, _))) => {
                    samples += manifest.samples.len();
                    ops.push(IndexOp::Upsert(manifest));
                }
                Ok(None) => ops.push(IndexOp::Remove(*pack)),
                Err(e) => {
                    tracing::warn!("dropping unreadable pack {pack} from the index: {e}");
                    ops.push(IndexOp::Remove(*pack));
                }
            }
        }
        let peeked = entries.len();
        let entries = &entries[..taken];
        batches += 1;
        if let Err(e) = index.apply(&ops) {
            tracing::error!("index commit failed, will retry: {e}");
            return;
        }
        let ids: Vec<u64> = entries.iter().map(|(id, _)| *id).collect();
        if let Err(e) = store.queue_remove(&ids) {
            tracing::error!("removing drained queue entries failed: {e}");
            return;
        }
        if taken == peeked && peeked < BATCH {
            break;
        }
    }
    if batches > 1 {
        crate::util::memory::release_free_memory();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stores a listing of one sample by `author` under `slug`, for the indexer.
    fn store_listing(store: &Store, author: &smpl_protocol::Identity, slug: &str) {
        use smpl_protocol::Signed;
        let sample = smpl_testkit::manifest::sample(&format!("{slug}.wav"));
        let manifest = smpl_testkit::manifest::manifest(author.node_id(), slug, 1, vec![sample]);
        store.accept_manifest(&manifest, &manifest.sign(author).unwrap(), false).unwrap();
    }

    /// Listings stored one after another, each waking the indexer (a flood's
    /// trickle), are committed together rather than one commit each.
    #[test]
    fn wakes_close_together_share_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let index = Arc::new(Index::open_in_ram().unwrap());
        let (handle, join) = IndexerHandle::spawn(store.clone(), index.clone());
        let author = smpl_protocol::Identity::from_secret_bytes([7; 32]);
        const LISTINGS: usize = 20;
        for n in 0..LISTINGS {
            store_listing(&store, &author, &format!("trickle-{n}"));
            handle.wake();
            // Longer than a commit takes here: without the interval, each wake
            // would find the indexer idle and commit its one listing.
            std::thread::sleep(Duration::from_millis(150));
        }
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(handle.flush());
        assert_eq!(index.packs().unwrap().len(), LISTINGS, "every listing is indexed");
        // 20 wakes in 3 s: a commit at the first, one at most every
        // DRAIN_INTERVAL after it (about 7), and the flush's.
        assert!(index.commits() <= 10, "{} commits for {LISTINGS} listings", index.commits());
        drop(handle);
        join.join().unwrap();
    }

    /// Listings stored in a steady stream, faster than commits take, are
    /// committed once a drain interval, not commit after commit as they come.
    #[test]
    fn a_steady_stream_is_committed_once_an_interval() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let index = Arc::new(Index::open_in_ram().unwrap());
        let (handle, join) = IndexerHandle::spawn(store.clone(), index.clone());
        let author = smpl_protocol::Identity::from_secret_bytes([8; 32]);
        let started = Instant::now();
        let mut stored = 0;
        while started.elapsed() < Duration::from_secs(2) {
            store_listing(&store, &author, &format!("stream-{stored}"));
            handle.wake();
            stored += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        let streamed = started.elapsed();
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(handle.flush());
        assert_eq!(index.packs().unwrap().len(), stored, "every listing is indexed");
        // A commit at the start (the first wake's, and the rebuild's of the new
        // index), one every DRAIN_INTERVAL after it, and the flush's.
        let most = 3 + (streamed.as_millis() / DRAIN_INTERVAL.as_millis()) as u64;
        assert!(index.commits() <= most, "{} commits for {stored} listings in {streamed:?}", index.commits());
        drop(handle);
        join.join().unwrap();
    }

    /// A node that stops while a long queue is being indexed does not wait for all
    /// of it: the indexer stops between commits, and the rest is indexed at the
    /// next start.
    #[test]
    fn the_indexer_stops_between_commits_and_the_rest_waits_for_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let queued = 20 * BATCH;
        store.enqueue((0..queued as u128).map(|n| PackId(n.to_be_bytes()))).unwrap();
        let index = Arc::new(Index::open_in_ram().unwrap());

        let (handle, join) = IndexerHandle::spawn(store.clone(), index.clone());
        drop(handle);
        join.join().unwrap();
        let left = store.queue_len();
        assert!(left > 0, "the indexer drained all {queued} queued entries before it stopped");

        let (handle, join) = IndexerHandle::spawn(store.clone(), index);
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(handle.flush());
        assert_eq!(store.queue_len(), 0, "the next start indexes what was left");
        drop(handle);
        join.join().unwrap();
    }
}
