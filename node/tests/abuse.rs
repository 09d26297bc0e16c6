//! A node under attack by peers that speak its protocols.
//!
//! The "evil" peers are real libp2p swarms built with the node's own `build_swarm` and
//! driven by hand on 127.0.0.1 (mDNS off). They send at least 10,000 randomized bad
//! listings each way — over gossip on `smpl/listings/1`, and in `Fetch` answers over
//! `/smpl/sync/1` after claiming thousands of newer listings — plus garbage
//! `Reconcile` requests. The victim must drop every one, keep its store and index as
//! they were, answer searches and its API meanwhile, and ban the peers.
//!
//! The bad listings ([`Bad`]): random bytes; headers with random contents; valid
//! envelopes with one byte changed in the body, the signature or the header;
//! truncations; declared body lengths over the kind's limit or not matching the body;
//! bodies over the kind's limit; other signed kinds (license tokens, purchase
//! requests); manifests and retractions of the victim's pack signed by a key that is
//! not its author, or by their own author but claiming the victim's pack id; validly
//! signed bodies that do not decode or break the manifest rules; and replays: older
//! versions of the victim's pack, genuinely signed by its author, which are verified
//! but stale (ignored, not forwarded).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, PublishError};
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::{PeerId, Swarm};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_bytes::ByteBuf;
use smpl_node::index::SearchQuery;
use smpl_node::net::behaviour::{Behaviour, BehaviourEvent, LISTINGS_TOPIC, build_swarm};
use smpl_node::net::wire::{MAX_FETCH_IDS, SyncRequest, SyncResponse};
use smpl_node::net::{Network, SyncStats};
use smpl_node::{Home, Multiaddr, Node, NodeOptions};
use smpl_protocol::sync::{Bound, Item, MAX_LIST_ITEMS, MAX_MESSAGE_BYTES, Payload, RangePart, SyncMessage};
use smpl_protocol::{
    AudioFormat, BlobHash, Envelope, Identity, Kind, LicenseId, LicenseTerms, LicenseToken, Manifest, NodeId,
    PackId, PurchaseRequest, Retraction, SampleEntry, SampleKind, Signed, limits,
};
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// Bad listings each test gets the victim to verify and drop.
const TARGET: u64 = 10_000;
/// Longest any single wait may take.
const STEP: Duration = Duration::from_secs(20);
/// Longest a flood may take before the test gives up.
const FLOOD_LIMIT: Duration = Duration::from_secs(45);
/// A search or an API call to the victim must answer within this, flood or not.
const RESPONSIVE: Duration = Duration::from_millis(500);
/// Evil gossip peers flooding at the same time.
const GOSSIP_ATTACKERS: usize = 6;
/// The seq at which the victim holds its pack; replays use lower ones.
const HELD_SEQ: u64 = 1_000;
const SLUG: &str = "dusty-808s";
const TITLE: &str = "Dusty 808s";

// ---- the victim ----

struct Victim {
    node: Arc<Node>,
    addr: Multiaddr,
    peer: PeerId,
    /// The author of the pack the victim holds (a test identity, not the victim).
    author: Identity,
    pack: PackId,
}

/// What must not change: stored packs and seqs, indexed packs and seqs, the sync
/// items, and the bytes of the held listing.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    stored: Vec<(PackId, u64)>,
    indexed: Vec<(PackId, u64)>,
    items: Vec<Item>,
    envelope: Vec<Vec<u8>>,
}

