//! The test kit of the smpl workspace: one home for the values and files that the
//! tests of `protocol`, `index`, `audio`, `node` and `cli` build again and again.
//!
//! A dev-only crate (`publish = false`), used as a `[dev-dependencies]` entry. It
//! depends on `smpl-protocol` and nothing of the node, so every crate's tests can use
//! it; helpers that need node types (publish requests, running nodes) live in
//! `node/tests/common` instead.
//!
//! - [`manifest`]: fixed ids and keys, a plain [`SampleEntry`](smpl_protocol::SampleEntry)
//!   and [`Manifest`](smpl_protocol::Manifest) to change with struct update syntax or
//!   the [`SampleExt`](manifest::SampleExt) methods.
//! - [`envelope`]: envelopes a hostile peer could send: sealed without the checks, or
//!   raw headers with any declared length and signature.
//! - [`golden`]: golden files of exact bytes, in hex, rewritten on purpose with
//!   `SMPL_BLESS=1`.
//! - [`wav`]: deterministic WAV files written with hound, from a formula per sample.
//! - [`pack`]: pack folders ready to publish, and the check that a fetched copy matches.
//! - [`rng`]: a tiny seeded xorshift generator for noise and jitter.
//!
//! Every writer is deterministic: golden files and expected figures in the tests
//! depend on the exact samples, so a formula here changes only with those tests.

pub mod envelope;
pub mod golden;
pub mod manifest;
pub mod pack;
pub mod rng;
pub mod wav;
