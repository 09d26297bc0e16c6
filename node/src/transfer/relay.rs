//! The data plane's relays: the iroh relay a public node runs for its peers
//! (`smpl node --relay-server`), and the relay certificates a node trusts.
//!
//! - **No certificate authority.** A relay here has no domain name: it makes a
//!   self-signed TLS certificate when it starts and tells its peers the
//!   certificate's BLAKE3 hash in its `Hello` (`/smpl/sync/1`, over a libp2p
//!   connection authenticated by the relay's node key). A node trusts a relay's
//!   certificate only when a peer told it that hash ([`Pins`]); a relay given by
//!   URL (`--relay`) is checked against the usual web roots instead.
//! - **A relay reads nothing.** iroh connections are QUIC end to end, encrypted to
//!   the node keys: a relay forwards packets it cannot read or change. What it
//!   costs its operator is bandwidth, limited per client
//!   ([`RelayServer::start`]) and counted ([`RelayServer::forwarded`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};

use iroh_relay::server::{CertConfig, ClientRateLimit, Limits, RelayConfig, Server, ServerConfig, TlsConfig};
use iroh_relay::tls::CaTlsConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::TransferError;

/// The BLAKE3 hash of a relay's TLS certificate (DER).
pub type CertHash = [u8; 32];

/// Most relays a node pins: its peers' own relays and the relays its peers are
/// reached through.
pub const MAX_PINS: usize = 16;

/// The relay certificates this node accepts, by relay URL, learned from peers.
#[derive(Clone, Debug, Default)]
pub struct Pins(Arc<RwLock<HashMap<String, CertHash>>>);

impl Pins {
    /// Accepts the certificate with this hash from the relay at `url` from now
    /// on. `false` when the pin was already there or there are [`MAX_PINS`] pins.
    pub fn insert(&self, url: &str, hash: CertHash) -> bool {
        let mut pins = self.0.write().unwrap_or_else(|e| e.into_inner());
        if pins.get(url) == Some(&hash) || (pins.len() >= MAX_PINS && !pins.contains_key(url)) {
            return false;
        }
        pins.insert(url.to_string(), hash);
        true
    }

    /// The certificate hash pinned for the relay at `url`.
    pub fn get(&self, url: &str) -> Option<CertHash> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).get(url).copied()
    }

    // Any pinned hash is accepted for any relay: a relay cannot read what it
    // forwards (see the module docs), so a pinned relay answering for another
    // relay's URL gains nothing the other relay would not have.
    fn contains(&self, cert: &CertificateDer<'_>) -> bool {
        let hash: CertHash = *blake3::hash(cert).as_bytes();
        self.0.read().unwrap_or_else(|e| e.into_inner()).values().any(|pinned| *pinned == hash)
    }

    /// How the endpoint checks relay certificates: a pinned one is accepted as
    /// it is, any other must chain to the web roots.
    pub(super) fn tls_config(&self) -> CaTlsConfig {
        let pins = self.clone();
        CaTlsConfig::custom_server_cert_verifier(Arc::new(move |provider: Arc<CryptoProvider>| {
            let web = CaTlsConfig::embedded().server_cert_verifier(provider.clone())?;
            let verifier: Arc<dyn ServerCertVerifier> =
                Arc::new(Pinned { pins: pins.clone(), provider, web });
            Ok(verifier)
        }))
    }
}

#[derive(Debug)]
struct Pinned {
    pins: Pins,
    provider: Arc<CryptoProvider>,
    web: Arc<dyn ServerCertVerifier>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.pins.contains(end_entity) {
            return Ok(ServerCertVerified::assertion());
        }
        self.web.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    // The handshake signatures are checked the usual way whatever vouched for the
    // certificate: they prove the relay holds the certificate's key.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The iroh relay this node runs for its peers.
#[derive(Debug)]
pub struct RelayServer {
    server: Server,
    addr: SocketAddr,
    cert: CertHash,
}

impl RelayServer {
    /// Serves the relay over HTTPS at `bind` (port 0 picks one) with a fresh
    /// self-signed certificate. It admits any iroh endpoint; each may send
    /// `bytes_per_second` through it (bursts of a second's worth).
    pub async fn start(bind: SocketAddr, bytes_per_second: u32) -> Result<RelayServer, TransferError> {
        let fail =
            |reason: String| TransferError::Bind { addr: bind, reason: format!("relay server: {reason}") };
        let certified = rcgen::generate_simple_self_signed(vec!["smpl-relay".to_string()])
            .map_err(|e| fail(format!("cannot make a certificate: {e}")))?;
        let der = certified.cert.der().clone();
        let cert: CertHash = *blake3::hash(&der).as_bytes();
        let key = PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let tls =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .map_err(|e| fail(e.to_string()))?
                .with_no_client_auth()
                .with_single_cert(vec![der], key)
                .map_err(|e| fail(e.to_string()))?;

        // Plain HTTP (the captive-portal check) on any free port beside it.
        let mut relay = RelayConfig::new(SocketAddr::new(bind.ip(), 0));
        relay.tls = Some(TlsConfig::new(bind, CertConfig::Manual { server_config: tls }));
        let mut limit =
            ClientRateLimit::new(NonZeroU32::new(bytes_per_second.max(1)).unwrap_or(NonZeroU32::MIN));
        limit.max_burst_bytes = limit.bytes_per_second.into();
        relay.limits = Limits::default();
        relay.limits.client_rx = Some(limit);
        let mut config = ServerConfig::default();
        config.relay = Some(relay);
        let server = Server::spawn(config).await.map_err(|e| fail(e.to_string()))?;
        let addr = server.https_addr().ok_or_else(|| fail("no HTTPS address".into()))?;
        tracing::info!(%addr, cert = %hex(&cert), "iroh relay serving");
        Ok(RelayServer { server, addr, cert })
    }

    /// The TCP port peers reach the relay at (on this node's address).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The hash peers pin the relay's certificate by.
    pub fn cert(&self) -> CertHash {
        self.cert
    }

    /// Bytes the relay has forwarded to its clients since it started.
    pub fn forwarded(&self) -> u64 {
        self.server.metrics().server.bytes_sent.get()
    }

    pub async fn shutdown(self) {
        if let Err(e) = self.server.shutdown().await {
            tracing::warn!("the iroh relay did not shut down cleanly: {e}");
        }
    }
}

/// A relay's URL: HTTPS at `addr`.
pub fn relay_url(addr: SocketAddr) -> String {
    format!("https://{addr}/")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
