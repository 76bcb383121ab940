//! Plain filters on single planes: Gaussian blur, downsampling, normalisation, and the
//! exact Euclidean distance transform. Shared by training augmentation and registration.
use ndarray::{Array2, ArrayView2};
use crate::lanes::wide_lanes;
use rayon::prelude::*;

/// Reflect an index into [0, n) (mirror boundary without repeating the edge pixel).
pub fn mirror(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    (if m < n as isize { m } else { period - m }) as usize
}

fn gaussian_kernel(sigma: f64) -> Vec<f32> {
    let radius = (4.0 * sigma).ceil().max(1.0) as isize;
    let k: Vec<f64> = (-radius..=radius).map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp()).collect();
    let total: f64 = k.iter().sum();
    k.iter().map(|v| (v / total) as f32).collect()
}

/// `out += k · src`, element by element: the blur's inner loop (contiguous, it vectorises).
#[inline(always)]
fn add_scaled(out: &mut [f32], k: f32, src: &[f32]) {
    for (o, v) in out.iter_mut().zip(src) {
        *o += k * v;
    }
}

wide_lanes! {
    /// One output row of the horizontal pass, keeping every `factor`-th column: `phases` is
    /// the input row mirrored by the kernel's radius on each side, split into `factor`
    /// phases of `n` samples (see [`split_phases`]), so that tap j of every output is one
    /// contiguous run of phase j mod factor.
    fn blur_row(row: &mut [f32], k: &[f32], phases: &[f32], n: usize, factor: usize) {
        for (j, &kv) in k.iter().enumerate() {
            // One scaled, shifted row per tap: contiguous multiply-adds that vectorise.
            add_scaled(row, kv, &phases[(j % factor) * n + j / factor..][..row.len()]);
        }
    }
}

/// `padded` split into `factor` phases of `n` = ⌈len / factor⌉ samples, phase after phase
/// (in `scratch`): padded[i] goes to phase i mod factor at i div factor. Output x of a
/// subsampling blur reads padded[x·factor + j] for tap j, which is phase j mod factor at
/// x + j div factor: a contiguous run for all x (read strided, the gather per output was most
/// of the pyramid's time). Returns the phases and n; for factor 1, `padded` itself.
fn split_phases<'a>(padded: &'a [f32], factor: usize, scratch: &'a mut Vec<f32>) -> (&'a [f32], usize) {
    if factor == 1 {
        return (padded, padded.len());
    }
    let n = padded.len().div_ceil(factor);
    scratch.clear();
    scratch.resize(factor * n, 0.0);
    for (i, &v) in padded.iter().enumerate() {
        scratch[(i % factor) * n + i / factor] = v;
    }
    (scratch, n)
}

wide_lanes! {
    /// Output row `y` (in input rows) of the vertical pass over `tmp`, `h` rows of `row.len()`.
    fn blur_column(row: &mut [f32], k: &[f32], tmp: &[f32], y: usize, h: usize) {
        let (ow, r) = (row.len(), (k.len() / 2) as isize);
        for (j, &kv) in k.iter().enumerate() {
            add_scaled(row, kv, &tmp[mirror(y as isize + j as isize - r, h) * ow..][..ow]);
        }
    }
}

/// Separable Gaussian blur with mirror boundary; σ below 0.2 pixels returns a copy.
pub fn gaussian_blur(plane: ArrayView2<f32>, sigma: f64) -> Array2<f32> {
    if sigma < 0.2 || plane.is_empty() {
        return plane.to_owned();
    }
    blur_kept(plane, sigma, 1)
}

/// `subsample(gaussian_blur(plane, sigma), factor)`, bit for bit, computing only the pixels
/// kept: the pyramid levels of α-AMD and MI blur a full-resolution plane by σ up to 24 px
/// (nearly 200 taps) to keep one pixel in 64 of it.
pub fn blur_subsample(plane: ArrayView2<f32>, sigma: f64, factor: usize) -> Array2<f32> {
    let factor = factor.max(1);
    if sigma < 0.2 || plane.is_empty() {
        return subsample(plane, factor);
    }
    blur_kept(plane, sigma, factor)
}

