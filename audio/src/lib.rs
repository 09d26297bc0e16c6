//! Audio analysis for smpl: what is measured in each sample file before it is published.
//!
//! This crate turns one audio file into the facts a pack manifest carries about it:
//! decoding, exact length, sample peak and EBU R128 loudness, loop or one-shot, a waveform
//! for display, tempo, key (or a one-shot's root note), a short preview clip and a sound
//! descriptor for "similar sounds". It is pure: no network, no storage, no async runtime;
//! the protocol types it fills in come from `smpl-protocol`.
//!
//! [`analyze_file`] decodes one file (WAV, FLAC, AIFF, OGG Vorbis or MP3) with symphonia and
//! returns an [`Analysis`]. It is synchronous and CPU-bound: callers run it on
//! `spawn_blocking` or their own threads. [`is_audio_candidate`] says, by extension, which
//! files of a folder are worth analysing.
//!
//! Everything streams, in one decoding pass. Packets are decoded one at a time and each
//! packet's `f32` planes are handed to every measurement in turn, each keeping bounded
//! state, so a one-hour recording costs what a kick drum costs.
//!
//! How the parts fit:
//! - `decode` recognises the container from the file's first bytes, opens it with
//!   symphonia and feeds decoded packets, as `f32` planes, to the measurements below;
//! - `meter` folds those planes into the peak, the loudness and a bounded envelope
//!   (the waveform is drawn from it);
//! - `kind` guesses loop or one-shot from the file name and the envelope;
//! - `preview` encodes the first seconds as a small Ogg Vorbis clip, from the same planes;
//! - `descriptor` sums up timbre, envelope and rhythm in 32 bytes for "similar sounds";
//! - `tempo` and `key` detect BPM (onset autocorrelation with a loop-length prior) and
//!   key (pitch-class profile against Sha'ath's key profiles), each with a
//!   confidence ([`TempoEstimate`], [`KeyEstimate`]), and say nothing when unsure; both
//!   share the FFT framing in `spectrum`;
//! - `tonality`, fed by the key detector, is the harmonicity test (is there a steady
//!   pitch at all?) and the pitch tracker that gives a one-shot its root note
//!   ([`Tonality`], [`RootNote`]). [`is_tonal`] decides: drums and percussion get
//!   neither key nor note; a tonal loop gets a key, a tonal one-shot (or a loop that
//!   holds one pitch) a root note, a one-shot chord a key.
//!
//! Decisions worth knowing:
//! - `frames` counts decoded frames after encoder delay and padding are trimmed (gapless
//!   information from the LAME header of an MP3, granule positions of an Ogg stream).
//! - A lossless file (WAV, AIFF, FLAC) whose header declares more frames than the file holds
//!   is rejected with [`AudioError::Truncated`] rather than analysed in part: a broken copy
//!   should be fixed before it is sold. A lossy stream that ends early (a cut MP3) is
//!   analysed as far as it decodes, since its header counts are only estimates; a corrupt
//!   lossy packet is skipped, as players do, but a file in which nothing decodes is an error.
//! - Loudness uses the `ebur128` crate with exact gating, which keeps one number per 100 ms
//!   block (80 bytes per second of audio), not the samples.
//! - An MP3 without a LAME header keeps its encoder delay and padding, as in every decoder.
//! - A file whose own name says it is a drum or percussion hit (`Kick_01`, `Tom1-Soft`,
//!   `hihat`) gets neither key nor root note, whatever the pitch test says: tuned toms
//!   and ride bells do have a pitch, but a key filter should not return them.
//! - A one-shot chord's detected key is only worth publishing from
//!   [`ONE_SHOT_KEY_CONFIDENCE`] up.

mod decode;
mod descriptor;
mod key;
mod kind;
mod meter;
mod preview;
mod spectrum;
mod tempo;
mod tonality;

