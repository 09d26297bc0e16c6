//! The node's facade: one [`Node`] that owns the store, the blob store, the index
//! and its indexer, the trade ledger and, once started, the network; every
//! operation the local API offers is a method on it, grouped by subsystem:
//!
//! - this file: opening, starting (joining the network) and shutting down, and
//!   the accessors;
//! - `catalog`: publish, retract, search, show, resolve ids, check and rebuild the
//!   index;
//! - `fetch`: fetching packs from providers (showing a license to those that
//!   prove they hold the content), tickets for stock clients;
//! - `trade`: buying, the seller's sales, licenses and certificates, and the task
//!   that sends pending purchases again;
//! - `audition`: preview clips; `recommend`: recommendations from the library;
//! - `status`: what the node holds, and what it dropped or refused;
//! - `error`: [`NodeError`] and what each means for the caller ([`ErrorKind`]).

mod audition;
mod catalog;
mod error;
mod fetch;
mod recommend;
mod status;
mod trade;

use std::net::SocketAddr;
use std::sync::{Arc, PoisonError};

use libp2p::Multiaddr;
use smpl_index::Index;
use smpl_protocol::{Identity, NodeId, PackId};
use tokio_util::sync::CancellationToken;

pub use audition::Preview;
pub use catalog::{CheckReport, PackView};
pub use error::{ErrorKind, NodeError};
pub use fetch::{FetchEvent, FetchOutcome};
pub use recommend::Recommendation;
pub use status::{Dropped, Status};
pub use trade::BuyOutcome;

use crate::blobs::Blobs;
use crate::budget::{Budget, BudgetConfig};
use crate::home::{Config, Home};
use crate::indexer::IndexerHandle;
use crate::net::{NetConfig, Network, NodeHost, PeerInfo};
use crate::store::{Store, StoreError};
use crate::trade::{GateStats, Trade, TradeConfig, serving};
use crate::transfer::{ServeGate, Transfer};

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
    /// Relay libp2p connections for NATed peers (limits from `config.toml`).
    pub relay_server: bool,
    /// How this node sells (seller policy, payment hook timeout).
    pub trade: TradeConfig,
    /// How often the blob store deletes what no pack, preview or download holds;
    /// `None` never does.
    pub gc_interval: Option<std::time::Duration>,
    /// How much of other producers' listings the node keeps.
    pub budget: BudgetConfig,
}

/// The port a node listens on (TCP and QUIC) unless told otherwise, while free.
pub const DEFAULT_PORT: u16 = 4747;

