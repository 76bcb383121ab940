//! A dense layer's batch norm, ReLU and 3×3 convolution in one pass, for inference on the CPU.
//!
//! Every dense layer reads all the channels before it in its block's buffer and adds a few
//! (the growth rate: 8 in the small net). Done with libtorch, each layer writes a normalised
//! copy of its whole input, lets oneDNN convolve it into a fresh tensor, and copies that into
//! the buffer: at 1 MP most of a pass went to those copies and to the page faults of their
//! fresh memory, and oneDNN runs convolutions with 8 outputs far from the CPU's peak. Here each
//! band of rows is normalised into a small row cache (three rows, channel by channel, so the
//! convolution reads 16 neighbouring pixels of a channel with one load), convolved there with
//! the multiply-adds across pixels, and the result written straight into the buffer.
//!
//! The network keeps its buffers row-planar (each row's channels one after the other, see
//! [`row_planar_buffer`]): a layer's input rows are then one stretch of memory, normalised
//! in order, and its outputs are written as rows too. From channels-last buffers every 8
//! pixels × 8 channels had to be gathered and turned, and those two passes cost 0.8× the
//! convolutions (1 MP, small net: whole pass 0.43–0.53 → 0.38 s). The kernels read and write
//! channels-last buffers too, to the same bits.
//!
//! The sums run in another order than oneDNN's (fused multiply-adds over channels, then taps),
//! so the features differ from libtorch's in the last bits (tests: within 1e-5 relative). With
//! AVX-512 the 3×3 convolutions are computed by Winograd's F(2,3) along each row (two
//! neighbouring pixels from four products instead of six; see `simd::block_winograd_avx512`):
//! at 1 MP the network's 3×3 kernel time fell by a quarter (bench/ab-session39.txt).
#[cfg(feature = "torch")]
use super::fused::{as_usize, floats};
use super::fused::Affine;
use rayon::prelude::*;
#[cfg(feature = "torch")]
use tch::{nn, Device, Kind, Tensor};

/// One dense layer's constants, in the order the kernel reads them.
#[derive(Clone)]
pub(crate) struct Layer {
    /// Input channels and new (output) channels.
    pub(crate) c: usize,
    pub(crate) g: usize,
    /// Kernel side: 3 (3×3, zero padding of one) or 1 (1×1).
    pub(crate) taps: usize,
    scale: Vec<f32>,
    shift: Vec<f32>,
    /// ReLU after the batch norm (dense layers), and on the output (the way up).
    pub(crate) relu_in: bool,
    pub(crate) relu_out: bool,
    /// Weights as [group][ky][c][kx][8 outputs of the group]: one load per tap and channel
    /// reaches the eight outputs' weights side by side. The last group is filled up with
    /// zero weights when g is not a multiple of 8 (the paper net's 12: 8 + 4 and 4 unused,
    /// which the 4-output kernel does not read).
    weights: Vec<f32>,
    /// Bias of every output, zeros after the g-th up to whole groups.
    bias: Vec<f32>,
    /// A 3×3 layer's weights for Winograd's F(2,3) along rows (see
    /// [`simd::block_winograd_avx512`]), as [group][ky][c][4 products][8 outputs]: from a
    /// row's taps w0, w1, w2: w0, (w0 + w1 + w2)/2, (w0 − w1 + w2)/2, w2. Empty for 1×1.
    winograd: Vec<f32>,
}

/// Outputs computed together (one vector accumulator per output and pixel block); a last
/// group of at most HALF outputs is computed by a kernel of that many.
const GROUP: usize = 8;
const HALF: usize = 4;

impl Layer {
    #[cfg(feature = "torch")]
    /// The constants of `conv` (3×3, zero padding of one), its input normalised by `bn` and
    /// ReLU where given (a dense layer) or taken as it is (the way up), its output through a
    /// ReLU with `relu_out`.
    fn of(bn: Option<&nn::BatchNorm>, conv: &nn::Conv2D, relu_out: bool) -> Option<Layer> {
        let affine = match bn {
            Some(bn) => Some(Affine::of(bn)?),
            None => None,
        };
        let shape = as_usize(&conv.ws.size())?;
        let bias = match &conv.bs { Some(b) => Some(floats(b)?), None => None };
        Layer::new(affine, &floats(&conv.ws)?, &shape, bias, relu_out)
    }

    /// A layer from its values: `ws` the convolution's weights of `shape` [g][c][k][k] (k = 1
    /// or 3) in row-major order, `bias` (g values, or none), the batch norm's `affine` on the
    /// input followed by ReLU (or the input as it is), ReLU on the output with `relu_out`.
    /// None where the shapes do not fit together.
    pub(crate) fn new(affine: Option<Affine>, ws: &[f32], shape: &[usize], bias: Option<Vec<f32>>, relu_out: bool) -> Option<Layer> {
        let &[g, c, taps, taps_x] = shape else { return None };
        let relu_in = affine.is_some();
        let affine = affine.unwrap_or_else(|| Affine { scale: vec![1.0; c], shift: vec![0.0; c] });
        if !(taps == 1 || taps == 3) || taps_x != taps || c != affine.scale.len() || c != affine.shift.len() || g == 0 || c == 0 {
            return None;
        }
        let bias = bias.unwrap_or_else(|| vec![0.0; g]);
        if ws.len() != g * c * taps * taps || bias.len() != g {
            return None;
        }
        let groups = g.div_ceil(GROUP);
        let mut weights = vec![0.0; groups * GROUP * c * taps * taps];
        for o in 0..g {
            let (group, within) = (o / GROUP, o % GROUP);
            for ch in 0..c {
                for ky in 0..taps {
                    for kx in 0..taps {
                        weights[(((group * taps + ky) * c + ch) * taps + kx) * GROUP + within] = ws[((o * c + ch) * taps + ky) * taps + kx];
                    }
                }
            }
        }
        let mut bias = bias;
        bias.resize(groups * GROUP, 0.0);
        let mut winograd = vec![];
        if taps == 3 {
            winograd = vec![0.0; groups * 3 * c * 4 * GROUP];
            for (row, taps) in weights.chunks_exact(3 * GROUP).enumerate() {
                for o in 0..GROUP {
                    // In f64, rounded once: the products' weights as near as f32 holds them.
                    let [w0, w1, w2] = [0, 1, 2].map(|kx| f64::from(taps[kx * GROUP + o]));
                    for (k, v) in [w0, (w0 + w1 + w2) / 2.0, (w0 - w1 + w2) / 2.0, w2].into_iter().enumerate() {
                        winograd[(row * 4 + k) * GROUP + o] = v as f32;
                    }
                }
            }
        }
        Some(Layer { c, g, taps, scale: affine.scale, shift: affine.shift, relu_in, relu_out, weights, bias, winograd })
    }
}

/// Which vector width the kernel runs with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Width {
    Avx512,
    Avx2,
}

impl Width {
    /// The widest the CPU has, or None (then libtorch computes the layer).
    pub(crate) fn detect() -> Option<Width> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Some(Width::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Some(Width::Avx2);
            }
        }
        None
    }

    /// Pixels per row block: two vectors of 16 lanes, or one of 8.
    fn block(self) -> usize {
        match self {
            Width::Avx512 => 32,
            Width::Avx2 => 8,
        }
    }
}

#[cfg(feature = "torch")]
/// Whether a network on `device` runs on the kernels here: the CPU, with AVX2 at least (else
/// libtorch computes every layer, with more memory: see `NetConfig::inference_bytes_per_pixel`).
pub fn serve(device: Device) -> bool {
    device == Device::Cpu && Width::detect().is_some()
}

#[cfg(feature = "torch")]
/// `conv(relu(bn(channels 0..C of buffer)))` written into channels C..C+G of `buffer`, a float
/// CPU tensor (N, Ctot, H, W) stored channels-last and dense (as `net::feature_buffer` makes
/// it), with zero padding of one pixel (the dense layers' convolutions). False, having written
/// nothing, where that does not apply (other layouts, devices, kinds, a CPU without AVX2): the
/// caller computes the layer with libtorch then.
pub fn dense_layer_into(buffer: &Tensor, channels: i64, bn: &nn::BatchNorm, conv: &nn::Conv2D) -> bool {
    match Width::detect() {
        Some(width) => dense_layer_with(buffer, channels, bn, conv, width),
        None => false,
    }
}

#[cfg(feature = "torch")]
/// The way up: `relu(conv(x upsampled ×2, nearest))` written into channels `at`..`at`+G of
/// `buffer` (as [`dense_layer_into`] takes it), x being a float CPU tensor of half its height
/// and width whose channels lie side by side (a channel range of the level below's buffer).
/// The upsampled image, the convolution's output and the copy into the buffer are never made.
/// False, having written nothing, where that does not apply.
pub fn upsampling_conv_into(buffer: &Tensor, at: i64, x: &Tensor, conv: &nn::Conv2D) -> bool {
    match Width::detect() {
        Some(width) => conv_with(buffer, at, x, conv, 1, width),
        None => false,
    }
}

