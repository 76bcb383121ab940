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
use super::warp::Bilinear;
use crate::image::filter::blur_subsample;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use std::sync::atomic::{AtomicUsize, Ordering};
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

type C = Complex<f64>;

/// One rotation's best shift: its NCC and the shift (dy, dx) in coarse pixels, sub-pixel.
type BestShift = Option<(f64, f64, f64)>;

/// 2-D FFTs of one grid size (ny × nx) that make and use each grid line while it is in
/// cache: the forward transform takes its input row by row from a closure and the inverse
/// its spectrum column by column, so no grid is written whole only to be read back once (at
/// a few hundred pixels a side a grid is larger than the cache, and passes over memory, not
/// arithmetic, set the search's time). Spectra are column-major (index kx·ny + ky): the
/// forward transform ends on its column pass and the inverse starts with one.
struct Fft2 {
    ny: usize,
    nx: usize,
    rows: [Arc<dyn Fft<f64>>; 2],
    cols: [Arc<dyn Fft<f64>>; 2],
}

/// Columns [`Fft2`] moves between row-major and column-major layout at a time.
const BLOCK: usize = 8;

/// One thread's line buffers for [`Fft2`].
#[derive(Default)]
struct Lines {
    fft: Vec<C>,
    line: Vec<C>,
    rows: Vec<C>,
}

/// One thread's buffers, reused from angle to angle: a fresh grid-sized vector per transform
/// costs as many page faults as the transform costs arithmetic.
#[derive(Default)]
struct Scratch {
    lines: Lines,
    packed: [Vec<C>; 3],
    spectra: [[Vec<C>; 3]; 2],
    sums: [Vec<C>; 3],
}

impl Fft2 {
    fn new(ny: usize, nx: usize) -> Fft2 {
        let mut planner = FftPlanner::new();
        let rows = [planner.plan_fft_forward(nx), planner.plan_fft_inverse(nx)];
        let cols = [planner.plan_fft_forward(ny), planner.plan_fft_inverse(ny)];
        Fft2 { ny, nx, rows, cols }
    }

    fn scratch_len(&self) -> usize {
        self.rows.iter().chain(&self.cols).map(|f| f.get_inplace_scratch_len()).max().unwrap_or(0)
    }

    /// The spectrum (column-major, into `spectrum`) of the grid whose first `rows` rows
    /// `row(y, line)` writes into zeroed lines of nx values; the other rows are zero, and
    /// their row transforms (zero) are skipped.
    fn forward(&self, rows: usize, row: impl Fn(usize, &mut [C]), spectrum: &mut Vec<C>, b: &mut Lines) {
        let (ny, nx) = (self.ny, self.nx);
        let rows = rows.min(ny);
        b.fft.resize(self.scratch_len(), C::default());
        b.rows.clear();
        b.rows.resize(rows * nx, C::default());
        for (y, line) in b.rows.chunks_exact_mut(nx).enumerate() {
            row(y, line);
            self.rows[0].process_with_scratch(line, &mut b.fft);
        }
        spectrum.clear();
        spectrum.resize(ny * nx, C::default());
        // Columns a block at a time: a row stride of a few kB maps one column's values onto
        // few cache sets, so columns one by one would evict each other's lines.
        for (block, columns) in spectrum.chunks_mut(BLOCK * ny).enumerate() {
            let (kx0, width) = (block * BLOCK, columns.len() / ny);
            for y in 0..rows {
                for j in 0..width {
                    columns[j * ny + y] = b.rows[y * nx + kx0 + j];
                }
            }
            self.cols[0].process_with_scratch(columns, &mut b.fft);
        }
    }

