//! The ranking rule (issue "A producer's day"): a sample whose own name or tags hold
//! more of the query's words ranks above every sample with fewer, whatever the
//! words its pack's title and description add; BM25 only orders samples with as
//! many.
//!
//! The manifests come from the test kit and pass [`Manifest::check`], as every
//! indexed manifest does.

use std::collections::{BTreeMap, BTreeSet};

use smpl_index::{Hit, Index, IndexOp, IndexOptions, SearchQuery, SearchResults};
use smpl_protocol::{Manifest, PackId, SampleEntry};
use smpl_testkit::manifest::{SampleExt, manifest, node};

fn index(manifests: &[Manifest]) -> Index {
    let index = Index::open_in_ram_with(IndexOptions {
        writer_threads: 1,
        writer_heap_bytes: 15_000_000,
        preload: true,
    })
    .unwrap();
    let ops: Vec<IndexOp> = manifests.iter().cloned().map(IndexOp::Upsert).collect();
    index.apply(&ops).unwrap();
    index
}

/// A one-second WAV one-shot named `name` with these tags.
fn sample(name: &str, tags: &[&str]) -> SampleEntry {
    smpl_testkit::manifest::sample(name).tagged(tags)
}

/// A free techno pack tagged "drums" by author `[n; 32]`.
fn pack(n: u8, slug: &str, title: &str, description: &str, samples: Vec<SampleEntry>) -> Manifest {
    let m = Manifest {
        title: title.to_string(),
        description: description.to_string(),
        tags: vec!["drums".into()],
        created_at: 1_700_000_000 + u64::from(n),
        ..manifest(node(n), slug, 1, samples)
    };
    m.check().unwrap();
    m
}

/// Pack A of the issue: a description that says kicks over samples most of which
/// are not, one of them (`Thump_01`) tagged kick.
fn pack_a() -> Manifest {
    let samples = vec![
        sample("Bass_Loop_01.wav", &[]),
        sample("Bass_Loop_02.wav", &[]),
        sample("Clap_01.wav", &[]),
        sample("Hat_01.wav", &[]),
        sample("Kick_01.wav", &[]),
        sample("Kick_02.wav", &[]),
        sample("Thump_01.wav", &["kick"]),
    ];
    pack(1, "drum-day", "Drum Day", "punchy kicks and deep bass loops", samples)
}

/// Pack B of the issue: kicks, and "Kick" in the title.
fn pack_b() -> Manifest {
    let samples = ["Kick_A.wav", "Kick_B.wav", "Kick_C.wav", "Kick_D.wav"].map(|n| sample(n, &[]));
    pack(2, "kick-collection", "Kick Collection", "", samples.to_vec())
}

/// A pack whose short text says kick over and over and whose samples are not kicks
/// (but one): on BM25 alone its snare and rim outscore a long pack's kicks.
fn pack_kick_heavy() -> Manifest {
    let samples =
        vec![sample("Snare_03.wav", &[]), sample("Rim_02.wav", &[]), sample("Deep_Kick_09.wav", &[])];
    pack(3, "kick-kit", "Kick Kick Kick", "kick kick kick kick kick kick kick kick kick kick", samples)
}

/// A pack that mentions kicks and has none.
fn pack_without_kicks() -> Manifest {
    let samples = vec![sample("Shaker_01.wav", &[]), sample("Shaker_02.wav", &[])];
    pack(4, "shakers", "Shaker Box", "shakers that sit between the kicks", samples)
}

/// Each sample's own words (its name's words and its tags, lower-cased), by pack
/// and name.
fn own_words(manifests: &[Manifest]) -> BTreeMap<(PackId, String), BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for m in manifests {
        for s in &m.samples {
            let stem = s.name.trim_end_matches(".wav");
            let mut words: BTreeSet<String> =
                stem.split(|c: char| !c.is_alphanumeric()).map(str::to_lowercase).collect();
            words.extend(s.tags.iter().map(|t| t.to_lowercase()));
            out.insert((m.pack_id, s.name.clone()), words);
        }
    }
    out
}

fn search(index: &Index, text: &str) -> SearchResults {
    index.search(&SearchQuery { text: Some(text.into()), ..Default::default() }).unwrap()
}

fn name(hit: &Hit) -> &str {
    hit.sample.as_deref().unwrap()
}

/// How many of `words` each hit holds in its own words, in the order of the hits.
fn tiers(manifests: &[Manifest], hits: &[Hit], words: &[&str]) -> Vec<usize> {
    let own = own_words(manifests);
    hits.iter()
        .map(|h| {
            let mine = &own[&(h.pack_id, name(h).to_string())];
            words.iter().filter(|w| mine.contains(**w)).count()
        })
        .collect()
}

/// The hits' tiers never rise down the list, and the scores never do either.
fn assert_ranked_by_tier(manifests: &[Manifest], r: &SearchResults, words: &[&str]) -> Vec<usize> {
    let tiers = tiers(manifests, &r.hits, words);
    let listed: Vec<(&str, usize)> = r.hits.iter().map(name).zip(tiers.iter().copied()).collect();
    assert!(tiers.windows(2).all(|w| w[0] >= w[1]), "own-word matches first: {listed:?}");
    assert!(r.hits.windows(2).all(|w| w[0].score >= w[1].score), "scores in order: {listed:?}");
    tiers
}