#[cfg(test)]
mod hydrogen;
#[cfg(test)]
mod preview_tests;
#[cfg(test)]
mod sox_tests;
#[cfg(test)]
mod test_support;

use std::path::{Path, PathBuf};

use smpl_protocol::{AudioFormat, SampleKind};

pub use descriptor::FEATURE_NAMES as DESCRIPTOR_FEATURES;
pub use key::{KeyEstimate, ONE_SHOT_KEY_CONFIDENCE};
pub use tempo::TempoEstimate;
pub use tonality::Tonality;

/// The least [`Tonality::tonality`] (share of the sounding power in steady harmonic
/// frames) for a sample to have a key or a root note at all.
pub const MIN_TONALITY: f32 = 0.35;
/// The least time, seconds, a pitch must hold still for a loop to be tonal.
pub const MIN_STEADY_SECONDS: f32 = 0.1;
/// Steady pitched time, seconds, that makes a sample tonal however much of its power
/// drums take (a drum loop's stray pitched moments add up to less).
pub const MIN_STEADY_SECONDS_IN_MIX: f32 = 0.7;
/// A loop that is not tonal by those tests still gets its key when its pitch classes
/// fit the key's profile at least this well ([`KeyEstimate::fit`]): music under loud
/// drums, whose steady pitch the drums bury. On the labelled set's tune half the drum
/// loops fit at most 0.68, and one such music loop with the right key is withheld, at
/// 0.68 too, so a lower threshold would gain it only at the drum loops' level
/// (`docs/BENCHMARKS.md`).
pub const KEY_FIT_IN_MIX: f32 = 0.8;
/// The least time, seconds, a one-shot's pitch must hold still for it to be tonal.
pub const MIN_ONE_SHOT_STEADY_SECONDS: f32 = 0.3;
/// A one-shot shorter than that is tonal when at least this share of its sounding
/// frames hold a steady pitch (a short pluck is pitch throughout; a snare's tone sits
/// under noise).
pub const SHORT_NOTE_STEADY_SHARE: f32 = 0.6;
/// The most a one-shot's pitch may fall, semitones, over its steadiest stretch.
pub const MAX_ONE_SHOT_GLIDE: f32 = 0.15;
/// The least tonality of a loop held on one pitch for it to get a root note rather
/// than a key: a sustained note, not music that dwells on its tonic.
pub const HELD_NOTE_TONALITY: f32 = 0.8;
/// A tonal one-shot with a second, unrelated pitch in at least this share of its
/// steady frames is a chord: it gets a key, when the key detector is sure, rather
/// than a root note.
pub const CHORD_POLYPHONY: f32 = 0.5;

/// Number of points in [`Analysis::waveform`].
pub const WAVEFORM_POINTS: usize = 128;

/// Peak level stored for digital silence, where the true value is −∞ dBFS.
pub const SILENCE_DBFS: f32 = -200.0;

/// File extensions (lower case) that [`is_audio_candidate`] accepts.
pub const AUDIO_EXTENSIONS: &[&str] = &["wav", "wave", "flac", "aif", "aiff", "aifc", "ogg", "oga", "mp3"];

