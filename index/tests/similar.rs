//! "More like this" by sound: ranking by descriptor distance, with filters, across
//! segments, after updates and removals.

use smpl_index::{Index, IndexError, IndexOp, SampleRef, SearchQuery};
use smpl_protocol::{DESCRIPTOR_DIMS, Descriptor, SampleEntry};
use smpl_testkit::manifest::{SampleExt, manifest, node, sample};

fn with_descriptor(mut s: SampleEntry, first: i8, second: i8) -> SampleEntry {
    let mut d = [0i8; DESCRIPTOR_DIMS];
    d[0] = first;
    d[1] = second;
    s.descriptor = Some(Descriptor(d));
    s
}

fn similar(index: &Index, pack: smpl_protocol::PackId, sample: &str, query: SearchQuery) -> Vec<String> {
    let q = SearchQuery { similar_to: Some(SampleRef { pack_id: pack, sample: sample.into() }), ..query };
    index.search(&q).unwrap().hits.into_iter().map(|h| h.sample.unwrap()).collect()
}

#[test]
fn nearest_sounds_first_across_packs_with_filters_and_removals() {
    let index = Index::open_in_ram().unwrap();
    let kicks = manifest(
        node(1),
        "kicks",
        1,
        vec![
            with_descriptor(sample("Kick_A.wav"), 10, 0),
            with_descriptor(sample("Kick_B.wav"), 14, 1),
            sample("Silent.wav"),
        ],
    );
    let mixed = manifest(
        node(2),
        "mixed",
        1,
        vec![
            with_descriptor(sample("Kick_C.wav"), 11, 2),
            with_descriptor(sample("Hat_Loop.wav").looped(120.0), 90, 80),
            with_descriptor(sample("Snare.wav"), -60, 40),
        ],
    );
    // Two commits: two segments.
    index.apply(&[IndexOp::Upsert(kicks.clone())]).unwrap();
    index.apply(&[IndexOp::Upsert(mixed.clone())]).unwrap();

    let all = SearchQuery { limit: 10, ..Default::default() };
    assert_eq!(
        similar(&index, kicks.pack_id, "Kick_A.wav", all.clone()),
        ["Kick_C.wav", "Kick_B.wav", "Snare.wav", "Hat_Loop.wav"],
        "nearest first, the sample itself and samples without a descriptor left out"
    );
    let results = index
        .search(&SearchQuery {
            similar_to: Some(SampleRef { pack_id: kicks.pack_id, sample: "kick_a".into() }),
            ..all.clone()
        })
        .unwrap();
    assert_eq!(results.total, 4);
    assert!(results.hits.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(results.hits[0].score > 0.9 && results.hits[0].score <= 1.0);

    // Text and filters narrow the candidates.
    let loops = SearchQuery { kind: Some(smpl_protocol::SampleKind::Loop), ..all.clone() };
    assert_eq!(similar(&index, kicks.pack_id, "Kick_A", loops), ["Hat_Loop.wav"]);
    let text = SearchQuery { text: Some("snare".into()), ..all.clone() };
    assert_eq!(similar(&index, kicks.pack_id, "Kick_A", text), ["Snare.wav"]);
    let two = SearchQuery { limit: 2, ..all.clone() };
    assert_eq!(similar(&index, kicks.pack_id, "Kick_A", two), ["Kick_C.wav", "Kick_B.wav"]);

    // A new version replaces the old descriptors; a removed pack is gone.
    let mut moved = mixed.clone();
    moved.seq = 2;
    moved.samples[0] = with_descriptor(sample("Kick_C.wav"), -100, -100);
    index.apply(&[IndexOp::Upsert(moved)]).unwrap();
    assert_eq!(similar(&index, kicks.pack_id, "Kick_A", all.clone())[0], "Kick_B.wav");
    index.apply(&[IndexOp::Remove(mixed.pack_id)]).unwrap();
    assert_eq!(similar(&index, kicks.pack_id, "Kick_A", all.clone()), ["Kick_B.wav"]);

    // Clear errors for what cannot be compared.
    let err = |sample: &str| {
        let q = SearchQuery {
            similar_to: Some(SampleRef { pack_id: kicks.pack_id, sample: sample.into() }),
            ..all.clone()
        };
        index.search(&q).unwrap_err()
    };
    assert!(matches!(err("Silent"), IndexError::NoDescriptor { .. }));
    assert!(matches!(err("Nope"), IndexError::NoSample { .. }));
    assert!(matches!(err("Kick"), IndexError::AmbiguousSample { matches: 2, .. }));
}
