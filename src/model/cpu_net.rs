//! The network's inference on the CPU without libtorch: the layers' constants read once from
//! the weights, the feature buffers our own, every layer computed by the kernels of
//! [`super::dense_conv`] — the same kernels, in the same order, on the same layouts as the
//! libtorch path (`Tiramisu::forward_inference`), so the CoMIRs are the same to the last bit
//! (tests). Both builds run networks on the CPU through it; the build without libtorch (the
//! `torch` feature off: `target/bin/comir`) has no other way, and so a command does not pay
//! libtorch's start-up (0.15–0.3 s of every process that loads it).
use super::config::NetConfig;
use super::dense_conv::{conv_in, dense_layer_in, head_applies, head_into, row_planar_strides, transition_down_in, Layer, View, Width};
use super::fused::Affine;

/// One variable's shape and values (row-major), by its name in the model file (without the
/// modality's prefix), e.g. "down.0.block.1.conv.weight".
pub type Weights<'a> = dyn Fn(&str) -> Option<(Vec<usize>, Vec<f32>)> + 'a;

/// The weights of a libtorch variable store (a network as `Tiramisu::new` made it, with the
/// values it holds now), as [`Weights`] names them.
#[cfg(feature = "torch")]
pub fn var_store_weights(vs: &tch::nn::VarStore) -> impl Fn(&str) -> Option<(Vec<usize>, Vec<f32>)> {
    let variables = vs.variables();
    move |name: &str| {
        let t = variables.get(name)?;
        Some((super::fused::as_usize(&t.size())?, super::fused::floats(t)?))
    }
}

/// Whether this CPU has the kernels' instructions (AVX2 and FMA at least).
pub fn available() -> bool {
    Width::detect().is_some()
}

/// A level on the way down: its dense block's layers and the transition to the level below.
#[derive(Clone)]
struct Down {
    block: Vec<Layer>,
    transition: Layer,
}

/// A level on the way up: the upsampling convolution and the dense block after it.
#[derive(Clone)]
struct Up {
    conv: Layer,
    block: Vec<Layer>,
}

/// A network's layers, ready for the kernels.
#[derive(Clone)]
pub struct CpuNet {
    width: Width,
    init: Layer,
    down: Vec<Down>,
    bottleneck: Vec<Layer>,
    up: Vec<Up>,
    /// The 1×1 head as [output][channel], and its output count.
    head: Vec<f32>,
    outputs: usize,
}

/// A float buffer of the kernels' layout (row-planar, see `dense_conv::row_planar_buffer`),
/// 64-byte aligned as libtorch's allocator aligns, uninitialised: every value a layer reads was
/// written by an earlier one (a pass never reads what it did not write).
struct Planes {
    ptr: std::ptr::NonNull<f32>,
    layout: std::alloc::Layout,
    view: View,
}

impl Planes {
    fn new(n: usize, c: usize, h: usize, w: usize) -> Option<Planes> {
        let values = n.checked_mul(c)?.checked_mul(h)?.checked_mul(w)?.max(1);
        let layout = std::alloc::Layout::from_size_align(values.checked_mul(4)?, 64).ok()?;
        // SAFETY: the layout's size is not zero (at least one value).
        let ptr = std::ptr::NonNull::new(unsafe { std::alloc::alloc(layout) } as *mut f32)?;
        Some(Planes { ptr, layout, view: View { base: ptr.as_ptr() as usize, size: [n, c, h, w], stride: row_planar_strides(c, h, w) } })
    }
}

impl Drop for Planes {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr() as *mut u8, self.layout) };
    }
}

/// The feature buffers of a pass, one per level, kept for the next pass of the same size.
/// Every window of a tiled pass has one size: its buffers are made once, and no window's
/// freed buffers leave holes in the heap that the next one's do not fit (a 2048² image in four
/// windows peaked at 0.93 GB with buffers made per window, 0.72 GB in libtorch's tensors). The
/// peak is a whole pass's: at the bottleneck every level's buffer is in use anyway.
#[derive(Default)]
pub struct Workspace {
    buffers: Vec<Planes>,
}

