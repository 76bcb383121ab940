//! Mutual information registration of raw images (no model): the training-free baseline and
//! the fallback when no model fits the modalities.
//!
//! Mattes-style MI: a fixed random sample of fixed-image points per pyramid level, a joint
//! histogram with linear Parzen windows, optimised by a (1+1) evolution strategy (as MATLAB's
//! multimodal `imregister`), from several starting angles on the coarsest level.
use super::driver;
use super::mask::{self, Mask, Masks};
use super::params::Parametrisation;
use super::transform::{Affine2, TransformKind};
use super::warp::Bilinear;
use crate::error::{Error, Result};
use crate::image::filter::{blur_subsample, normalise_robust};
use crate::rng::Rng;
use crate::progress::Monitor;
use ndarray::{Array2, ArrayView2};

#[derive(Clone, Debug)]
pub struct MiLevel {
    pub factor: usize,
    pub sigma: f64,
    pub iterations: usize,
}

#[derive(Clone, Debug)]
pub struct MiOptions {
    pub kind: TransformKind,
    pub bins: usize,
    pub levels: Vec<MiLevel>,
    /// Fixed-image points sampled per level.
    pub samples: usize,
    pub seed: u64,
    /// The search starts with the fixed image's centre on the moving image's centre moved by
    /// this (pixels); see `RegisterOptions::start_shift`.
    pub start_shift: (f64, f64),
}

impl Default for MiOptions {
    fn default() -> Self {
        MiOptions {
            kind: TransformKind::Rigid,
            bins: 32,
            levels: vec![
                MiLevel { factor: 4, sigma: 2.0, iterations: 300 },
                MiLevel { factor: 2, sigma: 1.0, iterations: 200 },
                MiLevel { factor: 1, sigma: 0.0, iterations: 100 },
            ],
            samples: 20_000,
            seed: 0,
            start_shift: (0.0, 0.0),
        }
    }
}

/// Fixed-image samples: full-resolution position and the intensity's place in the joint
/// histogram, both fixed for a level; computed once, not at each of the ~10⁴ evaluations.
struct Samples(Vec<Sample>);

#[derive(Clone, Copy)]
struct Sample {
    x: f64,
    y: f64,
    /// Offset of the sample's lower fixed-intensity bin row (bin × bins).
    row: usize,
    /// Parzen weight of the upper bin (the lower one gets 1 − weight).
    weight: f64,
}

impl Samples {
    /// Samples at (x, y) (full-resolution pixels) with intensities in [0, 1], for `bins` bins.
    fn new(points: impl Iterator<Item = (f64, f64, f32)>, bins: usize) -> Samples {
        let b = bins as f64 - 1.0;
        Samples(points.map(|(x, y, v)| {
            let fb = v as f64 * b;
            let f0 = fb.floor().min(b - 1.0).max(0.0);
            Sample { x, y, row: f0 as usize * bins, weight: fb - f0 }
        }).collect())
    }
}

/// A part of the samples gets a histogram of its own once it holds this many (two halves of
/// at least this many each): a few large histograms, not one per few samples.
const MIN_PART: usize = 4096;

/// Samples whose moving-image values are read before their histogram updates: reads of
/// different samples do not wait for each other (nor for the updates, which may hit the
/// same bins), so the CPU overlaps their cache misses.
const BATCH: usize = 128;

/// The joint histogram of `samples`: halved while each half holds at least [`MIN_PART`], the
/// halves summed in parallel (`part` sums one part in order) and added up pairwise. The parts
/// depend on the sample count alone, so the sums (and MI, to the last bit) do not depend on
/// the number of threads or on which thread ran what.
fn joint_histogram(samples: &[Sample], part: &(dyn Fn(&[Sample]) -> Vec<f64> + Sync)) -> Vec<f64> {
    if samples.len() / 2 < MIN_PART {
        return part(samples);
    }
    let (left, right) = samples.split_at(samples.len() / 2);
    let (left, right) = rayon::join(|| joint_histogram(left, part), || joint_histogram(right, part));
    left.iter().zip(&right).map(|(a, b)| a + b).collect()
}

