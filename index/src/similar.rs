//! "More like this" by sound: rank samples by the distance between their sound
//! descriptors (see `smpl_protocol::Descriptor`).
//!
//! Each sample document keeps its descriptor in four u64 fast fields. Segments are
//! immutable, so the descriptors of a segment are read once into a flat array
//! ([`SegmentVectors`], 36 bytes a sample) and kept while the segment lives; a
//! query is then an exact scan with integer arithmetic over those arrays, skipping
//! deleted documents and, when the query also has text or filters, documents that
//! do not match them.

use std::collections::BinaryHeap;

use smpl_protocol::{Descriptor, PackId};
use tantivy::collector::DocSetCollector;
use tantivy::query::{Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocId, Searcher, SegmentReader, TantivyDocument};

use crate::document::hit_from_stored;
use crate::error::IndexError;
use crate::results::Hit;
use crate::schema::{Fields, from_words, names};
use crate::segment_cache::{SegmentCache, SegmentData};

/// The descriptors of one segment: the documents that have one, and theirs.
pub(crate) struct SegmentVectors {
    docs: Vec<DocId>,
    vectors: Vec<Descriptor>,
}

impl SegmentData for SegmentVectors {
    fn load(segment: &SegmentReader) -> Result<SegmentVectors, IndexError> {
        let fast = segment.fast_fields();
        let mut columns = Vec::with_capacity(4);
        for name in names::DESC {
            columns.push(fast.u64(name).map_err(IndexError::search)?);
        }
        let mut docs = Vec::new();
        let mut vectors = Vec::new();
        for doc in 0..segment.max_doc() {
            let mut words = [0u64; 4];
            let mut present = true;
            for (word, column) in words.iter_mut().zip(&columns) {
                match column.first(doc) {
                    Some(value) => *word = value,
                    None => present = false,
                }
            }
            if present {
                docs.push(doc);
                vectors.push(from_words(words));
            }
        }
        Ok(SegmentVectors { docs, vectors })
    }
}

impl SegmentVectors {
    fn get(&self, doc: DocId) -> Option<&Descriptor> {
        self.docs.binary_search(&doc).ok().map(|i| &self.vectors[i])
    }
}

/// Descriptor arrays of the live segments.
pub(crate) type VectorCache = SegmentCache<SegmentVectors>;

/// Finds the document of sample `sample` (its file name, or a unique part of it,
/// case-insensitive) of pack `pack`.
fn find_sample(
    searcher: &Searcher,
    f: &Fields,
    pack: &PackId,
    sample: &str,
) -> Result<(DocAddress, String), IndexError> {
    let term = tantivy::Term::from_field_text(f.pack_id, &pack.to_hex());
    let docs = searcher
        .search(&TermQuery::new(term, IndexRecordOption::Basic), &DocSetCollector)
        .map_err(IndexError::search)?;
    let wanted = sample.to_lowercase();
    let mut exact = None;
    let mut partial = Vec::new();
    for doc in docs {
        let stored: TantivyDocument = searcher.doc(doc).map_err(IndexError::search)?;
        let name = hit_from_stored(f, &stored, 0.0, || format!("{doc:?}"))?.sample.unwrap_or_default();
        if name == sample {
            exact = Some((doc, name));
        } else if name.to_lowercase().contains(&wanted) {
            partial.push((doc, name));
        }
    }
    match (exact, partial.len()) {
        (Some(found), _) => Ok(found),
        (None, 1) => Ok(partial.remove(0)),
        (None, 0) => Err(IndexError::NoSample { pack: *pack, sample: sample.to_string() }),
        (None, n) => Err(IndexError::AmbiguousSample { pack: *pack, sample: sample.to_string(), matches: n }),
    }
}

/// How similar two sounds are, from 1 (the same descriptor) towards 0: one over
/// one plus their distance in standard deviations.
fn similarity(distance: u32) -> f32 {
    1.0 / (1.0 + (distance as f32).sqrt() / 32.0)
}

/// The `top_k` samples nearest to sample `sample` of `pack`, nearest first, among
/// the documents `filter` matches (all when `None`), the sample itself excluded.
/// Returns the hits (score: [`similarity`]) and how many samples were compared.
pub(crate) fn nearest(
    searcher: &Searcher,
    f: &Fields,
    cache: &VectorCache,
    pack: &PackId,
    sample: &str,
    filter: Option<&dyn Query>,
    top_k: usize,
) -> Result<(Vec<Hit>, usize), IndexError> {
    let (target_doc, target_name) = find_sample(searcher, f, pack, sample)?;
    let segments = cache.segments(searcher)?;
    let target = segments
        .get(target_doc.segment_ord as usize)
        .and_then(|s| s.get(target_doc.doc_id))
        .copied()
        .ok_or(IndexError::NoDescriptor { pack: *pack, sample: target_name })?;
    let allowed = match filter {
        Some(query) => Some(searcher.search(query, &DocSetCollector).map_err(IndexError::search)?),
        None => None,
    };
    // A max-heap of the best so far: its top is the worst kept.
    let mut best: BinaryHeap<(u32, u32, DocId)> = BinaryHeap::with_capacity(top_k + 1);
    let mut compared = 0;
    for (ord, (vectors, segment)) in segments.iter().zip(searcher.segment_readers()).enumerate() {
        let alive = segment.alive_bitset();
        let ord = ord as u32;
        for (doc, vector) in vectors.docs.iter().zip(&vectors.vectors) {
            let address = DocAddress::new(ord, *doc);
            if address == target_doc
                || alive.is_some_and(|a| a.is_deleted(*doc))
                || allowed.as_ref().is_some_and(|set| !set.contains(&address))
            {
                continue;
            }
            compared += 1;
            let distance = target.distance(vector);
            if best.len() < top_k {
                best.push((distance, ord, *doc));
            } else if best.peek().is_some_and(|worst| distance < worst.0) {
                best.pop();
                best.push((distance, ord, *doc));
            }
        }
    }
    let mut ranked = best.into_vec();
    ranked.sort_unstable();
    let mut hits = Vec::with_capacity(ranked.len());
    for (distance, ord, doc) in ranked {
        let address = DocAddress::new(ord, doc);
        let stored: TantivyDocument = searcher.doc(address).map_err(IndexError::search)?;
        hits.push(hit_from_stored(f, &stored, similarity(distance), || format!("{address:?}"))?);
    }
    Ok((hits, compared))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_falls_with_distance() {
        assert_eq!(similarity(0), 1.0);
        assert!(similarity(100) > similarity(10_000));
    }
}
