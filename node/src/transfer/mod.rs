//! The data plane: serving and fetching pack content over iroh-blobs.
//!
//! A [`Transfer`] owns one iroh endpoint, keyed by the node's identity (the same
//! ed25519 secret as the libp2p side, so the iroh `EndpointId` *is* the [`NodeId`]),
//! and a router that answers the iroh-blobs protocol ([`iroh_blobs::ALPN`]) from the
//! node's [`Blobs`] store.
//!
//! - **Addresses come only from the control plane.** The endpoint is built from
//!   explicit parts: no DNS or pkarr address lookup, no port mapping, no
//!   captive-portal check. The only address lookup is an in-memory table that
//!   [`Transfer::add_peer`] fills with what libp2p learned (addresses and the
//!   peer's home relay), and [`Transfer::local_addrs`] is what libp2p tells other
//!   peers.
//! - **Relays** (`relay`): only those peers run and told us of over libp2p, with
//!   their certificates pinned ([`Transfer::use_relay`]), or one given as
//!   `--relay URL`. The endpoint measures them with an HTTPS request each and
//!   homes at the fastest; with none, it sends no probe at all.
//!   [`Transfer::serve_relay`] runs one for peers.
//! - **Serving** (`provider`): read-only. Pushes are refused, connections and
//!   concurrent requests are limited per peer, and every get request passes a
//!   [`ServeGate`] given at start (the node's is the paid-content gate).
//! - **Fetching** (`download`): [`Transfer::download`] fetches a pack's collection
//!   from several providers at once, resumes from verified partial data, and drops a
//!   provider that fails or sends data that does not match its BLAKE3 hash.
//! - **Export** (`export`): [`Transfer::export`] puts a stored pack under
//!   `<library>/<author name> (<author id>)/<title>/` as plain files: reflinks or read-only hard links
//!   of the store's own files where it can, copies otherwise.
//! - [`Transfer::ticket`] gives a `BlobTicket` that stock iroh-blobs clients such as
//!   `sendme receive` accept.

