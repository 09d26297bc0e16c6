//! What the search reads for every match, decoded once per segment into plain
//! arrays ([`SegmentArrays`], about 9 bytes a sample, more for a sample with over
//! two tags of its own), and
//! the kind, BPM and price filter that checks them ([`Filtered`]).
//!
//! Read through tantivy's columns, each value costs a dynamic call or two and, for
//! optional and multi-valued columns, a rank lookup; for a word with many matches
//! that is most of the query's time (figures in `docs/BENCHMARKS.md`). An array
//! lookup is a load from memory that the previous match's lookup has usually
//! brought into cache. A match's run is found among the runs' ends (4 bytes a
//! pack, in cache), the matches coming in document order; an array of each
//! document's run answered no faster and cost 4 MB a million samples.

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

use smpl_protocol::SampleKind;
use tantivy::columnar::StrColumn;
use tantivy::index::SegmentId;
use tantivy::query::{ConstScorer, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED, TantivyError};

use crate::error::IndexError;
use crate::schema::names;
use crate::segment_cache::SegmentData;

/// The arrays of the segments of one searcher, in segment order (index = segment
/// ordinal), each with its segment's id (a weight sees only the segment reader).
pub(crate) type SearchedArrays = Arc<Vec<(SegmentId, Arc<SegmentArrays>)>>;

/// Per document of one segment: its kind-key code, BPM, own tags, and the run of
/// consecutive documents of one version of one pack it belongs to.
pub(crate) struct SegmentArrays {
    /// `facet_code` (kind bit, key, whether the sample has tags of its own).
    pub codes: Vec<u8>,
    /// Tempo, NaN when unknown.
    bpm: Vec<f32>,
    pub runs: Vec<Run>,
    /// Each run's end (as `Run::end`), to find a document's run.
    ends: Vec<u32>,
    /// Each document's `sample_tag` ordinals.
    pub sample_tags: OwnTags,
    /// Each run's `genre` ordinals.
    pub genres: Ords,
    /// Each run's `pack_tag` ordinals.
    pub pack_tags: Ords,
    /// The string columns the ordinals above are of, to name them. Kept here
    /// because opening a column reads its block metadata, which per search and
    /// segment would be a noticeable share of a median query.
    pub genre_column: Option<StrColumn>,
    pub pack_tag_column: Option<StrColumn>,
    pub sample_tag_column: Option<StrColumn>,
}

/// Consecutive documents of one version of one pack, and what they share.
pub(crate) struct Run {
    pub pack: u128,
    seq: u64,
    /// The document after the run's last.
    pub end: u32,
    pub created: u64,
    /// Price in minor units.
    pub price: u64,
}

/// Dictionary ordinals of a string column, for each of a list of items.
#[derive(Default)]
pub(crate) struct Ords {
    /// Where each item's ordinals start in `ords`, one more entry than items.
    starts: Vec<u32>,
    ords: Vec<u32>,
}

impl Ords {
    /// Appends the next item: the values of `column` on `doc`.
    fn push(&mut self, column: &Option<StrColumn>, doc: DocId) {
        self.push_values(column.iter().flat_map(|c| c.term_ords(doc)).map(|ord| ord as u32));
    }

    /// Appends the next item: `values`.
    fn push_values(&mut self, values: impl Iterator<Item = u32>) {
        if self.starts.is_empty() {
            self.starts.push(0);
        }
        self.ords.extend(values);
        self.starts.push(self.ords.len() as u32);
    }

    /// The ordinals of item `i`.
    pub fn of(&self, i: u32) -> &[u32] {
        let i = i as usize;
        match (self.starts.get(i), self.starts.get(i + 1)) {
            (Some(&start), Some(&end)) => &self.ords[start as usize..end as usize],
            _ => &[],
        }
    }
}

/// Each document's own tags (`sample_tag` ordinals): up to two in four bytes a
/// document, a document with more, or with an ordinal past `u16`, in a side
/// table. A broad word reads them for a large share of a segment's documents;
/// as an offset per document into one list of ordinals, that was two reads from
/// memory a match, the second waiting for the first, and a third of a broad
/// search's time (`docs/BENCHMARKS.md`).
#[derive(Default)]
pub(crate) struct OwnTags {
    inline: Vec<[u16; 2]>,
    /// The documents whose ordinals did not fit inline, in increasing order, and
    /// their ordinals.
    spilled_docs: Vec<DocId>,
    spilled: Ords,
}

