//! Token buckets per peer: how much of one kind of input a node takes from each
//! peer. A peer may send `burst` at once, then one per `refill`; past that its
//! input is refused (the caller counts it). At most [`MAX_TRACKED`] peers are
//! tracked; past it, the one idle longest is forgotten (and starts full again).

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Peers tracked at once by one [`Rate`].
pub const MAX_TRACKED: usize = 4_096;

pub struct Rate<K> {
    burst: f64,
    refill: Duration,
    buckets: HashMap<K, (f64, Instant)>,
}

impl<K: Hash + Eq + Copy> Rate<K> {
    pub fn new(burst: u32, refill: Duration) -> Rate<K> {
        Rate { burst: f64::from(burst), refill, buckets: HashMap::new() }
    }

    /// Takes one from `peer`'s bucket at `now`; false when it is empty.
    pub fn take(&mut self, peer: K, now: Instant) -> bool {
        if self.buckets.len() >= MAX_TRACKED
            && !self.buckets.contains_key(&peer)
            && let Some(idle) = self.buckets.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| *k)
        {
            self.buckets.remove(&idle);
        }
        let (tokens, at) = self.buckets.entry(peer).or_insert((self.burst, now));
        let refilled = now.saturating_duration_since(*at).as_secs_f64() / self.refill.as_secs_f64();
        *tokens = (*tokens + refilled).min(self.burst);
        *at = now;
        if *tokens < 1.0 {
            return false;
        }
        *tokens -= 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_refill_and_peers_apart() {
        let mut rate = Rate::new(3, Duration::from_secs(1));
        let start = Instant::now();
        assert!((0..3).all(|_| rate.take(1u8, start)));
        assert!(!rate.take(1, start));
        assert!(rate.take(2, start), "another peer has its own bucket");
        assert!(rate.take(1, start + Duration::from_secs(1)));
        assert!(!rate.take(1, start + Duration::from_secs(1)));
        assert!((0..3).all(|_| rate.take(1, start + Duration::from_secs(60))), "full again, not more");
        assert!(!rate.take(1, start + Duration::from_secs(60)));
    }

    #[test]
    fn past_the_tracked_peers_the_longest_idle_is_forgotten() {
        let mut rate = Rate::new(1, Duration::from_secs(3600));
        let start = Instant::now();
        for peer in 0..MAX_TRACKED as u32 {
            assert!(rate.take(peer, start + Duration::from_millis(u64::from(peer))));
        }
        assert!(rate.take(u32::MAX, start + Duration::from_secs(10)));
        assert_eq!(rate.buckets.len(), MAX_TRACKED);
        assert!(rate.take(0, start + Duration::from_secs(11)), "peer 0 was forgotten, so it starts full");
        assert!(!rate.take(MAX_TRACKED as u32 - 1, start + Duration::from_secs(12)), "still empty");
    }
}
