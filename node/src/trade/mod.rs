//! Buying and selling: purchase orders, license tokens, and the paid-content gate.
//!
//! A purchase goes like this:
//!
//! 1. The buyer's node signs a [`PurchaseRequest`] for the version of the pack it
//!    sees, keeps it as a pending [`Order`] on its side (`purchases/v1`) and sends
//!    it to the seller over `/smpl/purchase/1` ([`TradeRequest::Buy`]).
//! 2. The seller's node ([`Trade::answer`]) checks the request (signed by the peer
//!    that sent it, for one of our packs at its current version and price) and
//!    decides: free packs at once, paid ones by the [`SellerPolicy`]. It keeps the
//!    order (`sales/v1`) and answers issued, pending or rejected. Issuing signs a
//!    [`LicenseToken`] and stores order and token durably *before* answering.
//! 3. The buyer checks the token (signed by the pack's author, naming this node as
//!    buyer and the content of the version it ordered), stores it, and writes a
//!    certificate under `licenses/`. Pending orders are asked about again (the
//!    same signed request), first after 2 s and then less and less often, so an
//!    approval reaches a buyer that was offline meanwhile; after
//!    [`PURCHASE_EXPIRY`] the buyer stops asking and shows the order as unanswered.
//!
//! Each order is decided once, and each buyer gets at most one license per version
//! of a pack: the seller stores a new order in the same transaction that checks it
//! is new and that no other open or issued order of that buyer holds the version
//! (`ledger`). Only the call that stored it decides it; copies that come
//! while the payment hook runs are answered pending, a second order for a version
//! already licensed gets that license. An order whose hook was running when the
//! node stopped waits for the seller's decision, since the hook may have charged.
//! Decided orders are pruned after [`ORDER_RETENTION`]; licenses never are.
//!
//! Paid content is served only through the [`LicenseGate`]: a buyer presents its
//! token to each provider ([`TradeRequest::Present`]) before fetching.
//!
//! Certificates: `licenses/<license id>.license` for licenses this node holds as
//! buyer, `licenses/issued/<license id>.license` for licenses it issued. The sled
//! ledger is the record; missing files are written again at start.
//!
//! The parts: this file ([`Trade`]: the rules of an order, both sides); `ledger`
//! (orders and licenses in sled); `policy` (the seller's policy and payment hook);
//! `verify` (checking tokens and certificates); `gate` (the [`LicenseGate`]:
//! which peer may fetch which blob); `serving` (recording the provenance of blobs
//! as they arrive, and what this node announces as provided). The async glue to
//! the network is the node's facade (`node/trade.rs`).

mod gate;
mod ledger;
mod policy;
pub(crate) mod serving;
mod verify;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use smpl_protocol::certificate;
use smpl_protocol::wire::{TradeRequest, TradeResponse};
use smpl_protocol::{
    BlobHash, Envelope, Identity, LicenseId, LicenseToken, Manifest, NodeId, PackId, Price, PurchaseRequest,
    Signed,
};

pub use gate::{GateStats, LicenseGate, Origin, Source};
pub use ledger::{MAX_REFUSED, Order, OrderStatus, RefusedOrder};
pub use policy::{Decision, HOOK_TIMEOUT, SellerPolicy};
pub(crate) use serving::ServingError;
pub use verify::{Expect, LicenseError, check_files, check_token, content_of};

use crate::store::{Store, StoreError};
use crate::util::fs::{mode, write_atomic};
use crate::util::prefix::{self, Match};
use crate::util::rate::Rate;
use crate::util::{now, random};
use ledger::{Claim, Ledger, Side, Update};

/// Pending orders one buyer may have with this seller at once.
const MAX_PENDING_PER_BUYER: usize = 32;

/// New orders one peer may send in a burst; after it, one per [`ORDER_REFILL`].
/// Copies of known orders (a buyer's node re-sending) are not counted.
const ORDER_BURST: u32 = 20;
const ORDER_REFILL: Duration = Duration::from_secs(3);

const DAY: u64 = 24 * 60 * 60;

/// How long decided (issued or rejected) orders are kept, on both sides, before
/// they are pruned; licenses are kept forever. The seller refuses orders signed
/// longer ago than this, since it could no longer tell them from a pruned one.
pub const ORDER_RETENTION: Duration = Duration::from_secs(90 * DAY);

/// How long the buyer's node keeps asking the seller about a pending purchase
/// (counted from when it was signed); after it, the order shows as unanswered.
pub const PURCHASE_EXPIRY: Duration = Duration::from_secs(7 * DAY);

/// The reason a sale shows while the payment hook decides it.
const HOOK_DECIDING: &str = "the payment hook is deciding";

/// The reason a sale shows when the node stopped before its payment hook answered.
const HOOK_INTERRUPTED: &str =
    "the node stopped while the payment hook ran; check the payment and approve or reject";

/// The reason a purchase shows after [`PURCHASE_EXPIRY`].
fn unanswered() -> String {
    format!(
        "unanswered: the seller did not decide within {} days, so this node stopped asking; \
         `smpl buy` sends a new order",
        PURCHASE_EXPIRY.as_secs() / DAY
    )
}

#[derive(Debug, thiserror::Error)]
pub enum TradeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing failed: {0}")]
    Sign(#[from] smpl_protocol::ProtocolError),
    #[error("no order {0:?} (`smpl sales` lists them)")]
    UnknownOrder(String),
    #[error("order {order} is {state}, not pending for the seller")]
    NotPending { order: String, state: String },
    #[error("the buyer of order {order} already holds license {license} for this version (order {holder})")]
    AlreadyLicensed { order: String, holder: String, license: LicenseId },
    #[error("{0:?} matches several orders; give more of the order id")]
    Ambiguous(String),
    #[error("the seller sent an unusable license: {0}")]
    BadLicense(#[from] LicenseError),
    #[error("no license for pack {0} here (`smpl licenses` lists yours)")]
    NoLicense(PackId),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How a node sells.
#[derive(Clone, Debug)]
pub struct TradeConfig {
    pub policy: SellerPolicy,
    pub hook_timeout: Duration,
    /// Payment hooks run at once at most; one of them is kept for buyers this
    /// node sold to before. Orders past it are refused as busy (the buyer's node
    /// sends them again later).
    pub max_hooks: usize,
}

/// [`TradeConfig::max_hooks`] by default.
pub const MAX_HOOKS: usize = 4;

impl Default for TradeConfig {
    fn default() -> Self {
        TradeConfig { policy: SellerPolicy::default(), hook_timeout: HOOK_TIMEOUT, max_hooks: MAX_HOOKS }
    }
}

/// One running payment hook; the count goes down when it is dropped.
struct HookSlot(Arc<AtomicUsize>);

impl Drop for HookSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A buyer and a pack version.
type BuyerVersion = (NodeId, PackId, u64);

/// The buyer and version of each order a payment hook is deciding now.
type DecidingSet = Arc<Mutex<HashSet<BuyerVersion>>>;

/// A buyer's order for one pack version in a hook's hands; let go when dropped.
struct Deciding {
    set: DecidingSet,
    key: BuyerVersion,
}

impl Deciding {
    /// `None` when an order of that buyer for that version is being decided already.
    fn enter(set: &DecidingSet, key: BuyerVersion) -> Option<Deciding> {
        let fresh = set.lock().unwrap_or_else(|e| e.into_inner()).insert(key);
        fresh.then(|| Deciding { set: set.clone(), key })
    }
}

impl Drop for Deciding {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.key);
    }
}