#[cfg(feature = "torch")]
/// The first layer: `conv(x)` (3×3) written into channels `at`..`at`+G of `buffer`, x of the
/// buffer's height and width with its channels side by side (or a single one). False, having
/// written nothing, where that does not apply.
pub fn conv_into(buffer: &Tensor, at: i64, x: &Tensor, conv: &nn::Conv2D) -> bool {
    match Width::detect() {
        Some(width) => conv_with(buffer, at, x, conv, 0, width),
        None => false,
    }
}

/// A float array (n, c, h, w) in memory: value (i, ch, y, x) at `base` + i·stride[0] +
/// ch·stride[1] + y·stride[2] + x·stride[3] (in values). What the kernels read and write,
/// whether a libtorch tensor holds the memory or [`super::cpu_net`]'s own buffers do.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct View {
    pub(crate) base: usize,
    pub(crate) size: [usize; 4],
    pub(crate) stride: [usize; 4],
}

impl View {
    /// Channels `from`..`from` + `n` (checked).
    pub(crate) fn narrow(self, from: usize, n: usize) -> Option<View> {
        if from + n > self.size[1] {
            return None;
        }
        let [images, _, h, w] = self.size;
        Some(View { base: self.base + 4 * from * self.stride[1], size: [images, n, h, w], stride: self.stride })
    }
}

#[cfg(feature = "torch")]
/// The view of a float CPU tensor (N, C, H, W) that autograd does not track (the kernels write
/// raw memory, which no gradient would flow back through); None otherwise.
fn view(t: &Tensor) -> Option<View> {
    if t.device() != Device::Cpu || t.kind() != Kind::Float || t.requires_grad() || t.dim() != 4 {
        return None;
    }
    let (size, stride) = (as_usize(&t.size())?, as_usize(&t.stride())?);
    Some(View { base: t.data_ptr() as usize, size: size.try_into().ok()?, stride: stride.try_into().ok()? })
}

/// The shape of a buffer the kernels can write, and where its values lie: value (image, ch,
/// y, x) at image·`image` + y·`row` + ch·`channel` + x·`pixel`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Layout {
    n: usize,
    total: usize,
    h: usize,
    w: usize,
    image: usize,
    row: usize,
    channel: usize,
    pixel: usize,
}

/// The layout of a buffer the kernels can write: dense, and either channels-last (a pixel's
/// channels side by side) or row-planar (see [`row_planar_buffer`]).
fn layout(buffer: &View) -> Option<Layout> {
    let ([n, total, h, w], stride) = (buffer.size, buffer.stride);
    if n * h * w == 0 {
        return None;
    }
    let layout = |channel, pixel| Layout { n, total, h, w, image: h * w * total, row: w * total, channel, pixel };
    if stride == [h * w * total, 1, w * total, total] {
        Some(layout(1, total))
    } else if stride == [h * w * total, w, w * total, 1] {
        Some(layout(w, 1))
    } else {
        None
    }
}

#[cfg(feature = "torch")]
/// An uninitialised float CPU buffer of (n, c, h, w) stored row by row, each row's channels
/// one after the other, pixels side by side: the layout the kernels read and write fastest.
/// Every layer reads the first channels of a few rows, which are then one stretch of memory
/// read in order; channels-last, it had to pick them out of every pixel and turn them, and
/// that pass cost ~0.8× the convolutions (see the module's text). libtorch takes such a
/// tensor too (as a strided view), only more slowly.
pub fn row_planar_buffer(n: i64, c: i64, h: i64, w: i64) -> Tensor {
    Tensor::empty([n, h, c, w], (Kind::Float, Device::Cpu)).permute([0, 2, 1, 3])
}

/// The strides of a row-planar (n, c, h, w) array (see [`row_planar_buffer`]).
pub(crate) fn row_planar_strides(c: usize, h: usize, w: usize) -> [usize; 4] {
    [h * c * w, w, c * w, 1]
}

#[cfg(feature = "torch")]
pub(crate) fn dense_layer_with(buffer: &Tensor, channels: i64, bn: &nn::BatchNorm, conv: &nn::Conv2D, width: Width) -> bool {
    let (Some(buffer), Ok(c)) = (view(buffer), usize::try_from(channels)) else { return false };
    let Some(layer) = Layer::of(Some(bn), conv, false) else { return false };
    // SAFETY: the view is of the live tensor's own memory; a network's buffer is written by
    // one layer at a time.
    unsafe { dense_layer_in(buffer, c, &layer, width) }
}

/// A dense layer (3×3, its input normalised) of channels 0..c of `buffer` written after them.
///
/// # Safety
/// `buffer` must be live, writable memory of its view that nothing else reads or writes while
/// the layer runs (its shape and layout are checked here; its memory cannot be).
pub(crate) unsafe fn dense_layer_in(buffer: View, c: usize, layer: &Layer, width: Width) -> bool {
    let Some(out) = layout(&buffer) else { return false };
    if layer.taps != 3 || !layer.relu_in || layer.relu_out || layer.c != c || c + layer.g > out.total {
        return false;
    }
    let input = Input { base: buffer.base, image: out.image, row: out.row, channel: out.channel, pixel: out.pixel, up: 0 };
    run(buffer.base, &out, c, &input, layer, width);
    true
}

#[cfg(feature = "torch")]
/// `conv(x upsampled ×2^up)`, through a ReLU on the way up (up = 1), into the buffer.
pub(crate) fn conv_with(buffer: &Tensor, at: i64, x: &Tensor, conv: &nn::Conv2D, up: u32, width: Width) -> bool {
    let (Some(buffer), Some(x), Ok(at)) = (view(buffer), view(x), usize::try_from(at)) else { return false };
    let Some(layer) = Layer::of(None, conv, up == 1) else { return false };
    // SAFETY: the views are of the live tensors' own memory (their overlap is refused there);
    // a network's buffer is written by one layer at a time.
    unsafe { conv_in(buffer, at, x, &layer, up, width) }
}

/// `layer` (3×3, input as it is) of `x` upsampled ×2^`up` (0 or 1) written into channels
/// `at`.. of `buffer`.
///
/// # Safety
/// As [`dense_layer_in`]'s for `buffer`, and `x` live memory of its view that nothing writes
/// meanwhile.
pub(crate) unsafe fn conv_in(buffer: View, at: usize, x: View, layer: &Layer, up: u32, width: Width) -> bool {
    let Some(out) = layout(&buffer) else { return false };
    let (n, total, h, w) = (out.n, out.total, out.h, out.w);
    let (size, stride) = (x.size, x.stride);
    let (hs, ws) = (h >> up, w >> up);
    if up > 1 || layer.taps != 3 || layer.relu_in || layer.relu_out != (up == 1) || size != [n, layer.c, hs, ws] || hs << up != h || ws << up != w || at + layer.g > total {
        return false;
    }
    // A pixel's channels side by side, or a channel's pixels side by side (planar or row-planar
    // layouts, and a single channel either way).
    let side_by_side = stride[1] == 1 && stride[3] >= layer.c;
    let channel_rows = stride[3] == 1 && (layer.c == 1 || stride[1] >= ws);
    if !side_by_side && !channel_rows {
        return false;
    }
    let (channel, pixel) = if channel_rows { (stride[1], 1) } else { (1, stride[3]) };
    // x is read while the buffer is written: they must not share memory.
    let extent = |ptr: usize, last: usize| ptr..ptr + 4 * (last + 1);
    let x_last = (n - 1) * stride[0] + (hs - 1) * stride[2] + (ws - 1) * pixel + (layer.c - 1) * channel;
    let (xs, bs) = (extent(x.base, x_last), extent(buffer.base, n * h * w * total - 1));
    if xs.start < bs.end && bs.start < xs.end {
        return false;
    }
    let input = Input { base: x.base, image: stride[0], row: stride[2], channel, pixel, up };
    run(buffer.base, &out, at, &input, layer, width);
    true
}

#[cfg(feature = "torch")]
/// The network's 1×1 head (no bias) of `x`, a channel range of a row-planar buffer (see
/// [`row_planar_buffer`]), into a fresh (n, outputs, h, w) tensor. Each output pixel is the
/// sum of its channels times their weights, one fused multiply-add after the other from
/// channel 0: the order in which libtorch's 1×1 convolution sums a channels-last input, so the
/// CoMIRs are the same to the last bit (tests). libtorch itself would first turn the whole top
/// buffer into channels-last, a copy that cost what the row-planar layout saved. None where
/// this does not apply (then libtorch computes it).
pub fn head(x: &Tensor, conv: &nn::Conv2D) -> Option<Tensor> {
    if Width::detect().is_none() || conv.bs.is_some() {
        return None;
    }
    let (x, ws) = (view(x)?, as_usize(&conv.ws.size())?);
    let [n, c, h, w] = x.size;
    if ws.len() != 4 || ws[1] != c || ws[2] != 1 || ws[3] != 1 || !head_applies(&x, ws[0]) {
        return None;
    }
    let out = Tensor::empty([n as i64, ws[0] as i64, h as i64, w as i64], (Kind::Float, Device::Cpu));
    // SAFETY: x views the live tensor's memory; `out` is fresh, contiguous, of this shape.
    unsafe { head_into(&x, &floats(&conv.ws)?, out.data_ptr() as usize) };
    Some(out)
}

