//! How much to trust a registration: a score, the overlap, and a pass/fail flag with reason.
//!
//! A high score alone is not enough: a flat ramp, or two photographs dominated by the same black
//! round mask, score about as well at a wrong pose as at the right one. So the score is measured
//! only on the images' content (a flat background value covering ≥ 10 % of an image is left
//! out), and the found pose must be *distinct*: it must beat the same images shifted by a tenth
//! of their size and turned by 90°, 180° and 270° by a clear margin. A PASS therefore says
//! "this pose, and not a nearby or rotated one".
use super::transform::Affine2;
use super::warp::Bilinear;
use ndarray::{Array2, ArrayView2};
use serde::Serialize;

/// Which similarity scores a registration: NCC between CoMIRs (one modality), normalised MI
/// between the raw images of two modalities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    Ncc,
    Nmi,
}

impl Measure {
    /// As serialised and shown: "ncc", "nmi".
    pub fn name(self) -> &'static str {
        match self {
            Measure::Ncc => "ncc",
            Measure::Nmi => "nmi",
        }
    }

    fn min_score(self, th: &QualityThresholds) -> f64 {
        match self {
            Measure::Ncc => th.min_ncc,
            Measure::Nmi => th.min_nmi,
        }
    }
}

/// Why a verdict is what it is; its text (Display, and in report.json) is the message users read.
#[derive(Clone, Debug, PartialEq)]
pub enum Reason {
    Ok,
    LowOverlap { overlap: f64, min: f64 },
    FewInliers { inliers: usize, min: usize },
    NoMatches,
    /// The NCC search found no pose with texture on both CoMIRs over enough overlap.
    NoTexture,
    LowScore { measure: Measure, score: f64, min: f64 },
    /// A shifted or turned pose scores about as well: the match may be ambiguous.
    NotDistinct { measure: Measure, score: f64, rival: String, rival_score: f64 },
    /// On CoMIRs: another pose the exhaustive NCC search found scores about as well, so the
    /// CoMIRs match two places (a repetitive image, or unrelated ones matching by chance).
    SearchRival { score: f64, rival: String, rival_score: f64 },
    /// MI passed, but the CoMIRs of the same images match a rival pose better.
    ComirsDisagree { rival: String, rival_score: f64, score: f64 },
    /// The model's CoMIRs missed some crops of its own training pair (its training check).
    ModelMissesOwnCrops { registered: usize, crops: usize, median_error_px: f64 },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Ok => write!(f, "ok"),
            Reason::LowOverlap { overlap, min } => write!(f, "the images overlap by only {:.0}% after registration (at least {:.0}% expected)", overlap * 100.0, min * 100.0),
            Reason::FewInliers { inliers, min } => write!(f, "only {inliers} matching features agree (at least {min} expected)"),
            Reason::NoMatches => write!(f, "no consistent feature matches were found"),
            Reason::NoTexture => write!(f, "no pose keeps enough overlap with texture on both CoMIRs"),
            Reason::LowScore { measure, score, min } => write!(f, "low similarity after registration ({} {score:.3} < {min})", measure.name()),
            Reason::NotDistinct { measure, score, rival, rival_score } => {
                write!(f, "the pose is not distinct: the images {rival} score {rival_score:.3} against {score:.3} ({}); the match may be ambiguous or wrong", measure.name())
            }
            Reason::SearchRival { score, rival, rival_score } => {
                write!(f, "the pose is not distinct: the images {rival} score {rival_score:.3} against {score:.3} (ncc); the CoMIRs match two places, the match may be ambiguous or wrong")
            }
            Reason::ComirsDisagree { rival, rival_score, score } => {
                write!(f, "mutual information and the CoMIRs disagree: the CoMIRs match better with the moving image {rival} (ncc {rival_score:.3} against {score:.3})")
            }
            Reason::ModelMissesOwnCrops { registered, crops, median_error_px } => write!(
                f,
                "the model is not precise enough to vouch for this pose: its CoMIRs register only {registered} of {crops} test crops of its own training pair within 2 % (median error {median_error_px:.1} px); train it further (comir train --resume) or again with more steps, and check this result by eye"
            ),
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Quality {
    /// Similarity of the aligned images in [−1, 1] for NCC (CoMIRs), [0, 1] for NMI (raw).
    pub score: f64,
    pub measure: Measure,
    /// Fraction of the fixed image covered by the warped moving image.
    pub overlap: f64,
    /// RANSAC inliers (feature-based registration only).
    pub inliers: Option<usize>,
    /// The best score among the alternative poses (shifted, turned), and which one it was.
    pub rival_score: f64,
    pub rival: String,
    /// `reason == Reason::Ok`.
    pub passed: bool,
    pub reason: Reason,
}

impl Quality {
    /// The verdict when a method found no transform at all.
    pub fn failed(measure: Measure, reason: Reason) -> Quality {
        Quality { score: 0.0, measure, overlap: 0.0, inliers: Some(0), rival_score: 0.0, rival: String::new(), passed: false, reason }
    }

