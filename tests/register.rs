//! The registration call end to end: MI on raw multimodal images, SIFT/α-AMD on monomodal
//! planes, the quality flag, and a trained model on a synthetic two-modality pair.
mod common;
use comir::progress::Silent;
use comir::register::mi::{self, MiOptions};
use comir::register::pipeline::{register_planes, Method, RegisterOptions};
use comir::{Affine2, TransformKind};

#[test]
fn mi_recovers_rigid_motion_between_modalities() {
    let truth = Affine2::rotation_about(0.25, 127.5, 111.5).compose(&Affine2::translation(7.0, -5.0));
    let (fixed, moved) = common::view_pair(256, 224, &truth, 21);
    let moving = common::other_modality(&moved);
    let r = mi::register(fixed.view(), moving.view(), Default::default(), &[0.0, 0.4, -0.4], &MiOptions::default(), &Silent).unwrap();
    let err = common::corner_error(&r.transform, &truth, 256, 224);
    assert!(err < 2.0, "corner error {err:.2} px");
}

#[test]
fn pipeline_sift_passes_quality_on_monomodal_planes() {
    let truth = Affine2::rotation_about(2.0, 159.5, 139.5).compose(&Affine2::translation(10.0, 4.0));
    let (fixed, moving) = common::view_pair(320, 280, &truth, 5);
    let reg = register_planes(fixed.view(), moving.view(), true, &RegisterOptions::default(), &Silent).unwrap();
    assert_eq!(reg.method, Method::Sift);
    assert!(reg.quality.passed, "{:?}", reg.quality);
    assert_eq!(reg.candidates.len(), 1, "a passing SIFT result saves the other candidates");
    assert_eq!(comir::register::pipeline::explain_choice(&reg.candidates, reg.method, reg.input), "");
    assert!(common::corner_error(&reg.transform, &truth, 320, 280) < 1.0);
    assert!(reg.matches.len() >= 8);
    let (angle, scale, _) = reg.decompose();
    assert!((angle - 2f64.to_degrees()).abs() < 0.2 && (scale - 1.0).abs() < 1e-9, "{angle} {scale}");
}

#[test]
fn unrelated_images_are_flagged() {
    let a = common::scene(256, 256, 1);
    let b = common::scene(256, 256, 2);
    for method in [Method::Auto, Method::AlphaAmd, Method::Ncc] {
        // The NCC search tries every rotation and shift: the most chances of a chance match.
        for any_rotation in [false, true] {
            let options = RegisterOptions { method, any_rotation, ..Default::default() };
            let reg = register_planes(a.view(), b.view(), true, &options, &Silent).unwrap();
            assert!(!reg.quality.passed, "{method:?} (any rotation: {any_rotation}) passed unrelated images with {:?}: {:?} {:?}", reg.method, reg.quality, reg.candidates);
        }
    }
    let reg = register_planes(a.view(), common::other_modality(&b).view(), false, &RegisterOptions { any_rotation: false, ..Default::default() }, &Silent).unwrap();
    assert!(!reg.quality.passed, "MI passed unrelated images: {:?}", reg.quality);
    // What auto tried on the CoMIRs is reported. Here the NCC search's best pose does not
    // stand out from the other places it found (the CoMIRs match two places): α-AMD and MI on
    // the same CoMIRs would face the same rivals, so they are not run.
    let reg = register_planes(a.view(), b.view(), true, &RegisterOptions { any_rotation: false, ..Default::default() }, &Silent).unwrap();
    let tried: Vec<Method> = reg.candidates.iter().map(|c| c.method).collect();
    assert_eq!(tried, vec![Method::Sift, Method::Ncc], "{:?}", reg.candidates);
    assert!(reg.candidates[1].reason.contains("the CoMIRs match two places"), "{}", reg.candidates[1].reason);
    let choice = comir::register::pipeline::explain_choice(&reg.candidates, reg.method, reg.input);
    assert!(choice.starts_with("tried sift failed (") && choice.contains("ncc failed (") && choice.contains("none passed"), "{choice}");
    // A faint match (the scene under strong noise: low NCC everywhere, no rival place) fails
    // the search for want of similarity; then α-AMD and MI are tried too, all reported.
    let mut rng = comir::rng::Rng::new(5);
    let faint = a.mapv(|v| 0.2 * v + rng.range(-0.5, 0.5) as f32);
    let reg = register_planes(a.view(), faint.view(), true, &RegisterOptions { any_rotation: false, ..Default::default() }, &Silent).unwrap();
    let tried: Vec<Method> = reg.candidates.iter().map(|c| c.method).collect();
    assert_eq!(tried, vec![Method::Sift, Method::Ncc, Method::AlphaAmd, Method::Mi], "{:?}", reg.candidates);
    assert!(reg.candidates.iter().all(|c| c.input == comir::register::pipeline::Input::Comirs));
    assert!(reg.candidates.iter().all(|c| !c.passed && !c.reason.is_empty()), "{:?}", reg.candidates);
    let choice = comir::register::pipeline::explain_choice(&reg.candidates, reg.method, reg.input);
    assert!(choice.contains("mi on the CoMIRs failed (") && choice.contains("none passed"), "{choice}");
}

