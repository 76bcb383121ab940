//! Drawing training patches from aligned pairs: random position (inside the mask, if any),
//! random rotation with mirror padding and flip (the same geometry for both modalities,
//! which stay aligned), then per modality Gaussian blur and intensity jitter.
use crate::error::{Error, Result};
use ndarray::{Array2, Array3};
use serde::{Deserialize, Serialize};

pub use crate::rng::Rng;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    /// Random rotation in [−180°, 180°) with mirror padding.
    pub rotate: bool,
    pub flip: bool,
    /// Largest Gaussian blur σ (pixels), drawn per modality; 0 disables.
    pub blur_sigma_max: f64,
    /// Relative intensity jitter (gain and offset up to ± this).
    pub intensity_jitter: f64,
}

impl AugmentConfig {
    /// No augmentation: patch pairs as cut from the images.
    pub fn none() -> Self {
        AugmentConfig { rotate: false, flip: false, blur_sigma_max: 0.0, intensity_jitter: 0.0 }
    }
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig { rotate: true, flip: true, blur_sigma_max: 2.0, intensity_jitter: 0.1 }
    }
}

use crate::image::filter::mirror;

fn sample_mirrored(plane: &ndarray::ArrayView2<f32>, x: f64, y: f64) -> f32 {
    let (h, w) = plane.dim();
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = ((x - x0) as f32, (y - y0) as f32);
    let (x0, y0) = (x0 as isize, y0 as isize);
    let p = |xx: isize, yy: isize| plane[[mirror(yy, h), mirror(xx, w)]];
    (1.0 - fy) * ((1.0 - fx) * p(x0, y0) + fx * p(x0 + 1, y0)) + fy * ((1.0 - fx) * p(x0, y0 + 1) + fx * p(x0 + 1, y0 + 1))
}

/// Gaussian blur of every channel, mirror boundary.
pub fn gaussian_blur(x: &mut Array3<f32>, sigma: f64) {
    if sigma < 0.3 {
        return;
    }
    for mut plane in x.outer_iter_mut() {
        let blurred = crate::image::filter::gaussian_blur(plane.view(), sigma);
        plane.assign(&blurred);
    }
}

/// One aligned pair of network inputs, (C, H, W) each, and where patches may be drawn.
pub struct TrainingPair {
    pub a: Array3<f32>,
    pub b: Array3<f32>,
    /// Optional (H, W) mask: patch centres are drawn where it is true.
    pub mask: Option<Array2<bool>>,
}

impl TrainingPair {
    pub fn new(a: Array3<f32>, b: Array3<f32>, mask: Option<Array2<bool>>) -> Result<TrainingPair> {
        let (sa, sb) = (&a.shape()[1..], &b.shape()[1..]);
        if sa != sb {
            return Err(Error::Size(format!("the two images of a training pair differ in size: {}×{} and {}×{}", sa[1], sa[0], sb[1], sb[0])));
        }
        if let Some(m) = &mask {
            if m.shape() != sa {
                return Err(Error::Size("the training mask must have the size of the images".into()));
            }
            if !m.iter().any(|&v| v) {
                return Err(Error::Region("the training mask (ROI) is empty".into()));
            }
        }
        Ok(TrainingPair { a, b, mask })
    }
}

/// Draw one augmented patch pair of `size`×`size`.
pub fn sample_patch_pair(pair: &TrainingPair, size: usize, aug: &AugmentConfig, rng: &mut Rng) -> (Array3<f32>, Array3<f32>) {
    let (h, w) = (pair.a.shape()[1], pair.a.shape()[2]);
    let half = (size as f64 - 1.0) / 2.0;
    let pick = |n: usize, rng: &mut Rng| {
        if n > size { half + rng.range(0.0, (n - size) as f64) } else { rng.range(0.0, n as f64 - 1.0) }
    };
    let (mut cx, mut cy) = (pick(w, rng), pick(h, rng));
    if let Some(mask) = &pair.mask {
        for _ in 0..10_000 {
            if mask[[cy.round() as usize, cx.round() as usize]] {
                break;
            }
            cx = rng.range(0.0, w as f64 - 1.0);
            cy = rng.range(0.0, h as f64 - 1.0);
        }
    }
    let angle = if aug.rotate { rng.range(-std::f64::consts::PI, std::f64::consts::PI) } else { 0.0 };
    let flip = aug.flip && rng.uniform() < 0.5;
    let (s, c) = angle.sin_cos();
    let warp = |img: &Array3<f32>| {
        let mut out = Array3::<f32>::zeros((img.shape()[0], size, size));
        for (ch, plane) in img.outer_iter().enumerate() {
            for v in 0..size {
                for u in 0..size {
                    let (mut dx, dy) = (u as f64 - half, v as f64 - half);
                    if flip {
                        dx = -dx;
                    }
                    out[[ch, v, u]] = sample_mirrored(&plane, cx + c * dx - s * dy, cy + s * dx + c * dy);
                }
            }
        }
        out
    };
    let finish = |mut x: Array3<f32>, rng: &mut Rng| {
        if aug.blur_sigma_max > 0.0 && rng.uniform() < 0.5 {
            gaussian_blur(&mut x, rng.range(0.0, aug.blur_sigma_max));
        }
        if aug.intensity_jitter > 0.0 {
            let j = aug.intensity_jitter;
            let (gain, offset) = (1.0 + rng.range(-j, j) as f32, rng.range(-j, j) as f32);
            x.mapv_inplace(|v| v * gain + offset);
        }
        x
    };
    let a = finish(warp(&pair.a), rng);
    let b = finish(warp(&pair.b), rng);
    (a, b)
}
