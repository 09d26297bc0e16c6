//! The libp2p behaviour and transports, built from explicit parts: TCP+noise+yamux
//! and QUIC, identify, gossipsub with validation and peer scoring, Kademlia on
//! `/smpl/kad/1`, optional mDNS, and the `/smpl/sync/1` and `/smpl/purchase/1`
//! request-response protocols; for reach across NAT, ping (round-trip times), the
//! circuit relay v2 client, DCUtR hole punching and the AutoNAT v2 client, and on a
//! node started as a relay server the relay and AutoNAT servers.
//! No DNS transport, no port mapping: relays are peers this node was told about.

use super::providers::{MAX_REMOTE_KEYS, ProviderStore};
use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, Swarm, SwarmBuilder, autonat, dcutr, gossipsub, identify, identity, kad, mdns, noise,
    ping, relay, request_response, tcp, yamux,
};
use serde::{Deserialize, Serialize};
use smpl_protocol::{Identity, limits};

use super::wire::{SyncRequest, SyncResponse, TradeRequest, TradeResponse};
use crate::util::background;

pub const LISTINGS_TOPIC: &str = "smpl/listings/1";
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/smpl/kad/1");
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/smpl/sync/1");
pub const TRADE_PROTOCOL: StreamProtocol = StreamProtocol::new("/smpl/purchase/1");
pub const IDENTIFY_PROTOCOL: &str = "/smpl/id/1";

/// Sync answers carry envelopes in batches up to this size.
pub const MAX_SYNC_RESPONSE: u64 = 16 * 1024 * 1024;
pub const MAX_SYNC_REQUEST: u64 = 1024 * 1024;
/// Trade messages carry one purchase request or license token.
pub const MAX_TRADE_MESSAGE: u64 = 64 * 1024;
/// A seller's answer may wait for its payment hook.
pub const TRADE_TIMEOUT: Duration = Duration::from_secs(60);

/// Gossipsub scores below this get the peer disconnected.
pub const GRAYLIST_THRESHOLD: f64 = -80.0;

/// What a relay server grants the NATed peers it relays for. The defaults are
/// sized for a producer's home connection: a handful of peers, enough bytes per
/// circuit for the control plane (listings, sync, purchases) and to reach a direct
/// connection, not for carrying audio.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RelayLimits {
    /// Peers that may hold a reservation (a relayed address) at once.
    pub max_reservations: usize,
    /// Relayed connections open at once, in total and per peer.
    pub max_circuits: usize,
    pub max_circuits_per_peer: usize,
    /// Bytes each relayed connection may carry, both ways together.
    pub max_circuit_bytes: u64,
    /// Seconds a relayed connection may last.
    pub max_circuit_secs: u64,
    /// Bytes a second each peer may send through the data plane's (iroh) relay:
    /// audio between peers that cannot connect directly.
    pub data_bytes_per_second: u32,
    /// Relay for others also without `--relay-server`, while AutoNAT confirms
    /// this node publicly reachable.
    pub when_public: bool,
}

impl Default for RelayLimits {
    fn default() -> Self {
        RelayLimits {
            max_reservations: 128,
            max_circuits: 64,
            max_circuits_per_peer: 4,
            max_circuit_bytes: 16 * 1024 * 1024,
            max_circuit_secs: 10 * 60,
            data_bytes_per_second: 2 * 1024 * 1024,
            when_public: true,
        }
    }
}

impl RelayLimits {
    fn config(&self) -> relay::Config {
        relay::Config {
            max_reservations: self.max_reservations,
            max_circuits: self.max_circuits,
            max_circuits_per_peer: self.max_circuits_per_peer,
            max_circuit_bytes: self.max_circuit_bytes,
            // The relay protocol carries the duration as u32 seconds.
            max_circuit_duration: Duration::from_secs(self.max_circuit_secs.min(u64::from(u32::MAX))),
            ..relay::Config::default()
        }
    }
}

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub relay_client: relay::client::Behaviour,
    /// The relay server, on nodes started with one.
    pub relay: Toggle<relay::Behaviour>,
    pub dcutr: dcutr::Behaviour,
    pub autonat: autonat::v2::client::Behaviour,
    /// Dials back the addresses peers ask about, on relay servers.
    pub autonat_server: Toggle<autonat::v2::server::Behaviour>,
    pub gossipsub: gossipsub::Behaviour,
    pub kad: kad::Behaviour<ProviderStore>,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub sync: request_response::cbor::Behaviour<SyncRequest, SyncResponse>,
    pub trade: request_response::cbor::Behaviour<TradeRequest, TradeResponse>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("node key: {0}")]
    Key(String),
    #[error("transport: {0}")]
    Transport(String),
    #[error("gossipsub: {0}")]
    Gossip(String),
}

pub fn keypair(identity: &Identity) -> Result<identity::Keypair, BuildError> {
    identity::Keypair::ed25519_from_bytes(identity.secret_bytes()).map_err(|e| BuildError::Key(e.to_string()))
}

/// The size (bytes, as sent) from which a listing received is followed by an
/// IDONTWANT to the other peers of the mesh (gossipsub 1.2), so that they do not
/// send it too. gossipsub's default is 1,000 bytes, which is every listing: under
/// a flood that is one message to each mesh peer for every listing received, sent
/// before the listing is checked, whose cost in the swarm's thread is about what
/// a duplicate of a small listing would have cost (`docs/BENCHMARKS.md`, "No
/// IDONTWANT for listings under 64 KiB"). From this size on, a duplicate's bytes
/// cost far more than the IDONTWANTs.
pub const IDONTWANT_OVER: usize = 64 * 1024;