/// An inline slot without an ordinal.
const NO_TAG: u16 = u16::MAX;
/// In the first inline slot: the document's ordinals are in the side table.
const SPILLED: u16 = u16::MAX - 1;

impl OwnTags {
    /// Appends the next document, `doc`, with its ordinals.
    fn push(&mut self, doc: DocId, mut ords: impl Iterator<Item = u64>) {
        let small = |ord: Option<u64>| match ord {
            None => Some(NO_TAG),
            Some(ord) => u16::try_from(ord).ok().filter(|&o| o < SPILLED),
        };
        let (first, second, third) = (ords.next(), ords.next(), ords.next());
        match (small(first), small(second), third) {
            (Some(a), Some(b), None) => self.inline.push([a, b]),
            _ => {
                self.inline.push([SPILLED, NO_TAG]);
                self.spilled_docs.push(doc);
                let all = [first, second, third].into_iter().flatten().chain(ords);
                self.spilled.push_values(all.map(|ord| ord as u32));
            }
        }
    }

    /// The ordinals of `doc`.
    #[inline]
    pub fn of(&self, doc: DocId) -> impl Iterator<Item = u32> + '_ {
        let [a, b] = self.inline.get(doc as usize).copied().unwrap_or([NO_TAG, NO_TAG]);
        let spilled = match a {
            SPILLED => self.spilled_docs.binary_search(&doc).map_or(&[][..], |i| self.spilled.of(i as u32)),
            _ => &[],
        };
        [a, b].into_iter().filter(|&ord| ord < SPILLED).map(u32::from).chain(spilled.iter().copied())
    }
}

impl SegmentData for SegmentArrays {
    fn load(segment: &SegmentReader) -> Result<SegmentArrays, IndexError> {
        let ff = segment.fast_fields();
        let codes = ff.u64(names::FACET_CODE).map_err(IndexError::search)?;
        let bpm = ff.f64(names::BPM).map_err(IndexError::search)?;
        let price = ff.u64(names::PRICE).map_err(IndexError::search)?;
        let created = ff.u64(names::CREATED_AT).map_err(IndexError::search)?;
        let seq = ff.u64(names::SEQ).map_err(IndexError::search)?;
        let pack_hi = ff.u64(names::PACK_HI).map_err(IndexError::search)?;
        let pack_lo = ff.u64(names::PACK_LO).map_err(IndexError::search)?;
        let mut arrays = SegmentArrays {
            genre_column: ff.str(names::GENRE).map_err(IndexError::search)?,
            pack_tag_column: ff.str(names::PACK_TAG).map_err(IndexError::search)?,
            sample_tag_column: ff.str(names::SAMPLE_TAG).map_err(IndexError::search)?,
            ..SegmentArrays::with_capacity(segment.max_doc() as usize)
        };
        for doc in 0..segment.max_doc() {
            // Codes are below 128 (`document::HAS_SAMPLE_TAGS` is the highest bit).
            arrays.codes.push(codes.first(doc).unwrap_or(0) as u8);
            arrays.bpm.push(bpm.first(doc).map_or(f32::NAN, |b| b as f32));
            let hi = u128::from(pack_hi.first(doc).unwrap_or(0));
            let pack = hi << 64 | u128::from(pack_lo.first(doc).unwrap_or(0));
            let seq = seq.first(doc).unwrap_or(0);
            // A pack's documents of an older version (deleted, still in the segment)
            // may come right before the current ones: they are another run.
            match arrays.runs.last_mut() {
                Some(run) if (run.pack, run.seq) == (pack, seq) => {
                    run.end = doc + 1;
                    if let Some(end) = arrays.ends.last_mut() {
                        *end = doc + 1;
                    }
                }
                _ => {
                    let created = created.first(doc).unwrap_or(0);
                    let price = price.first(doc).unwrap_or(0);
                    arrays.runs.push(Run { pack, seq, end: doc + 1, created, price });
                    arrays.ends.push(doc + 1);
                    arrays.genres.push(&arrays.genre_column, doc);
                    arrays.pack_tags.push(&arrays.pack_tag_column, doc);
                }
            }
            let own = arrays.sample_tag_column.iter().flat_map(|c| c.term_ords(doc));
            arrays.sample_tags.push(doc, own);
        }
        Ok(arrays)
    }
}

