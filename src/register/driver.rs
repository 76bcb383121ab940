//! The skeleton every intensity-based method shares: a pyramid, coarse to fine, with several
//! starting poses optimised on each level; after a level the best few go on. A method (α-AMD,
//! MI, …) is a [`Metric`]: how one level is prepared, how one start is optimised on it, and how
//! starts are ranked. Adding a method is one file implementing it.
use crate::error::Result;
use crate::progress::{Monitor, Progress};
use crate::rng::Rng;
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

/// How the starts of a level draw their random numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Streams {
    /// One stream, starts one after the other (the starts share the level's sample draw).
    Shared,
    /// A stream per start, seeded by level and start: the starts run in parallel and the
    /// result does not depend on the threads.
    PerStart,
}

pub trait Metric: Sync {
    /// What one pyramid level holds (subsampled images, samples, distance tables, …).
    type Level: Sync;

    /// Build level `li` (0 = coarsest); `rng` is the shared stream.
    fn prepare(&self, li: usize, rng: &mut Rng) -> Result<Self::Level>;

    /// Optimise `params` on `level` in place; returns its value (higher is better).
    fn optimise(&self, level: &Self::Level, li: usize, params: &mut Vec<f64>, rng: &mut Rng, ticker: &Ticker) -> Result<f64>;

    /// How starts are ranked after `level` (higher is better; ties go to the higher value).
    fn rank(&self, _level: &Self::Level, _params: &[f64], value: f64) -> f64 {
        value
    }

    /// How many starts go on after level `li` of `levels`.
    fn survivors(&self, li: usize, levels: usize) -> usize;

    /// The optimiser iterations one start runs on level `li` at most (for progress).
    fn iterations(&self, li: usize) -> u64;

    /// Which starts are worth optimising, chosen on the coarsest level before any
    /// optimisation (default: all of them; see [`best_on_translation_grid`]).
    fn seed(&self, _level: &Self::Level, starts: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
        starts
    }
}

/// For every start, the best of its copies shifted over a `(2·steps + 1)²` grid of
/// translations up to `half_range` pixels (the last two parameters are the translation);
/// then the `keep` best of those by `value` (higher is better). A local optimiser captures
/// a few pixels of shift and a few degrees of rotation: a coarse exhaustive look first finds
/// the basins it can reach (MI from 12 starts 30° apart lost 15–20° rotations with shifts of
/// 10% of the width, where the true pose's MI was clearly the highest).
pub fn best_on_translation_grid(starts: Vec<Vec<f64>>, half_range: f64, steps: usize, keep: usize, value: impl Fn(&[f64]) -> f64 + Sync) -> Vec<Vec<f64>> {
    let step = if steps == 0 { 0.0 } else { half_range / steps as f64 };
    let offsets: Vec<(f64, f64)> = (0..=2 * steps).flat_map(|i| (0..=2 * steps).map(move |j| ((i as f64 - steps as f64) * step, (j as f64 - steps as f64) * step))).collect();
    let mut scored: Vec<(f64, Vec<f64>)> = starts
        .into_par_iter()
        .map(|start| {
            let n = start.len();
            offsets
                .iter()
                .map(|&(dx, dy)| {
                    let mut p = start.clone();
                    p[n - 2] += dx;
                    p[n - 1] += dy;
                    (value(&p), p)
                })
                .fold((f64::NEG_INFINITY, start.clone()), |best, c| if c.0 > best.0 { c } else { best })
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(keep.max(1)).map(|(_, p)| p).collect()
}

/// Counts optimiser iterations across starts and reports every `every` of them, and when all
/// are done.
pub struct Ticker<'a> {
    done: AtomicU64,
    /// Set once the starts are known (after the seeding), before any iteration.
    total: AtomicU64,
    every: u64,
    label: &'a str,
    levels: usize,
    monitor: &'a dyn Monitor,
}

impl Ticker<'_> {
    /// One iteration of level `li` done; Err(Cancelled) when the user asked to stop.
    pub fn tick(&self, li: usize) -> Result<()> {
        if self.monitor.is_cancelled() {
            return Err(crate::Error::Cancelled);
        }
        self.advance(li, 1);
        Ok(())
    }

    /// `n` iterations of level `li` done; a start that stops early (its search converged)
    /// passes those it leaves, so that the progress ends at its total.
    pub fn advance(&self, li: usize, n: u64) {
        if n == 0 {
            return;
        }
        let d = self.done.fetch_add(n, Ordering::Relaxed) + n;
        let total = self.total.load(Ordering::Relaxed);
        // Crossed a multiple of `every`, or reached the end.
        if d / self.every != (d - n) / self.every || d == total {
            self.monitor.report(&Progress { done: d, total, message: format!("{} level {}/{}", self.label, li + 1, self.levels) });
        }
    }
}

