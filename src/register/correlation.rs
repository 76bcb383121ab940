//! A global search on two CoMIRs by normalised cross-correlation (NCC): every rotation a few
//! degrees apart and, for each, every shift at once (by FFT), on coarse copies of the two.
//!
//! Why: CoMIRs of two modalities are trained to look alike, so NCC ranks their poses, and an
//! exhaustive look finds the pose wherever it lies (any rotation, large shifts) without a
//! local optimiser's many starts (α-AMD and MI each search from 12–24 starts, ~1.5 s per
//! pair). The poses found are coarse (a coarse pixel, a fraction of the angle step): a local
//! search at finer levels finishes them (see [`super::pipeline`]).
//!
//! The correlation is masked (Padfield, "Masked object registration in the Fourier domain",
//! IEEE TIP 2012): at each shift NCC is taken over the pixels both images cover, so a shift
//! that leaves a corner of overlap is scored on that corner only, and poses whose overlap is
//! below `min_overlap` of the smaller image are not considered at all.
use super::mask::{self, Masks};
use super::transform::Affine2;
use super::warp::sample_bilinear;
use crate::image::filter::blur_subsample;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct CorrelationOptions {
    /// Larger side of the coarse copies (pixels): the finer, the more exact and the slower.
    pub coarse_side: usize,
    /// Angle between the rotations tried (degrees).
    pub angle_step: f64,
    /// Least fraction of the smaller image that both must cover for a pose to count.
    pub min_overlap: f64,
    /// Poses that cover less than this fraction of the smaller image are ranked by their NCC
    /// scaled down in proportion: over a few coarse pixels of overlap, among the millions of
    /// poses tried, unrelated images find chance correlations (two unrelated scenes matched
    /// at NCC 0.30 over 26 % of their area, and the pose passed the quality check).
    pub full_overlap: f64,
    /// Poses returned: the best, then the best at rotations at least `apart` degrees away.
    pub keep: usize,
    /// Least angle (degrees) between returned poses (and two angle steps at least): poses
    /// closer than that lie in one basin, which the local search finishes anyway.
    pub apart: f64,
}

impl Default for CorrelationOptions {
    fn default() -> Self {
        CorrelationOptions { coarse_side: 128, angle_step: 4.0, min_overlap: 0.25, full_overlap: 0.5, keep: 3, apart: 15.0 }
    }
}

/// A pose the search found.
#[derive(Clone, Debug)]
pub struct Pose {
    /// Fixed → moving, full-resolution pixels.
    pub transform: Affine2,
    /// NCC of the coarse copies at this pose (scaled down where they overlap little, see
    /// [`CorrelationOptions::full_overlap`]).
    pub ncc: f64,
}

/// The pixel step of the coarse copies for images whose larger side is `max_side`.
pub fn coarse_factor(max_side: usize, options: &CorrelationOptions) -> usize {
    max_side.div_ceil(options.coarse_side.max(16)).max(1)
}

/// The rotations (radians) a search tries: all around the circle, or within ±30° (the range
/// the small-rotation starts of the other methods reach).
pub fn angles(any_rotation: bool, options: &CorrelationOptions) -> Vec<f64> {
    let step = options.angle_step.clamp(0.25, 90.0);
    let (from, to) = if any_rotation { (0.0, 360.0 - step / 2.0) } else { (-30.0, 30.0 + step / 2.0) };
    (0..).map(|i| from + i as f64 * step).take_while(|&a| a <= to).map(f64::to_radians).collect()
}

/// A 2-D FFT of one size, row by row and then column by column (as rows of the transpose).
struct Fft2 {
    ny: usize,
    nx: usize,
    rows: Arc<dyn Fft<f64>>,
    cols: Arc<dyn Fft<f64>>,
}

impl Fft2 {
    fn new(ny: usize, nx: usize, inverse: bool) -> Fft2 {
        let mut planner = FftPlanner::new();
        let mut plan = |n| if inverse { planner.plan_fft_inverse(n) } else { planner.plan_fft_forward(n) };
        let rows = plan(nx);
        let cols = plan(ny);
        Fft2 { ny, nx, rows, cols }
    }

