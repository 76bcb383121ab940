//! The FC-DenseNet ("Tiramisu", Jégou et al. 2017) as CoMIR uses it: dense blocks with
//! BN-ReLU-Conv3×3 layers, 1×1 transitions with max pooling on the way down, nearest
//! upsampling + 3×3 conv on the way up, skip connections, and a 1×1 head without bias
//! and without output activation.
use super::config::NetConfig;
use super::fused::batch_norm_relu;
use tch::nn::{self, Module, ModuleT};
use tch::{Device, Tensor};

/// On the CPU, oneDNN's convolutions run ~1.4× faster on channels-last (NHWC-strided)
/// tensors than on NCHW ones, which they reorder on every call (bench/pytorch_peer.sh
/// measures it). The shape stays (N, C, H, W), only the strides change, so no other code
/// notices; batch norm, ReLU, pooling, upsampling and concatenation keep the layout.
pub fn to_channels_last(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Give every 4-D variable (the convolution weights) the channels-last layout, in place, so
/// the layers holding them see it too. Only on the CPU: for CUDA, cuDNN chooses itself.
pub fn use_channels_last(vs: &nn::VarStore) {
    if vs.device() != Device::Cpu {
        return;
    }
    tch::no_grad(|| {
        for (_, mut var) in vs.variables() {
            if var.dim() == 4 {
                let data = to_channels_last(&var);
                var.set_data(&data);
            }
        }
    });
}

#[derive(Debug)]
struct DenseLayer {
    bn: nn::BatchNorm,
    conv: nn::Conv2D,
    dropout: f64,
}

impl DenseLayer {
    fn new(p: &nn::Path, in_c: i64, growth: i64, dropout: f64) -> Self {
        let conv_cfg = nn::ConvConfig { padding: 1, ..Default::default() };
        DenseLayer { bn: nn::batch_norm2d(p / "bn", in_c, Default::default()), conv: nn::conv2d(p / "conv", in_c, growth, 3, conv_cfg), dropout }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        batch_norm_relu(x, &self.bn, train).apply(&self.conv).dropout(self.dropout, train)
    }
}

/// Each layer sees the concatenation of the block input and all earlier layers' outputs.
#[derive(Debug)]
struct DenseBlock {
    layers: Vec<DenseLayer>,
    /// On the way up only the new features leave the block (the input came via the skip).
    new_features_only: bool,
}

impl DenseBlock {
    fn new(p: &nn::Path, in_c: i64, growth: i64, n: usize, new_features_only: bool, dropout: f64) -> Self {
        let layers = (0..n).map(|i| DenseLayer::new(&(p / i), in_c + i as i64 * growth, growth, dropout)).collect();
        DenseBlock { layers, new_features_only }
    }

    /// Training (and the reference in tests): autograd sees plain concatenations.
    fn forward_by_concatenation(&self, x: &Tensor, train: bool) -> Tensor {
        let mut features = vec![x.shallow_clone()];
        for layer in &self.layers {
            let out = layer.forward_t(&Tensor::cat(&features, 1), train);
            features.push(out);
        }
        let keep = if self.new_features_only { &features[1..] } else { &features[..] };
        Tensor::cat(keep, 1)
    }

    /// The channels the block's layers add.
    fn new_channels(&self) -> i64 {
        self.layers.iter().map(|l| l.conv.ws.size()[0]).sum()
    }

    /// Inference: the block's input is the first `filled` channels of `buffer` (made by
    /// [`feature_buffer`] with room for the new ones); every layer reads the channels before
    /// it as a view and writes its features after them. Concatenating anew for every layer
    /// copies the block's growing input once per layer (quadratic in the layers), and on the
    /// CPU the network is bound by such memory traffic, not by its arithmetic. Returns the
    /// channels that leave the block, as a view of `buffer`.
    fn forward_in(&self, buffer: &Tensor, filled: i64) -> Tensor {
        let mut channels = filled;
        for layer in &self.layers {
            let growth = layer.conv.ws.size()[0];
            if !super::dense_conv::dense_layer_into(buffer, channels, &layer.bn, &layer.conv) {
                let out = layer.forward_t(&buffer.narrow(1, 0, channels), false);
                buffer.narrow(1, channels, growth).copy_(&out);
            }
            channels += growth;
        }
        if self.new_features_only { buffer.narrow(1, filled, channels - filled) } else { buffer.narrow(1, 0, channels) }
    }
}

/// An uninitialised buffer of `c` feature maps of `h` × `w`, like `like`'s (kind, device), in
/// the layout its layers compute fastest: row-planar where the CPU kernels serve (see
/// `dense_conv::row_planar_buffer`), channels-last for libtorch on the CPU (see
/// `to_channels_last`), plain elsewhere.
fn empty_buffer(like: &Tensor, n: i64, c: i64, h: i64, w: i64) -> Tensor {
    let options = (like.kind(), like.device());
    if like.device() != Device::Cpu {
        Tensor::empty([n, c, h, w], options)
    } else if like.kind() == tch::Kind::Float && super::dense_conv::serve(Device::Cpu) {
        super::dense_conv::row_planar_buffer(n, c, h, w)
    } else {
        Tensor::empty([n, h, w, c], options).permute([0, 3, 1, 2])
    }
}

/// A buffer of `x`'s channels and `room` more feature maps (uninitialised) the size of
/// `x`'s (see [`empty_buffer`]); `x` is freed once copied in. Also returns `x`'s channel count.
#[cfg(test)]
fn feature_buffer(x: Tensor, room: i64) -> (Tensor, i64) {
    let size = x.size();
    let (n, c, h, w) = (size[0], size[1], size[2], size[3]);
    let buffer = empty_buffer(&x, n, c + room, h, w);
    buffer.narrow(1, 0, c).copy_(&x);
    (buffer, c)
}

#[derive(Debug)]
struct TransitionDown {
    bn: nn::BatchNorm,
    conv: nn::Conv2D,
    dropout: f64,
}

impl TransitionDown {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        batch_norm_relu(x, &self.bn, train).apply(&self.conv).feature_dropout(self.dropout, train).max_pool2d_default(2)
    }
}

