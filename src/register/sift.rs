//! SIFT keypoints and descriptors (Lowe 2004), written here: Gaussian scale space, DoG
//! extrema with sub-pixel refinement and edge rejection, orientation histograms, 4×4×8
//! descriptors; an upright mode skips orientation (for images known not to be rotated).
//! Input planes are expected in about [0, 1] (the contrast threshold assumes it).
use crate::image::filter::gaussian_blur;
use crate::lanes::wide_lanes;
use ndarray::{Array2, ArrayView1, ArrayView2};
use rayon::prelude::*;

#[derive(Clone, Debug)]
pub struct SiftOptions {
    /// Scales sampled per octave.
    pub octave_layers: usize,
    /// Blur of the first scale.
    pub sigma: f64,
    /// Minimum |DoG| contrast (for [0, 1] images).
    pub contrast_threshold: f64,
    /// Maximum ratio of principal curvatures (edge rejection).
    pub edge_threshold: f64,
    /// All orientations 0 (no rotation invariance, more distinctive).
    pub upright: bool,
    /// Keep at most this many keypoints, strongest first (0: all).
    pub max_features: usize,
}

impl Default for SiftOptions {
    fn default() -> Self {
        SiftOptions { octave_layers: 3, sigma: 1.6, contrast_threshold: 0.04, edge_threshold: 10.0, upright: false, max_features: 0 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(test, derive(Default))]
pub struct Keypoint {
    /// Position in image pixels (pixel centres at integer indices).
    pub x: f64,
    pub y: f64,
    /// Blur σ of the keypoint's scale, in image pixels.
    pub scale: f64,
    /// Dominant gradient direction, radians (x right, y down).
    pub angle: f64,
    pub response: f64,
    octave: usize,
    layer: usize,
    /// Scale relative to its octave.
    octave_scale: f64,
}

#[derive(Clone, Debug, Default)]
pub struct Features {
    pub keypoints: Vec<Keypoint>,
    /// 128 values per keypoint, row-major.
    pub descriptors: Vec<f32>,
}

impl Features {
    pub fn len(&self) -> usize {
        self.keypoints.len()
    }
    pub fn is_empty(&self) -> bool {
        self.keypoints.is_empty()
    }
    pub fn descriptor(&self, i: usize) -> &[f32] {
        &self.descriptors[i * DESCRIPTOR_LEN..(i + 1) * DESCRIPTOR_LEN]
    }
    /// Only the keypoints (and their descriptors) for which `keep` holds.
    pub fn retain(self, keep: impl Fn(&Keypoint) -> bool) -> Features {
        let mut out = Features::default();
        for (k, d) in self.keypoints.iter().zip(self.descriptors.chunks_exact(DESCRIPTOR_LEN)) {
            if keep(k) {
                out.keypoints.push(*k);
                out.descriptors.extend_from_slice(d);
            }
        }
        out
    }
}

pub const DESCRIPTOR_LEN: usize = 128;
const BORDER: usize = 5;
const ORI_BINS: usize = 36;
/// Cells per side of the descriptor's grid.
const D: usize = 4;

struct Octave {
    gauss: Vec<Array2<f32>>,
    dog: Vec<Array2<f32>>,
}

#[expect(clippy::expect_used, reason = "the scale list starts with the base image")]
fn build_scale_space(plane: ArrayView2<f32>, o: &SiftOptions) -> Vec<Octave> {
    let s = o.octave_layers;
    let k = 2f64.powf(1.0 / s as f64);
    // Each level's blur is reached incrementally from the previous one; the input is
    // assumed to carry a blur of 0.5 pixels already.
    let increments: Vec<f64> = (0..s + 3)
        .map(|i| if i == 0 { (o.sigma.powi(2) - 0.25).max(0.01).sqrt() } else {
            let prev = o.sigma * k.powi(i as i32 - 1);
            ((prev * k).powi(2) - prev.powi(2)).sqrt()
        })
        .collect();
    let min_side = plane.dim().0.min(plane.dim().1) as f64;
    let n_octaves = ((min_side.log2() - 3.0).floor().max(1.0)) as usize;
    let mut octaves: Vec<Octave> = Vec::with_capacity(n_octaves);
    for oi in 0..n_octaves {
        let base = if oi == 0 {
            gaussian_blur(plane, increments[0])
        } else {
            let prev = &octaves[oi - 1].gauss[s];
            crate::image::filter::subsample(prev.view(), 2)
        };
        let mut gauss = vec![base];
        for inc in &increments[1..] {
            let next = gaussian_blur(gauss.last().expect("non-empty").view(), *inc);
            gauss.push(next);
        }
        let dog = gauss.windows(2).map(|p| &p[1] - &p[0]).collect();
        octaves.push(Octave { gauss, dog });
    }
    octaves
}

/// The columns of row y of DoG layer l whose value passes the contrast threshold and is a
/// strict maximum or minimum of its 26 neighbours (3×3 in this layer and the two about it),
/// in increasing order. On a CoMIR most pixels pass the threshold, so every column is tested
/// against all 26 at once, eight lanes wide (see [`mark_extrema`]), not one at a time.
fn extrema_in_row(dog: &[Array2<f32>], l: usize, y: usize, threshold: f32) -> Vec<usize> {
    let width = dog[l].ncols();
    if width <= 2 * BORDER {
        return Vec::new();
    }
    // The nine rows around (l, y): the own layer first.
    let views: [ArrayView1<f32>; 9] = std::array::from_fn(|i| dog[[l, l - 1, l + 1][i / 3]].row(y + i % 3 - 1));
    let owned: Vec<Vec<f32>>;
    let rows: Vec<&[f32]> = if views.iter().all(|r| r.as_slice().is_some()) {
        views.iter().filter_map(|r| r.to_slice()).collect()
    } else {
        owned = views.iter().map(|r| r.to_vec()).collect();
        owned.iter().map(Vec::as_slice).collect()
    };
    let mut flags = vec![0u8; width - 2 * BORDER];
    mark_extrema(&mut flags, &rows, threshold);
    flags.iter().enumerate().filter(|(_, &f)| f != 0).map(|(i, _)| BORDER + i).collect()
}

wide_lanes! {
    /// `flags[i]` = 1 when column BORDER + i of `rows[1]` (the middle of nine rows: its own,
    /// above, below, in the layer, the layer below and the layer above) has a magnitude above
    /// `threshold` and is greater than all 26 neighbours or less than all of them (NaN is
    /// neither), else 0.
    fn mark_extrema(flags: &mut [u8], rows: &[&[f32]], threshold: f32) {
        let n = flags.len();
        let centre = &rows[1][BORDER..BORDER + n];
        let mut is_min = vec![0u8; n];
        for ((f, m), &v) in flags.iter_mut().zip(is_min.iter_mut()).zip(centre) {
            let strong = u8::from(v.abs() > threshold);
            (*f, *m) = (strong, strong);
        }
        for (i, row) in rows.iter().enumerate() {
            for dx in 0..3 {
                if i == 1 && dx == 1 {
                    continue; // the pixel itself
                }
                let neighbours = &row[BORDER - 1 + dx..BORDER - 1 + dx + n];
                for (((f, m), &v), &q) in flags.iter_mut().zip(is_min.iter_mut()).zip(centre).zip(neighbours) {
                    *f &= u8::from(v > q);
                    *m &= u8::from(v < q);
                }
            }
        }
        for (f, m) in flags.iter_mut().zip(&is_min) {
            *f |= m;
        }
    }
}

/// Fit a quadratic around a DoG extremum; returns the refined keypoint or None if it is
/// unstable (drifts away, low contrast, or lies on an edge).
fn refine(oct: &Octave, octave: usize, mut l: usize, mut y: usize, mut x: usize, o: &SiftOptions) -> Option<Keypoint> {
    let s = o.octave_layers;
    let (h, w) = oct.dog[0].dim();
    let mut offset = [0.0f64; 3];
    let mut grad = [0.0f64; 3];
    let mut converged = false;
    for _ in 0..5 {
        let d = |dl: isize, dy: isize, dx: isize| oct.dog[(l as isize + dl) as usize][[(y as isize + dy) as usize, (x as isize + dx) as usize]] as f64;
        grad = [(d(0, 0, 1) - d(0, 0, -1)) / 2.0, (d(0, 1, 0) - d(0, -1, 0)) / 2.0, (d(1, 0, 0) - d(-1, 0, 0)) / 2.0];
        let c2 = 2.0 * d(0, 0, 0);
        let dxx = d(0, 0, 1) + d(0, 0, -1) - c2;
        let dyy = d(0, 1, 0) + d(0, -1, 0) - c2;
        let dss = d(1, 0, 0) + d(-1, 0, 0) - c2;
        let dxy = (d(0, 1, 1) - d(0, 1, -1) - d(0, -1, 1) + d(0, -1, -1)) / 4.0;
        let dxs = (d(1, 0, 1) - d(1, 0, -1) - d(-1, 0, 1) + d(-1, 0, -1)) / 4.0;
        let dys = (d(1, 1, 0) - d(1, -1, 0) - d(-1, 1, 0) + d(-1, -1, 0)) / 4.0;
        let hm = [[dxx, dxy, dxs], [dxy, dyy, dys], [dxs, dys, dss]];
        offset = solve3(hm, grad).map(|v| v.map(|x| -x))?;
        if offset.iter().all(|v| v.abs() < 0.5) {
            converged = true;
            break;
        }
        if offset.iter().any(|v| v.abs() > (i32::MAX / 3) as f64) {
            return None;
        }
        x = (x as f64 + offset[0].round()) as usize;
        y = (y as f64 + offset[1].round()) as usize;
        l = (l as f64 + offset[2].round()) as usize;
        if l < 1 || l > s || x < BORDER || x >= w - BORDER || y < BORDER || y >= h - BORDER {
            return None;
        }
    }
    if !converged {
        return None;
    }
    let v = oct.dog[l][[y, x]] as f64;
    let contrast = v + 0.5 * (grad[0] * offset[0] + grad[1] * offset[1] + grad[2] * offset[2]);
    if contrast.abs() * s as f64 <= o.contrast_threshold {
        return None;
    }
    let d = |dy: isize, dx: isize| oct.dog[l][[(y as isize + dy) as usize, (x as isize + dx) as usize]] as f64;
    let dxx = d(0, 1) + d(0, -1) - 2.0 * v;
    let dyy = d(1, 0) + d(-1, 0) - 2.0 * v;
    let dxy = (d(1, 1) - d(1, -1) - d(-1, 1) + d(-1, -1)) / 4.0;
    let (tr, det) = (dxx + dyy, dxx * dyy - dxy * dxy);
    let r = o.edge_threshold;
    if det <= 0.0 || tr * tr * r >= (r + 1.0).powi(2) * det {
        return None;
    }
    let f = (1 << octave) as f64;
    let octave_scale = o.sigma * 2f64.powf((l as f64 + offset[2]) / s as f64);
    Some(Keypoint {
        x: (x as f64 + offset[0]) * f,
        y: (y as f64 + offset[1]) * f,
        scale: octave_scale * f,
        angle: 0.0,
        response: contrast.abs(),
        octave,
        layer: l,
        octave_scale,
    })
}

/// Solve the 3×3 system m·v = b (Cramer's rule); None when singular.
fn solve3(m: [[f64; 3]; 3], b: [f64; 3]) -> Option<[f64; 3]> {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(m);
    if d.abs() < 1e-12 {
        return None;
    }
    let mut out = [0.0; 3];
    for (c, o) in out.iter_mut().enumerate() {
        let mut mc = m;
        for r in 0..3 {
            mc[r][c] = b[r];
        }
        *o = det(mc) / d;
    }
    Some(out)
}

/// Angle of (x, y) in [0, 2π), by a polynomial (error < 2e-4 rad = 0.01°, far below the 10° and 45°
/// histogram bins): the libm atan2 took a sixth of SIFT's time. Written with selects, not
/// branches, so that a loop over many gradients runs on vector lanes.
#[inline]
fn fast_angle(y: f32, x: f32) -> f32 {
    use std::f32::consts::{FRAC_PI_2, PI, TAU};
    let (ax, ay) = (x.abs(), y.abs());
    let c = ax.min(ay) / (ax.max(ay) + f32::MIN_POSITIVE);
    let c2 = c * c;
    let a = (((-0.044_326_555 * c2 + 0.155_578_65) * c2 - 0.325_808_4) * c2 + 0.999_787_84) * c;
    let a = if ay > ax { FRAC_PI_2 - a } else { a };
    let a = if x < 0.0 { PI - a } else { a };
    // For y < 0 the angle is 2π − a, which rounds to 2π itself when a is tiny: that is 0.
    let r = TAU - a;
    if y < 0.0 { if r >= TAU { 0.0 } else { r } } else { a }
}

/// The offsets (dy from y_lo to y_hi, dx from x_lo to x_hi) of a window of `radius` about
/// (cy, cx) where a central-difference gradient exists: one pixel inside the border.
fn gradient_window((h, w): (usize, usize), cy: isize, cx: isize, radius: isize) -> (isize, isize, isize, isize) {
    ((-radius).max(1 - cy), radius.min(h as isize - 2 - cy), (-radius).max(1 - cx), radius.min(w as isize - 2 - cx))
}

/// exp(−d² / denominator) for d = −radius..=radius: a 2-D Gaussian weight is the product of
/// two of these, so a window needs 2(2r + 1) exponentials instead of (2r + 1)².
fn separable_gaussian(radius: isize, denominator: f64) -> Vec<f64> {
    (-radius..=radius).map(|d| (-((d * d) as f64) / denominator).exp()).collect()
}

/// Dominant orientations (peaks ≥ 80% of the highest) of the gradient histogram around kp.
fn orientations(img: &Array2<f32>, kp: &Keypoint) -> Vec<f64> {
    let f = (1 << kp.octave) as f64;
    let (cx, cy) = ((kp.x / f).round() as isize, (kp.y / f).round() as isize);
    let sigma = 1.5 * kp.octave_scale;
    let radius = (3.0 * sigma).round() as isize;
    let mut hist = [0f64; ORI_BINS];
    let gauss = separable_gaussian(radius, 2.0 * sigma * sigma);
    let (y_lo, y_hi, x_lo, x_hi) = gradient_window(img.dim(), cy, cx, radius);
    let to_bin = ORI_BINS as f64 / std::f64::consts::TAU;
    for dy in y_lo..=y_hi {
        let y = (cy + dy) as usize;
        let (above, row, below) = (img.row(y - 1), img.row(y), img.row(y + 1));
        let gy_weight = gauss[(dy + radius) as usize];
        for dx in x_lo..=x_hi {
            let x = (cx + dx) as usize;
            let (gx, gy) = ((row[x + 1] - row[x - 1]) as f64, (below[x] - above[x]) as f64);
            let weight = gy_weight * gauss[(dx + radius) as usize];
            // The angle is in [0, 2π): rounding (+0.5, truncated) gives 0..=ORI_BINS, the
            // last of which is bin 0 again.
            let bin = (fast_angle(gy as f32, gx as f32) as f64 * to_bin + 0.5) as usize;
            hist[if bin >= ORI_BINS { bin - ORI_BINS } else { bin }] += weight * (gx * gx + gy * gy).sqrt();
        }
    }
    let smooth: Vec<f64> = (0..ORI_BINS)
        .map(|i| {
            let at = |d: isize| hist[(i as isize + d).rem_euclid(ORI_BINS as isize) as usize];
            (at(-2) + at(2)) / 16.0 + (at(-1) + at(1)) * 4.0 / 16.0 + at(0) * 6.0 / 16.0
        })
        .collect();
    let peak = smooth.iter().copied().fold(0.0, f64::max);
    let mut out = Vec::new();
    for i in 0..ORI_BINS {
        let (l, r) = (smooth[(i + ORI_BINS - 1) % ORI_BINS], smooth[(i + 1) % ORI_BINS]);
        let c = smooth[i];
        if c > l && c > r && c >= 0.8 * peak {
            let shift = 0.5 * (l - r) / (l - 2.0 * c + r);
            let bin = (i as f64 + shift).rem_euclid(ORI_BINS as f64);
            out.push(bin / ORI_BINS as f64 * std::f64::consts::TAU);
        }
    }
    out
}

/// The points of a descriptor window, one array per quantity (so that the angle and
/// magnitude loop runs on vector lanes).
struct Window {
    rbin: Vec<f64>,
    cbin: Vec<f64>,
    gx: Vec<f32>,
    gy: Vec<f32>,
    weight: Vec<f32>,
}

impl Window {
    fn with_capacity(n: usize) -> Window {
        Window { rbin: Vec::with_capacity(n), cbin: Vec::with_capacity(n), gx: Vec::with_capacity(n), gy: Vec::with_capacity(n), weight: Vec::with_capacity(n) }
    }

    #[inline(always)]
    fn push(&mut self, rbin: f64, cbin: f64, gx: f32, gy: f32, weight: f32) {
        self.rbin.push(rbin);
        self.cbin.push(cbin);
        self.gx.push(gx);
        self.gy.push(gy);
        self.weight.push(weight);
    }

    /// Gradient angle in [0, 2π) and weighted magnitude of each point.
    #[inline(always)]
    fn angles_and_magnitudes(&self) -> (Vec<f32>, Vec<f32>) {
        let angles = self.gx.iter().zip(&self.gy).map(|(&gx, &gy)| fast_angle(gy, gx)).collect();
        let magnitudes = self.gx.iter().zip(&self.gy).zip(&self.weight).map(|((&gx, &gy), &w)| (gx * gx + gy * gy).sqrt() * w).collect();
        (angles, magnitudes)
    }
}

wide_lanes! {
    /// The 4×4×8 descriptor: gradient orientation histograms in a grid rotated to the
    /// keypoint's angle, trilinearly interpolated, normalised, clipped at 0.2, renormalised.
    fn describe(img: &Array2<f32>, kp: &Keypoint) -> [f32; DESCRIPTOR_LEN] {
        const N: usize = 8;
        // Orientation slots N and N + 1 collect what wraps round to 0 and 1 (folded in at the
        // end): no modulo in the innermost loop, which runs ~10⁷ times for 4000 keypoints.
        const SLOTS: usize = N + 2;
        let f = (1 << kp.octave) as f64;
        let (px, py) = (kp.x / f, kp.y / f);
        let (cx, cy) = (px.round() as isize, py.round() as isize);
        let hist_width = 3.0 * kp.octave_scale;
        let radius = (hist_width * std::f64::consts::SQRT_2 * (D as f64 + 1.0) * 0.5).round() as isize;
        let (sin, cos) = (kp.angle.sin(), kp.angle.cos());
        let mut hist = [0f64; (D + 2) * (D + 2) * SLOTS];
        // exp(−|(xr, yr)|² / (D²/2)) with |(xr, yr)| = |(dx, dy)| / hist_width (a rotation keeps lengths).
        let gauss = separable_gaussian(radius, 0.5 * (D * D) as f64 * hist_width * hist_width);
        let (y_lo, y_hi, x_lo, x_hi) = gradient_window(img.dim(), cy, cx, radius);
        let (cos_w, sin_w) = (cos / hist_width, sin / hist_width);
        // First the window's points that fall in the grid (bins, gradient, weight), then their
        // angles and magnitudes in one loop the compiler runs on vector lanes, then the histogram.
        let side = (2 * radius + 1) as usize;
        let mut points = Window::with_capacity(side * side);
        for dy in y_lo..=y_hi {
            let y = (cy + dy) as usize;
            let (above, row, below) = (img.row(y - 1), img.row(y), img.row(y + 1));
            let gy_weight = gauss[(dy + radius) as usize];
            let (dx_lo, dx_hi) = grid_columns(dy, sin_w, cos_w);
            for dx in x_lo.max(dx_lo)..=x_hi.min(dx_hi) {
                let Some((rbin, cbin)) = grid_bins(dx, dy, sin_w, cos_w) else { continue };
                let x = (cx + dx) as usize;
                points.push(rbin, cbin, row[x + 1] - row[x - 1], below[x] - above[x], (gy_weight * gauss[(dx + radius) as usize]) as f32);
            }
        }
        let (angles, magnitudes) = points.angles_and_magnitudes();
        let (to_slot, angle) = (N as f32 / std::f32::consts::TAU, kp.angle as f32);
        // Each point adds to 8 histogram slots: the 2×2 cells about it, 2 orientations each,
        // at these offsets from the first. Their weights are worked out a block of points at
        // a time in a loop that runs on vector lanes, then added in the points' order (so
        // every slot sums the same terms in the same order as one loop would).
        const TO: [usize; 8] = [0, 1, SLOTS, SLOTS + 1, (D + 2) * SLOTS, (D + 2) * SLOTS + 1, (D + 3) * SLOTS, (D + 3) * SLOTS + 1];
        const BLOCK: usize = 128;
        let (mut first, mut weights) = ([0u32; BLOCK], [[0f64; BLOCK]; 8]);
        for start in (0..angles.len()).step_by(BLOCK) {
            let n = BLOCK.min(angles.len() - start);
            for j in 0..n {
                let i = start + j;
                let (rbin, cbin, mag) = (points.rbin[i], points.cbin[i], magnitudes[i] as f64);
                // Both angles in [0, 2π): their difference is in (−2π, 2π).
                let turned = angles[i] - angle;
                let ori = (if turned < 0.0 { turned + std::f32::consts::TAU } else { turned } * to_slot) as f64;
                // rbin, cbin > −1 and ori ≥ 0: truncation of the +1-shifted values is the floor.
                let (r0, c0, o0) = ((rbin + 1.0) as i32, (cbin + 1.0) as i32, ori as i32);
                let (fr, fc, fo) = (rbin + 1.0 - r0 as f64, cbin + 1.0 - c0 as f64, ori - o0 as f64);
                first[j] = ((r0 * (D as i32 + 2) + c0) * SLOTS as i32 + o0.min(N as i32)) as u32;
                let (wr0, wr1) = (mag * (1.0 - fr), mag * fr);
                let cells = [wr0 * (1.0 - fc), wr0 * fc, wr1 * (1.0 - fc), wr1 * fc];
                for (k, wrc) in cells.into_iter().enumerate() {
                    weights[2 * k][j] = wrc * (1.0 - fo);
                    weights[2 * k + 1][j] = wrc * fo;
                }
            }
            for j in 0..n {
                let at = first[j] as usize;
                for (k, to) in TO.iter().enumerate() {
                    hist[at + to] += weights[k][j];
                }
            }
        }
        let mut desc = [0f32; DESCRIPTOR_LEN];
        for r in 0..D {
            for c in 0..D {
                let cell = ((r + 1) * (D + 2) + c + 1) * SLOTS;
                for o in 0..N {
                    let wrapped = if o < 2 { hist[cell + N + o] } else { 0.0 };
                    desc[(r * D + c) * N + o] = (hist[cell + o] + wrapped) as f32;
                }
            }
        }
        let norm = desc.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        let clip = 0.2 * norm;
        desc.iter_mut().for_each(|v| *v = v.min(clip));
        let norm = desc.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        desc.iter_mut().for_each(|v| *v /= norm);
        desc
    }
}

/// Where the window's offset (dx, dy) falls in the descriptor's grid turned to the keypoint
/// (sin_w, cos_w: its angle's sine and cosine over the cell width), in cell units: None
/// outside the grid and the one-cell rim that trilinear interpolation still reaches.
#[inline(always)]
fn grid_bins(dx: isize, dy: isize, sin_w: f64, cos_w: f64) -> Option<(f64, f64)> {
    let rbin = -sin_w * dx as f64 + cos_w * dy as f64 + D as f64 / 2.0 - 0.5;
    let cbin = cos_w * dx as f64 + sin_w * dy as f64 + D as f64 / 2.0 - 0.5;
    if rbin <= -1.0 || rbin >= D as f64 || cbin <= -1.0 || cbin >= D as f64 {
        return None;
    }
    Some((rbin, cbin))
}

/// The dx of row dy that `grid_bins` can accept, widened by a pixel each side against
/// rounding: a turned square fills about half of the square window around it, so the
/// descriptor loop visits half as many offsets.
fn grid_columns(dy: isize, sin_w: f64, cos_w: f64) -> (isize, isize) {
    // The real dx for which −1 < a·dx + b < D. When a is nearly 0 (an axis-aligned grid),
    // all or none of them, with a margin far above a·dx.
    let span = |a: f64, b: f64| {
        if a.abs() < 1e-9 {
            let all = b > -1.0 - 1e-6 && b < D as f64 + 1e-6;
            return if all { (f64::NEG_INFINITY, f64::INFINITY) } else { (f64::INFINITY, f64::NEG_INFINITY) };
        }
        let (p, q) = ((-1.0 - b) / a, (D as f64 - b) / a);
        (p.min(q), p.max(q))
    };
    let (lo_r, hi_r) = span(-sin_w, cos_w * dy as f64 + D as f64 / 2.0 - 0.5);
    let (lo_c, hi_c) = span(cos_w, sin_w * dy as f64 + D as f64 / 2.0 - 0.5);
    ((lo_r.max(lo_c).floor() as isize).saturating_sub(1), (hi_r.min(hi_c).ceil() as isize).saturating_add(1))
}

/// Detect keypoints and compute their descriptors.
pub fn detect_and_describe(plane: ArrayView2<f32>, options: &SiftOptions) -> Features {
    let (h, w) = plane.dim();
    if h < 2 * BORDER + 8 || w < 2 * BORDER + 8 {
        return Features::default();
    }
    let octaves = build_scale_space(plane, options);
    let s = options.octave_layers;
    let threshold = (0.5 * options.contrast_threshold / s as f64) as f32;
    let mut keypoints: Vec<Keypoint> = Vec::new();
    for (oi, oct) in octaves.iter().enumerate() {
        let (oh, ow) = oct.dog[0].dim();
        if oh <= 2 * BORDER || ow <= 2 * BORDER {
            continue;
        }
        let found: Vec<Keypoint> = (1..=s)
            .flat_map(|l| (BORDER..oh - BORDER).map(move |y| (l, y)))
            .collect::<Vec<_>>()
            .par_iter()
            .flat_map_iter(|&(l, y)| extrema_in_row(&oct.dog, l, y, threshold).into_iter().filter_map(move |x| refine(oct, oi, l, y, x, options)))
            .collect();
        keypoints.extend(found);
    }
    // Orientation assignment may split a keypoint into several.
    let oriented: Vec<Keypoint> = keypoints
        .par_iter()
        .flat_map_iter(|kp| {
            let img = &octaves[kp.octave].gauss[kp.layer];
            let angles = if options.upright { vec![0.0] } else { orientations(img, kp) };
            angles.into_iter().map(move |a| Keypoint { angle: a, ..*kp })
        })
        .collect();
    let mut oriented = oriented;
    oriented.sort_by(|a, b| b.response.total_cmp(&a.response).then(a.y.total_cmp(&b.y)).then(a.x.total_cmp(&b.x)));
    if options.max_features > 0 {
        oriented.truncate(options.max_features);
    }
    let descriptors: Vec<f32> = oriented.par_iter().flat_map_iter(|kp| describe(&octaves[kp.octave].gauss[kp.layer], kp)).collect();
    Features { keypoints: oriented, descriptors }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::TAU;

    /// The descriptor loop visits only `grid_columns` of each row: every offset in the grid
    /// must lie there, at any angle (the axis-aligned ones included) and cell width.
    #[test]
    fn grid_columns_hold_every_offset_in_the_grid() {
        for step in 0..=96 {
            let angle = step as f64 * TAU / 96.0;
            for hist_width in [1.3, 2.0, 4.7, 11.0] {
                let (sin_w, cos_w) = (angle.sin() / hist_width, angle.cos() / hist_width);
                let radius = (hist_width * std::f64::consts::SQRT_2 * (D as f64 + 1.0) * 0.5).round() as isize;
                let (mut inside, mut visited) = (0, 0);
                for dy in -radius..=radius {
                    let (lo, hi) = grid_columns(dy, sin_w, cos_w);
                    for dx in -radius..=radius {
                        let in_grid = grid_bins(dx, dy, sin_w, cos_w).is_some();
                        let in_columns = (lo..=hi).contains(&dx);
                        assert!(!in_grid || in_columns, "({dx}, {dy}) at {angle} rad, cell {hist_width}: outside {lo}..={hi}");
                        inside += usize::from(in_grid);
                        visited += usize::from(in_columns);
                    }
                }
                // And it narrows: about half the window (all of it for tiny cells, the margins).
                let window = (2 * radius as usize + 1).pow(2);
                assert!(inside > 0 && (hist_width < 4.0 || visited * 10 <= window * 7), "{visited} visited of {window}, {inside} in the grid");
            }
        }
    }

    /// Keypoints and descriptors of the AVX2 copies (where the CPU has them) equal the
    /// baseline's to the last bit.
    #[test]
    fn features_are_the_same_on_every_lane_width() {
        let mut rng = crate::rng::Rng::new(11);
        let blobs: Vec<(f64, f64, f64)> = (0..60).map(|_| (rng.uniform() * 160.0, rng.uniform() * 130.0, 2.0 + rng.uniform() * 6.0)).collect();
        let plane = Array2::from_shape_fn((130, 160), |(y, x)| {
            blobs.iter().map(|&(bx, by, r)| (-((x as f64 - bx).powi(2) + (y as f64 - by).powi(2)) / (r * r)).exp()).sum::<f64>().min(1.0) as f32
        });
        let options = SiftOptions::default();
        let wide = detect_and_describe(plane.view(), &options);
        let base = crate::lanes::with_baseline_only(|| detect_and_describe(plane.view(), &options));
        assert!(wide.len() >= 20, "{} keypoints", wide.len());
        assert_eq!(wide.len(), base.len());
        for (a, b) in wide.keypoints.iter().zip(&base.keypoints) {
            assert_eq!([a.x, a.y, a.scale, a.angle].map(f64::to_bits), [b.x, b.y, b.scale, b.angle].map(f64::to_bits));
        }
        assert!(wide.descriptors.iter().zip(&base.descriptors).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    /// The all-columns-at-once extrema test finds what testing each column alone against its
    /// 26 neighbours finds, on both lane widths: with ties (plateaus are no extrema), NaN, and
    /// values at the threshold.
    #[test]
    fn row_extrema_are_the_columns_that_beat_all_26_neighbours() {
        let mut rng = crate::rng::Rng::new(5);
        // Coarse values: many ties; a few NaN; some exactly at ± the threshold.
        let threshold = 0.25f32;
        let mut dog: Vec<Array2<f32>> = (0..3).map(|_| Array2::from_shape_fn((9, 67), |_| match rng.below(80) {
            0 => f32::NAN,
            1 => threshold,
            2 => -threshold,
            _ => (rng.below(9) as f32 - 4.0) * 0.1,
        })).collect();
        // Planted: peaks and pits every few columns (some next to a NaN or on a plateau).
        for y in [2, 5] {
            for x in (BORDER + y..67 - BORDER).step_by(3) {
                dog[1][[y, x]] = if x % 2 == 0 { 0.9 } else { -0.9 };
            }
        }
        dog[1][[2, 21]] = dog[1][[2, 20]]; // a plateau of two
        // A peak exactly at the threshold: not strong enough.
        for (l, yy, xx) in (0..3).flat_map(|l| (6..9).flat_map(move |yy| (29..32).map(move |xx| (l, yy, xx)))) {
            dog[l][[yy, xx]] = -0.4;
        }
        dog[1][[7, 30]] = threshold;
        dog[2][[3, 14]] = f32::NAN;
        let mut found = 0;
        for y in 1..8 {
            let want: Vec<usize> = (BORDER..67 - BORDER).filter(|&x| {
                let v = dog[1][[y, x]];
                let around = (0..3).flat_map(|l| (y - 1..=y + 1).flat_map(move |yy| (x - 1..=x + 1).map(move |xx| (l, yy, xx)))).filter(|&p| p != (1, y, x));
                let values: Vec<f32> = around.map(|(l, yy, xx)| dog[l][[yy, xx]]).collect();
                v.abs() > threshold && (values.iter().all(|&q| v > q) || values.iter().all(|&q| v < q))
            }).collect();
            assert_eq!(extrema_in_row(&dog, 1, y, threshold), want, "row {y}");
            assert_eq!(crate::lanes::with_baseline_only(|| extrema_in_row(&dog, 1, y, threshold)), want, "row {y}, baseline lanes");
            found += want.len();
        }
        assert!(found >= 30, "{found} extrema: too few to test anything");
    }

    #[test]
    fn fast_angle_matches_atan2_everywhere() {
        let mut worst: f64 = 0.0;
        for i in -200..=200 {
            for j in -200..=200 {
                let (y, x) = (i as f64 * 0.37, j as f64 * 1.13);
                let exact = y.atan2(x).rem_euclid(TAU);
                let got = fast_angle(y as f32, x as f32) as f64;
                assert!((0.0..TAU).contains(&got), "{got} for ({y}, {x})");
                let d = (got - exact).abs();
                worst = worst.max(d.min(TAU - d)); // circular distance
            }
        }
        assert!(worst < 2e-4, "worst error {worst} rad");
        assert_eq!(fast_angle(0.0, 0.0), 0.0);
        // A tiny angle below the x axis is 2π − ε, which rounds to 2π in f32: it must be 0.
        assert_eq!(fast_angle(-1e-9, 1.0), 0.0);
    }
}