impl Workspace {
    /// Buffers of these (channels, height, width), the full resolution's made first (it leaves
    /// no hole below the smaller ones); those of another pass's sizes are freed first.
    fn buffers_for(&mut self, shapes: &[[usize; 3]]) -> Option<&[Planes]> {
        let fits = self.buffers.len() == shapes.len() && self.buffers.iter().zip(shapes).all(|(b, &[c, h, w])| b.view.size == [1, c, h, w]);
        if !fits {
            self.buffers.clear();
            for &[c, h, w] in shapes {
                self.buffers.push(Planes::new(1, c, h, w)?);
            }
        }
        Some(&self.buffers)
    }
}

/// The named variable as a layer: a convolution `conv` (its weight and, if present, bias) after
/// the batch norm `bn` and ReLU (if given), with ReLU on its output if `relu_out`.
fn layer(weights: &Weights, bn: Option<&str>, conv: &str, relu_out: bool) -> Option<Layer> {
    let affine = match bn {
        Some(bn) => {
            let values = |what: &str| weights(&format!("{bn}.{what}")).map(|(_, v)| v);
            let (weight, bias) = (values("weight"), values("bias"));
            Some(Affine::from_statistics(&values("running_mean")?, &values("running_var")?, weight.as_deref(), bias.as_deref())?)
        }
        None => None,
    };
    let (shape, ws) = weights(&format!("{conv}.weight"))?;
    let bias = weights(&format!("{conv}.bias")).map(|(_, b)| b);
    Layer::new(affine, &ws, &shape, bias, relu_out)
}

fn block(weights: &Weights, path: &str, layers: usize) -> Option<Vec<Layer>> {
    (0..layers).map(|j| layer(weights, Some(&format!("{path}.{j}.bn")), &format!("{path}.{j}.conv"), false)).collect()
}

impl CpuNet {
    /// The network of `config` with `weights` (named as `Tiramisu::new` names its variables);
    /// None where this CPU has no kernels for it (no AVX2) or a variable is missing or of
    /// another shape than the layers need.
    pub fn new(config: &NetConfig, weights: &Weights) -> Option<CpuNet> {
        let width = Width::detect()?;
        let init = layer(weights, None, "init", false)?;
        let down = (0..config.down_blocks.len())
            .map(|i| Some(Down { block: block(weights, &format!("down.{i}.block"), config.down_blocks[i])?, transition: layer(weights, Some(&format!("down.{i}.td_bn")), &format!("down.{i}.td_conv"), false)? }))
            .collect::<Option<Vec<_>>>()?;
        let bottleneck = block(weights, "bottleneck", config.bottleneck_layers)?;
        let up = (0..config.up_blocks.len())
            .map(|i| Some(Up { conv: layer(weights, None, &format!("up.{i}.tu_conv"), true)?, block: block(weights, &format!("up.{i}.block"), config.up_blocks[i])? }))
            .collect::<Option<Vec<_>>>()?;
        let (shape, head) = weights("head.weight")?;
        let &[outputs, channels, 1, 1] = shape.as_slice() else { return None };
        if init.c != config.in_channels || outputs != config.out_channels || head.len() != outputs * channels || weights("head.bias").is_some() || down.len() != up.len() {
            return None;
        }
        let net = CpuNet { width, init, down, bottleneck, up, head, outputs };
        net.channels_flow().then_some(net)
    }

    /// Whether every layer takes the channels the layers before it leave (the checks a pass
    /// makes, made once for the whole network: a model file's shapes that do not fit each
    /// other are refused when it is read).
    fn channels_flow(&self) -> bool {
        let takes = |layers: &[Layer], mut channels: usize| -> Option<usize> {
            for l in layers {
                if l.c != channels || l.taps != 3 || !l.relu_in {
                    return None;
                }
                channels += l.g;
            }
            Some(channels)
        };
        let flow = || -> Option<()> {
            let mut channels = self.init.g;
            let mut skips = vec![];
            for d in &self.down {
                channels = takes(&d.block, channels)?;
                skips.push(channels);
                (d.transition.c == channels && d.transition.taps == 1).then_some(())?;
                channels = d.transition.g;
            }
            let mut below = takes(&self.bottleneck, channels)? - channels;
            for (i, u) in self.up.iter().enumerate() {
                let skip = skips.pop()?;
                (u.conv.c == below && u.conv.taps == 3 && !u.conv.relu_in).then_some(())?;
                let filled = takes(&u.block, skip + u.conv.g)?;
                below = if i + 1 == self.up.len() { filled } else { filled - skip - u.conv.g };
            }
            (self.head.len() == below * self.outputs).then_some(())
        };
        self.init.taps == 3 && !self.init.relu_in && flow().is_some()
    }

