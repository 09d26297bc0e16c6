//! End-to-end checks of the preview encoder: real WAV files written with hound are decoded with
//! symphonia packet by packet (as the node does), fed to a [`PreviewEncoder`], and the Ogg Vorbis
//! it returns is decoded again with symphonia and compared with the source.
//!
//! Run with `cargo test -p smpl-node preview_tests -- --nocapture` to see the measurements.

use std::io::Cursor;
use std::path::PathBuf;
use std::time::Instant;

use super::preview::{PREVIEW_SECONDS, PreviewEncoder, PreviewError};
use super::test_support::{Noise, write_planes_24};
use symphonia::core::audio::AudioBuffer;
use symphonia::core::codecs::{CODEC_TYPE_VORBIS, DecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

const TAU: f64 = std::f64::consts::TAU;

// ---------------------------------------------------------------------------------------------
// Signals

/// A source signal: planes of `f32`.
type Planes = Vec<Vec<f32>>;

/// A plucked, decaying tone with a short noise transient: a typical one-shot.
fn one_shot(rate: u32, seconds: f64, channels: usize) -> Planes {
    let n = (seconds * f64::from(rate)) as usize;
    let mut noise = Noise(0x1234_5678);
    let mut planes = vec![Vec::with_capacity(n); channels];
    let mut smooth = 0.0;
    for i in 0..n {
        let t = i as f64 / f64::from(rate);
        let body =
            (TAU * 220.0 * t).sin() * 0.5 + (TAU * 440.0 * t).sin() * 0.2 + (TAU * 1330.0 * t).sin() * 0.1;
        // One-pole low-passed noise: a "thump" rather than hiss.
        smooth += 0.3 * (noise.uniform() - smooth);
        let x = body * (-t / 0.4).exp() * 0.8 + smooth * (-t / 0.03).exp() * 0.6;
        for (c, plane) in planes.iter_mut().enumerate() {
            plane.push((x * if c % 2 == 0 { 1.0 } else { 0.8 }) as f32);
        }
    }
    planes
}

/// A 120 BPM drum pattern (kick on the beat, snare on 2 and 4, hats on eighths).
fn drum_loop(rate: u32, seconds: f64, channels: usize) -> Planes {
    let n = (seconds * f64::from(rate)) as usize;
    let rate_f = f64::from(rate);
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut planes = vec![Vec::with_capacity(n); channels];
    let mut prev = 0.0;
    let mut low = 0.0;
    for i in 0..n {
        let t = i as f64 / rate_f;
        let beat = (t / 0.5).floor() as i64;
        let tb = t - beat as f64 * 0.5;
        let te = t - (t / 0.25).floor() * 0.25;
        let white = noise.uniform();
        let hiss = white - prev; // first difference: high-passed noise
        prev = white;
        low += 0.2 * (white - low);
        // A kick sweeping from 150 Hz to 50 Hz.
        let kick_phase = TAU * (50.0 * tb + 100.0 * 0.03 * (1.0 - (-tb / 0.03).exp()));
        let kick = kick_phase.sin() * (-tb / 0.15).exp() * 0.7;
        let snare = if beat % 2 == 1 {
            (low * 0.8 + (TAU * 185.0 * tb).sin() * 0.3) * (-tb / 0.08).exp()
        } else {
            0.0
        };
        let hat = hiss * (-te / 0.02).exp() * 0.25;
        for (c, plane) in planes.iter_mut().enumerate() {
            let pan = if c % 2 == 0 { 0.8 } else { 1.2 };
            plane.push(((kick + snare + hat * pan) * 0.9) as f32);
        }
    }
    planes
}

/// Steady sines, a different pair in each channel, at about -12 dBFS.
fn tones(rate: u32, seconds: f64, channels: usize) -> Planes {
    let n = (seconds * f64::from(rate)) as usize;
    (0..channels)
        .map(|c| {
            let f1 = 440.0 + 110.0 * c as f64;
            let f2 = 1000.0 + 250.0 * c as f64;
            (0..n)
                .map(|i| {
                    let t = i as f64 / f64::from(rate);
                    ((TAU * f1 * t).sin() * 0.2 + (TAU * f2 * t).sin() * 0.15) as f32
                })
                .collect()
        })
        .collect()
}

fn silence(rate: u32, seconds: f64, channels: usize) -> Planes {
    vec![vec![0.0; (seconds * f64::from(rate)) as usize]; channels]
}

/// Full-scale uncorrelated white noise: the hardest thing to encode small.
fn white_noise(rate: u32, seconds: f64, channels: usize) -> Planes {
    let n = (seconds * f64::from(rate)) as usize;
    let mut noise = Noise(42);
    (0..channels).map(|_| (0..n).map(|_| noise.uniform() as f32).collect()).collect()
}

// ---------------------------------------------------------------------------------------------
// Files and decoding

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("smpl-preview-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// What symphonia found in a file.
struct Decoded {
    rate: u32,
    planes: Planes,
    /// The frame count the container declares, if any.
    declared_frames: Option<u64>,
    codec_is_vorbis: bool,
}

/// Decodes a whole file with symphonia, calling `on_packet` with every packet's `f32` planes.
fn decode(bytes: Vec<u8>, extension: &str, mut on_packet: impl FnMut(&[&[f32]])) -> Decoded {
    let mss = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let mut hint = Hint::new();
    hint.with_extension(extension);
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            mss,
            &FormatOptions { enable_gapless: true, ..Default::default() },
            &MetadataOptions::default(),
        )
        .expect("symphonia recognises the stream");
    let mut format = probed.format;
    let track = format.default_track().expect("a track").clone();
    let params = track.codec_params.clone();
    let mut decoder =
        symphonia::default::get_codecs().make(&params, &DecoderOptions::default()).expect("a decoder");
    let channels = params.channels.expect("channels declared").count();
    let mut out = Decoded {
        rate: params.sample_rate.expect("rate declared"),
        planes: vec![Vec::new(); channels],
        declared_frames: params.n_frames,
        codec_is_vorbis: params.codec == CODEC_TYPE_VORBIS,
    };
    let mut scratch: Option<AudioBuffer<f32>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("reading packets: {e}"),
        };
        if packet.track_id() != track.id {
            continue;
        }
        let buffer = decoder.decode(&packet).expect("packet decodes");
        if buffer.frames() == 0 {
            continue;
        }
        let spec = *buffer.spec();
        let scratch = match &mut scratch {
            Some(s) if s.capacity() >= buffer.capacity() && *s.spec() == spec => s,
            slot => slot.insert(buffer.make_equivalent::<f32>()),
        };
        buffer.convert(scratch);
        let planes = scratch.planes();
        let planes = planes.planes();
        on_packet(planes);
        for (all, plane) in out.planes.iter_mut().zip(planes) {
            all.extend_from_slice(plane);
        }
    }
    out
}

