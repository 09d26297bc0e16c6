//! The messages of the two libp2p request-response protocols, `/smpl/sync/1`
//! (listings) and `/smpl/purchase/1` (trade), and how they are framed, encoded and
//! bounded.
//!
//! # Framing
//!
//! Each request opens a fresh libp2p stream, negotiated for the protocol name. The
//! requester writes one request and closes its side. The responder writes one
//! response and closes its side. There is no length prefix: a message ends where its
//! stream ends. A reader reads at most the size limit of that message (table below)
//! and decodes what it read, so a longer message is cut off and fails to decode.
//! A reader ignores any bytes after the first complete CBOR item. A writer sends
//! exactly one item.
//!
//! The requester's node key is authenticated by the transport (noise or QUIC TLS),
//! and it is the same key as its [`NodeId`](crate::NodeId), so a responder knows who
//! asks without any signature in the request.
//!
//! # Encoding
//!
//! CBOR ([RFC 8949]), as serde writes these types through `cbor4ii`, the encoder of
//! libp2p's `request_response::cbor` codec. Enums are externally tagged:
//!
//! - a variant without data is a text string, its name: `"Accepted"`;
//! - a variant with one value is a map of one entry, the name mapped to the value:
//!   `{"Fetch": [..]}`;
//! - a variant with named fields is a map of one entry, the name mapped to a map of
//!   its fields by name, in the order they are declared here:
//!   `{"Prove": {"blob": .., "chunk": ..}}`.
//!
//! The values inside:
//!
//! | Rust type | CBOR |
//! | --- | --- |
//! | [`ByteBuf`] (opaque bytes: envelopes, sync messages, hashes) | byte string (major type 2) |
//! | `String` | text string (major type 3) |
//! | `u64` | unsigned integer (major type 0) |
//! | `Option<T>` | `null` (`0xf6`) for `None`, the value itself for `Some` |
//! | `Vec<T>` | array |
//! | [`PackId`], [`BlobHash`] | text string: the id's one text form, lowercase hex (32 or 64 digits) |
//! | `SocketAddr` | `{"V4": [[a, b, c, d], port]}` or `{"V6": [[16 octets], port]}`; the IPv6 flow info and scope id are not sent |
//!
//! Every array, map and string has a definite length, and every length and integer
//! takes its shortest form. The golden bytes in `protocol/tests/wire.rs` pin one
//! value of every variant.
//!
//! # Limits
//!
//! | message | at most | why |
//! | --- | --- | --- |
//! | a [`SyncRequest`] | [`MAX_SYNC_REQUEST_BYTES`] (1 MiB) | a `Reconcile` carries at most [`sync::MAX_MESSAGE_BYTES`]; an `Announce`, one envelope that fits (larger ones travel by gossip and sync alone) |
//! | a [`SyncResponse`] | [`MAX_SYNC_RESPONSE_BYTES`] (16 MiB) | `Envelopes` carries whole manifests in batches |
//! | a [`TradeRequest`] or [`TradeResponse`] | [`MAX_TRADE_MESSAGE_BYTES`] (64 KiB) | each carries one purchase request or license token |
//! | ids in a `Fetch`, envelopes in an `Envelopes` | [`MAX_FETCH_IDS`] | a responder answers only the first ones, a reader takes only the first ones |
//! | bytes of a `Reconcile` message | [`sync::MAX_MESSAGE_BYTES`] | checked by [`sync::SyncMessage::decode`] |
//! | bytes of an envelope | [`limits::MAX_ENVELOPE_BYTES`] and the limit of its kind | checked by [`Envelope::open`](crate::Envelope::open) |
//! | hashes in a `Proof` | [`possession::MAX_PROOF_HASHES`], 32 bytes each | checked by [`possession::verify`] |
//!
//! An `Envelopes` answer longer than [`MAX_SYNC_RESPONSE_BYTES`] does not decode at
//! the requester, so a responder leaves out the envelopes that would not fit; the
//! requester finds those ids missing again at its next reconciliation.
//!
//! # `/smpl/sync/1`: how a node catches up on listings
//!
//! | request | answers |
//! | --- | --- |
//! | [`SyncRequest::Hello`] | [`SyncResponse::Hello`] |
//! | [`SyncRequest::Reconcile`] | [`SyncResponse::Reconcile`], or [`SyncResponse::Refused`] for a malformed message |
//! | [`SyncRequest::Fetch`] | [`SyncResponse::Envelopes`] |
//! | [`SyncRequest::Announce`] | [`SyncResponse::Received`], or [`SyncResponse::Refused`] for a listing the requester did not sign or that fails its checks |
//!
//! Any request may also be answered [`SyncResponse::Refused`] (a banned peer, say).
//! After connecting, a node greets its peer with `Hello`, then reconciles its
//! listings with it (`Reconcile` rounds, see [`sync`]), then fetches the listings it
//! lacks (`Fetch`). Every fetched envelope is verified by the receiver like one
//! from gossip; a peer that serves an invalid one is banned.
//!
//! When a node signs a listing (a new pack, an update, a retraction), it gossips it
//! and also sends it to each peer it greeted in an `Announce`: gossip queues what a
//! node publishes behind what it forwards, so under a flood of others' listings
//! its own would wait. A responder takes an `Announce` only when the requester
//! signed the listing itself, checks it like one from gossip, and gossips a new
//! one on. A node older than `Announce` fails to decode it and drops the stream;
//! the listing reaches that node by gossip and sync as before.
//!
//! # `/smpl/purchase/1`: buying, showing a licence, proving possession
//!
//! | request | answers |
//! | --- | --- |
//! | [`TradeRequest::Buy`] | [`TradeResponse::Issued`], [`TradeResponse::Pending`], [`TradeResponse::Rejected`] |
//! | [`TradeRequest::Present`] | [`TradeResponse::Accepted`] |
//! | [`TradeRequest::Prove`] | [`TradeResponse::Proof`] |
//!
//! Any request may also be answered [`TradeResponse::Refused`]: the message itself
//! was refused (malformed, forged, not signed by the requester, or the responder is
//! busy). A seller may wait for its payment hook before it answers a `Buy`.
//!
//! [RFC 8949]: https://www.rfc-editor.org/rfc/rfc8949

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
pub use serde_bytes::ByteBuf;

