//! DHT: provider records offered by peers do not stop a node from announcing its
//! own packs.
//!
//! A node keeps other peers' DHT provider records apart from its own, in a part
//! capped at `MAX_REMOTE_KEYS` (`node/src/net/providers.rs`); records past the cap
//! are dropped and counted. This harness floods a real node with records as
//! strangers would, and checks that the node still announces what it publishes:
//!
//! 1. **Node**: a fresh `smpl node` (home `--dir`/node, removed first; 127.0.0.1,
//!    mDNS off), and an honest peer that meets it as peers do (Kademlia in server
//!    mode and identify, listening on 127.0.0.1), so that the node has it in its
//!    routing table. The node publishes a pack of two one-second WAV files (`smpl
//!    publish`), and a stock Kademlia client of its own key (only `/smpl/kad/1`,
//!    TCP + noise + yamux, nothing of smpl's swarm) asks it for the pack's
//!    providers: the node must name itself, and the honest peer must receive the
//!    node's provider record (its announcement). The baseline.
//! 2. **Flood**: `--peers` stock Kademlia clients, each of a fresh key and on a
//!    thread of its own, connect to the node and `start_providing` random 32-byte
//!    keys, `--records` in all, at most `--in-flight` queries at once between them.
//!    Each query is a FIND_NODE to the node, then an ADD_PROVIDER; a record counts
//!    as offered once the node answered the FIND_NODE and the ADD_PROVIDER was
//!    handed to the connection. The records name a loopback address nothing
//!    listens on (a node serves a record without one only for a provider in its
//!    routing table). A client forgets each key once offered (`stop_providing`),
//!    so it holds no more than it has in flight. Progress every 100,000 records on
//!    stderr. The node's RSS is read every 100 ms throughout.
//! 3. **Mid-flood**: once half the records are offered, the node publishes a second
//!    pack while the flood goes on, and a fresh client looks for its providers.
//! 4. **After**: once every record is offered and the node's count of dropped
//!    records has settled, a third pack, looked for the same way; and two of the
//!    flood's own keys, one offered first (kept) and one offered last (past the cap,
//!    dropped), whose provider should be found and not found.
//! 5. The node's status (`/v1/status`, `dropped.provider_records_dropped`) and a
//!    table of the figures. The run fails unless the node named itself as the
//!    provider of each of its packs, and announced each to the honest peer.
//!
//! Every client dials the node's 127.0.0.1 TCP address and nothing else: no
//! bootstrap, no routing-table inserts but the node, an allow list of the node's
//! peer id alone; only the honest peer listens, on 127.0.0.1.
//!
//! Run: `cargo build --release -p smpl --bin smpl -p smpl-bench --bin dht` then
//! `./target/release/dht` (`--records 20000` for a short run).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use futures::StreamExt;
use libp2p::kad::store::{MemoryStore, MemoryStoreConfig, RecordStore};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, allow_block_list, identify, identity, kad, noise,
    tcp, yamux,
};
use smpl_bench::{mem, nodes, rng};
use smpl_node::Home;
use smpl_protocol::PackId;

use nodes::{Api, NodeProcess, smpl_json};

/// The node's Kademlia protocol (`node/src/net/behaviour.rs`, `KAD_PROTOCOL`), as a
/// stranger learns it from the node's identify answer.
const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/smpl/kad/1");

/// Where the flood peers say they are reachable: a loopback port nothing listens
/// on (they do not listen; the node never dials a provider it is only told about).
const CLAIMED_ADDRESS: &str = "/ip4/127.0.0.1/tcp/9";

