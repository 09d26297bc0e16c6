//! `smpl ui` and `smpl node --ui-listen`, with the real binary: the login link it
//! prints opens a session once, on the API's address and on the extra one.

mod common;

use common::{TestNode, smpl, smpl_json};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().new_agent()
}

#[test]
fn smpl_ui_gives_a_one_time_login_link_served_also_on_the_ui_address() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("alice");
    let lan = std::net::TcpListener::bind("127.0.0.2:0").unwrap().local_addr().unwrap();
    let node = TestNode::start_with(&home, &["--ui-listen", &lan.to_string()]);

    let (code, lines, stderr) = smpl_json(&home, &["ui"]);
    assert_eq!(code, 0, "{stderr}");
    let url = lines[0]["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:") && url.contains("/login?token="), "{url}");
    let first = agent().get(&url).call().unwrap();
    assert_eq!(first.status(), 303);
    let cookie = first.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert_eq!(agent().get(&url).call().unwrap().status(), 403, "the link works once");

    // --print prints a new link; it works on the --ui-listen address too.
    let out = smpl(&home, &["ui", "--print"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let printed = text.split_whitespace().find(|w| w.contains("/login?token=")).unwrap().to_string();
    assert_ne!(printed, url);
    let port = url.trim_start_matches("http://127.0.0.1:").split('/').next().unwrap().to_string();
    let on_lan = printed.replace(&format!("127.0.0.1:{port}"), &lan.to_string());
    assert_eq!(agent().get(&on_lan).call().unwrap().status(), 303, "{on_lan}");
    node.stop();
}