impl SegmentArrays {
    /// The run of `doc`, searched from run `from` on: a caller that asks for
    /// documents in increasing order passes the previous answer, and then most
    /// answers cost one comparison. A `from` past `doc` searches from the start.
    #[inline]
    pub fn run_of(&self, doc: DocId, from: u32) -> u32 {
        let from = from as usize;
        let from = if from > 0 && self.ends.get(from - 1).is_some_and(|&end| doc < end) { 0 } else { from };
        match self.ends.get(from) {
            Some(&end) if doc < end => from as u32,
            Some(_) => (from + self.ends[from..].partition_point(|&end| end <= doc)) as u32,
            None => 0,
        }
    }

    /// Empty arrays with room for `docs` documents, and no columns.
    fn with_capacity(docs: usize) -> SegmentArrays {
        SegmentArrays {
            codes: Vec::with_capacity(docs),
            bpm: Vec::with_capacity(docs),
            runs: Vec::new(),
            ends: Vec::new(),
            sample_tags: OwnTags::default(),
            genres: Ords::default(),
            pack_tags: Ords::default(),
            genre_column: None,
            pack_tag_column: None,
            sample_tag_column: None,
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
    pub fn passes(&self, arrays: &SegmentArrays, doc: DocId) -> bool {
        self.passes_near(arrays, doc, &Cell::new(0))
    }

    /// [`Filter::passes`], finding `doc`'s run from `run` (see
    /// [`SegmentArrays::run_of`]) and leaving `doc`'s run there.
    #[inline(always)]
    fn passes_near(&self, arrays: &SegmentArrays, doc: DocId, run: &Cell<u32>) -> bool {
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
        self.max_price.is_none_or(|max| {
            run.set(arrays.run_of(doc as DocId, run.get()));
            arrays.runs[run.get() as usize].price <= max
        })
    }
}

/// The matches of `inner` that pass `filter`, checked against the live segments'
/// arrays (by segment id) before a match is scored; without `inner`, every
/// document that passes.
///
/// Not a clause of the words' intersection, which costs a round trip into it per
/// match of the words, nor a check in the collector, which scores every failing
/// match first; both are slower (figures in `docs/BENCHMARKS.md`). A failing
/// match also tells where the next passing document is (a scan of the arrays at
/// well under a nanosecond a document), and the words skip there.
pub(crate) struct Filtered {
    pub inner: Option<Box<dyn Query>>,
    pub filter: Filter,
    pub segments: SearchedArrays,
}

impl Clone for Filtered {
    fn clone(&self) -> Self {
        let inner = self.inner.as_ref().map(|q| q.box_clone());
        Filtered { inner, filter: self.filter, segments: self.segments.clone() }
    }
}

impl fmt::Debug for Filtered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Filtered({:?}, {:?})", self.inner, self.filter)
    }
}

impl Query for Filtered {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let inner = self.inner.as_ref().map(|q| q.weight(scoring)).transpose()?;
        Ok(Box::new(FilteredWeight { inner, filter: self.filter, segments: self.segments.clone() }))
    }
}

struct FilteredWeight {
    inner: Option<Box<dyn Weight>>,
    filter: Filter,
    segments: SearchedArrays,
}

impl FilteredWeight {
    fn arrays(&self, reader: &SegmentReader) -> tantivy::Result<Arc<SegmentArrays>> {
        let id = reader.segment_id();
        let found = self.segments.iter().find(|(segment, _)| *segment == id);
        found.map(|(_, arrays)| arrays.clone()).ok_or_else(|| {
            TantivyError::InternalError(format!("no filter arrays for segment {}", id.short_uuid_string()))
        })
    }
}

impl Weight for FilteredWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let passing = Passing::new(self.arrays(reader)?, self.filter);
        match &self.inner {
            Some(inner) => {
                let mut scorer = FilteredScorer { inner: inner.scorer(reader, boost)?, passing };
                let first = scorer.inner.doc();
                scorer.skip_failing(first);
                Ok(Box::new(scorer))
            }
            None => {
                let doc = passing.next_in(0, usize::MAX).unwrap_or(TERMINATED);
                Ok(Box::new(ConstScorer::new(PassingDocs { passing, doc }, boost)))
            }
        }
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let arrays = self.arrays(reader)?;
        if (doc as usize) >= arrays.codes.len() || !self.filter.passes(&arrays, doc) {
            return Err(TantivyError::InvalidArgument(format!(
                "document {doc} does not pass {:?}",
                self.filter
            )));
        }
        match &self.inner {
            Some(inner) => inner.explain(reader, doc),
            None => Ok(Explanation::new("kind, BPM and price filter", 1.0)),
        }
    }
}

