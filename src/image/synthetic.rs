//! Synthetic multimodal pairs: two exactly aligned "modalities" made from one image, so that
//! the evaluation can run on images no model saw and whose alignment is known (issue #13,
//! point 5). Real modalities differ in three ways a registration method must survive; each is
//! drawn at random from the seed:
//! - the intensities are related by a **non-monotonic** map (a structure dark in one is bright
//!   in the other, two tissues swap their order): MI copes, NCC and SIFT on the raw images do not;
//! - part of the second modality answers **edges**, not intensity (as SHG lights collagen
//!   fibres at boundaries): no function of the first image's intensity explains it, so MI on
//!   the originals is no longer ideal either;
//! - different **blur** (resolution) and **noise**.
use super::filter::{gaussian_blur, normalise_robust};
use super::{Image, PixelType};
use crate::error::{Error, Result};
use crate::rng::Rng;
use ndarray::{Array2, Array4, Axis, Zip};

/// Control points of the intensity map of the second modality (evenly spaced over [0, 1]).
const CURVE_POINTS: usize = 5;

/// A non-monotonic piecewise-linear map of [0, 1] onto [0, 1]: random values at evenly spaced
/// points, drawn again until the curve turns at least once (a monotone map would make the pair
/// one modality with a different contrast).
fn random_curve(rng: &mut Rng) -> [f64; CURVE_POINTS] {
    loop {
        let c: [f64; CURVE_POINTS] = std::array::from_fn(|_| rng.uniform());
        let steps: Vec<f64> = c.windows(2).map(|w| w[1] - w[0]).collect();
        let turns = steps.windows(2).any(|s| s[0] * s[1] < 0.0);
        // Tiny steps would flatten the map into a constant: every step at least 0.15.
        if turns && steps.iter().all(|s| s.abs() >= 0.15) {
            return c;
        }
    }
}

fn apply_curve(c: &[f64; CURVE_POINTS], v: f32) -> f32 {
    let x = (v as f64).clamp(0.0, 1.0) * (CURVE_POINTS - 1) as f64;
    let i = (x.floor() as usize).min(CURVE_POINTS - 2);
    let f = x - i as f64;
    (c[i] * (1.0 - f) + c[i + 1] * f) as f32
}

