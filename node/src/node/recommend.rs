//! Recommendations, computed on this node from this node's own library: what a
//! central marketplace learns from everyone's purchase logs, done from what this
//! producer already has (packs fetched or licensed here) and the local index.
//!
//! Two signals, each a list of candidate packs with a reason:
//!
//! - **words**: for each library pack, a packs-mode search for its genre, tags and
//!   title words ("more like this" by text), ranked by the index;
//! - **sound**: for up to [`SOUNDS_PER_PACK`] samples of each library pack, the
//!   nearest samples by descriptor in the whole index; a candidate pack scores by
//!   how many near neighbours it has and how near they are.
//!
//! A candidate's score is the sum over both signals; its reason is the one line
//! of its largest contribution ("similar kicks to Dusty Drums"). Packs this node
//! authored or already has are never recommended.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use smpl_index::{SampleRef, SearchQuery};
use smpl_protocol::{Manifest, NodeId, PackId, Price};

use super::{Node, NodeError};

/// Samples of each library pack whose neighbours are looked up.
const SOUNDS_PER_PACK: usize = 12;
/// Neighbours looked up per sample.
const NEIGHBOURS: usize = 20;
/// Packs looked up per library pack by text.
const TEXT_HITS: usize = 20;

/// One recommended pack.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Recommendation {
    pub pack_id: PackId,
    pub title: String,
    pub author: NodeId,
    pub author_name: String,
    pub price: Option<Price>,
    pub score: f32,
    /// Why, in one line.
    pub reason: String,
}

/// Words of a sample's file name that name a sound, for reasons.
const SOUND_WORDS: &[(&str, &str)] = &[
    ("kick", "kicks"),
    ("bassdrum", "kicks"),
    ("bd", "kicks"),
    ("snare", "snares"),
    ("sd", "snares"),
    ("clap", "claps"),
    ("hat", "hats"),
    ("hh", "hats"),
    ("cymbal", "cymbals"),
    ("crash", "cymbals"),
    ("ride", "cymbals"),
    ("tom", "toms"),
    ("perc", "percussion"),
    ("shaker", "percussion"),
    ("808", "808s"),
    ("bass", "bass sounds"),
    ("pad", "pads"),
    ("chord", "chords"),
    ("lead", "leads"),
    ("pluck", "plucks"),
    ("vocal", "vocals"),
    ("vox", "vocals"),
    ("fx", "effects"),
    ("loop", "loops"),
];

/// What a sample is, in a word for a reason ("kicks"), from its file name.
fn sound_word(name: &str) -> &'static str {
    let lower = name.to_lowercase();
    let words: Vec<&str> =
        lower.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    for (key, plural) in SOUND_WORDS {
        if words.iter().any(|w| w == key || (key.len() > 2 && w.contains(key))) {
            return plural;
        }
    }
    "sounds"
}

#[derive(Default)]
struct Candidate {
    score: f32,
    /// Contribution → reason; the largest wins.
    reasons: HashMap<String, f32>,
}

impl Candidate {
    fn add(&mut self, score: f32, reason: String) {
        self.score += score;
        *self.reasons.entry(reason).or_default() += score;
    }

    fn reason(&self) -> String {
        self.reasons
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(r, _)| r.clone())
            .unwrap_or_default()
    }
}

impl Node {
    /// The packs this producer has: fetched here (and not authored) or licensed.
    async fn library(&self) -> Result<Vec<Manifest>, NodeError> {
        let me = self.node_id();
        let licensed: HashSet<PackId> = self.licenses(false).await?.into_iter().map(|l| l.pack_id).collect();
        let mut library = Vec::new();
        for (pack, _) in self.store.pack_seqs()? {
            let Some((manifest, _)) = self.store.manifest(&pack)? else { continue };
            if manifest.author != me && (licensed.contains(&pack) || self.blobs.has_pack(&pack).await?) {
                library.push(manifest);
            }
        }
        Ok(library)
    }

