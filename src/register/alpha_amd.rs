//! α-AMD: intensity-based registration by the average minimal distance between the α-cuts
//! of two images (Öfverstedt, Lindblad & Sladoje, IEEE TIP 2019).
//!
//! Both images are quantised into Q levels. For a point of level q in one image, its cost at
//! a position of the other image is Σ_{l ≤ q} d(·, {level ≥ l})/Q + Σ_{l > q} d(·, {level < l})/Q:
//! how far one has to go to find points at least as bright (for the levels it reaches) and at
//! most as bright (for the levels above it). These cumulative distance maps and their
//! gradients are tabulated once per pyramid level; each iteration samples a small random
//! fraction of the points, evaluates the symmetric measure (fixed → moving and back) with
//! analytic gradients, and takes an SGD-with-momentum step.
use super::driver;
use super::mask::{self, Mask, Masks};
use super::params::Parametrisation;
use super::transform::{Affine2, TransformKind};
use crate::error::{Error, Result};
use crate::image::filter::{blur_subsample, column_distances_across, normalise_robust, subsample, RowDistances};
use crate::rng::Rng;
use crate::progress::Monitor;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

#[derive(Clone, Debug)]
pub struct PyramidLevel {
    pub factor: usize,
    /// Gaussian blur before subsampling, in full-resolution pixels.
    pub sigma: f64,
    pub iterations: usize,
    /// Step length at the first and at the last iteration (linear in between).
    pub step: (f64, f64),
}

#[derive(Clone, Debug)]
pub struct AlphaAmdOptions {
    pub kind: TransformKind,
    pub alpha_levels: usize,
    pub levels: Vec<PyramidLevel>,
    /// Fraction of the points sampled per iteration.
    pub sampling_fraction: f64,
    pub momentum: f64,
    pub symmetric: bool,
    pub seed: u64,
    /// The search starts with the fixed image's centre on the moving image's centre moved by
    /// this (pixels); see `RegisterOptions::start_shift`.
    pub start_shift: (f64, f64),
    /// The finest pyramid level run (its factor; 1: full resolution). Coarser when a polish
    /// at full resolution follows anyway and the pose is close already (the NCC candidate):
    /// the full-resolution level cost ~40 % of α-AMD at 1 MP (its distance tables).
    pub finest_factor: usize,
}

impl Default for AlphaAmdOptions {
    fn default() -> Self {
        AlphaAmdOptions {
            kind: TransformKind::Rigid,
            alpha_levels: 7,
            levels: vec![
                PyramidLevel { factor: 4, sigma: 12.0, iterations: 3000, step: (2.0, 0.5) },
                PyramidLevel { factor: 2, sigma: 5.0, iterations: 1000, step: (0.5, 0.1) },
                PyramidLevel { factor: 1, sigma: 1.0, iterations: 200, step: (0.1, 0.02) },
            ],
            sampling_fraction: 0.01,
            momentum: 0.9,
            symmetric: true,
            seed: 0,
            start_shift: (0.0, 0.0),
            finest_factor: 1,
        }
    }
}

/// The points of a level image, as indices into its grid (row-major).
enum Points {
    /// Every pixel of the grid (no mask): point i is pixel i, and nothing is stored. Looked
    /// up in a list, each sample's point was one more cache miss at 1 MP.
    All(usize),
    /// The pixels inside a mask, as u32 grid indices: 4 bytes a point, where (x, y, level)
    /// took 24.
    Listed(Vec<u32>),
}

