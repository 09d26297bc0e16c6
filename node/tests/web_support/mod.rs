//! Helpers of the web app's tests: real nodes (the daemon, API and web app on
//! 127.0.0.1:0, mDNS off) that the tests reach as any outside client would, over
//! plain HTTP; login URLs come from the API with the bearer token in `api.token`,
//! as `smpl ui` gets them.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use smpl_node::web::WebOptions;
use smpl_node::{Home, Multiaddr, NodeError, NodeInfo, NodeOptions, SellerPolicy, TradeConfig};
use smpl_node::{PublishEvent, PublishRequest};
use smpl_protocol::{LicenseTerms, Price};
use tokio::sync::oneshot;

pub const STEP: Duration = Duration::from_secs(60);

/// A node running as `smpl node` runs it, stopped on drop.
pub struct WebNode {
    pub root: PathBuf,
    pub home: Home,
    pub info: NodeInfo,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub port: u16,
    /// The CLI's bearer token.
    pub token: String,
    pub library: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), NodeError>>>,
}

/// Starts a node named `name` in `root/<name>` that sells under `policy`,
/// joining through `bootstrap`.
pub async fn start(
    root: &Path,
    name: &str,
    policy: SellerPolicy,
    bootstrap: &[Multiaddr],
    web: WebOptions,
) -> WebNode {
    let home = Home::new(root.join(name));
    home.init().unwrap();
    let mut config = home.config().unwrap();
    config.name = name.to_string();
    config.library = root.join(format!("{name}-library"));
    home.save_config(&config).unwrap();
    let options = NodeOptions {
        home: home.clone(),
        api: "127.0.0.1:0".parse().unwrap(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap: bootstrap.to_vec(),
        mdns: false,
        relay: None,
        relay_server: false,
        gc_interval: None,
        budget: Default::default(),
        trade: TradeConfig { policy, hook_timeout: Duration::from_secs(2), ..TradeConfig::default() },
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let (ready, info) = oneshot::channel::<NodeInfo>();
    let task = tokio::spawn(smpl_node::run_with_web(
        options,
        web,
        async move {
            let _ = stopped.await;
        },
        move |info: &NodeInfo| {
            let _ = ready.send(info.clone());
        },
    ));
    let info =
        tokio::time::timeout(STEP, info).await.expect("node start timed out").expect("node failed to start");
    let token = std::fs::read_to_string(home.token_path()).unwrap().trim().to_string();
    let port: u16 = info.api.rsplit(':').next().unwrap().parse().unwrap();
    WebNode {
        root: root.to_path_buf(),
        base: format!("http://127.0.0.1:{port}"),
        port,
        token,
        library: config.library,
        home,
        info,
        stop: Some(stop),
        task: Some(task),
    }
}

impl WebNode {
    /// The first libp2p listen address, for another node to join through.
    pub fn addr(&self) -> Multiaddr {
        self.info.listen[0].parse().unwrap()
    }

    /// A plain HTTP client that follows no redirects and keeps no cookies.
    pub fn client() -> reqwest::Client {
        // The workspace builds reqwest with rustls and no provider; plain HTTP needs none,
        // but the builder wants one installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    /// A new one-time login URL, asked for with the bearer token.
    pub async fn login_url(&self) -> String {
        let response = Self::client()
            .post(format!("{}/v1/ui/login", self.base))
            .header("authorization", format!("Bearer {}", self.token))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        body["url"].as_str().unwrap().to_string()
    }

    /// Logs in like a browser: the session cookie (`name=value`) and the page's CSRF token.
    pub async fn login(&self) -> (String, String) {
        let url = self.login_url().await;
        let response = Self::client().get(&url).send().await.unwrap();
        assert_eq!(response.status(), 303);
        let cookie =
            response.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
        let page =
            Self::client().get(format!("{}/", self.base)).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        let csrf = html
            .split("name=\"smpl-csrf\" content=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        (cookie, csrf)
    }

    /// Stops the node and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let finished = tokio::time::timeout(Duration::from_secs(20), task).await;
            let result =
                finished.expect("the node did not stop within 20 s").expect("the node's task panicked");
            result.expect("the node stopped with an error");
        }
    }
}

impl Drop for WebNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A free port on `ip` (bound and let go).
pub fn free_port(ip: [u8; 4]) -> SocketAddr {
    let listener = std::net::TcpListener::bind(SocketAddr::from((ip, 0))).unwrap();
    listener.local_addr().unwrap()
}

/// Publishes a folder through the API, as `smpl publish` does.
pub async fn publish_by_api(node: &WebNode, dir: &Path, title: &str, cents: u64) -> String {
    let request = PublishRequest {
        dir: dir.to_path_buf(),
        title: Some(title.into()),
        genre: Some("techno".into()),
        tags: Some(vec!["dusty".into()]),
        description: Some("Drums with dust on them.".into()),
        price: Some(Price { amount_minor: cents, currency: "USD".into() }),
        license: Some(LicenseTerms::Named("royalty-free".into())),
        ..PublishRequest::default()
    };
    let response = WebNode::client()
        .post(format!("{}/v1/publish", node.base))
        .header("authorization", format!("Bearer {}", node.token))
        .header("content-type", "application/json")
        .body(serde_json::to_string(&request).unwrap())
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    for line in text.lines() {
        if let Ok(PublishEvent::Done(outcome)) = serde_json::from_str::<PublishEvent>(line) {
            return outcome.pack_id.to_hex();
        }
    }
    panic!("publish failed: {text}");
}
