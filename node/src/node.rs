//! The node: owns the store, the blob store, the index and the indexer, and offers
//! the operations the local API exposes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use libp2p::Multiaddr;
use tokio_util::sync::CancellationToken;

use serde::{Deserialize, Serialize};
use smpl_index::{Index, SearchQuery, SearchResults};
use smpl_protocol::{Identity, Manifest, NodeId, PackId, Retraction, Signed};
use tokio::sync::mpsc;

use crate::blobs::{BlobError, Blobs};
use crate::home::{Config, Home, HomeError};
use crate::indexer::IndexerHandle;
use crate::listings::NodeHost;
use crate::net::wire::TradeRequest;
use crate::net::wire::TradeResponse;
use crate::net::{NetConfig, NetError, Network, PeerInfo};
use crate::publish::{self, PublishError, PublishEvent, PublishOutcome, PublishRequest};
use crate::serving::{self, ServingError};
use crate::store::{Accepted, Store, StoreError};
use crate::trade::LicenseGate;
use crate::trade::{Trade, TradeConfig, TradeError};
use crate::transfer::{DownloadProgress, ServeGate, Transfer, TransferError};

/// The first pause before a pending purchase is sent again (the pauses then
/// double, see [`crate::purchases::resend`]).
const RESEND_PURCHASES_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// How to run a node.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub home: Home,
    /// Where the local HTTP API listens (port 0 picks a free port).
    pub api: SocketAddr,
    /// libp2p listen addresses; the iroh endpoint binds the same IP.
    pub listen: Vec<Multiaddr>,
    pub bootstrap: Vec<Multiaddr>,
    pub mdns: bool,
    /// An iroh relay URL; none by default.
    pub relay: Option<String>,
    /// How this node sells (seller policy, payment hook timeout).
    pub trade: TradeConfig,
    /// How often the blob store deletes what no pack, preview or download holds;
    /// `None` never does.
    pub gc_interval: Option<std::time::Duration>,
}

impl NodeOptions {
    /// Where the iroh endpoint binds: loopback when every libp2p listen address
    /// is loopback (tests, demos), otherwise all interfaces.
    fn iroh_bind(&self) -> SocketAddr {
        let loopback = !self.listen.is_empty()
            && self.listen.iter().all(|a| {
                a.iter().any(|p| matches!(p, libp2p::multiaddr::Protocol::Ip4(ip) if ip.is_loopback()))
            });
        if loopback { SocketAddr::from(([127, 0, 0, 1], 0)) } else { SocketAddr::from(([0, 0, 0, 0], 0)) }
    }
}

/// What `smpl fetch` reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FetchOutcome {
    pub pack_id: PackId,
    pub path: PathBuf,
    pub files: usize,
    pub bytes: u64,
    /// Bytes that came over the network in this fetch (what was here already,
    /// such as the unchanged files of an earlier version, is not fetched again).
    pub downloaded: u64,
    pub providers: usize,
}

/// Progress of a fetch, streamed to the CLI as JSON lines.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum FetchEvent {
    Started { bytes: u64, providers: usize },
    Progress { bytes: u64 },
    Done(FetchOutcome),
    Error { message: String },
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("search index: {0}")]
    Index(#[from] smpl_index::IndexError),
    #[error("another node is already running for {home} ({reason})")]
    Locked { home: String, reason: String },
    #[error("no pack {0} here")]
    UnknownPack(PackId),
    #[error(
        "no pack matches {0:?} (give a pack id or a unique prefix of one; `smpl search --packs` lists them)"
    )]
    NoSuchPack(String),
    #[error("{0:?} matches several packs; give more of the pack id")]
    Ambiguous(String),
    #[error("pack {pack} belongs to {author}; only its author can retract it")]
    NotYours { pack: PackId, author: NodeId },
    #[error("signing failed: {0}")]
    Sign(#[from] smpl_protocol::ProtocolError),
    #[error("background task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Transfer(#[from] TransferError),
    #[error("pack {0} is paid; only free packs can be shared as a ticket")]
    NotFree(PackId),
    #[error("this node runs without a network")]
    Offline,
    #[error("no reachable node serves pack {0} right now; try again when its author or a buyer is online")]
    NoProviders(PackId),
    #[error(transparent)]
    Trade(#[from] TradeError),
    #[error(transparent)]
    Serving(#[from] ServingError),
    #[error(
        "license required: {title:?} costs {price} and this node holds no license for its version {seq}; \
         buy it with `smpl buy {pack}`"
    )]
    LicenseRequired { pack: PackId, title: String, price: String, seq: u64 },
    #[error("no provider of pack {pack} accepted our license: {reasons}")]
    LicenseRefused { pack: PackId, reasons: String },
    #[error("pack {0} is your own; there is nothing to buy")]
    OwnPack(PackId),
    #[error("pack {pack}: {sample:?}: {why}")]
    NoSample { pack: PackId, sample: String, why: &'static str },
}

/// A pack as `smpl show` presents it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PackView {
    #[serde(flatten)]
    pub manifest: Manifest,
    /// The signed envelope, hex, as stored and forwarded.
    pub envelope_bytes: usize,
}

