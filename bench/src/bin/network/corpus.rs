//! The two packs every tool moves: about 100 long WAV files adding up to 1 GiB, and
//! 1,000 short one-shots and loops adding up to about 200 MB.
//!
//! Real WAV files (hound), deterministic: every file depends only on the pack kind
//! and its index (a seeded xorshift; no clock, no thread order), so two runs write
//! the same bytes. A marker `<folder>.json` next to the folder (not in it: every
//! tool sends the whole folder), written last, marks a complete folder; a folder
//! whose marker matches is reused, anything else is rewritten.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Bumped whenever the generator changes what it writes.
const GENERATOR: u32 = 1;
const LONG_FILE_BYTES: u64 = 10_737_418;
const SMALL_MEAN_BYTES: u64 = 200_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// Stereo 16-bit 44.1 kHz stems of about a minute.
    Long,
    /// Mono and stereo, 16 and 24 bit, 44.1 and 48 kHz one-shots and loops.
    Small,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    pub generator: u32,
    pub kind: Kind,
    pub files: usize,
}

impl Spec {
    /// `mib` MiB of long files, ~10.7 MB each (100 for 1 GiB).
    pub fn long(mib: u64) -> Spec {
        Spec {
            generator: GENERATOR,
            kind: Kind::Long,
            files: ((mib << 20) / LONG_FILE_BYTES).max(1) as usize,
        }
    }

    pub fn small(files: usize) -> Spec {
        Spec { generator: GENERATOR, kind: Kind::Small, files }
    }
}

/// A generated pack on disk.
#[derive(Clone, Debug)]
pub struct Pack {
    pub name: &'static str,
    pub dir: PathBuf,
    pub spec: Spec,
    /// Relative path (with `/`) and size of every file.
    pub files: Vec<(String, u64)>,
}

impl Pack {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|(_, b)| b).sum()
    }

    /// A short description for tables: `100 files, 1074 MB`.
    pub fn describe(&self) -> String {
        format!("{} files, {:.0} MB", self.files.len(), self.bytes() as f64 / 1e6)
    }
}

struct Xorshift(u64);

