//! Pack folders to publish: a few generated WAVs in subfolders, as a producer's
//! folder would hold them.
//!
//! Two packs, each the same bytes on every run: [`make_pack`], three drum hits that
//! [`assert_same_files`] compares after a fetch, and [`make_mixed_pack`], which also
//! holds a loop, a text file and a broken WAV for the import to skip.

use std::path::Path;

use crate::wav::{write_hit, write_tone};

/// The files of [`make_pack`], relative to its folder.
pub const PACK_FILES: [&str; 3] = ["Kicks/Line_Kick_01.wav", "Kicks/Line_Kick_02.wav", "Line_Snare.wav"];

/// A hit like those of [`make_pack`]: a sine decaying as e^(−8t).
pub fn write_drum(path: &Path, seconds: f32, freq: f32) {
    write_hit(path, seconds, freq, 8.0);
}

/// Two kicks and a snare ([`PACK_FILES`]).
pub fn make_pack(dir: &Path) {
    make_pack_with(dir, [(0.5, 55.0), (0.4, 62.0), (0.3, 190.0)]);
}

/// The files of [`make_pack`] with other sounds: `(seconds, Hz)` of each of [`PACK_FILES`].
pub fn make_pack_with(dir: &Path, sounds: [(f32, f32); 3]) {
    for (file, (seconds, freq)) in PACK_FILES.into_iter().zip(sounds) {
        write_drum(&dir.join(file), seconds, freq);
    }
}

/// Asserts that `fetched` holds every file of [`PACK_FILES`] with the bytes it has in `original`.
pub fn assert_same_files(original: &Path, fetched: &Path) {
    let mut count = 0;
    for entry in PACK_FILES {
        let a = std::fs::read(original.join(entry)).unwrap();
        let b = std::fs::read(fetched.join(entry))
            .unwrap_or_else(|e| panic!("{entry} missing in {}: {e}", fetched.display()));
        assert!(a == b, "{entry} differs");
        count += 1;
    }
    assert_eq!(count, 3);
}

/// A sound like those of [`make_mixed_pack`]: a hit decaying as e^(−12t), or a steady
/// tone at half scale.
pub fn write_sound(path: &Path, seconds: f32, freq: f32, decaying: bool) {
    if decaying {
        write_hit(path, seconds, freq, 12.0);
    } else {
        write_tone(path, seconds, freq, 0.5);
    }
}

/// Four samples (two kicks, a snare, a 124 BPM loop in A minor by its name), plus a
/// text file and a broken WAV that the import skips.
pub fn make_mixed_pack(dir: &Path) {
    write_sound(&dir.join("Kicks/Deep_Kick_01.wav"), 0.4, 55.0, true);
    write_sound(&dir.join("Kicks/Punchy_Kick_02.wav"), 0.3, 65.0, true);
    write_sound(&dir.join("Snare_Tight.wav"), 0.25, 200.0, true);
    write_sound(&dir.join("Loops/Groove_Loop_124bpm_Am.wav"), 3.87, 110.0, false);
    std::fs::write(dir.join("README.txt"), "not audio").unwrap();
    std::fs::write(dir.join("Broken.wav"), b"RIFF\x10\x00\x00\x00WAVEjunk").unwrap();
}