    /// The signals (row-major, into `outs`, unscaled) of the spectra whose column kx
    /// `columns(kx, lines)` writes (ny values each, all of them at once: their products read
    /// the same input columns, which then come from memory once, not once per spectrum): their
    /// rows y with `rows[y]`; the others are left as they were (the row pass is half the work,
    /// and a search leaves 40 % of the rows unread).
    fn inverse<const N: usize>(&self, columns: impl Fn(usize, [&mut [C]; N]), rows: &[bool], outs: &mut [Vec<C>; N], b: &mut Lines) {
        let (ny, nx) = (self.ny, self.nx);
        b.fft.resize(self.scratch_len(), C::default());
        b.line.resize(N * BLOCK * ny, C::default());
        for out in outs.iter_mut() {
            out.resize(ny * nx, C::default());
        }
        for kx0 in (0..nx).step_by(BLOCK) {
            let width = BLOCK.min(nx - kx0);
            // Spectrum q's columns of this block at q·BLOCK·ny.
            let mut blocks: Vec<&mut [C]> = b.line.chunks_exact_mut(BLOCK * ny).map(|c| &mut c[..width * ny]).collect();
            for j in 0..width {
                let mut lines: [&mut [C]; N] = std::array::from_fn(|_| &mut [][..]);
                for (line, block) in lines.iter_mut().zip(blocks.iter_mut()) {
                    // Reborrow column j of the block for this call only.
                    *line = &mut block[j * ny..(j + 1) * ny];
                }
                columns(kx0 + j, lines);
            }
            for (block, out) in blocks.iter_mut().zip(outs.iter_mut()) {
                self.cols[1].process_with_scratch(block, &mut b.fft);
                for ky in (0..ny).filter(|&ky| rows[ky]) {
                    for j in 0..width {
                        out[ky * nx + kx0 + j] = block[j * ny + ky];
                    }
                }
            }
        }
        // Runs of wanted rows, each in one call.
        for out in outs.iter_mut() {
            let mut y = 0;
            while y < ny {
                let end = (y..ny).find(|&e| rows[e] != rows[y]).unwrap_or(ny);
                if rows[y] {
                    self.rows[1].process_with_scratch(&mut out[y * nx..end * nx], &mut b.fft);
                }
                y = end;
            }
        }
    }
}