mod download;
mod export;
mod provider;
mod relay;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use iroh::address_lookup::MemoryLookup;
use iroh::endpoint::{PortmapperConfig, presets};
use iroh::protocol::Router;
use iroh::{
    Endpoint, EndpointAddr, EndpointId, NetReportConfig, RelayConfig, RelayMap, RelayMode, RelayUrl,
    SecretKey, TransportAddr, Watcher,
};
use iroh_blobs::BlobFormat;
use iroh_blobs::protocol::{ChunkRanges, ChunkRangesExt};
use iroh_blobs::ticket::BlobTicket;
use smpl_protocol::{BlobHash, Identity, Manifest, NodeId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use download::{DownloadProgress, Downloaded, DropReason, DroppedProvider};
pub use export::{Exported, edited_library_files};
pub use provider::{AllowAll, Limits, ServeGate};
pub use relay::{CertHash, MAX_PINS, RelayServer, relay_url};

use crate::blobs::{Blobs, to_iroh};
use provider::{GateCell, Provider};
use relay::Pins;

/// How long [`Transfer::start`] waits for the endpoint to report its addresses.
const ADDR_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a punch tries to connect, and keeps the connection if it does.
const PUNCH_FOR: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("cannot bind the iroh endpoint to {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("relay URL {url:?} is not valid: {reason}")]
    InvalidRelay { url: String, reason: String },
    #[error("no provider to fetch {content} from (no peer that holds it is known)")]
    NoProviders { content: BlobHash },
    #[error("could not fetch {what} of {content} from any provider: {reasons}")]
    Unavailable { content: BlobHash, what: String, reasons: String },
    #[error("{content} is not a pack collection: {reason}")]
    NotACollection { content: BlobHash, reason: String },
    #[error("pack content {content} is not completely stored here; fetch it first")]
    Incomplete { content: BlobHash },
    #[error("pack content {content} does not match its manifest: {reason}")]
    Mismatch { content: BlobHash, reason: String },
    #[error("cannot export {name:?}: {reason}")]
    BadName { name: String, reason: String },
    #[error(
        "the stored copy of {name:?} is damaged (its bytes no longer match the pack; a library file that \
         shares its data with the store was probably edited in place)"
    )]
    Damaged { name: String, hash: BlobHash },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("blob store error while {action}: {reason}")]
    Store { action: &'static str, reason: String },
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl TransferError {
    fn store(action: &'static str) -> impl FnOnce(&dyn std::fmt::Display) -> TransferError {
        move |e| TransferError::Store { action, reason: e.to_string() }
    }

    fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> TransferError {
        let path = path.display().to_string();
        move |source| TransferError::Io { action, path, source }
    }
}

/// The node's iroh endpoint, serving its blob store and fetching from peers.
#[derive(Debug)]
pub struct Transfer {
    router: Router,
    lookup: MemoryLookup,
    /// The relay certificates learned from peers.
    pins: Pins,
    /// The iroh relay this node runs for its peers, once started.
    relay_server: std::sync::OnceLock<RelayServer>,
    blobs: Blobs,
    gate: GateCell,
    cancel: CancellationToken,
    policy: tokio::task::JoinHandle<()>,
    /// The public addresses the endpoint is to have (see [`Transfer::set_public_ips`]).
    public: tokio::sync::watch::Sender<Vec<SocketAddr>>,
    /// The runtime the endpoint was made on, which the punching tasks run on
    /// whatever thread asks for them (the swarm has a runtime of its own).
    runtime: tokio::runtime::Handle,
}

/// Keeps the endpoint's external addresses to the latest set given to
/// [`Transfer::set_public_ips`], one change after the other.
async fn keep_public_addrs(
    endpoint: iroh::Endpoint,
    mut wanted: tokio::sync::watch::Receiver<Vec<SocketAddr>>,
    cancel: CancellationToken,
) {
    let mut given: Vec<SocketAddr> = Vec::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = wanted.changed() => if changed.is_err() { return },
        }
        let next = wanted.borrow_and_update().clone();
        for gone in given.iter().filter(|a| !next.contains(a)) {
            endpoint.remove_external_addr(gone).await;
        }
        for new in next.iter().filter(|a| !given.contains(a)) {
            tracing::debug!(addr = %new, "the data plane may be reachable at a public address");
            endpoint.add_external_addr(*new).await;
        }
        given = next;
    }
}

/// Writes `bytes` over the file at `path` in place (its inode, so every hard
/// link to it), keeping its mode, and syncs it.
fn rewrite_in_place(path: &std::path::Path, bytes: &[u8]) -> Result<(), TransferError> {
    use std::io::Write;
    let io = |action| TransferError::io(action, path);
    let before = std::fs::metadata(path).map_err(io("inspect"))?.permissions();
    let mut writable = before.clone();
    #[allow(clippy::permissions_set_readonly_false)]
    writable.set_readonly(false);
    std::fs::set_permissions(path, writable).map_err(io("make writable"))?;
    let written = std::fs::OpenOptions::new().write(true).open(path).and_then(|mut file| {
        file.write_all(bytes)?;
        file.set_len(bytes.len() as u64)?;
        file.sync_all()
    });
    let _ = std::fs::set_permissions(path, before);
    written.map_err(io("rewrite"))
}

/// Bytes through iroh relays (see [`Transfer::relay_bytes`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RelayBytes {
    pub sent: u64,
    pub received: u64,
    pub forwarded: u64,
}

fn parse_relay(url: &str) -> Result<RelayUrl, TransferError> {
    url.parse().map_err(|e: iroh::RelayUrlParseError| TransferError::InvalidRelay {
        url: url.into(),
        reason: e.to_string(),
    })
}

fn endpoint_id(node: &NodeId) -> Option<EndpointId> {
    EndpointId::from_bytes(node.as_bytes()).ok()
}

fn node_id(endpoint: &EndpointId) -> NodeId {
    NodeId(*endpoint.as_bytes())
}

impl Transfer {
    /// Binds the endpoint to `bind` (port 0 picks a free port) with the node's own
    /// key and starts serving `blobs`. Talks to a relay only if `relay` is given.
    pub async fn start(
        identity: &Identity,
        blobs: &Blobs,
        bind: SocketAddr,
        relay: Option<String>,
        gate: Arc<dyn ServeGate>,
    ) -> Result<Transfer, TransferError> {
        Transfer::start_with(identity, blobs, bind, relay, gate, Limits::default()).await
    }

