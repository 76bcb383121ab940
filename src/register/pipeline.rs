//! One call that registers two single-plane images with the chosen method, searches over
//! rotations when asked, and judges the result.
use super::alpha_amd::{self, AlphaAmdOptions};
use super::correlation::{self, CorrelationOptions};
use super::fit::{ransac, RansacOptions};
use super::mask::{self, Masks};
use super::matching::match_features;
use super::mi::{self, MiOptions};
use super::quality::{content_only, judge, ncc_and_overlap, rival_poses, Measure, Quality, QualityThresholds, Reason};
use super::sift::{detect_and_describe, SiftOptions};
use super::transform::{corner_error, Affine2, TransformKind};
use crate::error::{Error, Result};
use crate::image::filter::normalise_robust;
use crate::progress::{Monitor, SideBySide};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// With a model: SIFT + RANSAC, then the NCC search, then α-AMD and MI, until one passes
    /// the quality check; without: MI.
    Auto,
    Sift,
    /// Every rotation and shift scored by NCC on coarse CoMIRs (FFT), finished by α-AMD
    /// (down to half resolution when the refinement follows).
    Ncc,
    #[serde(rename = "alpha-amd")]
    AlphaAmd,
    Mi,
}

impl Method {
    /// The name files and front ends show (as serialised): "auto", "sift", "alpha-amd", "mi".
    pub fn name(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::Sift => "sift",
            Method::Ncc => "ncc",
            Method::AlphaAmd => "alpha-amd",
            Method::Mi => "mi",
        }
    }

    pub fn parse(s: &str) -> Result<Method> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Method::Auto),
            "sift" => Ok(Method::Sift),
            "ncc" | "correlation" => Ok(Method::Ncc),
            "amd" | "alpha-amd" | "alphaamd" | "α-amd" => Ok(Method::AlphaAmd),
            "mi" => Ok(Method::Mi),
            _ => Err(Error::UnknownChoice { what: "method", given: s.into(), choices: "auto, sift, ncc, amd or mi".into() }),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RegisterOptions {
    pub method: Method,
    pub kind: TransformKind,
    /// Search all rotations (12 starts) instead of small ones (0, ±0.4 rad).
    pub any_rotation: bool,
    pub sift: SiftOptions,
    /// Gaussian blur (σ, pixels) of both CoMIRs before SIFT: their finest texture differs
    /// between modalities and breaks descriptor matches (on the demo pair's unseen half,
    /// σ = 1 took the error from hundreds of pixels to 0.5 px).
    pub sift_blur: f64,
    pub ratio: f32,
    pub ransac: RansacOptions,
    pub amd: AlphaAmdOptions,
    pub mi: MiOptions,
    pub ncc: CorrelationOptions,
    pub thresholds: QualityThresholds,
    /// Where the intensity-based search starts: the fixed image's centre on the moving image's
    /// centre moved by this (pixels). 0 for whole images; for regions (ROIs) it is set so that
    /// the search starts where the regions lie in the whole images (see `crate::register_regions`).
    pub start_shift: (f64, f64),
    /// With a model: polish the pose found on the CoMIRs at full resolution by MI (see
    /// [`super::refine`], done by `crate::register`); off only to measure what it buys (the NCC
    /// candidate's α-AMD then runs at full resolution itself).
    pub refine: bool,
}

impl Default for RegisterOptions {
    fn default() -> Self {
        RegisterOptions {
            method: Method::Auto,
            kind: TransformKind::Rigid,
            any_rotation: true,
            sift: SiftOptions { max_features: 4000, ..Default::default() },
            sift_blur: 1.0,
            ratio: 0.9,
            ransac: RansacOptions { max_error: 3.0, ..Default::default() },
            amd: AlphaAmdOptions::default(),
            mi: MiOptions::default(),
            ncc: CorrelationOptions::default(),
            thresholds: QualityThresholds::default(),
            start_shift: (0.0, 0.0),
            refine: true,
        }
    }
}

/// One method a registration tried, and its verdict: `auto` tries several and keeps the most
/// convincing (see [`super::quality::more_convincing`]); the report lists them.
#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    pub method: Method,
    pub input: Input,
    pub passed: bool,
    /// How clearly its pose beats the shifted and turned ones (comparable across methods).
    pub distinctness: f64,
    /// Why it failed ("" when it passed).
    pub reason: String,
}

impl Candidate {
    pub fn of(method: Method, input: Input, q: &Quality) -> Candidate {
        Candidate { method, input, passed: q.passed, distinctness: super::quality::distinctness(q), reason: if q.passed { String::new() } else { q.reason.to_string() } }
    }

