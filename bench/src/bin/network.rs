//! Network benchmarks: pack transfer and listing latency.
//!
//! 1. **Pack transfer over loopback**, for a 1 GiB pack (~100 long WAV files) and a
//!    1,000-file pack (~200 MB), side by side in one run on the same files:
//!    - smpl: a seeder node publishes the pack (once; its home is kept), a fresh
//!      node learns the listing over libp2p and runs [`smpl_node::Node::fetch`]
//!      (provider lookup, verified iroh-blobs download, export into a library
//!      folder). Timed from the call to the exported files, with the download
//!      alone and the receiver's peak RSS over its idle RSS (a child process each,
//!      so figures do not mix);
//!    - `sendme send` / `sendme receive` (crates.io), the receive process timed;
//!    - libtorrent (Debian's `python3-libtorrent`, `bench/torrent.py`): one seeder,
//!      one leecher, trackerless with `connect_peer`, timed from adding the torrent
//!      to the finished alert (all pieces hash-checked).
//!
//!    Every received copy is compared byte for byte with the original.
//! 2. **Listing latency**: a 20-node loopback network, 50 listings published from
//!    random nodes, time until each is stored by all 20 (see `gossip`).
//!
//! Network hygiene: unless `--no-netns`, the binary re-executes itself under
//! `unshare -n` with only `lo` up, so every process it starts (smpl nodes, sendme
//! with its n0 presets, libtorrent) can reach nothing but loopback.
//!
//! Run `bench/setup.sh` (sendme) and `apt-get install python3-libtorrent` first,
//! then `cargo run --release -p smpl-bench --bin network`; see docs/BENCHMARKS.md.

#[path = "network/baselines.rs"]
mod baselines;
#[path = "network/corpus.rs"]
mod corpus;
#[path = "network/gossip.rs"]
mod gossip;
#[path = "network/procs.rs"]
mod procs;
#[path = "network/smpl.rs"]
mod smpl;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::corpus::{Pack, Spec};
use crate::procs::Cost;

/// Set in the re-executed process that already runs in its own namespace.
const NETNS_ENV: &str = "SMPL_BENCH_NETNS";

#[derive(Parser)]
#[command(about = "Network benchmarks: pack transfer vs sendme and libtorrent, listing latency")]
struct Cli {
    #[command(subcommand)]
    phase: Option<Phase>,
    #[command(flatten)]
    opts: Opts,
}

#[derive(clap::Args)]
struct Opts {
    /// Where the packs, the seeder's home and scratch folders live
    /// [default: <workspace>/target/bench-network].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Folder holding `sendme` [default: <workspace>/target/bench-tools/bin, then PATH].
    #[arg(long)]
    tools: Option<PathBuf>,
    /// The Python that has Debian's libtorrent bindings.
    #[arg(long, default_value = "/usr/bin/python3")]
    python: PathBuf,
    /// Rounds of the transfer measurements (each round runs every tool once; the
    /// median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Only these parts: `long`, `small`, `gossip` (repeatable).
    #[arg(long)]
    only: Vec<String>,
    /// Size of the long-file pack in MiB.
    #[arg(long, default_value_t = 1024)]
    mib: u64,
    /// Files in the small-file pack.
    #[arg(long, default_value_t = 1000)]
    small_files: usize,
    /// Nodes of the gossip network.
    #[arg(long, default_value_t = 20)]
    nodes: usize,
    /// Listings published in the gossip run.
    #[arg(long, default_value_t = 50)]
    listings: usize,
    /// Skip sendme and libtorrent.
    #[arg(long)]
    no_baselines: bool,
    /// Do not enter a loopback-only network namespace (only where the machine
    /// cannot; the baselines then may try to reach public relays and DNS).
    #[arg(long)]
    no_netns: bool,
}

