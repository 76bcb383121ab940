//! The last step of a registration with a model: whatever found the pose (SIFT on the CoMIRs,
//! the NCC search, α-AMD, MI on the originals), MI polishes it on the CoMIRs at full
//! resolution.
//!
//! Why: MI between two stains finds the right basin but its optimum sits a pixel or more away
//! from the truth (on the demo pair's unseen half, half of MI's successes were 2–2.5 px off),
//! while the CoMIRs, trained to coincide where the tissue coincides, place it to a fraction of
//! a pixel. Only the finest level runs: the basin is already found.
//!
//! Why MI and not α-AMD: the CoMIRs of a briefly trained model share their structure but not
//! yet their intensities, and α-AMD, which matches equal intensity levels, is pulled off by
//! the difference (on the 2.8-min demo model of the wider evaluation the NCC candidate's α-AMD
//! pose was 1.2–2.0 px off; polished by MI, 0.4–0.6 px). MI asks only for a consistent relation.
//!
//! Only where the CoMIRs match: a model that never saw such tissue (its training images lacked
//! it) gives CoMIRs that do not coincide, and polishing on them moves a right pose off (on a
//! synthetic cell pair whose model saw only background, MI's 1 px became 2–5 px). So the polish
//! is kept only when the CoMIRs pass their own check (NCC, distinct from shifted and turned
//! poses) at the refined pose.
//!
//! Far moves: a pose found a few percent of the image off (a near miss of SIFT or α-AMD) is
//! still in MI's reach, and keeping its verdict would be a silent wrong result. A move past
//! [`max_move`] is kept when the CoMIRs, judged as strictly as every candidate was, match
//! better there (see [`refine_on_comirs`]); the verdict then comes from the pose kept.
use super::mask::Masks;
use super::mi::{self, MiOptions};
use super::pipeline::Registration;
use super::quality::{more_convincing, Quality};
use super::transform::{corner_error, Affine2};
use crate::error::Result;
use crate::progress::Monitor;
use ndarray::ArrayView2;
use serde::Serialize;

/// What the refinement did (report.json).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Refinement {
    /// Mean displacement of the fixed image's corners between the pose found and the refined
    /// one (pixels).
    pub moved_px: f64,
    /// Whether the refined pose was kept: only where the CoMIRs pass their own check. A move
    /// larger than [`max_move`] is kept only where the CoMIRs also match better there than at
    /// the pose found (see [`refine_on_comirs`]).
    pub kept: bool,
    /// A kept move larger than [`max_move`]: the pose found was off, and its verdict no
    /// longer describes the pose kept (the registration takes the CoMIRs' verdict instead).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub beyond_local: bool,
    /// Why it was not kept ("" when kept).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub why_not: String,
}

impl std::fmt::Display for Refinement {
    /// "refined on the CoMIRs (moved 0.84 px)" or why the refinement was not kept.
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        if self.kept && self.beyond_local {
            write!(f, "refined on the CoMIRs (moved {:.2} px: they match there better than at the pose found)", self.moved_px)
        } else if self.kept {
            write!(f, "refined on the CoMIRs (moved {:.2} px)", self.moved_px)
        } else {
            write!(f, "not refined: {}", self.why_not)
        }
    }
}

/// The largest correction a refinement makes on the CoMIRs' check alone: 3 % of the fixed
/// image's larger side, at least 4 pixels (the success criterion of the evaluation is 2 % of
/// the width). A larger one must also beat the pose found on the CoMIRs.
pub fn max_move(width: usize, height: usize) -> f64 {
    (0.03 * width.max(height) as f64).max(4.0)
}

/// The largest move a refinement may make at all: a quarter of the fixed image's larger side.
/// Beyond that MI's local search has not polished the pose but gone elsewhere (on the
/// synthetic astronaut pair it went 111 px, from one wrong pose to another).
pub fn max_far_move(width: usize, height: usize) -> f64 {
    (0.25 * width.max(height) as f64).max(max_move(width, height))
}

/// How a refinement judges poses on the CoMIRs: `near` a pose within [`max_move`] of the pose
/// found (the registration's NCC check), `far` a pose beyond it and the pose found it would
/// replace (the same check with the poses of the NCC search as rivals, which every candidate
/// had to beat; `--method sift` runs no search, and its far moves face the plain check).
pub struct Verdicts<'a> {
    pub near: &'a dyn Fn(&Affine2) -> Quality,
    pub far: &'a dyn Fn(&Affine2) -> Quality,
}

/// Refine the fixed → moving `found` on the two CoMIR planes; returns the transform to keep,
/// what happened, and, for a kept move beyond [`max_move`], the CoMIRs' verdict at the pose
/// kept (the verdict of the pose found no longer applies).
///
/// Why a far move may be kept: a pose found several pixels off (SIFT's fit to a few keypoints,
/// α-AMD stopped in a neighbouring basin) kept its PASS while MI on the CoMIRs went to the
/// truth: on the synthetic astronaut pair, α-AMD's pose 8.7 px off passed (NCC 0.42) and the
/// refinement that moved it 8.0 px was refused as too far. Why only up to [`max_far_move`] and
/// where the CoMIRs match better, against the search's poses too: a local step must not
/// overrule a global search on CoMIRs that match other places as well.
pub fn refine_on_comirs(fixed_comir: ArrayView2<f32>, moving_comir: ArrayView2<f32>, masks: Masks, found: &Affine2, options: &MiOptions, verdicts: &Verdicts, monitor: &dyn Monitor) -> Result<(Affine2, Refinement, Option<Quality>)> {
    let refined = mi::refine(fixed_comir, moving_comir, masks, found, options, monitor)?.transform;
    let (h, w) = fixed_comir.dim();
    Ok(judge_move(&refined, found, (w, h), verdicts))
}