#[derive(Parser)]
#[command(about = "Provider records offered by peers against a node announcing its own packs")]
struct Args {
    /// Provider records the peers offer, in all.
    #[arg(long, default_value_t = 2_000_000)]
    records: u64,
    /// Peers that offer them, each of its own key, connection and thread.
    #[arg(long, default_value_t = 4)]
    peers: usize,
    /// Queries in flight at once, between all peers.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// Where the node's home (`node`), its log (`node.log`) and the packs are made.
    #[arg(long, default_value = "/tmp/smpl-dht")]
    dir: PathBuf,
    /// The `smpl` binary (default: beside this one).
    #[arg(long)]
    smpl: Option<PathBuf>,
    /// Makes the flood's keys.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Longest wait for any answer of the node: a connection, a lookup, the next
    /// offered record.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

/// Where the node is.
#[derive(Clone)]
struct Target {
    addr: Multiaddr,
    peer: PeerId,
}

/// A stock Kademlia client: Kademlia, and an allow list that lets it connect to
/// the node under test and no one else.
#[derive(NetworkBehaviour)]
struct Client {
    allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    kad: kad::Behaviour<MemoryStore>,
}

/// The flood's counts, shared by its threads.
#[derive(Default)]
struct Counts {
    /// Records the node took the FIND_NODE of and whose ADD_PROVIDER was sent.
    offered: AtomicU64,
    /// Queries that ended without the node's answer.
    failed: AtomicU64,
    /// Connections to the node that closed, and were dialled again by Kademlia.
    closed: AtomicU64,
    /// Peers done offering.
    done: AtomicU64,
}

/// One check that the node names a provider of a key.
#[derive(Clone, Copy, Default)]
struct Check {
    /// `smpl publish`, for the node's own packs.
    publish_secs: f64,
    found: bool,
    /// From the lookup's start until the provider was named, or the lookup ended.
    lookup_ms: f64,
    /// For the node's own packs: from the start of the publish until the honest
    /// peer was seen holding the node's provider record (checked after the
    /// lookup), if it did within the timeout.
    witnessed_secs: Option<f64>,
}

#[derive(Default)]
struct Figures {
    offered: u64,
    failed: u64,
    closed: u64,
    flood_secs: f64,
    dropped: Option<u64>,
    rss_before: (u64, u64),
    rss_peak: (u64, u64),
    rss_after: (u64, u64),
    before: Check,
    mid: Option<Check>,
    after: Check,
    kept: Check,
    last: Check,
    log_stream_drops: usize,
    log_announce_failed: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.peers > 0 && args.in_flight >= args.peers, "--in-flight must be at least --peers");
    let smpl = nodes::smpl_binary(args.smpl.as_deref())?;
    std::fs::create_dir_all(&args.dir)?;
    let home = args.dir.join("node");
    if home.exists() {
        std::fs::remove_dir_all(&home)?;
    }
    let log = nodes::node_log(&home);
    if log.exists() {
        std::fs::remove_file(&log)?;
    }
    let node = NodeProcess::start(&smpl, &home, &[])?;
    let result = run(&args, &smpl, &home, &node);
    let stopped = node.stop();
    let mut figures = result?;
    stopped?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    figures.log_stream_drops = text.lines().filter(|l| l.contains("exceeds inbound substream limit")).count();
    figures.log_announce_failed = text.lines().filter(|l| l.contains("cannot announce")).count();
    print_table(&args, &figures);
    let own = [Some(figures.before), figures.mid, Some(figures.after)];
    anyhow::ensure!(
        own.iter().flatten().all(|c| c.found && c.witnessed_secs.is_some()),
        "the node did not name itself as the provider of every pack it published, or its announcement \
         did not reach the honest peer (log: {})",
        log.display()
    );
    Ok(())
}

/// What the steps of a run share: the node under test, how to reach it, and the
/// honest peer that meets it.
struct Run<'a> {
    args: &'a Args,
    smpl: &'a Path,
    home: &'a Path,
    api: Api,
    target: Target,
    witness: Witness,
    timeout: Duration,
}

