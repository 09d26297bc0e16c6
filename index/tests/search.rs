//! Behaviour of the index through its public API.

use smpl_index::{Index, IndexError, IndexOp, IndexOptions, SearchQuery, SearchResults, Sort};
use smpl_protocol::{Manifest, SampleKind};
use smpl_testkit::manifest::{SampleExt, manifest, node, sample, usd};

fn small() -> IndexOptions {
    IndexOptions { writer_threads: 1, writer_heap_bytes: 15_000_000, preload: true }
}

fn ram() -> Index {
    Index::open_in_ram_with(small()).unwrap()
}

fn upsert(index: &Index, manifests: &[Manifest]) {
    let ops: Vec<IndexOp> = manifests.iter().cloned().map(IndexOp::Upsert).collect();
    index.apply(&ops).unwrap();
}

fn text(t: &str) -> SearchQuery {
    SearchQuery { text: Some(t.into()), limit: 100, ..Default::default() }
}

fn names(r: &SearchResults) -> Vec<String> {
    r.hits.iter().map(|h| h.sample.clone().unwrap()).collect()
}

fn sorted_names(r: &SearchResults) -> Vec<String> {
    let mut n = names(r);
    n.sort();
    n
}

fn drums() -> Manifest {
    manifest(
        node(1),
        "drums",
        1,
        vec![
            sample("BD_Kick_01.wav"),
            sample("DustyKick808.wav"),
            sample("one-shots/kick-hard.flac"),
            sample("Snare_01.wav"),
            sample("HiHat_Closed.wav"),
        ],
    )
}

#[test]
fn kick_finds_file_names_with_kick() {
    let index = ram();
    upsert(&index, &[drums()]);
    for q in ["kick", "Kick", "KICKS"] {
        let r = index.search(&text(q)).unwrap();
        assert_eq!(
            sorted_names(&r),
            ["BD_Kick_01.wav", "DustyKick808.wav", "one-shots/kick-hard.flac"],
            "query {q}"
        );
        assert_eq!(r.total, 3);
    }
    assert_eq!(names(&index.search(&text("hihat")).unwrap()), Vec::<String>::new());
    assert_eq!(names(&index.search(&text("hat")).unwrap()), ["HiHat_Closed.wav"]);
    assert_eq!(names(&index.search(&text("dusty 808")).unwrap()), ["DustyKick808.wav"]);
    // The audio extension is not a word of the name.
    assert_eq!(index.search(&text("wav")).unwrap().total, 0);
}

#[test]
fn pack_fields_are_searchable() {
    let index = ram();
    let mut m = drums();
    m.title = "Basement Tapes".into();
    m.description = "Recorded through a broken cassette deck".into();
    m.tags = vec!["lo-fi".into()];
    m.author_name = "Marla".into();
    upsert(&index, &[m]);
    for q in ["basement", "cassette", "lo-fi", "marla", "techno"] {
        assert_eq!(index.search(&text(q)).unwrap().total, 5, "query {q}");
    }
    // Every word must match.
    assert_eq!(index.search(&text("cassette kick")).unwrap().total, 3);
    assert_eq!(index.search(&text("cassette trumpet")).unwrap().total, 0);
}

#[test]
fn one_typo_is_tolerated_and_ranked_below_exact() {
    let index = ram();
    upsert(
        &index,
        &[manifest(
            node(1),
            "fx",
            1,
            vec![sample("Crash_01.wav"), sample("Crush_01.wav"), sample("Pad.wav")],
        )],
    );
    // A transposition and a substitution both cost one.
    assert_eq!(names(&index.search(&text("cymbal")).unwrap()).len(), 0);
    assert_eq!(names(&index.search(&text("carsh")).unwrap()), ["Crash_01.wav"]);
    let r = index.search(&text("crash")).unwrap();
    assert_eq!(names(&r), ["Crash_01.wav", "Crush_01.wav"]);
    assert!(r.hits[0].score > r.hits[1].score);
    assert_eq!(r.total, 2);
    // Exact matches filling the page leave typos out.
    let r = index.search(&SearchQuery { limit: 1, ..text("crash") }).unwrap();
    assert_eq!((names(&r), r.total), (vec!["Crash_01.wav".to_string()], 1));
    // Short words get no typo tolerance.
    assert_eq!(index.search(&text("pud")).unwrap().total, 0);
}