/// How far a failing match looks ahead for the next passing document.
const HORIZON: usize = 64;

/// Failing matches in a row before a look ahead.
const PATIENCE: u32 = 4;

/// A filter on one segment's arrays.
struct Passing {
    arrays: Arc<SegmentArrays>,
    filter: Filter,
    /// The run of the last document looked at (they come in increasing order).
    run: Cell<u32>,
}

impl Passing {
    fn new(arrays: Arc<SegmentArrays>, filter: Filter) -> Passing {
        Passing { arrays, filter, run: Cell::new(0) }
    }

    fn passes(&self, doc: DocId) -> bool {
        self.filter.passes_near(&self.arrays, doc, &self.run)
    }

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
                self.run.set(arrays.run_of(doc as DocId, self.run.get()));
                let run = &arrays.runs[self.run.get() as usize];
                if run.price > max {
                    doc = run.end as usize;
                    continue;
                }
            }
            if self.passes(doc as DocId) {
                return Some(doc as DocId);
            }
            doc += 1;
        }
        None
    }
}

/// The matches of a scorer that pass a filter.
struct FilteredScorer {
    inner: Box<dyn Scorer>,
    passing: Passing,
}

impl FilteredScorer {
    /// Moves `inner` to its first passing match from where it is. After a few
    /// failing matches in a row, the filter is likely to rule out many more: the
    /// words are then sent to the next passing document within [`HORIZON`] (or
    /// past that window), skipping their matches in between. A filter that passes
    /// often (a kind passes about half) rarely gets there, so most failing matches
    /// cost one step of the words and no scan.
    fn skip_failing(&mut self, mut doc: DocId) -> DocId {
        let segment_end = self.passing.arrays.codes.len();
        let mut failed = 0;
        loop {
            if doc == TERMINATED || self.passing.passes(doc) {
                return doc;
            }
            failed += 1;
            if failed < PATIENCE {
                doc = self.inner.advance();
                continue;
            }
            failed = 0;
            let end = doc as usize + 1 + HORIZON;
            doc = match self.passing.next_in(doc + 1, end) {
                Some(next) => self.inner.seek(next),
                None if end < segment_end => self.inner.seek(end as DocId),
                None => self.inner.seek(TERMINATED),
            };
        }
    }
}

impl DocSet for FilteredScorer {
    fn advance(&mut self) -> DocId {
        let doc = self.inner.advance();
        self.skip_failing(doc)
    }

    fn seek(&mut self, target: DocId) -> DocId {
        let doc = self.inner.seek(target);
        self.skip_failing(doc)
    }

    fn doc(&self) -> DocId {
        self.inner.doc()
    }

    fn size_hint(&self) -> u32 {
        self.inner.size_hint()
    }

    fn cost(&self) -> u64 {
        self.inner.cost()
    }
}

impl Scorer for FilteredScorer {
    fn score(&mut self) -> Score {
        self.inner.score()
    }
}

/// Every document of one segment that passes a filter.
struct PassingDocs {
    passing: Passing,
    doc: DocId,
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

impl DocSet for PassingDocs {
    fn advance(&mut self) -> DocId {
        if self.doc != TERMINATED {
            self.doc = self.passing.next_in(self.doc + 1, usize::MAX).unwrap_or(TERMINATED);
        }
        self.doc
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc < target {
            self.doc = self.passing.next_in(target, usize::MAX).unwrap_or(TERMINATED);
        }
        self.doc
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.passing.arrays.codes.len() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words' matches, as a list.
    struct Listed(Vec<DocId>, usize);

    impl DocSet for Listed {
        fn advance(&mut self) -> DocId {
            self.1 += 1;
            self.doc()
        }

        fn doc(&self) -> DocId {
            self.0.get(self.1).copied().unwrap_or(TERMINATED)
        }

        fn size_hint(&self) -> u32 {
            self.0.len() as u32
        }
    }

    /// xorshift64: deterministic test data.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self, below: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % below
        }
    }

