//! The local search index of a smpl node, on tantivy.
//!
//! The node feeds it verified manifests and asks it questions; it knows nothing of
//! the network. The index can always be rebuilt from the manifests the node keeps.
//!
//! - [`Index`]: open (or create, or wipe and recreate when the schema version
//!   changed: [`Index::needs_rebuild`]), [`Index::apply`] a batch of [`IndexOp`]s in
//!   one commit, [`Index::search`], list what is indexed with [`Index::packs`],
//!   [`Index::clear`], [`Index::wait_merges`] after a bulk rebuild, [`Index::close`]
//!   to sync it to the disk (commits are not synced: module `directory`, and an
//!   index the machine stopped under is rebuilt). [`IndexOptions`]
//!   bound the writer's threads and memory. Synchronous: the node calls it from its
//!   indexer thread and from blocking tasks.
//! - [`SearchQuery`] → [`SearchResults`]: full text with typo tolerance, filters
//!   (genre, tags, kind, BPM range, key, price ceiling, author), [`Sort`], paging,
//!   one hit per sample or per pack, and [`Facets`] counted over every match.
//!   Ranking rule: every word must match the sample or its pack, and a sample
//!   ranks above every sample that has fewer of the query's words among its own
//!   words (its name and tags); BM25 orders samples with as many. So `kick` lists
//!   every sample named or tagged kick before those that match only through their
//!   pack's title or description. A pack ranks by its best sample.
//!   With [`SearchQuery::similar_to`] the matches are ranked by how close their
//!   sound descriptors are to one sample's instead ("more like this" by sound,
//!   module `similar`: an exact scan over per-segment arrays).
//! - [`IndexError`]: what failed and with which input.
//!
//! Inside: `schema` (one document per sample carrying its pack's fields, and the
//! schema version), `tokenizer` (file-name aware analysis: `BD_Kick_01.wav` finds
//! `kick`), `document` (manifest → documents), `stored` (the compact record a
//! [`Hit`] is read from), `query` ([`SearchQuery`] → tantivy queries, the ranking
//! rule and its score step, one-typo variants), and `collector` (one pass that
//! counts, builds facets, adds the step for each of a match's own words when it
//! could make the page, keeps the top k and groups by pack). Figures:
//! `docs/BENCHMARKS.md`, section "Search index".
//!
//! ```
//! use smpl_index::{Index, SearchQuery};
//!
//! let index = Index::open_in_ram()?;
//! let results = index.search(&SearchQuery { text: Some("dusty kick".into()), ..Default::default() })?;
//! assert_eq!(results.total, 0);
//! # Ok::<(), smpl_index::IndexError>(())
//! ```

mod arrays;
mod collector;
mod directory;
mod document;
mod error;
mod index;
mod query;
mod results;
mod schema;
mod segment_cache;
mod similar;
mod stored;
mod tokenizer;

pub use error::IndexError;
pub use index::{Index, IndexOp, IndexOptions};
pub use results::{Facets, Hit, KeyMatch, MAX_FACET_VALUES, SampleRef, SearchQuery, SearchResults, Sort};
