//! The smpl wire protocol: identities, signed envelopes, every signed kind and the
//! messages that carry them.
//!
//! This crate is the specification of what travels between smpl nodes and what is
//! kept on disk as proof. It is pure and synchronous: no networking, no async.
//!
//! - [`NodeId`], [`PackId`], [`BlobHash`], [`LicenseId`]: fixed-size ids, each with one
//!   text form, lowercase hex (parsing also accepts upper case).
//! - [`Identity`]: a node's ed25519 secret key, which signs everything it publishes.
//!   Its public key is the node's [`NodeId`].
//! - [`Envelope`]: the signed envelope. A signer signs the exact body bytes behind a
//!   domain separator (`"smpl/v1/<kind>"`, a zero byte, then the body); readers check
//!   the size limits, then the signature, and only then decode the body. The
//!   [`Envelope`] docs give the byte layout and the order of checks.
//! - The signed kinds, each a JSON body implementing [`Signed`]:
//!
//!   | kind | struct | signed by | body limit |
//!   | --- | --- | --- | --- |
//!   | 1 `manifest` | [`Manifest`] (a pack and its samples) | `author` | [`limits::MAX_MANIFEST_BYTES`] |
//!   | 2 `retraction` | [`Retraction`] | `author` | [`limits::MAX_SMALL_BODY_BYTES`] |
//!   | 3 `purchase-request` | [`PurchaseRequest`] | `buyer` | [`limits::MAX_SMALL_BODY_BYTES`] |
//!   | 4 `license-token` | [`LicenseToken`] | `seller` | [`limits::MAX_LICENSE_BYTES`] |
//!
//! - [`collection`]: a pack's content hash, the one hash a manifest and a license
//!   token name the pack's files by: the iroh-blobs collection format (a metadata
//!   blob of file names and a hash sequence), defined byte for byte.
//! - [`certificate`]: the text form of a license a buyer keeps: the purchase in words,
//!   the licensed files, and the token itself between marker lines.
//! - [`limits`]: every size, count and length limit, checked before parsing (sizes)
//!   or right after decoding (counts and lengths).
//! - [`possession`]: how a provider proves it holds a blob without sending its
//!   bytes (before a buyer shows it a licence).
//! - [`sync`]: range-based set reconciliation of `(pack id, version)` items, the
//!   reconciliation messages `/smpl/sync/1` carries so a late joiner catches up on
//!   listings.
//! - [`wire`]: the request and response messages of the libp2p request-response
//!   protocols `/smpl/sync/1` and `/smpl/purchase/1`: their framing, CBOR encoding
//!   and size limits.
//!
//! A pack id is stable across versions: [`PackId::derive`] takes the first 16 bytes of
//! BLAKE3 in derive-key mode with context `"smpl/v1/pack-id"` over the author's 32-byte
//! key followed by the slug's bytes. Manifests and retractions carry the slug, so
//! every reader checks that the pack id belongs to the signer.
//!
//! ```
//! use smpl_protocol::{Identity, PackId, Retraction, Signed};
//!
//! let me = Identity::from_secret_bytes([7; 32]);
//! let retraction = Retraction {
//!     pack_id: PackId::derive(&me.node_id(), "dusty-808s"),
//!     author: me.node_id(),
//!     slug: "dusty-808s".into(),
//!     seq: 3,
//!     retracted_at: 1_700_000_000,
//! };
//! let envelope = retraction.sign(&me)?;
//! let (read, _) = Retraction::open(envelope.as_bytes())?;
//! assert_eq!(read, retraction);
//! # Ok::<(), smpl_protocol::ProtocolError>(())
//! ```

pub mod certificate;
mod check;
pub mod collection;
mod descriptor;
mod envelope;
mod error;
mod identity;
mod ids;
mod license;
pub mod limits;
mod manifest;
mod music;
pub mod possession;
mod purchase;
mod retraction;
pub mod sync;
pub mod wire;

pub use descriptor::{DESCRIPTOR_DIMS, Descriptor};
pub use envelope::{Envelope, Kind, Signed};
pub use error::ProtocolError;
pub use identity::Identity;
pub use ids::{BlobHash, LicenseId, NodeId, PackId};
pub use license::LicenseToken;
pub use manifest::{
    AudioFormat, LicenseTerms, Manifest, PaymentInfo, Price, SampleEntry, SampleKind, normalize_genre,
    slugify,
};
pub use music::{Key, Mode, Note, Source, Tempo};
pub use purchase::PurchaseRequest;
pub use retraction::Retraction;
