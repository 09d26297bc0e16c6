//! Data decoded once per segment and kept while the segment lives.
//!
//! Segments are immutable (deletes only mark documents), so what is derived from a
//! segment's columns stays valid until a merge replaces the segment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tantivy::index::SegmentId;
use tantivy::{Searcher, SearcherGeneration, SegmentReader, Warmer};

use crate::error::IndexError;

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