    /// The representation of one `c` × `h` × `w` image (`input` row-major; h and w multiples of
    /// the network's size multiple) as (outputs, h, w) row-major; None where a layer does not
    /// fit its input (another channel count, sizes that do not halve). The feature buffers
    /// come from `workspace`, made there by the first pass of this size and kept for the next.
    pub fn forward(&self, input: &[f32], c: usize, h: usize, w: usize, workspace: &mut Workspace) -> Option<Vec<f32>> {
        if input.len() != c * h * w || h == 0 || w == 0 {
            return None;
        }
        let new_channels = |layers: &[Layer]| layers.iter().map(|l| l.g).sum::<usize>();
        // Each level's room after its input, as in `Tiramisu::forward_inference`: its down
        // block's, the way up's and its up block's features; the bottleneck's after the last.
        let rooms: Vec<usize> = self.down.iter().zip(self.up.iter().rev()).map(|(d, u)| new_channels(&d.block) + u.conv.g + new_channels(&u.block)).chain([new_channels(&self.bottleneck)]).collect();
        let inputs = std::iter::once(self.init.g).chain(self.down.iter().map(|d| d.transition.g));
        let shapes: Vec<[usize; 3]> = inputs.zip(&rooms).enumerate().map(|(k, (input, room))| [input + room, h >> k, w >> k]).collect();
        // The memory the kernels touch: `input` (checked to hold c·h·w values, only read) and
        // the workspace's buffers, one allocation per level, which `b` holds for this pass
        // alone; every call below reads one buffer or `input` and writes another (or the
        // channels after those it reads, of one buffer), as the kernels' Safety asks.
        let b = workspace.buffers_for(&shapes)?;
        let x = View { base: input.as_ptr() as usize, size: [1, c, h, w], stride: [c * h * w, h * w, w, 1] };
        // SAFETY: see above.
        if !unsafe { conv_in(b[0].view, 0, x, &self.init, 0, self.width) } {
            return None;
        }
        let mut input = self.init.g;
        let mut skips = Vec::with_capacity(self.down.len());
        for (k, down) in self.down.iter().enumerate() {
            let filled = self.block_in(&b[k], input, &down.block)?;
            // SAFETY: see above (levels k and k + 1: two buffers).
            if !unsafe { transition_down_in(b[k + 1].view, b[k].view, filled, &down.transition, self.width) } {
                return None;
            }
            skips.push(filled);
            input = down.transition.g;
        }
        let depth = self.down.len();
        let filled = self.block_in(&b[depth], input, &self.bottleneck)?;
        // The features the next layer up reads: (level, first channel, channels).
        let mut x = (depth, input, filled - input);
        for (i, up) in self.up.iter().enumerate() {
            let (k, skip) = (depth - 1 - i, skips.pop()?);
            let (below, from, n) = x;
            // SAFETY: see above (`below` is the level under k: two buffers).
            if !unsafe { conv_in(b[k].view, skip, b[below].view.narrow(from, n)?, &up.conv, 1, self.width) } {
                return None;
            }
            let start = skip + up.conv.g;
            let filled = self.block_in(&b[k], start, &up.block)?;
            // The last block passes all its channels to the head; the others only their new ones.
            let from = if i + 1 == self.up.len() { 0 } else { start };
            x = (k, from, filled - from);
        }
        let (top, from, n) = x;
        let features = b[top].view.narrow(from, n)?;
        if n * self.outputs != self.head.len() || !head_applies(&features, self.outputs) {
            return None;
        }
        let mut out = vec![0.0f32; self.outputs * h * w];
        // SAFETY: see above; `out` is this pass's own (outputs, h, w) floats.
        unsafe { head_into(&features, &self.head, out.as_mut_ptr() as usize) };
        Some(out)
    }