impl Victim {
    async fn start(root: &Path) -> Victim {
        let home = Home::new(root.join("victim"));
        home.init().unwrap();
        let options = NodeOptions {
            home,
            api: "127.0.0.1:0".parse().unwrap(),
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            bootstrap: vec![],
            mdns: false,
            relay: None,
            gc_interval: None,
            trade: Default::default(),
        };
        let node = timeout(STEP, Node::start(&options)).await.expect("victim start timed out").unwrap();
        // The victim holds one pack by another author, at seq HELD_SEQ, ingested as a
        // listing from the network would be, and indexed.
        let author = Identity::from_secret_bytes([0xa7; 32]);
        let held = manifest(&author.node_id(), SLUG, HELD_SEQ, TITLE);
        let envelope = held.sign(&author).unwrap();
        assert_eq!(node.store().accept_manifest(&held, &envelope, true).unwrap(), smpl_node::Accepted::New);
        timeout(STEP, node.flush_index()).await.expect("indexing timed out");
        let network = node.network().expect("the victim runs a network");
        let peer = network.peer_id();
        let mut addr = None;
        for _ in 0..250 {
            if let Some(a) = node.listen_addrs().await.first() {
                addr = Some(a.parse().unwrap());
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let addr = addr.expect("the victim has no listen address");
        Victim { node: Arc::new(node), addr, peer, author, pack: held.pack_id }
    }

    fn network(&self) -> &Network {
        self.node.network().expect("the victim runs a network")
    }

    fn stats(&self) -> &SyncStats {
        self.network().stats()
    }

    async fn snapshot(&self) -> Snapshot {
        timeout(STEP, self.node.flush_index()).await.expect("indexing timed out");
        let store = self.node.store();
        Snapshot {
            stored: store.pack_seqs().unwrap(),
            indexed: self.node.index().packs().unwrap(),
            items: store.sync_items().unwrap(),
            envelope: store.envelopes(&[self.pack]).unwrap(),
        }
    }

    /// Checks the index agrees with the store and nothing waits in the index queue.
    async fn assert_consistent(&self) {
        let report = timeout(STEP, self.node.check()).await.expect("check timed out").unwrap();
        assert!(report.index_mismatch.is_empty() && report.queued == 0, "{report:?}");
        assert_eq!((report.packs, report.indexed), (1, 1), "{report:?}");
    }

    async fn shutdown(self) {
        let node = Arc::try_unwrap(self.node).ok().expect("the probe still holds the victim");
        timeout(STEP, node.shutdown()).await.expect("victim shutdown timed out");
    }
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

// ---- listings, good and bad ----

fn sample(name: &str) -> SampleEntry {
    SampleEntry {
        name: name.into(),
        hash: BlobHash([0x11; 32]),
        size: 40_000,
        format: AudioFormat::Wav,
        frames: 22_050,
        sample_rate: 44_100,
        channels: 1,
        bit_depth: Some(16),
        peak_dbfs: -1.0,
        loudness_lufs: Some(-12.0),
        kind: SampleKind::OneShot,
        tempo: None,
        key: None,
        tags: vec!["808".into()],
        waveform: vec![0, 64, 255, 12],
        preview: None,
        descriptor: None,
    }
}

fn manifest(author: &NodeId, slug: &str, seq: u64, title: &str) -> Manifest {
    Manifest {
        pack_id: PackId::derive(author, slug),
        author: *author,
        author_name: "Seven".into(),
        slug: slug.into(),
        seq,
        title: title.into(),
        description: "Kicks on tape.".into(),
        genre: "hip-hop".into(),
        tags: vec!["808".into()],
        price: None,
        license: LicenseTerms::Named("royalty-free".into()),
        created_at: 1_700_000_000 + seq,
        content: BlobHash([0xc0; 32]),
        cover: None,
        samples: vec![sample("kick.wav")],
    }
}

/// Seals `value` as its kind without its checks, as a hostile peer could.
fn seal_unchecked<T: Signed>(identity: &Identity, value: &T) -> Vec<u8> {
    Envelope::seal(identity, T::KIND, &serde_json::to_vec(value).unwrap()).unwrap().into_bytes()
}

/// An envelope header and body as raw bytes, with any declared length and signature.
fn raw_envelope(kind: u8, key: &[u8; 32], signature: &[u8; 64], declared: u32, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(limits::ENVELOPE_HEADER_BYTES + body.len());
    bytes.extend_from_slice(b"SMPL");
    bytes.push(1);
    bytes.push(kind);
    bytes.extend_from_slice(key);
    bytes.extend_from_slice(signature);
    bytes.extend_from_slice(&declared.to_be_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// The kinds of bad listing; every one but the replays is refused as invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Bad {
    RandomBytes,
    RandomHeader,
    FlippedBody,
    FlippedSignature,
    FlippedHeader,
    Truncated,
    LengthMismatch,
    DeclaredTooLong,
    BodyTooLarge,
    WrongKind,
    NotTheAuthor,
    HijackedPackId,
    SignedMalformed,
    Replay,
    StaleRetraction,
    /// Over the largest envelope, or the largest manifest with a forged signature.
    Huge,
}

impl Bad {
    fn is_replay(self) -> bool {
        matches!(self, Bad::Replay | Bad::StaleRetraction)
    }
}

const MIX: &[Bad] = &[
    Bad::RandomBytes,
    Bad::RandomHeader,
    Bad::FlippedBody,
    Bad::FlippedSignature,
    Bad::FlippedHeader,
    Bad::Truncated,
    Bad::Truncated,
    Bad::LengthMismatch,
    Bad::DeclaredTooLong,
    Bad::BodyTooLarge,
    Bad::WrongKind,
    Bad::NotTheAuthor,
    Bad::HijackedPackId,
    Bad::SignedMalformed,
    Bad::Replay,
    Bad::StaleRetraction,
];

/// Makes bad listings, each different from every other one it made: gossipsub
/// drops a payload it has seen before (the message id is a hash of the data), so a
/// repeat would never reach the victim's verification.
struct Forger {
    rng: StdRng,
    /// The author of the victim's pack, whose old versions it replays.
    author: Identity,
    /// A key of the forger's own.
    stranger: Identity,
    pack: PackId,
    n: u64,
    seen: HashSet<[u8; 32]>,
    made: BTreeMap<Bad, u64>,
}

impl Forger {
    fn new(seed: u64, author: &Identity, pack: PackId) -> Forger {
        let mut rng = StdRng::seed_from_u64(seed);
        let stranger = Identity::from_secret_bytes(rng.random());
        Forger {
            rng,
            author: author.clone(),
            stranger,
            pack,
            n: 0,
            seen: HashSet::new(),
            made: BTreeMap::new(),
        }
    }

    fn next(&mut self) -> Vec<u8> {
        let bad = MIX[self.rng.random_range(0..MIX.len())];
        self.make(bad)
    }

    fn make(&mut self, bad: Bad) -> Vec<u8> {
        loop {
            self.n += 1;
            let bytes = self.forge(bad);
            if self.seen.insert(*blake3::hash(&bytes).as_bytes()) {
                *self.made.entry(bad).or_default() += 1;
                return bytes;
            }
        }
    }

    fn random_bytes(&mut self, len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        self.rng.fill(&mut bytes[..]);
        bytes
    }

    /// A valid listing that the victim would store if it arrived intact: half are
    /// newer versions of the victim's own pack by its author, half packs of a stranger.
    fn valid(&mut self) -> Vec<u8> {
        let n = self.n;
        if self.rng.random_bool(0.5) {
            let newer = manifest(&self.author.node_id(), SLUG, HELD_SEQ + n, &format!("{TITLE} v{n}"));
            newer.sign(&self.author).unwrap().into_bytes()
        } else {
            let theirs =
                manifest(&self.stranger.node_id(), &format!("bait-{n}"), 1 + n % 7, &format!("Bait {n}"));
            theirs.sign(&self.stranger).unwrap().into_bytes()
        }
    }

    fn forge(&mut self, bad: Bad) -> Vec<u8> {
        let n = self.n;
        let header = limits::ENVELOPE_HEADER_BYTES;
        match bad {
            Bad::RandomBytes => {
                let len = self.rng.random_range(1..3000);
                self.random_bytes(len)
            }
            Bad::RandomHeader => {
                let len = self.rng.random_range(0..3000);
                let mut bytes = b"SMPL\x01".to_vec();
                bytes.push(self.rng.random_range(0..=5));
                bytes.extend(self.random_bytes(len));
                bytes
            }
            Bad::FlippedBody | Bad::FlippedSignature | Bad::FlippedHeader => {
                let mut bytes = self.valid();
                let at = match bad {
                    Bad::FlippedBody => self.rng.random_range(header..bytes.len()),
                    Bad::FlippedSignature => self.rng.random_range(38..102),
                    _ => self.rng.random_range(0..header),
                };
                bytes[at] ^= self.rng.random_range(1..=255u8);
                bytes
            }
            Bad::Truncated => {
                let mut bytes = self.valid();
                let len = self.rng.random_range(0..bytes.len());
                bytes.truncate(len);
                bytes
            }
            Bad::LengthMismatch => {
                let mut bytes = self.valid();
                let body = (bytes.len() - header) as i64;
                let declared = loop {
                    let d = body + self.rng.random_range(-body..=200);
                    if d != body {
                        break d as u32;
                    }
                };
                bytes[102..106].copy_from_slice(&declared.to_be_bytes());
                bytes
            }
            Bad::DeclaredTooLong => {
                let mut bytes = self.valid();
                let declared = self.rng.random_range(limits::MAX_MANIFEST_BYTES as u32 + 1..=u32::MAX);
                bytes[102..106].copy_from_slice(&declared.to_be_bytes());
                bytes
            }
            Bad::BodyTooLarge => {
                let (kind, max) = match self.rng.random_range(0..3) {
                    0 => (Kind::Retraction, limits::MAX_SMALL_BODY_BYTES),
                    1 => (Kind::PurchaseRequest, limits::MAX_SMALL_BODY_BYTES),
                    _ => (Kind::LicenseToken, limits::MAX_LICENSE_BYTES),
                };
                let len = max + self.rng.random_range(1..2000);
                let body = self.random_bytes(len);
                let signature: [u8; 64] = std::array::from_fn(|_| self.rng.random());
                raw_envelope(kind as u8, &self.author.node_id().0, &signature, len as u32, &body)
            }
            Bad::WrongKind => {
                if self.rng.random_bool(0.5) {
                    // A real license token for the victim's pack, signed by its author.
                    let token = LicenseToken {
                        license_id: LicenseId(self.rng.random()),
                        pack_id: self.pack,
                        slug: SLUG.into(),
                        seq: HELD_SEQ,
                        content: BlobHash([0xc0; 32]),
                        seller: self.author.node_id(),
                        buyer: self.stranger.node_id(),
                        price: None,
                        terms: LicenseTerms::Named("royalty-free".into()),
                        issued_at: 1_700_000_000 + n,
                    };
                    token.sign(&self.author).unwrap().into_bytes()
                } else {
                    let request = PurchaseRequest {
                        pack_id: self.pack,
                        seq: HELD_SEQ,
                        buyer: self.stranger.node_id(),
                        seller: self.author.node_id(),
                        price: None,
                        payment_ref: None,
                        nonce: self.rng.random(),
                        created_at: 1_700_000_000 + n,
                    };
                    request.sign(&self.stranger).unwrap().into_bytes()
                }
            }
            Bad::NotTheAuthor => {
                // A newer version, or a retraction, of the victim's pack, naming its
                // author but signed by the stranger.
                let author = self.author.node_id();
                if self.rng.random_bool(0.5) {
                    let forged = manifest(&author, SLUG, HELD_SEQ + n, &format!("Hijacked {n}"));
                    seal_unchecked(&self.stranger, &forged)
                } else {
                    let forged = Retraction {
                        pack_id: self.pack,
                        author,
                        slug: SLUG.into(),
                        seq: HELD_SEQ + n,
                        retracted_at: 1_700_000_000 + n,
                    };
                    seal_unchecked(&self.stranger, &forged)
                }
            }
            Bad::HijackedPackId => {
                // The stranger's own, validly signed manifest claiming the victim's pack id.
                let mut forged = manifest(&self.stranger.node_id(), SLUG, HELD_SEQ + n, &format!("Mine {n}"));
                forged.pack_id = self.pack;
                seal_unchecked(&self.stranger, &forged)
            }
            Bad::SignedMalformed => {
                // Validly signed by the author, but the body is no valid manifest.
                let mut body = manifest(&self.author.node_id(), SLUG, HELD_SEQ + n, TITLE);
                let bytes = match self.rng.random_range(0..5) {
                    0 => {
                        let len = self.rng.random_range(0..2000);
                        self.random_bytes(len)
                    }
                    1 => {
                        let mut json = serde_json::to_value(&body).unwrap();
                        json["smuggled"] = serde_json::json!(n);
                        serde_json::to_vec(&json).unwrap()
                    }
                    2 => {
                        body.title = String::new();
                        serde_json::to_vec(&body).unwrap()
                    }
                    3 => {
                        body.samples.clear();
                        serde_json::to_vec(&body).unwrap()
                    }
                    _ => {
                        body.samples[0].sample_rate = 0;
                        serde_json::to_vec(&body).unwrap()
                    }
                };
                Envelope::seal(&self.author, Kind::Manifest, &bytes).unwrap().into_bytes()
            }
            Bad::Replay => {
                let seq = self.rng.random_range(1..HELD_SEQ);
                let old = manifest(&self.author.node_id(), SLUG, seq, &format!("{TITLE} ({n})"));
                old.sign(&self.author).unwrap().into_bytes()
            }
            Bad::StaleRetraction => {
                let retraction = Retraction {
                    pack_id: self.pack,
                    author: self.author.node_id(),
                    slug: SLUG.into(),
                    seq: self.rng.random_range(1..HELD_SEQ),
                    retracted_at: 1_700_000_000 + n,
                };
                retraction.sign(&self.author).unwrap().into_bytes()
            }
            Bad::Huge => {
                // Alternately: one byte over the largest envelope, and the largest
                // manifest body with a forged signature (refused only after hashing it).
                let over = n.is_multiple_of(2);
                let len = limits::MAX_MANIFEST_BYTES + usize::from(over);
                let body = vec![b'{'; len];
                let signature: [u8; 64] = std::array::from_fn(|_| self.rng.random());
                raw_envelope(Kind::Manifest as u8, &self.author.node_id().0, &signature, len as u32, &body)
            }
        }
    }

    fn replays(&self) -> u64 {
        self.made.iter().filter(|(bad, _)| bad.is_replay()).map(|(_, n)| n).sum()
    }

    fn total(&self) -> u64 {
        self.made.values().sum()
    }
}

// ---- peers driven by hand ----

type Evil = Swarm<Behaviour>;

fn evil_swarm(seed: u64) -> Evil {
    let mut rng = StdRng::seed_from_u64(seed);
    build_swarm(&Identity::from_secret_bytes(rng.random()), false).unwrap()
}

/// Answers the victim's sync requests without offering anything.
fn answer_quietly(swarm: &mut Evil, event: SwarmEvent<BehaviourEvent>) {
    if let SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
        message: request_response::Message::Request { request, channel, .. },
        ..
    })) = event
    {
        let response = match request {
            SyncRequest::Hello { .. } => SyncResponse::Hello { iroh: vec![] },
            SyncRequest::Reconcile(_) => SyncResponse::Reconcile(None),
            SyncRequest::Fetch(_) => SyncResponse::Envelopes(vec![]),
        };
        let _ = swarm.behaviour_mut().sync.send_response(channel, response);
    }
}

/// Dials the victim and waits until it is subscribed to the listings topic.
async fn join_gossip(swarm: &mut Evil, addr: &Multiaddr, victim: PeerId) {
    swarm.dial(addr.clone()).unwrap();
    let topic = IdentTopic::new(LISTINGS_TOPIC).hash();
    timeout(STEP, async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed {
                    peer_id,
                    topic: t,
                })) if peer_id == victim && t == topic => return,
                event => answer_quietly(swarm, event),
            }
        }
    })
    .await
    .expect("the victim never subscribed to the listings topic");
}

