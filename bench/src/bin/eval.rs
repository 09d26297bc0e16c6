//! `eval`: the node's own analysis (`smpl_audio::analyze_file`, exactly what
//! publishing runs: decoding, loudness, preview, descriptor, tempo and key in one
//! pass) over a labelled set of real recordings, against labels that come from
//! elsewhere (see `bench/eval/build-labelled-set.sh`), plus the speed of the whole
//! analysis in real time per core.
//!
//! Usage: `eval LABELS.tsv [--verbose]`, or `eval --speed DIR` to time the analysis
//! alone over every audio file under DIR (no labels needed; e.g. the Hydrogen kits
//! of one-shots, where the per-file costs weigh most; it also counts the drum hits,
//! by file name, that publishing would give a detected key). Each line: `path <TAB> bpm <TAB> key <TAB>
//! source`, paths relative to the TSV's folder; `bpm` or `key` may be empty; the
//! source field may carry `kind:NAME` (loop, tonal-loop, chord, oneshot, music).
//! One-shots' keys are reported apart (a single note has no mode). Files are
//! analysed one at a time on one thread.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use smpl_audio::{ONE_SHOT_KEY_CONFIDENCE, analyze_file};
use smpl_protocol::{Key, Mode};

struct Label {
    path: PathBuf,
    bpm: Option<f32>,
    key: Option<(u8, bool)>,
    kind: String,
}

#[derive(Default, Clone, Copy)]
struct Tally {
    total: usize,
    reported: usize,
    exact: usize,
    loose: usize,
}

impl Tally {
    fn add(&mut self, reported: bool, exact: bool, loose: bool) {
        self.total += 1;
        self.reported += usize::from(reported);
        self.exact += usize::from(exact);
        self.loose += usize::from(loose);
    }
}

fn pct(n: usize, of: usize) -> String {
    if of == 0 { "–".into() } else { format!("{n}/{of} = {:.1} %", 100.0 * n as f64 / of as f64) }
}

fn within(got: f32, truth: f32) -> bool {
    (got / truth - 1.0).abs() <= 0.02
}

/// A fifth away in the same mode, or the relative major/minor.
fn related(tonic: u8, minor: bool, truth_tonic: u8, truth_minor: bool) -> bool {
    let up = (tonic + 12 - truth_tonic) % 12;
    if minor == truth_minor {
        return up == 7 || up == 5;
    }
    if minor { up == 9 } else { up == 3 }
}

fn read_labels(tsv: &Path) -> Result<Vec<Label>> {
    let text = std::fs::read_to_string(tsv).with_context(|| format!("reading {}", tsv.display()))?;
    let base = tsv.parent().unwrap_or(Path::new("."));
    let mut labels = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [path, bpm, key, rest @ ..] = fields.as_slice() else {
            bail!("labels line {}: expected path, bpm, key and source", index + 1);
        };
        let bpm = match bpm.trim() {
            "" => None,
            b => Some(b.parse::<f32>().with_context(|| format!("line {}: bpm {b:?}", index + 1))?),
        };
        let key = match key.trim() {
            "" => None,
            k => {
                let parsed = Key::parse(k).with_context(|| format!("line {}: key {k:?}", index + 1))?;
                Some((parsed.tonic, parsed.mode == Mode::Minor))
            }
        };
        let kind = rest
            .first()
            .and_then(|source| source.split(';').find_map(|item| item.strip_prefix("kind:")))
            .unwrap_or("other")
            .to_string();
        labels.push(Label { path: base.join(path), bpm, key, kind });
    }
    Ok(labels)
}

fn name(tonic: u8, minor: bool) -> String {
    Key { tonic, mode: if minor { Mode::Minor } else { Mode::Major }, source: smpl_protocol::Source::Stated }
        .name()
}

