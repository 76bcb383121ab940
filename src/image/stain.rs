//! Colour deconvolution of bright-field stains (Ruifrok & Johnston 2001): an RGB image of
//! hematoxylin + eosin + DAB becomes three stain-density channels. Used to make two
//! "modalities" (nuclei vs membrane marker) from one IHC image for the demo.
use super::{Image, PixelType};
use crate::error::{Error, Result};
use ndarray::Array4;

/// Optical density of each stain in R, G, B (rows: hematoxylin, eosin, DAB).
const RGB_FROM_HED: [[f64; 3]; 3] = [[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]];

fn invert3(m: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let c = |r: usize, k: usize| m[(r + 1) % 3][(k + 1) % 3] * m[(r + 2) % 3][(k + 2) % 3] - m[(r + 1) % 3][(k + 2) % 3] * m[(r + 2) % 3][(k + 1) % 3];
    let det: f64 = (0..3).map(|k| m[0][k] * c(0, k)).sum();
    // The inverse is the transposed cofactor matrix over the determinant.
    std::array::from_fn(|k| std::array::from_fn(|r| c(r, k) / det))
}

/// Stain densities (hematoxylin, eosin, DAB) of an 8-bit RGB image, as a 3-channel float image.
pub fn separate_hed(rgb: &Image) -> Result<Image> {
    if rgb.channels() != 3 || rgb.pixel_type != PixelType::U8 {
        return Err(Error::UnsupportedImage("colour deconvolution needs an 8-bit RGB image".into()));
    }
    let hed_from_rgb = invert3(RGB_FROM_HED);
    let (h, w) = (rgb.height(), rgb.width());
    let mut data = Array4::zeros((1, 3, h, w));
    let log_floor = (1e-6f64).ln();
    for y in 0..h {
        for x in 0..w {
            let od: Vec<f64> = (0..3).map(|c| (rgb.data[[0, c, y, x]] as f64 / 255.0).max(1e-6).ln() / log_floor).collect();
            for s in 0..3 {
                let v: f64 = (0..3).map(|c| od[c] * hed_from_rgb[c][s]).sum();
                data[[0, s, y, x]] = v.max(0.0) as f32;
            }
        }
    }
    Ok(Image { data, pixel_type: PixelType::F32, calibration: rgb.calibration.clone() })
}

/// One channel of an image as a single-channel image.
pub fn channel(image: &Image, c: usize) -> Image {
    let data = image.data.slice(ndarray::s![.., c..c + 1, .., ..]).to_owned();
    Image { data, pixel_type: image.pixel_type, calibration: image.calibration.clone() }
}
