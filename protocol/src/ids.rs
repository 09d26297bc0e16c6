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
    if !s.len().is_multiple_of(2) {
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn node_id_text_round_trip(bytes in any::<[u8; 32]>()) {
            let id = NodeId(bytes);
            let text = id.to_string();
            prop_assert_eq!(text.len(), 64);
            prop_assert!(text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            prop_assert_eq!(text.parse::<NodeId>().unwrap(), id);
            prop_assert_eq!(text.to_uppercase().parse::<NodeId>().unwrap(), id);
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<NodeId>(&json).unwrap(), id);
        }

        #[test]
        fn other_ids_text_round_trip(a in any::<[u8; 16]>(), b in any::<[u8; 32]>()) {
            prop_assert_eq!(PackId(a).to_string().parse::<PackId>().unwrap(), PackId(a));
            prop_assert_eq!(LicenseId(a).to_string().parse::<LicenseId>().unwrap(), LicenseId(a));
            prop_assert_eq!(BlobHash(b).to_string().parse::<BlobHash>().unwrap(), BlobHash(b));
            prop_assert_eq!(hex_decode(&hex_encode(&b)).unwrap(), b.to_vec());
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,70}") {
            let _ = s.parse::<NodeId>();
            let _ = s.parse::<PackId>();
            let _ = hex_decode(&s);
        }
    }

    #[test]
    fn bad_text_is_refused() {
        let good = "ab".repeat(32);
        assert!(good.parse::<NodeId>().is_ok());
        for bad in [
            String::new(),
            "ab".repeat(31),
            "ab".repeat(33),
            format!("{}g", &good[..63]),
            format!("{}é", &good[..62]),
            format!(" {}", &good[..63]),
        ] {
            let err = bad.parse::<NodeId>().unwrap_err();
            assert!(err.to_string().contains("node id"), "{err}");
        }
        assert!(hex_decode("abc").is_err());
        assert!(serde_json::from_str::<PackId>("\"00\"").is_err());
        assert!(serde_json::from_str::<PackId>("17").is_err());
    }

    #[test]
    fn debug_and_display() {
        let id = PackId([0xab; 16]);
        assert_eq!(id.to_string(), "ab".repeat(16));
        assert_eq!(format!("{id:?}"), format!("PackId({})", "ab".repeat(16)));
    }

    #[test]
    fn pack_id_depends_on_author_and_slug() {
        let a = NodeId([1; 32]);
        let b = NodeId([2; 32]);
        assert_eq!(PackId::derive(&a, "kicks"), PackId::derive(&a, "kicks"));
        assert_ne!(PackId::derive(&a, "kicks"), PackId::derive(&b, "kicks"));
        assert_ne!(PackId::derive(&a, "kicks"), PackId::derive(&a, "kicks-2"));
    }
}
