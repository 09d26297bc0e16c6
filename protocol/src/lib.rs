//! The smpl wire protocol: identities, signed envelopes and every signed kind.
//!
//! This crate is the specification of what travels between smpl nodes and what is
//! kept on disk as proof. It is pure and synchronous: no networking, no async.
//!
//! - [`ids`]: the 32-byte node id (an ed25519 public key), pack ids and blob hashes,
//!   each with one lowercase-hex text form.
//! - [`Identity`]: a node's ed25519 secret key, which signs everything it publishes.
//! - [`envelope`]: the signed envelope. A signer signs the exact body bytes behind a
//!   domain separator (`"smpl/v1/<kind>"`, a zero byte, then the body); readers check
//!   the size limits, then the signature, and only then decode the body.
//! - The signed kinds: [`Manifest`] (a pack and its samples), [`Retraction`],
//!   [`PurchaseRequest`] and [`LicenseToken`].
//! - [`limits`]: every size, count and length limit, checked before parsing.

mod envelope;
mod error;
mod identity;
mod ids;
mod license;
pub mod limits;
mod manifest;
mod music;
mod purchase;
mod retraction;

pub use envelope::{Envelope, Kind, Signed};
pub use error::ProtocolError;
pub use identity::Identity;
pub use ids::{BlobHash, LicenseId, NodeId, PackId};
pub use license::LicenseToken;
pub use manifest::{AudioFormat, LicenseTerms, Manifest, Price, SampleEntry, SampleKind, slugify};
pub use music::{Key, Mode, Source, Tempo};
pub use purchase::PurchaseRequest;
pub use retraction::Retraction;
