//! The final refinement on CoMIRs and the MI seeding: a pose found a few pixels off is
//! polished to a fraction of a pixel; a refinement that would move the pose far is kept only
//! where the CoMIRs match better there;
//! MI finds a rotation between its old 30° starts with a shift of 10% of the width.
mod common;
use comir::progress::Silent;
use comir::register::mask::Masks;
use comir::register::pipeline::{Assessor, RegisterOptions};
use comir::register::refine::{max_move, refine_on_comirs, Refinement, Verdicts};
use comir::{Affine2, TransformKind};

/// The refinement as the registration runs it: judged by the NCC check on the same CoMIRs.
fn refine(fixed: &ndarray::Array2<f32>, moving: &ndarray::Array2<f32>, found: &Affine2) -> (Affine2, Refinement) {
    let (t, what, _) = refine_with_verdict(fixed, moving, found);
    (t, what)
}

/// [`refine`] with the CoMIRs' verdict that replaces the pose found's after a far move.
fn refine_with_verdict(fixed: &ndarray::Array2<f32>, moving: &ndarray::Array2<f32>, found: &Affine2) -> (Affine2, Refinement, Option<comir::register::quality::Quality>) {
    let on_comirs = assessor(fixed, moving);
    let judge = |t: &Affine2| on_comirs.assess(t, None);
    refine_on_comirs(fixed.view(), moving.view(), Masks::default(), found, &Default::default(), &Verdicts { near: &judge, far: &judge }, &Silent).unwrap()
}

fn pair(truth: &Affine2, (w, h): (usize, usize)) -> (ndarray::Array2<f32>, ndarray::Array2<f32>, usize, usize) {
    let (fixed, moving) = common::view_pair(w, h, truth, 21);
    (fixed, moving, w, h)
}

/// The far-move cases: a 96² pair (where the largest correction on the CoMIRs' check alone is
/// the floor of 4 px) and a pose found twice that far from the truth along x.
struct FarCase {
    truth: Affine2,
    fixed: ndarray::Array2<f32>,
    moving: ndarray::Array2<f32>,
    w: usize,
    h: usize,
    found: Affine2,
}

fn far_case() -> FarCase {
    let truth = Affine2::translation(4.0, 2.0);
    let (fixed, moving, w, h) = pair(&truth, (96, 96));
    assert_eq!(max_move(w, h), 4.0);
    let found = Affine2::translation(2.0 * max_move(w, h), 0.0).compose(&truth);
    FarCase { truth, fixed, moving, w, h, found }
}

/// The registration's NCC check on two CoMIRs.
fn assessor<'a>(fixed: &'a ndarray::Array2<f32>, moving: &'a ndarray::Array2<f32>) -> Assessor<'a> {
    Assessor::new(fixed.view(), moving.view(), Masks::default(), true, &RegisterOptions::default())
}

#[test]
fn a_pose_found_a_few_pixels_off_is_polished_to_a_fraction_of_a_pixel() {
    let truth = Affine2::rotation_about(0.12, 95.5, 79.5).compose(&Affine2::translation(5.0, -3.0));
    let (fixed, moving, w, h) = pair(&truth, (192, 160));
    // As MI leaves it on stains: the right basin, 2.5 px and half a degree away.
    let found = Affine2::translation(2.0, -1.5).compose(&truth).compose(&Affine2::rotation_about(0.008, 95.5, 79.5));
    let before = common::corner_error(&found, &truth, w, h);
    let (refined, what) = refine(&fixed, &moving, &found);
    let after = common::corner_error(&refined, &truth, w, h);
    assert!(before > 2.0, "the start must be off: {before:.2} px");
    assert!(what.kept && after < 0.5, "refined {before:.2} → {after:.2} px ({what:?})");
    assert!((what.moved_px - common::corner_error(&refined, &found, w, h)).abs() < 1e-9);
}

