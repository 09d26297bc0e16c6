//! Deterministic WAV files written with hound: every sample comes from a formula, so
//! a file is the same bytes on every run and machine.
//!
//! Two families: [`write_fn`] and the tones built on it write the mono 16-bit 44.1 kHz
//! one-shots that packs are made of, from a function of time; the others write any
//! rate, channel count and sample format, from a function of the frame index, for the
//! analysis tests. Every writer creates the file's folder.

use std::f64::consts::PI;
use std::path::Path;

/// The rate of [`write_fn`]'s files.
pub const RATE: u32 = 44_100;

/// The format of `channels` channels at `rate` Hz, `bits` wide, integer or float.
pub fn spec(channels: u16, rate: u32, bits: u16, format: hound::SampleFormat) -> hound::WavSpec {
    hound::WavSpec { channels, sample_rate: rate, bits_per_sample: bits, sample_format: format }
}

/// A WAV of `frames` frames in `spec`'s format whose sample of channel `c` in frame `i`
/// is `sample(i, c)`; creates the file's folder. Every writer here is this one with a
/// formula.
pub fn write_frames<S: hound::Sample>(
    path: &Path,
    spec: hound::WavSpec,
    frames: u32,
    sample: impl Fn(u32, u16) -> S,
) {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).unwrap();
    }
    let channels = spec.channels;
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..frames {
        for c in 0..channels {
            writer.write_sample(sample(i, c)).unwrap();
        }
    }
    writer.finalize().unwrap();
}

/// A mono 16-bit 44.1 kHz WAV of `seconds` whose samples `f(t)` gives (t in seconds,
/// -1..1, clamped, scaled to ±30,000).
pub fn write_fn(path: &Path, seconds: f32, f: impl Fn(f32) -> f32) {
    let frames = (RATE as f32 * seconds) as u32;
    write_i16(path, 1, RATE, frames, |i, _| (f(i as f32 / RATE as f32).clamp(-1.0, 1.0) * 30_000.0) as i16);
}

/// A drum-like hit: a sine at `freq` Hz decaying as e^(−decay·t).
pub fn write_hit(path: &Path, seconds: f32, freq: f32, decay: f32) {
    write_fn(path, seconds, |t| (t * freq * std::f32::consts::TAU).sin() * (-t * decay).exp());
}

/// A steady sine at `freq` Hz with peak `amplitude` (1.0 = full scale).
pub fn write_tone(path: &Path, seconds: f32, freq: f32, amplitude: f32) {
    write_fn(path, seconds, |t| (t * freq * std::f32::consts::TAU).sin() * amplitude);
}

/// A 16-bit WAV whose sample `i` of channel `c` is `sample(i, c)`.
pub fn write_i16(path: &Path, channels: u16, rate: u32, frames: u32, sample: impl Fn(u32, u16) -> i16) {
    write_frames(path, spec(channels, rate, 16, hound::SampleFormat::Int), frames, sample);
}

/// An integer PCM sine of peak `amplitude` (linear, 1.0 = full scale) in every channel,
/// `bits` wide (8, 16, 24 or 32).
pub fn write_sine_int(
    path: &Path,
    bits: u16,
    channels: u16,
    rate: u32,
    frames: u32,
    freq: f64,
    amplitude: f64,
) {
    let scale = 2f64.powi(i32::from(bits) - 1);
    let max = scale - 1.0;
    let value = |i: u32| {
        let x = amplitude * (2.0 * PI * freq * f64::from(i) / f64::from(rate)).sin();
        (x * scale).round().clamp(-scale, max) as i32
    };
    let format = spec(channels, rate, bits, hound::SampleFormat::Int);
    if bits == 8 {
        write_frames(path, format, frames, |i, _| value(i) as i8);
    } else {
        write_frames(path, format, frames, |i, _| value(i));
    }
}

/// A 32-bit float sine of peak `amplitude` in every channel.
pub fn write_sine_float(path: &Path, channels: u16, rate: u32, frames: u32, freq: f64, amplitude: f64) {
    write_float(path, channels, rate, frames, |i| {
        amplitude * (2.0 * PI * freq * f64::from(i) / f64::from(rate)).sin()
    });
}

/// A 32-bit float WAV with the same signal `f(frame)` in every channel.
pub fn write_float(path: &Path, channels: u16, rate: u32, frames: u32, f: impl Fn(u32) -> f64) {
    write_frames(path, spec(channels, rate, 32, hound::SampleFormat::Float), frames, |i, _| f(i) as f32);
}

/// A 24-bit PCM WAV of one plane of samples (-1..1) per channel, all as long as the first.
pub fn write_planes_24(path: &Path, rate: u32, planes: &[Vec<f32>]) {
    let format = spec(planes.len() as u16, rate, 24, hound::SampleFormat::Int);
    write_frames(path, format, planes[0].len() as u32, |i, c| {
        let v = (f64::from(planes[usize::from(c)][i as usize]) * 8_388_607.0).round();
        v.clamp(-8_388_608.0, 8_388_607.0) as i32
    });
}

/// A steady mono drum pattern at `bpm`: a kick on every beat and a hat on every
/// sixteenth, so that every part of it is as busy as any other.
pub fn write_beat(path: &Path, rate: u32, seconds: f64, bpm: f64) {
    let sixteenth = 60.0 / bpm / 4.0;
    let frames = (seconds * f64::from(rate)) as u32;
    write_i16(path, 1, rate, frames, |i, _| {
        let t = f64::from(i) / f64::from(rate);
        let step = (t / sixteenth).floor();
        let since = t - step * sixteenth;
        let hat =
            0.2 * (-since * 40.0).exp() * ((i.wrapping_mul(2_654_435_761) >> 16) as f64 / 32_768.0 - 1.0);
        let beat = 4.0 * sixteenth;
        let since_beat = t - (t / beat).floor() * beat;
        let kick = 0.6 * (-since_beat * 12.0).exp() * (2.0 * PI * 55.0 * since_beat).sin();
        ((hat + kick) * 32_000.0) as i16
    });
}
