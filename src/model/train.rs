//! Training both networks together with the InfoNCE loss.
//!
//! Each step: draw a batch of aligned patch pairs, rotate every patch by a random k·90°
//! (independently per modality), run the networks, rotate the outputs back (this teaches
//! C4 rotation equivariance), compute InfoNCE + activation decay, clip gradients, step.
use super::augment::AugmentConfig;
#[cfg(feature = "torch")]
use super::augment::{sample_patch_pair, Rng, TrainingPair};
use super::loss::Critic;
#[cfg(feature = "torch")]
use super::loss::{activation_decay, info_nce};
use super::store::{CheckRecord, Model};
use crate::error::{Error, Result};
#[cfg(feature = "torch")]
use crate::progress::{Monitor, Progress};
use serde::{Deserialize, Serialize};
#[cfg(feature = "torch")]
use std::path::PathBuf;
#[cfg(feature = "torch")]
use std::time::Instant;
#[cfg(feature = "torch")]
use tch::nn::{self, ModuleT, OptimizerConfig};
#[cfg(feature = "torch")]
use tch::{Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Adam,
}

impl std::str::FromStr for OptimizerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<OptimizerKind> {
        match s {
            "sgd" => Ok(OptimizerKind::Sgd),
            "adam" => Ok(OptimizerKind::Adam),
            _ => Err(Error::UnknownChoice { what: "optimizer", given: s.into(), choices: "sgd or adam".into() }),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub steps: u64,
    pub batch_size: usize,
    pub patch_size: usize,
    pub optimizer: OptimizerKind,
    pub learning_rate: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub grad_clip: f64,
    /// Weight of mean |x| and mean x² of the representations (both, as in the reference).
    pub activation_decay: f64,
    pub critic: Critic,
    pub temperature: f64,
    pub equivariance: bool,
    pub augment: AugmentConfig,
    pub seed: u64,
    /// Save the model every this many steps (0: only at the end).
    pub checkpoint_every: u64,
    /// Stop before `steps` once this many checkpoints in a row pass the registration check
    /// (see `crate::train_check`): `steps` is then the most a hard pair may take. 0: train
    /// all `steps`.
    pub good_checks_to_stop: u32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            steps: 1000,
            batch_size: 8,
            patch_size: 128,
            optimizer: OptimizerKind::Sgd,
            learning_rate: 1e-2,
            momentum: 0.9,
            weight_decay: 1e-5,
            grad_clip: 1.0,
            activation_decay: 1e-4,
            critic: Critic::Mse,
            temperature: 0.5,
            equivariance: true,
            augment: AugmentConfig::default(),
            seed: 0,
            // A long CPU run keeps its progress: a model file every 50 steps, and the
            // registration check with it (a few seconds against ~1 minute of steps), so that
            // training stops at most 50 steps after the model has become good.
            checkpoint_every: 50,
            good_checks_to_stop: 2,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self, size_multiple: usize) -> Result<()> {
        let bad = |m: String| Err(Error::Parameter(m));
        if self.batch_size < 2 {
            return bad("the batch needs at least 2 patch pairs (the others are the negatives)".into());
        }
        if self.patch_size < size_multiple || !self.patch_size.is_multiple_of(size_multiple) {
            return bad(format!("the patch size must be a positive multiple of {size_multiple} for this network"));
        }
        if !(self.learning_rate > 0.0 && self.temperature > 0.0) {
            return bad("learning rate and temperature must be positive".into());
        }
        Ok(())
    }
}

/// What happened during training.
#[derive(Clone, Debug, Default)]
pub struct TrainReport {
    /// Loss of each step.
    pub losses: Vec<f64>,
    /// Mean similarity/τ of the positive pairs at each step (scale-dependent for −MSE).
    pub positive_similarity: Vec<f64>,
    /// Geometric mean of the softmax probability each point gives its positive among the
    /// 2N − 1 candidates (exp of −InfoNCE): 1/(2N − 1) is chance, 1 is perfect matching.
    pub positive_probability: Vec<f64>,
    pub cancelled: bool,
    pub steps_per_second: f64,
    /// The registration check's sentence at each checkpoint and at the end (step, sentence);
    /// see `crate::train_check`.
    pub checks: Vec<(u64, String)>,
    /// Stopped before the steps asked for: enough checks in a row were good
    /// (`good_checks_to_stop`).
    pub stopped_when_good: bool,
    /// How many checks in a row were good at the end.
    pub good_checks_in_a_row: u32,
    /// The model ends with the weights of this step, whose check was better than the last
    /// one's (None: the last weights were kept).
    pub returned_to: Option<u64>,
}

