//! Binned copies of large images: k × k blocks of pixels averaged into one. Registration of
//! images too large for working memory runs on binned copies (see [`crate::memory`]), and
//! previews are drawn from them, so no full-size working copy is ever made.
use super::{check_size, Calibration, Image, PixelType};
use crate::error::Result;
use crate::register::transform::Affine2;
use ndarray::{Array2, Array4, ArrayView2};
use rayon::prelude::*;

/// One plane averaged over k × k blocks; the last row and column of blocks may be smaller
/// (they average the pixels they have).
#[expect(clippy::expect_used, reason = "the buffer is filled to exactly oh × ow samples above")]
pub fn bin_plane(plane: ArrayView2<f32>, k: usize) -> Array2<f32> {
    let k = k.max(1);
    let (h, w) = plane.dim();
    let (oh, ow) = (h.div_ceil(k), w.div_ceil(k));
    let mut out = vec![0.0f32; oh * ow];
    if ow > 0 {
        out.par_chunks_mut(ow).enumerate().for_each(|(by, row)| {
            let rows = by * k..((by + 1) * k).min(h);
            let n_rows = rows.len();
            for y in rows {
                for (bx, v) in row.iter_mut().enumerate() {
                    for x in bx * k..((bx + 1) * k).min(w) {
                        *v += plane[[y, x]];
                    }
                }
            }
            for (bx, v) in row.iter_mut().enumerate() {
                *v /= (n_rows * (((bx + 1) * k).min(w) - bx * k)) as f32;
            }
        });
    }
    Array2::from_shape_vec((oh, ow), out).expect("oh*ow samples")
}

/// The first slice of `image`, every channel binned by `k`, as a 32-bit image whose pixel
/// size is k times the original's.
pub fn bin_image(image: &Image, k: usize) -> Result<Image> {
    let k = k.max(1);
    let (oh, ow) = (image.height().div_ceil(k), image.width().div_ceil(k));
    check_size(ow as u64, oh as u64, image.channels() as u64)?;
    let mut data = Array4::zeros((1, image.channels(), oh, ow));
    for c in 0..image.channels() {
        data.slice_mut(ndarray::s![0, c, .., ..]).assign(&bin_plane(image.plane(0, c), k));
    }
    let cal = &image.calibration;
    let calibration = Calibration { pixel_width: cal.pixel_width * k as f64, pixel_height: cal.pixel_height * k as f64, unit: cal.unit.clone() };
    Ok(Image { data, pixel_type: PixelType::F32, calibration })
}

/// Binned pixel → original pixel: binned pixel u is the block k·u … k·u + k − 1, whose centre
/// is k·u + (k − 1)/2.
pub fn binned_to_original(k: usize) -> Affine2 {
    let k = k.max(1) as f64;
    let c = (k - 1.0) / 2.0;
    Affine2::new([[k, 0.0, c], [0.0, k, c]])
}

/// The bin factor that brings a width × height plane to at most `max_side` pixels on a side.
pub fn factor_for_side(width: usize, height: usize, max_side: usize) -> usize {
    width.max(height).div_ceil(max_side.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ramp_binned_keeps_its_values_at_the_block_centres() {
        // f(x, y) = 3x + 5y is linear, so a block's mean is its value at the block centre.
        let plane = Array2::from_shape_fn((10, 13), |(y, x)| (3 * x + 5 * y) as f32);
        for k in [1, 2, 3, 4] {
            let b = bin_plane(plane.view(), k);
            assert_eq!(b.dim(), (10usize.div_ceil(k), 13usize.div_ceil(k)));
            let to_original = binned_to_original(k);
            for ((v, u), value) in b.indexed_iter() {
                // Only whole blocks sit where the map says; edge blocks are cut short.
                if (v + 1) * k <= 10 && (u + 1) * k <= 13 {
                    let (x, y) = to_original.apply(u as f64, v as f64);
                    assert!((*value as f64 - (3.0 * x + 5.0 * y)).abs() < 1e-3, "k={k} ({u},{v}): {value} vs {}", 3.0 * x + 5.0 * y);
                }
            }
        }
    }

    #[test]
    fn edge_blocks_average_only_the_pixels_they_have() {
        let plane = Array2::from_shape_fn((5, 5), |(y, x)| (x + 10 * y) as f32);
        let b = bin_plane(plane.view(), 2);
        assert_eq!(b[[2, 2]], 44.0); // the lone corner pixel
        assert_eq!(b[[0, 2]], (4.0 + 14.0) / 2.0); // the right column, two rows
    }

    #[test]
    fn binned_images_have_k_times_the_pixel_size() {
        let mut image = Image::zeros(2, 3, 9, 9, PixelType::U8).unwrap();
        image.calibration = Calibration { pixel_width: 0.5, pixel_height: 0.25, unit: "µm".into() };
        let b = bin_image(&image, 3).unwrap();
        assert_eq!((b.slices(), b.channels(), b.height(), b.width()), (1, 3, 3, 3));
        assert_eq!((b.calibration.pixel_width, b.calibration.pixel_height), (1.5, 0.75));
        assert_eq!(factor_for_side(20000, 15000, 2048), 10);
        assert_eq!(factor_for_side(100, 100, 2048), 1);
    }
}
