//! The project's transform file: what `comir apply` reads and registration writes.
//!
//! ```json
//! { "format": "comir-transform", "version": 1, "kind": "rigid",
//!   "direction": "fixed_to_moving",
//!   "matrix": [[a, b, tx], [c, d, ty]],
//!   "fixed":  { "width": 512, "height": 512,
//!               "calibration": { "pixel_width": 0.5, "pixel_height": 0.5, "unit": "µm" } },
//!   "moving": { ... } }
//! ```
//! `matrix` is in pixel coordinates (pixel centres at integer indices) and maps fixed →
//! moving (see [`crate::register::transform`]). `fixed` and `moving` are optional; when
//! `fixed` is given, applying the transform produces an image of the fixed image's size
//! and calibration.
use crate::error::{Error, Result};
use crate::files::{read_bytes, write_atomically};
use crate::image::Calibration;
use crate::register::transform::{Affine2, TransformKind};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const FORMAT: &str = "comir-transform";
pub const VERSION: u32 = 1;
const DIRECTION: &str = "fixed_to_moving";

/// Size and calibration of the image on one side of the transform.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageGrid {
    pub width: usize,
    pub height: usize,
    #[serde(default)]
    pub calibration: Option<Calibration>,
}

impl ImageGrid {
    /// Refuse an empty grid and pixel sizes that are not positive (a front end's input).
    pub fn check(&self) -> Result<()> {
        if self.width == 0 || self.height == 0 {
            return Err(Error::Size(format!("an image of {}×{} pixels has no grid to map", self.width, self.height)));
        }
        self.calibration.as_ref().map_or(Ok(()), Calibration::check)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TransformFile {
    pub kind: TransformKind,
    pub fixed_to_moving: Affine2,
    pub fixed: Option<ImageGrid>,
    pub moving: Option<ImageGrid>,
}

#[derive(Serialize, Deserialize)]
struct Raw {
    format: String,
    version: u32,
    kind: TransformKind,
    direction: String,
    matrix: Vec<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fixed: Option<ImageGrid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    moving: Option<ImageGrid>,
}

impl TransformFile {
    pub fn new(kind: TransformKind, fixed_to_moving: Affine2) -> TransformFile {
        TransformFile { kind, fixed_to_moving, fixed: None, moving: None }
    }

    pub fn to_json(&self) -> Result<String> {
        let raw = Raw {
            format: FORMAT.into(),
            version: VERSION,
            kind: self.kind,
            direction: DIRECTION.into(),
            matrix: self.fixed_to_moving.m.iter().map(|r| r.to_vec()).collect(),
            fixed: self.fixed.clone(),
            moving: self.moving.clone(),
        };
        crate::error::json_text(&raw, true)
    }

    /// Parse and check a transform file's text; `what` names it in messages.
    pub fn from_json(text: &str, what: &Path) -> Result<TransformFile> {
        let bad = |reason: String| Error::TransformFile { path: what.to_path_buf(), reason };
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON ({e})")))?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT) => {}
            Some(other) => return Err(bad(format!("format is \"{other}\", expected \"{FORMAT}\""))),
            None => return Err(bad(format!("no \"format\": \"{FORMAT}\" field; is this a CoMIR transform file?"))),
        }
        if let Some(v) = value.get("version").and_then(|v| v.as_u64()) {
            if v > VERSION as u64 {
                return Err(bad(format!("version {v} was written by a newer CoMIR (this one reads version {VERSION}); please update the plugin")));
            }
        }
        let raw: Raw = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        if raw.direction != DIRECTION {
            return Err(bad(format!("direction \"{}\" is not supported (expected \"{DIRECTION}\")", raw.direction)));
        }
        if raw.matrix.len() != 2 || raw.matrix.iter().any(|r| r.len() != 3) {
            return Err(bad("\"matrix\" must be 2 rows of 3 numbers [[a, b, tx], [c, d, ty]]".into()));
        }
        let t = Affine2::new([
            [raw.matrix[0][0], raw.matrix[0][1], raw.matrix[0][2]],
            [raw.matrix[1][0], raw.matrix[1][1], raw.matrix[1][2]],
        ]);
        t.validate().map_err(|e| bad(e.to_string()))?;
        for grid in raw.fixed.iter().chain(raw.moving.iter()) {
            if grid.width == 0 || grid.height == 0 {
                return Err(bad("image width and height must be positive".into()));
            }
            if let Some(c) = &grid.calibration {
                if !(c.pixel_width.is_finite() && c.pixel_width > 0.0 && c.pixel_height.is_finite() && c.pixel_height > 0.0) {
                    return Err(bad("pixel sizes must be positive numbers".into()));
                }
            }
        }
        Ok(TransformFile { kind: raw.kind, fixed_to_moving: t, fixed: raw.fixed, moving: raw.moving })
    }

    pub fn read(path: &Path) -> Result<TransformFile> {
        let bytes = read_bytes(path)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| Error::TransformFile {
            path: path.to_path_buf(),
            reason: "the file is not UTF-8 text".into(),
        })?;
        Self::from_json(text, path)
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let json = self.to_json()?;
        write_atomically(path, |out| Ok(std::io::Write::write_all(out, json.as_bytes())?))
    }
}

/// Read a transform from a CoMIR transform file or a BigWarp landmarks file (CSV or JSON;
/// the transform is fitted to its active landmarks, with the type the JSON names, else
/// affine).
///
/// BigWarp stores landmarks in world (calibrated) units, fixed points in the fixed image's and
/// moving points in the moving image's: converting them to pixels needs both pixel sizes, so a
/// landmarks file is refused without the `fixed` grid (assuming the moving image's pixel size
/// for both put results in the wrong place whenever the two differ). The returned file then
/// carries that grid, so applying it gives the fixed image's size and calibration.
pub fn read_any(path: &Path, fixed: Option<&ImageGrid>, moving: &Calibration) -> Result<TransformFile> {
    let bytes = read_bytes(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| Error::TransformFile { path: path.to_path_buf(), reason: "the file is not UTF-8 text".into() })?;
    // JSON is a CoMIR transform file unless it holds BigWarp "landmarks"; anything else is read
    // as a BigWarp CSV. Broken JSON is reported as a broken transform file. The file is read
    // and parsed once.
    let (landmarks, kind) = if text.trim_start().starts_with('{') {
        let v = serde_json::from_str::<serde_json::Value>(&super::bigwarp::json_with_special_floats_as_null(text))
            .map_err(|e| Error::TransformFile { path: path.to_path_buf(), reason: format!("not valid JSON ({e})") })?;
        if v.get("landmarks").is_none() || v.get("format").is_some() {
            return TransformFile::from_json(text, path);
        }
        super::bigwarp::landmarks_of_json_file(&v, path)?
    } else {
        super::bigwarp::landmarks_of_csv(text, path)?
    };
    let fixed = fixed.ok_or_else(|| Error::TransformFile {
        path: path.to_path_buf(),
        reason: "BigWarp landmarks are in calibrated units: choose the fixed (target) image, whose pixel size and size place them".into(),
    })?;
    let fixed_cal = fixed.calibration.clone().unwrap_or_default();
    let kind = super::bigwarp::type_to_fit(path, None, &kind)?;
    let t = super::bigwarp::fit_landmarks(&landmarks, kind, &fixed_cal, moving)
        .map_err(|e| Error::TransformFile { path: path.to_path_buf(), reason: e.to_string() })?;
    Ok(TransformFile { fixed: Some(ImageGrid { calibration: Some(fixed_cal), ..fixed.clone() }), ..TransformFile::new(kind, t) })
}