/// The source after the preview's down-mix (mono mean for 3+ channels), first `frames` frames.
fn reference_mix(planes: &Planes, frames: usize) -> Planes {
    if planes.len() <= 2 {
        return planes.iter().map(|p| p[..frames].to_vec()).collect();
    }
    let n = planes.len() as f32;
    vec![(0..frames).map(|i| planes.iter().map(|p| p[i]).sum::<f32>() / n).collect()]
}

/// RMS over all channels of `planes[range]`, in dBFS.
fn rms_db(planes: &Planes, range: std::ops::Range<usize>) -> f64 {
    let mut sum = 0.0f64;
    let mut count = 0usize;
    for plane in planes {
        for &x in &plane[range.start.min(plane.len())..range.end.min(plane.len())] {
            sum += f64::from(x) * f64::from(x);
            count += 1;
        }
    }
    if count == 0 || sum == 0.0 { -200.0 } else { 10.0 * (sum / count as f64).log10() }
}

/// Normalised correlation at lag 0 of two signals over their first `frames` frames.
fn correlation(a: &Planes, b: &Planes, frames: usize) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (pa, pb) in a.iter().zip(b) {
        for (&x, &y) in pa.iter().zip(pb).take(frames) {
            let (x, y) = (f64::from(x), f64::from(y));
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
    }
    ab / (aa * bb).sqrt().max(1e-30)
}

