//! The smpl side, as two child phases of this binary: a seeder node that publishes
//! the pack (once; its home is kept between runs) and serves it, and a fresh node
//! that learns the listing from it over libp2p and fetches the pack with
//! [`Node::fetch`], timed, with its peak RSS measured against its idle RSS.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use smpl_node::{FetchEvent, Home, Multiaddr, Node, NodeOptions, PublishRequest};
use smpl_protocol::PackId;
use tokio::sync::mpsc;

use crate::procs;

/// What the seeder prints once it serves the pack.
#[derive(Debug, Serialize, Deserialize)]
pub struct Seeding {
    pub pack_id: PackId,
    pub addr: String,
    /// Seconds the publish took, if this start published the pack.
    pub published_secs: Option<f64>,
}

/// What the fetching node reports.
#[derive(Debug, Serialize, Deserialize)]
pub struct Fetched {
    /// `Node::fetch` from its call to its return: providers looked up, download
    /// verified, files exported into the library.
    pub total_secs: f64,
    /// From the call to the last download progress event (everything stored and
    /// verified, before the export).
    pub download_secs: Option<f64>,
    pub files: usize,
    pub bytes: u64,
    pub path: PathBuf,
    /// VmRSS once the node runs and holds the listing, before the fetch.
    pub idle_rss: Option<u64>,
    /// VmHWM over the fetch (reset before it).
    pub peak_rss: Option<u64>,
}

fn options(home: Home, bootstrap: Vec<Multiaddr>) -> NodeOptions {
    NodeOptions {
        home,
        api: "127.0.0.1:0".parse().expect("a socket address"),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("a multiaddr")],
        bootstrap,
        mdns: false,
        relay: None,
        relay_server: false,
        gc_interval: None,
        budget: Default::default(),
        trade: Default::default(),
    }
}

pub fn init_home(root: &Path, name: &str, library: &Path) -> Result<Home> {
    let home = Home::new(root);
    home.init()?;
    let mut config = home.config()?;
    config.name = name.to_string();
    config.library = library.to_path_buf();
    home.save_config(&config)?;
    Ok(home)
}

pub async fn first_addr(node: &Node) -> Result<String> {
    for _ in 0..250 {
        if let Some(addr) = node.listen_addrs().await.into_iter().next() {
            return Ok(addr);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("the node reports no listen address")
}

pub async fn publish(node: &Node, dir: &Path, title: &str) -> Result<PackId> {
    let (tx, mut rx) = mpsc::channel(64);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let request = PublishRequest {
        dir: dir.to_path_buf(),
        title: Some(title.into()),
        genre: Some("techno".into()),
        tags: Some(vec!["bench".into()]),
        ..PublishRequest::default()
    };
    Ok(node.publish(request, tx).await?.pack_id)
}

/// Starts the seeder node, publishes `pack` unless the home already serves it,
/// prints a [`Seeding`] line and serves until stdin closes.
pub async fn seed(home: &Path, pack: &Path, title: &str) -> Result<()> {
    let home = init_home(home, "seeder", &home.join("library"))?;
    let node = Node::start(&options(home, Vec::new())).await?;
    let existing = node.store().manifests().filter_map(Result::ok).find(|m| m.title == title);
    let (pack_id, published_secs) = match existing {
        Some(manifest) if node.blobs().has_pack(&manifest.pack_id).await? => (manifest.pack_id, None),
        _ => {
            let started = Instant::now();
            let id = publish(&node, pack, title).await?;
            (id, Some(started.elapsed().as_secs_f64()))
        }
    };
    let seeding = Seeding { pack_id, addr: first_addr(&node).await?, published_secs };
    println!("{}", serde_json::to_string(&seeding)?);
    tokio::task::spawn_blocking(|| std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new()))
        .await??;
    node.shutdown().await;
    Ok(())
}

/// Starts a fresh node bootstrapped to the seeder, waits for the listing, and
/// fetches the pack into `out`.
pub async fn fetch(home: &Path, bootstrap: &str, pack: &str, out: &Path) -> Result<Fetched> {
    let pack: PackId = pack.parse().map_err(|e| anyhow::anyhow!("pack id {pack:?}: {e:?}"))?;
    let bootstrap: Multiaddr = bootstrap.parse()?;
    let home = init_home(home, "leecher", out)?;
    let node = Node::start(&options(home, vec![bootstrap])).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while node.store().manifest(&pack)?.is_none() {
        if Instant::now() > deadline {
            bail!("the listing of {pack} did not arrive within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let the connection settle (identify, hello with the iroh addresses).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_rss = procs::rss();
    procs::reset_peak();

    let (tx, mut rx) = mpsc::channel(1024);
    let started = Instant::now();
    let last_progress = Arc::new(Mutex::new(None));
    let watcher = tokio::spawn({
        let last_progress = last_progress.clone();
        async move {
            while let Some(event) = rx.recv().await {
                if let FetchEvent::Progress { .. } = event {
                    *last_progress.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(started.elapsed().as_secs_f64());
                }
            }
        }
    });
    let outcome = node.fetch(&pack, Some(out.to_path_buf()), tx).await.context("fetch")?;
    let total_secs = started.elapsed().as_secs_f64();
    let peak_rss = procs::peak_rss();
    watcher.abort();
    let download_secs = *last_progress.lock().unwrap_or_else(|p| p.into_inner());
    node.shutdown().await;
    Ok(Fetched {
        total_secs,
        download_secs,
        files: outcome.files,
        bytes: outcome.bytes,
        path: outcome.path,
        idle_rss,
        peak_rss,
    })
}