fn catalog() -> Vec<Manifest> {
    let mut a = manifest(
        node(1),
        "loops",
        1,
        vec![
            sample("Chord_Loop_120.wav").looped(120.0).in_key(9, true),
            sample("Bass_Loop_124.wav").looped(124.0).in_key(9, true),
            sample("Pad_Loop_90.wav").looped(90.0).in_key(0, false),
            sample("Kick_01.wav").tagged(&["Punchy"]),
        ],
    );
    a.genre = "House".into();
    a.tags = vec!["analog".into(), "warm".into()];
    a.price = usd(499);
    let mut b = manifest(
        node(2),
        "hats",
        1,
        vec![sample("Hat_Loop_128.wav").looped(128.0).in_key(9, true), sample("Kick_Hard.wav")],
    );
    b.genre = "Hip Hop".into();
    b.tags = vec!["dusty".into()];
    b.price = usd(1500);
    b.created_at += 100;
    vec![a, b]
}

#[test]
fn filters_combine() {
    let index = ram();
    upsert(&index, &catalog());
    let q = |f: &dyn Fn(&mut SearchQuery)| {
        let mut q = SearchQuery { limit: 100, ..Default::default() };
        f(&mut q);
        sorted_names(&index.search(&q).unwrap())
    };
    assert_eq!(q(&|q| q.genre = Some("hip HOP".into())), ["Hat_Loop_128.wav", "Kick_Hard.wav"]);
    assert_eq!(q(&|q| q.tags = vec!["Punchy".into()]), ["Kick_01.wav"]);
    assert_eq!(q(&|q| q.tags = vec!["analog".into(), "punchy".into()]), ["Kick_01.wav"]);
    assert_eq!(q(&|q| q.tags = vec!["dusty".into(), "punchy".into()]), Vec::<String>::new());
    assert_eq!(q(&|q| q.kind = Some(SampleKind::OneShot)), ["Kick_01.wav", "Kick_Hard.wav"]);
    assert_eq!(q(&|q| q.bpm = Some((120.0, 124.0))), ["Bass_Loop_124.wav", "Chord_Loop_120.wav"]);
    assert_eq!(
        q(&|q| q.key = Some("A minor".into())),
        ["Bass_Loop_124.wav", "Chord_Loop_120.wav", "Hat_Loop_128.wav"]
    );
    assert_eq!(q(&|q| q.max_price = Some(4.99)).len(), 4);
    assert_eq!(q(&|q| q.max_price = Some(4.98)).len(), 0);
    assert_eq!(q(&|q| q.max_price = Some(15.0)).len(), 6);
    assert_eq!(q(&|q| q.author = Some(node(2))), ["Hat_Loop_128.wav", "Kick_Hard.wav"]);
    assert_eq!(
        q(&|q| {
            q.text = Some("loop".into());
            q.key = Some("Am".into());
            q.bpm = Some((100.0, 130.0));
            q.max_price = Some(10.0);
        }),
        ["Bass_Loop_124.wav", "Chord_Loop_120.wav"]
    );
}

#[test]
fn free_packs_count_as_zero() {
    let index = ram();
    let mut m = drums();
    m.price = None;
    upsert(&index, &[m]);
    let q = SearchQuery { max_price: Some(0.0), ..Default::default() };
    assert_eq!(index.search(&q).unwrap().total, 5);
    let q = SearchQuery { max_price: Some(-1.0), ..Default::default() };
    assert_eq!(index.search(&q).unwrap().total, 0);
}

#[test]
fn facets_count_every_match_not_only_the_page() {
    let index = ram();
    upsert(&index, &catalog());
    let r = index.search(&SearchQuery { limit: 1, ..Default::default() }).unwrap();
    assert_eq!(r.hits.len(), 1);
    assert_eq!(r.total, 6);
    let f = &r.facets;
    assert_eq!(f.genre, [("house".into(), 4), ("hip hop".into(), 2)]);
    assert_eq!(f.kind, [("loop".into(), 4), ("one-shot".into(), 2)]);
    assert_eq!(f.key, [("Am".into(), 3), ("C".into(), 1)]);
    assert_eq!(f.tags, [("analog".into(), 4), ("warm".into(), 4), ("dusty".into(), 2), ("punchy".into(), 1)]);
}