    /// [`Transfer::start`] with explicit serving limits. `gate` decides every
    /// request from the first one on: there is no moment without it.
    pub async fn start_with(
        identity: &Identity,
        blobs: &Blobs,
        bind: SocketAddr,
        relay: Option<String>,
        gate: Arc<dyn ServeGate>,
        limits: Limits,
    ) -> Result<Transfer, TransferError> {
        // Relays learned from peers join the map later (`use_relay`).
        let relay_mode = match relay {
            None => RelayMode::Custom(RelayMap::empty()),
            Some(url) => RelayMode::custom([parse_relay(&url)?]),
        };
        // A home relay is chosen by latency, measured with an HTTPS request to each
        // relay in the map (the relays are peers' nodes, not a third party's).
        let mut net_report = NetReportConfig::minimal();
        net_report.https_probes = true;
        let pins = Pins::default();
        let bind_err = |reason: String| TransferError::Bind { addr: bind, reason };
        let lookup = MemoryLookup::new();
        // `presets::Minimal` is `Builder::empty()` plus the crypto provider (ring): no
        // address lookup, relays disabled. Everything that could talk to a third party
        // is switched off explicitly on top.
        let endpoint = Endpoint::builder(presets::Minimal)
            .secret_key(SecretKey::from_bytes(&identity.secret_bytes()))
            .relay_mode(relay_mode)
            .ca_tls_config(pins.tls_config())
            .portmapper_config(PortmapperConfig::Disabled)
            .net_report_config(net_report)
            .clear_address_lookup()
            .address_lookup(lookup.clone())
            .clear_ip_transports()
            .bind_addr(bind)
            .map_err(|e| bind_err(e.to_string()))?
            .bind()
            .await
            .map_err(|e| bind_err(e.to_string()))?;
        wait_for_addrs(&endpoint).await;

        let gate = GateCell::new(gate);
        let cancel = CancellationToken::new();
        let (events, policy) = provider::spawn_policy(
            blobs.store().as_ref().clone(),
            gate.clone(),
            limits,
            cancel.child_token(),
        );
        let router = Router::builder(endpoint)
            .accept(iroh_blobs::ALPN, Provider::new(blobs.store().as_ref().clone(), events))
            .spawn();
        tracing::info!(node = %identity.node_id(), addrs = ?router.endpoint().addr(), "iroh endpoint ready");
        let (public, wanted) = tokio::sync::watch::channel(Vec::new());
        tokio::spawn(keep_public_addrs(router.endpoint().clone(), wanted, cancel.child_token()));
        Ok(Transfer {
            router,
            lookup,
            pins,
            relay_server: std::sync::OnceLock::new(),
            blobs: blobs.clone(),
            gate,
            cancel,
            policy,
            public,
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// This node's id (the iroh endpoint id, equal to the libp2p peer key).
    pub fn node_id(&self) -> NodeId {
        node_id(&self.router.endpoint().id())
    }

    /// Whether the endpoint is closed: the node has stopped.
    pub fn is_closed(&self) -> bool {
        self.router.endpoint().is_closed()
    }

    /// The direct addresses peers can reach this endpoint at: what the node tells
    /// other peers over libp2p.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.router.endpoint().addr().ip_addrs().copied().collect()
    }

    /// Gives the endpoint the addresses it is probably reachable at from outside:
    /// its own IPv4 port at each public IP peers saw this node at (a home router
    /// that maps endpoint-independently keeps the port, or keeps one port for
    /// every destination). iroh offers its addresses to the peers it connects to
    /// as candidates and punches holes toward theirs, retrying, so two nodes behind
    /// such routers reach each other directly; without them it knows only its
    /// private addresses (QUIC address discovery, which would find these, is off:
    /// it asks the default relays). Replaces the set given before.
    pub fn set_public_ips(&self, ips: &[std::net::IpAddr]) {
        let sockets = self.router.endpoint().bound_sockets();
        let ports: Vec<u16> = sockets.iter().filter(|a| a.is_ipv4()).map(|a| a.port()).collect();
        let wanted: Vec<SocketAddr> =
            ips.iter().flat_map(|ip| ports.iter().map(|port| SocketAddr::new(*ip, *port))).collect();
        self.public.send_replace(wanted);
    }

    /// Records where `node`'s iroh endpoint listens, and the relay it is reached
    /// through (one whose certificate is pinned), as learned over libp2p. Replaces
    /// what was known for that node before; no address and no relay forgets it.
    pub fn add_peer(&self, node: NodeId, addrs: Vec<SocketAddr>, relay: Option<&str>) {
        let Some(id) = endpoint_id(&node) else {
            tracing::warn!(%node, "ignoring addresses for a node id that is not a valid ed25519 key");
            return;
        };
        let relay = relay.and_then(|url| url.parse::<RelayUrl>().ok());
        if addrs.is_empty() && relay.is_none() {
            self.lookup.remove_endpoint_info(id);
        } else {
            let transports = addrs.into_iter().map(TransportAddr::Ip).chain(relay.map(TransportAddr::Relay));
            self.lookup.set_endpoint_info(EndpointAddr::from_parts(id, transports));
        }
    }

    /// Starts the iroh relay this node runs for its peers, on a free TCP port of
    /// the endpoint's address; each client may send `bytes_per_second` through it.
    pub async fn serve_relay(&self, bytes_per_second: u32) -> Result<(), TransferError> {
        if self.relay_server.get().is_some() {
            return Ok(());
        }
        let ip = self.router.endpoint().bound_sockets().first().map(SocketAddr::ip);
        let bind = SocketAddr::new(ip.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()), 0);
        let server = RelayServer::start(bind, bytes_per_second).await?;
        if let Err(server) = self.relay_server.set(server) {
            server.shutdown().await;
        }
        Ok(())
    }

    /// The relay this node runs: its TCP port and certificate hash.
    pub fn own_relay(&self) -> Option<(u16, CertHash)> {
        self.relay_server.get().map(|server| (server.port(), server.cert()))
    }

    /// Trusts the relay at `url` with the certificate `cert` (as a peer told us)
    /// and adds it to the relays this endpoint may choose its home relay from, up
    /// to [`MAX_PINS`].
    pub async fn use_relay(&self, url: &str, cert: CertHash) -> Result<(), TransferError> {
        let parsed = parse_relay(url)?;
        if self.pins.insert(url, cert) {
            tracing::info!(%url, "using the iroh relay a peer runs");
            self.router
                .endpoint()
                .insert_relay(parsed.clone(), Arc::new(RelayConfig::new(parsed, None)))
                .await;
        }
        Ok(())
    }

    /// Trusts the relay at `url` with the certificate `cert`, to reach a peer
    /// homed there, without choosing it as our own home relay.
    pub fn pin_relay(&self, url: &str, cert: CertHash) {
        self.pins.insert(url, cert);
    }

    /// The relay this endpoint is homed at, with its pinned certificate: where
    /// peers reach it through when no direct path works.
    pub fn home_relay(&self) -> Option<(String, CertHash)> {
        let addr = self.router.endpoint().addr();
        addr.relay_urls().find_map(|url| {
            let url = url.to_string();
            self.pins.get(&url).map(|cert| (url, cert))
        })
    }

    /// Bytes through relays: sent and received by this endpoint, and forwarded
    /// for others by the relay this node runs.
    pub fn relay_bytes(&self) -> RelayBytes {
        let socket = &self.router.endpoint().metrics().socket;
        RelayBytes {
            sent: socket.send_relay.get(),
            received: socket.recv_data_relay.get(),
            forwarded: self.relay_server.get().map_or(0, RelayServer::forwarded),
        }
    }

    /// Sends to `node`'s known addresses from this endpoint now (a connection
    /// attempt, kept a little while if it succeeds), so that a NAT in front of this
    /// node lets `node`'s packets in when it connects back: hole punching for the
    /// data plane, coordinated over libp2p, where both sides call it when they meet
    /// through a relay.
    pub fn punch(&self, node: NodeId) {
        let Some(id) = endpoint_id(&node) else { return };
        let endpoint = self.router.endpoint().clone();
        let cancel = self.cancel.child_token();
        self.runtime.spawn(async move {
            let attempt = tokio::time::timeout(PUNCH_FOR, endpoint.connect(id, iroh_blobs::ALPN));
            let connection = tokio::select! {
                _ = cancel.cancelled() => return,
                connected = attempt => connected,
            };
            match connection {
                Ok(Ok(connection)) => {
                    let path = if download::direct_within(&connection, PUNCH_FOR).await {
                        "direct"
                    } else {
                        "relayed"
                    };
                    tracing::info!(%node, "data-plane connection punched: {path}");
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        _ = tokio::time::sleep(PUNCH_FOR) => {}
                    }
                    connection.close(0u32.into(), b"punched");
                }
                Ok(Err(e)) => tracing::debug!(%node, "punching toward {node}: {e}"),
                Err(_) => tracing::debug!(%node, "punching toward {node}: no answer within {PUNCH_FOR:?}"),
            }
        });
    }

