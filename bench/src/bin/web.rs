//! Web benchmark: the server time of the search page's results fragment (the
//! index query, then the HTML of the facets and one page of rows) against the
//! bare index query as the baseline, over the search benchmark's corpus.
//!
//! The corpus and the queries are those of `smpl-bench search` (`corpus.rs`, same
//! seed): with `--index DIR` an index built there by either harness is reused when
//! it holds the corpus. Each query is turned into the search page's URL state
//! (`SearchParams`: words, genre, kind, BPM range, price ceiling), parsed as the
//! handler parses it, run on the index (one page, 50 hits), and rendered by
//! `smpl_node::web::results_fragment`, which the handler calls. Every row carries
//! a 128-point waveform, as a page of samples does.
//!
//! ```sh
//! cargo run --release -p smpl-bench --bin web -- --docs 1000000 --index /tmp/smpl-1m
//! ```

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use smpl_bench::{corpus, mem};
use smpl_index::{Index, IndexOp, IndexOptions};
use smpl_node::web::{RowInfo, SearchParams, results_fragment};
use smpl_protocol::{Identity, Manifest, PackId, SampleKind, Signed};

use corpus::{BenchQuery, Corpus};

#[derive(Parser)]
#[command(name = "web", about = "Server time of the web app's search results fragment")]
struct Args {
    /// Samples in the corpus.
    #[arg(long, default_value_t = 1_000_000)]
    docs: usize,
    #[arg(long, default_value_t = 100)]
    per_pack: usize,
    /// Timed queries (after as many again for warming up).
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where the index is (built there unless it holds the corpus already).
    #[arg(long)]
    index: Option<PathBuf>,
}

/// A waveform for every row, as the handler finds it in the pack's manifest.
struct Waves(Vec<u8>);

impl RowInfo for Waves {
    fn waveform(&self, _: &PackId, _: &str) -> Option<&[u8]> {
        Some(&self.0)
    }
    fn licensed(&self, _: &PackId) -> bool {
        false
    }
}

/// The URL state the search page would hold for `q`.
fn params(q: &BenchQuery) -> SearchParams {
    SearchParams {
        q: Some(q.words.join(" ")),
        genre: q.genre.clone(),
        kind: q.kind.map(|k| match k {
            SampleKind::Loop => "loop".to_string(),
            SampleKind::OneShot => "one-shot".to_string(),
        }),
        bpm: q.bpm.map(|(lo, hi)| format!("{lo}..{hi}")),
        max_price: q.max_price.map(|p| p.to_string()),
        ..SearchParams::default()
    }
}

#[derive(Default)]
struct Figures {
    bare: Vec<Duration>,
    fragment: Vec<Duration>,
    html: Vec<Duration>,
    bytes: usize,
    rows: usize,
    /// Distinct packs on the pages.
    packs: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let load_before = mem::load_average();
    let corpus = Corpus::new(args.docs, args.per_pack, args.seed);
    let temp = tempfile::tempdir()?;
    let path = args.index.clone().unwrap_or_else(|| temp.path().join("smpl"));
    let options = IndexOptions { writer_threads: 2, writer_heap_bytes: 256 << 20, preload: true };
    {
        let index = Index::open_with(&path, options.clone()).context("opening the index")?;
        if index.num_samples() == args.docs as u64 {
            eprintln!("reusing the index in {}", path.display());
        } else {
            eprintln!("building an index of {} samples in {}", args.docs, path.display());
            index.clear()?;
            let packs = corpus.packs();
            let mut next = 0;
            while next < packs {
                let end = (next + 250).min(packs);
                let ops: Vec<IndexOp> = (next..end).map(|i| IndexOp::Upsert(corpus.pack(i))).collect();
                index.apply(&ops)?;
                next = end;
            }
            index.wait_merges()?;
        }
    }
    // Queries on a freshly opened index, as after a node restart.
    let index = Index::open_with(&path, options)?;
    let queries: Vec<SearchParams> = corpus.queries(args.queries * 2).iter().map(params).collect();
    let waves = Waves((0..128u32).map(|i| ((i * 37) % 256) as u8).collect());
    let (warm, timed) = queries.split_at(args.queries);
    for p in warm {
        let results = index.search(&p.query().map_err(anyhow::Error::msg)?)?;
        black_box(results_fragment(p, &results, &waves));
    }
    // Two rounds of each, alternating; the second of each is reported, so that
    // both run on caches the other one warmed.
    let mut figures = Figures::default();
    for round in 0..2 {
        figures = Figures::default();
        for p in timed {
            let query = p.query().map_err(anyhow::Error::msg)?;
            let t = Instant::now();
            black_box(index.search(&query)?);
            figures.bare.push(t.elapsed());
        }
        for p in timed {
            let t = Instant::now();
            let query = p.query().map_err(anyhow::Error::msg)?;
            let results = index.search(&query)?;
            let searched = t.elapsed();
            let html = results_fragment(p, &results, &waves);
            let total = t.elapsed();
            figures.fragment.push(total);
            figures.html.push(total - searched);
            figures.bytes += html.len();
            figures.rows += results.hits.len();
            figures.packs +=
                results.hits.iter().map(|h| h.pack_id).collect::<std::collections::HashSet<_>>().len();
            black_box(html);
        }
        eprintln!("round {} done", round + 1);
    }
    let Figures { mut bare, mut fragment, mut html, bytes, rows, packs } = figures;
    bare.sort();
    fragment.sort();
    html.sort();
    let n = timed.len();
    println!("| {} samples, {n} queries, one page (up to 50 rows) | p50 | p99 | max |", args.docs);
    println!("| --- | --- | --- | --- |");
    for (name, d) in [
        ("index query (baseline)", &bare),
        ("results fragment: query + HTML", &fragment),
        ("of which the HTML", &html),
    ] {
        println!("| {name} | {} | {} | {} |", ms(percentile(d, 0.5)), ms(percentile(d, 0.99)), ms(d[n - 1]));
    }
    // What a page costs for each of its packs whose waveforms the node has not
    // cached yet: reading the signed manifest (verify, then decode).
    let identity = Identity::from_secret_bytes([7; 32]);
    let mut opens = Vec::new();
    for i in 0..corpus.packs().min(200) {
        let mut manifest = corpus.pack(i);
        manifest.author = identity.node_id();
        manifest.pack_id = PackId::derive(&manifest.author, &manifest.slug);
        let envelope = manifest.sign(&identity).map_err(|e| anyhow::anyhow!("{e}"))?;
        let bytes = envelope.as_bytes().to_vec();
        let t = Instant::now();
        black_box(Manifest::open(&bytes).map_err(|e| anyhow::anyhow!("{e}"))?);
        opens.push(t.elapsed());
    }
    opens.sort();
    println!(
        "| a pack not yet in the waveform cache: its manifest verified and decoded ({} samples) | {} | {} | {} |",
        args.per_pack,
        ms(percentile(&opens, 0.5)),
        ms(percentile(&opens, 0.99)),
        ms(opens[opens.len() - 1])
    );
    println!("\npages show {:.1} packs on average", packs as f64 / n as f64);
    println!(
        "\nfragment: {:.1} rows and {:.1} KB on average; RSS {}; 1-minute load {} before, {} after",
        rows as f64 / n as f64,
        bytes as f64 / n as f64 / 1000.0,
        mem::fmt_mb(mem::rss()),
        load_before.map_or("n/a".into(), |l| format!("{l:.2}")),
        mem::load_average().map_or("n/a".into(), |l| format!("{l:.2}"))
    );
    Ok(())
}