fn run(args: &Args, smpl: &Path, home: &Path, node: &NodeProcess) -> Result<Figures> {
    let timeout = Duration::from_secs(args.timeout_secs);
    let info = Home::new(home).node_info()?;
    let addr: Multiaddr = node.p2p_addr()?.parse()?;
    anyhow::ensure!(
        addr.iter().next() == Some(Protocol::Ip4(std::net::Ipv4Addr::LOCALHOST)),
        "the node's TCP address {addr} is not on 127.0.0.1"
    );
    let peer = smpl_node::net::peer_id_of(&info.node_id).context("the node's id is not an ed25519 key")?;
    let target = Target { addr, peer };
    let witness = Witness::start(&target, timeout)?;
    let run = Run { args, smpl, home, api: Api::new(home)?, target, witness, timeout };

    // Baseline.
    let before = run.own_pack("Before")?;
    let mut figures = Figures { before, ..Figures::default() };
    eprintln!("before the flood: own pack found {}", yes_no(figures.before.found));
    figures.rss_before = node.rss()?;

    // The flood, the node's RSS read beside it.
    let sampling = AtomicBool::new(true);
    let peak = std::thread::scope(|scope| -> Result<(u64, u64)> {
        let sampler = scope.spawn(|| {
            let mut peak = (0, 0);
            while sampling.load(Ordering::Relaxed) {
                if let Ok((rss, anon)) = node.rss() {
                    peak = (peak.0.max(rss), peak.1.max(anon));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        });
        let flooded = flood(&run, &mut figures);
        sampling.store(false, Ordering::Relaxed);
        let peak = sampler.join().map_err(|_| anyhow!("the RSS sampler panicked"))?;
        flooded.map(|()| peak)
    })?;
    figures.rss_peak = peak;
    figures.dropped = provider_records_dropped(&run.api)?;

    // After.
    figures.after = run.own_pack("After")?;
    eprintln!("after the flood: own pack found {}", yes_no(figures.after.found));
    let attacker = attacker_key(args.seed, 0).public().to_peer_id();
    let per_peer = args.records / args.peers as u64;
    figures.kept = lookup(&run.target, record_key(args.seed, 0, 0), attacker, timeout)?;
    if per_peer > 0 {
        figures.last = lookup(&run.target, record_key(args.seed, 0, per_peer - 1), attacker, timeout)?;
    }
    figures.rss_after = node.rss()?;
    figures.rss_peak =
        (figures.rss_peak.0.max(figures.rss_after.0), figures.rss_peak.1.max(figures.rss_after.1));
    Ok(figures)
}

/// Offers every record, with the mid-flood publish on the way, and waits until
/// the node's count of dropped records settles.
fn flood(run: &Run, figures: &mut Figures) -> Result<()> {
    let (args, timeout) = (run.args, run.timeout);
    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let peers: Vec<JoinHandle<Result<()>>> = (0..args.peers)
        .map(|p| {
            // Peer p offers keys p·share .. and the last peer the rest.
            let share = args.records / args.peers as u64;
            let count = if p + 1 == args.peers { args.records - share * p as u64 } else { share };
            let in_flight = args.in_flight / args.peers + usize::from(p < args.in_flight % args.peers);
            let (target, counts, stop, seed) = (run.target.clone(), counts.clone(), stop.clone(), args.seed);
            std::thread::Builder::new().name(format!("dht-peer-{p}")).spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                runtime.block_on(offer(&target, seed, p, count, in_flight, timeout, &counts, &stop))
            })
        })
        .collect::<std::io::Result<_>>()?;
    let watched = watch(run, &counts, &peers, started, figures);
    stop.store(true, Ordering::Relaxed);
    let mut ended = Ok(());
    for peer in peers {
        let result = peer.join().map_err(|_| anyhow!("a flood peer panicked")).and_then(|r| r);
        if ended.is_ok() {
            ended = result;
        }
    }
    match (watched, ended) {
        (Ok(()), Ok(())) => {}
        (Err(e), Ok(())) | (Ok(()), Err(e)) => return Err(e),
        (Err(watching), Err(peer)) => bail!("{watching:#} ({peer:#})"),
    }
    figures.offered = counts.offered.load(Ordering::Relaxed);
    figures.failed = counts.failed.load(Ordering::Relaxed);
    figures.closed = counts.closed.load(Ordering::Relaxed);
    Ok(())
}

