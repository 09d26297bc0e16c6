//! What the search reads for every match, decoded once per segment into plain
//! arrays ([`SegmentArrays`], about 13 bytes a sample plus 4 per sample tag), and
//! the kind, BPM and price filter that checks them ([`FieldFilter`]).
//!
//! Read through tantivy's columns, each value cost a dynamic call or two and, for
//! optional and multi-valued columns, a rank lookup: at a million samples a word
//! matching 388,000 of them spent 5.3 of its 15 ms reading sample tags and about
//! a quarter reading pack ids, and a BPM range checked per match through the range
//! query's column cost about as much again. An array lookup is a load from memory
//! that the previous match's lookup has usually brought into cache.

use std::fmt;
use std::sync::Arc;

use smpl_protocol::SampleKind;
use tantivy::index::SegmentId;
use tantivy::query::{ConstScorer, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SeekDangerResult, SegmentReader, TERMINATED, TantivyError};

use crate::error::IndexError;
use crate::schema::names;
use crate::segment_cache::SegmentData;

/// Per document of one segment: its kind-key code, BPM, own tags, and the run of
/// consecutive documents of one pack it belongs to.
pub(crate) struct SegmentArrays {
    /// `facet_code` (kind bit, key, whether the sample has tags of its own).
    pub codes: Vec<u8>,
    /// Tempo, NaN when unknown.
    bpm: Vec<f32>,
    /// Index into `runs`.
    pub run: Vec<u32>,
    pub runs: Vec<Run>,
    /// Where each document's `sample_tag` ordinals start in `tag_ords`, one more
    /// entry than documents.
    tag_starts: Vec<u32>,
    tag_ords: Vec<u32>,
}

/// Consecutive documents of one version of one pack, and what they share.
pub(crate) struct Run {
    pub pack: u128,
    /// The document after the run's last.
    pub end: u32,
    pub created: u64,
    /// Price in minor units.
    pub price: u64,
}

impl SegmentData for SegmentArrays {
    fn load(segment: &SegmentReader) -> Result<SegmentArrays, IndexError> {
        let ff = segment.fast_fields();
        let codes = ff.u64(names::FACET_CODE).map_err(IndexError::search)?;
        let bpm = ff.f64(names::BPM).map_err(IndexError::search)?;
        let price = ff.u64(names::PRICE).map_err(IndexError::search)?;
        let created = ff.u64(names::CREATED_AT).map_err(IndexError::search)?;
        let pack_hi = ff.u64(names::PACK_HI).map_err(IndexError::search)?;
        let pack_lo = ff.u64(names::PACK_LO).map_err(IndexError::search)?;
        let tags = ff.str(names::SAMPLE_TAG).map_err(IndexError::search)?;
        let docs = segment.max_doc() as usize;
        let mut arrays = SegmentArrays {
            codes: Vec::with_capacity(docs),
            bpm: Vec::with_capacity(docs),
            run: Vec::with_capacity(docs),
            runs: Vec::new(),
            tag_starts: Vec::with_capacity(docs + 1),
            tag_ords: Vec::new(),
        };
        for doc in 0..segment.max_doc() {
            // Codes are below 128 (`document::HAS_SAMPLE_TAGS` is the highest bit).
            arrays.codes.push(codes.first(doc).unwrap_or(0) as u8);
            arrays.bpm.push(bpm.first(doc).map_or(f32::NAN, |b| b as f32));
            let hi = u128::from(pack_hi.first(doc).unwrap_or(0));
            let pack = hi << 64 | u128::from(pack_lo.first(doc).unwrap_or(0));
            let created = created.first(doc).unwrap_or(0);
            let price = price.first(doc).unwrap_or(0);
            // A pack's documents of an older version (deleted, still in the segment)
            // may come right before the current ones: they are another run.
            match arrays.runs.last_mut() {
                Some(run) if (run.pack, run.created, run.price) == (pack, created, price) => {
                    run.end = doc + 1
                }
                _ => arrays.runs.push(Run { pack, end: doc + 1, created, price }),
            }
            arrays.run.push(arrays.runs.len() as u32 - 1);
            arrays.tag_starts.push(arrays.tag_ords.len() as u32);
            if let Some(tags) = &tags {
                arrays.tag_ords.extend(tags.term_ords(doc).map(|ord| ord as u32));
            }
        }
        arrays.tag_starts.push(arrays.tag_ords.len() as u32);
        Ok(arrays)
    }
}

