//! Sound descriptors: the compact timbre, envelope and rhythm fingerprint a manifest
//! carries for each sample, so every node can answer "more like this" locally.
//!
//! A [`Descriptor`] is [`DESCRIPTOR_DIMS`] signed bytes, each one feature in
//! standard deviations × 32 (the node's analysis defines the features and their
//! scaling). On the wire it is 64 lowercase hex digits (two's complement bytes);
//! anything else is refused when the manifest is decoded. Two descriptors compare
//! by squared Euclidean distance in quantisation steps.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ProtocolError;

/// Number of dimensions of a [`Descriptor`].
pub const DESCRIPTOR_DIMS: usize = 32;

/// A quantised sound descriptor.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Descriptor(pub [i8; DESCRIPTOR_DIMS]);

impl Descriptor {
    /// Squared Euclidean distance, in quantisation steps squared: at most
    /// 32 × 255² = 2,080,800, so it never overflows. Written so the compiler turns it
    /// into widening SIMD multiply-adds.
    #[inline]
    pub fn distance(&self, other: &Descriptor) -> u32 {
        let mut sum = 0i32;
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            let d = i16::from(*a) - i16::from(*b);
            sum += i32::from(d) * i32::from(d);
        }
        sum.unsigned_abs()
    }

    pub fn to_bytes(&self) -> [u8; DESCRIPTOR_DIMS] {
        self.0.map(|v| v.to_ne_bytes()[0])
    }

    pub fn from_bytes(bytes: [u8; DESCRIPTOR_DIMS]) -> Descriptor {
        Descriptor(bytes.map(|b| i8::from_ne_bytes([b])))
    }
}

impl fmt::Display for Descriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::ids::hex_encode(&self.to_bytes()))
    }
}

impl fmt::Debug for Descriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Descriptor({self})")
    }
}

impl FromStr for Descriptor {
    type Err = ProtocolError;

    fn from_str(s: &str) -> Result<Descriptor, ProtocolError> {
        let mut bytes = [0u8; DESCRIPTOR_DIMS];
        crate::ids::hex_decode_into(s, &mut bytes).map_err(|reason| ProtocolError::Parse {
            what: "descriptor",
            input: s.chars().take(80).collect(),
            reason,
        })?;
        Ok(Descriptor::from_bytes(bytes))
    }
}

impl Serialize for Descriptor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Descriptor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Descriptor, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let mut d = Descriptor([0; DESCRIPTOR_DIMS]);
        d.0[0] = -1;
        d.0[1] = 127;
        d.0[31] = -128;
        let hex = d.to_string();
        assert_eq!(hex.len(), 64);
        assert!(hex.starts_with("ff7f"));
        assert_eq!(hex.parse::<Descriptor>().unwrap(), d);
        assert_eq!(hex.to_uppercase().parse::<Descriptor>().unwrap(), d);
        assert!(hex[..62].parse::<Descriptor>().is_err());
        assert!(format!("{}zz", &hex[..62]).parse::<Descriptor>().is_err());
        assert!(format!("{}é", &hex[..62]).parse::<Descriptor>().is_err());
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Descriptor>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Descriptor>("\"00\"").is_err());
        assert!(serde_json::from_str::<Descriptor>("[1,2]").is_err());
    }

    #[test]
    fn distance_properties() {
        let a = Descriptor([i8::MAX; DESCRIPTOR_DIMS]);
        let b = Descriptor([i8::MIN; DESCRIPTOR_DIMS]);
        let mut c = Descriptor([0; DESCRIPTOR_DIMS]);
        c.0[3] = 5;
        assert_eq!(a.distance(&a), 0);
        assert_eq!(a.distance(&b), 32 * 255 * 255);
        assert_eq!(a.distance(&b), b.distance(&a));
        assert_eq!(c.distance(&Descriptor([0; DESCRIPTOR_DIMS])), 25);
    }
}
