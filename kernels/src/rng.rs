//! A request's own random stream, so its draws do not depend on who else is in the batch.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// ChaCha20 seeded from the request's seed; one uniform per generated token.
#[derive(Debug, Clone)]
pub struct RequestRng {
    stream: ChaCha20Rng,
}

impl RequestRng {
    pub fn new(seed: u64) -> Self {
        Self {
            stream: ChaCha20Rng::seed_from_u64(seed),
        }
    }

    /// A uniform in [0, 1) with 24 random bits: every value is an exact f32, and the
    /// formula is ours rather than a library distribution's, so the stream of a seed
    /// never changes under a dependency upgrade of `rand`.
    pub fn next_uniform(&mut self) -> f32 {
        const SCALE: f32 = 1.0 / (1u32 << 24) as f32;
        (self.stream.next_u32() >> 8) as f32 * SCALE
    }
}