/// Whether [`head_into`] takes `x` with `outputs` outputs.
pub(crate) fn head_applies(x: &View, outputs: usize) -> bool {
    let ([n, c, h, w], stride) = (x.size, x.stride);
    Width::detect().is_some() && n * c * h * w != 0 && outputs != 0 && stride[3] == 1 && stride[1] == w && stride[2] >= c * w && stride[0] >= h * stride[2]
}

/// The head's outputs (`weights` as [output][channel]) of `x` (where [`head_applies`]) into
/// `dst`.
///
/// # Safety
/// `x` must be live memory of its view, and `dst` contiguous (n, outputs, h, w) floats of live
/// memory, that nothing else touches meanwhile.
pub(crate) unsafe fn head_into(x: &View, weights: &[f32], dst: usize) {
    let ([n, c, h, w], stride) = (x.size, x.stride);
    let outputs = weights.len() / c;
    assert!(head_applies(x, outputs) && weights.len() == outputs * c);
    let src = x.base;
    (0..n * h).into_par_iter().for_each(|r| {
        let (image, y) = (r / h, r % h);
        for (o, weights) in weights.chunks_exact(c).enumerate() {
            // SAFETY: x is live float memory whose row (image, y) holds channel ch's pixel
            // x at ch·w + x from `from` (strides checked above); `dst` holds contiguous
            // (n, outputs, h, w) floats of which this job alone writes rows (image, ·, y).
            let (from, to) = unsafe { ((src as *const f32).add(image * stride[0] + y * stride[2]), std::slice::from_raw_parts_mut((dst as *mut f32).add(((image * outputs + o) * h + y) * w), w)) };
            to.fill(0.0);
            for (ch, &weight) in weights.iter().enumerate() {
                // SAFETY: channel ch's row of w values lies in x (see above).
                let row = unsafe { std::slice::from_raw_parts(from.add(ch * w), w) };
                #[cfg(target_arch = "x86_64")]
                // SAFETY: AVX2 and FMA are present (Width::detect above); both rows hold w values.
                let done = unsafe { simd::multiply_add_run(to.as_mut_ptr(), row.as_ptr(), w, weight) };
                #[cfg(not(target_arch = "x86_64"))]
                let done = 0;
                for (t, &v) in to.iter_mut().zip(row).skip(done) {
                    *t = v.mul_add(weight, *t);
                }
            }
        }
    });
}

#[cfg(feature = "torch")]
/// The way down: `max_pool2(conv1×1(relu(bn(channels 0..C of buffer))))` written into channels
/// 0..G of `next`, the level below's buffer (both as [`dense_layer_into`] takes them, `next`
/// of half the height and width). The normalised copy and the full-resolution output of the
/// convolution are never made. False, having written nothing, where that does not apply.
pub fn transition_down_into(next: &Tensor, buffer: &Tensor, channels: i64, bn: &nn::BatchNorm, conv: &nn::Conv2D) -> bool {
    match Width::detect() {
        Some(width) => transition_down_with(next, buffer, channels, bn, conv, width),
        None => false,
    }
}

#[cfg(feature = "torch")]
pub(crate) fn transition_down_with(next: &Tensor, buffer: &Tensor, channels: i64, bn: &nn::BatchNorm, conv: &nn::Conv2D, width: Width) -> bool {
    let (Some(next), Some(buffer), Ok(c)) = (view(next), view(buffer), usize::try_from(channels)) else { return false };
    let Some(layer) = Layer::of(Some(bn), conv, false) else { return false };
    // SAFETY: the views are of the live tensors' own memory (one allocation is refused there);
    // a network's buffers are written by one layer at a time.
    unsafe { transition_down_in(next, buffer, c, &layer, width) }
}

/// A transition down (`layer` 1×1, its input normalised) of channels 0..c of `buffer` into
/// channels 0.. of `next`.
///
/// # Safety
/// As [`dense_layer_in`]'s, for both.
pub(crate) unsafe fn transition_down_in(next: View, buffer: View, c: usize, layer: &Layer, width: Width) -> bool {
    let (Some(from), Some(to)) = (layout(&buffer), layout(&next)) else { return false };
    let (n, h, w, h2) = (from.n, from.h, from.w, to.h);
    if layer.taps != 1 || !layer.relu_in || layer.relu_out || layer.c != c || c > from.total || layer.g > to.total || to.n != n || h % 2 != 0 || w % 2 != 0 || h2 != h / 2 || to.w != w / 2 || next.base == buffer.base {
        return false;
    }
    let geometry = Geometry { h, w, at: 0, row: padded_row(w, width.block()), out: to };
    let input = Input { base: 0, image: 0, row: from.row, channel: from.channel, pixel: from.pixel, up: 0 };
    let (src, dst) = (buffer.base, next.base);
    let jobs_per_image = (rayon::current_num_threads() * 4).clamp(1, h2);
    let band = h2.div_ceil(jobs_per_image);
    (0..n * h2.div_ceil(band)).into_par_iter().for_each(|job| {
        let (image, b) = (job / h2.div_ceil(band), job % h2.div_ceil(band));
        // SAFETY: both are live, dense float arrays of their sizes and layouts (checked),
        // distinct allocations of the network's (a level's buffer and the next one's). This
        // job reads channels 0..c of its rows' pairs of `buffer` and writes channels 0..g of
        // its rows of `next` only.
        let (src, dst) = unsafe { ((src as *const f32).add(image * from.image), (dst as *mut f32).add(image * to.image)) };
        pool_band(dst, src, &input, &geometry, layer, b * band..((b + 1) * band).min(h2), width);
    });
    true
}

/// NaN wins, as in libtorch's max pooling.
fn max_or_nan(a: f32, b: f32) -> f32 {
    if b > a || b.is_nan() { b } else { a }
}

/// Rows `rows` of the pooled output (`to`, laid out as `geo.out`): each from two normalised
/// input rows (`from`, read as `input` says), convolved 1×1, the 2×2 maximum written.
#[allow(clippy::too_many_arguments)]
fn pool_band(to: *mut f32, from: *const f32, input: &Input, geo: &Geometry, layer: &Layer, rows: std::ops::Range<usize>, width: Width) {
    let plane = layer.c * geo.row;
    let mut cache = vec![0.0f32; 2 * plane];
    let block = width.block();
    let (mut top, mut bottom) = (vec![0.0f32; GROUP * block], vec![0.0f32; GROUP * block]);
    let out = &geo.out;
    for y2 in rows {
        for k in 0..2 {
            // SAFETY: input row 2·y2 + k < h lies inside the image (see the caller).
            let pixels = Source { values: unsafe { from.add((2 * y2 + k) * input.row) }, len: input.row_extent(geo.w, layer.c) };
            normalise_row(&mut cache[k * plane..][..plane], pixels, input, geo, layer);
        }
        // Column 0 of a cached row is the padding: pixel x is at 1 + x.
        let (r0, r1) = (&cache[1..plane], &cache[plane + 1..]);
        for group in 0..layer.g.div_ceil(GROUP) {
            let outputs = GROUP.min(layer.g - group * GROUP);
            let weights = Weights { plain: &layer.weights[group * layer.c * GROUP..][..layer.c * GROUP], winograd: &[] };
            let bias = &layer.bias[group * GROUP..][..GROUP];
            let mut x0 = 0;
            while x0 < geo.w {
                convolve_group(&mut top, [r0], x0, geo.row, layer.c, weights, bias, outputs, width);
                convolve_group(&mut bottom, [r1], x0, geo.row, layer.c, weights, bias, outputs, width);
                for p in 0..block.min(geo.w - x0) / 2 {
                    // SAFETY: output pixel (y2, x0/2 + p) lies in `to` (x0 + 2p < w); its
                    // channels 8·group + o < g ≤ the next buffer's belong to this job's row alone.
                    let dst = unsafe { to.add(y2 * out.row + (x0 / 2 + p) * out.pixel + group * GROUP * out.channel) };
                    for o in 0..outputs {
                        let at = o * block + 2 * p;
                        let m = max_or_nan(max_or_nan(max_or_nan(top[at], top[at + 1]), bottom[at]), bottom[at + 1]);
                        // SAFETY: see `dst`.
                        unsafe { *dst.add(o * out.channel) = m };
                    }
                }
                x0 += block;
            }
        }
    }
}

/// Where the convolution's input pixels are: pixel (image, y, x) of the output's grid reads
/// its channel ch at base + image·image + (y >> up)·row + ch·channel + (x >> up)·pixel
/// (values). Either channel = 1 (a pixel's channels side by side) or pixel = 1 (a channel's
/// pixels side by side).
struct Input {
    base: usize,
    image: usize,
    row: usize,
    channel: usize,
    pixel: usize,
    /// 1: the input is the nearest ×2 upsampling of the tensor there; 0: the tensor itself.
    up: u32,
}