#[test]
fn packs_mode_gives_one_hit_per_pack_and_counts_packs() {
    let index = ram();
    upsert(&index, &catalog());
    let r = index.search(&SearchQuery { packs: true, ..text("loop") }).unwrap();
    assert_eq!(r.total, 2);
    assert_eq!(r.hits.len(), 2);
    for h in &r.hits {
        assert!(h.sample.is_none() && h.kind.is_none() && h.bpm.is_none());
    }
    assert_eq!(r.facets.genre, [("hip hop".into(), 1), ("house".into(), 1)]);
    // The title "Pack loops" makes the pack's one-shot match too.
    assert_eq!(r.facets.kind, [("loop".into(), 2), ("one-shot".into(), 1)]);
    assert_eq!(r.facets.key, [("Am".into(), 2), ("C".into(), 1)]);
    // A facet count is the total that filter would give.
    let with_c = index.search(&SearchQuery { packs: true, key: Some("C".into()), ..text("loop") }).unwrap();
    assert_eq!(with_c.total, 1);
    assert_eq!(with_c.hits[0].pack_title, "Pack loops");
}

#[test]
fn newest_first_and_paging() {
    let index = ram();
    upsert(&index, &catalog());
    let all = index.search(&SearchQuery { sort: Sort::Newest, limit: 100, ..Default::default() }).unwrap();
    assert_eq!(all.hits.len(), 6);
    assert!(all.hits.windows(2).all(|w| w[0].created_at >= w[1].created_at));
    assert_eq!(all.hits[0].genre, "Hip Hop");
    let mut paged = Vec::new();
    for offset in (0..8).step_by(2) {
        let page = index
            .search(&SearchQuery { sort: Sort::Newest, limit: 2, offset, ..Default::default() })
            .unwrap();
        assert_eq!(page.total, 6);
        paged.extend(page.hits);
    }
    assert_eq!(paged, all.hits);
    let none = index.search(&SearchQuery { limit: 0, ..Default::default() }).unwrap();
    assert_eq!((none.total, none.hits.len()), (6, 0));
}

#[test]
fn relevance_prefers_name_matches() {
    let index = ram();
    let mut m = manifest(node(1), "mix", 1, vec![sample("Snare_01.wav"), sample("Perc_01.wav")]);
    m.description = "snare heavy".into();
    upsert(&index, &[m]);
    let r = index.search(&text("snare")).unwrap();
    assert_eq!(names(&r), ["Snare_01.wav", "Perc_01.wav"]);
    assert!(r.hits[0].score > r.hits[1].score);
}

#[test]
fn replacing_a_pack_leaves_no_stale_docs() {
    let index = ram();
    let v1 =
        manifest(node(1), "drums", 1, vec![sample("Kick_A.wav"), sample("Kick_B.wav"), sample("Kick_C.wav")]);
    let other = manifest(node(2), "other", 1, vec![sample("Kick_Z.wav")]);
    upsert(&index, &[v1.clone(), other.clone()]);
    let mut v2 = manifest(node(1), "drums", 2, vec![sample("Kick_A.wav"), sample("Kick_D.wav")]);
    v2.title = "Renamed".into();
    upsert(&index, &[v2.clone()]);
    let r = index.search(&text("kick")).unwrap();
    assert_eq!(sorted_names(&r), ["Kick_A.wav", "Kick_D.wav", "Kick_Z.wav"]);
    assert_eq!(r.total, 3);
    assert_eq!(index.num_samples(), 3);
    assert_eq!(index.search(&text("pack drums")).unwrap().total, 0);
    assert_eq!(index.search(&text("renamed")).unwrap().total, 2);
    let mut packs = vec![(v2.pack_id, 2), (other.pack_id, 1)];
    packs.sort();
    assert_eq!(index.packs().unwrap(), packs);

    // The same pack twice in one batch: the later one wins.
    index.apply(&[IndexOp::Upsert(v1.clone()), IndexOp::Upsert(v2.clone())]).unwrap();
    assert_eq!(index.num_samples(), 3);
    index.apply(&[IndexOp::Remove(v2.pack_id), IndexOp::Upsert(v1.clone())]).unwrap();
    assert_eq!(index.num_samples(), 4);

    index.apply(&[IndexOp::Remove(v1.pack_id)]).unwrap();
    assert_eq!(sorted_names(&index.search(&text("kick")).unwrap()), ["Kick_Z.wav"]);
    assert_eq!(index.packs().unwrap(), [(other.pack_id, 1)]);
    index.clear().unwrap();
    assert_eq!(index.num_samples(), 0);
    assert!(index.packs().unwrap().is_empty());
}

