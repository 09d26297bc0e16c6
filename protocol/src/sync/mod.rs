//! Range-based set reconciliation of listings: the `/smpl/sync/1` messages.
//!
//! Gossip reaches the nodes that are online; a node that starts later or was
//! partitioned catches up by reconciling its set of listing [`Item`]s with a peer's,
//! then fetches only the listings it lacks. This module is the algorithm and its wire
//! format, pure and synchronous; the node carries the encoded messages over a libp2p
//! request-response protocol and verifies every listing it then fetches.
//!
//! The algorithm is range-based set reconciliation as published by Aljoscha Meyer
//! ("Range-Based Set Reconciliation", 2023): two nodes compare fingerprints of ranges
//! of the id space, skip the ranges that agree, split the ones that disagree into
//! smaller ranges, and list the items of a range once it is small. Identical sets
//! cost one small message; `d` differences among `n` items cost
//! `O(d · log n)` bytes in `O(log n)` rounds.
//!
//! # Items
//!
//! An [`Item`] is a pack id and a version: `2·seq` for a manifest, `2·seq + 1` for a
//! retraction, so a higher `seq` wins and a retraction wins over the manifest of the
//! same `seq`. A node holds at most one item per pack id (its highest version). Items
//! are ordered by id, comparing the 16 bytes of the id lexicographically.
//!
//! # Ranges and bounds
//!
//! A message is a list of consecutive ranges [`RangePart`] of the id space. Each
//! range is `[lower, upper)`: its upper bound is on the wire, its lower bound is the
//! upper bound of the range before it, and the first range starts at the all-zero
//! id ([`Bound::MIN`]). A [`Bound`] is either a 16-byte point ([`Bound::At`], which
//! contains the id equal to it) or [`Bound::End`], above every id. Upper bounds
//! strictly increase. Whatever lies above the last range is skipped: the sender has
//! nothing to say about it. A message with no ranges says "nothing more from me".
//!
//! # What each range says, and the answer to it
//!
//! | payload | means | the receiver, for that range |
//! | --- | --- | --- |
//! | [`Payload::Skip`] | nothing to do here | does nothing |
//! | [`Payload::Fingerprint`] `{fingerprint, count}` | the sender's fingerprint and item count | equal to its own: nothing. Else, if it holds at most [`LIST_THRESHOLD`] items there: answers `ItemList`. Else, if the sender's count is at most [`LIST_THRESHOLD`]: answers its own `Fingerprint` for the whole range (so the sender lists). Else: splits its own items there into [`SPLIT_PARTS`] ranges of (nearly) equal item count and answers a `Fingerprint` for each, or an `ItemList` for one of at most [`SPLIT_LIST_THRESHOLD`] items |
//! | [`Payload::ItemList`] `{items}` | every item the sender holds in the range | now knows both sides: records its `need` and `have`, and answers `Diff` (or nothing when the lists are equal) |
//! | [`Payload::Diff`] `{items, missing}` | the answer to the receiver's `ItemList`: `items` are the sender's items whose version differs from the listed one or that were not listed; `missing` are listed ids the sender lacks. Ids not mentioned are held at equal versions | records its `need` and `have`; the range is finished |
//!
//! A node needs an id when the peer holds it at a higher version or it lacks it, and
//! has one when it holds it at a higher version or the peer lacks it ([`Outcome`]).
//! Both sides learn both lists exactly. The exchange is stateless: each answer depends
//! only on the message and the local set, so each round may use a fresh
//! [`Reconciler`], and it ends when a side has nothing to send
//! ([`Reconciler::respond`] returns `None`).
//!
//! [`Reconciler::initiate`] opens with one range over the whole id space: an
//! `ItemList` when the node holds at most [`LIST_THRESHOLD`] items, else a
//! `Fingerprint`.
//!
//! An answer never passes the size limits below. When it would, the sender stops
//! within the range it could not fit and carries the rest over: each run of the
//! remaining received ranges that asked for an answer (`Fingerprint`, `ItemList`)
//! gets the sender's `Fingerprint` of that run, for the peer to answer in the next
//! round, while the ranges the peer had finished stay skipped (and a `Diff` among
//! them is still learned from). At most 32 ranges carry the rest over; past that,
//! the last `Fingerprint` runs up to the last range that asked, and finished ranges
//! inside it are reconciled again. Only then can an id show up in the outcomes of
//! two rounds, so callers who accumulate outcomes deduplicate
//! ([`Outcome::merge`] does).
//!
//! # Fingerprints
//!
//! The fingerprint of a set of items, [`Fingerprint::of`], is incremental and does
//! not depend on order:
//!
//! 1. each item hashes to `h = BLAKE3-derive-key("smpl/v1/sync-item", id ‖ version)`,
//!    the 16 id bytes followed by the version as 8 bytes little-endian (32 bytes out);
//! 2. the hashes are summed as four 64-bit little-endian lanes, each lane added
//!    modulo 2⁶⁴ (bytes `8k..8k+8` of `h` are lane `k`);
//! 3. the fingerprint is the first 16 bytes of
//!    `BLAKE3-derive-key("smpl/v1/sync-fingerprint", sum ‖ count)`: the four lanes as
//!    32 bytes little-endian, then the item count as 8 bytes little-endian.
//!
//! The empty set has the fingerprint of the all-zero sum and count 0.
//!
//! # Encoding
//!
//! Compact binary. `varint` is unsigned LEB128 (7 bits a byte, least significant
//! group first, high bit set on every byte but the last), at most 10 bytes, in its
//! shortest form, and at most `u64::MAX`. An id is its 16 bytes.
//!
//! ```text
//! message  = version:u8 (= 1)  range-count:varint  range*
//! range    = bound  tag:u8  payload
//! bound    = 0xff                                   Bound::End
//!          | len:u8 (0..=16)  byte*len              Bound::At: the first len bytes of
//!                                                   the point, the rest are zero; the
//!                                                   last written byte is not zero
//! payload  = (tag 0) nothing                        Skip
//!          | (tag 1) fingerprint:16 bytes  count:varint
//!          | (tag 2) n:varint  item*n               ItemList
//!          | (tag 3) n:varint  item*n  m:varint  id*m   Diff (items, then missing)
//! item     = id:16 bytes  version:varint
//! ```
//!
//! A reader refuses ([`SyncError`]), before looking at anything else, input longer
//! than [`MAX_MESSAGE_BYTES`]; then a version other than [`SYNC_VERSION`], more
//! than [`MAX_RANGES`] ranges, or more than [`MAX_LIST_ITEMS`] items (plus missing
//! ids) in one range, each checked before anything is allocated for them; then
//! anything out of order: bounds that do not strictly increase, ids that do not
//! strictly increase or fall outside their range, an id both in a `Diff`'s items
//! and its missing ids, an empty `Diff`, a `Skip` right after a `Skip` or at the
//! end, an unknown tag, a non-canonical bound or varint, and trailing bytes. So
//! every accepted message re-encodes to the same bytes.
//!
//! ```
//! use smpl_protocol::PackId;
//! use smpl_protocol::sync::{Item, Reconciler, SyncMessage};
//!
//! let mine: Vec<Item> = (0u8..40).map(|i| Item { id: PackId([i; 16]), version: 2 }).collect();
//! let mut theirs = mine.clone();
//! theirs[7].version = 4; // the peer has a newer manifest of one pack
//!
//! let (me, peer) = (Reconciler::new(&mine), Reconciler::new(&theirs));
//! let mut message = me.initiate().encode();
//! let mut mine_turn = false;
//! let mut need = Vec::new();
//! loop {
//!     let side = if mine_turn { &me } else { &peer };
//!     let (next, outcome) = side.respond(&SyncMessage::decode(&message)?)?;
//!     if mine_turn {
//!         need.extend(outcome.need);
//!     }
//!     match next {
//!         Some(next) => message = next.encode(),
//!         None => break,
//!     }
//!     mine_turn = !mine_turn;
//! }
//! assert_eq!(need, vec![Item { id: PackId([7; 16]), version: 4 }]);
//! # Ok::<(), smpl_protocol::sync::SyncError>(())
//! ```

