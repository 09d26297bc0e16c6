//! Large listings: a late joiner syncs a catalogue of listings of about 4 MB each
//! from one peer, and no `Fetch` answer passes the size a reader takes.
//!
//! 1. **Seeder** (built once under `--dir`, then reused): a home whose store holds
//!    `--listings` packs of `--samples` samples each, signed by `--listings /
//!    --per-author` keys. Each is a pack of the search benchmark's corpus with a
//!    256-point waveform (the most a listing may carry) and hashes for every
//!    sample, and its sample names under a folder path long enough that the signed
//!    envelope comes to `--mb` megabytes, stored with `Store::accept_manifest`.
//! 2. **Sync**: the seeder runs as `smpl node` (127.0.0.1, mDNS off) and indexes its
//!    catalogue; its RSS then is the baseline. A fresh `smpl node` joins it with
//!    `--bootstrap`. The RSS of both is read from `/proc` every 100 ms, and the
//!    joiner's status every second, until it has stored every listing and its
//!    index counts every pack.
//! 3. **Answers**: from the seeder's status, the `Fetch` answers it sent, the bytes
//!    of the largest against the most a reader takes
//!    (`wire::MAX_SYNC_RESPONSE_BYTES`), and the ids they left for a later answer;
//!    from the joiner's, the fetches that failed and the listings its budget
//!    refused or evicted.
//!
//! Both nodes get a listing budget (`--listings-mb`) that holds the catalogue: the
//! default of a laptop (2 GiB) does not, and this measures sync, not eviction.
//!
//! Run: `cargo build --release -p smpl --bin smpl -p smpl-bench --bin large` then
//! `./target/release/large` (see docs/BENCHMARKS.md, "Large listings").

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use smpl_bench::{corpus, mem, nodes};
use smpl_node::{Home, Store};
use smpl_protocol::{Identity, Manifest, Signed, limits};

use corpus::Corpus;
use nodes::{Api, NodeProcess, author_key, catalogue_pack};

#[derive(Parser)]
#[command(about = "A late joiner syncs 600 listings of 4 MB each from one peer")]
struct Args {
    #[arg(long, default_value_t = 600)]
    listings: usize,
    /// The size of each signed listing, in megabytes (10^6 bytes).
    #[arg(long, default_value_t = 4.0)]
    mb: f64,
    /// Samples in each listing (at most 4,096).
    #[arg(long, default_value_t = 4000)]
    samples: usize,
    /// Listings signed by each key.
    #[arg(long, default_value_t = 10)]
    per_author: usize,
    /// The listing budget of both nodes, megabytes.
    #[arg(long, default_value_t = 16_384)]
    listings_mb: u64,
    /// Where the seeder is kept between runs, and the joiner made.
    #[arg(long, default_value = "/tmp/smpl-large")]
    dir: PathBuf,
    /// The `smpl` binary (default: beside this one).
    #[arg(long)]
    smpl: Option<PathBuf>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Longest wait for the joiner to hold and index every listing.
    #[arg(long, default_value_t = 3600)]
    timeout_secs: u64,
}