fn run(tsv: &Path, verbose: bool) -> Result<()> {
    let labels = read_labels(tsv)?;
    let (mut tempo, mut key, mut key_oneshot) = (Tally::default(), Tally::default(), Tally::default());
    let mut by_kind: BTreeMap<String, (Tally, Tally)> = BTreeMap::new();
    let (mut seconds, mut took, mut failures) = (0.0f64, Duration::ZERO, 0);
    for label in &labels {
        let started = Instant::now();
        let analysis = match analyze_file(&label.path) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("skipped: {e}");
                failures += 1;
                continue;
            }
        };
        took += started.elapsed();
        seconds += analysis.frames as f64 / f64::from(analysis.sample_rate.max(1));
        let file = label.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some(truth) = label.bpm {
            let got = analysis.tempo.map(|t| t.bpm);
            let exact = got.is_some_and(|b| within(b, truth));
            let octave = got.is_some_and(|b| [0.5, 1.0, 2.0].iter().any(|m| within(b, truth * m)));
            tempo.add(got.is_some(), exact, octave);
            by_kind.entry(label.kind.clone()).or_default().0.add(got.is_some(), exact, octave);
            if verbose {
                let got = got.map_or("-".into(), |b| format!("{b:.2}"));
                println!(
                    "tempo {:<5} {file:<44} label {truth:>7.2} got {got:>7}",
                    if exact { "ok" } else { "MISS" }
                );
            }
        }
        if let Some((tonic, minor)) = label.key {
            let got = analysis.key;
            let exact = got.is_some_and(|k| k.tonic == tonic && k.minor == minor);
            let near = exact || got.is_some_and(|k| related(k.tonic, k.minor, tonic, minor));
            let tally = if label.kind == "oneshot" { &mut key_oneshot } else { &mut key };
            tally.add(got.is_some(), exact, near);
            by_kind.entry(label.kind.clone()).or_default().1.add(got.is_some(), exact, near);
            if verbose {
                let got = got.map_or("-".into(), |k| name(k.tonic, k.minor));
                println!(
                    "key   {:<5} {file:<44} label {:>4} got {got:>4}",
                    if exact { "ok" } else { "MISS" },
                    name(tonic, minor)
                );
            }
        }
    }
    println!("\nlabelled files: {} ({failures} could not be analysed)\n", labels.len());
    println!("| measure | value |\n| --- | --- |");
    println!("| tempo labels | {} |", tempo.total);
    println!("| tempo reported | {} |", pct(tempo.reported, tempo.total));
    println!("| **tempo within ±2 %** | **{}** |", pct(tempo.exact, tempo.total));
    println!("| tempo within ±2 % allowing ×2 and ×½ (info) | {} |", pct(tempo.loose, tempo.total));
    println!("| key labels (loops, chords, music) | {} |", key.total);
    println!("| key reported | {} |", pct(key.reported, key.total));
    println!("| **key exact (tonic and mode)** | **{}** |", pct(key.exact, key.total));
    println!("| key exact, a fifth or relative (info) | {} |", pct(key.loose, key.total));
    println!(
        "| one-shot key exact (info, {} labels) | {} |",
        key_oneshot.total,
        pct(key_oneshot.exact, key_oneshot.total)
    );
    println!(
        "| whole analysis (decode, loudness, preview, descriptor, tempo, key), one thread | {:.0}× real time ({seconds:.0} s of audio in {:.1} s) |",
        seconds / took.as_secs_f64().max(1e-9),
        took.as_secs_f64()
    );
    println!(
        "\n| kind | tempo labels | tempo ±2 % | key labels | key exact |\n| --- | --- | --- | --- | --- |"
    );
    for (kind, (t, k)) in &by_kind {
        println!(
            "| {kind} | {} | {} | {} | {} |",
            t.total,
            pct(t.exact, t.total),
            k.total,
            pct(k.exact, k.total)
        );
    }
    Ok(())
}

/// Times `analyze_file` over every audio file under `dir`, one thread.
fn speed(dir: &Path) -> Result<()> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if smpl_audio::is_audio_candidate(&path) {
                files.push(path);
            }
        }
    }
    files.sort();
    let (mut seconds, mut took, mut analysed, mut failed) = (0.0f64, Duration::ZERO, 0, 0);
    let mut slowest = (0.0f64, PathBuf::new());
    // Drum hits by the word in their file name: (files, published with a detected key).
    let mut drum_keys: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for path in &files {
        let started = Instant::now();
        match analyze_file(path) {
            Ok(a) => {
                let elapsed = started.elapsed();
                took += elapsed;
                let length = a.frames as f64 / f64::from(a.sample_rate.max(1));
                seconds += length;
                analysed += 1;
                let per = elapsed.as_secs_f64() / length.max(1e-6);
                if per > slowest.0 {
                    slowest = (per, path.clone());
                }
                let name = path.file_name().unwrap_or_default().to_string_lossy().to_lowercase();
                if let Some(drum) = DRUMS.iter().find(|d| name.contains(*d)) {
                    let looped = a.kind == smpl_protocol::SampleKind::Loop;
                    let published = a.key.is_some_and(|k| looped || k.confidence >= ONE_SHOT_KEY_CONFIDENCE);
                    let tally = drum_keys.entry(drum).or_default();
                    tally.0 += 1;
                    tally.1 += usize::from(published);
                }
            }
            Err(_) => failed += 1,
        }
    }
    println!(
        "{analysed} files ({failed} not analysable), {seconds:.0} s of audio ({:.2} s a file) in {:.2} s: {:.0}× real time on one thread; slowest file {:.0}× ({})",
        seconds / analysed.max(1) as f64,
        took.as_secs_f64(),
        seconds / took.as_secs_f64().max(1e-9),
        1.0 / slowest.0.max(1e-9),
        slowest.1.display()
    );
    if !drum_keys.is_empty() {
        let (files, keyed) = drum_keys.values().fold((0, 0), |(f, k), (df, dk)| (f + df, k + dk));
        let each: Vec<String> = drum_keys.iter().map(|(d, (f, k))| format!("{d} {k}/{f}")).collect();
        println!("drum hits published with a detected key: {keyed}/{files} ({})", each.join(", "));
    }
    Ok(())
}

/// Words in file names that make a file a drum hit, for the count of keys on drums.
const DRUMS: [&str; 10] =
    ["hat", "clap", "crash", "ride", "splash", "china", "cymbal", "snare", "kick", "tom"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(dir) = args.iter().position(|a| a == "--speed").and_then(|i| args.get(i + 1)) {
        return match speed(Path::new(dir)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("eval: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let verbose = args.iter().any(|a| a == "--verbose");
    let Some(tsv) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!(
            "usage: eval LABELS.tsv [--verbose]   (make the set with bench/eval/build-labelled-set.sh DIR)"
        );
        return ExitCode::from(2);
    };
    match run(Path::new(tsv), verbose) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eval: {e:#}");
            ExitCode::FAILURE
        }
    }
}