/// The blur of both above (σ ≥ 0.2, a non-empty plane) at every `factor`-th pixel: each kept
/// pixel sums the same taps in the same order whatever the factor.
#[expect(clippy::expect_used, reason = "the input is made contiguous and the buffer filled to exactly oh × ow samples above")]
fn blur_kept(plane: ArrayView2<f32>, sigma: f64, factor: usize) -> Array2<f32> {
    let (h, w) = plane.dim();
    let (oh, ow) = (h.div_ceil(factor), w.div_ceil(factor));
    let k = gaussian_kernel(sigma);
    let r = (k.len() / 2) as isize;
    let src = plane.as_standard_layout();
    let src = src.as_slice().expect("standard layout");
    // Horizontal pass, every row, the kept columns.
    let mut tmp = vec![0f32; h * ow];
    tmp.par_chunks_mut(ow).enumerate().for_each_init(|| (Vec::new(), Vec::new()), |(padded, phases), (y, row)| {
        // Mirror the row into a padded buffer once: no border test per tap.
        let line = &src[y * w..(y + 1) * w];
        padded.clear();
        padded.extend((-r..0).map(|x| line[mirror(x, w)]));
        padded.extend_from_slice(line);
        padded.extend((w as isize..w as isize + r).map(|x| line[mirror(x, w)]));
        let (phases, n) = split_phases(padded, factor, phases);
        blur_row(row, &k, phases, n, factor);
    });
    // Vertical pass, the kept rows.
    let mut out = vec![0f32; oh * ow];
    out.par_chunks_mut(ow).enumerate().for_each(|(yo, row)| blur_column(row, &k, &tmp, yo * factor, h));
    Array2::from_shape_vec((oh, ow), out).expect("oh*ow samples")
}

/// Every `factor`-th pixel (blur first to avoid aliasing); of a mask too.
pub fn subsample<T: Copy>(plane: ArrayView2<T>, factor: usize) -> Array2<T> {
    let (h, w) = plane.dim();
    let (oh, ow) = (h.div_ceil(factor), w.div_ceil(factor));
    Array2::from_shape_fn((oh, ow), |(y, x)| plane[[y * factor, x * factor]])
}

/// Map the 0.5–99.5 percentile range of the finite values to [0, 1] (clamped).
pub fn normalise_robust(plane: ArrayView2<f32>) -> Array2<f32> {
    let (lo, hi) = robust_range(plane);
    plane.mapv(|v| if v.is_finite() { ((v - lo) / (hi - lo)).clamp(0.0, 1.0) } else { 0.0 })
}

/// The second pass of a distance transform, one row at a time, with its scratch (one per
/// thread, reused row after row).
pub struct RowDistances {
    cols: Vec<f32>,
    apex: Vec<i64>,
    envelope: Vec<usize>,
}

impl RowDistances {
    pub fn new(width: usize) -> RowDistances {
        RowDistances { cols: vec![0.0; width], apex: vec![0; width], envelope: Vec::with_capacity(width) }
    }

    /// Each pixel's distance to the nearest pixel of one set along a row, into `out`: `across`
    /// is the row of [`column_distances_across`] for a split of which the set is one side, and
    /// `inside` says per pixel whether it lies in that set (its column distance is then 0:
    /// `across` holds the distance to the other side).
    pub fn finish(&mut self, across: &[f32], inside: impl Iterator<Item = bool>, out: &mut [f32]) {
        for ((c, &d), inside) in self.cols.iter_mut().zip(across).zip(inside) {
            *c = if inside { 0.0 } else { d };
        }
        distance_row(&self.cols, out, &mut self.apex, &mut self.envelope);
    }
}