/// What analysis found in one audio file.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    /// The container format, recognised from the file's content (not its extension).
    pub format: AudioFormat,
    /// Decoded length in sample frames (one frame holds one sample per channel).
    pub frames: u64,
    pub sample_rate: u32,
    pub channels: u16,
    /// Bits per sample of stored PCM (WAV, AIFF, FLAC); `None` for lossy codecs.
    pub bit_depth: Option<u16>,
    /// `20·log10(max |sample|)` over all channels; [`SILENCE_DBFS`] for digital silence.
    /// Lossy decoders can overshoot, so a loud MP3 may read slightly above 0.
    pub peak_dbfs: f32,
    /// EBU R128 integrated loudness; `None` when the gates leave nothing to measure (shorter
    /// than one 400 ms block, or silent).
    pub loudness_lufs: Option<f32>,
    pub kind: SampleKind,
    /// [`WAVEFORM_POINTS`] points, each the highest `|sample|` of its stretch of the file,
    /// scaled linearly so that 0 is silence and 255 is full scale.
    pub waveform: Vec<u8>,
    /// A free audition clip of the first seconds (Ogg Vorbis, see `preview`);
    /// `None` when none could be made.
    pub preview: Option<Vec<u8>>,
    /// The sound's fingerprint for "similar sounds" (see `descriptor`; what each
    /// dimension holds: [`DESCRIPTOR_FEATURES`]).
    pub descriptor: Option<smpl_protocol::Descriptor>,
    /// Detected tempo (see `tempo`), `None` when the detector is not confident
    /// (and for anything under 1.5 s).
    pub tempo: Option<TempoEstimate>,
    /// Detected key (see `key`) of tonal material: loops, and one-shots that hold a
    /// chord; `None` for drums, single notes, or when the detector is not confident.
    pub key: Option<KeyEstimate>,
    /// Root note of a tonal one-shot that is not a chord (see `tonality`).
    pub note: Option<RootNote>,
    /// The key detector's estimate before the tests above decide whether the sample
    /// has a key at all: what `eval` scores the detector itself by.
    pub key_estimate: Option<KeyEstimate>,
    /// What the harmonicity test found; `tonality` 0 when nothing was decoded.
    pub tonality: Tonality,
}

/// The pitch of a tonal one-shot: a pitch class, and its octave where clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootNote {
    /// 0 = C, 1 = C♯, … 11 = B.
    pub pitch_class: u8,
    /// Scientific octave (C4 is middle C); `None` when the fundamental itself was
    /// missing and only the pitch class is sure.
    pub octave: Option<i8>,
}

impl RootNote {
    /// The note of MIDI number `midi` (60 = C4).
    pub fn from_midi(midi: u8, octave_sure: bool) -> RootNote {
        RootNote { pitch_class: midi % 12, octave: octave_sure.then_some((midi / 12) as i8 - 1) }
    }
}

/// Whether a sample of `kind` is tonal: its steady harmonic frames carry at least
/// [`MIN_TONALITY`] of its power. A loop needs them to last [`MIN_STEADY_SECONDS`],
/// or, mixed with drums as music is, [`MIN_STEADY_SECONDS_IN_MIX`] in all however
/// little of the power they carry. A one-shot needs its pitch to hold for
/// [`MIN_ONE_SHOT_STEADY_SECONDS`] or through [`SHORT_NOTE_STEADY_SHARE`] of its sound
/// (a note shorter than a frame, analysed in short frames, included), and not to fall
/// by more than [`MAX_ONE_SHOT_GLIDE`] semitones, as the pitch of a tom, a snare or a
/// kick does while it decays.
pub fn is_tonal(kind: SampleKind, t: &Tonality) -> bool {
    let harmonic = t.tonality >= MIN_TONALITY;
    match kind {
        SampleKind::Loop => {
            harmonic && t.steady_seconds >= MIN_STEADY_SECONDS
                || t.steady_seconds >= MIN_STEADY_SECONDS_IN_MIX
        }
        SampleKind::OneShot => {
            let held =
                t.steady_seconds >= MIN_ONE_SHOT_STEADY_SECONDS || t.steady_share >= SHORT_NOTE_STEADY_SHARE;
            harmonic && held && t.glide <= MAX_ONE_SHOT_GLIDE
        }
    }
}