// ---------------------------------------------------------------------------------------------
// The checks

/// What a case expects of its preview.
struct Case {
    name: &'static str,
    rate: u32,
    signal: Planes,
    /// Expected preview rate and channel count.
    preview_rate: u32,
    preview_channels: usize,
    /// Largest acceptable file, bytes.
    max_bytes: usize,
    /// Largest acceptable RMS difference (dB) between source and preview; `None` for silence.
    rms_tolerance_db: Option<f64>,
    /// Least acceptable correlation, sample for sample, with the source (picking every k-th
    /// source frame when the preview's rate is the source's divided by k); `None`: not checked.
    min_correlation: Option<f64>,
}

/// What a case measured, for the summary.
struct Outcome {
    decoded: Decoded,
    reference: Planes,
}

fn run_case(case: Case) -> Outcome {
    let dir = scratch_dir();
    let path = dir.join(format!("{}.wav", case.name));
    write_planes_24(&path, case.rate, &case.signal);
    let wav = std::fs::read(&path).expect("read wav back");
    let wav_len = wav.len();

    // Decode the WAV the node's way, feeding the encoder packet by packet.
    let channels = case.signal.len() as u16;
    let start = Instant::now();
    let mut encoder = PreviewEncoder::new(case.rate, channels).expect("encoder accepts the format");
    let mut encode_time = start.elapsed();
    assert_eq!(encoder.preview_rate(), case.preview_rate, "{}: preview rate", case.name);
    assert_eq!(usize::from(encoder.preview_channels()), case.preview_channels, "{}: channels", case.name);
    let mut wants_more = true;
    let mut packets = 0usize;
    let source = decode(wav, "wav", |planes| {
        packets += 1;
        if wants_more {
            let start = Instant::now();
            wants_more = encoder.add(planes).expect("packet accepted");
            encode_time += start.elapsed();
        }
    });
    let start = Instant::now();
    let ogg = encoder.finish().expect("preview finishes");
    encode_time += start.elapsed();
    let source_frames = source.planes[0].len();
    assert_eq!(source_frames, case.signal[0].len(), "{}: WAV round trip", case.name);

    // Decode the preview.
    assert_eq!(&ogg[..4], b"OggS", "{}: an Ogg stream", case.name);
    let bytes = ogg.len();
    let decoded = decode(ogg, "ogg", |_| {});
    assert!(decoded.codec_is_vorbis, "{}: Vorbis inside", case.name);
    assert_eq!(decoded.rate, case.preview_rate, "{}: decoded rate", case.name);
    assert_eq!(decoded.planes.len(), case.preview_channels, "{}: decoded channels", case.name);

    // Duration: min(source, PREVIEW_SECONDS). The last granule position (which players trim
    // to, and symphonia reports as the track's frame count) is exact. Symphonia 0.5 trims the
    // decoded end to it only when the audio spans more than one Ogg page, so decoding may give up
    // to one long Vorbis block more (the encoder's padding, near silence), never less.
    let limit = (f64::from(PREVIEW_SECONDS) * f64::from(case.rate)).round() as usize;
    let kept = source_frames.min(limit);
    let expected = (kept as u64 * u64::from(case.preview_rate)).div_ceil(u64::from(case.rate)) as i64;
    let got = decoded.planes[0].len() as i64;

    let block = 2048 * i64::from(case.preview_rate.div_ceil(48_000));
    assert_eq!(decoded.declared_frames, Some(expected as u64), "{}: declared length", case.name);
    assert!(
        (0..=block).contains(&(got - expected)),
        "{}: decoded {got} frames, expected {expected} (up to {block} more)",
        case.name
    );
    assert!(bytes <= case.max_bytes, "{}: {bytes} bytes, more than {}", case.name, case.max_bytes);

    // Level: the preview's RMS against the source's over the same span.
    let reference = reference_mix(&source.planes, kept);
    let source_db = rms_db(&reference, 0..kept);
    let preview_db = rms_db(&decoded.planes, 0..decoded.planes[0].len());
    match case.rms_tolerance_db {
        Some(tolerance) => assert!(
            (source_db - preview_db).abs() <= tolerance,
            "{}: RMS {preview_db:.2} dBFS, source {source_db:.2} dBFS (tolerance {tolerance} dB)",
            case.name
        ),
        None => assert!(preview_db < -90.0, "{}: silence decodes to {preview_db:.1} dBFS", case.name),
    }
    // Waveform and timing: the preview correlates with the source sample for sample (a delay,
    // a wrong channel or a wrong rate would break this).
    let step = case.rate.is_multiple_of(case.preview_rate).then(|| (case.rate / case.preview_rate) as usize);
    let correlation = step.map(|step| {
        let picked: Planes = reference.iter().map(|p| p.iter().step_by(step).copied().collect()).collect();
        correlation(&picked, &decoded.planes, kept / step)
    });
    if let (Some(min), Some(c)) = (case.min_correlation, correlation) {
        assert!(c >= min, "{}: correlation with the source {c:.3}, less than {min}", case.name);
    }
    let seconds = kept as f64 / f64::from(case.rate);
    println!(
        "PREVIEW {:<22} src {:>6} Hz x{} {:>6.3} s {:>8} B wav | preview {:>5} Hz x{} {:>6.3} s ({:+} frames) {:>6} B \
         | RMS src {:>6.2} prev {:>6.2} dB | corr {} | {} pkts, encode {:.2} ms = {:.0}x real time",
        case.name,
        case.rate,
        case.signal.len(),
        source_frames as f64 / f64::from(case.rate),
        wav_len,
        case.preview_rate,
        case.preview_channels,
        got as f64 / f64::from(case.preview_rate),
        got - expected,
        bytes,
        source_db,
        preview_db,
        correlation.map_or("n/a".to_string(), |c| format!("{c:.3}")),
        packets,
        encode_time.as_secs_f64() * 1e3,
        seconds / encode_time.as_secs_f64(),
    );
    let _ = std::fs::remove_file(&path);
    Outcome { decoded, reference }
}

