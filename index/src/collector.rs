//! One pass over the matches: count, facets, top-k, and grouping by pack.
//!
//! What is read per match comes from the segment's [`SegmentArrays`]. Kind and
//! key come from one small integer per document (`facet_code`), counted in a fixed
//! array; the same integer says whether the sample has tags of its own. Genre and
//! pack tags are the same for every sample of a pack, and a pack's samples are
//! consecutive documents (a run), so they are counted once per run of
//! consecutive matches, times its length. Values are counted by
//! dictionary ordinal in dense per-segment arrays and turned into strings once per
//! segment, only for the values seen. In packs mode each segment keeps, per
//! matching pack, its best document and the facet values its matching samples
//! carry; segments are then merged by pack id (a pack's samples may sit in several
//! segments). A match's score gets the step of each query word among the
//! sample's own words ([`OwnWords`], the ranking rule of `query`) only when it
//! could still enter the top k, or beat its pack's best, were all the words its
//! own; most matches of a common word cannot, and cost no look-up.

use std::cmp::Ordering;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use smpl_protocol::{Key, Mode, SampleKind, Source};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::index::SegmentId;
use tantivy::postings::SegmentPostings;
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocId, DocSet, Score, SegmentOrdinal, SegmentReader, Term};

use crate::arrays::SegmentArrays;
use crate::document::{HAS_SAMPLE_TAGS, KIND_KEY_CODES};
use crate::results::{Facets, MAX_FACET_VALUES};

/// Sort key: creation time (0 unless sorting by newest), then score; larger first.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rank {
    pub created: u64,
    pub score: Score,
}

impl Rank {
    fn cmp(&self, other: &Rank) -> Ordering {
        self.created.cmp(&other.created).then(self.score.total_cmp(&other.score))
    }
}

/// Best first: higher rank, then lower address.
fn better(a: (Rank, DocAddress), b: (Rank, DocAddress)) -> Ordering {
    b.0.cmp(&a.0).then(a.1.cmp(&b.1))
}

/// One ranked match: a sample, or a pack's best sample in packs mode.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ranked {
    pub doc: DocAddress,
    pub score: Score,
    /// The pack, in packs mode (0 otherwise).
    pub pack: u128,
}

/// Everything one search collects.
pub(crate) struct Collected {
    pub total: usize,
    pub facets: Facets,
    /// Best first, at most `top_k`.
    pub ranked: Vec<Ranked>,
}

/// The query's words in the `own` field (a sample's name and tags), and the step
/// each adds to the score of a sample that holds it (see `query`).
#[derive(Clone, Debug, Default)]
pub(crate) struct OwnWords {
    pub terms: Vec<Term>,
    pub step: Score,
}

/// [`OwnWords`] in one segment: the posting lists of the words it holds, read
/// forward as the matches arrive in document order.
struct SegmentOwn {
    postings: Vec<SegmentPostings>,
    step: Score,
}

impl SegmentOwn {
    /// The highest score a match of BM25 score `bm25` can have: every word its own.
    #[inline]
    fn ceiling(&self, bm25: Score) -> Score {
        if self.postings.is_empty() { bm25 } else { bm25 + self.postings.len() as Score * self.step }
    }

    /// The score of `doc`: `bm25` plus the step for each word among its own. No
    /// document asked before may come after `doc`.
    fn score(&mut self, doc: DocId, bm25: Score) -> Score {
        let mut tier = 0u32;
        for postings in &mut self.postings {
            if postings.doc() < doc {
                postings.seek(doc);
            }
            tier += u32::from(postings.doc() == doc);
        }
        if tier == 0 { bm25 } else { bm25 + tier as Score * self.step }
    }
}