/// Hits read from the stored documents are kept across reloads; a replaced pack or
/// a merge's renumbered documents still show their own fields.
#[test]
fn hits_shown_before_a_replacement_or_a_merge_are_not_shown_for_others_after_it() {
    let index = ram();
    let shown = |q: &str| -> Vec<(String, String)> {
        let r = index.search(&text(q)).unwrap();
        r.hits.iter().map(|h| (h.sample.clone().unwrap(), h.pack_title.clone())).collect()
    };
    let v1 = manifest(node(1), "drums", 1, vec![sample("Kick_A.wav"), sample("Kick_B.wav")]);
    upsert(&index, &[v1]);
    assert!(shown("kick").iter().all(|(_, title)| title == "Pack drums"));
    let mut v2 = manifest(node(1), "drums", 2, vec![sample("Kick_A.wav"), sample("Kick_B.wav")]);
    v2.title = "Renamed".into();
    upsert(&index, &[v2]);
    let after = shown("kick");
    assert_eq!(after.len(), 2);
    assert!(after.iter().all(|(_, title)| title == "Renamed"), "{after:?}");

    // One segment a pack, each searched (and its hits kept) before the merge.
    for n in 0..12 {
        let pack = manifest(node(2), &format!("p{n}"), 1, vec![sample(&format!("Snare_{n}.wav"))]);
        upsert(&index, &[pack]);
        shown("snare");
    }
    index.wait_merges().unwrap();
    upsert(&index, &[manifest(node(3), "last", 1, vec![sample("Snare_last.wav")])]);
    let merged = shown("snare");
    let mut names: Vec<&str> = merged.iter().map(|(name, _)| name.as_str()).collect();
    names.sort();
    let mut want: Vec<String> = (0..12).map(|n| format!("Snare_{n}.wav")).collect();
    want.push("Snare_last.wav".into());
    want.sort();
    assert_eq!(names, want);
    for (name, title) in merged {
        let n = name.trim_start_matches("Snare_").trim_end_matches(".wav");
        assert_eq!(title, if n == "last" { "Pack last".to_string() } else { format!("Pack p{n}") });
    }
}

#[test]
fn reopening_from_disk_gives_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let queries = [
        text("kick"),
        SearchQuery { packs: true, ..text("loop") },
        SearchQuery { key: Some("Am".into()), sort: Sort::Newest, ..Default::default() },
    ];
    let before: Vec<SearchResults> = {
        let index = Index::open_with(dir.path(), small()).unwrap();
        assert!(index.needs_rebuild());
        upsert(&index, &catalog());
        upsert(&index, &[drums()]);
        index.wait_merges().unwrap();
        let results = queries.iter().map(|q| index.search(q).unwrap()).collect();
        index.close().unwrap();
        results
    };
    let index = Index::open_with(dir.path(), small()).unwrap();
    assert!(!index.needs_rebuild());
    let after: Vec<SearchResults> = queries.iter().map(|q| index.search(q).unwrap()).collect();
    assert_eq!(before, after);
    assert_eq!(index.packs().unwrap().len(), 3);
}

