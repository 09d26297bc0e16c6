//! Range fingerprints: an incremental, order-independent digest of a set of items,
//! as the module docs define it, and sampled prefix sums that give the fingerprint of
//! any run of sorted items with a bounded number of item hashes.

use std::fmt;

use super::Item;
use crate::ids::hex_encode;

const ITEM_CONTEXT: &str = "smpl/v1/sync-item";
const FINGERPRINT_CONTEXT: &str = "smpl/v1/sync-fingerprint";

/// Prefix sums are kept for every `BLOCK`-th item: 2 bytes of memory per item, and
/// at most `2 · (BLOCK - 1)` item hashes per fingerprint.
const BLOCK: usize = 16;

/// The fingerprint of a set of items (16 bytes); the module docs give its definition.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 16]);

impl Fingerprint {
    /// The fingerprint of `items`, in any order (each item counted once as given).
    pub fn of(items: &[Item]) -> Fingerprint {
        let hasher = ItemHasher::new();
        let mut sum = Sum::default();
        for item in items {
            sum.add(&hasher.hash(item));
        }
        sum.fingerprint(items.len() as u64)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", hex_encode(&self.0))
    }
}

/// A sum of item hashes: four 64-bit lanes, each added modulo 2⁶⁴.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sum([u64; 4]);

impl Sum {
    fn add(&mut self, other: &Sum) {
        for (lane, o) in self.0.iter_mut().zip(other.0) {
            *lane = lane.wrapping_add(o);
        }
    }

    fn sub(&mut self, other: &Sum) {
        for (lane, o) in self.0.iter_mut().zip(other.0) {
            *lane = lane.wrapping_sub(o);
        }
    }

    fn fingerprint(&self, count: u64) -> Fingerprint {
        let mut hasher = blake3::Hasher::new_derive_key(FINGERPRINT_CONTEXT);
        for lane in self.0 {
            hasher.update(&lane.to_le_bytes());
        }
        hasher.update(&count.to_le_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
        Fingerprint(out)
    }
}

/// Hashes items; keeps the derive-key hasher for the item context ready to clone.
struct ItemHasher(blake3::Hasher);

impl ItemHasher {
    fn new() -> Self {
        ItemHasher(blake3::Hasher::new_derive_key(ITEM_CONTEXT))
    }

    fn hash(&self, item: &Item) -> Sum {
        let mut hasher = self.0.clone();
        hasher.update(item.id.as_bytes());
        hasher.update(&item.version.to_le_bytes());
        let bytes = hasher.finalize();
        let mut lanes = [0u64; 4];
        for (lane, chunk) in lanes.iter_mut().zip(bytes.as_bytes().chunks_exact(8)) {
            let mut le = [0u8; 8];
            le.copy_from_slice(chunk);
            *lane = u64::from_le_bytes(le);
        }
        Sum(lanes)
    }
}

/// Fingerprints of runs `items[i..j]` of one sorted item list, from sums of the
/// first `k · BLOCK` items kept for every `k`.
pub(crate) struct PrefixSums {
    hasher: ItemHasher,
    /// `sampled[k]` is the sum of `items[..k * BLOCK]`.
    sampled: Vec<Sum>,
}

impl PrefixSums {
    pub(crate) fn new(items: &[Item]) -> Self {
        let hasher = ItemHasher::new();
        let mut sampled = Vec::with_capacity(items.len() / BLOCK + 1);
        let mut sum = Sum::default();
        sampled.push(sum);
        for block in items.chunks(BLOCK) {
            for item in block {
                sum.add(&hasher.hash(item));
            }
            if block.len() == BLOCK {
                sampled.push(sum);
            }
        }
        PrefixSums { hasher, sampled }
    }

    /// The sum of `items[..n]`; `items` must be the list these sums were built from.
    fn prefix(&self, items: &[Item], n: usize) -> Sum {
        let block = n / BLOCK;
        let mut sum = self.sampled.get(block).copied().unwrap_or_default();
        for item in items.get(block * BLOCK..n).unwrap_or_default() {
            sum.add(&self.hasher.hash(item));
        }
        sum
    }

    /// The fingerprint of `items[i..j]`, `i <= j <= items.len()`.
    pub(crate) fn fingerprint(&self, items: &[Item], i: usize, j: usize) -> Fingerprint {
        let mut sum = self.prefix(items, j);
        sum.sub(&self.prefix(items, i));
        sum.fingerprint(j.saturating_sub(i) as u64)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::PackId;

    fn items(n: usize) -> Vec<Item> {
        (0..n)
            .map(|i| {
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&(i as u64).to_be_bytes());
                Item { id: PackId(id), version: i as u64 % 5 }
            })
            .collect()
    }

    #[test]
    fn empty_and_order_independent() {
        let list = items(40);
        let mut shuffled = list.clone();
        shuffled.reverse();
        assert_eq!(Fingerprint::of(&list), Fingerprint::of(&shuffled));
        assert_ne!(Fingerprint::of(&list), Fingerprint::of(&list[1..]));
        assert_eq!(Fingerprint::of(&[]), Sum::default().fingerprint(0));
        let mut bumped = list.clone();
        bumped[3].version += 1;
        assert_ne!(Fingerprint::of(&list), Fingerprint::of(&bumped));
    }

    proptest! {
        #[test]
        fn prefix_sums_match_direct(n in 0usize..100, a in 0usize..100, b in 0usize..100) {
            let list = items(n);
            let sums = PrefixSums::new(&list);
            let (i, j) = (a.min(b).min(n), a.max(b).min(n));
            prop_assert_eq!(sums.fingerprint(&list, i, j), Fingerprint::of(&list[i..j]));
        }
    }
}
