//! The image type every other module works on: f32 samples in a (slices, channels, height,
//! width) array, plus the pixel type to write back and the spatial calibration.
//! f32 holds every 8- and 16-bit value exactly, so one numeric type serves all inputs.
pub mod bin;
pub mod io;
pub mod filter;
pub mod preview;
pub mod region;
pub mod stain;
pub mod synthetic;

use crate::error::{Error, Result};
use ndarray::{Array4, ArrayView2};

/// The sample type the image came in with; outputs are written back in the same type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelType {
    U8,
    U16,
    F32,
}

impl PixelType {
    /// Convert a computed value into this type's range (rounding, clamping); NaN becomes 0
    /// for integer types, as ImageJ does.
    pub fn quantise(self, v: f32) -> f32 {
        match self {
            PixelType::U8 => if v.is_nan() { 0.0 } else { v.round().clamp(0.0, 255.0) },
            PixelType::U16 => if v.is_nan() { 0.0 } else { v.round().clamp(0.0, 65535.0) },
            PixelType::F32 => v,
        }
    }

    pub fn bytes(self) -> u64 {
        match self {
            PixelType::U8 => 1,
            PixelType::U16 => 2,
            PixelType::F32 => 4,
        }
    }
}

/// A length unit as ImageJ writes it: its UDUNITS-2 name (what NGFF requires) and its size
/// in micrometres. None for "pixel" and unknown units: such a pixel size means nothing physical.
pub fn length_unit(unit: &str) -> Option<(&'static str, f64)> {
    Some(match unit.trim() {
        "µm" | "\u{3bc}m" | "um" | "micron" | "microns" | "micrometer" | "micrometre" => ("micrometer", 1.0),
        "nm" | "nanometer" | "nanometre" => ("nanometer", 1e-3),
        "pm" | "picometer" => ("picometer", 1e-6),
        "Å" | "angstrom" => ("angstrom", 1e-4),
        "mm" | "millimeter" | "millimetre" => ("millimeter", 1e3),
        "cm" | "centimeter" | "centimetre" => ("centimeter", 1e4),
        "m" | "meter" | "metre" => ("meter", 1e6),
        "inch" | "in" => ("inch", 25_400.0),
        _ => return None,
    })
}

/// Physical size of one pixel. Pixel centres sit at index × pixel size (ImageJ's convention).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Calibration {
    pub pixel_width: f64,
    pub pixel_height: f64,
    pub unit: String,
}

impl Calibration {
    /// Refuse pixel sizes that are not positive finite numbers (a front end's input).
    pub fn check(&self) -> Result<()> {
        let (w, h) = (self.pixel_width, self.pixel_height);
        if !(w.is_finite() && w > 0.0 && h.is_finite() && h > 0.0) {
            return Err(Error::Parameter(format!("pixel sizes must be positive numbers (got {w} × {h}); in Fiji, Image › Properties sets them")));
        }
        Ok(())
    }
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration { pixel_width: 1.0, pixel_height: 1.0, unit: "pixel".into() }
    }
}

#[derive(Clone, Debug)]
pub struct Image {
    /// (slices, channels, height, width)
    pub data: Array4<f32>,
    pub pixel_type: PixelType,
    pub calibration: Calibration,
}

/// Largest image (in bytes of f32 working memory) we agree to allocate; refusing up front
/// is better than being killed by the OS halfway through. COMIR_MAX_IMAGE_BYTES overrides.
pub fn max_image_bytes() -> u64 {
    std::env::var("COMIR_MAX_IMAGE_BYTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8 << 30)
}

/// Refuse sizes that are empty or would not fit, before anything is allocated.
pub fn check_size(width: u64, height: u64, planes: u64) -> Result<()> {
    if width == 0 || height == 0 || planes == 0 {
        return Err(Error::UnsupportedImage(format!(
            "the image is empty ({width}×{height}, {planes} planes)"
        )));
    }
    let bytes = width.saturating_mul(height).saturating_mul(planes).saturating_mul(4);
    let limit = max_image_bytes();
    if bytes > limit {
        return Err(Error::TooLarge { width, height, planes, bytes, limit });
    }
    Ok(())
}

impl Image {
    /// A zero image of the given shape.
    pub fn zeros(slices: usize, channels: usize, height: usize, width: usize, pixel_type: PixelType) -> Result<Image> {
        check_size(width as u64, height as u64, (slices * channels) as u64)?;
        Ok(Image {
            data: Array4::zeros((slices, channels, height, width)),
            pixel_type,
            calibration: Calibration::default(),
        })
    }

    pub fn slices(&self) -> usize { self.data.shape()[0] }
    pub fn channels(&self) -> usize { self.data.shape()[1] }
    pub fn height(&self) -> usize { self.data.shape()[2] }
    pub fn width(&self) -> usize { self.data.shape()[3] }

    /// The maximum over the slices (z) of every channel, as one slice; the same calibration.
    pub fn max_projection(&self) -> Image {
        let data = self.data.fold_axis(ndarray::Axis(0), f32::NEG_INFINITY, |&a, &b| a.max(b)).insert_axis(ndarray::Axis(0));
        Image { data, pixel_type: self.pixel_type, calibration: self.calibration.clone() }
    }

    pub fn plane(&self, slice: usize, channel: usize) -> ArrayView2<'_, f32> {
        self.data.slice(ndarray::s![slice, channel, .., ..])
    }
}
