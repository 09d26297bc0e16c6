//! The web app in real browsers, headless, each driven through its WebDriver server
//! by fantoccini: Debian's `chromium` through `chromedriver`, and Debian's
//! `firefox-esr` through `geckodriver` (built from crates.io); `scripts/setup.sh`
//! installs them, nothing is downloaded at run time. Two real nodes on 127.0.0.1:
//! Alice sells with the manual policy, Bob buys.
//!
//! In Chromium, Bob's browser searches, narrows by a facet, auditions (the audio
//! element's time advances), moves with the arrow keys and hears the next sample,
//! buys; Alice's browser approves; Bob's page shows the licence without a reload,
//! downloads with progress (the files are byte-identical to Alice's) and saves the
//! certificate. Alice's browser publishes a folder holding a text file (shown as
//! skipped) and Bob finds the new pack; then Bob searches, auditions and buys with
//! the keyboard only. In Firefox, Bob does the keyboard path again, up to the
//! licence arriving and the download.
//!
//! Each browser is started with everything that phones home turned off, and host
//! names lead nowhere (Chromium resolves none; Firefox resolves every one to
//! 127.0.0.1 and sends the rest to a dead proxy), so they talk to 127.0.0.1 only.
//! With `SMPL_SCREENSHOTS=DIR` the Chromium test writes its screenshots (desktop and
//! 390 px phone) there; the committed ones in `docs/screenshots/` come from
//! `SMPL_SCREENSHOTS=docs/screenshots`.

mod web_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use smpl_node::SellerPolicy;
use smpl_node::web::WebOptions;
use web_support::{WebNode, free_port, publish_by_api, start};

const WAIT: Duration = Duration::from_secs(30);

/// The browsers the web app is tested in, each through its own WebDriver server.
#[derive(Clone, Copy, Debug)]
enum Engine {
    /// Debian's `chromium` through `chromedriver`.
    Chromium,
    /// Debian's `firefox-esr` through `geckodriver` (built from crates.io by
    /// `scripts/setup.sh`).
    Firefox,
}

/// A WebDriver server on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
    engine: Engine,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first of `paths` that exists, else the first program of that name on `PATH`.
fn installed(paths: &[&str], hint: &str) -> PathBuf {
    let name = Path::new(paths[0]).file_name().unwrap();
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect::<Vec<_>>())
        .unwrap_or_default();
    paths.iter().map(PathBuf::from).chain(on_path).find(|p| p.exists()).unwrap_or_else(|| panic!("{hint}"))
}

fn driver(engine: Engine) -> Driver {
    let port = free_port([127, 0, 0, 1]).port();
    let mut command = match engine {
        Engine::Chromium => {
            let binary = installed(
                &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
                "chromedriver is missing: run scripts/setup.sh (Debian packages chromium and chromium-driver)",
            );
            let mut command = Command::new(binary);
            command.arg(format!("--port={port}")).arg("--allowed-ips=127.0.0.1");
            command
        }
        Engine::Firefox => {
            let cargo_bin =
                std::env::var("HOME").map(|h| format!("{h}/.cargo/bin/geckodriver")).unwrap_or_default();
            let binary = installed(
                &["/usr/local/bin/geckodriver", &cargo_bin],
                "geckodriver is missing: run scripts/setup.sh (firefox-esr from Debian, geckodriver from crates.io)",
            );
            let mut command = Command::new(binary);
            command.arg("--host=127.0.0.1").arg(format!("--port={port}")).arg("--log=error");
            command
        }
    };
    let child =
        command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("starting the WebDriver server");
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "{engine:?}'s WebDriver server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver { child, url, engine }
}

/// Chromium's switches: nothing that phones home, and every host name resolves
/// to nothing, so only IP literals (127.0.0.1) are reachable.
fn chromium(downloads: &Path) -> Value {
    let args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1200,850",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-breakpad",
        "--disable-client-side-phishing-detection",
        "--disable-domain-reliability",
        "--no-pings",
        "--metrics-recording-only",
        "--safebrowsing-disable-auto-update",
        "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,\
         AutofillServerCommunication,CertificateTransparencyComponentUpdater,NetworkTimeServiceQuerying",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--autoplay-policy=no-user-gesture-required",
    ];
    json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": args,
            "prefs": {
                "download.default_directory": downloads,
                "download.prompt_for_download": false,
            },
        },
    })
}

