//! FLAC, AIFF, OGG Vorbis and MP3, made with sox at test time from a hound-written WAV.
//! sox and ffmpeg (the reference for lossy lengths) must be installed
//! (`apt-get install -y sox libsox-fmt-all ffmpeg`); without them these tests fail.

use std::path::{Path, PathBuf};

use smpl_protocol::{AudioFormat, SampleKind};

use super::test_support::*;
use super::{AudioError, analyze_file};

const RATE: u32 = 44_100;
/// 2.5 s plus an odd tail, so that the length is not a multiple of any codec's frame size.
const FRAMES: u32 = 110_271;

/// sox's `stats` "Pk lev dB" (the overall column) for `path`.
fn sox_peak_db(path: &Path) -> f32 {
    let out = sox(&[path.as_os_str(), "-n".as_ref(), "stats".as_ref()]);
    let line = out
        .lines()
        .find(|l| l.starts_with("Pk lev dB"))
        .unwrap_or_else(|| panic!("no Pk lev dB in sox stats output:\n{out}"));
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

/// A stereo test source: a 330 Hz sine at -6 dBFS plus a quieter 2 kHz partial.
fn source(dir: &Path) -> PathBuf {
    let path = dir.join("source.wav");
    write_float(&path, 2, RATE, FRAMES, |i| {
        let t = f64::from(i) / f64::from(RATE);
        0.4 * (2.0 * std::f64::consts::PI * 330.0 * t).sin()
            + 0.1 * (2.0 * std::f64::consts::PI * 2000.0 * t).sin()
    });
    path
}

fn convert(src: &Path, dst: &Path, options: &[&str]) {
    let mut args: Vec<&std::ffi::OsStr> = vec![src.as_os_str()];
    args.extend(options.iter().map(|o| std::ffi::OsStr::new(*o)));
    args.push(dst.as_os_str());
    sox(&args);
}

/// Lengths agree with what ffmpeg decodes within 1 ms.
fn assert_same_length_as_ffmpeg(name: &str, path: &Path, frames: u64, rate: u32) {
    let reference = ffmpeg_decoded_frames(path);
    let diff_ms = frames.abs_diff(reference) as f64 * 1000.0 / f64::from(rate);
    assert!(diff_ms <= 1.0, "{name}: {frames} frames, ffmpeg {reference}");
}

/// Loudness agrees with ffmpeg's `ebur128` filter within 0.5 LU (ffmpeg prints 0.1 LU steps).
fn assert_loudness_matches_ffmpeg(name: &str, path: &Path, lufs: Option<f32>) {
    let reference = ffmpeg_lufs(path);
    match (lufs, reference) {
        (Some(ours), Some(theirs)) => {
            assert!((ours - theirs).abs() <= 0.5, "{name}: {ours} LUFS, ffmpeg {theirs}")
        }
        (ours, theirs) => assert_eq!(ours, theirs, "{name}"),
    }
}

#[test]
fn lossless_formats_match_the_source_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let reference = analyze_file(&src).unwrap();
    let cases: &[(&str, &[&str], AudioFormat, u16)] = &[
        ("a16.flac", &["-b", "16"], AudioFormat::Flac, 16),
        ("a24.flac", &["-b", "24"], AudioFormat::Flac, 24),
        ("a16.aiff", &["-b", "16"], AudioFormat::Aiff, 16),
        ("a24.aif", &["-b", "24"], AudioFormat::Aiff, 24),
        ("a32.aiff", &["-b", "32"], AudioFormat::Aiff, 32),
        ("f32.aifc", &["-e", "floating-point", "-b", "32"], AudioFormat::Aiff, 32),
        ("i24.wav", &["-b", "24"], AudioFormat::Wav, 24),
        ("i32.wav", &["-e", "signed-integer", "-b", "32"], AudioFormat::Wav, 32),
    ];
    for (name, options, format, bits) in cases {
        let path = dir.path().join(name);
        convert(&src, &path, options);
        let a = analyze_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(a.format, *format, "{name}");
        assert_eq!(a.frames, u64::from(FRAMES), "{name}");
        assert_eq!((a.sample_rate, a.channels), (RATE, 2), "{name}");
        assert_eq!(a.bit_depth, Some(*bits), "{name}");
        let sox_peak = sox_peak_db(&path);
        assert!((a.peak_dbfs - sox_peak).abs() < 0.1, "{name}: {} vs sox {sox_peak}", a.peak_dbfs);
        let lufs = a.loudness_lufs.unwrap();
        assert!((lufs - reference.loudness_lufs.unwrap()).abs() < 0.05, "{name}: {lufs}");
        assert_eq!(a.kind, SampleKind::Loop, "{name}: a steady tone");
    }
}

