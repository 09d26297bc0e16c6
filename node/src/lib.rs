//! The smpl node: the daemon behind the `smpl` command.
//!
//! Data flows one way through it:
//! **publish** (folder → [`smpl_audio`] analysis → [`Blobs`] → signed manifest → [`Store`]
//! → index queue → gossip + DHT provide), **receive** (gossip or sync → verify →
//! store → index queue), **search** (local API → [`smpl_index::Index`]) and
//! **fetch** (manifest → providers → verified iroh-blobs download → library) and
//! **buy** (signed order → seller's node → license token → stored and exported).
//!
//! The parts, from the leaves up (no module imports one that imports it back;
//! `scripts/module-cycles.py` checks):
//!
//! - `util`: one helper per idiom: the clock, random bytes, atomic durable file
//!   writes (`util::fs`), id-prefix lookup (`util::prefix`).
//! - [`home`]: the home directory, identity, config, `node.json` and `api.token`.
//! - [`Store`]: sled metadata (manifests, retractions, settings, the index queue).
//! - [`Blobs`]: the iroh-blobs file store holding samples and pack collections.
//! - `indexer`: the thread that drains the index queue into tantivy.
//! - [`publish`]: turning a folder into a signed pack.
//! - [`transfer`]: the data plane: the iroh endpoint serving the blob store, pack
//!   downloads from several providers, export to the library, sendme tickets.
//! - [`trade`]: buying and selling in one place: orders and licenses in sled
//!   (`trade::ledger`), the seller's policy and payment hook, license tokens and
//!   certificates, the paid-content gate (what may be served, from the provenance
//!   of every stored blob) and `trade::serving`, which records that provenance
//!   and decides what this node announces.
//! - [`net`]: the libp2p control plane (gossip, sync, Kademlia) as an actor;
//!   `net::host` is its port into the node ([`net::NodeHost`]), where every
//!   listing from the network is verified and stored ([`net::ingest`]).
//! - [`Node`]: the facade (`node/`): every operation the API offers, grouped by
//!   subsystem (catalog, fetch, trade, audition, recommend), and [`NodeError`]
//!   with what each error means for the caller ([`ErrorKind`], an HTTP status).
//! - [`web`]: the web app the node serves (pages, login, Host/Origin/CSRF checks,
//!   live events), over the facade.
//! - `api` and [`run`] (`daemon`): the local HTTP API over the facade, and running
//!   a node in the foreground.

mod api;
mod blobs;
pub mod budget;
mod daemon;
pub mod home;
mod indexer;
pub mod net;
mod node;
pub mod publish;
mod store;
pub mod trade;
pub mod transfer;
mod util;
pub mod web;

pub use blobs::{BlobError, Blobs};
pub use daemon::{run, run_with_web};
pub use home::{Config, Home, HomeError, MemoryConfig, NodeInfo};
pub use libp2p::Multiaddr;
pub use node::{
    BuyOutcome, CheckReport, Dropped, ErrorKind, FetchEvent, FetchOutcome, Node, NodeError, NodeOptions,
    PackView, Preview, Recommendation, Status,
};
pub use publish::{PublishEvent, PublishOutcome, PublishRequest, Skipped};
pub use smpl_index as index;
pub use smpl_index::{SearchQuery, SearchResults};
pub use store::{Accepted, Store, StoreError};
pub use trade::{LicenseView, Order, OrderStatus, SellerPolicy, TradeConfig};
pub use transfer::{DownloadProgress, Downloaded, Exported, ServeGate, Transfer, TransferError};
pub use util::memory::bound_allocator;