/// Whether the pose `refined` replaces `found` (see [`refine_on_comirs`]) on a fixed image of
/// `size` (width, height).
fn judge_move(refined: &Affine2, found: &Affine2, (w, h): (usize, usize), verdicts: &Verdicts) -> (Affine2, Refinement, Option<Quality>) {
    let moved_px = corner_error(refined, found, w, h);
    let not_kept = |why_not: String| (*found, Refinement { moved_px, kept: false, beyond_local: false, why_not }, None);
    if !moved_px.is_finite() {
        return not_kept("the refinement on the CoMIRs diverged".into());
    }
    if moved_px <= max_move(w, h) {
        let q = (verdicts.near)(refined);
        return if q.passed { (*refined, Refinement { moved_px, kept: true, beyond_local: false, why_not: String::new() }, None) } else { not_kept(format!("the CoMIRs do not match well enough to correct the pose ({})", q.reason)) };
    }
    let too_far = format!("on the CoMIRs the pose would move {moved_px:.2} px, more than a local correction may");
    if moved_px > max_far_move(w, h) {
        return not_kept(too_far);
    }
    let q = (verdicts.far)(refined);
    if !q.passed {
        return not_kept(format!("{too_far}, to where they do not match well enough ({})", q.reason));
    }
    if !more_convincing(&q, &(verdicts.far)(found)) {
        return not_kept(format!("{too_far}, and they match the pose found as well"));
    }
    (*refined, Refinement { moved_px, kept: true, beyond_local: true, why_not: String::new() }, Some(q))
}

/// Refine `reg`'s pose on the CoMIRs `cf`, `cm` (see [`refine_on_comirs`]) and record it: the
/// pose kept, what the refinement did, and, after a far move, the CoMIRs' verdict in place of
/// the pose found's (a verdict must describe the pose it comes with).
pub fn refine_registration(reg: &mut Registration, cf: ArrayView2<f32>, cm: ArrayView2<f32>, masks: Masks, options: &MiOptions, verdicts: &Verdicts, monitor: &dyn Monitor) -> Result<()> {
    let (transform, refinement, verdict) = refine_on_comirs(cf, cm, masks, &reg.transform, options, verdicts, monitor)?;
    reg.transform = transform;
    reg.refinement = Some(refinement);
    if let Some(q) = verdict {
        reg.quality = q;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::register::quality::{Measure, Reason};

    /// A verdict that passes with `score` (or fails) wherever it is asked.
    fn verdict(passed: bool, score: f64) -> Quality {
        let mut q = Quality::failed(Measure::Ncc, Reason::Ok);
        q.passed = passed;
        q.score = score;
        q
    }

    /// Every bound on a 200 × 100 image (local correction 6 px, far move 50 px), with checks
    /// that pass everywhere and score the refined pose higher unless told otherwise.
    #[test]
    fn moves_are_kept_within_the_local_bound_or_where_the_comirs_match_better_up_to_a_quarter() {
        let found = Affine2::IDENTITY;
        let size = (200, 100);
        assert_eq!((max_move(200, 100), max_far_move(200, 100)), (6.0, 50.0));
        let by = |dx: f64| Affine2::translation(dx, 0.0);
        let better_away = |t: &Affine2| verdict(true, 0.5 + t.m[0][2].abs() / 1000.0);
        let passes = Verdicts { near: &better_away, far: &better_away };
        for (dx, kept, beyond) in [(5.0, true, false), (20.0, true, true), (49.0, true, true), (51.0, false, false), (f64::NAN, false, false)] {
            let (t, what, q) = judge_move(&by(dx), &found, size, &passes);
            assert_eq!((what.kept, what.beyond_local, q.is_some()), (kept, beyond, beyond), "{dx}: {what:?}");
            assert_eq!(t, if kept { by(dx) } else { found }, "{dx}");
        }
        // Far: the far check decides, not the near one.
        let fails = |_: &Affine2| verdict(false, 0.9);
        let (_, what, _) = judge_move(&by(20.0), &found, size, &Verdicts { near: &better_away, far: &fails });
        assert!(!what.kept && what.why_not.contains("do not match well enough"), "{what:?}");
        let (_, what, _) = judge_move(&by(5.0), &found, size, &Verdicts { near: &fails, far: &better_away });
        assert!(!what.kept, "{what:?}");
        // Far, where the pose found scores as high: the pose found stays.
        let flat = |_: &Affine2| verdict(true, 0.5);
        let (t, what, _) = judge_move(&by(20.0), &found, size, &Verdicts { near: &flat, far: &flat });
        assert!(!what.kept && t == found && what.why_not.contains("match the pose found as well"), "{what:?}");
    }
}
