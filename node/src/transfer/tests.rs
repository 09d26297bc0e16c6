//! Several real endpoints in one process, all on 127.0.0.1, each with its own
//! blob store in a temporary folder.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use iroh::{Endpoint, RelayMode, SecretKey};
use iroh_blobs::api::Store;
use iroh_blobs::hashseq::HashSeq;
use iroh_blobs::protocol::{ChunkRanges, ChunkRangesSeq, PushRequest, Request};
use iroh_blobs::ticket::BlobTicket;
use iroh_blobs::{BlobFormat, HashAndFormat};
use smpl_protocol::{
    AudioFormat, BlobHash, Identity, LicenseTerms, Manifest, NodeId, PackId, SampleEntry, SampleKind,
};
use tempfile::TempDir;
use tokio::sync::mpsc;

use super::*;
use crate::blobs::{from_iroh, to_iroh};

const TIMEOUT: Duration = Duration::from_secs(60);

async fn timed<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(value) => value,
        Err(_) => panic!("{what} did not finish within {TIMEOUT:?}"),
    }
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Deterministic bytes that do not compress or repeat.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

struct TestNode {
    dir: TempDir,
    identity: Identity,
    blobs: Blobs,
    transfer: Option<Transfer>,
}

impl TestNode {
    async fn start(seed: u8) -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(&dir.path().join("blobs")).await.unwrap();
        let identity = Identity::from_secret_bytes([seed; 32]);
        let transfer =
            Transfer::start(&identity, &blobs, loopback(), None, Arc::new(AllowAll)).await.unwrap();
        TestNode { dir, identity, blobs, transfer: Some(transfer) }
    }

    fn id(&self) -> NodeId {
        self.identity.node_id()
    }

    fn transfer(&self) -> &Transfer {
        self.transfer.as_ref().expect("transfer running")
    }

    /// Tells this node where `other` listens (what libp2p does in the node).
    fn meet(&self, other: &TestNode) {
        self.transfer().add_peer(other.id(), other.transfer().local_addrs(), None);
    }

    async fn stop(&mut self) {
        if let Some(transfer) = self.transfer.take() {
            transfer.shutdown().await;
        }
    }

    async fn close(mut self) {
        self.stop().await;
        self.blobs.shutdown().await;
    }
}

/// A generated pack: the files on disk and how to describe them.
struct Pack {
    files: Vec<(String, Vec<u8>)>,
}

impl Pack {
    fn new(sizes: &[usize]) -> Pack {
        let names = ["kicks/kick 01.wav", "loops/dusty loop 120.wav", "snare.wav", "fx/riser.wav"];
        let files = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| {
                let name = names.get(i).map_or_else(|| format!("extra/{i}.wav"), |n| n.to_string());
                (name, noise(i as u64 + 1, size))
            })
            .collect();
        Pack { files }
    }

    /// Imports the files into `blobs` and stores the collection, as publish does.
    async fn store(&self, node: &TestNode) -> (BlobHash, Vec<(String, BlobHash)>) {
        let src = node.dir.path().join("src");
        let mut entries = Vec::new();
        let mut tags = Vec::new();
        for (i, (name, data)) in self.files.iter().enumerate() {
            let path = src.join(format!("{i}.wav"));
            std::fs::create_dir_all(&src).unwrap();
            std::fs::write(&path, data).unwrap();
            let tag = node.blobs.import_file(&path).await.unwrap();
            entries.push((name.clone(), from_iroh(&tag.hash())));
            tags.push(tag);
        }
        let content = node.blobs.store_pack(&pack_id(), entries.clone()).await.unwrap();
        (content, entries)
    }

    fn bytes(&self) -> u64 {
        self.files.iter().map(|(_, d)| d.len() as u64).sum()
    }

    fn manifest(&self, content: BlobHash, entries: &[(String, BlobHash)]) -> Manifest {
        let author = Identity::from_secret_bytes([1; 32]).node_id();
        Manifest {
            pack_id: pack_id(),
            author,
            author_name: "DJ ../../Dusty".into(),
            slug: "dusty-808s".into(),
            seq: 1,
            title: "Dusty 808s / Vol. 1".into(),
            description: String::new(),
            genre: "hip-hop".into(),
            tags: vec![],
            price: None,
            license: LicenseTerms::Named("royalty-free".into()),
            created_at: 1_700_000_000,
            content,
            cover: None,
            licenses_from: None,
            payment: None,
            samples: entries
                .iter()
                .zip(&self.files)
                .map(|((name, hash), (_, data))| SampleEntry {
                    name: name.clone(),
                    hash: *hash,
                    size: data.len() as u64,
                    format: AudioFormat::Wav,
                    frames: 1000,
                    sample_rate: 44_100,
                    channels: 1,
                    bit_depth: Some(16),
                    peak_dbfs: 0.0,
                    loudness_lufs: None,
                    kind: SampleKind::OneShot,
                    tempo: None,
                    key: None,
                    note: None,
                    tags: vec![],
                    waveform: vec![],
                    preview: None,
                    descriptor: None,
                })
                .collect(),
        }
    }

    /// Every file exported under `dir` is byte-identical to the original.
    fn assert_exported(&self, dir: &Path) {
        for (name, data) in &self.files {
            let path = dir.join(name);
            let got = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(got == *data, "{name} differs after export");
        }
    }
}