/// A pose found farther off than a local correction (a near miss of SIFT or α-AMD) on CoMIRs
/// that match better at the truth: the move is kept, and the CoMIRs' verdict at the pose kept
/// replaces the pose found's (on the synthetic astronaut pair such a pose, 8.7 px off, had kept
/// its PASS).
#[test]
fn a_far_move_to_where_the_comirs_match_better_is_kept_with_their_verdict() {
    let FarCase { truth, fixed, moving, w, h, found } = far_case();
    let (kept, what, verdict) = refine_with_verdict(&fixed, &moving, &found);
    assert!(what.kept && what.beyond_local && what.moved_px > max_move(w, h), "{what:?}");
    assert!(common::corner_error(&kept, &truth, w, h) < 0.5, "{what:?}");
    let verdict = verdict.expect("a far move brings the CoMIRs' verdict");
    assert!(verdict.passed, "{verdict:?}");
    assert!(what.to_string().contains("better than at the pose found"), "{what}");
}

/// As the registration runs it: after a far move, the verdict the registration reports is the
/// CoMIRs' at the pose kept, not the pose found's (which described a pose no longer returned).
#[test]
fn a_registration_moved_far_reports_the_verdict_of_the_pose_it_returns() {
    use comir::register::pipeline::{Input, Method, Registration};
    let FarCase { truth, fixed, moving, w, h, found } = far_case();
    let on_comirs = assessor(&fixed, &moving);
    // The pose found's verdict, as a candidate's check left it (here: a PASS on a pose 8 px off).
    let mut found_verdict = on_comirs.assess(&found, None);
    found_verdict.passed = true;
    found_verdict.score = 0.1;
    let mut reg = Registration { transform: found, kind: TransformKind::Rigid, method: Method::AlphaAmd, input: Input::Comirs, quality: found_verdict, matches: vec![], timings: vec![], binning: 1, candidates: vec![], refinement: None, search_poses: vec![] };
    let judge = |t: &Affine2| on_comirs.assess(t, None);
    comir::register::refine::refine_registration(&mut reg, fixed.view(), moving.view(), Masks::default(), &Default::default(), &Verdicts { near: &judge, far: &judge }, &Silent).unwrap();
    assert!(common::corner_error(&reg.transform, &truth, w, h) < 0.5);
    assert!(reg.refinement.as_ref().is_some_and(|r| r.kept && r.beyond_local));
    let at_kept = on_comirs.assess(&reg.transform, None);
    assert!(reg.quality.passed && reg.quality.score == at_kept.score, "{:?} against {:?}", reg.quality, at_kept);
}

/// A far move is kept only where the CoMIRs match better than at the pose found: a check that
/// scores the pose found higher (CoMIRs that match both places, the other a little less) keeps
/// the pose found, and says why.
#[test]
fn a_far_move_to_where_the_comirs_match_less_well_is_not_kept() {
    let FarCase { truth, fixed, moving, w, h, found } = far_case();
    let on_comirs = assessor(&fixed, &moving);
    // Every pose passes; the nearer to the pose found, the higher its score.
    let prefers_found = |t: &Affine2| {
        let mut q = on_comirs.assess(&truth, None);
        q.passed = true;
        q.score = 1.0 - common::corner_error(t, &found, w, h) / 100.0;
        q
    };
    let (kept, what, verdict) = refine_on_comirs(fixed.view(), moving.view(), Masks::default(), &found, &Default::default(), &Verdicts { near: &prefers_found, far: &prefers_found }, &Silent).unwrap();
    assert!(what.moved_px > max_move(w, h) && !what.kept && verdict.is_none(), "{what:?}");
    assert_eq!(kept, found);
    assert!(what.to_string().contains("they match the pose found as well"), "{what}");
}

