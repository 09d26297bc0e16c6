//! The node's buying and selling operations, as the local API offers them: `buy`,
//! the seller's `sales` with `approve` and `reject`, `licenses` and certificates,
//! and the task that sends pending purchases again ([`resend`]).
//! The rules live in [`crate::trade`]; this is the async glue to the network and
//! the blocking threads.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use smpl_protocol::wire::TradeRequest;
use smpl_protocol::{Envelope, LicenseId, Manifest, PackId, PaymentInfo, Signed};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Node, NodeError};
use crate::net::Network;
use crate::trade::{LicenseView, Order, OrderStatus, Trade, TradeError};

/// The first pause before a pending purchase is sent again (the pauses then
/// double, see [`resend`]).
pub(super) const RESEND_FIRST: Duration = Duration::from_secs(2);

/// How often `buy --wait` asks the seller again.
const WAIT_POLL: Duration = Duration::from_millis(500);

/// The longest pause between two sends of one pending purchase.
const RESEND_MAX: Duration = Duration::from_secs(5 * 60);

/// How often the ledger is tidied (expired purchases marked, old orders pruned).
const TIDY_EVERY: Duration = Duration::from_secs(60 * 60);

/// What `smpl buy` reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BuyOutcome {
    pub status: OrderStatus,
    pub order_id: String,
    pub pack_id: PackId,
    pub license_id: Option<LicenseId>,
    /// Why it was rejected, or what a pending order waits for.
    pub reason: Option<String>,
    /// How the seller asks to be paid, as the listing says.
    #[serde(default)]
    pub payment: Option<PaymentInfo>,
    /// The order is one that was pending already, sent again (not a new order).
    #[serde(default)]
    pub resent: bool,
    /// An update of a pack licensed earlier: issued without payment.
    #[serde(default)]
    pub upgrade: bool,
}

impl BuyOutcome {
    fn of(order: &Order, reason: Option<String>) -> BuyOutcome {
        BuyOutcome {
            status: order.status,
            order_id: order.order_id.clone(),
            pack_id: order.pack_id,
            license_id: order.license_id,
            reason: order.reason.clone().or(reason),
            payment: order.payment.clone(),
            resent: false,
            upgrade: false,
        }
    }
}

/// Runs blocking trade work off the runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, TradeError> + Send + 'static,
) -> Result<T, NodeError> {
    Ok(tokio::task::spawn_blocking(work).await??)
}

/// Sends a pending purchase to its seller and records the answer. A seller that
/// cannot be reached leaves it pending (it is sent again later).
async fn deliver(network: &Network, trade: &Trade, order: Order) -> Result<Order, NodeError> {
    let unreachable = |order: Order| async move {
        let (trade, id) = (trade.clone(), order.order_id.clone());
        let marked = blocking(move || {
            trade.seller_unreachable(&id)?;
            trade.purchase(&id)
        })
        .await?;
        Ok(marked.unwrap_or(order))
    };
    if !network.connect(order.seller).await? {
        return unreachable(order).await;
    }
    let request = TradeRequest::Buy(ByteBuf::from(order.request.clone()));
    let response = match network.trade(order.seller, request).await {
        Ok(response) => response,
        Err(e) => {
            tracing::debug!("order {} not delivered yet: {e}", order.order_id);
            return unreachable(order).await;
        }
    };
    let trade = trade.clone();
    blocking(move || trade.record(&order.order_id, response)).await
}

