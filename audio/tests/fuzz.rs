//! Mutation fuzzing of the audio decoders: every file a producer publishes, or a
//! peer's preview, goes through `analyze_file`. Real files (WAV written here; FLAC,
//! Ogg Vorbis and MP3 made from it by ffmpeg, which the test set-up installs) are
//! mutated (bit flips, truncation, big length fields, spliced ranges) and analysed;
//! each must give a result or an error, never a panic, and within a time bound.
//! Inputs that made a decoder panic (symphonia's WAV reader on some channel masks,
//! its AIFF reader on a zero sample rate; `analyze_file` catches such panics) are
//! kept in `tests/fuzz-corpus/` and run every time. The run is bounded by rounds: `SMPL_FUZZ_ROUNDS=20000 cargo test -p smpl-audio
//! --release --test fuzz` runs a long one, `SMPL_FUZZ_SEED` replays a printed seed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use smpl_testkit::rng::Xorshift;

/// The longest one analysis of a short mutated file may take (debug build, busy machine).
const SLOW: Duration = Duration::from_secs(5);

fn write_seed_wav(path: &Path, bits: u16, float: bool) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: bits,
        sample_format: if float { hound::SampleFormat::Float } else { hound::SampleFormat::Int },
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..22_050u32 {
        let x =
            (i as f32 * 2.0 * std::f32::consts::PI * 110.0 / 44_100.0).sin() * (-(i as f32) / 8000.0).exp();
        for _ in 0..2 {
            if float {
                writer.write_sample(x).unwrap();
            } else {
                let max = (1i64 << (bits - 1)) - 1;
                writer.write_sample((x * max as f32) as i32).unwrap();
            }
        }
    }
    writer.finalize().unwrap();
}

/// Seed files: WAV at three depths, and the other formats where ffmpeg is here.
fn seeds(dir: &Path) -> Vec<(Vec<u8>, &'static str)> {
    let wav = dir.join("seed.wav");
    write_seed_wav(&wav, 16, false);
    let mut seeds = vec![(std::fs::read(&wav).unwrap(), "wav")];
    for (bits, float) in [(24, false), (32, true)] {
        let path = dir.join(format!("seed{bits}.wav"));
        write_seed_wav(&path, bits, float);
        seeds.push((std::fs::read(&path).unwrap(), "wav"));
    }
    for ext in ["flac", "ogg", "mp3", "aiff"] {
        let out = dir.join(format!("seed.{ext}"));
        let made = Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y", "-i"])
            .arg(&wav)
            .arg(&out)
            .status()
            .is_ok_and(|s| s.success());
        if made {
            seeds.push((std::fs::read(&out).unwrap(), ext));
        } else {
            println!("no {ext} seed: ffmpeg is not installed (scripts/setup.sh installs it)");
        }
    }
    seeds
}

fn mutate(rng: &mut Xorshift, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..1 + rng.below(6) {
        let len = bytes.len().max(1) as u64;
        // Headers hold the lengths and formats: aim half the changes at the start.
        let at = if rng.below(2) == 0 { rng.below(len.min(256)) } else { rng.below(len) } as usize;
        match rng.below(6) {
            0 => {
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 => {
                if let Some(b) = bytes.get_mut(at) {
                    *b = [0u8, 0xff, 0x7f, 0x80, 0x01][rng.below(5) as usize];
                }
            }
            2 => bytes.truncate(rng.below(len) as usize),
            3 if at + 4 <= bytes.len() => {
                let big = [u32::MAX, 1 << 31, 0x7fff_ffff, 0][rng.below(4) as usize];
                let value = if rng.below(2) == 0 { big.to_le_bytes() } else { big.to_be_bytes() };
                bytes[at..at + 4].copy_from_slice(&value);
            }
            4 if !other.is_empty() => {
                let from = rng.below(other.len() as u64) as usize;
                let take = (rng.below(4096) as usize).min(other.len() - from);
                bytes.splice(
                    at.min(bytes.len())..at.min(bytes.len()),
                    other[from..from + take].iter().copied(),
                );
            }
            _ => {
                let end = (at + rng.below(2048) as usize).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
        }
    }
    bytes
}

/// Inputs that once made a decoder panic, kept in `tests/fuzz-corpus/`: each is
/// refused with an error now.
#[test]
fn the_corpus_of_past_finds_is_refused_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    assert!(!files.is_empty());
    for file in files {
        let err = smpl_audio::analyze_file(&file).expect_err("a past find is not audio");
        println!("{}: {err}", file.display());
    }
}

#[test]
fn analysis_survives_mutated_audio_files() {
    let rounds: u64 = std::env::var("SMPL_FUZZ_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(200);
    let mut rng = match std::env::var("SMPL_FUZZ_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => Xorshift(seed),
        None => Xorshift::from_clock(),
    };
    println!("SMPL_FUZZ_SEED={} SMPL_FUZZ_ROUNDS={rounds}", rng.0);
    let dir = tempfile::tempdir().unwrap();
    let seeds = seeds(dir.path());
    for (bytes, ext) in &seeds {
        let path = dir.path().join(format!("whole.{ext}"));
        std::fs::write(&path, bytes).unwrap();
        smpl_audio::analyze_file(&path).unwrap_or_else(|e| panic!("the {ext} seed does not analyse: {e}"));
    }
    let (mut ok, mut refused) = (0, 0);
    let start = Instant::now();
    for round in 0..rounds {
        let (input, ext) = &seeds[rng.below(seeds.len() as u64) as usize];
        let (other, _) = &seeds[rng.below(seeds.len() as u64) as usize];
        let mutated = mutate(&mut rng, input, other);
        let path: PathBuf = dir.path().join(format!("mutated-{round}.{ext}"));
        std::fs::write(&path, &mutated).unwrap();
        let began = Instant::now();
        match smpl_audio::analyze_file(&path) {
            Ok(_) => ok += 1,
            Err(e) if e.to_string().contains("the decoder failed") => {
                // Caught, but worth keeping: the input goes to the corpus.
                let keep = std::env::temp_dir().join(format!("smpl-fuzz-find-{round}.{ext}"));
                std::fs::copy(&path, &keep).unwrap();
                println!("a decoder panicked (caught): {e}; input kept at {}", keep.display());
                refused += 1;
            }
            Err(_) => refused += 1,
        }
        let took = began.elapsed();
        assert!(took < SLOW, "analysing a mutated {ext} of {} bytes took {took:?}", mutated.len());
        std::fs::remove_file(&path).unwrap();
    }
    println!(
        "{rounds} mutated files from {} seeds: {ok} analysed, {refused} refused, in {:.1} s",
        seeds.len(),
        start.elapsed().as_secs_f64()
    );
}
