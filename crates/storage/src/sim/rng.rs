//! The seeded generator behind every random choice of the simulator.

/// splitmix64: tiny, seedable, and good enough for choosing crash outcomes.
#[derive(Debug)]
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (up to a negligible modulo bias); `bound` must be positive.
    pub(super) fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// Uniform in `0..=max`.
    pub(super) fn up_to(&mut self, max: usize) -> usize {
        let drawn = self.below(max as u64 + 1);
        usize::try_from(drawn).expect("a value not above a usize fits in a usize")
    }

    pub(super) fn coin(&mut self) -> bool {
        self.below(2) == 0
    }

    pub(super) fn byte(&mut self) -> u8 {
        self.next_u64().to_le_bytes()[0]
    }
}