/// The joint histogram (linear Parzen windows on both axes) of `samples` against `plane`
/// under `t`, in sample order; samples outside the moving image or its mask, or on a
/// non-finite value, are left out.
fn part_histogram(samples: &[Sample], plane: &Bilinear, moving_mask: Option<&Mask>, factor: f64, t: &Affine2, bins: usize) -> Vec<f64> {
    let b = bins as f64 - 1.0;
    let mut hist = vec![0f64; bins * bins];
    let (mut values, mut xs, mut ys) = ([0f32; BATCH], [0f64; BATCH], [0f64; BATCH]);
    for batch in samples.chunks(BATCH) {
        for ((x, y), s) in xs.iter_mut().zip(ys.iter_mut()).zip(batch) {
            (*x, *y) = (s.x, s.y);
        }
        plane.at_mapped(&mut values[..batch.len()], &xs, &ys, t, factor);
        if moving_mask.is_some() {
            // A sample outside the moving mask counts as outside the image.
            for (v, s) in values.iter_mut().zip(batch) {
                let (mx, my) = t.apply(s.x, s.y);
                if !mask::contains(moving_mask, mx, my) {
                    *v = f32::NAN;
                }
            }
        }
        for (&vm, s) in values.iter().zip(batch) {
            if !vm.is_finite() {
                continue;
            }
            let mb = (vm as f64).clamp(0.0, 1.0) * b;
            // mb ≥ 0: truncation is the floor (a libm call otherwise).
            let m0 = (mb as usize).min(bins - 2);
            let (ff, fm) = (s.weight, mb - m0 as f64);
            let (lower, upper) = (s.row + m0, s.row + bins + m0);
            hist[lower] += (1.0 - ff) * (1.0 - fm);
            hist[upper] += ff * (1.0 - fm);
            hist[lower + 1] += (1.0 - ff) * fm;
            hist[upper + 1] += ff * fm;
        }
    }
    hist
}

/// Mutual information (nats) and normalised MI 2·I/(H_f + H_m) of the sampled fixed points
/// against `moving` (level grid, `factor` full-resolution pixels per grid step) under `t`.
/// Both are weighted by the fraction of samples that land inside the moving image (and its
/// mask): MI of a small overlap is biased upwards and would otherwise pull the images apart.
fn mutual_information(samples: &Samples, view: ArrayView2<f32>, moving_mask: Option<&Mask>, factor: f64, t: &Affine2, bins: usize) -> (f64, f64) {
    let plane = Bilinear::new(view);
    let joint = joint_histogram(&samples.0, &|part| part_histogram(part, &plane, moving_mask, factor, t, bins));
    let total: f64 = joint.iter().sum();
    if total < 1.0 {
        return (0.0, 0.0);
    }
    let mut pf = vec![0f64; bins];
    let mut pm = vec![0f64; bins];
    for i in 0..bins {
        for j in 0..bins {
            let p = joint[i * bins + j] / total;
            pf[i] += p;
            pm[j] += p;
        }
    }
    let entropy = |p: &[f64]| -p.iter().filter(|&&v| v > 0.0).map(|v| v * v.ln()).sum::<f64>();
    let (hf, hm) = (entropy(&pf), entropy(&pm));
    let mut mi = 0.0;
    for i in 0..bins {
        for j in 0..bins {
            let p = joint[i * bins + j] / total;
            if p > 0.0 {
                mi += p * (p / (pf[i] * pm[j])).ln();
            }
        }
    }
    let inside = total / samples.0.len() as f64;
    (mi * inside, if hf + hm > 0.0 { 2.0 * mi / (hf + hm) * inside } else { 0.0 })
}

/// A raw image for scoring: intensities scaled to [0, 1], its flat background (a mask) NaN.
pub fn prepare_for_score(plane: ArrayView2<f32>) -> Array2<f32> {
    let background = super::quality::background_value(plane);
    let mut out = normalise_robust(plane);
    if let Some(b) = background {
        ndarray::Zip::from(&mut out).and(&plane).for_each(|o, &v| if v == b { *o = f32::NAN });
    }
    out
}

