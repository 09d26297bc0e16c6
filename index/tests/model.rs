//! The index against a plain in-memory model: random manifests, random upserts
//! (including higher-seq replacements) and removes in random batches, then random
//! filter queries (optionally with one exact vocabulary word) must return the same
//! matches, totals and facet counts as the model computes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proptest::prelude::*;
use smpl_index::{Facets, Index, IndexOp, IndexOptions, SearchQuery, Sort};
use smpl_protocol::{Key, Manifest, Mode, NodeId, PackId, SampleKind, Source};
use smpl_testkit::manifest::{manifest, node, sample, usd};

/// Words no two of which are one typo apart (also after stemming), so the index's
/// typo tolerance cannot add matches the model does not know of.
const WORDS: [&str; 8] = ["kick", "snare", "clap", "bass", "chord", "pluck", "organ", "vocal"];
const GENRES: [&str; 4] = ["techno", "House", "hip hop", "ambient"];
const TAGS: [&str; 5] = ["dusty", "Analog", "vinyl", "bright", "dark"];
const AUTHORS: [&str; 3] = ["alice", "bob", "carol"];
const SLUGS: [&str; 4] = ["p0", "p1", "p2", "p3"];
const BPMS: [Option<f32>; 5] = [None, Some(90.0), Some(120.0), Some(128.0), Some(140.5)];
const PRICES: [Option<u64>; 4] = [None, Some(99), Some(499), Some(1500)];
const BPM_RANGES: [(f32, f32); 4] = [(80.0, 100.0), (120.0, 128.0), (128.0, 200.0), (0.0, 500.0)];
const MAX_PRICES: [f64; 5] = [0.0, 0.99, 4.99, 5.0, 20.0];

fn author_id(a: usize) -> NodeId {
    node(a as u8 + 1)
}

#[derive(Clone, Debug)]
struct SampleSpec {
    words: (usize, usize),
    kind: bool,
    key: Option<(u8, bool)>,
    bpm: usize,
    tags: Vec<usize>,
}

#[derive(Clone, Debug)]
struct PackSpec {
    author: usize,
    slug: usize,
    title: (usize, usize),
    genre: usize,
    tags: Vec<usize>,
    price: usize,
    created: u64,
    samples: Vec<SampleSpec>,
}

fn sample_spec() -> impl Strategy<Value = SampleSpec> {
    (
        (0..WORDS.len(), 0..WORDS.len()),
        any::<bool>(),
        proptest::option::of((0u8..3, any::<bool>())),
        0..BPMS.len(),
        // Up to three own tags: a sample with more than two keeps them apart.
        proptest::collection::vec(0..TAGS.len(), 0..4),
    )
        .prop_map(|(words, kind, key, bpm, tags)| SampleSpec { words, kind, key, bpm, tags })
}

fn pack_spec() -> impl Strategy<Value = PackSpec> {
    (
        0..AUTHORS.len(),
        0..SLUGS.len(),
        (0..WORDS.len(), 0..WORDS.len()),
        0..GENRES.len(),
        proptest::collection::vec(0..TAGS.len(), 0..3),
        0..PRICES.len(),
        0u64..4,
        proptest::collection::vec(sample_spec(), 1..5),
    )
        .prop_map(|(author, slug, title, genre, tags, price, created, samples)| PackSpec {
            author,
            slug,
            title,
            genre,
            tags,
            price,
            created,
            samples,
        })
}

fn build(spec: &PackSpec, seq: u64) -> Manifest {
    let samples = spec
        .samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut e = sample(&format!("{}_{}_{i}.wav", capitalize(WORDS[s.words.0]), WORDS[s.words.1]));
            e.kind = if s.kind { SampleKind::Loop } else { SampleKind::OneShot };
            e.key = s.key.map(|(tonic, minor)| Key {
                tonic: tonic * 2,
                mode: if minor { Mode::Minor } else { Mode::Major },
                source: Source::Detected,
            });
            e.tempo = BPMS[s.bpm].map(|bpm| smpl_protocol::Tempo {
                bpm,
                source: Source::Detected,
                confidence: 0.5,
            });
            e.tags = s.tags.iter().map(|&t| TAGS[t].to_string()).collect();
            e
        })
        .collect();
    let mut m = manifest(author_id(spec.author), SLUGS[spec.slug], seq, samples);
    m.author_name = AUTHORS[spec.author].to_string();
    m.title = format!("{} {}", WORDS[spec.title.0], WORDS[spec.title.1]);
    m.genre = GENRES[spec.genre].to_string();
    m.tags = spec.tags.iter().map(|&t| TAGS[t].to_string()).collect();
    m.price = PRICES[spec.price].and_then(usd);
    m.created_at = 1_700_000_000 + spec.created;
    m.description = "fresh sounds".into();
    m
}

