use ed25519_dalek::{Signer, SigningKey};

use crate::NodeId;

/// A node's secret key. The same 32 bytes derive the libp2p keypair and the iroh
/// secret key, so every identity the node shows is one public key.
#[derive(Clone)]
pub struct Identity {
    key: SigningKey,
}

impl Identity {
    /// Builds the identity from its 32-byte secret (as stored in `identity.key`).
    pub fn from_secret_bytes(secret: [u8; 32]) -> Identity {
        Identity { key: SigningKey::from_bytes(&secret) }
    }

    pub fn secret_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn node_id(&self) -> NodeId {
        NodeId(self.key.verifying_key().to_bytes())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.node_id())
    }
}
