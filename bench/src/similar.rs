//! Benchmark: "similar sounds" over a large index. A smpl-index of the
//! benchmark corpus (every sample with a descriptor, clustered by instrument like
//! real ones) answers `similar_to` queries for random samples: top 10 nearest in
//! the whole index, the exact scan over per-segment descriptor arrays, plus
//! finding the query sample and reading the 10 hits. The baseline, in the same
//! run, is the straightforward way: the same descriptors as `f32` vectors in one
//! array and an exact float scan, without finding or reading anything.

use std::time::{Duration, Instant};

use anyhow::Result;
use smpl_index::{Index, IndexOp, IndexOptions, SampleRef, SearchQuery};
use smpl_protocol::DESCRIPTOR_DIMS;

use crate::corpus::Corpus;
use crate::mem;
use crate::rng::Rng;

#[derive(clap::Args, Debug)]
pub struct SimilarArgs {
    /// Samples (documents) in the corpus.
    #[arg(long, default_value_t = 1_000_000)]
    docs: usize,
    #[arg(long, default_value_t = 100)]
    per_pack: usize,
    /// Measured queries.
    #[arg(long, default_value_t = 300)]
    queries: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn percentile(lat: &mut [Duration], p: f64) -> Duration {
    lat.sort();
    lat[((lat.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

pub fn run(args: SimilarArgs) -> Result<()> {
    let corpus = Corpus::new(args.docs, args.per_pack, args.seed);
    let dir = tempfile::tempdir()?;
    eprintln!("similar: indexing {} samples in {} packs", corpus.docs, corpus.packs());
    let started = Instant::now();
    let mut floats: Vec<[f32; DESCRIPTOR_DIMS]> = Vec::with_capacity(corpus.docs);
    {
        let index = Index::open_with(
            dir.path(),
            IndexOptions { writer_threads: 2, writer_heap_bytes: 256 << 20, preload: true },
        )?;
        let mut batch = Vec::new();
        for i in 0..corpus.packs() {
            let pack = corpus.pack(i);
            for s in &pack.samples {
                let d = s.descriptor.map(|d| d.0).unwrap_or_default();
                floats.push(d.map(f32::from));
            }
            batch.push(IndexOp::Upsert(pack));
            if batch.len() == 250 {
                index.apply(&batch)?;
                batch.clear();
            }
        }
        index.apply(&batch)?;
        index.wait_merges()?;
    }
    eprintln!("similar: indexed in {:.1} s", started.elapsed().as_secs_f64());

    // Queries on a freshly opened index, as after a node restart.
    mem::reset_peak();
    let idle = mem::rss();
    let index = Index::open(dir.path())?;
    let mut rng = Rng::for_item(args.seed, 77, 0);
    let targets: Vec<(usize, usize)> =
        (0..args.queries).map(|_| (rng.below(corpus.packs()), rng.below(args.per_pack))).collect();
    let query = |(pack, sample): (usize, usize)| -> Result<Duration> {
        let manifest = corpus.pack(pack);
        let name = manifest.samples[sample % manifest.samples.len()].name.clone();
        let q = SearchQuery {
            similar_to: Some(SampleRef { pack_id: manifest.pack_id, sample: name }),
            limit: 10,
            ..Default::default()
        };
        let t = Instant::now();
        let results = index.search(&q)?;
        let took = t.elapsed();
        anyhow::ensure!(results.hits.len() == 10, "only {} hits", results.hits.len());
        Ok(took)
    };
    let first = query(targets[0])?;
    let mut smpl: Vec<Duration> = targets.iter().map(|t| query(*t)).collect::<Result<_>>()?;
    let peak = mem::peak_rss();
    let rss = mem::rss();

    let mut naive = Vec::with_capacity(targets.len());
    for (i, _) in targets.iter().enumerate() {
        let target = floats[(i * 7919) % floats.len()];
        let t = Instant::now();
        let mut best: Vec<(f32, usize)> = Vec::with_capacity(11);
        for (j, v) in floats.iter().enumerate() {
            let d: f32 = v.iter().zip(&target).map(|(a, b)| (a - b) * (a - b)).sum();
            if best.len() < 10 || d < best[best.len() - 1].0 {
                let at = best.partition_point(|(x, _)| *x <= d);
                best.insert(at, (d, j));
                best.truncate(10);
            }
        }
        naive.push(t.elapsed());
        std::hint::black_box(&best);
    }

    println!("| {} samples, top 10 | p50 | p99 | first query (loads the arrays) |", corpus.docs);
    println!("| --- | --- | --- | --- |");
    println!(
        "| smpl `similar_to` (exact, i8 arrays per segment) | {} | {} | {} |",
        ms(percentile(&mut smpl, 0.5)),
        ms(percentile(&mut smpl, 0.99)),
        ms(first)
    );
    println!(
        "| baseline: exact f32 scan of one array | {} | {} | — |",
        ms(percentile(&mut naive, 0.5)),
        ms(percentile(&mut naive, 0.99))
    );
    println!(
        "\nRSS before opening {}, after the queries {} (peak {}); load average {:.2}",
        mem::fmt_mb(idle),
        mem::fmt_mb(rss),
        mem::fmt_mb(peak),
        mem::load_average().unwrap_or(0.0)
    );
    Ok(())
}
