//! Benchmark: the search index under the churn of a node taking listings in and
//! evicting others, the same stream of listings committed in batches of several
//! sizes in one run: a few listings a commit, as a node committing each time
//! listings come in would, against more a commit, as the node's indexer commits a
//! stream (once a drain interval).
//!
//! Each batch size gets a fresh index on disk with the node's writer (one
//! thread, 16 MiB). Commit after commit, the index takes the next packs and drops
//! packs chosen at random among those it holds beyond `--keep`, as a node at its
//! listing budget evicts them; after each commit, `--queries` searches run.
//! Measured: what the process wrote to disk (`write_bytes` in `/proc/self/io`:
//! the index is all it writes), the processor time it took (indexing, merging
//! and searching), the segments searches went through, and the searches'
//! latency.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use smpl_index::{IndexOp, IndexOptions};

use crate::corpus::Corpus;
use crate::rng::Rng;
use crate::search::Smpl;
use crate::{mem, search};

#[derive(clap::Args, Debug)]
pub struct ChurnArgs {
    /// Packs indexed in all.
    #[arg(long, default_value_t = 18_000)]
    packs: usize,
    /// Packs held: past it, each commit drops as many as it adds.
    #[arg(long, default_value_t = 5_000)]
    keep: usize,
    /// Samples per pack.
    #[arg(long, default_value_t = 4)]
    per_pack: usize,
    /// Searches after each commit.
    #[arg(long, default_value_t = 10)]
    queries: usize,
    /// The packs a commit takes, compared; the first is the baseline.
    #[arg(long, value_delimiter = ',', default_value = "10,75")]
    batches: Vec<usize>,
    /// Seed of the corpus, the queries and the evictions.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where the indexes go (a temporary directory inside it; default: the system's).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// The figures of one batch size.
struct Measured {
    wall: Duration,
    cpu: Duration,
    written: u64,
    latencies: Vec<Duration>,
    segments: Vec<usize>,
    disk: u64,
}

pub fn run(args: ChurnArgs) -> Result<()> {
    let corpus = Corpus::new(args.packs * args.per_pack, args.per_pack, args.seed);
    let queries = corpus.queries(1_000);
    let base = match &args.dir {
        Some(dir) => tempfile::tempdir_in(dir)?,
        None => tempfile::tempdir()?,
    };
    println!(
        "\n{} packs of {} samples, {} held; {} searches after each commit\n",
        args.packs, args.per_pack, args.keep, args.queries
    );
    println!(
        "| packs a commit | commits | wall | processor | written | segments: mean / most | search p50 / p99 | index at the end |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut baseline = None;
    for &batch in &args.batches {
        let batch = batch.max(1);
        eprintln!("{batch} packs a commit");
        let options = IndexOptions { writer_threads: 1, writer_heap_bytes: 16 << 20, preload: true };
        let m = measure(&args, &corpus, &queries, batch, base.path().join(batch.to_string()), options)?;
        let (base_written, base_cpu) = *baseline.get_or_insert((m.written, m.cpu));
        let mean = m.segments.iter().sum::<usize>() as f64 / m.segments.len().max(1) as f64;
        println!(
            "| {batch} | {} | {:.1} s | {:.1} s ({:.2}×) | {:.0} MB ({:.2}×) | {mean:.1} / {} | {} / {} | {:.1} MB |",
            m.segments.len(),
            m.wall.as_secs_f64(),
            m.cpu.as_secs_f64(),
            m.cpu.as_secs_f64() / base_cpu.as_secs_f64().max(1e-9),
            m.written as f64 / 1e6,
            m.written as f64 / base_written.max(1) as f64,
            m.segments.iter().max().unwrap_or(&0),
            search::ms(search::percentile(&m.latencies, 50.0)),
            search::ms(search::percentile(&m.latencies, 99.0)),
            m.disk as f64 / 1e6,
        );
    }
    println!("\nbaseline: the first row; load {:.1} at the end", mem::load_average().unwrap_or(0.0));
    Ok(())
}

fn measure(
    args: &ChurnArgs,
    corpus: &Corpus,
    queries: &[crate::corpus::BenchQuery],
    batch: usize,
    path: PathBuf,
    options: IndexOptions,
) -> Result<Measured> {
    std::fs::create_dir_all(&path)?;
    let engine = Smpl::open(path.clone(), options)?;
    let index = engine.index();
    let mut rng = Rng::for_item(args.seed, 0xc4, 0);
    let mut held: Vec<usize> = Vec::new();
    let mut next_query = 0;
    let (mut latencies, mut segments) = (Vec::new(), Vec::new());
    let (written, cpu, started) = (written_bytes(), cpu_ticks(), Instant::now());
    for start in (0..corpus.packs()).step_by(batch) {
        let end = (start + batch).min(corpus.packs());
        let mut ops: Vec<IndexOp> = (start..end).map(|i| IndexOp::Upsert(corpus.pack(i))).collect();
        held.extend(start..end);
        while held.len() > args.keep {
            let gone = held.swap_remove(rng.below(held.len()));
            ops.push(IndexOp::Remove(corpus.pack(gone).pack_id));
        }
        index.apply(&ops)?;
        segments.push(index.segments());
        for _ in 0..args.queries {
            let q = Smpl::search_query(&queries[next_query % queries.len()], false);
            next_query += 1;
            let t = Instant::now();
            index.search(&q)?;
            latencies.push(t.elapsed());
        }
    }
    index.wait_merges()?;
    Ok(Measured {
        wall: started.elapsed(),
        cpu: Duration::from_secs_f64(cpu_ticks().saturating_sub(cpu) as f64 / mem::ticks_per_second()),
        written: written_bytes().saturating_sub(written),
        latencies,
        segments,
        disk: mem::disk_usage(&path),
    })
}

/// Bytes this process has caused to be written to disk.
fn written_bytes() -> u64 {
    mem::io_field("self", "write_bytes").unwrap_or(0)
}

fn cpu_ticks() -> u64 {
    mem::cpu_ticks("self").unwrap_or(0)
}