/// A check's verdict on the model as trained so far.
pub struct Checked {
    /// Shown with the loss.
    pub sentence: String,
    /// Whether the model is good enough to stop (see [`TrainConfig::good_checks_to_stop`]).
    pub good: bool,
    /// How good (higher is better), to keep the best-checked weights: SGD on a contrastive
    /// loss oscillates, and a check at 6/6 may be followed by one at 0/6.
    pub rank: f64,
    /// The numbers, kept in the model header with the weights they judged.
    pub record: Option<CheckRecord>,
}

#[cfg(feature = "torch")]
/// Deep copies of both networks' weights (and batch-norm statistics) at one step.
struct Snapshot {
    step: u64,
    rank: f64,
    record: Option<CheckRecord>,
    weights: [Vec<(String, Tensor)>; 2],
}

#[cfg(feature = "torch")]
impl Snapshot {
    fn take(model: &Model, step: u64, verdict: &Checked) -> Snapshot {
        let copy = |side: usize| model.var_store(side).variables().into_iter().map(|(name, t)| (name, t.detach().copy())).collect();
        Snapshot { step, rank: verdict.rank, record: verdict.record.clone(), weights: [copy(0), copy(1)] }
    }

    /// Put these weights back into `model` (same architecture: the names are its own).
    fn restore(&self, model: &mut Model) -> Result<()> {
        for (side, saved) in self.weights.iter().enumerate() {
            let mut live = model.var_store(side).variables();
            for (name, value) in saved {
                let target = live.get_mut(name).ok_or_else(|| Error::Internal(format!("weight {name} vanished during training")))?;
                tch::no_grad(|| target.f_copy_(value))?;
            }
        }
        model.header.steps_trained = self.step;
        model.header.check = self.record.clone();
        Ok(())
    }
}

/// Judges the model as trained so far (after the given total step count).
pub type CheckFn<'a> = &'a dyn Fn(&Model, u64) -> Result<Checked>;

#[cfg(feature = "torch")]
/// Rotate each sample of (N, C, H, W) by its own k·90°.
pub fn rotate_each(batch: &Tensor, ks: &[i64]) -> Tensor {
    let parts: Vec<Tensor> = ks.iter().enumerate().map(|(i, &k)| batch.narrow(0, i as i64, 1).rot90(k, [2, 3])).collect();
    Tensor::cat(&parts, 0)
}

#[cfg(feature = "torch")]
fn batch_tensor(patches: &[ndarray::Array3<f32>]) -> Tensor {
    let shape = patches[0].shape();
    let dims = [patches.len() as i64, shape[0] as i64, shape[1] as i64, shape[2] as i64];
    let flat: Vec<f32> = patches.iter().flat_map(|p| p.iter().copied()).collect();
    Tensor::from_slice(&flat).reshape(dims)
}

