//! From a manifest to tantivy documents, and from a stored document back to a hit.

use smpl_protocol::{Key, Manifest, Mode, PackId, SampleEntry, SampleKind};
use tantivy::TantivyDocument;
use tantivy::schema::Value;

use crate::error::IndexError;
use crate::results::Hit;
use crate::schema::{Fields, normalize_label};
use crate::stored::{self, PackRecord};
use crate::tokenizer::strip_audio_extension;

/// Kind and key of a sample as one small number (`0..50`): bit 0 is set for a
/// loop, the rest is 0 without a key, else `1 + tonic * 2 + minor`.
pub(crate) fn kind_key_code(s: &SampleEntry) -> u64 {
    let kind = u64::from(s.kind == SampleKind::Loop);
    let key = s.key.map_or(0, |k| 1 + u64::from(k.tonic % 12) * 2 + u64::from(k.mode == Mode::Minor));
    kind | key << 1
}

/// The number of distinct [`kind_key_code`]s.
pub(crate) const KIND_KEY_CODES: usize = 50;

/// The bit of the facet code set when the sample has tags of its own
/// (`sample_tag`), so the collector reads that column only then.
pub(crate) const HAS_SAMPLE_TAGS: u64 = 64;

/// The pack id as two integers (big-endian halves), for fast-field grouping.
pub(crate) fn pack_halves(id: &PackId) -> (u64, u64) {
    let b = id.as_bytes();
    let mut hi = [0u8; 8];
    let mut lo = [0u8; 8];
    hi.copy_from_slice(&b[..8]);
    lo.copy_from_slice(&b[8..]);
    (u64::from_be_bytes(hi), u64::from_be_bytes(lo))
}

pub(crate) fn pack_from_halves(hi: u64, lo: u64) -> PackId {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&hi.to_be_bytes());
    b[8..].copy_from_slice(&lo.to_be_bytes());
    PackId(b)
}

/// One document per sample of `m`.
pub(crate) fn documents(f: &Fields, m: &Manifest) -> Vec<TantivyDocument> {
    let mut pack_text = String::with_capacity(256 + m.description.len());
    for part in [&m.title, &m.genre, &m.author_name, &m.description].into_iter().chain(&m.tags) {
        pack_text.push_str(part);
        pack_text.push('\n');
    }
    let pack_hex = m.pack_id.to_hex();
    let author_hex = m.author.to_hex();
    let (hi, lo) = pack_halves(&m.pack_id);
    let genre = smpl_protocol::normalize_genre(&m.genre);
    let mut pack_tags: Vec<String> =
        m.tags.iter().map(|t| normalize_label(t)).filter(|t| !t.is_empty()).collect();
    pack_tags.sort();
    pack_tags.dedup();
    let price_minor = m.price.as_ref().map_or(0, |p| p.amount_minor);
    let record = PackRecord {
        pack_id: &m.pack_id,
        author: &m.author,
        created_at: m.created_at,
        price: m.price.as_ref(),
        title: &m.title,
        author_name: &m.author_name,
        genre: &m.genre,
    };
    let mut text = String::new();
    let mut docs = Vec::with_capacity(m.samples.len());
    let mut stored = Vec::new();
    for s in &m.samples {
        let mut doc = TantivyDocument::new();
        // `text`: the name twice (a word of the sample's own name outweighs one of
        // its pack in BM25), the tags, the pack text. Each part is a value of its
        // own, so the indexing analyzer's cache replays the second name and the pack
        // text (the same for every sample of the pack). `own`: the name and the tags
        // again, which rank a sample above those its words match only through its
        // pack (see `query`).
        let name = strip_audio_extension(&s.name);
        doc.add_text(f.text, name);
        doc.add_text(f.text, name);
        doc.add_text(f.own, name);
        if !s.tags.is_empty() {
            text.clear();
            for tag in &s.tags {
                text.push_str(tag);
                text.push('\n');
            }
            doc.add_text(f.text, &text);
            doc.add_text(f.own, &text);
        }
        doc.add_text(f.text, &pack_text);
        doc.add_text(f.pack_id, &pack_hex);
        doc.add_u64(f.pack_hi, hi);
        doc.add_u64(f.pack_lo, lo);
        doc.add_u64(f.seq, m.seq);
        doc.add_u64(f.created_at, m.created_at);
        if !genre.is_empty() {
            doc.add_text(f.genre, &genre);
        }
        for t in &pack_tags {
            doc.add_text(f.tag, t);
            doc.add_text(f.pack_tag, t);
        }
        let mut own_tags: Vec<String> = s
            .tags
            .iter()
            .map(|t| normalize_label(t))
            .filter(|t| !t.is_empty() && pack_tags.binary_search(t).is_err())
            .collect();
        own_tags.sort();
        own_tags.dedup();
        for t in &own_tags {
            doc.add_text(f.tag, t);
            doc.add_text(f.sample_tag, t);
        }
        if let Some(k) = s.key {
            doc.add_text(f.key, k.name());
        }
        // A root note has no mode: it is found under both keys of its tonic.
        if let Some(n) = s.note {
            for mode in [Mode::Major, Mode::Minor] {
                let key = Key { tonic: n.pitch_class % 12, mode, source: n.source };
                if s.key.is_none_or(|k| k.name() != key.name()) {
                    doc.add_text(f.key, key.name());
                }
            }
        }
        let has_own_tags = if own_tags.is_empty() { 0 } else { HAS_SAMPLE_TAGS };
        doc.add_u64(f.facet_code, kind_key_code(s) | has_own_tags);
        doc.add_text(f.author, &author_hex);
        if let Some(b) = s.tempo.map(|t| t.bpm).filter(|b| b.is_finite()) {
            doc.add_f64(f.bpm, f64::from(b));
        }
        doc.add_u64(f.price, price_minor);
        if let Some(d) = &s.descriptor {
            for (field, word) in f.desc.iter().zip(crate::schema::to_words(d)) {
                doc.add_u64(*field, word);
            }
        }
        stored::encode(&record, s, &mut stored);
        doc.add_bytes(f.stored, &stored);
        docs.push(doc);
    }
    docs
}

/// Reads the hit a stored document describes. `doc` names it in errors.
pub(crate) fn hit_from_stored(
    f: &Fields,
    stored: &TantivyDocument,
    score: f32,
    doc: impl Fn() -> String,
) -> Result<Hit, IndexError> {
    let corrupt = |reason: String| IndexError::Corrupt { doc: doc(), reason };
    let bytes = stored
        .get_first(f.stored)
        .and_then(|v| v.as_bytes())
        .ok_or_else(|| corrupt("no stored hit".into()))?;
    stored::decode(bytes, score).map_err(corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_halves_round_trip() {
        let id = PackId([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
        let (hi, lo) = pack_halves(&id);
        assert_eq!(hi, 0x0102030405060708);
        assert_eq!(pack_from_halves(hi, lo), id);
    }
}
