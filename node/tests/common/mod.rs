//! Helpers shared by the multi-node tests: nodes on 127.0.0.1 with mDNS off,
//! generated packs, publishing, searching and fetching with timeouts.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use smpl_node::index::{SearchQuery, Sort};
use smpl_node::{Home, Multiaddr, Node, NodeOptions, PublishRequest, TradeConfig};
use smpl_protocol::{LicenseTerms, PackId, Price};
use tokio::sync::mpsc;

pub const STEP: Duration = Duration::from_secs(60);

pub async fn start(root: &Path, name: &str, bootstrap: &[Multiaddr]) -> Node {
    start_with(root, name, bootstrap, TradeConfig::default()).await
}

/// A node that sells under `trade`.
pub async fn start_with(root: &Path, name: &str, bootstrap: &[Multiaddr], trade: TradeConfig) -> Node {
    let home = Home::new(root.join(name));
    home.init().unwrap();
    let mut config = home.config().unwrap();
    config.name = name.to_string();
    config.library = root.join(format!("{name}-library"));
    home.save_config(&config).unwrap();
    let options = NodeOptions {
        home,
        api: "127.0.0.1:0".parse().unwrap(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap: bootstrap.to_vec(),
        mdns: false,
        relay: None,
        gc_interval: None,
        trade,
    };
    tokio::time::timeout(STEP, Node::start(&options)).await.expect("node start timed out").unwrap()
}

pub async fn addr(node: &Node) -> Multiaddr {
    for _ in 0..100 {
        if let Some(a) = node.listen_addrs().await.first() {
            return a.parse().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("node has no listen address");
}

/// A decaying tone: a drum-like one-shot.
pub fn write_wav(path: &Path, seconds: f32, freq: f32) {
    write_fn(path, seconds, |t| (t * freq * std::f32::consts::TAU).sin() * (-t * 8.0).exp());
}

/// A mono 16-bit 44.1 kHz WAV whose samples `f(t)` gives (t in seconds, -1..1).
pub fn write_fn(path: &Path, seconds: f32, f: impl Fn(f32) -> f32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(44_100.0 * seconds) as usize {
        w.write_sample((f(i as f32 / 44_100.0).clamp(-1.0, 1.0) * 30_000.0) as i16).unwrap();
    }
    w.finalize().unwrap();
}

pub fn make_pack(dir: &Path) {
    write_wav(&dir.join("Kicks/Line_Kick_01.wav"), 0.5, 55.0);
    write_wav(&dir.join("Kicks/Line_Kick_02.wav"), 0.4, 62.0);
    write_wav(&dir.join("Line_Snare.wav"), 0.3, 190.0);
}

pub async fn publish(node: &Node, dir: &Path, title: &str) -> PackId {
    publish_priced(node, dir, title, None).await
}

pub async fn publish_priced(node: &Node, dir: &Path, title: &str, price: Option<Price>) -> PackId {
    let (tx, mut rx) = mpsc::channel(64);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let request = PublishRequest {
        dir: dir.to_path_buf(),
        title: title.into(),
        genre: "techno".into(),
        tags: vec!["line".into()],
        description: String::new(),
        price,
        license: LicenseTerms::Named("royalty-free".into()),
        bpm: None,
        key: None,
    };
    node.publish(request, tx).await.unwrap().pack_id
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
    let (tx, mut rx) = mpsc::channel(64);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    tokio::time::timeout(STEP, node.fetch(&pack, Some(out.to_path_buf()), tx))
        .await
        .expect("fetch timed out")
        .unwrap()
}

pub fn assert_same_files(original: &Path, fetched: &Path) {
    let mut count = 0;
    for entry in ["Kicks/Line_Kick_01.wav", "Kicks/Line_Kick_02.wav", "Line_Snare.wav"] {
        let a = std::fs::read(original.join(entry)).unwrap();
        let b = std::fs::read(fetched.join(entry))
            .unwrap_or_else(|e| panic!("{entry} missing in {}: {e}", fetched.display()));
        assert!(a == b, "{entry} differs");
        count += 1;
    }
    assert_eq!(count, 3);
}

/// A node whose home is `root/<home>` and whose display name is `name`, so that
/// several nodes can share one name.
pub async fn start_named(root: &Path, home: &str, name: &str, bootstrap: &[Multiaddr]) -> Node {
    let dir = Home::new(root.join(home));
    dir.init().unwrap();
    let mut config = dir.config().unwrap();
    config.name = name.to_string();
    config.library = root.join(format!("{home}-library"));
    dir.save_config(&config).unwrap();
    let options = NodeOptions {
        home: dir,
        api: "127.0.0.1:0".parse().unwrap(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap: bootstrap.to_vec(),
        mdns: false,
        relay: None,
        gc_interval: None,
        trade: TradeConfig::default(),
    };
    tokio::time::timeout(STEP, Node::start(&options)).await.expect("node start timed out").unwrap()
}