/// Normally distributed noise (Box–Muller) of standard deviation `sigma`.
fn add_noise(plane: &mut Array2<f32>, sigma: f64, rng: &mut Rng) {
    for v in plane.iter_mut() {
        let (u1, u2) = (rng.uniform().max(1e-12), rng.uniform());
        *v += (sigma * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32;
    }
}

/// Gradient magnitude (central differences, zero at the border).
fn edges(plane: &Array2<f32>) -> Array2<f32> {
    let (h, w) = plane.dim();
    Array2::from_shape_fn((h, w), |(y, x)| {
        if y == 0 || x == 0 || y + 1 == h || x + 1 == w {
            return 0.0;
        }
        let gx = plane[[y, x + 1]] - plane[[y, x - 1]];
        let gy = plane[[y + 1, x]] - plane[[y - 1, x]];
        (gx * gx + gy * gy).sqrt()
    })
}

/// Two aligned single-channel 32-bit images of `image` (its first slice, channels averaged)
/// that look like two modalities: A is the image with mild blur and noise, B a non-monotonic
/// map of it mixed with its edges, blurred more and noisier. Same seed, same pair.
pub fn modality_pair(image: &Image, seed: u64) -> Result<(Image, Image)> {
    if image.width() < 16 || image.height() < 16 {
        return Err(Error::UnsupportedImage(format!("a synthetic pair needs an image of 16×16 or more (got {}×{})", image.width(), image.height())));
    }
    let mut rng = Rng::new(seed ^ 0x5E_ED_0F_5F);
    let grey = image.data.index_axis(Axis(0), 0).mean_axis(Axis(0)).ok_or_else(|| Error::Internal("an image without channels".into()))?;
    let grey = normalise_robust(grey.view());

    let mut a = gaussian_blur(grey.view(), rng.range(0.5, 1.0));
    add_noise(&mut a, 0.02, &mut rng);

    let curve = random_curve(&mut rng);
    let edge = normalise_robust(edges(&gaussian_blur(grey.view(), 1.5)).view());
    let edge_weight = rng.range(0.3, 0.5) as f32;
    let mut mixed = grey.clone();
    Zip::from(&mut mixed).and(&edge).for_each(|v, &e| *v = (1.0 - edge_weight) * apply_curve(&curve, *v) + edge_weight * e);
    let mut b = gaussian_blur(mixed.view(), rng.range(1.5, 2.5));
    add_noise(&mut b, 0.04, &mut rng);

    let as_image = |p: Array2<f32>| -> Result<Image> {
        let (h, w) = p.dim();
        let data: Array4<f32> = p.into_shape_with_order((1, 1, h, w)).map_err(|e| Error::Internal(format!("a plane as an image: {e}")))?;
        Ok(Image { data, pixel_type: PixelType::F32, calibration: image.calibration.clone() })
    };
    Ok((as_image(a)?, as_image(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::register::mi::normalised_mi_prepared;
    use crate::register::transform::Affine2;

    /// Smooth random blobs: structure at several scales, like tissue.
    fn blobs(size: usize, seed: u64) -> Image {
        let mut rng = Rng::new(seed);
        let mut p = Array2::<f32>::zeros((size, size));
        for _ in 0..60 {
            let (cx, cy, r, v) = (rng.range(0.0, size as f64), rng.range(0.0, size as f64), rng.range(3.0, 14.0), rng.range(0.2, 1.0));
            for ((y, x), px) in p.indexed_iter_mut() {
                let d2 = (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2);
                *px += (v * (-d2 / (2.0 * r * r)).exp()) as f32;
            }
        }
        Image { data: p.into_shape_with_order((1, 1, size, size)).unwrap(), pixel_type: PixelType::F32, calibration: Default::default() }
    }

    fn correlation(a: &Image, b: &Image) -> f64 {
        let (x, y) = (a.plane(0, 0), b.plane(0, 0));
        let (mx, my) = (x.mean().unwrap() as f64, y.mean().unwrap() as f64);
        let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
        for (&p, &q) in x.iter().zip(y.iter()) {
            let (p, q) = (p as f64 - mx, q as f64 - my);
            sxy += p * q;
            sxx += p * p;
            syy += q * q;
        }
        sxy / (sxx * syy).sqrt()
    }

    #[test]
    fn the_curve_turns_and_spans_the_range() {
        let mut rng = Rng::new(3);
        for _ in 0..100 {
            let c = random_curve(&mut rng);
            let up = c.windows(2).any(|w| w[1] > w[0]);
            let down = c.windows(2).any(|w| w[1] < w[0]);
            assert!(up && down, "{c:?} is monotone");
            assert_eq!(apply_curve(&c, 0.0) as f64, c[0] as f32 as f64);
            assert!((apply_curve(&c, 1.0) as f64 - c[CURVE_POINTS - 1]).abs() < 1e-6);
        }
    }

    #[test]
    fn a_pair_is_reproducible_from_its_seed() {
        let image = blobs(64, 1);
        let (a1, b1) = modality_pair(&image, 7).unwrap();
        let (a2, b2) = modality_pair(&image, 7).unwrap();
        assert_eq!(a1.data, a2.data);
        assert_eq!(b1.data, b2.data);
        let (_, b3) = modality_pair(&image, 8).unwrap();
        assert_ne!(b1.data, b3.data);
    }

    #[test]
    fn the_two_modalities_are_aligned_but_unlike() {
        let image = blobs(128, 2);
        for seed in 0..4 {
            let (a, b) = modality_pair(&image, seed).unwrap();
            // Unlike: no linear relation explains B from A (a monotone contrast change would
            // leave |r| near 1).
            let r = correlation(&a, &b);
            assert!(r.abs() < 0.8, "seed {seed}: correlation {r}");
            // Aligned: mutual information peaks at the identity, not 4 px away.
            let (pa, pb) = (a.plane(0, 0).to_owned(), b.plane(0, 0).to_owned());
            let at = |t: &Affine2| normalised_mi_prepared(normalise_robust(pa.view()).view(), normalise_robust(pb.view()).view(), t, 32);
            let aligned = at(&Affine2::IDENTITY);
            for (dx, dy) in [(4.0, 0.0), (0.0, 4.0), (-4.0, -4.0)] {
                let shifted = at(&Affine2::translation(dx, dy));
                assert!(aligned > shifted, "seed {seed}: NMI {aligned} at the truth, {shifted} at ({dx}, {dy})");
            }
        }
    }

    #[test]
    fn tiny_images_are_refused() {
        assert!(modality_pair(&blobs(8, 1), 0).is_err());
    }
}