    /// Transform `data` (ny × nx, row-major) in place; `t` is a buffer of the same size.
    fn run(&self, data: &mut [Complex<f64>], t: &mut Vec<Complex<f64>>) {
        let (ny, nx) = (self.ny, self.nx);
        self.rows.process(data);
        t.resize(ny * nx, Complex::default());
        for y in 0..ny {
            for x in 0..nx {
                t[x * ny + y] = data[y * nx + x];
            }
        }
        self.cols.process(t);
        for x in 0..nx {
            for y in 0..ny {
                data[y * nx + x] = t[x * ny + y];
            }
        }
    }
}

/// The smallest n ≥ `min` whose prime factors are 2, 3 and 5 (fast FFT sizes).
fn fast_size(min: usize) -> usize {
    (min.max(1)..).find(|&n| {
        let mut m = n;
        for p in [2, 3, 5] {
            while m % p == 0 {
                m /= p;
            }
        }
        m == 1
    }).unwrap_or(min)
}

/// A coarse copy (blurred so that subsampling does not alias) and which of its pixels count
/// (inside the mask, finite); values centred on their mean (NCC does not see the offset,
/// and the sums of the correlation keep more digits).
fn coarse(plane: ArrayView2<f32>, m: Option<&mask::Mask>, f: usize) -> (Array2<f64>, Array2<f64>) {
    let sigma = if f > 1 { f as f64 / 2.0 } else { 0.0 };
    let c = blur_subsample(plane, sigma, f);
    let inside = Array2::from_shape_fn(c.dim(), |(y, x)| if c[[y, x]].is_finite() && mask::contains(m, (x * f) as f64, (y * f) as f64) { 1.0 } else { 0.0 });
    let (sum, n) = ndarray::Zip::from(&c).and(&inside).fold((0.0, 0.0), |(s, n), &v, &i| if i > 0.0 { (s + v as f64, n + 1.0) } else { (s, n) });
    let mean = if n > 0.0 { sum / n } else { 0.0 };
    let values = ndarray::Zip::from(&c).and(&inside).map_collect(|&v, &i| if i > 0.0 { v as f64 - mean } else { 0.0 });
    (values, inside)
}