/// Exact Euclidean distance transform of one row, given each pixel's distance to the nearest
/// set pixel of its column (`cols`; +∞ in `out` where the whole set is empty): the lower
/// envelope of the parabolas (q − p)² + cols[p]² (Felzenszwalb & Huttenlocher). Exact: the
/// envelope's crossing points are compared by cross-multiplying whole numbers (a division per
/// pixel was most of the row's time), each parabola's stretch starts at a quotient corrected
/// in whole numbers ([`takes_over`]), and the squared distances are whole numbers in f64.
/// `apex`: each parabola's cols[p]² + p²; `envelope`: the visible parabolas, left to right.
fn distance_row(cols: &[f32], out: &mut [f32], apex: &mut [i64], envelope: &mut Vec<usize>) {
    envelope.clear();
    for (q, &c) in cols.iter().enumerate() {
        if c.is_infinite() {
            continue;
        }
        let c = c as i64;
        apex[q] = c * c + (q * q) as i64;
        // The last parabola p is hidden when q's crossing with it lies at or before p's
        // crossing with the one before: (A_q − A_p) / 2(q − p) ≤ (A_p − A_pp) / 2(p − pp).
        while let [.., pp, p] = envelope[..] {
            if (apex[q] - apex[p]) * (p - pp) as i64 <= (apex[p] - apex[pp]) * (q - p) as i64 {
                envelope.pop();
            } else {
                break;
            }
        }
        envelope.push(q);
    }
    if envelope.is_empty() {
        out.fill(f32::INFINITY);
        return;
    }
    // Each visible parabola p gives the pixels from where it takes over from the one before
    // to where the next takes over: r takes over from p at the first q with
    // A_r − A_p < 2q(r − p), i.e. q = ⌊(A_r − A_p) / 2(r − p)⌋ + 1. One quotient per
    // parabola instead of a compare and a mispredicted branch per pixel, and each stretch is
    // one loop without branches (vector lanes). The same distances to the last bit: the same
    // parabola per pixel, the same whole-number d, the same rounding of √d.
    let mut start = 0;
    for (k, &p) in envelope.iter().enumerate() {
        // Inside a run of set pixels (column distance 0) each pixel's own parabola gives it
        // alone, at distance 0: what the general case below computes (r = p + 1 takes over at
        // ⌊(2p + 1) / 2⌋ + 1 = p + 1, √0 = 0), without its division. Half of the rows α-AMD
        // finishes are such runs (every pixel lies in one set of each threshold's pair).
        if start == p && cols[p] == 0.0 && envelope.get(k + 1) == Some(&(p + 1)) && cols.get(p + 1) == Some(&0.0) {
            out[p] = 0.0;
            start = p + 1;
            continue;
        }
        let end = match envelope.get(k + 1) {
            Some(&r) => takes_over(apex[r] - apex[p], 2 * (r - p) as i64).clamp(start as i64, cols.len() as i64) as usize,
            None => cols.len(),
        };
        let c = cols[p] as f64;
        let (p, c2) = (p as f64, c * c);
        for (q, o) in out[start..end].iter_mut().enumerate() {
            let dq = (start + q) as f64 - p;
            // Whole numbers below 2^53: exact in f64, as the i64 sum was.
            *o = (dq * dq + c2).sqrt() as f32;
        }
        start = end;
    }
}

/// The least whole q with num < den · q (den > 0): ⌊num / den⌋ + 1. The quotient in floating
/// point (an integer division per parabola cost more than the compare per pixel it replaces),
/// then corrected in whole numbers so that it is exact at any size.
#[inline(always)]
fn takes_over(num: i64, den: i64) -> i64 {
    let mut q = (num as f64 / den as f64).floor() as i64 + 1;
    while num >= den * q {
        q += 1;
    }
    while num < den * (q - 1) {
        q -= 1;
    }
    q
}

/// Euclidean distance from every pixel to the nearest `true` pixel (0 on them; +∞ if none).
#[expect(clippy::expect_used, reason = "the buffer is filled to exactly h × w samples above")]
pub fn distance_transform(set: ArrayView2<bool>) -> Array2<f32> {
    let (h, w) = set.dim();
    let across = column_distances_across(set, |inside| inside);
    let mut out = vec![0f32; h * w];
    out.par_chunks_mut(w).zip(across.par_chunks(w)).enumerate().for_each_init(|| RowDistances::new(w), |rows, (y, (row, a))| {
        rows.finish(a, set.row(y).iter().copied(), row);
    });
    Array2::from_shape_vec((h, w), out).expect("h*w samples")
}