#[derive(Debug)]
pub struct Tiramisu {
    config: NetConfig,
    init_conv: nn::Conv2D,
    down: Vec<(DenseBlock, TransitionDown)>,
    bottleneck: DenseBlock,
    up: Vec<(nn::Conv2D, DenseBlock)>,
    head: nn::Conv2D,
}

impl Tiramisu {
    /// Build the network's variables under `p` (call `validate` on the config first).
    pub fn new(p: &nn::Path, config: &NetConfig) -> Tiramisu {
        let g = config.growth_rate as i64;
        let pad1 = nn::ConvConfig { padding: 1, ..Default::default() };
        let init_conv = nn::conv2d(p / "init", config.in_channels as i64, config.init_filters as i64, 3, pad1);
        let mut channels = config.init_filters as i64;
        let mut skips = Vec::new();
        let mut down = Vec::new();
        for (i, &n) in config.down_blocks.iter().enumerate() {
            let q = p / "down" / i;
            let block = DenseBlock::new(&(&q / "block"), channels, g, n, false, config.dropout);
            channels += g * n as i64;
            skips.push(channels);
            let out = (channels as f64 * config.compression) as i64;
            let td = TransitionDown {
                bn: nn::batch_norm2d(&q / "td_bn", channels, Default::default()),
                conv: nn::conv2d(&q / "td_conv", channels, out, 1, Default::default()),
                dropout: config.dropout,
            };
            channels = out;
            down.push((block, td));
        }
        let bottleneck = DenseBlock::new(&(p / "bottleneck"), channels, g, config.bottleneck_layers, true, config.dropout);
        let mut prev = g * config.bottleneck_layers as i64;
        let mut up = Vec::new();
        let levels = config.up_blocks.len();
        for (i, &n) in config.up_blocks.iter().enumerate() {
            let q = p / "up" / i;
            let conv = nn::conv2d(&q / "tu_conv", prev, prev, 3, pad1);
            let skip = skips[levels - 1 - i];
            let last = i + 1 == levels;
            let block = DenseBlock::new(&(&q / "block"), prev + skip, g, n, !last, config.dropout);
            channels = if last { prev + skip + g * n as i64 } else { g * n as i64 };
            prev = g * n as i64;
            up.push((conv, block));
        }
        let head_cfg = nn::ConvConfig { bias: false, ..Default::default() };
        let head = nn::conv2d(p / "head", channels, config.out_channels as i64, 1, head_cfg);
        Tiramisu { config: config.clone(), init_conv, down, bottleneck, up, head }
    }

    pub fn config(&self) -> &NetConfig {
        &self.config
    }
}

