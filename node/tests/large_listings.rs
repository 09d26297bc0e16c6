//! Large honest listings sync: a node holding listings of several megabytes each
//! answers a late joiner's `Fetch` in parts that stay within the answer limit,
//! and the joiner asks for the rest at once. Two real nodes on 127.0.0.1, mDNS off.

mod common;

use std::time::{Duration, Instant};

use common::*;
use smpl_protocol::{Identity, Signed, limits};
use smpl_testkit::manifest as kit;

/// Listings of about 3.5 MB each: 12 of them are over twice the 16 MiB a `Fetch`
/// answer may hold.
const LISTINGS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_joiner_gets_every_large_listing_in_answers_under_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let holder = start(root, "holder", &[]).await;
    let mut total = 0;
    for n in 0..LISTINGS {
        let author = Identity::from_secret_bytes([n as u8 + 1; 32]);
        let samples = (0..3600)
            .map(|i| {
                let mut s = kit::sample(&format!("Folder {n}/Long sample name number {i:05}.wav"));
                s.waveform = vec![(i % 251) as u8; limits::MAX_WAVEFORM_POINTS];
                s
            })
            .collect();
        let manifest = kit::manifest(author.node_id(), &format!("large-{n}"), 1, samples);
        let envelope = manifest.sign(&author).unwrap();
        assert!(envelope.as_bytes().len() > 3_000_000, "{} bytes", envelope.as_bytes().len());
        total += envelope.as_bytes().len();
        holder.store().accept_manifest(&manifest, &envelope, true).unwrap();
    }
    println!("{LISTINGS} listings, {:.1} MB in all", total as f64 / 1e6);

    let joiner = start(root, "joiner", &[addr(&holder).await]).await;
    let start = Instant::now();
    while joiner.store().pack_seqs().unwrap().len() < LISTINGS {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the joiner has {} of {LISTINGS} listings",
            joiner.store().pack_seqs().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stats = holder.network().unwrap().stats();
    let deferred = stats.answer_deferred.load(std::sync::atomic::Ordering::Relaxed);
    println!("synced in {:.1} s; {deferred} ids left for a later answer", start.elapsed().as_secs_f64());
    assert!(deferred > 0, "the answers were split to stay under the cap");
    let largest = stats.answer_bytes_max.load(std::sync::atomic::Ordering::Relaxed);
    assert!(largest <= smpl_protocol::wire::MAX_SYNC_RESPONSE_BYTES, "an answer of {largest} bytes");
    let failed = joiner.network().unwrap().stats().fetches_failed.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(failed, 0, "every answer was read");
    let fetched = joiner.network().unwrap().stats().fetched.load(std::sync::atomic::Ordering::Relaxed);
    assert!(fetched >= LISTINGS as u64);
}
