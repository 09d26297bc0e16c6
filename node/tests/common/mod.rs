//! Helpers shared by the multi-node tests: nodes on 127.0.0.1 with mDNS off,
//! publishing, searching and fetching with timeouts, and what a buyer or an
//! attacker asks of another node. Packs and WAV files come from `smpl_testkit`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use smpl_node::index::{SearchQuery, Sort};
use smpl_node::net::wire::{TradeRequest, TradeResponse};
use smpl_node::{Home, Multiaddr, Node, NodeOptions, PublishRequest, SellerPolicy, TradeConfig};
use smpl_protocol::{BlobHash, Identity, LicenseTerms, NodeId, PackId, Price};
use tokio::sync::mpsc;

// The kit's builders these tests use, one `use common::*` away (each test file uses some).
#[allow(unused_imports)]
pub use smpl_testkit::{
    manifest::usd,
    pack::{assert_same_files, make_pack, make_pack_with},
    wav::write_fn,
};

pub const STEP: Duration = Duration::from_secs(60);

/// Options for a node at `home` that talks to 127.0.0.1 only: API and libp2p on
/// free ports, mDNS, relays and garbage collection off.
pub fn options(home: Home, bootstrap: &[Multiaddr], trade: TradeConfig) -> NodeOptions {
    NodeOptions {
        home,
        api: "127.0.0.1:0".parse().unwrap(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap: bootstrap.to_vec(),
        mdns: false,
        relay: None,
        relay_server: false,
        gc_interval: None,
        budget: Default::default(),
        trade,
    }
}

pub async fn start(root: &Path, name: &str, bootstrap: &[Multiaddr]) -> Node {
    start_with(root, name, bootstrap, TradeConfig::default()).await
}

/// A node that sells under `trade`.
pub async fn start_with(root: &Path, name: &str, bootstrap: &[Multiaddr], trade: TradeConfig) -> Node {
    start_node(root, name, name, bootstrap, trade).await
}

/// A node whose home is `root/<home>` and whose display name is `name`, so that
/// several nodes can share one name.
pub async fn start_named(root: &Path, home: &str, name: &str, bootstrap: &[Multiaddr]) -> Node {
    start_node(root, home, name, bootstrap, TradeConfig::default()).await
}

async fn start_node(
    root: &Path,
    home: &str,
    name: &str,
    bootstrap: &[Multiaddr],
    trade: TradeConfig,
) -> Node {
    let dir = Home::new(root.join(home));
    dir.init().unwrap();
    let mut config = dir.config().unwrap();
    config.name = name.to_string();
    config.library = root.join(format!("{home}-library"));
    dir.save_config(&config).unwrap();
    let options = options(dir, bootstrap, trade);
    tokio::time::timeout(STEP, Node::start(&options)).await.expect("node start timed out").unwrap()
}

/// How a node sells: `policy`, and a payment hook gets 2 s to answer.
pub fn policy(policy: SellerPolicy) -> TradeConfig {
    TradeConfig { policy, hook_timeout: Duration::from_secs(2), ..TradeConfig::default() }
}

/// The identity of the test node `root/<name>`.
pub fn identity_of(root: &Path, name: &str) -> Identity {
    Home::new(root.join(name)).identity().unwrap()
}

/// The node's first libp2p listen address (waits up to 5 s for one).
pub async fn addr(node: &Node) -> Multiaddr {
    for _ in 0..250 {
        if let Some(a) = node.listen_addrs().await.first() {
            return a.parse().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("node has no listen address");
}

/// A drum-like hit, like those of [`make_pack`].
pub fn write_wav(path: &Path, seconds: f32, freq: f32) {
    smpl_testkit::pack::write_drum(path, seconds, freq);
}

pub async fn publish(node: &Node, dir: &Path, title: &str) -> PackId {
    publish_priced(node, dir, title, None).await
}

/// Publishes `dir` as `title`: a new pack, or a new version of the node's pack
/// of that title (with any price change confirmed).
pub async fn publish_priced(node: &Node, dir: &Path, title: &str, price: Option<Price>) -> PackId {
    let existing = PackId::derive(&node.node_id(), &smpl_protocol::slugify(title));
    let update = node.store().manifest(&existing).unwrap().map(|_| existing.to_string());
    let request = PublishRequest {
        dir: dir.to_path_buf(),
        update,
        title: Some(title.into()),
        genre: Some("techno".into()),
        tags: Some(vec!["line".into()]),
        free: price.is_none(),
        price,
        license: Some(LicenseTerms::Named("royalty-free".into())),
        confirm: true,
        ..PublishRequest::default()
    };
    node.publish(request, sink()).await.unwrap().pack_id
}

pub fn query(text: &str) -> SearchQuery {
    SearchQuery {
        text: Some(text.into()),
        genre: None,
        tags: vec![],
        kind: None,
        bpm: None,
        key: None,
        key_match: Default::default(),
        max_price: None,
        author: None,
        packs: true,
        sort: Sort::Relevance,
        limit: 20,
        offset: 0,
        similar_to: None,
    }
}

/// Waits until `node`'s search for `text` returns `pack` (or, with `gone`, stops
/// returning it); returns how long it took.
pub async fn wait_for(node: &Node, text: &str, pack: PackId, gone: bool, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let hits = node.search(query(text)).await.unwrap().hits;
        if hits.iter().any(|h| h.pack_id == pack) != gone {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{text}: not {} within {limit:?}",
            if gone { "gone" } else { "there" }
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn fetch(node: &Node, pack: PackId, out: &Path) -> PathBuf {
    fetch_outcome(node, pack, out).await.path
}

pub async fn fetch_outcome(node: &Node, pack: PackId, out: &Path) -> smpl_node::FetchOutcome {
    tokio::time::timeout(STEP, node.fetch(&pack, Some(out.to_path_buf()), sink()))
        .await
        .expect("fetch timed out")
        .unwrap()
}

/// A fetch that may fail: its error as text, or "fetch timed out".
pub async fn try_fetch(node: &Node, pack: PackId, out: &Path) -> Result<(), String> {
    match tokio::time::timeout(STEP, node.fetch(&pack, Some(out.to_path_buf()), sink())).await {
        Ok(result) => result.map(|_| ()).map_err(|e| e.to_string()),
        Err(_) => Err("fetch timed out".into()),
    }
}

/// A progress channel whose events nobody reads.
fn sink<T: Send + 'static>() -> mpsc::Sender<T> {
    let (tx, mut rx) = mpsc::channel(64);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    tx
}

/// Connects `from` to `to` and sends one trade request.
pub async fn trade(from: &Node, to: NodeId, request: TradeRequest) -> TradeResponse {
    from.network().unwrap().connect(to).await.unwrap();
    from.network().unwrap().trade(to, request).await.unwrap()
}

/// Asserts that `node` holds not one byte of any of `hashes`.
pub async fn holds_none(node: &Node, hashes: &[BlobHash]) {
    for hash in hashes {
        let status = node.blobs().store().blobs().status(iroh_blobs::Hash::from_bytes(hash.0)).await;
        assert!(matches!(status, Ok(iroh_blobs::api::blobs::BlobStatus::NotFound)), "{hash}: {status:?}");
    }
}
