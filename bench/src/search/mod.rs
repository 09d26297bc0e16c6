//! Benchmark: the search index against SQLite FTS5 on the same corpus and
//! queries, in one run.
//!
//! For each engine: build (index every pack in batches; smpl commits once per
//! batch, FTS5 inserts everything in one transaction), settle (smpl waits for
//! segment merges, FTS5 runs `optimize`), then single-threaded top-20 queries
//! (1–2 words plus filters), after a warm-up pass over the first queries. smpl's
//! queries are measured on a freshly reopened index, as a restarted node would see
//! them, and include what smpl always computes: total, facets over all matches,
//! and the typo pass when exact matching finds fewer than 20 hits. The peak RSS
//! (VmHWM, reset before each phase) is reported next to each figure.

mod engines;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use smpl_index::IndexOptions;

use crate::corpus::{BenchQuery, Corpus};
use crate::mem;
pub use engines::Smpl;
use engines::{Engine, Fts5, TOP};

#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    /// Samples (documents) in the corpus.
    #[arg(long, default_value_t = 1_000_000)]
    docs: usize,
    /// Samples per pack.
    #[arg(long, default_value_t = 100)]
    per_pack: usize,
    /// Measured queries per engine.
    #[arg(long, default_value_t = 1_000)]
    queries: usize,
    /// Packs per smpl commit.
    #[arg(long, default_value_t = 250)]
    batch_packs: usize,
    /// smpl indexing threads.
    #[arg(long, default_value_t = 2)]
    writer_threads: usize,
    /// smpl indexing memory budget, MB (total over the threads).
    #[arg(long, default_value_t = 256)]
    writer_heap_mb: usize,
    /// Seed of the corpus and the queries.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where the indexes go (a temporary directory inside it; default: the system's).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Run one engine only.
    #[arg(long, value_enum)]
    only: Option<Which>,
    /// Queries whose match counts are compared between the engines.
    #[arg(long, default_value_t = 50)]
    check: usize,
    /// Keep smpl's index in this directory and reuse it when it already holds the
    /// corpus (the build is then not measured): for repeated query measurements.
    #[arg(long)]
    index: Option<PathBuf>,
    /// Also list this many of smpl's slowest queries, with their match counts.
    #[arg(long, default_value_t = 0)]
    slowest: usize,
    /// The queries' words alone, without their filters, as a producer types them
    /// (the query set of `scale`).
    #[arg(long)]
    words_only: bool,
    /// Then query again while the index takes one pack again every this many
    /// queries (each a commit, so the reader reloads, as on a node taking listings
    /// in); 0: not measured.
    #[arg(long, default_value_t = 0)]
    churn: usize,
    /// Microseconds to sleep between two measured queries, so that whatever else
    /// runs on the core runs between them, as between a node's searches.
    #[arg(long, default_value_t = 0)]
    gap_us: u64,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Smpl,
    Fts5,
}

#[derive(Default)]
struct Measured {
    build: Duration,
    build_peak: Option<u64>,
    settle: Duration,
    settle_peak: Option<u64>,
    latencies: Vec<Duration>,
    query_peak: Option<u64>,
    /// smpl only: packs-mode latencies.
    packs_latencies: Vec<Duration>,
    /// smpl only: latencies while packs are indexed between queries (`--churn`).
    churn_latencies: Vec<Duration>,
    /// smpl only: queries whose exact matches did not fill the page.
    short: usize,
    rss_after_queries: Option<u64>,
    rss_parts: Option<(u64, u64)>,
    disk: u64,
    counts: Vec<usize>,
    /// Match count of each measured query, where the engine computes it.
    totals: Vec<usize>,
}

