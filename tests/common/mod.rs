//! Synthetic test scenes made by our own code.
#![allow(dead_code)]
use comir::rng::Rng;
use ndarray::Array2;

/// A textured scene in [0, 1]: Gaussian blobs of many sizes plus fine streaks, no symmetry.
pub fn scene(width: usize, height: usize, seed: u64) -> Array2<f32> {
    let mut rng = Rng::new(seed);
    let n = width * height / 300;
    let blobs: Vec<(f64, f64, f64, f64)> = (0..n).map(|_| (rng.range(-10.0, width as f64 + 10.0), rng.range(-10.0, height as f64 + 10.0), rng.range(1.5, 8.0), rng.range(-0.6, 1.0))).collect();
    let mut img = Array2::<f64>::zeros((height, width));
    for &(bx, by, r, v) in &blobs {
        let rad = (3.0 * r).ceil() as isize;
        for y in (by as isize - rad).max(0)..(by as isize + rad).min(height as isize) {
            for x in (bx as isize - rad).max(0)..(bx as isize + rad).min(width as isize) {
                let d2 = (x as f64 - bx).powi(2) + (y as f64 - by).powi(2);
                img[[y as usize, x as usize]] += v * (-d2 / (r * r)).exp();
            }
        }
    }
    let (lo, hi) = img.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    img.mapv(|v| ((v - lo) / (hi - lo)) as f32)
}

/// The second "modality" of a scene: a non-monotonic intensity map (bright mid-tones).
pub fn other_modality(scene: &Array2<f32>) -> Array2<f32> {
    scene.mapv(|s| 1.0 - (2.0 * s - 1.0).powi(2))
}

#[allow(unused_imports)] // not every test binary measures errors
pub use comir::register::transform::corner_error;

/// Two views of one larger scene: `fixed` (w×h) and `moving` (w×h) such that `truth` maps
/// fixed pixel coordinates to moving pixel coordinates; no view has an empty border.
pub fn view_pair(w: usize, h: usize, truth: &comir::Affine2, seed: u64) -> (Array2<f32>, Array2<f32>) {
    let margin = w.max(h);
    let big = scene(w + 2 * margin, h + 2 * margin, seed);
    let offset = comir::Affine2::translation(margin as f64, margin as f64);
    let fixed = comir::register::warp::warp_plane(big.view(), &offset, w, h);
    // moving(p) = big(offset(truth⁻¹(p)))
    let moving = comir::register::warp::warp_plane(big.view(), &offset.compose(&truth.inverse().unwrap()), w, h);
    (fixed, moving)
}