impl Points {
    fn len(&self) -> usize {
        match self {
            Points::All(n) => *n,
            Points::Listed(list) => list.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Point `i`'s grid index.
    #[inline(always)]
    fn grid_index(&self, i: usize) -> u32 {
        match self {
            Points::All(_) => i as u32,
            Points::Listed(list) => list[i],
        }
    }
}

/// One image at one pyramid level: its quantised points and its cumulative distance tables.
struct LevelImage {
    points: Points,
    /// The quantised level of every grid pixel.
    levels: Vec<u8>,
    /// The level grid's width.
    width: usize,
    /// For each level q: the cumulative distance map on the level grid (full-resolution
    /// pixel units). Gradients are those of its bilinear interpolation, so the optimiser
    /// follows exactly the function it evaluates.
    tables: Vec<Array2<f32>>,
    factor: f64,
    /// 1 / factor where that is exact (a power of two: every pyramid level's): positions
    /// are scaled by a multiplication, the same value as the division, at a fraction of it.
    exact_inverse: Option<f64>,
    /// Full-resolution mask: points are taken, and positions sampled, only inside it.
    mask: Option<Mask>,
}

fn quantise(v: f32, q: usize) -> usize {
    ((1.0 + (v as f64 * q as f64 - 0.5).floor()).max(0.0) as usize).min(q)
}

impl LevelImage {
    fn new(plane: &Array2<f32>, q: usize, factor: usize, mask: Option<&Mask>) -> LevelImage {
        let levels = plane.mapv(|v| quantise(v, q) as u8);
        let (h, w) = levels.dim();
        let f = factor as f64;
        let points = match mask {
            None => Points::All(h * w),
            Some(_) => Points::Listed((0..h * w).filter(|&i| mask::contains(mask, (i % w) as f64 * f, (i / w) as f64 * f)).map(|i| i as u32).collect()),
        };
        // The sets "level ≥ l" (upper) and "level < l" (lower), l = 1..=q: set 2(l − 1) is
        // upper_l, set 2(l − 1) + 1 lower_l. Their distance maps are never stored whole: the
        // column pass of every threshold runs first, then each band of rows finishes every
        // set's distances in a scratch row and adds them into the tables (the maps, 14 × 4 MB
        // per 1 MP image, were written, faulted in and read back once per table).
        let mut histogram = vec![0usize; q + 1];
        for &v in levels.iter() {
            histogram[v as usize] += 1;
        }
        let set = |s: usize| (s / 2 + 1, s.is_multiple_of(2)); // (l, upper)
        let empty: Vec<bool> = (0..2 * q).map(|s| {
            let (l, upper) = set(s);
            if upper { histogram[l..].iter().all(|&n| n == 0) } else { histogram[..l].iter().all(|&n| n == 0) }
        }).collect();
        // Upper_l and lower_l split the image: a pixel's column distance to its own set is 0, so
        // one array per threshold holds both sets' column passes (half the memory).
        let across: Vec<Vec<f32>> = (1..=q).into_par_iter().map(|l| column_distances_across(levels.view(), |v| v as usize >= l)).collect();
        // An empty set is "infinitely" far: the image diagonal instead.
        let diagonal = ((h * h + w * w) as f32).sqrt();
        // tables[k] = Σ_l (l ≤ k ? upper_l : lower_l), each map in full-resolution pixel units
        // per level (1/q thick), summed over l in order, along whole rows: the same sums,
        // term by term, as adding whole maps, in vector lanes.
        let (f32_factor, thickness) = (f as f32, 1.0 / q as f32);
        let mut tables: Vec<Array2<f32>> = (0..=q).map(|_| Array2::zeros((h, w))).collect();
        {
            let mut rows: Vec<Vec<ndarray::ArrayViewMut1<f32>>> = (0..h).map(|_| Vec::with_capacity(q + 1)).collect();
            for t in tables.iter_mut() {
                for (y, row) in t.axis_iter_mut(ndarray::Axis(0)).enumerate() {
                    rows[y].push(row);
                }
            }
            // Bands of rows share one scratch (a scratch per row made glibc grow and trim the
            // thread heaps over and over, faulting their pages in anew).
            let scratch = || (vec![vec![0f32; w]; 2 * q], RowDistances::new(w), vec![0f32; w]);
            rows.into_par_iter().enumerate().with_min_len(32).for_each_init(scratch, |(scaled, distances, prefix), (y, mut out)| {
                let own = levels.row(y);
                // Each set's distances along the row in full-resolution units, once.
                for (s, row) in scaled.iter_mut().enumerate() {
                    let (l, upper) = set(s);
                    match across[l - 1].get(y * w..(y + 1) * w) {
                        Some(a) if !empty[s] => distances.finish(a, own.iter().map(|&v| (v as usize >= l) == upper), row),
                        _ => row.fill(diagonal),
                    }
                    for d in row.iter_mut() {
                        *d = *d * f32_factor * thickness;
                    }
                }
                // The upper terms lead every sum and are the same for all k: their running
                // sum (0 + upper_1 + … + upper_k, in that order) is carried from table to table,
                // and only the lower terms are added anew (q(q + 3)/2 adds a pixel, not q(q + 1)).
                prefix.fill(0.0);
                for (k, table) in out.iter_mut().enumerate() {
                    if k >= 1 {
                        for (t, &v) in prefix.iter_mut().zip(&scaled[2 * (k - 1)]) {
                            *t += v;
                        }
                    }
                    table.assign(&ndarray::ArrayView1::from(&prefix[..]));
                    for l in k + 1..=q {
                        for (t, &v) in table.iter_mut().zip(&scaled[2 * (l - 1) + 1]) {
                            *t += v;
                        }
                    }
                }
            });
        }
        let levels = levels.into_raw_vec_and_offset().0;
        let exact_inverse = factor.is_power_of_two().then(|| 1.0 / f);
        LevelImage { points, levels, width: w, tables, factor: f, exact_inverse, mask: mask.cloned() }
    }

    /// Point `i`: (x, y) in full-resolution pixel units, and its level.
    #[inline(always)]
    fn point(&self, i: usize) -> (f64, f64, usize) {
        let g = self.points.grid_index(i);
        // In u32 (points are u32 grid indices): its division is several times faster.
        let w = self.width as u32;
        ((g % w) as f64 * self.factor, (g / w) as f64 * self.factor, self.levels[g as usize] as usize)
    }

    /// Ask the CPU to fetch point `i`'s record, some samples before [`Self::prefetch`] reads
    /// it to know where its table cells are: its entry in the list, or with every pixel a
    /// point, its level (a byte a pixel, 1 MB at 1 MP).
    #[inline(always)]
    fn prefetch_point(&self, i: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            let address = match &self.points {
                Points::Listed(list) => list.get(i).map(|g| g as *const u32 as *const i8),
                Points::All(_) => self.levels.get(i).map(|v| v as *const u8 as *const i8),
            };
            if let Some(address) = address {
                // SAFETY: prefetching is a hint that never faults; the address is inside a vector.
                unsafe {
                    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                    _mm_prefetch::<_MM_HINT_T0>(address);
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = i;
    }

    /// Ask the CPU to fetch the cells [`Self::sample`] will read for (q, x, y). The samples
    /// land at random in tables of megabytes: at 1 MP almost all of an iteration's time was
    /// waiting for memory, one miss after the other; fetched a few samples ahead, the misses
    /// overlap. Only a hint: no effect on any value.
    #[inline(always)]
    fn prefetch(&self, q: usize, x: f64, y: f64) {
        #[cfg(target_arch = "x86_64")]
        {
            let t = &self.tables[q];
            let (h, w) = t.dim();
            let (gx, gy) = (self.to_grid(x), self.to_grid(y));
            if gx >= 0.0 && gy >= 0.0 && (gx as usize) + 1 < w && (gy as usize) + 1 < h {
                let i = gy as usize * w + gx as usize;
                let base = t.as_ptr();
                // SAFETY: prefetching is a hint that never faults; both offsets are inside the table.
                unsafe {
                    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                    _mm_prefetch::<_MM_HINT_T0>(base.add(i) as *const i8);
                    _mm_prefetch::<_MM_HINT_T0>(base.add(i + w) as *const i8);
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (q, x, y);
    }

    /// A full-resolution length in grid units: the same value as dividing by the factor.
    #[inline(always)]
    fn to_grid(&self, v: f64) -> f64 {
        match self.exact_inverse {
            Some(inverse) => v * inverse,
            None => v / self.factor,
        }
    }

    /// Bilinear value of table `q` at full-resolution position (x, y) and its exact partial
    /// derivatives; None outside the image.
    #[inline(always)]
    fn sample(&self, q: usize, x: f64, y: f64) -> Option<[f64; 3]> {
        if !mask::contains(self.mask.as_ref(), x, y) {
            return None;
        }
        let t = &self.tables[q];
        let (h, w) = t.dim();
        let (gx, gy) = (self.to_grid(x), self.to_grid(y));
        if !(gx >= 0.0 && gy >= 0.0 && gx <= (w - 1) as f64 && gy <= (h - 1) as f64) || w < 2 || h < 2 {
            return None;
        }
        // gx, gy ≥ 0 (checked above): truncation is the floor, without a libm call per sample.
        let (x0, y0) = ((gx as usize).min(w - 2), (gy as usize).min(h - 2));
        let (fx, fy) = (gx - x0 as f64, gy - y0 as f64);
        // The table is in standard layout (built by `Array2::zeros`); cells by offset, the
        // bounds checked once above instead of per index.
        let (cells, i) = (t.as_slice_memory_order().unwrap_or_default(), y0 * w + x0);
        let (Some(&[a, b]), Some(&[c, d])) = (cells.get(i..i + 2), cells.get(i + w..i + w + 2)) else { return None };
        let (a, b, c, d) = (a as f64, b as f64, c as f64, d as f64);
        let value = (1.0 - fy) * ((1.0 - fx) * a + fx * b) + fy * ((1.0 - fx) * c + fx * d);
        let dx = self.to_grid((1.0 - fy) * (b - a) + fy * (d - c));
        let dy = self.to_grid((1.0 - fx) * (c - a) + fx * (d - b));
        Some([value, dx, dy])
    }
}

/// The most parameters a transform has (affine: 6).
const MAX_PARAMS: usize = 6;

/// A partial sum over samples: the measure, the number of samples that landed, the gradient.
/// Fixed-size, so the per-sample loop neither allocates nor bounds-checks.
#[derive(Clone, Copy)]
struct Sum {
    value: f64,
    landed: f64,
    gradient: [f64; MAX_PARAMS],
}

impl Sum {
    const ZERO: Sum = Sum { value: 0.0, landed: 0.0, gradient: [0.0; MAX_PARAMS] };

    fn plus(self, other: Sum) -> Sum {
        let mut gradient = self.gradient;
        for (g, o) in gradient.iter_mut().zip(other.gradient) {
            *g += o;
        }
        Sum { value: self.value + other.value, landed: self.landed + other.landed, gradient }
    }

    /// The mean over the samples that landed (their sum where none did).
    fn mean<const N: usize>(self) -> (f64, [f64; N]) {
        let w = if self.landed < 1e-6 { 1.0 } else { self.landed };
        (self.value / w, std::array::from_fn(|k| self.gradient[k] / w))
    }
}

/// Value and gradient of the (symmetric) measure for parameters `p` on sampled points.
fn measure(par: &Parametrisation, p: &[f64], fixed: &LevelImage, moving: &LevelImage, symmetric: bool, samples: (&[usize], &[usize])) -> (f64, Vec<f64>) {
    // One copy of the loops per parameter count: the compiler unrolls the gradient's sums.
    match p.len() {
        2 => measure_n::<2>(par, p, fixed, moving, symmetric, samples),
        3 => measure_n::<3>(par, p, fixed, moving, symmetric, samples),
        4 => measure_n::<4>(par, p, fixed, moving, symmetric, samples),
        _ => measure_n::<MAX_PARAMS>(par, p, fixed, moving, symmetric, samples),
    }
}

fn measure_n<const N: usize>(par: &Parametrisation, p: &[f64], fixed: &LevelImage, moving: &LevelImage, symmetric: bool, samples: (&[usize], &[usize])) -> (f64, Vec<f64>) {
    let (a, t) = par.matrix(p);
    let all = par.derivatives(p);
    let derivs: [([[f64; 2]; 2], [f64; 2]); N] = std::array::from_fn(|k| all[k]);
    let (cf, cm) = (par.fixed_centre, par.moving_centre);
    let to_moving = |i: usize| {
        let (x, y, q) = fixed.point(i);
        let (xc, yc) = (x - cf.0, y - cf.1);
        (xc, yc, q, a[0][0] * xc + a[0][1] * yc + t[0] + cm.0, a[1][0] * xc + a[1][1] * yc + t[1] + cm.1)
    };
    let forward = |acc: &mut Sum, &(xc, yc, q, mx, my): &(f64, f64, usize, f64, f64)| {
        if let Some([d, dx, dy]) = moving.sample(q, mx, my) {
            acc.value += d;
            acc.landed += 1.0;
            for (g, (da, dt)) in acc.gradient.iter_mut().zip(&derivs) {
                let (jx, jy) = (da[0][0] * xc + da[0][1] * yc + dt[0], da[1][0] * xc + da[1][1] * yc + dt[1]);
                *g += dx * jx + dy * jy;
            }
        }
    };
    let fetch_forward = |&(_, _, q, mx, my): &(f64, f64, usize, f64, f64)| moving.prefetch(q, mx, my);
    let forward_sum = || with_prefetch(samples.0, |i| fixed.prefetch_point(i), to_moving, fetch_forward, forward).mean::<N>();
    // Inverse direction: q = A⁻¹(p' − t); ∂q/∂p_k = −A⁻¹ (∂A_k q + ∂t_k).
    let det = a[0][0] * a[1][1] - a[0][1] * a[1][0];
    if !symmetric || det.abs() < 1e-9 {
        let (fv, fg) = forward_sum();
        return (fv, fg.to_vec());
    }
    let inv = [[a[1][1] / det, -a[0][1] / det], [-a[1][0] / det, a[0][0] / det]];
    let to_fixed = |i: usize| {
        let (x, y, q) = moving.point(i);
        let (ux, uy) = (x - cm.0 - t[0], y - cm.1 - t[1]);
        (q, inv[0][0] * ux + inv[0][1] * uy, inv[1][0] * ux + inv[1][1] * uy)
    };
    let backward = |acc: &mut Sum, &(q, qx, qy): &(usize, f64, f64)| {
        if let Some([d, dx, dy]) = fixed.sample(q, qx + cf.0, qy + cf.1) {
            acc.value += d;
            acc.landed += 1.0;
            for (g, (da, dt)) in acc.gradient.iter_mut().zip(&derivs) {
                let (rx, ry) = (da[0][0] * qx + da[0][1] * qy + dt[0], da[1][0] * qx + da[1][1] * qy + dt[1]);
                let (jx, jy) = (-(inv[0][0] * rx + inv[0][1] * ry), -(inv[1][0] * rx + inv[1][1] * ry));
                *g += dx * jx + dy * jy;
            }
        }
    };
    let fetch_backward = |&(q, qx, qy): &(usize, f64, f64)| fixed.prefetch(q, qx + cf.0, qy + cf.1);
    let backward_sum = || with_prefetch(samples.1, |i| moving.prefetch_point(i), to_fixed, fetch_backward, backward).mean::<N>();
    // Both directions in one parallel region: the second core wakes once an iteration, not
    // twice (each wake-up of a sleeping worker costs microseconds; thousands of iterations).
    let ((fv, fg), (bv, bg)) = rayon::join(forward_sum, backward_sum);
    (0.5 * (fv + bv), fg.iter().zip(&bg).map(|(a, b)| 0.5 * (a + b)).collect())
}

/// Sum `step` over `samples` in parallel chunks. Each chunk walks its samples in order,
/// `locate`-ing each (point and pose: where it lands) [`AHEAD`] places before its `step`, so
/// that `fetch` can ask for the memory the step will read while the steps in between run;
/// `fetch_point` asks for the point record `locate` will read, [`AHEAD`] places earlier still.
/// Every sample is located once (the prefetch used to locate it a second time). The chunks'
/// sums are added in order: rayon's `reduce` added them in a tree whose shape followed the
/// threads' work stealing, so the last bits of a transform changed from run to run (4 MP pairs).
fn with_prefetch<L: Copy + Default>(
    samples: &[usize],
    fetch_point: impl Fn(usize) + Sync,
    locate: impl Fn(usize) -> L + Sync,
    fetch: impl Fn(&L) + Sync,
    step: impl Fn(&mut Sum, &L) + Sync,
) -> Sum {
    const CHUNK: usize = 512;
    const AHEAD: usize = 8;
    samples
        .par_chunks(CHUNK)
        .map(|chunk| {
            let mut acc = Sum::ZERO;
            // ring[j % AHEAD]: sample j, located (and fetched) AHEAD steps before it is summed.
            let mut ring = [L::default(); AHEAD];
            for (slot, &i) in ring.iter_mut().zip(chunk) {
                *slot = locate(i);
                fetch(slot);
            }
            for j in 0..chunk.len() {
                if let Some(&further) = chunk.get(j + 2 * AHEAD) {
                    fetch_point(further);
                }
                let here = ring[j % AHEAD];
                if let Some(&next) = chunk.get(j + AHEAD) {
                    let located = locate(next);
                    fetch(&located);
                    ring[j % AHEAD] = located;
                }
                step(&mut acc, &here);
            }
            acc
        })
        .collect::<Vec<Sum>>()
        .into_iter()
        .fold(Sum::ZERO, Sum::plus)
}

/// `t` (full-resolution pixels) on a pyramid level's grid, whose pixel i is pixel
/// `factor`·i of the image (see [`subsample`]).
fn on_grid(t: &Affine2, factor: f64) -> Affine2 {
    let m = t.m;
    Affine2::new([[m[0][0], m[0][1], m[0][2] / factor], [m[1][0], m[1][1], m[1][2] / factor]])
}

pub struct AmdResult {
    pub transform: Affine2,
    /// Final value of the measure at the finest level (on all points): lower is better.
    pub value: f64,
}

/// One pyramid level of `plane`. With a mask the blur is normalised inside it (blur of the
/// masked plane over blur of the mask): pixels outside the ROI (another piece of a torn
/// section, a neighbouring cell) must not bleed into the coarse levels the search runs on.
fn pyramid(plane: ArrayView2<f32>, mask: Option<&Mask>, level: &PyramidLevel) -> Array2<f32> {
    let (sigma, factor) = (level.sigma, level.factor);
    match mask {
        None => blur_subsample(plane, sigma, factor),
        Some(m) => {
            let weight = m.mapv(|b| b as u8 as f32);
            let num = blur_subsample((&plane * &weight).view(), sigma, factor);
            let den = blur_subsample(weight.view(), sigma, factor);
            ndarray::Zip::from(&num).and(&den).and(&subsample(plane, factor)).map_collect(|&n, &d, &v| if d > 1e-3 { n / d } else { v })
        }
    }
}

/// The coarsest pyramid level has at most about this many pixels on its larger side: the
/// many-start search runs there, and its cost grows with the points it samples (a 1 MP pair
/// spent 9.5 s of α-AMD at a 256 px coarsest level, most of it in that search).
pub const COARSEST_SIDE: usize = 160;

/// `levels` for an image whose larger side is `max_side`: coarser levels (factor doubling,
/// σ doubling) are put in front until the coarsest is at most [`COARSEST_SIDE`] pixels wide;
/// the new coarsest takes over the start search's iterations and the level that had them
/// gets those of the level after it.
pub fn levels_for_size(levels: &[PyramidLevel], max_side: usize) -> Vec<PyramidLevel> {
    let mut out = levels.to_vec();
    while let Some(first) = out.first().cloned() {
        if max_side / first.factor.max(1) <= COARSEST_SIDE {
            break;
        }
        if let Some(next) = out.get(1).map(|l| l.iterations) {
            out[0].iterations = next;
        }
        out.insert(0, PyramidLevel { factor: 2 * first.factor.max(1), sigma: 2.0 * first.sigma, ..first });
    }
    out
}

/// Starts refined past the coarsest pyramid level.
const SURVIVING_STARTS: usize = 3;
/// Least fraction of the fixed image a pose must keep in view to win the final pick.
const MIN_PICK_OVERLAP: f64 = 0.25;

/// α-AMD as a [`driver::Metric`]: each level tabulates both images' cumulative distance maps;
/// each start descends by SGD with momentum on random point samples.
struct AmdMetric<'a> {
    fixed: Array2<f32>,
    moving: Array2<f32>,
    masks: Masks<'a>,
    levels: Vec<PyramidLevel>,
    par: Parametrisation,
    scales: Vec<f64>,
    options: &'a AlphaAmdOptions,
    /// Starts that go on after the first level run.
    first_survivors: usize,
}

struct Level {
    fixed: LevelImage,
    moving: LevelImage,
    /// The level's blurred planes as the pick between starts scores them (see `rank`), and
    /// the same with NaN outside the masks (None: no masks).
    planes: (Array2<f32>, Array2<f32>),
    judged: Option<(Array2<f32>, Array2<f32>)>,
    /// Points sampled per iteration from each image.
    counts: (usize, usize),
}

impl driver::Metric for AmdMetric<'_> {
    type Level = Level;

    fn prepare(&self, li: usize, _: &mut Rng) -> Result<Level> {
        let level = &self.levels[li];
        let q = self.options.alpha_levels;
        // Side by side: each image's 2q distance maps alone left a core idle in its last round.
        let (pf, pm) = rayon::join(|| pyramid(self.fixed.view(), self.masks.fixed, level), || pyramid(self.moving.view(), self.masks.moving, level));
        let (fl, ml) = rayon::join(|| LevelImage::new(&pf, q, level.factor, self.masks.fixed), || LevelImage::new(&pm, q, level.factor, self.masks.moving));
        let on_level = |plane: &Array2<f32>, m: Option<&Mask>| mask::outside_to_nan(plane.clone(), m.map(|m| subsample(m.view(), level.factor)).as_ref());
        let judged = (self.masks.fixed.is_some() || self.masks.moving.is_some()).then(|| (on_level(&pf, self.masks.fixed), on_level(&pm, self.masks.moving)));
        if fl.points.is_empty() || ml.points.is_empty() {
            return Err(Error::Region(format!("an ROI is too small for α-AMD's pyramid level {} (every {}th pixel): draw a larger one", li + 1, level.factor)));
        }
        let count = |n: usize| ((n as f64 * self.options.sampling_fraction).round() as usize).clamp(16.min(n), n);
        let counts = (count(fl.points.len()), count(ml.points.len()));
        Ok(Level { fixed: fl, moving: ml, planes: (pf, pm), judged, counts })
    }

    /// Returns minus the measure on (a regular subsample of) all points: higher is better.
    fn optimise(&self, l: &Level, li: usize, p: &mut Vec<f64>, rng: &mut Rng, ticker: &driver::Ticker) -> Result<f64> {
        let level = &self.levels[li];
        let (fl, ml) = (&l.fixed, &l.moving);
        let symmetric = self.options.symmetric;
        let mut velocity = vec![0.0; p.len()];
        let (mut sf, mut sm) = (Vec::with_capacity(l.counts.0), Vec::with_capacity(l.counts.1));
        for it in 0..level.iterations {
            ticker.tick(li)?;
            sf.clear();
            sf.extend((0..l.counts.0).map(|_| rng.below(fl.points.len())));
            sm.clear();
            sm.extend((0..l.counts.1).map(|_| rng.below(ml.points.len())));
            let (_, grad) = measure(&self.par, p, fl, ml, symmetric, (&sf, &sm));
            let frac = if level.iterations > 1 { it as f64 / (level.iterations - 1) as f64 } else { 1.0 };
            let step = level.step.0 + (level.step.1 - level.step.0) * frac;
            for k in 0..p.len() {
                // ∂value/∂p_k already carries a factor of the lever arm (1/scale), so the
                // squared scale makes a unit step move points by about `step` pixels.
                velocity[k] = self.options.momentum * velocity[k] - step * self.scales[k] * self.scales[k] * grad[k];
                p[k] += velocity[k];
            }
        }
        let all_f: Vec<usize> = (0..fl.points.len()).step_by((fl.points.len() / 20000).max(1)).collect();
        let all_m: Vec<usize> = (0..ml.points.len()).step_by((ml.points.len() / 20000).max(1)).collect();
        Ok(-measure(&self.par, p, fl, ml, symmetric, (&all_f, &all_m)).0)
    }

    /// Correlation over the overlap (inside the masks) on the level's own blurred planes; a
    /// pose that keeps too little of the fixed image in view counts as no correlation. The
    /// α-AMD value of a coarse fit ranks the starts poorly (a wrong pose often wins). At full
    /// resolution a pose is judged more finely than the level could place it: on a 1 MP
    /// mosaic the NCC search's right pose, after α-AMD's level at a quarter size (σ 12 px),
    /// was 0.8° off and scored 0.099 on the CoMIRs against a wrong pose's 0.100.
    fn rank(&self, l: &Level, p: &[f64], _: f64) -> f64 {
        let t = on_grid(&self.par.to_affine(p), l.fixed.factor);
        let (fixed, moving) = l.judged.as_ref().unwrap_or(&l.planes);
        let (ncc, in_masks) = crate::register::quality::ncc_and_overlap(fixed.view(), moving.view(), &t);
        // The overlap is the images' (masked pixels are NaN and would count as outside).
        let overlap = if l.judged.is_none() { in_masks } else { crate::register::quality::ncc_and_overlap(l.planes.0.view(), l.planes.1.view(), &t).1 };
        if overlap >= MIN_PICK_OVERLAP && ncc.is_finite() { ncc } else { f64::NEG_INFINITY }
    }

    /// After the first level run the best few (`first_survivors`) go on; after the next only
    /// the best one is refined further: the fine levels cost most (at 1 MP, 70% of α-AMD's
    /// time went to refining three poses at full size).
    fn survivors(&self, li: usize, _: usize) -> usize {
        if li == 0 { self.first_survivors } else { 1 }
    }

    fn iterations(&self, li: usize) -> u64 {
        self.levels[li].iterations as u64
    }
}

/// Register `moving` to `fixed` (both single planes) starting from each of `start_angles`
/// (radians) and keep the best; returns the fixed → moving transform. Only the pixels inside
/// `masks` take part (as points, and as positions the other image's points may land on).
pub fn register(fixed: ArrayView2<f32>, moving: ArrayView2<f32>, masks: Masks, start_angles: &[f64], options: &AlphaAmdOptions, monitor: &dyn Monitor) -> Result<AmdResult> {
    let angles: Vec<f64> = if start_angles.is_empty() { vec![0.0] } else { start_angles.to_vec() };
    search(fixed, moving, masks, options, |levels| levels_between(levels, options.finest_factor, usize::MAX), Starts { poses: |par: &Parametrisation| angles.iter().map(|&a| par.initial(a)).collect(), survivors: SURVIVING_STARTS }, monitor)
}

/// Finish poses found on a coarse grid by another search (fixed → moving `initials`, e.g.
/// [`super::correlation`]) on the pyramid levels at least twice as fine as the grid's
/// `coarse_factor` (down to `options.finest_factor`), and keep the best: the coarse levels,
/// which find the basin, are skipped. Why twice: the search's pose is good to about a coarse
/// pixel, which a level of nearly the same size cannot improve on, while its blur (made for
/// finding basins: σ 12 px at factor 4) leaves the descent little to hold on to. On a 546×273
/// pair (coarse factor 5) the factor-4 level took the search's exact pose 50 px and 5° away,
/// and the NCC candidate failed where the factor-2 level alone kept it within 0.02 px.
/// Only the best pose after the first level run is refined further (with two levels or
/// more: images over 896 px a side, copies 8 px a pixel): the search's poses lie apart (see
/// [`super::correlation::CorrelationOptions::apart`]), and after a level they are in their
/// basins, so the NCC that ranks them (on the level's planes, see `AmdMetric::rank`) ranks
/// basins, not noise. The two others on the next level cost a third of the polish at 1 MP.
pub fn polish(fixed: ArrayView2<f32>, moving: ArrayView2<f32>, masks: Masks, initials: &[Affine2], coarse_factor: usize, options: &AlphaAmdOptions, monitor: &dyn Monitor) -> Result<AmdResult> {
    search(fixed, moving, masks, options, |levels| levels_between(levels, options.finest_factor, coarse_factor / 2), Starts { poses: |par: &Parametrisation| initials.iter().map(|t| par.from_affine(t)).collect(), survivors: 1 }, monitor)
}

/// The levels whose factor lies between `finest` and `coarsest` (both included); the finest
/// level of all when none does.
fn levels_between(levels: Vec<PyramidLevel>, finest: usize, coarsest: usize) -> Vec<PyramidLevel> {
    let last = levels.last().cloned();
    let kept: Vec<PyramidLevel> = levels.into_iter().filter(|l| l.factor >= finest && l.factor <= coarsest).collect();
    if kept.is_empty() { last.into_iter().collect() } else { kept }
}

/// A search's starting poses (made from its parametrisation) and how many of them go on
/// after the first level run.
struct Starts<F> {
    poses: F,
    survivors: usize,
}

fn search(
    fixed: ArrayView2<f32>,
    moving: ArrayView2<f32>,
    masks: Masks,
    options: &AlphaAmdOptions,
    choose_levels: impl FnOnce(Vec<PyramidLevel>) -> Vec<PyramidLevel>,
    starts: Starts<impl FnOnce(&Parametrisation) -> Vec<Vec<f64>>>,
    monitor: &dyn Monitor,
) -> Result<AmdResult> {
    let (fh, fw) = fixed.dim();
    let (mh, mw) = moving.dim();
    if fh < 8 || fw < 8 || mh < 8 || mw < 8 {
        return Err(Error::UnsupportedImage("α-AMD needs images of at least 8×8 pixels".into()));
    }
    // Points are u32 grid indices (see `Points`).
    if fh * fw > u32::MAX as usize || mh * mw > u32::MAX as usize {
        return Err(Error::UnsupportedImage(format!("α-AMD takes images of at most {} pixels (bin larger ones)", u32::MAX)));
    }
    if options.levels.is_empty() || options.alpha_levels < 1 || options.alpha_levels > 64 {
        return Err(Error::Parameter("α-AMD needs at least one pyramid level and 1..64 alpha levels".into()));
    }
    masks.check((fh, fw), (mh, mw))?;
    let levels = choose_levels(levels_for_size(&options.levels, fw.max(fh).max(mw).max(mh)));
    let centre = |w: usize, h: usize| ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    let radius = (((fw * fw + fh * fh) as f64) / 12.0).sqrt(); // rms radius of a w×h rectangle
    let (mcx, mcy) = centre(mw, mh);
    let par = Parametrisation { kind: options.kind, fixed_centre: centre(fw, fh), moving_centre: (mcx + options.start_shift.0, mcy + options.start_shift.1), radius };
    let (first_survivors, starts) = (starts.survivors, (starts.poses)(&par));
    let (fixed, moving) = rayon::join(|| normalise_robust(fixed), || normalise_robust(moving));
    let metric = AmdMetric { fixed, moving, masks, scales: par.scales(), par, levels, options, first_survivors };
    let schedule = driver::Schedule { levels: metric.levels.len(), streams: driver::Streams::PerStart, seed: options.seed, label: "α-AMD", report_every: 100 };
    let best = driver::multi_start(&metric, starts, &schedule, monitor)?;
    Ok(AmdResult { transform: metric.par.to_affine(&best.params), value: -best.value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::filter::distance_transform;

    /// The sum over the samples is the same in every run: the chunks' sums in order, as one
    /// thread adds them, whatever the threads' timing (a tree of rayon's gave other last bits).
    #[test]
    fn sums_over_samples_add_the_chunks_in_order() {
        let samples: Vec<usize> = (0..100_000).collect();
        let value = |i: usize| ((i as f64) * 0.37).sin() * 1e3 + 1.0 / (1.0 + i as f64);
        let step = |acc: &mut Sum, &i: &usize| {
            acc.value += value(i);
            acc.landed += 1.0;
            acc.gradient[0] += value(i) * 1e-7;
        };
        let want = samples.chunks(512).map(|c| c.iter().fold(Sum::ZERO, |mut a, i| { step(&mut a, i); a })).fold(Sum::ZERO, Sum::plus);
        for _ in 0..20 {
            let got = with_prefetch(&samples, |_| {}, |i| i, |_| {}, step);
            assert_eq!((got.value.to_bits(), got.gradient[0].to_bits()), (want.value.to_bits(), want.gradient[0].to_bits()));
        }
    }

    fn blobs(w: usize, h: usize, shift: f64) -> Array2<f32> {
        Array2::from_shape_fn((h, w), |(y, x)| {
            let (x, y) = (x as f64 - shift, y as f64);
            let v = (-((x - 20.0).powi(2) + (y - 18.0).powi(2)) / 60.0).exp() + 0.7 * (-((x - 40.0).powi(2) + (y - 30.0).powi(2)) / 30.0).exp();
            v as f32
        })
    }

    /// The analytic gradient equals finite differences of the measure (same points). The
    /// fixed image is small and central so that no point leaves the moving image, where the
    /// measure jumps (points outside are not counted).
    #[test]
    fn large_images_get_a_coarser_start_level_small_ones_keep_the_defaults() {
        let d = AlphaAmdOptions::default().levels;
        let shape = |side| levels_for_size(&d, side).iter().map(|l| (l.factor, l.iterations)).collect::<Vec<_>>();
        assert_eq!(shape(192), vec![(4, 3000), (2, 1000), (1, 200)]);
        assert_eq!(shape(640), vec![(4, 3000), (2, 1000), (1, 200)]);
        assert_eq!(shape(1024), vec![(8, 3000), (4, 1000), (2, 1000), (1, 200)]);
        assert_eq!(shape(2048), vec![(16, 3000), (8, 1000), (4, 1000), (2, 1000), (1, 200)]);
    }

    /// The tables built in one pass per row equal their definition: table k at a pixel is the
    /// sum of the distances to "level ≥ l" for l ≤ k and to "level < l" for l > k (each 1/q
    /// thick, in full-resolution pixels); the points are every pixel with its level.
    #[test]
    fn tables_and_points_are_their_definition() {
        let plane = normalise_robust(blobs(23, 17, 2.0).view());
        let (q, factor) = (5, 2);
        let li = LevelImage::new(&plane, q, factor, None);
        let levels = plane.mapv(|v| quantise(v, q));
        let distance_to = |set: Array2<bool>| if set.iter().any(|&b| b) { distance_transform(set.view()) } else { Array2::from_elem(set.dim(), ((17 * 17 + 23 * 23) as f32).sqrt()) };
        for k in 0..=q {
            let mut want = Array2::<f32>::zeros((17, 23));
            for l in 1..=q {
                want += &if l <= k { distance_to(levels.mapv(|v| v >= l)) } else { distance_to(levels.mapv(|v| v < l)) };
            }
            want.mapv_inplace(|v| v * factor as f32 / q as f32);
            let worst = (&li.tables[k] - &want).iter().fold(0f32, |m, d| m.max(d.abs()));
            assert!(worst < 1e-4, "table {k}: off by {worst}");
        }
        assert_eq!(li.points.len(), 17 * 23);
        assert_eq!(li.point(23 * 3 + 4), (8.0, 6.0, levels[[3, 4]]));
        // With a mask (full resolution, 34 × 46 here) the points are the grid pixels inside
        // it, in row-major order: a disc about full-resolution (20, 14).
        let mask = Array2::from_shape_fn((34, 46), |(y, x)| (x as f64 - 20.0).powi(2) + (y as f64 - 14.0).powi(2) <= 64.0);
        let masked = LevelImage::new(&plane, q, factor, Some(&mask));
        let inside: Vec<(usize, usize)> = levels.indexed_iter().map(|(p, _)| p).filter(|&(y, x)| mask[[2 * y, 2 * x]]).collect();
        assert_eq!(masked.points.len(), inside.len());
        for (i, &(y, x)) in inside.iter().enumerate() {
            assert_eq!(masked.point(i), ((2 * x) as f64, (2 * y) as f64, levels[[y, x]]));
        }
    }

    #[test]
    fn the_finest_factor_drops_the_finer_levels_and_polish_the_coarser() {
        let d = AlphaAmdOptions::default().levels;
        let factors = |finest, coarsest| levels_between(d.clone(), finest, coarsest).iter().map(|l| l.factor).collect::<Vec<_>>();
        assert_eq!(factors(1, usize::MAX), vec![4, 2, 1]);
        assert_eq!(factors(2, usize::MAX), vec![4, 2]);
        assert_eq!(factors(2, 2), vec![2]);
        assert_eq!(factors(1, 2), vec![2, 1]);
        assert_eq!(factors(2, 4), vec![4, 2]);
        // None left: the finest level of all.
        assert_eq!(factors(8, usize::MAX), vec![1]);
    }

    /// A polish on two levels (a 640² pair: the levels at factors 4 and 2, at most half the
    /// search's 8) refines all three poses on the first and only the best one on the second,
    /// and its progress ends at its total. After a search on coarser copies (factor 5) only the
    /// level at 2 runs. The search from angles keeps three after its first level.
    #[test]
    fn the_polish_refines_one_pose_past_its_first_level_and_progress_ends_at_its_total() {
        let mut rng = Rng::new(3);
        let spots: Vec<(f64, f64, f64)> = (0..60).map(|_| (rng.range(0.0, 640.0), rng.range(0.0, 640.0), rng.range(6.0, 20.0))).collect();
        let scene = |shift: f64| Array2::from_shape_fn((640, 640), |(y, x)| spots.iter().map(|&(sx, sy, r)| (-((x as f64 - shift - sx).powi(2) + (y as f64 - sy).powi(2)) / (2.0 * r * r)).exp()).sum::<f64>() as f32);
        let (fixed, moving) = (scene(0.0), scene(4.0));
        let options = AlphaAmdOptions { finest_factor: 2, ..AlphaAmdOptions::default() };
        let initials = [Affine2::IDENTITY, Affine2::rotation_about(0.5, 320.0, 320.0), Affine2::rotation_about(-0.5, 320.0, 320.0)];
        let counted = driver::Counted::default();
        let found = polish(fixed.view(), moving.view(), Masks::default(), &initials, 8, &options, &counted).unwrap();
        let (done, total) = *counted.0.lock().unwrap();
        // Level 4 runs 3000 iterations at this size, level 2 1000 (see `levels_for_size`).
        assert_eq!((done, total), (3 * 3000 + 1000, 3 * 3000 + 1000));
        // The moving spots lie 4 px to the right: the pose found says so.
        let (x, y) = found.transform.apply(100.0, 500.0);
        assert!((x - 104.0).abs() < 0.5 && (y - 500.0).abs() < 0.5, "({x}, {y})");
        // Copies 5 px a pixel: level 4 is not twice as fine, level 2 alone runs (all three).
        let counted = driver::Counted::default();
        let found = polish(fixed.view(), moving.view(), Masks::default(), &initials, 5, &options, &counted).unwrap();
        assert_eq!(*counted.0.lock().unwrap(), (3 * 1000, 3 * 1000));
        let (x, y) = found.transform.apply(100.0, 500.0);
        assert!((x - 104.0).abs() < 0.5 && (y - 500.0).abs() < 0.5, "({x}, {y})");
        // From angles at 640²: levels 4, 2 and 1 (3000, 1000, 200 iterations), three starts
        // past the first level, one past the second.
        let counted = driver::Counted::default();
        register(fixed.view(), moving.view(), Masks::default(), &[0.0, 0.4, -0.4], &AlphaAmdOptions::default(), &counted).unwrap();
        assert_eq!(*counted.0.lock().unwrap(), (3 * 3000 + 3 * 1000 + 200, 3 * 3000 + 3 * 1000 + 200));
    }

    /// After a coarse level a right pose is a few pixels off; its fine texture no longer
    /// matches. A wrong pose that matches a quarter of the image exactly then scores higher at
    /// full resolution, but not on the level's own blurred planes, which rank the starts.
    #[test]
    fn starts_are_ranked_on_the_level_they_were_fitted_on() {
        let mut rng = Rng::new(5);
        let noise = Array2::from_shape_fn((256, 256), |_| rng.range(-1.0, 1.0) as f32);
        let texture = crate::image::filter::gaussian_blur(noise.view(), 1.0);
        let spots: Vec<(f64, f64)> = (0..40).map(|_| (rng.range(0.0, 256.0), rng.range(0.0, 256.0))).collect();
        let coarse = Array2::from_shape_fn((256, 256), |(y, x)| spots.iter().map(|&(sx, sy)| (-((x as f64 - sx).powi(2) + (y as f64 - sy).powi(2)) / 800.0).exp()).sum::<f64>() as f32);
        let std = |a: &Array2<f32>| a.std(0.0);
        // Fine texture with ten times the variance of the coarse structure.
        let fixed = &coarse + &(&texture * (10f32.sqrt() * std(&coarse) / std(&texture)));
        // The moving image is the fixed one, but for its columns 64..128, which hold the fixed
        // columns 0..64: 64 px to the right is a wrong pose that matches them exactly.
        let mut moving = fixed.clone();
        let left = fixed.slice(ndarray::s![.., 0..64]).to_owned();
        moving.slice_mut(ndarray::s![.., 64..128]).assign(&left);
        let (right_but_off, wrong) = (Affine2::translation(3.0, 0.0), Affine2::translation(64.0, 0.0));
        let full = |t: &Affine2| crate::register::quality::ncc_and_overlap(fixed.view(), moving.view(), t).0;
        assert!(full(&wrong) > full(&right_but_off) + 0.1, "at full resolution the wrong pose wins: {} against {}", full(&wrong), full(&right_but_off));
        let options = AlphaAmdOptions::default();
        let par = Parametrisation { kind: TransformKind::Rigid, fixed_centre: (127.5, 127.5), moving_centre: (127.5, 127.5), radius: 100.0 };
        let levels = vec![PyramidLevel { factor: 4, sigma: 12.0, iterations: 1, step: (1.0, 1.0) }];
        let (fixed, moving) = (normalise_robust(fixed.view()), normalise_robust(moving.view()));
        let metric = AmdMetric { fixed, moving, masks: Masks::default(), scales: par.scales(), par, levels, options: &options, first_survivors: 1 };
        let level = driver::Metric::prepare(&metric, 0, &mut Rng::new(0)).unwrap();
        let rank = |t: &Affine2| driver::Metric::rank(&metric, &level, &metric.par.from_affine(t), 0.0);
        assert!(rank(&right_but_off) > rank(&wrong) + 0.1, "on the level the right pose wins: {} against {}", rank(&right_but_off), rank(&wrong));
    }

    #[test]
    fn gradient_matches_finite_differences() {
        for kind in [TransformKind::Rigid, TransformKind::Affine] {
            let fixed = LevelImage::new(&normalise_robust(blobs(40, 30, 0.0).view()), 7, 1, None);
            let moving = LevelImage::new(&normalise_robust(blobs(64, 48, 3.0).view()), 7, 1, None);
            let par = Parametrisation { kind, fixed_centre: (19.5, 14.5), moving_centre: (31.5, 23.5), radius: 20.0 };
            let mut p = par.initial(0.05);
            let n = p.len();
            p[n - 2] = 1.3;
            p[n - 1] = -0.7;
            let all_f: Vec<usize> = (0..fixed.points.len()).collect();
            let all_m: Vec<usize> = (0..moving.points.len()).collect();
            let (_, g) = measure(&par, &p, &fixed, &moving, false, (&all_f, &all_m));
            for k in 0..n {
                let eps = 1e-4;
                let (mut a, mut b) = (p.clone(), p.clone());
                a[k] += eps;
                b[k] -= eps;
                let value = |q: &[f64]| measure(&par, q, &fixed, &moving, false, (&all_f, &all_m)).0;
                let fd = (value(&a) - value(&b)) / (2.0 * eps);
                assert!((fd - g[k]).abs() < 0.02 * fd.abs().max(g[k].abs()) + 2e-4, "{kind:?} parameter {k}: analytic {} vs numeric {fd}", g[k]);
            }
        }
    }
}
