//! The smpl node: the daemon behind the `smpl` command.
//!
//! Data flows one way through it:
//! **publish** (folder → [`smpl_audio`] analysis → [`Blobs`] → signed manifest → [`Store`]
//! → index queue → gossip + DHT provide), **receive** (gossip or sync → verify →
//! store → index queue), **search** (local API → [`smpl_index::Index`]) and
//! **fetch** (manifest → providers → verified iroh-blobs download → library) and
//! **buy** (signed order → seller's node → license token → stored and exported).
//!
//! - [`home`]: the home directory, identity, config, `node.json` and `api.token`.
//! - [`Store`]: sled metadata (manifests, retractions, settings, the index queue).
//! - [`Blobs`]: the iroh-blobs file store holding samples and pack collections.
//! - [`publish`]: turning a folder into a signed pack.
//! - [`transfer`]: the data plane: the iroh endpoint serving the blob store, pack
//!   downloads from several providers, export to the library, sendme tickets.
//! - `indexer`: the thread that drains the index queue into tantivy.
//! - [`net`]: the libp2p control plane (gossip, sync, Kademlia) as an actor;
//!   `listings` is the node's side of it: every listing from the network is
//!   verified and stored there.
//! - [`trade`]: buying and selling: orders, the seller's policy and payment hook,
//!   license tokens and certificates, and the paid-content gate (what may be
//!   served, from the provenance of every stored blob; `serving` records it and
//!   decides what this node announces); `ledger` keeps
//!   orders and licenses in sled, `purchases` is the node's async side of it.
//! - [`Node`]: ties the parts together; [`run`] serves it over the local HTTP API.

mod api;
mod audition;
mod blobs;
mod daemon;
pub mod home;
mod indexer;
mod ledger;
mod listings;
pub mod net;
mod node;
pub mod publish;
mod purchases;
mod recommend;
mod serving;
mod store;
pub mod trade;
pub mod transfer;

pub use audition::Preview;
pub use blobs::{BlobError, Blobs};
pub use daemon::run;
pub use home::{Config, Home, HomeError, NodeInfo};
pub use ledger::{Order, OrderStatus};
pub use libp2p::Multiaddr;
pub use node::{CheckReport, FetchEvent, FetchOutcome, Node, NodeError, NodeOptions, PackView};
pub use publish::{PublishEvent, PublishOutcome, PublishRequest, Skipped};
pub use purchases::BuyOutcome;
pub use recommend::Recommendation;
pub use smpl_index as index;
pub use smpl_index::{SearchQuery, SearchResults};
pub use store::{Accepted, Store, StoreError};
pub use trade::{LicenseView, SellerPolicy, TradeConfig};
pub use transfer::{DownloadProgress, Downloaded, Exported, ServeGate, Transfer, TransferError};
