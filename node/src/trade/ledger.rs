//! The purchase ledger in sled: orders a seller received, purchases a buyer made,
//! and every license token this node issued or holds. Everything sled-specific of
//! buying and selling stays in this module; it shares the database of [`Store`].
//!
//! Trees (names carry a version):
//! - `sales/v1`: order id → [`Order`] as JSON (the seller's side);
//! - `purchases/v1`: order id → [`Order`] as JSON (the buyer's side);
//! - `licenses/v1`: license id → the token's original envelope bytes;
//! - `sale-slots/v1`: buyer (32 bytes) ‖ pack id (16) ‖ seq (8, big-endian) → the
//!   sale that may license this buyer for this version of the pack, and its license
//!   once issued ([`Slot`] as JSON);
//! - `refused-orders/v1`: time (microseconds, big-endian) ‖ order id → a
//!   [`RefusedOrder`] as JSON: orders rejected before they were kept (not for
//!   this node, underpaid, too many pending), the newest [`MAX_REFUSED`] only.
//!
//! One sale per slot, decided once: a new sale is stored ([`Ledger::claim`]) in one
//! transaction that checks its order id and its slot, so a re-sent or concurrent
//! copy of an order, or another order from the same buyer for the same version,
//! finds the first instead of being decided (and charged) again. Later changes
//! ([`Ledger::update`]) are compare-and-set on the stored order, so two deciders
//! cannot both win. A rejected sale frees its slot; an issued one keeps it, with
//! the license id, after the order itself is pruned, so a later order from that
//! buyer gets the license it already has.
//!
//! Every write is flushed before it returns: an order answered "pending" or a
//! license answered "issued" must survive `kill -9` right after the answer.
//! Issuing writes the order, its slot and the token in one transaction.
//!
//! The pending sales of each buyer are counted in memory (read when the ledger
//! opens, kept by every write), so an order is checked against its buyer's open
//! orders without reading the others.
//!
//! Licenses are read from memory: they are verified once when the ledger opens (and
//! were when stored) and kept decoded, by id and by pack, so listing them or
//! looking one up costs no signature checks. Writes to the cache and to sled happen
//! under one lock, so a license is never stored but unseen. Open one ledger per
//! database (the node's [`Trade`](super::Trade) holds it).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockWriteGuard};

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use smpl_protocol::{
    BlobHash, Envelope, LicenseId, LicenseTerms, LicenseToken, Manifest, NodeId, PackId, PaymentInfo, Price,
    Signed,
};

use crate::store::{Store, StoreError};

/// Where an order stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Waiting for the seller (manual policy, the payment hook, or a decision the
    /// hook could not finish), or, on the buyer's side, not yet answered.
    Pending,
    Issued,
    Rejected,
}

impl OrderStatus {
    /// Issued or rejected: final.
    pub fn is_decided(self) -> bool {
        self != OrderStatus::Pending
    }
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
    /// Why it was rejected, or what a pending order waits for.
    pub reason: Option<String>,
    pub license_id: Option<LicenseId>,
    /// Unix seconds.
    pub created_at: u64,
    /// The seller's side: since when (unix seconds) the payment hook has been
    /// deciding this pending order. Copies of the order that arrive meanwhile are
    /// answered "pending"; one found when the node opens belongs to a hook whose
    /// answer was lost, and is handed to the seller instead of running the hook again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deciding_since: Option<u64>,
    /// When it was issued or rejected (unix seconds); decided orders are pruned
    /// some time after. Orders stored before this was kept count from `created_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<u64>,
    /// The buyer's signed purchase request, kept as proof of the order.
    #[serde(with = "serde_bytes")]
    pub request: Vec<u8>,
    /// The display name the buyer signed into the request (not authenticated
    /// beyond that: two buyers may use one name, the key tells them apart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_name: Option<String>,
    /// An update of a pack the buyer holds a licence for: issued without payment
    /// on the strength of that licence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_of: Option<LicenseId>,
    /// The buyer's side: how the seller asks to be paid, as the listing said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentInfo>,
    /// The buyer's side: since when (unix seconds) the seller could not be reached
    /// to deliver or ask about this pending order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_since: Option<u64>,
}

