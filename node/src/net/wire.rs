//! Messages of the `/smpl/sync/1` request-response protocol (CBOR):
//!
//! - `Hello` exchanges iroh data-plane addresses (the iroh endpoint id is the same
//!   key as the libp2p peer id, so only socket addresses travel).
//! - `Reconcile` carries one round of range-based set reconciliation over the
//!   `(pack id, version)` items of both nodes (see `smpl_protocol::sync`).
//! - `Fetch` asks for the signed envelopes of listings the requester lacks; the
//!   answer carries the original envelope bytes, each verified by the receiver.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use smpl_protocol::PackId;

/// Most ids in one `Fetch`.
pub const MAX_FETCH_IDS: usize = 512;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SyncRequest {
    Hello { iroh: Vec<SocketAddr> },
    Reconcile(ByteBuf),
    Fetch(Vec<PackId>),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SyncResponse {
    Hello {
        iroh: Vec<SocketAddr>,
    },
    /// The next reconciliation message, or `None` when the responder is done.
    Reconcile(Option<ByteBuf>),
    Envelopes(Vec<ByteBuf>),
    Refused(String),
}
