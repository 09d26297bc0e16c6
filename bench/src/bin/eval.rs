//! `eval`: the node's own analysis (`smpl_audio::analyze_file`, exactly what
//! publishing runs: decoding, loudness, preview, descriptor, tempo, key and root note
//! in one pass) over the labelled set of real recordings, against labels that come
//! from elsewhere (`scripts/labelled-set.sh` builds the set and its labels), plus the
//! speed of the whole analysis in real time per core.
//!
//! Usage: `eval LABELS.tsv --data DIR [--half tune|held-out] [--verbose] [--features
//! OUT.tsv]` (the last writes what the harmonicity test measured in every file, and
//! the key detector's estimate and fit before the tests that decide whether it is
//! published), or
//! `eval --speed DIR` to time the analysis alone over every audio file under DIR.
//! Each labels line: `path kind source half bpm key note class labelled_by`, tab
//! separated, the path relative to DIR. Kinds: `drum-loop`, `tonal-loop`,
//! `music-loop` (cut from a recording at its beats), `chord`, `note` (a pitched
//! one-shot), `drum` (a drum or percussion hit). Figures are printed for each half
//! and each source. Files are analysed one at a time on one thread; speed is audio
//! time over the thread's CPU time (real time per core, whatever else the machine
//! runs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use smpl_audio::{Analysis, analyze_file};
use smpl_protocol::{Key, Mode};

struct Label {
    path: PathBuf,
    kind: String,
    source: String,
    half: String,
    bpm: Option<f32>,
    key: Option<(u8, bool)>,
    /// Pitch class and, when the label states it, the octave.
    note: Option<(u8, Option<i8>)>,
    class: String,
}

/// Counts for one group of files (a half, a source, a drum class).
#[derive(Default, Clone, Copy)]
struct Tally {
    tempo_labels: usize,
    tempo_reported: usize,
    tempo_ok: usize,
    tempo_wrong_octave: usize,
    key_labels: usize,
    key_exact: usize,
    /// Keys the detector estimated right, published or not.
    key_estimated: usize,
    key_reported: usize,
    note_labels: usize,
    note_ok: usize,
    note_reported: usize,
    octave_labels: usize,
    octave_ok: usize,
    drums: usize,
    drums_keyed: usize,
    /// Drums the harmonicity test alone finds tonal (file names aside).
    drums_tonal: usize,
    seconds: f64,
    took: Duration,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.tempo_labels += o.tempo_labels;
        self.tempo_reported += o.tempo_reported;
        self.tempo_ok += o.tempo_ok;
        self.tempo_wrong_octave += o.tempo_wrong_octave;
        self.key_labels += o.key_labels;
        self.key_exact += o.key_exact;
        self.key_estimated += o.key_estimated;
        self.key_reported += o.key_reported;
        self.note_labels += o.note_labels;
        self.note_ok += o.note_ok;
        self.note_reported += o.note_reported;
        self.octave_labels += o.octave_labels;
        self.octave_ok += o.octave_ok;
        self.drums += o.drums;
        self.drums_keyed += o.drums_keyed;
        self.drums_tonal += o.drums_tonal;
        self.seconds += o.seconds;
        self.took += o.took;
    }
}

fn pct(n: usize, of: usize) -> String {
    if of == 0 { "–".into() } else { format!("{n}/{of} = {:.1} %", 100.0 * n as f64 / of as f64) }
}

fn within(got: f32, truth: f32) -> bool {
    (got / truth - 1.0).abs() <= 0.02
}

fn parse_note(s: &str) -> Result<(u8, Option<i8>)> {
    let digits = s.trim_start_matches(|c: char| !(c.is_ascii_digit() || c == '-'));
    let name = &s[..s.len() - digits.len()];
    let key = Key::parse(name).with_context(|| format!("note {s:?}"))?;
    if key.mode != Mode::Major {
        bail!("note {s:?} has a mode");
    }
    let octave = if digits.is_empty() {
        None
    } else {
        Some(digits.parse::<i8>().with_context(|| format!("note {s:?}"))?)
    };
    Ok((key.tonic, octave))
}

fn read_labels(tsv: &Path, data: &Path) -> Result<Vec<Label>> {
    let text = std::fs::read_to_string(tsv).with_context(|| format!("reading {}", tsv.display()))?;
    let mut labels = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let line_no = index + 1;
        let fields: Vec<&str> = line.split('\t').collect();
        let [path, kind, source, half, bpm, key, note, class, ..] = fields.as_slice() else {
            bail!("labels line {line_no}: expected path, kind, source, half, bpm, key, note, class");
        };
        let bpm = match bpm.trim() {
            "" => None,
            b => Some(b.parse::<f32>().with_context(|| format!("line {line_no}: bpm {b:?}"))?),
        };
        let key = match key.trim() {
            "" => None,
            k => {
                let parsed = Key::parse(k).with_context(|| format!("line {line_no}: key {k:?}"))?;
                Some((parsed.tonic, parsed.mode == Mode::Minor))
            }
        };
        let note = match note.trim() {
            "" => None,
            n => Some(parse_note(n).with_context(|| format!("line {line_no}"))?),
        };
        labels.push(Label {
            path: data.join(path),
            kind: kind.to_string(),
            source: source.to_string(),
            half: half.to_string(),
            bpm,
            key,
            note,
            class: class.to_string(),
        });
    }
    Ok(labels)
}

