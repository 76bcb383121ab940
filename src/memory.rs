//! The working memory a registration needs, checked before it starts. A 20000² pair registered
//! by MI peaked at 21 GB and an out-of-memory kill takes Fiji (and unsaved work) with it, so a
//! registration that would not fit into the memory available now is refused up front, with
//! the numbers and what to do instead.
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

/// Refuse a registration of `fixed` (w, h) and `moving` (w, h) pixels that would not fit.
pub fn check_registration_fits(fixed: (usize, usize), moving: (usize, usize), available: Option<u64>) -> Result<()> {
    let need = registration_bytes((fixed.0 * fixed.1) as u64, (moving.0 * moving.1) as u64);
    match available {
        Some(have) if need > have => Err(Error::Argument(format!(
            "registering a {}×{} image with a {}×{} image needs about {} of working memory, but only {} is available: \
             register a region (ROI) or binned copies (Image › Transform › Bin, or Image › Scale), then apply the \
             transform to the full images (it scales with the binning)",
            fixed.0, fixed.1, moving.0, moving.1, gib(need), gib(have)
        ))),
        _ => Ok(()),
    }
}
