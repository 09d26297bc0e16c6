//! The web app's door, tried from outside: a real node on 127.0.0.1:0 and a plain
//! HTTP client that sends exactly the headers a browser, a rebinding page or
//! another local program would. Every refusal here is one the node must make.

mod web_support;

use reqwest::StatusCode;
use smpl_node::SellerPolicy;
use smpl_node::web::WebOptions;
use web_support::{WebNode, free_port, publish_by_api, start};

async fn node(dir: &tempfile::TempDir) -> WebNode {
    start(dir.path(), "alice", SellerPolicy::Manual, &[], WebOptions::default()).await
}

/// `text` percent-encoded for a query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_cookie_or_token_nothing_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let alice = node(&dir).await;
    let client = WebNode::client();
    for path in ["/", "/library", "/sales", "/static/app.js", "/ui/events", "/ui/results?q=kick", "/v1/id"] {
        let response = client.get(format!("{}{path}", alice.base)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "GET {path}");
        assert_eq!(response.headers()["x-frame-options"], "DENY", "{path}");
    }
    let response = client
        .post(format!("{}/ui/sales/0011223344556677/approve", alice.base))
        .header("origin", &alice.base)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The CLI's error stays JSON with a one-line message.
    let body: serde_json::Value = serde_json::from_slice(
        &client.get(format!("{}/v1/id", alice.base)).send().await.unwrap().bytes().await.unwrap(),
    )
    .unwrap();
    assert!(body["error"].as_str().unwrap().contains("api.token"), "{body}");
    alice.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_or_session_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let alice = node(&dir).await;
    let client = WebNode::client();
    let wrong_bearer = client
        .get(format!("{}/v1/id", alice.base))
        .header("authorization", "Bearer 0000000000000000000000000000000000000000000000000000000000000000")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_bearer.status(), StatusCode::UNAUTHORIZED);
    let wrong_login = client.get(format!("{}/login?token=deadbeef", alice.base)).send().await.unwrap();
    assert_eq!(wrong_login.status(), StatusCode::FORBIDDEN);
    assert!(wrong_login.headers().get("set-cookie").is_none());
    let empty_login = client.get(format!("{}/login", alice.base)).send().await.unwrap();
    assert_eq!(empty_login.status(), StatusCode::FORBIDDEN);
    let forged = client
        .get(format!("{}/", alice.base))
        .header("cookie", format!("smpl_session_{}=00112233445566778899aabbccddeeff", alice.port))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    // The right token still works for the CLI, unchanged.
    let right = client
        .get(format!("{}/v1/id", alice.base))
        .header("authorization", format!("Bearer {}", alice.token))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::OK);
    // A session cookie does not mint login links: that takes the API token.
    let (cookie, csrf) = alice.login().await;
    let minted = client
        .post(format!("{}/v1/ui/login", alice.base))
        .header("cookie", &cookie)
        .header("origin", &alice.base)
        .header("x-smpl-csrf", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(minted.status(), StatusCode::FORBIDDEN);
    alice.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_token_becomes_a_strict_http_only_cookie_once() {
    let dir = tempfile::tempdir().unwrap();
    let alice = node(&dir).await;
    let client = WebNode::client();
    let url = alice.login_url().await;
    assert!(url.starts_with(&format!("{}/login?token=", alice.base)), "{url}");
    let first = client.get(&url).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    assert_eq!(first.headers()["location"], "/", "the token leaves the address bar");
    let set_cookie = first.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let page = client.get(format!("{}/", alice.base)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.headers().clone();
    assert_eq!(headers["content-security-policy"], "default-src 'self'");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers.get("access-control-allow-origin").is_none(), "no CORS");
    assert!(page.text().await.unwrap().contains("smpl-csrf"));
    let again = client.get(&url).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::FORBIDDEN, "a used login token is refused");
    assert!(again.headers().get("set-cookie").is_none());
    alice.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_host_is_refused_even_with_credentials() {
    let dir = tempfile::tempdir().unwrap();
    // The app also on a second loopback address, as --ui-listen puts it on a LAN one.
    let lan = free_port([127, 0, 0, 2]);
    let alice =
        start(dir.path(), "alice", SellerPolicy::Manual, &[], WebOptions { ui_listen: Some(lan) }).await;
    let client = WebNode::client();
    let (cookie, _) = alice.login().await;
    for host in ["evil.example", "evil.example:80", &format!("rebind.example:{}", alice.port), "127.0.0.1:1"]
    {
        let by_cookie = client
            .get(format!("{}/", alice.base))
            .header("host", host)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(by_cookie.status(), StatusCode::FORBIDDEN, "cookie, Host {host}");
        let by_token = client
            .get(format!("{}/v1/id", alice.base))
            .header("host", host)
            .header("authorization", format!("Bearer {}", alice.token))
            .send()
            .await
            .unwrap();
        assert_eq!(by_token.status(), StatusCode::FORBIDDEN, "token, Host {host}");
    }
    // A login link sent through a foreign name is refused and not used up.
    let url = alice.login_url().await;
    let rebound = client.get(&url).header("host", "evil.example").send().await.unwrap();
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);
    // The --ui-listen address serves the same app with the same login, under its own name only.
    let lan_url = url.replace(&alice.base, &format!("http://{lan}"));
    let lan_login = client.get(&lan_url).send().await.unwrap();
    assert_eq!(lan_login.status(), StatusCode::SEE_OTHER, "the unused token works on the LAN address");
    let lan_cookie =
        lan_login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let lan_page = client.get(format!("http://{lan}/")).header("cookie", &lan_cookie).send().await.unwrap();
    assert_eq!(lan_page.status(), StatusCode::OK);
    let other_port = client
        .get(format!("http://{lan}/"))
        .header("host", format!("127.0.0.2:{}", lan.port() + 1))
        .header("cookie", &lan_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(other_port.status(), StatusCode::FORBIDDEN);
    alice.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn state_changes_need_the_own_origin_and_the_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let alice = node(&dir).await;
    let client = WebNode::client();
    let (cookie, csrf) = alice.login().await;
    let approve = format!("{}/ui/sales/0011223344556677/approve", alice.base);
    let foreign = client
        .post(&approve)
        .header("cookie", &cookie)
        .header("x-smpl-csrf", &csrf)
        .header("origin", "http://evil.example")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN, "foreign Origin with cookie");
    let foreign_bearer = client
        .post(format!("{}/v1/index/rebuild", alice.base))
        .header("authorization", format!("Bearer {}", alice.token))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign_bearer.status(), StatusCode::FORBIDDEN, "foreign Origin with token");
    let no_csrf = client
        .post(&approve)
        .header("cookie", &cookie)
        .header("origin", &alice.base)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN, "cookie without CSRF token");
    let wrong_csrf = client
        .post(&approve)
        .header("cookie", &cookie)
        .header("origin", &alice.base)
        .header("x-smpl-csrf", "0".repeat(csrf.len()))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_csrf.status(), StatusCode::FORBIDDEN, "cookie with a wrong CSRF token");
    let no_origin = client
        .post(&approve)
        .header("cookie", &cookie)
        .header("x-smpl-csrf", &csrf)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(no_origin.status(), StatusCode::FORBIDDEN, "cookie without Origin");
    // With all three the request reaches the node, which knows no such order.
    let through = client
        .post(&approve)
        .header("cookie", &cookie)
        .header("origin", &alice.base)
        .header("x-smpl-csrf", &csrf)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(through.status(), StatusCode::NOT_FOUND, "{:?}", through.text().await);
    // GET changes nothing: the actions answer only POST.
    let get = client.get(&approve).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    // The refusals were counted, and the network page shows them.
    let network =
        client.get(format!("{}/network", alice.base)).header("cookie", &cookie).send().await.unwrap();
    let html = network.text().await.unwrap();
    assert!(html.contains("foreign_origin: 2"), "{html}");
    assert!(html.contains("missing_csrf: 3"), "{html}");
    alice.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn show_in_folder_and_library_files_stay_inside_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let alice = node(&dir).await;
    let client = WebNode::client();
    let (cookie, csrf) = alice.login().await;
    std::fs::create_dir_all(alice.library.join("Bob (12345678)/Pack")).unwrap();
    let secret = dir.path().join("secret.wav");
    std::fs::write(&secret, b"not yours").unwrap();
    std::os::unix::fs::symlink(dir.path(), alice.library.join("escape")).unwrap();
    let outside = [
        secret.display().to_string(),
        "/etc".to_string(),
        alice.home.root().display().to_string(),
        alice.library.join("../alice").display().to_string(),
        alice.library.join("escape").display().to_string(),
        alice.library.join("escape/secret.wav").display().to_string(),
        "relative/path".to_string(),
    ];
    for path in &outside {
        let show = client
            .post(format!("{}/ui/show-in-folder", alice.base))
            .header("cookie", &cookie)
            .header("origin", &alice.base)
            .header("x-smpl-csrf", &csrf)
            .header("content-type", "application/json")
            .body(serde_json::json!({ "path": path }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(show.status(), StatusCode::FORBIDDEN, "show {path}");
        let file = client
            .get(format!("{}/ui/library/file?path={}", alice.base, encode(path)))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(file.status(), StatusCode::FORBIDDEN, "file {path}");
    }
    // A file inside is served whole, for dragging into a DAW.
    let inside_file = alice.library.join("Bob (12345678)/Pack/kick.wav");
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&inside_file, &bytes).unwrap();
    let served = client
        .get(format!("{}/ui/library/file?path={}", alice.base, encode(&inside_file.display().to_string())))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()["content-type"], "audio/wav");
    assert_eq!(served.bytes().await.unwrap().as_ref(), bytes.as_slice());
    // A folder inside is accepted (whether a file manager exists here or not).
    let inside = alice.library.join("Bob (12345678)/Pack");
    let show = client
        .post(format!("{}/ui/show-in-folder", alice.base))
        .header("cookie", &cookie)
        .header("origin", &alice.base)
        .header("x-smpl-csrf", &csrf)
        .header("content-type", "application/json")
        .body(serde_json::json!({ "path": inside }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(show.status(), StatusCode::OK);
    alice.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn previews_come_as_ogg_vorbis_or_as_wav_decoded_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let alice = node(&dir).await;
    let folder = dir.path().join("drums");
    smpl_testkit::pack::make_pack(&folder);
    let pack = publish_by_api(&alice, &folder, "Preview Drums", 300).await;
    let (cookie, _) = alice.login().await;
    let client = WebNode::client();
    let url = format!("{}/ui/preview/{pack}?sample=Line_Snare.wav", alice.base);
    let ogg = client.get(&url).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(ogg.status(), StatusCode::OK);
    assert_eq!(ogg.headers()["content-type"], "audio/ogg");
    assert!(ogg.bytes().await.unwrap().starts_with(b"OggS"));
    let wav = client.get(format!("{url}&format=wav")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(wav.status(), StatusCode::OK);
    assert_eq!(wav.headers()["content-type"], "audio/wav");
    let bytes = wav.bytes().await.unwrap();
    assert!(bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WAVE", "not a WAV file");
    let rate = u32::from_le_bytes(bytes[24..28].try_into().unwrap());
    let data = u32::from_le_bytes(bytes[40..44].try_into().unwrap()) as usize;
    assert!(rate >= 8_000 && data > 1_000 && data + 44 == bytes.len(), "rate {rate}, {data} data bytes");
    alice.stop().await;
}

/// Reads server-sent events from `response` until one named `name` arrives.
async fn next_event(response: &mut reqwest::Response, name: &str, limit: std::time::Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut seen = String::new();
    while !seen.contains(&format!("event: {name}\n")) {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {name} event within {limit:?}; got {seen:?}"))
            .unwrap()
            .expect("the event stream ended");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejection_reaches_the_buyer_s_open_page_by_events() {
    let dir = tempfile::tempdir().unwrap();
    let alice = node(&dir).await;
    let bob = start(dir.path(), "bob", SellerPolicy::Manual, &[alice.addr()], WebOptions::default()).await;
    let folder = dir.path().join("drums");
    smpl_testkit::pack::make_pack(&folder);
    let pack = publish_by_api(&alice, &folder, "Rejected Drums", 900).await;
    let client = WebNode::client();
    let started = std::time::Instant::now();
    while client
        .get(format!("{}/v1/packs/{pack}", bob.base))
        .header("authorization", format!("Bearer {}", bob.token))
        .send()
        .await
        .unwrap()
        .status()
        != StatusCode::OK
    {
        assert!(started.elapsed().as_secs() < 60, "the listing never reached Bob");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (bob_cookie, bob_csrf) = bob.login().await;
    let mut events =
        client.get(format!("{}/ui/events", bob.base)).header("cookie", &bob_cookie).send().await.unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let bought = client
        .post(format!("{}/ui/packs/{pack}/buy", bob.base))
        .header("cookie", &bob_cookie)
        .header("origin", &bob.base)
        .header("x-smpl-csrf", &bob_csrf)
        .header("content-type", "application/json")
        .body(r#"{"payment_ref":"IOU"}"#)
        .send()
        .await
        .unwrap();
    let outcome: serde_json::Value = serde_json::from_slice(&bought.bytes().await.unwrap()).unwrap();
    assert_eq!(outcome["status"], "pending", "{outcome}");
    let order = outcome["order_id"].as_str().unwrap().to_string();
    next_event(&mut events, "purchases", std::time::Duration::from_secs(10)).await;

    let (alice_cookie, alice_csrf) = alice.login().await;
    let sales =
        client.get(format!("{}/sales", alice.base)).header("cookie", &alice_cookie).send().await.unwrap();
    assert!(sales.text().await.unwrap().contains(&order), "the order is on Alice's sales page");
    let rejected = client
        .post(format!("{}/ui/sales/{order}/reject", alice.base))
        .header("cookie", &alice_cookie)
        .header("origin", &alice.base)
        .header("x-smpl-csrf", &alice_csrf)
        .header("content-type", "application/json")
        .body(r#"{"reason":"no payment seen"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status(), StatusCode::OK);

    // Bob's node collects the decision; his open page hears of it and its panel says why.
    let started = std::time::Instant::now();
    loop {
        next_event(&mut events, "purchases", std::time::Duration::from_secs(60)).await;
        let panel = client
            .get(format!("{}/ui/packs/{pack}/licence", bob.base))
            .header("cookie", &bob_cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if panel.contains("rejected") {
            assert!(panel.contains("no payment seen"), "{panel}");
            break;
        }
        assert!(started.elapsed().as_secs() < 60, "the rejection never reached Bob's page: {panel}");
    }
    drop(events);
    bob.stop().await;
    alice.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_node_stops_cleanly_while_a_page_listens_and_opens_again() {
    let dir = tempfile::tempdir().unwrap();
    let alice = node(&dir).await;
    let (cookie, _) = alice.login().await;
    let events = WebNode::client()
        .get(format!("{}/ui/events", alice.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    alice.stop().await;
    assert!(!dir.path().join("alice/node.json").exists(), "node.json is removed at shutdown");
    // The store was closed: the same home opens again at once.
    let again = node(&dir).await;
    again.stop().await;
    drop(events);
}

/// Posts `body` to one of the web app's actions as the logged-in browser would.
async fn act(
    node: &WebNode,
    session: &(String, String),
    path: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    WebNode::client()
        .post(format!("{}{path}", node.base))
        .header("cookie", &session.0)
        .header("x-smpl-csrf", &session.1)
        .header("origin", &node.base)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

trait JsonValue {
    async fn json_value(self) -> serde_json::Value;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> serde_json::Value {
        let bytes = self.bytes().await.unwrap();
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
    }
}

async fn page(node: &WebNode, session: &(String, String), path: &str) -> String {
    let response = WebNode::client()
        .get(format!("{}{path}", node.base))
        .header("cookie", &session.0)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn publishing_imports_before_signing_and_a_new_version_shows_its_changes() {
    let dir = tempfile::tempdir().unwrap();
    let alice = node(&dir).await;
    let session = alice.login().await;
    let folder = dir.path().join("two-step");
    smpl_testkit::pack::make_pack(&folder);
    std::fs::write(folder.join("notes.txt"), "mixed at home").unwrap();
    let form = |dir: &std::path::Path, title: &str, price: &str, update: &str| {
        serde_json::json!({ "dir": dir.to_str().unwrap(), "title": title, "genre": "techno", "price": price,
                            "currency": "USD", "license": "royalty-free", "update": update })
    };

    // Step one analyses and imports; nothing is listed yet.
    let analysed =
        act(&alice, &session, "/ui/publish/analyse", form(&folder, "Two Step Drums", "4.99", "")).await;
    assert_eq!(analysed.status(), StatusCode::OK);
    let analysed: serde_json::Value = analysed.json_value().await;
    assert_eq!(analysed["files"], 3, "{analysed}");
    let table = analysed["html"].as_str().unwrap();
    assert!(table.contains("Line_Snare.wav") && table.contains("one-shot"), "{table}");
    assert!(table.contains("notes.txt") && table.contains("skipped"), "{table}");
    assert!(!page(&alice, &session, "/mine").await.contains("Two Step Drums"), "listed before signing");

    // The files were imported at step one: signing does not read the folder again.
    let moved = dir.path().join("moved-away");
    std::fs::rename(&folder, &moved).unwrap();
    let signed =
        act(&alice, &session, "/ui/publish/sign", serde_json::json!({ "draft": analysed["draft"] })).await;
    let signed_status = signed.status();
    let outcome: serde_json::Value = signed.json_value().await;
    assert_eq!(signed_status, StatusCode::OK, "{outcome}");
    assert_eq!((outcome["seq"].as_u64(), outcome["samples"].as_u64()), (Some(1), Some(3)), "{outcome}");
    let pack = outcome["pack_id"].as_str().unwrap().to_string();
    let mine = page(&alice, &session, "/mine").await;
    assert!(mine.contains("Two Step Drums") && mine.contains(&format!("/publish?update={pack}")), "{mine}");
    let again =
        act(&alice, &session, "/ui/publish/sign", serde_json::json!({ "draft": analysed["draft"] })).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND, "a draft is signed once");

    // A cancelled draft publishes nothing and cannot be signed afterwards.
    let other = dir.path().join("other");
    smpl_testkit::pack::make_pack_with(&other, [(0.5, 70.0), (0.4, 80.0), (0.3, 300.0)]);
    let draft: serde_json::Value =
        act(&alice, &session, "/ui/publish/analyse", form(&other, "Cancelled Drums", "", ""))
            .await
            .json_value()
            .await;
    let cancelled =
        act(&alice, &session, "/ui/publish/cancel", serde_json::json!({ "draft": draft["draft"] })).await;
    assert_eq!(cancelled.json_value().await["cancelled"], true);
    let late =
        act(&alice, &session, "/ui/publish/sign", serde_json::json!({ "draft": draft["draft"] })).await;
    assert_eq!(late.status(), StatusCode::NOT_FOUND);
    assert!(!page(&alice, &session, "/mine").await.contains("Cancelled Drums"));

    // A new version: the form comes filled in; the analysis lists what changes.
    let filled = page(&alice, &session, &format!("/publish?update={pack}")).await;
    assert!(filled.contains("New version of") && filled.contains("value=\"Two Step Drums\""), "{filled}");
    assert!(filled.contains("value=\"4.99\"") && filled.contains(&format!("value=\"{pack}\"")), "{filled}");
    smpl_testkit::pack::write_drum(&moved.join("Extra_Rim.wav"), 0.2, 400.0);
    let update: serde_json::Value =
        act(&alice, &session, "/ui/publish/analyse", form(&moved, "Two Step Drums", "6", &pack))
            .await
            .json_value()
            .await;
    let changes = update["html"].as_str().unwrap();
    assert!(changes.contains("Changes from version 1"), "{changes}");
    assert!(changes.contains("4.99 USD") && changes.contains("6.00 USD"), "{changes}");
    assert!(changes.contains("files: 1 added, 0 changed, 0 removed"), "{changes}");
    let second: serde_json::Value =
        act(&alice, &session, "/ui/publish/sign", serde_json::json!({ "draft": update["draft"] }))
            .await
            .json_value()
            .await;
    assert_eq!(
        (second["pack_id"].as_str(), second["seq"].as_u64()),
        (Some(pack.as_str()), Some(2)),
        "{second}"
    );

    // The same folder and fields again: nothing to sign.
    let same: serde_json::Value =
        act(&alice, &session, "/ui/publish/analyse", form(&moved, "Two Step Drums", "6", &pack))
            .await
            .json_value()
            .await;
    assert!(same["draft"].is_null(), "{same}");
    assert!(same["html"].as_str().unwrap().contains("Nothing changed from version 2"), "{same}");
    // A folder with nothing to publish is answered with why.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("readme.txt"), "no audio").unwrap();
    let refused = act(&alice, &session, "/ui/publish/analyse", form(&empty, "Empty", "", "")).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("readme.txt"));
    alice.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_network_page_connects_to_a_friend_from_their_invite_line() {
    let dir = tempfile::tempdir().unwrap();
    let alice = node(&dir).await;
    let bob = start(dir.path(), "bob", SellerPolicy::Manual, &[], WebOptions::default()).await;
    let session = bob.login().await;
    let alice_id = alice.info.node_id.to_string();
    assert!(!page(&bob, &session, "/network").await.contains(&format!("<code>{alice_id}</code>")));

    let refused = act(&bob, &session, "/ui/connect", serde_json::json!({ "addr": "not an address" })).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let error = refused.json_value().await;
    assert!(!error["error"].as_str().unwrap_or_default().is_empty(), "{error}");

    let invite = WebNode::client()
        .get(format!("{}/v1/invite", alice.base))
        .header("authorization", format!("Bearer {}", alice.token))
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    let line = invite["invite"].as_str().unwrap_or_else(|| panic!("{invite}"));
    let connected = act(&bob, &session, "/ui/connect", serde_json::json!({ "addr": line })).await;
    assert_eq!(connected.status(), StatusCode::OK);
    assert_eq!(connected.json_value().await["node_id"], alice_id.as_str());
    let network = page(&bob, &session, "/network").await;
    assert!(network.contains(&format!("<code>{alice_id}</code> direct")), "{network}");
    bob.stop().await;
    alice.stop().await;
}