/// Search every rotation of `angles` (radians) and every shift for the fixed → moving pose
/// under which the two planes (CoMIRs) correlate best; returns up to `options.keep` poses,
/// best first, each at a rotation more than `options.apart` from the others. Empty when no
/// pose keeps enough overlap with texture on both sides.
pub fn search(fixed: ArrayView2<f32>, moving: ArrayView2<f32>, masks: Masks, angles: &[f64], options: &CorrelationOptions) -> Vec<Pose> {
    let (fh, fw) = fixed.dim();
    let (mh, mw) = moving.dim();
    let f = coarse_factor(fh.max(fw).max(mh).max(mw), options);
    let (fv, fm) = coarse(fixed, masks.fixed, f);
    let (mv, mm) = coarse(moving, masks.moving, f);
    let ((ch, cw), (dh, dw)) = (fv.dim(), mv.dim());
    let (fixed_count, moving_count) = (fm.sum(), mm.sum());
    let smaller = fixed_count.min(moving_count);
    let min_count = (options.min_overlap * smaller).max(16.0);
    let full_count = (options.full_overlap * smaller).max(min_count);
    if fixed_count < 16.0 || moving_count < 16.0 {
        return vec![];
    }
    // The fixed copy is turned into a square canvas that holds it at any angle.
    let side = ((ch * ch + cw * cw) as f64).sqrt().ceil() as usize + 1;
    let (ny, nx) = (fast_size(side + dh - 1), fast_size(side + dw - 1));
    let forward = Fft2::new(ny, nx, false);
    let inverse = Fft2::new(ny, nx, true);
    let spectrum = |values: &dyn Fn(usize, usize) -> f64, rows: usize, cols: usize, t: &mut Vec<Complex<f64>>| {
        let mut data = vec![Complex::default(); ny * nx];
        for y in 0..rows {
            for x in 0..cols {
                data[y * nx + x] = Complex::new(values(y, x), 0.0);
            }
        }
        forward.run(&mut data, t);
        data
    };
    let mut t = Vec::new();
    let moving_spectra = [
        spectrum(&|y, x| mm[[y, x]], dh, dw, &mut t),
        spectrum(&|y, x| mv[[y, x]], dh, dw, &mut t),
        spectrum(&|y, x| mv[[y, x]] * mv[[y, x]], dh, dw, &mut t),
    ];
    let fixed_centre = ((cw as f64 - 1.0) / 2.0, (ch as f64 - 1.0) / 2.0);
    let canvas_centre = (side as f64 - 1.0) / 2.0;
    let fv32 = fv.mapv(|v| v as f32);
    let fm32 = fm.mapv(|v| v as f32);
    let scale = 1.0 / (ny * nx) as f64;
    // Per rotation: the best shift (coarse pixels, sub-pixel) and its NCC.
    let best: Vec<Option<(f64, f64, f64)>> = angles
        .par_iter()
        .map_init(Vec::new, |t, &angle| {
            let (s, c) = angle.sin_cos();
            // Canvas pixel q shows the fixed point R(angle)⁻¹ (q − canvas centre) + fixed centre.
            let source = |y: usize, x: usize| {
                let (qx, qy) = (x as f64 - canvas_centre, y as f64 - canvas_centre);
                (c * qx + s * qy + fixed_centre.0, -s * qx + c * qy + fixed_centre.1)
            };
            let inside = |y: usize, x: usize| {
                let (px, py) = source(y, x);
                // Inside means all four bilinear neighbours count (no mask edge blurred in).
                if !(px >= 0.0 && py >= 0.0 && px <= (cw - 1) as f64 && py <= (ch - 1) as f64) {
                    return 0.0;
                }
                if sample_bilinear(&fm32.view(), px, py).is_some_and(|v| v > 0.999) { 1.0 } else { 0.0 }
            };
            let value = |y: usize, x: usize| {
                let (px, py) = source(y, x);
                sample_bilinear(&fv32.view(), px, py).map_or(0.0, |v| v as f64)
            };
            let canvas_mask = Array2::from_shape_fn((side, side), |(y, x)| inside(y, x));
            let canvas = Array2::from_shape_fn((side, side), |(y, x)| if canvas_mask[[y, x]] > 0.0 { value(y, x) } else { 0.0 });
            // Its own mean off (the rotation and the mask changed which pixels count).
            let n0 = canvas_mask.sum();
            if n0 < 16.0 {
                return None;
            }
            let mean = canvas.sum() / n0;
            let canvas = ndarray::Zip::from(&canvas).and(&canvas_mask).map_collect(|&v, &m| if m > 0.0 { v - mean } else { 0.0 });
            let fixed_spectra = [
                spectrum(&|y, x| canvas_mask[[y, x]], side, side, t),
                spectrum(&|y, x| canvas[[y, x]], side, side, t),
                spectrum(&|y, x| canvas[[y, x]] * canvas[[y, x]], side, side, t),
            ];
            // Correlation at every shift of two real signals a, b: ifft(conj(A)·B); two of
            // them per inverse FFT, one in the real and one in the imaginary part.
            let pair = |(a1, b1): (usize, usize), (a2, b2): (usize, usize), t: &mut Vec<Complex<f64>>| {
                let i = Complex::new(0.0, 1.0);
                let mut data: Vec<Complex<f64>> = (0..ny * nx).map(|k| fixed_spectra[a1][k].conj() * moving_spectra[b1][k] + i * fixed_spectra[a2][k].conj() * moving_spectra[b2][k]).collect();
                inverse.run(&mut data, t);
                data
            };
            // (fixed part, moving part): 0 = mask, 1 = values, 2 = squares.
            let n_and_sf = pair((0, 0), (1, 0), t);
            let sm_and_sfm = pair((0, 1), (1, 1), t);
            let sff_and_smm = pair((2, 0), (0, 2), t);
            let ncc_at = |k: usize| -> Option<f64> {
                let n = n_and_sf[k].re * scale;
                if n < min_count {
                    return None;
                }
                let (sf, sm, sfm) = (n_and_sf[k].im * scale, sm_and_sfm[k].re * scale, sm_and_sfm[k].im * scale);
                let (sff, smm) = (sff_and_smm[k].re * scale, sff_and_smm[k].im * scale);
                let (vf, vm) = (sff - sf * sf / n, smm - sm * sm / n);
                // Flat on either side over the overlap: no texture to correlate.
                if vf <= 1e-9 * n || vm <= 1e-9 * n {
                    return None;
                }
                Some((sfm - sf * sm / n) / (vf * vm).sqrt() * (n / full_count).min(1.0))
            };
            // Shift (dy, dx) of the canvas on the moving copy sits at index (dy mod ny, dx mod nx).
            let index = |dy: isize, dx: isize| dy.rem_euclid(ny as isize) as usize * nx + dx.rem_euclid(nx as isize) as usize;
            let mut top: Option<(f64, isize, isize)> = None;
            for dy in -(side as isize - 1)..dh as isize {
                for dx in -(side as isize - 1)..dw as isize {
                    if let Some(v) = ncc_at(index(dy, dx)) {
                        if top.is_none_or(|(b, _, _)| v > b) {
                            top = Some((v, dy, dx));
                        }
                    }
                }
            }
            let (v, dy, dx) = top?;
            // Sub-pixel: the vertex of a parabola through the peak and its neighbours.
            let vertex = |before: Option<f64>, after: Option<f64>| match (before, after) {
                (Some(a), Some(b)) if a + b - 2.0 * v < 0.0 => (0.5 * (a - b) / (a + b - 2.0 * v)).clamp(-0.5, 0.5),
                _ => 0.0,
            };
            let oy = vertex(ncc_at(index(dy - 1, dx)), ncc_at(index(dy + 1, dx)));
            let ox = vertex(ncc_at(index(dy, dx - 1)), ncc_at(index(dy, dx + 1)));
            Some((v, dy as f64 + oy, dx as f64 + ox))
        })
        .collect();
    // The best rotations, each more than two steps from those already taken.
    let step = if angles.len() > 1 { (angles[1] - angles[0]).abs() } else { 1.0 };
    let mut order: Vec<usize> = (0..angles.len()).filter(|&i| best[i].is_some()).collect();
    order.sort_by(|&a, &b| best[b].map_or(f64::NEG_INFINITY, |v| v.0).total_cmp(&best[a].map_or(f64::NEG_INFINITY, |v| v.0)));
    let full_circle = angles.len() > 1 && (angles.len() as f64 * step - std::f64::consts::TAU).abs() < 1e-6;
    let apart = |a: f64, b: f64| {
        let d = (a - b).abs();
        let d = if full_circle { d.min(std::f64::consts::TAU - d) } else { d };
        d > (2.0 * step).max(options.apart.to_radians()) + 1e-9
    };
    let mut taken: Vec<usize> = Vec::new();
    for i in order {
        if taken.len() >= options.keep.max(1) {
            break;
        }
        if taken.iter().all(|&j| apart(angles[i], angles[j])) {
            taken.push(i);
        }
    }
    taken
        .into_iter()
        .filter_map(|i| {
            let (v, dy, dx) = best[i]?;
            // The angle between the tried ones: the vertex of the parabola through its neighbours'
            // best NCC (a rotation step is several coarse pixels at the corners).
            let neighbour = |d: isize| -> Option<f64> {
                let j = i as isize + d;
                let j = if full_circle { j.rem_euclid(angles.len() as isize) } else { j };
                usize::try_from(j).ok().and_then(|j| best.get(j).copied().flatten()).map(|b| b.0)
            };
            let offset = match (neighbour(-1), neighbour(1)) {
                (Some(a), Some(b)) if a + b - 2.0 * v < 0.0 => (0.5 * (a - b) / (a + b - 2.0 * v)).clamp(-0.5, 0.5),
                _ => 0.0,
            };
            let angle = angles[i] + offset * step;
            Some(Pose { transform: full_resolution(angle, (dx, dy), canvas_centre, fixed_centre, f), ncc: v })
        })
        .collect()
}

