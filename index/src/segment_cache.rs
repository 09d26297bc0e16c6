//! Data decoded once per segment and kept while the segment lives.
//!
//! Segments are immutable (deletes only mark documents), so what is derived from a
//! segment's columns stays valid until a merge replaces the segment.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tantivy::index::SegmentId;
use tantivy::{Searcher, SegmentReader};

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
    /// ordinal), decoding those not seen yet; forgets segments that are gone.
    pub fn segments(&self, searcher: &Searcher) -> Result<Vec<Arc<T>>, IndexError> {
        let mut cache = self.0.lock().map_err(|_| IndexError::Poisoned)?;
        let live: HashSet<SegmentId> = searcher.segment_readers().iter().map(|s| s.segment_id()).collect();
        cache.retain(|id, _| live.contains(id));
        let mut out = Vec::with_capacity(live.len());
        for segment in searcher.segment_readers() {
            let data = match cache.get(&segment.segment_id()) {
                Some(data) => data.clone(),
                None => {
                    let data = Arc::new(T::load(segment)?);
                    cache.insert(segment.segment_id(), data.clone());
                    data
                }
            };
            out.push(data);
        }
        Ok(out)
    }
}
