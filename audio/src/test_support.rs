//! Test helpers: deterministic audio written with hound, and external tools that must exist.

use std::f64::consts::PI;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

/// A small deterministic noise source (xorshift), uniform in -1..1.
pub struct Noise(pub u64);

impl Noise {
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// Writes a 16-bit WAV whose sample `i` of channel `c` is `sample(i, c)`.
pub fn write_wav_i16(path: &Path, channels: u16, rate: u32, frames: u32, sample: impl Fn(u32, u16) -> i16) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..frames {
        for c in 0..channels {
            writer.write_sample(sample(i, c)).unwrap();
        }
    }
    writer.finalize().unwrap();
}

/// Writes an integer PCM sine of peak `amplitude` (linear, 1.0 = full scale) in every channel.
pub fn write_sine_int(
    path: &Path,
    bits: u16,
    channels: u16,
    rate: u32,
    frames: u32,
    freq: f64,
    amplitude: f64,
) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: hound::SampleFormat::Int,
    };
    let scale = 2f64.powi(i32::from(bits) - 1);
    let max = scale - 1.0;
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..frames {
        let x = amplitude * (2.0 * PI * freq * f64::from(i) / f64::from(rate)).sin();
        let s = (x * scale).round().clamp(-scale, max) as i32;
        for _ in 0..channels {
            if bits == 8 {
                writer.write_sample(s as i8).unwrap();
            } else {
                writer.write_sample(s).unwrap();
            }
        }
    }
    writer.finalize().unwrap();
}

/// Writes a 32-bit float sine of peak `amplitude` in every channel.
pub fn write_sine_float(path: &Path, channels: u16, rate: u32, frames: u32, freq: f64, amplitude: f64) {
    write_float(path, channels, rate, frames, |i| {
        amplitude * (2.0 * PI * freq * f64::from(i) / f64::from(rate)).sin()
    });
}

/// Writes a 32-bit float WAV with the same signal `f(frame)` in every channel.
pub fn write_float(path: &Path, channels: u16, rate: u32, frames: u32, f: impl Fn(u32) -> f64) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..frames {
        let x = f(i) as f32;
        for _ in 0..channels {
            writer.write_sample(x).unwrap();
        }
    }
    writer.finalize().unwrap();
}

/// Writes a steady mono drum pattern: a kick on every beat and a hat on every sixteenth, so
/// that every part of it is as busy as any other.
pub fn write_beat(path: &Path, rate: u32, seconds: f64, bpm: f64) {
    let sixteenth = 60.0 / bpm / 4.0;
    let frames = (seconds * f64::from(rate)) as u32;
    write_wav_i16(path, 1, rate, frames, |i, _| {
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

/// Cuts a file to `len` bytes.
pub fn truncate(path: &Path, len: u64) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(len).unwrap();
}

/// Runs an external tool the test depends on; a missing tool fails the test, it never skips.
pub fn run_tool<S: AsRef<OsStr>>(tool: &str, apt_packages: &str, args: &[S]) -> String {
    let output = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("this test needs `{tool}` ({e}); install it: apt-get install -y {apt_packages}")
    });
    assert!(
        output.status.success(),
        "{tool} {:?} failed: {}",
        args.iter().map(|a| a.as_ref().to_string_lossy()).collect::<Vec<_>>(),
        String::from_utf8_lossy(&output.stderr)
    );
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Runs sox (with the MP3/Vorbis format handlers that `libsox-fmt-all` brings).
pub fn sox<S: AsRef<OsStr>>(args: &[S]) -> String {
    run_tool("sox", "sox libsox-fmt-all", args)
}

/// How many frames ffmpeg decodes from `path` (after the gapless trimming it applies).
pub fn ffmpeg_decoded_frames(path: &Path) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("decoded.wav");
    let args: [&OsStr; 8] = [
        "-v".as_ref(),
        "error".as_ref(),
        "-i".as_ref(),
        path.as_os_str(),
        "-c:a".as_ref(),
        "pcm_f32le".as_ref(),
        "-y".as_ref(),
        wav.as_os_str(),
    ];
    run_tool("ffmpeg", "ffmpeg", &args);
    u64::from(hound::WavReader::open(&wav).unwrap().duration())
}

/// ffmpeg's `ebur128` integrated loudness of `path`; `None` where ffmpeg prints its floor of
/// -70 LUFS (nothing measurable).
pub fn ffmpeg_lufs(path: &Path) -> Option<f32> {
    let args: [&OsStr; 9] = [
        "-nostats".as_ref(),
        "-i".as_ref(),
        path.as_os_str(),
        "-map".as_ref(),
        "0:a".as_ref(),
        "-af".as_ref(),
        "ebur128".as_ref(),
        "-f".as_ref(),
        "null".as_ref(),
    ];
    let mut args = args.to_vec();
    args.push("-".as_ref());
    let out = run_tool("ffmpeg", "ffmpeg", &args);
    let summary = &out[out.rfind("Summary:").expect("ffmpeg ebur128 printed no summary")..];
    let value: f32 = summary
        .lines()
        .find_map(|l| l.trim().strip_prefix("I:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("no integrated loudness in ffmpeg's summary");
    (value > -70.0).then_some(value)
}