fn pack_id() -> PackId {
    PackId::derive(&Identity::from_secret_bytes([1; 32]).node_id(), "dusty-808s")
}

/// Bytes of the hash sequence and the collection metadata of a stored pack.
async fn overhead(blobs: &Blobs, content: BlobHash) -> u64 {
    let store = blobs.store();
    let seq = HashSeq::try_from(store.blobs().get_bytes(to_iroh(&content)).await.unwrap()).unwrap();
    let meta = store.blobs().get_bytes(seq.get(0).unwrap()).await.unwrap();
    (seq.len() * 32 + meta.len()) as u64
}

async fn stored_bytes(blobs: &Blobs, content: BlobHash) -> (u64, bool) {
    let local = blobs.store().remote().local(HashAndFormat::hash_seq(to_iroh(&content))).await.unwrap();
    (local.local_bytes(), local.is_complete())
}

fn collect_progress() -> (mpsc::Sender<DownloadProgress>, tokio::task::JoinHandle<Vec<DownloadProgress>>) {
    let (tx, mut rx) = mpsc::channel(16);
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(p) = rx.recv().await {
            seen.push(p);
        }
        seen
    });
    (tx, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_download_and_export() {
    let a = TestNode::start(1).await;
    let b = TestNode::start(2).await;
    let pack = Pack::new(&[300_000, 70_000, 5_000, 1_000_000]);
    let (content, entries) = pack.store(&a).await;
    b.meet(&a);

    let (tx, progress) = collect_progress();
    let done = timed("download", b.transfer().download(content, &[a.id()], Some(tx))).await.unwrap();
    let total = pack.bytes() + overhead(&a.blobs, content).await;
    assert_eq!(done.total, total);
    assert_eq!(done.had, 0);
    assert!(done.fetched >= pack.bytes() && done.fetched <= total, "{done:?}");
    assert!(done.dropped.is_empty(), "{done:?}");
    assert_eq!(stored_bytes(&b.blobs, content).await, (total, true));

    let progress = progress.await.unwrap();
    assert_eq!(progress.last(), Some(&DownloadProgress { done: total, total: Some(total) }));
    assert!(progress.windows(2).all(|w| w[0].done <= w[1].done), "progress went back: {progress:?}");
    assert!(progress.len() > 3, "{progress:?}");

    let library = b.dir.path().join("library");
    let manifest = pack.manifest(content, &entries);
    let exported = timed("export", b.transfer().export(&manifest, &library)).await.unwrap();
    assert_eq!(
        exported.path,
        std::path::absolute(&library)
            .unwrap()
            .join(format!("DJ .._.._Dusty ({})", &manifest.author.to_hex()[..8]))
            .join("Dusty 808s _ Vol. 1")
    );
    assert_eq!((exported.files, exported.bytes), (4, pack.bytes()));
    pack.assert_exported(&exported.path);
    assert_no_part_files(&library);
    // Exporting again replaces the files in place.
    let again = b.transfer().export(&manifest, &library).await.unwrap();
    assert_eq!(again, exported);

    // A second download finds everything stored and needs no provider.
    let again = b.transfer().download(content, &[], None).await.unwrap();
    assert_eq!((again.had, again.fetched, again.total), (total, 0, total));

    // A manifest that does not match the collection is refused.
    let mut wrong = manifest.clone();
    wrong.samples[0].hash = wrong.samples[1].hash;
    let err = b.transfer().export(&wrong, &library).await.unwrap_err();
    assert!(matches!(err, TransferError::Mismatch { .. }), "{err}");
    a.close().await;
    b.close().await;
}

/// Asserts that no half-written (`.smpl-part`) file is left under `library`.
fn assert_no_part_files(library: &Path) {
    let leftovers: Vec<PathBuf> =
        walk(library).into_iter().filter(|p| p.to_string_lossy().contains(".smpl-part")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            }
            out.push(path);
        }
    }
    out
}