impl Xorshift {
    fn new(seed: u64) -> Xorshift {
        Xorshift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// The layout of one file: name, channels, bits, rate, frames.
struct Layout {
    name: String,
    channels: u16,
    bits: u16,
    rate: u32,
    frames: u64,
}

const FOLDERS: &[&str] = &["Kicks", "Snares", "Hats", "Percussion", "Bass", "Keys", "FX", "Loops"];
const NOTES: &[&str] = &["C", "Cs", "D", "Eb", "E", "F", "Fs", "G", "Ab", "A", "Bb", "B"];

fn layout(spec: &Spec, index: usize) -> Layout {
    let mut rng = Xorshift::new(0x5eed_0000 + index as u64 * 7919 + spec.kind as u64);
    match spec.kind {
        Kind::Long => {
            let bpm = 80 + rng.below(80);
            let note = NOTES[rng.below(12) as usize];
            Layout {
                name: format!("Stems/Stem_{index:03}_{bpm}bpm_{note}.wav"),
                channels: 2,
                bits: 16,
                rate: 44_100,
                frames: (LONG_FILE_BYTES - 44) / 4,
            }
        }
        Kind::Small => {
            let folder = FOLDERS[index % FOLDERS.len()];
            let channels = 1 + rng.below(2) as u16;
            let bits = if rng.below(4) == 0 { 24 } else { 16 };
            let rate = if rng.below(3) == 0 { 48_000 } else { 44_100 };
            // Sizes uniform in [20 KB, 380 KB]: a 200 KB mean.
            let bytes = 20_000 + rng.below(2 * (SMALL_MEAN_BYTES - 20_000));
            let frames = bytes / (u64::from(channels) * u64::from(bits / 8));
            Layout { name: format!("{folder}/{folder}_{index:04}.wav"), channels, bits, rate, frames }
        }
    }
}

/// Writes the pack described by `spec` into `dir` unless a complete one is there.
pub fn ensure(name: &'static str, dir: &Path, spec: &Spec) -> Result<Pack> {
    let layouts: Vec<Layout> = (0..spec.files).map(|i| layout(spec, i)).collect();
    let marker = dir.with_extension("json");
    let existing = std::fs::read(&marker).ok().and_then(|b| serde_json::from_slice::<Spec>(&b).ok());
    if existing.as_ref() == Some(spec) {
        return scanned(name, dir, spec, &layouts);
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing stale corpus {}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&marker);
    let started = std::time::Instant::now();
    eprintln!("generating the {name} pack in {} ...", dir.display());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let layouts = &layouts;
                scope.spawn(move || -> Result<()> {
                    for (index, layout) in layouts.iter().enumerate().skip(t).step_by(threads) {
                        write(&dir.join(&layout.name), layout, index)?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().map_err(|_| anyhow::anyhow!("generator panicked"))?)
    })?;
    // The marker goes last: the folder counts as complete only with it.
    std::fs::write(marker, serde_json::to_vec_pretty(spec)?)?;
    let pack = scanned(name, dir, spec, &layouts)?;
    eprintln!("  {} in {:.1} s", pack.describe(), started.elapsed().as_secs_f64());
    Ok(pack)
}

/// The pack with the sizes its files have on disk.
fn scanned(name: &'static str, dir: &Path, spec: &Spec, layouts: &[Layout]) -> Result<Pack> {
    let mut files = Vec::with_capacity(layouts.len());
    for layout in layouts {
        let path = dir.join(&layout.name);
        let len = std::fs::metadata(&path).with_context(|| format!("{} is missing", path.display()))?.len();
        files.push((layout.name.clone(), len));
    }
    Ok(Pack { name, dir: dir.to_path_buf(), spec: spec.clone(), files })
}

/// A decaying tone with harmonics and noise: cheap to make, not compressible, and
/// a file any audio tool opens.
fn write(path: &Path, layout: &Layout, index: usize) -> Result<()> {
    let parent = path.parent().context("file without folder")?;
    std::fs::create_dir_all(parent)?;
    let spec = hound::WavSpec {
        channels: layout.channels,
        sample_rate: layout.rate,
        bits_per_sample: layout.bits,
        sample_format: hound::SampleFormat::Int,
    };
    let file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut writer = hound::WavWriter::new(file, spec)?;
    let mut rng = Xorshift::new(index as u64 + 1);
    let freq = 40.0 + rng.below(800) as f32;
    let step = freq * std::f32::consts::TAU / layout.rate as f32;
    let decay = (-3.0 / layout.frames.max(1) as f32).exp();
    let (mut phase, mut env) = (0.0f32, 1.0f32);
    let full = if layout.bits == 24 { 8_000_000.0 } else { 30_000.0 };
    for _ in 0..layout.frames {
        let tone = phase.sin() * 0.6 + (phase * 2.0).sin() * 0.2;
        phase = (phase + step) % std::f32::consts::TAU;
        env *= decay;
        for _ in 0..layout.channels {
            let sample = (tone * env + rng.unit() * 0.1) * full;
            writer.write_sample(sample as i32)?;
        }
    }
    writer.finalize()?;
    Ok(())
}

/// Checks that `dir` holds every file of `pack` with the same bytes.
pub fn verify_copy(pack: &Pack, dir: &Path) -> Result<()> {
    use std::io::Read;
    for (name, size) in &pack.files {
        let copy = dir.join(name);
        let len = std::fs::metadata(&copy).with_context(|| format!("{} is missing", copy.display()))?.len();
        anyhow::ensure!(len == *size, "{} has {len} bytes, expected {size}", copy.display());
        let (mut a, mut b) = (std::fs::File::open(pack.dir.join(name))?, std::fs::File::open(&copy)?);
        let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
        loop {
            let n = a.read(&mut x)?;
            if n == 0 {
                break;
            }
            b.read_exact(&mut y[..n])?;
            anyhow::ensure!(x[..n] == y[..n], "{} differs from the original", copy.display());
        }
    }
    Ok(())
}