/// Follows the flood until every peer is done: progress, the mid-flood pack, and
/// a peer's error as soon as it ends with one. Then waits for the node's count of
/// dropped records to settle (the last records sent are still being taken in).
fn watch(
    run: &Run,
    counts: &Counts,
    peers: &[JoinHandle<Result<()>>],
    started: Instant,
    figures: &mut Figures,
) -> Result<()> {
    let (args, api) = (run.args, &run.api);
    let total = |c: &Counts| c.offered.load(Ordering::Relaxed) + c.failed.load(Ordering::Relaxed);
    let mut reported = 0;
    while counts.done.load(Ordering::Relaxed) < args.peers as u64 {
        if peers.iter().any(JoinHandle::is_finished) {
            // A peer ends early only with an error, which its join gives.
            bail!("a flood peer stopped before the flood was over");
        }
        let sent = total(counts);
        if sent / 100_000 > reported {
            reported = sent / 100_000;
            let dropped = provider_records_dropped(api)?.map_or("n/a".to_string(), |d| d.to_string());
            eprintln!(
                "  {sent} of {} records offered ({} failed), {:.0} a second; the node dropped {dropped}",
                args.records,
                counts.failed.load(Ordering::Relaxed),
                sent as f64 / started.elapsed().as_secs_f64()
            );
        }
        if figures.mid.is_none() && sent >= args.records / 2 {
            let mid = run.own_pack("Midway")?;
            eprintln!("mid-flood ({} records offered): own pack found {}", total(counts), yes_no(mid.found));
            figures.mid = Some(mid);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    figures.flood_secs = started.elapsed().as_secs_f64();
    let offered = counts.offered.load(Ordering::Relaxed);
    eprintln!(
        "{offered} records offered ({} failed) in {:.1} s, {:.0} a second",
        counts.failed.load(Ordering::Relaxed),
        figures.flood_secs,
        offered as f64 / figures.flood_secs
    );
    let deadline = Instant::now() + run.timeout;
    let mut last = provider_records_dropped(api)?;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = provider_records_dropped(api)?;
        if now == last || Instant::now() > deadline {
            return Ok(());
        }
        last = now;
    }
}

/// One flood peer: connects and offers `count` records, `in_flight` at a time;
/// then keeps its connection until `stop`, so that the last records reach the node.
#[allow(clippy::too_many_arguments)]
async fn offer(
    target: &Target,
    seed: u64,
    index: usize,
    count: u64,
    in_flight: usize,
    timeout: Duration,
    counts: &Counts,
    stop: &AtomicBool,
) -> Result<()> {
    let mut swarm = client(attacker_key(seed, index), target, in_flight, timeout)?;
    // The address its records name: a node serves a record with no address only
    // for a provider in its routing table, and a stranger is not in it.
    swarm.add_external_address(CLAIMED_ADDRESS.parse()?);
    connect(&mut swarm, target, timeout).await?;
    let mut pending: HashMap<kad::QueryId, kad::RecordKey> = HashMap::with_capacity(in_flight);
    let mut next = 0;
    let mut progress = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut done = false;
    while !stop.load(Ordering::Relaxed) {
        while pending.len() < in_flight && next < count {
            let key = record_key(seed, index, next);
            let id = swarm.behaviour_mut().kad.start_providing(key.clone())?;
            pending.insert(id, key);
            next += 1;
        }
        if !done && pending.is_empty() {
            done = true;
            counts.done.fetch_add(1, Ordering::Relaxed);
        }
        tokio::select! {
            _ = tick.tick() => {
                if !done && progress.elapsed() > timeout {
                    bail!("peer {index}: no record offered for {} s; the node does not answer", timeout.as_secs());
                }
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(ClientEvent::Kad(kad::Event::OutboundQueryProgressed {
                    id,
                    result: kad::QueryResult::StartProviding(result),
                    stats,
                    ..
                })) => {
                    let Some(key) = pending.remove(&id) else { continue };
                    swarm.behaviour_mut().kad.stop_providing(&key);
                    // The node answered the FIND_NODE, and the ADD_PROVIDER went to it.
                    if result.is_ok() && stats.num_successes() >= 2 {
                        counts.offered.fetch_add(1, Ordering::Relaxed);
                    } else {
                        counts.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    progress = tokio::time::Instant::now();
                }
                SwarmEvent::ConnectionClosed { peer_id, .. } if peer_id == target.peer => {
                    counts.closed.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            },
        }
    }
    anyhow::ensure!(
        done,
        "peer {index} stopped with {} of {count} records offered",
        next - pending.len() as u64
    );
    Ok(())
}

impl Run<'_> {
    /// Publishes a fresh pack of two WAV files titled `title` and looks for its
    /// providers: whether the node names itself, and whether its announcement
    /// reached the honest peer.
    fn own_pack(&self, title: &str) -> Result<Check> {
        let (smpl, home, target, witness, timeout) =
            (self.smpl, self.home, &self.target, &self.witness, self.timeout);
        let folder = self.args.dir.join(format!("pack-{}", title.to_lowercase()));
        if folder.exists() {
            std::fs::remove_dir_all(&folder)?;
        }
        std::fs::create_dir_all(&folder)?;
        let variant = title.len() as f32;
        for (i, freq) in [220.0f32, 330.0].into_iter().enumerate() {
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: 44_100,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let mut wav = hound::WavWriter::create(folder.join(format!("Tone_{i}.wav")), spec)?;
            let freq = freq * (1.0 + variant / 20.0);
            for n in 0..44_100 {
                let v = (n as f32 * freq * std::f32::consts::TAU / 44_100.0).sin() * 0.5;
                wav.write_sample((v * i16::MAX as f32) as i16)?;
            }
            wav.finalize()?;
        }
        let started = Instant::now();
        let folder = folder.to_str().context("the pack folder's path is not UTF-8")?;
        let title = format!("DHT {title}");
        let answer =
            smpl_json(smpl, home, &["publish", folder, "--title", &title, "--genre", "House", "--free"])?;
        let publish_secs = started.elapsed().as_secs_f64();
        let pack: PackId =
            answer["pack_id"].as_str().with_context(|| format!("publish answered {answer}"))?.parse()?;
        let key = kad::RecordKey::new(&pack.0);
        let check = lookup(target, key.clone(), target.peer, timeout)?;
        let mut witnessed_secs = None;
        while witnessed_secs.is_none() && started.elapsed() < timeout {
            if witness.holds(&key)? {
                witnessed_secs = Some(started.elapsed().as_secs_f64());
            } else {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(Check { publish_secs, witnessed_secs, ..check })
    }
}

/// An honest peer as the node meets any: Kademlia in server mode and identify,
/// listening on 127.0.0.1, connected to the node alone. The node puts it in its
/// routing table, so its announcements of its own packs go to it.
#[derive(NetworkBehaviour)]
struct Honest {
    allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    identify: identify::Behaviour,
    kad: kad::Behaviour<MemoryStore>,
}

/// The honest peer, on a thread of its own, asked whether it holds the node's
/// provider record of a key.
struct Witness {
    ask: tokio::sync::mpsc::UnboundedSender<(kad::RecordKey, std::sync::mpsc::Sender<bool>)>,
    timeout: Duration,
}

impl Witness {
    /// Starts the honest peer and returns once the node has its identify answer
    /// (and so its address).
    fn start(target: &Target, timeout: Duration) -> Result<Witness> {
        let (ask, mut asked) =
            tokio::sync::mpsc::unbounded_channel::<(kad::RecordKey, std::sync::mpsc::Sender<bool>)>();
        let (ready, introduced) = std::sync::mpsc::channel();
        let target = target.clone();
        std::thread::Builder::new().name("dht-witness".into()).spawn(move || -> Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async move {
                let mut swarm = honest_peer(&target, timeout)?;
                swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
                swarm.dial(DialOpts::peer_id(target.peer).addresses(vec![target.addr.clone()]).build())?;
                loop {
                    tokio::select! {
                        question = asked.recv() => {
                            // The harness dropped its handle: the run is over.
                            let Some((key, reply)) = question else { return Ok(()) };
                            let store = swarm.behaviour_mut().kad.store_mut();
                            let _ = reply.send(store.providers(&key).iter().any(|p| p.provider == target.peer));
                        }
                        event = swarm.select_next_some() => {
                            if let SwarmEvent::Behaviour(HonestEvent::Identify(identify::Event::Sent { peer_id, .. })) = event
                                && peer_id == target.peer
                            {
                                let _ = ready.send(());
                            }
                        }
                    }
                }
            })
        })?;
        introduced
            .recv_timeout(timeout)
            .map_err(|_| anyhow!("the honest peer did not meet the node within {} s", timeout.as_secs()))?;
        Ok(Witness { ask, timeout })
    }

    /// Whether the honest peer holds the node's provider record of `key`.
    fn holds(&self, key: &kad::RecordKey) -> Result<bool> {
        let (reply, answer) = std::sync::mpsc::channel();
        self.ask.send((key.clone(), reply)).map_err(|_| anyhow!("the honest peer stopped"))?;
        answer.recv_timeout(self.timeout).map_err(|_| anyhow!("the honest peer did not answer"))
    }
}

/// Kademlia on `/smpl/kad/1` that does nothing on its own: no bootstrap, no
/// republishing or replication, queries that end after `timeout`.
fn kad_config(timeout: Duration) -> kad::Config {
    let mut config = kad::Config::new(KAD_PROTOCOL);
    config
        .set_query_timeout(timeout)
        .set_periodic_bootstrap_interval(None)
        .set_provider_publication_interval(None)
        .set_publication_interval(None)
        .set_replication_interval(None);
    config
}

/// The honest peer's swarm: TCP + noise + yamux, identify, and Kademlia on
/// `/smpl/kad/1` in server mode, without bootstrap or republishing.
fn honest_peer(target: &Target, timeout: Duration) -> Result<Swarm<Honest>> {
    let swarm = SwarmBuilder::with_existing_identity(fresh_key())
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)?
        .with_behaviour(|key| {
            let peer = key.public().to_peer_id();
            let mut kad = kad::Behaviour::with_config(peer, MemoryStore::new(peer), kad_config(timeout));
            kad.set_mode(Some(kad::Mode::Server));
            kad.add_address(&target.peer, target.addr.clone());
            let mut allow = allow_block_list::Behaviour::default();
            allow.allow_peer(target.peer);
            let identify = identify::Behaviour::new(identify::Config::new("/smpl/id/1".into(), key.public()));
            Honest { allow, identify, kad }
        })?
        .with_swarm_config(|config| config.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    Ok(swarm)
}

/// Asks the node, from a fresh client of its own key, for the providers of `key`:
/// whether it names `provider`, and how long that took.
fn lookup(target: &Target, key: kad::RecordKey, provider: PeerId, timeout: Duration) -> Result<Check> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut swarm = client(fresh_key(), target, 1, timeout)?;
        connect(&mut swarm, target, timeout).await?;
        let started = Instant::now();
        let query = swarm.behaviour_mut().kad.get_providers(key);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let event = tokio::time::timeout_at(deadline, swarm.select_next_some()).await.map_err(|_| {
                anyhow!("the node did not answer a provider lookup within {} s", timeout.as_secs())
            })?;
            let SwarmEvent::Behaviour(ClientEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetProviders(result),
                step,
                stats,
            })) = event
            else {
                continue;
            };
            if id != query {
                continue;
            }
            let lookup_ms = started.elapsed().as_secs_f64() * 1e3;
            match result {
                Ok(kad::GetProvidersOk::FoundProviders { providers, .. })
                    if providers.contains(&provider) =>
                {
                    return Ok(Check { found: true, lookup_ms, ..Check::default() });
                }
                Ok(_) => {}
                Err(e) => bail!("a provider lookup failed: {e}"),
            }
            if step.last {
                anyhow::ensure!(stats.num_successes() > 0, "the node did not answer a provider lookup");
                return Ok(Check { found: false, lookup_ms, ..Check::default() });
            }
        }
    })
}