/// The first pass of a distance transform, for both sides of a split at once: each pixel's
/// distance within its column to the nearest pixel on the other side (`side` false against
/// true; +∞ if the column has none), row-major. A pixel's distance to its own side is 0, so
/// this one array is the column pass of both sets (α-AMD needs both of every threshold);
/// [`RowDistances::finish`] finishes one row of either.
pub fn column_distances_across<T: Copy>(plane: ArrayView2<T>, side: impl Fn(T) -> bool) -> Vec<f32> {
    let (h, w) = plane.dim();
    // For a set (0 on it, ∞ off it) the lower envelope of the column's parabolas is the
    // squared distance to the nearest set pixel of the column, which two scans down and up
    // the rows give exactly, in memory order (the envelope pass read the columns across rows,
    // a cache miss per pixel: most of α-AMD's table time at 1 MP).
    // f32: column distances are whole numbers (exact in f32 up to 2^24 rows), at half the
    // memory traffic of f64; each row squares them in whole numbers.
    let mut out = vec![f32::INFINITY; h * w];
    // Distance to the nearest pixel of each side seen so far in the scan.
    let (mut on, mut off) = (vec![f32::INFINITY; w], vec![f32::INFINITY; w]);
    for y in 0..h {
        for (x, ((u, d), &v)) in on.iter_mut().zip(off.iter_mut()).zip(plane.row(y)).enumerate() {
            let is_on = side(v);
            *u = if is_on { 0.0 } else { *u + 1.0 };
            *d = if is_on { *d + 1.0 } else { 0.0 };
            out[y * w + x] = if is_on { *d } else { *u };
        }
    }
    on.fill(f32::INFINITY);
    off.fill(f32::INFINITY);
    for y in (0..h).rev() {
        for (x, ((u, d), &v)) in on.iter_mut().zip(off.iter_mut()).zip(plane.row(y)).enumerate() {
            let is_on = side(v);
            *u = if is_on { 0.0 } else { *u + 1.0 };
            *d = if is_on { *d + 1.0 } else { 0.0 };
            let o = &mut out[y * w + x];
            *o = o.min(if is_on { *d } else { *u });
        }
    }
    out
}

/// The 0.5 and 99.5 percentiles of a plane, ignoring NaN/Inf: the range used to normalise
/// inputs and to display previews.
pub fn robust_range(plane: ArrayView2<f32>) -> (f32, f32) {
    // Percentiles of a regular sample of at most ~4 M pixels: as good for display and
    // normalisation, and no full copy of a 10000² plane.
    let step = (plane.len() / (4 << 20)).max(1);
    let [lo, hi] = match plane.as_slice() {
        Some(values) => percentiles(|| values.iter().step_by(step).copied(), [0.005, 0.995]),
        None => percentiles(|| plane.iter().step_by(step).copied(), [0.005, 0.995]),
    }
    .unwrap_or([0.0, 1.0]);
    if hi > lo { (lo, hi) } else { (lo, lo + 1.0) }
}

