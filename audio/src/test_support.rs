//! Test helpers: the kit's deterministic audio (`smpl_testkit::wav`, written with hound) under
//! the names these tests use, and external tools that must exist.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

pub use smpl_testkit::rng::Xorshift as Noise;
pub use smpl_testkit::wav::{
    write_beat, write_float, write_i16 as write_wav_i16, write_planes_24, write_sine_float, write_sine_int,
};

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