fn key_name(tonic: u8, minor: bool) -> String {
    Key { tonic, mode: if minor { Mode::Minor } else { Mode::Major }, source: smpl_protocol::Source::Stated }
        .name()
}

/// What the node would publish as the sample's key or root note, for display.
fn shown(a: &Analysis) -> String {
    match (a.key, a.note) {
        (Some(k), _) => key_name(k.tonic, k.minor),
        (None, Some(n)) => {
            let name = key_name(n.pitch_class, false);
            n.octave.map_or(name.clone(), |o| format!("{name}{o}"))
        }
        (None, None) => "-".into(),
    }
}

/// Scores one analysed file against its label.
fn score(label: &Label, a: &Analysis, verbose: bool) -> Tally {
    let mut t = Tally::default();
    let file = label.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if let Some(truth) = label.bpm {
        let got = a.tempo.map(|t| t.bpm);
        let ok = got.is_some_and(|b| within(b, truth));
        let octave = got
            .is_some_and(|b| [0.5, 2.0, 1.0 / 3.0, 3.0, 2.0 / 3.0, 1.5].iter().any(|m| within(b, truth * m)));
        t.tempo_labels = 1;
        t.tempo_reported = usize::from(got.is_some());
        t.tempo_ok = usize::from(ok);
        t.tempo_wrong_octave = usize::from(octave && !ok);
        if verbose {
            let got = got.map_or("-".into(), |b| format!("{b:.2}"));
            let conf = a.tempo.map_or(0.0, |t| t.confidence);
            println!(
                "tempo {:<5} {:<10} {file:<44} label {truth:>7.2} got {got:>7} conf {conf:.2}",
                if ok { "ok" } else { "MISS" },
                label.source
            );
        }
    }
    if let Some((tonic, minor)) = label.key {
        // A loop must name tonic and mode; a chord given a root note instead of a key
        // counts when the note is the key's tonic.
        let exact = a.key.is_some_and(|k| k.tonic == tonic && k.minor == minor)
            || (label.kind == "chord" && a.key.is_none() && a.note.is_some_and(|n| n.pitch_class == tonic));
        t.key_labels = 1;
        t.key_exact = usize::from(exact);
        t.key_estimated = usize::from(a.key_estimate.is_some_and(|k| k.tonic == tonic && k.minor == minor));
        t.key_reported = usize::from(a.key.is_some() || a.note.is_some());
        if verbose {
            println!(
                "key   {:<5} {:<10} {file:<44} label {:>4} got {:>4} (tonality {:.2})",
                if exact { "ok" } else { "MISS" },
                label.source,
                key_name(tonic, minor),
                shown(a),
                a.tonality.tonality
            );
        }
    }
    if let Some((pc, octave)) = label.note {
        let ok = a.note.is_some_and(|n| n.pitch_class == pc);
        t.note_labels = 1;
        t.note_ok = usize::from(ok);
        t.note_reported = usize::from(a.note.is_some());
        if let Some(o) = octave {
            t.octave_labels = 1;
            t.octave_ok = usize::from(ok && a.note.is_some_and(|n| n.octave == Some(o)));
        }
        if verbose {
            let truth = key_name(pc, false) + &octave.map_or(String::new(), |o| o.to_string());
            println!(
                "note  {:<5} {:<10} {file:<44} label {truth:>4} got {:>4} (tonality {:.2}, steady {:.2} s)",
                if ok { "ok" } else { "MISS" },
                label.source,
                shown(a),
                a.tonality.tonality,
                a.tonality.steady_seconds
            );
        }
    }
    if label.kind == "drum" || label.kind == "drum-loop" {
        let keyed = a.key.is_some() || a.note.is_some();
        t.drums = 1;
        t.drums_keyed = usize::from(keyed);
        t.drums_tonal = usize::from(smpl_audio::is_tonal(a.kind, &a.tonality));
        if verbose && keyed {
            println!(
                "drum  KEYED {:<10} {file:<44} class {} got {} (tonality {:.2})",
                label.source,
                label.class,
                shown(a),
                a.tonality.tonality
            );
        }
    }
    t
}

fn print_table(title: &str, rows: &BTreeMap<String, Tally>) {
    println!("\n{title}\n");
    println!(
        "| group | tempo ±2 % | wrong octave | no tempo | key exact (loops, chords) | key estimated right, published or not (info) | root note | octave (info) | drums keyed | drums tonal by sound alone (info) | real time |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (name, t) in rows {
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0}× |",
            pct(t.tempo_ok, t.tempo_labels),
            pct(t.tempo_wrong_octave, t.tempo_labels),
            pct(t.tempo_labels - t.tempo_reported, t.tempo_labels),
            pct(t.key_exact, t.key_labels),
            pct(t.key_estimated, t.key_labels),
            pct(t.note_ok, t.note_labels),
            pct(t.octave_ok, t.octave_labels),
            pct(t.drums_keyed, t.drums),
            pct(t.drums_tonal, t.drums),
            t.seconds / t.took.as_secs_f64().max(1e-9),
        );
    }
}