impl Input {
    /// Values from a row's start to its last one read, for an output `w` wide and `c` channels.
    fn row_extent(&self, w: usize, c: usize) -> usize {
        ((w - 1) >> self.up) * self.pixel + (c - 1) * self.channel + 1
    }
}

/// The layer over the whole buffer, in bands of rows on the thread pool.
fn run(base: usize, out: &Layout, at: usize, input: &Input, layer: &Layer, width: Width) {
    let (n, h, w) = (out.n, out.h, out.w);
    let geometry = Geometry { h, w, at, row: padded_row(w, width.block()), out: *out };
    // Bands of rows, a few per thread (each band normalises its two border rows again).
    let bands_per_image = (rayon::current_num_threads() * 4).clamp(1, h.div_ceil(8).max(1));
    let band = h.div_ceil(bands_per_image);
    (0..n * h.div_ceil(band)).into_par_iter().for_each(|job| {
        let (image, b) = (job / h.div_ceil(band), job % h.div_ceil(band));
        let rows = b * band..((b + 1) * band).min(h);
        // SAFETY: the buffer is a live, dense float tensor of n·h·w·total values laid out as
        // `out` says (checked by the callers); image `image` starts h·w·total values in. The input is
        // read at the offsets `Input` gives, inside its own live tensor (checked by the
        // callers), which shares no memory with the channels written — at..at+g of this
        // band's rows only: no two bands write the same value, and no value written is read.
        let (dst, src) = unsafe { ((base as *mut f32).add(image * out.image), (input.base as *const f32).add(image * input.image)) };
        run_band(dst, src, input, &geometry, layer, rows, width);
    });
}

/// An image's shape, the first channel written, the padded length of a cached channel row,
/// and the layout of the buffer written.
struct Geometry {
    h: usize,
    w: usize,
    at: usize,
    row: usize,
    out: Layout,
}

/// A channel row of the cache holds `w` pixels after one zero (the left padding) and zeros
/// up to a whole number of blocks plus one, so every block's three taps read inside it.
fn padded_row(w: usize, block: usize) -> usize {
    w.div_ceil(block) * block + block
}

/// Rows `rows` of one image: each output row from three cached normalised rows.
#[allow(clippy::too_many_arguments)]
fn run_band(image: *mut f32, src: *const f32, input: &Input, geo: &Geometry, layer: &Layer, rows: std::ops::Range<usize>, width: Width) {
    let plane = layer.c * geo.row;
    // The cache: slot k % 3 holds normalised input row k; `zeros` stands for rows outside.
    let mut cache = vec![0.0f32; 3 * plane];
    let zeros = vec![0.0f32; plane];
    let mut cached = [usize::MAX; 3];
    let mut out = vec![0.0f32; GROUP * width.block()];
    // With AVX-512, Winograd's kernel computes the layer from cached rows split into their
    // even and odd columns (see `simd::block_winograd_avx512`).
    let winograd = width == Width::Avx512;
    let mut plain = vec![0.0f32; if winograd { plane } else { 0 }];
    let layout = &geo.out;
    for y in rows {
        for k in y.saturating_sub(1)..(y + 2).min(geo.h) {
            if cached[k % 3] != k {
                // SAFETY: source row k >> up lies inside the input (see `run`).
                let pixels = Source { values: unsafe { src.add((k >> input.up) * input.row) }, len: input.row_extent(geo.w, layer.c) };
                let slot = &mut cache[(k % 3) * plane..][..plane];
                if winograd {
                    // Normalised apart, then split: normalising writes only a row's pixels and
                    // relies on the zeros around them, which a split row no longer has there.
                    normalise_row(&mut plain, pixels, input, geo, layer);
                    for (from, to) in plain.chunks_exact(geo.row).zip(slot.chunks_exact_mut(geo.row)) {
                        // SAFETY: AVX-512 is present (`winograd` says so); rows of whole blocks.
                        #[cfg(target_arch = "x86_64")]
                        unsafe { simd::split_pairs(from, to) };
                        // (Elsewhere there is no AVX-512 width, so `winograd` is false.)
                        #[cfg(not(target_arch = "x86_64"))]
                        let _ = (from, to);
                    }
                } else {
                    normalise_row(slot, pixels, input, geo, layer);
                }
                cached[k % 3] = k;
            }
        }
        let at = |k: isize| if k < 0 || k as usize >= geo.h { &zeros[..] } else { &cache[(k as usize % 3) * plane..][..plane] };
        let three = [at(y as isize - 1), at(y as isize), at(y as isize + 1)];
        for group in 0..layer.g.div_ceil(GROUP) {
            let outputs = GROUP.min(layer.g - group * GROUP);
            let weights = Weights {
                plain: &layer.weights[group * 9 * layer.c * GROUP..][..9 * layer.c * GROUP],
                winograd: if winograd { &layer.winograd[group * 12 * layer.c * GROUP..][..12 * layer.c * GROUP] } else { &[] },
            };
            let bias = &layer.bias[group * GROUP..][..GROUP];
            let mut x0 = 0;
            while x0 < geo.w {
                convolve_group(&mut out, three, x0, geo.row, layer.c, weights, bias, outputs, width);
                if layer.relu_out {
                    // max(0, v) keeps NaN, as libtorch's ReLU does (see `simd::normalise_8x8`).
                    for v in out[..outputs * width.block()].iter_mut() {
                        *v = if *v < 0.0 { 0.0 } else { *v };
                    }
                }
                let valid = width.block().min(geo.w - x0);
                // SAFETY: pixels (y, x0 .. x0 + valid) lie in the image; their channels
                // at + 8·group + 0..8 are inside `total` (checked: at + g ≤ total) and belong
                // to this band's row alone; `out` holds 8 rows of `block` values.
                let pixel = |px: usize| unsafe { image.add(y * layout.row + (x0 + px) * layout.pixel + (geo.at + group * GROUP) * layout.channel) };
                if layout.pixel == 1 {
                    // Row-planar: each output's pixels go side by side, as computed.
                    for o in 0..outputs {
                        // SAFETY: see `pixel`; output o's `valid` pixels lie in its channel row.
                        unsafe { std::ptr::copy_nonoverlapping(out.as_ptr().add(o * width.block()), pixel(0).add(o * layout.channel), valid) };
                    }
                } else {
                    // Channels-last: turn the block into the pixels' channels at + 8·group …,
                    // 8 pixels at a time.
                    let mut px = 0;
                    #[cfg(target_arch = "x86_64")]
                    while outputs == GROUP && px + 8 <= valid {
                        // SAFETY: as above, AVX2 is present where this runs (both widths have it).
                        unsafe { simd::store_8x8(pixel(px), layout.pixel, out.as_ptr().add(px), width.block()) };
                        px += 8;
                    }
                    #[cfg(target_arch = "x86_64")]
                    while outputs == HALF && px + 8 <= valid {
                        // SAFETY: as above.
                        unsafe { simd::store_4x8(pixel(px), layout.pixel, out.as_ptr().add(px), width.block()) };
                        px += 8;
                    }
                    for px in px..valid {
                        for o in 0..outputs {
                            // SAFETY: see `pixel` (only the group's outputs below g are written).
                            unsafe { *pixel(px).add(o) = out[o * width.block() + px] };
                        }
                    }
                }
                x0 += width.block();
            }
        }
    }
}

/// One input row's values, from its first to its last one read, through a raw pointer: in a
/// channels-last buffer that stretch also holds the channels a layer writes (in other bands'
/// rows too, at the same time), which a shared slice over it must not span.
#[derive(Clone, Copy)]
struct Source {
    values: *const f32,
    len: usize,
}

impl Source {
    /// Value `i` of the row.
    fn at(&self, i: usize) -> f32 {
        assert!(i < self.len);
        // SAFETY: the callers make a Source of `len` readable values of a live tensor.
        unsafe { *self.values.add(i) }
    }

    /// Values i..i+n as a slice.
    ///
    /// # Safety
    /// Nothing may write them while the slice lives.
    unsafe fn run(&self, i: usize, n: usize) -> &[f32] {
        assert!(i + n <= self.len);
        // SAFETY: inside the row's readable values (asserted); unwritten (the caller's promise).
        unsafe { std::slice::from_raw_parts(self.values.add(i), n) }
    }
}