#[test]
fn one_shot_stereo_44k_two_seconds_is_under_30_kb() {
    run_case(Case {
        name: "oneshot_stereo_44k_2s",
        rate: 44_100,
        signal: one_shot(44_100, 2.0, 2),
        preview_rate: 44_100,
        preview_channels: 2,
        max_bytes: 30_000,
        min_correlation: Some(0.95),
        rms_tolerance_db: Some(1.5),
    });
}

#[test]
fn one_shot_mono_48k() {
    run_case(Case {
        name: "oneshot_mono_48k_1.2s",
        rate: 48_000,
        signal: one_shot(48_000, 1.2, 1),
        preview_rate: 48_000,
        preview_channels: 1,
        max_bytes: 30_000,
        min_correlation: Some(0.95),
        rms_tolerance_db: Some(1.5),
    });
}

/// A 10 s loop is cut to 5 s and fades out: the last milliseconds are near silence.
#[test]
fn drum_loop_stereo_44k_ten_seconds_is_cut_with_a_fade() {
    let outcome = run_case(Case {
        name: "drumloop_stereo_44k_10s",
        rate: 44_100,
        signal: drum_loop(44_100, 10.0, 2),
        preview_rate: 44_100,
        preview_channels: 2,
        max_bytes: 100_000,
        min_correlation: Some(0.9),
        rms_tolerance_db: Some(1.5),
    });
    let decoded = &outcome.decoded.planes;
    let end = decoded[0].len().min(outcome.reference[0].len());
    // The fade's last 5 ms against the source's same 5 ms.
    let last = end - 220..end;
    let faded = rms_db(decoded, last.clone());
    let source = rms_db(&outcome.reference, last);
    assert!(faded < source - 20.0, "fade: last 5 ms at {faded:.1} dBFS, source there {source:.1} dBFS");
}

