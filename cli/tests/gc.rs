//! Garbage collection of the blob store with the real binary: superseded and
//! retracted content leaves `blobs/` within a GC period while every live blob
//! (current packs, previews, licensed downloads) stays served, also when the node
//! is killed with `kill -9` during collections and during a download.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

/// Where the store keeps a blob over 16 KiB as a file of its own.
fn data_file(home: &Path, hash: &str) -> PathBuf {
    home.join("blobs").join("data").join(format!("{hash}.data"))
}

fn sample_hashes(home: &Path, pack: &str) -> Vec<(String, String, Option<String>)> {
    let show = json_ok(home, &["show", pack]);
    show[0]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["hash"].as_str().unwrap().to_string(),
                s["preview"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn publish(home: &Path, dir: &Path, title: &str, extra: &[&str]) -> String {
    let mut args = vec!["publish", dir.to_str().unwrap(), "--title", title];
    args.extend_from_slice(extra);
    json_ok(home, &args).last().unwrap()["pack_id"].as_str().unwrap().to_string()
}

fn connect(a: &TestNode, b_home: &Path, extra: &[&str]) -> TestNode {
    let mut args = vec!["--bootstrap".to_string(), a.p2p_addr()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    TestNode::start_with(b_home, &args)
}

#[test]
fn updated_and_retracted_content_is_collected_and_live_content_stays_served() {
    let dir = tempfile::tempdir().unwrap();
    let (a_home, b_home, c_home) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    let gc = ["--gc-interval", "1"];
    let a = TestNode::start_with(&a_home, &["--gc-interval", "1", "--seller-policy", "auto"]);
    let b = connect(&a, &b_home, &gc);

    // A free pack and a paid one; B buys and fetches the paid one.
    let free_dir = dir.path().join("free");
    write_sound(&free_dir.join("Kick.wav"), 0.5, 60.0, true);
    write_sound(&free_dir.join("Snare.wav"), 0.5, 220.0, true);
    write_sound(&free_dir.join("Hat.wav"), 0.5, 3000.0, true);
    let free = publish(&a_home, &free_dir, "Collect Free", &["--free"]);
    let paid_dir = dir.path().join("paid");
    write_sound(&paid_dir.join("Bass.wav"), 0.6, 45.0, false);
    write_sound(&paid_dir.join("Pad.wav"), 0.6, 330.0, false);
    let paid = publish(&a_home, &paid_dir, "Collect Paid", &["--price", "3.00"]);
    // A second paid pack that stays: B's licensed copy must outlive every collection.
    let kept_dir = dir.path().join("kept");
    write_sound(&kept_dir.join("Lead.wav"), 0.6, 440.0, false);
    write_sound(&kept_dir.join("Stab.wav"), 0.6, 660.0, true);
    let kept = publish(&a_home, &kept_dir, "Collect Kept", &["--price", "2.00"]);
    for pack in [&paid, &kept] {
        wait_until("B sees the paid packs", Duration::from_secs(30), || {
            smpl_json(&b_home, &["show", pack]).0 == 0
        });
        let bought = json_ok(&b_home, &["buy", pack, "--wait", "20"]);
        assert_eq!(bought[0]["status"], "issued", "{bought:?}");
        json_ok(&b_home, &["fetch", pack, "--out", dir.path().join("b-lib").to_str().unwrap()]);
    }
    let v1 = sample_hashes(&a_home, &free);
    let bought_files = sample_hashes(&a_home, &paid);
    for (_, hash, _) in v1.iter().chain(&bought_files) {
        assert!(data_file(&a_home, hash).exists(), "{hash} is stored as a file");
    }

    // A changes one file and drops another, then retracts the paid pack.
    write_sound(&free_dir.join("Kick.wav"), 0.5, 70.0, true);
    std::fs::remove_file(free_dir.join("Hat.wav")).unwrap();
    assert_eq!(publish(&a_home, &free_dir, "Collect Free", &["--update", &free]), free);
    json_ok(&a_home, &["retract", &paid]);
    let v2 = sample_hashes(&a_home, &free);
    let gone: Vec<&String> =
        v1.iter().filter(|(_, h, _)| !v2.iter().any(|(_, h2, _)| h2 == h)).map(|(_, h, _)| h).collect();
    assert_eq!(gone.len(), 2, "the changed and the dropped file");
    let started = Instant::now();
    wait_until("old blobs collected", Duration::from_secs(10), || {
        gone.iter()
            .copied()
            .chain(bought_files.iter().map(|(_, h, _)| h))
            .all(|h| !data_file(&a_home, h).exists())
    });
    println!("old blobs left blobs/ {} ms after the update and retraction", started.elapsed().as_millis());

    // Two more periods: the current pack and its previews stay, and so does
    // everything B holds under its licence.
    std::thread::sleep(Duration::from_secs(3));
    for (name, hash, _) in &v2 {
        assert!(data_file(&a_home, hash).exists(), "current file {name} was collected");
    }
    for (name, hash, _) in &bought_files {
        assert!(data_file(&b_home, hash).exists(), "licensed file {name} was collected on the buyer");
    }
    let check = json_ok(&a_home, &["check"]);
    assert_eq!(check[0]["incomplete"].as_array().unwrap().len(), 0, "{check:?}");

    // A third node fetches the current version and auditions it: all served.
    let c = connect(&a, &c_home, &gc);
    wait_until("C sees v2", Duration::from_secs(30), || {
        smpl_json(&c_home, &["show", &free]).1.first().is_some_and(|m| m["seq"] == 2)
    });
    let out = dir.path().join("c-lib");
    let fetched = json_ok(&c_home, &["fetch", &free, "--out", out.to_str().unwrap()]);
    let path = PathBuf::from(fetched.last().unwrap()["path"].as_str().unwrap());
    for name in ["Kick.wav", "Snare.wav"] {
        assert_eq!(std::fs::read(path.join(name)).unwrap(), std::fs::read(free_dir.join(name)).unwrap());
    }
    json_ok(&c_home, &["audition", &free, "snare"]);

    // C buys the kept pack; with A gone, B serves it from its licensed copy.
    wait_until("C sees the kept pack", Duration::from_secs(30), || {
        smpl_json(&c_home, &["show", &kept]).0 == 0
    });
    let bought = json_ok(&c_home, &["buy", &kept, "--wait", "20"]);
    assert_eq!(bought[0]["status"], "issued", "{bought:?}");
    let b_addr = b.p2p_addr();
    drop(c);
    a.kill9();
    let c = TestNode::start_with(&c_home, &["--gc-interval", "1", "--bootstrap", &b_addr]);
    let out = dir.path().join("c-kept");
    let fetched = json_ok(&c_home, &["fetch", &kept, "--out", out.to_str().unwrap()]);
    let path = PathBuf::from(fetched.last().unwrap()["path"].as_str().unwrap());
    for name in ["Lead.wav", "Stab.wav"] {
        assert_eq!(std::fs::read(path.join(name)).unwrap(), std::fs::read(kept_dir.join(name)).unwrap());
    }
    drop((b, c));
}

#[test]
fn kill_9_during_collections_and_downloads_loses_nothing_live() {
    let dir = tempfile::tempdir().unwrap();
    let (a_home, b_home) = (dir.path().join("a"), dir.path().join("b"));
    let pack_dir = dir.path().join("big");
    // 24 files of 6 s (about 13 MB): a download that takes a moment.
    for i in 0..24 {
        write_sound(&pack_dir.join(format!("Take_{i:02}.wav")), 6.0, 80.0 + i as f32 * 10.0, i % 2 == 0);
    }
    let mut a = TestNode::start_with(&a_home, &["--gc-interval", "1"]);
    let pack = publish(&a_home, &pack_dir, "Kill Collect", &["--free"]);
    let mut jitter = Xorshift::from_clock();
    println!("seed {}", jitter.0);

    // The seller is killed at random moments while it collects every second, with
    // an update that leaves garbage each time.
    for attempt in 0..4 {
        write_sound(&pack_dir.join("Take_00.wav"), 6.0, 500.0 + attempt as f32 * 40.0, true);
        publish(&a_home, &pack_dir, "Kill Collect", &["--update", &pack]);
        std::thread::sleep(Duration::from_millis(900 + jitter.below(1500)));
        a.kill9();
        a = TestNode::start_with(&a_home, &["--gc-interval", "1"]);
        let (code, report, _) = smpl_json(&a_home, &["check"]);
        assert_eq!(code, 0, "try {attempt}: {report:?}");
    }

    // The buyer is killed at random moments during the download, collecting too.
    let mut undisturbed = None;
    for attempt in 0..4 {
        let b = connect(&a, &b_home, &["--gc-interval", "1"]);
        wait_until("B sees the pack", Duration::from_secs(30), || {
            smpl_json(&b_home, &["show", &pack]).0 == 0
        });
        let out = dir.path().join("b-lib");
        let start = Instant::now();
        let mut fetch = smpl_spawn(&b_home, &["fetch", &pack, "--out", out.to_str().unwrap()]);
        let delay = jitter.below(undisturbed.unwrap_or(800));
        std::thread::sleep(Duration::from_millis(delay));
        b.kill9();
        let _ = fetch.wait();
        if undisturbed.is_none() {
            undisturbed = Some(start.elapsed().as_millis().max(100) as u64);
        }
        println!("try {attempt}: buyer killed {delay} ms into the fetch");
    }
    let b = connect(&a, &b_home, &["--gc-interval", "1"]);
    std::thread::sleep(Duration::from_secs(2));
    let out = dir.path().join("b-lib");
    let fetched = json_ok(&b_home, &["fetch", &pack, "--out", out.to_str().unwrap()]);
    let path = PathBuf::from(fetched.last().unwrap()["path"].as_str().unwrap());
    for i in 0..24 {
        let name = format!("Take_{i:02}.wav");
        assert_eq!(
            std::fs::read(path.join(&name)).unwrap(),
            std::fs::read(pack_dir.join(&name)).unwrap(),
            "{name}"
        );
    }
    // Collections after the fetch keep it.
    std::thread::sleep(Duration::from_secs(3));
    for (name, hash, _) in sample_hashes(&b_home, &pack) {
        assert!(data_file(&b_home, &hash).exists(), "{name} was collected after the fetch");
    }
    drop((a, b));
}
