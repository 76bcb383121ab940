//! Which pixels of an image take part in its registration (a non-rectangular ROI drawn around
//! the tissue that matters). Outside the mask a pixel is neither sampled (MI, α-AMD points),
//! nor a keypoint (SIFT), nor scored (quality); the rest of the image still gives the
//! methods their context (blur, distance tables, descriptors).
use super::transform::Affine2;
use crate::error::{Error, Result};
use ndarray::{Array2, ArrayView2};

/// true = the pixel belongs to the region; same size as the plane it masks.
pub type Mask = Array2<bool>;

/// The masks of the fixed and the moving plane (None: every pixel counts).
#[derive(Clone, Copy, Debug, Default)]
pub struct Masks<'a> {
    pub fixed: Option<&'a Mask>,
    pub moving: Option<&'a Mask>,
}

impl Masks<'_> {
    /// Refuse masks whose size differs from their planes', and empty masks.
    pub fn check(&self, fixed: (usize, usize), moving: (usize, usize)) -> Result<()> {
        for (mask, dim, which) in [(self.fixed, fixed, "fixed"), (self.moving, moving, "moving")] {
            let Some(m) = mask else { continue };
            if m.dim() != dim {
                return Err(Error::Size(format!("the {which} mask is {}×{} but its image is {}×{}", m.ncols(), m.nrows(), dim.1, dim.0)));
            }
            if !m.iter().any(|&b| b) {
                return Err(Error::Region(format!("the {which} ROI contains no pixel")));
            }
        }
        Ok(())
    }
}

/// Whether (x, y) (pixels, centres at integers) lies in the mask: nearest pixel; outside the
/// grid is outside the mask. No mask: true.
pub fn contains(mask: Option<&Mask>, x: f64, y: f64) -> bool {
    let Some(m) = mask else { return true };
    let (xi, yi) = (x.round(), y.round());
    xi >= 0.0 && yi >= 0.0 && (xi as usize) < m.ncols() && (yi as usize) < m.nrows() && m[[yi as usize, xi as usize]]
}

/// `plane` with the pixels outside `mask` set to NaN (scores skip NaN).
pub fn outside_to_nan(mut plane: Array2<f32>, mask: Option<&Mask>) -> Array2<f32> {
    if let Some(m) = mask {
        ndarray::Zip::from(&mut plane).and(m).for_each(|v, &inside| if !inside { *v = f32::NAN });
    }
    plane
}

/// The mask on the grid of k × k binned copies (see `crate::image::bin`): a block is inside
/// when at least half of its pixels are.
pub fn bin_mask(mask: &Mask, k: usize) -> Mask {
    crate::image::bin::bin_plane(mask.mapv(|b| b as u8 as f32).view(), k).mapv(|v| v >= 0.5)
}

/// The mask resampled onto a `width` × `height` grid whose pixel p lies at `to_mask(p)` in
/// the mask's grid (nearest pixel).
pub fn resample_mask(mask: ArrayView2<bool>, to_mask: &Affine2, width: usize, height: usize) -> Mask {
    let m = mask.to_owned();
    Array2::from_shape_fn((height, width), |(y, x)| {
        let (mx, my) = to_mask.apply(x as f64, y as f64);
        contains(Some(&m), mx, my)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_binning_and_resampling_follow_the_mask() {
        let mask = Array2::from_shape_fn((8, 8), |(y, x)| x < 4 && y < 6);
        assert!(contains(Some(&mask), 3.4, 5.4) && !contains(Some(&mask), 3.6, 0.0) && !contains(Some(&mask), -0.6, 0.0));
        assert!(contains(None, -100.0, 0.0));
        let binned = bin_mask(&mask, 2);
        assert_eq!(binned.dim(), (4, 4));
        assert_eq!(binned.iter().filter(|&&b| b).count(), 2 * 3);
        let shifted = resample_mask(mask.view(), &Affine2::translation(2.0, 0.0), 8, 8);
        assert!(shifted[[0, 1]] && !shifted[[0, 2]]);
        let nan = outside_to_nan(Array2::ones((8, 8)), Some(&mask));
        assert_eq!(nan.iter().filter(|v| v.is_finite()).count(), 24);
        assert!(Masks { fixed: Some(&mask), moving: None }.check((8, 8), (3, 3)).is_ok());
        assert!(Masks { fixed: None, moving: Some(&mask) }.check((8, 8), (3, 3)).is_err());
        assert!(Masks { fixed: Some(&Array2::from_elem((8, 8), false)), moving: None }.check((8, 8), (8, 8)).unwrap_err().to_string().contains("no pixel"));
    }
}