/// The child processes the benchmark runs (hidden from `--help`).
#[derive(Subcommand)]
enum Phase {
    #[command(hide = true, name = "child-seed")]
    Seed {
        #[arg(long)]
        home: PathBuf,
        #[arg(long)]
        pack: PathBuf,
        #[arg(long)]
        title: String,
    },
    #[command(hide = true, name = "child-fetch")]
    Fetch {
        #[arg(long)]
        home: PathBuf,
        #[arg(long)]
        bootstrap: String,
        #[arg(long)]
        pack: String,
        #[arg(long)]
        out: PathBuf,
    },
    #[command(hide = true, name = "child-gossip")]
    Gossip {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        nodes: usize,
        #[arg(long)]
        listings: usize,
        #[arg(long)]
        seed: u64,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let Some(phase) = cli.phase else {
        if std::env::var_os(NETNS_ENV).is_none() && !cli.opts.no_netns {
            return reexec_in_netns();
        }
        return run(&cli.opts);
    };
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let json = runtime.block_on(async {
        Ok::<_, anyhow::Error>(match phase {
            Phase::Seed { home, pack, title } => {
                smpl::seed(&home, &pack, &title).await?;
                None
            }
            Phase::Fetch { home, bootstrap, pack, out } => {
                Some(serde_json::to_string(&smpl::fetch(&home, &bootstrap, &pack, &out).await?)?)
            }
            Phase::Gossip { dir, nodes, listings, seed } => {
                Some(serde_json::to_string(&gossip::run(&dir, nodes, listings, seed).await?)?)
            }
        })
    })?;
    if let Some(json) = json {
        println!("{json}");
    }
    // Node tasks may linger; the report is out.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    Ok(())
}

/// Runs this binary again in a new network namespace that has only loopback.
fn reexec_in_netns() -> Result<()> {
    let status = Command::new("unshare")
        .args(["-n", "sh", "-c", r#"ip link set lo up && exec "$0" "$@""#])
        .arg(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .env(NETNS_ENV, "1")
        .status()
        .context("running unshare -n (needs root or user namespaces; see --no-netns)")?;
    if !status.success() {
        bail!("the benchmark in its network namespace failed ({status})");
    }
    Ok(())
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn wanted(opts: &Opts, part: &str) -> bool {
    opts.only.is_empty() || opts.only.iter().any(|o| o == part)
}

fn run(opts: &Opts) -> Result<()> {
    let dir = opts.dir.clone().unwrap_or_else(|| workspace().join("target").join("bench-network"));
    let dir = std::path::absolute(&dir)?;
    std::fs::create_dir_all(&dir)?;
    let tools =
        opts.tools.clone().unwrap_or_else(|| workspace().join("target").join("bench-tools").join("bin"));
    let sendme = if opts.no_baselines { None } else { procs::find_tool(&tools, "sendme") };
    if !opts.no_baselines && sendme.is_none() {
        eprintln!("sendme not found (run bench/setup.sh); its rows are skipped");
    }
    let libtorrent = !opts.no_baselines && libtorrent_version(&opts.python).is_some();
    if !opts.no_baselines && !libtorrent {
        eprintln!(
            "{} cannot import libtorrent (apt-get install python3-libtorrent); its rows are skipped",
            opts.python.display()
        );
    }
    println!("# Network benchmarks\n");
    println!(
        "{} cores, loopback only (network namespace: {}), {} round(s) per tool, medians.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::var_os(NETNS_ENV).is_some(),
        opts.runs
    );
    let mut results = Vec::new();
    for (part, spec, title) in [
        ("long", Spec::long(opts.mib), "Bench Long Stems"),
        ("small", Spec::small(opts.small_files), "Bench Small Hits"),
    ] {
        if !wanted(opts, part) {
            continue;
        }
        let name = if part == "long" { "long" } else { "small" };
        let pack = corpus::ensure(name, &dir.join("corpus").join(part), &spec)?;
        let rows = transfer(opts, &dir, &pack, title, sendme.as_deref(), libtorrent)?;
        print_transfer(&pack, &rows, sendme.as_deref(), &opts.python);
        results.push((part, rows));
    }
    let gossip = if wanted(opts, "gossip") {
        let (report, cost): (gossip::Report, Cost) = procs::phase(
            &[
                OsStr::new("child-gossip"),
                OsStr::new("--dir"),
                dir.join("run").join("gossip").as_os_str(),
                OsStr::new("--nodes"),
                OsStr::new(&opts.nodes.to_string()),
                OsStr::new("--listings"),
                OsStr::new(&opts.listings.to_string()),
                OsStr::new("--seed"),
                OsStr::new("3"),
            ],
            "the gossip run",
        )?;
        print_gossip(&report, &cost);
        Some(report)
    } else {
        None
    };
    let json = serde_json::json!({
        "transfer": results.iter().map(|(part, rows)| (part.to_string(), rows)).collect::<std::collections::BTreeMap<_, _>>(),
        "gossip": gossip,
    });
    std::fs::write(dir.join("results.json"), serde_json::to_vec_pretty(&json)?)?;
    eprintln!("raw figures: {}", dir.join("results.json").display());
    let _ = std::fs::remove_dir_all(dir.join("run"));
    Ok(())
}

fn libtorrent_version(python: &Path) -> Option<String> {
    let out = Command::new(python)
        .args(["-c", "import libtorrent; print(libtorrent.__version__)"])
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// One round's figures for one tool.
#[derive(Clone, Debug, Default, Serialize)]
struct Sample {
    total_secs: f64,
    download_secs: Option<f64>,
    cpu_secs: f64,
    peak_rss: Option<u64>,
    idle_rss: Option<u64>,
}

#[derive(Debug, Default, Serialize)]
struct Rows {
    bytes: u64,
    files: usize,
    smpl: Vec<Sample>,
    sendme: Vec<Sample>,
    torrent: Vec<Sample>,
    torrent_piece_size: Option<u64>,
}

fn fresh(path: &Path) -> Result<PathBuf> {
    if path.exists() {
        std::fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))?;
    }
    std::fs::create_dir_all(path)?;
    Ok(path.to_path_buf())
}

fn transfer(
    opts: &Opts,
    dir: &Path,
    pack: &Pack,
    title: &str,
    sendme: Option<&Path>,
    libtorrent: bool,
) -> Result<Rows> {
    let scratch = fresh(&dir.join("run").join(pack.name))?;
    // The seeder's home and the .torrent survive between runs, tied to the corpus.
    let keep = dir.join("keep").join(pack.name);
    let marker = keep.join("corpus.json");
    let spec_json = serde_json::to_vec(&pack.spec)?;
    if std::fs::read(&marker).ok().as_ref() != Some(&spec_json) {
        fresh(&keep)?;
        std::fs::write(&marker, &spec_json)?;
    }
    let exe = std::env::current_exe()?;
    let mut seed = Command::new(&exe);
    seed.arg("child-seed").arg("--home").arg(keep.join("seeder")).arg("--pack").arg(&pack.dir);
    seed.arg("--title").arg(title);
    eprintln!("[{}] starting the smpl seeder (publishes the pack on first use) ...", pack.name);
    let (seeder, seeding) = procs::Server::start(seed, "the smpl seeder", |line| {
        serde_json::from_str::<smpl::Seeding>(line).ok()
    })?;
    if let Some(secs) = seeding.published_secs {
        eprintln!("[{}] published {} in {secs:.1} s", pack.name, pack.describe());
    }
    let sender = match sendme {
        Some(sendme) => {
            eprintln!("[{}] sendme send: importing ...", pack.name);
            Some(baselines::SendmeSender::start(sendme, &pack.dir, &scratch.join("sendme-send"))?)
        }
        None => None,
    };
    let mut rows = Rows { bytes: pack.bytes(), files: pack.files.len(), ..Rows::default() };
    let pack_dir_name = pack.dir.file_name().context("pack folder name")?;
    for round in 0..opts.runs {
        procs::sync_disks();
        let home = fresh(&scratch.join("smpl-home"))?;
        let out = fresh(&scratch.join("smpl-out"))?;
        let (fetched, cost): (smpl::Fetched, Cost) = procs::phase(
            &[
                OsStr::new("child-fetch"),
                OsStr::new("--home"),
                home.as_os_str(),
                OsStr::new("--bootstrap"),
                OsStr::new(&seeding.addr),
                OsStr::new("--pack"),
                OsStr::new(&seeding.pack_id.to_string()),
                OsStr::new("--out"),
                out.as_os_str(),
            ],
            "smpl fetch",
        )?;
        corpus::verify_copy(pack, &fetched.path).context("smpl's copy")?;
        eprintln!(
            "[{}] round {}: smpl {:.2} s (download {:.2} s)",
            pack.name,
            round + 1,
            fetched.total_secs,
            fetched.download_secs.unwrap_or(f64::NAN)
        );
        rows.smpl.push(Sample {
            total_secs: fetched.total_secs,
            download_secs: fetched.download_secs,
            cpu_secs: cost.cpu_secs,
            peak_rss: fetched.peak_rss,
            idle_rss: fetched.idle_rss,
        });
        fresh(&home)?;
        fresh(&out)?;

        if let (Some(sendme), Some(sender)) = (sendme, &sender) {
            procs::sync_disks();
            let into = fresh(&scratch.join("sendme-recv"))?;
            let received = baselines::sendme_receive(sendme, &sender.ticket, &into)?;
            corpus::verify_copy(pack, &into.join(pack_dir_name)).context("sendme's copy")?;
            eprintln!("[{}] round {}: sendme {:.2} s", pack.name, round + 1, received.cost.secs);
            rows.sendme.push(Sample {
                total_secs: received.cost.secs,
                download_secs: received.download_secs,
                cpu_secs: received.cost.cpu_secs,
                peak_rss: Some(received.cost.peak_rss),
                idle_rss: None,
            });
            fresh(&into)?;
        }

        if libtorrent {
            procs::sync_disks();
            let work = keep.join("torrent");
            let (report, _) = baselines::torrent(&opts.python, &pack.dir, &work)?;
            corpus::verify_copy(pack, &work.join("leech").join(pack_dir_name))
                .context("libtorrent's copy")?;
            eprintln!("[{}] round {}: libtorrent {:.2} s", pack.name, round + 1, report.leech_secs);
            rows.torrent_piece_size = Some(report.piece_size);
            rows.torrent.push(Sample {
                total_secs: report.leech_secs,
                download_secs: Some(report.leech_secs),
                cpu_secs: report.cpu_secs,
                peak_rss: Some(report.peak_rss_kb * 1024),
                idle_rss: None,
            });
            fresh(&work.join("leech"))?;
        }
    }
    if let Some(sender) = sender {
        sender.stop()?;
    }
    seeder.stop()?;
    Ok(rows)
}

fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Nearest-rank percentile.
fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.to_vec();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    Some(v[rank.min(v.len()) - 1])
}

fn secs(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{v:.2}"))
}

fn mb(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{:.0} MB", v / 1e6))
}

fn print_transfer(pack: &Pack, rows: &Rows, sendme: Option<&Path>, python: &Path) {
    let total = |s: &[Sample]| median(s.iter().map(|s| s.total_secs));
    let download = |s: &[Sample]| median(s.iter().filter_map(|s| s.download_secs));
    let cpu = |s: &[Sample]| median(s.iter().map(|s| s.cpu_secs));
    let peak = |s: &[Sample]| median(s.iter().filter_map(|s| s.peak_rss.map(|b| b as f64)));
    let rate =
        |t: Option<f64>| t.map_or_else(|| "–".into(), |t| format!("{:.0}", rows.bytes as f64 / t / 1e6));
    println!("## {} pack: {}\n", pack.name, pack.describe());
    println!("| receiver | total s | MB/s | download s | receiver CPU s | receiver peak RSS |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let line = |name: String, s: &[Sample]| {
        if s.is_empty() {
            return;
        }
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            secs(total(s)),
            rate(total(s)),
            secs(download(s)),
            secs(cpu(s)),
            mb(peak(s))
        );
    };
    line("smpl `Node::fetch` (download + export)".into(), &rows.smpl);
    if let Some(sendme) = sendme {
        line(format!("`{} receive` (process)", procs::version(sendme)), &rows.sendme);
    }
    let lt = libtorrent_version(python).unwrap_or_default();
    line(
        format!("libtorrent {lt} leecher (piece {} KiB)", rows.torrent_piece_size.unwrap_or(0) / 1024),
        &rows.torrent,
    );
    println!();
    let smpl = total(&rows.smpl);
    for (name, other) in [("sendme", &rows.sendme), ("libtorrent", &rows.torrent)] {
        if let (Some(ours), Some(theirs)) = (smpl, total(other)) {
            println!(
                "- {name} time / smpl time: **{:.2}×** ({})",
                theirs / ours,
                if theirs >= ours { "smpl at least as fast" } else { "smpl SLOWER" }
            );
        }
    }
    let idle = median(rows.smpl.iter().filter_map(|s| s.idle_rss.map(|b| b as f64)));
    let peak_smpl = peak(&rows.smpl);
    if let (Some(idle), Some(peak_smpl)) = (idle, peak_smpl) {
        println!(
            "- smpl receiver RSS: idle {}, peak during the fetch {}, **+{}** over idle",
            mb(Some(idle)),
            mb(Some(peak_smpl)),
            mb(Some(peak_smpl - idle))
        );
    }
    println!();
}

fn print_gossip(report: &gossip::Report, cost: &Cost) {
    let ms = |v: Option<f64>| v.map_or_else(|| "–".into(), |v| format!("{v:.0} ms"));
    println!("## Listing latency: {} nodes, {} links, random connected graph\n", report.nodes, report.edges);
    println!(
        "| listings | reached all | p50 to all | p99 to all | max to all | p50 per node | p99 per node | publish call p50 |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let all = &report.to_all_ms;
    println!(
        "| {} | {} | {} | {} | {} | {} | {} | {} |",
        all.len() + report.missed,
        all.len(),
        ms(percentile(all, 50.0)),
        ms(percentile(all, 99.0)),
        ms(all.iter().copied().reduce(f64::max)),
        ms(percentile(&report.deliveries_ms, 50.0)),
        ms(percentile(&report.deliveries_ms, 99.0)),
        ms(percentile(&report.publish_ms, 50.0)),
    );
    println!(
        "\n- latency from `Node::publish` returning (listing signed, stored, indexed, handed to gossip) to the \
         last node storing it; {} of {} listings reached every node within 1 s",
        all.iter().filter(|&&t| t <= 1000.0).count(),
        all.len() + report.missed
    );
    println!(
        "- startup of the network {:.1} s; the gossip process used {:.1} CPU s, peak RSS {}\n",
        report.startup_secs,
        cost.cpu_secs,
        mb(Some(cost.peak_rss as f64))
    );
}