pub(crate) struct SearchCollector<'a> {
    /// Each segment's arrays, by segment ordinal.
    pub arrays: &'a [(SegmentId, Arc<SegmentArrays>)],
    /// The words whose presence in a sample's own words ranks it (with scoring).
    pub own: &'a OwnWords,
    /// One hit per pack.
    pub packs: bool,
    /// Rank by creation time first.
    pub newest: bool,
    pub scoring: bool,
    /// How many ranked matches to keep; 0 counts and builds facets only.
    pub top_k: usize,
}

pub(crate) struct SegmentSearch {
    segment: SegmentOrdinal,
    packs: bool,
    top_k: usize,
    count: u64,
    newest: bool,
    own: SegmentOwn,
    arrays: Arc<SegmentArrays>,
    genre_counts: Vec<u64>,
    pack_tag_counts: Vec<u64>,
    sample_tag_counts: Vec<u64>,
    code_counts: [u64; KIND_KEY_CODES],
    /// The consecutive matches of one run of the segment (see [`SegmentArrays`]):
    /// (run, length). Their pack-level facets (genre, pack tags) are counted once,
    /// when the run of matches ends.
    run: Option<(u32, u64)>,
    /// The run of the last match (matches arrive in document order).
    cursor: u32,
    heap: BinaryHeap<HeapEntry>,
    groups: FxHashMap<u128, Group>,
}

/// A heap entry whose maximum is the worst kept match.
#[derive(PartialEq)]
struct HeapEntry(Rank, DocId);

impl Eq for HeapEntry {}

impl PartialOrd for HeapEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for HeapEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

struct Group {
    rank: Rank,
    doc: DocId,
    /// The run of the first matching document, whose pack-level facets stand for
    /// the pack.
    run: u32,
    sample_tags: Vec<u32>,
    /// Bit `c` set when a matching sample has kind-key code `c`.
    codes: u64,
}

/// A pack's facet values in a segment: local genre and tag ids, and kind-key code bits.
type PackValues = ([Vec<u32>; 2], u64);

pub(crate) struct SegmentFruit {
    count: u64,
    /// Samples mode: genre and tag values with their counts, and counts per
    /// kind-key code.
    named: [Named; 2],
    codes: [u64; KIND_KEY_CODES],
    /// Samples mode: the best `top_k` of this segment.
    top: Vec<(Rank, DocAddress)>,
    /// Packs mode: string values seen in this segment, indexed by the groups below.
    values: [Vec<String>; 2],
    groups: Vec<(u128, Rank, DocAddress, PackValues)>,
}

