//! Turning an image into network input: the first slice, as (C, H, W) in about [0, 1].
//! The same rule runs at training and at inference, so it is stored in the model file.
use crate::error::{Error, Result};
use crate::image::{filter::robust_range, Image, PixelType};
use ndarray::{Array3, Axis};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preprocess {
    /// 8-bit ÷ 255, 16-bit ÷ 65535, float: min–max of the image.
    Scale,
    /// log(1 + x) of the scaled image, then min–max (for SHG-like, high dynamic range data).
    Log,
    /// Per channel, the 0.5–99.5 percentile range mapped to [0, 1] (for 16-bit with few bright pixels).
    Percentile,
}

/// THE default for new models, in the CLI and in Fiji alike: robust to 16-bit images with a
/// few very bright pixels, and what the shipped model uses.
impl Default for Preprocess {
    fn default() -> Self {
        Preprocess::Percentile
    }
}

impl std::fmt::Display for Preprocess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Preprocess::Scale => "scale",
            Preprocess::Log => "log",
            Preprocess::Percentile => "percentile",
        })
    }
}

impl std::str::FromStr for Preprocess {
    type Err = Error;
    fn from_str(s: &str) -> Result<Preprocess> {
        match s {
            "scale" => Ok(Preprocess::Scale),
            "log" => Ok(Preprocess::Log),
            "percentile" => Ok(Preprocess::Percentile),
            _ => Err(Error::UnknownChoice { what: "preprocessing", given: s.into(), choices: "scale, log or percentile".into() }),
        }
    }
}

fn min_max(x: &mut Array3<f32>) {
    let (lo, hi) = x.iter().filter(|v| v.is_finite()).fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let lo = if lo.is_finite() { lo } else { 0.0 };
    x.mapv_inplace(|v| (v - lo) / span);
}

/// Network input for `image` (its first slice). NaN/Inf become 0 after scaling.
pub fn prepare(image: &Image, rule: Preprocess) -> Result<Array3<f32>> {
    if image.width() < 2 || image.height() < 2 {
        return Err(Error::UnsupportedImage(format!("{}×{} is too small for a representation", image.width(), image.height())));
    }
    let mut x = image.data.index_axis(Axis(0), 0).to_owned();
    match rule {
        Preprocess::Scale | Preprocess::Log => {
            match image.pixel_type {
                PixelType::U8 => x.mapv_inplace(|v| v / 255.0),
                PixelType::U16 => x.mapv_inplace(|v| v / 65535.0),
                PixelType::F32 => min_max(&mut x),
            }
            if rule == Preprocess::Log {
                x.mapv_inplace(|v| v.max(0.0).ln_1p());
                min_max(&mut x);
            }
        }
        Preprocess::Percentile => {
            for mut plane in x.outer_iter_mut() {
                let (lo, hi) = robust_range(plane.view());
                plane.mapv_inplace(|v| ((v - lo) / (hi - lo)).clamp(0.0, 1.0));
            }
        }
    }
    x.mapv_inplace(|v| if v.is_finite() { v } else { 0.0 });
    Ok(x)
}