    /// Overrule a verdict (it then fails for `reason`).
    pub fn fail(&mut self, reason: Reason) {
        self.passed = false;
        self.reason = reason;
    }
}

/// A PASS says the pose is right to within 2 % of the width, as `comir eval` counts success.
/// CoMIRs that miss some of their own training crops by more than that (the model's training
/// check, the same 2 %) cannot back such a claim: their optimum may sit pixels away from the
/// true pose while every other test passes. So such a model's PASS becomes a FAIL that says
/// why; the pose itself is unchanged.
pub fn limit_to_model(quality: &mut Quality, registered: usize, crops: usize, median_error_px: f64) {
    if quality.passed && !model_vouches(registered, crops) {
        quality.fail(Reason::ModelMissesOwnCrops { registered, crops, median_error_px });
    }
}

/// Whether a model whose training check registered `registered` of `crops` test crops can
/// back a PASS (the one rule; the training summary warns by it too).
pub fn model_vouches(registered: usize, crops: usize) -> bool {
    registered >= crops
}

/// Thresholds for the pass/fail flag (calibrated with `comir eval`, see the README).
#[derive(Clone, Debug)]
pub struct QualityThresholds {
    pub min_ncc: f64,
    pub min_nmi: f64,
    pub min_overlap: f64,
    pub min_inliers: usize,
    /// (score − best rival score) / score must reach this.
    pub min_distinctness: f64,
    /// Least distinctness against the other poses an exhaustive search found (see
    /// `pipeline::Assessor::with_search_poses`).
    pub min_search_distinctness: f64,
}

impl Default for QualityThresholds {
    fn default() -> Self {
        QualityThresholds { min_ncc: 0.25, min_nmi: 0.015, min_overlap: 0.25, min_inliers: 8, min_distinctness: 0.33, min_search_distinctness: 0.33 }
    }
}

/// The grid step (pixels, both ways) that samples an image of `pixels` at about 40 000 points
/// for a score: the nearest step, so between 22 500 and 90 000 points (every pixel of an image
/// under 90 000). Rounded down, as it was, it read a 546×273 image at all of its 149 000
/// pixels, a dozen scores per verdict: 7 % of that registration (0.534 → 0.497 s, A/B).
pub fn score_step(pixels: usize) -> usize {
    (pixels as f64 / 40_000.0).sqrt().round().max(1.0) as usize
}

/// Normalised cross-correlation of fixed and the warped moving image over their overlap, and
/// the overlap fraction (subsampled to about 40 000 points, see [`score_step`]).
pub fn ncc_and_overlap(fixed: ArrayView2<f32>, moving: ArrayView2<f32>, t: &Affine2) -> (f64, f64) {
    let (h, w) = fixed.dim();
    let step = score_step(h * w);
    let (mut n, mut total) = (0.0f64, 0.0f64);
    let (mut sf, mut sm, mut sff, mut smm, mut sfm) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let moving = Bilinear::new(moving);
    for y in (0..h).step_by(step) {
        for x in (0..w).step_by(step) {
            total += 1.0;
            let (mx, my) = t.apply(x as f64, y as f64);
            let (Some(m), f) = (moving.at(mx, my), fixed[[y, x]]) else { continue };
            if !(m.is_finite() && f.is_finite()) {
                continue;
            }
            let (f, m) = (f as f64, m as f64);
            n += 1.0;
            sf += f;
            sm += m;
            sff += f * f;
            smm += m * m;
            sfm += f * m;
        }
    }
    if n < 16.0 {
        return (0.0, n / total.max(1.0));
    }
    let cov = sfm / n - sf / n * sm / n;
    let (vf, vm) = (sff / n - (sf / n).powi(2), smm / n - (sm / n).powi(2));
    let ncc = if vf > 1e-12 && vm > 1e-12 { cov / (vf * vm).sqrt() } else { 0.0 };
    (ncc, n / total)
}

/// The value of an image's flat background (a mask, zero padding, saturated glass), if one
/// exact value covers at least 10 % of it (of a regular sample of ~10⁵ pixels); of two that
/// cover as much, the one with the smaller bit pattern.
pub fn background_value(plane: ArrayView2<f32>) -> Option<f32> {
    let step = ((plane.len() / 100_000) as f64).sqrt().max(1.0) as usize;
    let samples = || plane.indexed_iter().filter(move |&((y, x), v)| y % step == 0 && x % step == 0 && v.is_finite()).map(|(_, v)| v.to_bits());
    // Misra–Gries with 10 counters: every value that fills more than 1/11 of the samples
    // (so every one that fills 10 %) still holds a counter at the end. A table of every
    // distinct value (10⁵ of them in a CoMIR) cost ~2 % of a 512² registration.
    let mut counters: Vec<(u32, usize)> = Vec::with_capacity(10);
    let mut n = 0usize;
    for bits in samples() {
        n += 1;
        if let Some(c) = counters.iter_mut().find(|c| c.0 == bits) {
            c.1 += 1;
        } else if counters.len() < 10 {
            counters.push((bits, 1));
        } else {
            counters.iter_mut().for_each(|c| c.1 -= 1);
            counters.retain(|c| c.1 > 0);
        }
    }
    // The candidates' exact counts.
    let mut exact: Vec<(u32, usize)> = counters.iter().map(|c| (c.0, 0)).collect();
    for bits in samples() {
        if let Some(c) = exact.iter_mut().find(|c| c.0 == bits) {
            c.1 += 1;
        }
    }
    let (bits, count) = exact.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))?;
    (count * 10 >= n && n > 0).then(|| f32::from_bits(bits))
}