/// The values at quantiles `qs` (ascending; the sample of rank round((n − 1)·q)) of the finite
/// values `values()` yields, as a sort by `f32::total_cmp` would give them; None if there are
/// none. Two passes, no copy: one counts the values by the top 16 bits of an order key, which
/// gives each rank's bucket; the other gathers those buckets' few values to select in. (Two
/// `select_nth_unstable`s over a copy took 5 ms at 1 MP, and a registration normalises a dozen
/// planes.)
fn percentiles<I: Iterator<Item = f32>, const N: usize>(values: impl Fn() -> I, qs: [f64; N]) -> Option<[f32; N]> {
    let keys = || values().filter(|x| x.is_finite()).map(order_key);
    let mut counts = vec![0u32; 1 << 16];
    let mut n = 0usize;
    for k in keys() {
        counts[(k >> 16) as usize] += 1;
        n += 1;
    }
    if n == 0 {
        return None;
    }
    // Each rank's bucket, and how many values lie in the buckets below it.
    let mut wanted = [(0usize, 0usize, 0usize); N];
    let (mut bucket, mut below) = (0usize, 0usize);
    for (slot, q) in qs.iter().enumerate() {
        let rank = ((n - 1) as f64 * q).round() as usize;
        while below + counts[bucket] as usize <= rank {
            below += counts[bucket] as usize;
            bucket += 1;
        }
        wanted[slot] = (rank, bucket, below);
    }
    let mut gathered: Vec<Vec<u32>> = vec![Vec::new(); N];
    for k in keys() {
        let b = (k >> 16) as usize;
        for (slot, &(_, wb, _)) in wanted.iter().enumerate() {
            if b == wb {
                gathered[slot].push(k);
                break; // quantiles in one bucket share its values (the first slot's)
            }
        }
    }
    let mut out = [0f32; N];
    for slot in 0..N {
        let (rank, b, below) = wanted[slot];
        let first = wanted.iter().position(|w| w.1 == b).unwrap_or(slot);
        let inside = &mut gathered[first];
        out[slot] = from_order_key(*inside.select_nth_unstable(rank - below).1);
    }
    Some(out)
}

/// A u32 whose order is `f32::total_cmp`'s (negative values: every bit flipped; others: the
/// sign bit set), so a selection on keys picks the very value a selection on floats would.
fn order_key(x: f32) -> u32 {
    let b = x.to_bits();
    if b >> 31 == 1 { !b } else { b | 1 << 31 }
}