    /// "sift", "alpha-amd", "mi on the CoMIRs", "mi on the originals": SIFT and α-AMD only
    /// ever run on CoMIRs, MI on either.
    pub fn label(&self) -> String {
        label(self.method, self.input)
    }
}

/// What a registration method ran on: the two CoMIRs, or the original images (MI only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Input {
    Comirs,
    Originals,
}

/// "sift", "alpha-amd", "mi on the CoMIRs", "mi on the originals".
pub fn label(method: Method, input: Input) -> String {
    match (method, input) {
        (Method::Mi, Input::Comirs) => "mi on the CoMIRs".into(),
        (Method::Mi, Input::Originals) => "mi on the originals".into(),
        (m, _) => m.name().into(),
    }
}

/// "sift failed (…), alpha-amd passed (distinctness 0.62): alpha-amd kept" — what `auto` tried
/// and which it kept; empty when one method was tried.
pub fn explain_choice(candidates: &[Candidate], kept: Method, kept_input: Input) -> String {
    if candidates.len() < 2 {
        return String::new();
    }
    let tried: Vec<String> = candidates
        .iter()
        .map(|c| if c.passed { format!("{} passed (distinctness {:.2})", c.label(), c.distinctness) } else { format!("{} failed ({})", c.label(), c.reason) })
        .collect();
    let why = if candidates.iter().filter(|c| c.passed).count() == 1 && candidates.iter().any(|c| c.passed && c.method == kept && c.input == kept_input) {
        "the only one that passed"
    } else if candidates.iter().any(|c| c.passed) {
        "passed with the most distinct pose"
    } else {
        "none passed; the most distinct pose"
    };
    format!("tried {}: kept {} ({why})", tried.join(", "), label(kept, kept_input))
}

/// A pair of corresponding points (fixed, moving), in pixels.
pub type MatchPair = ((f64, f64), (f64, f64));

#[derive(Clone, Debug, Serialize)]
pub struct Registration {
    /// Fixed → moving, pixels.
    #[serde(skip)]
    pub transform: Affine2,
    pub kind: TransformKind,
    pub method: Method,
    /// Whether `method` ran on the CoMIRs or on the original images.
    pub input: Input,
    pub quality: Quality,
    /// RANSAC inlier correspondences (feature-based only).
    #[serde(skip)]
    pub matches: Vec<MatchPair>,
    /// (step, seconds)
    pub timings: Vec<(String, f64)>,
    /// The images were registered as k × k binned copies (1: at full resolution), because
    /// the pair was too large for working memory (see `crate::memory::bin_factor`).
    pub binning: usize,
    /// Every method tried, in order, with its verdict (one for a chosen method).
    pub candidates: Vec<Candidate>,
    /// The final polish on the CoMIRs (with a model; see [`super::refine`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refinement: Option<super::refine::Refinement>,
    /// The poses the NCC search found on the CoMIRs (none where it did not run): a pose taken
    /// later (a far refinement) must stand out from them too, as every candidate did.
    #[serde(skip)]
    pub search_poses: Vec<Affine2>,
}

impl Registration {
    /// Rotation angle (degrees), scale and translation (pixels) of the fixed → moving map.
    pub fn decompose(&self) -> (f64, f64, (f64, f64)) {
        self.transform.decompose()
    }
}

/// Judges transforms between two planes: the score on their content only (flat backgrounds
/// left out) and the best of the shifted and turned rival poses (see [`super::quality`]).
pub struct Assessor<'a> {
    fixed: ArrayView2<'a, f32>,
    moving: ArrayView2<'a, f32>,
    fixed_content: Array2<f32>,
    moving_content: Array2<f32>,
    monomodal: bool,
    bins: usize,
    thresholds: QualityThresholds,
    /// Poses a global search found (fixed → moving): a pose must also beat those of them that
    /// lie elsewhere (see [`Assessor::with_search_poses`]).
    search_poses: Vec<Affine2>,
}

