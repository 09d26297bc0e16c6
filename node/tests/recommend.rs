//! Recommendations from a producer's own library, computed on its node: a pack
//! that sounds like one it fetched comes first, with the reason why.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

fn kick(path: &Path, freq: f32) {
    write_fn(path, 0.5, |t| {
        (t * freq * std::f32::consts::TAU * (1.0 + 2.0 * (-t * 30.0).exp())).sin() * (-t * 9.0).exp()
    });
}

fn pad(path: &Path, freq: f32) {
    write_fn(path, 3.0, |t| {
        let tone =
            (t * freq * std::f32::consts::TAU).sin() + 0.5 * (t * freq * 1.5 * std::f32::consts::TAU).sin();
        tone * 0.5 * (t * 4.0).min(1.0)
    });
}

fn hat(path: &Path, seed: u32) {
    let state = std::cell::Cell::new(seed | 1);
    write_fn(path, 0.15, |t| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        state.set(x);
        (x as f32 / u32::MAX as f32 * 2.0 - 1.0) * (-t * 40.0).exp()
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pack_that_sounds_like_the_library_comes_first_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let a = start(root, "a", &[]).await;
    let b = start(root, "b", &[addr(&a).await]).await;

    let dusty = root.join("dusty");
    for (i, f) in [50.0, 55.0, 60.0, 48.0].into_iter().enumerate() {
        kick(&dusty.join(format!("Dusty_Kick_{i:02}.wav")), f);
    }
    let boom = root.join("boom");
    for (i, f) in [52.0, 58.0, 63.0].into_iter().enumerate() {
        kick(&boom.join(format!("Boom_{i:02}.wav")), f);
    }
    let pads = root.join("pads");
    for (i, f) in [220.0, 330.0, 440.0].into_iter().enumerate() {
        pad(&pads.join(format!("Glass_Pad_{i:02}.wav")), f);
    }
    let hats = root.join("hats");
    for i in 0..3 {
        hat(&hats.join(format!("Tick_{i:02}.wav")), 7 + i);
    }
    let dusty_id = publish(&a, &dusty, "Dusty Drums").await;
    let boom_id = publish(&a, &boom, "Boom Room").await;
    let pads_id = publish(&a, &pads, "Glass Garden").await;
    let hats_id = publish(&a, &hats, "Tick Tock").await;
    for id in [dusty_id, boom_id, pads_id, hats_id] {
        wait_for(&b, "", id, false, Duration::from_secs(10)).await;
    }
    assert!(b.recommend(5).await.unwrap().is_empty(), "nothing in the library yet");

    fetch(&b, dusty_id, &root.join("b-out")).await;
    let picks = b.recommend(5).await.unwrap();
    for p in &picks {
        println!("{:<14} {:.3}  {}", p.title, p.score, p.reason);
    }
    assert!(picks.iter().all(|p| p.pack_id != dusty_id), "a pack already held");
    assert_eq!(picks[0].pack_id, boom_id, "{picks:?}");
    assert_eq!(picks[0].reason, "similar kicks to Dusty Drums");
    assert!(picks.len() >= 3);
    a.shutdown().await;
    b.shutdown().await;
}
