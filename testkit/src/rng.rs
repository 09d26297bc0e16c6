//! A seeded xorshift generator: deterministic noise for audio, and spread-out delays
//! whose seed a test prints so that a failing run can be replayed.

/// Marsaglia's xorshift64 (shifts 13, 7, 17). The seed must not be zero.
#[derive(Clone, Debug)]
pub struct Xorshift(pub u64);

impl Xorshift {
    /// Seeded from the clock; print `.0` so that a failing run can be repeated.
    pub fn from_clock() -> Xorshift {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        Xorshift(nanos as u64 | 1)
    }

    /// The next state.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..below`.
    pub fn below(&mut self, below: u64) -> u64 {
        self.next_u64() % below
    }

    /// A sample of noise, uniform in -1..1.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}