/// `relu(x·scale + shift)` (or x itself, for the way up) of one output row into the cache's
/// channel rows: channel ch's pixel x at ch·row + 1 + x, read from source pixel x >> up (at
/// ch·channel + (x >> up)·pixel in `pixels`). NaN stays NaN, as with libtorch. Channel rows
/// (pixel = 1) are normalised in runs of 8 pixels; a pixel's channels side by side, in blocks
/// of 8 pixels × 8 channels normalised as read and turned in registers.
fn normalise_row(cache: &mut [f32], pixels: Source, input: &Input, geo: &Geometry, layer: &Layer) {
    let c = layer.c;
    assert!(cache.len() >= c * geo.row && geo.row > geo.w && pixels.len >= input.row_extent(geo.w, c));
    if input.pixel == 1 {
        for ch in 0..c {
            // SAFETY: an input channel's row, which nothing writes while the layer runs (it
            // writes other channels; in these layouts a channel's row is a stretch of its own).
            let from = unsafe { pixels.run(ch * input.channel, ((geo.w - 1) >> input.up) + 1) };
            let to = &mut cache[ch * geo.row + 1..][..geo.w];
            let (scale, shift) = (layer.scale[ch], layer.shift[ch]);
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the caller runs this only where AVX2 is present; the run writes the
            // first values of `to` (w of them) from `from`'s first w >> up (asserted above).
            let done = unsafe { simd::normalise_run(to.as_mut_ptr(), from.as_ptr(), geo.w, input.up, scale, shift, layer.relu_in) };
            #[cfg(not(target_arch = "x86_64"))]
            let done = 0;
            for (x, v) in to.iter_mut().enumerate().skip(done) {
                // Multiply, then add, as the vector run does.
                let y = from[x >> input.up] * scale + shift;
                *v = if layer.relu_in && y < 0.0 { 0.0 } else { y };
            }
        }
        return;
    }
    let (full_x, full_c) = (geo.w / 8 * 8, c / 8 * 8);
    let source = |x: usize| (x >> input.up) * input.pixel;
    #[cfg(target_arch = "x86_64")]
    for x in (0..full_x).step_by(8) {
        for ch in (0..full_c).step_by(8) {
            // SAFETY: the caller runs this only where AVX2 is present; pixels x..x+8 (< w) read
            // channels ch..ch+8 (≤ c) of source pixels inside `pixels`, and channel rows
            // ch..ch+8 hold x+1..x+9 (≤ w + 1 ≤ row) in `cache` (asserted above).
            unsafe {
                simd::normalise_8x8(cache.as_mut_ptr().add(ch * geo.row + 1 + x), geo.row, pixels.values.add(source(x) + ch), input.pixel, input.up, &layer.scale[ch..ch + 8], &layer.shift[ch..ch + 8], layer.relu_in)
            };
        }
    }
    let one = |cache: &mut [f32], x: usize, ch: usize| {
        let v = pixels.at(source(x) + ch) * layer.scale[ch] + layer.shift[ch];
        cache[ch * geo.row + 1 + x] = if layer.relu_in && v < 0.0 { 0.0 } else { v };
    };
    let simd_done = if cfg!(target_arch = "x86_64") { (full_x, full_c) } else { (0, 0) };
    for x in 0..geo.w {
        let from = if x < simd_done.0 { simd_done.1 } else { 0 };
        for ch in from..c {
            one(cache, x, ch);
        }
    }
}

/// A group's `outputs` (1..=8) for one block of pixels, as [`convolve_block`] gives them: a
/// group of at most 4 (the last of the paper net's 12) by the 4-output kernel, so no
/// multiply-adds go to the zero weights that fill it up to 8.
#[allow(clippy::too_many_arguments)]
fn convolve_group<const TAPS: usize>(out: &mut [f32], rows: [&[f32]; TAPS], x0: usize, row: usize, c: usize, weights: Weights, bias: &[f32], outputs: usize, width: Width) {
    if outputs <= HALF {
        convolve_block::<TAPS, HALF>(out, rows, x0, row, c, weights, bias, width)
    } else {
        convolve_block::<TAPS, GROUP>(out, rows, x0, row, c, weights, bias, width)
    }
}

/// The first OUT outputs (8, or 4) of one group for one block of pixels starting at x0, into
/// `out` as [output][pixel]: bias + Σ over taps and channels of weight · cached input. TAPS =
/// 3: a 3×3 convolution over three cached rows (column x0 + kx of a row is tap kx of pixel
/// x0); TAPS = 1: a 1×1 convolution of one row (column x0 is pixel x0).
#[allow(clippy::too_many_arguments)]
fn convolve_block<const TAPS: usize, const OUT: usize>(out: &mut [f32], rows: [&[f32]; TAPS], x0: usize, row: usize, c: usize, weights: Weights, bias: &[f32], width: Width) {
    let Weights { plain: weights, winograd } = weights;
    assert!(OUT <= GROUP && rows.iter().all(|r| r.len() >= (c - 1) * row + x0 + width.block() + TAPS - 1) && weights.len() >= TAPS * TAPS * c * GROUP && bias.len() >= OUT && out.len() >= OUT * width.block());
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `width` came from the CPU's features (or a test that checked them); the loads
    // stay inside the rows, the weights and `out` (asserted above and, for Winograd's, below).
    unsafe {
        match width {
            Width::Avx512 if TAPS == 3 && !winograd.is_empty() => {
                assert!(winograd.len() >= 12 * c * GROUP && row.is_multiple_of(32) && x0.is_multiple_of(32) && x0 + 34 <= row && rows.iter().all(|r| r.len() >= c * row));
                // (The three rows as the array of three they are: TAPS is 3 here.)
                simd::block_winograd_avx512::<OUT>(out, [rows[0], rows[TAPS / 2], rows[TAPS - 1]], x0, row, c, winograd, bias)
            }
            Width::Avx512 => simd::block_avx512::<TAPS, OUT>(out, rows, x0, row, c, weights, bias),
            Width::Avx2 => simd::block_avx2::<TAPS, OUT>(out, rows, x0, row, c, weights, bias),
        }
    }
}

