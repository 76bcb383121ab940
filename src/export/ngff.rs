//! The transform as an OME-NGFF coordinate transformation.
//!
//! Released NGFF (0.4, 0.5) has only `scale` and `translation`; an `affine` exists in the
//! RFC-5 draft ("coordinate systems and transformations", aimed at NGFF 0.6), which BigWarp
//! reads with `NgffTransformations.openJson` as one bare transform object:
//!
//! ```json
//! { "type": "affine", "affine": [[a, b, tx], [c, d, ty]], "input": "fixed", "output": "moving",
//!   "coordinateSystems": [ { "name": "fixed", "axes": [ {"name": "x", "type": "space", "unit": "micrometer"}, … ] }, … ] }
//! ```
//!
//! It maps fixed (input) world coordinates to moving (output) ones, like our transform file,
//! in calibrated units (UDUNITS-2 names; uncalibrated axes carry no unit).
use crate::image::Calibration;
use crate::register::transform::Affine2;

/// The draft this file follows, written into it so readers know what they get.
pub const NGFF_DRAFT: &str = "RFC-5 (coordinate systems and transformations, draft for NGFF 0.6)";

/// The UDUNITS-2 name NGFF requires for an ImageJ unit string; None for pixels or unknown units.
pub fn udunits(unit: &str) -> Option<&'static str> {
    crate::image::length_unit(unit).map(|(name, _)| name)
}

fn coordinate_system(name: &str, cal: &Calibration) -> serde_json::Value {
    let axis = |n: &str| match udunits(&cal.unit) {
        Some(u) => serde_json::json!({"name": n, "type": "space", "unit": u}),
        None => serde_json::json!({"name": n, "type": "space"}),
    };
    serde_json::json!({"name": name, "axes": [axis("x"), axis("y")]})
}

/// The fixed → moving transform `t` (pixels) as one RFC-5 affine object in world units.
pub fn ngff_json(t: &Affine2, fixed: &Calibration, moving: &Calibration) -> String {
    let w = t.to_calibrated(fixed, moving);
    let v = serde_json::json!({
        "type": "affine",
        "name": "CoMIR registration, fixed to moving",
        "affine": w.m,
        "input": "fixed",
        "output": "moving",
        "coordinateSystems": [coordinate_system("fixed", fixed), coordinate_system("moving", moving)],
        "ngff": NGFF_DRAFT,
    });
    format!("{v:#}") // a Value's pretty text: cannot fail
}