/// `plane` with its flat background (see [`background_value`]) set to NaN: scores skip it.
pub fn content_only(plane: ArrayView2<f32>) -> Array2<f32> {
    match background_value(plane) {
        Some(b) => plane.mapv(|v| if v == b { f32::NAN } else { v }),
        None => plane.to_owned(),
    }
}

/// The poses a found transform must clearly beat: shifted by a tenth of the fixed image along
/// x and y, and turned by 90°, 180°, 270° about the fixed image's centre.
pub fn rival_poses(t: &Affine2, width: usize, height: usize) -> Vec<(String, Affine2)> {
    let (dx, dy) = (0.1 * width as f64, 0.1 * height as f64);
    let (cx, cy) = ((width as f64 - 1.0) / 2.0, (height as f64 - 1.0) / 2.0);
    let mut out: Vec<(String, Affine2)> = [(dx, 0.0), (-dx, 0.0), (0.0, dy), (0.0, -dy)]
        .iter()
        .map(|&(x, y)| (format!("shifted by ({x:.0}, {y:.0}) px"), t.compose(&Affine2::translation(x, y))))
        .collect();
    for deg in [90.0f64, 180.0, 270.0] {
        out.push((format!("turned by {deg:.0}°"), t.compose(&Affine2::rotation_about(deg.to_radians(), cx, cy))));
    }
    out
}