impl<'a> Assessor<'a> {
    /// `monomodal`: CoMIRs (NCC judges); otherwise raw images of two modalities (NMI judges).
    /// Scores are measured inside `masks` only.
    pub fn new(fixed: ArrayView2<'a, f32>, moving: ArrayView2<'a, f32>, masks: Masks, monomodal: bool, o: &RegisterOptions) -> Assessor<'a> {
        // Each image's own pass (a background search, a copy): side by side.
        let (fixed_content, moving_content) = if monomodal {
            rayon::join(|| content_only(fixed), || content_only(moving))
        } else {
            rayon::join(|| mi::prepare_for_score(fixed), || mi::prepare_for_score(moving))
        };
        let (fixed_content, moving_content) = (mask::outside_to_nan(fixed_content, masks.fixed), mask::outside_to_nan(moving_content, masks.moving));
        Assessor { fixed, moving, fixed_content, moving_content, monomodal, bins: o.mi.bins, thresholds: o.thresholds.clone(), search_poses: vec![] }
    }

    /// Judge with the poses an exhaustive search found as rivals too. Why: the usual rivals
    /// (the pose shifted and turned) are the pose's own neighbours, but the best of very many
    /// poses of two unrelated images can pass against them (MI on two unrelated scenes' planes,
    /// searched at any rotation, passed at NCC 0.25; the NCC search's best passed at 0.31). A
    /// pose that does not stand out from the other places the search found is not a match.
    pub fn with_search_poses(self, poses: Vec<Affine2>) -> Assessor<'a> {
        Assessor { search_poses: poses, ..self }
    }

    fn score(&self, t: &Affine2) -> f64 {
        if self.monomodal {
            ncc_and_overlap(self.fixed_content.view(), self.moving_content.view(), t).0
        } else {
            mi::normalised_mi_prepared(self.fixed_content.view(), self.moving_content.view(), t, self.bins)
        }
    }

    /// The quality verdict of the fixed → moving transform `t`.
    pub fn assess(&self, t: &Affine2, inliers: Option<usize>) -> Quality {
        self.assess_among(t, inliers, &self.search_poses)
    }

    /// [`Assessor::assess`] with `search_poses` as the poses a global search found (see
    /// [`Assessor::with_search_poses`]).
    pub fn assess_among(&self, t: &Affine2, inliers: Option<usize>, search_poses: &[Affine2]) -> Quality {
        let (h, w) = self.fixed.dim();
        // The poses are scored side by side (each score is one pass over ~40 000 samples, a
        // dozen per verdict, and verdicts are many: at 1 MP they were 50 ms of one core), then
        // compared in order: the first of equal scores wins, as one after the other.
        let best_of = |poses: Vec<(String, Affine2)>| {
            let scores: Vec<f64> = poses.par_iter().map(|(_, r)| self.score(r)).collect();
            scores.into_iter().zip(poses).map(|(score, (what, _))| (score, what)).fold((f64::NEG_INFINITY, String::new()), |best, c| if c.0 > best.0 { c } else { best })
        };
        let ((_, overlap), (score, rival)) = rayon::join(|| ncc_and_overlap(self.fixed, self.moving, t), || rayon::join(|| self.score(t), || best_of(rival_poses(t, w, h))));
        let mut quality = judge(score, if self.monomodal { Measure::Ncc } else { Measure::Nmi }, overlap, inliers, rival, &self.thresholds);
        // Search poses within a tenth of the image of this one are this pose, not rivals.
        let elsewhere: Vec<(String, Affine2)> = search_poses
            .iter()
            .filter(|p| corner_error(p, t, w, h) > 0.1 * w.max(h) as f64)
            .map(|p| (format!("at another pose the NCC search found (turned by {:.0}°)", p.decompose().0), *p))
            .collect();
        let (rival_score, rival) = best_of(elsewhere);
        // The same margin as against the pose's own neighbours. A smaller one (0.15) would keep
        // a right pose on a tiled mosaic (0.39 at a distant pose against 0.53), but passed two
        // unrelated scenes searched within ±30° (NCC 0.31): a wrong PASS costs more than the
        // slower fallback (MI on the originals) that such mosaics get now.
        if quality.passed && quality.score > 0.0 && (quality.score - rival_score) / quality.score < self.thresholds.min_search_distinctness {
            let score = quality.score;
            quality.fail(Reason::SearchRival { score, rival, rival_score });
        }
        quality
    }
}

/// A second opinion on a passing MI verdict from the CoMIRs of the same two images: MI between
/// weakly related stains can prefer a wrong pose (in `comir eval`, 2 of 100 MI passes were
/// turned by ~180°, their NMI above the true pose's). The CoMIRs, however weak, must not match
/// a rival pose (shifted, turned) better than the found one; if they do, the verdict is FAIL.
/// `on_comirs` judges poses on the two CoMIRs (an [`Assessor`] made with `monomodal`).
pub fn confirm_with_comirs(quality: &mut Quality, fixed_to_moving: &Affine2, on_comirs: &Assessor, o: &RegisterOptions) {
    if !quality.passed {
        return;
    }
    let second = on_comirs.assess(fixed_to_moving, None);
    // The CoMIRs have an opinion only where they match something: a rival they score below
    // the NCC a pass needs is noise (CoMIRs of tissue the model never saw), not a better pose.
    if second.rival_score > second.score && second.rival_score >= o.thresholds.min_ncc {
        quality.fail(Reason::ComirsDisagree { rival: second.rival, rival_score: second.rival_score, score: second.score });
    }
}

