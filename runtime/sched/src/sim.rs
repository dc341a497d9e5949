//! What the seeded simulations share: a small deterministic generator and
//! the seed, `WRAY_SIM_SEED` when set (every failing simulation prints the
//! seed to replay it with).

/// xorshift64*: deterministic, dependency-free, enough to choose events.
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value; zero is avoided).
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `WRAY_SIM_SEED` if set, else `default`.
pub(crate) fn seed(default: u64) -> u64 {
    std::env::var("WRAY_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}