fn from_order_key(k: u32) -> f32 {
    f32::from_bits(if k >> 31 == 1 { k & !(1 << 31) } else { !k })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The percentiles are those of a sort of the finite values by `total_cmp` (the previous
    /// implementation's `select_nth_unstable_by`), bit for bit: negative values, signed zeros,
    /// ties, one bucket holding everything, values across many buckets, NaN and infinities.
    #[test]
    fn robust_range_is_the_sorted_samples_percentiles() {
        let reference = |plane: ArrayView2<f32>| {
            let mut v: Vec<f32> = plane.iter().copied().filter(|x| x.is_finite()).collect();
            v.sort_by(|a, b| a.total_cmp(b));
            let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
            let (lo, hi) = (at(0.005), at(0.995));
            if hi > lo { (lo, hi) } else { (lo, lo + 1.0) }
        };
        let mut rng = crate::rng::Rng::new(11);
        let planes: Vec<Array2<f32>> = vec![
            Array2::from_shape_fn((300, 411), |_| (rng.uniform() as f32 - 0.5) * 1e3),
            Array2::from_shape_fn((64, 80), |_| (rng.uniform() * 1e-3) as f32 + 7.0),
            Array2::from_shape_fn((50, 50), |(y, x)| if (x + y) % 3 == 0 { -0.0 } else if (x * y) % 7 == 0 { f32::NAN } else if x == 3 { f32::INFINITY } else { 0.0 }),
            Array2::from_shape_fn((40, 41), |(y, x)| ((y * 41 + x) % 9) as f32 - 4.0),
            Array2::from_elem((10, 10), 2.5),
            Array2::from_shape_fn((120, 130), |_| (rng.uniform() as f32).powi(8) * if rng.uniform() < 0.5 { -1.0 } else { 1.0 }),
        ];
        for plane in &planes {
            let (got, want) = (robust_range(plane.view()), reference(plane.view()));
            assert_eq!((got.0.to_bits(), got.1.to_bits()), (want.0.to_bits(), want.1.to_bits()), "{got:?} vs {want:?}");
        }
        // A view that is not in standard layout takes the other path.
        let (got, want) = (robust_range(planes[5].t()), reference(planes[5].t()));
        assert_eq!((got.0.to_bits(), got.1.to_bits()), (want.0.to_bits(), want.1.to_bits()));
        assert_eq!(robust_range(Array2::from_elem((4, 4), f32::NAN).view()), (0.0, 1.0));
        for x in [-3.5f32, -0.0, 0.0, 1e-30, 7.0, f32::MAX, f32::MIN] {
            assert_eq!(from_order_key(order_key(x)).to_bits(), x.to_bits());
        }
    }

    #[test]
    fn blur_subsample_is_blur_then_subsample_bit_for_bit() {
        let mut rng = crate::rng::Rng::new(5);
        for (h, w) in [(37, 53), (64, 64), (101, 7)] {
            let plane = Array2::from_shape_fn((h, w), |_| rng.uniform() as f32);
            for sigma in [0.1, 0.7, 2.0, 5.5] {
                for factor in [1, 2, 3, 4, 8] {
                    let want = subsample(gaussian_blur(plane.view(), sigma).view(), factor);
                    assert_eq!(blur_subsample(plane.view(), sigma, factor), want, "{h}×{w}, σ {sigma}, factor {factor}");
                    let baseline = crate::lanes::with_baseline_only(|| blur_subsample(plane.view(), sigma, factor));
                    assert_eq!(baseline, want, "{h}×{w}, σ {sigma}, factor {factor}, baseline");
                }
            }
        }
    }

    /// The separable sum written out plainly (mirror boundary, taps in order), against the
    /// blur as it runs: the AVX2 copy where the CPU has it, and the baseline copy.
    #[test]
    fn the_blur_is_the_plain_separable_sum_bit_for_bit_on_every_lane_width() {
        let mut rng = crate::rng::Rng::new(8);
        let (h, w) = (45, 67);
        let plane = Array2::from_shape_fn((h, w), |_| rng.uniform() as f32);
        for sigma in [0.6, 1.9, 6.0] {
            let k = gaussian_kernel(sigma);
            let r = (k.len() / 2) as isize;
            let across = Array2::from_shape_fn((h, w), |(y, x)| {
                k.iter().enumerate().fold(0f32, |acc, (j, kv)| acc + kv * plane[[y, mirror(x as isize + j as isize - r, w)]])
            });
            let want = Array2::from_shape_fn((h, w), |(y, x)| {
                k.iter().enumerate().fold(0f32, |acc, (j, kv)| acc + kv * across[[mirror(y as isize + j as isize - r, h), x]])
            });
            assert_eq!(gaussian_blur(plane.view(), sigma), want, "σ {sigma}, as it runs");
            assert_eq!(crate::lanes::with_baseline_only(|| gaussian_blur(plane.view(), sigma)), want, "σ {sigma}, baseline");
        }
    }

    /// Exact against brute force, on sets with holes, empty columns and an empty set.
    #[test]
    fn the_distance_transform_is_the_exact_euclidean_distance() {
        let (h, w) = (37, 53);
        let mut rng = crate::rng::Rng::new(3);
        let sets = [
            Array2::from_shape_fn((h, w), |_| rng.uniform() < 0.03),
            Array2::from_shape_fn((h, w), |(y, x)| (x + 2 * y) % 17 == 0 && x < 40),
            Array2::from_shape_fn((h, w), |(y, x)| y == 5 && x == 50),
            Array2::from_elem((h, w), false),
            // Dense sets: many visible parabolas per row, stretches of one pixel or none.
            Array2::from_shape_fn((h, w), |_| rng.uniform() < 0.5),
            Array2::from_shape_fn((h, w), |(y, x)| (x * x + 3 * y) % 5 != 0),
        ];
        for set in &sets {
            let d = distance_transform(set.view());
            let on: Vec<(usize, usize)> = set.indexed_iter().filter(|(_, &b)| b).map(|(p, _)| p).collect();
            for ((y, x), &got) in d.indexed_iter() {
                let want = on.iter().map(|&(py, px)| ((py as f64 - y as f64).powi(2) + (px as f64 - x as f64).powi(2)).sqrt()).fold(f64::INFINITY, f64::min);
                assert_eq!(got, want as f32, "at ({x}, {y})");
            }
        }
    }
}
