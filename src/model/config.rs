//! Size knobs of the FC-DenseNet ("Tiramisu") and their presets.
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    /// Filters of the first 3×3 convolution.
    pub init_filters: usize,
    /// Channels each dense layer adds.
    pub growth_rate: usize,
    /// Dense layers per block on the way down (one entry per resolution level).
    pub down_blocks: Vec<usize>,
    /// Dense layers per block on the way up (same length as `down_blocks`).
    pub up_blocks: Vec<usize>,
    pub bottleneck_layers: usize,
    /// Channel factor of the 1×1 transition-down convolutions.
    pub compression: f64,
    pub dropout: f64,
}

impl NetConfig {
    /// The configuration of the CoMIR paper (≈1.05 M parameters for one input channel).
    pub fn paper(in_channels: usize, out_channels: usize) -> NetConfig {
        NetConfig {
            in_channels,
            out_channels,
            init_filters: 32,
            growth_rate: 12,
            down_blocks: vec![4; 6],
            up_blocks: vec![4; 6],
            bottleneck_layers: 4,
            compression: 0.75,
            dropout: 0.2,
        }
    }

    /// A small net for CPU training and tests (≈40 k parameters).
    pub fn small(in_channels: usize, out_channels: usize) -> NetConfig {
        NetConfig {
            in_channels,
            out_channels,
            init_filters: 16,
            growth_rate: 8,
            down_blocks: vec![2; 4],
            up_blocks: vec![2; 4],
            bottleneck_layers: 2,
            compression: 0.75,
            dropout: 0.1,
        }
    }

    pub fn preset(name: &str, in_channels: usize, out_channels: usize) -> Result<NetConfig> {
        match name {
            "paper" => Ok(Self::paper(in_channels, out_channels)),
            "small" => Ok(Self::small(in_channels, out_channels)),
            other => Err(Error::UnknownChoice { what: "network size", given: other.into(), choices: "small or paper".into() }),
        }
    }

    /// Input sizes must be multiples of this (one max-pooling per level).
    pub fn size_multiple(&self) -> usize {
        1 << self.down_blocks.len()
    }

    /// Peak working memory of a forward pass per pixel of its window (bytes), per feature
    /// channel at full resolution (the first dense block's output), from the peak RSS of
    /// whole-image passes (`comir represent`, less a 128² pass's). With the CPU kernels of
    /// `dense_conv` (`fused_kernels`), which write every layer straight into its block's
    /// buffer, 11–12 bytes measured (small net 1024² and 2048², paper net 512² and 1024²,
    /// session 27): 16 planned. libtorch's path (other CPUs, GPUs) makes a normalised copy
    /// and a fresh output per layer: 32 (small net 512² and 1024², 0.99 kB per pixel for 32
    /// channels; paper net 256² and 512², 2.4 kB for 80). Lower levels and freed maps share
    /// the rest.
    pub fn inference_bytes_per_pixel(&self, fused_kernels: bool) -> u64 {
        let full_res = self.init_filters + self.growth_rate * self.down_blocks.first().copied().unwrap_or(0);
        let per_channel = if fused_kernels { 16 } else { 32 };
        per_channel * full_res.max(self.in_channels + self.out_channels) as u64
    }

    /// Radius in pixels of the theoretical receptive field: how far an output pixel can see.
    pub fn receptive_radius(&self) -> usize {
        let mut r = 1; // first 3×3 conv
        for (level, (down, up)) in self.down_blocks.iter().zip(&self.up_blocks).enumerate() {
            let scale = 1 << level;
            r += scale * (down + up + 2); // 3×3 convs in both blocks, pooling, upsampling conv
        }
        r + (self.bottleneck_layers << self.down_blocks.len())
    }