impl Collector for SearchCollector<'_> {
    type Fruit = Collected;
    type Child = SegmentSearch;

    fn for_segment(&self, segment: SegmentOrdinal, reader: &SegmentReader) -> tantivy::Result<SegmentSearch> {
        let arrays = self.arrays.get(segment as usize).map(|(_, a)| a.clone()).ok_or_else(|| {
            tantivy::TantivyError::InternalError(format!("no arrays for segment {segment}"))
        })?;
        let mut own = SegmentOwn { postings: Vec::new(), step: self.own.step };
        if self.scoring
            && let Some(first) = self.own.terms.first()
        {
            let inverted = reader.inverted_index(first.field())?;
            for term in &self.own.terms {
                own.postings.extend(inverted.read_postings(term, IndexRecordOption::Basic)?);
            }
        }
        let zeros = |c: &Option<StrColumn>| {
            if self.packs { Vec::new() } else { vec![0; c.as_ref().map_or(0, |c| c.num_terms())] }
        };
        Ok(SegmentSearch {
            segment,
            packs: self.packs,
            top_k: self.top_k,
            count: 0,
            newest: self.newest,
            own,
            genre_counts: zeros(&arrays.genre_column),
            pack_tag_counts: zeros(&arrays.pack_tag_column),
            sample_tag_counts: zeros(&arrays.sample_tag_column),
            arrays,
            code_counts: [0; KIND_KEY_CODES],
            run: None,
            cursor: 0,
            heap: BinaryHeap::new(),
            groups: FxHashMap::default(),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.scoring
    }

    fn merge_fruits(&self, fruits: Vec<tantivy::Result<SegmentFruit>>) -> tantivy::Result<Collected> {
        let fruits = fruits.into_iter().collect::<tantivy::Result<Vec<_>>>()?;
        if self.packs { Ok(merge_packs(fruits, self.top_k)) } else { Ok(merge_samples(fruits, self.top_k)) }
    }
}

/// Adds `times` to `counts[ord]` for each of `ords`.
fn count_ords(ords: impl IntoIterator<Item = u32>, counts: &mut [u64], times: u64) {
    for ord in ords {
        if let Some(c) = counts.get_mut(ord as usize) {
            *c += times;
        }
    }
}

/// The string values of the ordinals counted in `counts`, resolved in one pass
/// over the column's dictionary (one lookup per value would decode its block
/// again and again).
fn named_counts(column: &Option<StrColumn>, counts: &[u64], out: &mut Named) -> std::io::Result<()> {
    let Some(column) = column else {
        return Ok(());
    };
    let ords: Vec<u64> =
        counts.iter().enumerate().filter(|(_, n)| **n > 0).map(|(ord, _)| ord as u64).collect();
    let mut next = ords.iter();
    column.dictionary().sorted_ords_to_term_cb(&ords, |bytes| {
        if let Some(&ord) = next.next() {
            out.push(&String::from_utf8_lossy(bytes), counts[ord as usize]);
        }
    })?;
    Ok(())
}

/// One segment's facet values and their counts, the strings in one buffer. A
/// `String` per value and segment, hashed with SipHash into a map of owned
/// strings, would cost malloc, free and hashing in every query.
#[derive(Default)]
struct Named {
    text: String,
    /// Where each value ends in `text`, and its count.
    ends: Vec<(usize, u64)>,
}

impl Named {
    fn push(&mut self, value: &str, count: u64) {
        self.text.push_str(value);
        self.ends.push((self.text.len(), count));
    }

    fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        let mut start = 0;
        self.ends.iter().map(move |&(end, count)| {
            let value = &self.text[start..end];
            start = end;
            (value, count)
        })
    }
}

impl SegmentSearch {
    /// Counts the pack-level facets of the run that just ended.
    fn flush_run(&mut self) {
        if let Some((run, len)) = self.run.take() {
            count_ords(self.arrays.genres.of(run).iter().copied(), &mut self.genre_counts, len);
            count_ords(self.arrays.pack_tags.of(run).iter().copied(), &mut self.pack_tag_counts, len);
        }
    }

    /// Counts the facets of one matching sample (samples mode).
    fn count_facets(&mut self, doc: DocId, code: u64, run: u32) {
        if let Some(c) = self.code_counts.get_mut((code & (HAS_SAMPLE_TAGS - 1)) as usize) {
            *c += 1;
        }
        if code & HAS_SAMPLE_TAGS != 0 {
            count_ords(self.arrays.sample_tags.of(doc), &mut self.sample_tag_counts, 1);
        }
        match &mut self.run {
            Some((current, len)) if *current == run => *len += 1,
            _ => {
                self.flush_run();
                self.run = Some((run, 1));
            }
        }
    }

    fn collect_pack(&mut self, doc: DocId, created: u64, score: Score, code: u64, run: u32) {
        let pack = self.arrays.runs[run as usize].pack;
        let own = &mut self.own;
        let group = match self.groups.entry(pack) {
            Entry::Occupied(entry) => {
                let group = entry.into_mut();
                // Documents arrive in increasing order, so a tie keeps the first.
                let ceiling = Rank { created, score: own.ceiling(score) };
                if ceiling.cmp(&group.rank) == Ordering::Greater {
                    let rank = Rank { created, score: own.score(doc, score) };
                    if rank.cmp(&group.rank) == Ordering::Greater {
                        group.rank = rank;
                        group.doc = doc;
                    }
                }
                group
            }
            Entry::Vacant(entry) => entry.insert(Group {
                rank: Rank { created, score: own.score(doc, score) },
                doc,
                run,
                sample_tags: Vec::new(),
                codes: 0,
            }),
        };
        if code & HAS_SAMPLE_TAGS != 0 {
            for ord in self.arrays.sample_tags.of(doc) {
                if !group.sample_tags.contains(&ord) {
                    group.sample_tags.push(ord);
                }
            }
        }
        let kind_key = code & (HAS_SAMPLE_TAGS - 1);
        if kind_key < KIND_KEY_CODES as u64 {
            group.codes |= 1 << kind_key;
        }
    }
}

