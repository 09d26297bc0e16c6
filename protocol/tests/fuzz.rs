//! Mutation fuzzing of everything a node reads from a peer: envelopes of every
//! kind and the bodies inside them, reconciliation messages, and the CBOR
//! request-response messages of `/smpl/sync/1` and `/smpl/purchase/1`.
//!
//! Seeds are the golden encodings in `tests/golden/` plus the inputs kept in
//! `tests/fuzz-corpus/`, one hex file each: crafted ones (nesting 50,000 deep in
//! CBOR and JSON) and any input that ever breaks a decoder, run every time. Each round mutates a seed (bit flips,
//! interesting bytes, truncation, extension, duplicated or spliced ranges,
//! big length fields) and feeds it to every decoder, which must return without a
//! panic and within a time bound. The run is bounded by rounds, so CI time is
//! fixed; `SMPL_FUZZ_ROUNDS=2000000 cargo test -p smpl-protocol --release --test
//! fuzz` runs a long one, and `SMPL_FUZZ_SEED` replays a printed seed.

use std::path::Path;
use std::time::{Duration, Instant};

use smpl_protocol::sync::{Item, SyncMessage};
use smpl_protocol::wire::{SyncRequest, SyncResponse, TradeRequest, TradeResponse};
use smpl_protocol::{
    Envelope, LicenseToken, Manifest, PackId, PurchaseRequest, Retraction, Signed, certificate,
};
use smpl_testkit::rng::Xorshift;

/// The longest any one decoder may take on one input (debug build, busy machine).
const SLOW: Duration = Duration::from_millis(500);

fn hex_decode(text: &str) -> Vec<u8> {
    let clean: String = text.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..clean.len() / 2).map(|i| u8::from_str_radix(&clean[2 * i..2 * i + 2], 16).unwrap()).collect()
}

fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for dir in ["tests/golden", "tests/fuzz-corpus"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut files: Vec<_> =
            std::fs::read_dir(&dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
        files.sort();
        for file in files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "hex")) {
            seeds.push(hex_decode(&std::fs::read_to_string(&file).unwrap()));
        }
    }
    let items: Vec<Item> = (0..300u16)
        .map(|i| Item {
            id: PackId([(i % 256) as u8, (i / 256) as u8, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]),
            version: u64::from(i),
        })
        .collect();
    let mut sorted = items;
    sorted.sort();
    seeds.push(smpl_protocol::sync::initiate(&sorted));
    assert!(seeds.len() > 20, "the golden files are the seeds");
    seeds
}

/// One mutation of `input`, with `other` for splices.
fn mutate(rng: &mut Xorshift, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = bytes.len().max(1) as u64;
        match rng.below(8) {
            0 => {
                let at = rng.below(len) as usize;
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 => {
                let at = rng.below(len) as usize;
                let interesting = [0u8, 0xff, 0x7f, 0x80, 0x01, b'{', b'"', 0x1b, 0x9f, 0xbf];
                if let Some(b) = bytes.get_mut(at) {
                    *b = interesting[rng.below(interesting.len() as u64) as usize];
                }
            }
            2 => bytes.truncate(rng.below(len) as usize),
            3 => {
                let extra = rng.below(64) as usize;
                bytes.extend((0..extra).map(|_| rng.next_u64() as u8));
            }
            4 if bytes.len() > 2 => {
                let start = rng.below(len) as usize;
                let end = (start + 1 + rng.below(32) as usize).min(bytes.len());
                let chunk = bytes[start..end].to_vec();
                let at = rng.below(bytes.len() as u64) as usize;
                bytes.splice(at..at, chunk);
            }
            5 if !other.is_empty() => {
                let cut = rng.below(len) as usize;
                let from = rng.below(other.len() as u64) as usize;
                bytes.truncate(cut);
                bytes.extend_from_slice(&other[from..]);
            }
            6 if bytes.len() >= 4 => {
                // A big length where a length may be: a u32 at a random place.
                let at = rng.below(bytes.len() as u64 - 3) as usize;
                let big = [u32::MAX, 1 << 31, 1 << 24, 0x0fff_ffff][rng.below(4) as usize];
                bytes[at..at + 4].copy_from_slice(&big.to_be_bytes());
            }
            _ => {
                let at = rng.below(len) as usize;
                if at < bytes.len() {
                    bytes.remove(at);
                }
            }
        }
    }
    bytes
}

/// Feeds `bytes` to every decoder; each must return, and soon.
fn decode_all(bytes: &[u8]) {
    let timed = |what: &str, f: &dyn Fn()| {
        let start = Instant::now();
        f();
        let took = start.elapsed();
        assert!(took < SLOW, "{what} took {took:?} on {} bytes", bytes.len());
    };
    timed("Envelope::open", &|| drop(Envelope::open(bytes)));
    timed("Manifest::open", &|| drop(Manifest::open(bytes)));
    timed("Retraction::open", &|| drop(Retraction::open(bytes)));
    timed("PurchaseRequest::open", &|| drop(PurchaseRequest::open(bytes)));
    timed("LicenseToken::open", &|| drop(LicenseToken::open(bytes)));
    timed("SyncMessage::decode", &|| drop(SyncMessage::decode(bytes)));
    timed("SyncRequest", &|| drop(cbor4ii::serde::from_slice::<SyncRequest>(bytes)));
    timed("SyncResponse", &|| drop(cbor4ii::serde::from_slice::<SyncResponse>(bytes)));
    timed("TradeRequest", &|| drop(cbor4ii::serde::from_slice::<TradeRequest>(bytes)));
    timed("TradeResponse", &|| drop(cbor4ii::serde::from_slice::<TradeResponse>(bytes)));
    timed("certificate::parse", &|| drop(certificate::parse(bytes)));
    // Bodies decoded as JSON the way an envelope's body is, unsigned.
    timed("manifest JSON", &|| drop(serde_json::from_slice::<Manifest>(bytes)));
}

#[test]
fn every_decoder_survives_mutated_inputs() {
    let rounds: u64 = std::env::var("SMPL_FUZZ_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(200_000);
    let mut rng = match std::env::var("SMPL_FUZZ_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => Xorshift(seed),
        None => Xorshift::from_clock(),
    };
    println!("SMPL_FUZZ_SEED={} SMPL_FUZZ_ROUNDS={rounds}", rng.0);
    let seeds = seeds();
    for seed in &seeds {
        decode_all(seed);
    }
    let start = Instant::now();
    for _ in 0..rounds {
        let input = &seeds[rng.below(seeds.len() as u64) as usize];
        let other = &seeds[rng.below(seeds.len() as u64) as usize];
        let mutated = mutate(&mut rng, input, other);
        decode_all(&mutated);
    }
    println!("{rounds} mutated inputs through 12 decoders in {:.1} s", start.elapsed().as_secs_f64());
}

/// A mutated envelope that still verifies is one the signer made: flipping any
/// byte of a signed envelope must make it fail to open.
#[test]
fn no_mutation_of_a_signed_envelope_verifies() {
    let mut rng = Xorshift::from_clock();
    let manifest = hex_decode(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/manifest.hex"))
            .unwrap(),
    );
    assert!(Manifest::open(&manifest).is_ok());
    for _ in 0..2_000 {
        let mut bytes = manifest.clone();
        let at = rng.below(bytes.len() as u64) as usize;
        bytes[at] ^= 1 + rng.below(255) as u8;
        assert!(Manifest::open(&bytes).is_err(), "a changed byte at {at} still opened");
    }
}