    /// Floating-point operations of one forward pass per input pixel: 2 per multiply-add of
    /// every convolution (what a GEMM's GFLOP/s counts), each layer at its own resolution (a
    /// quarter of the pixels per level down). Batch norm, ReLU, pooling and concatenation are
    /// left out: they move memory, they are not arithmetic.
    pub fn flops_per_pixel(&self) -> f64 {
        let depth = self.down_blocks.len() as i32;
        // Every convolution weight (the 4-d variables) at the level its path names.
        let macs: f64 = self
            .variables()
            .iter()
            .filter(|(_, shape)| shape.len() == 4)
            .map(|(name, shape)| {
                let mut parts = name.split('.');
                let level = match (parts.next(), parts.next().and_then(|i| i.parse::<i32>().ok())) {
                    (Some("down"), Some(i)) => i,
                    (Some("bottleneck"), _) => depth,
                    (Some("up"), Some(i)) => depth - 1 - i,
                    _ => 0, // init, head
                };
                shape.iter().product::<usize>() as f64 * 0.25f64.powi(level)
            })
            .sum();
        2.0 * macs
    }

    /// Every variable of the network, by the name the model file gives it (without the
    /// modality's prefix) with its shape: what `Tiramisu::new` makes (a test holds them equal),
    /// so a build without libtorch checks a model file as the other does.
    pub fn variables(&self) -> Vec<(String, Vec<usize>)> {
        let g = self.growth_rate;
        let mut v: Vec<(String, Vec<usize>)> = vec![];
        let conv = |v: &mut Vec<(String, Vec<usize>)>, name: &str, outputs: usize, inputs: usize, side: usize, bias: bool| {
            v.push((format!("{name}.weight"), vec![outputs, inputs, side, side]));
            if bias {
                v.push((format!("{name}.bias"), vec![outputs]));
            }
        };
        let bn = |v: &mut Vec<(String, Vec<usize>)>, name: &str, c: usize| {
            for what in ["weight", "bias", "running_mean", "running_var"] {
                v.push((format!("{name}.{what}"), vec![c]));
            }
        };
        let block = |v: &mut Vec<(String, Vec<usize>)>, path: &str, c: usize, n: usize| {
            for j in 0..n {
                bn(v, &format!("{path}.{j}.bn"), c + j * g);
                conv(v, &format!("{path}.{j}.conv"), g, c + j * g, 3, true);
            }
        };
        conv(&mut v, "init", self.init_filters, self.in_channels, 3, true);
        let mut channels = self.init_filters;
        let mut skips = vec![];
        for (i, &n) in self.down_blocks.iter().enumerate() {
            block(&mut v, &format!("down.{i}.block"), channels, n);
            channels += g * n;
            skips.push(channels);
            let out = (channels as f64 * self.compression) as usize;
            bn(&mut v, &format!("down.{i}.td_bn"), channels);
            conv(&mut v, &format!("down.{i}.td_conv"), out, channels, 1, true);
            channels = out;
        }
        block(&mut v, "bottleneck", channels, self.bottleneck_layers);
        let mut prev = g * self.bottleneck_layers;
        for (i, &n) in self.up_blocks.iter().enumerate() {
            let skip = skips[self.up_blocks.len() - 1 - i];
            conv(&mut v, &format!("up.{i}.tu_conv"), prev, prev, 3, true);
            block(&mut v, &format!("up.{i}.block"), prev + skip, n);
            channels = if i + 1 == self.up_blocks.len() { prev + skip + g * n } else { g * n };
            prev = g * n;
        }
        conv(&mut v, "head", self.out_channels, channels, 1, false);
        v
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Parameter(format!("network configuration: {m}")));
        if self.in_channels == 0 || self.in_channels > 64 { return bad("in_channels must be 1..64"); }
        if self.out_channels == 0 || self.out_channels > 64 { return bad("out_channels must be 1..64"); }
        if self.init_filters == 0 || self.growth_rate == 0 { return bad("init_filters and growth_rate must be positive"); }
        if self.down_blocks.is_empty() || self.down_blocks.len() > 8 { return bad("1..8 down blocks are needed"); }
        if self.up_blocks.len() != self.down_blocks.len() { return bad("up_blocks must have as many entries as down_blocks"); }
        if self.down_blocks.iter().chain(&self.up_blocks).any(|&l| l == 0 || l > 16) || self.bottleneck_layers == 0 {
            return bad("every block needs 1..16 layers");
        }
        if !(self.compression > 0.0 && self.compression <= 1.0) { return bad("compression must be in (0, 1]"); }
        if !(0.0..1.0).contains(&self.dropout) { return bad("dropout must be in [0, 1)"); }
        Ok(())
    }
}