impl SegmentCollector for SegmentSearch {
    type Fruit = tantivy::Result<SegmentFruit>;

    fn collect(&mut self, doc: DocId, score: Score) {
        self.count += 1;
        let code = u64::from(self.arrays.codes[doc as usize]);
        let run = self.arrays.run_of(doc, self.cursor);
        self.cursor = run;
        let created = if self.newest { self.arrays.runs[run as usize].created } else { 0 };
        if self.packs {
            self.collect_pack(doc, created, score, code, run);
            return;
        }
        self.count_facets(doc, code, run);
        if self.top_k == 0 {
            return;
        }
        // A full heap keeps its worst on a tie (documents arrive in increasing
        // order): a match that cannot beat it even with every word its own is out.
        let ceiling = Rank { created, score: self.own.ceiling(score) };
        if self.heap.len() == self.top_k
            && let Some(worst) = self.heap.peek()
            && ceiling.cmp(&worst.0) != Ordering::Greater
        {
            return;
        }
        let entry = HeapEntry(Rank { created, score: self.own.score(doc, score) }, doc);
        if self.heap.len() < self.top_k {
            self.heap.push(entry);
        } else if let Some(mut worst) = self.heap.peek_mut()
            && entry < *worst
        {
            *worst = entry;
        }
    }

    fn harvest(mut self) -> tantivy::Result<SegmentFruit> {
        self.flush_run();
        let segment = self.segment;
        let mut fruit = SegmentFruit {
            count: self.count,
            named: Default::default(),
            codes: self.code_counts,
            top: self
                .heap
                .into_vec()
                .into_iter()
                .map(|HeapEntry(rank, doc)| (rank, DocAddress::new(segment, doc)))
                .collect(),
            values: Default::default(),
            groups: Vec::with_capacity(self.groups.len()),
        };
        if !self.packs {
            let [genres, tags] = &mut fruit.named;
            let a = &self.arrays;
            named_counts(&a.genre_column, &self.genre_counts, genres)?;
            named_counts(&a.pack_tag_column, &self.pack_tag_counts, tags)?;
            named_counts(&a.sample_tag_column, &self.sample_tag_counts, tags)?;
            return Ok(fruit);
        }
        // Packs mode: give each value seen a local id, resolving each ordinal once.
        let mut ids: [HashMap<String, u32>; 2] = Default::default();
        let mut cache: [FxHashMap<u32, Option<u32>>; 3] = Default::default();
        let mut buf = String::new();
        let a = &self.arrays;
        let columns = [&a.genre_column, &a.pack_tag_column, &a.sample_tag_column];
        for (id, group) in self.groups {
            let mut values: [Vec<u32>; 2] = Default::default();
            let ords: [&[u32]; 3] =
                [self.arrays.genres.of(group.run), self.arrays.pack_tags.of(group.run), &group.sample_tags];
            for (c, ords) in ords.into_iter().enumerate() {
                let Some(column) = columns[c] else {
                    continue;
                };
                let facet = if c == 0 { 0 } else { 1 };
                for &ord in ords {
                    let local = match cache[c].get(&ord) {
                        Some(&local) => local,
                        None => {
                            let local = if column.ord_to_str(u64::from(ord), &mut buf)? {
                                let next = fruit.values[facet].len() as u32;
                                let id = *ids[facet].entry(buf.clone()).or_insert(next);
                                if id == next {
                                    fruit.values[facet].push(buf.clone());
                                }
                                Some(id)
                            } else {
                                None
                            };
                            cache[c].insert(ord, local);
                            local
                        }
                    };
                    values[facet].extend(local);
                }
            }
            fruit.groups.push((id, group.rank, DocAddress::new(segment, group.doc), (values, group.codes)));
        }
        Ok(fruit)
    }
}

