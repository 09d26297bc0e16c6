//! What a producer states for a whole pack reaches only the samples it fits, with the
//! real binary: `publish --key Am --bpm 124` labels the bass loop, not the clap and the
//! hat (drums have no key), and not a 137 BPM break (its audio says otherwise); a tempo
//! in a file name (`Rollin 128.wav`) is that loop's tempo, found by `search --bpm 128`.

mod common;

use common::*;
use smpl_testkit::wav::{write_beat, write_fn};

/// A burst of noise decaying as e^(−decay·t): a clap or a hat, with no pitch.
fn write_noise(path: &std::path::Path, seconds: f32, decay: f32) {
    write_fn(path, seconds, |t| {
        let i = (t * 44_100.0) as u32;
        let noise = (i.wrapping_mul(2_654_435_761) >> 16) as f32 / 32_768.0 - 1.0;
        noise * (-t * decay).exp()
    });
}

/// A bass line in A minor at `bpm` (A2 C3 E3 G2, a beat each, with harmonics), as
/// long as `seconds`.
fn write_bass_line(path: &std::path::Path, seconds: f32, bpm: f32) {
    let notes = [110.0_f32, 130.81, 164.81, 98.0];
    write_fn(path, seconds, |t| {
        let beat = t * bpm / 60.0;
        let freq = notes[beat as usize % notes.len()];
        let since = beat.fract() * 60.0 / bpm;
        let tone: f32 = (1..=6).map(|n| (t * freq * n as f32 * std::f32::consts::TAU).sin() / n as f32).sum();
        0.4 * tone * (1.0 - (-since * 60.0).exp())
    });
}

/// Seconds in `bars` bars of 4/4 at `bpm`.
fn bars(bars: f64, bpm: f64) -> f64 {
    bars * 4.0 * 60.0 / bpm
}

#[test]
fn a_stated_key_and_tempo_label_only_the_samples_they_fit() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let _node = TestNode::start(&home);
    let kit = dir.path().join("Kit");
    write_bass_line(&kit.join("Loops/Bass_Loop.wav"), bars(4.0, 124.0) as f32, 124.0);
    write_beat(&kit.join("Loops/Break.wav"), 44_100, bars(4.0, 137.0), 137.0);
    write_beat(&kit.join("Loops/Rollin 128.wav"), 44_100, bars(4.0, 128.0), 128.0);
    write_noise(&kit.join("Clap.wav"), 0.4, 18.0);
    write_noise(&kit.join("Hat.wav"), 0.15, 60.0);
    let published = json_ok(
        &home,
        &["publish", kit.to_str().unwrap(), "--title", "Stated Kit", "--key", "Am", "--bpm", "124"],
    );
    let pack = published.last().unwrap()["pack_id"].as_str().unwrap().to_string();
    let shown = json_ok(&home, &["show", &pack]);
    let sample = |name: &str| -> serde_json::Value {
        shown[0]["samples"].as_array().unwrap().iter().find(|s| s["name"] == name).cloned().unwrap()
    };
    let bpm = |name: &str| sample(name)["tempo"]["bpm"].as_f64();

    // The stated key goes to the tonal loop only.
    assert_eq!(sample("Loops/Bass_Loop.wav")["key"]["source"], "stated", "{shown:?}");
    for drum in ["Clap.wav", "Hat.wav", "Loops/Break.wav", "Loops/Rollin 128.wav"] {
        assert!(sample(drum)["key"].is_null(), "{drum} has no key: {}", sample(drum));
    }
    let keyed: Vec<String> = json_ok(&home, &["search", "--key", "Am"])
        .iter()
        .filter_map(|h| h["sample"].as_str().map(String::from))
        .collect();
    assert_eq!(keyed, ["Loops/Bass_Loop.wav"]);

    // The stated tempo goes where the audio agrees; the break keeps its own; the name's
    // tempo is the loop's.
    assert_eq!(bpm("Loops/Bass_Loop.wav"), Some(124.0));
    let break_bpm = bpm("Loops/Break.wav").expect("the break has a tempo");
    assert!((break_bpm / 137.0 - 1.0).abs() <= 0.02, "the 137 BPM break reads {break_bpm}");
    assert_eq!(bpm("Loops/Rollin 128.wav"), Some(128.0));
    assert_eq!(sample("Loops/Rollin 128.wav")["tempo"]["source"], "name");
    let at_128: Vec<String> = json_ok(&home, &["search", "--bpm", "128"])
        .iter()
        .filter_map(|h| h["sample"].as_str().map(String::from))
        .collect();
    assert_eq!(at_128, ["Loops/Rollin 128.wav"]);
}