/// A group's weights: as the plain kernels read them, and for Winograd's (3×3 layers with
/// AVX-512; its rows are then cached split into even and odd columns), else empty.
#[derive(Clone, Copy)]
struct Weights<'a> {
    plain: &'a [f32],
    winograd: &'a [f32],
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::GROUP;
    use std::arch::x86_64::*;

    /// 32 pixels (two vectors) × OUT outputs (8, or 4 for a last group of at most 4): 2·OUT
    /// accumulators; each cached value loaded once per tap feeds OUT multiply-adds, each
    /// weight broadcast feeds two.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn block_avx512<const TAPS: usize, const OUT: usize>(out: &mut [f32], rows: [&[f32]; TAPS], x0: usize, row: usize, c: usize, weights: &[f32], bias: &[f32]) {
        let mut acc = [[_mm512_setzero_ps(); 2]; OUT];
        for (o, a) in acc.iter_mut().enumerate() {
            *a = [_mm512_set1_ps(bias[o]); 2];
        }
        let w = weights.as_ptr();
        for (ky, r) in rows.iter().enumerate() {
            let r = r.as_ptr();
            for ch in 0..c {
                let src = r.add(ch * row + x0);
                let wk = w.add((ky * c + ch) * TAPS * GROUP);
                for kx in 0..TAPS {
                    let v0 = _mm512_loadu_ps(src.add(kx));
                    let v1 = _mm512_loadu_ps(src.add(kx + 16));
                    for (o, a) in acc.iter_mut().enumerate() {
                        let wv = _mm512_set1_ps(*wk.add(kx * GROUP + o));
                        a[0] = _mm512_fmadd_ps(v0, wv, a[0]);
                        a[1] = _mm512_fmadd_ps(v1, wv, a[1]);
                    }
                }
            }
        }
        for (o, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(out.as_mut_ptr().add(o * 32), a[0]);
            _mm512_storeu_ps(out.as_mut_ptr().add(o * 32 + 16), a[1]);
        }
    }

    /// 32 pixels × OUT outputs (8, or 4) of a 3×3 convolution by Winograd's F(2,3) along the
    /// row: the pixels in pairs (2t, 2t + 1), each pair from the four inputs d0..d3 under it,
    /// transformed into u = (d0 − d2, d1 + d2, d2 − d1, d1 − d3) and multiplied by the
    /// transformed weights (see `Layer::winograd`) into four sums m0..m3 per output; then
    /// y(2t) = m0 + m1 + m2, y(2t + 1) = m1 − m2 − m3. Four multiply-adds per output, channel
    /// and kernel row for two pixels instead of six: the 3×3 layers are most of the network's
    /// arithmetic. Each cached channel row is split (see [`split_pairs`]): its even columns,
    /// then its odd ones, so d0..d3 of 16 pairs are four plain loads. 16 sums (4 outputs × 4
    /// products) fill the registers, so 8 outputs take two rounds over the same inputs. The
    /// sums differ from the plain kernel's in the last bits (tests: within 1e-5 of libtorch's,
    /// relative). A NaN input reaches the outputs the plain convolution's reaches: d0 only
    /// y(2t), d3 only y(2t + 1), d1 and d2 both.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn block_winograd_avx512<const OUT: usize>(out: &mut [f32], rows: [&[f32]; 3], x0: usize, row: usize, c: usize, winograd: &[f32], bias: &[f32]) {
        const { assert!(OUT == 4 || OUT == 8) };
        let low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        let (odd, pair) = (row / 2, x0 / 2);
        let w = winograd.as_ptr();
        for round in 0..OUT / 4 {
            // m[o][k]; the bias enters through m1, which both pixels of a pair add once.
            let mut m = [[_mm512_setzero_ps(); 4]; 4];
            for (o, sums) in m.iter_mut().enumerate() {
                sums[1] = _mm512_set1_ps(bias[round * 4 + o]);
            }
            for (ky, r) in rows.iter().enumerate() {
                let r = r.as_ptr();
                for ch in 0..c {
                    let even = r.add(ch * row + pair);
                    let (d0, d1) = (_mm512_loadu_ps(even), _mm512_loadu_ps(even.add(odd)));
                    let (d2, d3) = (_mm512_loadu_ps(even.add(1)), _mm512_loadu_ps(even.add(odd + 1)));
                    let u = [_mm512_sub_ps(d0, d2), _mm512_add_ps(d1, d2), _mm512_sub_ps(d2, d1), _mm512_sub_ps(d1, d3)];
                    let wk = w.add((ky * c + ch) * 4 * GROUP + round * 4);
                    for (k, &uk) in u.iter().enumerate() {
                        for (o, sums) in m.iter_mut().enumerate() {
                            sums[k] = _mm512_fmadd_ps(uk, _mm512_set1_ps(*wk.add(k * GROUP + o)), sums[k]);
                        }
                    }
                }
            }
            for (o, [m0, m1, m2, m3]) in m.iter().enumerate() {
                let y0 = _mm512_add_ps(_mm512_add_ps(*m0, *m1), *m2);
                let y1 = _mm512_sub_ps(_mm512_sub_ps(*m1, *m2), *m3);
                let to = out.as_mut_ptr().add((round * 4 + o) * 32);
                _mm512_storeu_ps(to, _mm512_permutex2var_ps(y0, low, y1));
                _mm512_storeu_ps(to.add(16), _mm512_permutex2var_ps(y0, high, y1));
            }
        }
    }

    /// A channel row (whole blocks of 32) split: its even columns into the first half of
    /// `to`, its odd ones into the second, as [`block_winograd_avx512`] reads them.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn split_pairs(row: &[f32], to: &mut [f32]) {
        assert!(row.len().is_multiple_of(32) && to.len() == row.len());
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        let (from, half) = (row.as_ptr(), row.len() / 2);
        let to = to.as_mut_ptr();
        for i in (0..row.len()).step_by(32) {
            let (a, b) = (_mm512_loadu_ps(from.add(i)), _mm512_loadu_ps(from.add(i + 16)));
            _mm512_storeu_ps(to.add(i / 2), _mm512_permutex2var_ps(a, even, b));
            _mm512_storeu_ps(to.add(half + i / 2), _mm512_permutex2var_ps(a, odd, b));
        }
    }

    /// 8 pixels (one vector) × OUT outputs: OUT accumulators.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn block_avx2<const TAPS: usize, const OUT: usize>(out: &mut [f32], rows: [&[f32]; TAPS], x0: usize, row: usize, c: usize, weights: &[f32], bias: &[f32]) {
        let mut acc = [_mm256_setzero_ps(); OUT];
        for (o, a) in acc.iter_mut().enumerate() {
            *a = _mm256_set1_ps(bias[o]);
        }
        let w = weights.as_ptr();
        for (ky, r) in rows.iter().enumerate() {
            let r = r.as_ptr();
            for ch in 0..c {
                let src = r.add(ch * row + x0);
                let wk = w.add((ky * c + ch) * TAPS * GROUP);
                for kx in 0..TAPS {
                    let v = _mm256_loadu_ps(src.add(kx));
                    for (o, a) in acc.iter_mut().enumerate() {
                        *a = _mm256_fmadd_ps(v, _mm256_set1_ps(*wk.add(kx * GROUP + o)), *a);
                    }
                }
            }
        }
        for (o, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(out.as_mut_ptr().add(o * 8), *a);
        }
    }

    /// Rows r0..r8 turned into columns: out[i][j] = r[j][i].
    #[target_feature(enable = "avx2")]
    unsafe fn transpose_8x8(r: [__m256; 8]) -> [__m256; 8] {
        let t = [
            _mm256_unpacklo_ps(r[0], r[1]),
            _mm256_unpackhi_ps(r[0], r[1]),
            _mm256_unpacklo_ps(r[2], r[3]),
            _mm256_unpackhi_ps(r[2], r[3]),
            _mm256_unpacklo_ps(r[4], r[5]),
            _mm256_unpackhi_ps(r[4], r[5]),
            _mm256_unpacklo_ps(r[6], r[7]),
            _mm256_unpackhi_ps(r[6], r[7]),
        ];
        let u = [
            _mm256_shuffle_ps::<0x44>(t[0], t[2]),
            _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
            _mm256_shuffle_ps::<0x44>(t[1], t[3]),
            _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
            _mm256_shuffle_ps::<0x44>(t[4], t[6]),
            _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
            _mm256_shuffle_ps::<0x44>(t[5], t[7]),
            _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
        ];
        [
            _mm256_permute2f128_ps::<0x20>(u[0], u[4]),
            _mm256_permute2f128_ps::<0x20>(u[1], u[5]),
            _mm256_permute2f128_ps::<0x20>(u[2], u[6]),
            _mm256_permute2f128_ps::<0x20>(u[3], u[7]),
            _mm256_permute2f128_ps::<0x31>(u[0], u[4]),
            _mm256_permute2f128_ps::<0x31>(u[1], u[5]),
            _mm256_permute2f128_ps::<0x31>(u[2], u[6]),
            _mm256_permute2f128_ps::<0x31>(u[3], u[7]),
        ]
    }

    /// dst[i] = src[i]·weight + dst[i], fused (one rounding), for the first whole runs of 8 of
    /// `n` values; returns how many (n rounded down to 8).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn multiply_add_run(dst: *mut f32, src: *const f32, n: usize, weight: f32) -> usize {
        let w = _mm256_set1_ps(weight);
        let mut i = 0;
        while i + 8 <= n {
            _mm256_storeu_ps(dst.add(i), _mm256_fmadd_ps(_mm256_loadu_ps(src.add(i)), w, _mm256_loadu_ps(dst.add(i))));
            i += 8;
        }
        i
    }

    /// The first whole runs of 8 of `n` values normalised: dst[i] = max(0, src[i >> up]·scale +
    /// shift), NaN kept, or without the max where `relu` is false. Returns how many were
    /// written (n rounded down to 8); src must hold (n - 1 >> up) + 1 values, dst n.
    #[target_feature(enable = "avx2")]
    pub unsafe fn normalise_run(dst: *mut f32, src: *const f32, n: usize, up: u32, scale: f32, shift: f32, relu: bool) -> usize {
        let (a, b, zero) = (_mm256_set1_ps(scale), _mm256_set1_ps(shift), _mm256_setzero_ps());
        let twice = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
        let mut i = 0;
        while i + 8 <= n {
            // Upsampled ×2: each of 4 source values twice (only the low half is read).
            let x = if up == 0 { _mm256_loadu_ps(src.add(i)) } else { _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(src.add(i >> 1))), twice) };
            // Multiply, then add (not fused), as the channels-last path and the scalar rest.
            let y = _mm256_add_ps(_mm256_mul_ps(x, a), b);
            _mm256_storeu_ps(dst.add(i), if relu { _mm256_max_ps(zero, y) } else { y });
            i += 8;
        }
        i
    }

    /// Eight pixels' eight channels (pixel i's at src + (i >> up)·stride) normalised —
    /// max(0, x·scale + shift), NaN kept — into eight channel rows (channel k's at
    /// dst + k·row, pixels side by side).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2")]
    pub unsafe fn normalise_8x8(dst: *mut f32, row: usize, src: *const f32, stride: usize, up: u32, scale: &[f32], shift: &[f32], relu: bool) {
        let (a, b, zero) = (_mm256_loadu_ps(scale.as_ptr()), _mm256_loadu_ps(shift.as_ptr()), _mm256_setzero_ps());
        let mut r = [zero; 8];
        for (i, v) in r.iter_mut().enumerate() {
            // Multiply, then add (not fused): the scalar remainder rounds the same way.
            // max(0, v) returns v when v is NaN (the second operand), as ReLU keeps NaN.
            let y = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(src.add((i >> up) * stride)), a), b);
            *v = if relu { _mm256_max_ps(zero, y) } else { y };
        }
        for (k, v) in transpose_8x8(r).iter().enumerate() {
            _mm256_storeu_ps(dst.add(k * row), *v);
        }
    }

    /// Four outputs' rows of eight pixels (output k's at src + k·block) into eight pixels'
    /// four channels (pixel i's at dst + i·stride); nothing else is written.
    #[target_feature(enable = "avx2")]
    pub unsafe fn store_4x8(dst: *mut f32, stride: usize, src: *const f32, block: usize) {
        let mut r = [_mm256_setzero_ps(); 8];
        for (k, v) in r.iter_mut().take(4).enumerate() {
            *v = _mm256_loadu_ps(src.add(k * block));
        }
        for (i, v) in transpose_8x8(r).iter().enumerate() {
            _mm_storeu_ps(dst.add(i * stride), _mm256_castps256_ps128(*v));
        }
    }

    /// Eight outputs' rows of eight pixels (output k's at src + k·block) into eight pixels'
    /// eight channels (pixel i's at dst + i·stride).
    #[target_feature(enable = "avx2")]
    pub unsafe fn store_8x8(dst: *mut f32, stride: usize, src: *const f32, block: usize) {
        let mut r = [_mm256_setzero_ps(); 8];
        for (k, v) in r.iter_mut().enumerate() {
            *v = _mm256_loadu_ps(src.add(k * block));
        }
        for (i, v) in transpose_8x8(r).iter().enumerate() {
            _mm256_storeu_ps(dst.add(i * stride), *v);
        }
    }
}

