//! Data decoded once per segment and kept while the segment lives.
//!
//! Segments are immutable (deletes only mark documents), so what is derived from a
//! segment's columns stays valid until a merge replaces the segment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tantivy::index::SegmentId;
use tantivy::{Searcher, SearcherGeneration, SegmentReader, Warmer};

use crate::error::IndexError;
use crate::results::Hit;

/// What is decoded from one segment.
pub(crate) trait SegmentData: Sized {
    fn load(segment: &SegmentReader) -> Result<Self, IndexError>;
}

/// `T` for each live segment, by segment id.
pub(crate) struct SegmentCache<T>(Mutex<HashMap<SegmentId, Arc<T>>>);

impl<T> Default for SegmentCache<T> {
    fn default() -> Self {
        SegmentCache(Mutex::default())
    }
}

impl<T: SegmentData> SegmentCache<T> {
    /// `T` of every segment of `searcher`, in segment order (index = segment
    /// ordinal), decoding those not seen yet. Decoding happens outside the lock, so
    /// a search whose segments are all decoded never waits for another's.
    pub fn segments(&self, searcher: &Searcher) -> Result<Vec<Arc<T>>, IndexError> {
        let readers = searcher.segment_readers();
        let mut out: Vec<Option<Arc<T>>> = {
            let cache = self.0.lock().map_err(|_| IndexError::Poisoned)?;
            readers.iter().map(|s| cache.get(&s.segment_id()).cloned()).collect()
        };
        for (slot, segment) in out.iter_mut().zip(readers) {
            if slot.is_none() {
                let data = Arc::new(T::load(segment)?);
                let mut cache = self.0.lock().map_err(|_| IndexError::Poisoned)?;
                *slot = Some(cache.entry(segment.segment_id()).or_insert(data).clone());
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// The segments decoded and kept.
    #[cfg(test)]
    pub fn cached(&self) -> Vec<SegmentId> {
        self.0.lock().unwrap().keys().copied().collect()
    }
}

/// Registered with the index reader, the cache decodes each new searcher's segments
/// before searches see it, on the thread that reloads (the writer's, at its lower
/// priority): a merge's new segment then costs no search its decoding, which at
/// 100,000 samples is tens of milliseconds.
impl<T: SegmentData + Send + Sync> Warmer for SegmentCache<T> {
    fn warm(&self, searcher: &Searcher) -> tantivy::Result<()> {
        // A segment that fails to decode is left for the search that needs it to report.
        self.segments(searcher).ok();
        Ok(())
    }

    /// Forgets the segments no live searcher holds.
    fn garbage_collect(&self, live: &[&SearcherGeneration]) {
        if let Ok(mut cache) = self.0.lock() {
            cache.retain(|id, _| live.iter().any(|generation| generation.segments().contains_key(id)));
        }
    }
}

/// Hits read from the stored documents, by segment and document, so that a search
/// after a reload does not read them again: tantivy's own cache of decompressed
/// store blocks belongs to a searcher and starts empty at each reload, which on a
/// node taking listings in is every commit. Past [`HitCache::CAPACITY`] hits it
/// starts over.
#[derive(Default)]
pub(crate) struct HitCache(Mutex<HashMap<SegmentId, HashMap<tantivy::DocId, Hit>>>);

impl HitCache {
    /// About 300 bytes a hit.
    const CAPACITY: usize = 8_192;

    /// The hit of `doc` in `segment`, read with `read` when not held, with `score`.
    pub fn get_or_read(
        &self,
        segment: SegmentId,
        doc: tantivy::DocId,
        score: f32,
        read: impl FnOnce() -> Result<Hit, IndexError>,
    ) -> Result<Hit, IndexError> {
        let held = {
            let cache = self.0.lock().map_err(|_| IndexError::Poisoned)?;
            cache.get(&segment).and_then(|docs| docs.get(&doc)).cloned()
        };
        let mut hit = match held {
            Some(hit) => hit,
            None => {
                let hit = read()?;
                let mut cache = self.0.lock().map_err(|_| IndexError::Poisoned)?;
                if cache.values().map(HashMap::len).sum::<usize>() >= Self::CAPACITY {
                    cache.clear();
                }
                cache.entry(segment).or_default().insert(doc, hit.clone());
                hit
            }
        };
        hit.score = score;
        Ok(hit)
    }
}

impl Warmer for HitCache {
    fn warm(&self, _: &Searcher) -> tantivy::Result<()> {
        Ok(())
    }

    /// Forgets the hits of segments no live searcher holds.
    fn garbage_collect(&self, live: &[&SearcherGeneration]) {
        if let Ok(mut cache) = self.0.lock() {
            cache.retain(|id, _| live.iter().any(|generation| generation.segments().contains_key(id)));
        }
    }
}
