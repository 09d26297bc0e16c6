//! The signed envelope, byte for byte:
//!
//! ```text
//! offset  size  field
//! 0       4     magic "SMPL"
//! 4       1     version (1)
//! 5       1     kind (1 manifest, 2 retraction, 3 purchase request, 4 license token)
//! 6       32    signer's ed25519 public key
//! 38      64    ed25519 signature over "smpl/v1/<kind name>" || 0x00 || body
//! 102     4     body length n, big-endian u32
//! 106     n     body: UTF-8 JSON of the kind's struct
//! ```
//!
//! The kind names in the domain separator are `manifest`, `retraction`,
//! `purchase-request` and `license-token`, so a body signed as one kind never verifies
//! as another, and nothing else a node signs can be mistaken for an envelope.
//!
//! # Reading
//!
//! [`Envelope::open`] does, in this order, and stops at the first failure:
//!
//! 1. the whole input is at most [`limits::MAX_ENVELOPE_BYTES`] (else `TooLarge`);
//! 2. the header is complete, the magic and version match, the kind is known
//!    (`Malformed`, `UnknownVersion`, `UnknownKind`);
//! 3. both the declared and the actual body length are within the kind's limit
//!    ([`Kind::max_body`], else `TooLarge`), and they are equal (`Malformed`);
//! 4. the key is a valid ed25519 point and the signature verifies under
//!    `verify_strict` (no small-order keys, no malleable signatures: `BadKey`,
//!    `BadSignature`).
//!
//! Only then does [`Signed::open`] decode the JSON body (`Decode`; unknown fields are
//! refused), check that the body names the signer (a manifest's and retraction's
//! `author`, a license token's `seller`, a purchase request's `buyer`), and run the
//! kind's semantic checks (`Invalid`). The envelope keeps the original bytes: store
//! and forward [`Envelope::as_bytes`], never a re-serialization.
//!
//! # Writing
//!
//! [`Signed::sign`] runs the same semantic checks, serializes the struct with
//! `serde_json` (compact, fields in declaration order) and seals it. Readers must not
//! rely on that exact JSON form: any JSON that decodes to the struct is valid, and the
//! bytes are what is signed.

use std::fmt;

use ed25519_dalek::{Signature, VerifyingKey};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Identity, NodeId, ProtocolError, limits};

const MAGIC: &[u8; 4] = b"SMPL";
const VERSION: u8 = 1;
const HEADER_LEN: usize = limits::ENVELOPE_HEADER_BYTES;
const MAX_ENVELOPE_BYTES: usize = limits::MAX_ENVELOPE_BYTES;

/// What a signed envelope carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Manifest = 1,
    Retraction = 2,
    PurchaseRequest = 3,
    LicenseToken = 4,
}

impl Kind {
    /// Every kind, in wire-byte order.
    pub const ALL: [Kind; 4] = [Kind::Manifest, Kind::Retraction, Kind::PurchaseRequest, Kind::LicenseToken];

    /// The name in the signature's domain separator.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Manifest => "manifest",
            Kind::Retraction => "retraction",
            Kind::PurchaseRequest => "purchase-request",
            Kind::LicenseToken => "license-token",
        }
    }

    /// The largest body this kind may have, checked before any parsing.
    pub fn max_body(self) -> usize {
        match self {
            Kind::Manifest => limits::MAX_MANIFEST_BYTES,
            Kind::Retraction => limits::MAX_SMALL_BODY_BYTES,
            Kind::PurchaseRequest => limits::MAX_SMALL_BODY_BYTES,
            Kind::LicenseToken => limits::MAX_LICENSE_BYTES,
        }
    }

    fn from_byte(b: u8) -> Result<Kind, ProtocolError> {
        Ok(match b {
            1 => Kind::Manifest,
            2 => Kind::Retraction,
            3 => Kind::PurchaseRequest,
            4 => Kind::LicenseToken,
            other => return Err(ProtocolError::UnknownKind(other)),
        })
    }

    fn signing_message(self, body: &[u8]) -> Vec<u8> {
        let mut msg = Vec::with_capacity(16 + self.name().len() + body.len());
        msg.extend_from_slice(b"smpl/v1/");
        msg.extend_from_slice(self.name().as_bytes());
        msg.push(0);
        msg.extend_from_slice(body);
        msg
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A verified signed envelope; holds the exact bytes it was read from.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    bytes: Vec<u8>,
    kind: Kind,
}

impl Envelope {
    /// Signs `body` as a `kind` message.
    pub fn seal(identity: &Identity, kind: Kind, body: &[u8]) -> Result<Envelope, ProtocolError> {
        if body.len() > kind.max_body() {
            return Err(ProtocolError::TooLarge { kind: kind.name(), len: body.len(), max: kind.max_body() });
        }
        let signature = identity.sign(&kind.signing_message(body));
        let mut bytes = Vec::with_capacity(HEADER_LEN + body.len());
        bytes.extend_from_slice(MAGIC);
        bytes.push(VERSION);
        bytes.push(kind as u8);
        bytes.extend_from_slice(identity.node_id().as_bytes());
        bytes.extend_from_slice(&signature);
        bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
        bytes.extend_from_slice(body);
        Ok(Envelope { bytes, kind })
    }

