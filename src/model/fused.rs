//! Batch norm and ReLU in one pass, for inference on the CPU.
//!
//! Every dense layer normalises all the channels before it (its block's input and the
//! earlier layers' features), so on the CPU the network spends more time on these per-channel
//! passes than on its small convolutions. libtorch does it in two: batch norm reads the
//! block's buffer through a strided view, which takes its generic one-value-at-a-time loop,
//! and ReLU passes over the result again. Here one vectorised pass reads each value once and
//! writes `max(0, x·α + β)` (α = γ/√(σ² + ε), β = b − μ·α, as libtorch's own channels-last
//! kernel folds them) into a dense channels-last tensor, the layout the convolution wants.
#[cfg(feature = "torch")]
use crate::lanes::wide_lanes;
#[cfg(feature = "torch")]
use rayon::prelude::*;
#[cfg(feature = "torch")]
use tch::{nn, Device, Kind, Tensor};

#[cfg(feature = "torch")]
/// A variable's values as floats on the CPU, in its logical (row-major) order; None when
/// they cannot be read so.
pub(crate) fn floats(t: &Tensor) -> Option<Vec<f32>> {
    Vec::<f32>::try_from(t.to_kind(Kind::Float).to_device(Device::Cpu).contiguous().flatten(0, -1)).ok()
}

#[cfg(feature = "torch")]
/// Sizes or strides as `usize`; None if one is negative.
pub(crate) fn as_usize(v: &[i64]) -> Option<Vec<usize>> {
    v.iter().map(|&v| usize::try_from(v).ok()).collect()
}

/// ε of every batch norm of the network (libtorch's default; a test holds them equal).
pub(crate) const BATCH_NORM_EPS: f64 = 1e-5;

/// The per-channel factor and offset that batch norm in inference mode applies.
pub(crate) struct Affine {
    pub(crate) scale: Vec<f32>,
    pub(crate) shift: Vec<f32>,
}

impl Affine {
    #[cfg(feature = "torch")]
    /// α and β of `bn` (made with the default config, as every batch norm of the network is),
    /// or None when its statistics cannot be read as floats.
    pub(crate) fn of(bn: &nn::BatchNorm) -> Option<Affine> {
        let weight = match &bn.ws { Some(w) => Some(floats(w)?), None => None };
        let bias = match &bn.bs { Some(b) => Some(floats(b)?), None => None };
        Affine::from_statistics(&floats(&bn.running_mean)?, &floats(&bn.running_var)?, weight.as_deref(), bias.as_deref())
    }

    /// α and β of a batch norm with the default ε from its running statistics and its weight
    /// and bias (1 and 0 when absent), or None when their lengths differ.
    pub(crate) fn from_statistics(mean: &[f32], var: &[f32], weight: Option<&[f32]>, bias: Option<&[f32]>) -> Option<Affine> {
        let eps = BATCH_NORM_EPS;
        let ones = vec![1.0; mean.len()];
        let zeros = vec![0.0; mean.len()];
        let (weight, bias) = (weight.unwrap_or(&ones), bias.unwrap_or(&zeros));
        if [var.len(), weight.len(), bias.len()].iter().any(|&n| n != mean.len()) {
            return None;
        }
        let scale: Vec<f32> = var.iter().zip(weight).map(|(&v, &w)| (1.0 / (f64::from(v) + eps).sqrt()) as f32 * w).collect();
        let shift = bias.iter().zip(mean).zip(&scale).map(|((&b, &m), &s)| b - m * s).collect();
        Some(Affine { scale, shift })
    }
}

#[cfg(feature = "torch")]
wide_lanes! {
    /// One pixel's channels: `out[c] = max(0, x[c]·scale[c] + shift[c])` (NaN stays NaN, as
    /// with libtorch's ReLU).
    fn normalise_pixels(out: &mut [f32], input: &[f32], stride: usize, scale: &[f32], shift: &[f32]) {
        let c = scale.len();
        for (o, x) in out.chunks_exact_mut(c).zip(input.chunks(stride)) {
            for (((o, &x), &a), &b) in o.iter_mut().zip(&x[..c]).zip(scale).zip(shift) {
                let v = x * a + b;
                *o = if v < 0.0 { 0.0 } else { v };
            }
        }
    }
}

#[cfg(feature = "torch")]
/// `relu(bn(x))`, the start of every dense layer and transition. At inference on the CPU in
/// one pass (see [`one_pass`]); otherwise libtorch's batch norm, then ReLU — in place at
/// inference, on batch norm's fresh output (one buffer fewer).
pub fn batch_norm_relu(x: &Tensor, bn: &nn::BatchNorm, train: bool) -> Tensor {
    if let Some(normalised) = if train { None } else { one_pass(x, bn) } {
        return normalised;
    }
    let mut normalised = x.apply_t(bn, train);
    if train {
        normalised.relu()
    } else {
        let _ = normalised.relu_();
        normalised
    }
}