pub fn run(args: SearchArgs) -> Result<()> {
    let corpus = Corpus::new(args.docs, args.per_pack, args.seed);
    let mut queries = corpus.queries(args.queries);
    if args.words_only {
        for q in &mut queries {
            *q = BenchQuery { words: std::mem::take(&mut q.words), ..BenchQuery::default() };
        }
    }
    let base = match &args.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let resettable = mem::reset_peak();
    let load_before = mem::load_average();
    eprintln!(
        "corpus: {} samples in {} packs; {} queries; work dir {}",
        corpus.docs,
        corpus.packs(),
        queries.len(),
        base.path().display()
    );
    let check = args.check.min(queries.len());
    let smpl = if args.only != Some(Which::Fts5) {
        let options = IndexOptions {
            writer_threads: args.writer_threads,
            writer_heap_bytes: args.writer_heap_mb << 20,
            preload: true,
        };
        let path = args.index.clone().unwrap_or_else(|| base.path().join("smpl"));
        Some(measure_smpl(&corpus, &queries, &args, options, path, check)?)
    } else {
        None
    };
    let fts5 = if args.only != Some(Which::Smpl) {
        let mut engine = Fts5::open(base.path().join("fts5.sqlite"))?;
        eprintln!("fts5: building");
        let mut m = build(&mut engine, &corpus, args.batch_packs)?;
        warm_and_query(&mut engine, &queries, args.gap_us, &mut m)?;
        m.counts = count(&mut engine, &queries[..check])?;
        m.disk = mem::disk_usage(base.path()) - smpl.as_ref().map_or(0, |s| s.disk);
        Some(m)
    } else {
        None
    };
    print_table(&args, &corpus, resettable, smpl.as_ref(), fts5.as_ref(), &queries[..check]);
    if let Some(s) = &smpl {
        print_slowest(s, &queries, args.slowest);
    }
    let load = |l: Option<f64>| l.map_or("n/a".to_string(), |l| format!("{l:.2}"));
    println!(
        "\n1-minute load average: {} before, {} after ({} cores)",
        load(load_before),
        load(mem::load_average()),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    Ok(())
}

fn measure_smpl(
    corpus: &Corpus,
    queries: &[BenchQuery],
    args: &SearchArgs,
    options: IndexOptions,
    path: PathBuf,
    check: usize,
) -> Result<Measured> {
    let mut m = {
        let mut engine = Smpl::open(path.clone(), options.clone())?;
        if args.index.is_some() && engine.index().num_samples() == corpus.docs as u64 {
            eprintln!("smpl: reusing the index in {} (build not measured)", path.display());
            Measured::default()
        } else {
            engine.index().clear()?;
            eprintln!("smpl: building");
            build(&mut engine, corpus, args.batch_packs)?
        }
    };
    // Queries on a freshly opened index, as after a node restart.
    mem::reset_peak();
    let mut engine = Smpl::open(path, options)?;
    warm_and_query(&mut engine, queries, args.gap_us, &mut m)?;
    m.short = queries
        .iter()
        .filter(|q| {
            engine
                .index()
                .search(&Smpl::search_query(q, false))
                .is_ok_and(|r| r.hits.len() < TOP || r.total < TOP)
        })
        .count();
    for q in queries {
        let t = Instant::now();
        engine.index().search(&Smpl::search_query(q, true))?;
        m.packs_latencies.push(t.elapsed());
    }
    if args.churn > 0 {
        eprintln!("  querying while a pack is indexed every {} queries", args.churn);
        for (i, q) in queries.iter().enumerate() {
            if i % args.churn == 0 {
                engine.add(vec![corpus.pack(i % corpus.packs())])?;
            }
            let t = Instant::now();
            engine.query(q)?;
            m.churn_latencies.push(t.elapsed());
        }
    }
    m.rss_after_queries = mem::rss();
    m.rss_parts = mem::rss_parts();
    m.counts = count(&mut engine, &queries[..check])?;
    m.disk = mem::disk_usage(engine.path());
    Ok(m)
}

fn build(engine: &mut dyn Engine, corpus: &Corpus, batch_packs: usize) -> Result<Measured> {
    let mut m = Measured::default();
    mem::reset_peak();
    let packs = corpus.packs();
    let batch = batch_packs.max(1);
    let mut last_report = Instant::now();
    for start in (0..packs).step_by(batch) {
        let manifests: Vec<_> = (start..(start + batch).min(packs)).map(|i| corpus.pack(i)).collect();
        let t = Instant::now();
        engine.add(manifests)?;
        m.build += t.elapsed();
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!("  {start} / {packs} packs, {:.0} s indexing", m.build.as_secs_f64());
            last_report = Instant::now();
        }
    }
    let t = Instant::now();
    engine.commit()?;
    m.build += t.elapsed();
    m.build_peak = mem::peak_rss();
    eprintln!("  built in {:.1} s; settling", m.build.as_secs_f64());
    mem::reset_peak();
    let t = Instant::now();
    engine.settle()?;
    m.settle = t.elapsed();
    m.settle_peak = mem::peak_rss();
    Ok(m)
}