/// Normalised mutual information of `transform` at full resolution (a quality score in
/// [0, 1], higher is better) of planes already in [0, 1] (see [`prepare_for_score`]); NaN
/// pixels (background) are left out on both sides.
pub fn normalised_mi_prepared(fixed: ArrayView2<f32>, moving: ArrayView2<f32>, transform: &Affine2, bins: usize) -> f64 {
    let step = super::quality::score_step(fixed.len());
    let samples = Samples::new(fixed.indexed_iter().filter(|((y, x), v)| y % step == 0 && x % step == 0 && v.is_finite()).map(|((y, x), &v)| (x as f64, y as f64, v)), bins);
    mutual_information(&samples, moving, None, 1.0, transform, bins).1
}

/// The coarsest pyramid level has at most this many pixels on its larger side: the search
/// over starting poses happens there, and its capture range is a fraction of that size. With a
/// fixed coarsest factor of 4, a 2000² or 4000² pair (structures many pixels wide) started
/// with a level far too fine and MI locked onto wrong poses (bench/register-memory.sh).
pub const COARSEST_SIDE: usize = 256;

/// `levels`, preceded by coarser levels (factor doubling, σ = factor / 2, the iterations of
/// the first level) until the coarsest has at most [`COARSEST_SIDE`] pixels on a side.
pub fn levels_for_size(levels: &[MiLevel], max_side: usize) -> Vec<MiLevel> {
    let mut out = levels.to_vec();
    while let Some(first) = out.first().cloned() {
        let factor = first.factor.max(1);
        if max_side / factor <= COARSEST_SIDE {
            break;
        }
        out.insert(0, MiLevel { factor: 2 * factor, sigma: factor as f64, iterations: first.iterations });
    }
    out
}

/// Starts refined past the coarsest pyramid level: the coarsest MI often ranks a wrong pose
/// first. In `comir eval` on the demo pair, MI alone succeeded in 42, 43 and 44 of 50 cases
/// with 3, 6 and 12 survivors (40 before the seeding below), at 0.9, 0.9 and 1.2 s per pair.
const SURVIVING_STARTS: usize = 6;
/// Starting poses the seeding adds (the best angles, each at its best shift).
const SEEDS: usize = 12;
/// The seeding tries every start angle and the angles this far (degrees) either side.
const SEED_ANGLE_STEP: f64 = 10.0;
/// The seeding tries shifts up to a quarter of the image on a (2·4 + 1)² grid.
const GRID_STEPS: usize = 4;

/// Fixed-image samples that score the translation grid of the seeding (a random subset: the
/// level's samples are random draws).
const GRID_SAMPLES: usize = 4000;

/// Samples of the coarsest level, where every start runs (23 with any rotation): at 1 MP that
/// level took 2.6 of MI's 3.3 s with 20 000 samples of its 256² pixels, 1.3 s with 5 000; on
/// 384² patches of the demo pair MI succeeded as often (34 of 50) with fewer wrong PASS flags
/// (bench/mi-coarse-samples-result.txt).
const COARSEST_SAMPLES: usize = 5000;

pub struct MiResult {
    pub transform: Affine2,
    /// Mutual information at the finest level (nats, higher is better).
    pub value: f64,
}

/// MI as a [`driver::Metric`]: each level draws fixed-image samples (inside the fixed mask);
/// each start is optimised by a (1+1) evolution strategy (as MATLAB's multimodal `imregister`).
struct MiMetric<'a> {
    fixed: Array2<f32>,
    moving: Array2<f32>,
    masks: Masks<'a>,
    levels: Vec<MiLevel>,
    par: Parametrisation,
    scales: Vec<f64>,
    options: &'a MiOptions,
    /// The start angles (radians), around which the seeding looks; none: no seeding (a
    /// refinement of one given pose).
    angles: Vec<f64>,
}

impl<'a> MiMetric<'a> {
    /// The metric of two planes: both normalised to [0, 1] (side by side) for the histogram.
    fn new(fixed: ArrayView2<f32>, moving: ArrayView2<f32>, masks: Masks<'a>, par: Parametrisation, levels: Vec<MiLevel>, options: &'a MiOptions, angles: Vec<f64>) -> MiMetric<'a> {
        let (fixed, moving) = rayon::join(|| normalise_robust(fixed), || normalise_robust(moving));
        MiMetric { fixed, moving, masks, scales: par.scales(), par, levels, options, angles }
    }
}