/// α-AMD's options for this registration.
fn amd_options(o: &RegisterOptions) -> AlphaAmdOptions {
    AlphaAmdOptions { kind: o.kind, start_shift: o.start_shift, ..o.amd.clone() }
}

/// The poses the NCC search finds on two CoMIRs (see [`correlation::search`]), best first.
fn ncc_poses(fixed: ArrayView2<f32>, moving: ArrayView2<f32>, masks: Masks, o: &RegisterOptions) -> Vec<correlation::Pose> {
    let angles = if o.kind == super::transform::TransformKind::Translation { vec![0.0] } else { correlation::angles(o.any_rotation, &o.ncc) };
    correlation::search(fixed, moving, masks, &angles, &o.ncc)
}

/// Whether the search's best two poses score alike on the coarse copies (closer than the
/// distinctness a pass needs against them): then the NCC candidate usually fails, as ambiguous
/// or for want of similarity, and `auto` goes on to MI on the originals. Only a forecast, for
/// scheduling: in `make eval`'s cell and astronaut parts it held in 43 of 47 cases (the 4 others
/// passed), and among 100 of the demo part none was alike.
fn search_alike(poses: &[correlation::Pose], o: &RegisterOptions) -> bool {
    match poses {
        [best, second, ..] => best.ncc <= 0.0 || (best.ncc - second.ncc) / best.ncc < o.thresholds.min_search_distinctness,
        _ => false,
    }
}

/// The NCC candidate: the poses the search ranked best (`initials`), each finished by α-AMD on
/// the finer pyramid levels, the best of them judged (the others are its rivals).
fn ncc_candidate(fixed: ArrayView2<f32>, moving: ArrayView2<f32>, masks: Masks, initials: &[Affine2], o: &RegisterOptions, assessor: &Assessor, monitor: &dyn Monitor) -> Result<Registration> {
    let mut timings = vec![];
    if initials.is_empty() {
        return Ok(Registration { transform: Affine2::IDENTITY, kind: o.kind, method: Method::Ncc, input: Input::Comirs, quality: Quality::failed(Measure::Ncc, Reason::NoTexture), matches: vec![], timings, binning: 1, candidates: vec![], refinement: None, search_poses: vec![] });
    }
    let t1 = Instant::now();
    let (fh, fw) = fixed.dim();
    let (mh, mw) = moving.dim();
    let factor = correlation::coarse_factor(fh.max(fw).max(mh).max(mw), &o.ncc);
    // With the refinement on (MI on the CoMIRs at full resolution, see `super::refine`), α-AMD
    // stops at half resolution: its full-resolution level cost half the polish (1 MP: 1.9–2.3 s)
    // and α-AMD is less precise there than MI on CoMIRs of unequal intensities. Only here: the
    // search's poses are already close. α-AMD's own search stopped at half resolution ended
    // 5–8 px off in 3 of 50 cases of `make eval` that its full-resolution level had brought to
    // 0.2–0.3 px, beyond what the refinement may move.
    let amd = AlphaAmdOptions { finest_factor: if o.refine { 2 } else { 1 }, ..amd_options(o) };
    let transform = alpha_amd::polish(fixed, moving, masks, initials, factor, &amd, monitor)?.transform;
    timings.push(("ncc polish (α-AMD)".into(), t1.elapsed().as_secs_f64()));
    Ok(Registration { quality: assessor.assess(&transform, None), transform, kind: o.kind, method: Method::Ncc, input: Input::Comirs, matches: vec![], timings, binning: 1, candidates: vec![], refinement: None, search_poses: vec![] })
}

fn start_angles(any_rotation: bool) -> Vec<f64> {
    if any_rotation {
        (0..12).map(|i| (i as f64 * 30.0).to_radians()).collect()
    } else {
        vec![0.0, 0.4, -0.4]
    }
}