#[test]
fn another_schema_version_is_wiped() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = Index::open_with(dir.path(), small()).unwrap();
        upsert(&index, &[drums()]);
        index.close().unwrap();
    }
    std::fs::write(dir.path().join("smpl-index-version"), "0\n").unwrap();
    let index = Index::open_with(dir.path(), small()).unwrap();
    assert!(index.needs_rebuild());
    assert_eq!(index.num_samples(), 0);
    upsert(&index, &[drums()]);
    index.close().unwrap();
    drop(index);
    let index = Index::open_with(dir.path(), small()).unwrap();
    assert!(!index.needs_rebuild());
    assert_eq!(index.num_samples(), 5);
}

/// The marker an index holds while its commits are not synced, with the boot id.
const UNSYNCED: &str = "unsynced";

#[test]
fn a_closed_index_is_synced_and_takes_no_more_writes() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open_with(dir.path(), small()).unwrap();
    assert!(dir.path().join(UNSYNCED).exists(), "marked before the first commit");
    upsert(&index, &[drums()]);
    index.close().unwrap();
    assert!(!dir.path().join(UNSYNCED).exists());
    let err = index.apply(&[IndexOp::Remove(drums().pack_id)]).unwrap_err();
    assert!(matches!(err, IndexError::Closed), "{err}");
    assert_eq!(index.num_samples(), 5, "still searched");
    drop(index);
    // Kept even if the machine had stopped since: nothing is left unsynced.
    let index = Index::open_with(dir.path(), small()).unwrap();
    assert!(!index.needs_rebuild());
    assert_eq!(index.num_samples(), 5);
}

/// A process that crashed leaves its writes in the kernel's page cache: the index
/// it left is whole and kept. (Only Linux says which boot this is; elsewhere an
/// index left unsynced is always rebuilt.)
#[cfg(target_os = "linux")]
#[test]
fn an_index_left_by_a_crashed_process_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = Index::open_with(dir.path(), small()).unwrap();
        upsert(&index, &[drums()]);
        upsert(&index, &catalog());
    }
    let index = Index::open_with(dir.path(), small()).unwrap();
    assert!(!index.needs_rebuild());
    assert_eq!(index.packs().unwrap().len(), 3);
}

/// A machine that stopped with the index unsynced may have kept any part of its
/// writes: here the folder's new `meta.json` was lost and the old one names the
/// first commit only, a consistent index that misses what the store says it holds.
/// The marker names another boot, so the index is wiped and rebuilt, not trusted.
#[test]
fn an_index_the_machine_stopped_under_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = Index::open_with(dir.path(), small()).unwrap();
        upsert(&index, &[drums()]);
        let first = std::fs::read(dir.path().join("meta.json")).unwrap();
        upsert(&index, &catalog());
        drop(index);
        std::fs::write(dir.path().join("meta.json"), first).unwrap();
    }
    std::fs::write(dir.path().join(UNSYNCED), "a boot before this one\n").unwrap();
    let index = Index::open_with(dir.path(), small()).unwrap();
    assert!(index.needs_rebuild());
    assert_eq!(index.num_samples(), 0);
    assert!(dir.path().join(UNSYNCED).exists(), "marked again for this boot");
    upsert(&index, &[drums()]);
    assert_eq!(index.packs().unwrap().len(), 1);
}

#[test]
fn garbage_in_the_directory_is_wiped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("meta.json"), "not json").unwrap();
    std::fs::write(dir.path().join("smpl-index-version"), "1\n").unwrap();
    let index = Index::open_with(dir.path(), small()).unwrap();
    assert!(index.needs_rebuild());
    upsert(&index, &[drums()]);
    assert_eq!(index.num_samples(), 5);
}

#[test]
fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Index::open_with(dir.path(), small()).unwrap();
    let err = Index::open_with(dir.path(), small()).unwrap_err();
    assert!(matches!(err, IndexError::Locked { .. }), "{err}");
}

