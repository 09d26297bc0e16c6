//! Listing latency: `nodes` real nodes in this process on 127.0.0.1 (mDNS off),
//! each bootstrapped to two or three random earlier ones, so the network is one
//! random connected graph. `listings` packs (one tiny WAV each) are published one
//! after another from random nodes with [`Node::publish`]; for each, every node's
//! store is polled until it holds the manifest.
//!
//! A listing's latency is measured from the moment `publish` returned (the
//! manifest is signed, stored, indexed locally and handed to gossipsub) to the
//! moment the last node stored it. The time the publish call took (analysis,
//! local index commit) is reported apart.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use smpl_node::{Home, Multiaddr, Node, NodeOptions};

use crate::smpl::{first_addr, init_home, publish};

/// Longest wait for one listing to reach every node.
const LISTING_TIMEOUT: Duration = Duration::from_secs(10);
/// Polling interval of the stores.
const POLL: Duration = Duration::from_millis(2);

#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    pub nodes: usize,
    pub edges: usize,
    /// Seconds from the first node start until every node had a peer and the
    /// gossip mesh had a few heartbeats to form.
    pub startup_secs: f64,
    /// Per listing: ms from publish returning to the last node storing it.
    pub to_all_ms: Vec<f64>,
    /// Per listing and receiving node: ms from publish returning to that node
    /// storing it.
    pub deliveries_ms: Vec<f64>,
    /// Per listing: ms the publish call itself took on the publishing node.
    pub publish_ms: Vec<f64>,
    /// Listings that did not reach every node within the timeout.
    pub missed: usize,
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn write_tiny_wav(path: &Path, index: usize) -> Result<()> {
    std::fs::create_dir_all(path.parent().context("no folder")?)?;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec)?;
    let freq = 60.0 + 13.0 * index as f32;
    for i in 0..4_410 {
        let t = i as f32 / 44_100.0;
        writer
            .write_sample(((t * freq * std::f32::consts::TAU).sin() * (-t * 30.0).exp() * 20_000.0) as i16)?;
    }
    writer.finalize()?;
    Ok(())
}

pub async fn run(dir: &Path, nodes: usize, listings: usize, seed: u64) -> Result<Report> {
    anyhow::ensure!(nodes >= 2, "need at least two nodes");
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    let folders = dir.join("listings");
    for i in 0..listings {
        write_tiny_wav(&folders.join(format!("{i:02}")).join(format!("Gossip_Kick_{i:02}.wav")), i)?;
    }

    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let started = Instant::now();
    let mut running: Vec<Node> = Vec::with_capacity(nodes);
    let mut addrs: Vec<Multiaddr> = Vec::with_capacity(nodes);
    let mut edges = 0;
    for i in 0..nodes {
        let mut bootstrap = Vec::new();
        let want = i.min(2 + rng.below(2));
        while bootstrap.len() < want {
            let peer = rng.below(i);
            if !bootstrap.contains(&addrs[peer]) {
                bootstrap.push(addrs[peer].clone());
            }
        }
        edges += bootstrap.len();
        let root = dir.join(format!("node-{i:02}"));
        let home: Home = init_home(&root, &format!("gossip-{i:02}"), &root.join("library"))?;
        let options = NodeOptions {
            home,
            api: "127.0.0.1:0".parse()?,
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
            bootstrap,
            mdns: false,
            relay: None,
            relay_server: false,
            gc_interval: None,
            budget: Default::default(),
            trade: Default::default(),
        };
        let node = Node::start(&options).await.with_context(|| format!("starting node {i}"))?;
        addrs.push(first_addr(&node).await?.parse()?);
        running.push(node);
    }
    // Every node connected, then a few gossipsub heartbeats (500 ms) for the mesh.
    let deadline = Instant::now() + Duration::from_secs(30);
    for (i, node) in running.iter().enumerate() {
        while node.peers().await?.is_empty() {
            if Instant::now() > deadline {
                bail!("node {i} found no peer within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let startup_secs = started.elapsed().as_secs_f64();

    let mut report = Report {
        nodes,
        edges,
        startup_secs,
        to_all_ms: Vec::new(),
        deliveries_ms: Vec::new(),
        publish_ms: Vec::new(),
        missed: 0,
    };
    for i in 0..listings {
        let from = rng.below(nodes);
        let called = Instant::now();
        let pack =
            publish(&running[from], &folders.join(format!("{i:02}")), &format!("Gossip Listing {i:02}"))
                .await?;
        let announced = Instant::now();
        report.publish_ms.push((announced - called).as_secs_f64() * 1e3);
        let mut arrived: Vec<Option<f64>> = vec![None; nodes];
        arrived[from] = Some(0.0);
        loop {
            let now = Instant::now();
            for (n, node) in running.iter().enumerate() {
                if arrived[n].is_none() && node.store().manifest(&pack)?.is_some() {
                    arrived[n] = Some(now.saturating_duration_since(announced).as_secs_f64() * 1e3);
                }
            }
            if arrived.iter().all(Option::is_some) || now - announced > LISTING_TIMEOUT {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        if arrived.iter().any(Option::is_none) {
            report.missed += 1;
            eprintln!(
                "listing {i} reached {} of {nodes} nodes within {LISTING_TIMEOUT:?}",
                arrived.iter().flatten().count()
            );
            continue;
        }
        let times: Vec<f64> =
            arrived.iter().enumerate().filter(|(n, _)| *n != from).filter_map(|(_, t)| *t).collect();
        report.to_all_ms.push(times.iter().copied().fold(0.0, f64::max));
        report.deliveries_ms.extend(times);
        // A pause so that listings do not overlap.
        tokio::time::sleep(Duration::from_millis(100 + rng.below(100) as u64)).await;
    }
    for node in running {
        node.shutdown().await;
    }
    Ok(report)
}
