//! Fixed-size identifiers and their one text form: lowercase hex.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ProtocolError;

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $len:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            pub const LEN: usize = $len;

            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// The lowercase-hex text form.
            pub fn to_hex(&self) -> String {
                hex_encode(&self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = ProtocolError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut out = [0u8; $len];
                hex_decode_into(s, &mut out).map_err(|reason| ProtocolError::Parse {
                    what: $what,
                    input: s.chars().take(80).collect(),
                    reason,
                })?;
                Ok(Self(out))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_id!(
    /// A node's identity: its ed25519 public key. The same key is the node's libp2p
    /// PeerId and iroh EndpointId; users see it as 64 hex digits.
    NodeId, 32, "node id"
);
hex_id!(
    /// A pack's stable id across versions: derived from the author's key and the slug.
    PackId, 16, "pack id"
);
hex_id!(
    /// A BLAKE3 hash of a blob (an audio file, a preview or a collection).
    BlobHash, 32, "blob hash"
);
hex_id!(
    /// The id of one issued license.
    LicenseId, 16, "license id"
);

impl PackId {
    /// The pack id of `slug` published by `author`.
    pub fn derive(author: &NodeId, slug: &str) -> PackId {
        let mut hasher = blake3::Hasher::new_derive_key("smpl/v1/pack-id");
        hasher.update(author.as_bytes());
        hasher.update(slug.as_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
        PackId(out)
    }
}

pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

pub(crate) fn hex_decode_into(s: &str, out: &mut [u8]) -> Result<(), &'static str> {
    let bytes = s.as_bytes();
    if bytes.len() != out.len() * 2 {
        return Err("wrong length");
    }
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Ok(())
}

pub(crate) fn hex_decode(s: &str) -> Result<Vec<u8>, &'static str> {
    if s.len() % 2 != 0 {
        return Err("odd number of hex digits");
    }
    let mut out = vec![0u8; s.len() / 2];
    hex_decode_into(s, &mut out)?;
    Ok(out)
}

fn nibble(c: u8) -> Result<u8, &'static str> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err("not a hex digit"),
    }
}