struct Level {
    moving: Array2<f32>,
    samples: Samples,
    factor: usize,
}

impl driver::Metric for MiMetric<'_> {
    type Level = Level;

    fn prepare(&self, li: usize, rng: &mut Rng) -> Result<Level> {
        let level = &self.levels[li];
        let f = level.factor.max(1);
        let fl = blur_subsample(self.fixed.view(), level.sigma, f);
        let ml = blur_subsample(self.moving.view(), level.sigma, f);
        // Level pixels inside the fixed mask (all of them without one: the same draws).
        let inside: Option<Vec<usize>> = self.masks.fixed.map(|m| (0..fl.len()).filter(|i| mask::contains(Some(m), ((i % fl.ncols()) * f) as f64, ((i / fl.ncols()) * f) as f64)).collect());
        let n = inside.as_ref().map_or(fl.len(), Vec::len);
        if n == 0 {
            return Err(Error::Region(format!("the fixed ROI is too small for MI's pyramid level {}×{}: draw a larger one", fl.ncols(), fl.nrows())));
        }
        let take = if li == 0 && self.levels.len() > 1 { self.options.samples.min(COARSEST_SAMPLES) } else { self.options.samples }.min(n);
        let samples = Samples::new((0..take).map(|_| {
            let j = rng.below(n);
            let i = inside.as_ref().map_or(j, |v| v[j]);
            let (y, x) = (i / fl.ncols(), i % fl.ncols());
            ((x * f) as f64, (y * f) as f64, fl[[y, x]])
        }), self.options.bins);
        Ok(Level { moving: ml, samples, factor: f })
    }

    fn optimise(&self, level: &Level, li: usize, p: &mut Vec<f64>, rng: &mut Rng, ticker: &driver::Ticker) -> Result<f64> {
        let f = level.factor as f64;
        let value = |p: &[f64]| mutual_information(&level.samples, level.moving.view(), self.masks.moving, f, &self.par.to_affine(p), self.options.bins).0;
        // (1+1)-ES in units where every parameter moves points by about one pixel.
        let mut radius = 2.0 * f;
        let mut best = value(p);
        let iterations = self.levels[li].iterations;
        for it in 0..iterations {
            ticker.tick(li)?;
            let trial: Vec<f64> = p.iter().zip(&self.scales).map(|(v, s)| {
                let g = (-2.0 * rng.uniform().max(1e-300).ln()).sqrt() * (std::f64::consts::TAU * rng.uniform()).cos();
                v + radius * g * s
            }).collect();
            let v = value(&trial);
            if v > best {
                *p = trial;
                best = v;
                radius *= 1.5;
            } else {
                radius *= 1.5f64.powf(-0.25);
            }
            if radius < 0.01 {
                // Converged: the iterations left count as done (see `Ticker::advance`).
                ticker.advance(li, (iterations - it - 1) as u64);
                break;
            }
        }
        Ok(best)
    }

    /// The best few starts of the coarsest level go on (when there are finer levels to
    /// decide), and the next level — sharper, with more samples — picks one: the coarsest MI
    /// often ranks a wrong pose first.
    fn survivors(&self, li: usize, levels: usize) -> usize {
        if li == 0 && levels > 2 { SURVIVING_STARTS } else { 1 }
    }

    fn iterations(&self, li: usize) -> u64 {
        self.levels[li].iterations as u64
    }

    /// The starts as given stay; added to them, the best [`SEEDS`] of every start angle and
    /// the angles 10° either side, each at its best shift on a grid. The added ones reach
    /// poses the starts cannot (15–20° between starts 30° apart with large shifts); keeping the
    /// starts keeps what they found: on a tiled mosaic, the grid's coarse MI ranked wrong
    /// poses first and the 8° start alone found the truth.
    fn seed(&self, level: &Level, starts: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
        if self.angles.is_empty() {
            return starts;
        }
        let subset = Samples(level.samples.0.iter().take(GRID_SAMPLES).copied().collect());
        let (h, w) = self.fixed.dim();
        let value = |p: &[f64]| mutual_information(&subset, level.moving.view(), self.masks.moving, level.factor as f64, &self.par.to_affine(p), self.options.bins).0;
        let step = SEED_ANGLE_STEP.to_radians();
        let dense: Vec<Vec<f64>> = self.angles.iter().flat_map(|&a| [a - step, a, a + step]).map(|a| self.par.initial(a)).collect();
        let mut seeds = starts;
        for s in driver::best_on_translation_grid(dense, 0.25 * w.max(h) as f64, GRID_STEPS, SEEDS, value) {
            if !seeds.contains(&s) {
                seeds.push(s);
            }
        }
        seeds
    }
}

