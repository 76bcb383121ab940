//! What a front end sends with each call: one typed request, as JSON across JNI, beside the
//! pixel arrays it hands over. A new field is one serde field here and one JSON key in Java,
//! never another positional argument; unknown keys are refused (a misspelt key must not be
//! ignored silently).
use crate::error::{Error, Result};
use crate::export::transform_file::ImageGrid;
use crate::image::{Calibration, Image};
use crate::params::{RegisterParams, TrainParams};
use crate::Region;
use serde::Deserialize;
use std::path::PathBuf;

/// Parse a request sent as JSON; `what` names it in the error ("registration request").
pub fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Request { what: what.into(), text: text.into(), reason: e.to_string() })
}

/// An image handed over as pixel arrays: their size, calibration and ROI bounds. The mask of a
/// non-rectangular ROI travels beside the request as bytes.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PixelsInfo {
    pub width: usize,
    pub height: usize,
    /// None: uncalibrated (1 pixel per pixel).
    #[serde(default)]
    pub calibration: Option<Calibration>,
    /// The ROI's bounds {x, y, width, height} as ImageJ has them (they may reach past the
    /// image; the library clips), or none.
    #[serde(default)]
    pub roi: Option<[i64; 4]>,
}

impl PixelsInfo {
    /// The calibration, checked (pixel sizes must be positive).
    pub fn calibration(&self) -> Result<Calibration> {
        let c = self.calibration.clone().unwrap_or_default();
        c.check()?;
        Ok(c)
    }

    /// The ROI as a region (its shape from `mask`, width × height bytes of the bounds, nonzero
    /// inside), or None without one.
    pub fn region(&self, mask: Option<&[u8]>) -> Result<Option<Region>> {
        match self.roi {
            None if mask.is_some() => Err(Error::Region("an ROI mask was sent without the ROI's bounds".into())),
            None => Ok(None),
            Some([x, y, w, h]) => {
                let size = |v: i64, what: &str| usize::try_from(v).map_err(|_| Error::Region(format!("the ROI {what} must not be negative (got {v})")));
                Region::from_roi(x, y, size(w, "width")?, size(h, "height")?, mask).map(Some)
            }
        }
    }

    /// The grid of the image, for transform files.
    pub fn grid(&self) -> ImageGrid {
        ImageGrid { width: self.width, height: self.height, calibration: self.calibration.clone() }
    }

    /// `image` with this calibration, after checking that its size is the one described.
    pub fn calibrate(&self, mut image: Image) -> Result<Image> {
        if (image.width(), image.height()) != (self.width, self.height) {
            return Err(Error::Size(format!("the pixels are {}×{}, the request says {}×{}", image.width(), image.height(), self.width, self.height)));
        }
        image.calibration = self.calibration()?;
        Ok(image)
    }
}

/// What a front end sends to apply a transform file (JSON across JNI): the file, the fixed
/// image's grid when one is chosen (BigWarp landmark files need it), the moving image's
/// calibration (to convert landmark units), the input's size and an optional output size.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    pub transform: PathBuf,
    #[serde(default)]
    pub fixed: Option<ImageGrid>,
    pub moving_calibration: Calibration,
    pub input_size: [usize; 2],
    #[serde(default)]
    pub size: Option<[usize; 2]>,
}

/// What a front end sends to fit a transform to a BigWarp landmarks file (JSON across JNI):
/// the file, the transform type (none or "": the type the file names, else affine), the fixed
/// image's grid and the moving image's calibration (BigWarp's units → pixels).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    pub landmarks: PathBuf,
    #[serde(default)]
    pub kind: Option<String>,
    pub fixed: ImageGrid,
    pub moving_calibration: Calibration,
}

/// A transform between two image grids to export, as front ends send it (JSON across JNI).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// Fixed → moving, pixels, row-packed: a, b, tx, c, d, ty.
    pub matrix: [f64; 6],
    pub kind: String,
    pub fixed: ImageGrid,
    pub moving: ImageGrid,
}

/// Register the moving image onto the fixed one ([`crate::register_request`]).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub fixed: PixelsInfo,
    pub moving: PixelsInfo,
    /// The CoMIR model file, or none: mutual information on the images themselves.
    #[serde(default)]
    pub model: Option<PathBuf>,
    #[serde(default)]
    pub params: RegisterParams,
}

/// The CoMIR of one image ([`crate::represent_image`]).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepresentRequest {
    pub image: PixelsInfo,
    pub model: PathBuf,
    /// The modality's name in the model, or none: chosen by the image's channel count.
    #[serde(default)]
    pub modality: Option<String>,
}

/// Train a new model on one aligned pair ([`crate::train_request`]): the two images must
/// share their grid; patches come from inside the ROI of `a` if it has one.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainRequest {
    pub a: PixelsInfo,
    pub b: PixelsInfo,
    #[serde(default)]
    pub params: TrainParams,
    /// Where the model goes (.safetensors).
    pub out: PathBuf,
}

/// How long training would take ([`crate::training_estimate`]): the parameters and the
/// channel counts of the two images.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EstimateRequest {
    #[serde(default)]
    pub params: TrainParams,
    pub channels: [usize; 2],
}

/// Resample one plane through a fixed → moving matrix onto an output grid.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarpRequest {
    pub width: usize,
    pub height: usize,
    /// Fixed → moving, pixels, row-packed: a, b, tx, c, d, ty.
    pub matrix: [f64; 6],
    pub out_width: usize,
    pub out_height: usize,
}