/// A source exactly as long as the preview is not cut: its own ending is kept, unfaded.
#[test]
fn a_source_of_exactly_the_preview_length_is_not_faded() {
    let outcome = run_case(Case {
        name: "tones_stereo_44k_5s",
        rate: 44_100,
        signal: tones(44_100, f64::from(PREVIEW_SECONDS), 2),
        preview_rate: 44_100,
        preview_channels: 2,
        max_bytes: 100_000,
        min_correlation: Some(0.95),
        rms_tolerance_db: Some(1.5),
    });
    let end = outcome.reference[0].len();
    let last = end - 441..end;
    let kept = rms_db(&outcome.decoded.planes, last.clone());
    let source = rms_db(&outcome.reference, last);
    assert!((kept - source).abs() < 1.5, "last 10 ms at {kept:.1} dBFS, source there {source:.1} dBFS");
}

#[test]
fn drum_loop_mono_96k_resampled_to_48k() {
    run_case(Case {
        name: "drumloop_mono_96k_8s",
        rate: 96_000,
        signal: drum_loop(96_000, 8.0, 1),
        preview_rate: 48_000,
        preview_channels: 1,
        max_bytes: 100_000,
        min_correlation: Some(0.9),
        rms_tolerance_db: Some(1.5),
    });
}

#[test]
fn tones_stereo_96k_resampled_to_48k() {
    run_case(Case {
        name: "tones_stereo_96k_3s",
        rate: 96_000,
        signal: tones(96_000, 3.0, 2),
        preview_rate: 48_000,
        preview_channels: 2,
        max_bytes: 100_000,
        min_correlation: Some(0.95),
        rms_tolerance_db: Some(1.5),
    });
}

#[test]
fn tones_stereo_88k_resampled_to_44k() {
    run_case(Case {
        name: "tones_stereo_88k_6s",
        rate: 88_200,
        signal: tones(88_200, 6.0, 2),
        preview_rate: 44_100,
        preview_channels: 2,
        max_bytes: 100_000,
        min_correlation: Some(0.95),
        rms_tolerance_db: Some(1.5),
    });
}

#[test]
fn tones_mono_48k() {
    run_case(Case {
        name: "tones_mono_48k_3s",
        rate: 48_000,
        signal: tones(48_000, 3.0, 1),
        preview_rate: 48_000,
        preview_channels: 1,
        max_bytes: 100_000,
        min_correlation: Some(0.95),
        rms_tolerance_db: Some(1.5),
    });
}

#[test]
fn one_shot_stereo_192k_resampled_to_48k() {
    run_case(Case {
        name: "oneshot_stereo_192k_2s",
        rate: 192_000,
        signal: one_shot(192_000, 2.0, 2),
        preview_rate: 48_000,
        preview_channels: 2,
        max_bytes: 30_000,
        min_correlation: Some(0.95),
        rms_tolerance_db: Some(1.5),
    });
}

/// Six channels fold to mono (the mean of all channels).
#[test]
fn six_channels_fold_to_mono() {
    run_case(Case {
        name: "tones_6ch_48k_4s",
        rate: 48_000,
        signal: tones(48_000, 4.0, 6),
        preview_rate: 48_000,
        preview_channels: 1,
        max_bytes: 100_000,
        min_correlation: Some(0.95),
        rms_tolerance_db: Some(1.5),
    });
}

#[test]
fn ten_milliseconds_still_make_a_valid_file() {
    run_case(Case {
        name: "oneshot_stereo_44k_10ms",
        rate: 44_100,
        signal: one_shot(44_100, 0.01, 2),
        preview_rate: 44_100,
        preview_channels: 2,
        max_bytes: 10_000,
        min_correlation: Some(0.95),
        rms_tolerance_db: Some(3.0),
    });
}

#[test]
fn silence_makes_a_valid_silent_file() {
    run_case(Case {
        name: "silence_stereo_44k_3s",
        rate: 44_100,
        signal: silence(44_100, 3.0, 2),
        preview_rate: 44_100,
        preview_channels: 2,
        max_bytes: 10_000,
        min_correlation: None,
        rms_tolerance_db: None,
    });
}