/// Values with their counts.
type FacetList = Vec<(String, u64)>;

/// Kind and key counts from counts per kind-key code.
fn split_codes(codes: impl Iterator<Item = (usize, u64)>) -> (FacetList, FacetList) {
    let mut kinds = [0u64; 2];
    let mut keys = [0u64; KIND_KEY_CODES / 2];
    for (code, n) in codes {
        if code < KIND_KEY_CODES {
            kinds[code & 1] += n;
            keys[code >> 1] += n;
        }
    }
    (kind_list(&kinds), key_list(&keys))
}

/// Named kind counts from counts indexed by kind bit.
fn kind_list(kinds: &[u64; 2]) -> Vec<(String, u64)> {
    let names = [SampleKind::OneShot.name(), SampleKind::Loop.name()];
    kinds.iter().zip(names).filter(|(n, _)| **n > 0).map(|(n, k)| (k.to_string(), *n)).collect()
}

/// Named key counts from counts indexed by key code (0 = no key, not listed).
fn key_list(keys: &[u64]) -> Vec<(String, u64)> {
    keys.iter()
        .enumerate()
        .skip(1)
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| {
            let key = Key {
                tonic: ((i - 1) / 2) as u8,
                mode: if (i - 1) % 2 == 1 { Mode::Minor } else { Mode::Major },
                source: Source::Detected,
            };
            (key.name(), *n)
        })
        .collect()
}

/// The most frequent values first (ties by value), at most [`MAX_FACET_VALUES`].
/// Each value must come once.
fn facet_list<S: AsRef<str> + Into<String>>(counts: impl Iterator<Item = (S, u64)>) -> FacetList {
    let mut list: Vec<(S, u64)> = counts.filter(|(_, n)| *n > 0).collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.as_ref().cmp(b.0.as_ref())));
    list.truncate(MAX_FACET_VALUES);
    list.into_iter().map(|(value, n)| (value.into(), n)).collect()
}

fn merge_samples(fruits: Vec<SegmentFruit>, top_k: usize) -> Collected {
    let mut total = 0u64;
    let mut named: [FxHashMap<&str, u64>; 2] = Default::default();
    let mut codes = [0u64; KIND_KEY_CODES];
    let mut top = Vec::new();
    for fruit in &fruits {
        total += fruit.count;
        for (map, values) in named.iter_mut().zip(&fruit.named) {
            for (value, n) in values.iter() {
                *map.entry(value).or_default() += n;
            }
        }
        for (sum, n) in codes.iter_mut().zip(fruit.codes) {
            *sum += n;
        }
        top.extend_from_slice(&fruit.top);
    }
    top.sort_by(|a, b| better(*a, *b));
    top.truncate(top_k);
    let [genre, tags] = named.map(|map| facet_list(map.into_iter()));
    let (kind, key) = split_codes(codes.iter().copied().enumerate());
    Collected {
        total: total as usize,
        facets: Facets { genre, kind: facet_list(kind.into_iter()), key: facet_list(key.into_iter()), tags },
        ranked: top.into_iter().map(|(rank, doc)| Ranked { doc, score: rank.score, pack: 0 }).collect(),
    }
}

struct MergedGroup {
    rank: Rank,
    doc: DocAddress,
    values: [Vec<u32>; 2],
    codes: u64,
}

