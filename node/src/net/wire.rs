//! The messages of the `/smpl/sync/1` and `/smpl/purchase/1` request-response
//! protocols, carried by libp2p's CBOR codec. They are part of the wire spec, so they
//! live in the protocol crate: [`smpl_protocol::wire`] specifies each message, its
//! framing, its encoding and its limits, and pins them with golden bytes.

pub use smpl_protocol::wire::*;
