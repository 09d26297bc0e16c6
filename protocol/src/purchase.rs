//! Purchase requests: a buyer's signed order for a pack, sent to its seller.

use serde::{Deserialize, Serialize};

use crate::check::{check_line, check_price};
use crate::limits::{MAX_PAYMENT_REF, MAX_SHORT_TEXT};
use crate::{Kind, NodeId, PackId, Price, Signed};

/// A buyer's signed request to buy a pack from its seller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    pub pack_id: PackId,
    pub seq: u64,
    pub buyer: NodeId,
    pub seller: NodeId,
    /// The price the buyer accepts; `None` for a free pack.
    pub price: Option<Price>,
    pub payment_ref: Option<String>,
    /// Random, so two requests are never the same bytes.
    pub nonce: u64,
    /// Unix seconds.
    pub created_at: u64,
    /// The buyer's display name, as its node's config gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_name: Option<String>,
}

impl Signed for PurchaseRequest {
    const KIND: Kind = Kind::PurchaseRequest;

    fn expected_signer(&self) -> NodeId {
        self.buyer
    }

    fn validate(&self) -> Result<(), String> {
        check_price(self.price.as_ref())?;
        if let Some(name) = &self.buyer_name {
            check_line("buyer name", name, MAX_SHORT_TEXT)?;
        }
        if let Some(payment_ref) = &self.payment_ref {
            check_line("payment reference", payment_ref, MAX_PAYMENT_REF)?;
        }
        Ok(())
    }
}