/// What `smpl check` reports: whether every stored pack is whole and indexed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CheckReport {
    /// Packs whose manifest is stored.
    pub packs: usize,
    /// Packs with a blob missing or incomplete in the blob store.
    pub incomplete: Vec<PackId>,
    /// Packs in the index.
    pub indexed: usize,
    /// Packs whose index entry disagrees with the store (missing, stale or extra).
    pub index_mismatch: Vec<PackId>,
    /// Entries still waiting in the index queue.
    pub queued: usize,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.incomplete.is_empty() && self.index_mismatch.is_empty() && self.queued == 0
    }
}

pub struct Node {
    pub(crate) identity: Identity,
    home: Home,
    config: Config,
    pub(crate) store: Store,
    blobs: Blobs,
    pub(crate) trade: Trade,
    index: Arc<Index>,
    indexer: IndexerHandle,
    indexer_thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The network, when started with [`Node::start`].
    pub(crate) net: Option<(Network, Arc<Transfer>)>,
    cancel: CancellationToken,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Node {
    /// Opens (creating where missing) everything under the home and starts the indexer.
    pub async fn open(home: Home) -> Result<Node, NodeError> {
        Node::open_with(home, TradeConfig::default(), None).await
    }

    /// [`Node::open`] with a seller policy and blob garbage collection.
    pub async fn open_with(
        home: Home,
        trade: TradeConfig,
        gc_interval: Option<std::time::Duration>,
    ) -> Result<Node, NodeError> {
        let (identity, _) = home.init()?;
        let config = home.config()?;
        let db_dir = home.db_dir();
        let store = tokio::task::spawn_blocking(move || Store::open(&db_dir))
            .await
            .map_err(|e| NodeError::Task(e.to_string()))?
            .map_err(|e| match e {
                StoreError::Sled(sled::Error::Io(io)) if io.kind() == std::io::ErrorKind::WouldBlock => {
                    NodeError::Locked { home: home.root().display().to_string(), reason: io.to_string() }
                }
                other => NodeError::Store(other),
            })?;
        let blobs = Blobs::open_with_gc(&home.blobs_dir(), gc_interval).await?;
        let index_dir = home.index_dir();
        let index = tokio::task::spawn_blocking(move || Index::open(&index_dir))
            .await
            .map_err(|e| NodeError::Task(e.to_string()))??;
        let index = Arc::new(index);
        let (indexer, join) = IndexerHandle::spawn(store.clone(), index.clone());
        let trade = {
            let (identity, store, dir) = (identity.clone(), store.clone(), home.licenses_dir());
            tokio::task::spawn_blocking(move || Trade::open(identity, store, dir, trade))
                .await
                .map_err(|e| NodeError::Task(e.to_string()))??
        };
        if trade.gate().is_empty() {
            let recorded = serving::rebuild(trade.gate(), &blobs, &store, &trade, identity.node_id()).await?;
            if recorded > 0 {
                tracing::info!(
                    packs = recorded,
                    "rebuilt the provenance of stored blobs from the store's tags"
                );
            }
        }
        Ok(Node {
            trade,
            identity,
            home,
            config,
            store,
            blobs,
            index,
            indexer,
            indexer_thread: std::sync::Mutex::new(Some(join)),
            net: None,
            cancel: CancellationToken::new(),
            tasks: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Opens the node and joins the network: the iroh endpoint serving our blobs,
    /// and the libp2p swarm for listings, sync and discovery.
    pub async fn start(options: &NodeOptions) -> Result<Node, NodeError> {
        let mut node =
            Node::open_with(options.home.clone(), options.trade.clone(), options.gc_interval).await?;
        // The gate is in place before the first request can arrive.
        let gate: Arc<dyn ServeGate> = Arc::new(node.trade.gate().clone());
        let transfer = Arc::new(
            Transfer::start(&node.identity, &node.blobs, options.iroh_bind(), options.relay.clone(), gate)
                .await?,
        );
        let held = serving::provided(node.trade.gate(), &node.blobs, &node.store).await?;
        if let Some(interval) = options.gc_interval {
            let task = tokio::spawn(prune_provenance(
                node.trade.gate().clone(),
                node.blobs.clone(),
                interval,
                node.cancel.child_token(),
            ));
            node.tasks.lock().map_err(|e| NodeError::Task(e.to_string()))?.push(task);
        }
        let host = Arc::new(NodeHost {
            store: node.store.clone(),
            blobs: node.blobs.clone(),
            proving: Default::default(),
            indexer: node.indexer.clone(),
            transfer: transfer.clone(),
            trade: node.trade.clone(),
        });
        let config = NetConfig {
            listen: options.listen.clone(),
            bootstrap: options.bootstrap.clone(),
            mdns: options.mdns,
        };
        let (network, task) = Network::start(&node.identity, config, host, node.cancel.child_token()).await?;
        // Announce everything we can serve.
        for pack in held {
            network.provide(pack).await?;
        }
        let resend =
            tokio::spawn(resend_purchases(network.clone(), node.trade.clone(), node.cancel.child_token()));
        let mut tasks = node.tasks.lock().map_err(|e| NodeError::Task(e.to_string()))?;
        tasks.push(task);
        tasks.push(resend);
        drop(tasks);
        node.net = Some((network, transfer));
        Ok(node)
    }

    /// The libp2p network handle, when the node was started with one.
    pub fn network(&self) -> Option<&Network> {
        self.net.as_ref().map(|(network, _)| network)
    }

    /// The iroh data plane, when the node was started with a network.
    pub fn transfer(&self) -> Option<&Arc<Transfer>> {
        self.net.as_ref().map(|(_, transfer)| transfer)
    }

    fn net(&self) -> Result<&(Network, Arc<Transfer>), NodeError> {
        self.net.as_ref().ok_or(NodeError::Offline)
    }

    /// libp2p listen addresses, each ending in `/p2p/<peer id>`.
    pub async fn listen_addrs(&self) -> Vec<String> {
        let Ok((network, _)) = self.net() else { return Vec::new() };
        let peer = network.peer_id();
        network
            .listen_addrs()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|a| format!("{a}/p2p/{peer}"))
            .collect()
    }

    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NodeError> {
        Ok(self.net()?.0.peers().await?)
    }

    /// Downloads a pack from whoever serves it, verifies it, and writes its files
    /// under the library (or `out`); then serves it to others.
    pub async fn fetch(
        &self,
        pack: &PackId,
        out: Option<PathBuf>,
        progress: mpsc::Sender<FetchEvent>,
    ) -> Result<FetchOutcome, NodeError> {
        let (network, transfer) = self.net()?;
        let (manifest, _) = self.store.manifest(pack)?.ok_or(NodeError::UnknownPack(*pack))?;
        let license = self.license_to_fetch(&manifest).await?;
        let mut providers = Vec::new();
        let mut downloaded = 0;
        if self.blobs.pack_content(pack).await? != Some(manifest.content) {
            providers = self.reachable_providers(&manifest).await?;
            // Provenance first: the gate knows the terms of every blob before it is stored.
            let _downloading =
                serving::record_fetch(self.trade.gate(), &self.blobs, &manifest, license.is_some()).await?;
            if let Some(license) = license {
                providers = present(network, &manifest, providers, license).await?;
            }
            let total: u64 = manifest.samples.iter().map(|s| s.size).sum();
            let _ = progress.send(FetchEvent::Started { bytes: total, providers: providers.len() }).await;
            let (tick, mut ticks) = mpsc::channel::<DownloadProgress>(16);
            let forward = progress.clone();
            tokio::spawn(async move {
                while let Some(p) = ticks.recv().await {
                    let _ = forward.try_send(FetchEvent::Progress { bytes: p.done });
                }
            });
            downloaded = transfer.download(manifest.content, &providers, Some(tick)).await?.fetched;
            self.blobs.tag_pack(pack, &manifest.content).await?;
        }
        let library = out.unwrap_or_else(|| self.config.library.clone());
        let exported = transfer.export(&manifest, &library).await?;
        if serving::servable(self.trade.gate(), &self.blobs, &manifest).await? {
            network.provide(*pack).await?;
        } else {
            tracing::info!(
                pack = %pack,
                "not announcing pack {pack} as provided: some of its content is held here under other terms"
            );
        }
        Ok(FetchOutcome {
            pack_id: *pack,
            path: exported.path,
            files: exported.files,
            bytes: exported.bytes,
            downloaded,
            providers: providers.len(),
        })
    }

    /// The nodes that serve `manifest`'s pack (its author first, then DHT provider
    /// records) and are reachable now; an error when there are none.
    pub(crate) async fn reachable_providers(&self, manifest: &Manifest) -> Result<Vec<NodeId>, NodeError> {
        let (network, _) = self.net()?;
        let me = self.node_id();
        let mut candidates = vec![manifest.author];
        for node in network.find_providers(manifest.pack_id).await.unwrap_or_default() {
            if !candidates.contains(&node) {
                candidates.push(node);
            }
        }
        candidates.retain(|n| *n != me);
        let checks = futures::future::join_all(candidates.iter().map(|n| network.connect(*n))).await;
        let providers: Vec<NodeId> = candidates
            .into_iter()
            .zip(checks)
            .filter(|(_, ok)| *ok.as_ref().unwrap_or(&false))
            .map(|(n, _)| n)
            .collect();
        if providers.is_empty() {
            return Err(NodeError::NoProviders(manifest.pack_id));
        }
        Ok(providers)
    }

    /// A ticket that stock iroh-blobs clients (e.g. `sendme receive`) can fetch a
    /// free pack with.
    pub fn share(&self, pack: &PackId) -> Result<String, NodeError> {
        let (_, transfer) = self.net()?;
        let (manifest, _) = self.store.manifest(pack)?.ok_or(NodeError::UnknownPack(*pack))?;
        if !manifest.is_free() {
            return Err(NodeError::NotFree(*pack));
        }
        Ok(transfer.ticket(manifest.content))
    }

    pub fn node_id(&self) -> NodeId {
        self.identity.node_id()
    }

    /// What the paid-content gate decided since the node started.
    pub fn gate_stats(&self) -> &crate::trade::GateStats {
        self.trade.gate().stats()
    }

    pub fn home(&self) -> &Home {
        &self.home
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Publishes a folder; returns once the pack is stored and searchable.
    pub async fn publish(
        &self,
        request: PublishRequest,
        progress: mpsc::Sender<PublishEvent>,
    ) -> Result<PublishOutcome, PublishError> {
        let gate = self.trade.gate().clone();
        let register = move |manifest: &Manifest| serving::record_publish(&gate, manifest);
        let outcome = publish::publish(
            &self.identity,
            &self.config.name,
            &self.store,
            &self.blobs,
            request,
            progress,
            &register,
        )
        .await?;
        self.indexer.wake();
        self.indexer.flush().await;
        self.announce(&outcome.pack_id, true).await;
        Ok(outcome)
    }

    pub async fn search(&self, query: SearchQuery) -> Result<SearchResults, NodeError> {
        let index = self.index.clone();
        Ok(tokio::task::spawn_blocking(move || index.search(&query))
            .await
            .map_err(|e| NodeError::Task(e.to_string()))??)
    }

    pub fn show(&self, pack: &PackId) -> Result<PackView, NodeError> {
        let (manifest, envelope) = self.store.manifest(pack)?.ok_or(NodeError::UnknownPack(*pack))?;
        Ok(PackView { manifest, envelope_bytes: envelope.as_bytes().len() })
    }

    /// Signs and applies a retraction of one of this node's packs.
    pub async fn retract(&self, pack: &PackId) -> Result<(), NodeError> {
        let (manifest, _) = self.store.manifest(pack)?.ok_or(NodeError::UnknownPack(*pack))?;
        if manifest.author != self.node_id() {
            return Err(NodeError::NotYours { pack: *pack, author: manifest.author });
        }
        let retraction = Retraction {
            pack_id: *pack,
            author: manifest.author,
            slug: manifest.slug.clone(),
            seq: manifest.seq,
            retracted_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        let envelope = retraction.sign(&self.identity)?;
        let store = self.store.clone();
        let accepted =
            tokio::task::spawn_blocking(move || store.accept_retraction(&retraction, &envelope, true))
                .await
                .map_err(|e| NodeError::Task(e.to_string()))??;
        if accepted == Accepted::New {
            self.blobs.untag_pack(pack).await?;
        }
        self.indexer.wake();
        self.indexer.flush().await;
        self.announce(pack, false).await;
        Ok(())
    }

    /// Gossips the newest listing of `pack` and, for content we hold, provides it.
    async fn announce(&self, pack: &PackId, provide: bool) {
        let Some((network, _)) = &self.net else { return };
        match self.store.envelopes(&[*pack]) {
            Ok(envelopes) => {
                for envelope in envelopes {
                    let _ = network.publish(envelope).await;
                }
            }
            Err(e) => tracing::error!("reading the listing of {pack} to announce it failed: {e}"),
        }
        if provide {
            let _ = network.provide(*pack).await;
        }
    }

    /// Rebuilds the search index from the manifests in the store.
    pub async fn rebuild_index(&self) {
        self.indexer.rebuild().await;
    }

    /// Resolves a full pack id or a unique prefix (at least 4 hex digits).
    pub fn resolve(&self, text: &str) -> Result<PackId, NodeError> {
        let text = text.trim().to_ascii_lowercase();
        if let Ok(id) = text.parse::<PackId>() {
            return Ok(id);
        }
        let unknown = || NodeError::NoSuchPack(text.clone());
        if text.len() < 4 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(unknown());
        }
        let mut matches =
            self.store.pack_seqs()?.into_iter().filter(|(id, _)| id.to_hex().starts_with(&text));
        match (matches.next(), matches.next()) {
            (Some((id, _)), None) => Ok(id),
            (Some(_), Some(_)) => Err(NodeError::Ambiguous(text)),
            _ => Err(unknown()),
        }
    }

    /// Checks that every stored pack is whole in the blob store and that the index
    /// agrees with the store (after draining the index queue).
    pub async fn check(&self) -> Result<CheckReport, NodeError> {
        self.indexer.flush().await;
        let mut report = CheckReport::default();
        let store = self.store.clone();
        let index = self.index.clone();
        let (stored, indexed) =
            tokio::task::spawn_blocking(move || Ok::<_, NodeError>((store.pack_seqs()?, index.packs()?)))
                .await
                .map_err(|e| NodeError::Task(e.to_string()))??;
        report.packs = stored.len();
        report.indexed = indexed.len();
        report.queued = self.store.queue_len();
        let stored_map: std::collections::HashMap<_, _> = stored.iter().copied().collect();
        let indexed_map: std::collections::HashMap<_, _> = indexed.iter().copied().collect();
        for (id, seq) in &stored {
            if indexed_map.get(id) != Some(seq) {
                report.index_mismatch.push(*id);
            }
        }
        for (id, _) in &indexed {
            if !stored_map.contains_key(id) {
                report.index_mismatch.push(*id);
            }
        }
        for (id, _) in &stored {
            let Some((manifest, _)) = self.store.manifest(id)? else { continue };
            let mut whole = self.blobs.is_complete(&manifest.content).await?;
            for sample in &manifest.samples {
                whole = whole && self.blobs.is_complete(&sample.hash).await?;
            }
            if !whole {
                report.incomplete.push(*id);
            }
        }
        Ok(report)
    }

    /// Waits until the index holds everything queued so far.
    pub async fn flush_index(&self) {
        self.indexer.flush().await;
    }

    /// Stops the indexer and closes the stores.
    pub async fn shutdown(self) {
        let Node { indexer, indexer_thread, blobs, store, net, cancel, tasks, .. } = self;
        cancel.cancel();
        let tasks = tasks.lock().map(|mut t| std::mem::take(&mut *t)).unwrap_or_default();
        for task in tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
        if let Some((_, transfer)) = net
            && let Ok(transfer) = Arc::try_unwrap(transfer)
        {
            transfer.shutdown().await;
        }
        drop(indexer);
        let join = indexer_thread.lock().ok().and_then(|mut j| j.take());
        if let Some(join) = join {
            let _ = tokio::task::spawn_blocking(move || join.join()).await;
        }
        blobs.shutdown().await;
        let _ = tokio::task::spawn_blocking(move || store.flush()).await;
    }
}

/// Shows our license to each provider that is the pack's author or proves it
/// holds the content; returns those that accepted it. Others never see it, so a
/// node that only claims to provide a pack does not learn who bought it.
async fn present(
    network: &Network,
    manifest: &Manifest,
    providers: Vec<NodeId>,
    license: smpl_protocol::Envelope,
) -> Result<Vec<NodeId>, NodeError> {
    let pack = &manifest.pack_id;
    let bytes = serde_bytes::ByteBuf::from(license.into_bytes());
    let proofs = providers.iter().map(|node| async move {
        if *node == manifest.author {
            return Ok(());
        }
        proves_possession(network, *node, manifest).await
    });
    let mut reasons = Vec::new();
    let mut trusted = Vec::new();
    for (node, proof) in providers.iter().zip(futures::future::join_all(proofs).await) {
        match proof {
            Ok(()) => trusted.push(*node),
            Err(reason) => reasons.push(format!("{node}: {reason}")),
        }
    }
    let answers = trusted.iter().map(|node| network.trade(*node, TradeRequest::Present(bytes.clone())));
    let mut accepted = Vec::new();
    for (node, answer) in trusted.iter().zip(futures::future::join_all(answers).await) {
        match answer {
            Ok(TradeResponse::Accepted) => accepted.push(*node),
            Ok(TradeResponse::Refused(reason)) => reasons.push(format!("{node}: {reason}")),
            Ok(other) => reasons.push(format!("{node}: unexpected answer {other:?}")),
            Err(e) => reasons.push(e.to_string()),
        }
    }
    if accepted.is_empty() {
        return Err(NodeError::LicenseRefused { pack: *pack, reasons: reasons.join("; ") });
    }
    Ok(accepted)
}

/// Asks `node` to prove it holds a randomly chosen chunk of a randomly chosen file
/// of the pack (one over a chunk long); an error says why it did not.
async fn proves_possession(network: &Network, node: NodeId, manifest: &Manifest) -> Result<(), String> {
    use smpl_protocol::possession::{CHUNK_BYTES, chunks, verify};
    let provable: Vec<_> = manifest.samples.iter().filter(|s| s.size > CHUNK_BYTES).collect();
    if provable.is_empty() {
        return Err(
            "the pack has no file long enough to prove possession of; only its author is asked".into()
        );
    }
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|e| e.to_string())?;
    let pick = u64::from_le_bytes(random[..8].try_into().unwrap_or_default());
    let sample = provable[(pick % provable.len() as u64) as usize];
    let chunk = u64::from_le_bytes(random[8..].try_into().unwrap_or_default()) % chunks(sample.size);
    let answer = network.trade(node, TradeRequest::Prove { blob: sample.hash, chunk }).await;
    match answer {
        Ok(TradeResponse::Proof(hashes)) => {
            let hashes: Vec<[u8; 32]> =
                hashes.iter().filter_map(|h| <[u8; 32]>::try_from(h.as_ref()).ok()).collect();
            if verify(&sample.hash, sample.size, chunk, &hashes) {
                Ok(())
            } else {
                tracing::warn!(%node, pack = %manifest.pack_id, "a provider's proof of possession did not verify");
                Err("its proof of holding the content is wrong; the license was not shown to it".into())
            }
        }
        Ok(TradeResponse::Refused(reason)) => Err(format!("did not prove it holds the content: {reason}")),
        Ok(other) => Err(format!("unexpected answer to a proof request: {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Sends pending purchases to their sellers again, until each is answered.
async fn resend_purchases(network: Network, trade: Trade, cancel: CancellationToken) {
    crate::purchases::resend(network, trade, cancel, RESEND_PURCHASES_EVERY).await
}

/// After each garbage collection, drops the provenance of blobs that are gone, so
/// records do not outlive their bytes (downloads under way keep theirs).
async fn prune_provenance(
    gate: LicenseGate,
    blobs: Blobs,
    interval: std::time::Duration,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let keep = blobs.downloading().hashes();
        let handle = tokio::runtime::Handle::current();
        let (gate, store) = (gate.clone(), blobs.clone());
        let pruned = tokio::task::spawn_blocking(move || {
            gate.prune(|hash| handle.block_on(store.is_stored(hash)), &keep)
        })
        .await;
        match pruned {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::debug!(records = n, "pruned the provenance of collected blobs"),
            Ok(Err(e)) => tracing::warn!("pruning provenance failed: {e}"),
            Err(_) => return,
        }
    }
}
