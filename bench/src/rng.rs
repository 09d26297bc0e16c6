//! A small deterministic random number generator (SplitMix64), so that every run
//! and every engine sees the same corpus and queries.

#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for item `i` of stream `stream`, independent of the others.
    pub fn for_item(seed: u64, stream: u64, i: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xA24B_AED4_963E_E407));
        r.0 ^= i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 11) as u128 * n as u128) >> 53) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below((hi - lo + 1) as usize) as u64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 >= 1.0 - p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `n` distinct items (fewer if `items` is shorter).
    pub fn pick_distinct<T: Clone + PartialEq>(&mut self, items: &[T], n: usize) -> Vec<T> {
        let mut out: Vec<T> = Vec::with_capacity(n);
        while out.len() < n.min(items.len()) {
            let item = self.pick(items);
            if !out.contains(item) {
                out.push(item.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_in_range() {
        let mut a = Rng::for_item(1, 2, 3);
        let mut b = Rng::for_item(1, 2, 3);
        for _ in 0..1000 {
            let x = a.below(7);
            assert_eq!(x, b.below(7));
            assert!(x < 7);
        }
        assert_ne!(Rng::for_item(1, 2, 3).next_u64(), Rng::for_item(1, 2, 4).next_u64());
    }
}