fn run(tsv: &Path, data: &Path, half: Option<&str>, verbose: bool, features: Option<&Path>) -> Result<()> {
    let labels = read_labels(tsv, data)?;
    let mut dump = String::from(
        "path\tkind\tsource\thalf\tclass\tanalysed_kind\ttonality\tsteady\tpolyphony\tsingle_note\tglide\tdecay\tshare\tpitch\tkey_confidence\tlabel_key\testimate\tfit\tpublished\n",
    );
    let mut by_half: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_source: BTreeMap<String, BTreeMap<String, Tally>> = BTreeMap::new();
    let mut by_class: BTreeMap<String, Tally> = BTreeMap::new();
    let mut failures = 0;
    for label in labels.iter().filter(|l| half.is_none_or(|h| l.half == h)) {
        let started = thread_cpu();
        let analysis = match analyze_file(&label.path) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("skipped: {e}");
                failures += 1;
                continue;
            }
        };
        let took = thread_cpu().saturating_sub(started);
        if features.is_some() {
            let tn = &analysis.tonality;
            dump.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{:.3}\t{:.3}\t{:.3}\t{}\t{:.2}\t{:.2}\t{:.2}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                label.path.display(),
                label.kind,
                label.source,
                label.half,
                label.class,
                analysis.kind.name(),
                tn.tonality,
                tn.steady_seconds,
                tn.polyphony,
                tn.single_note,
                tn.glide,
                tn.decay_seconds,
                tn.steady_share,
                tn.pitch.map_or(String::new(), |(m, sure)| format!("{m}{}", if sure { "" } else { "?" })),
                analysis.key.map_or(String::new(), |k| format!("{:.2}", k.confidence)),
                label.key.map_or(String::new(), |(tonic, minor)| key_name(tonic, minor)),
                analysis.key_estimate.map_or(String::new(), |k| key_name(k.tonic, k.minor)),
                analysis.key_estimate.map_or(String::new(), |k| format!("{:.3}", k.fit)),
                shown(&analysis),
            ));
        }
        let mut t = score(label, &analysis, verbose);
        t.took = took;
        t.seconds = analysis.frames as f64 / f64::from(analysis.sample_rate.max(1));
        *by_half.entry(label.half.clone()).or_default() += t;
        *by_half.entry("all".into()).or_default() += t;
        *by_source.entry(label.half.clone()).or_default().entry(label.source.clone()).or_default() += t;
        if label.kind == "drum" || label.kind == "drum-loop" {
            let class = if label.kind == "drum-loop" { "drum loop".to_string() } else { label.class.clone() };
            *by_class.entry(format!("{} {class}", label.half)).or_default() += t;
        }
    }
    if let Some(path) = features {
        std::fs::write(path, dump).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("labelled files: {} ({failures} could not be analysed)", labels.len());
    print_table("By half", &by_half);
    for (h, rows) in &by_source {
        print_table(&format!("By source, {h} half"), rows);
    }
    println!("\nDrums and percussion given a key or a root note, by class\n");
    println!("| half and class | keyed | tonal by sound alone (info) |\n| --- | --- | --- |");
    for (class, t) in &by_class {
        println!("| {class} | {} | {} |", pct(t.drums_keyed, t.drums), pct(t.drums_tonal, t.drums));
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
    for path in &files {
        let started = thread_cpu();
        match analyze_file(path) {
            Ok(a) => {
                let elapsed = thread_cpu().saturating_sub(started);
                took += elapsed;
                let length = a.frames as f64 / f64::from(a.sample_rate.max(1));
                seconds += length;
                analysed += 1;
                let per = elapsed.as_secs_f64() / length.max(1e-6);
                if per > slowest.0 {
                    slowest = (per, path.clone());
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
    Ok(())
}

/// CPU time this thread has used: what "real time per core" divides by, so that the
/// figure holds on a machine busy with other work.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux knows.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    if ok { Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32) } else { Duration::ZERO }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1));
    let result = if let Some(dir) = value("--speed") {
        speed(Path::new(dir))
    } else {
        let flag_values: Vec<&String> =
            ["--data", "--half", "--features"].iter().filter_map(|f| value(f)).collect();
        let tsv = args.iter().find(|a| !a.starts_with("--") && !flag_values.contains(a));
        match (tsv, value("--data")) {
            (Some(tsv), Some(data)) => {
                let half = value("--half").map(String::as_str);
                let verbose = args.iter().any(|a| a == "--verbose");
                run(Path::new(tsv), Path::new(data), half, verbose, value("--features").map(Path::new))
            }
            _ => {
                eprintln!(
                    "usage: eval LABELS.tsv --data DIR [--half tune|held-out] [--verbose] [--features OUT]   \
                     (scripts/labelled-set.sh DIR builds the set)\n       eval --speed DIR"
                );
                return ExitCode::from(2);
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eval: {e:#}");
            ExitCode::FAILURE
        }
    }
}
