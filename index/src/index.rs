//! [`Index`]: the tantivy index with its one writer and its reader.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use smpl_protocol::{Manifest, PackId};
use tantivy::directory::{Advice, MmapDirectory};
use tantivy::indexer::UserOperation;
use tantivy::query::EnableScoring;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    DocAddress, Executor, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, Searcher, TantivyDocument,
    TantivyError, Term, Warmer,
};

use crate::arrays::{SearchedArrays, SegmentArrays};
use crate::collector::{Collected, Ranked, SearchCollector};
use crate::directory::{self, UnsyncedDirectory};
use crate::document::{documents, hit_from_stored, pack_from_halves};
use crate::error::IndexError;
use crate::query::Plan;
use crate::results::{Hit, SearchQuery, SearchResults, Sort};
use crate::schema::{Fields, SCHEMA_VERSION, VERSION_FILE, names, schema};
use crate::segment_cache::{HitCache, SegmentCache};
use crate::similar::{self, VectorCache};
use crate::tokenizer::{ANALYZER, analyzer, indexing_analyzer};

/// One change to the index.
// Ops live briefly in small batches; boxing the manifest would only burden callers.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum IndexOp {
    /// Index this manifest, replacing every document of its pack.
    Upsert(Manifest),
    /// Delete every document of this pack.
    Remove(PackId),
}

/// How much the index writer may use.
#[derive(Clone, Debug)]
pub struct IndexOptions {
    /// Indexing threads (each writes its own segments).
    pub writer_threads: usize,
    /// Total indexing memory before a segment is flushed, 15 MB per thread at least
    /// (a smaller heap runs fewer threads).
    pub writer_heap_bytes: usize,
    /// Read every page of the index in when it is opened: no query waits for a
    /// page, and the whole index is in the process's memory. Without it, pages are
    /// read as queries first touch them, and only those count in memory.
    pub preload: bool,
}

impl Default for IndexOptions {
    /// Two threads (one on a single-core machine) sharing 64 MiB.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        IndexOptions { writer_threads: cores.clamp(1, 2), writer_heap_bytes: 64 << 20, preload: true }
    }
}

const MIN_HEAP_PER_THREAD: usize = 15_000_000;

/// The path an index in memory reports.
const IN_RAM: &str = ":memory:";

/// The local search index: one document per sample.
///
/// It is `Sync`: [`apply`](Index::apply) takes the writer lock, searches run
/// concurrently on the last committed state. Every [`apply`](Index::apply) is one
/// commit, after which searches see the whole batch, never part of it.
pub struct Index {
    index: tantivy::Index,
    writer: Mutex<Option<IndexWriter>>,
    reader: IndexReader,
    fields: Fields,
    analyzer: TextAnalyzer,
    options: IndexOptions,
    needs_rebuild: bool,
    path: PathBuf,
    vectors: VectorCache,
    arrays: Arc<SegmentCache<SegmentArrays>>,
    hits: Arc<HitCache>,
    /// Runs a search's segments: on the calling thread, or on search threads.
    executor: Executor,
    /// Batches committed since the index was opened.
    commits: AtomicU64,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("path", &self.path)
            .field("needs_rebuild", &self.needs_rebuild)
            .finish_non_exhaustive()
    }
}

impl Index {
    /// Opens the index in `dir`, creating it (and `dir`) if needed.
    ///
    /// An index written with another schema version, or one tantivy cannot open, is
    /// wiped and created empty; [`needs_rebuild`](Index::needs_rebuild) then says so.
    pub fn open(dir: &Path) -> Result<Index, IndexError> {
        Index::open_with(dir, IndexOptions::default())
    }