use crate::{BlobHash, PackId};
#[cfg(doc)]
use crate::{limits, possession, sync};

/// The largest [`SyncRequest`] a node reads, in bytes.
pub const MAX_SYNC_REQUEST_BYTES: u64 = 1024 * 1024;
/// The largest [`SyncResponse`] a node reads, in bytes.
pub const MAX_SYNC_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;
/// The largest [`TradeRequest`] or [`TradeResponse`] a node reads, in bytes.
pub const MAX_TRADE_MESSAGE_BYTES: u64 = 64 * 1024;
/// The largest envelope a node sends in a [`SyncRequest::Announce`], in bytes:
/// what fits a request with room for its encoding.
pub const MAX_ANNOUNCED_BYTES: usize = MAX_SYNC_REQUEST_BYTES as usize - 64;
/// Most ids in one [`SyncRequest::Fetch`], and most envelopes in one
/// [`SyncResponse::Envelopes`].
pub const MAX_FETCH_IDS: usize = 512;

/// An iroh relay a node runs for its peers: HTTPS on TCP `port` of the address
/// the receiver reaches the node at, with a self-signed certificate whose BLAKE3
/// hash is `cert` (the receiver trusts exactly that certificate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayOffer {
    pub port: u16,
    #[serde(with = "serde_bytes")]
    pub cert: [u8; 32],
}

/// The iroh relay a node is homed at: its URL and certificate hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayHome {
    pub url: String,
    #[serde(with = "serde_bytes")]
    pub cert: [u8; 32],
}

