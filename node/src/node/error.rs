//! What a node operation can fail with, grouped by what the caller does next.
//!
//! Each [`NodeError`] has an [`ErrorKind`] ([`NodeError::kind`]), and each kind
//! one HTTP status, which the local API answers with:
//!
//! | kind | status | the caller |
//! | --- | --- | --- |
//! | [`NotFound`](ErrorKind::NotFound) | 404 | names something this node does not have: a pack, a sample, an order, a license |
//! | [`BadRequest`](ErrorKind::BadRequest) | 400 | asked for something that cannot be done as asked: an ambiguous prefix, a bad query, a ticket of a paid pack, buying its own pack |
//! | [`Forbidden`](ErrorKind::Forbidden) | 403 | is not allowed: retracting another author's pack; no provider accepted its license |
//! | [`PaymentRequired`](ErrorKind::PaymentRequired) | 402 | needs a license first (`smpl buy`) |
//! | [`Conflict`](ErrorKind::Conflict) | 409 | acts on something in another state: an order no longer pending, a home in use, content not stored yet |
//! | [`Unavailable`](ErrorKind::Unavailable) | 503 | may try again later: the node is offline, no provider is reachable, a peer did not answer |
//! | [`BadPeer`](ErrorKind::BadPeer) | 502 | met another node that answered with something unusable (a bad license, content unlike its manifest) |
//! | [`Internal`](ErrorKind::Internal) | 500 | met a failure of this node: its disk, its stores, a task |

use axum::http::StatusCode;
use smpl_index::IndexError;
use smpl_protocol::{NodeId, PackId};

use crate::blobs::BlobError;
use crate::home::HomeError;
use crate::net::NetError;
use crate::store::StoreError;
use crate::trade::{ServingError, TradeError};
use crate::transfer::TransferError;

/// What the caller of a failed operation does next; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    BadRequest,
    Forbidden,
    PaymentRequired,
    Conflict,
    Unavailable,
    BadPeer,
    Internal,
}

