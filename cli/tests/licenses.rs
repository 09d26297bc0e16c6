//! Licenses with the real binary: a seller killed with `kill -9` around the moment
//! it issues licenses loses none of them, and `smpl license verify` checks a
//! certificate offline (signature, author, buyer, pack, files).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use smpl_protocol::certificate;
use smpl_protocol::{Envelope, Identity, Kind, LicenseToken, Signed};

const TRIES: usize = 20;

fn verify(home: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    let mut full = vec!["license", "verify"];
    full.extend_from_slice(args);
    let (code, lines, stderr) = smpl_json(home, &full);
    assert_eq!(lines.len(), 1, "{stderr}");
    (code, lines[0].clone())
}

/// Starts the seller A, joined to B, and waits until B sees it.
fn start_seller(a_home: &Path, b: &TestNode) -> TestNode {
    let b_addr = b.p2p_addr();
    let a = TestNode::start_with(a_home, &["--seller-policy", "auto", "--bootstrap", &b_addr]);
    let a_id = json_ok(a_home, &["id"])[0]["node_id"].as_str().unwrap().to_string();
    let start = Instant::now();
    while !json_ok(&b.home, &["peers"]).iter().any(|p| p["node_id"] == a_id.as_str()) {
        assert!(start.elapsed() < Duration::from_secs(30), "B never saw A");
        std::thread::sleep(Duration::from_millis(50));
    }
    a
}

