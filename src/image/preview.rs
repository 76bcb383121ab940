//! 8-bit PNG previews for people to look at: each channel stretched between its 0.5 and
//! 99.5 percentiles (8-bit data kept as is); one channel → gray, two → green/magenta
//! overlay, three → RGB. Only the first slice is shown.
use super::filter::robust_range;
use super::{Image, PixelType};
use crate::error::Result;
use crate::files::write_atomically;
use ndarray::ArrayView2;
use std::path::Path;

fn to_u8(plane: ArrayView2<f32>, pixel_type: PixelType) -> Vec<u8> {
    let (lo, hi) = if pixel_type == PixelType::U8 { (0.0, 255.0) } else { robust_range(plane) };
    let scale = 255.0 / (hi - lo);
    plane.iter().map(|&x| if x.is_finite() { ((x - lo) * scale).round().clamp(0.0, 255.0) as u8 } else { 0 }).collect()
}

/// Render the first slice of `image` as 8-bit RGB (interleaved), width × height × 3.
pub fn render_rgb(image: &Image) -> Vec<u8> {
    let n = image.width() * image.height();
    let planes: Vec<Vec<u8>> = (0..image.channels().min(3)).map(|c| to_u8(image.plane(0, c), image.pixel_type)).collect();
    let mut rgb = vec![0u8; n * 3];
    for i in 0..n {
        let px = match planes.len() {
            1 => [planes[0][i]; 3],
            2 => [planes[1][i], planes[0][i], planes[1][i]],
            _ => [planes[0][i], planes[1][i], planes[2][i]],
        };
        rgb[i * 3..i * 3 + 3].copy_from_slice(&px);
    }
    rgb
}

pub fn write_preview_png(path: &Path, image: &Image) -> Result<()> {
    let rgb = render_rgb(image);
    let (w, h) = (image.width() as u32, image.height() as u32);
    write_atomically(path, |out| {
        image::codecs::png::PngEncoder::new(out).write_image(&rgb, w, h, image::ExtendedColorType::Rgb8)?;
        Ok(())
    })
}

use image::ImageEncoder as _;