fn feature_based(fixed: ArrayView2<f32>, moving: ArrayView2<f32>, masks: Masks, o: &RegisterOptions, timings: &mut Vec<(String, f64)>) -> Result<Option<(Affine2, Vec<MatchPair>)>> {
    let t0 = Instant::now();
    let prepare = |p: ArrayView2<f32>| normalise_robust(crate::image::filter::gaussian_blur(p, o.sift_blur).view());
    let (f, m) = rayon::join(|| prepare(fixed), || prepare(moving));
    let (ff, fm) = rayon::join(|| detect_and_describe(f.view(), &o.sift), || detect_and_describe(m.view(), &o.sift));
    // Keypoints outside a mask are dropped (their descriptors still see the context).
    let (ff, fm) = (ff.retain(|k| mask::contains(masks.fixed, k.x, k.y)), fm.retain(|k| mask::contains(masks.moving, k.x, k.y)));
    timings.push(("sift".into(), t0.elapsed().as_secs_f64()));
    let t1 = Instant::now();
    let matches = match_features(&ff, &fm, o.ratio, true)?;
    let src: Vec<(f64, f64)> = matches.iter().map(|mm| (ff.keypoints[mm.fixed].x, ff.keypoints[mm.fixed].y)).collect();
    let dst: Vec<(f64, f64)> = matches.iter().map(|mm| (fm.keypoints[mm.moving].x, fm.keypoints[mm.moving].y)).collect();
    let fitted = ransac(o.kind, &src, &dst, &o.ransac);
    timings.push(("matching+ransac".into(), t1.elapsed().as_secs_f64()));
    let Some(r) = fitted else { return Ok(None) };
    let pairs = src.into_iter().zip(dst).zip(&r.inliers).filter_map(|(p, &ok)| ok.then_some(p)).collect();
    Ok(Some((r.transform, pairs)))
}

/// Register `moving` onto `fixed`. With `monomodal` (CoMIRs), SIFT and α-AMD apply and NCC
/// judges; otherwise (raw images of different modalities) MI is used and NMI judges.
pub fn register_planes(fixed: ArrayView2<f32>, moving: ArrayView2<f32>, monomodal: bool, o: &RegisterOptions, monitor: &dyn Monitor) -> Result<Registration> {
    register_planes_masked(fixed, moving, Masks::default(), monomodal, o, monitor)
}

/// [`register_planes`] with only the pixels inside `masks` taking part (see [`super::mask`]).
pub fn register_planes_masked(fixed: ArrayView2<f32>, moving: ArrayView2<f32>, masks: Masks, monomodal: bool, o: &RegisterOptions, monitor: &dyn Monitor) -> Result<Registration> {
    register_planes_beside(fixed, moving, masks, monomodal, o, monitor, None).map(|(reg, _)| reg)
}

/// Work that `auto` needs exactly when every candidate on the CoMIRs fails: MI on the original
/// images (see `crate::register_with_comirs`), run under the monitor it is given (which says
/// cancelled once its result is not needed).
pub type Fallback<'f> = &'f (dyn Fn(&dyn Monitor) -> Result<Registration> + Sync);

/// [`register_planes_masked`], with `fallback` run side by side with other work of `auto` on
/// the CoMIRs: beside the NCC candidate's polish where the NCC search finds two places alike
/// (see [`search_alike`]), else beside α-AMD and MI on the CoMIRs when `auto` gets that far.
/// Its result comes back beside the registration (unused when a CoMIR candidate passes). Why:
/// on pairs whose CoMIRs match poorly or ambiguously the CoMIR candidates fail and the fallback
/// runs anyway, and MI (its starts one after the other, one core at its coarsest level) fills
/// the core the other work leaves idle: the same results in less time (interleaved A/B, medians
/// of 5: the 1 MP mosaic's polish and fallback 0.73 → 0.47 s; a 546×273 mosaic's three
/// searches 0.90 → 0.79 s; `bench/ab-session36.txt`).
/// Not started when a candidate passed before either point (the caller runs it after, if
/// needed); stopped when a candidate passes after it started (its result is then an error of
/// no consequence: the caller reads it only when every candidate failed).
pub fn register_planes_beside(fixed: ArrayView2<f32>, moving: ArrayView2<f32>, masks: Masks, monomodal: bool, o: &RegisterOptions, monitor: &dyn Monitor, fallback: Option<Fallback>) -> Result<(Registration, Option<Result<Registration>>)> {
    let Some(fallback) = fallback else {
        return run_candidates(fixed, moving, masks, monomodal, o, monitor, None).map(|reg| (reg, None));
    };
    // The fallback runs as a task of its own (the pool's other core takes it up), under a
    // monitor that this registration stops once the fallback's result cannot be used: a
    // candidate passed, or the registration failed. A fallback started on a forecast that
    // did not hold then ends at its next iteration instead of running to its end.
    let unneeded = Stoppable { inner: monitor, stopped: AtomicBool::new(false) };
    let result = std::sync::Mutex::new(None);
    let (reg, candidates_done) = rayon::scope(|scope| {
        // A task no core took up before a candidate passed is not begun at all.
        let start = || scope.spawn(|_| if !unneeded.is_cancelled() { *result.lock().unwrap_or_else(|e| e.into_inner()) = Some(fallback(&unneeded)) });
        let reg = run_candidates(fixed, moving, masks, monomodal, o, monitor, Some(&start));
        if !matches!(&reg, Ok(r) if !r.quality.passed) {
            unneeded.stopped.store(true, Ordering::Relaxed);
        }
        (reg, Instant::now())
    });
    let mut reg = reg?;
    let fallback_result = result.into_inner().unwrap_or_else(|e| e.into_inner());
    // The fallback's time after the candidates ended (the scope waits for it) is a step of the
    // profile too: without it the steps of a 1 MP registration fell 0.11 s short of its total.
    if fallback_result.is_some() {
        reg.timings.push(("mi on the originals (after the candidates)".into(), candidates_done.elapsed().as_secs_f64()));
    }
    Ok((reg, fallback_result))
}

