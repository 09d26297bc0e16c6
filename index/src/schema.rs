//! The tantivy schema: one document per sample, carrying its pack's fields.
//!
//! | field | kind | holds |
//! | --- | --- | --- |
//! | `text` | text | the sample's file name (extension dropped) twice, its tags, then pack title, genre, tags, author name and description |
//! | `own` | text, doc ids only | the sample's own words: its file name (extension dropped) and its tags (ranking, see `query`) |
//! | `pack_id` | raw string | pack id in hex; delete-by-pack term |
//! | `pack_hi`, `pack_lo` | u64 fast | the pack id as two integers, for grouping and [`packs`](crate::Index::packs) |
//! | `seq` | u64 fast | manifest sequence number |
//! | `created_at` | u64 fast | pack creation time (unix seconds), for `Sort::Newest` |
//! | `genre` | raw string, fast | genre, trimmed and lower-cased (filter, facet) |
//! | `tag` | raw string, multi | pack and sample tags, trimmed, lower-cased, deduplicated (filter) |
//! | `pack_tag` | fast string, multi | the pack's tags (facet) |
//! | `sample_tag` | fast string, multi | the sample's tags that the pack does not carry (facet) |
//! | `key` | raw string, multi | canonical key name (`Am`); a root note adds both keys of its tonic (`C`, `Cm`); absent when unknown (filter) |
//! | `facet_code` | u64 fast | kind, key and whether `sample_tag` is set, as one small code (kind filter, facets) |
//! | `author` | raw string | author node id in hex |
//! | `bpm` | f64 fast | tempo, absent when unknown (filter) |
//! | `price` | u64 fast | price in minor units, 0 for free packs (filter) |
//! | `stored` | stored bytes | what a search hit shows (see `stored`) |
//! | `desc0`…`desc3` | u64 fast | the sound descriptor's 32 bytes, 8 to a field, absent when unknown (see `similar`) |
//!
//! Any change to this table, or to the analyzer, bumps [`SCHEMA_VERSION`]: an index
//! written by another version is wiped on open and rebuilt by the node.

use smpl_protocol::{DESCRIPTOR_DIMS, Descriptor};
use tantivy::schema::{
    FAST, Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};

use crate::tokenizer::ANALYZER;

/// Version of the schema and analysis; stored next to the index.
pub(crate) const SCHEMA_VERSION: u32 = 9;

/// The file in the index directory that holds [`SCHEMA_VERSION`].
pub(crate) const VERSION_FILE: &str = "smpl-index-version";

/// Handles to every field of the schema.
#[derive(Clone, Debug)]
pub(crate) struct Fields {
    pub text: Field,
    pub own: Field,
    pub pack_id: Field,
    pub pack_hi: Field,
    pub pack_lo: Field,
    pub seq: Field,
    pub created_at: Field,
    pub genre: Field,
    pub tag: Field,
    pub pack_tag: Field,
    pub sample_tag: Field,
    pub key: Field,
    pub facet_code: Field,
    pub author: Field,
    pub bpm: Field,
    pub price: Field,
    pub stored: Field,
    pub desc: [Field; 4],
}

/// Fast-field names, used by the collector.
pub(crate) mod names {
    pub const PACK_HI: &str = "pack_hi";
    pub const PACK_LO: &str = "pack_lo";
    pub const SEQ: &str = "seq";
    pub const CREATED_AT: &str = "created_at";
    pub const GENRE: &str = "genre";
    pub const PACK_TAG: &str = "pack_tag";
    pub const SAMPLE_TAG: &str = "sample_tag";
    pub const KEY: &str = "key";
    pub const FACET_CODE: &str = "facet_code";
    pub const BPM: &str = "bpm";
    pub const PRICE: &str = "price";
    pub const DESC: [&str; 4] = ["desc0", "desc1", "desc2", "desc3"];
}

/// The schema of this version, with its field handles.
pub(crate) fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer(ANALYZER).set_index_option(IndexRecordOption::WithFreqs),
    );
    let text = b.add_text_field("text", text);
    let own = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer(ANALYZER).set_index_option(IndexRecordOption::Basic),
    );
    let own = b.add_text_field("own", own);
    let pack_id = b.add_text_field("pack_id", STRING);
    let pack_hi = b.add_u64_field(names::PACK_HI, FAST);
    let pack_lo = b.add_u64_field(names::PACK_LO, FAST);
    let seq = b.add_u64_field(names::SEQ, FAST);
    let created_at = b.add_u64_field(names::CREATED_AT, FAST);
    let genre = b.add_text_field(names::GENRE, STRING | FAST);
    let tag = b.add_text_field("tag", STRING);
    let pack_tag = b.add_text_field(names::PACK_TAG, FAST);
    let sample_tag = b.add_text_field(names::SAMPLE_TAG, FAST);
    let key = b.add_text_field(names::KEY, STRING);
    let facet_code = b.add_u64_field(names::FACET_CODE, FAST);
    let author = b.add_text_field("author", STRING);
    let bpm = b.add_f64_field(names::BPM, FAST);
    let price = b.add_u64_field(names::PRICE, FAST);
    let stored = b.add_bytes_field("stored", STORED);
    let desc = names::DESC.map(|name| b.add_u64_field(name, FAST));
    let fields = Fields {
        text,
        own,
        pack_id,
        pack_hi,
        pack_lo,
        seq,
        created_at,
        genre,
        tag,
        pack_tag,
        sample_tag,
        key,
        facet_code,
        author,
        bpm,
        price,
        stored,
        desc,
    };
    (b.build(), fields)
}

/// Normalizes a genre or tag for filtering and facets: trimmed, lower-cased,
/// inner whitespace collapsed to one space.
pub(crate) fn normalize_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// A descriptor as the four fast-field words (little-endian bytes).
pub(crate) fn to_words(d: &Descriptor) -> [u64; 4] {
    let bytes = d.to_bytes();
    std::array::from_fn(|i| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
        u64::from_le_bytes(word)
    })
}

pub(crate) fn from_words(words: [u64; 4]) -> Descriptor {
    let mut bytes = [0u8; DESCRIPTOR_DIMS];
    for (i, word) in words.iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&word.to_le_bytes());
    }
    Descriptor::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        let mut d = Descriptor([0; DESCRIPTOR_DIMS]);
        for (i, v) in d.0.iter_mut().enumerate() {
            *v = (i as i8 - 16) * 7;
        }
        assert_eq!(from_words(to_words(&d)), d);
    }

    #[test]
    fn labels_are_normalized() {
        assert_eq!(normalize_label("  Hip   Hop "), "hip hop");
        assert_eq!(normalize_label("LoFi"), "lofi");
        assert_eq!(normalize_label(" \t"), "");
    }

    #[test]
    fn schema_is_stable_across_builds() {
        assert_eq!(schema().0, schema().0);
    }
}