#[test]
fn raw_multimodal_images_refuse_sift_without_a_model() {
    let a = common::scene(64, 64, 1);
    let err = register_planes(a.view(), a.view(), false, &RegisterOptions { method: Method::Sift, ..Default::default() }, &Silent).unwrap_err();
    assert!(err.to_string().contains("need a CoMIR model"), "{err}");
    let tiny = common::scene(8, 8, 1);
    assert!(register_planes(tiny.view(), tiny.view(), true, &RegisterOptions::default(), &Silent).unwrap_err().to_string().contains("too small"));
}

#[test]
fn every_transform_kind_through_the_pipeline() {
    let c = (159.5, 139.5);
    for (kind, truth) in [
        (TransformKind::Translation, Affine2::translation(5.5, -8.25)),
        (TransformKind::Similarity, Affine2::similarity_about(0.5, 0.9, c.0, c.1)),
        (TransformKind::Affine, Affine2::new([[1.06, 0.1, -4.0], [-0.05, 0.95, 6.0]])),
    ] {
        let (fixed, moving) = common::view_pair(320, 280, &truth, 8);
        let reg = register_planes(fixed.view(), moving.view(), true, &RegisterOptions { kind, ..Default::default() }, &Silent).unwrap();
        let err = common::corner_error(&reg.transform, &truth, 320, 280);
        assert!(err < 1.0 && reg.quality.passed, "{kind:?}: error {err:.2}, {:?}", reg.quality);
    }
}

