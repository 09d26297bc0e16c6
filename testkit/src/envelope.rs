//! Envelopes as a hostile peer could make them, to check that readers refuse them.
//!
//! The layout (see `smpl_protocol::Envelope`): `SMPL`, version 1, the kind byte, the
//! signer's 32-byte key, a 64-byte signature, the body length (u32, big endian),
//! then the body.

use smpl_protocol::{Envelope, Identity, Kind, NodeId, Signed, limits};

/// Seals `value` as its kind without running its checks (`Signed::sign` would),
/// so invalid values reach the reader's checks.
pub fn seal_unchecked<T: Signed>(identity: &Identity, value: &T) -> Envelope {
    let body = serde_json::to_vec(value).expect("serialize");
    Envelope::seal(identity, T::KIND, &body).expect("seal")
}

/// An envelope's bytes with any `signer`, `signature` and `declared` body length,
/// whatever `body` really is: nothing is signed or checked.
pub fn raw(kind: Kind, signer: &NodeId, signature: &[u8; 64], declared: u32, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(limits::ENVELOPE_HEADER_BYTES + body.len());
    bytes.extend_from_slice(b"SMPL");
    bytes.push(1);
    bytes.push(kind as u8);
    bytes.extend_from_slice(signer.as_bytes());
    bytes.extend_from_slice(signature);
    bytes.extend_from_slice(&declared.to_be_bytes());
    bytes.extend_from_slice(body);
    bytes
}
