//! A measure, printed while training, that predicts registration quality: the loss falls to
//! ≈ 0.002 within ~150 steps on most pairs and says nothing about whether the CoMIRs register.
//! So at every checkpoint a few crops of the training pair are moved by known rigid transforms
//! (up to 15° and 10 % of the crop) and registered on the model's CoMIRs by MI, the CoMIR
//! candidate `auto` relies on most; the check counts how many land within 2 % of the crop
//! width. It measures the representation on the images it was trained on, so it tells when a
//! model has become usable, not how well it generalises (that is `comir eval`'s job).
use crate::error::Result;
use crate::model::augment::TrainingPair;
use crate::model::store::Model;
use crate::progress::Silent;
use crate::register::pipeline::{register_planes, Method, RegisterOptions};
use crate::register::transform::{corner_error, Affine2};
use crate::register::warp::warp_plane;
use crate::rng::Rng;
use ndarray::{Array2, Array3, Axis};

/// Crops per check: enough to tell 0 %, 50 % and 100 % apart, cheap next to 100 steps.
const CROPS: usize = 6;
/// The crop side (smaller when the training images are).
const CROP_SIDE: usize = 160;

/// One check's result (stored in the model header with the weights it judged).
pub use crate::model::store::CheckRecord as Check;

/// The crops of one check, drawn once so that every checkpoint is judged on the same cases.
pub struct CheckCrops {
    cases: Vec<(Array3<f32>, Array3<f32>, Affine2)>,
    side: usize,
}

/// Both inputs of one channel-first image warped plane by plane.
#[expect(clippy::expect_used, reason = "every plane is warped onto the same side × side grid")]
fn warp_channels(x: &Array3<f32>, t: &Affine2, side: usize) -> Array3<f32> {
    let planes: Vec<Array2<f32>> = x.axis_iter(Axis(0)).map(|p| warp_plane(p, t, side, side)).collect();
    ndarray::stack(Axis(0), &planes.iter().map(|p| p.view()).collect::<Vec<_>>()).expect("planes of one size")
}

/// Draw the crops from the first training pair (inputs already preprocessed); None when its
/// images are too small for a meaningful check.
#[expect(clippy::expect_used, reason = "a rotation plus shift always inverts")]
pub fn draw(pair: &TrainingPair, seed: u64) -> Option<CheckCrops> {
    let (h, w) = (pair.a.shape()[1], pair.a.shape()[2]);
    let side = CROP_SIDE.min(w).min(h);
    if side < 64 {
        return None;
    }
    let mut rng = Rng::new(seed ^ 0xC0_5EED);
    let c = (side as f64 - 1.0) / 2.0;
    let cases = (0..CROPS)
        .map(|_| {
            let angle = rng.range(-15.0f64, 15.0).to_radians();
            let shift = 0.1 * side as f64;
            let truth = Affine2::translation(rng.range(-shift, shift), rng.range(-shift, shift)).compose(&Affine2::rotation_about(angle, c, c));
            let offset = Affine2::translation(rng.range(0.0, (w - side) as f64).floor(), rng.range(0.0, (h - side) as f64).floor());
            let fixed = warp_channels(&pair.a, &offset, side);
            // moving(q) = b(offset(truth⁻¹(q))): truth maps fixed crop → moving crop.
            let moving = warp_channels(&pair.b, &offset.compose(&truth.inverse().expect("a rigid map inverts")), side);
            (fixed, moving, truth)
        })
        .collect();
    Some(CheckCrops { cases, side })
}

/// Register every crop on the CoMIRs of `model` as trained so far.
pub fn check(model: &Model, crops: &CheckCrops, step: u64) -> Result<Check> {
    let options = RegisterOptions { method: Method::Mi, any_rotation: false, ..Default::default() };
    let mut errors = Vec::with_capacity(crops.cases.len());
    for (fixed, moving, truth) in &crops.cases {
        let plane = |side: usize, x: &Array3<f32>| -> Result<Array2<f32>> {
            let y = crate::model::infer::represent(model, side, x, &Default::default(), &Silent)?;
            y.mean_axis(Axis(0)).ok_or_else(|| crate::error::Error::Internal("a representation without channels".into()))
        };
        let (cf, cm) = (plane(0, fixed)?, plane(1, moving)?);
        let reg = register_planes(cf.view(), cm.view(), true, &options, &Silent)?;
        errors.push(corner_error(&reg.transform, truth, crops.side, crops.side));
    }
    let registered = errors.iter().filter(|&&e| crate::eval::is_success(e, crops.side)).count();
    errors.sort_by(|a, b| a.total_cmp(b));
    // Finite, so the record stays valid JSON in the model header.
    Ok(Check { step, registered, crops: errors.len(), median_error_px: errors[errors.len() / 2].min(1e9) })
}
