//! License tokens: a seller's signed proof that a buyer may use a pack's content.

use serde::{Deserialize, Serialize};

use crate::check::{check_price, check_slug, check_terms};
use crate::{BlobHash, Kind, LicenseId, LicenseTerms, NodeId, PackId, Price, Signed};

/// Proof of a purchase, signed by the seller (the pack's author). Anyone can check it
/// offline with the seller's public key; it is useful only to the buyer's key.
///
/// A token says nothing about later versions: it licenses the exact `content`
/// collection of pack `pack_id` at `seq`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenseToken {
    pub license_id: LicenseId,
    pub pack_id: PackId,
    /// The pack's slug, so anyone can check that `pack_id` is the seller's pack.
    pub slug: String,
    pub seq: u64,
    /// The content collection hash: the exact bytes licensed (see
    /// [`collection::content_hash`](crate::collection::content_hash)).
    pub content: BlobHash,
    pub seller: NodeId,
    pub buyer: NodeId,
    /// `None` when the pack was free.
    pub price: Option<Price>,
    pub terms: LicenseTerms,
    /// Unix seconds.
    pub issued_at: u64,
}

impl Signed for LicenseToken {
    const KIND: Kind = Kind::LicenseToken;

    fn expected_signer(&self) -> NodeId {
        self.seller
    }

    fn validate(&self) -> Result<(), String> {
        check_slug(&self.slug)?;
        if PackId::derive(&self.seller, &self.slug) != self.pack_id {
            return Err(format!("pack id {} is not the seller's pack {:?}", self.pack_id, self.slug));
        }
        check_price(self.price.as_ref())?;
        check_terms(&self.terms)
    }
}
