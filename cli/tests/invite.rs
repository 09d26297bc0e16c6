//! First contact on 127.0.0.1: an invite line from `smpl invite`, taken by
//! `smpl connect` and by the `bootstrap` list of `config.toml`; a node listens
//! through a relay server it met; `smpl peers` tells the path and round-trip time.

mod common;

use std::time::{Duration, Instant};

use common::{TestNode, smpl, smpl_json};

fn invite(node: &TestNode) -> String {
    let (code, out, err) = smpl_json(&node.home, &["invite"]);
    assert_eq!(code, 0, "smpl invite: {err}");
    out[0]["invite"].as_str().expect("an invite line").to_string()
}

fn wait(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "waited 30 s for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn an_invite_line_reaches_a_node_from_config_and_from_connect() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestNode::start_with(&dir.path().join("p"), &["--relay-server"]);
    let relay_invite = invite(&relay);
    assert!(relay_invite.contains("/p2p/"), "{relay_invite}");
    assert!(!relay_invite.contains(','), "one address, as P listens on one: {relay_invite}");

    // A joins through the bootstrap list of its config.toml, and gets a relayed
    // address through P, which its invite carries after its direct one.
    let home_a = dir.path().join("a");
    assert!(smpl(&home_a, &["init", "--name", "A"]).status.success());
    let config = std::fs::read_to_string(home_a.join("config.toml")).unwrap();
    assert!(config.contains("bootstrap = []"), "smpl init writes an empty list: {config}");
    let config = config.replace("bootstrap = []", &format!("bootstrap = [\"{relay_invite}\"]"));
    std::fs::write(home_a.join("config.toml"), config).unwrap();
    let a = TestNode::start(&home_a);
    wait("A's relayed address", || invite(&a).contains("/p2p-circuit/"));
    let a_invite = invite(&a);
    let (direct, relayed) = a_invite.split_once(',').expect("a direct and a relayed address");
    assert!(!direct.contains("p2p-circuit") && relayed.contains("p2p-circuit"), "{a_invite}");

    // B takes A's whole line.
    let b = TestNode::start(&dir.path().join("b"));
    let (code, _, err) = smpl_json(&b.home, &["connect", &a_invite]);
    assert_eq!(code, 0, "smpl connect LINE: {err}");
    let (_, a_id, _) = smpl_json(&a.home, &["id"]);
    let a_node = a_id[0]["node_id"].as_str().unwrap().to_string();
    wait("a round-trip time to A", || {
        let (_, peers, _) = smpl_json(&b.home, &["peers"]);
        peers.iter().any(|p| p["node_id"] == a_node.as_str() && p["rtt_ms"].as_f64().is_some())
    });
    let (_, peers, _) = smpl_json(&b.home, &["peers"]);
    let peer = peers.iter().find(|p| p["node_id"] == a_node.as_str()).unwrap();
    assert_eq!(peer["path"], "direct", "{peer}");

    // A bad line says what is wrong.
    let out = smpl(&b.home, &["connect", "/ip4/127.0.0.1/tcp/1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/p2p/<peer id>"));
}
