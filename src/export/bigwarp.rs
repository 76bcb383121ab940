//! BigWarp landmarks: the CSV and JSON files BigWarp (and Fiji) read, and reading them back.
//!
//! BigWarp's transform maps target (fixed) → moving, like ours. Its CSV has no header; each
//! row is `"Pt-N","true",mx,my,fx,fy` with every field double-quoted, the moving point first,
//! in calibrated (world) units with pixel centres at index × pixel size. The CSV cannot say
//! which transform type to fit, so the JSON (which can) is written too. For a linear transform
//! a 3 × 3 grid of point pairs over the fixed image lets BigWarp refit it exactly.
use super::transform_file::ImageGrid;
use crate::error::{Error, Result};
use crate::files::{read_bytes, write_atomically};
use crate::image::Calibration;
use crate::register::fit::fit;
use crate::register::transform::{Affine2, TransformKind};
use std::path::Path;

#[derive(Clone, Debug, PartialEq)]
pub struct Landmark {
    pub name: String,
    pub active: bool,
    /// World coordinates.
    pub moving: (f64, f64),
    pub fixed: (f64, f64),
}

/// BigWarp's name for a transform family.
pub fn bigwarp_type(kind: TransformKind) -> &'static str {
    match kind {
        TransformKind::Translation => "Translation",
        TransformKind::Rigid => "Rotation",
        TransformKind::Similarity => "Similarity",
        TransformKind::Affine => "Affine",
    }
}

fn kind_from_bigwarp(s: &str) -> Option<TransformKind> {
    match s {
        "Translation" => Some(TransformKind::Translation),
        "Rotation" => Some(TransformKind::Rigid),
        "Similarity" => Some(TransformKind::Similarity),
        "Affine" => Some(TransformKind::Affine),
        _ => None,
    }
}

/// A double as Java's `Double.toString` writes it (what BigWarp itself writes and reads).
#[expect(clippy::expect_used, reason = "Rust's {:e} always writes an exponent")]
pub fn java_double(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() { "NaN".into() } else if v > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let a = v.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        let s = format!("{v}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').expect("scientific notation has an exponent");
        let mantissa = if mantissa.contains('.') { mantissa.to_string() } else { format!("{mantissa}.0") };
        format!("{mantissa}E{exp}")
    }
}

/// A 3 × 3 grid over the fixed image (corners, edge midpoints, centre) and its images under
/// the fixed → moving transform, in world units.
pub fn grid_landmarks(t: &Affine2, fixed: &ImageGrid, moving_cal: &Calibration) -> Vec<Landmark> {
    let fc = fixed.calibration.clone().unwrap_or_default();
    let world = t.to_calibrated(&fc, moving_cal);
    let (w, h) = ((fixed.width as f64 - 1.0) * fc.pixel_width, (fixed.height as f64 - 1.0) * fc.pixel_height);
    let mut out = Vec::new();
    for j in 0..3 {
        for i in 0..3 {
            let f = (w * i as f64 / 2.0, h * j as f64 / 2.0);
            out.push(Landmark { name: format!("Pt-{}", out.len()), active: true, moving: world.apply(f.0, f.1), fixed: f });
        }
    }
    out
}

pub fn landmarks_csv(landmarks: &[Landmark]) -> String {
    let q = |s: String| format!("\"{s}\"");
    landmarks
        .iter()
        .map(|l| {
            [q(l.name.clone()), q(l.active.to_string()), q(java_double(l.moving.0)), q(java_double(l.moving.1)), q(java_double(l.fixed.0)), q(java_double(l.fixed.1))].join(",") + "\n"
        })
        .collect()
}

pub fn landmarks_json(landmarks: &[Landmark], kind: TransformKind) -> String {
    let v = serde_json::json!({
        "type": bigwarp_type(kind),
        "landmarks": {
            "type": "BigWarpLandmarks",
            "numDimensions": 2,
            "movingPoints": landmarks.iter().map(|l| [l.moving.0, l.moving.1]).collect::<Vec<_>>(),
            "fixedPoints": landmarks.iter().map(|l| [l.fixed.0, l.fixed.1]).collect::<Vec<_>>(),
            "active": landmarks.iter().map(|l| l.active).collect::<Vec<_>>(),
            "names": landmarks.iter().map(|l| l.name.clone()).collect::<Vec<_>>(),
        }
    });
    format!("{v:#}") // a Value's pretty text: cannot fail
}

pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomically(path, |out| Ok(std::io::Write::write_all(out, text.as_bytes())?))
}

/// A coordinate: a finite number, or `None` for the "Infinity" BigWarp writes for a point
/// placed in one image only (an unpaired landmark, which BigWarp skips when fitting).
fn parse_number(field: &str, row: usize, what: &str) -> Result<Option<f64>> {
    match field.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        Ok(v) if v.is_infinite() => Ok(None),
        _ => Err(Error::Landmarks(format!("row {row}: {what} \"{field}\" is not a number"))),
    }
}

/// One CSV line split into fields (RFC 4180 quoting: a quoted field may hold commas, and `""`
/// inside quotes is one quote), as BigWarp's opencsv writes them; e.g. names with commas.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field).trim().to_string()),
            _ => field.push(c),
        }
    }
    fields.push(field.trim().to_string());
    fields
}

/// Read a BigWarp landmarks CSV (2D). Returns the landmarks; the caller chooses the type.
/// Unpaired rows (a coordinate written as "Infinity") are skipped, as BigWarp does.
pub fn parse_csv(text: &str) -> Result<Vec<Landmark>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let row = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields = csv_fields(line);
        match fields.len() {
            6 => {}
            8 => return Err(Error::Landmarks(format!("row {row} has 3D landmarks (8 columns); only 2D is supported"))),
            n => return Err(Error::Landmarks(format!("row {row} has {n} columns; a 2D BigWarp landmark row has 6: \"name\",\"true\",mx,my,fx,fy"))),
        }
        let active = match fields[1].as_str() {
            "true" => true,
            "false" => false,
            other => return Err(Error::Landmarks(format!("row {row}: the second column must be true or false, not \"{other}\""))),
        };
        let (mx, my) = (parse_number(&fields[2], row, "moving x")?, parse_number(&fields[3], row, "moving y")?);
        let (fx, fy) = (parse_number(&fields[4], row, "fixed x")?, parse_number(&fields[5], row, "fixed y")?);
        if let (Some(mx), Some(my), Some(fx), Some(fy)) = (mx, my, fx, fy) {
            out.push(Landmark { name: fields[0].clone(), active, moving: (mx, my), fixed: (fx, fy) });
        }
    }
    Ok(out)
}