fn warm_and_query(
    engine: &mut dyn Engine,
    queries: &[BenchQuery],
    gap_us: u64,
    m: &mut Measured,
) -> Result<()> {
    for q in queries.iter().take(100) {
        engine.query(q)?;
    }
    mem::reset_peak();
    eprintln!("  querying");
    for q in queries {
        if gap_us > 0 {
            std::thread::sleep(Duration::from_micros(gap_us));
        }
        let t = Instant::now();
        let (_, total) = engine.query(q)?;
        m.latencies.push(t.elapsed());
        m.totals.extend(total);
    }
    m.query_peak = mem::peak_rss();
    Ok(())
}

fn count(engine: &mut dyn Engine, queries: &[BenchQuery]) -> Result<Vec<usize>> {
    queries.iter().map(|q| engine.count(q)).collect()
}

pub fn percentile(lat: &[Duration], p: f64) -> Duration {
    if lat.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = lat.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 { format!("{ms:.3} ms") } else { format!("{ms:.1} ms") }
}

fn rate(docs: usize, d: Duration) -> f64 {
    docs as f64 / d.as_secs_f64().max(1e-9)
}

fn with_peak(value: String, peak: Option<u64>) -> String {
    format!("{value} (peak RSS {})", mem::fmt_mb(peak))
}

/// smpl's `n` slowest queries, slowest first, with their match counts.
fn print_slowest(m: &Measured, queries: &[BenchQuery], n: usize) {
    if n == 0 {
        return;
    }
    let mut order: Vec<usize> = (0..m.latencies.len()).collect();
    order.sort_by(|a, b| m.latencies[*b].cmp(&m.latencies[*a]));
    println!("\nsmpl's {n} slowest queries:\n");
    println!("| ms | matches | words | genre | kind | BPM | max price |");
    println!("| ---: | ---: | --- | --- | --- | --- | --- |");
    for &i in order.iter().take(n) {
        let q = &queries[i];
        println!(
            "| {:.2} | {} | {} | {} | {} | {} | {} |",
            m.latencies[i].as_secs_f64() * 1e3,
            m.totals.get(i).map_or("?".into(), |t| t.to_string()),
            q.words.join(" "),
            q.genre.as_deref().unwrap_or(""),
            q.kind.map_or("", |k| k.name()),
            q.bpm.map_or(String::new(), |(a, b)| format!("{a}–{b}")),
            q.max_price.map_or(String::new(), |p| p.to_string()),
        );
    }
}