/// A license as `smpl licenses` lists it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LicenseView {
    pub license_id: LicenseId,
    pub pack_id: PackId,
    pub title: String,
    pub seq: u64,
    pub seller: NodeId,
    pub buyer: NodeId,
    pub price: Option<Price>,
    pub issued_at: u64,
    pub content: BlobHash,
    /// The certificate file.
    pub file: PathBuf,
}

/// The trade side of a node; cheap to clone. Methods block (sled, the hook).
#[derive(Clone)]
pub struct Trade {
    identity: Identity,
    store: Store,
    ledger: Ledger,
    licenses_dir: PathBuf,
    config: TradeConfig,
    gate: LicenseGate,
    /// Payment hooks running now.
    hooks: Arc<AtomicUsize>,
    /// The buyer and pack version of each order a payment hook is deciding now:
    /// a copy of that order, or another order of that buyer for that version, is
    /// answered "pending" without taking a hook slot.
    deciding: DecidingSet,
    /// Orders refused because every hook slot was taken.
    pub busy: Arc<AtomicU64>,
    rate: Arc<Mutex<Rate<NodeId>>>,
    /// New orders refused because their peer sent too many.
    pub rate_limited: Arc<AtomicU64>,
    /// Orders rejected before they were kept (also in [`Trade::refused_orders`]).
    pub refused: Arc<AtomicU64>,
}

impl Order {
    /// A new pending order for the version of the pack in `manifest`, from the
    /// signed purchase `request` (whose envelope is `envelope`).
    fn pending(
        manifest: &Manifest,
        request: &PurchaseRequest,
        envelope: &Envelope,
        created_at: u64,
    ) -> Order {
        Order {
            order_id: order_id_of(envelope),
            pack_id: manifest.pack_id,
            slug: manifest.slug.clone(),
            seq: manifest.seq,
            title: manifest.title.clone(),
            content: manifest.content,
            terms: manifest.license.clone(),
            seller: manifest.author,
            buyer: request.buyer,
            price: manifest.price.clone(),
            payment_ref: request.payment_ref.clone(),
            status: OrderStatus::Pending,
            reason: None,
            license_id: None,
            created_at,
            deciding_since: None,
            decided_at: None,
            request: envelope.as_bytes().to_vec(),
            buyer_name: request.buyer_name.clone(),
            upgrade_of: None,
            payment: manifest.payment.clone(),
            unreachable_since: None,
        }
    }
}

/// The error for deciding an order that does not wait for the seller.
fn not_pending(order: &Order) -> TradeError {
    let state = if order.is_deciding() {
        "being decided by the payment hook".into()
    } else {
        order.status.to_string()
    };
    TradeError::NotPending { order: order.order_id.clone(), state }
}

/// The buyer as people read it: the name they signed, and their key's first digits.
pub fn buyer_label(order: &Order) -> String {
    let hex = order.buyer.to_hex();
    match &order.buyer_name {
        Some(name) if !name.trim().is_empty() => format!("{} ({})", name.trim(), &hex[..8]),
        _ => hex[..16].to_string(),
    }
}

/// Whether the buyer stopped asking about `order` at `now`.
fn expired(order: &Order, now: u64) -> bool {
    now.saturating_sub(order.created_at) >= PURCHASE_EXPIRY.as_secs()
}

/// The order id both sides derive from a signed purchase request.
pub fn order_id_of(request: &Envelope) -> String {
    blake3::hash(request.as_bytes()).to_hex()[..16].to_string()
}

impl Trade {
    pub fn open(
        identity: Identity,
        store: Store,
        licenses_dir: PathBuf,
        config: TradeConfig,
    ) -> Result<Trade, TradeError> {
        let ledger = Ledger::open(&store)?;
        let gate = LicenseGate::open(&store)?;
        let trade = Trade {
            identity,
            store,
            ledger,
            licenses_dir,
            config,
            gate,
            hooks: Arc::new(AtomicUsize::new(0)),
            deciding: Arc::default(),
            busy: Arc::new(AtomicU64::new(0)),
            rate: Arc::new(Mutex::new(Rate::new(ORDER_BURST, ORDER_REFILL))),
            rate_limited: Arc::new(AtomicU64::new(0)),
            refused: Arc::new(AtomicU64::new(0)),
        };
        // Nothing is decided yet, so an order still marked as in the hook's hands
        // belongs to a hook whose answer was lost with the last run.
        for order in trade.ledger.recover_sales(HOOK_INTERRUPTED)? {
            tracing::warn!(
                order = %order.order_id,
                buyer = %order.buyer,
                "the node stopped while the payment hook decided this order; it waits for `smpl sales approve` or `reject`"
            );
        }
        trade.write_missing_certificates()?;
        Ok(trade)
    }

    pub fn gate(&self) -> &LicenseGate {
        &self.gate
    }

    fn me(&self) -> NodeId {
        self.identity.node_id()
    }

    /// Answers a trade message from `peer` (the seller's and every provider's side).
    pub fn answer(&self, peer: NodeId, request: TradeRequest) -> TradeResponse {
        match request {
            TradeRequest::Buy(bytes) => match self.sell(peer, &bytes) {
                Ok(response) => response,
                Err(e) => {
                    tracing::error!("handling an order from {peer} failed: {e}");
                    TradeResponse::Refused(format!("the seller's node failed: {e}"))
                }
            },
            TradeRequest::Present(bytes) => {
                match check_token(&bytes, &Expect { buyer: Some(peer), ..Expect::default() }) {
                    Ok((token, _)) => match self.grant(peer, &token) {
                        Ok(true) => TradeResponse::Accepted,
                        Ok(false) => TradeResponse::Refused(format!(
                            "this node holds no content {} of seller {} to serve under that license",
                            token.content, token.seller
                        )),
                        Err(e) => {
                            tracing::error!("recording a license grant for {peer} failed: {e}");
                            TradeResponse::Refused(format!("the provider's node failed: {e}"))
                        }
                    },
                    Err(e) => TradeResponse::Refused(e.to_string()),
                }
            }
            // Proofs read the blob store, which the network host answers from.
            TradeRequest::Prove { .. } => TradeResponse::Refused("no proofs from the trade ledger".into()),
        }
    }

