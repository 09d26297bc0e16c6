//! Import benchmark: importing sample folders into smpl, against `sendme send`
//! and `b3sum --num-threads 1` on the same files, and audio analysis on its own.
//!
//! For each of two generated corpora (about 1 GiB of long WAV files; 1,000 small
//! WAV files, about 200 MB) it measures, on a warm page cache:
//!
//! - `b3sum --num-threads 1` reading and hashing every file;
//! - `sendme send DIR` until it reports the import done (in a network namespace that
//!   holds only loopback, so it cannot reach public relays or DNS);
//! - smpl's import: every file hashed and stored into a fresh iroh-blobs store
//!   through `smpl_node::Blobs` as `publish` does it, plus the collection, synced;
//! - a full `publish::publish` (analysis, import, signed manifest, sled);
//! - `smpl_audio::analyze_file` over every file on one thread and on all cores.
//!
//! Each smpl phase runs in a child process (this binary with a hidden subcommand) so
//! that every peak RSS belongs to one phase. Run `bench/setup.sh` first to install the
//! reference tools; see docs/BENCHMARKS.md for the figures.

#[path = "import/child.rs"]
mod child;
#[path = "import/corpus.rs"]
mod corpus;
#[path = "import/tools.rs"]
mod tools;

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::child::Report;
use crate::corpus::{Corpus, Spec};
use crate::tools::ProcStats;

#[derive(Parser)]
#[command(about = "Import and analysis benchmark")]
struct Cli {
    #[command(subcommand)]
    phase: Option<Phase>,
    #[command(flatten)]
    opts: Opts,
}

#[derive(clap::Args)]
struct Opts {
    /// Where the corpora and scratch stores live [default: <workspace>/target/bench-import].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Folder holding `sendme` and `b3sum` [default: <workspace>/target/bench-tools/bin, then PATH].
    #[arg(long)]
    tools: Option<PathBuf>,
    /// Size of the long-file corpus in MiB.
    #[arg(long, default_value_t = 1024)]
    mib: u64,
    /// Number of files in the small-file corpus.
    #[arg(long, default_value_t = 1000)]
    small_files: usize,
    /// Repetitions of the b3sum, sendme and import measurements (best and median shown).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Only this corpus: `long` or `small`.
    #[arg(long)]
    only: Option<String>,
    /// Where the stores written during the run go (deleted at the end) [default: /var/tmp].
    #[arg(long)]
    scratch: Option<PathBuf>,
    /// Files imported at once [default: what publish uses].
    #[arg(long)]
    workers: Option<usize>,
    /// Skip the end-to-end publish.
    #[arg(long)]
    no_publish: bool,
    /// Skip the baselines: iroh-blobs' add_path(Copy), the store alone, copy and hash.
    #[arg(long)]
    no_baseline: bool,
    /// Do not touch fresh memory before each measurement (see `prime`).
    #[arg(long)]
    no_prime: bool,
    /// Analyse at most this many files of each corpus in the analysis rows.
    #[arg(long)]
    analysis_files: Option<usize>,
}