/// A provider that serves from a real store but flips a byte in every full
/// 16 KiB chunk group of the pack's files: it really sends wrong bytes.
#[derive(Debug, Clone)]
struct Liar {
    store: Store,
}

impl ProtocolHandler for Liar {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        while let Ok((mut send, mut recv)) = connection.accept_bi().await {
            let (request, _) = Request::read_async(&mut recv).await?;
            let Request::Get(request) = request else { continue };
            let seq = match request.ranges.is_blob() {
                true => None,
                false => self
                    .store
                    .blobs()
                    .get_bytes(request.hash)
                    .await
                    .ok()
                    .and_then(|b| HashSeq::try_from(b).ok()),
            };
            for (offset, ranges) in request.ranges.iter_non_empty_infinite() {
                let hash = match offset {
                    0 => request.hash,
                    n => match seq.as_ref().and_then(|s| s.get(n as usize - 1)) {
                        Some(hash) => hash,
                        None => break,
                    },
                };
                let stream = self.store.blobs().export_bao(hash, ranges.clone()).into_byte_stream();
                futures::pin_mut!(stream);
                while let Some(item) = stream.next().await {
                    let mut bytes = item.map_err(AcceptError::from_err)?.to_vec();
                    if offset >= 2 && bytes.len() == 16 * 1024 {
                        bytes[100] ^= 0x5a;
                    }
                    send.write_all(&bytes).await.map_err(AcceptError::from_err)?;
                }
            }
            send.finish()?;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_provider_is_caught_and_dropped() {
    // The liar: a bare endpoint with the same explicit setup, serving wrong bytes.
    let liar_dir = tempfile::tempdir().unwrap();
    let liar_blobs = Blobs::open(&liar_dir.path().join("blobs")).await.unwrap();
    let liar_key = SecretKey::from_bytes(&[3; 32]);
    let liar_endpoint = Endpoint::builder(iroh::endpoint::presets::Minimal)
        .secret_key(liar_key.clone())
        .relay_mode(RelayMode::Disabled)
        .clear_ip_transports()
        .bind_addr(loopback())
        .unwrap()
        .bind()
        .await
        .unwrap();
    let liar = Router::builder(liar_endpoint)
        .accept(iroh_blobs::ALPN, Liar { store: liar_blobs.store().as_ref().clone() })
        .spawn();
    let liar_id = NodeId(*liar_key.public().as_bytes());
    let liar_addrs: Vec<SocketAddr> = liar.endpoint().addr().ip_addrs().copied().collect();

    let b = TestNode::start(2).await;
    let c = TestNode::start(4).await;
    let pack = Pack::new(&[200_000, 100_000, 50_000, 400_000]);
    let liar_node = TestNode {
        dir: liar_dir,
        identity: Identity::from_secret_bytes([3; 32]),
        blobs: liar_blobs,
        transfer: None,
    };
    let (content, entries) = pack.store(&liar_node).await;
    assert_eq!(pack.store(&c).await.0, content);
    b.transfer().add_peer(liar_id, liar_addrs, None);
    b.meet(&c);

    let done = timed("download", b.transfer().download(content, &[liar_id, c.id()], None)).await.unwrap();
    assert_eq!(stored_bytes(&b.blobs, content).await, (done.total, true));
    assert_eq!(done.dropped.len(), 1, "{done:?}");
    assert_eq!(done.dropped[0].node, liar_id);
    assert!(matches!(done.dropped[0].reason, DropReason::Corrupt(_)), "{done:?}");

    let exported =
        b.transfer().export(&pack.manifest(content, &entries), &b.dir.path().join("lib")).await.unwrap();
    pack.assert_exported(&exported.path);

    // Alone, the liar cannot deliver: the download fails and says why.
    let d = TestNode::start(5).await;
    d.transfer().add_peer(liar_id, liar.endpoint().addr().ip_addrs().copied().collect(), None);
    let err = timed("download", d.transfer().download(content, &[liar_id], None)).await.unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");

    liar.shutdown().await.unwrap();
    liar_node.close().await;
    for node in [b, c, d] {
        node.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_store_on_disk_falls_back_to_another_provider() {
    let a = TestNode::start(1).await;
    let b = TestNode::start(2).await;
    let c = TestNode::start(4).await;
    let pack = Pack::new(&[200_000, 100_000, 50_000, 400_000]);
    let (content, entries) = pack.store(&a).await;
    pack.store(&c).await;

    // Flip bytes inside every data file of A's store (files above the 16 KiB
    // inline limit live in blobs/data/<hash>.data), in place.
    let data_dir = a.dir.path().join("blobs").join("data");
    let mut corrupted = 0;
    for path in walk(&data_dir).into_iter().filter(|p| p.extension().is_some_and(|e| e == "data")) {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.seek(SeekFrom::Start(20_000)).unwrap();
        file.write_all(&[0xAB; 64]).unwrap();
        file.sync_all().unwrap();
        corrupted += 1;
    }
    assert_eq!(corrupted, 4, "every file of the pack is stored as a data file");

    b.meet(&a);
    b.meet(&c);
    let done = timed("download", b.transfer().download(content, &[a.id(), c.id()], None)).await.unwrap();
    assert_eq!(stored_bytes(&b.blobs, content).await, (done.total, true));
    assert_eq!(done.dropped.iter().map(|d| d.node).collect::<Vec<_>>(), vec![a.id()], "{done:?}");
    let exported =
        b.transfer().export(&pack.manifest(content, &entries), &b.dir.path().join("lib")).await.unwrap();
    pack.assert_exported(&exported.path);
    for node in [a, b, c] {
        node.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_download_resumes_where_it_stopped() {
    const BIG: usize = 24 * 1024 * 1024;
    let mut a = TestNode::start(1).await;
    let b = TestNode::start(2).await;
    let pack = Pack::new(&[BIG]);
    let (content, entries) = pack.store(&a).await;
    b.meet(&a);

    // Read progress until a few MiB are in, then stop reading: the download stalls
    // (progress is back-pressured) while A goes away.
    let (tx, mut rx) = mpsc::channel(1);
    let providers = [a.id()];
    let download = b.transfer().download(content, &providers, Some(tx));
    let interrupt = async {
        while let Some(p) = rx.recv().await {
            if p.total.is_some() && p.done > 2 * 1024 * 1024 {
                break;
            }
        }
        a.stop().await;
        while rx.recv().await.is_some() {}
    };
    let (first, ()) = timed("interrupted download", async { tokio::join!(download, interrupt) }).await;
    let err = first.unwrap_err();
    assert!(matches!(err, TransferError::Unavailable { .. }), "{err}");
    let (kept, complete) = stored_bytes(&b.blobs, content).await;
    assert!(!complete);
    assert!(kept > 2 * 1024 * 1024 && kept < BIG as u64, "kept {kept} of {BIG}");

    // A comes back on a new port with the same store; B learns the new address.
    a.transfer =
        Some(Transfer::start(&a.identity, &a.blobs, loopback(), None, Arc::new(AllowAll)).await.unwrap());
    b.meet(&a);
    let (tx, progress) = collect_progress();
    let done = timed("resumed download", b.transfer().download(content, &[a.id()], Some(tx))).await.unwrap();
    assert_eq!(stored_bytes(&b.blobs, content).await, (done.total, true));
    assert!(done.had >= kept - 16 * 1024, "{done:?}, kept {kept}");
    assert!(done.fetched < done.total, "{done:?}");
    assert!(
        done.fetched <= done.total - kept + 64 * 1024,
        "fetched more than the remainder: {done:?}, kept {kept}"
    );
    let progress = progress.await.unwrap();
    let first = progress.iter().find(|p| p.total.is_some()).unwrap();
    assert!(first.done >= kept - 16 * 1024, "progress starts from what was kept: {first:?}");

    let exported =
        b.transfer().export(&pack.manifest(content, &entries), &b.dir.path().join("lib")).await.unwrap();
    pack.assert_exported(&exported.path);
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_is_a_sendme_blob_ticket_with_our_address() {
    let a = TestNode::start(1).await;
    let (content, _) = Pack::new(&[10_000]).store(&a).await;
    let text = a.transfer().ticket(content);
    assert!(text.starts_with("blob"), "{text}");
    let ticket: BlobTicket = text.parse().unwrap();
    assert_eq!(ticket.hash(), to_iroh(&content));
    assert_eq!(ticket.format(), BlobFormat::HashSeq);
    assert_eq!(ticket.hash_and_format(), HashAndFormat::hash_seq(to_iroh(&content)));
    assert_eq!(NodeId(*ticket.addr().id.as_bytes()), a.id());
    let addrs: Vec<SocketAddr> = ticket.addr().ip_addrs().copied().collect();
    assert_eq!(addrs, a.transfer().local_addrs());
    assert_eq!(ticket.addr().relay_urls().count(), 0);
    a.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_is_keyed_by_identity_and_stays_on_loopback() {
    let a = TestNode::start(1).await;
    let transfer = a.transfer();
    let endpoint = transfer.router.endpoint();
    assert_eq!(transfer.node_id(), a.id(), "the iroh endpoint id is the node id");
    let addrs = transfer.local_addrs();
    assert!(!addrs.is_empty());
    assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    let bound = endpoint.bound_sockets();
    assert!(!bound.is_empty() && bound.iter().all(|a| a.ip().is_loopback()), "{bound:?}");
    assert_eq!(endpoint.addr().relay_urls().count(), 0, "no relay");
    assert!(endpoint.addr().ip_addrs().all(|a| a.ip().is_loopback()));
    // No address lookup but our own table.
    assert_eq!(endpoint.address_lookup().map(|l| l.len()).unwrap_or(0), 1);
    // An unknown peer is not looked up anywhere: connecting fails at once.
    let stranger = TestNode::start(9).await;
    let err =
        timed("download", transfer.download(BlobHash([7; 32]), &[stranger.id()], None)).await.unwrap_err();
    assert!(err.to_string().contains("unreachable"), "{err}");
    assert!(
        Transfer::start(&a.identity, &a.blobs, loopback(), Some("not a url".into()), Arc::new(AllowAll))
            .await
            .is_err()
    );
    stranger.close().await;
    a.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_are_refused() {
    let a = TestNode::start(1).await;
    let b = TestNode::start(2).await;
    let (content, entries) = Pack::new(&[4 * 1024 * 1024]).store(&b).await;
    b.meet(&a);
    let endpoint = b.transfer().router.endpoint();
    let conn = endpoint.connect(to_endpoint(a.id()), iroh_blobs::ALPN).await.unwrap();
    let hash = to_iroh(&entries[0].1);
    // More than fits in flight: A stops reading at once, so the writer sees it.
    let push = PushRequest::new(hash, ChunkRangesSeq::from_ranges([ChunkRanges::all()]));
    let result = timed("push", b.blobs.store().remote().execute_push(conn.clone(), push).complete()).await;
    assert!(result.is_err(), "A read the whole push");
    let push =
        PushRequest::new(to_iroh(&content), ChunkRangesSeq::from_ranges_infinite([ChunkRanges::all()]));
    let _ = timed("push", b.blobs.store().remote().execute_push(conn, push).complete()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for hash in [hash, to_iroh(&content)] {
        assert!(!a.blobs.store().blobs().has(hash).await.unwrap(), "A's store took a pushed blob");
    }
    a.close().await;
    b.close().await;
}

fn to_endpoint(node: NodeId) -> iroh::EndpointId {
    iroh::EndpointId::from_bytes(node.as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_decides_per_peer_and_blob() {
    let a = TestNode::start(1).await;
    let b = TestNode::start(2).await;
    let pack = Pack::new(&[30_000, 40_000]);
    let (content, entries) = pack.store(&a).await;
    b.meet(&a);

    // Refuse one file of the pack to B: the collection is readable, that file not,
    // whether asked for inside the collection or directly by its hash.
    let secret = entries[1].1;
    let buyer = b.id();
    a.transfer().set_gate(move |peer: NodeId, hash: &BlobHash| !(peer == buyer && *hash == secret));
    let err = timed("download", b.transfer().download(content, &[a.id()], None)).await.unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    let err = timed("download", b.transfer().download(secret, &[a.id()], None)).await.unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    let (_, complete) = stored_bytes(&b.blobs, content).await;
    assert!(!complete);
    assert!(!b.blobs.is_complete(&secret).await.unwrap());

    a.transfer().set_gate(AllowAll);
    let done = timed("download", b.transfer().download(content, &[a.id()], None)).await.unwrap();
    assert!(done.fetched > 0 && done.had > 0, "resumed after the refusal: {done:?}");
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_providers_are_retried_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Blobs::open(&dir.path().join("blobs")).await.unwrap();
    let identity = Identity::from_secret_bytes([1; 32]);
    let limits = Limits { connections: 8, connections_per_peer: 1, requests_per_peer: 1 };
    let transfer =
        Transfer::start_with(&identity, &blobs, loopback(), None, Arc::new(AllowAll), limits).await.unwrap();
    let a = TestNode { dir, identity, blobs, transfer: Some(transfer) };
    let b = TestNode::start(2).await;
    let pack = Pack::new(&[100_000, 100_000, 100_000, 100_000]);
    let (content, _) = pack.store(&a).await;
    b.meet(&a);
    // B asks for up to four files at once; A serves one request at a time.
    let done = timed("download", b.transfer().download(content, &[a.id()], None)).await.unwrap();
    assert!(done.dropped.is_empty(), "{done:?}");
    assert_eq!(stored_bytes(&b.blobs, content).await, (done.total, true));
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_at_its_connection_cap_replaces_its_oldest_connection() {
    // What a buyer killed mid-download leaves at the seller: connections that count
    // against its cap until they time out. Its restarted self must still be served.
    let a = TestNode::start(1).await;
    let b = TestNode::start(2).await;
    let (content, _) = Pack::new(&[50_000, 60_000]).store(&a).await;
    b.meet(&a);
    let endpoint = b.transfer().router.endpoint();
    let mut held = Vec::new();
    for _ in 0..Limits::default().connections_per_peer {
        let connection =
            timed("connect", endpoint.connect(to_endpoint(a.id()), iroh_blobs::ALPN)).await.unwrap();
        // A answers a request only on a connection it has admitted, so each is
        // admitted before the next opens, oldest first.
        timed("a request", iroh_blobs::get::request::get_unverified_size(&connection, &to_iroh(&content)))
            .await
            .unwrap();
        held.push(connection);
    }
    let done = timed("download", b.transfer().download(content, &[a.id()], None)).await.unwrap();
    assert!(done.dropped.is_empty(), "{done:?}");
    let reason = timed("the oldest connection closed", held[0].closed()).await;
    assert!(reason.to_string().contains("replaced"), "{reason}");
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_links_the_stored_files_and_survives_their_removal() {
    let a = TestNode::start(1).await;
    let b = TestNode::start(2).await;
    // Received into memory, streamed into the store, and small enough for the
    // store's database.
    let pack = Pack::new(&[300_000, 3 * 1024 * 1024, 5_000]);
    let (content, entries) = pack.store(&a).await;
    b.meet(&a);
    timed("download", b.transfer().download(content, &[a.id()], None)).await.unwrap();
    let manifest = pack.manifest(content, &entries);
    let library = b.dir.path().join("library");
    let exported = b.transfer().export(&manifest, &library).await.unwrap();
    pack.assert_exported(&exported.path);
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        for (i, links) in [(0, 2), (1, 2), (2, 1)] {
            let file = std::fs::metadata(exported.path.join(&pack.files[i].0)).unwrap();
            assert_eq!(file.nlink(), links, "{}", pack.files[i].0);
            if links == 2 {
                let stored = std::fs::metadata(b.blobs.owned_data_path(&to_iroh(&entries[i].1))).unwrap();
                assert_eq!(file.ino(), stored.ino(), "a link to the store's own file");
                assert_eq!(file.mode() & 0o777, super::export::READ_ONLY, "{}", pack.files[i].0);
            }
        }
    }
    // Exporting over existing files replaces them.
    let again = b.transfer().export(&manifest, &library).await.unwrap();
    pack.assert_exported(&again.path);
    // The library goes away; the store keeps the blobs and exports them again.
    std::fs::remove_dir_all(&library).unwrap();
    assert!(stored_bytes(&b.blobs, content).await.1);
    let again = b.transfer().export(&manifest, &library).await.unwrap();
    pack.assert_exported(&again.path);
    let leftovers: Vec<PathBuf> =
        walk(&library).into_iter().filter(|p| p.to_string_lossy().contains(".smpl-part")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    a.close().await;
    b.close().await;
}

/// Waits until `node`'s endpoint is homed at a relay, or `within` passes.
async fn home_relay(node: &TestNode, within: Duration) -> Option<(String, CertHash)> {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if let Some(home) = node.transfer().home_relay() {
            return Some(home);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// A node's iroh relay carries a download between two nodes that know no
/// direct address of each other: the provider is homed at the relay, whose
/// certificate it pinned by hash, and the fetcher knows only that relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_relay_carries_a_download_between_nodes_without_addresses() {
    let relay = TestNode::start(9).await;
    timed("relay start", relay.transfer().serve_relay(64 * 1024 * 1024)).await.unwrap();
    let (port, cert) = relay.transfer().own_relay().expect("the relay runs");
    let url = relay_url(SocketAddr::from(([127, 0, 0, 1], port)));

    let a = TestNode::start(1).await;
    let b = TestNode::start(2).await;
    a.transfer().use_relay(&url, cert).await.unwrap();
    let home = home_relay(&a, Duration::from_secs(30)).await.expect("A is homed at the relay");
    assert_eq!(home, (url.clone(), cert));

    let pack = Pack::new(&[400_000, 20_000]);
    let (content, _) = pack.store(&a).await;
    // B knows A only by its relay.
    b.transfer().pin_relay(&url, cert);
    b.transfer().add_peer(a.id(), Vec::new(), Some(&url));
    let done = timed("download", b.transfer().download(content, &[a.id()], None)).await.unwrap();
    assert!(done.fetched >= pack.bytes(), "{done:?}");
    let forwarded = relay.transfer().relay_bytes().forwarded;
    assert!(forwarded > 0, "the relay forwarded nothing");
    let a_bytes = a.transfer().relay_bytes();
    assert!(a_bytes.sent > 0 && a_bytes.received > 0, "A counted no relay bytes: {a_bytes:?}");
    a.close().await;
    b.close().await;
    relay.close().await;
}

/// A relay whose certificate is not the one a peer vouched for is not used: the
/// endpoint never gets a home relay from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_with_another_certificate_is_refused() {
    let relay = TestNode::start(9).await;
    timed("relay start", relay.transfer().serve_relay(1024 * 1024)).await.unwrap();
    let (port, cert) = relay.transfer().own_relay().unwrap();
    let url = relay_url(SocketAddr::from(([127, 0, 0, 1], port)));

    let a = TestNode::start(1).await;
    let mut other = cert;
    other[0] ^= 1;
    a.transfer().use_relay(&url, other).await.unwrap();
    assert_eq!(home_relay(&a, Duration::from_secs(8)).await, None, "a relay with an unpinned certificate");
    assert_eq!(relay.transfer().relay_bytes().forwarded, 0);
    a.close().await;
    relay.close().await;
}
