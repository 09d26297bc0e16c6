//! Retractions: an author's signed removal of one of their packs.

use serde::{Deserialize, Serialize};

use crate::check::check_pack_id;
use crate::{Kind, NodeId, PackId, Signed};

/// The author's signed removal of a pack: removes every version with `seq` up to and
/// including this one. Publishing again needs a higher `seq`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retraction {
    pub pack_id: PackId,
    pub author: NodeId,
    /// The slug the pack id derives from, so anyone can check the id is the author's.
    pub slug: String,
    pub seq: u64,
    /// Unix seconds.
    pub retracted_at: u64,
}

impl Signed for Retraction {
    const KIND: Kind = Kind::Retraction;

    fn expected_signer(&self) -> NodeId {
        self.author
    }

    fn validate(&self) -> Result<(), String> {
        check_pack_id(&self.pack_id, &self.author, &self.slug)
    }
}