/// One start through the pyramid: its parameters and value on the last level it reached.
#[derive(Clone, Debug)]
pub struct Start {
    pub params: Vec<f64>,
    pub value: f64,
}

/// How a search runs: its levels, random streams, and what its progress says.
#[derive(Clone, Copy, Debug)]
pub struct Schedule<'a> {
    pub levels: usize,
    pub streams: Streams,
    pub seed: u64,
    /// The method's name in progress messages.
    pub label: &'a str,
    /// Report progress every this many iterations.
    pub report_every: u64,
}

/// The iterations of a search from `starts` starts over `levels` levels, every start running
/// all of its own: every start on the first level, its survivors on the next, and so on.
fn total_iterations<M: Metric>(metric: &M, starts: usize, levels: usize) -> u64 {
    let mut alive = starts;
    (0..levels)
        .map(|li| {
            let run = metric.iterations(li) * alive as u64;
            alive = alive.min(metric.survivors(li, levels));
            run
        })
        .sum()
}

/// Run `metric` over the schedule's pyramid levels from `starts`; returns the best start (by
/// [`Metric::rank`] after the last level).
pub fn multi_start<M: Metric>(metric: &M, starts: Vec<Vec<f64>>, schedule: &Schedule, monitor: &dyn Monitor) -> Result<Start> {
    let Schedule { levels, streams, seed, label, report_every } = *schedule;
    let ticker = Ticker { done: AtomicU64::new(0), total: AtomicU64::new(0), every: report_every.max(1), label, levels, monitor };
    let mut shared = Rng::new(seed);
    let mut candidates: Vec<Start> = starts.into_iter().map(|params| Start { params, value: f64::NEG_INFINITY }).collect();
    for li in 0..levels {
        let level = metric.prepare(li, &mut shared)?;
        if li == 0 {
            let seeds = metric.seed(&level, candidates.into_iter().map(|c| c.params).collect());
            candidates = seeds.into_iter().map(|params| Start { params, value: f64::NEG_INFINITY }).collect();
            ticker.total.store(total_iterations(metric, candidates.len(), levels), Ordering::Relaxed);
        }
        match streams {
            Streams::Shared => {
                for c in candidates.iter_mut() {
                    c.value = metric.optimise(&level, li, &mut c.params, &mut shared, &ticker)?;
                }
            }
            Streams::PerStart => {
                candidates.par_iter_mut().enumerate().try_for_each(|(ci, c)| -> Result<()> {
                    let mut rng = Rng::new(seed ^ ((li as u64) << 32 | ci as u64).wrapping_mul(0x9E37_79B9));
                    c.value = metric.optimise(&level, li, &mut c.params, &mut rng, &ticker)?;
                    Ok(())
                })?;
            }
        }
        let keep = if li + 1 < levels { metric.survivors(li, levels) } else { 1 };
        if candidates.len() > keep {
            let ranks: Vec<f64> = candidates.iter().map(|c| metric.rank(&level, &c.params, c.value)).collect();
            let mut order: Vec<usize> = (0..candidates.len()).collect();
            order.sort_by(|&a, &b| ranks[b].total_cmp(&ranks[a]).then(candidates[b].value.total_cmp(&candidates[a].value)));
            order.truncate(keep);
            candidates = order.iter().map(|&i| candidates[i].clone()).collect();
        }
    }
    Ok(candidates.swap_remove(0))
}

/// A monitor that keeps the most iterations reported done and the last total announced.
#[cfg(test)]
#[derive(Default)]
pub struct Counted(pub std::sync::Mutex<(u64, u64)>);

#[cfg(test)]
impl Monitor for Counted {
    fn report(&self, p: &Progress) {
        #[expect(clippy::unwrap_used, reason = "a test helper")]
        let mut seen = self.0.lock().unwrap();
        *seen = (seen.0.max(p.done), p.total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_keeps_each_start_at_its_best_shift_and_the_best_starts_first() {
        // A value peaked at angle 0.5, shift (7, −5); the grid's points are 2.5 apart.
        let value = |p: &[f64]| -(p[0] - 0.5).powi(2) * 100.0 - (p[1] - 7.0).powi(2) - (p[2] + 5.0).powi(2);
        let starts = vec![vec![0.0, 0.0, 0.0], vec![0.5, 0.0, 0.0], vec![1.2, 0.0, 0.0], vec![3.0, 0.0, 0.0]];
        let kept = best_on_translation_grid(starts, 10.0, 4, 2, value);
        assert_eq!(kept, vec![vec![0.5, 7.5, -5.0], vec![0.0, 7.5, -5.0]]);
        // Without steps, the starts are only ranked.
        assert_eq!(best_on_translation_grid(vec![vec![3.0, 0.0, 0.0], vec![0.5, 1.0, 1.0]], 10.0, 0, 1, value), vec![vec![0.5, 1.0, 1.0]]);
    }
}