impl ErrorKind {
    /// The HTTP status the local API answers with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::PaymentRequired => StatusCode::PAYMENT_REQUIRED,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::BadPeer => StatusCode::BAD_GATEWAY,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    // Not found (404).
    #[error("no pack {0} here")]
    UnknownPack(PackId),
    #[error(
        "no pack matches {0:?} (give a pack id or a unique prefix of one; `smpl search --packs` lists them)"
    )]
    NoSuchPack(String),
    #[error("pack {pack}: {sample:?}: {why}")]
    NoSample { pack: PackId, sample: String, why: &'static str },
    #[error("pack {pack} was retracted by its author on {on}")]
    Retracted { pack: PackId, on: String },

    // Bad request (400).
    #[error("{0:?} matches several packs; give more of the pack id")]
    Ambiguous(String),
    #[error("pack {pack}: {sample:?} matches several samples ({candidates}); give more of the name")]
    AmbiguousSample { pack: PackId, sample: String, candidates: String },
    #[error("pack {0} is paid; only free packs can be shared as a ticket")]
    NotFree(PackId),
    #[error("pack {0} is your own; there is nothing to buy")]
    OwnPack(PackId),
    #[error("{addr:?} is not a peer address: {why}")]
    BadAddress { addr: String, why: String },

    // Forbidden (403).
    #[error("pack {pack} belongs to {author}; only its author can retract it")]
    NotYours { pack: PackId, author: NodeId },
    #[error("no provider of pack {pack} accepted our license: {reasons}")]
    LicenseRefused { pack: PackId, reasons: String },

    // Payment required (402).
    #[error(
        "license required: {title:?} costs {price} and this node holds no license for its version {seq}; \
         buy it with `smpl buy {pack}`"
    )]
    LicenseRequired { pack: PackId, title: String, price: String, seq: u64 },
    #[error(
        "version {seq} of {title:?} is a paid upgrade: your licence of version {held} does not cover it; \
         it costs {price}, buy it with `smpl buy {pack}`"
    )]
    PaidUpgrade { pack: PackId, title: String, price: String, seq: u64, held: u64 },

    // Conflict (409).
    #[error("another node is already running for {home} ({reason})")]
    Locked { home: String, reason: String },

    // Unavailable (503).
    #[error("this node runs without a network")]
    Offline,
    #[error("no reachable node serves pack {0} right now; try again when its author or a buyer is online")]
    NoProviders(PackId),
    #[error("could not connect to {0} within 10 s; is the node running, and is that its address now?")]
    Unreachable(String),
    #[error("the stored copy of {file:?} is damaged and could not be fetched again: {reason}")]
    CannotRestore { file: String, reason: String },

    // Internal (500).
    #[error("signing failed: {0}")]
    Sign(#[from] smpl_protocol::ProtocolError),
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("could not run a background thread: {0}")]
    Thread(#[source] std::io::Error),

    // A part of the node failed; its error tells which kind.
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("search index: {0}")]
    Index(#[from] IndexError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Transfer(#[from] TransferError),
    #[error(transparent)]
    Trade(#[from] TradeError),
    #[error(transparent)]
    Serving(#[from] ServingError),
}

impl NodeError {
    /// What the caller does next, and so the API's HTTP status.
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind::*;
        match self {
            NodeError::UnknownPack(_)
            | NodeError::NoSuchPack(_)
            | NodeError::NoSample { .. }
            | NodeError::Retracted { .. } => NotFound,
            NodeError::Ambiguous(_)
            | NodeError::AmbiguousSample { .. }
            | NodeError::NotFree(_)
            | NodeError::OwnPack(_)
            | NodeError::BadAddress { .. } => BadRequest,
            NodeError::NotYours { .. } | NodeError::LicenseRefused { .. } => Forbidden,
            NodeError::LicenseRequired { .. } | NodeError::PaidUpgrade { .. } => PaymentRequired,
            NodeError::Locked { .. } => Conflict,
            NodeError::Offline
            | NodeError::NoProviders(_)
            | NodeError::Unreachable(_)
            | NodeError::CannotRestore { .. } => Unavailable,
            NodeError::Sign(_)
            | NodeError::Task(_)
            | NodeError::Thread(_)
            | NodeError::Store(_)
            | NodeError::Blob(_) => Internal,
            NodeError::Home(e) => match e {
                HomeError::NotRunning { .. } => Unavailable,
                HomeError::Io { .. } | HomeError::BadIdentity { .. } | HomeError::BadConfig { .. } => {
                    Internal
                }
            },
            NodeError::Index(e) => match e {
                IndexError::NoSample { .. } => NotFound,
                IndexError::BadQuery { .. }
                | IndexError::AmbiguousSample { .. }
                | IndexError::NoDescriptor { .. } => BadRequest,
                IndexError::Locked { .. } => Conflict,
                _ => Internal,
            },
            NodeError::Net(e) => match e {
                NetError::Stopped | NetError::NoAnswer { .. } => Unavailable,
                NetError::Build(_) | NetError::Listen { .. } | NetError::Threads(_) => Internal,
            },
            NodeError::Transfer(e) => transfer_kind(e),
            NodeError::Trade(e) => trade_kind(e),
            NodeError::Serving(e) => match e {
                ServingError::Trade(e) => trade_kind(e),
                ServingError::Blob(_) | ServingError::Store(_) | ServingError::Task(_) => Internal,
            },
        }
    }
}

fn transfer_kind(e: &TransferError) -> ErrorKind {
    use ErrorKind::*;
    match e {
        TransferError::NoProviders { .. } | TransferError::Unavailable { .. } => Unavailable,
        TransferError::NotACollection { .. }
        | TransferError::Mismatch { .. }
        | TransferError::BadName { .. } => BadPeer,
        TransferError::Incomplete { .. } | TransferError::Damaged { .. } => Conflict,
        TransferError::Bind { .. }
        | TransferError::InvalidRelay { .. }
        | TransferError::Io { .. }
        | TransferError::Store { .. }
        | TransferError::Task(_) => Internal,
    }
}

fn trade_kind(e: &TradeError) -> ErrorKind {
    use ErrorKind::*;
    match e {
        TradeError::UnknownOrder(_) | TradeError::NoLicense(_) => NotFound,
        TradeError::Ambiguous(_) => BadRequest,
        TradeError::NotPending { .. } | TradeError::AlreadyLicensed { .. } => Conflict,
        TradeError::BadLicense(_) => BadPeer,
        TradeError::Store(_) | TradeError::Sign(_) | TradeError::Io { .. } => Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_cases_are_not_internal() {
        let pack = PackId([1; 16]);
        let cases = [
            (NodeError::UnknownPack(pack), StatusCode::NOT_FOUND),
            (NodeError::Ambiguous("ab12".into()), StatusCode::BAD_REQUEST),
            (NodeError::NotYours { pack, author: NodeId([2; 32]) }, StatusCode::FORBIDDEN),
            (
                NodeError::LicenseRequired { pack, title: "T".into(), price: "5 USD".into(), seq: 1 },
                StatusCode::PAYMENT_REQUIRED,
            ),
            (NodeError::NoProviders(pack), StatusCode::SERVICE_UNAVAILABLE),
            (NodeError::Offline, StatusCode::SERVICE_UNAVAILABLE),
            (
                NodeError::Trade(TradeError::NotPending { order: "ab".into(), state: "issued".into() }),
                StatusCode::CONFLICT,
            ),
            (NodeError::Trade(TradeError::UnknownOrder("ab".into())), StatusCode::NOT_FOUND),
            (NodeError::Store(StoreError::Unreadable("x".into())), StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (error, status) in cases {
            assert_eq!(error.kind().status(), status, "{error}");
        }
    }
}
