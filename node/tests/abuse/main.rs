//! A node under attack by peers that speak its protocols.
//!
//! The "evil" peers are real libp2p swarms built with the node's own `build_swarm` and
//! driven by hand on 127.0.0.1 (mDNS off). They send at least 10,000 randomized bad
//! listings each way — over gossip on `smpl/listings/1`, and in `Fetch` answers over
//! `/smpl/sync/1` after claiming thousands of newer listings — plus garbage
//! `Reconcile` requests. The victim must drop every one, keep its store and index as
//! they were, answer searches and its API meanwhile, and ban the peers.
//!
//! The bad listings ([`listings::Bad`]): random bytes; headers with random contents; valid
//! envelopes with one byte changed in the body, the signature or the header;
//! truncations; declared body lengths over the kind's limit or not matching the body;
//! bodies over the kind's limit; other signed kinds (license tokens, purchase
//! requests); manifests and retractions of the victim's pack signed by a key that is
//! not its author, or by their own author but claiming the victim's pack id; validly
//! signed bodies that do not decode or break the manifest rules; and replays: older
//! versions of the victim's pack, genuinely signed by its author, which are verified
//! but stale (ignored, not forwarded).
//!
//! The modules: [`victim`] starts the node under attack and checks what must not
//! change in it; [`listings`] forges the bad listings; [`peers`] drives evil libp2p
//! swarms by hand; [`gossip`] and [`sync`] hold the two floods, a test each. Node
//! options come from the node tests' `common` module.

mod announce;
#[path = "../common/mod.rs"]
mod common;
mod gossip;
mod listings;
mod peers;
mod sync;
mod victim;

use std::time::Duration;

/// Bad listings each test gets the victim to verify and drop.
const TARGET: u64 = 10_000;
/// Longest any single wait may take.
const STEP: Duration = Duration::from_secs(20);
/// Longest a flood may take before the test gives up.
const FLOOD_LIMIT: Duration = Duration::from_secs(45);
/// A search or an API call to the victim must answer within this, flood or not.
const RESPONSIVE: Duration = Duration::from_millis(500);
/// Evil gossip peers flooding at the same time.
const GOSSIP_ATTACKERS: usize = 6;
/// The seq at which the victim holds its pack; replays use lower ones.
const HELD_SEQ: u64 = 1_000;
const SLUG: &str = "dusty-808s";
const TITLE: &str = "Dusty 808s";