    /// Lets `peer`, the buyer of `token`, fetch the content it licenses and the
    /// current version of that pack when the licence covers it (an update the
    /// seller did not mark as a paid upgrade). True if anything was granted.
    fn grant(&self, peer: NodeId, token: &LicenseToken) -> Result<bool, StoreError> {
        let mut granted = self.gate.grant(peer, &token.seller, &token.content)?;
        if let Some((manifest, _)) = self.store.manifest(&token.pack_id)?
            && manifest.author == token.seller
            && manifest.content != token.content
            && manifest.covered_by(token.seq)
        {
            granted |= self.gate.grant(peer, &token.seller, &manifest.content)?;
        }
        Ok(granted)
    }

    fn sell(&self, peer: NodeId, bytes: &[u8]) -> Result<TradeResponse, TradeError> {
        let (request, envelope) = match PurchaseRequest::open(bytes) {
            Ok(opened) => opened,
            Err(e) => return Ok(TradeResponse::Refused(format!("invalid purchase request: {e}"))),
        };
        if request.buyer != peer {
            return Ok(TradeResponse::Refused(format!(
                "the purchase request is signed by {} but came from {peer}",
                request.buyer
            )));
        }
        let order_id = order_id_of(&envelope);
        // A copy of a known order (re-sent, or sent again while it is decided) is
        // answered from the ledger, never decided again.
        if let Some(order) = self.ledger.order(Side::Sales, &order_id)? {
            return self.response(&order);
        }
        if !self.rate.lock().unwrap_or_else(|e| e.into_inner()).take(peer, Instant::now()) {
            let limited = self.rate_limited.fetch_add(1, Ordering::Relaxed) + 1;
            if limited.is_power_of_two() {
                tracing::warn!(limited, %peer, "new orders refused: this peer sends more than the order rate");
            }
            return Ok(TradeResponse::Refused(
                "busy: this node sent more new orders than the seller takes at once; your node sends this \
                 order again later"
                    .into(),
            ));
        }
        let manifest = match self.check_order(&request)? {
            Ok(manifest) => manifest,
            // Orders that cannot be for us are answered and logged, not kept.
            Err(reason) => return self.refuse(order_id, &request, reason),
        };
        if self.ledger.pending_sales_of(&peer) >= MAX_PENDING_PER_BUYER {
            let reason = "too many pending orders from this buyer; wait for the seller".to_string();
            return self.refuse(order_id, &request, reason);
        }
        let mut order = Order::pending(&manifest, &request, &envelope, now());
        let mut license = None;
        let mut hook = None;
        let mut hook_slot = None;
        let mut deciding = None;
        let upgrade = self.covering_license(&manifest, &peer)?;
        match (&manifest.price, &self.config.policy) {
            _ if upgrade.is_some() => {
                let old = upgrade.as_ref().expect("matched as some");
                order.upgrade_of = Some(old.license_id);
                order.price = old.price.clone();
                license = Some(self.sign_license(&mut order)?);
            }
            (None, _) | (_, SellerPolicy::Auto) => license = Some(self.sign_license(&mut order)?),
            (_, SellerPolicy::Manual) => {}
            (_, SellerPolicy::Hook(cmd)) => {
                // A bounded number of hooks run at once; the last slot is kept for
                // buyers this node sold to before, so a flood of orders from new
                // keys does not hold up known customers.
                let key = (peer, manifest.pack_id, manifest.seq);
                let Some(entered) = Deciding::enter(&self.deciding, key) else {
                    return Ok(TradeResponse::Pending { order: order_id });
                };
                deciding = Some(entered);
                let known =
                    self.ledger.licenses().iter().any(|(t, _)| t.buyer == peer && t.seller == self.me());
                let limit = if known {
                    self.config.max_hooks
                } else {
                    self.config.max_hooks.saturating_sub(1).max(1)
                };
                let running = self.hooks.fetch_add(1, Ordering::SeqCst);
                let slot = HookSlot(self.hooks.clone());
                if running >= limit {
                    let busy = self.busy.fetch_add(1, Ordering::Relaxed) + 1;
                    if busy.is_power_of_two() {
                        tracing::warn!(busy, "orders refused as busy: {running} payment hooks are running");
                    }
                    return Ok(TradeResponse::Refused(
                        "busy: the seller's payment hook is deciding other orders; your node sends this \
                         order again later"
                            .into(),
                    ));
                }
                hook_slot = Some(slot);
                hook = Some(cmd.as_str());
                order.deciding_since = Some(order.created_at);
                order.reason = Some(HOOK_DECIDING.into());
            }
        }
        // The decision belongs to whoever stores the order first.
        match self.ledger.claim(&order, license.as_ref().map(|(_, envelope)| envelope))? {
            Claim::New => {}
            Claim::Known(known) => return self.response(&known),
            Claim::Held { license_id: Some(license_id), .. } => {
                return self.issued_response(order_id, &license_id);
            }
            Claim::Held { order_id: holder, license_id: None } => {
                tracing::debug!(order = %order_id, %holder, "another order of this buyer for this version is open");
                return Ok(TradeResponse::Pending { order: order_id });
            }
        }
        if let Some((token, envelope)) = &license {
            self.issued(&order, token, envelope);
        } else {
            tracing::info!(
                order = %order.order_id,
                pack = %order.title,
                buyer = %buyer_label(&order),
                price = %order.price.as_ref().map_or("free".to_string(), |p| p.to_string()),
                payment_ref = order.payment_ref.as_deref().unwrap_or("-"),
                "new order; `smpl sales approve {}` or `smpl sales reject {}`",
                order.order_id,
                order.order_id
            );
        }
        if let Some(cmd) = hook {
            order = self.decide_by_hook(cmd, order)?;
        }
        drop((hook_slot, deciding));
        self.response(&order)
    }

    /// Rejects an order without keeping it, and logs it (bounded) for the seller.
    fn refuse(
        &self,
        order_id: String,
        request: &PurchaseRequest,
        reason: String,
    ) -> Result<TradeResponse, TradeError> {
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if refused.is_power_of_two() {
            tracing::warn!(refused, buyer = %request.buyer, %reason, "orders rejected before they were kept");
        }
        self.ledger.refuse(&RefusedOrder {
            order_id: order_id.clone(),
            buyer: request.buyer,
            buyer_name: request.buyer_name.clone(),
            pack_id: request.pack_id,
            reason: reason.clone(),
            at: now(),
        })?;
        Ok(TradeResponse::Rejected { order: order_id, reason })
    }

    /// The orders rejected before they were kept, newest first (at most [`MAX_REFUSED`]).
    pub fn refused_orders(&self) -> Result<Vec<RefusedOrder>, TradeError> {
        let mut refused = self.ledger.refused()?;
        refused.reverse();
        Ok(refused)
    }