/// The verdict from the measured numbers.
pub fn judge(score: f64, measure: Measure, overlap: f64, inliers: Option<usize>, rival: (f64, String), th: &QualityThresholds) -> Quality {
    let min_score = measure.min_score(th);
    let distinctness = distinctness_of(score, rival.0);
    let reason = if overlap < th.min_overlap {
        Reason::LowOverlap { overlap, min: th.min_overlap }
    } else if let Some(i) = inliers.filter(|&i| i < th.min_inliers) {
        Reason::FewInliers { inliers: i, min: th.min_inliers }
    } else if score < min_score {
        Reason::LowScore { measure, score, min: min_score }
    } else if distinctness < th.min_distinctness {
        Reason::NotDistinct { measure, score, rival: rival.1.clone(), rival_score: rival.0 }
    } else {
        Reason::Ok
    };
    Quality { score, measure, overlap, inliers, rival_score: rival.0, rival: rival.1, passed: reason == Reason::Ok, reason }
}

/// (score − best rival) / score: how clearly the found pose beats the shifted and turned ones.
/// Unlike the raw scores (NCC on CoMIRs, NMI on originals), this is comparable across methods.
pub fn distinctness(q: &Quality) -> f64 {
    distinctness_of(q.score, q.rival_score)
}

fn distinctness_of(score: f64, rival: f64) -> f64 {
    if score > 0.0 { (score - rival) / score } else { f64::NEG_INFINITY }
}

/// Whether verdict `a` is more convincing than `b`: a pass beats a fail; between two passes
/// scored by the same measure (both on the CoMIRs, NCC) the pose that matches better wins;
/// otherwise the more distinct one (distinctness is comparable across measures, raw NCC and
/// NMI are not).
///
/// Why the score between two passes: on `comir eval` (demo pair, two models, and a synthetic
/// pair; 26 trials where α-AMD and MI on the CoMIRs both passed) the higher NCC was never the
/// worse pose by more than 0.4 px, while distinctness once kept α-AMD's pose 160 px off
/// (distinctness 0.40 against 0.39; NCC 0.29 against 0.47).
pub fn more_convincing(a: &Quality, b: &Quality) -> bool {
    match (a.passed, b.passed) {
        (true, false) => true,
        (false, true) => false,
        (true, true) if a.measure == b.measure => a.score > b.score,
        // Between two failures, one whose images barely overlap was scored on a sliver: its
        // score and distinctness say little (a synthetic-pair trial kept such an α-AMD pose,
        // 253 px off, over MI's right one that had just missed the distinctness bound).
        (false, false) if low_overlap(a) != low_overlap(b) => low_overlap(b),
        _ => distinctness(a) > distinctness(b),
    }
}