/// Waits until the victim hangs up on `swarm` (or `limit` passes).
async fn until_dropped(swarm: &mut Evil, victim: PeerId, limit: Duration) -> bool {
    let wait = async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } if peer_id == victim => {
                    return;
                }
                event => answer_quietly(swarm, event),
            }
        }
    };
    timeout(limit, wait).await.is_ok()
}

/// Searches the victim and asks its network actor for its peers, over and over, and
/// records the slowest answer; every answer must come within [`RESPONSIVE`].
fn probe(victim: &Victim, stop: CancellationToken) -> tokio::task::JoinHandle<(u64, Duration)> {
    let node = victim.node.clone();
    let pack = victim.pack;
    tokio::spawn(async move {
        let query = SearchQuery { text: Some("dusty".into()), packs: true, ..Default::default() };
        let (mut probes, mut slowest) = (0u64, Duration::ZERO);
        while !stop.is_cancelled() {
            let start = Instant::now();
            let hits = timeout(RESPONSIVE, node.search(query.clone()))
                .await
                .expect("a search took too long during the flood")
                .unwrap()
                .hits;
            assert!(hits.iter().any(|h| h.pack_id == pack), "the held pack went missing from search");
            timeout(RESPONSIVE, node.peers())
                .await
                .expect("the network actor took too long to answer during the flood")
                .unwrap();
            slowest = slowest.max(start.elapsed());
            probes += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (probes, slowest)
    })
}

// ---- gossip ----

/// What one evil gossip peer did.
#[derive(Debug, Default)]
struct GossipAttack {
    /// Messages gossipsub took for sending (queued to the victim's connection).
    sent: u64,
    /// When the victim hung up: messages sent by then, and time since the first.
    banned_after: Option<(u64, Duration)>,
}

/// Joins the victim as a fresh identity and floods it with bad listings until it
/// hangs up or `quota` are sent; `first` go out before the random ones.
async fn gossip_attacker(
    seed: u64,
    (addr, victim): (Multiaddr, PeerId),
    forger: Arc<Mutex<Forger>>,
    quota: u64,
    first: Vec<Vec<u8>>,
) -> GossipAttack {
    let mut swarm = evil_swarm(seed);
    join_gossip(&mut swarm, &addr, victim).await;
    let topic = IdentTopic::new(LISTINGS_TOPIC);
    let mut attack = GossipAttack::default();
    let mut first = first.into_iter();
    let start = Instant::now();
    loop {
        let sending = attack.sent < quota;
        if sending {
            for _ in 0..(quota - attack.sent).min(32) {
                let bytes = first.next().unwrap_or_else(|| forger.lock().unwrap().next());
                match swarm.behaviour_mut().gossipsub.publish(topic.clone(), bytes) {
                    Ok(_) => attack.sent += 1,
                    // The connection's queue is full, or the victim is gone: let the swarm run.
                    Err(PublishError::AllQueuesFull(_) | PublishError::NoPeersSubscribedToTopic) => break,
                    Err(e) => panic!("gossipsub refused to publish: {e}"),
                }
            }
        }
        // Let the swarm work; once done sending, wait for the victim to hang up.
        let wait = if sending { Duration::from_millis(1) } else { STEP.saturating_sub(start.elapsed()) };
        match timeout(wait, swarm.select_next_some()).await {
            Ok(SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. }) if peer_id == victim => {
                attack.banned_after = Some((attack.sent, start.elapsed()));
                return attack;
            }
            Ok(event) => answer_quietly(&mut swarm, event),
            Err(_) if !sending => return attack,
            Err(_) => {}
        }
    }
}