#[test]
fn bad_queries_say_what_is_wrong() {
    let index = ram();
    let bad = |q: SearchQuery| index.search(&q).unwrap_err().to_string();
    let e = bad(SearchQuery { bpm: Some((130.0, 120.0)), ..Default::default() });
    assert!(e.contains("BPM range") && e.contains("130..120"), "{e}");
    let e = bad(SearchQuery { key: Some("H minor".into()), ..Default::default() });
    assert!(e.contains("key") && e.contains("H minor"), "{e}");
    let e = bad(SearchQuery { max_price: Some(f64::NAN), ..Default::default() });
    assert!(e.contains("max price"), "{e}");
    // Empty filters and text without words are no filters.
    let q = SearchQuery {
        text: Some(" _-. ".into()),
        genre: Some(" ".into()),
        tags: vec![String::new()],
        key: Some(String::new()),
        key_match: Default::default(),
        ..Default::default()
    };
    assert!(index.search(&q).is_ok());
}

#[test]
fn results_serialize_with_the_cli_field_names() {
    let index = ram();
    upsert(&index, &catalog());
    let r = index.search(&text("chord")).unwrap();
    let json = serde_json::to_value(&r).unwrap();
    let hit = &json["hits"][0];
    for field in
        ["pack_id", "pack_title", "author", "sample", "kind", "bpm", "key", "duration_ms", "price", "score"]
    {
        assert!(hit.get(field).is_some(), "missing {field} in {hit}");
    }
    assert_eq!(hit["kind"], "loop");
    assert_eq!(hit["key"], "Am");
    assert_eq!(hit["duration_ms"], 1000);
    assert_eq!(hit["price"]["amount_minor"], 499);
    let back: SearchResults = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
}

#[test]
fn key_filter_matches_exact_relative_or_compatible_keys() {
    let index = Index::open_in_ram().unwrap();
    let keys = [
        ("Am", 9, true),
        ("C", 0, false),
        ("Em", 4, true),
        ("Dm", 2, true),
        ("F#m", 6, true),
        ("G", 7, false),
    ];
    let samples = keys
        .iter()
        .map(|(name, tonic, minor)| sample(&format!("Pad_{name}.wav")).in_key(*tonic, *minor))
        .collect();
    index.apply(&[IndexOp::Upsert(manifest(node(1), "keys", 1, samples))]).unwrap();
    let found = |key_match: smpl_index::KeyMatch| {
        let q = SearchQuery { key: Some("A minor".into()), key_match, limit: 20, ..Default::default() };
        let mut names: Vec<String> =
            index.search(&q).unwrap().hits.into_iter().map(|h| h.key.unwrap()).collect();
        names.sort();
        names
    };
    assert_eq!(found(smpl_index::KeyMatch::Exact), ["Am"]);
    assert_eq!(found(smpl_index::KeyMatch::Relative), ["Am", "C"]);
    assert_eq!(found(smpl_index::KeyMatch::Compatible), ["Am", "C", "Dm", "Em"]);
}

/// A one-shot's root note has no mode: a key filter takes it when the key's tonic is
/// its pitch class, and its hit shows the note where a key would be.
#[test]
fn root_notes_match_keys_with_their_tonic() {
    use smpl_protocol::{Note, Source};
    let index = ram();
    let note = |name: &str, pitch_class: u8, octave: Option<i8>| smpl_protocol::SampleEntry {
        note: Some(Note { pitch_class, octave, source: Source::Detected }),
        ..sample(name)
    };
    let samples = vec![
        note("Bass_C2.wav", 0, Some(2)),
        note("Bell.wav", 9, None),
        sample("Pad_Cm.wav").in_key(0, true),
        sample("Pad_C.wav").in_key(0, false),
        sample("Kick.wav"),
    ];
    index.apply(&[IndexOp::Upsert(manifest(node(1), "notes", 1, samples))]).unwrap();
    let found = |key: &str, key_match: smpl_index::KeyMatch| {
        let q = SearchQuery { key: Some(key.into()), key_match, limit: 20, ..Default::default() };
        let r = index.search(&q).unwrap();
        let mut shown: Vec<String> = r
            .hits
            .iter()
            .map(|h| {
                format!(
                    "{} {} {}",
                    h.sample.as_deref().unwrap(),
                    h.key.as_deref().unwrap(),
                    h.note.as_deref().unwrap_or("-")
                )
            })
            .collect();
        shown.sort();
        shown
    };
    use smpl_index::KeyMatch::*;
    assert_eq!(found("Cm", Exact), ["Bass_C2.wav C C2", "Pad_Cm.wav Cm -"]);
    assert_eq!(found("C major", Exact), ["Bass_C2.wav C C2", "Pad_C.wav C -"]);
    assert_eq!(found("Am", Exact), ["Bell.wav A A"]);
    // Relative keys take the notes of both tonics.
    assert_eq!(found("Am", Relative), ["Bass_C2.wav C C2", "Bell.wav A A", "Pad_C.wav C -"]);
    assert!(found("D", Exact).is_empty());
}