/// A client swarm of `key`: TCP + noise + yamux and Kademlia on `/smpl/kad/1` in
/// client mode, whose store has room for `provided` keys of its own. Only the node
/// goes in its routing table, and it may connect to no other peer.
fn client(
    key: identity::Keypair,
    target: &Target,
    provided: usize,
    timeout: Duration,
) -> Result<Swarm<Client>> {
    let swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)?
        .with_behaviour(|key| {
            let peer = key.public().to_peer_id();
            let mut config = kad_config(timeout);
            config.set_kbucket_inserts(kad::BucketInserts::Manual);
            let store = MemoryStore::with_config(
                peer,
                MemoryStoreConfig {
                    max_provided_keys: provided.max(1),
                    max_records: 0,
                    ..Default::default()
                },
            );
            let mut kad = kad::Behaviour::with_config(peer, store, config);
            kad.set_mode(Some(kad::Mode::Client));
            kad.add_address(&target.peer, target.addr.clone());
            let mut allow = allow_block_list::Behaviour::default();
            allow.allow_peer(target.peer);
            Client { allow, kad }
        })?
        .with_swarm_config(|config| config.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    Ok(swarm)
}

/// Dials the node and waits for the connection.
async fn connect(swarm: &mut Swarm<Client>, target: &Target, timeout: Duration) -> Result<()> {
    swarm.dial(DialOpts::peer_id(target.peer).addresses(vec![target.addr.clone()]).build())?;
    let connected = tokio::time::timeout(timeout, async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == target.peer => return Ok(()),
                SwarmEvent::OutgoingConnectionError { error, .. } => {
                    return Err(anyhow!("connecting to the node at {}: {error}", target.addr));
                }
                _ => {}
            }
        }
    });
    connected.await.map_err(|_| anyhow!("no connection to the node within {} s", timeout.as_secs()))?
}

