//! From a manifest to tantivy documents, and from a stored document back to a hit.

use serde::{Deserialize, Serialize};
use smpl_protocol::{Manifest, NodeId, PackId, Price, SampleKind};
use tantivy::TantivyDocument;
use tantivy::schema::Value;
use tantivy::tokenizer::{PreTokenizedString, TextAnalyzer};

use crate::error::IndexError;
use crate::results::Hit;
use crate::schema::{Fields, normalize_label};
use crate::tokenizer::{analyze_tokens, strip_audio_extension};

/// What a hit shows, stored (as JSON) with each sample document.
#[derive(Serialize, Deserialize)]
struct StoredDoc<'a> {
    #[serde(borrow)]
    pack_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pack_title: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    author: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    author_name: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    sample: std::borrow::Cow<'a, str>,
    kind: SampleKind,
    bpm: Option<f32>,
    key: Option<String>,
    duration_ms: u64,
    price: Option<Price>,
    #[serde(borrow)]
    genre: std::borrow::Cow<'a, str>,
    created_at: u64,
}

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

/// One document per sample of `m`. The pack-level text is analyzed once and reused.
pub(crate) fn documents(f: &Fields, analyzer: &mut TextAnalyzer, m: &Manifest) -> Vec<TantivyDocument> {
    let pack_text = [
        m.title.as_str(),
        m.genre.as_str(),
        &m.tags.join(" "),
        m.author_name.as_str(),
        m.description.as_str(),
    ]
    .join("\n");
    let pack_tokens =
        PreTokenizedString { text: String::new(), tokens: analyze_tokens(analyzer, &pack_text) };
    let pack_hex = m.pack_id.to_hex();
    let author_hex = m.author.to_hex();
    let (hi, lo) = pack_halves(&m.pack_id);
    let genre = normalize_label(&m.genre);
    let pack_tags: Vec<String> =
        m.tags.iter().map(|t| normalize_label(t)).filter(|t| !t.is_empty()).collect();
    let price_minor = m.price.as_ref().map_or(0, |p| p.amount_minor);

    let mut docs = Vec::with_capacity(m.samples.len());
    for s in &m.samples {
        let mut doc = TantivyDocument::new();
        let mut name_text = strip_audio_extension(&s.name).to_string();
        for tag in &s.tags {
            name_text.push('\n');
            name_text.push_str(tag);
        }
        doc.add_text(f.name, &name_text);
        doc.add_pre_tokenized_text(f.pack, pack_tokens.clone());
        doc.add_text(f.pack_id, &pack_hex);
        doc.add_u64(f.pack_hi, hi);
        doc.add_u64(f.pack_lo, lo);
        doc.add_u64(f.seq, m.seq);
        doc.add_u64(f.created_at, m.created_at);
        if !genre.is_empty() {
            doc.add_text(f.genre, &genre);
        }
        let mut tags = pack_tags.clone();
        for t in &s.tags {
            let t = normalize_label(t);
            if !t.is_empty() && !tags.contains(&t) {
                tags.push(t);
            }
        }
        tags.sort();
        tags.dedup();
        for t in &tags {
            doc.add_text(f.tag, t);
        }
        doc.add_text(f.kind, s.kind.name());
        let key = s.key.map(|k| k.name());
        if let Some(k) = &key {
            doc.add_text(f.key, k);
        }
        doc.add_text(f.author, &author_hex);
        let bpm = s.tempo.map(|t| t.bpm).filter(|b| b.is_finite());
        if let Some(b) = bpm {
            doc.add_f64(f.bpm, f64::from(b));
        }
        doc.add_u64(f.price, price_minor);
        let stored = StoredDoc {
            pack_id: pack_hex.as_str().into(),
            pack_title: m.title.as_str().into(),
            author: author_hex.as_str().into(),
            author_name: m.author_name.as_str().into(),
            sample: s.name.as_str().into(),
            kind: s.kind,
            bpm,
            key,
            duration_ms: s.duration_ms(),
            price: m.price.clone(),
            genre: m.genre.as_str().into(),
            created_at: m.created_at,
        };
        // Serializing plain strings and numbers to a Vec cannot fail.
        let json = serde_json::to_vec(&stored).unwrap_or_default();
        doc.add_bytes(f.stored, &json);
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
    let s: StoredDoc<'_> = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    let pack_id: PackId = s.pack_id.parse().map_err(|e| corrupt(format!("{e}")))?;
    let author: NodeId = s.author.parse().map_err(|e| corrupt(format!("{e}")))?;
    Ok(Hit {
        pack_id,
        pack_title: s.pack_title.into_owned(),
        author,
        author_name: s.author_name.into_owned(),
        sample: Some(s.sample.into_owned()),
        kind: Some(s.kind),
        bpm: s.bpm,
        key: s.key,
        duration_ms: Some(s.duration_ms),
        price: s.price,
        genre: s.genre.into_owned(),
        score,
        created_at: s.created_at,
    })
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