/// The fallback's monitor: cancelled when the user cancels or once `stopped` is set. Its
/// progress is not passed on: the fallback runs beside the CoMIR work, whose progress the bar
/// shows (two searches reporting into one bar would make it jump between their fractions).
struct Stoppable<'a> {
    inner: &'a dyn Monitor,
    stopped: AtomicBool,
}

impl Monitor for Stoppable<'_> {
    fn report(&self, _: &crate::progress::Progress) {}
    fn is_cancelled(&self) -> bool {
        self.stopped.load(Ordering::Relaxed) || self.inner.is_cancelled()
    }
}

/// The candidates of [`register_planes_beside`]; `start_fallback` (when given) starts the
/// fallback, at most once: beside the polish where the search finds two places alike, else
/// beside α-AMD and MI on the CoMIRs.
fn run_candidates(fixed: ArrayView2<f32>, moving: ArrayView2<f32>, masks: Masks, monomodal: bool, o: &RegisterOptions, monitor: &dyn Monitor, start_fallback: Option<&(dyn Fn() + Sync)>) -> Result<Registration> {
    let (fh, fw) = fixed.dim();
    let (mh, mw) = moving.dim();
    if fh < 16 || fw < 16 || mh < 16 || mw < 16 {
        return Err(Error::UnsupportedImage(format!("images of {fw}×{fh} and {mw}×{mh} are too small to register (16×16 at least)")));
    }
    masks.check((fh, fw), (mh, mw))?;
    let method = if !monomodal && o.method != Method::Mi {
        if o.method != Method::Auto {
            return Err(Error::Parameter("SIFT, NCC and α-AMD need a CoMIR model (the raw images differ in modality); choose MI or give a model".into()));
        }
        Method::Mi
    } else {
        o.method
    };
    let mut timings = Vec::new();
    let mut assessor = Assessor::new(fixed, moving, masks, monomodal, o);
    let mut sift_result: Option<Registration> = None;
    if matches!(method, Method::Sift | Method::Auto) {
        let found = feature_based(fixed, moving, masks, o, &mut timings)?;
        let reg = match found {
            Some((t, pairs)) => Registration { quality: assessor.assess(&t, Some(pairs.len())), transform: t, kind: o.kind, method: Method::Sift, input: Input::Comirs, matches: pairs, timings: timings.clone(), binning: 1, candidates: vec![], refinement: None, search_poses: vec![] },
            None => Registration {
                transform: Affine2::IDENTITY,
                kind: o.kind,
                method: Method::Sift,
                input: Input::Comirs,
                quality: Quality::failed(Measure::Ncc, Reason::NoMatches),
                matches: vec![],
                timings: timings.clone(),
                binning: 1,
                candidates: vec![],
                refinement: None,
                search_poses: vec![],
            },
        };
        let reg = Registration { candidates: vec![Candidate::of(Method::Sift, Input::Comirs, &reg.quality)], ..reg };
        if method == Method::Sift || reg.quality.passed {
            return Ok(reg);
        }
        sift_result = Some(reg);
    }
    // On CoMIRs the NCC search looks at every pose: its best are a candidate of their own, and
    // every later candidate must stand out from them (see `Assessor::with_search_poses`).
    // SIFT's consensus of keypoints is evidence of its own and is judged without them.
    let mut poses = vec![];
    let mut ambiguous = false;
    let mut fallback_started = false;
    if monomodal {
        let t0 = Instant::now();
        let found = ncc_poses(fixed, moving, masks, o);
        timings.push(("ncc search".into(), t0.elapsed().as_secs_f64()));
        // Where the search finds two places alike, the fallback starts now, beside the polish:
        // the polish leaves part of a core idle, MI on the originals one core at its coarsest
        // level. When the candidate passes after all, that work is thrown away.
        if let Some(start) = start_fallback.filter(|_| method == Method::Auto && search_alike(&found, o)) {
            start();
            fallback_started = true;
        }
        poses = found.into_iter().map(|p| p.transform).collect();
        assessor = assessor.with_search_poses(poses.clone());
    }
    if matches!(method, Method::Ncc | Method::Auto) {
        let mut reg = ncc_candidate(fixed, moving, masks, &poses, o, &assessor, monitor)?;
        if fallback_started {
            for (step, _) in reg.timings.iter_mut() {
                step.push_str(" beside mi on the originals");
            }
        }
        let mut candidates: Vec<Candidate> = sift_result.as_ref().map(|s| s.candidates.clone()).unwrap_or_default();
        candidates.push(Candidate::of(Method::Ncc, Input::Comirs, &reg.quality));
        let mut so_far = timings.clone();
        so_far.append(&mut reg.timings);
        let reg = Registration { candidates, timings: so_far, search_poses: poses.clone(), ..reg };
        if method == Method::Ncc || reg.quality.passed {
            return Ok(reg);
        }
        // The search's best pose passed every test but standing out from the other places it
        // found: the CoMIRs match two places. α-AMD and MI on the same CoMIRs would have to beat
        // those very rivals by the same margin, starting from poses the search already saw, so
        // they are not run (at 1 MP they cost 2.8 s): MI on the original images decides.
        ambiguous = matches!(reg.quality.reason, Reason::SearchRival { .. });
        sift_result = Some(match sift_result {
            Some(s) if !super::quality::more_convincing(&reg.quality, &s.quality) => Registration { candidates: reg.candidates, timings: reg.timings, ..s },
            _ => reg,
        });
        timings = sift_result.as_ref().map(|r| r.timings.clone()).unwrap_or_default();
    }
    // The intensity-based candidates. On CoMIRs `auto` runs both α-AMD and MI and keeps the
    // more convincing: in `comir eval` on the demo pair MI on the CoMIRs succeeded in 48 of 50
    // cases (median 0.2 px) where α-AMD's search found the basin in 14; but α-AMD won on the
    // held-out SHG/bright-field pairs, so neither is dropped on the evidence of one pair.
    let input = if monomodal { Input::Comirs } else { Input::Originals };
    let intensity: &[Method] = match method {
        Method::Auto if ambiguous => &[],
        Method::Auto if monomodal => &[Method::AlphaAmd, Method::Mi],
        Method::AlphaAmd => &[Method::AlphaAmd],
        _ => &[Method::Mi],
    };
    let mut candidates: Vec<Candidate> = sift_result.as_ref().map(|s| s.candidates.clone()).unwrap_or_default();
    let mut best = sift_result;
    let starts = start_angles(o.any_rotation);
    let search = |used: Method, monitor: &dyn Monitor| -> Result<Affine2> {
        Ok(match used {
            Method::Mi => mi::register(fixed, moving, masks, &starts, &MiOptions { kind: o.kind, start_shift: o.start_shift, ..o.mi.clone() }, monitor)?.transform,
            _ => alpha_amd::register(fixed, moving, masks, &starts, &amd_options(o), monitor)?.transform,
        })
    };
    // The two searches are independent (each has its own random stream): run side by side,
    // MI's starts — one after the other — beside α-AMD's parallel ones; then judged in order,
    // so the result is the same as one after the other. The profile gets their joint time:
    // steps that overlap must not be added up.
    let t0 = Instant::now();
    let found: Vec<Result<Affine2>> = match intensity {
        [first, second] => {
            if let Some(start) = start_fallback.filter(|_| !fallback_started) {
                start();
                fallback_started = true;
            }
            let bar = SideBySide::new(monitor, 2);
            let (first, second) = (|| search(*first, &bar.part(0)), || search(*second, &bar.part(1)));
            if fallback_started {
                // The other core runs the fallback; this one runs MI on the CoMIRs (one core at
                // its coarsest level), then α-AMD, whose parallel parts the other core joins
                // when its MI is done. α-AMD first left MI on the CoMIRs to the end (546×273
                // mosaic: 0.86 s for the three, against 0.77–0.81 s in this order).
                let (b, a) = rayon::join(second, first);
                vec![a, b]
            } else {
                let (a, b) = rayon::join(first, second);
                vec![a, b]
            }
        }
        _ => intensity.iter().map(|&m| search(m, monitor)).collect(),
    };
    if !intensity.is_empty() {
        let mut step = intensity.iter().map(|m| m.name()).collect::<Vec<_>>().join(" + ");
        if intensity.len() > 1 {
            step.push_str(" (side by side)");
        }
        if fallback_started {
            step.push_str(" beside mi on the originals");
        }
        timings.push((step, t0.elapsed().as_secs_f64()));
    }
    for (&used, result) in intensity.iter().zip(found) {
        let transform = result?;
        let quality = assessor.assess(&transform, None);
        candidates.push(Candidate::of(used, input, &quality));
        let reg = Registration { quality, transform, kind: o.kind, method: used, input, matches: vec![], timings: vec![], binning: 1, candidates: vec![], refinement: None, search_poses: vec![] };
        // Auto: the earlier candidate stays unless this verdict is the more convincing one.
        best = match best {
            Some(b) if !super::quality::more_convincing(&reg.quality, &b.quality) => Some(b),
            _ => Some(reg),
        };
    }
    let best = best.ok_or_else(|| Error::Internal("auto ran no candidate".into()))?;
    Ok(Registration { candidates, timings, search_poses: poses, ..best })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fallback's monitor: the user's cancel goes through, once stopped it says cancelled
    /// (which ends MI at its next iteration), and its progress stays out of the caller's bar.
    #[test]
    fn the_fallback_monitor_is_cancelled_by_the_user_or_a_stop_and_reports_nothing() {
        let user = crate::progress::CancelFlag::default();
        let m = Stoppable { inner: &user, stopped: AtomicBool::new(false) };
        assert!(!m.is_cancelled());
        user.cancel();
        assert!(m.is_cancelled());
        let counted = super::super::driver::Counted::default();
        let m = Stoppable { inner: &counted, stopped: AtomicBool::new(false) };
        m.report(&crate::progress::Progress { done: 3, total: 7, message: String::new() });
        assert_eq!(*counted.0.lock().unwrap_or_else(|e| e.into_inner()), (0, 0));
        assert!(!m.is_cancelled());
        m.stopped.store(true, Ordering::Relaxed);
        assert!(m.is_cancelled());
    }

    #[test]
    fn method_names_are_their_serialised_names_and_parse_back() {
        for m in [Method::Auto, Method::Sift, Method::Ncc, Method::AlphaAmd, Method::Mi] {
            assert_eq!(serde_json::to_value(m).unwrap(), m.name());
            assert_eq!(Method::parse(m.name()).unwrap(), m);
        }
    }
}

