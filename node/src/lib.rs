//! The smpl node: the daemon behind the `smpl` command.
//!
//! Data flows one way through it:
//! **publish** (folder → [`audio`] analysis → [`Blobs`] → signed manifest → [`Store`]
//! → index queue) and **search** (local API → [`smpl_index::Index`]).
//!
//! - [`home`]: the home directory, identity, config, `node.json` and `api.token`.
//! - [`Store`]: sled metadata (manifests, retractions, settings, the index queue).
//! - [`Blobs`]: the iroh-blobs file store holding samples and pack collections.
//! - [`audio`]: decoding and analysis of WAV, FLAC, AIFF, OGG and MP3.
//! - [`publish`]: turning a folder into a signed pack.
//! - `indexer`: the thread that drains the index queue into tantivy.
//! - [`Node`]: ties the parts together; [`run`] serves it over the local HTTP API.

pub mod audio;
mod api;
mod blobs;
mod daemon;
pub mod home;
mod indexer;
mod node;
pub mod publish;
mod store;

pub use blobs::{BlobError, Blobs};
pub use daemon::run;
pub use home::{Config, Home, HomeError, NodeInfo};
pub use node::{CheckReport, Node, NodeError, NodeOptions, PackView};
pub use publish::{PublishEvent, PublishOutcome, PublishRequest, Skipped};
pub use smpl_index as index;
pub use smpl_index::{SearchQuery, SearchResults};
pub use store::{Accepted, Store, StoreError};