/// A request of `/smpl/sync/1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// The requester's iroh data-plane addresses (its iroh endpoint id is its node
    /// key, so only socket addresses travel), and its relays. Answered by
    /// [`SyncResponse::Hello`]; sent again when its home relay changes.
    Hello {
        iroh: Vec<SocketAddr>,
        /// The iroh relay the requester runs for its peers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        relay: Option<RelayOffer>,
        /// The relay the requester's endpoint is homed at: where it is reached
        /// when no direct path works.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        home: Option<RelayHome>,
    },
    /// One round of range-based set reconciliation over the `(pack id, version)`
    /// items of both nodes: a message encoded as [`sync`] specifies.
    Reconcile(ByteBuf),
    /// The ids of listings the requester lacks, at most [`MAX_FETCH_IDS`].
    Fetch(Vec<PackId>),
    /// The bytes of a signed envelope (a manifest or a retraction) the requester
    /// just signed with its own node key.
    Announce(ByteBuf),
}

/// A response of `/smpl/sync/1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// The responder's iroh data-plane addresses and relays, as in
    /// [`SyncRequest::Hello`].
    Hello {
        iroh: Vec<SocketAddr>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        relay: Option<RelayOffer>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        home: Option<RelayHome>,
    },
    /// The next reconciliation message, or `None` when the responder has nothing
    /// more to say.
    Reconcile(Option<ByteBuf>),
    /// For each asked id the responder holds, in the order asked, the original
    /// bytes of the newest signed envelope it holds for that pack (a manifest, or
    /// the retraction that replaced it). Ids it does not hold are left out.
    Envelopes(Vec<ByteBuf>),
    /// The announced listing was checked: taken now, held already, or declined by
    /// the responder's listing budget.
    Received,
    /// The request was refused, and why.
    Refused(String),
}

impl SyncResponse {
    /// The answer of a peer that offers nothing: no addresses or relays, nothing
    /// more to reconcile, no envelopes.
    pub fn nothing_for(request: &SyncRequest) -> SyncResponse {
        match request {
            SyncRequest::Hello { .. } => SyncResponse::Hello { iroh: vec![], relay: None, home: None },
            SyncRequest::Reconcile(_) => SyncResponse::Reconcile(None),
            SyncRequest::Fetch(_) => SyncResponse::Envelopes(vec![]),
            SyncRequest::Announce(_) => SyncResponse::Received,
        }
    }
}

/// A request of `/smpl/purchase/1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TradeRequest {
    /// The envelope bytes of a signed [`PurchaseRequest`](crate::PurchaseRequest),
    /// signed by the requester. The answer is the order's state. Sending the same
    /// request again is how a buyer asks about a pending order: the order id is the
    /// first 16 lowercase hex digits of BLAKE3 over these bytes.
    Buy(ByteBuf),
    /// The envelope bytes of a [`LicenseToken`](crate::LicenseToken), shown before
    /// fetching paid content. The responder lets this peer fetch the licensed
    /// content if the token is valid, names the requester as its buyer, and the
    /// responder holds that content for that seller.
    Present(ByteBuf),
    /// Asks the responder to show it holds chunk `chunk` of blob `blob`, as
    /// [`possession`] specifies. A buyer asks it before presenting a licence to a
    /// provider that is not the pack's author.
    Prove { blob: BlobHash, chunk: u64 },
}

/// A response of `/smpl/purchase/1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TradeResponse {
    /// The order was approved: the license token's envelope bytes.
    Issued { order: String, license: ByteBuf },
    /// The order waits for the seller (or its payment hook).
    Pending { order: String },
    /// The seller declined the order, and why.
    Rejected { order: String, reason: String },
    /// A presented licence was accepted.
    Accepted,
    /// The chaining values that prove possession of the asked chunk, 32 bytes each:
    /// the siblings along the path from the root, top-down, then the chunk's own
    /// (see [`possession::verify`]).
    Proof(Vec<ByteBuf>),
    /// The message itself was refused (malformed, forged, not from its signer, or
    /// the responder is busy), and why.
    Refused(String),
}
