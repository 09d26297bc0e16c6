//! What the benchmark binaries share: `corpus` (a deterministic catalog of
//! realistic packs and queries), `rng` (SplitMix64), `mem` (RSS from
//! `/proc/self/status`), `nodes` (real `smpl node` processes and their API) and
//! `feed` (a gossip peer with a key of its own).

pub mod corpus;
pub mod feed;
pub mod mem;
pub mod nodes;
pub mod rng;