impl Order {
    /// Whether the payment hook is deciding it now.
    pub fn is_deciding(&self) -> bool {
        self.deciding_since.is_some()
    }

    /// Pending and not in the payment hook's hands: the seller may approve or reject it.
    pub fn awaits_seller(&self) -> bool {
        self.status == OrderStatus::Pending && !self.is_deciding()
    }

    /// Unix seconds since which it counts as decided (for pruning).
    fn decided_since(&self) -> u64 {
        self.decided_at.unwrap_or(self.created_at)
    }

    fn slot_key(&self) -> [u8; 56] {
        let mut key = [0u8; 56];
        key[..32].copy_from_slice(self.buyer.as_bytes());
        key[32..48].copy_from_slice(self.pack_id.as_bytes());
        key[48..].copy_from_slice(&self.seq.to_be_bytes());
        key
    }
}

/// Which side of an order a tree holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Sales,
    Purchases,
}

/// The sale that holds a (buyer, pack, version) slot.
#[derive(Debug, Serialize, Deserialize)]
struct Slot {
    order_id: String,
    license_id: Option<LicenseId>,
}

/// What [`Ledger::claim`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// The order was new and is stored as given: the caller decides it.
    New,
    /// The order was stored before (a re-sent or concurrent copy): where it stands.
    Known(Box<Order>),
    /// Another order from the same buyer for the same version holds the slot: its
    /// id, and its license once issued.
    Held { order_id: String, license_id: Option<LicenseId> },
}

/// What [`Ledger::update`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    Done,
    /// The stored order was not in the expected state (someone else moved it
    /// first); it is returned as stored, unchanged.
    Stale(Box<Order>),
    Missing,
    /// The buyer holds a license for this version from another sale already (only
    /// orders stored before slots were kept can meet this).
    Licensed {
        order_id: String,
        license_id: LicenseId,
    },
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// Licenses stored here, decoded.
#[derive(Default)]
struct Held {
    by_id: HashMap<LicenseId, (LicenseToken, Envelope)>,
    by_pack: HashMap<PackId, Vec<LicenseId>>,
}

impl Held {
    fn insert(&mut self, token: LicenseToken, envelope: Envelope) {
        let (id, pack) = (token.license_id, token.pack_id);
        if self.by_id.insert(id, (token, envelope)).is_none() {
            self.by_pack.entry(pack).or_default().push(id);
        }
    }
}

/// Refused orders kept (the oldest go first).
pub const MAX_REFUSED: usize = 1_000;

/// An order refused before it was kept, for the seller to look at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefusedOrder {
    pub order_id: String,
    pub buyer: NodeId,
    #[serde(default)]
    pub buyer_name: Option<String>,
    pub pack_id: PackId,
    pub reason: String,
    /// Unix seconds.
    pub at: u64,
}