    /// Up to `limit` packs this producer may like, best first, each with a reason.
    pub async fn recommend(&self, limit: usize) -> Result<Vec<Recommendation>, NodeError> {
        let library = self.library().await?;
        let me = self.node_id();
        let owned: HashSet<PackId> = library.iter().map(|m| m.pack_id).collect();
        let mut candidates: HashMap<PackId, Candidate> = HashMap::new();
        let mut shown: HashMap<PackId, smpl_index::Hit> = HashMap::new();
        let keep = |hit: &smpl_index::Hit| hit.author != me && !owned.contains(&hit.pack_id);

        for manifest in &library {
            // Words: each tag, the genre and each title word, in packs mode.
            let mut words: Vec<(String, String)> =
                manifest.tags.iter().map(|t| (t.clone(), format!("tagged {t}"))).collect();
            words.push((manifest.genre.clone(), manifest.genre.clone()));
            words.extend(
                manifest.title.split_whitespace().map(|w| (w.to_string(), format!("{w:?} in the title"))),
            );
            words.retain(|(w, _)| w.trim().chars().count() > 1);
            for (word, why) in &words {
                let query = SearchQuery {
                    text: Some(word.clone()),
                    packs: true,
                    limit: TEXT_HITS,
                    ..Default::default()
                };
                let Ok(results) = self.search(query).await else { continue };
                for (rank, hit) in results.hits.iter().enumerate().filter(|(_, h)| keep(h)) {
                    let score = 1.0 / (rank as f32 + 2.0) / words.len() as f32;
                    let reason = format!("{why}, like {}", manifest.title);
                    candidates.entry(hit.pack_id).or_default().add(score, reason);
                    shown.entry(hit.pack_id).or_insert_with(|| hit.clone());
                }
            }
            // Sound: neighbours of a spread of the pack's samples.
            let described: Vec<_> = manifest.samples.iter().filter(|s| s.descriptor.is_some()).collect();
            let step = described.len().div_ceil(SOUNDS_PER_PACK).max(1);
            for sample in described.iter().step_by(step) {
                let query = SearchQuery {
                    similar_to: Some(SampleRef { pack_id: manifest.pack_id, sample: sample.name.clone() }),
                    limit: NEIGHBOURS,
                    ..Default::default()
                };
                let Ok(results) = self.search(query).await else { continue };
                let reason = format!("similar {} to {}", sound_word(&sample.name), manifest.title);
                for hit in results.hits.iter().filter(|h| keep(h)) {
                    // Scores near 1 are near sounds; weigh them up.
                    let score = hit.score * hit.score * 2.0 / SOUNDS_PER_PACK as f32;
                    candidates.entry(hit.pack_id).or_default().add(score, reason.clone());
                    shown.entry(hit.pack_id).or_insert_with(|| hit.clone());
                }
            }
        }
        let mut ranked: Vec<Recommendation> = candidates
            .into_iter()
            .filter_map(|(pack, c)| {
                let hit = shown.get(&pack)?;
                Some(Recommendation {
                    pack_id: pack,
                    title: hit.pack_title.clone(),
                    author: hit.author,
                    author_name: hit.author_name.clone(),
                    price: hit.price.clone(),
                    score: c.score,
                    reason: c.reason(),
                })
            })
            .collect();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.title.cmp(&b.title)));
        ranked.truncate(limit);
        Ok(ranked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sound_words_from_file_names() {
        assert_eq!(sound_word("Kicks/BD_Dusty_01.wav"), "kicks");
        assert_eq!(sound_word("Deep_Kick_01.wav"), "kicks");
        assert_eq!(sound_word("HiHat closed.flac"), "hats");
        assert_eq!(sound_word("Bassdrum.wav"), "kicks");
        assert_eq!(sound_word("hh_closed.flac"), "hats");
        assert_eq!(sound_word("Warm_Pad_Cm.wav"), "pads");
        assert_eq!(sound_word("take 3.wav"), "sounds");
    }
}
