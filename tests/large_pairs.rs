//! Pairs too large for working memory are registered on binned copies (src/memory.rs,
//! src/image/bin.rs) and their outputs are written without full-size working copies. The
//! working budget is lowered (COMIR_WORKING_MEMORY) so that small pairs take that path.
mod common;
use comir::image::{io::read_image, Calibration, Image, PixelType};
use comir::progress::Silent;
use comir::register::pipeline::{Method, RegisterOptions};
use comir::{Affine2, TransformKind};

fn image(plane: ndarray::Array2<f32>, pixel_size: f64, unit: &str) -> Image {
    let (h, w) = plane.dim();
    Image { data: plane.into_shape_with_order((1, 1, h, w)).unwrap(), pixel_type: PixelType::F32, calibration: Calibration { pixel_width: pixel_size, pixel_height: pixel_size, unit: unit.into() } }
}

fn mi_options() -> RegisterOptions {
    RegisterOptions { method: Method::Mi, kind: TransformKind::Rigid, any_rotation: false, ..Default::default() }
}

// One test function: the budget is a process-wide environment variable.
#[test]
fn a_pair_over_the_working_budget_is_registered_binned_and_lands_in_original_pixels() {
    // 480 × 400 pair = 384000 pixels ≈ 9.2 MB of working memory; 1.2 MB allows 1/9 of it.
    std::env::set_var("COMIR_WORKING_MEMORY", "1200000");
    let (w, h) = (480, 400);
    let truth = Affine2::rotation_about(0.15, 239.5, 199.5).compose(&Affine2::translation(7.0, -5.0));
    let (fixed, moving) = common::view_pair(w, h, &truth, 5);
    let fixed = image(fixed, 1.0, "pixel");
    let moving = image(common::other_modality(&moving), 1.0, "pixel");
    let (reg, _) = comir::register(&fixed, &moving, None, &mi_options(), &Silent).unwrap();
    assert_eq!(reg.binning, 3);
    let err = common::corner_error(&reg.transform, &truth, w, h);
    // A binned pixel is 3 original pixels; the map back is exact, so the error stays small.
    assert!(err < 2.0, "corner error {err:.2} px; found {:?}", reg.transform);
    assert!(reg.quality.passed, "{:?}", reg.quality);

    // Binning and physical units together: a 0.5 µm fixed and 1 µm moving image.
    let c = (239.5, 199.5);
    let truth = Affine2::translation(c.0 + 3.5, c.1 - 2.5).compose(&Affine2::similarity_about(0.2, 0.5, 0.0, 0.0)).compose(&Affine2::translation(-c.0, -c.1));
    let (f, m) = common::view_pair(w, h, &truth, 33);
    let (f, m) = (image(f, 0.5, "µm"), image(common::other_modality(&m), 1.0, "µm"));
    let (reg, _) = comir::register(&f, &m, None, &mi_options(), &Silent).unwrap();
    assert!(reg.binning > 1);
    let err = common::corner_error(&reg.transform, &truth, w, h);
    assert!(err < 1.5, "corner error {err:.2} moving px; found {:?}", reg.transform);

    // The outputs: warped.tif is streamed band by band and must equal the in-memory warp;
    // the report says the registration was binned.
    let dir = tempfile::tempdir().unwrap();
    let mut moving16 = moving.clone();
    moving16.data.mapv_inplace(|v| (v * 60000.0).round());
    moving16.pixel_type = PixelType::U16;
    comir::export::outputs::write_registration(dir.path(), &fixed, &moving16, &reg, None, serde_json::json!({})).unwrap();
    let written = read_image(&dir.path().join("warped.tif")).unwrap();
    let expected = comir::register::warp::warp_image(&moving16, &reg.transform, w, h).unwrap();
    assert_eq!(written.pixel_type, PixelType::U16);
    assert_eq!(written.data, expected.data);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert!(report["binning"].as_u64().unwrap() > 1);
}

/// The overlay preview of a large fixed image is drawn from binned copies at most
/// PREVIEW_MAX_SIDE on a side, and shows the same alignment as a full-size warp.
#[test]
fn overlay_previews_of_large_images_are_binned_and_aligned() {
    use comir::export::outputs::{overlay_preview, PREVIEW_MAX_SIDE};
    let (w, h) = (PREVIEW_MAX_SIDE + 904, 600);
    let truth = Affine2::translation(12.0, -8.0);
    let (fixed, moving) = common::view_pair(w, h, &truth, 9);
    let (fixed, moving) = (image(fixed, 1.0, "pixel"), image(moving, 1.0, "pixel"));
    let preview = overlay_preview(&fixed, &moving, &truth).unwrap();
    assert_eq!((preview.width(), preview.height()), (w.div_ceil(2), h.div_ceil(2)));
    // Same modality, right transform: the two channels agree away from the borders.
    let (a, b) = (preview.plane(0, 0), preview.plane(0, 1));
    let inner = ndarray::s![20..280, 20..2380];
    let diff = (&a.slice(inner) - &b.slice(inner)).mapv(f32::abs);
    assert!(diff.mean().unwrap() < 0.01, "mean difference {}", diff.mean().unwrap());
}