    /// Checks limits, header and signature of `bytes`, without decoding the body.
    pub fn open(bytes: &[u8]) -> Result<Envelope, ProtocolError> {
        Self::open_inner(bytes, None)
    }

    /// Like [`Envelope::open`], but refuses any kind but `kind` before checking the
    /// signature, so a large body of the wrong kind costs no hashing.
    pub fn open_as(bytes: &[u8], kind: Kind) -> Result<Envelope, ProtocolError> {
        Self::open_inner(bytes, Some(kind))
    }

    fn open_inner(bytes: &[u8], expected: Option<Kind>) -> Result<Envelope, ProtocolError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(ProtocolError::TooLarge {
                kind: "envelope",
                len: bytes.len(),
                max: MAX_ENVELOPE_BYTES,
            });
        }
        let Some((header, body)) = bytes.split_first_chunk::<HEADER_LEN>() else {
            return Err(ProtocolError::Malformed("shorter than the envelope header"));
        };
        if &header[..4] != MAGIC {
            return Err(ProtocolError::Malformed("missing SMPL magic"));
        }
        if header[4] != VERSION {
            return Err(ProtocolError::UnknownVersion(header[4]));
        }
        let kind = Kind::from_byte(header[5])?;
        if let Some(expected) = expected
            && kind != expected
        {
            return Err(ProtocolError::WrongKind { expected, got: kind });
        }
        let declared = u32::from_be_bytes([header[102], header[103], header[104], header[105]]) as usize;
        let max = kind.max_body();
        for len in [declared, body.len()] {
            if len > max {
                return Err(ProtocolError::TooLarge { kind: kind.name(), len, max });
            }
        }
        if declared != body.len() {
            return Err(ProtocolError::Malformed("body length does not match the envelope size"));
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&header[6..38]);
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&header[38..102]);
        let key = VerifyingKey::from_bytes(&key).map_err(|e| ProtocolError::BadKey(e.to_string()))?;
        key.verify_strict(&kind.signing_message(body), &Signature::from_bytes(&sig))
            .map_err(|_| ProtocolError::BadSignature(kind))?;
        Ok(Envelope { bytes: bytes.to_vec(), kind })
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn signer(&self) -> NodeId {
        let mut key = [0u8; 32];
        key.copy_from_slice(&self.bytes[6..38]);
        NodeId(key)
    }

    /// The signer the header of `bytes` names, read without checking anything (not
    /// even the signature): only for deciding which listings to check first.
    /// `None` when `bytes` are shorter than a header.
    pub fn claimed_signer(bytes: &[u8]) -> Option<NodeId> {
        Some(NodeId(bytes.get(6..38)?.try_into().ok()?))
    }

    pub fn signature(&self) -> [u8; 64] {
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&self.bytes[38..102]);
        sig
    }

    pub fn body(&self) -> &[u8] {
        &self.bytes[HEADER_LEN..]
    }

    /// The exact bytes to store and forward.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Envelope({}, {} bytes, by {})", self.kind, self.bytes.len(), self.signer())
    }
}

/// A signed kind: its struct is the envelope body, signed by the node it names.
pub trait Signed: Serialize + DeserializeOwned + Sized {
    const KIND: Kind;

    /// The node that must have signed this body.
    fn expected_signer(&self) -> NodeId;

    /// Semantic limits and consistency, checked after decoding.
    fn validate(&self) -> Result<(), String>;

    /// Validates and signs `self`; the signer must be the node the body names.
    fn sign(&self, identity: &Identity) -> Result<Envelope, ProtocolError> {
        self.validate().map_err(|reason| ProtocolError::Invalid { kind: Self::KIND, reason })?;
        if self.expected_signer() != identity.node_id() {
            return Err(ProtocolError::Invalid {
                kind: Self::KIND,
                reason: format!(
                    "names signer {} but is signed by {}",
                    self.expected_signer(),
                    identity.node_id()
                ),
            });
        }
        let body =
            serde_json::to_vec(self).map_err(|source| ProtocolError::Decode { kind: Self::KIND, source })?;
        Envelope::seal(identity, Self::KIND, &body)
    }

    /// Verifies and decodes `bytes`: limits, signature, body, signer, semantic checks.
    fn open(bytes: &[u8]) -> Result<(Self, Envelope), ProtocolError> {
        let envelope = Envelope::open_as(bytes, Self::KIND)?;
        let value = Self::from_envelope(&envelope)?;
        Ok((value, envelope))
    }

    /// Decodes an already verified envelope.
    fn from_envelope(envelope: &Envelope) -> Result<Self, ProtocolError> {
        if envelope.kind() != Self::KIND {
            return Err(ProtocolError::WrongKind { expected: Self::KIND, got: envelope.kind() });
        }
        let value: Self = serde_json::from_slice(envelope.body())
            .map_err(|source| ProtocolError::Decode { kind: Self::KIND, source })?;
        if value.expected_signer() != envelope.signer() {
            return Err(ProtocolError::Invalid {
                kind: Self::KIND,
                reason: format!(
                    "names signer {} but is signed by {}",
                    value.expected_signer(),
                    envelope.signer()
                ),
            });
        }
        value.validate().map_err(|reason| ProtocolError::Invalid { kind: Self::KIND, reason })?;
        Ok(value)
    }
}
