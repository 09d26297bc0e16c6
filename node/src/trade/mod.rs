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
//!    certificate under `licenses/`. Pending orders are asked about again
//!    (the same signed request) whenever the seller is reachable, so an approval
//!    reaches a buyer that was offline meanwhile.
//!
//! Paid content is served only through the [`LicenseGate`]: a buyer presents its
//! token to each provider ([`TradeRequest::Present`]) before fetching.
//!
//! Certificates: `licenses/<license id>.license` for licenses this node holds as
//! buyer, `licenses/issued/<license id>.license` for licenses it issued. The sled
//! ledger is the record; missing files are written again at start.

mod gate;
mod policy;
mod verify;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use smpl_protocol::certificate;
use smpl_protocol::{
    BlobHash, Envelope, Identity, LicenseId, LicenseToken, Manifest, NodeId, PackId, Price, PurchaseRequest,
    Signed,
};

pub use gate::LicenseGate;
pub use policy::{Decision, HOOK_TIMEOUT, SellerPolicy};
pub use verify::{Expect, LicenseError, check_files, check_token, content_of};

use crate::ledger::{Ledger, Order, OrderStatus, Side};
use crate::net::wire::{TradeRequest, TradeResponse};
use crate::store::{Store, StoreError};

/// Pending orders one buyer may have with this seller at once.
const MAX_PENDING_PER_BUYER: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum TradeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing failed: {0}")]
    Sign(#[from] smpl_protocol::ProtocolError),
    #[error("no order {0:?} (`smpl sales` lists them)")]
    UnknownOrder(String),
    #[error("order {order} is {status}, not pending")]
    NotPending { order: String, status: OrderStatus },
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
}

