//! What a search asks and what it answers.

use serde::{Deserialize, Serialize};
use smpl_protocol::{NodeId, PackId, Price, SampleKind};

/// A search: optional full text, filters, paging and order.
///
/// Filters combine with AND; an empty string filter counts as absent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchQuery {
    /// Words to look for in sample names, tags, pack title, description, genre and
    /// author name. Every word must match (exactly, or with one typo when exact
    /// matching finds fewer hits than the page holds).
    pub text: Option<String>,
    /// Pack genre, compared case-insensitively.
    pub genre: Option<String>,
    /// Tags that must all be present on the sample or its pack (case-insensitive).
    pub tags: Vec<String>,
    pub kind: Option<SampleKind>,
    /// Inclusive BPM range; samples without a tempo never match.
    pub bpm: Option<(f32, f32)>,
    /// A key such as `Am`, `A minor` or `F#`; samples without a key or root note never
    /// match. A root note matches every key with its pitch class as tonic (`C` matches
    /// `C` and `Cm`).
    pub key: Option<String>,
    /// Which keys `key` lets through.
    pub key_match: KeyMatch,
    /// Price ceiling in major units (free packs count as 0), whatever the currency.
    pub max_price: Option<f64>,
    pub author: Option<NodeId>,
    /// One hit per pack (its best-matching sample decides its rank) instead of one
    /// per sample.
    pub packs: bool,
    pub sort: Sort,
    pub limit: usize,
    pub offset: usize,
    /// Rank by sound: the samples whose descriptors are nearest to this sample's
    /// come first (text and filters still narrow the matches; `packs` and `sort`
    /// do not apply, and there are no facets).
    pub similar_to: Option<SampleRef>,
}

/// One sample of one pack, by its file name (or a unique part of it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleRef {
    pub pack_id: PackId,
    pub sample: String,
}

impl Default for SearchQuery {
    fn default() -> Self {
        SearchQuery {
            text: None,
            genre: None,
            tags: Vec::new(),
            kind: None,
            bpm: None,
            key: None,
            key_match: KeyMatch::Exact,
            max_price: None,
            author: None,
            packs: false,
            sort: Sort::Relevance,
            limit: 20,
            offset: 0,
            similar_to: None,
        }
    }
}

/// How a key filter matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyMatch {
    /// That key only.
    #[default]
    Exact,
    /// That key or its relative major/minor (the same notes).
    Relative,
    /// Keys that mix well: the key, its relative, and a fifth up or down.
    Compatible,
}

/// Result order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Best score first: samples with more of the query's words in their own name
    /// and tags first, then by BM25; exact matches before one-typo matches. A query
    /// without text has no relevance and is ordered newest first.
    #[default]
    Relevance,
    /// Most recently created pack first, then by score.
    Newest,
}

/// One page of results with the total and facet counts over every match.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchResults {
    /// Matching samples, or matching packs in packs mode.
    pub total: usize,
    pub hits: Vec<Hit>,
    pub facets: Facets,
}

/// One matching sample, or one matching pack in packs mode (then the per-sample
/// fields are `None` and `score` is the best score among its matching samples).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub pack_id: PackId,
    pub pack_title: String,
    pub author: NodeId,
    pub author_name: String,
    /// The sample's file name (relative path in the pack).
    pub sample: Option<String>,
    pub kind: Option<SampleKind>,
    pub bpm: Option<f32>,
    /// The key (`Am`, `C`) or, for a one-shot with a root note and no key, the
    /// note's pitch class (`C`).
    pub key: Option<String>,
    /// A one-shot's root note, with its octave where known (`C3`, `F#`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub duration_ms: Option<u64>,
    /// `None` for a free pack.
    pub price: Option<Price>,
    pub genre: String,
    /// Relevance: a step (constant within one search) for each query word among the
    /// sample's own name and tags, plus its BM25 score; with
    /// [`SearchQuery::similar_to`], the similarity of the sounds (at most 1).
    pub score: f32,
    /// Pack creation time, unix seconds.
    pub created_at: u64,
}

/// Value counts over all matches, not only the returned page, sorted by count
/// (descending) then value. Genres and tags are lower-cased.
///
/// In sample mode a count is the number of matching samples with that value. In
/// packs mode it is the number of matching packs with at least one matching sample
/// with that value. Either way, a count is the `total` that adding that value as a
/// filter would give. Each list holds at most [`MAX_FACET_VALUES`] values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facets {
    pub genre: Vec<(String, u64)>,
    pub kind: Vec<(String, u64)>,
    pub key: Vec<(String, u64)>,
    pub tags: Vec<(String, u64)>,
}

/// The longest facet list returned.
pub const MAX_FACET_VALUES: usize = 100;