/// The checks every MI entry point makes on its inputs, and the parametrisation of their
/// transforms (about the image centres, the moving one moved by `start_shift`).
fn parametrisation(fixed: ArrayView2<f32>, moving: ArrayView2<f32>, masks: Masks, options: &MiOptions) -> Result<Parametrisation> {
    let (fh, fw) = fixed.dim();
    let (mh, mw) = moving.dim();
    if fh < 8 || fw < 8 || mh < 8 || mw < 8 {
        return Err(Error::UnsupportedImage("mutual information registration needs images of at least 8×8 pixels".into()));
    }
    if options.bins < 4 || options.levels.is_empty() {
        return Err(Error::Parameter("MI needs at least 4 histogram bins and one pyramid level".into()));
    }
    masks.check((fh, fw), (mh, mw))?;
    Ok(Parametrisation {
        kind: options.kind,
        fixed_centre: ((fw as f64 - 1.0) / 2.0, (fh as f64 - 1.0) / 2.0),
        moving_centre: ((mw as f64 - 1.0) / 2.0 + options.start_shift.0, (mh as f64 - 1.0) / 2.0 + options.start_shift.1),
        radius: (((fw * fw + fh * fh) as f64) / 12.0).sqrt(),
    })
}

/// Register `moving` to `fixed` from each of `start_angles` (radians); only the pixels inside
/// `masks` take part (fixed samples are drawn inside the fixed mask, samples that land outside
/// the moving mask count as outside the image).
pub fn register(fixed: ArrayView2<f32>, moving: ArrayView2<f32>, masks: Masks, start_angles: &[f64], options: &MiOptions, monitor: &dyn Monitor) -> Result<MiResult> {
    let par = parametrisation(fixed, moving, masks, options)?;
    let (fh, fw) = fixed.dim();
    let (mh, mw) = moving.dim();
    let levels = levels_for_size(&options.levels, fw.max(fh).max(mw).max(mh));
    let starts: Vec<Vec<f64>> = start_angles.iter().chain(start_angles.is_empty().then_some(&0.0)).map(|&a| par.initial(a)).collect();
    let angles: Vec<f64> = if start_angles.is_empty() { vec![0.0] } else { start_angles.to_vec() };
    let metric = MiMetric::new(fixed, moving, masks, par, levels, options, angles);
    let schedule = driver::Schedule { levels: metric.levels.len(), streams: driver::Streams::Shared, seed: options.seed, label: "MI", report_every: 50 };
    let best = driver::multi_start(&metric, starts, &schedule, monitor)?;
    Ok(MiResult { transform: metric.par.to_affine(&best.params), value: best.value })
}