/// Sends pending purchases to their sellers again, until each is decided or
/// expires ([`crate::trade::PURCHASE_EXPIRY`]), and tidies the ledger now and then.
///
/// An order is sent when this task first sees it (within `first` of being signed,
/// or of the node's start), then after `first`, and each pause doubles up to
/// [`RESEND_MAX`]: an answer the seller gives within seconds is collected within
/// seconds, while an order left for a manual decision, or a seller who is away,
/// costs a request every few minutes. The pauses start over when the node does.
/// Orders due together are sent together, so a seller whose payment hook takes
/// its time does not delay the answers of others.
pub(super) async fn resend(network: Network, trade: Trade, cancel: CancellationToken, first: Duration) {
    // Order id → when to send it next, and the pause after that.
    let mut due: HashMap<String, (Instant, Duration)> = HashMap::new();
    let mut tidied: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(first) => {}
        }
        if tidied.is_none_or(|at| at.elapsed() >= TIDY_EVERY) {
            tidied = Some(Instant::now());
            let trade = trade.clone();
            if let Err(e) = blocking(move || trade.tidy()).await {
                tracing::warn!("tidying the purchase ledger failed: {e}");
            }
        }
        let open = {
            let trade = trade.clone();
            blocking(move || trade.open_purchases()).await
        };
        let open = match open {
            Ok(open) => open,
            Err(e) => {
                tracing::error!("reading pending purchases failed: {e}");
                continue;
            }
        };
        due.retain(|id, _| open.iter().any(|o| &o.order_id == id));
        let now = Instant::now();
        let mut sends = Vec::new();
        for order in open {
            let (at, pause) = due.entry(order.order_id.clone()).or_insert((now, first));
            if *at > now {
                continue;
            }
            *at = now + *pause;
            *pause = (*pause * 2).min(RESEND_MAX);
            sends.push(deliver(&network, &trade, order));
        }
        for sent in futures::future::join_all(sends).await {
            if let Err(e) = sent {
                tracing::warn!("{e}");
            }
        }
    }
}