/// Uncorrelated full-scale white noise is the worst case for size; it still stays under 100 KB.
/// (Its level drops by design: the encoder low-passes at about 14 kHz at this quality.)
#[test]
fn worst_case_white_noise_stays_under_100_kb() {
    run_case(Case {
        name: "whitenoise_stereo_48k_6s",
        rate: 48_000,
        signal: white_noise(48_000, 6.0, 2),
        preview_rate: 48_000,
        preview_channels: 2,
        max_bytes: 100_000,
        min_correlation: None,
        rms_tolerance_db: Some(3.0),
    });
}

// ---------------------------------------------------------------------------------------------
// Streaming, determinism, bad input

/// Feeds `planes` to a new encoder in packets of `packet` frames until it wants no more.
fn encode_in_packets(rate: u32, planes: &Planes, packet: usize) -> Vec<u8> {
    let mut encoder = PreviewEncoder::new(rate, planes.len() as u16).expect("encoder");
    let mut at = 0;
    while at < planes[0].len() {
        let end = (at + packet).min(planes[0].len());
        let slices: Vec<&[f32]> = planes.iter().map(|p| &p[at..end]).collect();
        if !encoder.add(&slices).expect("add") {
            break;
        }
        at = end;
    }
    encoder.finish().expect("finish")
}

/// The bytes do not depend on how the decoder happens to cut packets, with or without
/// resampling, cut or not.
#[test]
fn output_does_not_depend_on_packet_sizes() {
    for (rate, planes) in [(44_100, drum_loop(44_100, 6.0, 2)), (96_000, one_shot(96_000, 1.0, 2))] {
        let whole = encode_in_packets(rate, &planes, usize::MAX);
        for packet in [1, 17, 1000, 1024, 1152, 4096, 100_000] {
            assert!(encode_in_packets(rate, &planes, packet) == whole, "{rate} Hz, packets of {packet}");
        }
    }
}

/// After the cut, further packets are ignored, whatever their size.
#[test]
fn stops_taking_input_after_the_cut() {
    let planes = drum_loop(44_100, 6.0, 1);
    let mut encoder = PreviewEncoder::new(44_100, 1).expect("encoder");
    let limit = (PREVIEW_SECONDS * 44_100.0) as usize;
    // Exactly up to the end: still wants one more frame to know whether to fade.
    assert!(encoder.add(&[&planes[0][..limit]]).expect("add"));
    assert!(!encoder.add(&[&planes[0][limit..limit + 1]]).expect("add"));
    assert!(!encoder.add(&[&planes[0]]).expect("add after the cut"));
    let ogg = encoder.finish().expect("finish");
    let decoded = decode(ogg, "ogg", |_| {});
    assert_eq!(decoded.declared_frames, Some(limit as u64));
}

#[test]
fn non_finite_samples_do_not_break_the_encoder() {
    let mut planes = tones(44_100, 1.0, 2);
    for (i, x) in planes[0].iter_mut().enumerate().step_by(97) {
        *x = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30][i % 4];
    }
    let ogg = encode_in_packets(44_100, &planes, 1024);
    let decoded = decode(ogg, "ogg", |_| {});
    assert!(decoded.planes.iter().flatten().all(|x| x.is_finite()));
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    assert!(matches!(PreviewEncoder::new(0, 2), Err(PreviewError::UnsupportedSampleRate(0))));
    assert!(matches!(PreviewEncoder::new(999, 2), Err(PreviewError::UnsupportedSampleRate(999))));
    assert!(matches!(PreviewEncoder::new(400_000, 2), Err(PreviewError::UnsupportedSampleRate(400_000))));
    // An odd rate above what libvorbis takes, with no simple ratio to 44.1 or 48 kHz.
    assert!(matches!(PreviewEncoder::new(300_007, 2), Err(PreviewError::UnsupportedSampleRate(300_007))));
    assert!(matches!(PreviewEncoder::new(44_100, 0), Err(PreviewError::NoChannels)));

    let mut encoder = PreviewEncoder::new(44_100, 2).expect("encoder");
    let a = [0.1f32; 100];
    let b = [0.1f32; 99];
    assert!(matches!(encoder.add(&[&a]), Err(PreviewError::PlaneCount { expected: 2, got: 1 })));
    assert!(matches!(encoder.add(&[&a, &a, &a]), Err(PreviewError::PlaneCount { expected: 2, got: 3 })));
    assert!(matches!(encoder.add(&[]), Err(PreviewError::PlaneCount { expected: 2, got: 0 })));
    assert!(matches!(
        encoder.add(&[&a, &b]),
        Err(PreviewError::PlaneLength { channel: 1, expected: 100, got: 99 })
    ));
    // Empty packets are fine and change nothing.
    assert!(encoder.add(&[&[], &[]]).expect("empty packet"));
    // Nothing fed: an error, not an empty file.
    assert!(matches!(encoder.finish(), Err(PreviewError::Empty)));

    // A refused packet leaves the encoder usable.
    let mut encoder = PreviewEncoder::new(44_100, 2).expect("encoder");
    assert!(encoder.add(&[&a, &b]).is_err());
    assert!(encoder.add(&[&a, &a]).expect("good packet"));
    let ogg = encoder.finish().expect("finish");
    assert_eq!(decode(ogg, "ogg", |_| {}).declared_frames, Some(100));

    // The messages say what is wrong.
    let message = PreviewError::PlaneLength { channel: 1, expected: 100, got: 99 }.to_string();
    assert_eq!(message, "plane 1 of a packet has 99 samples but plane 0 has 100");
}

