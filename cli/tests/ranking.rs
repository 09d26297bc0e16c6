//! Search ranks what a producer meant, with the real binary: a sample whose own
//! name says "kick" comes before any sample that matches only through its pack's
//! description.

mod common;

use common::*;

#[test]
fn samples_named_kick_come_before_those_whose_pack_description_says_kick() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let _node = TestNode::start(&home);

    let mixed = dir.path().join("Mixed");
    write_sound(&mixed.join("Bass_Loop_1.wav"), 2.0, 55.0, false);
    write_sound(&mixed.join("Bass_Loop_2.wav"), 2.0, 65.0, false);
    write_sound(&mixed.join("Clap.wav"), 0.4, 1500.0, true);
    write_sound(&mixed.join("Hat.wav"), 0.2, 6000.0, true);
    write_sound(&mixed.join("Kick_A.wav"), 0.6, 50.0, true);
    write_sound(&mixed.join("Kick_B.wav"), 0.6, 58.0, true);
    let kicks = dir.path().join("Kicks");
    for (i, freq) in [45.0, 52.0, 60.0].into_iter().enumerate() {
        write_sound(&kicks.join(format!("Analog_Console_Tape_Kick_{i:02}.wav")), 0.5, freq, true);
    }
    let description = "punchy kicks and deep bass loops";
    json_ok(
        &home,
        &["publish", mixed.to_str().unwrap(), "--title", "Mixed Bag", "--description", description],
    );
    // The kicks' pack says much else, as real descriptions do: its samples' text is
    // long, which lowers their BM25 below that of the short description-only matches.
    let long = "Recorded through a vintage console and tape machine, processed with analog \
                compression and saturation, tuned and trimmed by hand, every hit ready to drop \
                into house, techno, hip hop, trap or drum and bass productions, with dry and \
                processed versions, royalty free for commercial releases worldwide";
    json_ok(&home, &["publish", kicks.to_str().unwrap(), "--title", "Kick Drums", "--description", long]);

    let hits = json_ok(&home, &["search", "kick", "--limit", "50"]);
    let names: Vec<&str> = hits.iter().map(|h| h["sample"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 9, "every sample of both packs matches: {names:?}");
    let named = |n: &&str| n.to_lowercase().contains("kick");
    let first_other = names.iter().position(|n| !named(n)).unwrap();
    assert_eq!(first_other, 5, "the five kicks come first: {names:?}");
    assert!(names[first_other..].iter().all(|n| !named(n)), "{names:?}");
}