#[test]
fn kick_lists_samples_named_or_tagged_kick_before_description_matches() {
    let manifests = [pack_a(), pack_b()];
    let index = index(&manifests);
    // What `smpl search kick` asks: the default page of 20.
    let r = search(&index, "kick");
    // Every sample of pack A matches through its description, pack B's through their names.
    assert_eq!((r.total, r.hits.len()), (11, 11));
    let tiers = assert_ranked_by_tier(&manifests, &r, &["kick"]);
    let first: BTreeSet<&str> = r.hits.iter().take(7).map(name).collect();
    let kicks = [
        "Kick_01.wav",
        "Kick_02.wav",
        "Thump_01.wav",
        "Kick_A.wav",
        "Kick_B.wav",
        "Kick_C.wav",
        "Kick_D.wav",
    ];
    assert_eq!(first, BTreeSet::from(kicks), "tiers {tiers:?}");
    let rest: BTreeSet<&str> = r.hits.iter().skip(7).map(name).collect();
    assert_eq!(rest, BTreeSet::from(["Bass_Loop_01.wav", "Bass_Loop_02.wav", "Clap_01.wav", "Hat_01.wav"]));
}

#[test]
fn a_description_full_of_the_word_does_not_outrank_own_words() {
    let manifests = [pack_a(), pack_b(), pack_kick_heavy(), pack_without_kicks()];
    let index = index(&manifests);
    let r = search(&index, "kick");
    assert_eq!(r.total, 16);
    let tiers = assert_ranked_by_tier(&manifests, &r, &["kick"]);
    assert_eq!(tiers.iter().filter(|t| **t == 1).count(), 8);
    // A page further down keeps to the same order.
    let page =
        index.search(&SearchQuery { text: Some("kick".into()), limit: 5, offset: 6, ..Default::default() });
    assert_eq!(page.unwrap().hits, r.hits[6..11]);
}

#[test]
fn two_words_rank_by_how_many_are_the_samples_own() {
    let manifests = [pack_a(), pack_b(), pack_kick_heavy(), pack_without_kicks()];
    let index = index(&manifests);
    let r = search(&index, "deep kick");
    // Both words must match: pack A's samples (its description says both) and
    // Deep_Kick_09; pack B and the shakers say nothing deep, and neither do the
    // kick-heavy pack's snare and rim.
    assert_eq!(r.total, 8);
    let tiers = assert_ranked_by_tier(&manifests, &r, &["deep", "kick"]);
    assert_eq!(tiers, [2, 1, 1, 1, 0, 0, 0, 0]);
    assert_eq!(name(&r.hits[0]), "Deep_Kick_09.wav");
    let kicks: BTreeSet<&str> = r.hits[1..4].iter().map(name).collect();
    assert_eq!(kicks, BTreeSet::from(["Kick_01.wav", "Kick_02.wav", "Thump_01.wav"]));
    // The order of the words does not matter.
    let reversed = search(&index, "kick deep");
    assert_eq!(
        reversed.hits.iter().map(name).collect::<Vec<_>>(),
        r.hits.iter().map(name).collect::<Vec<_>>()
    );
}

#[test]
fn packs_mode_ranks_a_pack_by_its_best_sample() {
    let packs = |index: &Index| {
        index.search(&SearchQuery { text: Some("kick".into()), packs: true, ..Default::default() }).unwrap()
    };
    let manifests = [pack_a(), pack_b()];
    let r = packs(&index(&manifests));
    assert_eq!(r.total, 2);
    let found: BTreeSet<PackId> = r.hits.iter().map(|h| h.pack_id).collect();
    assert_eq!(found, manifests.iter().map(|m| m.pack_id).collect());
    assert!(r.hits.iter().all(|h| h.sample.is_none()));

    // A pack that only mentions kicks comes after every pack that has some.
    let r = packs(&index(&[pack_a(), pack_b(), pack_kick_heavy(), pack_without_kicks()]));
    assert_eq!(r.total, 4);
    assert_eq!(r.hits[3].pack_title, "Shaker Box");
    assert!(r.hits.windows(2).all(|w| w[0].score >= w[1].score));
}

#[test]
fn a_typo_still_finds_the_samples() {
    let manifests = [pack_a(), pack_b()];
    let index = index(&manifests);
    // `kcik` is one transposition from `kick`: no exact match, so the typo pass
    // finds what `kick` finds.
    let r = search(&index, "kcik");
    assert_eq!(r.total, 11);
    let exact = search(&index, "kick");
    let names = |r: &SearchResults| r.hits.iter().map(|h| name(h).to_string()).collect::<BTreeSet<_>>();
    assert_eq!(names(&r), names(&exact));
}

#[test]
fn a_short_page_holds_the_best_tier_found_last() {
    // Many description-only matches come first in document order (and fill the
    // page), the samples named kick last, one of them in a later segment.
    let mut samples: Vec<SampleEntry> = (0..200).map(|i| sample(&format!("Perc_{i:03}.wav"), &[])).collect();
    samples.push(sample("Kick_Z.wav", &[]));
    let manifests =
        [pack(5, "perc", "Kick Kick Kick", "kick kick kick kick kick kick kick kick", samples), pack_b()];
    let index = index(&manifests[..1]);
    index.apply(&[IndexOp::Upsert(manifests[1].clone())]).unwrap();
    for (limit, packs) in [(1, false), (5, false), (1, true), (2, true)] {
        let q = SearchQuery { text: Some("kick".into()), limit, packs, ..Default::default() };
        let r = index.search(&q).unwrap();
        assert_eq!(r.hits.len(), limit);
        let full = index.search(&SearchQuery { limit: 1000, ..q }).unwrap();
        assert_eq!(r.hits, full.hits[..limit], "limit {limit}, packs {packs}");
        if !packs {
            assert!(r.hits.iter().all(|h| name(h).starts_with("Kick_")), "{:?}", r.hits);
            let tiers = assert_ranked_by_tier(&manifests, &full, &["kick"]);
            assert_eq!(tiers.iter().filter(|t| **t == 1).count(), 5);
        }
    }
}