#[test]
fn end_to_end_with_a_trained_model() {
    use comir::image::{Image, PixelType};
    use comir::model::augment::TrainingPair;
    use comir::model::config::NetConfig;
    use comir::model::preprocess::Preprocess;
    use comir::model::store::{Modality, Model};
    use comir::model::train::{train, OptimizerKind, TrainConfig};
    // Train on one aligned pair of a synthetic scene seen in two modalities.
    let a = common::scene(192, 192, 100);
    let b = common::other_modality(&a);
    let as3 = |p: &ndarray::Array2<f32>| p.clone().insert_axis(ndarray::Axis(0));
    let pairs = [TrainingPair::new(as3(&a), as3(&b), None).unwrap()];
    tch::manual_seed(1);
    let net = NetConfig { init_filters: 8, growth_rate: 6, down_blocks: vec![2; 3], up_blocks: vec![2; 3], bottleneck_layers: 2, dropout: 0.0, ..NetConfig::small(1, 1) };
    let modality = |n: &str| Modality { name: n.into(), preprocess: Preprocess::Scale, net: net.clone() };
    let mut model = Model::new([modality("A"), modality("B")], tch::Device::Cpu).unwrap();
    let config = TrainConfig { steps: 200, batch_size: 8, patch_size: 48, optimizer: OptimizerKind::Adam, learning_rate: 3e-3, seed: 3, ..Default::default() };
    let t0 = std::time::Instant::now();
    train(&mut model, &pairs, &config, None, None, &Silent).unwrap();
    eprintln!("training: {:.1} s", t0.elapsed().as_secs_f64());

    // Register a new scene: modality B moved by a known rigid transform onto modality A.
    let truth = Affine2::rotation_about(0.5, 127.5, 127.5).compose(&Affine2::translation(9.0, -6.0));
    let (fixed, moved) = common::view_pair(256, 256, &truth, 200);
    let image = |p: ndarray::Array2<f32>| Image { data: p.insert_axis(ndarray::Axis(0)).insert_axis(ndarray::Axis(0)), pixel_type: PixelType::F32, calibration: Default::default() };
    let (fixed, moving) = (image(fixed), image(common::other_modality(&moved)));
    let (reg, comirs) = comir::register(&fixed, &moving, Some((&model, (0, 1))), &RegisterOptions::default(), &Silent).unwrap();
    let err = common::corner_error(&reg.transform, &truth, 256, 256);
    eprintln!("registration: {:?}", reg.timings);
    assert!(comirs.is_some());
    assert!(err < 0.02 * 256.0, "corner error {err:.2} px ({:?}, {:?})", reg.method, reg.quality);
    assert!(reg.quality.passed, "{:?}", reg.quality);

    // A model whose training check missed some of its own crops cannot vouch for a pose: the
    // same pose, now flagged FAIL with the reason (a wrong PASS at a few pixels was seen with
    // such a model). One whose check registered every crop keeps its PASS.
    use comir::model::store::CheckRecord;
    use comir::register::quality::Reason;
    model.header.check = Some(CheckRecord { step: 150, registered: 5, crops: 6, median_error_px: 2.5 });
    let (imprecise, _) = comir::register(&fixed, &moving, Some((&model, (0, 1))), &RegisterOptions::default(), &Silent).unwrap();
    assert_eq!(imprecise.transform, reg.transform);
    assert!(!imprecise.quality.passed);
    assert!(matches!(imprecise.quality.reason, Reason::ModelMissesOwnCrops { registered: 5, crops: 6, .. }), "{:?}", imprecise.quality.reason);
    assert!(imprecise.quality.reason.to_string().contains("5 of 6 test crops"), "{}", imprecise.quality.reason);
    model.header.check = Some(CheckRecord { step: 200, registered: 6, crops: 6, median_error_px: 0.8 });
    let (checked, _) = comir::register(&fixed, &moving, Some((&model, (0, 1))), &RegisterOptions::default(), &Silent).unwrap();
    assert!(checked.quality.passed, "{:?}", checked.quality);
}

fn calibrated(plane: ndarray::Array2<f32>, pixel_size: f64, unit: &str) -> comir::Image {
    let (h, w) = plane.dim();
    comir::Image {
        data: plane.into_shape_with_order((1, 1, h, w)).unwrap(),
        pixel_type: comir::image::PixelType::F32,
        calibration: comir::image::Calibration { pixel_width: pixel_size, pixel_height: pixel_size, unit: unit.into() },
    }
}