/// The listen addresses of a node started without `--listen`: every interface, on
/// the port this home used before (so peers that remember it find it again after
/// a restart), else [`DEFAULT_PORT`], else a free port, which is then kept.
fn default_listen(store: &Store) -> Result<Vec<Multiaddr>, NodeError> {
    let kept = store.setting("listen-port")?.and_then(|v| String::from_utf8(v).ok()?.parse::<u16>().ok());
    let free = |port: u16| {
        std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
            && std::net::UdpSocket::bind(("0.0.0.0", port)).is_ok()
    };
    let port = match kept.unwrap_or(DEFAULT_PORT) {
        port if free(port) => port,
        taken => {
            let port = std::net::TcpListener::bind(("0.0.0.0", 0))
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .map_err(|e| {
                    NodeError::Net(crate::net::NetError::Listen {
                        addr: format!("/ip4/0.0.0.0/tcp/{taken}").parse().expect("a valid address"),
                        reason: e.to_string(),
                    })
                })?;
            tracing::warn!("port {taken} is taken; listening on {port} from now on");
            port
        }
    };
    if kept != Some(port) {
        store.set_setting("listen-port", port.to_string().as_bytes())?;
    }
    Ok([format!("/ip4/0.0.0.0/tcp/{port}"), format!("/ip4/0.0.0.0/udp/{port}/quic-v1")]
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect())
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

pub struct Node {
    identity: Identity,
    home: Home,
    config: Config,
    store: Store,
    blobs: Blobs,
    trade: Trade,
    /// How much of others' listings this node keeps (see [`crate::budget`]).
    budget: Arc<Budget>,
    index: Arc<Index>,
    indexer: IndexerHandle,
    indexer_thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The network, when started with [`Node::start`].
    net: Option<(Network, Arc<Transfer>)>,
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
        let cache = config.memory.store_cache_mb << 20;
        let store = tokio::task::spawn_blocking(move || Store::open_with_cache(&db_dir, cache))
            .await?
            .map_err(|e| match e {
                StoreError::Sled(e) if crate::store::is_locked(&e) => {
                    NodeError::Locked { home: home.root().display().to_string(), reason: e.to_string() }
                }
                other => NodeError::Store(other),
            })?;
        let blobs = Blobs::open_with_gc(&home.blobs_dir(), gc_interval).await?;
        let index_dir = home.index_dir();
        let index_options = smpl_index::IndexOptions {
            writer_heap_bytes: (config.memory.index_writer_mb as usize) << 20,
            preload: config.memory.index_preload,
            ..smpl_index::IndexOptions::default()
        };
        // Opened on a thread at the lower priority: the writer's indexing and merge
        // threads, started here, inherit it, so searches go first during a flood.
        let mut index = crate::util::background::run_lowered("index-open", move || {
            Index::open_with(&index_dir, index_options)
        })
        .await
        .map_err(NodeError::Thread)??;
        // Started here, so the search threads keep the node's priority.
        index.set_search_threads(config.memory.search_threads)?;
        let index = Arc::new(index);
        let (indexer, join) = IndexerHandle::spawn(store.clone(), index.clone());
        let trade = {
            let (identity, store, dir) = (identity.clone(), store.clone(), home.licenses_dir());
            tokio::task::spawn_blocking(move || Trade::open(identity, store, dir, trade)).await??
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
        let budget = {
            let (store, me) = (store.clone(), identity.node_id());
            Arc::new(
                tokio::task::spawn_blocking(move || Budget::open(&store, me, BudgetConfig::default()))
                    .await??,
            )
        };
        Ok(Node {
            budget,
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
        if options.relay_server {
            transfer.serve_relay(node.config.relay_server.data_bytes_per_second).await?;
        }
        let held = serving::provided(node.trade.gate(), &node.blobs, &node.store).await?;
        // Nothing else holds the budget yet: it takes the options' limits without
        // counting the store a second time.
        Arc::get_mut(&mut node.budget).expect("the budget is not shared before the network starts").config =
            options.budget;
        for (pack, _) in node.blobs.tagged_packs().await? {
            if let Some((manifest, _)) = node.store.manifest(&pack)? {
                node.budget.keep(pack, manifest.author);
            }
        }
        for license in node.trade.licenses(false)? {
            node.budget.keep(license.pack_id, license.seller);
        }
        let watch = tokio::spawn(crate::budget::watch_disk(
            node.budget.clone(),
            vec![node.home.db_dir(), node.home.index_dir()],
            node.cancel.child_token(),
        ));
        node.tasks.lock().unwrap_or_else(PoisonError::into_inner).push(watch);
        if let Some(interval) = options.gc_interval {
            let task = tokio::spawn(serving::prune(
                node.trade.gate().clone(),
                node.blobs.clone(),
                interval,
                node.cancel.child_token(),
            ));
            node.tasks.lock().unwrap_or_else(PoisonError::into_inner).push(task);
        }
        let host = Arc::new(NodeHost {
            budget: node.budget.clone(),
            store: node.store.clone(),
            blobs: node.blobs.clone(),
            proving: Default::default(),
            indexer: node.indexer.clone(),
            transfer: transfer.clone(),
            relay_rate: node.config.relay_server.data_bytes_per_second,
            trade: node.trade.clone(),
            runtime: tokio::runtime::Handle::current(),
        });
        let listen = match options.listen.is_empty() {
            true => default_listen(&node.store)?,
            false => options.listen.clone(),
        };
        let mut bootstrap = options.bootstrap.clone();
        for line in &node.config.bootstrap {
            match line.parse::<crate::net::Invite>() {
                Ok(invite) => bootstrap.extend(invite.addrs),
                Err(e) => tracing::warn!("skipping bootstrap entry {line:?} of config.toml: {e}"),
            }
        }
        let config = NetConfig {
            listen,
            bootstrap,
            mdns: options.mdns,
            relay: node.config.relay_server.clone(),
            relay_server: options.relay_server,
            passed_file: Some(node.home.sync_passed_path()),
        };
        let (network, task) = Network::start(&node.identity, config, host, node.cancel.child_token()).await?;
        // Announce everything we can serve.
        for pack in held {
            network.provide(pack).await?;
        }
        let resend = tokio::spawn(trade::resend(
            network.clone(),
            node.trade.clone(),
            node.cancel.child_token(),
            trade::RESEND_FIRST,
        ));
        let mut tasks = node.tasks.lock().unwrap_or_else(PoisonError::into_inner);
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

    /// Keeps `pack` and the listings of its `author` ([`Budget::keep`]). An
    /// author newly dealt with gets back its listings that the budget declined or
    /// evicted before: their records go, and peers are asked for them again.
    async fn deal_with(&self, pack: PackId, author: NodeId) {
        if self.budget.keep(pack, author)
            && let Err(e) = self.ask_again_for(author).await
        {
            tracing::error!(%author, "asking peers again for the declined listings of an author dealt with failed: {e}");
        }
    }

    /// Forgets the records of `author`'s listings declined or evicted, and asks
    /// the peers for those listings again.
    async fn ask_again_for(&self, author: NodeId) -> Result<(), NodeError> {
        let store = self.store.clone();
        let packs = tokio::task::spawn_blocking(move || store.undecline_author(&author)).await??;
        if packs.is_empty() {
            return Ok(());
        }
        tracing::info!(
            %author,
            listings = packs.len(),
            "asking peers again for the listings of an author now dealt with, declined before"
        );
        if let Some(network) = self.network() {
            network.reconsider(packs).await?;
        }
        Ok(())
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

    /// The invite line a friend can start from: this node's direct and relayed
    /// addresses (see [`crate::net::Invite`]).
    pub async fn invite(&self) -> Result<crate::net::Invite, NodeError> {
        let network = &self.net()?.0;
        Ok(crate::net::Invite { peer: network.peer_id(), addrs: network.invite_addrs().await? })
    }

    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NodeError> {
        Ok(self.net()?.0.peers().await?)
    }

    /// Dials `addr` (a multiaddr ending in `/p2p/<peer id>`), waits up to 10 s for
    /// the connection, and remembers the address to dial again after restarts.
    pub async fn connect_to(&self, addr: &str) -> Result<PeerInfo, NodeError> {
        let network = &self.net()?.0;
        let bad = |why: &str| NodeError::BadAddress { addr: addr.to_string(), why: why.to_string() };
        // One address, or an invite line of several (`smpl invite`).
        let invite: crate::net::Invite =
            addr.parse().map_err(|e: crate::net::InviteError| bad(&e.to_string()))?;
        let peer = invite.peer;
        let node = crate::net::node_id_of(&peer).ok_or_else(|| bad("its peer id is not an ed25519 key"))?;
        for addr in &invite.addrs {
            network.dial(addr.clone()).await?;
        }
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(info) = network.peers().await?.into_iter().find(|p| p.node_id == node) {
                for addr in &invite.addrs {
                    self.store.remember_peer(&addr.to_string())?;
                }
                return Ok(info);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(NodeError::Unreachable(addr.to_string()));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    pub fn node_id(&self) -> NodeId {
        self.identity.node_id()
    }

    /// What the listing budget refused and evicted since the node started.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// What the paid-content gate decided since the node started.
    pub fn gate_stats(&self) -> &GateStats {
        self.trade.gate().stats()
    }

    // The parts themselves, for tests and tools; the local API goes through the
    // operations instead.

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

    /// Stops the indexer and closes the stores.
    pub async fn shutdown(self) {
        let Node { index, indexer, indexer_thread, blobs, store, net, cancel, tasks, .. } = self;
        cancel.cancel();
        let tasks = tasks.lock().map(|mut t| std::mem::take(&mut *t)).unwrap_or_default();
        for task in tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
        if let Some((_, transfer)) = net {
            match Arc::try_unwrap(transfer) {
                Ok(transfer) => transfer.shutdown().await,
                // Host work still queued (listings waiting for their checks under a
                // flood) holds it: the endpoint is closed all the same.
                Err(transfer) => transfer.close().await,
            }
        }
        drop(indexer);
        let join = indexer_thread.lock().ok().and_then(|mut j| j.take());
        if let Some(join) = join {
            let _ = tokio::task::spawn_blocking(move || join.join()).await;
        }
        // Its commits were not synced: without this, a stop of the machine before
        // the next start has it rebuilt.
        match tokio::task::spawn_blocking(move || index.close()).await {
            Ok(Err(e)) => {
                tracing::warn!("syncing the search index failed (it is rebuilt if the machine stops): {e}")
            }
            Err(e) => tracing::warn!("syncing the search index failed: {e}"),
            Ok(Ok(())) => {}
        }
        blobs.shutdown().await;
        let _ = tokio::task::spawn_blocking(move || store.flush()).await;
    }
}
