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
use super::mask::Masks;
use super::mi::{self, MiOptions};
use super::quality::Quality;
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
    /// Whether the refined pose was kept: a move larger than [`max_move`] means the CoMIRs
    /// disagree with the pose found, and a local step should not overrule a global search;
    /// CoMIRs that fail their check there do not know better than the pose found.
    pub kept: bool,
    /// Why it was not kept ("" when kept).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub why_not: String,
}

impl std::fmt::Display for Refinement {
    /// "refined on the CoMIRs (moved 0.84 px)" or why the refinement was not kept.
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        if self.kept {
            write!(f, "refined on the CoMIRs (moved {:.2} px)", self.moved_px)
        } else {
            write!(f, "not refined: {}", self.why_not)
        }
    }
}

/// The largest correction a refinement may make: 3 % of the fixed image's larger side, at
/// least 4 pixels (the success criterion of the evaluation is 2 % of the width).
pub fn max_move(width: usize, height: usize) -> f64 {
    (0.03 * width.max(height) as f64).max(4.0)
}

/// Refine the fixed → moving `found` on the two CoMIR planes; returns the transform to keep
/// and what happened. `comirs_verdict` judges a pose on the CoMIRs (the registration's NCC
/// check).
pub fn refine_on_comirs(fixed_comir: ArrayView2<f32>, moving_comir: ArrayView2<f32>, masks: Masks, found: &Affine2, options: &MiOptions, comirs_verdict: &dyn Fn(&Affine2) -> Quality, monitor: &dyn Monitor) -> Result<(Affine2, Refinement)> {
    let refined = mi::refine(fixed_comir, moving_comir, masks, found, options, monitor)?.transform;
    let (h, w) = fixed_comir.dim();
    let moved_px = corner_error(&refined, found, w, h);
    let why_not = if !(moved_px.is_finite() && moved_px <= max_move(w, h)) {
        format!("on the CoMIRs the pose would move {moved_px:.2} px, more than a local correction may")
    } else {
        let q = comirs_verdict(&refined);
        if q.passed { String::new() } else { format!("the CoMIRs do not match well enough to correct the pose ({})", q.reason) }
    };
    let kept = why_not.is_empty();
    Ok((if kept { refined } else { *found }, Refinement { moved_px, kept, why_not }))
}