fn yes(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

fn print_table(
    args: &SearchArgs,
    corpus: &Corpus,
    resettable: bool,
    smpl: Option<&Measured>,
    fts5: Option<&Measured>,
    checked: &[BenchQuery],
) {
    let docs = corpus.docs;
    let cell = |m: Option<&Measured>, f: &dyn Fn(&Measured) -> String| m.map_or("–".into(), f);
    println!(
        "\nsearch: {docs} samples ({} packs × {}), {} queries (1–2 words{}, top {TOP}), \
         seed {}, smpl commit every {} packs, {} writer threads, {} MB writer heap\n",
        corpus.packs(),
        corpus.per_pack,
        args.queries,
        if args.words_only { ", no filters" } else { " + filters" },
        args.seed,
        args.batch_packs,
        args.writer_threads,
        args.writer_heap_mb
    );
    if !resettable {
        println!("(peak RSS could not be reset between phases: figures are cumulative)\n");
    }
    println!("| figure | smpl-index | SQLite FTS5 | smpl vs FTS5 | target | met |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let build_rate = |m: &Measured| rate(docs, m.build);
    let both = smpl.zip(fts5);
    let build_cell = |m: &Measured| {
        if m.build.is_zero() {
            "not measured (index reused)".to_string()
        } else {
            with_peak(format!("{:.0}", build_rate(m)), m.build_peak)
        }
    };
    println!(
        "| build (docs/s) | {} | {} | {} | ≥ 0.5× FTS5 | {} |",
        cell(smpl, &build_cell),
        cell(fts5, &|m| with_peak(format!("{:.0}", build_rate(m)), m.build_peak)),
        both.map_or("–".into(), |(s, f)| format!("{:.2}×", build_rate(s) / build_rate(f))),
        both.map_or("–", |(s, f)| yes(build_rate(s) >= 0.5 * build_rate(f))),
    );
    println!(
        "| settle: merge / optimize (s) | {} | {} | | | |",
        cell(smpl, &|m| with_peak(format!("{:.1}", m.settle.as_secs_f64()), m.settle_peak)),
        cell(fts5, &|m| with_peak(format!("{:.1}", m.settle.as_secs_f64()), m.settle_peak)),
    );
    let total_rate = |m: &Measured| rate(docs, m.build + m.settle);
    println!(
        "| build + settle (docs/s) | {} | {} | {} | | |",
        cell(smpl, &|m| if m.build.is_zero() { "–".into() } else { format!("{:.0}", total_rate(m)) }),
        cell(fts5, &|m| format!("{:.0}", total_rate(m))),
        both.map_or("–".into(), |(s, f)| format!("{:.2}×", total_rate(s) / total_rate(f))),
    );
    for (label, p, target) in [("p50", 50.0, 1.0), ("p99", 99.0, 10.0)] {
        let lat = |m: &Measured| percentile(&m.latencies, p);
        let speedup = both.map(|(s, f)| lat(f).as_secs_f64() / lat(s).as_secs_f64().max(1e-9));
        println!(
            "| query {label} | {} | {} | {} | < {target} ms, ≥ 10× faster | {} |",
            cell(smpl, &|m| with_peak(ms(lat(m)), m.query_peak)),
            cell(fts5, &|m| with_peak(ms(lat(m)), m.query_peak)),
            speedup.map_or("–".into(), |x| format!("{x:.0}× faster")),
            match (smpl, speedup) {
                (Some(s), Some(x)) => yes(lat(s).as_secs_f64() * 1e3 < target && x >= 10.0),
                (Some(s), None) => yes(lat(s).as_secs_f64() * 1e3 < target),
                _ => "–",
            },
        );
    }
    let mean = |l: &[Duration]| l.iter().sum::<Duration>() / (l.len().max(1) as u32);
    println!(
        "| query mean / max | {} | {} | | | |",
        cell(smpl, &|m| format!("{} / {}", ms(mean(&m.latencies)), ms(percentile(&m.latencies, 100.0)))),
        cell(fts5, &|m| format!("{} / {}", ms(mean(&m.latencies)), ms(percentile(&m.latencies, 100.0)))),
    );
    if let Some(s) = smpl {
        println!(
            "| packs-mode query p50 / p99 | {} / {} | – | | | |",
            ms(percentile(&s.packs_latencies, 50.0)),
            ms(percentile(&s.packs_latencies, 99.0)),
        );
        if !s.churn_latencies.is_empty() {
            println!(
                "| query p50 / p99 while a pack is indexed every {} queries | {} / {} | – | | | |",
                args.churn,
                ms(percentile(&s.churn_latencies, 50.0)),
                ms(percentile(&s.churn_latencies, 99.0)),
            );
        }
        println!("| queries that ran the typo pass | {} of {} | – | | | |", s.short, args.queries);
        println!(
            "| RSS after the queries (index reopened) | {} (heap {}, mapped files {}) | – | | | |",
            mem::fmt_mb(s.rss_after_queries),
            mem::fmt_mb(s.rss_parts.map(|p| p.0)),
            mem::fmt_mb(s.rss_parts.map(|p| p.1)),
        );
    }
    println!(
        "| size on disk | {} | {} | | | |",
        cell(smpl, &|m| mem::fmt_mb(Some(m.disk))),
        cell(fts5, &|m| mem::fmt_mb(Some(m.disk))),
    );
    if let Some((s, f)) = both {
        let same = s.counts.iter().zip(&f.counts).filter(|(a, b)| a == b).count();
        let differing: Vec<String> = s
            .counts
            .iter()
            .zip(&f.counts)
            .zip(checked)
            .filter(|((a, b), _)| a != b)
            .take(5)
            .map(|((a, b), q)| format!("{:?}: {a} vs {b}", q.words))
            .collect();
        println!(
            "| same match count (first {} queries) | {same} of {} | | | | |",
            checked.len(),
            checked.len()
        );
        if !differing.is_empty() {
            println!("\nfirst differing counts (smpl vs FTS5): {}", differing.join("; "));
        }
    }
}