/// A peer that only listens: every message it receives on the listings topic was
/// forwarded by the victim (it is connected to nobody else).
async fn observer(
    mut swarm: Evil,
    victim: PeerId,
    in_mesh: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    stop: CancellationToken,
) {
    let topic = IdentTopic::new(LISTINGS_TOPIC).hash();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {
                let meshed = swarm.behaviour().gossipsub.mesh_peers(&topic).any(|p| *p == victim);
                in_mesh.store(meshed, Ordering::Relaxed);
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                    propagation_source,
                    message_id,
                    ..
                })) => {
                    received.fetch_add(1, Ordering::Relaxed);
                    let _ = swarm.behaviour_mut().gossipsub.report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        MessageAcceptance::Ignore,
                    );
                }
                event => answer_quietly(&mut swarm, event),
            },
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_gossip_is_dropped_and_its_senders_banned() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::start(dir.path()).await;
    victim.assert_consistent().await;
    let before = victim.snapshot().await;
    let forger = Arc::new(Mutex::new(Forger::new(0x5eed_0001, &victim.author, victim.pack)));

    // An observer peer sees whatever the victim forwards: once it has grafted the
    // victim into its mesh, the victim has it in its own.
    let mut watch = evil_swarm(1);
    join_gossip(&mut watch, &victim.addr, victim.peer).await;
    let (in_mesh, forwarded, stop_watch) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), CancellationToken::new());
    let watcher =
        tokio::spawn(observer(watch, victim.peer, in_mesh.clone(), forwarded.clone(), stop_watch.clone()));
    timeout(STEP, async {
        while !in_mesh.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the observer never joined the victim's mesh");

    let stop_probe = CancellationToken::new();
    let prober = probe(&victim, stop_probe.clone());
    let stats = victim.stats();
    let verified = || load(&stats.gossip_invalid) + load(&stats.gossip_stale) + load(&stats.gossip_new);
    let flood = Instant::now();

    // One evil peer tries to deliver all of them. Gossipsub's own max transmit size
    // (the largest envelope plus 64 KiB, in `build_swarm`) caps one message: a larger
    // one is refused by the sender's gossipsub (`MessageTooLarge`) and would be by the
    // victim's decoder, so the largest bad listings sent are just over the envelope
    // limit, and the largest manifest with a forged signature.
    let huge = {
        let mut forger = forger.lock().unwrap();
        vec![forger.make(Bad::Huge), forger.make(Bad::Huge)]
    };
    let target = (victim.addr.clone(), victim.peer);
    let first = gossip_attacker(2, target.clone(), forger.clone(), TARGET, huge).await;
    let first_verified = verified();
    let (first_sent_before_ban, first_ban_time) =
        first.banned_after.expect("the first evil peer was never disconnected");
    println!(
        "gossip: evil peer 1 sent {} bad listings; the victim verified and refused {first_verified} of them \
         and disconnected it after {first_sent_before_ban} sent, {first_ban_time:?} into its flood",
        first.sent
    );

    // It was banned before delivering them all: the rest come from fresh identities,
    // a few at a time, until the victim has verified and dropped TARGET in all. Each
    // sends a few dozen: the victim verifies ten to twenty before it bans the sender
    // (three rejections graylist it; the rest were already being verified), and
    // drops the rest unverified.
    let mut attackers = JoinSet::new();
    let (mut identities, mut sent, mut unbanned) = (1u64, first.sent, 0u64);
    let mut bans = vec![first_sent_before_ban];
    loop {
        if verified() < TARGET {
            assert!(flood.elapsed() < FLOOD_LIMIT, "only {} of {TARGET} verified in time", verified());
            while attackers.len() < GOSSIP_ATTACKERS {
                identities += 1;
                attackers.spawn(gossip_attacker(
                    1000 + identities,
                    target.clone(),
                    forger.clone(),
                    48,
                    vec![],
                ));
            }
        }
        let Some(attack) = timeout(STEP, attackers.join_next()).await.expect("an evil peer hung") else {
            break;
        };
        let attack = attack.unwrap();
        sent += attack.sent;
        match attack.banned_after {
            Some((n, _)) => bans.push(n),
            None => unbanned += 1,
        }
    }
    let took = flood.elapsed();
    stop_probe.cancel();
    let (probes, slowest) = timeout(STEP, prober).await.expect("the probe hung").unwrap();

    // Every bad listing that reached verification was dropped: none stored, none
    // forwarded, the store and the index as they were.
    let (invalid, stale, new) =
        (load(&stats.gossip_invalid), load(&stats.gossip_stale), load(&stats.gossip_new));
    let (made, replays) = {
        let forger = forger.lock().unwrap();
        println!("gossip: forged {:?}", forger.made);
        (forger.total(), forger.replays())
    };
    println!(
        "gossip: {identities} evil identities sent {sent} bad listings ({made} forged) in {took:?}; the victim \
         verified {} (invalid {invalid}, stale replays {stale}, new {new}) and dropped the other {} \
         unverified (graylisted sender, or still queued when it was cut off); banned {} peers, the \
         evil side saw a median of {} sent before its ban; {probes} probes, slowest {slowest:?}",
        invalid + stale + new,
        sent.saturating_sub(invalid + stale + new),
        load(&stats.banned),
        median(&mut bans),
    );
    assert_eq!(new, 0, "a bad listing was accepted");
    assert!(invalid + stale >= TARGET);
    assert!(stale <= replays, "more listings were stale than replays were sent");
    assert_eq!(unbanned, 0, "an evil peer that sent bad listings was never disconnected");
    assert!(load(&stats.banned) >= identities, "not every evil peer was banned");
    assert!(probes > 0);
    assert_eq!(victim.snapshot().await, before, "the store or index changed");
    victim.assert_consistent().await;
    // Give the victim a heartbeat to forward anything it wrongly accepted.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(forwarded.load(Ordering::Relaxed), 0, "the victim forwarded a bad listing");
    let peers = victim.node.peers().await.unwrap();
    assert_eq!(peers.len(), 1, "evil peers are still connected: {peers:?}");

    // A banned identity cannot come back.
    let mut again = evil_swarm(2); // the first evil peer's identity
    again.dial(victim.addr.clone()).unwrap();
    assert!(until_dropped(&mut again, victim.peer, STEP).await, "a banned peer reconnected");

    // And the victim still takes and forwards a good listing from an honest peer.
    let mut honest = evil_swarm(3);
    join_gossip(&mut honest, &victim.addr, victim.peer).await;
    let good = manifest(&victim.author.node_id(), "fresh-loops", 1, "Fresh Loops");
    let envelope = good.sign(&victim.author).unwrap().into_bytes();
    honest.behaviour_mut().gossipsub.publish(IdentTopic::new(LISTINGS_TOPIC), envelope).unwrap();
    timeout(STEP, async {
        while forwarded.load(Ordering::Relaxed) == 0 {
            tokio::select! {
                event = honest.select_next_some() => answer_quietly(&mut honest, event),
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }
    })
    .await
    .expect("the victim did not forward a good listing after the flood");
    assert_eq!(load(&stats.gossip_new), 1);
    assert!(victim.node.store().manifest(&good.pack_id).unwrap().is_some());

    stop_watch.cancel();
    timeout(STEP, watcher).await.expect("the observer hung").unwrap();
    victim.shutdown().await;
}

fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

// ---- sync ----

/// A reconciliation answer claiming `count` listings the victim lacks, and a newer
/// version of its own pack: `Diff` ranges of at most `MAX_LIST_ITEMS` items each.
fn claim_newer(rng: &mut StdRng, held: PackId, count: usize) -> Vec<u8> {
    let mut items: Vec<Item> = (0..count).map(|_| Item { id: PackId(rng.random()), version: 2 }).collect();
    items.push(Item::manifest(held, HELD_SEQ + 1));
    items.sort();
    items.dedup_by_key(|i| i.id);
    let chunks: Vec<&[Item]> = items.chunks(MAX_LIST_ITEMS - 24).collect();
    let ranges = chunks
        .iter()
        .enumerate()
        .map(|(k, chunk)| RangePart {
            upper: chunks.get(k + 1).map_or(Bound::End, |next| Bound::At(next[0].id)),
            payload: Payload::Diff { items: chunk.to_vec(), missing: vec![] },
        })
        .collect();
    let message = SyncMessage { ranges };
    message.validate().unwrap();
    let bytes = message.encode();
    assert!(bytes.len() <= MAX_MESSAGE_BYTES);
    bytes
}

/// What one evil sync peer did.
#[derive(Debug, Default)]
struct SyncAttack {
    fetches: u64,
    served: u64,
    dropped: bool,
}

/// Answers the victim's sync: `Hello` with no addresses, its first `Reconcile` with a
/// claim of `claim` newer listings, each `Fetch` with bad envelopes, one per id asked.
async fn sync_attacker(
    mut swarm: Evil,
    victim: &Victim,
    forger: Arc<Mutex<Forger>>,
    claim: usize,
    first: Vec<Vec<u8>>,
    seed: u64,
) -> SyncAttack {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut attack = SyncAttack::default();
    let mut first = first.into_iter();
    let mut claimed = false;
    swarm.dial(victim.addr.clone()).unwrap();
    let run = async {
        loop {
            let event = swarm.select_next_some().await;
            match event {
                SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. }
                    if peer_id == victim.peer =>
                {
                    attack.dropped = true;
                    return;
                }
                SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                    message: request_response::Message::Request { request, channel, .. },
                    ..
                })) => {
                    let response = match request {
                        SyncRequest::Hello { .. } => SyncResponse::Hello { iroh: vec![] },
                        SyncRequest::Reconcile(_) if !claimed => {
                            claimed = true;
                            SyncResponse::Reconcile(Some(ByteBuf::from(claim_newer(
                                &mut rng,
                                victim.pack,
                                claim,
                            ))))
                        }
                        SyncRequest::Reconcile(_) => SyncResponse::Reconcile(None),
                        SyncRequest::Fetch(ids) => {
                            attack.fetches += 1;
                            let mut forger = forger.lock().unwrap();
                            let envelopes: Vec<ByteBuf> = ids
                                .iter()
                                .map(|_| ByteBuf::from(first.next().unwrap_or_else(|| forger.next())))
                                .collect();
                            attack.served += envelopes.len() as u64;
                            SyncResponse::Envelopes(envelopes)
                        }
                    };
                    let _ = swarm.behaviour_mut().sync.send_response(channel, response);
                }
                _ => {}
            }
        }
    };
    // A peer that is never dropped gives up after a while.
    let _ = timeout(Duration::from_secs(5), run).await;
    attack
}