/// CoMIRs that match nowhere near the pose found know no better than it: however far the
/// refinement would move, the pose found stays.
#[test]
fn a_far_move_on_comirs_that_do_not_match_is_not_kept() {
    let FarCase { fixed, w, h, found, .. } = far_case();
    let unrelated = common::scene(w, h, 78);
    let (kept, what, verdict) = refine_with_verdict(&fixed, &unrelated, &found);
    assert!(!what.kept && !what.beyond_local && verdict.is_none(), "{what:?}");
    assert_eq!(kept, found);
}

/// CoMIRs that do not coincide (a model that never saw this tissue) know no better than the
/// pose found: α-AMD on them still moves it, but the move is not kept, and the report says why.
#[test]
fn a_refinement_on_comirs_that_do_not_match_is_not_kept() {
    let truth = Affine2::translation(3.0, -2.0);
    let (fixed, _, w, h) = pair(&truth, (192, 160));
    let unrelated = common::scene(w, h, 77);
    let found = Affine2::translation(1.0, 0.5).compose(&truth);
    let (kept, what) = refine(&fixed, &unrelated, &found);
    assert!(!what.kept, "{what:?}");
    assert_eq!(kept, found);
    assert!(what.to_string().starts_with("not refined: the CoMIRs do not match"), "{what}");
}

#[test]
fn mi_finds_rotations_halfway_between_thirty_degree_starts_with_large_shifts() {
    // 15–20° and shifts of 10–15% of the width: between two of the old starts (0°, 30°) and
    // past the optimiser's capture range from either; the seeding grid reaches them.
    let (w, h) = (192, 192);
    let o = comir::register::pipeline::RegisterOptions { method: comir::register::pipeline::Method::Mi, kind: TransformKind::Rigid, ..Default::default() };
    let cases = [(15.0, 19.0, -17.0, 5), (-17.0, -24.0, 21.0, 6), (19.0, 27.0, 25.0, 7), (-16.0, 12.0, -28.0, 8)];
    let errors: Vec<f64> = cases
        .iter()
        .map(|&(degrees, tx, ty, seed)| {
            let truth = Affine2::translation(tx, ty).compose(&Affine2::rotation_about(f64::to_radians(degrees), 95.5, 95.5));
            let (fixed, moved) = common::view_pair(w, h, &truth, seed);
            let moving = common::other_modality(&moved);
            let reg = comir::register::pipeline::register_planes(fixed.view(), moving.view(), false, &o, &Silent).unwrap();
            common::corner_error(&reg.transform, &truth, w, h)
        })
        .collect();
    assert!(errors.iter().all(|&e| e < 2.0), "MI corner errors {errors:.2?} px");
}

/// CoMIRs of a briefly trained model share their structure but not yet their intensities:
/// one plane a monotone but far from linear map of the other. The polish must still land
/// within half a pixel (α-AMD, which compares equal intensity levels, was pulled off by the
/// map; on the wider evaluation's 2.8-min demo model the NCC candidate's α-AMD pose was
/// 1.2–2.0 px off where MI on the same CoMIRs was 0.4–0.5 px).
#[test]
fn a_pose_on_comirs_with_unequal_intensities_is_polished_to_a_fraction_of_a_pixel() {
    let truth = Affine2::rotation_about(-0.2, 95.5, 79.5).compose(&Affine2::translation(-4.0, 6.0));
    let (fixed, moving, w, h) = pair(&truth, (192, 160));
    let errors: Vec<f64> = [|v: f32| v.powi(3), |v: f32| 0.3 + 0.7 * v.sqrt(), |v: f32| (6.0 * (v - 0.5)).tanh()]
        .iter()
        .map(|map| {
            let moving = moving.mapv(map);
            let found = Affine2::translation(1.5, 1.0).compose(&truth);
            let (refined, what) = refine(&fixed, &moving, &found);
            assert!(what.kept, "{what:?}");
            common::corner_error(&refined, &truth, w, h)
        })
        .collect();
    assert!(errors.iter().all(|&e| e < 0.5), "corner errors after the polish {errors:.2?} px");
}