    /// Replaces the gate consulted on every request this node serves (see
    /// [`ServeGate`]).
    pub fn set_gate(&self, gate: impl ServeGate) {
        self.gate.set(Arc::new(gate));
    }

    /// Downloads the pack collection `content` (its hash sequence, the collection
    /// metadata and every file) from `providers`, several at once when there are
    /// several, and returns once all of it is stored and verified.
    ///
    /// Whatever is already stored (complete or verified partial blobs) is not
    /// fetched again. A provider that is unreachable, refuses, fails mid-way or sends
    /// data that does not match its BLAKE3 hash is dropped for the rest of this call
    /// and the others are used; the call fails only when no provider is left for some
    /// part. `progress` receives [`DownloadProgress`] updates; a receiver that does
    /// not keep up slows the download down (drop it to ignore progress).
    pub async fn download(
        &self,
        content: BlobHash,
        providers: &[NodeId],
        progress: Option<mpsc::Sender<DownloadProgress>>,
    ) -> Result<Downloaded, TransferError> {
        let providers: Vec<EndpointId> = providers.iter().filter_map(endpoint_id).collect();
        download::run(self.router.endpoint(), self.blobs.store(), content, providers, progress).await
    }

    /// Writes the stored pack of `manifest` as plain files under
    /// `<library>/<author name> (<short author id>)/<pack title>/` (see `export`).
    /// Writes a stored pack's files under `library` (staged in the home's
    /// `partial/` folder, see [`export`]).
    pub async fn export(&self, manifest: &Manifest, library: &Path) -> Result<Exported, TransferError> {
        export::export(&self.blobs, manifest, library, &self.blobs.staging_dir()).await
    }