impl SegmentArrays {
    /// The `sample_tag` ordinals of `doc`.
    pub fn sample_tags(&self, doc: DocId) -> &[u32] {
        let doc = doc as usize;
        match (self.tag_starts.get(doc), self.tag_starts.get(doc + 1)) {
            (Some(&start), Some(&end)) => &self.tag_ords[start as usize..end as usize],
            _ => &[],
        }
    }
}

/// Kind, BPM range and price ceiling, each optional; a document must pass all.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Filter {
    pub kind: Option<SampleKind>,
    /// Inclusive; samples without a tempo never match.
    pub bpm: Option<(f32, f32)>,
    /// Inclusive, in minor units.
    pub max_price: Option<u64>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Whether `doc` passes. The BPM range comes first: it is usually the most
    /// selective, and a sample without a tempo fails it on its first comparison.
    #[inline]
    pub fn passes(&self, arrays: &SegmentArrays, doc: DocId) -> bool {
        let doc = doc as usize;
        if let Some((min, max)) = self.bpm {
            // NaN (no tempo) fails both comparisons.
            let bpm = arrays.bpm[doc];
            if !(bpm >= min && bpm <= max) {
                return false;
            }
        }
        // The low bit of the code is the kind: 1 for loops.
        if let Some(kind) = self.kind
            && (arrays.codes[doc] & 1 == 1) != (kind == SampleKind::Loop)
        {
            return false;
        }
        self.max_price.is_none_or(|max| arrays.runs[arrays.run[doc] as usize].price <= max)
    }
}

/// A [`Filter`] as a query over the live segments' arrays (by segment id).
#[derive(Clone)]
pub(crate) struct FieldFilter {
    pub filter: Filter,
    pub segments: Arc<Vec<(SegmentId, Arc<SegmentArrays>)>>,
}

impl fmt::Debug for FieldFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FieldFilter({:?})", self.filter)
    }
}

impl Query for FieldFilter {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl FieldFilter {
    fn arrays(&self, reader: &SegmentReader) -> tantivy::Result<Arc<SegmentArrays>> {
        let id = reader.segment_id();
        let found = self.segments.iter().find(|(segment, _)| *segment == id);
        found.map(|(_, arrays)| arrays.clone()).ok_or_else(|| {
            TantivyError::InternalError(format!("no filter arrays for segment {}", id.short_uuid_string()))
        })
    }
}

impl Weight for FieldFilter {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut docs = FilterDocSet { arrays: self.arrays(reader)?, filter: self.filter, doc: 0 };
        docs.doc = docs.next_from(0);
        Ok(Box::new(ConstScorer::new(docs, boost)))
    }

    /// In an intersection: the filter starts at the intersection's candidate, so a
    /// filter that passes no document does not scan the whole segment to say so.
    fn scorer_danger(
        &self,
        reader: &SegmentReader,
        target: DocId,
        boost: Score,
    ) -> tantivy::Result<(SeekDangerResult, Box<dyn Scorer>)> {
        let mut docs = FilterDocSet { arrays: self.arrays(reader)?, filter: self.filter, doc: 0 };
        let found = docs.seek_danger(target);
        Ok((found, Box::new(ConstScorer::new(docs, boost))))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let arrays = self.arrays(reader)?;
        if (doc as usize) < arrays.codes.len() && self.filter.passes(&arrays, doc) {
            Ok(Explanation::new("kind, BPM and price filter", 1.0))
        } else {
            Err(TantivyError::InvalidArgument(format!("document {doc} does not pass {:?}", self.filter)))
        }
    }
}

/// How far ahead of the intersection's candidate a filter looks for a passing
/// document (see `FilterDocSet::seek_danger`).
const HORIZON: usize = 64;

/// The documents of one segment that pass the filter. It never drives an
/// intersection that has another clause (its cost is the whole segment).
struct FilterDocSet {
    arrays: Arc<SegmentArrays>,
    filter: Filter,
    doc: DocId,
}