/// A 0.5 µm fixed image and a 1 µm moving image related by a rigid motion in µm: `rigid`
/// finds it, because registration works in physical units (in pixels it is a scale of 0.5,
/// which a rigid search cannot find; before, this failed unless `similarity` was chosen).
#[test]
fn rigid_means_rigid_in_micrometres_when_pixel_sizes_differ() {
    // The fixed field (120 × 100 µm) lies near the middle of the moving one (240 × 200 µm),
    // turned by 0.2 rad and shifted by a few µm: moving px = 0.5·R·(fixed px − c) + c + t.
    let c = (119.5, 99.5);
    let truth = Affine2::translation(c.0 + 3.5, c.1 - 2.5)
        .compose(&Affine2::similarity_about(0.2, 0.5, 0.0, 0.0))
        .compose(&Affine2::translation(-c.0, -c.1));
    let (fixed, moving) = common::view_pair(240, 200, &truth, 33);
    let fixed = calibrated(fixed, 0.5, "µm");
    let moving = calibrated(common::other_modality(&moving), 1.0, "micron");
    let options = RegisterOptions { method: Method::Mi, kind: TransformKind::Rigid, any_rotation: false, ..Default::default() };
    let (reg, _) = comir::register(&fixed, &moving, None, &options, &Silent).unwrap();
    let err = common::corner_error(&reg.transform, &truth, 240, 200);
    assert!(err < 1.5, "corner error {err:.2} moving px; found {:?}", reg.transform);
    assert_eq!(reg.kind, TransformKind::Rigid);
    // The same pair without calibration is registered in pixels, as before.
    let uncalibrated = calibrated(moving.data.index_axis(ndarray::Axis(0), 0).index_axis(ndarray::Axis(0), 0).to_owned(), 1.0, "pixel");
    assert!(comir::register::physical::moving_pixels_per_fixed_pixel(&fixed.calibration, &uncalibrated.calibration).is_none());
    assert_eq!(comir::register::physical::moving_pixels_per_fixed_pixel(&fixed.calibration, &moving.calibration), Some((0.5, 0.5)));
}

/// `auto`'s fallback for the tests below: MI on originals of two modalities that it registers,
/// counting its runs.
struct OnOriginals {
    truth: Affine2,
    fixed: ndarray::Array2<f32>,
    moving: ndarray::Array2<f32>,
    runs: std::sync::atomic::AtomicUsize,
}

impl OnOriginals {
    fn new() -> OnOriginals {
        let truth = Affine2::rotation_about(0.25, 127.5, 111.5).compose(&Affine2::translation(7.0, -5.0));
        let (fixed, moved) = common::view_pair(256, 224, &truth, 21);
        OnOriginals { truth, fixed, moving: common::other_modality(&moved), runs: Default::default() }
    }

    fn run(&self, o: &RegisterOptions, monitor: &dyn comir::progress::Monitor) -> comir::Result<comir::register::pipeline::Registration> {
        self.runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        comir::register::pipeline::register_planes_masked(self.fixed.view(), self.moving.view(), Default::default(), false, o, monitor)
    }