fn low_overlap(q: &Quality) -> bool {
    matches!(q.reason, Reason::LowOverlap { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A score samples about 40 000 points whatever the image's size: every pixel of a small
    /// image, between half and twice that of the others (546×273 took all 149 000 before).
    #[test]
    fn a_score_samples_about_forty_thousand_points() {
        for (w, h) in [(546, 273), (300, 300), (384, 384), (512, 512), (640, 640), (1024, 1024), (1536, 1536), (2000, 1000), (4000, 4000)] {
            let step = score_step(w * h);
            let points = w.div_ceil(step) * h.div_ceil(step);
            assert!((18_000..=90_000).contains(&points), "{w}×{h}: step {step}, {points} points");
        }
        assert_eq!(score_step(192 * 192), 1);
        assert_eq!(score_step(100 * 50), 1);
    }

    #[test]
    fn between_two_passes_on_the_comirs_the_better_match_wins() {
        let th = QualityThresholds::default();
        let rival = |s: f64| (s, "shifted by (19, 0) px".to_string());
        // The trial that distinctness got wrong: α-AMD 160 px off, MI on the CoMIRs right.
        let amd = judge(0.285, Measure::Ncc, 0.9, None, rival(0.171), &th);
        let mi = judge(0.471, Measure::Ncc, 0.9, None, rival(0.287), &th);
        assert!(amd.passed && mi.passed);
        assert!(distinctness(&amd) > distinctness(&mi));
        assert!(more_convincing(&mi, &amd) && !more_convincing(&amd, &mi));
        // Across measures (NMI on the originals, NCC on the CoMIRs) distinctness decides.
        let nmi = judge(0.05, Measure::Nmi, 0.9, None, rival(0.01), &th);
        assert!(more_convincing(&nmi, &mi) && !more_convincing(&mi, &nmi));
        // Between two failures, a pose on a sliver of overlap loses to one that overlaps.
        let sliver = judge(0.69, Measure::Ncc, 0.2, None, rival(0.2), &th);
        let not_distinct = judge(0.05, Measure::Nmi, 0.9, None, rival(0.034), &th);
        assert!(matches!(sliver.reason, Reason::LowOverlap { .. }) && matches!(not_distinct.reason, Reason::NotDistinct { .. }));
        assert!(distinctness(&sliver) > distinctness(&not_distinct));
        assert!(more_convincing(&not_distinct, &sliver) && !more_convincing(&sliver, &not_distinct));
        // A pass beats a fail whatever the scores.
        let failed = judge(0.9, Measure::Ncc, 0.9, None, rival(0.85), &th);
        assert!(!failed.passed && more_convincing(&amd, &failed));
    }

    #[test]
    fn each_check_gives_its_reason_and_only_ok_passes() {
        let th = QualityThresholds::default();
        let rival = |s: f64| (s, "turned by 90°".to_string());
        let q = judge(0.8, Measure::Ncc, 0.9, Some(40), rival(0.1), &th);
        assert!(q.passed && q.reason == Reason::Ok);
        assert!(matches!(judge(0.8, Measure::Ncc, 0.1, None, rival(0.1), &th).reason, Reason::LowOverlap { .. }));
        assert_eq!(judge(0.8, Measure::Ncc, 0.9, Some(3), rival(0.1), &th).reason, Reason::FewInliers { inliers: 3, min: th.min_inliers });
        assert!(matches!(judge(0.01, Measure::Nmi, 0.9, None, rival(0.0), &th).reason, Reason::LowScore { measure: Measure::Nmi, .. }));
        let q = judge(0.8, Measure::Ncc, 0.9, None, rival(0.7), &th);
        assert!(!q.passed && matches!(q.reason, Reason::NotDistinct { .. }));
        assert!(q.reason.to_string().contains("turned by 90° score 0.700 against 0.800 (ncc)"), "{}", q.reason);
        assert_eq!(serde_json::to_value(&q).unwrap()["measure"], "ncc");
        assert_eq!(serde_json::to_value(&q).unwrap()["reason"], q.reason.to_string());
    }

    /// The background is the value that the plain count of every value finds: the most
    /// frequent one when it covers 10 %, of two equally frequent ones the smaller bit pattern.
    #[test]
    fn the_background_is_the_most_frequent_value_covering_a_tenth() {
        let plain = |plane: &Array2<f32>| {
            let mut counts = std::collections::BTreeMap::<u32, usize>::new();
            plane.iter().filter(|v| v.is_finite()).for_each(|v| *counts.entry(v.to_bits()).or_default() += 1);
            let n: usize = counts.values().sum();
            let (&bits, &count) = counts.iter().rev().max_by_key(|&(_, c)| *c)?;
            (count * 10 >= n).then(|| f32::from_bits(bits))
        };
        let mut rng = crate::rng::Rng::new(8);
        // 200 × 200 < 10⁵ pixels: every pixel is sampled. Random content, then flat parts.
        let noise = Array2::from_shape_fn((200, 200), |_| rng.uniform() as f32);
        let with = |fill: &[(f32, usize)]| {
            let mut p = noise.clone();
            let mut at = 0;
            for &(v, count) in fill {
                p.iter_mut().skip(at).take(count).for_each(|x| *x = v);
                at += count;
            }
            p.iter_mut().skip(at).step_by(97).for_each(|x| *x = f32::NAN);
            p
        };
        let cases = [
            (with(&[]), None),
            (with(&[(0.0, 3000)]), None),
            (with(&[(0.0, 12_000)]), Some(0.0)),
            (with(&[(0.5, 5000), (1.0, 9000), (0.0, 6000)]), Some(1.0)),
            (with(&[(1.0, 8000), (0.25, 8000)]), Some(0.25)),
            (with(&[(-0.0, 8000), (0.0, 8000)]), Some(0.0)),
        ];
        for (plane, want) in &cases {
            assert_eq!(plain(plane), *want);
            assert_eq!(background_value(plane.view()).map(f32::to_bits), want.map(f32::to_bits));
        }
    }
}
