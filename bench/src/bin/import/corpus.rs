//! The two deterministic corpora: a folder of long WAV files adding up to about 1 GiB,
//! and a folder of 1,000 small one-shots and short loops adding up to about 200 MB.
//!
//! Every file depends only on its index (a seeded xorshift, no clock, no thread
//! order), so two runs on two machines write the same bytes. A `corpus.json` written
//! last marks a complete folder; a folder whose marker matches is reused.

use std::f32::consts::TAU;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Bumped whenever the generator changes what it writes.
const GENERATOR_VERSION: u32 = 1;
const MARKER: &str = "corpus.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub generator: u32,
    pub kind: CorpusKind,
    /// Target total size in bytes.
    pub bytes: u64,
    pub files: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CorpusKind {
    /// Long stereo 16-bit 44.1 kHz files: pads, drum loops, basses, noise beds.
    Long,
    /// Short one-shots and loops, mono and stereo, 16 and 24 bit, 44.1 and 48 kHz.
    Small,
}

/// One file of a corpus.
pub struct Entry {
    pub path: PathBuf,
    pub bytes: u64,
}

pub struct Corpus {
    pub name: String,
    pub dir: PathBuf,
    pub files: Vec<Entry>,
}

impl Corpus {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

impl Spec {
    pub fn long(mib: u64) -> Spec {
        // ~10.7 MB per file (about 61 s of stereo CD audio): ~100 files per GiB.
        let bytes = mib * 1024 * 1024;
        Spec {
            generator: GENERATOR_VERSION,
            kind: CorpusKind::Long,
            bytes,
            files: bytes.div_ceil(10_737_418) as usize,
        }
    }

    pub fn small(files: usize) -> Spec {
        Spec { generator: GENERATOR_VERSION, kind: CorpusKind::Small, bytes: files as u64 * 200_000, files }
    }
}

/// Writes the corpus described by `spec` into `dir` unless a complete one is there.
pub fn ensure(name: &str, dir: &Path, spec: &Spec, threads: usize) -> Result<Corpus> {
    let marker = dir.join(MARKER);
    let existing = std::fs::read(&marker).ok().and_then(|b| serde_json::from_slice::<Spec>(&b).ok());
    if existing.as_ref() != Some(spec) {
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("removing stale corpus {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let started = std::time::Instant::now();
        eprintln!("generating corpus {name} in {} ...", dir.display());
        generate(dir, spec, threads)?;
        std::fs::write(&marker, serde_json::to_vec_pretty(spec)?)?;
        eprintln!("  done in {:.1} s", started.elapsed().as_secs_f64());
    } else {
        eprintln!("reusing corpus {name} in {}", dir.display());
    }
    let mut files = Vec::new();
    for i in 0..spec.files {
        let path = dir.join(file_name(spec.kind, i));
        let bytes =
            std::fs::metadata(&path).with_context(|| format!("corpus file {}", path.display()))?.len();
        files.push(Entry { path, bytes });
    }
    Ok(Corpus { name: name.to_string(), dir: dir.to_path_buf(), files })
}

fn generate(dir: &Path, spec: &Spec, threads: usize) -> Result<()> {
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= spec.files {
                            return Ok(());
                        }
                        let path = dir.join(file_name(spec.kind, i));
                        if let Some(parent) = path.parent() {
                            std::fs::create_dir_all(parent)?;
                        }
                        match spec.kind {
                            CorpusKind::Long => write_long(&path, i, spec),
                            CorpusKind::Small => write_small(&path, i),
                        }
                        .with_context(|| format!("writing {}", path.display()))?;
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().map_err(|_| anyhow::anyhow!("generator thread panicked"))?)
    })
}

const NOTES: [&str; 12] = ["C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B"];

fn file_name(kind: CorpusKind, i: usize) -> String {
    let mut rng = Rng::new(i as u64 ^ 0x5EED);
    match kind {
        CorpusKind::Long => {
            let bpm = 70 + rng.below(90);
            let note = NOTES[rng.below(12) as usize];
            let (folder, what) = match i % 5 {
                0 => ("Pads", "Pad"),
                1 => ("Drums", "Drum_Loop"),
                2 => ("Textures", "Noise_Bed"),
                3 => ("Bass", "Bass_Line"),
                _ => ("Stems", "Full_Mix"),
            };
            format!("{folder}/{what}_{bpm}bpm_{note}min_{i:03}.wav")
        }
        CorpusKind::Small => {
            let what = ["Kick", "Snare", "Hat", "Clap", "Perc", "Stab", "Loop"][i % 7];
            format!("{what}s/{what}_{i:04}.wav")
        }
    }
}

/// Frames such that a file of `channels` × `bits` PCM takes about `bytes` bytes.
fn frames_for(bytes: u64, channels: u16, bits: u16) -> u32 {
    (bytes.saturating_sub(44) / (channels as u64 * bits as u64 / 8)) as u32
}

fn write_long(path: &Path, i: usize, spec: &Spec) -> Result<()> {
    let per_file = spec.bytes / spec.files as u64;
    let last = i + 1 == spec.files;
    let bytes = if last { spec.bytes - per_file * (spec.files as u64 - 1) } else { per_file };
    let mut rng = Rng::new(i as u64 * 7919 + 1);
    let rate = 44_100u32;
    let frames = frames_for(bytes, 2, 16);
    let bpm = 70.0 + rng.below(90) as f32;
    let root = 40.0 * 2f32.powf(rng.below(24) as f32 / 12.0);
    let mut voice = Voice::new(i % 5, rate, bpm, root, &mut rng);
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec)?;
    {
        let mut w = writer.get_i16_writer(frames * 2);
        for n in 0..frames {
            let (l, r) = voice.next(n, &mut rng);
            w.write_sample(to_i16(l));
            w.write_sample(to_i16(r));
        }
        w.flush()?;
    }
    writer.finalize()?;
    Ok(())
}