/// BigWarp's JSON is written by Gson with special floats allowed: an unpaired point is
/// `[Infinity, Infinity]`, which is not JSON. Replace those bare words (outside strings) by
/// `null` so the document parses; such points are then skipped.
pub fn json_with_special_floats_as_null(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            in_string = c != '"' || escaped;
            escaped = c == '\\' && !escaped;
        } else if c == '"' {
            in_string = true;
        } else if let Some(word) = ["-Infinity", "Infinity", "NaN"].iter().find(|w| rest.starts_with(**w)) {
            out.push_str("null");
            rest = &rest[word.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Read BigWarp's landmarks JSON; returns the landmarks and the transform type it names.
pub fn parse_json(text: &str) -> Result<(Vec<Landmark>, Option<TransformKind>)> {
    let v: serde_json::Value = serde_json::from_str(&json_with_special_floats_as_null(text))
        .map_err(|e| Error::Landmarks(format!("BigWarp JSON: not valid JSON ({e})")))?;
    landmarks_of_json(&v)
}

/// The landmarks of a parsed BigWarp JSON document and the linear type it names, if any.
fn landmarks_of_json(v: &serde_json::Value) -> Result<(Vec<Landmark>, Option<TransformKind>)> {
    let bad = |m: &str| Error::Landmarks(format!("BigWarp JSON: {m}"));
    let kind = v.get("type").and_then(|t| t.as_str()).and_then(kind_from_bigwarp);
    let lm = v.get("landmarks").ok_or_else(|| bad("no \"landmarks\" object"))?;
    if lm.get("numDimensions").and_then(|n| n.as_u64()).is_some_and(|n| n != 2) {
        return Err(bad("only 2D landmarks are supported"));
    }
    // A point is [x, y]; [null, null] (was Infinity) marks an unpaired landmark: None.
    let points = |key: &str| -> Result<Vec<Option<(f64, f64)>>> {
        let arr = lm.get(key).and_then(|p| p.as_array()).ok_or_else(|| bad(&format!("no \"{key}\" list")))?;
        arr.iter()
            .map(|p| match p.as_array().map(|a| a.iter().map(|x| (x.as_f64(), x.is_null())).collect::<Vec<_>>()) {
                Some(c) if c.len() == 2 && c.iter().all(|x| x.0.is_some_and(f64::is_finite)) => Ok(Some((c[0].0.unwrap_or(0.0), c[1].0.unwrap_or(0.0)))),
                Some(c) if c.len() == 2 && c.iter().any(|x| x.1) => Ok(None),
                _ => Err(bad(&format!("every entry of \"{key}\" must be [x, y] numbers"))),
            })
            .collect()
    };
    let (moving, fixed) = (points("movingPoints")?, points("fixedPoints")?);
    if moving.len() != fixed.len() {
        return Err(bad("movingPoints and fixedPoints differ in length"));
    }
    let active: Vec<bool> = match lm.get("active").and_then(|a| a.as_array()) {
        Some(a) => a.iter().map(|x| x.as_bool().unwrap_or(true)).collect(),
        None => vec![true; moving.len()],
    };
    let names: Vec<String> = match lm.get("names").and_then(|a| a.as_array()) {
        Some(a) => a.iter().map(|x| x.as_str().unwrap_or("").to_string()).collect(),
        None => (0..moving.len()).map(|i| format!("Pt-{i}")).collect(),
    };
    let landmarks = (0..moving.len())
        .filter_map(|i| {
            let (m, f) = (moving[i]?, fixed[i]?);
            Some(Landmark { name: names.get(i).cloned().unwrap_or_else(|| format!("Pt-{i}")), active: active.get(i).copied().unwrap_or(true), moving: m, fixed: f })
        })
        .collect();
    Ok((landmarks, kind))
}

/// The transform type a landmarks file asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum NamedType {
    /// A CSV, or a JSON without a type: the caller chooses (affine by default).
    Unnamed,
    Linear(TransformKind),
    /// A type CoMIR cannot apply, e.g. BigWarp's "Thin Plate Spline".
    Unsupported(String),
}

/// Read landmarks from a .csv or .json BigWarp file, with the transform type it names.
pub fn read_landmarks(path: &Path) -> Result<(Vec<Landmark>, NamedType)> {
    let bytes = read_bytes(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| Error::Landmarks(format!("{} is not UTF-8 text", path.display())))?;
    if !text.trim_start().starts_with('{') {
        return landmarks_of_csv(text, path);
    }
    let v: serde_json::Value = serde_json::from_str(&json_with_special_floats_as_null(text))
        .map_err(|e| Error::Landmarks(format!("{}: BigWarp JSON: not valid JSON ({e})", path.display())))?;
    landmarks_of_json_file(&v, path)
}

/// A BigWarp CSV's landmarks (`path` names the file in messages; a CSV names no type).
pub fn landmarks_of_csv(text: &str, path: &Path) -> Result<(Vec<Landmark>, NamedType)> {
    parse_csv(text).map(|l| (l, NamedType::Unnamed)).map_err(|e| Error::Landmarks(format!("{}: {e}", path.display())))
}

/// A parsed BigWarp JSON file's landmarks and the type it names, linear or not.
pub fn landmarks_of_json_file(v: &serde_json::Value, path: &Path) -> Result<(Vec<Landmark>, NamedType)> {
    let (landmarks, kind) = landmarks_of_json(v).map_err(|e| Error::Landmarks(format!("{}: {e}", path.display())))?;
    let named_type = match (kind, v.get("type").and_then(|t| t.as_str())) {
        (Some(k), _) => NamedType::Linear(k),
        (None, Some(t)) => NamedType::Unsupported(t.to_string()),
        (None, None) => NamedType::Unnamed,
    };
    Ok((landmarks, named_type))
}

/// The transform type to fit: the caller's choice, else the file's linear type, else affine.
/// A file that asks for a type CoMIR cannot apply (thin-plate spline) is refused rather than
/// silently fitted as something else.
pub fn type_to_fit(path: &Path, chosen: Option<TransformKind>, named: &NamedType) -> Result<TransformKind> {
    match (chosen, named) {
        (Some(k), _) | (None, &NamedType::Linear(k)) => Ok(k),
        (None, NamedType::Unnamed) => Ok(TransformKind::Affine),
        (None, NamedType::Unsupported(t)) => Err(Error::Landmarks(format!(
            "{}: the landmarks are for a \"{t}\" transform, which CoMIR cannot apply (it applies linear transforms); \
             choose rigid, similarity or affine to fit one of those to the landmarks, or apply the file in BigWarp",
            path.display()
        ))),
    }
}

/// Fit a transform of `kind` (fixed → moving, pixels) to the active landmarks.
pub fn fit_landmarks(landmarks: &[Landmark], kind: TransformKind, fixed: &Calibration, moving: &Calibration) -> Result<Affine2> {
    let active: Vec<&Landmark> = landmarks.iter().filter(|l| l.active).collect();
    let needed = kind.minimal_points().max(if kind == TransformKind::Affine { 3 } else { 2 });
    if active.len() < needed {
        return Err(Error::Landmarks(format!("{} active landmark(s); a {kind:?} transform needs at least {needed}", active.len())));
    }
    let src: Vec<(f64, f64)> = active.iter().map(|l| l.fixed).collect();
    let dst: Vec<(f64, f64)> = active.iter().map(|l| l.moving).collect();
    let world = fit(kind, &src, &dst).ok_or_else(|| Error::Landmarks("the landmarks are degenerate (e.g. all on one line)".into()))?;
    let t = world.from_calibrated(fixed, moving);
    t.validate()?;
    Ok(t)
}

/// A transform fitted to a landmarks file, with what a user needs to judge it.
#[derive(Clone, Debug)]
pub struct LandmarkFit {
    /// Fixed → moving, pixels.
    pub transform: Affine2,
    pub kind: TransformKind,
    /// The active landmarks in pixels: (fixed, moving).
    pub pairs: Vec<((f64, f64), (f64, f64))>,
    /// Root mean square of |transform(fixed) − moving| over the active landmarks, in
    /// moving pixels: how far the landmarks disagree with the fitted transform type.
    pub rms_residual: f64,
}

/// Read a BigWarp landmarks file and fit a transform of `kind` (default: the type the JSON
/// names, else affine) from the fixed to the moving image.
pub fn import_landmarks(path: &Path, kind: Option<TransformKind>, fixed: &Calibration, moving: &Calibration) -> Result<LandmarkFit> {
    let (landmarks, named) = read_landmarks(path)?;
    let kind = type_to_fit(path, kind, &named)?;
    let transform = fit_landmarks(&landmarks, kind, fixed, moving).map_err(|e| Error::Landmarks(format!("{}: {e}", path.display())))?;
    let to_pixels = |(x, y): (f64, f64), c: &Calibration| (x / c.pixel_width, y / c.pixel_height);
    let pairs: Vec<_> = landmarks.iter().filter(|l| l.active).map(|l| (to_pixels(l.fixed, fixed), to_pixels(l.moving, moving))).collect();
    let squares: f64 = pairs
        .iter()
        .map(|&((fx, fy), (mx, my))| {
            let (px, py) = transform.apply(fx, fy);
            (px - mx).powi(2) + (py - my).powi(2)
        })
        .sum();
    Ok(LandmarkFit { transform, kind, rms_residual: (squares / pairs.len() as f64).sqrt(), pairs })
}

impl LandmarkFit {
    /// Pass when the landmarks agree with the fitted transform to within the evaluation's
    /// success bound (2% of the fixed width); else the reason, for the user.
    pub fn verdict(&self, fixed_width: usize) -> (bool, String) {
        let bound = 0.02 * fixed_width as f64;
        if self.rms_residual <= bound {
            (true, String::new())
        } else {
            let kind = format!("{:?}", self.kind).to_lowercase();
            (false, format!("the landmarks disagree with a {kind} transform by {:.1} px (RMS, more than 2% of the width): check misplaced points or choose a more general type", self.rms_residual))
        }
    }
}