/// Firefox's preferences: every connection that is not to 127.0.0.1 goes to a
/// SOCKS proxy on 127.0.0.1 port 9, where nothing listens, with no direct retry
/// when it fails; every host name resolves to 127.0.0.1 without a lookup; remote
/// settings point at that dead port too; background services off besides.
fn firefox(downloads: &Path) -> Value {
    json!({
        "browserName": "firefox",
        "moz:firefoxOptions": {
            "binary": "/usr/bin/firefox-esr",
            "args": ["-headless", "-width=1200", "-height=850"],
            "env": { "MOZ_CRASHREPORTER_DISABLE": "1" },
            "prefs": {
                "network.proxy.type": 1,
                "network.proxy.socks": "127.0.0.1",
                "network.proxy.socks_port": 9,
                "network.proxy.socks_version": 5,
                "network.proxy.socks_remote_dns": true,
                "network.proxy.no_proxies_on": "127.0.0.1",
                "network.proxy.failover_direct": false,
                "network.dns.forceResolve": "127.0.0.1",
                "services.settings.server": "http://127.0.0.1:9/v1",
                "network.trr.mode": 5,
                "network.dns.disablePrefetch": true,
                "network.prefetch-next": false,
                "network.http.speculative-parallel-limit": 0,
                "network.captive-portal-service.enabled": false,
                "network.connectivity-service.enabled": false,
                "browser.safebrowsing.malware.enabled": false,
                "browser.safebrowsing.phishing.enabled": false,
                "browser.safebrowsing.downloads.enabled": false,
                "browser.safebrowsing.downloads.remote.enabled": false,
                "datareporting.policy.dataSubmissionEnabled": false,
                "datareporting.healthreport.uploadEnabled": false,
                "toolkit.telemetry.enabled": false,
                "app.update.auto": false,
                "app.normandy.enabled": false,
                "extensions.update.enabled": false,
                "dom.push.connection.enabled": false,
                "media.autoplay.default": 0,
                // No sound card here: Firefox's own stand-in audio output, whose
                // clock runs as a real one does.
                "media.cubeb.force_mock_context": true,
                "media.autoplay.blocking_policy": 0,
                "browser.download.dir": downloads,
                "browser.download.folderList": 2,
                "browser.download.useDownloadDir": true,
                "browser.helperApps.neverAsk.saveToDisk": "text/plain",
            },
        },
    })
}

/// A headless browser of the driver's engine that reaches nothing but 127.0.0.1.
async fn browser(driver: &Driver, downloads: &Path) -> Client {
    let caps = match driver.engine {
        Engine::Chromium => chromium(downloads),
        Engine::Firefox => firefox(downloads),
    };
    let Value::Object(caps) = caps else { unreachable!() };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client =
        tokio::time::timeout(WAIT, ClientBuilder::new(connector).capabilities(caps).connect(&driver.url))
            .await
            .unwrap_or_else(|_| panic!("starting {:?} timed out", driver.engine))
            .unwrap_or_else(|e| panic!("starting {:?}: {e}", driver.engine));
    client
        .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
            Some(Duration::from_secs(10)),
            Some(Duration::from_secs(20)),
            Some(Duration::from_secs(0)),
        ))
        .await
        .unwrap();
    client
}