fn write_small(path: &Path, i: usize) -> Result<()> {
    let mut rng = Rng::new(i as u64 * 104_729 + 3);
    let bytes = 100_000 + rng.below(200_001);
    let channels = if rng.below(3) == 0 { 1 } else { 2 };
    let bits = if rng.below(4) == 0 { 24 } else { 16 };
    let rate = if rng.below(3) == 0 { 48_000 } else { 44_100 };
    let frames = frames_for(bytes, channels, bits);
    let bpm = 80.0 + rng.below(80) as f32;
    let root = 50.0 * 2f32.powf(rng.below(24) as f32 / 12.0);
    // One-shots (kick, snare, hat, clap, perc, stab) decay; the loops repeat.
    let mut voice = Voice::new([1, 2, 2, 2, 1, 0, 4][i % 7], rate, bpm, root, &mut rng);
    let decay = if i % 7 == 6 { 0.0 } else { 3.0 + rng.below(20) as f32 };
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec)?;
    let full = if bits == 16 { 32_767.0 } else { 8_388_607.0 };
    for n in 0..frames {
        let env = (-decay * n as f32 / rate as f32).exp();
        let (l, r) = voice.next(n, &mut rng);
        if channels == 1 {
            writer.write_sample(((l + r) * 0.5 * env * full) as i32)?;
        } else {
            writer.write_sample((l * env * full) as i32)?;
            writer.write_sample((r * env * full) as i32)?;
        }
    }
    writer.finalize()?;
    Ok(())
}

fn to_i16(x: f32) -> i16 {
    (x.clamp(-1.0, 1.0) * 32_767.0) as i16
}

/// A small synthesizer: one of five textures, with a slow stereo movement.
struct Voice {
    texture: usize,
    rate: f32,
    beat: u32,
    freqs: [f32; 4],
    phases: [f32; 4],
    lowpass: f32,
    lp: (f32, f32),
    kick_phase: f32,
    gain: f32,
}

impl Voice {
    fn new(texture: usize, rate: u32, bpm: f32, root: f32, rng: &mut Rng) -> Voice {
        let chord = [0.0, 3.0 + rng.below(2) as f32, 7.0, 10.0 + rng.below(3) as f32];
        let freqs = chord.map(|semi| root * 2f32.powf(semi / 12.0) * 2.0);
        Voice {
            texture,
            rate: rate as f32,
            beat: (60.0 / bpm * rate as f32) as u32,
            freqs,
            phases: [0.0; 4],
            lowpass: 0.02 + rng.below(100) as f32 / 1000.0,
            lp: (0.0, 0.0),
            kick_phase: 0.0,
            gain: 0.3 + rng.below(50) as f32 / 100.0,
        }
    }

    fn next(&mut self, n: u32, rng: &mut Rng) -> (f32, f32) {
        let t = n as f32 / self.rate;
        let pan = 0.5 + 0.4 * (TAU * 0.05 * t).sin();
        let mono = match self.texture {
            0 => {
                // A four-note chord with a slow swell.
                let mut s = 0.0;
                for k in 0..4 {
                    self.phases[k] = (self.phases[k] + self.freqs[k] / self.rate).fract();
                    s += (TAU * self.phases[k]).sin();
                }
                s * 0.2 * (0.6 + 0.4 * (TAU * 0.1 * t).sin())
            }
            1 => {
                // Kick on every beat, noise hat on the off-beat.
                let pos = n % self.beat;
                let since = pos as f32 / self.rate;
                let f = 45.0 + 120.0 * (-since * 30.0).exp();
                self.kick_phase = (self.kick_phase + f / self.rate).fract();
                let kick = (TAU * self.kick_phase).sin() * (-since * 8.0).exp();
                let half = (n + self.beat / 2) % self.beat;
                let hat = rng.noise() * (-(half as f32 / self.rate) * 60.0).exp();
                kick * 0.8 + hat * 0.2
            }
            2 => {
                // Low-passed noise with a breathing envelope.
                let x = rng.noise();
                self.lp.0 += self.lowpass * (x - self.lp.0);
                self.lp.0 * 3.0 * (0.5 + 0.5 * (TAU * 0.2 * t).sin())
            }
            3 => {
                // A filtered saw bass following the beat.
                let step = (n / self.beat.max(1)) as usize % 4;
                self.phases[0] = (self.phases[0] + self.freqs[step] * 0.25 / self.rate).fract();
                let saw = 2.0 * self.phases[0] - 1.0;
                self.lp.0 += 0.08 * (saw - self.lp.0);
                self.lp.1 += 0.08 * (self.lp.0 - self.lp.1);
                self.lp.1 * 0.7
            }
            _ => {
                // Everything at once, quieter.
                let pos = n % self.beat;
                let since = pos as f32 / self.rate;
                self.kick_phase = (self.kick_phase + 55.0 / self.rate).fract();
                let kick = (TAU * self.kick_phase).sin() * (-since * 10.0).exp();
                self.phases[1] = (self.phases[1] + self.freqs[1] / self.rate).fract();
                let pad = (TAU * self.phases[1]).sin();
                kick * 0.5 + pad * 0.2 + rng.noise() * 0.05
            }
        };
        let s = mono * self.gain;
        (s * (1.0 - pan) * 1.6, s * pan * 1.6)
    }
}

/// xorshift64*: fast, deterministic, good enough for test signals.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in [-1, 1).
    fn noise(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}
