//! The purchase ledger in sled: orders a seller received, purchases a buyer made,
//! and every license token this node issued or holds. Everything sled-specific of
//! buying and selling stays in this module; it shares the database of [`Store`].
//!
//! Trees (names carry a version):
//! - `sales/v1`: order id → [`Order`] as JSON (the seller's side);
//! - `purchases/v1`: order id → [`Order`] as JSON (the buyer's side);
//! - `licenses/v1`: license id → the token's original envelope bytes.
//!
//! Every write is flushed before it returns: an order answered "pending" or a
//! license answered "issued" must survive `kill -9` right after the answer.
//! Issuing writes the order and the token in one transaction.

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use smpl_protocol::{
    BlobHash, Envelope, LicenseId, LicenseTerms, LicenseToken, NodeId, PackId, Price, Signed,
};

use crate::store::{Store, StoreError};

/// Where an order stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Waiting for the seller (manual policy), or, on the buyer's side, not yet
    /// answered by the seller.
    Pending,
    Issued,
    Rejected,
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Issued => "issued",
            OrderStatus::Rejected => "rejected",
        })
    }
}

/// One order for one version of a pack, as the seller or the buyer keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// The first 8 bytes of BLAKE3 of the signed purchase request, hex: both sides
    /// know it without being told, and a resent request is the same order.
    pub order_id: String,
    pub pack_id: PackId,
    pub slug: String,
    pub seq: u64,
    pub title: String,
    /// The content collection of that version: what a license will cover.
    pub content: BlobHash,
    pub terms: LicenseTerms,
    pub seller: NodeId,
    pub buyer: NodeId,
    pub price: Option<Price>,
    pub payment_ref: Option<String>,
    pub status: OrderStatus,
    /// Why it was rejected.
    pub reason: Option<String>,
    pub license_id: Option<LicenseId>,
    /// Unix seconds.
    pub created_at: u64,
    /// The buyer's signed purchase request, kept as proof of the order.
    #[serde(with = "serde_bytes")]
    pub request: Vec<u8>,
}

/// Which side of an order a tree holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Sales,
    Purchases,
}

#[derive(Clone)]
pub struct Ledger {
    db: sled::Db,
    sales: sled::Tree,
    purchases: sled::Tree,
    licenses: sled::Tree,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unreadable(format!("{what}: {e}"))
}

fn decode_order(value: &[u8]) -> Result<Order, StoreError> {
    serde_json::from_slice(value).map_err(|e| corrupt("stored order", e))
}

fn encode_order(order: &Order) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(order).map_err(|e| corrupt("order", e))
}

impl Ledger {
    pub fn open(store: &Store) -> Result<Ledger, StoreError> {
        let db = store.db().clone();
        Ok(Ledger {
            sales: db.open_tree("sales/v1")?,
            purchases: db.open_tree("purchases/v1")?,
            licenses: db.open_tree("licenses/v1")?,
            db,
        })
    }

    fn tree(&self, side: Side) -> &sled::Tree {
        match side {
            Side::Sales => &self.sales,
            Side::Purchases => &self.purchases,
        }
    }

    pub fn order(&self, side: Side, order_id: &str) -> Result<Option<Order>, StoreError> {
        self.tree(side).get(order_id.as_bytes())?.map(|v| decode_order(&v)).transpose()
    }

    /// Every order on one side, oldest first.
    pub fn orders(&self, side: Side) -> Result<Vec<Order>, StoreError> {
        let mut orders = self
            .tree(side)
            .iter()
            .values()
            .map(|v| decode_order(&v?))
            .collect::<Result<Vec<Order>, StoreError>>()?;
        orders.sort_by(|a, b| (a.created_at, &a.order_id).cmp(&(b.created_at, &b.order_id)));
        Ok(orders)
    }

    /// Writes an order (new or changed) durably.
    pub fn save(&self, side: Side, order: &Order) -> Result<(), StoreError> {
        self.tree(side).insert(order.order_id.as_bytes(), encode_order(order)?)?;
        self.db.flush()?;
        Ok(())
    }

    /// Marks `order` issued with `license` and stores the token, in one
    /// transaction, durably.
    pub fn issue(&self, side: Side, order: &Order, license: &Envelope) -> Result<(), StoreError> {
        let value = encode_order(order)?;
        let license_id = order.license_id.ok_or_else(|| corrupt("order", "issued without a license id"))?;
        (self.tree(side), &self.licenses).transaction(|(orders, licenses)| {
            orders.insert(order.order_id.as_bytes(), value.as_slice())?;
            licenses.insert(license_id.as_bytes(), license.as_bytes())?;
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })?;
        self.db.flush()?;
        Ok(())
    }

    /// Every license token stored here (issued by us or to us), verified again on
    /// the way out; unreadable entries are reported, not skipped silently.
    pub fn licenses(&self) -> Result<Vec<(LicenseToken, Envelope)>, StoreError> {
        self.licenses
            .iter()
            .values()
            .map(|v| {
                let v = v?;
                LicenseToken::open(&v).map_err(|e| corrupt("stored license", e))
            })
            .collect()
    }

    pub fn license(&self, id: &LicenseId) -> Result<Option<(LicenseToken, Envelope)>, StoreError> {
        self.licenses
            .get(id.as_bytes())?
            .map(|v| LicenseToken::open(&v).map_err(|e| corrupt("stored license", e)))
            .transpose()
    }
}