    /// Checks that `request` is for one of our packs at its current version and
    /// covers its price: the manifest, or the reason to reject the order.
    fn check_order(&self, request: &PurchaseRequest) -> Result<Result<Manifest, String>, TradeError> {
        let me = self.me();
        if request.seller != me {
            return Ok(Err(format!("this node is {me}, not the seller {}", request.seller)));
        }
        let Some((manifest, _)) = self.store.manifest(&request.pack_id)? else {
            return Ok(Err(format!("no pack {} is for sale here", request.pack_id)));
        };
        if manifest.author != me {
            return Ok(Err(format!("pack {} is not this node's", request.pack_id)));
        }
        if request.seq != manifest.seq {
            return Ok(Err(format!(
                "{:?} is at version {} now, the order names version {}; refresh and buy again",
                manifest.title, manifest.seq, request.seq
            )));
        }
        let upgrade = self.covering_license(&manifest, &request.buyer)?.is_some();
        if let Some(price) = manifest.price.as_ref().filter(|_| !upgrade) {
            let covers = request
                .price
                .as_ref()
                .is_some_and(|p| p.currency == price.currency && p.amount_minor >= price.amount_minor);
            if !covers {
                let offered = request.price.as_ref().map_or("nothing".to_string(), |p| p.to_string());
                return Ok(Err(format!("{:?} costs {price}; the order offers {offered}", manifest.title)));
            }
        }
        // Decided orders are pruned after the retention period; an order signed
        // before it could be one of them, and must not be decided (charged) again.
        if request.created_at.saturating_add(ORDER_RETENTION.as_secs()) < now() {
            return Ok(Err("the order was signed too long ago to be told from an old one; buy again".into()));
        }
        Ok(Ok(manifest))
    }

    /// The newest licence this node issued to `buyer` for an earlier version of
    /// `manifest`'s pack that covers the current version (no paid upgrade since).
    fn covering_license(
        &self,
        manifest: &Manifest,
        buyer: &NodeId,
    ) -> Result<Option<LicenseToken>, TradeError> {
        Ok(self
            .ledger
            .licenses_of(&manifest.pack_id)
            .into_iter()
            .map(|(token, _)| token)
            .filter(|t| t.buyer == *buyer && t.seller == manifest.author && t.seq < manifest.seq)
            .filter(|t| manifest.covered_by(t.seq))
            .max_by_key(|t| t.seq))
    }

    /// Runs the payment hook on an order this call claimed, and records its
    /// decision. Only the claimer gets here, so the hook runs once per order; if
    /// recording fails, the order stays marked and is handed to the seller at the
    /// next start.
    fn decide_by_hook(&self, cmd: &str, claimed: Order) -> Result<Order, TradeError> {
        let decision = policy::run_hook(cmd, &policy::HookOrder::from(&claimed), self.config.hook_timeout);
        let mut next = claimed.clone();
        next.deciding_since = None;
        next.reason = None;
        let license = match decision {
            Decision::Approve => Some(self.sign_license(&mut next)?),
            Decision::Wait => None,
            Decision::Reject(reason) => {
                tracing::info!(order = %next.order_id, %reason, "order rejected");
                next.status = OrderStatus::Rejected;
                next.reason = Some(reason);
                next.decided_at = Some(now());
                None
            }
        };
        let envelope = license.as_ref().map(|(_, envelope)| envelope);
        match self.ledger.update(Side::Sales, &next, envelope, Order::is_deciding)? {
            Update::Done => {
                if let Some((token, envelope)) = &license {
                    self.issued(&next, token, envelope);
                }
                Ok(next)
            }
            Update::Stale(current) => Ok(*current),
            Update::Missing => Err(TradeError::UnknownOrder(next.order_id)),
            Update::Licensed { order_id, license_id } => Err(TradeError::AlreadyLicensed {
                order: next.order_id,
                holder: order_id,
                license: license_id,
            }),
        }
    }

    /// The answer that tells a buyer where `order` stands.
    fn response(&self, order: &Order) -> Result<TradeResponse, TradeError> {
        let order_id = order.order_id.clone();
        Ok(match order.status {
            OrderStatus::Pending => TradeResponse::Pending { order: order_id },
            OrderStatus::Rejected => TradeResponse::Rejected {
                order: order_id,
                reason: order.reason.clone().unwrap_or_else(|| "rejected by the seller".into()),
            },
            OrderStatus::Issued => match order.license_id {
                Some(license_id) => self.issued_response(order_id, &license_id)?,
                None => TradeResponse::Refused(format!("the license of order {order_id} is missing")),
            },
        })
    }

    /// Answers `order_id` with the stored license `license_id`.
    fn issued_response(&self, order_id: String, license_id: &LicenseId) -> Result<TradeResponse, TradeError> {
        Ok(match self.ledger.license(license_id) {
            Some((_, envelope)) => {
                TradeResponse::Issued { order: order_id, license: ByteBuf::from(envelope.into_bytes()) }
            }
            None => TradeResponse::Refused(format!("the license of order {order_id} is missing")),
        })
    }

    /// Signs a license for `order` and marks it issued (not yet stored).
    fn sign_license(&self, order: &mut Order) -> Result<(LicenseToken, Envelope), TradeError> {
        let token = LicenseToken {
            license_id: LicenseId(random()),
            pack_id: order.pack_id,
            slug: order.slug.clone(),
            seq: order.seq,
            content: order.content,
            seller: self.me(),
            buyer: order.buyer,
            price: order.price.clone(),
            terms: order.terms.clone(),
            issued_at: now(),
        };
        let envelope = token.sign(&self.identity)?;
        order.status = OrderStatus::Issued;
        order.license_id = Some(token.license_id);
        order.reason = None;
        order.deciding_since = None;
        order.decided_at = Some(token.issued_at);
        Ok((token, envelope))
    }

    /// Follows up a license that was just stored for a sale.
    fn issued(&self, order: &Order, token: &LicenseToken, envelope: &Envelope) {
        let what = if order.upgrade_of.is_some() { "update licence issued" } else { "license issued" };
        tracing::info!(
            order = %order.order_id,
            pack = %order.title,
            version = order.seq,
            license = %token.license_id,
            buyer = %buyer_label(order),
            "{what}"
        );
        if let Err(e) = self.write_certificate(token, envelope) {
            // The ledger has it; the file is written again at the next start.
            tracing::warn!("{e}");
        }
    }

    /// The seller's orders, oldest first.
    pub fn sales(&self, pending_only: bool) -> Result<Vec<Order>, TradeError> {
        let mut orders = self.ledger.orders(Side::Sales)?;
        orders.retain(|o| !pending_only || o.status == OrderStatus::Pending);
        Ok(orders)
    }

    /// Finds a sale by its id or a unique prefix of it.
    fn find_sale(&self, text: &str) -> Result<Order, TradeError> {
        let text = prefix::normalize(text);
        match prefix::find(self.ledger.orders(Side::Sales)?, &text, |o| o.order_id.clone()) {
            Match::One(order) if !text.is_empty() => Ok(order),
            Match::Several => Err(TradeError::Ambiguous(text)),
            Match::One(_) | Match::None => Err(TradeError::UnknownOrder(text)),
        }
    }

    /// Moves a sale waiting for the seller to `next`, if nobody decided it meanwhile.
    fn decide(&self, next: &Order, license: Option<&Envelope>) -> Result<(), TradeError> {
        match self.ledger.update(Side::Sales, next, license, Order::awaits_seller)? {
            Update::Done => Ok(()),
            Update::Stale(current) => Err(not_pending(&current)),
            Update::Missing => Err(TradeError::UnknownOrder(next.order_id.clone())),
            Update::Licensed { order_id, license_id } => Err(TradeError::AlreadyLicensed {
                order: next.order_id.clone(),
                holder: order_id,
                license: license_id,
            }),
        }
    }