#[derive(Clone)]
pub struct Ledger {
    db: sled::Db,
    sales: sled::Tree,
    purchases: sled::Tree,
    licenses: sled::Tree,
    slots: sled::Tree,
    /// Pack id → the envelope of the newest manifest we hold a licence for, so a
    /// licence keeps its pack's title and file list after a retraction.
    licensed_manifests: sled::Tree,
    held: Arc<RwLock<Held>>,
    /// Buyer → the ids of its pending sales.
    pending: Arc<Mutex<HashMap<NodeId, HashSet<String>>>>,
    refused: sled::Tree,
    /// Entries in `refused` (counted at open, kept by [`Ledger::refuse`]).
    refused_len: Arc<AtomicUsize>,
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

fn decode_slot(value: &[u8]) -> Result<Slot, StoreError> {
    serde_json::from_slice(value).map_err(|e| corrupt("stored sale slot", e))
}

fn encode_slot(order: &Order) -> Result<Vec<u8>, StoreError> {
    let slot = Slot { order_id: order.order_id.clone(), license_id: order.license_id };
    serde_json::to_vec(&slot).map_err(|e| corrupt("sale slot", e))
}

/// An order, its slot and its license (if issued), encoded for one transaction.
struct Write<'a> {
    value: Vec<u8>,
    slot: Vec<u8>,
    key: [u8; 56],
    /// The license's id, its token for the cache, and its envelope.
    license: Option<(LicenseId, LicenseToken, &'a Envelope)>,
}

impl<'a> Write<'a> {
    fn of(order: &Order, license: Option<&'a Envelope>) -> Result<Write<'a>, StoreError> {
        let license = match license {
            None => None,
            Some(envelope) => {
                let token = LicenseToken::from_envelope(envelope).map_err(|e| corrupt("license", e))?;
                let id = order.license_id.ok_or_else(|| corrupt("order", "issued without a license id"))?;
                Some((id, token, envelope))
            }
        };
        Ok(Write { value: encode_order(order)?, slot: encode_slot(order)?, key: order.slot_key(), license })
    }

    fn insert_license(&self, licenses: &TransactionalTree) -> TxResult<()> {
        if let Some((id, _, envelope)) = &self.license {
            licenses.insert(id.as_bytes(), envelope.as_bytes())?;
        }
        Ok(())
    }
}

fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

/// What holds the slot `key` against the new sale `order_id`, as a [`Claim::Held`]:
/// an issued sale (also one pruned since, even a pruned copy of this very order),
/// or another open one. A slot whose sale was rejected is free.
fn holder(
    sales: &TransactionalTree,
    slots: &TransactionalTree,
    key: &[u8],
    order_id: &str,
) -> TxResult<Option<Claim>> {
    let Some(raw) = slots.get(key)? else { return Ok(None) };
    let slot = decode_slot(&raw).map_err(abort)?;
    if slot.license_id.is_some() {
        return Ok(Some(Claim::Held { order_id: slot.order_id, license_id: slot.license_id }));
    }
    if slot.order_id == order_id {
        return Ok(None);
    }
    let Some(raw) = sales.get(slot.order_id.as_bytes())? else { return Ok(None) };
    let order = decode_order(&raw).map_err(abort)?;
    Ok(match order.status {
        OrderStatus::Pending => Some(Claim::Held { order_id: slot.order_id, license_id: None }),
        OrderStatus::Issued => Some(Claim::Held { order_id: slot.order_id, license_id: order.license_id }),
        OrderStatus::Rejected => None,
    })
}

impl Ledger {
    /// Opens the trees and reads every stored license once, verifying it.
    pub fn open(store: &Store) -> Result<Ledger, StoreError> {
        let db = store.db().clone();
        let licenses = db.open_tree("licenses/v1")?;
        let mut held = Held::default();
        for entry in licenses.iter() {
            let (id, value) = entry?;
            let (token, envelope) = LicenseToken::open(&value).map_err(|e| {
                let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
                corrupt(&format!("stored license {id}"), e)
            })?;
            held.insert(token, envelope);
        }
        let refused = db.open_tree("refused-orders/v1")?;
        let ledger = Ledger {
            sales: db.open_tree("sales/v1")?,
            purchases: db.open_tree("purchases/v1")?,
            slots: db.open_tree("sale-slots/v1")?,
            licensed_manifests: db.open_tree("licensed-manifests/v1")?,
            licenses,
            held: Arc::new(RwLock::new(held)),
            pending: Arc::default(),
            refused_len: Arc::new(AtomicUsize::new(refused.len())),
            refused,
            db,
        };
        for order in ledger.orders(Side::Sales)? {
            ledger.track(&order);
        }
        Ok(ledger)
    }

