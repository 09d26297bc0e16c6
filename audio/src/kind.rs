//! Loop or one-shot: a deliberately simple guess.
//!
//! 1. Names first. Producers name things: if the file name, or failing that the name of the
//!    folder holding it, says `loop` the sample is a loop; if it says `one shot` (`oneshot`,
//!    `one-shot`, `one_shot`) it is a one-shot.
//! 2. Otherwise the signal decides. A sample shorter than [`MIN_LOOP_SECONDS`] is a one-shot.
//!    A longer one is a loop when its last [`TAIL_FRACTION`] is still playing: its mean power
//!    is no more than [`MAX_TAIL_DROP_DB`] below the mean power of the rest. A hit that rings
//!    out (a decaying tail, or silence at the end) is a one-shot, and so is digital silence.
//!
//! A sustained pad without a release reads as a loop; that is the price of simplicity.

use std::path::Path;

use smpl_protocol::SampleKind;

use super::meter::Envelope;

/// Samples shorter than this are one-shots unless named otherwise.
pub const MIN_LOOP_SECONDS: f64 = 1.5;
/// The part at the end that is compared with the rest.
pub const TAIL_FRACTION: f64 = 0.1;
/// How much quieter (in dB of mean power) the end may be for the sample to count as a loop.
pub const MAX_TAIL_DROP_DB: f64 = 10.0;

pub(super) fn classify(path: &Path, frames: u64, sample_rate: u32, envelope: &Envelope) -> SampleKind {
    let file_name = path.file_stem().and_then(|n| n.to_str());
    let folder = path.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str());
    if let Some(kind) = file_name.and_then(kind_from_name).or_else(|| folder.and_then(kind_from_name)) {
        return kind;
    }
    if sample_rate == 0 || (frames as f64) < MIN_LOOP_SECONDS * f64::from(sample_rate) {
        return SampleKind::OneShot;
    }
    match envelope.body_and_tail_power(TAIL_FRACTION) {
        Some((body, tail)) if body > 0.0 && tail >= body * 10f64.powf(-MAX_TAIL_DROP_DB / 10.0) => {
            SampleKind::Loop
        }
        _ => SampleKind::OneShot,
    }
}

/// Words that make a file name a drum or percussion hit's (compared whole, lower case).
const DRUM_WORDS: &[&str] = &[
    "kick",
    "bd",
    "bassdrum",
    "snare",
    "sd",
    "sn",
    "rim",
    "rimshot",
    "tom",
    "toms",
    "floortom",
    "racktom",
    "hightom",
    "midtom",
    "lowtom",
    "kickdrum",
    "snaredrum",
    "sidestick",
    "crossstick",
    "hat",
    "hats",
    "hihat",
    "hh",
    "cymbal",
    "crash",
    "ride",
    "splash",
    "china",
    "clap",
    "claps",
    "shaker",
    "tambourine",
    "cowbell",
    "conga",
    "congas",
    "bongo",
    "bongos",
    "agogo",
    "djembe",
    "tabla",
    "tumba",
    "cuica",
    "quica",
    "timbale",
    "timbales",
    "guiro",
    "clave",
    "claves",
    "woodblock",
    "cabasa",
    "maracas",
    "cajon",
    "perc",
    "percussion",
    "drum",
    "drums",
];

/// Whether the file's own name says it is a drum or percussion sound (`Kick_01.wav`,
/// `Tom1-Soft.wav`, `hihat closed.flac`): producers name their hits, and a name is
/// surer than any pitch test. Folder names do not count (a `Drums` folder may hold an
/// 808 bass).
pub(super) fn names_a_drum(path: &Path) -> bool {
    let Some(stem) = path.file_stem().and_then(|n| n.to_str()) else { return false };
    words(stem).iter().any(|word| DRUM_WORDS.contains(&word.as_str()))
}

/// The words of a name, lower case: runs of letters, also split where a capital
/// follows a small letter (`SnareOffRim` is `snare`, `off`, `rim`).
fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut after_small = false;
    for c in name.chars() {
        let letter = c.is_ascii_alphabetic();
        if (!letter || c.is_ascii_uppercase() && after_small) && !word.is_empty() {
            words.push(std::mem::take(&mut word).to_lowercase());
        }
        if letter {
            word.push(c);
        }
        after_small = c.is_ascii_lowercase();
    }
    if !word.is_empty() {
        words.push(word.to_lowercase());
    }
    words
}

/// What a name says about the kind, if anything.
fn kind_from_name(name: &str) -> Option<SampleKind> {
    let name = name.to_lowercase();
    if name.contains("loop") {
        return Some(SampleKind::Loop);
    }
    let squashed: String = name.chars().filter(|c| c.is_alphanumeric()).collect();
    if squashed.contains("oneshot") {
        return Some(SampleKind::OneShot);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_decide_first() {
        assert_eq!(kind_from_name("Drum Loop 120bpm"), Some(SampleKind::Loop));
        assert_eq!(kind_from_name("LOOPS"), Some(SampleKind::Loop));
        assert_eq!(kind_from_name("Kick One-Shot"), Some(SampleKind::OneShot));
        assert_eq!(kind_from_name("one_shots"), Some(SampleKind::OneShot));
        assert_eq!(kind_from_name("Oneshot"), Some(SampleKind::OneShot));
        assert_eq!(kind_from_name("kick 01"), None);
    }

    #[test]
    fn drum_names() {
        for name in [
            "Kick_01.wav",
            "Tom1-Soft.wav",
            "HiHat Closed.flac",
            "bd_808.flac",
            "Crash-2.wav",
            "perc_bell.flac",
            "SnareOffRim-1.wav",
            "AgogoHigh-0.wav",
            "tabla_na_s.flac",
            "floortom_02.flac",
        ] {
            assert!(names_a_drum(Path::new(name)), "{name}");
        }
        for name in [
            "Tomorrow Pad.wav",
            "Bass_C2.wav",
            "Drums/808 Bass.wav",
            "Rider Lead.wav",
            "Hattie.wav",
            "TomorrowPad.wav",
            "SNAREPAD.wav",
        ] {
            assert!(!names_a_drum(Path::new(name)), "{name}");
        }
    }

    #[test]
    fn file_name_beats_folder_name() {
        let envelope = Envelope::default();
        let kind = |p: &str| classify(Path::new(p), 0, 44_100, &envelope);
        assert_eq!(kind("Loops/kick one shot.wav"), SampleKind::OneShot);
        assert_eq!(kind("One Shots/fill loop.wav"), SampleKind::Loop);
        assert_eq!(kind("Loops/break 01.wav"), SampleKind::Loop);
        assert_eq!(kind("Drums/kick.wav"), SampleKind::OneShot);
        // "loop" in a folder further up does not count.
        assert_eq!(kind("Loops/Drums/kick.wav"), SampleKind::OneShot);
    }
}