impl Default for TradeConfig {
    fn default() -> Self {
        TradeConfig { policy: SellerPolicy::default(), hook_timeout: HOOK_TIMEOUT }
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
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS generator failing is not recoverable in any useful way.
    getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
    bytes
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
            request: envelope.as_bytes().to_vec(),
        }
    }
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
        let trade = Trade { identity, store, ledger, licenses_dir, config, gate: LicenseGate::default() };
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
                    Ok((token, _)) => {
                        self.gate.grant(peer, &token);
                        TradeResponse::Accepted
                    }
                    Err(e) => TradeResponse::Refused(e.to_string()),
                }
            }
        }
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
        if let Some(order) = self.ledger.order(Side::Sales, &order_id)? {
            return self.response(&order);
        }
        // Orders that cannot be for us are answered but not kept.
        let reject = |reason: String| Ok(TradeResponse::Rejected { order: order_id.clone(), reason });
        let me = self.me();
        if request.seller != me {
            return reject(format!("this node is {me}, not the seller {}", request.seller));
        }
        let Some((manifest, _)) = self.store.manifest(&request.pack_id)? else {
            return reject(format!("no pack {} is for sale here", request.pack_id));
        };
        if manifest.author != me {
            return reject(format!("pack {} is not this node's", request.pack_id));
        }
        if request.seq != manifest.seq {
            return reject(format!(
                "{:?} is at version {} now, the order names version {}; refresh and buy again",
                manifest.title, manifest.seq, request.seq
            ));
        }
        if let Some(price) = &manifest.price {
            let covers = request
                .price
                .as_ref()
                .is_some_and(|p| p.currency == price.currency && p.amount_minor >= price.amount_minor);
            if !covers {
                let offered = request.price.as_ref().map_or("nothing".to_string(), |p| p.to_string());
                return reject(format!("{:?} costs {price}; the order offers {offered}", manifest.title));
            }
        }
        let sales = self.ledger.orders(Side::Sales)?;
        let mine = |o: &&Order| o.buyer == peer && o.pack_id == manifest.pack_id;
        if let Some(done) =
            sales.iter().filter(mine).find(|o| o.seq == manifest.seq && o.status == OrderStatus::Issued)
        {
            return self.response(done);
        }
        if sales.iter().filter(|o| o.buyer == peer && o.status == OrderStatus::Pending).count()
            >= MAX_PENDING_PER_BUYER
        {
            return reject("too many pending orders from this buyer; wait for the seller".into());
        }
        let mut order = Order::pending(&manifest, &request, &envelope, now());
        let decision = match (&manifest.price, &self.config.policy) {
            (None, _) | (_, SellerPolicy::Auto) => Decision::Approve,
            (_, SellerPolicy::Manual) => Decision::Wait,
            (_, SellerPolicy::Hook(cmd)) => {
                let hook_order = policy::HookOrder {
                    order_id: &order.order_id,
                    pack_id: order.pack_id,
                    title: &order.title,
                    seq: order.seq,
                    buyer: order.buyer,
                    price: order.price.as_ref(),
                    payment_ref: order.payment_ref.as_deref(),
                    created_at: order.created_at,
                };
                policy::run_hook(cmd, &hook_order, self.config.hook_timeout)
            }
        };
        match decision {
            Decision::Approve => self.issue(&mut order)?,
            Decision::Wait => self.ledger.save(Side::Sales, &order)?,
            Decision::Reject(reason) => {
                tracing::info!(order = %order.order_id, %reason, "order rejected");
                order.status = OrderStatus::Rejected;
                order.reason = Some(reason);
                self.ledger.save(Side::Sales, &order)?;
            }
        }
        self.response(&order)
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
            OrderStatus::Issued => {
                let license = order.license_id.and_then(|id| self.ledger.license(&id).transpose());
                match license {
                    Some(license) => TradeResponse::Issued {
                        order: order_id,
                        license: ByteBuf::from(license?.1.into_bytes()),
                    },
                    None => TradeResponse::Refused(format!("the license of order {order_id} is missing")),
                }
            }
        })
    }

    /// Signs a license for a pending sale and records it, durably.
    fn issue(&self, order: &mut Order) -> Result<(), TradeError> {
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
        self.ledger.issue(Side::Sales, order, &envelope)?;
        tracing::info!(order = %order.order_id, license = %token.license_id, buyer = %order.buyer, "license issued");
        if let Err(e) = self.write_certificate(&token, &envelope) {
            // The ledger has it; the file is written again at the next start.
            tracing::warn!("{e}");
        }
        Ok(())
    }

    /// The seller's orders, oldest first.
    pub fn sales(&self, pending_only: bool) -> Result<Vec<Order>, TradeError> {
        let mut orders = self.ledger.orders(Side::Sales)?;
        orders.retain(|o| !pending_only || o.status == OrderStatus::Pending);
        Ok(orders)
    }

    /// Finds a sale by its id or a unique prefix of it.
    fn find_sale(&self, text: &str) -> Result<Order, TradeError> {
        let text = text.trim().to_ascii_lowercase();
        let mut matches =
            self.ledger.orders(Side::Sales)?.into_iter().filter(|o| o.order_id.starts_with(&text));
        match (matches.next(), matches.next()) {
            (Some(order), None) if !text.is_empty() => Ok(order),
            (Some(_), Some(_)) => Err(TradeError::Ambiguous(text)),
            _ => Err(TradeError::UnknownOrder(text)),
        }
    }

    /// Approves a pending sale: issues its license.
    pub fn approve(&self, order_id: &str) -> Result<Order, TradeError> {
        let mut order = self.find_sale(order_id)?;
        if order.status != OrderStatus::Pending {
            return Err(TradeError::NotPending { order: order.order_id, status: order.status });
        }
        self.issue(&mut order)?;
        Ok(order)
    }

    /// Rejects a pending sale, with a reason the buyer will see.
    pub fn reject(&self, order_id: &str, reason: Option<String>) -> Result<Order, TradeError> {
        let mut order = self.find_sale(order_id)?;
        if order.status != OrderStatus::Pending {
            return Err(TradeError::NotPending { order: order.order_id, status: order.status });
        }
        order.status = OrderStatus::Rejected;
        order.reason = Some(reason.unwrap_or_else(|| "rejected by the seller".into()));
        self.ledger.save(Side::Sales, &order)?;
        Ok(order)
    }

    /// Signs a purchase request for the version of the pack in `manifest` and keeps
    /// it as a pending purchase, durably, before it is sent.
    pub fn new_purchase(
        &self,
        manifest: &Manifest,
        payment_ref: Option<String>,
    ) -> Result<Order, TradeError> {
        let request = PurchaseRequest {
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
        self.ledger.save(Side::Purchases, &order)?;
        Ok(order)
    }

    pub fn purchase(&self, order_id: &str) -> Result<Option<Order>, TradeError> {
        Ok(self.ledger.order(Side::Purchases, order_id)?)
    }

    /// Every purchase, oldest first.
    pub fn purchases(&self) -> Result<Vec<Order>, TradeError> {
        Ok(self.ledger.orders(Side::Purchases)?)
    }

    /// Purchases still waiting for the seller's answer.
    pub fn open_purchases(&self) -> Result<Vec<Order>, TradeError> {
        let mut orders = self.ledger.orders(Side::Purchases)?;
        orders.retain(|o| o.status == OrderStatus::Pending);
        Ok(orders)
    }

    /// Records the seller's answer to one of our purchases. An issued license is
    /// checked first (signed by the pack's author, for us, for the content we
    /// ordered); a bad one leaves the purchase pending and is an error.
    pub fn record(&self, order_id: &str, response: TradeResponse) -> Result<Order, TradeError> {
        let mut order =
            self.purchase(order_id)?.ok_or_else(|| TradeError::UnknownOrder(order_id.to_string()))?;
        if order.status != OrderStatus::Pending {
            return Ok(order);
        }
        match response {
            TradeResponse::Issued { license, .. } => {
                let expect = Expect {
                    buyer: Some(self.me()),
                    pack: Some(order.pack_id),
                    content: Some(order.content),
                };
                let (token, envelope) = check_token(&license, &expect)?;
                order.status = OrderStatus::Issued;
                order.license_id = Some(token.license_id);
                order.reason = None;
                self.ledger.issue(Side::Purchases, &order, &envelope)?;
                self.write_certificate(&token, &envelope)?;
            }
            TradeResponse::Pending { .. } => return Ok(order),
            TradeResponse::Rejected { reason, .. } | TradeResponse::Refused(reason) => {
                order.status = OrderStatus::Rejected;
                order.reason = Some(reason);
                self.ledger.save(Side::Purchases, &order)?;
            }
            TradeResponse::Accepted => return Ok(order),
        }
        Ok(order)
    }

    /// Our license (as buyer) for exactly this content of `pack`, if any.
    pub fn license_for(&self, pack: &PackId, content: &BlobHash) -> Result<Option<Envelope>, TradeError> {
        let me = self.me();
        Ok(self
            .ledger
            .licenses()?
            .into_iter()
            .find(|(t, _)| t.buyer == me && t.pack_id == *pack && t.content == *content)
            .map(|(_, envelope)| envelope))
    }

    /// Licenses this node holds as buyer, or (`issued`) those it issued as seller.
    pub fn licenses(&self, issued: bool) -> Result<Vec<LicenseView>, TradeError> {
        let me = self.me();
        let mut views: Vec<LicenseView> = self
            .ledger
            .licenses()?
            .into_iter()
            .filter(|(t, _)| if issued { t.seller == me } else { t.buyer == me })
            .map(|(t, _)| {
                let title = self.order_title(&t).unwrap_or_default();
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
        views.sort_by_key(|v| v.issued_at);
        Ok(views)
    }

    fn order_title(&self, token: &LicenseToken) -> Option<String> {
        self.store.manifest(&token.pack_id).ok().flatten().map(|(m, _)| m.title)
    }

    /// The certificate of our newest license for `pack`.
    pub fn certificate(&self, pack: &PackId) -> Result<(LicenseId, String), TradeError> {
        let me = self.me();
        let (token, envelope) = self
            .ledger
            .licenses()?
            .into_iter()
            .filter(|(t, _)| t.pack_id == *pack && (t.buyer == me || t.seller == me))
            .max_by_key(|(t, _)| (t.buyer == me, t.issued_at))
            .ok_or(TradeError::NoLicense(*pack))?;
        Ok((token.license_id, self.render(&token, &envelope)))
    }

    fn render(&self, token: &LicenseToken, envelope: &Envelope) -> String {
        let manifest = self.store.manifest(&token.pack_id).ok().flatten().map(|(m, _)| m);
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
        write_durably(&path, self.render(token, envelope).as_bytes())
            .map_err(|source| TradeError::Io { path, source })
    }

    fn write_missing_certificates(&self) -> Result<(), TradeError> {
        for (token, envelope) in self.ledger.licenses()? {
            if !self.certificate_path(&token).exists() {
                self.write_certificate(&token, &envelope)?;
            }
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` through a temporary file, fsyncing file and folder.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let temp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temp, path)?;
    std::fs::File::open(dir)?.sync_all()
}