/// Garbage for `Reconcile` requests: each one is refused by the decoder.
fn garbage_reconcile(rng: &mut StdRng, n: u64) -> Vec<u8> {
    let valid = |rng: &mut StdRng| {
        let mut items: Vec<Item> =
            (0..rng.random_range(1..40)).map(|_| Item { id: PackId(rng.random()), version: 2 }).collect();
        items.sort();
        items.dedup_by_key(|i| i.id);
        SyncMessage { ranges: vec![RangePart { upper: Bound::End, payload: Payload::ItemList { items } }] }
    };
    let random = |rng: &mut StdRng, len: usize| -> Vec<u8> { (0..len).map(|_| rng.random()).collect() };
    loop {
        let bytes = match n % 12 {
            // Random bytes, with and without the version byte.
            0 => {
                let len = rng.random_range(0..4000);
                random(rng, len)
            }
            1 => {
                let len = rng.random_range(0..4000);
                let mut bytes = vec![1];
                bytes.extend(random(rng, len));
                bytes
            }
            // A valid message cut short, or followed by more bytes.
            2 => {
                let bytes = valid(rng).encode();
                bytes[..rng.random_range(0..bytes.len())].to_vec()
            }
            3 => {
                let mut bytes = valid(rng).encode();
                let len = rng.random_range(1..64);
                bytes.extend(random(rng, len));
                bytes
            }
            // Counts over the limits.
            4 => vec![1, 0x81, 0x20 + rng.random_range(0..0x50)],
            5 => {
                let mut bytes = vec![1, 1, 0xff, 2];
                let over = (MAX_LIST_ITEMS as u16 + rng.random_range(1..5000)).to_le_bytes();
                bytes.extend([over[0] | 0x80, over[1] << 1 | over[0] >> 7]);
                bytes
            }
            // Ids out of order, or outside their range.
            6 => {
                let mut message = valid(rng);
                if let Payload::ItemList { items } = &mut message.ranges[0].payload {
                    items.push(items[0]);
                }
                message.encode()
            }
            7 => {
                let mut message = valid(rng);
                let Payload::ItemList { items } = &message.ranges[0].payload else { unreachable!() };
                message.ranges[0].upper = Bound::At(items[items.len() - 1].id);
                message.encode()
            }
            // Non-canonical forms: a padded varint, a bound ending in zero.
            8 => vec![1, 0x81, 0x00, 0xff, 0],
            9 => vec![1, 1, 2, rng.random_range(1..=255), 0, 0],
            // Skips in the wrong places, an empty diff, an unknown tag.
            10 => match rng.random_range(0..3) {
                0 => vec![1, 1, 0xff, 0],
                1 => vec![1, 1, 0xff, 3, 0, 0],
                _ => vec![1, 1, 0xff, rng.random_range(4..=255)],
            },
            // Over the size limit.
            _ => {
                let mut bytes = valid(rng).encode();
                bytes.resize(MAX_MESSAGE_BYTES + rng.random_range(1..1000), 0);
                bytes
            }
        };
        if SyncMessage::decode(&bytes).is_err() {
            return bytes;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_sync_answers_and_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let victim = Victim::start(dir.path()).await;
    victim.assert_consistent().await;
    let before = victim.snapshot().await;
    let stats = victim.stats();
    let stop_probe = CancellationToken::new();
    let prober = probe(&victim, stop_probe.clone());
    let start = Instant::now();

    // Garbage `Reconcile` requests, 32 in flight at a time: each answered `Refused`.
    let mut rng = StdRng::seed_from_u64(0x5eed_0002);
    let mut asker = evil_swarm(10);
    asker.dial(victim.addr.clone()).unwrap();
    let garbage = 600u64;
    let (mut asked, mut refused) = (0u64, 0u64);
    let mut in_flight: HashSet<OutboundRequestId> = HashSet::new();
    let mut connected = false;
    timeout(STEP, async {
        while refused < garbage {
            while connected && asked < garbage && in_flight.len() < 32 {
                let bytes = garbage_reconcile(&mut rng, asked);
                let request = SyncRequest::Reconcile(ByteBuf::from(bytes));
                in_flight.insert(asker.behaviour_mut().sync.send_request(&victim.peer, request));
                asked += 1;
            }
            match asker.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == victim.peer => {
                    connected = true
                }
                SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, response },
                    ..
                })) if in_flight.remove(&request_id) => match response {
                    SyncResponse::Refused(_) => refused += 1,
                    other => panic!("garbage request {asked} got {other:?}"),
                },
                SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::OutboundFailure {
                    error,
                    ..
                })) => panic!("a garbage request failed instead of being refused: {error}"),
                event => answer_quietly(&mut asker, event),
            }
        }
    })
    .await
    .expect("the victim stopped answering garbage requests");
    println!("sync: {refused} garbage Reconcile requests, all refused, in {:?}", start.elapsed());
    drop(asker);

    // Evil peers claim thousands of newer listings and answer every fetch with bad
    // envelopes; fresh identities come until the victim has verified TARGET of them.
    let forger = Arc::new(Mutex::new(Forger::new(0x5eed_0003, &victim.author, victim.pack)));
    let huge = {
        let mut forger = forger.lock().unwrap();
        vec![forger.make(Bad::Huge), forger.make(Bad::Huge)]
    };
    let mut first = huge;
    let verified = || load(&stats.fetched_invalid) + load(&stats.fetched_stale);
    let flood = Instant::now();
    let (mut identities, mut fetches, mut served, mut dropped) = (0u64, 0u64, 0u64, 0u64);
    while verified() < TARGET {
        assert!(flood.elapsed() < FLOOD_LIMIT, "only {} of {TARGET} verified in time", verified());
        identities += 1;
        // The first claims over ten thousand listings, so the victim asks for them in
        // twenty-one fetches. But the victim bans a peer once it verified an answer
        // with invalid listings, and answers still in flight then go unread: fresh
        // identities claim fewer, which wastes less forging.
        let claim = if identities == 1 { 20 * MAX_FETCH_IDS } else { 3 * MAX_FETCH_IDS };
        let swarm = evil_swarm(2000 + identities);
        let attack =
            sync_attacker(swarm, &victim, forger.clone(), claim, std::mem::take(&mut first), identities)
                .await;
        if identities == 1 {
            println!(
                "sync: evil peer 1 was asked {} fetches and served {} bad envelopes; dropped: {}",
                attack.fetches, attack.served, attack.dropped
            );
        }
        fetches += attack.fetches;
        served += attack.served;
        dropped += u64::from(attack.dropped);
    }
    let took = flood.elapsed();
    // Let the last fetched batches finish verification.
    let settled = timeout(STEP, async {
        while load(&stats.fetched) > verified() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        settled.is_ok(),
        "of {} fetched listings {} were refused, {} stale, and the rest taken as new",
        load(&stats.fetched),
        load(&stats.fetched_invalid),
        load(&stats.fetched_stale)
    );
    stop_probe.cancel();
    let (probes, slowest) = timeout(STEP, prober).await.expect("the probe hung").unwrap();

    let (invalid, stale, fetched) =
        (load(&stats.fetched_invalid), load(&stats.fetched_stale), load(&stats.fetched));
    let (made, replays) = {
        let forger = forger.lock().unwrap();
        println!("sync: forged {:?}", forger.made);
        (forger.total(), forger.replays())
    };
    println!(
        "sync: {identities} evil identities were asked {fetches} fetches and served {served} bad envelopes \
         ({made} forged) in {took:?}; the victim received {fetched} and verified them all (invalid \
         {invalid}, stale replays {stale}); {dropped} evil peers dropped, banned {}; {probes} probes, \
         slowest {slowest:?}",
        load(&stats.banned),
    );
    assert_eq!(fetched, invalid + stale, "a fetched bad listing was accepted");
    assert_eq!(dropped, identities, "an evil sync peer was never disconnected");
    assert!(load(&stats.banned) >= identities, "not every evil sync peer was banned");
    assert!(invalid + stale >= TARGET);
    assert!(stale <= replays, "more listings were stale than replays were sent");
    assert!(probes > 0);
    assert_eq!(victim.snapshot().await, before, "the store or index changed");
    victim.assert_consistent().await;

    // The victim still serves its own listing, unchanged, to an honest peer.
    let mut honest = evil_swarm(4);
    honest.dial(victim.addr.clone()).unwrap();
    let request =
        honest.behaviour_mut().sync.send_request(&victim.peer, SyncRequest::Fetch(vec![victim.pack]));
    let answer = timeout(STEP, async {
        loop {
            match honest.select_next_some().await {
                SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, response },
                    ..
                })) if request_id == request => return response,
                event => answer_quietly(&mut honest, event),
            }
        }
    })
    .await
    .expect("the victim did not answer an honest fetch");
    match answer {
        SyncResponse::Envelopes(envelopes) => {
            assert_eq!(envelopes.into_iter().map(|e| e.into_vec()).collect::<Vec<_>>(), before.envelope)
        }
        other => panic!("an honest fetch got {other:?}"),
    }

    victim.shutdown().await;
}
