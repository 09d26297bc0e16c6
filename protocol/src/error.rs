use crate::envelope::Kind;

/// Why bytes were refused as a smpl message.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("{kind} is {len} bytes, over the limit of {max} bytes")]
    TooLarge { kind: &'static str, len: usize, max: usize },
    #[error("truncated or malformed envelope: {0}")]
    Malformed(&'static str),
    #[error("unknown envelope version {0}")]
    UnknownVersion(u8),
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    #[error("expected a {expected} envelope, got a {got}")]
    WrongKind { expected: Kind, got: Kind },
    #[error("bad signature on {0}: the body or signature was changed, or another key signed it")]
    BadSignature(Kind),
    #[error("invalid public key: {0}")]
    BadKey(String),
    #[error("cannot decode {kind} body: {source}")]
    Decode {
        kind: Kind,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid {kind}: {reason}")]
    Invalid { kind: Kind, reason: String },
    #[error("invalid {what} {input:?}: {reason}")]
    Parse { what: &'static str, input: String, reason: &'static str },
}
