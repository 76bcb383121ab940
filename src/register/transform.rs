//! The 2D affine transform and its one direction.
//!
//! **Direction.** Like BigWarp, ITK and elastix, a stored transform maps *fixed (target)
//! coordinates to moving coordinates*: `moving = A · fixed + t`. That is the backward map
//! used to resample the moving image onto the fixed grid. The inverse is computed on demand,
//! never stored. Pixel coordinates put pixel centres at integer indices; calibrated
//! coordinates are pixel index × pixel size.
use crate::error::{Error, Result};
use crate::image::Calibration;

/// Which family a transform belongs to (what a registration estimated).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransformKind {
    Translation,
    Rigid,
    Similarity,
    Affine,
}

/// `[x', y'] = [[a, b, tx], [c, d, ty]] · [x, y, 1]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine2 {
    pub m: [[f64; 3]; 2],
}

impl Affine2 {
    pub const IDENTITY: Affine2 = Affine2 { m: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]] };

    pub fn new(m: [[f64; 3]; 2]) -> Affine2 {
        Affine2 { m }
    }

    /// From the six numbers a, b, tx, c, d, ty (how the front ends pass a matrix).
    pub fn from_row_packed([a, b, tx, c, d, ty]: [f64; 6]) -> Affine2 {
        Affine2 { m: [[a, b, tx], [c, d, ty]] }
    }

    /// The six numbers a, b, tx, c, d, ty.
    pub fn row_packed(&self) -> [f64; 6] {
        let m = &self.m;
        [m[0][0], m[0][1], m[0][2], m[1][0], m[1][1], m[1][2]]
    }

    pub fn translation(tx: f64, ty: f64) -> Affine2 {
        Affine2 { m: [[1.0, 0.0, tx], [0.0, 1.0, ty]] }
    }

    /// Scale by `s` and rotate by `angle` radians (counter-clockwise in x-right/y-down image
    /// axes means clockwise on screen) about the point (cx, cy).
    pub fn similarity_about(angle: f64, scale: f64, cx: f64, cy: f64) -> Affine2 {
        let (s, c) = angle.sin_cos();
        let (a, b, cc, d) = (scale * c, -scale * s, scale * s, scale * c);
        Affine2 { m: [[a, b, cx - a * cx - b * cy], [cc, d, cy - cc * cx - d * cy]] }
    }

    pub fn rotation_about(angle: f64, cx: f64, cy: f64) -> Affine2 {
        Self::similarity_about(angle, 1.0, cx, cy)
    }

    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        let m = &self.m;
        (m[0][0] * x + m[0][1] * y + m[0][2], m[1][0] * x + m[1][1] * y + m[1][2])
    }

    /// Rotation angle (degrees), scale (√|det|) and translation of this map.
    pub fn decompose(&self) -> (f64, f64, (f64, f64)) {
        let m = &self.m;
        let angle = (m[1][0] - m[0][1]).atan2(m[0][0] + m[1][1]).to_degrees();
        (angle, self.determinant().abs().sqrt(), (m[0][2], m[1][2]))
    }

    /// `self ∘ other`: apply `other` first, then `self`.
    pub fn compose(&self, other: &Affine2) -> Affine2 {
        let (a, b) = (&self.m, &other.m);
        let mut m = [[0.0; 3]; 2];
        for r in 0..2 {
            m[r][0] = a[r][0] * b[0][0] + a[r][1] * b[1][0];
            m[r][1] = a[r][0] * b[0][1] + a[r][1] * b[1][1];
            m[r][2] = a[r][0] * b[0][2] + a[r][1] * b[1][2] + a[r][2];
        }
        Affine2 { m }
    }

    pub fn determinant(&self) -> f64 {
        self.m[0][0] * self.m[1][1] - self.m[0][1] * self.m[1][0]
    }

    pub fn is_finite(&self) -> bool {
        self.m.iter().flatten().all(|v| v.is_finite())
    }

    /// Check the transform can be used: finite, and not collapsing the plane onto a line.
    pub fn validate(&self) -> Result<()> {
        if !self.is_finite() {
            return Err(Error::Transform("the matrix contains NaN or infinite values".into()));
        }
        let scale = self.m.iter().flat_map(|r| &r[..2]).fold(0.0f64, |s, v| s.max(v.abs()));
        if self.determinant().abs() <= 1e-12 * scale.max(1.0).powi(2) {
            return Err(Error::Transform(format!(
                "the matrix is singular (determinant {:e}): it maps the image onto a line or a point",
                self.determinant()
            )));
        }
        Ok(())
    }

    pub fn inverse(&self) -> Result<Affine2> {
        self.validate()?;
        let det = self.determinant();
        let m = &self.m;
        let (a, b, c, d) = (m[1][1] / det, -m[0][1] / det, -m[1][0] / det, m[0][0] / det);
        Ok(Affine2 { m: [[a, b, -(a * m[0][2] + b * m[1][2])], [c, d, -(c * m[0][2] + d * m[1][2])]] })
    }

    /// Largest absolute difference of the matrix entries.
    pub fn max_difference(&self, other: &Affine2) -> f64 {
        self.m.iter().flatten().zip(other.m.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max)
    }

    /// The same map in calibrated (world) units: world = pixel index × pixel size.
    pub fn to_calibrated(&self, fixed: &Calibration, moving: &Calibration) -> Affine2 {
        let to_world = Affine2 { m: [[moving.pixel_width, 0.0, 0.0], [0.0, moving.pixel_height, 0.0]] };
        let from_world = Affine2 { m: [[1.0 / fixed.pixel_width, 0.0, 0.0], [0.0, 1.0 / fixed.pixel_height, 0.0]] };
        to_world.compose(self).compose(&from_world)
    }

    /// Inverse of [`Affine2::to_calibrated`].
    pub fn from_calibrated(&self, fixed: &Calibration, moving: &Calibration) -> Affine2 {
        let to_pixels = Affine2 { m: [[1.0 / moving.pixel_width, 0.0, 0.0], [0.0, 1.0 / moving.pixel_height, 0.0]] };
        let from_pixels = Affine2 { m: [[fixed.pixel_width, 0.0, 0.0], [0.0, fixed.pixel_height, 0.0]] };
        to_pixels.compose(self).compose(&from_pixels)
    }
}

/// Mean distance (pixels) between where two transforms send the four corners of a
/// width × height image: MultiRegEval's registration error, used by the evaluation and tests.
pub fn corner_error(a: &Affine2, b: &Affine2, width: usize, height: usize) -> f64 {
    let (w, h) = (width as f64 - 1.0, height as f64 - 1.0);
    [(0.0, 0.0), (w, 0.0), (0.0, h), (w, h)]
        .iter()
        .map(|&(x, y)| {
            let (p, q) = (a.apply(x, y), b.apply(x, y));
            ((p.0 - q.0).powi(2) + (p.1 - q.1).powi(2)).sqrt()
        })
        .sum::<f64>()
        / 4.0
}