    /// A dense block's layers over `buffer`, from `filled` channels on; returns the channels
    /// filled after it, or None where a layer does not fit. `buffer` must be one that
    /// [`CpuNet::forward`] holds for its pass alone.
    fn block_in(&self, buffer: &Planes, filled: usize, layers: &[Layer]) -> Option<usize> {
        let mut channels = filled;
        for layer in layers {
            // SAFETY: `buffer` is a live allocation of its view that this pass alone uses.
            if !unsafe { dense_layer_in(buffer.view, channels, layer, self.width) } {
                return None;
            }
            channels += layer.g;
        }
        Some(channels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fused::tests::{randomise_batch_norms, seeded};
    use crate::model::net::Tiramisu;
    use tch::nn::ModuleT;
    use tch::{nn, Device, Kind, Tensor};

    /// Without libtorch the network gives the CoMIR libtorch's inference pass gives, to the
    /// last bit: both presets' shapes of levels, one and three input channels, sizes that are
    /// not whole vector blocks, and the model file's two networks as `Model::cpu_net` reads them.
    #[test]
    fn the_cpu_network_gives_libtorchs_inference_to_the_last_bit() {
        if Width::detect().is_none() {
            return; // no kernels on this CPU: `CpuNet::new` says None (checked below)
        }
        let _seed = seeded(21);
        let paper = NetConfig { down_blocks: vec![1, 2, 1], up_blocks: vec![2, 1, 1], ..NetConfig::paper(3, 2) };
        for (config, h, w) in [(NetConfig::small(1, 3), 48, 80), (NetConfig::small(3, 2), 112, 32), (paper, 40, 56)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let net = Tiramisu::new(&vs.root(), &config);
            randomise_batch_norms(&vs);
            crate::model::net::use_channels_last(&vs);
            let cpu = CpuNet::new(&config, &var_store_weights(&vs)).expect("the kernels serve this network");
            let x = Tensor::randn([1, config.in_channels as i64, h, w], (Kind::Float, Device::Cpu));
            let want: Vec<f32> = Vec::try_from(tch::no_grad(|| net.forward_t(&x, false)).contiguous().flatten(0, -1)).unwrap();
            let input: Vec<f32> = Vec::try_from(x.flatten(0, -1)).unwrap();
            let mut workspace = Workspace::default();
            let got = cpu.forward(&input, config.in_channels, h as usize, w as usize, &mut workspace).expect("a fitting input");
            // A workspace kept from a pass of this size, then from one of another size, gives
            // the same values (every value a pass reads, it wrote).
            let again = cpu.forward(&input, config.in_channels, h as usize, w as usize, &mut workspace).unwrap();
            let m = config.size_multiple();
            cpu.forward(&input[..config.in_channels * m * m], config.in_channels, m, m, &mut workspace).unwrap();
            let after_other = cpu.forward(&input, config.in_channels, h as usize, w as usize, &mut workspace).unwrap();
            assert!(again == got && after_other == got, "a kept workspace changed the CoMIR");
            assert_eq!(got.len(), config.out_channels * (h * w) as usize);
            assert!(want.iter().map(|v| v.abs()).fold(0.0, f32::max) > 0.1, "a network that computes nothing proves nothing");
            let differ = got.iter().zip(&want).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
            assert_eq!(differ, 0, "{config:?} {h}×{w}: {differ} values differ from libtorch's pass");
            // Inputs that do not fit are refused, never read out of bounds.
            assert!(cpu.forward(&input[1..], config.in_channels, h as usize, w as usize, &mut Workspace::default()).is_none());
            let doubled = [input.clone(), input.clone()].concat();
            assert!(cpu.forward(&doubled, 2 * config.in_channels, h as usize, w as usize, &mut Workspace::default()).is_none(), "another channel count");
            assert!(cpu.forward(&input, config.in_channels, h as usize * w as usize / (m / 2), m / 2, &mut Workspace::default()).is_none(), "a width that does not halve at every level");
        }
        // A variable missing or of another shape: no network (libtorch's path runs instead).
        let config = NetConfig::small(1, 3);
        let vs = nn::VarStore::new(Device::Cpu);
        let _net = Tiramisu::new(&vs.root(), &config);
        let all = var_store_weights(&vs);
        assert!(CpuNet::new(&config, &|name: &str| if name == "up.1.tu_conv.weight" { None } else { all(name) }).is_none());
        assert!(CpuNet::new(&config, &|name: &str| all(name).map(|(s, v)| if name == "head.weight" { (vec![s[0], s[1] + 1, 1, 1], v) } else { (s, v) })).is_none());
        assert!(CpuNet::new(&NetConfig::small(2, 3), &all).is_none(), "another input channel count than the weights'");
    }
}
