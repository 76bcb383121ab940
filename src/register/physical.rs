//! Registration in physical units. Two images with different pixel sizes (0.5 µm vs 1 µm) are
//! related by a scale in pixels, so a `rigid` search in pixels cannot find them. The moving
//! image is therefore resampled onto the fixed image's pixel size before registration, and the
//! found transform is composed back to moving pixels: `rigid` means rigid in µm.
use crate::error::Result;
use crate::image::filter::gaussian_blur;
use crate::image::{check_size, Calibration, Image, PixelType};
use crate::register::transform::Affine2;
use crate::register::warp::warp_plane;
use ndarray::Array4;

/// Micrometres per unit for the length units ImageJ writes; None for "pixel" and unknown units
/// (an uncalibrated image: its pixel size means nothing physical).
pub fn micrometers_per_unit(unit: &str) -> Option<f64> {
    crate::image::length_unit(unit).map(|(_, micrometers)| micrometers)
}

/// Moving pixels per fixed pixel along x and y, when both images are calibrated in length
/// units and their pixel sizes differ (by more than 0.01 %); None otherwise.
pub fn moving_pixels_per_fixed_pixel(fixed: &Calibration, moving: &Calibration) -> Option<(f64, f64)> {
    let (uf, um) = (micrometers_per_unit(&fixed.unit)?, micrometers_per_unit(&moving.unit)?);
    let sx = fixed.pixel_width * uf / (moving.pixel_width * um);
    let sy = fixed.pixel_height * uf / (moving.pixel_height * um);
    let valid = sx.is_finite() && sy.is_finite() && sx > 0.0 && sy > 0.0;
    (valid && ((sx - 1.0).abs() > 1e-4 || (sy - 1.0).abs() > 1e-4)).then_some((sx, sy))
}

/// The first slice of `moving` resampled to the fixed image's pixel size (32-bit, every
/// channel), and the map from its pixels to the original moving pixels (pixel centres at
/// index × pixel size, so a pure scale). None when the pixel sizes already agree.
pub fn moving_at_fixed_pixel_size(fixed: &Calibration, moving: &Image) -> Result<Option<(Image, Affine2)>> {
    let Some((sx, sy)) = moving_pixels_per_fixed_pixel(fixed, &moving.calibration) else { return Ok(None) };
    let (w, h) = (((moving.width() as f64) / sx).round().max(1.0) as usize, ((moving.height() as f64) / sy).round().max(1.0) as usize);
    check_size(w as u64, h as u64, moving.channels() as u64)?;
    let to_moving = Affine2::new([[sx, 0.0, 0.0], [0.0, sy, 0.0]]);
    // Shrinking needs an anti-alias blur: σ grows with the factor (0 when enlarging).
    let s = sx.max(sy);
    let sigma = if s > 1.0 { 0.5 * (s * s - 1.0).sqrt() } else { 0.0 };
    let mut data = Array4::zeros((1, moving.channels(), h, w));
    for c in 0..moving.channels() {
        let blurred = gaussian_blur(moving.plane(0, c), sigma);
        data.slice_mut(ndarray::s![0, c, .., ..]).assign(&warp_plane(blurred.view(), &to_moving, w, h));
    }
    Ok(Some((Image { data, pixel_type: PixelType::F32, calibration: fixed.clone() }, to_moving)))
}
