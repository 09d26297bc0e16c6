//! Live changes for open pages, as server-sent events (`/ui/events`).
//!
//! Events come from two places: what the web app itself starts (download and
//! publish progress) is sent as it happens; what arrives from the network (an
//! order decided by a seller, a buyer's new order, a listing) is found by a
//! watcher that compares the node's purchases, sales and listings every
//! [`WATCH_EVERY`], and only while a page is listening.

use std::collections::hash_map::DefaultHasher;
use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::node::Node;

/// How often the watcher looks for changes while a page listens.
pub const WATCH_EVERY: Duration = Duration::from_millis(500);
/// Events kept for a slow page; one that falls further behind skips ahead.
const BACKLOG: usize = 256;

/// One event: its name (the SSE `event:` field) and JSON data.
#[derive(Clone, Debug)]
pub struct Live {
    pub name: &'static str,
    pub data: String,
}

/// The sending side, cheap to clone.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Live>,
    /// Ends every open stream (at shutdown, which waits for connections to close).
    stop: CancellationToken,
}

impl Default for Hub {
    fn default() -> Self {
        Hub { tx: broadcast::channel(BACKLOG).0, stop: CancellationToken::new() }
    }
}

impl Hub {
    pub fn send(&self, name: &'static str, data: &impl Serialize) {
        let data = serde_json::to_string(data).unwrap_or_else(|_| "{}".into());
        let _ = self.tx.send(Live { name, data });
    }

    /// The event stream of one page.
    pub fn stream(&self) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
        let (rx, stop) = (self.tx.subscribe(), self.stop.clone());
        let stream = futures::stream::unfold((rx, stop), |(mut rx, stop)| async move {
            loop {
                let received = tokio::select! {
                    _ = stop.cancelled() => return None,
                    received = rx.recv() => received,
                };
                match received {
                    Ok(live) => {
                        return Some((Ok(Event::default().event(live.name).data(live.data)), (rx, stop)));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
    }

    /// Ends every open event stream.
    pub fn close(&self) {
        self.stop.cancel();
    }

    fn listened(&self) -> bool {
        self.tx.receiver_count() > 0
    }
}

#[derive(Default, PartialEq)]
struct Seen {
    purchases: u64,
    sales: u64,
    listings: u64,
}

fn digest(value: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// Watches the node for changes that came from elsewhere until `cancel`.
pub async fn watch(node: Arc<Node>, hub: Hub, cancel: CancellationToken) {
    let mut seen: Option<Seen> = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(WATCH_EVERY) => {}
        }
        if !hub.listened() {
            seen = None;
            continue;
        }
        let now = match look(&node).await {
            Ok(now) => now,
            Err(e) => {
                tracing::debug!("web: watching for changes failed: {e}");
                continue;
            }
        };
        if let Some(before) = &seen {
            if before.purchases != now.purchases {
                hub.send("purchases", &serde_json::json!({}));
            }
            if before.sales != now.sales {
                hub.send("sales", &serde_json::json!({}));
            }
            if before.listings != now.listings {
                hub.send("listings", &serde_json::json!({}));
            }
        }
        seen = Some(now);
    }
}

async fn look(node: &Node) -> Result<Seen, crate::node::NodeError> {
    let purchases: Vec<_> =
        node.purchases().await?.into_iter().map(|o| (o.order_id, o.status.to_string())).collect();
    let sales: Vec<_> =
        node.sales(false).await?.into_iter().map(|o| (o.order_id, o.status.to_string())).collect();
    let store = node.store().clone();
    let listings = tokio::task::spawn_blocking(move || store.pack_seqs()).await??;
    Ok(Seen { purchases: digest(&purchases), sales: digest(&sales), listings: digest(&listings) })
}
