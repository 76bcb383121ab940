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

    /// How starts are ranked after a level (higher is better; ties go to the higher value).
    fn rank(&self, _params: &[f64], value: f64) -> f64 {
        value
    }

    /// How many starts go on after level `li` of `levels`.
    fn survivors(&self, li: usize, levels: usize) -> usize;
}

/// Counts optimiser iterations across starts and reports every `every` of them.
pub struct Ticker<'a> {
    done: AtomicU64,
    total: u64,
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
        let d = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if d.is_multiple_of(self.every) {
            self.monitor.report(&Progress { done: d, total: self.total, message: format!("{} level {}/{}", self.label, li + 1, self.levels) });
        }
        Ok(())
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
    /// The optimiser iterations of all starts (for progress).
    pub iterations: u64,
    /// The method's name in progress messages.
    pub label: &'a str,
    /// Report progress every this many iterations.
    pub report_every: u64,
}

/// Run `metric` over the schedule's pyramid levels from `starts`; returns the best start (by
/// [`Metric::rank`] after the last level).
pub fn multi_start<M: Metric>(metric: &M, starts: Vec<Vec<f64>>, schedule: &Schedule, monitor: &dyn Monitor) -> Result<Start> {
    let Schedule { levels, streams, seed, iterations, label, report_every } = *schedule;
    let ticker = Ticker { done: AtomicU64::new(0), total: iterations, every: report_every.max(1), label, levels, monitor };
    let mut shared = Rng::new(seed);
    let mut candidates: Vec<Start> = starts.into_iter().map(|params| Start { params, value: f64::NEG_INFINITY }).collect();
    for li in 0..levels {
        let level = metric.prepare(li, &mut shared)?;
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
            let ranks: Vec<f64> = candidates.iter().map(|c| metric.rank(&c.params, c.value)).collect();
            let mut order: Vec<usize> = (0..candidates.len()).collect();
            order.sort_by(|&a, &b| ranks[b].total_cmp(&ranks[a]).then(candidates[b].value.total_cmp(&candidates[a].value)));
            order.truncate(keep);
            candidates = order.iter().map(|&i| candidates[i].clone()).collect();
        }
    }
    Ok(candidates.swap_remove(0))
}
