//! The one random generator of the crate: seedable and fast, so training, the registration
//! searches and the evaluation are reproducible run to run.

/// A small, fast, seedable generator (SplitMix64): training must be reproducible.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
    /// Uniform in 0..n (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        // uniform() < 1, so the product is at most n (rounding can reach it): the same value
        // as `% n` without a division — α-AMD draws thousands of these per iteration.
        let v = (self.uniform() * n as f64) as usize;
        if v >= n { v.saturating_sub(n) } else { v }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `below` draws the same numbers as its definition, `(u · n) mod n`, for every n.
    #[test]
    fn below_is_the_product_modulo_n() {
        let (mut a, mut b) = (Rng::new(3), Rng::new(3));
        for i in 0..200_000usize {
            let n = match i % 4 { 0 => i % 7, 1 => 1 << (i % 40), 2 => usize::MAX - i, _ => 65_537 };
            let want = (b.uniform() * n as f64) as usize % n.max(1);
            assert_eq!(a.below(n), want, "n = {n}");
            assert!(n == 0 || want < n);
        }
    }
}