#[cfg(feature = "torch")]
/// `relu(bn(x))` (inference mode) of a float CPU tensor (N, C, H, W) whose channels are
/// adjacent in memory (channels-last, possibly a channel range of a wider buffer), as a new
/// dense channels-last tensor; None when `x` is not such a tensor, `bn` does not have C
/// channels, or autograd tracks `x` (the pass writes raw memory, which no gradient would flow
/// back through).
fn one_pass(x: &Tensor, bn: &nn::BatchNorm) -> Option<Tensor> {
    let (size, stride) = (x.size(), x.stride());
    if x.device() != Device::Cpu || x.kind() != Kind::Float || x.requires_grad() || size.len() != 4 || stride[1] != 1 {
        return None;
    }
    let (size, stride) = (as_usize(&size)?, as_usize(&stride)?);
    let (n, c, h, w) = (size[0], size[1], size[2], size[3]);
    let affine = Affine::of(bn)?;
    // Pixels of a row lie `stride[3]` apart, each with its c channels; rows may lie anywhere.
    if c != affine.scale.len() || c == 0 || stride[3] < c || n * h * w == 0 {
        return None;
    }
    let out = Tensor::empty([n as i64, h as i64, w as i64, c as i64], (Kind::Float, Device::Cpu));
    let row_len = (w - 1) * stride[3] + c;
    let (src, dst) = (x.data_ptr() as usize, out.data_ptr() as usize);
    (0..n * h).into_par_iter().for_each(|row| {
        let (image, y) = (row / h, row % h);
        // SAFETY: `x` is a live float CPU tensor of these sizes and strides, so the values of
        // row (image, y) — pixel j's c channels from offset j·stride[3] — lie inside its
        // storage; `out` is a fresh contiguous (N, H, W, C) float tensor that no one else
        // sees yet, and each row writes only its own w·c values.
        let (input, output) = unsafe {
            let input = std::slice::from_raw_parts((src as *const f32).add(image * stride[0] + y * stride[2]), row_len);
            let output = std::slice::from_raw_parts_mut((dst as *mut f32).add(row * w * c), w * c);
            (input, output)
        };
        normalise_pixels(output, input, stride[3], &affine.scale, &affine.shift);
    });
    Some(out.permute([0, 3, 1, 2]))
}

#[cfg(feature = "torch")]
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::net::to_channels_last;

    /// Batch norms with statistics and weights of their own (a fresh one is nearly the
    /// identity): every 1-D variable of `vs` (no weight of a convolution is 1-D).
    /// Seed libtorch's one global generator and hold it until the guard drops: tests run on
    /// parallel threads, and another test's draws between the seed and this test's would make
    /// its numbers (and whether its checks can pass) depend on timing.
    pub(crate) fn seeded(seed: i64) -> std::sync::MutexGuard<'static, ()> {
        static GENERATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let guard = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
        tch::manual_seed(seed);
        guard
    }

    pub(crate) fn randomise_batch_norms(vs: &nn::VarStore) {
        // By name: `variables()` is a HashMap, whose order (and so which variable got which
        // draws) changed from process to process, and with it whether a test's checks held.
        let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        variables.sort_by(|a, b| a.0.cmp(&b.0));
        tch::no_grad(|| {
            for (name, mut var) in variables {
                if var.dim() == 1 {
                    let noise = Tensor::rand_like(&var);
                    var.copy_(&if name.ends_with("running_var") { noise + 0.1 } else { noise * 2.0 - 1.0 });
                }
            }
        });
    }

    /// The ε the CPU kernels fold into batch norms is libtorch's (every batch norm of the
    /// network is made with the default config).
    #[test]
    fn the_batch_norm_epsilon_is_libtorchs() {
        assert_eq!(BATCH_NORM_EPS, nn::BatchNormConfig::default().eps);
    }

    /// The fused pass gives what libtorch's batch norm and ReLU give, on a channel range of a
    /// wider channels-last buffer (how dense layers call it), on both lane widths.
    #[test]
    fn fused_batch_norm_relu_matches_libtorchs() {
        let _seed = seeded(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let c = 13;
        let bn = nn::batch_norm2d(vs.root() / "bn", c, Default::default());
        randomise_batch_norms(&vs);
        let buffer = to_channels_last(&Tensor::randn([2, 21, 7, 9], (Kind::Float, Device::Cpu)));
        let x = buffer.narrow(1, 0, c);
        let expected = tch::no_grad(|| x.apply_t(&bn, false).relu());
        let wide = one_pass(&x, &bn).unwrap();
        let narrow = crate::lanes::with_baseline_only(|| one_pass(&x, &bn).unwrap());
        assert_eq!(wide.size(), x.size());
        let worst = f64::try_from((&wide - &expected).abs().max()).unwrap();
        assert!(worst < 1e-5, "fused vs libtorch: {worst}");
        assert!(f64::try_from(expected.gt(0.0).to_kind(Kind::Float).mean(Kind::Float)).unwrap() > 0.2, "ReLU both clips and keeps");
        assert!(wide.equal(&narrow), "the AVX2 and baseline copies differ");
        // The result is channels-last and dense: what oneDNN's convolution takes without a copy.
        assert_eq!(wide.stride(), vec![7 * 9 * c, 1, 9 * c, c]);
        // Tensors it cannot read fall back to libtorch (None), never read out of bounds.
        assert!(one_pass(&Tensor::randn([1, c, 4, 4], (Kind::Float, Device::Cpu)), &bn).is_none());
        assert!(one_pass(&buffer.narrow(1, 0, c + 1), &bn).is_none());
        let tracked = to_channels_last(&Tensor::randn([1, c, 3, 3], (Kind::Float, Device::Cpu))).set_requires_grad(true);
        assert!(one_pass(&tracked, &bn).is_none());
        assert!(one_pass(&tracked.detach(), &bn).is_some(), "refused for autograd alone");
    }
}
