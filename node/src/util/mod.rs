//! Small helpers, one per idiom, that the rest of the node shares: the clock,
//! random bytes, atomic file writes ([`fs`]), id-prefix lookup ([`prefix`]),
//! per-peer rates ([`rate`]), low-priority threads ([`background`]) and the
//! allocator's set-up ([`memory`]).

pub mod background;
pub mod fs;
pub mod memory;
pub mod prefix;
pub mod rate;

/// The current time in unix seconds (0 on a clock set before 1970).
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `N` bytes from the operating system's random generator.
pub fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS generator failing is not recoverable in any useful way.
    getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
    bytes
}
