//! Scale: what a real node costs when it knows a large catalogue.
//!
//! For each size in `--packs` (packs of `--per-pack` samples from `--authors` keys):
//!
//! 1. **Seeder** (built once under `--dir`, then reused): a home whose store holds the
//!    catalogue, signed listings as authors publish them: the search benchmark's
//!    corpus, each sample with a 128-point waveform and a preview hash, signed by its
//!    author's own key and stored with the node's `Store::accept_manifest`.
//! 2. **Sync**: the seeder runs as `smpl node` (127.0.0.1, mDNS off) and a fresh
//!    `smpl node` joins it with `--bootstrap`. Its RSS is read from `/proc` every 50 ms
//!    until its local API's pack search counts every pack: the time to sync and index
//!    the catalogue, the peak RSS (and peak anonymous RSS) meanwhile, and the RSS right
//!    after. With `--via gossip`, no seeder runs: a libp2p peer in this process, with
//!    a key of its own, joins the fresh node's listings topic and publishes the
//!    seeder's envelopes at `--rate` a second, and answers the node's sync requests
//!    with nothing, so that every listing comes by gossip.
//! 3. **Disk**: both nodes stop; the fresh node's store (sled and the envelope
//!    files) and index on disk (blocks allocated),
//!    against the bytes of the signed envelopes.
//! 4. **Restart**: the fresh node starts alone; the time from its start to the first
//!    answered search through the API; then the query set (30 one- and two-word
//!    queries, as a producer types them) through the API, rounds after one to warm up;
//!    then its RSS at rest.
//! 5. **Baseline**: the same queries on the node's index opened in this process,
//!    the cost of the index alone.
//!
//! Run: `cargo build --release -p smpl --bin smpl -p smpl-bench --bin scale` then
//! `./target/release/scale --packs 1000,10000` (see docs/BENCHMARKS.md, "Scale").

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;
use smpl_bench::{feed, mem, nodes};
use smpl_index::Index;
use smpl_node::Home;

use nodes::{Api, NodeProcess, api_rounds, ensure_seeder, percentile, query_set, text_query};