    /// Approves a pending sale: issues its license.
    pub fn approve(&self, order_id: &str) -> Result<Order, TradeError> {
        let mut order = self.find_sale(order_id)?;
        if !order.awaits_seller() {
            return Err(not_pending(&order));
        }
        let (token, envelope) = self.sign_license(&mut order)?;
        self.decide(&order, Some(&envelope))?;
        self.issued(&order, &token, &envelope);
        Ok(order)
    }

    /// Rejects a pending sale, with a reason the buyer will see.
    pub fn reject(&self, order_id: &str, reason: Option<String>) -> Result<Order, TradeError> {
        let mut order = self.find_sale(order_id)?;
        if !order.awaits_seller() {
            return Err(not_pending(&order));
        }
        order.status = OrderStatus::Rejected;
        order.reason = Some(reason.unwrap_or_else(|| "rejected by the seller".into()));
        order.decided_at = Some(now());
        self.decide(&order, None)?;
        Ok(order)
    }

    /// Signs a purchase request for the version of the pack in `manifest` and keeps
    /// it as a pending purchase, durably, before it is sent.
    pub fn new_purchase(
        &self,
        manifest: &Manifest,
        payment_ref: Option<String>,
        buyer_name: Option<String>,
    ) -> Result<Order, TradeError> {
        let request = PurchaseRequest {
            buyer_name: buyer_name.filter(|n| !n.trim().is_empty()),
            pack_id: manifest.pack_id,
            seq: manifest.seq,
            buyer: self.me(),
            seller: manifest.author,
            price: manifest.price.clone(),
            payment_ref,
            nonce: u64::from_be_bytes(random()),
            created_at: now(),
        };
        let envelope = request.sign(&self.identity)?;
        let order = Order::pending(manifest, &request, &envelope, request.created_at);
        self.ledger.save_purchase(&order)?;
        Ok(order)
    }

    pub fn purchase(&self, order_id: &str) -> Result<Option<Order>, TradeError> {
        Ok(self.ledger.order(Side::Purchases, order_id)?)
    }

    /// Every purchase, oldest first.
    pub fn purchases(&self) -> Result<Vec<Order>, TradeError> {
        Ok(self.ledger.orders(Side::Purchases)?)
    }

    /// Purchases still waiting for the seller's answer and still asked about: those
    /// signed less than [`PURCHASE_EXPIRY`] ago.
    pub fn open_purchases(&self) -> Result<Vec<Order>, TradeError> {
        let now = now();
        let mut orders = self.ledger.orders(Side::Purchases)?;
        orders.retain(|o| o.status == OrderStatus::Pending && !expired(o, now));
        Ok(orders)
    }

    /// Records the seller's answer to one of our purchases. An issued license is
    /// checked first (signed by the pack's author, for us, for the content we
    /// ordered); a bad one leaves the purchase pending and is an error. Answers to
    /// a purchase that is decided already change nothing.
    pub fn record(&self, order_id: &str, response: TradeResponse) -> Result<Order, TradeError> {
        let order = self.purchase(order_id)?.ok_or_else(|| TradeError::UnknownOrder(order_id.to_string()))?;
        if order.status != OrderStatus::Pending {
            return Ok(order);
        }
        let mut next = order.clone();
        next.unreachable_since = None;
        let license = match response {
            TradeResponse::Issued { license, .. } => {
                let expect = Expect {
                    buyer: Some(self.me()),
                    pack: Some(order.pack_id),
                    content: Some(order.content),
                };
                let (token, envelope) = check_token(&license, &expect)?;
                next.status = OrderStatus::Issued;
                next.license_id = Some(token.license_id);
                next.reason = None;
                next.decided_at = Some(now());
                Some((token, envelope))
            }
            TradeResponse::Rejected { reason, .. } => {
                next.status = OrderStatus::Rejected;
                next.reason = Some(reason);
                next.decided_at = Some(now());
                None
            }
            // The message was refused, not the order (a busy seller, say): it
            // stays pending and is sent again later, until it expires.
            TradeResponse::Refused(reason) => {
                tracing::info!(order = %order.order_id, "the seller's node refused the order for now: {reason}");
                return Ok(order);
            }
            TradeResponse::Pending { .. } if order.unreachable_since.is_some() => {
                next.unreachable_since = None;
                None
            }
            TradeResponse::Pending { .. } | TradeResponse::Accepted | TradeResponse::Proof(_) => {
                return Ok(order);
            }
        };
        let envelope = license.as_ref().map(|(_, envelope)| envelope);
        match self.ledger.update(Side::Purchases, &next, envelope, |o| o.status == OrderStatus::Pending)? {
            Update::Done => {
                if let Some((token, envelope)) = &license {
                    if let Some((manifest, envelope)) = self.store.manifest(&token.pack_id)?
                        && manifest.content == token.content
                    {
                        self.ledger.keep_manifest(&manifest, &envelope)?;
                    }
                    self.write_certificate(token, envelope)?;
                }
                Ok(next)
            }
            Update::Stale(current) => Ok(*current),
            Update::Missing | Update::Licensed { .. } => Err(TradeError::UnknownOrder(order_id.to_string())),
        }
    }

    /// Housekeeping, run now and then: purchases past [`PURCHASE_EXPIRY`] are
    /// marked unanswered, decided orders past [`ORDER_RETENTION`] are pruned.
    pub fn tidy(&self) -> Result<(), TradeError> {
        self.tidy_at(now())
    }

    fn tidy_at(&self, now: u64) -> Result<(), TradeError> {
        for order in self.ledger.orders(Side::Purchases)? {
            if order.status == OrderStatus::Pending && order.reason.is_none() && expired(&order, now) {
                let mut next = order.clone();
                next.reason = Some(unanswered());
                let still_open = |o: &Order| o.status == OrderStatus::Pending && o.reason.is_none();
                if self.ledger.update(Side::Purchases, &next, None, still_open)? == Update::Done {
                    tracing::info!(order = %order.order_id, pack = %order.pack_id, "{}", unanswered());
                }
            }
        }
        let before = now.saturating_sub(ORDER_RETENTION.as_secs());
        let pruned = self.ledger.prune(Side::Sales, before)? + self.ledger.prune(Side::Purchases, before)?;
        if pruned > 0 {
            tracing::info!(
                orders = pruned,
                "pruned orders decided over {} days ago",
                ORDER_RETENTION.as_secs() / DAY
            );
        }
        Ok(())
    }

    /// Our newest license (as buyer) for an earlier version of `manifest`'s pack
    /// that covers this version: an update we may fetch without buying again.
    pub fn covering_purchase(&self, manifest: &Manifest) -> Result<Option<Envelope>, TradeError> {
        let me = self.me();
        Ok(self
            .ledger
            .licenses_of(&manifest.pack_id)
            .into_iter()
            .filter(|(t, _)| t.buyer == me && t.seller == manifest.author && manifest.covered_by(t.seq))
            .max_by_key(|(t, _)| t.seq)
            .map(|(_, envelope)| envelope))
    }