/// The spectra of two real signals a and b from the one transform `z` of a + i·b
/// (column-major ny × nx): A(k) = (Z(k) + Z̄(−k)) / 2 and B(k) = (Z(k) − Z̄(−k)) / 2i.
fn split(z: &[C], ny: usize, nx: usize, a: &mut Vec<C>, b: &mut Vec<C>) {
    a.resize(ny * nx, C::default());
    b.resize(ny * nx, C::default());
    let half = C::new(0.0, -0.5);
    for ((kx, a), b) in a.chunks_exact_mut(ny).enumerate().zip(b.chunks_exact_mut(ny)) {
        // Column −kx, and row −ky within it: index 0 is its own negative.
        let (column, negative) = (&z[kx * ny..(kx + 1) * ny], &z[(nx - kx) % nx * ny..][..ny]);
        for ky in 0..ny {
            let (zk, zm) = (column[ky], negative[if ky == 0 { 0 } else { ny - ky }].conj());
            a[ky] = (zk + zm) * 0.5;
            b[ky] = (zk - zm) * half;
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

/// Which rows of a search's correlation grid (ny rows, row i the vertical shift i and, wrapped
/// around, i − ny) can hold a shift with `min_count` pixels of overlap, from the counted pixels
/// in each row of the two masks (`fixed` of the canvas, `moving`). At shift dy, canvas row r
/// meets moving row r + dy, and their overlap is at most the smaller of the two rows' counts:
/// a row whose bound falls short is never read, and its inverse transform is not computed.
fn rows_with_overlap(fixed: &[f64], moving: &[f64], ny: usize, min_count: f64) -> Vec<bool> {
    let bound = |dy: isize| -> f64 {
        fixed.iter().enumerate().filter_map(|(r, &f)| usize::try_from(r as isize + dy).ok().and_then(|m| moving.get(m)).map(|&m| f.min(m))).sum()
    };
    // Counts are whole numbers, the grid's are within rounding of them: half a pixel of slack.
    (0..ny).map(|i| bound(i as isize) + bound(i as isize - ny as isize) + 0.5 >= min_count).collect()
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
    let grid = Fft2::new(ny, nx);
    // The moving copy's mask, values and squares: the first two packed into one transform.
    let mut s = Scratch::default();
    let mut moving_spectra: [Vec<C>; 3] = Default::default();
    grid.forward(dh, |y, line| line[..dw].iter_mut().enumerate().for_each(|(x, v)| *v = C::new(mm[[y, x]], mv[[y, x]])), &mut s.packed[0], &mut s.lines);
    let [m0, m1, m2] = &mut moving_spectra;
    split(&s.packed[0], ny, nx, m0, m1);
    grid.forward(dh, |y, line| line[..dw].iter_mut().enumerate().for_each(|(x, v)| *v = C::new(mv[[y, x]] * mv[[y, x]], 0.0)), m2, &mut s.lines);
    let moving_rows: Vec<f64> = mm.rows().into_iter().map(|r| r.sum()).collect();
    let fixed_centre = ((cw as f64 - 1.0) / 2.0, (ch as f64 - 1.0) / 2.0);
    let canvas_centre = (side as f64 - 1.0) / 2.0;
    let fv32 = fv.mapv(|v| v as f32);
    let fm32 = fm.mapv(|v| v as f32);
    // Every pixel counts (no mask, nothing undefined): inside the bounds, the mask's bilinear
    // value is 1 within rounding, so it need not be looked up.
    let counts_everywhere = fm.iter().all(|&v| v == 1.0);
    let scale = 1.0 / (ny * nx) as f64;
    // The fixed copy turned by `angle` on the canvas (side × side, row-major): which pixels
    // count, their values less their own mean (the rotation and the mask changed which pixels
    // count), and the squares of those.
    let canvas = |angle: f64| -> Option<[Vec<f64>; 3]> {
        let (s, c) = angle.sin_cos();
        let mut mask = vec![0.0; side * side];
        let mut values = vec![0.0; side * side];
        let (mask_plane, value_plane) = (Bilinear::new(fm32.view()), Bilinear::new(fv32.view()));
        for y in 0..side {
            for x in 0..side {
                // Canvas pixel q shows the fixed point R(angle)⁻¹ (q − canvas centre) + fixed centre.
                let (qx, qy) = (x as f64 - canvas_centre, y as f64 - canvas_centre);
                let (px, py) = (c * qx + s * qy + fixed_centre.0, -s * qx + c * qy + fixed_centre.1);
                // Inside means all four bilinear neighbours count (no mask edge blurred in).
                if !(px >= 0.0 && py >= 0.0 && px <= (cw - 1) as f64 && py <= (ch - 1) as f64) {
                    continue;
                }
                if counts_everywhere || mask_plane.at(px, py).is_some_and(|v| v > 0.999) {
                    mask[y * side + x] = 1.0;
                    values[y * side + x] = value_plane.at(px, py).map_or(0.0, |v| v as f64);
                }
            }
        }
        let n0 = ndarray::ArrayView1::from(&mask).sum();
        if n0 < 16.0 {
            return None;
        }
        let mean = ndarray::ArrayView1::from(&values).sum() / n0;
        for (v, &m) in values.iter_mut().zip(&mask) {
            *v = if m > 0.0 { *v - mean } else { 0.0 };
        }
        let squares = values.iter().map(|v| v * v).collect();
        Some([mask, values, squares])
    };
    // The best shift (coarse pixels, sub-pixel) and its NCC from the six correlation sums of
    // one rotation: n + i·Σf, Σm + i·Σfm and Σf² + i·Σm² at every shift.
    let best_shift = |sums: &[Vec<C>; 3], live: &[bool]| -> BestShift {
        let [n_and_sf, sm_and_sfm, sff_and_smm] = sums;
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
            let row = index(dy, 0);
            if !live[row / nx] {
                continue;
            }
            // Negative dx wrap to the row's end; the divisions of `index` stay out of this loop.
            for dx in -(side as isize - 1)..dw as isize {
                let k = if dx < 0 { row + (nx as isize + dx) as usize } else { row + dx as usize };
                if let Some(v) = ncc_at(k) {
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
        // Rows not computed hold no shift with the overlap needed (see `rows_with_overlap`).
        let around = |k: usize| if live[k / nx] { ncc_at(k) } else { None };
        let oy = vertex(around(index(dy - 1, dx)), around(index(dy + 1, dx)));
        let ox = vertex(around(index(dy, dx - 1)), around(index(dy, dx + 1)));
        Some((v, dy as f64 + oy, dx as f64 + ox))
    };
    // Rotations two at a time: the canvases of two rotations share each forward transform.
    let pairs: Vec<&[f64]> = angles.chunks(2).collect();
    let search_pair = |s: &mut Scratch, two: &[f64]| -> Vec<BestShift> {
        let Scratch { lines, packed, spectra, sums } = s;
        let canvases: Vec<Option<[Vec<f64>; 3]>> = two.iter().map(|&a| canvas(a)).collect();
        // A rotation left out (none, or no pixels that count) is zero in its half of the pair.
        let zero = vec![0.0; side * side];
        let field = |j: usize, q: usize| canvases.get(j).and_then(|c| c.as_ref()).map_or(&zero, |c| &c[q]);
        for q in 0..3 {
            let (re, im) = (field(0, q), field(1, q));
            let row = |y: usize, line: &mut [C]| {
                for ((v, &a), &b) in line[..side].iter_mut().zip(&re[y * side..(y + 1) * side]).zip(&im[y * side..(y + 1) * side]) {
                    *v = C::new(a, b);
                }
            };
            grid.forward(side, row, &mut packed[q], lines);
            let [a, b] = spectra;
            split(&packed[q], ny, nx, &mut a[q], &mut b[q]);
        }
        let mut found = Vec::with_capacity(two.len());
        for (j, c) in canvases.iter().enumerate() {
            let Some([mask, _, _]) = c else {
                found.push(None);
                continue;
            };
            let fixed_rows: Vec<f64> = mask.chunks_exact(side).map(|r| r.iter().sum()).collect();
            let live = rows_with_overlap(&fixed_rows, &moving_rows, ny, min_count);
            let f = &spectra[j];
            // Correlation at every shift of two real signals a, b: ifft(conj(A)·B); two of
            // them per inverse transform, one in the real and one in the imaginary part:
            // n + i·Σf, Σm + i·Σfm and Σf² + i·Σm² (see `best_shift`).
            let [fm, fv, fs] = f;
            let [mm, mv, ms] = &moving_spectra;
            let products = |kx: usize, [n_sf, sm_sfm, sff_smm]: [&mut [C]; 3]| {
                let r = kx * ny..(kx + 1) * ny;
                let (fm, fv, fs, mm, mv, ms) = (&fm[r.clone()], &fv[r.clone()], &fs[r.clone()], &mm[r.clone()], &mv[r.clone()], &ms[r]);
                // a·b + i·(c·d), the multiplication by i a swap of parts: (−p.im, p.re), not
                // four multiplications (IEEE keeps the compiler from folding them).
                let plus_i = |a: C, b: C, c: C, d: C| {
                    let (p, q) = (a.conj() * b, c.conj() * d);
                    C::new(p.re - q.im, p.im + q.re)
                };
                for k in 0..ny {
                    n_sf[k] = plus_i(fm[k], mm[k], fv[k], mm[k]);
                    sm_sfm[k] = plus_i(fm[k], mv[k], fv[k], mv[k]);
                    sff_smm[k] = plus_i(fs[k], mm[k], fm[k], ms[k]);
                }
            };
            grid.inverse(products, &live, sums, lines);
            found.push(best_shift(sums, &live));
        }
        found
    };
    // One set of buffers per thread, each taking the next pair while any is left (rayon's
    // map_init would make fresh buffers at each of its splits: tens of MB of page faults).
    let next = AtomicUsize::new(0);
    let mut found: Vec<(usize, Vec<BestShift>)> = (0..rayon::current_num_threads().clamp(1, pairs.len().max(1)))
        .into_par_iter()
        .flat_map_iter(|_| {
            let mut s = Scratch::default();
            let mut mine = Vec::new();
            loop {
                let p = next.fetch_add(1, Ordering::Relaxed);
                let Some(two) = pairs.get(p) else { break };
                mine.push((p, search_pair(&mut s, two)));
            }
            mine
        })
        .collect();
    found.sort_by_key(|(p, _)| *p);
    let best: Vec<BestShift> = found.into_iter().flat_map(|(_, b)| b).collect();
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
    fn masked_out_pixels_do_not_count_and_a_full_mask_changes_nothing() {
        let (w, h) = (240, 200);
        let moving = blobs(w, h, 9);
        let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
        let truth = Affine2::translation(12.0, -8.0).compose(&Affine2::rotation_about(f64::to_radians(40.0), cx, cy));
        let mut fixed = warp_plane(moving.view(), &truth, w, h);
        // A bright pattern over the fixed image's left third, outside its mask.
        let mut rng = crate::rng::Rng::new(4);
        fixed.slice_mut(ndarray::s![.., ..w / 3]).mapv_inplace(|_| 5.0 * rng.uniform() as f32);
        let keep = Array2::from_shape_fn((h, w), |(_, x)| x >= w / 3 + 8);
        let o = CorrelationOptions::default();
        let all = angles(true, &o);
        let masked = search(fixed.view(), moving.view(), Masks { fixed: Some(&keep), moving: None }, &all, &o);
        let err = corner_error(&masked[0].transform, &truth, w, h);
        assert!(err < 6.0 && masked[0].ncc > 0.8, "masked: corner error {err:.2} px, NCC {}", masked[0].ncc);
        // Masks that keep every pixel give the poses of no masks, to the last bit.
        let everything = Array2::from_elem((h, w), true);
        let plain = search(fixed.view(), moving.view(), Masks::default(), &all, &o);
        let full = search(fixed.view(), moving.view(), Masks { fixed: Some(&everything), moving: Some(&everything) }, &all, &o);
        assert_eq!(plain.len(), full.len());
        for (a, b) in plain.iter().zip(&full) {
            assert_eq!((a.ncc, a.transform.decompose()), (b.ncc, b.transform.decompose()));
        }
    }

    #[test]
    fn grid_transforms_match_a_plain_dft_and_split_two_real_spectra() {
        // Odd and even sides, and zero rows below `rows` (the row pass skips them).
        let (ny, nx, rows) = (6, 9, 4);
        let mut rng = crate::rng::Rng::new(11);
        let mut signal = vec![[0.0f64; 2]; ny * nx];
        for v in &mut signal[..rows * nx] {
            *v = [rng.uniform() - 0.5, rng.uniform() - 0.5];
        }
        let grid = Fft2::new(ny, nx);
        let mut lines = Lines::default();
        let signal = &signal;
        let fill = |part: fn(&[f64; 2]) -> C| move |y: usize, line: &mut [C]| line.iter_mut().enumerate().for_each(|(x, v)| *v = part(&signal[y * nx + x]));
        let (mut packed, mut a, mut b, mut alone) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        grid.forward(rows, fill(|p| C::new(p[0], p[1])), &mut packed, &mut lines);
        split(&packed, ny, nx, &mut a, &mut b);
        // The plain DFT of each real signal, column-major.
        for (part, got) in [(0, &a), (1, &b)] {
            for kx in 0..nx {
                for ky in 0..ny {
                    let mut want = C::default();
                    for y in 0..ny {
                        for x in 0..nx {
                            let phase = -std::f64::consts::TAU * (ky as f64 * y as f64 / ny as f64 + kx as f64 * x as f64 / nx as f64);
                            want += C::from_polar(signal[y * nx + x][part], phase);
                        }
                    }
                    assert!((got[kx * ny + ky] - want).norm() < 1e-9, "part {part} at ({ky}, {kx}): {} vs {want}", got[kx * ny + ky]);
                }
            }
        }
        // Forward then inverse gives the signal back, times the grid size, row-major.
        grid.forward(rows, fill(|p| C::new(p[0], 0.0)), &mut alone, &mut lines);
        let mut back = [Vec::new()];
        grid.inverse(|kx, [line]| line.copy_from_slice(&alone[kx * ny..(kx + 1) * ny]), &[true; 6], &mut back, &mut lines);
        let [back] = back;
        for (k, v) in back.iter().enumerate() {
            assert!((v.re / (ny * nx) as f64 - signal[k][0]).abs() < 1e-12 && v.im.abs() < 1e-9);
        }
        // Only the rows asked for: each as in the whole inverse, bit for bit; the others untouched.
        let wanted = [false, true, true, false, false, true];
        let mut some = [vec![C::new(7.0, 7.0); ny * nx]];
        grid.inverse(|kx, [line]| line.copy_from_slice(&alone[kx * ny..(kx + 1) * ny]), &wanted, &mut some, &mut lines);
        for (k, (v, w)) in some[0].iter().zip(&back).enumerate() {
            assert_eq!(*v, if wanted[k / nx] { *w } else { C::new(7.0, 7.0) }, "row {}", k / nx);
        }
        // Three spectra in one inverse: each as in an inverse of its own, bit for bit.
        let spectra = [&alone, &a, &b];
        let mut three: [Vec<C>; 3] = Default::default();
        grid.inverse(|kx, lines: [&mut [C]; 3]| lines.into_iter().zip(spectra).for_each(|(line, z)| line.copy_from_slice(&z[kx * ny..(kx + 1) * ny])), &wanted, &mut three, &mut lines);
        for (got, z) in three.iter().zip(spectra) {
            let mut one = [Vec::new()];
            grid.inverse(|kx, [line]| line.copy_from_slice(&z[kx * ny..(kx + 1) * ny]), &wanted, &mut one, &mut lines);
            assert!(got.iter().zip(&one[0]).enumerate().all(|(k, (g, o))| !wanted[k / nx] || (g.re.to_bits(), g.im.to_bits()) == (o.re.to_bits(), o.im.to_bits())));
        }
    }

    /// The rows a search skips hold no shift with the overlap it needs: against the overlap
    /// counted pixel by pixel at every shift of the grid (both shifts that wrap onto a row).
    #[test]
    fn rows_left_out_hold_no_shift_with_enough_overlap() {
        let mut rng = crate::rng::Rng::new(5);
        for (side, dh, w, density) in [(11, 7, 9, 0.9), (14, 14, 5, 0.5), (9, 12, 12, 1.0)] {
            let fixed = Array2::from_shape_fn((side, w), |(y, x)| if y > 1 && y + 2 < side && x > 0 && rng.uniform() < density { 1.0 } else { 0.0 });
            let moving = Array2::from_shape_fn((dh, w), |_| if rng.uniform() < density { 1.0 } else { 0.0 });
            let ny = fast_size(side + dh - 1);
            let (fr, mr): (Vec<f64>, Vec<f64>) = (fixed.rows().into_iter().map(|r| r.sum()).collect(), moving.rows().into_iter().map(|r| r.sum()).collect());
            let overlap = |dy: isize, dx: isize| -> f64 {
                let mut n = 0.0;
                for ((r, x), &f) in fixed.indexed_iter() {
                    let (my, mx) = (r as isize + dy, x as isize + dx);
                    if my >= 0 && mx >= 0 && (my as usize) < dh && (mx as usize) < w {
                        n += f * moving[[my as usize, mx as usize]];
                    }
                }
                n
            };
            let most: Vec<f64> = (0..ny).map(|i| (-(w as isize)..w as isize).map(|dx| overlap(i as isize, dx) + overlap(i as isize - ny as isize, dx)).fold(0.0, f64::max)).collect();
            for min_count in [1.0, 3.0, 6.5, 10.0, 20.0] {
                let live = rows_with_overlap(&fr, &mr, ny, min_count);
                for i in 0..ny {
                    assert!(live[i] || most[i] < min_count, "row {i} skipped with {} pixels of overlap (at least {min_count} wanted)", most[i]);
                }
                // And the bound leaves rows out at all where the overlap is small.
                if min_count == 20.0 {
                    assert!(live.iter().any(|&l| !l), "side {side}: every row kept");
                }
            }
        }
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