impl Tiramisu {
    /// Training (and the reference in tests): the network as written, with concatenations.
    #[expect(clippy::expect_used, reason = "the down path pushed one skip per level the up path pops")]
    fn forward_by_concatenation(&self, x: &Tensor, train: bool) -> Tensor {
        let mut x = x.apply(&self.init_conv);
        if x.device() == Device::Cpu {
            // With one input channel both layouts have the same strides, so the first
            // convolution cannot tell which one is meant: state it for everything after.
            x = to_channels_last(&x);
        }
        let mut skips = Vec::with_capacity(self.down.len());
        for (block, td) in &self.down {
            x = block.forward_by_concatenation(&x, train);
            skips.push(x.shallow_clone());
            x = td.forward_t(&x, train);
        }
        x = self.bottleneck.forward_by_concatenation(&x, train);
        for (conv, block) in &self.up {
            let skip = skips.pop().expect("one skip per level");
            let up = conv.forward(&x.upsample_nearest2d([skip.size()[2], skip.size()[3]], None, None)).relu();
            x = block.forward_by_concatenation(&Tensor::cat(&[skip, up], 1), train);
        }
        x.apply(&self.head)
    }

    /// Inference, the same values with fewer copies and less memory: each level's buffer is
    /// made on the way down with room for its up block too, so the skip stays where the down
    /// block wrote it (the up block's first channels) instead of being concatenated with the
    /// upsampled features, and the pass holds one large block per level instead of two (the
    /// full-resolution buffer is its largest: made first, it leaves no hole in the heap). On
    /// the CPU the layers write into these buffers themselves (see `super::dense_conv`): the
    /// first convolution, the transitions down (into the level below's buffer) and up.
    #[expect(clippy::expect_used, reason = "the down path pushed one buffer per level the up path pops")]
    fn forward_inference(&self, x: &Tensor) -> Tensor {
        use super::dense_conv::{conv_into, transition_down_into, upsampling_conv_into};
        // Each level's room after its input: its down block's, the way up's and its up block's
        // features; the bottleneck's after the last level.
        let rooms: Vec<i64> = self.down.iter().zip(self.up.iter().rev()).map(|((block, _), (up_conv, up_block))| block.new_channels() + up_conv.ws.size()[0] + up_block.new_channels()).chain([self.bottleneck.new_channels()]).collect();
        let size = x.size();
        let (n, h, w) = (size[0], size[2], size[3]);
        let init_channels = self.init_conv.ws.size()[0];
        let mut buffer = empty_buffer(x, n, init_channels + rooms[0], h, w);
        if !conv_into(&buffer, 0, x, &self.init_conv) {
            buffer.narrow(1, 0, init_channels).copy_(&x.apply(&self.init_conv));
        }
        let mut input = init_channels;
        let mut levels = Vec::with_capacity(self.down.len());
        for ((block, td), room) in self.down.iter().zip(&rooms[1..]) {
            let features = block.forward_in(&buffer, input);
            let filled = input + block.new_channels();
            let (size, td_channels) = (buffer.size(), td.conv.ws.size()[0]);
            let next = empty_buffer(&buffer, n, td_channels + room, size[2] / 2, size[3] / 2);
            if !transition_down_into(&next, &buffer, filled, &td.bn, &td.conv) {
                next.narrow(1, 0, td_channels).copy_(&td.forward_t(&features, false));
            }
            levels.push((buffer, filled));
            (buffer, input) = (next, td_channels);
        }
        let mut x = self.bottleneck.forward_in(&buffer, input);
        for (conv, block) in &self.up {
            let (buffer, skip) = levels.pop().expect("one buffer per level");
            let up_channels = conv.ws.size()[0];
            if !upsampling_conv_into(&buffer, skip, &x, conv) {
                let mut up = conv.forward(&x.upsample_nearest2d([buffer.size()[2], buffer.size()[3]], None, None));
                let _ = up.relu_();
                buffer.narrow(1, skip, up_channels).copy_(&up);
            }
            drop(x);
            x = block.forward_in(&buffer, skip + up_channels);
        }
        super::dense_conv::head(&x, &self.head).unwrap_or_else(|| x.apply(&self.head))
    }
}