    /// Runs of 1–150 documents with one of four prices; a third loops with a tempo.
    fn arrays(rng: &mut Rng, docs: u32) -> SegmentArrays {
        let mut a = SegmentArrays::with_capacity(docs as usize);
        while a.codes.len() < docs as usize {
            let start = a.codes.len() as u32;
            let end = (start + 1 + rng.next(150) as u32).min(docs);
            let price = [0, 299, 999, 1999][rng.next(4) as usize];
            a.runs.push(Run { pack: a.runs.len() as u128, seq: 1, end, created: 0, price });
            a.ends.push(end);
            for _ in start..end {
                let looped = rng.next(3) == 0;
                a.codes.push(u8::from(looped));
                a.bpm.push(if looped { 60.0 + rng.next(120) as f32 } else { f32::NAN });
            }
        }
        a
    }

    #[test]
    fn filtered_matches_are_the_matches_that_pass() {
        let mut rng = Rng(0x5eed);
        let filters = [
            Filter { kind: Some(SampleKind::Loop), ..Filter::default() },
            Filter { kind: Some(SampleKind::OneShot), bpm: Some((100.0, 140.0)), ..Filter::default() },
            Filter { bpm: Some((170.0, 171.0)), ..Filter::default() },
            Filter { bpm: Some((60.0, 61.0)), max_price: Some(0), ..Filter::default() },
            Filter { max_price: Some(299), ..Filter::default() },
            Filter { kind: Some(SampleKind::Loop), bpm: Some((90.0, 95.0)), max_price: Some(999) },
        ];
        for round in 0..40 {
            let docs = 200 + rng.next(3000) as u32;
            let arrays = Arc::new(arrays(&mut rng, docs));
            // From every document to one in a few hundred: dense words, rare words.
            let every = [1, 2, 3, 7, 40, 300][round % 6];
            let matches: Vec<DocId> = (0..docs).filter(|_| rng.next(every) == 0).collect();
            for filter in filters {
                let expected: Vec<DocId> =
                    matches.iter().copied().filter(|&d| filter.passes(&arrays, d)).collect();
                let inner = Box::new(ConstScorer::new(Listed(matches.clone(), 0), 1.0));
                let passing = Passing::new(arrays.clone(), filter);
                let mut scorer = FilteredScorer { inner, passing };
                let mut got = vec![scorer.skip_failing(scorer.inner.doc())];
                while *got.last().unwrap() != TERMINATED {
                    got.push(scorer.advance());
                }
                got.pop();
                assert_eq!(got, expected, "round {round}, {filter:?}");
                // Without words the filter walks the arrays itself.
                let all: Vec<DocId> = (0..docs).filter(|&d| filter.passes(&arrays, d)).collect();
                let passing = Passing::new(arrays.clone(), filter);
                let first = passing.next_in(0, usize::MAX).unwrap_or(TERMINATED);
                let mut walk = PassingDocs { passing, doc: first };
                let mut got = Vec::new();
                while walk.doc() != TERMINATED {
                    got.push(walk.doc());
                    walk.advance();
                }
                assert_eq!(got, all, "round {round}, {filter:?}, no words");
            }
        }
    }

    #[test]
    fn own_tags_give_back_every_ordinal_inline_or_spilled() {
        // Up to two small ordinals fit inline; three, or one past u16, spill.
        let docs: [&[u64]; 9] =
            [&[], &[3], &[3, 7], &[1, 2, 3], &[], &[70_000], &[5, 65_534], &[9, 0, 4, 2], &[65_533]];
        let mut tags = OwnTags::default();
        for (doc, ords) in docs.iter().enumerate() {
            tags.push(doc as DocId, ords.iter().copied());
        }
        assert_eq!(tags.spilled_docs, [3, 5, 6, 7]);
        for (doc, ords) in docs.iter().enumerate() {
            let got: Vec<u64> = tags.of(doc as DocId).map(u64::from).collect();
            assert_eq!(got, *ords, "doc {doc}");
        }
        assert_eq!(tags.of(docs.len() as DocId).count(), 0);
    }

    #[test]
    fn run_of_finds_the_run_from_any_hint() {
        let mut rng = Rng(0xfeed);
        let a = arrays(&mut rng, 5_000);
        let mut hint = 0;
        for _ in 0..2_000 {
            // Documents in any order: a hint past the document must not mislead.
            let doc = rng.next(5_000) as DocId;
            hint = a.run_of(doc, hint);
            let run = &a.runs[hint as usize];
            let start = if hint == 0 { 0 } else { a.runs[hint as usize - 1].end };
            assert!(start <= doc && doc < run.end, "doc {doc} is not in run {hint}");
        }
    }

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