impl Node {
    /// Buys the current version of `pack` from its author: signs an order, sends it,
    /// and waits up to `wait` for a pending order to be decided.
    pub async fn buy(
        &self,
        pack: &PackId,
        payment_ref: Option<String>,
        wait: Duration,
    ) -> Result<BuyOutcome, NodeError> {
        let (network, _) = self.net.as_ref().ok_or(NodeError::Offline)?;
        let manifest = self.manifest(pack)?;
        if manifest.author == self.identity.node_id() {
            return Err(NodeError::OwnPack(*pack));
        }
        let trade = self.trade.clone();
        let (id, content) = (*pack, manifest.content);
        let held = blocking(move || trade.license_for(&id, &content)).await?;
        if let Some(license) = held {
            return self.already_licensed(&manifest, &license).await;
        }
        self.deal_with(manifest.pack_id, manifest.author).await;
        // An order for this version still waiting is sent again, not doubled.
        let trade = self.trade.clone();
        let waiting = blocking(move || trade.open_purchases()).await?.into_iter().find(|o| {
            o.pack_id == manifest.pack_id && o.seq == manifest.seq && o.content == manifest.content
        });
        let resent = waiting.is_some();
        let trade = self.trade.clone();
        let covered = blocking({
            let manifest = manifest.clone();
            move || trade.covering_purchase(&manifest)
        })
        .await?
        .is_some();
        let mut order = match waiting {
            Some(order) => order,
            None => {
                let (trade, name) = (self.trade.clone(), Some(self.config.name.clone()));
                blocking(move || trade.new_purchase(&manifest, payment_ref, name)).await?
            }
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            order = deliver(network, &self.trade, order).await?;
            if order.status != OrderStatus::Pending || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
        let note = (order.status == OrderStatus::Pending).then(|| match order.unreachable_since {
            Some(_) => "the seller's node cannot be reached now; your node keeps the order and sends it \
                        again until the seller answers (`smpl purchases` shows it)"
                .to_string(),
            None => {
                "waiting for the seller; your node keeps asking and stores the license when it is issued \
                     (`smpl licenses` shows it)"
                    .to_string()
            }
        });
        let mut outcome = BuyOutcome::of(&order, note);
        outcome.resent = resent;
        outcome.upgrade = covered;
        Ok(outcome)
    }

    async fn already_licensed(
        &self,
        manifest: &Manifest,
        license: &Envelope,
    ) -> Result<BuyOutcome, NodeError> {
        let token = smpl_protocol::LicenseToken::from_envelope(license).map_err(TradeError::Sign)?;
        Ok(BuyOutcome {
            status: OrderStatus::Issued,
            order_id: String::new(),
            pack_id: manifest.pack_id,
            license_id: Some(token.license_id),
            reason: Some("this node already holds a license for this version".into()),
            payment: None,
            resent: false,
            upgrade: false,
        })
    }

    /// The license that lets this node fetch `manifest`'s content: none needed for
    /// free packs and our own; an error when a paid pack is not licensed to us.
    pub(super) async fn license_to_fetch(&self, manifest: &Manifest) -> Result<Option<Envelope>, NodeError> {
        if manifest.is_free() || manifest.author == self.identity.node_id() {
            return Ok(None);
        }
        let trade = self.trade.clone();
        let (pack, content) = (manifest.pack_id, manifest.content);
        if let Some(license) = blocking(move || trade.license_for(&pack, &content)).await? {
            return Ok(Some(license));
        }
        // An update of a pack we bought: its seller issues a licence for the new
        // content without payment; until it can be reached, the earlier licence
        // is shown, which providers accept for a version it covers.
        let trade = self.trade.clone();
        let covering = blocking({
            let manifest = manifest.clone();
            move || trade.covering_purchase(&manifest)
        })
        .await?;
        match covering {
            Some(earlier) => {
                let wait = Duration::from_secs(5);
                match self.buy(&manifest.pack_id, None, wait).await {
                    Ok(outcome) if outcome.status == OrderStatus::Issued => {
                        let trade = self.trade.clone();
                        let (pack, content) = (manifest.pack_id, manifest.content);
                        Ok(blocking(move || trade.license_for(&pack, &content)).await?.or(Some(earlier)))
                    }
                    Ok(outcome) => {
                        tracing::info!(
                            pack = %manifest.pack_id,
                            "the licence for version {} is not issued yet ({:?}); fetching under the earlier licence",
                            manifest.seq,
                            outcome.status
                        );
                        Ok(Some(earlier))
                    }
                    Err(e) => {
                        tracing::info!(pack = %manifest.pack_id, "asking for the update's licence failed: {e}");
                        Ok(Some(earlier))
                    }
                }
            }
            None => {
                let me = self.identity.node_id();
                let held = self
                    .licenses(false)
                    .await?
                    .into_iter()
                    .filter(|l| l.pack_id == manifest.pack_id && l.buyer == me)
                    .map(|l| l.seq)
                    .max();
                if let Some(held) = held {
                    return Err(NodeError::PaidUpgrade {
                        pack: manifest.pack_id,
                        title: manifest.title.clone(),
                        price: manifest.price.as_ref().map_or_else(String::new, |p| p.to_string()),
                        seq: manifest.seq,
                        held,
                    });
                }
                Err(NodeError::LicenseRequired {
                    pack: manifest.pack_id,
                    title: manifest.title.clone(),
                    price: manifest.price.as_ref().map_or_else(String::new, |p| p.to_string()),
                    seq: manifest.seq,
                })
            }
        }
    }

    /// The seller's orders.
    pub async fn sales(&self, pending_only: bool) -> Result<Vec<Order>, NodeError> {
        let trade = self.trade.clone();
        blocking(move || trade.sales(pending_only)).await
    }

    /// Approves a pending sale (issues the license; the buyer's node collects it).
    pub async fn approve(&self, order_id: &str) -> Result<Order, NodeError> {
        let (trade, id) = (self.trade.clone(), order_id.to_string());
        blocking(move || trade.approve(&id)).await
    }

    pub async fn reject(&self, order_id: &str, reason: Option<String>) -> Result<Order, NodeError> {
        let (trade, id) = (self.trade.clone(), order_id.to_string());
        blocking(move || trade.reject(&id, reason)).await
    }

    /// Licenses held as buyer, or (`issued`) those issued as seller.
    pub async fn licenses(&self, issued: bool) -> Result<Vec<LicenseView>, NodeError> {
        let trade = self.trade.clone();
        blocking(move || trade.licenses(issued)).await
    }

    /// The certificate text of our license for `pack`.
    pub async fn certificate(&self, pack: &PackId) -> Result<(LicenseId, String), NodeError> {
        let (trade, pack) = (self.trade.clone(), *pack);
        blocking(move || trade.certificate(&pack)).await
    }

    /// Our purchases (the buyer's side), oldest first.
    pub async fn purchases(&self) -> Result<Vec<Order>, NodeError> {
        let trade = self.trade.clone();
        blocking(move || trade.purchases()).await
    }
}
