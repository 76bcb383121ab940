//! The shipped model on the real demo pair, in the half it was not trained on: hematoxylin
//! (fixed) against DAB moved by a known rigid transform, with the full rotation search.
//! Needs the demo data that scripts/setup.sh fetches (scikit-image's ihc.png).
use comir::image::io::read_image;
use comir::image::stain;
use comir::model::store::Model;
use comir::progress::Silent;
use comir::register::pipeline::{Method, RegisterOptions};
use comir::register::warp::warp_image;
use comir::Affine2;
use std::path::Path;

mod common;

#[test]
fn shipped_model_registers_the_unseen_half_of_the_demo_pair() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo = root.join(".deps/demo/ihc.png");
    assert!(demo.is_file(), "{} is missing: run scripts/setup.sh (it fetches the demo data)", demo.display());
    let hed = stain::separate_hed(&read_image(&demo).unwrap()).unwrap();
    let right_half = Affine2::translation(256.0, 0.0);
    let fixed = warp_image(&stain::channel(&hed, 0), &right_half, 256, 512).unwrap();
    // moving(q) = DAB(right_half(truth⁻¹(q))): truth maps fixed → moving.
    let truth = Affine2::translation(8.0, -6.0).compose(&Affine2::rotation_about(4f64.to_radians(), 127.5, 255.5));
    let moving = warp_image(&stain::channel(&hed, 2), &right_half.compose(&truth.inverse().unwrap()), 256, 512).unwrap();
    let model = Model::load(&root.join("models/ihc-hdab-small.safetensors"), tch::Device::Cpu).unwrap();
    let sides = comir::model_sides(&model, &fixed, &moving).unwrap();
    for method in [Method::AlphaAmd, Method::Auto] {
        let options = RegisterOptions { method, any_rotation: true, ..Default::default() };
        let (reg, _) = comir::register(&fixed, &moving, Some((&model, sides)), &options, &Silent).unwrap();
        let error = common::corner_error(&reg.transform, &truth, 256, 512);
        assert!(error < 0.02 * 256.0, "{method:?}: corner error {error:.1} px, {:?}", reg.quality);
        assert!(reg.quality.passed, "{method:?}: {:?}", reg.quality);
    }
    // SIFT alone, on CoMIRs blurred by σ = 1 first: accurate, though with fewer consistent
    // matches than the quality flag asks for (so `auto` goes on to α-AMD).
    // Without the final refinement on the CoMIRs SIFT's pose is a few pixels off; with it,
    // under one.
    let options = RegisterOptions { method: Method::Sift, any_rotation: true, refine: false, ..Default::default() };
    let (reg, _) = comir::register(&fixed, &moving, Some((&model, sides)), &options, &Silent).unwrap();
    let unrefined = common::corner_error(&reg.transform, &truth, 256, 512);
    assert!(unrefined < 0.02 * 256.0, "SIFT: corner error {unrefined:.1} px with {} inliers", reg.matches.len());
    assert!(reg.refinement.is_none());
    let (reg, _) = comir::register(&fixed, &moving, Some((&model, sides)), &RegisterOptions { refine: true, ..options }, &Silent).unwrap();
    let refined = common::corner_error(&reg.transform, &truth, 256, 512);
    assert!(refined < 1.0 && refined < unrefined, "SIFT refined: {unrefined:.2} → {refined:.2} px ({:?})", reg.refinement);
    let sentence = comir::Outcome::of_registration(&reg, 0.0, &fixed.calibration).refinement;
    assert!(sentence.starts_with("refined on the CoMIRs (moved "), "{sentence}");
}

/// The NCC candidate keeps the pose its search found on a pair whose coarse copies are 5 px a
/// pixel (546×273, the size of the speed issue's small pair; the pair `bench/register_speed.sh`
/// makes). α-AMD's polish ran its level at factor 4 there, hardly finer than the copies and
/// blurred for finding basins (σ 12 px): it took the search's right pose 50 px and 5° away,
/// the candidate failed, and `auto` went on through every other method to MI on the originals.
#[test]
fn the_ncc_candidate_keeps_the_search_pose_on_a_546_by_273_pair() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let hed = stain::separate_hed(&read_image(&root.join(".deps/demo/ihc.png")).unwrap()).unwrap();
    let (w, h) = (546, 273);
    // The benchmark's mosaic at this size: the 512² stain, then the same turned by 180°.
    let mosaic = |c: usize| {
        let mut out = stain::channel(&hed, c);
        let a = out.plane(0, 0).to_owned();
        out.data = ndarray::Array4::from_shape_fn((1, 1, h, w), |(_, _, y, x)| if x < 512 { a[[y, x]] } else { a[[511 - y, 511 - (x - 512)]] });
        out
    };
    let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    let truth = Affine2::translation(0.03 * w as f64, -0.03 * h as f64).compose(&Affine2::rotation_about(8f64.to_radians(), cx, cy));
    let fixed = mosaic(0);
    let moving = warp_image(&mosaic(2), &truth.inverse().unwrap(), w, h).unwrap();
    let model = Model::load(&root.join("models/ihc-hdab-small.safetensors"), tch::Device::Cpu).unwrap();
    let sides = comir::model_sides(&model, &fixed, &moving).unwrap();
    let options = RegisterOptions { method: Method::Ncc, any_rotation: true, ..Default::default() };
    let (reg, _) = comir::register(&fixed, &moving, Some((&model, sides)), &options, &Silent).unwrap();
    let error = common::corner_error(&reg.transform, &truth, w, h);
    assert!(error < 0.02 * w as f64, "corner error {error:.1} px, {:?}", reg.quality);
    assert!(reg.quality.passed, "{:?}", reg.quality);
}

/// The training check (printed at every checkpoint) counts right: the shipped model's CoMIRs
/// register crops of its training half, a freshly initialised model's do not.
#[test]
fn the_training_check_tells_a_trained_model_from_an_untrained_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let hed = stain::separate_hed(&read_image(&root.join(".deps/demo/ihc.png")).unwrap()).unwrap();
    let left_half = Affine2::IDENTITY;
    let (a, b) = (warp_image(&stain::channel(&hed, 0), &left_half, 256, 512).unwrap(), warp_image(&stain::channel(&hed, 2), &left_half, 256, 512).unwrap());
    let trained = Model::load(&root.join("models/ihc-hdab-small.safetensors"), tch::Device::Cpu).unwrap();
    let prepare = |m: &Model| {
        let x = comir::model::preprocess::prepare(&a, m.header.modalities[0].preprocess).unwrap();
        let y = comir::model::preprocess::prepare(&b, m.header.modalities[1].preprocess).unwrap();
        comir::model::augment::TrainingPair::new(x, y, None).unwrap()
    };
    let crops = comir::train_check::draw(&prepare(&trained), 1).unwrap();
    let good = comir::train_check::check(&trained, &crops, 1500).unwrap();
    assert!(good.registered >= 5 && good.crops == 6, "trained: {good}");
    tch::manual_seed(3);
    let fresh = Model::new(trained.header.modalities.clone(), tch::Device::Cpu).unwrap();
    let bad = comir::train_check::check(&fresh, &crops, 0).unwrap();
    eprintln!("trained: {good}; untrained: {bad}");
    assert!(bad.registered <= 3, "untrained: {bad}");
    assert!(good.to_string().starts_with(&format!("registers {}/6 test crops (median error ", good.registered)));
}