impl FilterDocSet {
    /// The first passing document in `doc..end` (clamped to the segment). With a
    /// BPM range, a scan of the tempos finds the candidates first; with a price
    /// ceiling, a run whose price is above it is skipped whole.
    fn next_in(&self, doc: DocId, end: usize) -> Option<DocId> {
        let arrays = &*self.arrays;
        let end = end.min(arrays.codes.len());
        let mut doc = doc as usize;
        while doc < end {
            if let Some(range) = self.filter.bpm {
                doc = first_in_range(&arrays.bpm[..end], doc, range)?;
            }
            if let Some(max) = self.filter.max_price {
                let run = &arrays.runs[arrays.run[doc] as usize];
                if run.price > max {
                    doc = run.end as usize;
                    continue;
                }
            }
            if self.filter.passes(arrays, doc as DocId) {
                return Some(doc as DocId);
            }
            doc += 1;
        }
        None
    }

    /// The first passing document from `doc` on, or `TERMINATED`.
    fn next_from(&self, doc: DocId) -> DocId {
        self.next_in(doc, usize::MAX).unwrap_or(TERMINATED)
    }
}

/// The first index from `from` on whose tempo lies in `range`. Sixteen tempos
/// are compared at a time without a branch (vector instructions), which is about
/// ten times faster than stopping at each one.
fn first_in_range(bpm: &[f32], from: usize, (min, max): (f32, f32)) -> Option<usize> {
    let inside = |b: &f32| *b >= min && *b <= max;
    let rest = bpm.get(from..)?;
    let mut chunks = rest.chunks_exact(16);
    for (i, chunk) in chunks.by_ref().enumerate() {
        if chunk.iter().fold(false, |any, b| any | inside(b)) {
            return chunk.iter().position(inside).map(|p| from + i * 16 + p);
        }
    }
    let tail = chunks.remainder();
    tail.iter().position(inside).map(|p| from + rest.len() - tail.len() + p)
}

impl DocSet for FilterDocSet {
    fn advance(&mut self) -> DocId {
        if self.doc != TERMINATED {
            self.doc = self.next_from(self.doc + 1);
        }
        self.doc
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc < target {
            self.doc = self.next_from(target);
        }
        self.doc
    }

    /// Answers with the next passing document within [`HORIZON`] documents, or
    /// the end of that window. Scanning the arrays costs well under a nanosecond a
    /// document, far less than the intersection's round trip through a match of
    /// the words, which the answer lets it skip: a common word with a filter that
    /// nothing passes went from 5.0 to 1.1 ms. The window keeps a rare word from
    /// paying for a scan up to the next passing document at each of its matches.
    fn seek_danger(&mut self, target: DocId) -> SeekDangerResult {
        let end = target as usize + HORIZON;
        match self.next_in(target, end) {
            Some(doc) if doc == target => {
                self.doc = doc;
                SeekDangerResult::Found
            }
            Some(doc) => SeekDangerResult::SeekLowerBound(doc),
            None if end < self.arrays.codes.len() => SeekDangerResult::SeekLowerBound(end as DocId),
            None => SeekDangerResult::SeekLowerBound(TERMINATED),
        }
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.arrays.codes.len() as u32
    }

    fn cost(&self) -> u64 {
        // More than any posting list of the segment, so a term leads.
        2 * self.arrays.codes.len() as u64 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_in_range_agrees_with_a_plain_scan() {
        // 16-wide chunks plus a remainder, NaN for samples without a tempo.
        let bpm: Vec<f32> =
            (0..53).map(|i| if i % 7 == 3 { f32::NAN } else { (i * 37 % 200) as f32 }).collect();
        for range in [(90.0, 100.0), (0.0, 5.0), (199.0, 199.0), (300.0, 400.0), (f32::MIN, f32::MAX)] {
            for from in 0..=bpm.len() + 1 {
                let plain = (from..bpm.len()).find(|&i| bpm[i] >= range.0 && bpm[i] <= range.1);
                assert_eq!(first_in_range(&bpm, from, range), plain, "range {range:?} from {from}");
            }
        }
    }
}
