//! Fitting transforms to point correspondences: least squares for each transform family,
//! and RANSAC with local optimisation (refit on the inliers) for data with outliers.
use super::transform::{Affine2, TransformKind};
use crate::rng::Rng;

pub type Point = (f64, f64);

impl TransformKind {
    /// Point pairs needed to determine a transform of this kind.
    pub fn minimal_points(self) -> usize {
        match self {
            TransformKind::Translation => 1,
            TransformKind::Rigid | TransformKind::Similarity => 2,
            TransformKind::Affine => 3,
        }
    }

    pub fn parse(s: &str) -> crate::Result<TransformKind> {
        match s.to_ascii_lowercase().as_str() {
            "translation" => Ok(TransformKind::Translation),
            "rigid" | "rotation" => Ok(TransformKind::Rigid),
            "similarity" => Ok(TransformKind::Similarity),
            "affine" => Ok(TransformKind::Affine),
            _ => Err(crate::Error::UnknownChoice { what: "transform type", given: s.into(), choices: "translation, rigid, similarity or affine".into() }),
        }
    }
}

fn centroid(points: &[Point]) -> Point {
    let n = points.len() as f64;
    let (sx, sy) = points.iter().fold((0.0, 0.0), |(a, b), p| (a + p.0, b + p.1));
    (sx / n, sy / n)
}

/// Least-squares transform of `kind` mapping `src[i]` to `dst[i]`; None if degenerate.
pub fn fit(kind: TransformKind, src: &[Point], dst: &[Point]) -> Option<Affine2> {
    if src.len() != dst.len() || src.len() < kind.minimal_points() {
        return None;
    }
    let (cs, cd) = (centroid(src), centroid(dst));
    let t = match kind {
        TransformKind::Translation => Affine2::translation(cd.0 - cs.0, cd.1 - cs.1),
        TransformKind::Rigid | TransformKind::Similarity => {
            // Closed form (Umeyama): the rotation maximising Σ d·R s of centred points.
            let (mut a, mut b, mut ss) = (0.0, 0.0, 0.0);
            for (p, q) in src.iter().zip(dst) {
                let (sx, sy, dx, dy) = (p.0 - cs.0, p.1 - cs.1, q.0 - cd.0, q.1 - cd.1);
                a += sx * dx + sy * dy;
                b += sx * dy - sy * dx;
                ss += sx * sx + sy * sy;
            }
            if ss < 1e-12 {
                return None;
            }
            let theta = b.atan2(a);
            let scale = if kind == TransformKind::Similarity { (a * a + b * b).sqrt() / ss } else { 1.0 };
            let (s, c) = theta.sin_cos();
            let (m00, m01, m10, m11) = (scale * c, -scale * s, scale * s, scale * c);
            Affine2::new([[m00, m01, cd.0 - m00 * cs.0 - m01 * cs.1], [m10, m11, cd.1 - m10 * cs.0 - m11 * cs.1]])
        }
        TransformKind::Affine => {
            // Normal equations of the centred problem: [sxx sxy; sxy syy] · row = rhs.
            let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
            let (mut rx, mut ry) = ([0.0; 2], [0.0; 2]);
            for (p, q) in src.iter().zip(dst) {
                let (sx, sy, dx, dy) = (p.0 - cs.0, p.1 - cs.1, q.0 - cd.0, q.1 - cd.1);
                sxx += sx * sx;
                sxy += sx * sy;
                syy += sy * sy;
                rx[0] += sx * dx;
                rx[1] += sy * dx;
                ry[0] += sx * dy;
                ry[1] += sy * dy;
            }
            let det = sxx * syy - sxy * sxy;
            if det.abs() < 1e-9 * (sxx * syy).max(1e-12) {
                return None;
            }
            let solve = |r: [f64; 2]| ((syy * r[0] - sxy * r[1]) / det, (sxx * r[1] - sxy * r[0]) / det);
            let (a, b) = solve(rx);
            let (c, d) = solve(ry);
            Affine2::new([[a, b, cd.0 - a * cs.0 - b * cs.1], [c, d, cd.1 - c * cs.0 - d * cs.1]])
        }
    };
    t.is_finite().then_some(t)
}

