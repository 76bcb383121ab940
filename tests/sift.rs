//! SIFT + matching + RANSAC recover known transforms between monomodal images.
mod common;
use comir::register::fit::{fit, ransac, RansacOptions};
use comir::register::matching::match_features;
use comir::register::sift::{detect_and_describe, SiftOptions};
use comir::register::warp::warp_plane;
use comir::{Affine2, TransformKind};

fn recover(truth: &Affine2, kind: TransformKind, upright: bool) -> (Affine2, usize) {
    let (w, h) = (320, 280);
    let fixed = common::scene(w, h, 42);
    // moving = fixed seen through truth⁻¹, so that truth maps fixed → moving coordinates.
    let moving = warp_plane(fixed.view(), &truth.inverse().unwrap(), w, h);
    let opts = SiftOptions { upright, ..Default::default() };
    let (ff, fm) = (detect_and_describe(fixed.view(), &opts), detect_and_describe(moving.view(), &opts));
    assert!(ff.len() > 50 && fm.len() > 50, "{} and {} keypoints", ff.len(), fm.len());
    let matches = match_features(&ff, &fm, 0.8, true).unwrap();
    let src: Vec<_> = matches.iter().map(|m| (ff.keypoints[m.fixed].x, ff.keypoints[m.fixed].y)).collect();
    let dst: Vec<_> = matches.iter().map(|m| (fm.keypoints[m.moving].x, fm.keypoints[m.moving].y)).collect();
    let r = ransac(kind, &src, &dst, &RansacOptions::default()).expect("a fit");
    (r.transform, r.inlier_count)
}

#[test]
fn every_transform_kind_is_recovered_to_subpixel_accuracy() {
    let c = (159.5, 139.5);
    let cases = [
        (TransformKind::Translation, Affine2::translation(7.3, -4.6)),
        (TransformKind::Rigid, Affine2::rotation_about(0.35, c.0, c.1).compose(&Affine2::translation(3.0, 5.5))),
        (TransformKind::Similarity, Affine2::similarity_about(-0.6, 1.15, c.0, c.1)),
        (TransformKind::Affine, Affine2::new([[1.05, 0.12, -6.0], [-0.08, 0.93, 9.0]])),
    ];
    for (kind, truth) in cases {
        let (found, inliers) = recover(&truth, kind, false);
        let err = common::corner_error(&found, &truth, 320, 280);
        assert!(err < 1.0, "{kind:?}: corner error {err:.3} px with {inliers} inliers");
        assert!(inliers >= 20, "{kind:?}: {inliers} inliers");
    }
}

#[test]
fn large_rotation_is_recovered() {
    let truth = Affine2::rotation_about(137f64.to_radians(), 159.5, 139.5);
    let (found, _) = recover(&truth, TransformKind::Rigid, false);
    assert!(common::corner_error(&found, &truth, 320, 280) < 1.0);
}

#[test]
fn upright_mode_matches_unrotated_images() {
    let truth = Affine2::translation(-12.0, 8.25);
    let (found, _) = recover(&truth, TransformKind::Translation, true);
    assert!(common::corner_error(&found, &truth, 320, 280) < 0.5);
}

#[test]
fn least_squares_fits_are_exact_on_exact_data() {
    let truth = Affine2::new([[0.9, -0.3, 4.0], [0.25, 1.1, -7.0]]);
    let src: Vec<(f64, f64)> = (0..10).map(|i| ((i * 37 % 101) as f64, (i * 53 % 97) as f64)).collect();
    let dst: Vec<_> = src.iter().map(|p| truth.apply(p.0, p.1)).collect();
    assert!(fit(TransformKind::Affine, &src, &dst).unwrap().max_difference(&truth) < 1e-9);
    let rigid = Affine2::rotation_about(2.5, 10.0, -3.0);
    let dst: Vec<_> = src.iter().map(|p| rigid.apply(p.0, p.1)).collect();
    assert!(fit(TransformKind::Rigid, &src, &dst).unwrap().max_difference(&rigid) < 1e-9);
    assert!(fit(TransformKind::Affine, &src[..2], &dst[..2]).is_none(), "too few points");
    let collinear: Vec<(f64, f64)> = (0..5).map(|i| (i as f64, 2.0 * i as f64)).collect();
    assert!(fit(TransformKind::Affine, &collinear, &collinear).is_none(), "degenerate");
}

#[test]
fn ransac_ignores_outliers() {
    let truth = Affine2::rotation_about(0.4, 50.0, 50.0);
    let mut rng = comir::rng::Rng::new(3);
    let src: Vec<(f64, f64)> = (0..100).map(|_| (rng.range(0.0, 100.0), rng.range(0.0, 100.0))).collect();
    let dst: Vec<(f64, f64)> = src.iter().enumerate().map(|(i, p)| if i % 3 == 0 { (rng.range(0.0, 100.0), rng.range(0.0, 100.0)) } else { truth.apply(p.0, p.1) }).collect();
    let r = ransac(TransformKind::Rigid, &src, &dst, &RansacOptions::default()).unwrap();
    assert!(r.transform.max_difference(&truth) < 1e-6);
    assert!((66..=70).contains(&r.inlier_count), "{}", r.inlier_count);
}