#[derive(Parser)]
#[command(about = "What a real node costs at 100,000 and 1,000,000 samples known")]
struct Args {
    /// Catalogue sizes in packs, comma-separated; one column each.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    packs: Vec<usize>,
    #[arg(long, default_value_t = 100)]
    per_pack: usize,
    /// Keys that sign the packs (pack i is signed by key i mod N).
    #[arg(long, default_value_t = 1000)]
    authors: usize,
    /// Where seeders are kept between runs, and fresh nodes made.
    #[arg(long, default_value = "/tmp/smpl-scale")]
    dir: PathBuf,
    /// The `smpl` binary (default: beside this one).
    #[arg(long)]
    smpl: Option<PathBuf>,
    /// API query rounds over the query set after the warm-up round.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// How the fresh node learns the catalogue: `sync` from a seeder node, or
    /// `gossip` published to it at `--rate` listings a second.
    #[arg(long, default_value = "sync")]
    via: Via,
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Longest wait for the fresh node to hold every pack.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Via {
    Sync,
    Gossip,
}

/// The figures of one catalogue size.
#[derive(Default)]
struct Column {
    samples: usize,
    envelope_bytes: u64,
    sync_secs: f64,
    peak_rss: u64,
    peak_anon: u64,
    after_rss: (u64, u64),
    store_bytes: u64,
    index_bytes: u64,
    first_search_secs: f64,
    idle_rss: (u64, u64),
    api_ms: Vec<f64>,
    index_ms: Vec<f64>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let smpl = nodes::smpl_binary(args.smpl.as_deref())?;
    let queries = query_set(args.seed);
    let mut columns = Vec::new();
    for &packs in &args.packs {
        eprintln!("== {packs} packs of {} samples", args.per_pack);
        columns.push(measure(&args, &smpl, packs, &queries)?);
    }
    print_table(&args, &columns);
    Ok(())
}

fn measure(args: &Args, smpl: &Path, packs: usize, queries: &[String]) -> Result<Column> {
    let seeder = args.dir.join(format!("seeder-{packs}x{}-{}", args.per_pack, args.authors));
    let envelope_bytes = ensure_seeder(&seeder, packs, args.per_pack, args.authors, args.seed)?;
    let fresh = args.dir.join(format!("fresh-{packs}"));
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh)?;
    }
    let mut column = Column { samples: packs * args.per_pack, envelope_bytes, ..Column::default() };

    // Sync, or gossip.
    let (seeding, feeding, node, started) = match args.via {
        Via::Sync => {
            let seeding = NodeProcess::start(smpl, &seeder, &[])?;
            seeding.settle()?;
            let addr = seeding.p2p_addr()?;
            let started = Instant::now();
            let node = NodeProcess::start(smpl, &fresh, &["--bootstrap", &addr])?;
            (Some(seeding), None, node, started)
        }
        Via::Gossip => {
            let envelopes = feed::load(&Home::new(&seeder).db_dir())?;
            let node = NodeProcess::start(smpl, &fresh, &[])?;
            let target = (node.p2p_addr()?.parse()?, Home::new(&fresh).node_info()?.node_id);
            let started = Instant::now();
            let feeding = feed::start(envelopes, target, args.rate, args.seed, nodes::Apart::default())?;
            (None, Some(feeding), node, started)
        }
    };
    let api = Api::new(&fresh)?;
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let mut last_poll = Instant::now() - Duration::from_secs(1);
    loop {
        let (rss, anon) = node.rss()?;
        column.peak_rss = column.peak_rss.max(rss);
        column.peak_anon = column.peak_anon.max(anon);
        if last_poll.elapsed() >= Duration::from_millis(500) {
            last_poll = Instant::now();
            let held = api.pack_count()?;
            if held >= packs {
                break;
            }
            if Instant::now() > deadline {
                bail!("the fresh node holds {held} of {packs} packs after {} s", args.timeout_secs);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    column.sync_secs = started.elapsed().as_secs_f64();
    column.after_rss = node.rss()?;
    node.stop()?;
    if let Some(seeding) = seeding {
        seeding.stop()?;
    }
    if let Some(feeding) = feeding {
        let sent = feeding.stop()?;
        eprintln!("gossiped {sent} listings");
    }

    // Disk.
    let home = Home::new(&fresh);
    column.store_bytes = smpl_node::budget::disk_taken(&home.db_dir());
    column.index_bytes = smpl_node::budget::disk_taken(&home.index_dir());

    // Restart, first search, the query set through the API, RSS at rest.
    let started = Instant::now();
    let node = NodeProcess::start(smpl, &fresh, &[])?;
    let api = Api::new(&fresh)?;
    while api.search(&queries[0]).is_err() {
        std::thread::sleep(Duration::from_millis(5));
    }
    column.first_search_secs = started.elapsed().as_secs_f64();
    column.api_ms = api_rounds(&api, queries, args.rounds)?;
    std::thread::sleep(Duration::from_secs(10));
    column.idle_rss = node.rss()?;
    node.stop()?;

    // Baseline: the index alone, in this process.
    let index = Index::open(&home.index_dir())?;
    for round in 0..=args.rounds {
        for q in queries {
            let t = Instant::now();
            index.search(&text_query(q))?;
            if round > 0 {
                column.index_ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    Ok(column)
}

fn print_table(args: &Args, columns: &[Column]) {
    let mb = |b: u64| format!("{:.0} MB", b as f64 / 1e6);
    let header: Vec<String> = columns.iter().map(|c| format!("{} samples", c.samples)).collect();
    let via = match args.via {
        Via::Sync => "synced from one peer".to_string(),
        Via::Gossip => format!("gossiped by one peer at {} a second", args.rate),
    };
    println!(
        "\n{} packs of {} samples from {} keys, {via}; load {:.1}\n",
        args.packs.iter().map(ToString::to_string).collect::<Vec<_>>().join(" / "),
        args.per_pack,
        args.authors,
        mem::load_average().unwrap_or(f64::NAN)
    );
    println!("| figure | {} |", header.join(" | "));
    println!("| --- |{}", " ---: |".repeat(columns.len()));
    let row = |name: &str, f: &dyn Fn(&Column) -> String| {
        println!("| {name} | {} |", columns.iter().map(f).collect::<Vec<_>>().join(" | "));
    };
    row("taken in, all indexed", &|c| format!("{:.1} s", c.sync_secs));
    row("peak RSS while taking in (anon)", &|c| format!("{} ({})", mb(c.peak_rss), mb(c.peak_anon)));
    row("RSS right after (anon)", &|c| format!("{} ({})", mb(c.after_rss.0), mb(c.after_rss.1)));
    row("RSS at rest after a restart (anon)", &|c| format!("{} ({})", mb(c.idle_rss.0), mb(c.idle_rss.1)));
    row("envelopes", &|c| mb(c.envelope_bytes));
    row("store on disk (sled and envelope files)", &|c| mb(c.store_bytes));
    row("index on disk", &|c| mb(c.index_bytes));
    row("stored / envelopes", &|c| {
        format!("{:.2}×", (c.store_bytes + c.index_bytes) as f64 / c.envelope_bytes.max(1) as f64)
    });
    row("search through the API p50 / p99", &|c| {
        format!("{:.2} / {:.2} ms", percentile(&c.api_ms, 0.5), percentile(&c.api_ms, 0.99))
    });
    row("baseline: the index alone p50 / p99", &|c| {
        format!("{:.2} / {:.2} ms", percentile(&c.index_ms, 0.5), percentile(&c.index_ms, 0.99))
    });
    row("restart to first answered search", &|c| format!("{:.2} s", c.first_search_secs));
}
