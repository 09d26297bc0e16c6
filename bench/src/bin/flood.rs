//! Flood: a node under a listing flood keeps what its producer cares about.
//!
//! 1. **Seeder** (built once under `--dir`, like the scale benchmark's): a home whose
//!    store holds `--listings` valid signed listings from `--authors` fresh keys.
//! 2. **The producer's node** T runs with a listing budget (`--listings-mb`,
//!    `--max-listings`) and meets an honest author H (a second node), whose free
//!    pack T fetches: H becomes an author T has dealt with.
//! 3. **Idle**: the query set through T's API.
//! 4. **Flood**: T connects to the seeder, which offers every listing by sync, and
//!    `--gossip-peers` peers of their own keys (`feed.rs`) publish the same listings
//!    to T over gossip, from the other end of the list, `--gossip-rate` a second
//!    each (the seeder and the gossip peers at nice `--flood-nice`; with
//!    `--split-cpus`, they and H (its publishes' client too) on CPUs of their own,
//!    T and the harness's searches on CPU 0: peers on other machines, on a machine
//!    too small to hold them apart otherwise). While T takes them in, its RSS is
//!    sampled every 50 ms and the query set runs through its API round after
//!    round; from a few seconds in, H publishes a new pack every 10 s or so, and
//!    the time from the start of each `smpl publish` until a search on T finds it
//!    is taken (the publish runs beside the searches, so T may find it before the
//!    publish answers). The flood is over when T has stored, evicted or refused
//!    as many listings as the seeder offers (or when nothing moved for 90 s: then
//!    the table says so); the gossip peers stop then.
//! 5. **After**: the seeder and H stop, and once T is at rest (under 5 % of a core
//!    for a second: the merges the flood left behind are done), T's listings
//!    against the budget, its disk, the same query set at rest (the index as full
//!    as the budget lets it be), the queries of the flood's rounds at rest, at the
//!    flood's pace and back to back, and whether H's packs are all still there and
//!    searchable.
//!
//! The nodes share one disk here, where on a network each would have its own: the
//! table gives what each node wrote during the flood, and how long a 4 KB write
//! and fsync took on that disk meanwhile (one every 100 ms, `DiskProbe`), since a
//! publish waits for its own fsyncs.
//!
//! Run: `cargo build --release -p smpl --bin smpl -p smpl-bench --bin flood` then
//! `./target/release/flood` (see docs/BENCHMARKS.md, "Listing flood"). With
//! `RUST_LOG=warn,smpl_node::search=debug` the nodes log each search's timings, and
//! the table adds where the producer's searches spent their time in each phase, and
//! how often they slept or were preempted while they ran. The
//! table always says, per search of each phase, how long the harness's searching
//! thread and the node's threads waited for a core, and which threads ran
//! (`/proc/.../schedstat`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use clap::Parser;
use smpl_bench::{feed, mem, nodes};
use smpl_node::{Home, Multiaddr};

use nodes::{Apart, Api, NodeProcess, api_rounds, ensure_seeder, percentile, query_set, smpl_json};

/// Rounds of the query set before and after the flood: 600 searches, so that their
/// p99 is not one slow search.
const REST_ROUNDS: usize = 20;

/// The queries searched in each round during the flood, and the pause after
/// them. The searches at rest are also run at this pace, so that the two compare
/// like with like: back to back, they find the node's threads and caches warm.
const PACED_QUERIES: usize = 3;
const PACE: Duration = Duration::from_millis(50);

/// The share of a core under which the producer's node counts as at rest.
const QUIET_SHARE: f64 = 0.05;

