//! From a [`SearchQuery`] to tantivy queries.
//!
//! **Matching.** Every analyzed word of the text must match (AND) one text field
//! per sample: its name, its tags, and the pack's title, genre, tags, author name
//! and description. One field keeps each word a single posting list. Filters are
//! constant-score clauses, so they narrow the matches without changing ranks.
//!
//! **Ranking.** A sample's own words come before its pack's: what a producer
//! searches for is a sound, and a pack's description ("punchy kicks and deep bass
//! loops") is about all of its samples. Each word scores its BM25 over the text
//! field (where the name counts twice) and, when it is one of the sample's own
//! words (its name or tags: field `own`), a step larger than the BM25 scores of
//! all the query's words together can reach. A sample's score is thus
//! `tier × step + BM25`, its tier being how many of the query's words are its own:
//! a sample of a higher tier ranks above every sample of a lower one whatever
//! their BM25 (every sample named or tagged `kick` above every sample whose pack
//! only describes kicks), and BM25 orders the samples of one tier. The step
//! depends only on the words and the number of documents (see [`own_step`]), so
//! the exact pass and the typo pass below score alike. In packs mode a pack ranks
//! by its best sample, so a pack with a sample of a higher tier comes first. A
//! text search sorted by [`Sort::Newest`](crate::Sort) ranks by creation time
//! first, then by this score.
//!
//! The tier costs one more posting list per word (`own` holds doc ids only), and
//! it is not a clause of the query, which would seek it at every match: the
//! collector reads it ([`OwnWords`]), and only at a match that could still enter
//! the top k, or beat its pack's best, were all the words its own.
//!
//! **Typos.** One-typo variants of a word are not a fuzzy automaton query (which
//! would fill a bitset over all of a word's documents on every search): the search
//! expands them against the term dictionaries only when exact matching came up
//! short, and scores them as ordinary terms of the text field, [`FUZZY_BOOST`]
//! times lower. A tier counts the words themselves only, not their variants (the
//! typo pass reads no more `own` posting lists than the exact pass); the exact
//! matches come before those that needed a typo (see `Index::search`).

use std::collections::BTreeSet;

use smpl_protocol::Key;
use tantivy::query::{
    AllQuery, Bm25StatisticsProvider, Bm25Weight, BooleanQuery, BoostQuery, ConstScoreQuery, EmptyQuery,
    FuzzyTermQuery, Occur, Query, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Score, Searcher, Term};

use crate::arrays::{Filter, Filtered, SearchedArrays};
use crate::collector::OwnWords;
use crate::error::IndexError;
use crate::results::{KeyMatch, SearchQuery};
use crate::schema::{Fields, normalize_label};
use crate::tokenizer::analyze;

/// Weight of a one-typo variant relative to the word itself.
pub(crate) const FUZZY_BOOST: f32 = 0.3;
/// Shortest word (in characters, after analysis) that gets one-typo variants.
pub(crate) const FUZZY_MIN_CHARS: usize = 4;
/// Most one-typo variants used per word.
pub(crate) const MAX_VARIANTS: usize = 32;

/// A validated search, ready to be turned into tantivy queries.
pub(crate) struct Plan {
    /// Analyzed, deduplicated words of the text.
    pub words: Vec<String>,
    /// Genre, tags, key and author: posting lists to intersect with.
    filters: Vec<Box<dyn Query>>,
    /// Kind, BPM and price: checked per match against the segments' arrays.
    filter: Filter,
    arrays: SearchedArrays,
    /// What a word adds to the score of a sample whose own words hold it.
    own_step: Score,
}

impl Plan {
    /// `arrays` are the arrays of the segments `searcher` searches, which kind, BPM
    /// and price are checked against.
    pub fn new(
        f: &Fields,
        analyzer: &mut TextAnalyzer,
        q: &SearchQuery,
        searcher: &Searcher,
        arrays: SearchedArrays,
    ) -> Result<Plan, IndexError> {
        let mut words = Vec::new();
        if let Some(text) = &q.text {
            for w in analyze(analyzer, text) {
                if !words.contains(&w) {
                    words.push(w);
                }
            }
        }
        // The N of BM25's idf, as tantivy counts it for the text terms' weights.
        let docs = searcher.total_num_docs().map_err(IndexError::search)?;
        let own_step = own_step(&words, docs);
        Ok(Plan { words, filters: filters(f, q)?, filter: field_filter(q)?, arrays, own_step })
    }