/// Runs `script` (a function body returning a value) until it returns something
/// truthy, for up to `limit`; returns that value.
async fn until(c: &Client, what: &str, script: &str, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let value = c.execute(script, vec![]).await.unwrap_or(Value::Null);
        let truthy = match &value {
            Value::Null | Value::Bool(false) => false,
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::String(s) => !s.is_empty(),
            _ => true,
        };
        if truthy {
            return value;
        }
        if started.elapsed() > limit {
            let source = c.source().await.unwrap_or_default();
            let start: String = source.chars().take(4000).collect();
            panic!("{what}: not within {limit:?}; page:\n{start}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn find(c: &Client, css: &str) -> Element {
    c.wait().at_most(WAIT).for_element(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"))
}

/// Clicks the element `css` selects, finding it again if the page replaced it
/// meanwhile (live updates swap panels in).
async fn click(c: &Client, css: &str) {
    for _ in 0..5 {
        match find(c, css).await.click().await {
            Ok(()) => return,
            Err(e) if e.is_stale_element_reference() => continue,
            Err(e) => panic!("clicking {css}: {e}"),
        }
    }
    panic!("{css} kept going stale");
}

/// Saves a screenshot at desktop width and at 390 px when `SMPL_SCREENSHOTS` names a folder.
async fn screenshots(c: &Client, name: &str) {
    let Some(dir) = std::env::var_os("SMPL_SCREENSHOTS").map(PathBuf::from) else { return };
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}-desktop.png")), c.screenshot().await.unwrap()).unwrap();
    c.set_window_size(390, 844).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(dir.join(format!("{name}-phone.png")), c.screenshot().await.unwrap()).unwrap();
    c.set_window_size(1200, 850).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// Waits until `node`'s index holds a pack titled `title`.
async fn wait_listed(node: &WebNode, title: &str) {
    let started = Instant::now();
    loop {
        let response = WebNode::client()
            .post(format!("{}/v1/search", node.base))
            .header("authorization", format!("Bearer {}", node.token))
            .header("content-type", "application/json")
            .body(json!({ "text": title, "packs": true }).to_string())
            .send()
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap_or(Value::Null);
        if body["hits"].as_array().is_some_and(|h| h.iter().any(|h| h["pack_title"] == title)) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{title} never reached {}", node.base);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Types `keys` into the focused element. The page may replace that element
/// (a results list re-rendered by a server event) between finding it and typing:
/// then the newly focused one is found and typed into.
async fn press(c: &Client, keys: &str) {
    for _ in 0..5 {
        match c.active_element().await.unwrap().send_keys(keys).await {
            Err(fantoccini::error::CmdError::Standard(e))
                if e.error == fantoccini::error::ErrorStatus::StaleElementReference =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            sent => return sent.unwrap(),
        }
    }
    panic!("the focused element kept going stale while typing {keys:?}");
}

/// How far the playing preview has got, and which sample it is.
const PLAYING: &str = "const p = window.smplPlayer; \
    return p && p.current && !p.current.paused && p.current.currentTime > 0.05 \
      ? [p.row.dataset.sample, p.current.currentTime] : null;";

/// Presses the down arrow while `first` plays, waits until the next sample plays,
/// and prints the audition start times (`label` names the browser).
async fn down_plays_the_next(c: &Client, first: &Value, label: &str) {
    press(c, &Key::Down.to_string()).await;
    let next =
        format!("const r = (function() {{ {PLAYING} }})(); return r && r[0] !== {} ? r : null;", first[0]);
    let second = until(c, "the next preview playing", &next, WAIT).await;
    assert_ne!(first[0], second[0]);
    let starts = c.execute("return window.smplPlayer.timings", vec![]).await.unwrap();
    println!("{label}audition start times (ms, the second one fetched ahead): {starts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_producers_trade_through_their_browsers() {
    let test_started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let alice = start(dir.path(), "alice", SellerPolicy::Manual, &[], WebOptions::default()).await;
    let bob = start(dir.path(), "bob", SellerPolicy::Manual, &[alice.addr()], WebOptions::default()).await;
    let drums = dir.path().join("drums");
    smpl_testkit::pack::make_pack(&drums);
    let pack = publish_by_api(&alice, &drums, "Dusty Line Drums", 499).await;
    wait_listed(&bob, "Dusty Line Drums").await;

    let driver = driver(Engine::Chromium);
    let (bob_downloads, alice_downloads) =
        (dir.path().join("bob-downloads"), dir.path().join("alice-downloads"));
    let b = browser(&driver, &bob_downloads).await;
    let a = browser(&driver, &alice_downloads).await;

    // A browser that has drawn a page before (a producer's browser is running):
    // the first load below then measures the node's page, not the browser's own
    // start-up (its renderer and font set-up). Nothing of the node is cached.
    b.goto("data:text/html,<p>a producer's browser</p>").await.unwrap();
    // Bob logs in: the token URL redirects to the search page, without the token.
    b.goto(&bob.login_url().await).await.unwrap();
    let url = b.current_url().await.unwrap();
    assert_eq!(url.path(), "/");
    assert!(url.query().is_none(), "the token left the address bar: {url}");
    // Page load times from the Navigation Timing API: [load event, server answer
    // (request to last byte), DOM ready], in ms since the navigation started.
    let navigation = "const n = performance.getEntriesByType('navigation')[0]; \
        return [n.loadEventEnd - n.startTime, n.responseEnd - n.requestStart, n.domContentLoadedEventEnd - n.startTime];";
    let after_login = b.execute(navigation, vec![]).await.unwrap();
    b.goto(&format!("{}/", bob.base)).await.unwrap();
    let again = b.execute(navigation, vec![]).await.unwrap();
    // The page's weight: HTML, script and stylesheet, audio aside.
    let weight = b
        .execute(
            "const r = performance.getEntriesByType('resource').filter(e => !e.name.includes('/ui/preview/')); \
             return performance.getEntriesByType('navigation')[0].decodedBodySize \
               + r.reduce((n, e) => n + e.decodedBodySize, 0);",
            vec![],
        )
        .await
        .unwrap();
    println!("search page weight, audio aside: {weight} bytes");
    assert!(weight.as_u64().unwrap() < 200_000, "{weight} bytes");
    println!(
        "search page load [load, server, DOM ready] ms: after the login redirect {after_login}, opened again {again}"
    );

    // Results as he types; the state goes to the URL.
    find(&b, "#q").await.send_keys("line").await.unwrap();
    until(&b, "the words in the URL", "return location.search === '?q=line'", WAIT).await;
    until(&b, "three results", "return document.querySelectorAll('tr.hit').length === 3", WAIT).await;
    until(&b, "waveforms drawn", "return !!document.querySelector('tr.hit[data-wave] canvas.wave')", WAIT)
        .await;

    // Narrow by a facet: the genre, then the tag.
    click(&b, "section.facet[data-facet=\"genre\"] a[href*=\"genre=techno\"]").await;
    until(&b, "the genre facet in the URL", "return location.search.includes('genre=techno')", WAIT).await;
    click(&b, "section.facet[data-facet=\"tag\"] a[href*=\"tag=\"]").await;
    until(&b, "the tag facet in the URL", "return location.search.includes('tag=')", WAIT).await;
    until(&b, "results after facets", "return document.querySelectorAll('tr.hit').length === 3", WAIT).await;
    screenshots(&b, "search").await;

    // Audition: a click plays, time advances; the down arrow plays the next one.
    click(&b, "tr.hit button.play").await;
    let first = until(&b, "the first preview playing", PLAYING, WAIT).await;
    down_plays_the_next(&b, &first, "").await;

    // The pack page; Bob buys with a payment reference.
    b.goto(&format!("{}/packs/{pack}", bob.base)).await.unwrap();
    b.execute("window.sameDocument = true; return true;", vec![]).await.unwrap();
    find(&b, "form.buy input[name=\"payment_ref\"]").await.send_keys("INV-42").await.unwrap();
    let bought = Instant::now();
    click(&b, "form.buy button").await;
    until(&b, "the order pending", "return !!document.querySelector('#licence .state.pending')", WAIT).await;
    println!("order pending after {:?}", bought.elapsed());

    // Alice approves in her browser.
    a.goto(&alice.login_url().await).await.unwrap();
    a.goto(&format!("{}/sales", alice.base)).await.unwrap();
    find(&a, "button.approve").await;
    let row = find(&a, "#orders tr[data-order]").await.text().await.unwrap();
    assert!(row.contains("INV-42"), "{row}");
    screenshots(&a, "sales").await;
    click(&a, "button.approve").await;
    until(&a, "the order issued", "return !!document.querySelector('#orders .status.issued')", WAIT).await;

    // Bob's open page shows the licence without a reload.
    until(
        &b,
        "the licence on Bob's page",
        "return !!document.querySelector('#licence .state.issued')",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(b.execute("return window.sameDocument === true", vec![]).await.unwrap(), json!(true));

    // Download with progress; the files are Alice's, byte for byte.
    click(&b, "button.fetch").await;
    until(&b, "the download done", "return !!document.querySelector('#licence .fetched.done')", WAIT).await;
    let progress = b
        .execute("const p = document.querySelector('#licence progress'); return [p.value, p.max];", vec![])
        .await
        .unwrap();
    assert!(progress[1].as_f64().unwrap() > 1.0 && progress[0] == progress[1], "progress {progress}");
    let folder = find(&b, "#licence .fetched button.show").await.attr("data-path").await.unwrap().unwrap();
    assert!(Path::new(&folder).starts_with(&bob.library), "{folder}");
    smpl_testkit::pack::assert_same_files(&drums, Path::new(&folder));
    screenshots(&b, "pack").await;

    // Bob saves the certificate.
    click(&b, "a.certificate").await;
    let started = Instant::now();
    // Chromium makes the file under its final name, empty, when the download
    // starts, and moves the finished download over it: wait for the bytes.
    let certificate = loop {
        let found = std::fs::read_dir(&bob_downloads)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "txt"));
        if let Some(text) =
            found.and_then(|path| std::fs::read_to_string(path).ok()).filter(|t| !t.is_empty())
        {
            break text;
        }
        assert!(started.elapsed() < WAIT, "the certificate was not saved in {}", bob_downloads.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(certificate.contains("Dusty Line Drums"), "{certificate}");
    let viewed = b
        .execute(
            "return fetch(document.querySelector('a.view-certificate').href) \
               .then(async r => [r.headers.get('content-disposition'), await r.text()]);",
            vec![],
        )
        .await
        .unwrap();
    assert!(viewed[0].as_str().unwrap().starts_with("inline"), "{viewed}");
    assert_eq!(viewed[1].as_str().unwrap(), certificate, "the certificate viewed is the one saved");

    // The library: the pack's folder with its files to drag into a DAW, and the licence.
    b.goto(&format!("{}/library", bob.base)).await.unwrap();
    until(&b, "the library's files", "return document.querySelectorAll('.folder a.drag').length === 3", WAIT)
        .await;
    let library = find(&b, "main").await.text().await.unwrap();
    assert!(library.contains("Dusty Line Drums") && library.contains("certificate"), "{library}");
    // The network page: this node, and Alice among its peers.
    b.goto(&format!("{}/network", bob.base)).await.unwrap();
    let network = find(&b, "main").await.text().await.unwrap();
    for id in [bob.info.node_id.to_string(), alice.info.node_id.to_string()] {
        assert!(network.contains(&id), "{id} not on the network page: {network}");
    }

    // Alice publishes a folder with a text file in it: analysed first, the text
    // file shown as skipped, then signed.
    let night = dir.path().join("night");
    smpl_testkit::pack::make_pack_with(&night, [(0.6, 80.0), (0.5, 95.0), (0.25, 300.0)]);
    std::fs::write(night.join("notes.txt"), "mixed at night").unwrap();
    a.goto(&format!("{}/publish", alice.base)).await.unwrap();
    find(&a, "input[name=\"dir\"]").await.send_keys(&night.display().to_string()).await.unwrap();
    until(&a, "the folder checked", "return document.querySelector('#dir-check.ok')?.textContent", WAIT)
        .await;
    find(&a, "input[name=\"title\"]").await.send_keys("Night Shift Percussion").await.unwrap();
    find(&a, "input[name=\"genre\"]").await.send_keys("techno").await.unwrap();
    find(&a, "input[name=\"tags\"]").await.send_keys("night, perc").await.unwrap();
    find(&a, "input[name=\"price\"]").await.send_keys("2.50").await.unwrap();
    click(&a, "form#publish button[type=\"submit\"]").await;
    let skipped = find(&a, "#analysis tr.skipped").await.text().await.unwrap();
    assert!(skipped.contains("notes.txt") && skipped.contains("not an audio file"), "{skipped}");
    assert_eq!(a.find_all(Locator::Css("#analysis tr.ok")).await.unwrap().len(), 3);
    screenshots(&a, "publish").await;
    click(&a, "#sign").await;
    find(&a, "#analysis .published a").await;

    // Keyboard only, on Bob's side: / focuses the search, the arrows audition,
    // Enter opens the pack, the payment field has the focus, Enter buys.
    wait_listed(&bob, "Night Shift Percussion").await;
    b.goto(&format!("{}/", bob.base)).await.unwrap();
    find(&b, "#q").await;
    press(&b, "/").await;
    until(&b, "the search box focused", "return document.activeElement.id === 'q'", WAIT).await;
    press(&b, "night shift").await;
    until(&b, "the words in the URL", "return location.search === '?q=night+shift'", WAIT).await;
    until(
        &b,
        "the new pack found",
        "return [...document.querySelectorAll('tr.hit')].some(r => r.textContent.includes('Night Shift Percussion'))",
        WAIT,
    )
    .await;
    press(&b, &Key::Down.to_string()).await;
    until(&b, "a preview playing from the keyboard", PLAYING, WAIT).await;
    press(&b, &Key::Enter.to_string()).await;
    until(&b, "the pack page", "return location.pathname.startsWith('/packs/')", WAIT).await;
    until(&b, "the payment field focused", "return document.activeElement.name === 'payment_ref'", WAIT)
        .await;
    let bought = Instant::now();
    press(&b, &format!("KEYS-1{}", Key::Enter)).await;
    until(
        &b,
        "the keyboard order pending",
        "return !!document.querySelector('#licence .state.pending')",
        Duration::from_secs(90),
    )
    .await;
    println!("keyboard order pending after {:?}", bought.elapsed());

    // Alice retracts her newest pack (listed first) from her packs page.
    a.goto(&format!("{}/mine", alice.base)).await.unwrap();
    until(&a, "both packs listed", "return document.querySelectorAll('button.retract').length === 2", WAIT)
        .await;
    click(&a, "tr:has(a[href^=\"/packs/\"]) button.retract").await;
    a.accept_alert().await.unwrap();
    until(&a, "one pack left", "return document.querySelectorAll('button.retract').length === 1", WAIT).await;
    a.goto(&format!("{}/mine", alice.base)).await.unwrap();
    let mine = find(&a, "main").await.text().await.unwrap();
    assert!(mine.contains("Dusty Line Drums") && !mine.contains("Night Shift"), "{mine}");

    b.close().await.unwrap();
    a.close().await.unwrap();
    drop(driver);
    bob.stop().await;
    alice.stop().await;
    println!("browser test took {:?}", test_started.elapsed());
}

/// Asks `node`'s API (as the CLI does) and returns the JSON answer.
async fn api(node: &WebNode, method: reqwest::Method, path: &str) -> Value {
    let response = WebNode::client()
        .request(method, format!("{}{path}", node.base))
        .header("authorization", format!("Bearer {}", node.token))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.bytes().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// The same exchange in Firefox, from the keyboard: search, audition (Ogg Vorbis,
/// which Firefox plays), the next sample, the pack, a purchase; the licence
/// arrives without a reload and the download's files are the seller's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn firefox_searches_auditions_buys_and_downloads_from_the_keyboard() {
    let dir = tempfile::tempdir().unwrap();
    let alice = start(dir.path(), "alice", SellerPolicy::Manual, &[], WebOptions::default()).await;
    let bob = start(dir.path(), "bob", SellerPolicy::Manual, &[alice.addr()], WebOptions::default()).await;
    let drums = dir.path().join("drums");
    smpl_testkit::pack::make_pack(&drums);
    publish_by_api(&alice, &drums, "Dusty Line Drums", 499).await;
    wait_listed(&bob, "Dusty Line Drums").await;

    let driver = driver(Engine::Firefox);
    let b = browser(&driver, &dir.path().join("bob-downloads")).await;
    b.goto(&bob.login_url().await).await.unwrap();
    let url = b.current_url().await.unwrap();
    assert!(url.path() == "/" && url.query().is_none(), "{url}");
    let vorbis =
        b.execute("return new Audio().canPlayType('audio/ogg; codecs=vorbis')", vec![]).await.unwrap();
    assert_eq!(vorbis, json!("probably"), "Firefox plays the Ogg Vorbis previews as they are");

    find(&b, "#q").await;
    press(&b, "/").await;
    until(&b, "the search box focused", "return document.activeElement.id === 'q'", WAIT).await;
    press(&b, "line").await;
    until(&b, "three results", "return document.querySelectorAll('tr.hit').length === 3", WAIT).await;
    press(&b, &Key::Down.to_string()).await;
    let first = until(&b, "a preview playing from the keyboard", PLAYING, WAIT).await;
    down_plays_the_next(&b, &first, "Firefox ").await;

    press(&b, &Key::Enter.to_string()).await;
    until(&b, "the pack page", "return location.pathname.startsWith('/packs/')", WAIT).await;
    until(&b, "the payment field focused", "return document.activeElement.name === 'payment_ref'", WAIT)
        .await;
    b.execute("window.sameDocument = true; return true;", vec![]).await.unwrap();
    press(&b, &format!("FOX-7{}", Key::Enter)).await;
    until(&b, "the order pending", "return !!document.querySelector('#licence .state.pending')", WAIT).await;

    // Alice approves (through her API, as `smpl sales approve` does).
    let sales = api(&alice, reqwest::Method::GET, "/v1/sales").await;
    let order = sales.as_array().unwrap().iter().find(|o| o["payment_ref"] == "FOX-7").expect("the order");
    let id = order["order_id"].as_str().unwrap();
    api(&alice, reqwest::Method::POST, &format!("/v1/sales/{id}/approve")).await;
    until(
        &b,
        "the licence on Bob's page",
        "return !!document.querySelector('#licence .state.issued')",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(b.execute("return window.sameDocument === true", vec![]).await.unwrap(), json!(true));

    click(&b, "button.fetch").await;
    until(&b, "the download done", "return !!document.querySelector('#licence .fetched.done')", WAIT).await;
    let folder = find(&b, "#licence .fetched button.show").await.attr("data-path").await.unwrap().unwrap();
    smpl_testkit::pack::assert_same_files(&drums, Path::new(&folder));

    b.close().await.unwrap();
    drop(driver);
    bob.stop().await;
    alice.stop().await;
}