    /// Notes that the seller of pending purchase `order_id` could not be reached
    /// (kept from the first time until an answer comes).
    pub fn seller_unreachable(&self, order_id: &str) -> Result<(), TradeError> {
        let Some(order) = self.purchase(order_id)? else { return Ok(()) };
        if order.status != OrderStatus::Pending || order.unreachable_since.is_some() {
            return Ok(());
        }
        let next = Order { unreachable_since: Some(now()), ..order };
        self.ledger.update(Side::Purchases, &next, None, |o| o.status == OrderStatus::Pending)?;
        Ok(())
    }

    /// Our license (as buyer) for exactly this content of `pack`, if any.
    pub fn license_for(&self, pack: &PackId, content: &BlobHash) -> Result<Option<Envelope>, TradeError> {
        let me = self.me();
        Ok(self
            .ledger
            .licenses_of(pack)
            .into_iter()
            .find(|(t, _)| t.buyer == me && t.content == *content)
            .map(|(_, envelope)| envelope))
    }

    /// Licenses this node holds as buyer, or (`issued`) those it issued as seller.
    pub fn licenses(&self, issued: bool) -> Result<Vec<LicenseView>, TradeError> {
        let me = self.me();
        let mut titles: HashMap<PackId, String> = HashMap::new();
        let mut views: Vec<LicenseView> = self
            .ledger
            .licenses()
            .into_iter()
            .filter(|(t, _)| if issued { t.seller == me } else { t.buyer == me })
            .map(|(t, _)| {
                let title = titles
                    .entry(t.pack_id)
                    .or_insert_with(|| self.order_title(&t).unwrap_or_default())
                    .clone();
                LicenseView {
                    file: self.certificate_path(&t),
                    license_id: t.license_id,
                    pack_id: t.pack_id,
                    title,
                    seq: t.seq,
                    seller: t.seller,
                    buyer: t.buyer,
                    price: t.price,
                    issued_at: t.issued_at,
                    content: t.content,
                }
            })
            .collect();
        views.sort_by_key(|v| (v.issued_at, v.license_id));
        Ok(views)
    }

    fn order_title(&self, token: &LicenseToken) -> Option<String> {
        let current = self.store.manifest(&token.pack_id).ok().flatten();
        current.or_else(|| self.ledger.licensed_manifest(&token.pack_id).ok().flatten()).map(|(m, _)| m.title)
    }

    /// The manifest of `pack` kept with our licence for it (it outlives a retraction).
    pub fn licensed_manifest(&self, pack: &PackId) -> Result<Option<Manifest>, TradeError> {
        Ok(self.ledger.licensed_manifest(pack)?.map(|(m, _)| m))
    }

    /// The certificate of our newest license for `pack`.
    pub fn certificate(&self, pack: &PackId) -> Result<(LicenseId, String), TradeError> {
        let me = self.me();
        let (token, envelope) = self
            .ledger
            .licenses_of(pack)
            .into_iter()
            .filter(|(t, _)| t.buyer == me || t.seller == me)
            .max_by_key(|(t, _)| (t.buyer == me, t.seq, t.issued_at))
            .ok_or(TradeError::NoLicense(*pack))?;
        Ok((token.license_id, self.render(&token, &envelope)))
    }

    fn render(&self, token: &LicenseToken, envelope: &Envelope) -> String {
        let current = self.store.manifest(&token.pack_id).ok().flatten();
        let manifest = current
            .filter(|(m, _)| m.content == token.content)
            .or_else(|| self.ledger.licensed_manifest(&token.pack_id).ok().flatten())
            .map(|(m, _)| m);
        certificate::render(envelope, token, manifest.as_ref())
    }

    fn certificate_path(&self, token: &LicenseToken) -> PathBuf {
        let dir = if token.seller == self.me() {
            self.licenses_dir.join("issued")
        } else {
            self.licenses_dir.clone()
        };
        dir.join(format!("{}.license", token.license_id))
    }

    /// Writes a license's certificate file atomically and durably.
    fn write_certificate(&self, token: &LicenseToken, envelope: &Envelope) -> Result<(), TradeError> {
        let path = self.certificate_path(token);
        write_atomic(&path, self.render(token, envelope).as_bytes(), mode::DEFAULT)
            .map_err(|e| TradeError::Io { path, source: e.source })
    }

