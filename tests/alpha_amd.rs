//! α-AMD recovers known transforms between monomodal images (as CoMIRs are), also under a
//! monotonic contrast change.
mod common;
use comir::progress::Silent;
use comir::register::alpha_amd::{register, AlphaAmdOptions, PyramidLevel};
use comir::{Affine2, TransformKind};

fn quick(kind: TransformKind) -> AlphaAmdOptions {
    AlphaAmdOptions {
        kind,
        levels: vec![
            PyramidLevel { factor: 4, sigma: 6.0, iterations: 600, step: (0.2, 0.05) },
            PyramidLevel { factor: 2, sigma: 3.0, iterations: 300, step: (0.2, 0.05) },
            PyramidLevel { factor: 1, sigma: 1.0, iterations: 150, step: (0.05, 0.01) },
        ],
        sampling_fraction: 0.05,
        ..Default::default()
    }
}

fn run(truth: &Affine2, kind: TransformKind, contrast_change: bool, starts: &[f64]) -> f64 {
    let (w, h) = (256, 224);
    // Both views are cut from a larger scene, so neither has an empty (black) border.
    let (fixed, moved) = common::view_pair(w, h, truth, 9);
    let moving = if contrast_change { moved.mapv(|v| v.powf(0.6)) } else { moved };
    let r = register(fixed.view(), moving.view(), Default::default(), starts, &quick(kind), &Silent).unwrap();
    common::corner_error(&r.transform, truth, w, h)
}

#[test]
fn rigid_motion_is_recovered_monomodal() {
    let truth = Affine2::rotation_about(0.2, 127.5, 111.5).compose(&Affine2::translation(6.0, -4.0));
    let err = run(&truth, TransformKind::Rigid, false, &[0.0]);
    assert!(err < 1.0, "corner error {err:.3} px");
}

#[test]
fn affine_motion_is_recovered_monomodal() {
    let truth = Affine2::new([[1.04, 0.05, -3.0], [-0.03, 0.97, 5.0]]);
    let err = run(&truth, TransformKind::Affine, false, &[0.0]);
    assert!(err < 1.5, "corner error {err:.3} px");
}

#[test]
fn rigid_motion_is_recovered_under_a_contrast_change() {
    let truth = Affine2::rotation_about(-0.15, 127.5, 111.5).compose(&Affine2::translation(-5.0, 3.0));
    let err = run(&truth, TransformKind::Rigid, true, &[0.0]);
    assert!(err < 2.0, "corner error {err:.3} px");
}

#[test]
fn multi_start_finds_a_large_rotation() {
    let truth = Affine2::rotation_about(137f64.to_radians(), 127.5, 111.5);
    let starts: Vec<f64> = (0..12).map(|i| (i as f64 * 30.0).to_radians()).collect();
    let err = run(&truth, TransformKind::Rigid, false, &starts);
    assert!(err < 1.0, "corner error {err:.3} px");
}