#[cfg(test)]
mod choice_tests {
    use super::*;

    #[test]
    fn the_choice_names_every_candidate_and_why_the_kept_one_won() {
        let c = |method, input, passed, distinctness| Candidate { method, input, passed, distinctness, reason: if passed { String::new() } else { "low similarity".into() } };
        assert_eq!(
            explain_choice(&[c(Method::Sift, Input::Comirs, false, 0.1), c(Method::AlphaAmd, Input::Comirs, true, 0.62)], Method::AlphaAmd, Input::Comirs),
            "tried sift failed (low similarity), alpha-amd passed (distinctness 0.62): kept alpha-amd (the only one that passed)"
        );
        assert!(explain_choice(&[c(Method::Sift, Input::Comirs, true, 0.5), c(Method::Mi, Input::Comirs, true, 0.7)], Method::Mi, Input::Comirs).ends_with("kept mi on the CoMIRs (passed with the most distinct pose)"));
        // MI on the CoMIRs and on the originals are told apart.
        let both = [c(Method::Mi, Input::Comirs, false, 0.1), c(Method::Mi, Input::Originals, true, 0.4)];
        assert_eq!(explain_choice(&both, Method::Mi, Input::Originals), "tried mi on the CoMIRs failed (low similarity), mi on the originals passed (distinctness 0.40): kept mi on the originals (the only one that passed)");
        assert_eq!(explain_choice(&[c(Method::Sift, Input::Comirs, true, 0.5)], Method::Sift, Input::Comirs), "");
    }
}