/// Key and root note as published: none for material that is not tonal (nor, in
/// `analyze_file`, for a file whose name says it is a drum), except the key of a loop
/// that fits it as music does ([`KEY_FIT_IN_MIX`]); one pitch
/// held throughout gets a root note, whatever its kind; otherwise a loop gets a key,
/// and a one-shot a root note, or a key when it holds a chord and the key
/// detector is sure ([`ONE_SHOT_KEY_CONFIDENCE`]).
fn key_and_note(
    kind: SampleKind,
    key: Option<KeyEstimate>,
    tonality: &Tonality,
) -> (Option<KeyEstimate>, Option<RootNote>) {
    if !is_tonal(kind, tonality) {
        let in_mix = key.filter(|k| kind == SampleKind::Loop && k.fit >= KEY_FIT_IN_MIX);
        return (in_mix, None);
    }
    let note = tonality.pitch.map(|(midi, sure)| RootNote::from_midi(midi, sure));
    // One pitch held throughout (a sustained note cut to loop, a drone) has no mode either.
    let held = tonality.single_note && tonality.polyphony < CHORD_POLYPHONY;
    if held && (kind == SampleKind::OneShot || tonality.tonality >= HELD_NOTE_TONALITY) {
        return (None, note);
    }
    match kind {
        SampleKind::Loop => (key, None),
        SampleKind::OneShot => {
            let chord = key
                .filter(|k| tonality.polyphony >= CHORD_POLYPHONY && k.confidence >= ONE_SHOT_KEY_CONFIDENCE);
            match chord {
                Some(k) => (Some(k), None),
                None => (None, note),
            }
        }
    }
}

impl Analysis {
    /// Duration in whole milliseconds, rounded down (as `SampleEntry::duration_ms`).
    pub fn duration_ms(&self) -> u64 {
        if self.sample_rate == 0 {
            0
        } else {
            (u128::from(self.frames) * 1000 / u128::from(self.sample_rate)) as u64
        }
    }
}

/// Why a file could not be analysed. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} is not a supported audio file ({reason}); smpl reads WAV, FLAC, AIFF, \
         OGG Vorbis and MP3",
        path.display()
    )]
    Unsupported { path: PathBuf, reason: String },
    #[error("{} is corrupt: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{} is truncated: its header declares {declared} frames but the file holds only \
         {decoded}",
        path.display()
    )]
    Truncated { path: PathBuf, declared: u64, decoded: u64 },
    #[error("{} holds no audio frames", path.display())]
    Empty { path: PathBuf },
}

impl AudioError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            AudioError::Io { path, .. }
            | AudioError::Unsupported { path, .. }
            | AudioError::Corrupt { path, .. }
            | AudioError::Truncated { path, .. }
            | AudioError::Empty { path } => path,
        }
    }
}

/// Whether `path` looks like an audio file smpl can analyse, judged by its extension
/// (case-insensitive, one of [`AUDIO_EXTENSIONS`]). macOS AppleDouble companions (`._name.wav`,
/// common in zipped packs) are not audio and are refused.
pub fn is_audio_candidate(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    if name.starts_with("._") {
        return false;
    }
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|ext| AUDIO_EXTENSIONS.iter().any(|known| ext.eq_ignore_ascii_case(known)))
}

/// Decodes `path` once, streaming, and measures it. See the module docs for the decisions on
/// truncated and corrupt input.
pub fn analyze_file(path: &Path) -> Result<Analysis, AudioError> {
    // A decoder that panics on a malformed file (symphonia's WAV reader does on
    // some channel masks) costs that file, not the thread that analyses it.
    match std::panic::catch_unwind(|| analyze(path)) {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Err(AudioError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("the decoder failed on it ({what})"),
            })
        }
    }
}