    /// [`open`](Index::open) with explicit writer options.
    pub fn open_with(dir: &Path, options: IndexOptions) -> Result<Index, IndexError> {
        let io = |source| IndexError::Io { path: dir.to_path_buf(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let (schema, fields) = schema();
        let existing = dir.join("meta.json").exists();
        let version = std::fs::read_to_string(dir.join(VERSION_FILE)).ok();
        let current = version.as_deref().map(str::trim) == Some(&SCHEMA_VERSION.to_string());
        let lost = directory::lost_writes(dir);
        if lost {
            tracing::warn!(
                "the search index in {} was not synced before the machine stopped: it is rebuilt from the store",
                dir.display()
            );
        }
        let opened = if existing && current && !lost {
            match directory(dir, options.preload).and_then(tantivy::Index::open) {
                Ok(index) if index.schema() == schema => Some(index),
                Ok(_) => None,
                Err(e @ TantivyError::LockFailure(..)) => {
                    return Err(IndexError::Locked { path: dir.to_path_buf(), source: e });
                }
                Err(_) => None,
            }
        } else {
            None
        };
        let (index, needs_rebuild) = match opened {
            Some(index) => {
                directory::mark_unsynced(dir).map_err(io)?;
                (index, false)
            }
            None => {
                if existing || version.is_some() || lost {
                    wipe(dir).map_err(io)?;
                }
                directory::mark_unsynced(dir).map_err(io)?;
                let index = directory(dir, options.preload)
                    .and_then(|d| tantivy::Index::create(d, schema, IndexSettings::default()))
                    .map_err(|source| IndexError::Open { path: dir.to_path_buf(), source })?;
                write_version(dir).map_err(io)?;
                (index, true)
            }
        };
        Index::from_tantivy(index, fields, options, needs_rebuild, dir.to_path_buf())
    }

    /// A fresh index in memory (for tests and benchmarks).
    pub fn open_in_ram() -> Result<Index, IndexError> {
        Index::open_in_ram_with(IndexOptions::default())
    }

    /// [`open_in_ram`](Index::open_in_ram) with explicit writer options.
    pub fn open_in_ram_with(options: IndexOptions) -> Result<Index, IndexError> {
        let (schema, fields) = schema();
        let index = tantivy::Index::create_in_ram(schema);
        Index::from_tantivy(index, fields, options, true, PathBuf::from(IN_RAM))
    }

    fn from_tantivy(
        index: tantivy::Index,
        fields: Fields,
        options: IndexOptions,
        needs_rebuild: bool,
        path: PathBuf,
    ) -> Result<Index, IndexError> {
        let analyzer = analyzer();
        index.tokenizers().register(ANALYZER, indexing_analyzer());
        let writer = new_writer(&index, &options, &path)?;
        let arrays = Arc::new(SegmentCache::<SegmentArrays>::default());
        let hits = Arc::new(HitCache::default());
        let warmers =
            vec![Arc::downgrade(&arrays) as Weak<dyn Warmer>, Arc::downgrade(&hits) as Weak<dyn Warmer>];
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .warmers(warmers)
            .try_into()
            .map_err(|source| IndexError::Open { path: path.clone(), source })?;
        Ok(Index {
            index,
            writer: Mutex::new(Some(writer)),
            reader,
            fields,
            analyzer,
            options,
            needs_rebuild,
            path,
            vectors: VectorCache::default(),
            arrays,
            hits,
            executor: Executor::single_thread(),
            commits: AtomicU64::new(0),
        })
    }

    /// Searches its segments on `threads` threads of their own (the calling thread
    /// alone with 1): a broad search over several large segments answers in about
    /// two thirds of the time on two. The threads are started here and take the
    /// caller's scheduling priority.
    pub fn set_search_threads(&mut self, threads: usize) -> Result<(), IndexError> {
        self.executor = if threads > 1 {
            Executor::multi_thread(threads, "smpl-search-").map_err(IndexError::search)?
        } else {
            Executor::single_thread()
        };
        Ok(())
    }

    /// Whether this index started empty (new, or wiped because it was written by
    /// another schema version or was unreadable), so the caller should re-index its
    /// manifests.
    pub fn needs_rebuild(&self) -> bool {
        self.needs_rebuild
    }

    /// Applies a batch in one commit. On error nothing of the batch is visible.
    pub fn apply(&self, ops: &[IndexOp]) -> Result<(), IndexError> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut guard = self.writer()?;
        let writer = guard.as_mut().ok_or(IndexError::Closed)?;
        let result = (|| {
            for op in ops {
                match op {
                    IndexOp::Upsert(m) => {
                        let mut batch = vec![UserOperation::Delete(self.pack_term(&m.pack_id))];
                        batch.extend(documents(&self.fields, m).into_iter().map(UserOperation::Add));
                        writer.run(batch)?;
                    }
                    IndexOp::Remove(id) => {
                        writer.delete_term(self.pack_term(id));
                    }
                }
            }
            writer.commit()
        })();
        if let Err(source) = result {
            let _ = writer.rollback();
            return Err(IndexError::Write { ops: ops.len(), source });
        }
        drop(guard);
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.reload(ops.len())
    }

    /// Batches committed by [`apply`](Index::apply) since the index was opened.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Deletes every document.
    pub fn clear(&self) -> Result<(), IndexError> {
        let mut guard = self.writer()?;
        let writer = guard.as_mut().ok_or(IndexError::Closed)?;
        let result = writer.delete_all_documents().and_then(|_| writer.commit());
        if let Err(source) = result {
            let _ = writer.rollback();
            return Err(IndexError::Write { ops: 1, source });
        }
        drop(guard);
        self.reload(1)
    }

    /// Blocks until background segment merges finish (fewer segments search
    /// faster), then makes the merged segments visible.
    pub fn wait_merges(&self) -> Result<(), IndexError> {
        let mut guard = self.writer()?;
        if let Some(writer) = guard.take() {
            writer.wait_merging_threads().map_err(|source| IndexError::Write { ops: 0, source })?;
        }
        *guard = Some(new_writer(&self.index, &self.options, &self.path)?);
        drop(guard);
        self.reload(0)
    }

    /// Stops the writer once its merges are done and syncs every file of the index
    /// to the disk, so that it is kept as it is even if the machine stops before
    /// the next open. Commits until now were not synced (module `directory`);
    /// without a close, an index the machine stopped under is rebuilt. Later
    /// [`apply`](Index::apply) calls fail.
    pub fn close(&self) -> Result<(), IndexError> {
        let mut guard = self.writer()?;
        if let Some(writer) = guard.take() {
            writer.wait_merging_threads().map_err(|source| IndexError::Write { ops: 0, source })?;
        }
        if self.path.as_os_str() == IN_RAM {
            return Ok(());
        }
        directory::sync_files(&self.path).map_err(|source| IndexError::Io { path: self.path.clone(), source })
    }

    /// Every indexed pack with the seq of its indexed manifest, ordered by pack id.
    pub fn packs(&self) -> Result<Vec<(PackId, u64)>, IndexError> {
        let searcher = self.reader.searcher();
        let mut out = BTreeMap::new();
        for segment in searcher.segment_readers() {
            let ff = segment.fast_fields();
            let hi = ff.u64(names::PACK_HI).map_err(IndexError::search)?;
            let lo = ff.u64(names::PACK_LO).map_err(IndexError::search)?;
            let seq = ff.u64(names::SEQ).map_err(IndexError::search)?;
            for doc in segment.doc_ids_alive() {
                if let (Some(hi), Some(lo)) = (hi.first(doc), lo.first(doc)) {
                    out.insert(pack_from_halves(hi, lo), seq.first(doc).unwrap_or(0));
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// The segments a search goes through now.
    pub fn segments(&self) -> usize {
        self.reader.searcher().segment_readers().len()
    }

    /// The number of indexed samples.
    pub fn num_samples(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Runs a search on the last committed state.
    pub fn search(&self, q: &SearchQuery) -> Result<SearchResults, IndexError> {
        let searcher = self.reader.searcher();
        let f = &self.fields;
        let ids = searcher.segment_readers().iter().map(|s| s.segment_id());
        let arrays: SearchedArrays = Arc::new(ids.zip(self.arrays.segments(&searcher)?).collect());
        let plan = Plan::new(f, &mut self.analyzer.clone(), q, &searcher, arrays.clone())?;
        if let Some(target) = &q.similar_to {
            let query = plan.query(f, None);
            let filter = (!plan.is_everything()).then_some(&*query);
            let top_k = q.offset.saturating_add(q.limit);
            let (hits, total) = similar::nearest(
                &searcher,
                f,
                &self.vectors,
                &target.pack_id,
                &target.sample,
                filter,
                top_k,
            )?;
            let hits = hits.into_iter().skip(q.offset).collect();
            return Ok(SearchResults { total, hits, facets: Default::default() });
        }
        let has_text = !plan.words.is_empty();
        let newest = q.sort == Sort::Newest || !has_text;
        let top_k = q.offset.saturating_add(q.limit);
        let own = plan.own_words(f);
        let collector = |top_k| SearchCollector {
            arrays: &arrays,
            own: &own,
            packs: q.packs,
            newest,
            scoring: has_text,
            top_k,
        };
        let scoring = if has_text {
            EnableScoring::enabled_from_searcher(&searcher)
        } else {
            EnableScoring::disabled_from_searcher(&searcher)
        };
        let run = |query: &dyn tantivy::query::Query, top_k| {
            searcher
                .search_with_executor(query, &collector(top_k), &self.executor, scoring)
                .map_err(IndexError::search)
        };
        let mut found = run(&*plan.query(f, None), top_k)?;
        if has_text && found.total < top_k {
            let variants = plan.variants(f, &searcher)?;
            if variants.iter().any(|v| !v.is_empty()) {
                let wide = run(&*plan.query(f, Some(&variants)), top_k.saturating_add(found.ranked.len()))?;
                found = if newest { wide } else { exact_first(found, wide, q.packs, top_k) };
            }
        }
        let mut hits = Vec::with_capacity(q.limit.min(found.ranked.len()));
        for r in found.ranked.iter().skip(q.offset).take(q.limit) {
            let mut hit = self.hit(&searcher, r.doc, r.score)?;
            if q.packs {
                hit.sample = None;
                hit.kind = None;
                hit.bpm = None;
                hit.key = None;
                hit.note = None;
                hit.duration_ms = None;
            }
            hits.push(hit);
        }
        Ok(SearchResults { total: found.total, hits, facets: found.facets })
    }

    fn hit(&self, searcher: &Searcher, doc: DocAddress, score: f32) -> Result<Hit, IndexError> {
        let segment = searcher.segment_reader(doc.segment_ord).segment_id();
        self.hits.get_or_read(segment, doc.doc_id, score, || {
            let stored: TantivyDocument = searcher.doc(doc).map_err(IndexError::search)?;
            hit_from_stored(&self.fields, &stored, score, || format!("{doc:?}"))
        })
    }

    fn pack_term(&self, id: &PackId) -> Term {
        Term::from_field_text(self.fields.pack_id, &id.to_hex())
    }

    fn writer(&self) -> Result<MutexGuard<'_, Option<IndexWriter>>, IndexError> {
        self.writer.lock().map_err(|_| IndexError::Poisoned)
    }

    fn reload(&self, ops: usize) -> Result<(), IndexError> {
        self.reader.reload().map_err(|source| IndexError::Write { ops, source })
    }
}

/// Exact matches first (in their order), then matches that needed a typo.
fn exact_first(exact: Collected, wide: Collected, packs: bool, top_k: usize) -> Collected {
    let key = |r: &Ranked| {
        if packs { (r.pack, 0, 0) } else { (0, r.doc.segment_ord, r.doc.doc_id) }
    };
    let seen: HashSet<_> = exact.ranked.iter().map(key).collect();
    let mut ranked = exact.ranked;
    ranked.extend(wide.ranked.into_iter().filter(|r| !seen.contains(&key(r))));
    ranked.truncate(top_k);
    Collected { total: wide.total, facets: wide.facets, ranked }
}

fn new_writer(
    index: &tantivy::Index,
    options: &IndexOptions,
    path: &Path,
) -> Result<IndexWriter, IndexError> {
    // Each thread needs MIN_HEAP_PER_THREAD of the heap: a small heap gets fewer threads.
    let threads = options.writer_threads.min(options.writer_heap_bytes / MIN_HEAP_PER_THREAD).max(1);
    let heap = options.writer_heap_bytes.max(threads * MIN_HEAP_PER_THREAD);
    index.writer_with_num_threads(threads, heap).map_err(|source| match source {
        TantivyError::LockFailure(..) => IndexError::Locked { path: path.to_path_buf(), source },
        source => IndexError::Open { path: path.to_path_buf(), source },
    })
}

/// The index files in `dir`, memory-mapped; with `preload`, with their page tables
/// filled at once (`MADV_POPULATE_READ` on Linux; older kernels ignore it). Mapped
/// lazily, every page a query touches for the first time in the process costs a
/// page fault, which on a freshly opened index costs more than the query itself
/// (figures in `docs/BENCHMARKS.md`, "Search index"). Commits are not synced
/// (module `directory`).
fn directory(dir: &Path, preload: bool) -> tantivy::Result<UnsyncedDirectory> {
    #[cfg(target_os = "linux")]
    let ahead = Advice::PopulateRead;
    #[cfg(not(target_os = "linux"))]
    let ahead = Advice::WillNeed;
    let advice = if preload { ahead } else { Advice::Normal };
    let mapped = MmapDirectory::open_with_madvice(dir, advice).map_err(TantivyError::from)?;
    Ok(UnsyncedDirectory::new(mapped, dir))
}

/// Removes everything inside `dir` (an index of another version).
fn wipe(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

fn write_version(dir: &Path) -> std::io::Result<()> {
    let tmp = dir.join(format!("{VERSION_FILE}.tmp"));
    std::fs::write(&tmp, format!("{SCHEMA_VERSION}\n"))?;
    std::fs::rename(&tmp, dir.join(VERSION_FILE))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::{Duration, Instant};

    use smpl_testkit::manifest::{manifest, node, sample};
    use tantivy::index::SegmentId;

    use super::*;

    fn live(index: &Index) -> BTreeSet<SegmentId> {
        index.reader.searcher().segment_readers().iter().map(|s| s.segment_id()).collect()
    }

    fn cached(index: &Index) -> BTreeSet<SegmentId> {
        index.arrays.cached().into_iter().collect()
    }

    /// No search pays for decoding a segment: each one is decoded as the writer
    /// reloads, before a search can see it, and forgotten once merged away.
    #[test]
    fn segments_are_decoded_before_searches_see_them_and_forgotten_when_merged() {
        let options = IndexOptions { writer_threads: 1, writer_heap_bytes: 15_000_000, preload: true };
        let index = Index::open_in_ram_with(options).unwrap();
        for n in 0..12 {
            let m = manifest(node(n), &format!("pack-{n}"), 1, vec![sample("a.wav"), sample("b.wav")]);
            index.apply(&[IndexOp::Upsert(m)]).unwrap();
            let live = live(&index);
            assert!(live.is_subset(&cached(&index)), "pack {n}: {live:?} not all decoded");
        }
        index.wait_merges().unwrap();
        assert!(live(&index).len() < 12, "twelve commits merged into fewer segments");
        let deadline = Instant::now() + Duration::from_secs(10);
        while cached(&index) != live(&index) {
            assert!(Instant::now() < deadline, "merged-away segments still cached");
            std::thread::sleep(Duration::from_millis(100));
        }
        let all = SearchQuery { limit: 100, ..Default::default() };
        assert_eq!(index.search(&all).unwrap().total, 24);
    }
}