#[cfg(feature = "torch")]
#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fused::tests::{randomise_batch_norms, seeded};
    use crate::model::net::to_channels_last;

    /// A (n, c, h, w) tensor stored row-planar (see [`row_planar_buffer`]).
    fn to_row_planar(t: &Tensor) -> Tensor {
        t.permute([0, 2, 1, 3]).contiguous().permute([0, 2, 1, 3])
    }

    /// The layouts the kernels read and write. Every test runs in both and the two must give
    /// the same values to the last bit: the network's layout does not change a CoMIR.
    const LAYOUTS: [fn(&Tensor) -> Tensor; 2] = [to_channels_last, to_row_planar];

    /// Each width's results in the layouts, equal to the last bit (NaN where the first has it).
    fn same_in_every_layout(results: &[(Width, Tensor)]) {
        for (width, got) in results {
            let first = &results.iter().find(|(w, _)| w == width).unwrap().1;
            assert!(got.isnan().equal(&first.isnan()) && got.nan_to_num(7.0, None, None).equal(&first.nan_to_num(7.0, None, None)), "{width:?}: the layouts differ");
        }
    }

    /// The widths this CPU can run (the test covers each of them).
    fn widths() -> Vec<Width> {
        #[cfg(target_arch = "x86_64")]
        {
            let mut w = vec![];
            if std::arch::is_x86_feature_detected!("avx512f") {
                w.push(Width::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                w.push(Width::Avx2);
            }
            w
        }
        #[cfg(not(target_arch = "x86_64"))]
        vec![]
    }

    /// The fused layer writes what libtorch's batch norm, ReLU and convolution give, into the
    /// channels after its input, and touches nothing else: for channel counts and widths that
    /// are not whole vectors (the scalar remainders), two images, and a NaN (kept, as libtorch
    /// keeps it, within the 3×3 neighbourhood it reaches).
    #[test]
    fn the_fused_dense_layer_gives_libtorchs_features_in_place() {
        let _seed = seeded(11);
        // (16, 8, 24, 5, 60): the right padding of a 60-pixel row lies in the second half of a
        // cached row of 96, where a split row keeps its odd columns.
        for (c, g, total, h, w) in [(21, 16, 40, 9, 45), (16, 8, 24, 5, 8), (8, 8, 16, 3, 70), (32, 12, 44, 6, 37), (5, 3, 8, 4, 19), (16, 8, 24, 5, 60)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let bn = nn::batch_norm2d(vs.root() / "bn", c, Default::default());
            let conv = nn::conv2d(vs.root() / "conv", c, g, 3, nn::ConvConfig { padding: 1, ..Default::default() });
            randomise_batch_norms(&vs);
            let values = Tensor::randn([2, total, h, w], (Kind::Float, Device::Cpu));
            let _ = values.get(1).get(2).get(h / 2).get(w - 1).fill_(f64::NAN);
            let want = tch::no_grad(|| values.narrow(1, 0, c).contiguous().apply_t(&bn, false).relu().apply(&conv));
            assert!(want.abs().nan_to_num(0.0, None, None).max().double_value(&[]) > 0.5, "a layer that computes nothing proves nothing");
            let mut results = vec![];
            for (layout, width) in LAYOUTS.iter().flat_map(|l| widths().into_iter().map(move |w| (l, w))) {
                let original = layout(&values);
                let buffer = original.copy();
                assert!(tch::no_grad(|| dense_layer_with(&buffer, c, &bn, &conv, width)), "{width:?} refused a buffer it takes");
                let got = buffer.narrow(1, c, g);
                let (nan_got, nan_want) = (got.isnan(), want.isnan());
                assert!(nan_got.equal(&nan_want), "{width:?}: NaN elsewhere than libtorch's");
                assert!(i64::try_from(nan_want.sum(Kind::Int64)).unwrap() > 0, "the NaN reaches the output");
                let diff = (got.nan_to_num(0.0, None, None) - want.nan_to_num(0.0, None, None)).abs().max().double_value(&[]);
                assert!(diff < 1e-5 * want.abs().nan_to_num(0.0, None, None).max().double_value(&[]), "{width:?} c={c} g={g} {h}×{w}: largest difference {diff}");
                // The input and the channels after the layer's are as they were.
                let untouched = |t: &Tensor| Tensor::cat(&[t.narrow(1, 0, c), t.narrow(1, c + g, total - c - g)], 1).nan_to_num(7.0, None, None);
                assert!(untouched(&buffer).equal(&untouched(&original)), "{width:?} wrote outside its channels");
                results.push((width, got.contiguous()));
            }
            same_in_every_layout(&results);
        }
    }

    /// The way up: ReLU of the convolution of x upsampled ×2 (nearest), from a channel range
    /// of a wider buffer (as the level below leaves it), into a channel range of this level's
    /// buffer, as libtorch computes it; nothing else written; a NaN kept; refused where the
    /// sizes do not double or the two tensors share memory.
    #[test]
    fn the_fused_upsampling_convolution_gives_libtorchs_in_place() {
        let _seed = seeded(12);
        for (c, g, skip, total, h, w, wider) in [(16, 16, 12, 40, 10, 46, 20), (12, 12, 8, 32, 6, 34, 12), (5, 3, 0, 8, 4, 18, 9)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let conv = nn::conv2d(vs.root() / "tu", c, g, 3, nn::ConvConfig { padding: 1, ..Default::default() });
            let below_values = Tensor::randn([2, wider, h / 2, w / 2], (Kind::Float, Device::Cpu));
            let _ = below_values.get(1).get(wider - c).get(1).get(w / 2 - 1).fill_(f64::NAN);
            let want = tch::no_grad(|| below_values.narrow(1, wider - c, c).upsample_nearest2d([h, w], None, None).apply(&conv).relu());
            assert!(want.nan_to_num(0.0, None, None).max().double_value(&[]) > 0.5 && want.eq(0.0).any().int64_value(&[]) == 1, "the ReLU both keeps and clips");
            let values = Tensor::randn([2, total, h, w], (Kind::Float, Device::Cpu));
            let mut results = vec![];
            for (layout, width) in LAYOUTS.iter().flat_map(|l| widths().into_iter().map(move |w| (l, w))) {
                let (below, original) = (layout(&below_values), layout(&values));
                let x = below.narrow(1, wider - c, c);
                let buffer = original.copy();
                assert!(tch::no_grad(|| conv_with(&buffer, skip, &x, &conv, 1, width)), "{width:?} refused");
                let got = buffer.narrow(1, skip, g);
                assert!(got.isnan().equal(&want.isnan()) && want.isnan().any().int64_value(&[]) == 1, "{width:?}: NaN elsewhere than libtorch's");
                let diff = (got.nan_to_num(0.0, None, None) - want.nan_to_num(0.0, None, None)).abs().max().double_value(&[]);
                assert!(diff < 1e-5 * want.nan_to_num(0.0, None, None).max().double_value(&[]), "{width:?} c={c} g={g} {h}×{w}: largest difference {diff}");
                let untouched = |t: &Tensor| Tensor::cat(&[t.narrow(1, 0, skip), t.narrow(1, skip + g, total - skip - g)], 1);
                assert!(untouched(&buffer).equal(&untouched(&original)), "{width:?} wrote outside its channels");
                // Sizes that do not double, and an input inside the output, are refused.
                let before = buffer.copy();
                assert!(!conv_with(&buffer, skip, &x.narrow(3, 0, w / 2 - 1), &conv, 1, width));
                assert!(!conv_with(&buffer, skip, &layout(&Tensor::zeros([2, c, h, w], (Kind::Float, Device::Cpu))), &conv, 1, width));
                let inside = buffer.narrow(2, 0, h / 2).narrow(3, 0, w / 2).narrow(1, 0, c);
                assert!(!conv_with(&buffer, skip, &inside, &conv, 1, width), "aliasing input taken");
                assert!(buffer.nan_to_num(7.0, None, None).equal(&before.nan_to_num(7.0, None, None)), "a refusal wrote");
                results.push((width, got.contiguous()));
            }
            same_in_every_layout(&results);
        }
    }

    /// The way down: the 2×2 maximum of the 1×1 convolution of the normalised channels, into
    /// the first channels of the level below's buffer, as libtorch computes it (NaN winning
    /// its window), nothing else written; odd sizes and mismatched buffers refused.
    #[test]
    fn the_fused_transition_down_gives_libtorchs_into_the_next_buffer() {
        let _seed = seeded(13);
        for (c, g, total, total2, h, w) in [(32, 32, 48, 40, 10, 46), (21, 21, 30, 21, 6, 70), (24, 12, 30, 14, 4, 38), (5, 3, 8, 6, 4, 18)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let bn = nn::batch_norm2d(vs.root() / "bn", c, Default::default());
            let conv = nn::conv2d(vs.root() / "td", c, g, 1, Default::default());
            randomise_batch_norms(&vs);
            let values = Tensor::randn([2, total, h, w], (Kind::Float, Device::Cpu));
            let _ = values.get(1).get(0).get(h - 1).get(3).fill_(f64::NAN);
            let want = tch::no_grad(|| values.narrow(1, 0, c).contiguous().apply_t(&bn, false).relu().apply(&conv).max_pool2d_default(2));
            assert!(want.isnan().any().int64_value(&[]) == 1 && want.nan_to_num(0.0, None, None).abs().max().double_value(&[]) > 0.5);
            let next_values = Tensor::randn([2, total2, h / 2, w / 2], (Kind::Float, Device::Cpu));
            let mut results = vec![];
            // Both buffers in one layout, and the level's in one and the next in the other.
            for ((layout, next_layout), width) in LAYOUTS.iter().flat_map(|a| LAYOUTS.iter().map(move |b| (a, b))).flat_map(|l| widths().into_iter().map(move |w| (l, w))) {
                let (buffer, original) = (layout(&values), next_layout(&next_values));
                let input_before = buffer.copy();
                let next = original.copy();
                assert!(tch::no_grad(|| transition_down_with(&next, &buffer, c, &bn, &conv, width)), "{width:?} refused");
                let got = next.narrow(1, 0, g);
                assert!(got.isnan().equal(&want.isnan()), "{width:?}: NaN elsewhere than libtorch's");
                let diff = (got.nan_to_num(0.0, None, None) - want.nan_to_num(0.0, None, None)).abs().max().double_value(&[]);
                assert!(diff < 1e-5 * want.nan_to_num(0.0, None, None).abs().max().double_value(&[]), "{width:?} c={c} g={g} {h}×{w}: largest difference {diff}");
                assert!(next.narrow(1, g, total2 - g).equal(&original.narrow(1, g, total2 - g)), "{width:?} wrote past its channels");
                assert!(buffer.nan_to_num(7.0, None, None).equal(&input_before.nan_to_num(7.0, None, None)), "{width:?} wrote into its input");
                // Sizes that do not halve, and the buffer as its own next, are refused.
                let wrong = next_layout(&Tensor::zeros([2, total2, h / 2, w / 2 - 1], (Kind::Float, Device::Cpu)));
                assert!(!transition_down_with(&wrong, &buffer, c, &bn, &conv, width) && wrong.eq(0.0).all().int64_value(&[]) == 1);
                assert!(!transition_down_with(&buffer, &buffer, c, &bn, &conv, width));
                let odd = layout(&Tensor::zeros([2, total, h + 1, w], (Kind::Float, Device::Cpu)));
                assert!(!transition_down_with(&original.copy(), &odd, c, &bn, &conv, width));
                results.push((width, got.contiguous()));
            }
            same_in_every_layout(&results);
        }
    }

    /// The first layer: a 3×3 convolution of the image (one channel, or several side by side)
    /// into the first channels of the full-resolution buffer, as libtorch computes it.
    #[test]
    fn the_fused_first_convolution_gives_libtorchs() {
        let _seed = seeded(14);
        for (c, g, total, h, w) in [(1, 16, 40, 10, 45), (3, 12, 20, 6, 33)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let conv = nn::conv2d(vs.root() / "init", c, g, 3, nn::ConvConfig { padding: 1, ..Default::default() });
            let image = Tensor::randn([2, c, h, w], (Kind::Float, Device::Cpu));
            let want = tch::no_grad(|| image.apply(&conv));
            let mut results = vec![];
            // The image as it comes (planar), and channels side by side; into either layout.
            for ((x, layout), width) in [image.shallow_clone(), to_channels_last(&image)].iter().flat_map(|x| LAYOUTS.iter().map(move |l| (x, l))).flat_map(|l| widths().into_iter().map(move |w| (l, w))) {
                let buffer = layout(&Tensor::zeros([2, total, h, w], (Kind::Float, Device::Cpu)));
                assert!(tch::no_grad(|| conv_with(&buffer, 0, x, &conv, 0, width)), "{width:?} refused");
                let diff = (buffer.narrow(1, 0, g) - &want).abs().max().double_value(&[]);
                assert!(diff < 1e-5 * want.abs().max().double_value(&[]), "{width:?} c={c}: largest difference {diff}");
                assert!(buffer.narrow(1, g, total - g).eq(0.0).all().int64_value(&[]) == 1, "{width:?} wrote past its channels");
                // Channels neither side by side nor in rows of their own are refused.
                let interleaved = image.permute([0, 1, 3, 2]).contiguous().permute([0, 1, 3, 2]);
                assert!(c == 1 || !conv_with(&buffer, 0, &interleaved, &conv, 0, width), "column-major channels taken");
                results.push((width, buffer.narrow(1, 0, g).contiguous()));
            }
            same_in_every_layout(&results);
        }
    }

    /// The head: libtorch's 1×1 convolution (no bias) of the same channels laid out
    /// channels-last, to the last bit, read from a row-planar buffer's channel range (rows
    /// that are not whole runs of 8; one and three outputs); refused for other layouts and for
    /// a head with a bias.
    #[test]
    fn the_head_gives_libtorchs_to_the_last_bit() {
        if widths().is_empty() {
            return;
        }
        let _seed = seeded(16);
        for (c, total, outputs, h, w) in [(64, 64, 1, 6, 37), (16, 40, 3, 5, 64), (80, 90, 1, 3, 9)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let conv = nn::conv2d(vs.root() / "head", c, outputs, 1, nn::ConvConfig { bias: false, ..Default::default() });
            let biased = nn::conv2d(vs.root() / "biased", c, outputs, 1, Default::default());
            crate::model::net::use_channels_last(&vs);
            let values = Tensor::randn([2, total, h, w], (Kind::Float, Device::Cpu)).relu();
            let x = to_row_planar(&values).narrow(1, 0, c);
            let want = tch::no_grad(|| to_channels_last(&values.narrow(1, 0, c)).apply(&conv));
            let got = head(&x, &conv).expect("a row-planar channel range is taken");
            assert_eq!(got.size(), want.size());
            assert!(want.abs().max().double_value(&[]) > 0.5, "a head that computes nothing proves nothing");
            assert!(got.equal(&want), "c={c}, {outputs} outputs, {h}×{w}: not libtorch's to the last bit");
            assert!(head(&to_channels_last(&values).narrow(1, 0, c), &conv).is_none(), "channels-last taken");
            assert!(head(&x, &biased).is_none(), "a bias taken");
        }
    }

    /// Buffers and layers the kernel does not handle are left to libtorch, untouched.
    #[test]
    fn what_the_kernel_cannot_read_is_refused_and_left_as_it_was() {
        let Some(&width) = widths().first() else { return };
        // Its draws (weights, input) would otherwise land between another test's seed and
        // that test's own draws (see `seeded`).
        let _seed = seeded(15);
        let vs = nn::VarStore::new(Device::Cpu);
        let bn = nn::batch_norm2d(vs.root() / "bn", 8, Default::default());
        let conv = nn::conv2d(vs.root() / "conv", 8, 8, 3, nn::ConvConfig { padding: 1, ..Default::default() });
        let five_by_five = nn::conv2d(vs.root() / "k5", 8, 8, 5, nn::ConvConfig { padding: 2, ..Default::default() });
        let plain = Tensor::randn([1, 16, 6, 6], (Kind::Float, Device::Cpu));
        let cases = [
            (plain.shallow_clone(), 8, &conv),                        // channels not adjacent (NCHW)
            (to_channels_last(&plain).narrow(1, 0, 12), 8, &conv),    // a view of a wider buffer
            (to_channels_last(&plain), 12, &conv),                    // more input than the batch norm has
            (to_channels_last(&plain), 8, &five_by_five),             // not a 3×3 convolution
            (to_channels_last(&plain.narrow(1, 0, 12)), 8, &conv),    // no room for the outputs
            (to_channels_last(&plain.to_kind(Kind::Double)), 8, &conv),
        ];
        for (i, (buffer, c, conv)) in cases.into_iter().enumerate() {
            let before = buffer.copy();
            assert!(!tch::no_grad(|| dense_layer_with(&buffer, c, &bn, conv, width)), "case {i} taken");
            assert!(buffer.equal(&before), "case {i} written");
        }
    }
}
