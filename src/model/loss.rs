//! The InfoNCE contrastive loss of CoMIR, vectorised.
//!
//! A batch holds N aligned patch pairs; the 2N representation maps are the points. For
//! point i its positive is the same patch in the other modality (i ± N); the other 2N − 2
//! points are negatives. With s(i, j) = similarity / τ,
//! `loss_i = −s(i, pos(i)) + log Σ_{j≠i} exp s(i, j)`, and the loss is the mean over i.
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
#[cfg(feature = "torch")]
use tch::{Kind, Tensor};

/// How two representation maps are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Critic {
    /// −mean squared difference over all pixels and channels (the paper's default).
    Mse,
    /// Mean over pixels of the cosine similarity of the channel vectors.
    Cosine,
}

impl std::str::FromStr for Critic {
    type Err = Error;
    fn from_str(s: &str) -> Result<Critic> {
        match s {
            "mse" => Ok(Critic::Mse),
            "cosine" => Ok(Critic::Cosine),
            _ => Err(Error::UnknownChoice { what: "critic", given: s.into(), choices: "mse or cosine".into() }),
        }
    }
}

#[cfg(feature = "torch")]
/// The (2N × 2N) similarity matrix of the maps `a` and `b`, each (N, C, H, W), divided by τ.
pub fn similarity_matrix(a: &Tensor, b: &Tensor, critic: Critic, tau: f64) -> Tensor {
    let points = Tensor::cat(&[a, b], 0);
    let n2 = points.size()[0];
    let sim = match critic {
        Critic::Mse => {
            let flat = points.reshape([n2, -1]);
            let d = flat.size()[1] as f64;
            let sq = flat.square().sum_dim_intlist(1, false, Kind::Float);
            // ‖x − y‖² = ‖x‖² + ‖y‖² − 2 x·y, all pairs at once.
            let dist = sq.unsqueeze(1) + sq.unsqueeze(0) - flat.matmul(&flat.transpose(0, 1)) * 2.0;
            -dist.clamp_min(0.0) / d
        }
        Critic::Cosine => {
            let norm = points.norm_scalaropt_dim(2, [1], true).clamp_min(1e-8);
            let unit = (&points / norm).reshape([n2, -1]);
            let pixels = (points.size()[2] * points.size()[3]) as f64;
            unit.matmul(&unit.transpose(0, 1)) / pixels
        }
    };
    sim / tau
}

#[cfg(feature = "torch")]
/// InfoNCE loss over the pairs (a[k], b[k]); returns (mean loss, similarity matrix / τ).
pub fn info_nce(a: &Tensor, b: &Tensor, critic: Critic, tau: f64) -> (Tensor, Tensor) {
    let sim = similarity_matrix(a, b, critic, tau);
    let n2 = sim.size()[0];
    let n = n2 / 2;
    let self_mask = Tensor::eye(n2, (Kind::Bool, sim.device()));
    let others = sim.masked_fill(&self_mask, f64::NEG_INFINITY);
    let log_denominator = others.logsumexp([1], false);
    let positives = sim.diagonal(n, 0, 1); // s(i, i + N) = s(i + N, i)
    let positives = Tensor::cat(&[&positives, &positives], 0);
    ((log_denominator - positives).mean(Kind::Float), sim)
}

#[cfg(feature = "torch")]
/// Mean of |x|^p over all maps: keeps representations from drifting to large values.
#[expect(clippy::expect_used, reason = "called with the two modalities' maps, never none")]
pub fn activation_decay(maps: &[&Tensor], p: f64) -> Tensor {
    let total: i64 = maps.iter().map(|m| m.numel() as i64).sum();
    let sum = maps.iter().map(|m| m.abs().pow_tensor_scalar(p).sum(Kind::Float)).reduce(|a, b| a + b).expect("at least one map");
    sum / total as f64
}