    /// Whether the query has neither words nor filters (it matches every sample).
    pub fn is_everything(&self) -> bool {
        self.words.is_empty() && self.filters.is_empty() && self.filter.is_empty()
    }

    /// The words in the `own` field, and the step each adds to the score of a
    /// sample that holds it: what the collector ranks by (see the module docs).
    pub fn own_words(&self, f: &Fields) -> OwnWords {
        let terms = self.words.iter().map(|w| Term::from_field_text(f.own, w)).collect();
        OwnWords { terms, step: self.own_step }
    }

    /// The query: all words (each with its variants, if given) and all filters,
    /// scored by BM25 over the text field. Genre, tags, key and author are posting
    /// lists intersected with the words; kind, BPM and price are checked on what
    /// that matches (see [`Filtered`]).
    pub fn query(&self, f: &Fields, variants: Option<&[Vec<String>]>) -> Box<dyn Query> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (i, word) in self.words.iter().enumerate() {
            let word_variants = variants.and_then(|v| v.get(i)).filter(|v| !v.is_empty());
            let Some(word_variants) = word_variants else {
                clauses.push((Occur::Must, Box::new(text_term(f, word))));
                continue;
            };
            let mut alternatives: Vec<(Occur, Box<dyn Query>)> =
                vec![(Occur::Should, Box::new(text_term(f, word)))];
            for variant in word_variants {
                let boosted = BoostQuery::new(Box::new(text_term(f, variant)), FUZZY_BOOST);
                alternatives.push((Occur::Should, Box::new(boosted)));
            }
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(alternatives))));
        }
        let scoring = !clauses.is_empty();
        for filter in &self.filters {
            let filter = filter.box_clone();
            let filter: Box<dyn Query> =
                if scoring { Box::new(ConstScoreQuery::new(filter, 0.0)) } else { filter };
            clauses.push((Occur::Must, filter));
        }
        let inner: Option<Box<dyn Query>> =
            (!clauses.is_empty()).then(|| Box::new(BooleanQuery::new(clauses)) as _);
        if self.filter.is_empty() {
            return inner.unwrap_or_else(|| Box::new(AllQuery));
        }
        Box::new(Filtered { inner, filter: self.filter, segments: self.arrays.clone() })
    }

    /// One-typo variants of each word found in the index (not the word itself).
    pub fn variants(&self, f: &Fields, searcher: &Searcher) -> Result<Vec<Vec<String>>, IndexError> {
        self.words.iter().map(|w| variants(f, searcher, w)).collect()
    }
}

fn text_term(f: &Fields, word: &str) -> TermQuery {
    TermQuery::new(Term::from_field_text(f.text, word), IndexRecordOption::WithFreqs)
}

/// What a query word adds to a sample's score when it is one of the sample's own
/// words: more than the BM25 scores of all of `words` over the text field can sum
/// to, in a searcher of `docs` documents (deleted ones included, as BM25's idf
/// counts them), with each word's one-typo variants.
///
/// A term scores at most its BM25 weight, idf × (k1 + 1): the frequency factor
/// `tf / (tf + norm)` stays below 1. The idf falls as the term's document frequency
/// rises, and a term that matches is in one document at least; tantivy's own
/// formula gives that weight as the score of a term found once in the index, as
/// often as can be, in the shortest document. A variant scores [`FUZZY_BOOST`]
/// times its term's, and a word has at most [`MAX_VARIANTS`] of them. The bound
/// ignores how common the words are, so the exact pass and the typo pass share
/// it, and it costs no dictionary lookup.
pub(crate) fn own_step(words: &[String], docs: u64) -> Score {
    let term_max = Bm25Weight::for_one_term_without_explain(1, docs.max(1), 1.0).score(0, u32::MAX);
    let per_word = |w: &String| {
        if w.chars().count() >= FUZZY_MIN_CHARS { 1.0 + FUZZY_BOOST * MAX_VARIANTS as Score } else { 1.0 }
    };
    let bound = words.iter().map(per_word).sum::<Score>() * term_max;
    // A margin far above the rounding of the f32 sums that make a score.
    bound + bound / 1024.0
}

