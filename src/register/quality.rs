//! How much to trust a registration: a score, the overlap, and a pass/fail flag with reason.
use super::transform::Affine2;
use super::warp::sample_bilinear;
use ndarray::ArrayView2;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Quality {
    /// Similarity of the aligned images in [−1, 1] for NCC (CoMIRs), [0, 1] for NMI (raw).
    pub score: f64,
    /// Which score: "ncc" or "nmi".
    pub measure: String,
    /// Fraction of the fixed image covered by the warped moving image.
    pub overlap: f64,
    /// RANSAC inliers (feature-based registration only).
    pub inliers: Option<usize>,
    pub passed: bool,
    /// Why it failed, or "ok".
    pub reason: String,
}

/// Thresholds for the pass/fail flag (calibrated with `comir eval`, see the README).
#[derive(Clone, Debug)]
pub struct QualityThresholds {
    pub min_ncc: f64,
    pub min_nmi: f64,
    pub min_overlap: f64,
    pub min_inliers: usize,
}

impl Default for QualityThresholds {
    fn default() -> Self {
        QualityThresholds { min_ncc: 0.25, min_nmi: 0.04, min_overlap: 0.25, min_inliers: 8 }
    }
}

/// Normalised cross-correlation of fixed and the warped moving image over their overlap, and
/// the overlap fraction (subsampled to about 40 000 points).
pub fn ncc_and_overlap(fixed: ArrayView2<f32>, moving: ArrayView2<f32>, t: &Affine2) -> (f64, f64) {
    let (h, w) = fixed.dim();
    let step = ((h * w / 40_000) as f64).sqrt().max(1.0) as usize;
    let (mut n, mut total) = (0.0f64, 0.0f64);
    let (mut sf, mut sm, mut sff, mut smm, mut sfm) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for y in (0..h).step_by(step) {
        for x in (0..w).step_by(step) {
            total += 1.0;
            let (mx, my) = t.apply(x as f64, y as f64);
            let (Some(m), f) = (sample_bilinear(&moving, mx, my), fixed[[y, x]]) else { continue };
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

/// The verdict from the measured numbers.
pub fn judge(score: f64, measure: &str, overlap: f64, inliers: Option<usize>, th: &QualityThresholds) -> Quality {
    let min_score = if measure == "ncc" { th.min_ncc } else { th.min_nmi };
    let reason = if overlap < th.min_overlap {
        format!("the images overlap by only {:.0}% after registration (at least {:.0}% expected)", overlap * 100.0, th.min_overlap * 100.0)
    } else if inliers.is_some_and(|i| i < th.min_inliers) {
        format!("only {} matching features agree (at least {} expected)", inliers.unwrap_or(0), th.min_inliers)
    } else if score < min_score {
        format!("low similarity after registration ({measure} {score:.3} < {min_score})")
    } else {
        "ok".into()
    };
    Quality { score, measure: measure.into(), overlap, inliers, passed: reason == "ok", reason }
}