/// The phases a child process runs (hidden: the parent starts them).
#[derive(Subcommand)]
enum Phase {
    #[command(hide = true, name = "child-import")]
    Import {
        corpus: PathBuf,
        store: PathBuf,
        #[arg(long, value_enum, default_value = "smpl")]
        method: child::Method,
        #[arg(long, default_value_t = smpl_node::publish::concurrency())]
        workers: usize,
    },
    #[command(hide = true, name = "child-analyze")]
    Analyze {
        corpus: PathBuf,
        threads: usize,
        #[arg(long)]
        limit: Option<usize>,
    },
    #[command(hide = true, name = "child-publish")]
    Publish { corpus: PathBuf, home: PathBuf },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let report = match cli.phase {
        None => return run(&cli.opts),
        Some(Phase::Import { corpus, store, method, workers }) => {
            child::import(&corpus, &store, method, workers)?
        }
        Some(Phase::Analyze { corpus, threads, limit }) => child::analyze(&corpus, threads, limit)?,
        Some(Phase::Publish { corpus, home }) => child::publish(&corpus, &home)?,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn find_tool(dir: &Path, name: &str) -> Option<PathBuf> {
    let local = dir.join(name);
    if local.is_file() {
        return Some(local);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|p| p.join(name)).find(|p| p.is_file())
}

/// One line of the results table.
#[derive(Clone, Debug, Serialize)]
struct Row {
    corpus: String,
    tool: String,
    /// The best of the runs.
    secs: f64,
    median_secs: f64,
    bytes: u64,
    cpu_secs: f64,
    rss_kb: u64,
    /// Audio seconds per wall second per thread, for analysis rows.
    realtime_per_core: Option<f64>,
    /// Audio seconds per CPU second, for analysis rows (robust to a shared machine).
    realtime_per_cpu_sec: Option<f64>,
    note: String,
}

/// Several runs of one measurement: the best and the median time, the median CPU
/// time and the highest peak RSS.
fn summarize(v: Vec<(f64, ProcStats)>) -> (f64, f64, ProcStats) {
    let mut secs: Vec<f64> = v.iter().map(|x| x.0).collect();
    let mut cpu: Vec<f64> = v.iter().map(|x| x.1.cpu_secs).collect();
    secs.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    let stats = ProcStats {
        secs: secs[secs.len() / 2],
        cpu_secs: cpu[cpu.len() / 2],
        maxrss_kb: v.iter().map(|x| x.1.maxrss_kb).max().unwrap_or(0),
    };
    (secs[0], secs[secs.len() / 2], stats)
}

fn drop_dirty_pages() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

fn run(opts: &Opts) -> Result<()> {
    let root = workspace();
    let dir = opts.dir.clone().unwrap_or_else(|| root.join("target/bench-import"));
    let tools_dir = opts.tools.clone().unwrap_or_else(|| root.join("target/bench-tools/bin"));
    let b3sum = find_tool(&tools_dir, "b3sum");
    let sendme = find_tool(&tools_dir, "sendme");
    if b3sum.is_none() || sendme.is_none() {
        eprintln!(
            "warning: b3sum or sendme not found in {} or PATH; run bench/setup.sh",
            tools_dir.display()
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runs = opts.runs.max(1);

    let mut corpora = Vec::new();
    if opts.only.as_deref() != Some("small") {
        let name = format!("wav-{}MiB", opts.mib);
        corpora.push(corpus::ensure(&name, &dir.join(&name), &Spec::long(opts.mib), cores.max(2))?);
    }
    if opts.only.as_deref() != Some("long") {
        let name = format!("small-{}", opts.small_files);
        corpora.push(corpus::ensure(&name, &dir.join(&name), &Spec::small(opts.small_files), cores.max(2))?);
    }

    // Stores go to a folder of their own outside target/, are spread over the file
    // system and are deleted only at the end. On an ext4 without a journal (as on this
    // VM) every inode allocation skips, one by one, the inodes of its block group that
    // were freed in the last minutes (`recently_deleted` in ext4's ialloc.c); in a
    // group next to cargo's busy target/, or where the previous run's store was just
    // deleted, creating a file then costs several times what it costs on a laptop's
    // journaled ext4. `chattr +T` makes ext4 put each subfolder in a fresh group.
    let scratch_root = opts.scratch.clone().unwrap_or_else(|| {
        let var_tmp = PathBuf::from("/var/tmp");
        if var_tmp.is_dir() { var_tmp } else { std::env::temp_dir() }
    });
    let scratch = scratch_root.join(format!("smpl-bench-import-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let spread = std::process::Command::new("chattr")
        .arg("+T")
        .arg(&scratch)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !spread {
        eprintln!("note: chattr +T failed on {}; stores are not spread over block groups", scratch.display());
    }
    let mut rows = Vec::new();
    let mut step = 0;
    let mut next_dir = |what: &str| {
        step += 1;
        scratch.join(format!("{what}-{step}"))
    };
    let workers = opts.workers.unwrap_or_else(smpl_node::publish::concurrency);
    let load_before = load_average();
    for corpus in &corpora {
        let bytes = corpus.bytes();
        eprintln!("\n== {}: {} files, {:.1} MB", corpus.name, corpus.files.len(), bytes as f64 / 1e6);
        let files: Vec<PathBuf> = corpus.files.iter().map(|f| f.path.clone()).collect();
        let mut b3 = Vec::new();
        let mut sm = Vec::new();
        let mut sm_walls = Vec::new();
        let mut smpl = Vec::new();
        let mut before = Vec::new();
        let mut store_only = Vec::new();
        let mut copy_only = Vec::new();
        // The tools take turns within each run, so that load from elsewhere on the
        // machine spreads over all of them.
        for run in 0..runs {
            eprintln!("run {}/{runs}", run + 1);
            if let Some(b3sum) = &b3sum {
                prepare(corpus, opts, run == 0)?;
                let s = tools::b3sum(b3sum, &files)?;
                b3.push((s.secs, s));
            }
            if let Some(sendme) = &sendme {
                prepare(corpus, opts, false)?;
                let s = tools::sendme(sendme, &corpus.dir, &next_dir("sendme"))?;
                sm_walls.push(s.wall_to_imported);
                sm.push((s.own.secs, s.own));
            }
            prepare(corpus, opts, false)?;
            smpl.push(import_child(corpus, &next_dir("store"), "smpl", workers)?);
            if !opts.no_baseline {
                prepare(corpus, opts, false)?;
                before.push(import_child(corpus, &next_dir("store"), "add-path-copy", workers)?);
                prepare(corpus, opts, false)?;
                store_only.push(import_child(corpus, &next_dir("store"), "store-bytes", workers)?);
                prepare(corpus, opts, false)?;
                copy_only.push(import_child(corpus, &next_dir("copy"), "copy-hash", workers)?);
            }
        }
        if !b3.is_empty() {
            let (best, median, s) = summarize(b3);
            rows.push(row(corpus, "b3sum --num-threads 1", best, median, &s, "reads and hashes, one thread"));
        }
        if !sm.is_empty() {
            sm_walls.sort_by(f64::total_cmp);
            let (best, median, s) = summarize(sm);
            let note = format!(
                "references the files in place (TryReference), {cores} jobs; {:.3} s from spawn to `imported`",
                sm_walls[sm_walls.len() / 2]
            );
            rows.push(row(corpus, "sendme send", best, median, &s, &note));
        }
        let (best, median, s) = summarize(smpl);
        let note =
            format!("copies into the store, hashes, stores the collection, syncs; {workers} files at a time");
        rows.push(row(corpus, "smpl import", best, median, &s, &note));
        if !before.is_empty() {
            let (best, median, s) = summarize(before);
            let note = "iroh-blobs add_path(Copy) + temp_tag(): the store's own import, as a baseline";
            rows.push(row(corpus, "iroh-blobs add_path(Copy)", best, median, &s, note));
            let (best, median, s) = summarize(store_only);
            let note = format!(
                "the store's share: files read into memory before the clock, then Blobs::add_bytes, \
                 {workers} at a time, collection, sync"
            );
            rows.push(row(corpus, "iroh-blobs store alone", best, median, &s, &note));
            let (best, median, s) = summarize(copy_only);
            let note =
                format!("no store: read, BLAKE3, write, rename, one file at a time on each of {cores} cores");
            rows.push(row(corpus, "copy and hash, no store", best, median, &s, &note));
        }

        if !opts.no_publish {
            prepare(corpus, opts, false)?;
            let home = next_dir("home");
            let (r, p): (Report, ProcStats) =
                tools::child(&[OsStr::new("child-publish"), corpus.dir.as_os_str(), home.as_os_str()])?;
            let s = ProcStats { secs: r.secs, cpu_secs: p.cpu_secs, maxrss_kb: r.hwm_kb };
            let note = format!(
                "analysis + import + manifest + sled; peak {:.1} MB above the {:.1} MB before it",
                r.hwm_kb.saturating_sub(r.idle_rss_kb) as f64 / 1024.0,
                r.idle_rss_kb as f64 / 1024.0
            );
            let mut row = row(corpus, "smpl publish, end to end", r.secs, r.secs, &s, &note);
            row.realtime_per_core = Some(r.audio_secs / r.secs / cores as f64);
            row.realtime_per_cpu_sec = Some(r.audio_secs / p.cpu_secs);
            rows.push(row);
        }

        for n in [1, cores] {
            prepare(corpus, opts, false)?;
            let threads = n.to_string();
            let mut args = vec![OsStr::new("child-analyze"), corpus.dir.as_os_str(), OsStr::new(&threads)];
            let limit = opts.analysis_files.map(|l| l.to_string());
            if let Some(limit) = &limit {
                args.extend([OsStr::new("--limit"), OsStr::new(limit)]);
            }
            let (r, p): (Report, ProcStats) = tools::child(&args)?;
            let s = ProcStats { secs: r.secs, cpu_secs: p.cpu_secs, maxrss_kb: r.hwm_kb };
            let note = format!("{} files, {:.0} s of audio", r.files, r.audio_secs);
            let mut row = row(corpus, &format!("smpl analysis, {n} thread(s)"), r.secs, r.secs, &s, &note);
            row.realtime_per_core = Some(r.audio_secs / r.secs / n as f64);
            row.realtime_per_cpu_sec = Some(r.audio_secs / p.cpu_secs);
            rows.push(row);
        }
    }
    let load_after = load_average();
    eprintln!("\nremoving {}", scratch.display());
    std::fs::remove_dir_all(&scratch)?;

    print_table(&rows);
    println!(
        "\n{cores} cores; load average {load_before} before, {load_after} after; best and median of {} runs",
        runs
    );
    let results = dir.join("results.json");
    let json = serde_json::json!({
        "cores": cores,
        "runs": runs,
        "load_before": load_before,
        "load_after": load_after,
        "primed": !opts.no_prime,
        "rows": rows,
    });
    std::fs::write(&results, serde_json::to_vec_pretty(&json)?)?;
    eprintln!("(results also in {})", results.display());
    Ok(())
}

fn import_child(corpus: &Corpus, store: &Path, method: &str, workers: usize) -> Result<(f64, ProcStats)> {
    let workers = workers.to_string();
    let args = [
        OsStr::new("child-import"),
        corpus.dir.as_os_str(),
        store.as_os_str(),
        OsStr::new("--method"),
        OsStr::new(method),
        OsStr::new("--workers"),
        OsStr::new(&workers),
    ];
    let (r, p): (Report, ProcStats) = tools::child(&args)?;
    Ok((r.secs, ProcStats { secs: r.secs, cpu_secs: p.cpu_secs, maxrss_kb: r.hwm_kb }))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}

/// Gets the machine into the same state before every measurement: dirty pages
/// written out, fresh page cache pages ready (see `prime`), every corpus file read
/// once so it is in the page cache.
fn prepare(corpus: &Corpus, opts: &Opts, report: bool) -> Result<()> {
    drop_dirty_pages();
    if !opts.no_prime {
        prime(&corpus.dir, corpus.bytes() + corpus.bytes() / 4)?;
    }
    warm(corpus, report)
}

/// Writes and deletes a scratch file of `bytes` bytes. This VM hands free memory
/// back to the hypervisor (virtio-balloon free page reporting), and the first write
/// into such a page costs a fault in the host: writing 1 GiB into the page cache then
/// takes seconds instead of a fraction of one. A laptop does not do that, and the
/// copy that smpl's import makes (unlike sendme's in-place reference) would pay for
/// it; so before each measurement the pages it is about to use are touched once.
fn prime(dir: &Path, bytes: u64) -> Result<()> {
    use std::io::Write;
    let path = dir.with_extension("prime");
    let mut file = std::fs::File::create(&path)?;
    let block = vec![0x5au8; 1 << 20];
    for _ in 0..bytes.div_ceil(1 << 20) {
        file.write_all(&block)?;
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(())
}

fn row(corpus: &Corpus, tool: &str, secs: f64, median_secs: f64, s: &ProcStats, note: &str) -> Row {
    Row {
        corpus: corpus.name.clone(),
        tool: tool.to_string(),
        secs,
        median_secs,
        bytes: corpus.bytes(),
        cpu_secs: s.cpu_secs,
        rss_kb: s.maxrss_kb,
        realtime_per_core: None,
        realtime_per_cpu_sec: None,
        note: note.to_string(),
    }
}

/// Reads every file once so that all measurements start from a warm page cache.
fn warm(corpus: &Corpus, report: bool) -> Result<()> {
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0)
        * 1024;
    if available < corpus.bytes() * 3 {
        bail!(
            "{} MB available is too little to keep the corpus and its copies cached",
            available / 1_000_000
        );
    }
    let started = Instant::now();
    let mut buf = vec![0u8; 1 << 20];
    for f in &corpus.files {
        let mut file =
            std::fs::File::open(&f.path).with_context(|| format!("opening {}", f.path.display()))?;
        while file.read(&mut buf)? > 0 {}
    }
    let secs = started.elapsed().as_secs_f64();
    if !report {
        return Ok(());
    }
    eprintln!(
        "page cache warmed: read every file once ({:.2} s, {:.0} MB/s); {:.1} GB memory available",
        secs,
        corpus.bytes() as f64 / 1e6 / secs,
        available as f64 / 1e9
    );
    Ok(())
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| corpus | tool | best s | median s | MB/s | vs sendme | vs b3sum | × real time per core | CPU s | peak RSS MB | notes |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    let speed = |r: &Row| r.bytes as f64 / 1e6 / r.secs;
    for r in rows {
        let find = |prefix: &str| rows.iter().find(|o| o.corpus == r.corpus && o.tool.starts_with(prefix));
        let ratio = |other: Option<&Row>| {
            other
                .filter(|_| !r.tool.starts_with("smpl analysis"))
                .map_or("".to_string(), |o| format!("{:.2}×", speed(r) / speed(o)))
        };
        println!(
            "| {} | {} | {:.3} | {:.3} | {:.0} | {} | {} | {} | {:.2} | {:.1} | {} |",
            r.corpus,
            r.tool,
            r.secs,
            r.median_secs,
            speed(r),
            ratio(find("sendme")),
            ratio(find("b3sum")),
            match (r.realtime_per_core, r.realtime_per_cpu_sec) {
                (Some(wall), Some(cpu)) => format!("{wall:.0}× ({cpu:.0}× per CPU s)"),
                (Some(wall), None) => format!("{wall:.0}×"),
                _ => String::new(),
            },
            r.cpu_secs,
            r.rss_kb as f64 / 1024.0,
            r.note
        );
    }
}