fn gossipsub(key: &identity::Keypair) -> Result<gossipsub::Behaviour, BuildError> {
    let config = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(Duration::from_millis(500))
        .validate_messages()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .max_transmit_size(limits::MAX_ENVELOPE_BYTES + 64 * 1024)
        .idontwant_message_size_threshold(IDONTWANT_OVER)
        // Identical envelopes are one message, whoever forwards them.
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId::from(blake3::hash(&m.data).as_bytes()[..20].to_vec())
        })
        .build()
        .map_err(|e| BuildError::Gossip(e.to_string()))?;
    let mut behaviour =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), config)
            .map_err(|e| BuildError::Gossip(e.to_string()))?;
    let topic = gossipsub::IdentTopic::new(LISTINGS_TOPIC);
    let mut params = gossipsub::PeerScoreParams {
        // Nodes on one host (tests, a studio's LAN box) are not suspicious.
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    };
    params.topics.insert(
        topic.hash(),
        gossipsub::TopicScoreParams {
            // Each invalid listing costs a lot; a few get a peer graylisted.
            invalid_message_deliveries_weight: -20.0,
            invalid_message_deliveries_decay: 0.9,
            // Listings are few (a producer publishes now and then), so a mesh
            // peer delivers next to none: gossipsub's default asks 20 deliveries
            // of each, and a peer pruned from the mesh short of them would lose
            // 200 (graylisted, so banned) for no fault of its own.
            mesh_message_deliveries_weight: 0.0,
            mesh_failure_penalty_weight: 0.0,
            ..Default::default()
        },
    );
    let thresholds = gossipsub::PeerScoreThresholds {
        gossip_threshold: -10.0,
        publish_threshold: -40.0,
        graylist_threshold: GRAYLIST_THRESHOLD,
        ..Default::default()
    };
    behaviour.with_peer_score(params, thresholds).map_err(|e| BuildError::Gossip(e.to_string()))?;
    behaviour.subscribe(&topic).map_err(|e| BuildError::Gossip(e.to_string()))?;
    Ok(behaviour)
}

/// Builds the swarm. With `declared`, this node is a relay (and AutoNAT server)
/// for others within `relay`'s limits from the start; otherwise, if
/// `relay.when_public`, its relay waits for [`Behaviour::relay`]'s status to be
/// set once AutoNAT confirms it public.
pub fn build_swarm(
    identity: &Identity,
    mdns: bool,
    relay: &RelayLimits,
    declared: bool,
) -> Result<Swarm<Behaviour>, BuildError> {
    let key = keypair(identity)?;
    let swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| BuildError::Transport(e.to_string()))?
        .with_quic()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| BuildError::Transport(e.to_string()))?
        .with_behaviour(|key, relay_client| {
            let peer_id = key.public().to_peer_id();
            let identify = identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.to_string(), key.public())
                    .with_agent_version(format!("smpl/{}", env!("CARGO_PKG_VERSION")))
                    // A new relayed address reaches peers at once.
                    .with_push_listen_addr_updates(true),
            );
            let relay = (declared || relay.when_public).then(|| {
                let mut server = relay::Behaviour::new(peer_id, relay.config());
                // A declared relay serves whether or not AutoNAT has confirmed an
                // external address yet: the operator asked for it. Otherwise the
                // network actor enables it while AutoNAT confirms a direct address
                // (libp2p's own rule would count relayed addresses too).
                let status = if declared { relay::Status::Enable } else { relay::Status::Disable };
                server.set_status(Some(status));
                server
            });
            let autonat_server = declared.then(autonat::v2::server::Behaviour::default);
            // Remote provider records have their own, smaller room and expire
            // after a day unless re-announced (their announcers do so every 12 h).
            let mut kad_config = kad::Config::new(KAD_PROTOCOL);
            kad_config.set_provider_record_ttl(Some(Duration::from_secs(24 * 60 * 60)));
            // The actor refreshes the routing table itself, only once it knows a
            // peer: Kademlia's own timer warns every time on a node alone.
            kad_config.set_periodic_bootstrap_interval(None);
            let mut kad = kad::Behaviour::with_config(
                peer_id,
                ProviderStore::new(peer_id, MAX_REMOTE_KEYS),
                kad_config,
            );
            kad.set_mode(Some(kad::Mode::Server));
            let mdns = if mdns {
                Some(mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)?)
            } else {
                None
            };
            let codec = request_response::cbor::codec::Codec::default()
                .set_request_size_maximum(MAX_SYNC_REQUEST)
                .set_response_size_maximum(MAX_SYNC_RESPONSE);
            let sync = request_response::Behaviour::with_codec(
                codec,
                [(SYNC_PROTOCOL, request_response::ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
            );
            let codec = request_response::cbor::codec::Codec::default()
                .set_request_size_maximum(MAX_TRADE_MESSAGE)
                .set_response_size_maximum(MAX_TRADE_MESSAGE);
            let trade = request_response::Behaviour::with_codec(
                codec,
                [(TRADE_PROTOCOL, request_response::ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(TRADE_TIMEOUT),
            );
            Ok(Behaviour {
                identify,
                ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(15))),
                relay_client,
                relay: relay.into(),
                dcutr: dcutr::Behaviour::new(peer_id),
                autonat: autonat::v2::client::Behaviour::default(),
                autonat_server: autonat_server.into(),
                gossipsub: gossipsub(key)?,
                kad,
                mdns: mdns.into(),
                sync,
                trade,
            })
        })
        .map_err(|e| BuildError::Transport(e.to_string()))?
        .with_swarm_config(|_| {
            // Connections run as tasks of their own; each yields its thread's core
            // now and then (`Yielding`), as the swarm's actor does.
            libp2p::swarm::Config::with_executor(|connection| {
                tokio::spawn(background::Yielding(connection));
            })
            .with_idle_connection_timeout(Duration::from_secs(300))
        })
        .build();
    Ok(swarm)
}