/// When the honest author first publishes during the flood, and how long it
/// waits after one publish was found before the next.
const FIRST_PUBLISH: Duration = Duration::from_secs(5);
const PUBLISH_EVERY: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(about = "A node under a flood of valid listings from fresh keys")]
struct Args {
    /// Listings the flood offers.
    #[arg(long, default_value_t = 100_000)]
    listings: usize,
    /// Fresh keys that sign them (listing i by key i mod N).
    #[arg(long, default_value_t = 10_000)]
    authors: usize,
    /// Samples per flooded listing.
    #[arg(long, default_value_t = 4)]
    per_pack: usize,
    /// The producer's node's budget: megabytes of listings of others.
    #[arg(long, default_value_t = 32)]
    listings_mb: u64,
    /// The producer's node's budget: listings of others.
    #[arg(long, default_value_t = 20_000)]
    max_listings: usize,
    /// Where the seeder is kept between runs, and the other homes made.
    #[arg(long, default_value = "/tmp/smpl-flood")]
    dir: PathBuf,
    /// The `smpl` binary (default: beside this one).
    #[arg(long)]
    smpl: Option<PathBuf>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Peers that also push the listings over gossip (0: sync alone).
    #[arg(long, default_value_t = 4)]
    gossip_peers: usize,
    /// Listings each gossip peer publishes a second.
    #[arg(long, default_value_t = 200)]
    gossip_rate: u32,
    /// Nice value of the flood's peers (the seeder and the gossip peers): 19
    /// stands in for peers on other machines, whose work does not take the
    /// producer's cores (0: they share them alike).
    #[arg(long, default_value_t = 0)]
    flood_nice: i32,
    /// Keeps the producer's node and the harness's searches on CPU 0, and the
    /// flood's peers and the honest author (node and client) on the other CPUs:
    /// they stand in for other machines, and the producer keeps a core of its
    /// own (at rest too).
    #[arg(long)]
    split_cpus: bool,
    /// Longest the flood may take.
    #[arg(long, default_value_t = 900)]
    timeout_secs: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let smpl = nodes::smpl_binary(args.smpl.as_deref())?;
    let queries = query_set(args.seed);

    let seeder = args.dir.join(format!("seeder-{}x{}-{}", args.listings, args.per_pack, args.authors));
    let envelope_bytes = ensure_seeder(&seeder, args.listings, args.per_pack, args.authors, args.seed)?;
    let (t_home, h_home) = (args.dir.join("producer"), args.dir.join("honest"));
    for home in [&t_home, &h_home] {
        if home.exists() {
            std::fs::remove_dir_all(home)?;
        }
        let _ = std::fs::remove_file(nodes::node_log(home));
    }

    // Everything started from here on runs where this thread does, unless held
    // apart: the producer's node and its searches.
    let others: Option<Vec<usize>> = if args.split_cpus {
        let cpus = nodes::cpus();
        anyhow::ensure!(cpus > 1, "--split-cpus needs at least two CPUs");
        nodes::pin_here(&[0])?;
        Some((1..cpus).collect())
    } else {
        None
    };
    let flood_apart = Apart { nice: args.flood_nice, cpus: others.clone() };

    // The honest author and the producer who fetched from it. The author logs how
    // long each step of its publishes took (an info and a debug line, kept under
    // the harness's RUST_LOG too).
    let filter = std::env::var("RUST_LOG")
        .ok()
        .map(|log| format!("{log},smpl_node::node::catalog=info,smpl_node::publish=debug"));
    let honest = NodeProcess::start_apart(
        &smpl,
        &h_home,
        &[],
        &Apart { nice: 0, cpus: others.clone() },
        filter.as_deref(),
    )?;
    let h_id = Home::new(&h_home).node_info()?.node_id.to_string();
    let budget = [
        "--listings-mb".to_string(),
        args.listings_mb.to_string(),
        "--max-listings".into(),
        args.max_listings.to_string(),
        "--bootstrap".into(),
        honest.p2p_addr()?,
    ];
    let budget: Vec<&str> = budget.iter().map(String::as_str).collect();
    let producer = NodeProcess::start(&smpl, &t_home, &budget)?;
    let api = Api::new(&t_home)?;
    let idle_publish = Instant::now();
    let first = publish(&smpl, &h_home, &args.dir, "Honest Keys", 0)?;
    let idle_publish = idle_publish.elapsed().as_secs_f64();
    wait_for(&api, &first, Duration::from_secs(30))?;
    smpl_json(&smpl, &t_home, &["fetch", &first, "--out", args.dir.join("library").to_str().unwrap()])?;

    let times_at_idle = CoreTimes::now(&producer)?;
    let idle = api_rounds(&api, &queries, REST_ROUNDS)?;
    let idle_times = CoreTimes::now(&producer)?.since(&times_at_idle);

