//! Peers find each other again after both restart: each remembers the other's
//! address (learned when they met, whoever dialled) and dials it again, with
//! back-off, while not connected. Real binaries on 127.0.0.1, mDNS off.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// A free TCP port on 127.0.0.1 (released again for the node to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn node_id(home: &Path) -> String {
    json_ok(home, &["id"])[0]["node_id"].as_str().unwrap().to_string()
}

fn connected(home: &Path, to: &str) -> bool {
    json_ok(home, &["peers"]).iter().any(|p| p["node_id"] == to)
}

#[test]
fn two_nodes_meet_again_after_both_restart_and_connect_takes_an_address() {
    let dir = tempfile::tempdir().unwrap();
    let (a_home, b_home) = (dir.path().join("a"), dir.path().join("b"));
    let (a_listen, b_listen) =
        (format!("/ip4/127.0.0.1/tcp/{}", free_port()), format!("/ip4/127.0.0.1/tcp/{}", free_port()));
    let a = TestNode::start_with(&a_home, &["--listen", &a_listen]);
    let b = TestNode::start_with(&b_home, &["--listen", &b_listen]);
    let (a_id, b_id) = (node_id(&a_home), node_id(&b_home));

    // A bad address is refused with the reason.
    let bad = smpl(&b_home, &["connect", "/ip4/127.0.0.1/tcp/1"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("/p2p/"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    // B connects to A by the address `smpl id` prints; A never dialled B.
    let joined = json_ok(&b_home, &["connect", &a.p2p_addr()]);
    assert_eq!(joined[0]["node_id"], a_id.as_str());
    wait_until("A sees B", Duration::from_secs(10), || connected(&a_home, &b_id));

    a.stop();
    b.stop();
    let a = TestNode::start_with(&a_home, &["--listen", &a_listen]);
    let b = TestNode::start_with(&b_home, &["--listen", &b_listen]);
    wait_until("B and A meet again", Duration::from_secs(30), || {
        connected(&a_home, &b_id) && connected(&b_home, &a_id)
    });
    // A restarted alone redials B too, although B dialled it the first time.
    a.stop();
    let _a = TestNode::start_with(&a_home, &["--listen", &a_listen]);
    wait_until("A finds B after its own restart", Duration::from_secs(30), || connected(&a_home, &b_id));
    drop(b);
}