/// Flood peer `index`'s key: fresh each run (not the node's, not any other peer's).
fn attacker_key(seed: u64, index: usize) -> identity::Keypair {
    let mut secret =
        *blake3::hash(format!("smpl dht flood peer {seed} {index} {}", std::process::id()).as_bytes())
            .as_bytes();
    identity::Keypair::ed25519_from_bytes(&mut secret).expect("32 bytes are an ed25519 secret")
}

/// A key of its own for each lookup.
fn fresh_key() -> identity::Keypair {
    static LOOKUPS: AtomicU64 = AtomicU64::new(0);
    let n = LOOKUPS.fetch_add(1, Ordering::Relaxed);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut secret = *blake3::hash(format!("smpl dht lookup {n} {nanos}").as_bytes()).as_bytes();
    identity::Keypair::ed25519_from_bytes(&mut secret).expect("32 bytes are an ed25519 secret")
}

/// Key `i` that flood peer `peer` offers: 32 random bytes.
fn record_key(seed: u64, peer: usize, i: u64) -> kad::RecordKey {
    let mut r = rng::Rng::for_item(seed, 1000 + peer as u64, i);
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&r.next_u64().to_le_bytes());
    }
    kad::RecordKey::new(&bytes)
}

/// The node's count of other peers' provider records it dropped; `None` if its
/// status does not have one.
fn provider_records_dropped(api: &Api) -> Result<Option<u64>> {
    Ok(api.get("/v1/status")?["dropped"]["provider_records_dropped"].as_u64())
}

