//! `kill -9` of the node at random moments during a large publish: every restart
//! comes up, each pack is wholly there or absent, and the index agrees with sled.

mod common;

use std::time::{Duration, Instant};

use common::*;

const TRIES: usize = 20;

#[test]
fn kill_9_during_publish_loses_nothing_and_leaves_no_half_pack() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let pack = dir.path().join("big");
    // 40 files of 12 s (about 42 MB): a publish that takes a moment.
    for i in 0..40 {
        write_sound(&pack.join(format!("Take_{i:02}.wav")), 12.0, 80.0 + i as f32 * 10.0, i % 2 == 0);
    }

    // Time one undisturbed publish to spread the kills over it.
    let node = TestNode::start(&home);
    let start = Instant::now();
    let out = smpl(&home, &["publish", pack.to_str().unwrap(), "--title", "Baseline"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let publish_ms = start.elapsed().as_millis().max(50) as u64;
    node.kill9();

    let mut jitter = Xorshift::from_clock();
    println!("seed {}, undisturbed publish {publish_ms} ms", jitter.0);
    let (mut whole, mut absent) = (0, 0);
    for attempt in 0..TRIES {
        let node = TestNode::start(&home);
        let check = smpl_json(&home, &["check"]);
        assert_eq!(check.0, 0, "try {attempt}: check after restart failed: {:?}", check.1);

        let title = format!("Crash {attempt}");
        let mut publish = smpl_spawn(&home, &["publish", pack.to_str().unwrap(), "--title", &title]);
        let delay = jitter.below(publish_ms + publish_ms / 4);
        std::thread::sleep(Duration::from_millis(delay));
        node.kill9();
        let _ = publish.wait();

        let node = TestNode::start(&home);
        let (code, report, _) = smpl_json(&home, &["check"]);
        assert_eq!(code, 0, "try {attempt} (kill after {delay} ms): {report:?}");
        let r = &report[0];
        assert!(r["incomplete"].as_array().unwrap().is_empty());
        assert!(r["index_mismatch"].as_array().unwrap().is_empty());
        assert_eq!(r["packs"], r["indexed"]);

        let (_, hits, _) =
            smpl_json(&home, &["search", "crash", &attempt.to_string(), "--packs", "--limit", "100"]);
        let present = hits.iter().any(|h| h["pack_title"] == title.as_str());
        if present {
            whole += 1;
            let (_, samples, _) = smpl_json(
                &home,
                &["search", "take", "--author", hits[0]["author"].as_str().unwrap(), "--limit", "10000"],
            );
            let in_pack = samples.iter().filter(|h| h["pack_title"] == title.as_str()).count();
            assert_eq!(in_pack, 40, "try {attempt}: a present pack has every sample indexed");
        } else {
            absent += 1;
        }
        node.kill9();
    }
    println!("{TRIES} kills: {whole} packs whole, {absent} absent, none partial");
}
