//! Running a node in the foreground: open it, serve the API, write `node.json`,
//! and clean up on shutdown.

use std::future::Future;
use std::sync::Arc;

use crate::api;
use crate::home::{HomeError, NodeInfo};
use crate::node::{Node, NodeError, NodeOptions};
use crate::web::{Web, WebOptions};

/// Runs a node until `shutdown` completes. `on_ready` gets the node's info once
/// the API is listening and `node.json` is written.
pub async fn run(
    options: NodeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(&NodeInfo),
) -> Result<(), NodeError> {
    run_with_web(options, WebOptions::default(), shutdown, on_ready).await
}

/// [`run`], with the web app also on `web.ui_listen`. A one-time login URL for
/// the web app is printed on stderr once the node is ready.
pub async fn run_with_web(
    options: NodeOptions,
    web_options: WebOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(&NodeInfo),
) -> Result<(), NodeError> {
    let home = options.home.clone();
    let node = Arc::new(Node::start(&options).await?);
    let listener = tokio::net::TcpListener::bind(options.api).await.map_err(|source| HomeError::Io {
        action: "listen for the API on",
        path: options.api.to_string().into(),
        source,
    })?;
    let api_addr = listener.local_addr().map_err(|source| HomeError::Io {
        action: "read the API address of",
        path: options.api.to_string().into(),
        source,
    })?;
    let ui =
        match web_options.ui_listen {
            Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.map_err(|source| {
                HomeError::Io { action: "listen for the web app on", path: addr.to_string().into(), source }
            })?),
            None => None,
        };
    let ui_addr = ui.as_ref().and_then(|l| l.local_addr().ok());
    let token = home.new_api_token()?;
    // Listen addresses appear once the transports are bound.
    let mut listen = node.listen_addrs().await;
    for _ in 0..40 {
        if listen.len() >= options.listen.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        listen = node.listen_addrs().await;
    }
    let info = NodeInfo {
        node_id: node.node_id(),
        api: format!("http://{api_addr}"),
        listen,
        pid: std::process::id(),
    };
    home.write_node_info(&info)?;
    let web = std::sync::Arc::new(Web::new(node.clone(), api_addr, ui_addr, token));
    on_ready(&info);
    if let Some(network) = node.network() {
        // Whether peers can dial this node, each time AutoNAT or a relay changes it.
        let mut reach = network.reachability();
        tokio::spawn(async move {
            while reach.changed().await.is_ok() {
                let now = reach.borrow_and_update().clone();
                eprintln!("network: {now}");
            }
        });
    }
    eprintln!("web app: {} (a one-time login link; `smpl ui` makes another)", web.login_url());
    if let Some(addr) = ui_addr {
        eprintln!("web app also on http://{addr} (the same login)");
    }
    let served = api::serve(listener, ui, node.clone(), info, web, shutdown).await;
    home.remove_node_info();
    let _ = std::fs::remove_file(home.token_path());
    if let Ok(node) = Arc::try_unwrap(node) {
        node.shutdown().await;
    }
    served.map_err(|source| {
        NodeError::Home(HomeError::Io {
            action: "serve the API on",
            path: api_addr.to_string().into(),
            source,
        })
    })
}