fn yes_no(found: bool) -> &'static str {
    if found { "yes" } else { "no" }
}

fn print_table(args: &Args, f: &Figures) {
    let mb = |(rss, anon): (u64, u64)| format!("{:.0} MB ({:.0})", rss as f64 / 1e6, anon as f64 / 1e6);
    let own = |c: &Check| {
        let reached = c.witnessed_secs.map_or("no".to_string(), |secs| format!("by {secs:.2} s"));
        format!(
            "{}, lookup {:.1} ms (publish {:.2} s); at the honest peer: {reached}",
            yes_no(c.found),
            c.lookup_ms,
            c.publish_secs
        )
    };
    let remote = |c: &Check| format!("{}, lookup {:.1} ms", yes_no(c.found), c.lookup_ms);
    println!(
        "\n{} provider records offered to one node by {} peers, {} queries in flight; load {:.1}\n",
        args.records,
        args.peers,
        args.in_flight,
        mem::load_average().unwrap_or(f64::NAN)
    );
    println!("| figure | value |");
    println!("| --- | ---: |");
    println!("| records offered (failed) | {} ({}) |", f.offered, f.failed);
    println!(
        "| offered a second | {:.0} ({:.1} s) |",
        f.offered as f64 / f.flood_secs.max(1e-9),
        f.flood_secs
    );
    println!("| records the node dropped | {} |", f.dropped.map_or("n/a".to_string(), |d| d.to_string()));
    println!(
        "| node RSS before / peak / after (anon) | {} / {} / {} |",
        mb(f.rss_before),
        mb(f.rss_peak),
        mb(f.rss_after)
    );
    println!("| own pack named as provider: before the flood | {} |", own(&f.before));
    match &f.mid {
        Some(mid) => println!("| own pack named as provider: mid-flood | {} |", own(mid)),
        None => println!("| own pack named as provider: mid-flood | n/a |"),
    }
    println!("| own pack named as provider: after the flood | {} |", own(&f.after));
    println!("| provider of the flood's first record named | {} |", remote(&f.kept));
    println!("| provider of the flood's last record named | {} |", remote(&f.last));
    println!("| connections to the node closed | {} |", f.closed);
    println!(
        "| node log: kad streams dropped / announces failed | {} / {} |",
        f.log_stream_drops, f.log_announce_failed
    );
}