    // The flood: the gossip peers' shares, from the end of the list (sync takes
    // them in pack id order), dealt out in turn.
    let mut shares = vec![Vec::new(); args.gossip_peers];
    if args.gossip_peers > 0 {
        for (i, envelope) in feed::load(&Home::new(&seeder).db_dir())?.into_iter().rev().enumerate() {
            shares[i % args.gossip_peers].push(envelope);
        }
    }
    let seeding = NodeProcess::start_apart(&smpl, &seeder, &[], &flood_apart, None)?;
    seeding.settle()?;
    let log = nodes::node_log(&t_home);
    let log_at_flood = log_len(&log);
    let times_at_flood = CoreTimes::now(&producer)?;
    let started = Instant::now();
    smpl_json(&smpl, &t_home, &["connect", &seeding.p2p_addr()?])?;
    let target: (Multiaddr, _) = (producer.p2p_addr()?.parse()?, Home::new(&t_home).node_info()?.node_id);
    let feeders = shares
        .into_iter()
        .enumerate()
        .map(|(i, share)| {
            feed::start(
                share,
                target.clone(),
                args.gossip_rate,
                args.seed + 1 + i as u64,
                flood_apart.clone(),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let (mut peak_rss, mut peak_anon) = (0u64, 0u64);
    let mut during = Vec::new();
    let written_before = [producer.written()?, honest.written()?, seeding.written()?];
    let probe = DiskProbe::start(&args.dir.join("disk-probe"), others.clone())?;
    // The honest author's publishes run beside the searches, so that the producer
    // can be seen to find one before `smpl publish` has answered. Its client (the
    // pack's files, the `smpl publish` process) runs where the author's node does:
    // on a network it is the author's machine that runs it, not the producer's.
    let mut honest_publishes: Vec<HonestPublish> = Vec::new();
    let mut flood_over = false;
    let mut last = (0u64, 0u64, 0u64);
    let mut moved = Instant::now();
    let mut last_status = Instant::now();
    loop {
        let (rss, anon) = producer.rss()?;
        peak_rss = peak_rss.max(rss);
        peak_anon = peak_anon.max(anon);
        timed_searches(&api, &queries[..PACED_QUERIES], &mut during)?;
        let next_due = match honest_publishes.last() {
            None => started.elapsed() > FIRST_PUBLISH,
            Some(last) => last.done_for(PUBLISH_EVERY),
        };
        if next_due && !flood_over {
            let variant = honest_publishes.len() as u32 + 1;
            let title = format!("Honest Keys {}", variant + 1);
            let (smpl, home, dir, t) = (smpl.clone(), h_home.clone(), args.dir.clone(), title.clone());
            let cpus = others.clone();
            let publishing = std::thread::spawn(move || {
                if let Some(cpus) = &cpus {
                    nodes::pin_here(cpus)?;
                }
                publish(&smpl, &home, &dir, &t, variant)
            });
            honest_publishes.push(HonestPublish::new(title, publishing));
        }
        if let Some(publish) = honest_publishes.last_mut() {
            publish.look(&api, &h_id)?;
        }
        if last_status.elapsed() >= Duration::from_millis(500) {
            last_status = Instant::now();
            let now = taken_in(&api.get("/v1/status")?);
            if now != last {
                last = now;
                moved = Instant::now();
            }
            flood_over = total(now) >= args.listings as u64 || moved.elapsed() > Duration::from_secs(90);
            let published = honest_publishes.last().is_some_and(|p| p.done_for(Duration::ZERO));
            if flood_over && published {
                break;
            }
            if started.elapsed() > Duration::from_secs(args.timeout_secs) {
                bail!("the flood still moves after {} s: {now:?}", args.timeout_secs);
            }
        }
        std::thread::sleep(PACE);
    }
    let flood_secs = (moved - started).as_secs_f64();
    let written = [producer.written()?, honest.written()?, seeding.written()?];
    let written: Vec<u64> = written.iter().zip(written_before).map(|(now, before)| now - before).collect();
    let fsyncs = probe.stop();
    let during_times = CoreTimes::now(&producer)?.since(&times_at_flood);
    // The other nodes stop with the flood, so that the figures after it are at
    // rest: the seeder's next sync rounds would offer again the gossip listings
    // the producer dropped unchecked, and the honest author, forwarded the flood,
    // holds them too.
    let gossiped: u64 = feeders.into_iter().map(feed::Feeding::stop).sum::<Result<u64>>()?;
    seeding.stop()?;
    let honest_status = Api::new(&h_home)?.get("/v1/status")?;
    honest.stop()?;
    let status = api.get("/v1/status")?;
    // At rest is once the work the flood left behind (segment merges, mostly) is done.
    let (settling, quiet) = producer.quiet(QUIET_SHARE, Duration::from_secs(120))?;
    let quiet_status = api.get("/v1/status")?;
    let log_at_rest = log_len(&log);
    let times_at_rest = CoreTimes::now(&producer)?;
    let after = api_rounds(&api, &queries, REST_ROUNDS)?;
    let after_times = CoreTimes::now(&producer)?.since(&times_at_rest);
    let log_at_paced = log_len(&log);
    let times_at_paced = CoreTimes::now(&producer)?;
    let paced = paced_rounds(&api, &producer, &queries[..PACED_QUERIES], REST_ROUNDS * queries.len())?;
    let paced_times = CoreTimes::now(&producer)?.since(&times_at_paced);
    // The same queries back to back: what the pace alone does.
    let log_at_unpaced = log_len(&log);
    let unpaced = api_rounds(&api, &queries[..PACED_QUERIES], paced.len() / PACED_QUERIES)?;
    let taken_at_rest =
        total(taken_in(&api.get("/v1/status")?)).saturating_sub(total(taken_in(&quiet_status)));
    let timings =
        search_timings(&log, &[0, log_at_flood, log_at_rest, log_at_paced, log_at_unpaced, log_len(&log)])?;
    let mut honest_packs = vec![first];
    for publish in &honest_publishes {
        honest_packs.push(publish.pack.clone().expect("answered"));
    }
    let kept = honest_packs.iter().filter(|pack| api.has_pack(pack)).count();
    let mut found = usize::from(found_by_search(&api, "Honest Keys", &h_id)?);
    for publish in &honest_publishes {
        found += usize::from(found_by_search(&api, &publish.title, &h_id)?);
    }
    let rest_rss = producer.rss()?;
    producer.stop()?;
    let home = Home::new(&t_home);
    let (store, index) =
        (smpl_node::budget::disk_taken(&home.db_dir()), smpl_node::budget::disk_taken(&home.index_dir()));

    let mb = |b: u64| format!("{:.0} MB", b as f64 / 1e6);
    let ms = |v: &[f64]| format!("{:.2} / {:.2} ms", percentile(v, 0.5), percentile(v, 0.99));
    println!(
        "\n{} listings of {} samples from {} keys ({} of envelopes); budget {} MB, {} listings; flood's peers at nice {}{}; load {:.1}\n",
        args.listings,
        args.per_pack,
        args.authors,
        mb(envelope_bytes),
        args.listings_mb,
        args.max_listings,
        args.flood_nice,
        if args.split_cpus { ", on CPUs apart from the producer's" } else { "" },
        mem::load_average().unwrap_or(f64::NAN)
    );
    println!("| figure | value |");
    println!("| --- | ---: |");
    println!("| flood taken in (last listing stored, evicted or refused) | {flood_secs:.0} s |");
    println!("| listings offered / taken in | {} / {} |", args.listings, total(last));
    println!(
        "| listings kept / evicted / refused (declined forgotten) | {} / {} / {} ({}) |",
        status["listings"],
        status["dropped"]["listings_evicted"],
        status["dropped"]["listings_refused"],
        status["dropped"]["declined_forgotten"]
    );
    println!(
        "| listings published over gossip by {} peers, {} a second each | {gossiped} |",
        args.gossip_peers, args.gossip_rate
    );
    println!(
        "| the producer's node at rest (under {:.0} % of a core for a second) after the flood | {} {:.0} s |",
        QUIET_SHARE * 100.0,
        if quiet { "in" } else { "**not** in" },
        settling.as_secs_f64()
    );
    println!("| listings taken in while the searches at rest ran | {taken_at_rest} |");
    println!("| peak RSS during the flood (anon) | {} ({}) |", mb(peak_rss), mb(peak_anon));
    println!("| RSS after the flood (anon) | {} ({}) |", mb(rest_rss.0), mb(rest_rss.1));
    println!(
        "| store (sled and envelope files) + index on disk, and their sum / the budget | {} + {} ({:.2}×) |",
        mb(store),
        mb(index),
        (store + index) as f64 / (args.listings_mb << 20) as f64
    );
    println!("| search p50 / p99, idle before the flood | {} |", ms(&idle));
    println!("| search p50 / p99, during the flood | {} |", ms(&during));
    println!("| search p50 / p99, at rest after it | {} |", ms(&after));
    println!(
        "| search p50 / p99, at rest after it, the flood's {PACED_QUERIES} queries paced as during it / back to back | {} / {} |",
        ms(&paced),
        ms(&unpaced)
    );
    let p99 = |v: &[f64]| percentile(v, 0.99);
    println!(
        "| search p99 during the flood / at rest: all queries back to back; the flood's, paced as during it | {:.2}×; {:.2}× |",
        p99(&during) / p99(&after),
        p99(&during) / p99(&paced)
    );
    let phases = [
        "idle before the flood",
        "during the flood",
        "at rest after it",
        "at rest, paced",
        "at rest, the flood's queries",
    ];
    for (phase, times) in phases.iter().zip(&timings) {
        println!("| {}", search_timing_row(phase, times));
    }
    for (phase, times, searches) in [
        ("idle before the flood", &idle_times, idle.len()),
        ("during the flood", &during_times, during.len()),
        ("at rest after it", &after_times, after.len()),
        ("at rest, paced", &paced_times, paced.len()),
    ] {
        println!("{}", times.rows(phase, searches));
    }
    let slowest = honest_publishes.iter().max_by(|a, b| a.found.cmp(&b.found)).expect("published");
    let list = |secs: &dyn Fn(&HonestPublish) -> f64| {
        honest_publishes.iter().map(|p| format!("{:.2}", secs(p))).collect::<Vec<_>>().join(", ")
    };
    println!(
        "| honest listings during the flood, from the start of `smpl publish` to found by a search on the producer: the slowest of {}; each (s) | {:.2} s; {} |",
        honest_publishes.len(),
        slowest.found_secs(),
        list(&HonestPublish::found_secs)
    );
    // When each was announced, from the author's log, against when the producer
    // found it (both clocks this machine's).
    let author_log = std::fs::read_to_string(nodes::node_log(&h_home))?;
    let since_announced = |p: &HonestPublish| match (p.found_at, announced_at(&author_log, &p.title)) {
        (Some(found), Some(announced)) => day_seconds_between(announced, found),
        _ => f64::NAN,
    };
    let latest = honest_publishes.iter().map(since_announced).fold(f64::NAN, f64::max);
    println!(
        "| the same, from the author's announcement to found: the slowest; each (s) | {latest:.2} s; {} |",
        list(&since_announced)
    );
    println!(
        "| the same, from the start of `smpl publish` to the announcement (s) | {} |",
        list(&|p| p.found_secs() - since_announced(p))
    );
    println!(
        "| the honest author's publishes themselves, during the flood (s); at idle | {}; {idle_publish:.2} s |",
        list(&|p| p.answered.unwrap_or(f64::NAN))
    );
    println!(
        "| the honest author's slowest publish to be found, from its log | {} |",
        publish_steps(&h_home, &slowest.title)?
    );
    println!(
        "| the honest author's packs kept / found by search, of all it published | {kept} / {found} of {} |",
        honest_packs.len()
    );
    println!(
        "| written to disk during the flood by the producer's node / the honest author's / the seeder | {} / {} / {} |",
        mb(written[0]),
        mb(written[1]),
        mb(written[2])
    );
    let over = |secs: f64| fsyncs.iter().filter(|d| d.as_secs_f64() > secs).count();
    let fsync_ms: Vec<f64> = fsyncs.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    println!(
        "| a 4 KB write and fsync on the nodes' disk during the flood, every 100 ms: p50 / p99 / longest; over 1 s, over 2 s | {:.1} / {:.1} ms / {:.2} s; {} of {}, {} |",
        percentile(&fsync_ms, 0.5),
        percentile(&fsync_ms, 0.99),
        fsync_ms.iter().copied().fold(0.0, f64::max) / 1e3,
        over(1.0),
        fsyncs.len(),
        over(2.0)
    );
    println!("\nwhat the producer's node dropped: {}", status["dropped"]);
    println!("what the honest author's node dropped: {}", honest_status["dropped"]);
    Ok(())
}

/// Time run, and spent ready to run but waiting for a core, ns: the harness's
/// searching thread's, and the producer's threads' by name.
struct CoreTimes {
    harness: [u64; 2],
    node: BTreeMap<String, [u64; 2]>,
}

impl CoreTimes {
    fn now(producer: &NodeProcess) -> Result<CoreTimes> {
        Ok(CoreTimes { harness: nodes::own_run_queue_times(), node: producer.run_queue_times()? })
    }

    /// The times since `before` (threads started since count from zero).
    fn since(&self, before: &CoreTimes) -> CoreTimes {
        let minus =
            |now: [u64; 2], then: [u64; 2]| [now[0].saturating_sub(then[0]), now[1].saturating_sub(then[1])];
        let node = self
            .node
            .iter()
            .map(|(name, times)| {
                (name.clone(), minus(*times, before.node.get(name).copied().unwrap_or([0; 2])))
            })
            .collect();
        CoreTimes { harness: minus(self.harness, before.harness), node }
    }

    /// Table rows for one phase, per search of it: the harness's wait for a core
    /// and the node's tokio threads' (the API's worker and the blocking thread a
    /// search runs on), and the node's threads that waited and ran most. Averages
    /// over the phase, everything the threads did in it included, not only the
    /// searches.
    fn rows(&self, phase: &str, searches: usize) -> String {
        let per = |ns: u64| ns as f64 / 1e3 / searches.max(1) as f64;
        let tokio = self.node.get("tokio-rt-worker").map_or(0, |times| times[1]);
        let most = |i: usize| {
            let mut node: Vec<_> = self.node.iter().collect();
            node.sort_by_key(|(_, times)| std::cmp::Reverse(times[i]));
            let node: Vec<String> =
                node.iter().take(4).map(|(name, times)| format!("{name} {:.0}", per(times[i]))).collect();
            node.join(", ")
        };
        format!(
            "| per search, {phase}: waited for a core, the harness's searching thread / the node's tokio threads; the node's threads that waited most | {:.0} / {:.0} µs; {} µs |\n| per search, {phase}: the node's threads that ran most | {} µs |",
            per(self.harness[1]),
            per(tokio),
            most(1),
            most(0)
        )
    }
}

/// `searches` searches at the pace of the flood's loop: a round of `queries`,
/// the node's RSS and, every 0.5 s, its status, then a pause of `PACE`.
fn paced_rounds(api: &Api, producer: &NodeProcess, queries: &[String], searches: usize) -> Result<Vec<f64>> {
    let mut times = Vec::with_capacity(searches);
    let mut last_status = Instant::now();
    while times.len() < searches {
        producer.rss()?;
        timed_searches(api, queries, &mut times)?;
        if last_status.elapsed() >= Duration::from_millis(500) {
            last_status = Instant::now();
            api.get("/v1/status")?;
        }
        std::thread::sleep(PACE);
    }
    Ok(times)
}

/// Searches each of `queries` once, adding each search's time (ms) to `times`.
fn timed_searches(api: &Api, queries: &[String], times: &mut Vec<f64>) -> Result<()> {
    for q in queries {
        let t = Instant::now();
        api.search(q)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(())
}

/// The listings a node's status says it has taken in: kept, evicted, refused.
fn taken_in(status: &serde_json::Value) -> (u64, u64, u64) {
    (
        status["listings"].as_u64().unwrap_or(0),
        status["dropped"]["listings_evicted"].as_u64().unwrap_or(0),
        status["dropped"]["listings_refused"].as_u64().unwrap_or(0),
    )
}

fn total((kept, evicted, refused): (u64, u64, u64)) -> u64 {
    kept + evicted + refused
}

fn log_len(log: &Path) -> u64 {
    std::fs::metadata(log).map_or(0, |m| m.len())
}

/// A search's timings as the node logs them with `smpl_node::search=debug`: how
/// long it waited for a thread, how long it ran, and its processor time (µs), and
/// how often its thread gave up the core meanwhile, to wait (slept) or taken off
/// it (preempted).
type SearchTiming = [f64; 5];

/// The timings the producer's log holds between each pair of `offsets` (bytes).
fn search_timings(log: &Path, offsets: &[u64]) -> Result<Vec<Vec<SearchTiming>>> {
    let text = std::fs::read(log)?;
    let field = |line: &str, name: &str| -> Option<f64> {
        let at = line.find(&format!("{name}="))? + name.len() + 1;
        line[at..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    Ok(offsets
        .windows(2)
        .map(|w| {
            let part = text.get(w[0] as usize..w[1] as usize).unwrap_or_default();
            String::from_utf8_lossy(part)
                .lines()
                .filter(|line| line.contains("search answered"))
                .filter_map(|line| {
                    Some([
                        field(line, "waited_us")?,
                        field(line, "ran_us")?,
                        field(line, "cpu_us")?,
                        field(line, "slept").unwrap_or(0.0),
                        field(line, "preempted").unwrap_or(0.0),
                    ])
                })
                .collect()
        })
        .collect())
}

/// A table row of where the searches of one phase spent their time in the node.
fn search_timing_row(phase: &str, times: &[SearchTiming]) -> String {
    let what =
        format!("in the node, {phase}: waited for a thread / ran / of which on the processor, p50 and p99");
    if times.is_empty() {
        return format!("{what} | not logged (run with RUST_LOG=warn,smpl_node::search=debug) |");
    }
    let column = |i: usize| times.iter().map(|t| t[i] / 1e3).collect::<Vec<f64>>();
    let (waited, ran, cpu) = (column(0), column(1), column(2));
    let p = |v: &[f64]| format!("{:.2} / {:.2}", percentile(v, 0.5), percentile(v, 0.99));
    // The slowest 1 % (the p99's tail): how many of them slept or were preempted.
    let slowest = percentile(&ran, 0.99) * 1e3;
    let tail: Vec<SearchTiming> = times.iter().filter(|t| t[1] >= slowest).copied().collect();
    let share = |set: &[SearchTiming], i: usize| set.iter().filter(|t| t[i] > 0.0).count();
    format!(
        "{what}; slept / preempted: of all, of the slowest 1 % | {} · {} · {} ms ({} searches); {} / {} of {}, {} / {} of {} |",
        p(&waited),
        p(&ran),
        p(&cpu),
        times.len(),
        share(times, 3),
        share(times, 4),
        times.len(),
        share(&tail, 3),
        share(&tail, 4),
        tail.len()
    )
}

/// Publishes a free pack of two generated tones as `home`; its pack id.
fn publish(smpl: &Path, home: &Path, dir: &Path, title: &str, variant: u32) -> Result<String> {
    let folder = dir.join(format!("honest-pack-{variant}"));
    std::fs::create_dir_all(&folder)?;
    for (i, freq) in [220.0f32, 330.0].into_iter().enumerate() {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 44_100,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut wav = hound::WavWriter::create(folder.join(format!("Tone_{i}.wav")), spec)?;
        let freq = freq * (1.0 + variant as f32 / 10.0);
        for n in 0..44_100 {
            let v = (n as f32 * freq * std::f32::consts::TAU / 44_100.0).sin() * 0.5;
            wav.write_sample((v * i16::MAX as f32) as i16)?;
        }
        wav.finalize()?;
    }
    let answer = smpl_json(
        smpl,
        home,
        &["publish", folder.to_str().unwrap(), "--title", title, "--genre", "House", "--free"],
    )?;
    answer["pack_id"].as_str().map(str::to_string).ok_or_else(|| anyhow::anyhow!("publish answered {answer}"))
}

/// The steps of the last publish of `title` and their times, from the node's log
/// lines for it (`finish_publish` in `node/src/node/catalog.rs`, and the steps of
/// storing it, `finish` in `node/src/publish.rs`, logged just before).
fn publish_steps(home: &Path, title: &str) -> Result<String> {
    let log = std::fs::read_to_string(nodes::node_log(home))?;
    let lines: Vec<&str> = log.lines().collect();
    let Some(at) = lines.iter().rposition(|line| line.contains(&format!("published {title:?}"))) else {
        return Ok("not in the log".into());
    };
    let after = |line: &str, mark: &str| {
        line.split_once(mark).map(|(_, steps)| steps.split(" pack=").next().unwrap_or(steps).to_string())
    };
    let steps = after(lines[at], " samples: ").unwrap_or_default();
    let stored = lines[..at].iter().rev().find_map(|line| {
        after(line, "stored a publish: ").or_else(|| after(line, "storing a publish was slow: "))
    });
    Ok(match stored {
        Some(stored) => format!("{steps} (storing: {stored})"),
        None => steps,
    })
}

/// When the publish of `title` was announced, in seconds of the day (UTC), from
/// the node's log line for it: the line's time, less the time from the
/// announcement to the end of the publish (searchable) that the line gives.
fn announced_at(log: &str, title: &str) -> Option<f64> {
    let line = log.lines().rev().find(|line| line.contains(&format!("published {title:?}")))?;
    let secs = |mark: &str| -> Option<f64> {
        let (_, rest) = line.split_once(mark)?;
        rest.split(" s").next()?.parse().ok()
    };
    // `2026-12-06T18:27:04.033436Z ...`
    let time = line.split_once('T')?.1.split('Z').next()?;
    let mut parts = time.split(':').map(|p| p.parse::<f64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    Some(h * 3600.0 + m * 60.0 + s - (secs("searchable after ")? - secs("announced after ")?))
}

/// Seconds from `from` (seconds of the day, UTC) to `to`, across midnight too.
fn day_seconds_between(from: f64, to: SystemTime) -> f64 {
    const DAY: f64 = 86_400.0;
    let to = to.duration_since(UNIX_EPOCH).map_or(f64::NAN, |d| d.as_secs_f64() % DAY);
    (to - from + DAY / 2.0).rem_euclid(DAY) - DAY / 2.0
}

/// A thread that writes 4 KB to a file and fsyncs it every 100 ms, timing each:
/// how long a node's own fsyncs (a publish's, say) wait on the disk.
struct DiskProbe {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Duration>>,
}

impl DiskProbe {
    /// Writes on `cpus` if given (the harness's instrument stays off the
    /// producer's core).
    fn start(path: &Path, cpus: Option<Vec<usize>>) -> Result<DiskProbe> {
        use std::io::Write;
        let mut file = std::fs::File::create(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut times = Vec::new();
            if let Some(Err(e)) = cpus.map(|cpus| nodes::pin_here(&cpus)) {
                eprintln!("the disk probe writes from the producer's CPU: {e}");
            }
            while !stopped.load(Ordering::Relaxed) {
                let start = Instant::now();
                if file.write_all(&[0u8; 4096]).and_then(|()| file.sync_all()).is_err() {
                    break;
                }
                times.push(start.elapsed());
                std::thread::sleep(Duration::from_millis(100));
            }
            times
        });
        Ok(DiskProbe { stop, thread })
    }

    /// The time each write and fsync took.
    fn stop(self) -> Vec<Duration> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// One of the honest author's publishes during the flood.
struct HonestPublish {
    title: String,
    started: Instant,
    publishing: Option<std::thread::JoinHandle<Result<String>>>,
    /// Seconds until `smpl publish` answered, and the pack id it answered.
    answered: Option<f64>,
    pack: Option<String>,
    /// Until a search on the producer found it, and when.
    found: Option<Duration>,
    found_at: Option<SystemTime>,
    /// When it was both answered and found.
    done: Option<Instant>,
}

impl HonestPublish {
    fn new(title: String, publishing: std::thread::JoinHandle<Result<String>>) -> HonestPublish {
        let started = Instant::now();
        HonestPublish {
            title,
            started,
            publishing: Some(publishing),
            answered: None,
            pack: None,
            found: None,
            found_at: None,
            done: None,
        }
    }

    /// Looks for it on the producer until found, also after the publish answered,
    /// and takes the publish's answer once it came.
    fn look(&mut self, api: &Api, author: &str) -> Result<()> {
        if self.found.is_none() && found_by_search(api, &self.title, author)? {
            self.found = Some(self.started.elapsed());
            self.found_at = Some(SystemTime::now());
        }
        if let Some(publishing) = self.publishing.take_if(|p| p.is_finished()) {
            self.answered = Some(self.started.elapsed().as_secs_f64());
            self.pack = Some(publishing.join().map_err(|_| anyhow::anyhow!("the publish panicked"))??);
        }
        if self.done.is_none() && self.found.is_some() && self.pack.is_some() {
            self.done = Some(Instant::now());
        }
        Ok(())
    }

    /// Whether it was answered and found at least `ago`.
    fn done_for(&self, ago: Duration) -> bool {
        self.done.is_some_and(|done| done.elapsed() >= ago)
    }

    fn found_secs(&self) -> f64 {
        self.found.map_or(f64::NAN, |d| d.as_secs_f64())
    }
}

/// Whether a search for `title` finds a pack of that title by `author`.
fn found_by_search(api: &Api, title: &str, author: &str) -> Result<bool> {
    let answer = api.search(title)?;
    let hits = answer["hits"].as_array().map_or(&[][..], Vec::as_slice);
    Ok(hits
        .iter()
        .any(|hit| hit["pack_title"].as_str() == Some(title) && hit["author"].as_str() == Some(author)))
}

fn wait_for(api: &Api, pack: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !api.has_pack(pack) {
        if Instant::now() > deadline {
            bail!("pack {pack} did not arrive within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