#[test]
fn lossy_formats_keep_length_and_level() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let cases: &[(&str, &[&str], AudioFormat)] = &[
        ("v.ogg", &["-C", "5"], AudioFormat::Ogg),
        ("v.oga", &["-t", "vorbis", "-C", "3"], AudioFormat::Ogg),
        ("c.mp3", &["-C", "192"], AudioFormat::Mp3),
        ("v.mp3", &["-C", "-4.2"], AudioFormat::Mp3),
    ];
    for (name, options, format) in cases {
        let path = dir.path().join(name);
        convert(&src, &path, options);
        let a = analyze_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(a.format, *format, "{name}");
        assert_eq!(a.bit_depth, None, "{name}");
        assert_eq!((a.sample_rate, a.channels), (RATE, 2), "{name}");
        assert_same_length_as_ffmpeg(name, &path, a.frames, RATE);
        let sox_peak = sox_peak_db(&path);
        assert!((a.peak_dbfs - sox_peak).abs() < 0.1, "{name}: {} vs sox {sox_peak}", a.peak_dbfs);
        assert_loudness_matches_ffmpeg(name, &path, a.loudness_lufs);
    }
}

/// sox writes MP3s without a LAME header, so their encoder delay and padding stay in (as
/// in every decoder). ffmpeg's encoder writes one; the trimmed length is then exact.
#[test]
fn gapless_mp3_has_the_exact_source_length() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let mp3 = dir.path().join("gapless.mp3");
    let args: [&std::ffi::OsStr; 9] = [
        "-v".as_ref(),
        "error".as_ref(),
        "-i".as_ref(),
        src.as_os_str(),
        "-c:a".as_ref(),
        "libmp3lame".as_ref(),
        "-b:a".as_ref(),
        "160k".as_ref(),
        mp3.as_os_str(),
    ];
    run_tool("ffmpeg", "ffmpeg", &args);
    let a = analyze_file(&mp3).unwrap();
    assert_eq!(a.format, AudioFormat::Mp3);
    assert_eq!(a.frames, u64::from(FRAMES));
    assert_same_length_as_ffmpeg("gapless.mp3", &mp3, a.frames, RATE);
}

#[test]
fn mono_and_other_rates() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("mono.wav");
    write_sine_int(&src, 16, 1, 48_000, 96_017, 1000.0, 0.1);
    for (name, options) in [("m.flac", &[][..]), ("m.mp3", &["-C", "128"][..]), ("m.ogg", &[][..])] {
        let path = dir.path().join(name);
        convert(&src, &path, options);
        let a = analyze_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((a.sample_rate, a.channels), (48_000, 1), "{name}");
        assert_same_length_as_ffmpeg(name, &path, a.frames, 48_000);
        assert_loudness_matches_ffmpeg(name, &path, a.loudness_lufs);
        let lufs = a.loudness_lufs.unwrap();
        assert!((lufs - (-23.0)).abs() < 0.6, "{name}: {lufs}");
    }
}

#[test]
fn damaged_compressed_files() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());

    // A FLAC cut short declares more frames than it holds.
    let flac = dir.path().join("cut.flac");
    convert(&src, &flac, &[]);
    let len = std::fs::metadata(&flac).unwrap().len();
    truncate(&flac, len / 2);
    let err = analyze_file(&flac).unwrap_err();
    assert!(matches!(err, AudioError::Truncated { .. } | AudioError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("cut.flac"), "{err}");

    // A flipped byte in FLAC audio data fails the frame CRC or the MD5 check.
    let flac = dir.path().join("flipped.flac");
    convert(&src, &flac, &[]);
    let mut bytes = std::fs::read(&flac).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x5a;
    std::fs::write(&flac, bytes).unwrap();
    let err = analyze_file(&flac).unwrap_err();
    assert!(matches!(err, AudioError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("flipped.flac"), "{err}");

    // A cut MP3 is analysed as far as it goes.
    let mp3 = dir.path().join("cut.mp3");
    convert(&src, &mp3, &["-C", "192"]);
    let len = std::fs::metadata(&mp3).unwrap().len();
    truncate(&mp3, len / 2);
    let a = analyze_file(&mp3).unwrap();
    assert!(a.frames > u64::from(FRAMES) / 3 && a.frames < u64::from(FRAMES) * 2 / 3);

    // An Ogg file cut inside its headers is an error that names it.
    let ogg = dir.path().join("cut.ogg");
    convert(&src, &ogg, &[]);
    truncate(&ogg, 200);
    let err = analyze_file(&ogg).unwrap_err();
    assert!(err.to_string().contains("cut.ogg"), "{err}");
}