impl ModuleT for Tiramisu {
    /// `x`: (N, in_channels, H, W) with H, W multiples of `config.size_multiple()`.
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        if train {
            self.forward_by_concatenation(x, true)
        } else {
            self.forward_inference(x)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fused::tests::{randomise_batch_norms, seeded};

    /// Inference writes a block's features into one buffer after its input (and, on the way
    /// up, after a skip it did not make); it must give what the concatenations give, in both
    /// layouts (channels-last on the CPU, plain elsewhere).
    #[test]
    fn a_dense_block_gives_the_same_features_from_its_buffer_as_from_concatenations() {
        let _seed = seeded(3);
        let vs = nn::VarStore::new(Device::Cpu);
        for new_features_only in [false, true] {
            let block = DenseBlock::new(&(vs.root() / format!("b{new_features_only}")), 8, 4, 3, new_features_only, 0.0);
            randomise_batch_norms(&vs);
            let x = Tensor::randn([2, 8, 12, 10], (tch::Kind::Float, Device::Cpu));
            for input in [x.shallow_clone(), to_channels_last(&x)] {
                let want = tch::no_grad(|| block.forward_by_concatenation(&input, false));
                let (buffer, filled) = feature_buffer(input.shallow_clone(), block.new_channels());
                let got = tch::no_grad(|| block.forward_in(&buffer, filled));
                assert_eq!(got.size(), want.size());
                let diff = (got - &want).abs().max().double_value(&[]);
                assert!(diff < 1e-5, "largest difference {diff}");
                assert!(want.abs().max().double_value(&[]) > 0.1, "a block that computes nothing proves nothing");
            }
        }
    }

    /// The inference pass (skips kept in the up blocks' buffers, batch norm and ReLU fused)
    /// computes the network as written, for both presets' shapes of levels.
    #[test]
    fn inference_gives_what_the_network_as_written_gives() {
        let _seed = seeded(5);
        for (config, side) in [(NetConfig::small(2, 3), 48), (NetConfig { down_blocks: vec![1, 2, 1], up_blocks: vec![2, 1, 1], ..NetConfig::paper(1, 2) }, 40)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let net = Tiramisu::new(&vs.root(), &config);
            randomise_batch_norms(&vs);
            let x = Tensor::randn([1, config.in_channels as i64, side, side], (tch::Kind::Float, Device::Cpu));
            let want = tch::no_grad(|| net.forward_by_concatenation(&x, false));
            let got = tch::no_grad(|| net.forward_t(&x, false));
            assert_eq!(got.size(), vec![1, config.out_channels as i64, side, side]);
            let diff = (&got - &want).abs().max().double_value(&[]);
            let scale = want.abs().max().double_value(&[]);
            assert!(scale > 0.1, "a network that computes nothing proves nothing");
            assert!(diff < 1e-5 * scale, "largest difference {diff} (outputs up to {scale})");
        }
    }

    /// `NetConfig::variables` (how the build without libtorch reads a model file) names every
    /// variable the built network has, with its shape, and no other.
    #[test]
    fn the_configs_variables_are_the_networks() {
        let _seed = seeded(7);
        for config in [NetConfig::small(1, 3), NetConfig::paper(3, 2), NetConfig { compression: 0.5, ..NetConfig::small(2, 1) }] {
            let vs = nn::VarStore::new(Device::Cpu);
            let _net = Tiramisu::new(&vs.root(), &config);
            let mut built: Vec<(String, Vec<usize>)> = vs.variables().into_iter().map(|(n, t)| (n, t.size().iter().map(|&s| s as usize).collect())).collect();
            built.sort();
            let mut listed = config.variables();
            listed.sort();
            assert_eq!(listed, built);
        }
    }

    /// `NetConfig::flops_per_pixel` against the built network: every convolution weight does
    /// one multiply-add per output pixel of its level (read from the variable's path).
    #[test]
    fn flops_per_pixel_counts_every_convolution_weight_at_its_level() {
        // Building a network draws its initial weights from libtorch's global generator.
        let _seed = seeded(6);
        for config in [NetConfig::small(1, 1), NetConfig::paper(3, 2)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let _net = Tiramisu::new(&vs.root(), &config);
            let depth = config.down_blocks.len() as i32;
            let mut macs = 0.0;
            for (name, var) in vs.variables() {
                if var.dim() != 4 {
                    continue; // biases, batch norm
                }
                let parts: Vec<&str> = name.split('.').collect();
                let level = match parts[0] {
                    "down" => parts[1].parse::<i32>().unwrap(),
                    "bottleneck" => depth,
                    "up" => depth - 1 - parts[1].parse::<i32>().unwrap(),
                    _ => 0, // init, head
                };
                macs += var.numel() as f64 * 0.25f64.powi(level);
            }
            let want = 2.0 * macs;
            assert!((config.flops_per_pixel() - want).abs() < 1e-9 * want, "{} vs {want}", config.flops_per_pixel());
        }
    }
}