/// The seeder's catalogue: listings, their bytes in all, the smallest and largest.
struct Catalogue {
    listings: usize,
    bytes: u64,
    smallest: usize,
    largest: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let smpl = nodes::smpl_binary(args.smpl.as_deref())?;
    let target = (args.mb * 1e6) as usize;
    anyhow::ensure!(
        target <= limits::MAX_ENVELOPE_BYTES,
        "a listing holds at most {} bytes",
        limits::MAX_ENVELOPE_BYTES
    );
    let seeder = args.dir.join(format!("seeder-{}x{}-{}", args.listings, target, args.samples));
    let catalogue = ensure_catalogue(&seeder, &args, target)?;
    let fresh = args.dir.join("joiner");
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh)?;
    }
    let budget = args.listings_mb.to_string();

    eprintln!("== the seeder starts and indexes its catalogue");
    let seeding = NodeProcess::start(&smpl, &seeder, &["--listings-mb", &budget])?;
    seeding.settle()?;
    std::thread::sleep(Duration::from_secs(5));
    let seeder_rest = seeding.rss()?.0;
    let addr = seeding.p2p_addr()?;

    eprintln!("== a fresh node joins it");
    let started = Instant::now();
    let joiner = NodeProcess::start(&smpl, &fresh, &["--bootstrap", &addr, "--listings-mb", &budget])?;
    let api = Api::new(&fresh)?;
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let (mut seeder_peak, mut joiner_peak) = (seeder_rest, 0);
    let mut stored_in = None;
    let mut last_poll = Instant::now();
    let indexed_in = loop {
        seeder_peak = seeder_peak.max(seeding.rss()?.0);
        joiner_peak = joiner_peak.max(joiner.rss()?.0);
        if last_poll.elapsed() >= Duration::from_secs(1) {
            last_poll = Instant::now();
            let stored = api.get("/v1/status")?["listings"].as_u64().context("no listings in the status")?;
            if stored_in.is_none() && stored as usize >= catalogue.listings {
                stored_in = Some(started.elapsed());
            }
            let indexed = api.pack_count()?;
            if stored_in.is_some() && indexed >= catalogue.listings {
                break started.elapsed();
            }
            if Instant::now() > deadline {
                bail!(
                    "after {} s the joiner stored {stored} and indexed {indexed} of {}",
                    args.timeout_secs,
                    catalogue.listings
                );
            }
            if last_poll.duration_since(started).as_secs().is_multiple_of(10) {
                eprintln!("  {:.0} s: {stored} stored, {indexed} indexed", started.elapsed().as_secs_f64());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let seeder_status = Api::new(&seeder)?.get("/v1/status")?;
    let joiner_status = api.get("/v1/status")?;
    joiner.stop()?;
    seeding.stop()?;

    let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
    let sync = |status: &serde_json::Value, field: &str| status["sync"][field].as_u64().unwrap_or(0);
    let dropped = |field: &str| joiner_status["dropped"][field].as_u64().unwrap_or(0);
    let cap = smpl_protocol::wire::MAX_SYNC_RESPONSE_BYTES;
    println!(
        "\n{} listings of {}–{} ({:.2} GB), {} samples each, from {} keys, synced from one peer; load {:.1}\n",
        catalogue.listings,
        mb(catalogue.smallest as u64),
        mb(catalogue.largest as u64),
        catalogue.bytes as f64 / 1e9,
        args.samples,
        catalogue.listings.div_ceil(args.per_author),
        mem::load_average().unwrap_or(f64::NAN)
    );
    println!("| figure | value |");
    println!("| --- | ---: |");
    let row = |name: &str, value: String| println!("| {name} | {value} |");
    row("stored by the joiner", format!("{:.1} s", stored_in.unwrap_or_default().as_secs_f64()));
    row("searchable on the joiner (all indexed)", format!("{:.1} s", indexed_in.as_secs_f64()));
    row("`Fetch` answers the seeder sent", sync(&seeder_status, "answers").to_string());
    row(
        "largest answer / the most a reader takes",
        format!(
            "{} / {} ({:.2}×)",
            mb(sync(&seeder_status, "answer_bytes_max")),
            mb(cap),
            sync(&seeder_status, "answer_bytes_max") as f64 / cap as f64
        ),
    );
    row("ids left for a later answer", sync(&seeder_status, "answer_deferred").to_string());
    row("listings the joiner fetched", sync(&joiner_status, "fetched").to_string());
    row("fetches that failed", sync(&joiner_status, "fetches_failed").to_string());
    row(
        "refused / evicted by the joiner's budget",
        format!("{} / {}", dropped("listings_refused"), dropped("listings_evicted")),
    );
    row(
        "seeder RSS at rest (baseline) / peak while answering",
        format!("{} / {}", mb(seeder_rest), mb(seeder_peak)),
    );
    row("joiner peak RSS", mb(joiner_peak));
    Ok(())
}

/// Builds the seeder's store once (a marker file says it is complete).
fn ensure_catalogue(dir: &Path, args: &Args, target: usize) -> Result<Catalogue> {
    let marker = dir.join("complete");
    if let Ok(text) = std::fs::read_to_string(&marker) {
        let figures: Vec<u64> = text.split_whitespace().map(str::parse).collect::<Result<_, _>>()?;
        if let [listings, bytes, smallest, largest] = figures[..] {
            return Ok(Catalogue {
                listings: listings as usize,
                bytes,
                smallest: smallest as usize,
                largest: largest as usize,
            });
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    let home = Home::new(dir);
    home.init()?;
    let store = Store::open(&home.db_dir())?;
    let corpus = Corpus::new(args.listings * args.samples, args.samples, args.seed);
    let started = Instant::now();
    let mut catalogue = Catalogue { listings: args.listings, bytes: 0, smallest: usize::MAX, largest: 0 };
    let mut key = None;
    for i in 0..args.listings {
        if i % args.per_author == 0 {
            key = Some(author_key(args.seed, i / args.per_author));
        }
        let key = key.as_ref().context("no key")?;
        let m = sized_pack(&corpus, i, key, args.seed, target)?;
        let envelope = m.sign(key)?;
        let len = envelope.as_bytes().len();
        catalogue.bytes += len as u64;
        catalogue.smallest = catalogue.smallest.min(len);
        catalogue.largest = catalogue.largest.max(len);
        store.accept_manifest(&m, &envelope, false)?;
        if i % 50 == 49 {
            eprintln!("  seeder: {} listings signed and stored", i + 1);
        }
    }
    store.flush()?;
    drop(store);
    eprintln!(
        "  seeder: {} listings, {} bytes, {:.0} s",
        args.listings,
        catalogue.bytes,
        started.elapsed().as_secs_f64()
    );
    let Catalogue { listings, bytes, smallest, largest } = &catalogue;
    std::fs::write(&marker, format!("{listings} {bytes} {smallest} {largest}"))?;
    Ok(catalogue)
}

/// Pack `i` with its sample names under a folder path that brings its signed
/// envelope to about `target` bytes, as a large pack's sorted folders do.
fn sized_pack(corpus: &Corpus, i: usize, key: &Identity, seed: u64, target: usize) -> Result<Manifest> {
    let mut m = catalogue_pack(corpus, i, key, seed, limits::MAX_WAVEFORM_POINTS);
    let short = target.saturating_sub(m.sign(key)?.as_bytes().len());
    let longest = m.samples.iter().map(|s| s.name.len()).max().unwrap_or(0);
    // Each name gains its share of what is missing (a byte of length prefix may
    // grow with it), within the longest name a listing may carry.
    let pad = (short / m.samples.len().max(1)).saturating_sub(1).min(limits::MAX_FILE_NAME - longest);
    if pad > 1 {
        let words = ["Drums", "Percussion", "Loops", "One Shots", "Processed", "Wet", "Dry", "Stems"];
        for (n, s) in m.samples.iter_mut().enumerate() {
            let mut folder = String::new();
            while folder.len() < pad {
                folder.push_str(words[(n + folder.len()) % words.len()]);
                folder.push('/');
            }
            folder.truncate(pad - 1);
            s.name = format!("{}/{}", folder.trim_end_matches('/'), s.name);
        }
        m.content = smpl_protocol::collection::content_hash(m.samples.iter().map(|s| (&s.name, s.hash)));
    }
    Ok(m)
}
