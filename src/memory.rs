//! The working memory a registration needs, checked before it starts. A 20000² pair registered
//! by MI peaked at 21 GB and an out-of-memory kill takes Fiji (and unsaved work) with it, so a
//! registration that would not fit into the memory available now is refused up front, with
//! the numbers and what to do instead. Registration without a model never needs more than
//! [`WORKING_BUDGET`]: larger pairs are registered on binned copies (see [`bin_factor`]).
use crate::error::{Error, Result};

/// Bytes of working memory per pixel of the pair (fixed + moving pixels), measured with
/// `bench/register-memory.sh` (MI, 4000² and 8000² pairs: 52 and 46 bytes per fixed pixel for
/// two images of its size, falling towards ~44 as the fixed base of ~100 MB weighs less), with
/// a little margin: 48 per fixed pixel.
pub const BYTES_PER_PAIR_PIXEL: u64 = 24;

/// Estimated working memory (bytes) of registering a `fixed` × `moving` pixel pair.
pub fn registration_bytes(fixed_pixels: u64, moving_pixels: u64) -> u64 {
    fixed_pixels.saturating_add(moving_pixels).saturating_mul(BYTES_PER_PAIR_PIXEL)
}

/// Memory available to this process now: `COMIR_AVAILABLE_MEMORY` (bytes) if set, else
/// Linux's MemAvailable; None where it cannot be read (then nothing is refused).
pub fn available_bytes() -> Option<u64> {
    if let Some(v) = std::env::var("COMIR_AVAILABLE_MEMORY").ok().and_then(|s| s.parse().ok()) {
        return Some(v);
    }
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn gib(b: u64) -> String {
    format!("{:.1} GB", b as f64 / 1e9)
}

/// Working memory a registration may use beyond its inputs. A 20000² pair (3 GB as 32-bit
/// inputs) must register within 4 GiB, so its working copies get what is left, with margin.
pub const WORKING_BUDGET: u64 = 768 << 20;

/// [`WORKING_BUDGET`], or `COMIR_WORKING_MEMORY` (bytes) if set.
pub fn working_budget() -> u64 {
    std::env::var("COMIR_WORKING_MEMORY").ok().and_then(|s| s.parse().ok()).unwrap_or(WORKING_BUDGET)
}

/// The bin factor k (1 = none) that brings the working memory of registering a `fixed` ×
/// `moving` pixel pair under `budget`: each image is then registered as k × k binned blocks.
pub fn bin_factor(fixed: (usize, usize), moving: (usize, usize), budget: u64) -> usize {
    let pixels = (fixed.0 * fixed.1) as u64 + (moving.0 * moving.1) as u64;
    let mut k = 1u64;
    while registration_bytes(pixels / (k * k), 0) > budget {
        k += 1;
    }
    k as usize
}

/// Refuse a registration of `fixed` (w, h) and `moving` (w, h) pixels that would not fit.
pub fn check_registration_fits(fixed: (usize, usize), moving: (usize, usize), available: Option<u64>) -> Result<()> {
    let need = registration_bytes((fixed.0 * fixed.1) as u64, (moving.0 * moving.1) as u64);
    match available {
        Some(have) if need > have => Err(Error::Resources(format!(
            "registering a {}×{} image with a {}×{} image needs about {} of working memory, but only {} is available: \
             register a region (ROI) or binned copies (Image › Transform › Bin, or Image › Scale), then apply the \
             transform to the full images (it scales with the binning)",
            fixed.0, fixed.1, moving.0, moving.1, gib(need), gib(have)
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_pairs_are_binned_until_their_working_copies_fit_the_budget() {
        assert_eq!(bin_factor((2000, 2000), (2000, 2000), WORKING_BUDGET), 1);
        assert_eq!(bin_factor((4000, 4000), (4000, 4000), WORKING_BUDGET), 1);
        let k = bin_factor((20000, 20000), (20000, 20000), WORKING_BUDGET);
        assert_eq!(k, 5);
        let binned = (20000 * 20000 / (k * k)) as u64;
        assert!(registration_bytes(binned, binned) <= WORKING_BUDGET);
        assert!(registration_bytes(binned * k as u64 * k as u64 / ((k - 1) * (k - 1)) as u64, binned * k as u64 * k as u64 / ((k - 1) * (k - 1)) as u64) > WORKING_BUDGET);
    }
}
