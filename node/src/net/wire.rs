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
use smpl_protocol::{BlobHash, PackId};

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

/// Messages of the `/smpl/purchase/1` request-response protocol (CBOR). The
/// requester's node key is authenticated by the transport (noise or QUIC TLS), so
/// the answerer knows who asks.
///
/// - `Buy` carries a signed purchase request (its envelope bytes). The answer is
///   the order's state; sending the same request again is how a buyer asks about a
///   pending order (the order id is derived from the request bytes).
/// - `Present` shows a license token before fetching paid content; the answerer
///   lets this peer fetch the licensed content if the token is valid and names it
///   as the buyer, and it holds that content for that seller.
/// - `Prove` asks the answerer to show it holds a blob (see
///   [`smpl_protocol::possession`]): a buyer asks it before presenting a license
///   to a provider that is not the pack's author. Answered by `Proof`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum TradeRequest {
    Buy(ByteBuf),
    Present(ByteBuf),
    Prove { blob: BlobHash, chunk: u64 },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum TradeResponse {
    /// The license token's envelope bytes.
    Issued {
        order: String,
        license: ByteBuf,
    },
    Pending {
        order: String,
    },
    Rejected {
        order: String,
        reason: String,
    },
    /// A presented license was accepted.
    Accepted,
    /// The chaining values that prove possession of the asked chunk.
    Proof(Vec<ByteBuf>),
    /// The message itself was refused (malformed, forged, not from its signer).
    Refused(String),
}