/// The full-resolution fixed → moving map of the coarse pose: fixed point p goes to
/// R(angle)(p − fixed centre) + canvas centre + shift on the coarse grids, and coarse pixel i
/// is full-resolution pixel f·i.
fn full_resolution(angle: f64, (dx, dy): (f64, f64), canvas_centre: f64, fixed_centre: (f64, f64), f: usize) -> Affine2 {
    let f = f as f64;
    let (s, c) = angle.sin_cos();
    let (fcx, fcy) = (f * fixed_centre.0, f * fixed_centre.1);
    let (tx, ty) = (f * (canvas_centre + dx), f * (canvas_centre + dy));
    Affine2::new([[c, -s, tx - (c * fcx - s * fcy)], [s, c, ty - (s * fcx + c * fcy)]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::register::transform::corner_error;
    use crate::register::warp::warp_plane;

    /// Blobs of several sizes at pseudo-random places: no symmetry, texture at every scale.
    fn blobs(w: usize, h: usize, seed: u64) -> Array2<f32> {
        let mut rng = crate::rng::Rng::new(seed);
        let spots: Vec<(f64, f64, f64, f64)> = (0..60).map(|_| (rng.uniform() * w as f64, rng.uniform() * h as f64, 3.0 + 12.0 * rng.uniform(), rng.uniform() - 0.3)).collect();
        Array2::from_shape_fn((h, w), |(y, x)| spots.iter().map(|&(cx, cy, r, a)| a * (-((x as f64 - cx).powi(2) + (y as f64 - cy).powi(2)) / (2.0 * r * r)).exp()).sum::<f64>() as f32)
    }

    #[test]
    fn finds_any_rotation_and_a_large_shift_within_a_coarse_pixel_and_a_degree() {
        let (w, h) = (300, 220);
        let moving = blobs(w, h, 3);
        for (deg, shift) in [(0.0, (10.0, -5.0)), (137.0, (40.0, 25.0)), (-71.5, (-30.0, 12.0)), (251.0, (0.0, 0.0))] {
            let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
            let truth = Affine2::translation(shift.0, shift.1).compose(&Affine2::rotation_about(f64::to_radians(deg), cx, cy));
            // The fixed image is the moving one seen through the truth, with another contrast
            // (NCC does not care) and a border cut off by the view.
            let fixed = warp_plane(moving.view(), &truth, w, h).mapv(|v| 3.0 * v + 7.0);
            let poses = search(fixed.view(), moving.view(), Masks::default(), &angles(true, &CorrelationOptions::default()), &CorrelationOptions::default());
            assert!(!poses.is_empty());
            let found = &poses[0];
            let (angle, _, _) = found.transform.decompose();
            let (want, _, _) = truth.decompose();
            let d = (angle - want).rem_euclid(360.0);
            assert!(d.min(360.0 - d) < 1.5, "{deg}°: found {angle:.2}°, want {want:.2}°");
            let err = corner_error(&found.transform, &truth, w, h);
            assert!(err < 6.0, "{deg}°: corner error {err:.2} px (coarse pixel {} px)", coarse_factor(w, &CorrelationOptions::default()));
            assert!(found.ncc > 0.8, "{deg}°: NCC {}", found.ncc);
        }
    }

    #[test]
    fn poses_come_best_first_at_rotations_apart_and_none_without_texture() {
        let (w, h) = (160, 160);
        let moving = blobs(w, h, 5);
        let options = CorrelationOptions::default();
        let poses = search(moving.view(), moving.view(), Masks::default(), &angles(true, &options), &options);
        assert_eq!(poses.len(), 3);
        assert!(poses.windows(2).all(|p| p[0].ncc >= p[1].ncc));
        assert!(corner_error(&poses[0].transform, &Affine2::IDENTITY, w, h) < 1.0);
        let flat = Array2::from_elem((h, w), 1.0f32);
        assert!(search(flat.view(), moving.view(), Masks::default(), &angles(true, &options), &options).is_empty());
    }

    #[test]
    fn angle_lists_cover_the_circle_or_thirty_degrees_either_way() {
        let o = CorrelationOptions::default();
        let all = angles(true, &o);
        assert_eq!(all.len(), 90);
        assert!((all[89].to_degrees() - 356.0).abs() < 1e-9);
        let small = angles(false, &o);
        assert_eq!((small[0].to_degrees().round(), small.last().map(|a| a.to_degrees().round())), (-30.0, Some(30.0)));
        assert_eq!(fast_size(97), 100);
        assert_eq!(fast_size(128), 128);
    }
}