#[test]
fn kill_9_around_issuing_loses_no_license_and_verify_checks_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (a_home, b_home, c_home) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    let b = TestNode::start(&b_home);
    let a = start_seller(&a_home, &b);
    let mut packs = Vec::new();
    for i in 0..TRIES {
        let folder = dir.path().join(format!("pack{i}"));
        write_sound(&folder.join(format!("Shot_{i:02}.wav")), 0.2, 100.0 + 20.0 * i as f32, true);
        let title = format!("Shot {i}");
        let out =
            json_ok(&a_home, &["publish", folder.to_str().unwrap(), "--title", &title, "--price", "2.50"]);
        packs.push(out.last().unwrap()["pack_id"].as_str().unwrap().to_string());
    }
    let start = Instant::now();
    // No match yet is exit 1.
    while smpl_json(&b_home, &["search", "shot", "--packs", "--limit", "100"]).1.len() < TRIES {
        assert!(start.elapsed() < Duration::from_secs(30), "B did not get the listings");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Time one undisturbed purchase to spread the kills over it.
    let started = Instant::now();
    let first = json_ok(&b_home, &["buy", &packs[0]]);
    let buy_ms = started.elapsed().as_millis().max(20) as u64;
    assert_eq!(first[0]["status"], "issued");
    a.kill9();

    let mut jitter = Xorshift::from_clock();
    println!("seed {}, undisturbed purchase {buy_ms} ms", jitter.0);
    let mut issued_before_kill = 1;
    for (attempt, pack) in packs.iter().enumerate().skip(1) {
        let a = start_seller(&a_home, &b);
        if attempt % 2 == 0 {
            // Killed right after the buyer was told "issued".
            let out = json_ok(&b_home, &["buy", pack]);
            assert_eq!(out[0]["status"], "issued", "try {attempt}");
            issued_before_kill += 1;
            a.kill9();
        } else {
            // Killed at a random moment while the order is on its way.
            let buy = smpl_spawn(&b_home, &["buy", pack]);
            std::thread::sleep(Duration::from_millis(jitter.below(buy_ms + buy_ms / 2)));
            a.kill9();
            let out = buy.wait_with_output().unwrap();
            if String::from_utf8_lossy(&out.stdout).contains("\"issued\"") {
                issued_before_kill += 1;
            }
        }
        // Every license the buyer holds is in the restarted seller's ledger, and
        // its certificate file is there and valid.
        // The buyer's list is read first: the restarted seller may issue its
        // pending order meanwhile, and that license must then be in the sales too.
        let a = start_seller(&a_home, &b);
        let held = json_ok(&b_home, &["licenses"]);
        let sales = json_ok(&a_home, &["sales"]);
        for license in held {
            let id = license["license_id"].as_str().unwrap();
            assert!(
                sales.iter().any(|o| o["license_id"] == id && o["status"] == "issued"),
                "try {attempt}: license {id} lost by the seller; sales: {sales:?}"
            );
            let file = a_home.join("licenses/issued").join(format!("{id}.license"));
            let (code, report) = verify(&a_home, &[file.to_str().unwrap()]);
            assert_eq!((code, &report["valid"]), (0, &serde_json::json!(true)), "{report}");
        }
        a.kill9();
    }
    let held = json_ok(&b_home, &["licenses"]).len();
    println!(
        "{TRIES} tries: {issued_before_kill} licenses issued right before a kill, {held} held by the buyer"
    );
    assert!(issued_before_kill >= TRIES / 2);

    // The buyer's certificate, checked offline.
    let a = start_seller(&a_home, &b);
    let fetched = json_ok(&b_home, &["fetch", &packs[0]]);
    let files = fetched[0]["path"].as_str().unwrap().to_string();
    let cert = dir.path().join("shot0.license");
    json_ok(&b_home, &["license", "export", &packs[0], "-o", cert.to_str().unwrap()]);
    a.kill9();
    b.stop();
    let cert_arg = cert.to_str().unwrap();
    let (code, report) = verify(&b_home, &[cert_arg, "--files", &files]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["pack_id"], packs[0].as_str());

    // Wrong buyer: checked by another node's home, or with --buyer.
    json_ok(&c_home, &["init"]);
    let (code, report) = verify(&c_home, &[cert_arg]);
    assert_eq!(code, 1);
    assert!(report["reason"].as_str().unwrap().contains("issued to"), "{report}");
    let text = std::fs::read_to_string(&cert).unwrap();
    let parsed = certificate::parse(text.as_bytes()).unwrap();
    let (token, _) = LicenseToken::open(&parsed.token).unwrap();
    assert_eq!(verify(&b_home, &[cert_arg, "--buyer", &token.seller.to_string()]).0, 1);
    // Another pack.
    let (code, report) = verify(&b_home, &[cert_arg, "--pack", &packs[1]]);
    assert_eq!(code, 1);
    assert!(report["reason"].as_str().unwrap().contains("not for pack"), "{report}");

    // Any changed byte of the token.
    for i in [0, 5, 6, 38, 102, 106, parsed.token.len() / 2, parsed.token.len() - 1] {
        let mut token = parsed.token.clone();
        token[i] ^= 0x40;
        let bad = dir.path().join("bad.license");
        std::fs::write(&bad, &token).unwrap();
        assert_eq!(verify(&b_home, &[bad.to_str().unwrap()]).0, 1, "byte {i} changed");
    }

    // Signed by someone other than the pack's author: once naming the author as
    // seller, once naming itself.
    let forger = Identity::from_secret_bytes([3; 32]);
    let mut as_self = token.clone();
    as_self.seller = forger.node_id();
    for forged in [token.clone(), as_self] {
        let body = serde_json::to_vec(&forged).unwrap();
        let envelope = Envelope::seal(&forger, Kind::LicenseToken, &body).unwrap();
        let bad = dir.path().join("forged.license");
        std::fs::write(&bad, envelope.as_bytes()).unwrap();
        let (code, report) = verify(&b_home, &[bad.to_str().unwrap()]);
        assert_eq!(code, 1, "{report}");
    }

    // Files: a changed sample, an extra file, an edited file list.
    let sample = std::fs::read_dir(&files).unwrap().next().unwrap().unwrap().path();
    let original = std::fs::read(&sample).unwrap();
    let mut changed = original.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    // Replaced, as an editor saves: library files are read-only links to the store.
    let replace = |bytes: &[u8]| {
        std::fs::remove_file(&sample).unwrap();
        std::fs::write(&sample, bytes).unwrap();
    };
    replace(&changed);
    let (code, report) = verify(&b_home, &[cert_arg, "--files", &files]);
    assert_eq!(code, 1);
    assert!(report["reason"].as_str().unwrap().contains("not covered"), "{report}");
    replace(&original);
    std::fs::write(Path::new(&files).join("extra.wav"), b"RIFF").unwrap();
    let (code, report) = verify(&b_home, &[cert_arg, "--files", &files]);
    assert_eq!(code, 1);
    assert!(report["reason"].as_str().unwrap().contains("not covered"), "{report}");
    std::fs::remove_file(Path::new(&files).join("extra.wav")).unwrap();
    let listed = &parsed.files[0];
    let line = format!("  {}  {}  {}", listed.hash, listed.size, listed.name);
    let other = format!("  {}  {}  {}", "0".repeat(64), listed.size, listed.name);
    std::fs::write(&cert, text.replace(&line, &other)).unwrap();
    let (code, report) = verify(&b_home, &[cert_arg]);
    assert_eq!(code, 1);
    assert!(report["reason"].as_str().unwrap().contains("was edited"), "{report}");
}