#[derive(Clone, Debug)]
pub struct RansacOptions {
    /// Largest distance (pixels) between T(src) and dst for an inlier.
    pub max_error: f64,
    pub max_iterations: usize,
    /// Stop early once this confident that a better sample will not be found.
    pub confidence: f64,
    pub seed: u64,
}

impl Default for RansacOptions {
    fn default() -> Self {
        RansacOptions { max_error: 3.0, max_iterations: 5000, confidence: 0.999, seed: 0 }
    }
}

#[derive(Clone, Debug)]
pub struct RansacResult {
    pub transform: Affine2,
    pub inliers: Vec<bool>,
    pub inlier_count: usize,
    /// Root mean square residual of the inliers (pixels).
    pub rms_error: f64,
}

fn score(t: &Affine2, src: &[Point], dst: &[Point], max_error: f64) -> (Vec<bool>, usize, f64) {
    let mut sq = 0.0;
    let inliers: Vec<bool> = src
        .iter()
        .zip(dst)
        .map(|(p, q)| {
            let (x, y) = t.apply(p.0, p.1);
            let e = (x - q.0).powi(2) + (y - q.1).powi(2);
            let ok = e <= max_error * max_error;
            if ok {
                sq += e;
            }
            ok
        })
        .collect();
    let count = inliers.iter().filter(|&&v| v).count();
    (inliers, count, if count > 0 { (sq / count as f64).sqrt() } else { f64::INFINITY })
}

fn select(points: &[Point], mask: &[bool]) -> Vec<Point> {
    points.iter().zip(mask).filter_map(|(p, &m)| m.then_some(*p)).collect()
}

/// RANSAC: fit minimal samples, keep the transform with most inliers, refitting on its
/// inliers (local optimisation) whenever a new best is found.
pub fn ransac(kind: TransformKind, src: &[Point], dst: &[Point], options: &RansacOptions) -> Option<RansacResult> {
    let n = src.len();
    let k = kind.minimal_points();
    if n < k || n != dst.len() {
        return None;
    }
    let mut rng = Rng::new(options.seed);
    let mut best: Option<RansacResult> = None;
    let mut needed = options.max_iterations;
    let mut iteration = 0;
    while iteration < needed.min(options.max_iterations) {
        iteration += 1;
        let mut idx: Vec<usize> = Vec::with_capacity(k);
        while idx.len() < k {
            let i = rng.below(n);
            if !idx.contains(&i) {
                idx.push(i);
            }
        }
        let (s, d): (Vec<Point>, Vec<Point>) = idx.iter().map(|&i| (src[i], dst[i])).unzip();
        let Some(mut t) = fit(kind, &s, &d) else { continue };
        let (mut inliers, mut count, mut rms) = score(&t, src, dst, options.max_error);
        if best.as_ref().is_some_and(|b| count <= b.inlier_count) {
            continue;
        }
        // Local optimisation: refit on the inliers while that gains inliers.
        for _ in 0..4 {
            let Some(t2) = fit(kind, &select(src, &inliers), &select(dst, &inliers)) else { break };
            let (i2, c2, r2) = score(&t2, src, dst, options.max_error);
            if c2 < count || (c2 == count && r2 >= rms) {
                break;
            }
            (t, inliers, count, rms) = (t2, i2, c2, r2);
        }
        let ratio = count as f64 / n as f64;
        let p_good = ratio.powi(k as i32);
        if p_good > 0.0 {
            needed = if p_good >= 1.0 { 1 } else { ((1.0 - options.confidence).ln() / (1.0 - p_good).ln()).ceil() as usize };
        }
        best = Some(RansacResult { transform: t, inliers, inlier_count: count, rms_error: rms });
    }
    best
}