fn variants(f: &Fields, searcher: &Searcher, word: &str) -> Result<Vec<String>, IndexError> {
    if word.chars().count() < FUZZY_MIN_CHARS {
        return Ok(Vec::new());
    }
    let automaton = FuzzyTermQuery::new(Term::from_field_text(f.text, word), 1, true)
        .automaton()
        .map_err(IndexError::search)?;
    let mut found = BTreeSet::new();
    for segment in searcher.segment_readers() {
        let inverted = segment.inverted_index(f.text).map_err(IndexError::search)?;
        let mut stream =
            inverted.terms().search(&automaton).into_stream().map_err(|e| IndexError::search(e.into()))?;
        while stream.advance() {
            if let Ok(term) = std::str::from_utf8(stream.key())
                && term != word
            {
                found.insert(term.to_string());
            }
        }
    }
    Ok(found.into_iter().take(MAX_VARIANTS).collect())
}

fn term_filter(field: Field, value: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(Term::from_field_text(field, value), IndexRecordOption::Basic))
}

fn filters(f: &Fields, q: &SearchQuery) -> Result<Vec<Box<dyn Query>>, IndexError> {
    let mut out: Vec<Box<dyn Query>> = Vec::new();
    if let Some(genre) = &q.genre {
        let genre = smpl_protocol::normalize_genre(genre);
        if !genre.is_empty() {
            out.push(term_filter(f.genre, &genre));
        }
    }
    for tag in &q.tags {
        let tag = normalize_label(tag);
        if !tag.is_empty() {
            out.push(term_filter(f.tag, &tag));
        }
    }
    if let Some(key) = q.key.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
        let parsed = Key::parse(key).map_err(|e| IndexError::bad("key", key, e))?;
        let keys = match q.key_match {
            KeyMatch::Exact => vec![parsed],
            KeyMatch::Relative => vec![parsed, parsed.relative()],
            KeyMatch::Compatible => parsed.compatible().to_vec(),
        };
        let any: Vec<(Occur, Box<dyn Query>)> =
            keys.iter().map(|k| (Occur::Should, term_filter(f.key, &k.name()))).collect();
        out.push(Box::new(BooleanQuery::new(any)));
    }
    if let Some(author) = &q.author {
        out.push(term_filter(f.author, &author.to_hex()));
    }
    if q.max_price.is_some_and(|max| max < 0.0) {
        out.push(Box::new(EmptyQuery));
    }
    Ok(out)
}

fn field_filter(q: &SearchQuery) -> Result<Filter, IndexError> {
    let mut filter = Filter { kind: q.kind, ..Filter::default() };
    if let Some((min, max)) = q.bpm {
        if !(min.is_finite() && max.is_finite() && min <= max) {
            return Err(IndexError::bad(
                "BPM range",
                format!("{min}..{max}"),
                "give two numbers, the lower first",
            ));
        }
        filter.bpm = Some((min, max));
    }
    if let Some(max) = q.max_price {
        if !max.is_finite() {
            return Err(IndexError::bad("max price", max, "not a number"));
        }
        // Minor units; the epsilon keeps 4.99 (= 4.9899999…) at 499. Below 0 nothing
        // passes (see `filters`).
        filter.max_price = Some((max * 100.0 + 1e-6).floor().clamp(0.0, u64::MAX as f64) as u64);
    }
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_step_is_above_what_the_words_can_score() {
        let words = ["kick".to_string(), "pad".to_string()];
        // `kick` with its variants, `pad` (too short for variants) alone.
        let terms = 1.0 + FUZZY_BOOST * MAX_VARIANTS as Score + 1.0;
        for docs in [0, 1, 2, 1000, 1_000_000, 1 << 40] {
            let step = own_step(&words, docs);
            for average_length in [0.5, 3.0, 40.0, 1000.0] {
                let weight = Bm25Weight::for_one_term_without_explain(1, docs.max(1), average_length);
                let highest = (0..=255u8)
                    .flat_map(|length| [1, 2, 10, 1000, u32::MAX].map(|tf| weight.score(length, tf)))
                    .fold(0.0, Score::max);
                assert!(highest * terms < step, "{docs} docs, average length {average_length}");
            }
        }
    }
}