mod fingerprint;
mod message;
mod reconcile;

pub use fingerprint::Fingerprint;
pub use message::{Bound, Payload, RangePart, SyncMessage};
pub use reconcile::{Outcome, Reconciler};

use serde::{Deserialize, Serialize};

use crate::PackId;

/// The first byte of every sync message.
pub const SYNC_VERSION: u8 = 1;
/// Largest encoded sync message; longer input is refused before parsing.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Most ranges in one message.
pub const MAX_RANGES: usize = 4096;
/// Most items in one `ItemList`, and most items plus missing ids in one `Diff`.
pub const MAX_LIST_ITEMS: usize = 1024;
/// A node answers a differing range with its items when it holds at most this many.
pub const LIST_THRESHOLD: usize = 16;
/// A differing range with more items is split into this many ranges.
pub const SPLIT_PARTS: usize = 16;
/// A range of a split with at most this many items is sent as an `ItemList`.
pub const SPLIT_LIST_THRESHOLD: usize = 2;

// The splitting rule relies on every part of a split range being non-empty.
const _: () = assert!(
    LIST_THRESHOLD >= SPLIT_PARTS
        && LIST_THRESHOLD <= MAX_LIST_ITEMS
        && SPLIT_LIST_THRESHOLD <= LIST_THRESHOLD
);

/// One listing as the reconciliation sees it: a pack id and its version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Item {
    pub id: PackId,
    /// `2·seq` for a manifest, `2·seq + 1` for a retraction; higher wins.
    pub version: u64,
}

impl Item {
    /// The item of a manifest with this `seq` (saturating at `u64::MAX`).
    pub fn manifest(id: PackId, seq: u64) -> Item {
        Item { id, version: seq.saturating_mul(2) }
    }

    /// The item of a retraction with this `seq` (saturating at `u64::MAX`).
    pub fn retraction(id: PackId, seq: u64) -> Item {
        Item { id, version: seq.saturating_mul(2).saturating_add(1) }
    }
}

/// Why a sync message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("sync message is {len} bytes, over the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("unknown sync message version {0} (this node speaks version {SYNC_VERSION})")]
    UnknownVersion(u8),
    #[error("sync message has {count} ranges, over the limit of {max}")]
    TooManyRanges { count: u64, max: usize },
    #[error("range {range} of the sync message lists {count} items, over the limit of {max}")]
    TooManyItems { range: usize, count: u64, max: usize },
    #[error("malformed sync message at byte {offset}: {reason}")]
    Malformed { offset: usize, reason: &'static str },
    #[error("invalid sync message, range {range}: {reason}")]
    Invalid { range: usize, reason: &'static str },
}

/// The opening message of a session over `items`, encoded.
///
/// `items` need not be sorted; see [`Reconciler::new`].
pub fn initiate(items: &[Item]) -> Vec<u8> {
    Reconciler::new(items).initiate().encode()
}

/// Answers the encoded `message` from a peer with the local `items`: the encoded
/// answer (`None` when this side is done) and the listings this side needs (at
/// the peer's version), learned from this message.
pub fn respond(items: &[Item], message: &[u8]) -> Result<(Option<Vec<u8>>, Vec<Item>), SyncError> {
    let message = SyncMessage::decode(message)?;
    let (next, outcome) = Reconciler::new(items).respond(&message)?;
    Ok((next.map(|m| m.encode()), outcome.need))
}