fn merge_packs(fruits: Vec<SegmentFruit>, top_k: usize) -> Collected {
    // Global value ids per string facet.
    let mut ids: [HashMap<String, u32>; 2] = Default::default();
    let mut names: [Vec<String>; 2] = Default::default();
    let mut merged: FxHashMap<u128, MergedGroup> = FxHashMap::default();
    for fruit in fruits {
        let mut translate: [Vec<u32>; 2] = Default::default();
        for i in 0..2 {
            for value in &fruit.values[i] {
                let id = *ids[i].entry(value.clone()).or_insert_with(|| {
                    names[i].push(value.clone());
                    (names[i].len() - 1) as u32
                });
                translate[i].push(id);
            }
        }
        for (pack, rank, doc, (values, codes)) in fruit.groups {
            let global = std::array::from_fn(|i| {
                values[i].iter().filter_map(|&v| translate[i].get(v as usize).copied()).collect::<Vec<u32>>()
            });
            match merged.get_mut(&pack) {
                None => {
                    merged.insert(pack, MergedGroup { rank, doc, values: global, codes });
                }
                Some(m) => {
                    if better((rank, doc), (m.rank, m.doc)) == Ordering::Less {
                        m.rank = rank;
                        m.doc = doc;
                    }
                    for (mine, theirs) in m.values.iter_mut().zip(global) {
                        mine.extend(theirs);
                    }
                    m.codes |= codes;
                }
            }
        }
    }
    let mut counts: [Vec<u64>; 2] = std::array::from_fn(|i| vec![0; names[i].len()]);
    let mut kinds = [0u64; 2];
    let mut keys = [0u64; KIND_KEY_CODES / 2];
    let mut ranked = Vec::with_capacity(merged.len());
    for (pack, mut group) in merged {
        for (values, counts) in group.values.iter_mut().zip(counts.iter_mut()) {
            values.sort_unstable();
            values.dedup();
            for &v in values.iter() {
                counts[v as usize] += 1;
            }
        }
        // Each kind and each key once per pack.
        let (mut pack_kinds, mut pack_keys) = (0u64, 0u64);
        for code in 0..KIND_KEY_CODES {
            if group.codes & (1 << code) != 0 {
                pack_kinds |= 1 << (code & 1);
                pack_keys |= 1 << (code >> 1);
            }
        }
        for (k, n) in kinds.iter_mut().enumerate() {
            *n += pack_kinds >> k & 1;
        }
        for (k, n) in keys.iter_mut().enumerate() {
            *n += pack_keys >> k & 1;
        }
        ranked.push((group.rank, group.doc, pack));
    }
    let total = ranked.len();
    let by_rank = |a: &(Rank, DocAddress, u128), b: &(Rank, DocAddress, u128)| better((a.0, a.1), (b.0, b.1));
    if ranked.len() > top_k && top_k > 0 {
        ranked.select_nth_unstable_by(top_k - 1, by_rank);
    }
    ranked.truncate(top_k);
    ranked.sort_by(by_rank);
    let named = |i: usize| facet_list(names[i].iter().map(String::as_str).zip(counts[i].iter().copied()));
    Collected {
        total,
        facets: Facets {
            genre: named(0),
            kind: facet_list(kind_list(&kinds).into_iter()),
            key: facet_list(key_list(&keys).into_iter()),
            tags: named(1),
        },
        ranked: ranked.into_iter().map(|(rank, doc, pack)| Ranked { doc, score: rank.score, pack }).collect(),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn rank(score: f32) -> Rank {
        Rank { created: 0, score }
    }

    type G = (u128, f32, u32, [Vec<u32>; 2], u64);

    fn fruit(values: [Vec<&str>; 2], groups: Vec<G>) -> SegmentFruit {
        SegmentFruit {
            count: 0,
            named: Default::default(),
            codes: [0; KIND_KEY_CODES],
            top: Vec::new(),
            values: values.map(|v| v.into_iter().map(String::from).collect()),
            groups: groups
                .into_iter()
                .map(|(pack, score, seg, values, codes)| {
                    (pack, rank(score), DocAddress::new(seg, 0), (values, codes))
                })
                .collect(),
        }
    }

    #[test]
    fn a_pack_split_over_segments_is_one_hit_with_the_union_of_values() {
        // Codes: 1 = loop without key, 0 = one-shot without key, 1 | (1 + 9 * 2 + 1) << 1 = loop in Am.
        let am_loop = 1 | (1 + 9 * 2 + 1) << 1;
        let a = fruit([vec!["techno"], vec!["dusty"]], vec![(7, 1.0, 0, [vec![0], vec![0]], 1 << am_loop)]);
        let b = fruit(
            [vec!["techno"], vec!["dark", "dusty"]],
            vec![(7, 2.0, 1, [vec![0], vec![0, 1]], 1 << 0 | 1 << 1), (9, 1.5, 1, [vec![0], vec![]], 1 << 0)],
        );
        let c = merge_packs(vec![a, b], 10);
        assert_eq!(c.total, 2);
        let order: Vec<(u128, f32)> = c.ranked.iter().map(|r| (r.pack, r.score)).collect();
        assert_eq!(order, [(7, 2.0), (9, 1.5)]);
        assert_eq!(c.ranked[0].doc.segment_ord, 1);
        assert_eq!(c.facets.genre, [("techno".to_string(), 2)]);
        assert_eq!(c.facets.kind, [("one-shot".to_string(), 2), ("loop".to_string(), 1)]);
        assert_eq!(c.facets.key, [("Am".to_string(), 1)]);
        assert_eq!(c.facets.tags, [("dark".to_string(), 1), ("dusty".to_string(), 1)]);
        let none = merge_packs(Vec::new(), 1);
        assert_eq!((none.total, none.ranked.len()), (0, 0));
    }

    #[test]
    fn samples_merge_keeps_the_best_k_across_segments() {
        let seg = |s: u32, scores: &[f32]| {
            let mut genres = Named::default();
            genres.push("x", 1);
            let mut tags = Named::default();
            tags.push("dusty", 2);
            tags.push("dark", 1);
            let mut codes = [0; KIND_KEY_CODES];
            codes[s as usize] = 5;
            SegmentFruit {
                count: scores.len() as u64,
                named: [genres, tags],
                codes,
                top: scores
                    .iter()
                    .enumerate()
                    .map(|(d, &sc)| (rank(sc), DocAddress::new(s, d as u32)))
                    .collect(),
                values: Default::default(),
                groups: Vec::new(),
            }
        };
        let c = merge_samples(vec![seg(0, &[1.0, 3.0]), seg(1, &[2.0, 3.0])], 3);
        assert_eq!(c.total, 4);
        assert_eq!(c.facets.genre, [("x".to_string(), 2)]);
        assert_eq!(c.facets.tags, [("dusty".to_string(), 4), ("dark".to_string(), 2)]);
        // Codes 0 and 1: one-shot and loop, no key.
        assert_eq!(c.facets.kind, [("loop".to_string(), 5), ("one-shot".to_string(), 5)]);
        assert!(c.facets.key.is_empty());
        let got: Vec<(u32, u32)> = c.ranked.iter().map(|r| (r.doc.segment_ord, r.doc.doc_id)).collect();
        // Ties go to the lower address.
        assert_eq!(got, [(0, 1), (1, 1), (1, 0)]);
    }

    #[test]
    fn kind_key_codes_name_kinds_and_keys() {
        let (kinds, keys) = split_codes([(0, 2), (1, 3), (1 | (1 + 9 * 2 + 1) << 1, 4), (2, 1)].into_iter());
        assert_eq!(kinds, [("one-shot".to_string(), 3), ("loop".to_string(), 7)]);
        assert_eq!(keys, [("C".to_string(), 1), ("Am".to_string(), 4)]);
    }
}