fn analyze(path: &Path) -> Result<Analysis, AudioError> {
    let decoded = decode::decode_file(path)?;
    let m = decoded.measurements;
    let kind = kind::classify(path, m.frames, decoded.sample_rate, &m.envelope);
    let tonality = decoded.tonality.unwrap_or_default();
    let (key, note) =
        if kind::names_a_drum(path) { (None, None) } else { key_and_note(kind, decoded.key, &tonality) };
    Ok(Analysis {
        format: decoded.format,
        frames: m.frames,
        sample_rate: decoded.sample_rate,
        channels: decoded.channels,
        bit_depth: decoded.bit_depth,
        peak_dbfs: m.peak_dbfs,
        loudness_lufs: m.loudness_lufs,
        kind,
        waveform: m.waveform,
        preview: decoded.preview,
        descriptor: decoded.descriptor,
        tempo: decoded.tempo,
        key,
        note,
        key_estimate: decoded.key,
        tonality,
    })
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    /// A loop whose drums bury its steady pitch keeps a key that fits as music does,
    /// and only then; a one-shot never gets one that way.
    #[test]
    fn a_loop_in_a_dense_mix_keeps_a_key_that_fits_well() {
        let buried = Tonality { tonality: 0.05, steady_seconds: 0.37, ..Tonality::default() };
        assert!(!is_tonal(SampleKind::Loop, &buried));
        let key = |fit| Some(KeyEstimate { tonic: 9, minor: true, confidence: 1.0, fit });
        let (published, note) = key_and_note(SampleKind::Loop, key(0.85), &buried);
        assert_eq!((published.map(|k| k.name()), note), (Some("Am".to_string()), None));
        assert_eq!(key_and_note(SampleKind::Loop, key(0.75), &buried), (None, None));
        assert_eq!(key_and_note(SampleKind::OneShot, key(0.95), &buried), (None, None));
    }

    #[test]
    fn candidates_by_extension() {
        for name in [
            "a.wav",
            "a.WAV",
            "b.wave",
            "c.flac",
            "d.aif",
            "e.AIFF",
            "f.aifc",
            "g.ogg",
            "h.oga",
            "i.mp3",
            "dir/j.Mp3",
        ] {
            assert!(is_audio_candidate(Path::new(name)), "{name}");
        }
        for name in ["a.txt", "wav", "a.wav.zip", "a.m4a", "a.opus", "._a.wav", "__MACOSX/._a.wav", ""] {
            assert!(!is_audio_candidate(Path::new(name)), "{name}");
        }
    }

    #[test]
    fn wav_integer_depths_give_exact_frames_peak_and_depth() {
        let dir = tempfile::tempdir().unwrap();
        for (bits, channels) in [(16, 1), (16, 2), (24, 1), (24, 2), (32, 2), (8, 1)] {
            let path = dir.path().join(format!("sine_{bits}_{channels}.wav"));
            // -6.02 dBFS (half scale), 1234.5 ms at 48 kHz: 59256 frames.
            write_sine_int(&path, bits, channels, 48_000, 59_256, 440.0, 0.5);
            let a = analyze_file(&path).unwrap();
            assert_eq!(a.format, AudioFormat::Wav);
            assert_eq!(a.frames, 59_256, "{bits} bit");
            assert_eq!(a.sample_rate, 48_000);
            assert_eq!(a.channels, channels);
            assert_eq!(a.bit_depth, Some(bits));
            assert_eq!(a.duration_ms(), 1234);
            let tolerance = if bits == 8 { 0.1 } else { 0.01 };
            assert!((a.peak_dbfs - (-6.0206)).abs() < tolerance, "{bits} bit: peak {}", a.peak_dbfs);
            assert_eq!(a.waveform.len(), WAVEFORM_POINTS);
            assert!(a.waveform.iter().all(|&p| (126..=129).contains(&p)), "{:?}", a.waveform);
        }
    }

    #[test]
    fn wav_float_is_32_bit_and_keeps_exact_peak() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("float.wav");
        write_sine_float(&path, 2, 44_100, 44_100, 1000.0, 0.25);
        let a = analyze_file(&path).unwrap();
        assert_eq!(a.bit_depth, Some(32));
        assert_eq!(a.frames, 44_100);
        assert_eq!(a.channels, 2);
        assert!((a.peak_dbfs - (-12.0412)).abs() < 0.01, "peak {}", a.peak_dbfs);
    }

    #[test]
    fn full_scale_square_reads_zero_dbfs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("square.wav");
        write_wav_i16(&path, 1, 44_100, 44_100, |i, _| if (i / 50) % 2 == 0 { i16::MIN } else { i16::MAX });
        let a = analyze_file(&path).unwrap();
        assert!(a.peak_dbfs.abs() < 0.001, "peak {}", a.peak_dbfs);
        assert!(a.waveform.iter().all(|&p| p == 255));
    }

    #[test]
    fn peak_is_taken_over_all_channels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("right_louder.wav");
        write_wav_i16(&path, 2, 44_100, 44_100, |i, c| {
            let amp = if c == 1 { 16_384.0 } else { 1_000.0 };
            (amp * (f64::from(i) * 0.1).sin()) as i16
        });
        let a = analyze_file(&path).unwrap();
        assert!((a.peak_dbfs - (-6.02)).abs() < 0.01, "peak {}", a.peak_dbfs);
    }

    #[test]
    fn ebu_reference_sines() {
        let dir = tempfile::tempdir().unwrap();
        // EBU Tech 3341 test 1: stereo 1 kHz sine at -23 dBFS in each channel reads -23 LUFS.
        let stereo = dir.path().join("stereo.wav");
        let amp = 10f64.powf(-23.0 / 20.0);
        write_sine_float(&stereo, 2, 48_000, 20 * 48_000, 1000.0, amp);
        let a = analyze_file(&stereo).unwrap();
        let lufs = a.loudness_lufs.unwrap();
        assert!((lufs - (-23.0)).abs() < 0.1, "stereo {lufs}");
        // Mono counts its one channel once: a -20 dBFS peak sine has a mean square of
        // 0.01 / 2, i.e. -23.0 LUFS.
        let mono = dir.path().join("mono.wav");
        write_sine_float(&mono, 1, 44_100, 10 * 44_100, 1000.0, 0.1);
        let a = analyze_file(&mono).unwrap();
        let lufs = a.loudness_lufs.unwrap();
        assert!((lufs - (-23.01)).abs() < 0.1, "mono {lufs}");
        assert!((a.peak_dbfs - (-20.0)).abs() < 0.01);
    }

    #[test]
    fn silence_has_no_loudness_and_floor_peak() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silence.wav");
        write_wav_i16(&path, 2, 44_100, 3 * 44_100, |_, _| 0);
        let a = analyze_file(&path).unwrap();
        assert_eq!(a.peak_dbfs, SILENCE_DBFS);
        assert_eq!(a.loudness_lufs, None);
        assert_eq!(a.kind, SampleKind::OneShot);
        assert_eq!(a.waveform, vec![0; WAVEFORM_POINTS]);
    }

    #[test]
    fn too_short_for_a_gating_block_has_no_loudness() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("click.wav");
        write_sine_int(&path, 16, 1, 44_100, 4410, 200.0, 0.9);
        let a = analyze_file(&path).unwrap();
        assert_eq!(a.frames, 4410);
        assert_eq!(a.loudness_lufs, None);
        assert_eq!(a.kind, SampleKind::OneShot);
    }

    #[test]
    fn waveform_follows_the_envelope() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ramp.wav");
        let frames = 100_000u32;
        // Loud first half, quiet (1/4 scale) second half.
        write_wav_i16(&path, 1, 44_100, frames, |i, _| {
            let amp = if i < frames / 2 { 32_000.0 } else { 8_000.0 };
            (amp * (i as f64 * 0.05).sin()) as i16
        });
        let a = analyze_file(&path).unwrap();
        assert!(a.waveform[..63].iter().all(|&p| p >= 248), "{:?}", a.waveform);
        assert!(a.waveform[65..].iter().all(|&p| (60..=64).contains(&p)), "{:?}", a.waveform);
    }

    #[test]
    fn tiny_file_still_gets_full_waveform() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.wav");
        write_wav_i16(&path, 1, 8_000, 10, |i, _| (i as i16) * 3000);
        let a = analyze_file(&path).unwrap();
        assert_eq!(a.frames, 10);
        assert_eq!(a.waveform.len(), WAVEFORM_POINTS);
        assert_eq!(a.waveform[0], 0);
        assert!(a.waveform[WAVEFORM_POINTS - 1] > 200);
    }

    #[test]
    fn decaying_hit_is_a_one_shot_and_steady_beat_is_a_loop() {
        let dir = tempfile::tempdir().unwrap();
        let hit = dir.path().join("tom.wav");
        write_wav_i16(&hit, 1, 44_100, 3 * 44_100, |i, _| {
            let t = i as f64 / 44_100.0;
            (30_000.0 * (-t * 3.0).exp() * (t * 2.0 * std::f64::consts::PI * 110.0).sin()) as i16
        });
        assert_eq!(analyze_file(&hit).unwrap().kind, SampleKind::OneShot);

        let beat = dir.path().join("groove 120.wav");
        write_beat(&beat, 44_100, 4.0, 120.0);
        assert_eq!(analyze_file(&beat).unwrap().kind, SampleKind::Loop);

        // The name wins over the signal.
        let named = dir.path().join("Tom Loop.wav");
        std::fs::copy(&hit, &named).unwrap();
        assert_eq!(analyze_file(&named).unwrap().kind, SampleKind::Loop);
    }

    #[test]
    fn garbage_and_empty_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.wav");
        let bytes: Vec<u8> = (0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        std::fs::write(&garbage, bytes).unwrap();
        let err = analyze_file(&garbage).unwrap_err();
        assert!(matches!(err, AudioError::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains("garbage.wav"), "{err}");

        let text = dir.path().join("notes.mp3");
        std::fs::write(&text, "these are not the droids you are looking for\n").unwrap();
        let err = analyze_file(&text).unwrap_err();
        assert!(matches!(err, AudioError::Unsupported { .. }), "{err}");

        let empty = dir.path().join("empty.flac");
        std::fs::write(&empty, b"").unwrap();
        let err = analyze_file(&empty).unwrap_err();
        assert!(err.to_string().contains("empty.flac"), "{err}");

        let missing = dir.path().join("missing.wav");
        let err = analyze_file(&missing).unwrap_err();
        assert!(matches!(err, AudioError::Io { .. }), "{err}");
        assert_eq!(err.path(), missing);

        let no_frames = dir.path().join("no_frames.wav");
        write_wav_i16(&no_frames, 2, 44_100, 0, |_, _| 0);
        let err = analyze_file(&no_frames).unwrap_err();
        assert!(matches!(err, AudioError::Empty { .. }), "{err}");
    }

    #[test]
    fn truncated_wav_is_rejected_with_counts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.wav");
        write_sine_int(&path, 24, 2, 44_100, 44_100, 440.0, 0.5);
        let len = std::fs::metadata(&path).unwrap().len();
        truncate(&path, len - 10_001);
        let err = analyze_file(&path).unwrap_err();
        match &err {
            AudioError::Truncated { declared, decoded, .. } => {
                assert_eq!(*declared, 44_100);
                assert!(*decoded < 44_100);
            }
            other => panic!("expected Truncated, got {other}"),
        }
        assert!(err.to_string().contains("cut.wav"), "{err}");

        // Cut inside the header.
        truncate(&path, 30);
        let err = analyze_file(&path).unwrap_err();
        assert!(err.to_string().contains("cut.wav"), "{err}");
    }

    #[test]
    fn content_decides_the_format_not_the_extension() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("actually_wav.mp3");
        write_sine_int(&path, 16, 1, 22_050, 22_050, 440.0, 0.5);
        let a = analyze_file(&path).unwrap();
        assert_eq!(a.format, AudioFormat::Wav);
        assert_eq!(a.frames, 22_050);
    }
}