fn capitalize(w: &str) -> String {
    let mut c = w.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

#[derive(Clone, Debug)]
enum OpSpec {
    Upsert(PackSpec),
    Remove(usize, usize),
}

fn op_spec() -> impl Strategy<Value = OpSpec> {
    prop_oneof![
        4 => pack_spec().prop_map(OpSpec::Upsert),
        1 => (0..AUTHORS.len(), 0..SLUGS.len()).prop_map(|(a, s)| OpSpec::Remove(a, s)),
    ]
}

#[derive(Clone, Debug)]
struct QuerySpec {
    word: Option<usize>,
    genre: Option<usize>,
    tags: Vec<usize>,
    kind: Option<bool>,
    bpm: Option<usize>,
    key: Option<(u8, bool)>,
    max_price: Option<usize>,
    author: Option<usize>,
    packs: bool,
    newest: bool,
}

fn query_spec() -> impl Strategy<Value = QuerySpec> {
    (
        (
            proptest::option::of(0..WORDS.len() + AUTHORS.len() + 1),
            proptest::option::weighted(0.3, 0..GENRES.len()),
            proptest::collection::vec(0..TAGS.len(), 0..2),
            proptest::option::weighted(0.3, any::<bool>()),
            proptest::option::weighted(0.3, 0..BPM_RANGES.len()),
        ),
        (
            proptest::option::weighted(0.3, (0u8..3, any::<bool>())),
            proptest::option::weighted(0.3, 0..MAX_PRICES.len()),
            proptest::option::weighted(0.2, 0..AUTHORS.len()),
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(|((word, genre, tags, kind, bpm), (key, max_price, author, packs, newest))| {
            QuerySpec { word, genre, tags, kind, bpm, key, max_price, author, packs, newest }
        })
}

/// The query word: a name word, an author name, or the description word.
fn word_of(i: usize) -> &'static str {
    if i < WORDS.len() {
        WORDS[i]
    } else if i < WORDS.len() + AUTHORS.len() {
        AUTHORS[i - WORDS.len()]
    } else {
        "sounds"
    }
}

fn key_name(key: (u8, bool)) -> String {
    Key { tonic: key.0 * 2, mode: if key.1 { Mode::Minor } else { Mode::Major }, source: Source::Stated }
        .name()
}

fn to_query(q: &QuerySpec, limit: usize, offset: usize) -> SearchQuery {
    SearchQuery {
        text: q.word.map(|w| word_of(w).to_uppercase()),
        genre: q.genre.map(|g| GENRES[g].to_string()),
        tags: q.tags.iter().map(|&t| TAGS[t].to_uppercase()).collect(),
        kind: q.kind.map(|k| if k { SampleKind::Loop } else { SampleKind::OneShot }),
        bpm: q.bpm.map(|b| BPM_RANGES[b]),
        key: q.key.map(key_name),
        key_match: Default::default(),
        max_price: q.max_price.map(|p| MAX_PRICES[p]),
        author: q.author.map(author_id),
        packs: q.packs,
        sort: if q.newest { Sort::Newest } else { Sort::Relevance },
        limit,
        offset,
        similar_to: None,
    }
}

fn words_of(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase)
}

/// The model's answer: matching (pack, sample) pairs, and the facet values of each.
type ModelHit = ((PackId, String), [Vec<String>; 4]);

fn model_matches(packs: &BTreeMap<PackId, Manifest>, q: &QuerySpec) -> Vec<ModelHit> {
    let mut out = Vec::new();
    for m in packs.values() {
        for s in &m.samples {
            let mut tags: Vec<String> = m.tags.iter().chain(&s.tags).map(|t| t.to_lowercase()).collect();
            tags.sort();
            tags.dedup();
            let genre = m.genre.to_lowercase();
            let key = s.key.map(|k| k.name());
            let ok = q.word.is_none_or(|w| {
                let mut text = vec![&s.name, &m.title, &m.genre, &m.author_name, &m.description];
                text.extend(m.tags.iter().chain(&s.tags));
                text.iter().flat_map(|t| words_of(t)).any(|t| t == word_of(w))
            }) && q.genre.is_none_or(|g| genre == GENRES[g].to_lowercase())
                && q.tags.iter().all(|&t| tags.contains(&TAGS[t].to_lowercase()))
                && q.kind.is_none_or(|k| (s.kind == SampleKind::Loop) == k)
                && q.bpm.is_none_or(|b| {
                    let (lo, hi) = BPM_RANGES[b];
                    s.tempo.is_some_and(|t| lo <= t.bpm && t.bpm <= hi)
                })
                && q.key.is_none_or(|k| key.as_deref() == Some(&key_name(k)))
                && q.max_price.is_none_or(|p| m.price.as_ref().map_or(0.0, |p| p.amount()) <= MAX_PRICES[p])
                && q.author.is_none_or(|a| m.author == author_id(a));
            if ok {
                let facets = [vec![genre], vec![s.kind.name().to_string()], key.into_iter().collect(), tags];
                out.push(((m.pack_id, s.name.clone()), facets));
            }
        }
    }
    out
}

fn model_facets(hits: &[ModelHit], packs_mode: bool) -> Facets {
    let mut counts: [BTreeMap<String, u64>; 4] = Default::default();
    if packs_mode {
        let mut per_pack: HashMap<PackId, [BTreeSet<String>; 4]> = HashMap::new();
        for ((pack, _), values) in hits {
            let sets = per_pack.entry(*pack).or_default();
            for (set, vals) in sets.iter_mut().zip(values) {
                set.extend(vals.iter().cloned());
            }
        }
        for sets in per_pack.values() {
            for (c, set) in counts.iter_mut().zip(sets) {
                for v in set {
                    *c.entry(v.clone()).or_default() += 1;
                }
            }
        }
    } else {
        for (_, values) in hits {
            for (c, vals) in counts.iter_mut().zip(values) {
                for v in vals {
                    *c.entry(v.clone()).or_default() += 1;
                }
            }
        }
    }
    let list = |m: &BTreeMap<String, u64>| {
        let mut l: Vec<(String, u64)> = m.iter().map(|(k, v)| (k.clone(), *v)).collect();
        l.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        l
    };
    Facets { genre: list(&counts[0]), kind: list(&counts[1]), key: list(&counts[2]), tags: list(&counts[3]) }
}

fn check(index: &Index, model: &BTreeMap<PackId, Manifest>, q: &QuerySpec) -> Result<(), TestCaseError> {
    let expected = model_matches(model, q);
    let got = index.search(&to_query(q, 10_000, 0)).unwrap();
    prop_assert_eq!(&got.facets, &model_facets(&expected, q.packs), "facets for {:?}", q);
    if q.packs {
        let want: BTreeSet<PackId> = expected.iter().map(|((p, _), _)| *p).collect();
        let have: BTreeSet<PackId> = got.hits.iter().map(|h| h.pack_id).collect();
        prop_assert_eq!(got.hits.len(), have.len(), "one hit per pack");
        prop_assert_eq!(&have, &want, "packs for {:?}", q);
        prop_assert_eq!(got.total, want.len());
    } else {
        let want: BTreeSet<(PackId, String)> = expected.iter().map(|(k, _)| k.clone()).collect();
        let have: BTreeSet<(PackId, String)> =
            got.hits.iter().map(|h| (h.pack_id, h.sample.clone().unwrap())).collect();
        prop_assert_eq!(got.hits.len(), have.len(), "no duplicate hits");
        prop_assert_eq!(&have, &want, "samples for {:?}", q);
        prop_assert_eq!(got.total, want.len());
    }
    // Order: newest first, or (with text) best score first.
    for w in got.hits.windows(2) {
        if q.newest || q.word.is_none() {
            prop_assert!(w[0].created_at >= w[1].created_at);
        } else {
            prop_assert!(w[0].score >= w[1].score);
        }
    }
    // A page is a slice of the whole ordering.
    let page = index.search(&to_query(q, 3, 2)).unwrap();
    let slice: Vec<_> = got.hits.iter().skip(2).take(3).cloned().collect();
    prop_assert_eq!(page.hits, slice);
    prop_assert_eq!(page.total, got.total);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn index_matches_the_model(
        batches in proptest::collection::vec(proptest::collection::vec(op_spec(), 1..6), 1..5),
        queries in proptest::collection::vec(query_spec(), 1..12),
        two_threads in any::<bool>(),
    ) {
        let threads = if two_threads { 2 } else { 1 };
        let mut index = Index::open_in_ram_with(IndexOptions {
            writer_threads: threads,
            writer_heap_bytes: 30_000_000,
            preload: true,
        }).unwrap();
        // Each batch is a segment: two threads search them in parallel.
        index.set_search_threads(threads).unwrap();
        let mut model = BTreeMap::new();
        let mut seq = 0;
        for batch in &batches {
            let mut ops = Vec::new();
            for op in batch {
                seq += 1;
                match op {
                    OpSpec::Upsert(spec) => {
                        let m = build(spec, seq);
                        model.insert(m.pack_id, m.clone());
                        ops.push(IndexOp::Upsert(m));
                    }
                    OpSpec::Remove(a, s) => {
                        let id = PackId::derive(&author_id(*a), SLUGS[*s]);
                        model.remove(&id);
                        ops.push(IndexOp::Remove(id));
                    }
                }
            }
            index.apply(&ops).unwrap();
        }
        let packs: Vec<(PackId, u64)> = model.values().map(|m| (m.pack_id, m.seq)).collect();
        prop_assert_eq!(index.packs().unwrap(), packs);
        let samples: usize = model.values().map(|m| m.samples.len()).sum();
        prop_assert_eq!(index.num_samples() as usize, samples);
        for q in &queries {
            check(&index, &model, q)?;
        }
    }
}