/// Refine a pose found by another method (fixed → moving `initial`) on the finest pyramid
/// level only, without seeding: the basin is already found. MI, unlike α-AMD, does not ask
/// the two planes for equal intensities, only for a consistent relation between them: the
/// CoMIRs of a briefly trained model share their structure but not yet their intensities.
pub fn refine(fixed: ArrayView2<f32>, moving: ArrayView2<f32>, masks: Masks, initial: &Affine2, options: &MiOptions, monitor: &dyn Monitor) -> Result<MiResult> {
    let par = parametrisation(fixed, moving, masks, options)?;
    // `parametrisation` refused an empty list of levels.
    let finest: Vec<MiLevel> = options.levels.last().cloned().into_iter().collect();
    let metric = MiMetric::new(fixed, moving, masks, par, finest, options, vec![]);
    let start = metric.par.from_affine(initial);
    let schedule = driver::Schedule { levels: 1, streams: driver::Streams::Shared, seed: options.seed, label: "MI refinement", report_every: 50 };
    let best = driver::multi_start(&metric, vec![start], &schedule, monitor)?;
    Ok(MiResult { transform: metric.par.to_affine(&best.params), value: best.value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_images_get_coarser_levels_small_ones_keep_the_defaults() {
        let defaults = MiOptions::default().levels;
        let factors = |side| levels_for_size(&defaults, side).iter().map(|l| l.factor).collect::<Vec<_>>();
        assert_eq!(factors(192), vec![4, 2, 1]);
        assert_eq!(factors(1024), vec![4, 2, 1]);
        assert_eq!(factors(2000), vec![8, 4, 2, 1]);
        assert_eq!(factors(4000), vec![16, 8, 4, 2, 1]);
        assert!(levels_for_size(&defaults, 4000).iter().all(|l| l.iterations > 0));
    }

    /// A smooth moving plane (a level at factor 2 of a 100 × 80 image) with a NaN pixel, and
    /// random samples of a fixed image that is a non-monotonic map of it, some landing outside.
    fn histogram_inputs(n: usize) -> (Array2<f32>, Samples) {
        let value = |x: f64, y: f64| 0.5 + 0.45 * (x * 0.15).sin() * (y * 0.1).cos();
        let mut plane = Array2::from_shape_fn((40, 50), |(y, x)| value(2.0 * x as f64, 2.0 * y as f64) as f32);
        plane[[10, 10]] = f32::NAN;
        let mut rng = Rng::new(9);
        let points = (0..n).map(|_| {
            let (x, y) = (rng.range(-10.0, 110.0), rng.range(-10.0, 90.0));
            (x, y, (1.0 - 2.0 * (value(x, y) - 0.5).abs()) as f32)
        });
        (plane, Samples::new(points.collect::<Vec<_>>().into_iter(), 16))
    }

    /// The batched histogram (values read first, updates after) is the one-sample-at-a-time
    /// definition, bit for bit, masked or not.
    #[test]
    fn the_batched_histogram_is_the_plain_one_bit_for_bit() {
        let (plane, samples) = histogram_inputs(1000);
        let mask = Array2::from_shape_fn((80, 100), |(y, x)| x + y > 40); // full-resolution pixels
        let t = Affine2::rotation_about(0.1, 50.0, 40.0);
        let bins = 16;
        for moving_mask in [None, Some(&mask)] {
            let mut want = vec![0f64; bins * bins];
            let mut counted = 0;
            for s in &samples.0 {
                let (mx, my) = t.apply(s.x, s.y);
                let Some(vm) = Bilinear::new(plane.view()).at(mx / 2.0, my / 2.0).filter(|v| v.is_finite() && mask::contains(moving_mask, mx, my)) else { continue };
                let mb = (vm as f64).clamp(0.0, 1.0) * (bins as f64 - 1.0);
                let m0 = (mb.floor() as usize).min(bins - 2);
                let (ff, fm) = (s.weight, mb - m0 as f64);
                want[s.row + m0] += (1.0 - ff) * (1.0 - fm);
                want[s.row + bins + m0] += ff * (1.0 - fm);
                want[s.row + m0 + 1] += (1.0 - ff) * fm;
                want[s.row + bins + m0 + 1] += ff * fm;
                counted += 1;
            }
            assert!(counted > 300 && counted < 1000, "samples both in and out: {counted}");
            let got = part_histogram(&samples.0, &Bilinear::new(plane.view()), moving_mask, 2.0, &t, bins);
            assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    /// MI's histogram is cut into parts by the sample count alone: the same value to the last
    /// bit on one thread as on several (the parts once followed the threads' work sharing).
    #[test]
    fn mutual_information_does_not_depend_on_the_thread_count() {
        let (plane, samples) = histogram_inputs(20_000);
        let t = Affine2::rotation_about(0.02, 50.0, 40.0);
        let on = |threads| rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| mutual_information(&samples, plane.view(), None, 2.0, &t, 16));
        let (one, four) = (on(1), on(4));
        assert!(one.0 > 0.01, "an MI that measures nothing proves nothing: {one:?}");
        assert_eq!((one.0.to_bits(), one.1.to_bits()), (four.0.to_bits(), four.1.to_bits()));
        // Four parts of 5000, summed pairwise.
        let part = |r: std::ops::Range<usize>| part_histogram(&samples.0[r], &Bilinear::new(plane.view()), None, 2.0, &t, 16);
        let add = |a: Vec<f64>, b: Vec<f64>| a.iter().zip(&b).map(|(x, y)| x + y).collect::<Vec<f64>>();
        let want = add(add(part(0..5000), part(5000..10_000)), add(part(10_000..15_000), part(15_000..20_000)));
        let got = joint_histogram(&samples.0, &|p| part_histogram(p, &Bilinear::new(plane.view()), None, 2.0, &t, 16));
        assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    /// The pose MI finds is the same to the last bit on one thread as on several (the
    /// histogram's parts and the seeding grid run in parallel), and it is right.
    #[test]
    fn registration_does_not_depend_on_the_thread_count() {
        let mut rng = Rng::new(4);
        let blobs: Vec<(f64, f64, f64)> = (0..40).map(|_| (rng.range(0.0, 96.0), rng.range(0.0, 96.0), rng.range(2.0, 6.0))).collect();
        let scene = |x: f64, y: f64| blobs.iter().map(|&(bx, by, r)| (-((x - bx).powi(2) + (y - by).powi(2)) / (2.0 * r * r)).exp()).sum::<f64>();
        let truth = Affine2::rotation_about(0.1, 47.5, 47.5).compose(&Affine2::translation(3.0, -2.0));
        let fixed = Array2::from_shape_fn((96, 96), |(y, x)| scene(x as f64, y as f64) as f32);
        // Another modality: the moving intensities an inverted map of the fixed ones.
        let moving = Array2::from_shape_fn((96, 96), |(y, x)| {
            let (fx, fy) = truth.inverse().unwrap().apply(x as f64, y as f64);
            (1.0 / (1.0 + scene(fx, fy))) as f32
        });
        let on = |threads| {
            rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| register(fixed.view(), moving.view(), Masks::default(), &[0.0, 0.4, -0.4], &MiOptions::default(), &crate::progress::Silent).unwrap())
        };
        let (one, three) = (on(1), on(3));
        assert_eq!(one.transform.m.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>(), three.transform.m.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>());
        assert_eq!(one.value.to_bits(), three.value.to_bits());
        let (x, y) = one.transform.apply(10.0, 80.0);
        let (tx, ty) = truth.apply(10.0, 80.0);
        assert!((x - tx).hypot(y - ty) < 1.0, "found {:?}, truth {:?}", one.transform, truth);
    }

    /// MI's starts stop when their search converges, most of them long before their last
    /// iteration: the iterations they leave count as done, and the total counts the starts
    /// that run on each level (all the seeded ones, then the survivors, then one), so the
    /// progress ends at its total.
    #[test]
    fn progress_ends_at_its_total() {
        let mut rng = Rng::new(4);
        let blobs: Vec<(f64, f64, f64)> = (0..40).map(|_| (rng.range(0.0, 96.0), rng.range(0.0, 96.0), rng.range(2.0, 6.0))).collect();
        let scene = |x: f64, y: f64| blobs.iter().map(|&(bx, by, r)| (-((x - bx).powi(2) + (y - by).powi(2)) / (2.0 * r * r)).exp()).sum::<f64>();
        let fixed = Array2::from_shape_fn((96, 96), |(y, x)| scene(x as f64, y as f64) as f32);
        let moving = Array2::from_shape_fn((96, 96), |(y, x)| (1.0 / (1.0 + scene(x as f64 - 2.0, y as f64))) as f32);
        let counted = driver::Counted::default();
        register(fixed.view(), moving.view(), Masks::default(), &[0.0, 0.4, -0.4], &MiOptions::default(), &counted).unwrap();
        let (done, total) = *counted.0.lock().unwrap();
        // Levels of 300, 200 and 100 iterations; 3 starts and up to 12 seeds, 6 survivors, 1.
        assert!(total > 6 * 300 + 6 * 200 + 100 && total <= 15 * 300 + 6 * 200 + 100, "total {total}");
        assert_eq!(done, total);
    }
}