#[cfg(feature = "torch")]
/// Train `model` on `pairs` (inputs already preprocessed) for `config.steps` more steps.
/// Checkpoints (atomic) go to `checkpoint` if given; `check` runs at every checkpoint step and
/// at the end. Stops cleanly when the monitor cancels.
pub fn train(model: &mut Model, pairs: &[TrainingPair], config: &TrainConfig, checkpoint: Option<PathBuf>, check: Option<CheckFn>, monitor: &dyn Monitor) -> Result<TrainReport> {
    let multiple = model.net(0).config().size_multiple();
    config.validate(multiple)?;
    if pairs.is_empty() {
        return Err(Error::Training("at least one aligned image pair is needed for training".into()));
    }
    for (i, p) in pairs.iter().enumerate() {
        for (side, x) in [(0, &p.a), (1, &p.b)] {
            let want = model.header.modalities[side].net.in_channels;
            if x.shape()[0] != want {
                return Err(Error::Training(format!(
                    "pair {}: the {} image has {} channel(s), the model expects {want}",
                    i + 1, model.header.modalities[side].name, x.shape()[0]
                )));
            }
        }
    }
    let device = model.device();
    tch::manual_seed(config.seed as i64 + model.header.steps_trained as i64);
    let mut rng = Rng::new(config.seed.wrapping_add(model.header.steps_trained.wrapping_mul(0x1000_0001)));
    let make_opt = |vs: &nn::VarStore| -> Result<nn::Optimizer> {
        Ok(match config.optimizer {
            OptimizerKind::Sgd => nn::Sgd { momentum: config.momentum, wd: config.weight_decay, ..Default::default() }.build(vs, config.learning_rate)?,
            OptimizerKind::Adam => nn::Adam { wd: config.weight_decay, ..Default::default() }.build(vs, config.learning_rate)?,
        })
    };
    let mut opts = [make_opt(model.var_store(0))?, make_opt(model.var_store(1))?];
    model.header.training = Some(serde_json::to_value(config).map_err(|e| crate::error::Error::Internal(format!("training settings as JSON: {e}")))?);
    // A check of other weights (a resumed model's) says nothing about the ones trained now.
    model.header.check = None;

    // Every step allocates the same large activations and gradients again; glibc would
    // map each large one afresh and unmap it when freed, so every step faulted its pages in
    // and the kernel zeroed them (perf, paper net, batch 8 × 128²: 37 % of the time in
    // clear_page). Kept in the heap, the next step reuses them.
    let _heap = super::heap::HeapReuse::begin();
    let mut report = TrainReport::default();
    let mut good_in_a_row = 0u32;
    let (mut best, mut last_rank): (Option<Snapshot>, f64) = (None, f64::NEG_INFINITY);
    let start = Instant::now();
    let n = config.batch_size;
    for step in 0..config.steps {
        if monitor.is_cancelled() {
            report.cancelled = true;
            break;
        }
        let (mut pa, mut pb) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let pair = &pairs[rng.below(pairs.len())];
            let (a, b) = sample_patch_pair(pair, config.patch_size, &config.augment, &mut rng);
            pa.push(a);
            pb.push(b);
        }
        let (xa, xb) = (batch_tensor(&pa).to_device(device), batch_tensor(&pb).to_device(device));
        let (ka, kb): (Vec<i64>, Vec<i64>) = if config.equivariance {
            ((0..n).map(|_| rng.below(4) as i64).collect(), (0..n).map(|_| rng.below(4) as i64).collect())
        } else {
            (vec![0; n], vec![0; n])
        };
        let ya = model.net(0).forward_t(&rotate_each(&xa, &ka), true);
        let yb = model.net(1).forward_t(&rotate_each(&xb, &kb), true);
        let minus = |ks: &[i64]| ks.iter().map(|k| -k).collect::<Vec<_>>();
        let (la, lb) = (rotate_each(&ya, &minus(&ka)), rotate_each(&yb, &minus(&kb)));
        let (nce, sim) = info_nce(&la, &lb, config.critic, config.temperature);
        let mut loss = nce.shallow_clone();
        if config.activation_decay > 0.0 {
            loss += (activation_decay(&[&la, &lb], 1.0) + activation_decay(&[&la, &lb], 2.0)) * config.activation_decay;
        }
        for o in opts.iter_mut() {
            o.zero_grad();
        }
        loss.backward();
        for o in opts.iter_mut() {
            o.clip_grad_norm(config.grad_clip);
            o.step();
        }
        let loss_value = loss.double_value(&[]);
        if !loss_value.is_finite() {
            return Err(Error::Training(format!("training diverged at step {} (loss {loss_value}); try a lower learning rate", step + 1)));
        }
        report.losses.push(loss_value);
        report.positive_similarity.push(sim.diagonal(n as i64, 0, 1).mean(Kind::Float).double_value(&[]));
        report.positive_probability.push((-nce.shallow_clone()).exp().double_value(&[]));
        model.header.steps_trained += 1;
        let rate = (step + 1) as f64 / start.elapsed().as_secs_f64().max(1e-9);
        report.steps_per_second = rate;
        let at_checkpoint = config.checkpoint_every > 0 && (step + 1) % config.checkpoint_every == 0;
        let mut enough_good = false;
        if let Some(check) = check.filter(|_| at_checkpoint || step + 1 == config.steps) {
            let done = model.header.steps_trained;
            let verdict = check(model, done)?;
            report.checks.push((done, verdict.sentence.clone()));
            model.header.check = verdict.record.clone();
            good_in_a_row = if verdict.good { good_in_a_row + 1 } else { 0 };
            report.good_checks_in_a_row = good_in_a_row;
            enough_good = config.good_checks_to_stop > 0 && good_in_a_row >= config.good_checks_to_stop;
            last_rank = verdict.rank;
            if best.as_ref().is_none_or(|b| verdict.rank > b.rank) {
                best = Some(Snapshot::take(model, done, &verdict));
            }
        }
        let checked = report.checks.last().map(|(_, c)| format!("; {c}")).unwrap_or_default();
        monitor.report(&Progress { done: step + 1, total: config.steps, message: format!("loss {loss_value:.4}, {rate:.2} steps/s{checked}") });
        if let Some(path) = checkpoint.as_ref().filter(|_| at_checkpoint) {
            model.save(path)?;
        }
        if enough_good && step + 1 < config.steps {
            report.stopped_when_good = true;
            break;
        }
    }
    // A run that ends on a worse check than an earlier one (the last steps, or a cancel,
    // landed in an oscillation) returns to the best-checked weights. One that stopped on good
    // checks is good as it is.
    if let Some(b) = best.filter(|b| b.rank > last_rank && !report.stopped_when_good) {
        b.restore(model)?;
        report.returned_to = Some(b.step);
    }
    Ok(report)
}
