//! Transform families as parameter vectors for the intensity-based optimisers.
//!
//! Parameters act in centred coordinates: `y − c_moving = A(θ) (x − c_fixed) + t(θ)`, so that
//! rotations and scalings turn about the image centres. Each parameter has a scale that makes
//! a unit step move image points by about one pixel, so one step length fits all.
use super::transform::{Affine2, TransformKind};

#[derive(Clone, Debug)]
pub struct Parametrisation {
    pub kind: TransformKind,
    pub fixed_centre: (f64, f64),
    pub moving_centre: (f64, f64),
    /// Root mean square distance of fixed points from the centre (pixels).
    pub radius: f64,
}

impl Parametrisation {
    pub fn count(&self) -> usize {
        match self.kind {
            TransformKind::Translation => 2,
            TransformKind::Rigid => 3,
            TransformKind::Similarity => 4,
            TransformKind::Affine => 6,
        }
    }

    /// Parameters of the transform that rotates by `angle` about the centres.
    pub fn initial(&self, angle: f64) -> Vec<f64> {
        match self.kind {
            TransformKind::Translation => vec![0.0, 0.0],
            TransformKind::Rigid => vec![angle, 0.0, 0.0],
            TransformKind::Similarity => vec![angle, 1.0, 0.0, 0.0],
            TransformKind::Affine => {
                let (s, c) = angle.sin_cos();
                vec![c, -s, s, c, 0.0, 0.0]
            }
        }
    }

    /// Scale of each parameter: translations 1, the others 1/radius (a unit change of angle,
    /// scale or matrix entry moves a point at the mean radius by `radius` pixels).
    pub fn scales(&self) -> Vec<f64> {
        let r = 1.0 / self.radius.max(1.0);
        match self.kind {
            TransformKind::Translation => vec![1.0, 1.0],
            TransformKind::Rigid => vec![r, 1.0, 1.0],
            TransformKind::Similarity => vec![r, r, 1.0, 1.0],
            TransformKind::Affine => vec![r, r, r, r, 1.0, 1.0],
        }
    }

    /// (A, t) in centred coordinates.
    pub fn matrix(&self, p: &[f64]) -> ([[f64; 2]; 2], [f64; 2]) {
        match self.kind {
            TransformKind::Translation => ([[1.0, 0.0], [0.0, 1.0]], [p[0], p[1]]),
            TransformKind::Rigid => {
                let (s, c) = p[0].sin_cos();
                ([[c, -s], [s, c]], [p[1], p[2]])
            }
            TransformKind::Similarity => {
                let (s, c) = p[0].sin_cos();
                ([[p[1] * c, -p[1] * s], [p[1] * s, p[1] * c]], [p[2], p[3]])
            }
            TransformKind::Affine => ([[p[0], p[1]], [p[2], p[3]]], [p[4], p[5]]),
        }
    }

    /// ∂A/∂p_k and ∂t/∂p_k for every parameter k.
    pub fn derivatives(&self, p: &[f64]) -> Vec<([[f64; 2]; 2], [f64; 2])> {
        let zero = [[0.0; 2]; 2];
        let tx = (zero, [1.0, 0.0]);
        let ty = (zero, [0.0, 1.0]);
        match self.kind {
            TransformKind::Translation => vec![tx, ty],
            TransformKind::Rigid => {
                let (s, c) = p[0].sin_cos();
                vec![([[-s, -c], [c, -s]], [0.0, 0.0]), tx, ty]
            }
            TransformKind::Similarity => {
                let (s, c) = p[0].sin_cos();
                vec![([[-p[1] * s, -p[1] * c], [p[1] * c, -p[1] * s]], [0.0, 0.0]), ([[c, -s], [s, c]], [0.0, 0.0]), tx, ty]
            }
            TransformKind::Affine => {
                let e = |r: usize, c: usize| {
                    let mut m = zero;
                    m[r][c] = 1.0;
                    (m, [0.0, 0.0])
                };
                vec![e(0, 0), e(0, 1), e(1, 0), e(1, 1), tx, ty]
            }
        }
    }

    /// The pixel-coordinate transform fixed → moving.
    pub fn to_affine(&self, p: &[f64]) -> Affine2 {
        let (a, t) = self.matrix(p);
        let (cf, cm) = (self.fixed_centre, self.moving_centre);
        let tx = cm.0 + t[0] - a[0][0] * cf.0 - a[0][1] * cf.1;
        let ty = cm.1 + t[1] - a[1][0] * cf.0 - a[1][1] * cf.1;
        Affine2::new([[a[0][0], a[0][1], tx], [a[1][0], a[1][1], ty]])
    }

    /// Parameters of an affine map (the closest member of the family for rigid/similarity).
    pub fn from_affine(&self, t: &Affine2) -> Vec<f64> {
        let m = &t.m;
        let (cf, cm) = (self.fixed_centre, self.moving_centre);
        let shift = [m[0][0] * cf.0 + m[0][1] * cf.1 + m[0][2] - cm.0, m[1][0] * cf.0 + m[1][1] * cf.1 + m[1][2] - cm.1];
        let angle = (m[1][0] - m[0][1]).atan2(m[0][0] + m[1][1]);
        match self.kind {
            TransformKind::Translation => vec![shift[0], shift[1]],
            TransformKind::Rigid => vec![angle, shift[0], shift[1]],
            TransformKind::Similarity => vec![angle, t.determinant().abs().sqrt(), shift[0], shift[1]],
            TransformKind::Affine => vec![m[0][0], m[0][1], m[1][0], m[1][1], shift[0], shift[1]],
        }
    }
}