    /// Keeps the pending index in step with a sale as stored.
    fn track(&self, order: &Order) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if order.status == OrderStatus::Pending {
            pending.entry(order.buyer).or_default().insert(order.order_id.clone());
        } else if let Some(ids) = pending.get_mut(&order.buyer) {
            ids.remove(&order.order_id);
            if ids.is_empty() {
                pending.remove(&order.buyer);
            }
        }
    }

    /// How many sales of `buyer` wait for a decision.
    pub fn pending_sales_of(&self, buyer: &NodeId) -> usize {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).get(buyer).map_or(0, HashSet::len)
    }

    /// Logs an order refused before it was kept; the oldest go past [`MAX_REFUSED`].
    /// Not flushed: a refusal lost in a crash costs nothing.
    pub fn refuse(&self, refused: &RefusedOrder) -> Result<(), StoreError> {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut key = micros.to_be_bytes().to_vec();
        key.extend_from_slice(refused.order_id.as_bytes());
        let value = serde_json::to_vec(refused).map_err(|e| corrupt("refused order", e))?;
        if self.refused.insert(key, value)?.is_none()
            && self.refused_len.fetch_add(1, Ordering::Relaxed) >= MAX_REFUSED
            && self.refused.pop_min()?.is_some()
        {
            self.refused_len.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The refused orders kept, oldest first.
    pub fn refused(&self) -> Result<Vec<RefusedOrder>, StoreError> {
        self.refused
            .iter()
            .values()
            .map(|v| serde_json::from_slice(&v?).map_err(|e| corrupt("refused order", e)))
            .collect()
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

    /// Writes a new purchase durably (the buyer's side: its order id is new, from a
    /// fresh signature).
    pub fn save_purchase(&self, order: &Order) -> Result<(), StoreError> {
        self.purchases.insert(order.order_id.as_bytes(), encode_order(order)?)?;
        self.db.flush()?;
        Ok(())
    }

    /// The license cache, locked for writing when `write` stores a license: held
    /// across the transaction, so the cache and sled agree for every reader.
    fn lock_held(&self, write: &Write<'_>) -> Option<RwLockWriteGuard<'_, Held>> {
        write.license.as_ref().map(|_| self.held.write().unwrap_or_else(PoisonError::into_inner))
    }

    /// After the transaction that stored `write`: caches its license (under the
    /// lock [`Ledger::lock_held`] took) and flushes.
    fn stored(&self, held: Option<RwLockWriteGuard<'_, Held>>, write: Write<'_>) -> Result<(), StoreError> {
        if let (Some(mut held), Some((_, token, license))) = (held, write.license) {
            held.insert(token, license.clone());
        }
        self.db.flush()?;
        Ok(())
    }

    /// Stores a new sale as given (with `license` when it is issued at once) unless
    /// its order id is stored already or another live sale holds its slot: checked
    /// and written in one transaction, durably. Only the caller that gets
    /// [`Claim::New`] decides the order.
    pub fn claim(&self, order: &Order, license: Option<&Envelope>) -> Result<Claim, StoreError> {
        let write = Write::of(order, license)?;
        let Write { value, slot, key, .. } = &write;
        let held = self.lock_held(&write);
        let claim = (&self.sales, &self.slots, &self.licenses).transaction(
            |(sales, slots, licenses)| -> TxResult<Claim> {
                if let Some(known) = sales.get(order.order_id.as_bytes())? {
                    return Ok(Claim::Known(Box::new(decode_order(&known).map_err(abort)?)));
                }
                if let Some(taken) = holder(sales, slots, key, &order.order_id)? {
                    return Ok(taken);
                }
                sales.insert(order.order_id.as_bytes(), value.as_slice())?;
                if order.status != OrderStatus::Rejected {
                    slots.insert(&key[..], slot.as_slice())?;
                }
                write.insert_license(licenses)?;
                Ok(Claim::New)
            },
        )?;
        if claim == Claim::New {
            self.stored(held, write)?;
            self.track(order);
        }
        Ok(claim)
    }

    /// Replaces the stored order with `next` (same id, on `side`) if the stored one
    /// passes `from`, with `license` when `next` is issued: one transaction,
    /// durably. On the sales side the slot follows: an issued sale keeps it with its
    /// license id, a rejected one frees it.
    pub fn update(
        &self,
        side: Side,
        next: &Order,
        license: Option<&Envelope>,
        from: impl Fn(&Order) -> bool,
    ) -> Result<Update, StoreError> {
        let write = Write::of(next, license)?;
        let Write { value, slot, key, .. } = &write;
        let sales = side == Side::Sales;
        let id = next.order_id.as_bytes();
        let held = self.lock_held(&write);
        let update = (self.tree(side), &self.slots, &self.licenses).transaction(
            |(orders, slots, licenses)| -> TxResult<Update> {
                let Some(current) = orders.get(id)? else { return Ok(Update::Missing) };
                let current = decode_order(&current).map_err(abort)?;
                if !from(&current) {
                    return Ok(Update::Stale(Box::new(current)));
                }
                if sales {
                    let taken =
                        slots.get(&key[..])?.map(|raw| decode_slot(&raw)).transpose().map_err(abort)?;
                    match (next.status, taken) {
                        (OrderStatus::Issued, Some(Slot { order_id, license_id: Some(license_id) }))
                            if order_id != next.order_id =>
                        {
                            return Ok(Update::Licensed { order_id, license_id });
                        }
                        (OrderStatus::Rejected, Some(taken)) if taken.order_id == next.order_id => {
                            slots.remove(&key[..])?;
                        }
                        (OrderStatus::Rejected, _) => {}
                        (OrderStatus::Issued, _) => {
                            slots.insert(&key[..], slot.as_slice())?;
                        }
                        (OrderStatus::Pending, None) => {
                            slots.insert(&key[..], slot.as_slice())?;
                        }
                        (OrderStatus::Pending, Some(_)) => {}
                    }
                }
                orders.insert(id, value.as_slice())?;
                write.insert_license(licenses)?;
                Ok(Update::Done)
            },
        )?;
        if update == Update::Done {
            self.stored(held, write)?;
            if sales {
                self.track(next);
            }
        }
        Ok(update)
    }

    /// Makes the sales a stopped node left behind safe to go on with: an order the
    /// payment hook was deciding is handed to the seller (pending, with `reason`),
    /// never decided by the hook again, and every live sale holds its slot (orders
    /// stored before slots were kept: the oldest wins). Returns the handed orders.
    pub fn recover_sales(&self, reason: &str) -> Result<Vec<Order>, StoreError> {
        let mut handed = Vec::new();
        let mut slotted = false;
        for order in self.orders(Side::Sales)? {
            if order.is_deciding() {
                let mut next = order.clone();
                next.deciding_since = None;
                next.reason = Some(reason.to_string());
                if self.update(Side::Sales, &next, None, Order::is_deciding)? == Update::Done {
                    handed.push(next);
                }
            } else if order.status != OrderStatus::Rejected {
                let key = order.slot_key();
                let claimed = self.slots.compare_and_swap(key, None::<&[u8]>, Some(encode_slot(&order)?))?;
                slotted |= claimed.is_ok();
            }
        }
        if slotted {
            self.db.flush()?;
        }
        Ok(handed)
    }

    /// Removes the decided orders on `side` that were decided before `before` (unix
    /// seconds). Licenses stay, and so do the slots of issued sales. Returns how
    /// many orders went.
    pub fn prune(&self, side: Side, before: u64) -> Result<usize, StoreError> {
        let tree = self.tree(side);
        let mut pruned = 0;
        for entry in tree.iter() {
            let (key, value) = entry?;
            let order = decode_order(&value)?;
            if order.status.is_decided() && order.decided_since() < before {
                // Decided orders do not change; the swap only guards against a bug
                // that would change one meanwhile.
                if tree.compare_and_swap(&key, Some(&value), None::<&[u8]>)?.is_ok() {
                    pruned += 1;
                }
            }
        }
        if pruned > 0 {
            self.db.flush()?;
        }
        Ok(pruned)
    }

    fn read_held(&self) -> std::sync::RwLockReadGuard<'_, Held> {
        self.held.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `envelope` (a manifest this node holds a licence for) unless a newer
    /// version of the pack is kept already.
    pub fn keep_manifest(&self, manifest: &Manifest, envelope: &Envelope) -> Result<(), StoreError> {
        if self.licensed_manifest(&manifest.pack_id)?.is_some_and(|(m, _)| m.seq >= manifest.seq) {
            return Ok(());
        }
        self.licensed_manifests.insert(manifest.pack_id.0, envelope.as_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    /// The newest manifest of `pack` kept for a licence.
    pub fn licensed_manifest(&self, pack: &PackId) -> Result<Option<(Manifest, Envelope)>, StoreError> {
        match self.licensed_manifests.get(pack.0)? {
            None => Ok(None),
            Some(bytes) => Manifest::open(&bytes).map(Some).map_err(|e| corrupt("a kept manifest", e)),
        }
    }

    /// Every license token stored here (issued by us or to us).
    pub fn licenses(&self) -> Vec<(LicenseToken, Envelope)> {
        self.read_held().by_id.values().cloned().collect()
    }

    /// The license tokens stored here for `pack`.
    pub fn licenses_of(&self, pack: &PackId) -> Vec<(LicenseToken, Envelope)> {
        let held = self.read_held();
        let ids = held.by_pack.get(pack).map(Vec::as_slice).unwrap_or_default();
        ids.iter().filter_map(|id| held.by_id.get(id).cloned()).collect()
    }

    pub fn license(&self, id: &LicenseId) -> Option<(LicenseToken, Envelope)> {
        self.read_held().by_id.get(id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smpl_protocol::Identity;
    use std::sync::Barrier;

    fn ledger() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        (dir, Ledger::open(&store).unwrap())
    }

    fn seller() -> Identity {
        Identity::from_secret_bytes([5; 32])
    }

    fn order(id: &str, buyer: u8) -> Order {
        Order {
            order_id: id.into(),
            pack_id: PackId::derive(&seller().node_id(), "dusty-drums"),
            slug: "dusty-drums".into(),
            seq: 1,
            title: "Dusty Drums".into(),
            content: BlobHash([2; 32]),
            terms: LicenseTerms::Named("royalty-free".into()),
            seller: seller().node_id(),
            buyer: NodeId([buyer; 32]),
            price: Some(Price { amount_minor: 500, currency: "USD".into() }),
            payment_ref: None,
            status: OrderStatus::Pending,
            reason: None,
            license_id: None,
            created_at: 1_700_000_000,
            deciding_since: None,
            decided_at: None,
            request: vec![1, 2, 3],
            buyer_name: None,
            upgrade_of: None,
            payment: None,
            unreachable_since: None,
        }
    }

    /// `order` issued, with a token signed by a seller key.
    fn issued(order: &Order, license: u8) -> (Order, Envelope) {
        let seller = seller();
        let token = LicenseToken {
            license_id: LicenseId([license; 16]),
            pack_id: order.pack_id,
            slug: order.slug.clone(),
            seq: order.seq,
            content: order.content,
            seller: seller.node_id(),
            buyer: order.buyer,
            price: order.price.clone(),
            terms: order.terms.clone(),
            issued_at: 1_700_000_100,
        };
        let mut order = order.clone();
        order.status = OrderStatus::Issued;
        order.license_id = Some(token.license_id);
        order.decided_at = Some(token.issued_at);
        (order, token.sign(&seller).unwrap())
    }

    /// Runs `work` on `n` threads released together; returns their results.
    fn race<T: Send>(n: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
        let barrier = Barrier::new(n);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let (barrier, work) = (&barrier, &work);
                    s.spawn(move || {
                        barrier.wait();
                        work(i)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn the_refused_log_keeps_the_newest_and_pending_counts_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let ledger = Ledger::open(&store).unwrap();
        for n in 0..MAX_REFUSED + 5 {
            let refused = RefusedOrder {
                order_id: format!("{n:06}"),
                buyer: NodeId([1; 32]),
                buyer_name: None,
                pack_id: PackId([2; 16]),
                reason: "underpaid".into(),
                at: 0,
            };
            ledger.refuse(&refused).unwrap();
        }
        let kept = ledger.refused().unwrap();
        assert_eq!(kept.len(), MAX_REFUSED);
        assert_eq!(kept.first().unwrap().order_id, "000005", "the oldest went");

        let pending = order("p1", 3);
        assert_eq!(ledger.claim(&pending, None).unwrap(), Claim::New);
        assert_eq!(ledger.pending_sales_of(&pending.buyer), 1);
        drop(ledger);
        let ledger = Ledger::open(&store).unwrap();
        assert_eq!(ledger.pending_sales_of(&pending.buyer), 1, "counted again at open");
        assert_eq!(ledger.refused().unwrap().len(), MAX_REFUSED);
        let (issued, license) = issued(&pending, 9);
        assert_eq!(ledger.update(Side::Sales, &issued, Some(&license), |_| true).unwrap(), Update::Done);
        assert_eq!(ledger.pending_sales_of(&pending.buyer), 0);
    }

    #[test]
    fn of_two_threads_claiming_one_order_exactly_one_wins() {
        let (_dir, ledger) = ledger();
        for round in 0..50u8 {
            let mut claimed = order(&format!("order-{round}"), round);
            claimed.deciding_since = Some(1);
            let claims = race(2, |_| ledger.claim(&claimed, None).unwrap());
            let new = claims.iter().filter(|c| **c == Claim::New).count();
            assert_eq!(new, 1, "round {round}: {claims:?}");
            assert!(claims.contains(&Claim::Known(Box::new(claimed.clone()))), "round {round}: {claims:?}");
        }
    }

    #[test]
    fn of_two_orders_for_one_version_by_one_buyer_exactly_one_is_stored() {
        let (_dir, ledger) = ledger();
        for round in 0..50u8 {
            let (a, b) = (order(&format!("a-{round}"), round), order(&format!("b-{round}"), round));
            let claims = race(2, |i| ledger.claim(if i == 0 { &a } else { &b }, None).unwrap());
            assert_eq!(claims.iter().filter(|c| **c == Claim::New).count(), 1, "{claims:?}");
            assert!(
                claims.iter().any(|c| matches!(c, Claim::Held { license_id: None, .. })),
                "round {round}: {claims:?}"
            );
        }
        // Another buyer, or another version, is another slot.
        let mut other = order("other-version", 0);
        other.seq = 2;
        assert_eq!(ledger.claim(&other, None).unwrap(), Claim::New);
    }

    #[test]
    fn of_two_deciders_exactly_one_moves_an_order() {
        let (_dir, ledger) = ledger();
        let pending = order("o1", 7);
        assert_eq!(ledger.claim(&pending, None).unwrap(), Claim::New);
        let (a, a_license) = issued(&pending, 1);
        let (b, b_license) = issued(&pending, 2);
        let updates = race(2, |i| {
            let (next, license) = if i == 0 { (&a, &a_license) } else { (&b, &b_license) };
            ledger.update(Side::Sales, next, Some(license), Order::awaits_seller).unwrap()
        });
        assert_eq!(updates.iter().filter(|u| **u == Update::Done).count(), 1, "{updates:?}");
        assert_eq!(ledger.licenses().len(), 1, "one license stored");
        let stored = ledger.order(Side::Sales, "o1").unwrap().unwrap();
        assert_eq!(ledger.license(&stored.license_id.unwrap()).map(|(t, _)| t.buyer), Some(pending.buyer));
    }

    #[test]
    fn a_rejected_sale_frees_its_slot_and_an_issued_one_keeps_it_past_pruning() {
        let (_dir, ledger) = ledger();
        let first = order("first", 9);
        assert_eq!(ledger.claim(&first, None).unwrap(), Claim::New);
        let mut rejected = first.clone();
        rejected.status = OrderStatus::Rejected;
        rejected.decided_at = Some(1_700_000_050);
        assert_eq!(ledger.update(Side::Sales, &rejected, None, Order::awaits_seller).unwrap(), Update::Done);

        let second = order("second", 9);
        assert_eq!(ledger.claim(&second, None).unwrap(), Claim::New, "a rejection frees the slot");
        let (second_issued, license) = issued(&second, 4);
        let done = ledger.update(Side::Sales, &second_issued, Some(&license), Order::awaits_seller).unwrap();
        assert_eq!(done, Update::Done);

        // Pruning takes the decided orders, never the license or the issued slot.
        assert_eq!(ledger.prune(Side::Sales, 1_700_000_060).unwrap(), 1, "only the rejection is old enough");
        assert_eq!(ledger.prune(Side::Sales, 1_800_000_000).unwrap(), 1);
        assert!(ledger.orders(Side::Sales).unwrap().is_empty());
        assert_eq!(ledger.licenses().len(), 1);
        assert_eq!(ledger.licenses_of(&second.pack_id).len(), 1);
        let third = order("third", 9);
        let held = Claim::Held { order_id: "second".into(), license_id: Some(LicenseId([4; 16])) };
        assert_eq!(ledger.claim(&third, None).unwrap(), held);
    }

    #[test]
    fn an_order_the_hook_was_deciding_goes_to_the_seller_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let ledger = Ledger::open(&store).unwrap();
        let mut deciding = order("deciding", 3);
        deciding.deciding_since = Some(1_700_000_001);
        assert_eq!(ledger.claim(&deciding, None).unwrap(), Claim::New);
        let (done, license) = issued(&order("done", 4), 8);
        assert_eq!(ledger.claim(&done, Some(&license)).unwrap(), Claim::New);

        let reopened = Ledger::open(&store).unwrap();
        assert_eq!(reopened.license(&LicenseId([8; 16])).map(|(t, _)| t.buyer), Some(done.buyer));
        let handed = reopened.recover_sales("check the payment").unwrap();
        assert_eq!(handed.len(), 1);
        let stored = reopened.order(Side::Sales, "deciding").unwrap().unwrap();
        assert!(stored.awaits_seller(), "{stored:?}");
        assert_eq!(stored.reason.as_deref(), Some("check the payment"));
        assert!(reopened.recover_sales("again").unwrap().is_empty(), "handed over once");
        // It still holds its slot.
        let copy = order("copy", 3);
        assert!(matches!(reopened.claim(&copy, None).unwrap(), Claim::Held { license_id: None, .. }));
    }

    #[test]
    fn orders_stored_before_the_new_fields_still_decode() {
        let old = r#"{"order_id":"00112233aabbccdd","pack_id":"01010101010101010101010101010101",
            "slug":"s","seq":1,"title":"T","content":"0202020202020202020202020202020202020202020202020202020202020202",
            "terms":{"named":"royalty-free"},"seller":"0303030303030303030303030303030303030303030303030303030303030303",
            "buyer":"0404040404040404040404040404040404040404040404040404040404040404","price":null,
            "payment_ref":null,"status":"issued","reason":null,"license_id":null,"created_at":5,"request":[1,2]}"#;
        let order = decode_order(old.as_bytes()).unwrap();
        assert_eq!((order.status, order.deciding_since, order.decided_at), (OrderStatus::Issued, None, None));
        let encoded = String::from_utf8(encode_order(&order).unwrap()).unwrap();
        assert!(!encoded.contains("deciding_since") && !encoded.contains("decided_at"), "{encoded}");
    }
}