/// Kind, BPM and price are checked on the words' matches against per-segment
/// arrays, skipping ahead where a filter rules out long stretches. Many segments,
/// replaced packs (deleted documents next to live ones), rare and empty filters:
/// every combination must find exactly what a scan of the manifests finds.
#[test]
fn filters_agree_with_a_scan_over_many_segments() {
    let index = ram();
    let prices = [0, 299, 999, 1999];
    let pack = |i: usize, seq: u64| {
        let samples = (0..100)
            .map(|j| {
                let instrument = ["kick", "snare", "pad", "bass"][j % 4];
                let texture = ["dusty", "warm", "bright"][(i + j / 4) % 3];
                let s = sample(&format!("{instrument}_{texture}_{j:02}.wav"));
                // Tempos only on every third sample, spread over 60–179 BPM.
                if j % 3 == 0 { s.looped((60 + (i * 7 + j * 13 + seq as usize) % 120) as f32) } else { s }
            })
            .collect();
        let mut m = manifest(node(1 + (i % 5) as u8), &format!("p{i:02}"), seq, samples);
        m.price = Some(prices[(i + seq as usize) % 4]).filter(|&p| p > 0).and_then(usd);
        m
    };
    let mut current: Vec<Manifest> = (0..40).map(|i| pack(i, 1)).collect();
    for batch in current.chunks(10) {
        upsert(&index, batch);
    }
    // Replace a quarter of the packs: their old documents stay in the segments, deleted.
    for i in (0..40).step_by(4) {
        current[i] = pack(i, 2);
        upsert(&index, &current[i..=i]);
    }
    let mut checked = 0;
    for words in [None, Some("kick"), Some("dusty"), Some("pad warm")] {
        for kind in [None, Some(SampleKind::Loop), Some(SampleKind::OneShot)] {
            for bpm in
                [None, Some((60.0, 61.0)), Some((100.0, 140.0)), Some((178.5, 179.0)), Some((200.0, 300.0))]
            {
                for max_price in [None, Some(0.0), Some(9.99)] {
                    let q = SearchQuery {
                        text: words.map(String::from),
                        kind,
                        bpm,
                        max_price,
                        limit: 5000,
                        ..Default::default()
                    };
                    let mut expected: Vec<String> = current
                        .iter()
                        .filter(|m| {
                            let minor = m.price.as_ref().map_or(0, |p| p.amount_minor);
                            max_price.is_none_or(|max| minor as f64 <= max * 100.0 + 1e-6)
                        })
                        .flat_map(|m| m.samples.iter().map(move |s| (m, s)))
                        .filter(|(_, s)| {
                            let name = s.name.to_lowercase();
                            words.is_none_or(|w| w.split(' ').all(|w| name.contains(w)))
                                && kind.is_none_or(|k| s.kind == k)
                                && bpm.is_none_or(|(lo, hi)| {
                                    s.tempo.is_some_and(|t| lo <= t.bpm && t.bpm <= hi)
                                })
                        })
                        .map(|(m, s)| format!("{}/{}", m.slug, s.name))
                        .collect();
                    expected.sort();
                    let r = index.search(&q).unwrap();
                    let mut got: Vec<String> = r
                        .hits
                        .iter()
                        .map(|h| {
                            let slug = current.iter().find(|m| m.pack_id == h.pack_id).unwrap().slug.clone();
                            format!("{slug}/{}", h.sample.clone().unwrap())
                        })
                        .collect();
                    got.sort();
                    assert_eq!(r.total, expected.len(), "{q:?}");
                    assert_eq!(got, expected, "{q:?}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 4 * 3 * 5 * 3);
}