/// Odd rates the encoder takes as they are, and rates below 8 kHz.
#[test]
fn odd_rates_work() {
    for rate in [1_000u32, 8_000, 11_025, 22_050, 37_800, 95_904, 50_000, 352_800] {
        let planes = tones(rate, 0.5, 2);
        let mut encoder = PreviewEncoder::new(rate, 2).expect("encoder");
        let preview_rate = encoder.preview_rate();
        let slices: Vec<&[f32]> = planes.iter().map(Vec::as_slice).collect();
        encoder.add(&slices).expect("add");
        let decoded = decode(encoder.finish().expect("finish"), "ogg", |_| {});
        assert_eq!(decoded.rate, preview_rate);
        let expected = (planes[0].len() as u64 * u64::from(preview_rate)).div_ceil(u64::from(rate));
        assert_eq!(decoded.declared_frames, Some(expected), "{rate} Hz");
        println!("RATE {rate} Hz -> preview {preview_rate} Hz");
    }
}

/// Random formats, lengths and packet sizes (empty packets included): never a panic, always a
/// stream of the declared length.
#[test]
fn random_formats_and_packets() {
    let mut random = Noise(0xdead_beef_cafe_f00d);
    let mut pick = |n: usize| ((random.uniform() + 1.0) / 2.0 * n as f64) as usize % n;
    let rates = [8_000u32, 22_050, 44_100, 48_000, 64_000, 88_200, 96_000, 176_400, 192_000];
    for round in 0..24 {
        let rate = rates[pick(rates.len())];
        let channels = 1 + pick(8);
        let seconds = [0.001, 0.05, 0.3, 1.0, 4.97, 5.0, 5.03, 7.0][pick(8)];
        let planes = drum_loop(rate, seconds, channels);
        let mut encoder = PreviewEncoder::new(rate, channels as u16).expect("encoder");
        let mut at = 0;
        while at < planes[0].len() {
            let len = [0, 1, 7, 576, 1152, 4096, 65_536][pick(7)];
            let end = (at + len).min(planes[0].len());
            let packet: Vec<&[f32]> = planes.iter().map(|p| &p[at..end]).collect();
            if !encoder.add(&packet).expect("add") {
                break;
            }
            at = end;
        }
        let preview_rate = encoder.preview_rate();
        let ogg = encoder.finish().expect("finish");
        let decoded = decode(ogg, "ogg", |_| {});
        let limit = (f64::from(PREVIEW_SECONDS) * f64::from(rate)).round() as u64;
        let kept = (planes[0].len() as u64).min(limit);
        let expected = (kept * u64::from(preview_rate)).div_ceil(u64::from(rate));
        assert_eq!(
            decoded.declared_frames,
            Some(expected),
            "round {round}: {rate} Hz x{channels}, {seconds} s"
        );
        assert_eq!(decoded.planes.len(), if channels == 2 { 2 } else { 1 });
    }
}