    fn runs(&self) -> usize {
        self.runs.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The fallback's result run beside other work must be its result run alone, to the last bit.
    fn assert_as_run_alone(&self, beside: &comir::register::pipeline::Registration, o: &RegisterOptions) {
        let after = comir::register::pipeline::register_planes_masked(self.fixed.view(), self.moving.view(), Default::default(), false, o, &Silent).unwrap();
        assert_eq!((beside.transform, format!("{:?}", beside.quality)), (after.transform, format!("{:?}", after.quality)));
    }
}

/// `auto` runs MI on the originals beside α-AMD and MI on the CoMIRs once those are reached
/// (every earlier CoMIR candidate failed): the registration on the CoMIRs and the fallback's
/// result must be those of the two run one after the other, to the last bit, and a pair whose
/// CoMIRs pass earlier must never run the fallback.
#[test]
fn the_fallback_run_beside_the_comir_candidates_gives_the_results_of_one_after_the_other() {
    use comir::register::mask::Masks;
    use comir::register::pipeline::{register_planes_beside, register_planes_masked};
    let o = RegisterOptions { any_rotation: false, ..Default::default() };
    // "CoMIRs" that match faintly: every CoMIR candidate is tried and fails (see above).
    let a = common::scene(256, 256, 1);
    let mut rng = comir::rng::Rng::new(5);
    let faint = a.mapv(|v| 0.2 * v + rng.range(-0.5, 0.5) as f32);
    let originals = OnOriginals::new();
    let on_originals = |monitor: &dyn comir::progress::Monitor| originals.run(&o, monitor);
    let (reg, early) = register_planes_beside(a.view(), faint.view(), Masks::default(), true, &o, &Silent, Some(&on_originals)).unwrap();
    assert_eq!(originals.runs(), 1, "the fallback runs beside α-AMD and MI on the CoMIRs");
    let tried: Vec<Method> = reg.candidates.iter().map(|c| c.method).collect();
    assert_eq!(tried, vec![Method::Sift, Method::Ncc, Method::AlphaAmd, Method::Mi]);
    assert!(!reg.quality.passed);
    let alone = register_planes_masked(a.view(), faint.view(), Masks::default(), true, &o, &Silent).unwrap();
    assert_eq!((reg.transform, reg.method, format!("{:?}", reg.quality), format!("{:?}", reg.candidates)), (alone.transform, alone.method, format!("{:?}", alone.quality), format!("{:?}", alone.candidates)));
    let beside = early.expect("the fallback's result comes back").unwrap();
    originals.assert_as_run_alone(&beside, &o);
    assert!(beside.quality.passed && common::corner_error(&beside.transform, &originals.truth, 256, 224) < 2.0, "{:?}", beside.quality);
    // CoMIRs that match: SIFT passes, nothing else runs, the fallback included.
    let shifted = Affine2::rotation_about(2.0, 159.5, 139.5).compose(&Affine2::translation(10.0, 4.0));
    let (cf, cm) = common::view_pair(320, 280, &shifted, 5);
    let (reg, early) = register_planes_beside(cf.view(), cm.view(), Masks::default(), true, &o, &Silent, Some(&on_originals)).unwrap();
    assert!(reg.quality.passed && early.is_none());
    assert!(!reg.timings.iter().any(|(step, _)| step.starts_with("mi on the originals")), "{:?}", reg.timings);
    assert_eq!(originals.runs(), 1, "a passing CoMIR candidate needs no fallback");
}

/// Where the NCC search finds two places alike, `auto` starts the fallback beside the NCC
/// candidate's polish; when the candidate then fails as ambiguous (nothing else runs on the
/// CoMIRs) the fallback's result is that of the fallback run after it, to the last bit.
#[test]
fn the_fallback_started_beside_the_polish_gives_the_result_of_one_after_the_other() {
    use comir::register::mask::Masks;
    use comir::register::pipeline::{register_planes_beside, register_planes_masked};
    let o = RegisterOptions { any_rotation: false, ..Default::default() };
    // Unrelated "CoMIRs": the search's best places score alike, the candidate fails as
    // ambiguous (see `unrelated_images_are_flagged`).
    let (a, b) = (common::scene(256, 256, 1), common::scene(256, 256, 2));
    let originals = OnOriginals::new();
    let on_originals = |monitor: &dyn comir::progress::Monitor| originals.run(&o, monitor);
    let (reg, early) = register_planes_beside(a.view(), b.view(), Masks::default(), true, &o, &Silent, Some(&on_originals)).unwrap();
    assert_eq!(originals.runs(), 1);
    let tried: Vec<Method> = reg.candidates.iter().map(|c| c.method).collect();
    assert_eq!(tried, vec![Method::Sift, Method::Ncc], "ambiguous: no α-AMD or MI on the CoMIRs");
    assert!(reg.timings.iter().any(|(step, _)| step == "ncc polish (α-AMD) beside mi on the originals"), "{:?}", reg.timings);
    // The fallback's time after the candidates is a step of the profile too.
    assert!(reg.timings.iter().any(|(step, _)| step == "mi on the originals (after the candidates)"), "{:?}", reg.timings);
    let alone = register_planes_masked(a.view(), b.view(), Masks::default(), true, &o, &Silent).unwrap();
    assert_eq!((reg.transform, format!("{:?}", reg.quality), format!("{:?}", reg.candidates)), (alone.transform, format!("{:?}", alone.quality), format!("{:?}", alone.candidates)));
    let beside = early.expect("the fallback's result comes back").unwrap();
    originals.assert_as_run_alone(&beside, &o);
}
