//! The last step of a registration with a model: whatever found the pose (SIFT on the CoMIRs,
//! MI on the originals), α-AMD polishes it on the CoMIRs at full resolution.
//!
//! Why: MI between two stains finds the right basin but its optimum sits a pixel or more away
//! from the truth (on the demo pair's unseen half, half of MI's successes were 2–2.5 px off),
//! while the CoMIRs, trained to coincide where the tissue coincides, place it to a fraction of
//! a pixel. Only the finest level runs: the basin is already found.
use super::alpha_amd::{self, AlphaAmdOptions};
use super::mask::Masks;
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
    /// disagree with the pose found, and a local step should not overrule a global search.
    pub kept: bool,
}

impl std::fmt::Display for Refinement {
    /// "refined on the CoMIRs (moved 0.84 px)" or why the refinement was not kept.
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        if self.kept {
            write!(f, "refined on the CoMIRs (moved {:.2} px)", self.moved_px)
        } else {
            write!(f, "not refined: on the CoMIRs the pose would move {:.2} px, more than a local correction may", self.moved_px)
        }
    }
}

/// The largest correction a refinement may make: 3 % of the fixed image's larger side, at
/// least 4 pixels (the success criterion of the evaluation is 2 % of the width).
pub fn max_move(width: usize, height: usize) -> f64 {
    (0.03 * width.max(height) as f64).max(4.0)
}

/// Refine the fixed → moving `found` on the two CoMIR planes; returns the transform to keep
/// and what happened.
pub fn refine_on_comirs(fixed_comir: ArrayView2<f32>, moving_comir: ArrayView2<f32>, masks: Masks, found: &Affine2, options: &AlphaAmdOptions, monitor: &dyn Monitor) -> Result<(Affine2, Refinement)> {
    let refined = alpha_amd::refine(fixed_comir, moving_comir, masks, found, options, monitor)?.transform;
    let (h, w) = fixed_comir.dim();
    let moved_px = corner_error(&refined, found, w, h);
    let kept = moved_px.is_finite() && moved_px <= max_move(w, h);
    Ok((if kept { refined } else { *found }, Refinement { moved_px, kept }))
}
