//! Two `smpl` processes on 127.0.0.1: listings travel, `fetch` downloads verified
//! files, `peers` and `share` work, and nothing leaves loopback.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn wait_for_hit(home: &std::path::Path, query: &str, pack: &str) {
    let start = Instant::now();
    loop {
        let (_, hits, _) = smpl_json(home, &["search", query, "--packs"]);
        if hits.iter().any(|h| h["pack_id"] == pack) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{pack} never showed up for {query:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn fetch_peers_and_share_between_two_processes() {
    let dir = tempfile::tempdir().unwrap();
    let (home_a, home_b) = (dir.path().join("a"), dir.path().join("b"));
    let pack = dir.path().join("pack");
    make_mixed_pack(&pack);
    let a = TestNode::start(&home_a);
    let b = TestNode::start_with(&home_b, &["--bootstrap", &a.p2p_addr()]);

    let (code, out, err) = smpl_json(&home_a, &["publish", pack.to_str().unwrap(), "--title", "Wire Drums"]);
    assert_eq!(code, 0, "{err}");
    let pack_id = out[0]["pack_id"].as_str().unwrap().to_string();
    wait_for_hit(&home_b, "wire", &pack_id);

    let (code, peers, _) = smpl_json(&home_b, &["peers"]);
    assert_eq!(code, 0);
    let (_, id_a, _) = smpl_json(&home_a, &["id"]);
    assert!(peers.iter().any(|p| p["node_id"] == id_a[0]["node_id"]), "{peers:?}");

    let out_dir = dir.path().join("fetched");
    let (code, fetched, err) =
        smpl_json(&home_b, &["fetch", &pack_id[..10], "--out", out_dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let path = std::path::PathBuf::from(fetched[0]["path"].as_str().unwrap());
    assert_eq!(fetched[0]["files"], 4);
    for name in [
        "Kicks/Deep_Kick_01.wav",
        "Kicks/Punchy_Kick_02.wav",
        "Snare_Tight.wav",
        "Loops/Groove_Loop_124bpm_Am.wav",
    ] {
        assert_eq!(
            std::fs::read(pack.join(name)).unwrap(),
            std::fs::read(path.join(name)).unwrap(),
            "{name}"
        );
    }
    assert!(path.starts_with(&out_dir));

    let (code, ticket, _) = smpl_json(&home_a, &["share", &pack_id]);
    assert_eq!(code, 0);
    assert!(ticket[0]["ticket"].as_str().unwrap().starts_with("blob"), "{ticket:?}");
    // Unknown packs are a clear error.
    let out = smpl(&home_b, &["fetch", "ffffffffffffffffffffffffffffffff"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no pack"));
    drop((a, b));
}

/// Runs node A under strace while B fetches from it, and fails if A sends a
/// packet to, or opens a TCP connection with, anything but loopback. (A UDP
/// `connect()` sends nothing; those are listed, not failed: iroh's interface
/// monitor uses one to learn the default route.)
#[test]
fn a_node_talks_only_to_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let (home_a, home_b) = (dir.path().join("a"), dir.path().join("b"));
    let log = dir.path().join("strace.log");
    let pack = dir.path().join("pack");
    make_mixed_pack(&pack);
    let log_arg = log.to_str().unwrap().to_string();
    let a = TestNode::start_wrapped(
        &home_a,
        &[],
        &["strace", "-f", "-yy", "-e", "trace=connect,sendto,sendmsg,sendmmsg", "-o", &log_arg],
    );
    let b = TestNode::start_with(&home_b, &["--bootstrap", &a.p2p_addr()]);
    let (_, out, _) = smpl_json(&home_a, &["publish", pack.to_str().unwrap(), "--title", "Quiet"]);
    let pack_id = out[0]["pack_id"].as_str().unwrap().to_string();
    wait_for_hit(&home_b, "quiet", &pack_id);
    let (code, _, err) =
        smpl_json(&home_b, &["fetch", &pack_id, "--out", dir.path().join("f").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    a.stop();
    drop(b);

    let text = std::fs::read_to_string(&log).expect("strace log (is strace installed? scripts/setup.sh)");
    let mut checked = 0;
    let mut udp_connects = Vec::new();
    for line in text.lines() {
        let Some(addr) = address_in(line) else { continue };
        checked += 1;
        if addr.starts_with("127.") || addr == "::1" || addr == "::ffff:127.0.0.1" || addr == "0.0.0.0" {
            continue;
        }
        if line.contains("connect(") && line.contains("<UDP") {
            udp_connects.push(addr);
            continue;
        }
        panic!("node addressed {addr}: {line}");
    }
    assert!(checked > 10, "strace saw only {checked} network calls: {text:.2000}");
    println!("{checked} network calls, all loopback; UDP connects without traffic: {udp_connects:?}");
}

/// The IPv4 or IPv6 address in one strace line, if any.
fn address_in(line: &str) -> Option<String> {
    for marker in ["inet_addr(\"", "inet_pton(AF_INET6, \""] {
        if let Some(start) = line.find(marker) {
            let rest = &line[start + marker.len()..];
            return rest.split('"').next().map(String::from);
        }
    }
    None
}