    fn write_missing_certificates(&self) -> Result<(), TradeError> {
        for (token, envelope) in self.ledger.licenses() {
            if !self.certificate_path(&token).exists() {
                self.write_certificate(&token, &envelope)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smpl_protocol::{AudioFormat, LicenseTerms, SampleEntry, SampleKind};
    use std::path::Path;
    use std::sync::Barrier;

    const SECRET: [u8; 32] = [11; 32];

    /// A paid pack of `seller`'s with one sample nobody needs to hold.
    fn pack(seller: &Identity) -> (Manifest, Envelope) {
        let slug = "dusty-drums".to_string();
        let hash = BlobHash(*blake3::hash(slug.as_bytes()).as_bytes());
        let manifest = Manifest {
            pack_id: PackId::derive(&seller.node_id(), &slug),
            author: seller.node_id(),
            author_name: "seller".into(),
            slug,
            seq: 1,
            title: "Dusty Drums".into(),
            description: String::new(),
            genre: "hip-hop".into(),
            tags: vec![],
            price: Some(Price { amount_minor: 500, currency: "USD".into() }),
            license: LicenseTerms::Named("royalty-free".into()),
            created_at: 1_700_000_000,
            content: hash,
            cover: None,
            licenses_from: None,
            payment: None,
            samples: vec![SampleEntry {
                name: "Kick.wav".into(),
                hash,
                size: 1000,
                format: AudioFormat::Wav,
                frames: 44_100,
                sample_rate: 44_100,
                channels: 1,
                bit_depth: Some(16),
                peak_dbfs: -1.0,
                loudness_lufs: Some(-14.0),
                kind: SampleKind::OneShot,
                tempo: None,
                key: None,
                note: None,
                tags: vec![],
                waveform: vec![128; 128],
                preview: None,
                descriptor: None,
            }],
        };
        let envelope = manifest.sign(seller).unwrap();
        (manifest, envelope)
    }

    /// A seller's trade side under `policy`, with its pack stored.
    struct Seller {
        dir: tempfile::TempDir,
        store: Store,
        trade: Trade,
        manifest: Manifest,
    }

    impl Seller {
        fn new(policy: SellerPolicy) -> Seller {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("db")).unwrap();
            let identity = Identity::from_secret_bytes(SECRET);
            let (manifest, envelope) = pack(&identity);
            store.accept_manifest(&manifest, &envelope, true).unwrap();
            let trade = Seller::open(&dir, &store, policy);
            Seller { dir, store, trade, manifest }
        }

        /// Opens the trade side again, as a restarted node does.
        fn open(dir: &tempfile::TempDir, store: &Store, policy: SellerPolicy) -> Trade {
            let config =
                TradeConfig { policy, hook_timeout: Duration::from_secs(10), ..TradeConfig::default() };
            let identity = Identity::from_secret_bytes(SECRET);
            Trade::open(identity, store.clone(), dir.path().join("licenses"), config).unwrap()
        }

        /// A signed order from `buyer` for the pack; `nonce` tells orders apart.
        fn order(&self, buyer: &Identity, nonce: u64) -> Vec<u8> {
            let request = PurchaseRequest {
                buyer_name: None,
                pack_id: self.manifest.pack_id,
                seq: self.manifest.seq,
                buyer: buyer.node_id(),
                seller: self.manifest.author,
                price: self.manifest.price.clone(),
                payment_ref: Some("PAID-1".into()),
                nonce,
                created_at: now(),
            };
            request.sign(buyer).unwrap().into_bytes()
        }

        fn buy(&self, buyer: &Identity, order: &[u8]) -> TradeResponse {
            self.trade.answer(buyer.node_id(), TradeRequest::Buy(ByteBuf::from(order.to_vec())))
        }

        /// A hook that notes each run in a file, takes `secs`, and approves.
        fn hook(&self, secs: f32) -> (SellerPolicy, PathBuf) {
            let runs = self.dir.path().join("runs");
            let cmd = format!("cat >/dev/null; echo run >> '{}'; sleep {secs}; echo approve", runs.display());
            (SellerPolicy::Hook(cmd), runs)
        }
    }

    #[test]
    fn a_peer_past_the_order_rate_is_told_to_wait_and_its_known_orders_are_still_answered() {
        let seller = Seller::new(SellerPolicy::Manual);
        let buyer = Identity::from_secret_bytes([21; 32]);
        let first = seller.order(&buyer, 0);
        assert!(matches!(seller.buy(&buyer, &first), TradeResponse::Pending { .. }));
        // More new orders than the burst: the rest of the burst is answered, then "busy".
        let answers: Vec<TradeResponse> =
            (1..=u64::from(ORDER_BURST) + 5).map(|n| seller.buy(&buyer, &seller.order(&buyer, n))).collect();
        let busy = |a: &TradeResponse| matches!(a, TradeResponse::Refused(r) if r.starts_with("busy"));
        assert_eq!(answers.iter().filter(|a| busy(a)).count(), 6, "{answers:?}");
        assert!(answers[..ORDER_BURST as usize - 1].iter().all(|a| !busy(a)), "{answers:?}");
        assert_eq!(seller.trade.rate_limited.load(Ordering::Relaxed), 6);
        // A copy of the known order is answered from the ledger, not counted.
        assert!(matches!(seller.buy(&buyer, &first), TradeResponse::Pending { .. }));
        // Another peer is not held back.
        let other = Identity::from_secret_bytes([22; 32]);
        assert!(matches!(seller.buy(&other, &seller.order(&other, 1)), TradeResponse::Pending { .. }));
    }

    #[test]
    fn orders_rejected_before_they_are_kept_are_logged_newest_first_and_survive_a_restart() {
        let seller = Seller::new(SellerPolicy::Manual);
        let buyer = Identity::from_secret_bytes([23; 32]);
        let underpaid = PurchaseRequest {
            buyer_name: Some("Bo".into()),
            pack_id: seller.manifest.pack_id,
            seq: seller.manifest.seq,
            buyer: buyer.node_id(),
            seller: seller.manifest.author,
            price: Some(Price { amount_minor: 1, currency: "USD".into() }),
            payment_ref: None,
            nonce: 1,
            created_at: now(),
        };
        let old_version = PurchaseRequest { seq: 7, nonce: 2, ..underpaid.clone() };
        for request in [&underpaid, &old_version] {
            let bytes = request.sign(&buyer).unwrap().into_bytes();
            assert!(matches!(seller.buy(&buyer, &bytes), TradeResponse::Rejected { .. }));
        }
        assert!(seller.trade.sales(false).unwrap().is_empty(), "rejected orders are not kept as sales");
        let reopened = Seller::open(&seller.dir, &seller.store, SellerPolicy::Manual);
        let refused = reopened.refused_orders().unwrap();
        assert_eq!(refused.len(), 2);
        assert!(refused[0].reason.contains("version 7"), "{refused:?}");
        assert!(refused[1].reason.contains("costs 5.00 USD"), "{refused:?}");
        assert_eq!((refused[1].buyer, refused[1].buyer_name.as_deref()), (buyer.node_id(), Some("Bo")));
    }

    fn runs(file: &Path) -> usize {
        std::fs::read_to_string(file).map_or(0, |text| text.lines().count())
    }

    fn license_of(response: &TradeResponse) -> Option<LicenseId> {
        match response {
            TradeResponse::Issued { license, .. } => Some(LicenseToken::open(license).unwrap().0.license_id),
            _ => None,
        }
    }

    #[test]
    fn concurrent_copies_and_a_second_order_run_the_hook_once_and_issue_one_license() {
        let seller = Seller::new(SellerPolicy::Manual);
        let (policy, runs_file) = seller.hook(1.0);
        let seller = Seller { trade: Seller::open(&seller.dir, &seller.store, policy), ..seller };
        let buyer = Identity::from_secret_bytes([12; 32]);
        let (first, second) = (seller.order(&buyer, 1), seller.order(&buyer, 2));
        // Six copies of the first order and two of a second one, all at once.
        let orders: Vec<&[u8]> = [&first; 6].into_iter().chain([&second; 2]).map(Vec::as_slice).collect();
        let barrier = Barrier::new(orders.len());
        let answers: Vec<TradeResponse> = std::thread::scope(|s| {
            let handles: Vec<_> = orders
                .iter()
                .map(|order| {
                    let (barrier, seller, buyer) = (&barrier, &seller, &buyer);
                    s.spawn(move || {
                        barrier.wait();
                        seller.buy(buyer, order)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(runs(&runs_file), 1, "{answers:?}");
        let issued: Vec<LicenseId> = answers.iter().filter_map(license_of).collect();
        assert_eq!(issued.len(), 1, "only the claimer waits for the hook: {answers:?}");
        // The copies and the second order wait for the first one's decision:
        // none of them takes a hook slot, so none is answered "busy".
        assert!(
            answers.iter().all(|a| license_of(a).is_some() || matches!(a, TradeResponse::Pending { .. })),
            "{answers:?}"
        );
        assert_eq!(seller.trade.licenses(true).unwrap().len(), 1);

        // Asked again, both orders get the one license; the hook does not run again.
        assert_eq!(license_of(&seller.buy(&buyer, &first)), Some(issued[0]));
        assert_eq!(license_of(&seller.buy(&buyer, &second)), Some(issued[0]));
        let third = seller.order(&buyer, 3);
        assert_eq!(license_of(&seller.buy(&buyer, &third)), Some(issued[0]));
        assert_eq!(runs(&runs_file), 1);
        assert_eq!(seller.trade.licenses(true).unwrap().len(), 1);
        assert_eq!(seller.trade.sales(false).unwrap().len(), 1, "copies and later orders are not kept");
    }

    #[test]
    fn an_order_flood_runs_a_bounded_number_of_hooks_and_known_buyers_still_get_through() {
        let seller = Seller::new(SellerPolicy::Manual);
        let known = Identity::from_secret_bytes([40; 32]);
        // The known buyer bought before (approved by hand).
        let first = seller.order(&known, 1);
        assert!(matches!(seller.buy(&known, &first), TradeResponse::Pending { .. }));
        let (request, envelope) = PurchaseRequest::open(&first).unwrap();
        seller.trade.approve(&order_id_of(&envelope)).unwrap();
        assert_eq!(request.buyer, known.node_id());

        let log = seller.dir.path().join("hooks");
        let cmd = format!(
            "cat >/dev/null; echo start >> '{0}'; sleep 0.3; echo end >> '{0}'; echo approve",
            log.display()
        );
        let config = TradeConfig {
            policy: SellerPolicy::Hook(cmd),
            hook_timeout: Duration::from_secs(10),
            max_hooks: 3,
        };
        let trade = Trade::open(
            Identity::from_secret_bytes(SECRET),
            seller.store.clone(),
            seller.dir.path().join("licenses"),
            config,
        )
        .unwrap();
        let seller = Seller { trade, ..seller };
        // 1,000 new keys at once, and the known buyer a moment later.
        let strangers: Vec<Identity> = (0..1_000u32)
            .map(|i| {
                let mut secret = [0u8; 32];
                secret[..4].copy_from_slice(&i.to_le_bytes());
                secret[31] = 99;
                Identity::from_secret_bytes(secret)
            })
            .collect();
        let (answers, known_answer) = std::thread::scope(|s| {
            let flood: Vec<_> = strangers
                .iter()
                .map(|buyer| {
                    let seller = &seller;
                    s.spawn(move || seller.buy(buyer, &seller.order(buyer, 7)))
                })
                .collect();
            std::thread::sleep(Duration::from_millis(50));
            // Re-sent by the buyer's node while busy; decided once a slot is free.
            let again = seller.order(&known, 2);
            let known_answer = loop {
                match seller.buy(&known, &again) {
                    TradeResponse::Refused(_) => std::thread::sleep(Duration::from_millis(20)),
                    answer => break answer,
                }
            };
            let answers: Vec<TradeResponse> = flood.into_iter().map(|h| h.join().unwrap()).collect();
            (answers, known_answer)
        });
        let (mut running, mut most) = (0i32, 0i32);
        for line in std::fs::read_to_string(&log).unwrap().lines() {
            running += if line == "start" { 1 } else { -1 };
            most = most.max(running);
        }
        let busy = answers
            .iter()
            .filter(|a| matches!(a, TradeResponse::Refused(r) if r.starts_with("busy")))
            .count();
        println!("{} orders: {busy} refused as busy, at most {most} hooks at once", answers.len());
        assert!(most <= 3, "at most max_hooks hooks ran at once, not {most}");
        assert!(busy > 100, "most of the flood was refused as busy: {busy}");
        assert!(license_of(&known_answer).is_some(), "the known buyer's order was decided: {known_answer:?}");
    }

    #[test]
    fn an_order_whose_hook_was_cut_off_waits_for_the_seller_after_a_restart() {
        let seller = Seller::new(SellerPolicy::Manual);
        let (policy, runs_file) = seller.hook(0.0);
        let buyer = Identity::from_secret_bytes([13; 32]);
        let order = seller.order(&buyer, 1);
        // What a node killed while the hook ran leaves: the order, claimed.
        let (request, envelope) = PurchaseRequest::open(&order).unwrap();
        let mut claimed = Order::pending(&seller.manifest, &request, &envelope, now());
        claimed.deciding_since = Some(claimed.created_at);
        assert_eq!(seller.trade.ledger.claim(&claimed, None).unwrap(), Claim::New);
        assert!(matches!(seller.buy(&buyer, &order), TradeResponse::Pending { .. }), "deciding");
        assert!(seller.trade.approve(&claimed.order_id).unwrap_err().to_string().contains("payment hook"));

        let trade = Seller::open(&seller.dir, &seller.store, policy);
        let seller = Seller { trade, ..seller };
        assert!(matches!(seller.buy(&buyer, &order), TradeResponse::Pending { .. }));
        assert!(matches!(seller.buy(&buyer, &seller.order(&buyer, 2)), TradeResponse::Pending { .. }));
        assert_eq!(runs(&runs_file), 0, "the hook is not run again");
        let pending = seller.trade.sales(true).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].reason.as_deref(), Some(HOOK_INTERRUPTED));

        let approved = seller.trade.approve(&claimed.order_id).unwrap();
        let license = approved.license_id.unwrap();
        assert_eq!(license_of(&seller.buy(&buyer, &order)), Some(license));
        assert!(seller.trade.approve(&claimed.order_id).unwrap_err().to_string().contains("not pending"));
        assert_eq!(seller.trade.licenses(true).unwrap().len(), 1);
        assert_eq!(runs(&runs_file), 0);
    }

    #[test]
    fn decided_orders_are_pruned_and_their_licenses_kept() {
        let seller = Seller::new(SellerPolicy::Auto);
        let buyer = Identity::from_secret_bytes([14; 32]);
        let first = seller.order(&buyer, 1);
        let license = license_of(&seller.buy(&buyer, &first)).unwrap();
        seller.trade.tidy_at(now()).unwrap();
        assert_eq!(seller.trade.sales(false).unwrap().len(), 1, "kept within the retention");

        seller.trade.tidy_at(now() + ORDER_RETENTION.as_secs() + 1).unwrap();
        assert!(seller.trade.sales(false).unwrap().is_empty());
        assert_eq!(seller.trade.licenses(true).unwrap().len(), 1);
        assert!(seller.trade.certificate(&seller.manifest.pack_id).is_ok());
        // The pruned sale still keeps the buyer at one license.
        assert_eq!(license_of(&seller.buy(&buyer, &first)), Some(license));
        assert_eq!(seller.trade.licenses(true).unwrap().len(), 1);
    }

    #[test]
    fn a_purchase_left_unanswered_expires() {
        let seller = Seller::new(SellerPolicy::Manual);
        let order = seller.trade.new_purchase(&seller.manifest, None, None).unwrap();
        seller.trade.tidy_at(now()).unwrap();
        assert_eq!(seller.trade.open_purchases().unwrap().len(), 1);
        seller.trade.tidy_at(order.created_at + PURCHASE_EXPIRY.as_secs()).unwrap();
        let stored = seller.trade.purchase(&order.order_id).unwrap().unwrap();
        assert_eq!(
            (stored.status, stored.reason.as_deref()),
            (OrderStatus::Pending, Some(unanswered().as_str()))
        );
    }
}
