//! From a [`SearchQuery`] to tantivy queries.
//!
//! Every analyzed word of the text must match (AND), scored by BM25 over one text
//! field per sample: its name (indexed twice, so that a word of the sample's own
//! name outweighs one of its pack), its tags, and the pack's title, genre, tags,
//! author name and description. One field keeps each word a single posting list.
//! Filters are constant-score clauses, so they narrow the matches without changing
//! BM25 ranks. One-typo variants of a word are not a fuzzy automaton query (which
//! would fill a bitset over all of a word's documents on every search): the search
//! expands them against the term dictionaries only when exact matching came up
//! short, and scores them as ordinary terms, [`FUZZY_BOOST`] times lower.

use std::collections::BTreeSet;

use smpl_protocol::Key;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, EmptyQuery, FuzzyTermQuery, Occur, Query, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Searcher, Term};

use crate::arrays::{Filter, Filtered, SearchedArrays};
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
}

impl Plan {
    /// `arrays` are the searched segments' arrays, which kind, BPM and price are
    /// checked against.
    pub fn new(
        f: &Fields,
        analyzer: &mut TextAnalyzer,
        q: &SearchQuery,
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
        Ok(Plan { words, filters: filters(f, q)?, filter: field_filter(q)?, arrays })
    }

    /// Whether the query has neither words nor filters (it matches every sample).
    pub fn is_everything(&self) -> bool {
        self.words.is_empty() && self.filters.is_empty() && self.filter.is_empty()
    }

    /// The query: all words (each with its variants, if given) and all filters.
    /// Genre, tags, key and author are posting lists intersected with the words;
    /// kind, BPM and price are checked on what that matches (see [`Filtered`]).
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
        let genre = normalize_label(genre);
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