    /// A blobs connection to `provider`, or why there is none (within the
    /// download's connect timeout).
    async fn connect_blobs(&self, provider: EndpointId) -> Result<iroh::endpoint::Connection, String> {
        let connect = self.router.endpoint().connect(provider, iroh_blobs::ALPN);
        match tokio::time::timeout(download::CONNECT_TIMEOUT, connect).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(e)) => Err(format!("{}: {e}", node_id(&provider))),
            Err(_) => Err(format!("{}: no connection", node_id(&provider))),
        }
    }

    /// Restores a stored blob whose bytes were damaged (see [`TransferError::Damaged`]):
    /// fetches it whole from the first of `providers` that serves it, verified as
    /// it streams in, into memory, and writes it over the store's damaged file in
    /// place (a library hard link to that file is then whole again too). The
    /// store's hash tree of the blob was never touched, so nothing else changes.
    pub async fn restore_blob(&self, hash: BlobHash, providers: &[NodeId]) -> Result<(), TransferError> {
        let mut reasons = Vec::new();
        for provider in providers.iter().filter_map(endpoint_id) {
            let connection = match self.connect_blobs(provider).await {
                Ok(connection) => connection,
                Err(reason) => {
                    reasons.push(reason);
                    continue;
                }
            };
            let scratch = iroh_blobs::store::mem::MemStore::new();
            let request = iroh_blobs::protocol::GetRequest::blob(to_iroh(&hash));
            let result = scratch.remote().execute_get(connection.clone(), request).complete().await;
            connection.close(0u32.into(), b"done");
            if let Err(e) = result {
                reasons.push(format!("{}: {e}", node_id(&provider)));
                continue;
            }
            let bytes = match scratch.blobs().get_bytes(to_iroh(&hash)).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    reasons.push(format!("{}: {e}", node_id(&provider)));
                    continue;
                }
            };
            let path = self.blobs.owned_data_path(&to_iroh(&hash));
            tokio::task::spawn_blocking(move || rewrite_in_place(&path, &bytes)).await??;
            tracing::info!(blob = %hash, provider = %node_id(&provider), "restored a damaged blob");
            return Ok(());
        }
        if reasons.is_empty() {
            return Err(TransferError::NoProviders { content: hash });
        }
        Err(TransferError::Unavailable {
            content: hash,
            what: "a damaged file".into(),
            reasons: reasons.join("; "),
        })
    }

    /// Fetches one blob (a preview clip) of at most `max` bytes from the first of
    /// `providers` that serves it, verified as it streams in. A blob that turns
    /// out bigger than `max` is an error (what arrived of it stays, at most `max`).
    pub async fn fetch_blob(
        &self,
        hash: BlobHash,
        providers: &[NodeId],
        max: u64,
    ) -> Result<(), TransferError> {
        let chunks = max.div_ceil(1024);
        let request = iroh_blobs::protocol::GetRequest::builder()
            .root(<ChunkRanges as ChunkRangesExt>::chunks(..chunks))
            .build(to_iroh(&hash));
        let store = self.blobs.store();
        let mut reasons = Vec::new();
        for provider in providers.iter().filter_map(endpoint_id) {
            let connection = match self.connect_blobs(provider).await {
                Ok(connection) => connection,
                Err(reason) => {
                    reasons.push(reason);
                    continue;
                }
            };
            let result = store.remote().execute_get(connection.clone(), request.clone()).complete().await;
            connection.close(0u32.into(), b"done");
            let complete = self.blobs.is_complete(&hash).await;
            match result {
                Ok(_) if complete.map_err(|e| TransferError::store("checking a blob")(&e))? => return Ok(()),
                Ok(_) => reasons.push(format!("{}: the blob is over {max} bytes", node_id(&provider))),
                Err(e) => reasons.push(format!("{}: {e}", node_id(&provider))),
            }
        }
        if reasons.is_empty() {
            return Err(TransferError::NoProviders { content: hash });
        }
        Err(TransferError::Unavailable {
            content: hash,
            what: "the blob".into(),
            reasons: reasons.join("; "),
        })
    }

    /// A ticket for the pack collection `content` with this node's current
    /// addresses, in the format `sendme receive` and other iroh-blobs clients read
    /// (a `BlobTicket` of format `HashSeq`).
    pub fn ticket(&self, content: BlobHash) -> String {
        BlobTicket::new(self.router.endpoint().addr(), to_iroh(&content), BlobFormat::HashSeq).to_string()
    }

    /// Stops serving and closes the endpoint, where others still hold this
    /// transfer; the relay this node runs for peers stops when the last of them
    /// lets go.
    pub async fn close(&self) {
        self.cancel.cancel();
        if let Err(e) = self.router.shutdown().await {
            tracing::warn!("iroh router did not shut down cleanly: {e}");
        }
    }

    /// Stops serving and closes the endpoint. The blob store stays open: it belongs
    /// to the node.
    pub async fn shutdown(self) {
        self.close().await;
        if let Some(server) = self.relay_server.into_inner() {
            server.shutdown().await;
        }
        let _ = self.policy.await;
    }
}

/// Waits (bounded) until the endpoint knows at least one direct address, so that
/// [`Transfer::local_addrs`] is meaningful right after start.
async fn wait_for_addrs(endpoint: &Endpoint) {
    let mut watcher = endpoint.watch_addr();
    let wait = async {
        while watcher.get().ip_addrs().next().is_none() {
            if watcher.updated().await.is_err() {
                break;
            }
        }
    };
    if tokio::time::timeout(ADDR_TIMEOUT, wait).await.is_err() {
        tracing::warn!("iroh endpoint reported no direct address within {ADDR_TIMEOUT:?}");
    }
}
