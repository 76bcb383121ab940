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
//! The sums run in another order than oneDNN's (fused multiply-adds over channels, then taps),
//! so the features differ from libtorch's in the last bits (tests: within 1e-5 relative).
use super::fused::{as_usize, floats, Affine};
use rayon::prelude::*;
use tch::{nn, Device, Kind, Tensor};

/// One dense layer's constants, in the order the kernel reads them.
struct Layer {
    /// Input channels and new (output) channels.
    c: usize,
    g: usize,
    /// Kernel side: 3 (3×3, zero padding of one) or 1 (1×1).
    taps: usize,
    scale: Vec<f32>,
    shift: Vec<f32>,
    /// ReLU after the batch norm (dense layers), and on the output (the way up).
    relu_in: bool,
    relu_out: bool,
    /// Weights as [group][ky][c][kx][8 outputs of the group]: one load per tap and channel
    /// reaches the eight outputs' weights side by side. The last group is filled up with
    /// zero weights when g is not a multiple of 8 (the paper net's 12: 8 + 4 and 4 unused,
    /// which the 4-output kernel does not read).
    weights: Vec<f32>,
    /// Bias of every output, zeros after the g-th up to whole groups.
    bias: Vec<f32>,
}

/// Outputs computed together (one vector accumulator per output and pixel block); a last
/// group of at most HALF outputs is computed by a kernel of that many.
const GROUP: usize = 8;
const HALF: usize = 4;

impl Layer {
    /// The constants of `conv` (3×3, zero padding of one), its input normalised by `bn` and
    /// ReLU where given (a dense layer) or taken as it is (the way up), its output through a
    /// ReLU with `relu_out`.
    fn of(bn: Option<&nn::BatchNorm>, conv: &nn::Conv2D, relu_out: bool) -> Option<Layer> {
        let size = conv.ws.size();
        let taps = usize::try_from(size[2]).ok()?;
        let (g, c) = (usize::try_from(size[0]).ok()?, usize::try_from(size[1]).ok()?);
        let affine = match bn {
            Some(bn) => Affine::of(bn)?,
            None => Affine { scale: vec![1.0; c], shift: vec![0.0; c] },
        };
        if size.len() != 4 || !(taps == 1 || taps == 3) || size[3] != size[2] || c != affine.scale.len() || g == 0 || c == 0 {
            return None;
        }
        let ws = floats(&conv.ws)?; // [g][c][ky][kx]
        let bias = match &conv.bs { Some(b) => floats(b)?, None => vec![0.0; g] };
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
        Some(Layer { c, g, taps, scale: affine.scale, shift: affine.shift, relu_in: bn.is_some(), relu_out, weights, bias })
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
    fn detect() -> Option<Width> {
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

/// Whether a network on `device` runs on the kernels here: the CPU, with AVX2 at least (else
/// libtorch computes every layer, with more memory: see `NetConfig::inference_bytes_per_pixel`).
pub fn serve(device: Device) -> bool {
    device == Device::Cpu && Width::detect().is_some()
}

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

/// The first layer: `conv(x)` (3×3) written into channels `at`..`at`+G of `buffer`, x of the
/// buffer's height and width with its channels side by side (or a single one). False, having
/// written nothing, where that does not apply.
pub fn conv_into(buffer: &Tensor, at: i64, x: &Tensor, conv: &nn::Conv2D) -> bool {
    match Width::detect() {
        Some(width) => conv_with(buffer, at, x, conv, 0, width),
        None => false,
    }
}

/// (n, total, h, w) of a buffer the kernel can write: float, CPU, no autograd, channels-last
/// and dense.
fn output_shape(buffer: &Tensor) -> Option<[usize; 4]> {
    if buffer.device() != Device::Cpu || buffer.kind() != Kind::Float || buffer.requires_grad() || buffer.dim() != 4 {
        return None;
    }
    let (size, stride) = (as_usize(&buffer.size())?, as_usize(&buffer.stride())?);
    let (n, total, h, w) = (size[0], size[1], size[2], size[3]);
    (stride == [h * w * total, 1, w * total, total] && n * h * w > 0).then_some([n, total, h, w])
}

pub(crate) fn dense_layer_with(buffer: &Tensor, channels: i64, bn: &nn::BatchNorm, conv: &nn::Conv2D, width: Width) -> bool {
    let (Some([n, total, h, w]), Ok(c)) = (output_shape(buffer), usize::try_from(channels)) else { return false };
    let Some(layer) = Layer::of(Some(bn), conv, false) else { return false };
    if layer.taps != 3 || layer.c != c || c + layer.g > total {
        return false;
    }
    let input = Input { base: buffer.data_ptr() as usize, image: h * w * total, row: w * total, pixel: total, up: 0 };
    run(buffer, [n, total, h, w], c, &input, &layer, width);
    true
}

/// `conv(x upsampled ×2^up)`, through a ReLU on the way up (up = 1), into the buffer.
pub(crate) fn conv_with(buffer: &Tensor, at: i64, x: &Tensor, conv: &nn::Conv2D, up: u32, width: Width) -> bool {
    let (Some([n, total, h, w]), Ok(at)) = (output_shape(buffer), usize::try_from(at)) else { return false };
    if x.device() != Device::Cpu || x.kind() != Kind::Float || x.requires_grad() || x.dim() != 4 {
        return false;
    }
    let (Some(size), Some(stride)) = (as_usize(&x.size()), as_usize(&x.stride())) else { return false };
    let Some(layer) = Layer::of(None, conv, up == 1) else { return false };
    let (hs, ws) = (h >> up, w >> up);
    if up > 1 || layer.taps != 3 || size != [n, layer.c, hs, ws] || hs << up != h || ws << up != w || (stride[1] != 1 && layer.c > 1) || stride[3] < layer.c || at + layer.g > total {
        return false;
    }
    // x is read while the buffer is written: they must not share memory.
    let extent = |ptr: usize, last: usize| ptr..ptr + 4 * (last + 1);
    let x_last = (n - 1) * stride[0] + (hs - 1) * stride[2] + (ws - 1) * stride[3] + layer.c - 1;
    let (xs, bs) = (extent(x.data_ptr() as usize, x_last), extent(buffer.data_ptr() as usize, n * h * w * total - 1));
    if xs.start < bs.end && bs.start < xs.end {
        return false;
    }
    let input = Input { base: x.data_ptr() as usize, image: stride[0], row: stride[2], pixel: stride[3], up };
    run(buffer, [n, total, h, w], at, &input, &layer, width);
    true
}

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

pub(crate) fn transition_down_with(next: &Tensor, buffer: &Tensor, channels: i64, bn: &nn::BatchNorm, conv: &nn::Conv2D, width: Width) -> bool {
    let (Some([n, total, h, w]), Some([n2, total2, h2, w2]), Ok(c)) = (output_shape(buffer), output_shape(next), usize::try_from(channels)) else { return false };
    let Some(layer) = Layer::of(Some(bn), conv, false) else { return false };
    if layer.taps != 1 || layer.c != c || c > total || layer.g > total2 || n2 != n || h % 2 != 0 || w % 2 != 0 || h2 != h / 2 || w2 != w / 2 || next.data_ptr() == buffer.data_ptr() {
        return false;
    }
    let geometry = Geometry { h, w, total, at: 0, row: padded_row(w, width.block()) };
    let (src, dst) = (buffer.data_ptr() as usize, next.data_ptr() as usize);
    let jobs_per_image = (rayon::current_num_threads() * 4).clamp(1, h2);
    let band = h2.div_ceil(jobs_per_image);
    (0..n * h2.div_ceil(band)).into_par_iter().for_each(|job| {
        let (image, b) = (job / h2.div_ceil(band), job % h2.div_ceil(band));
        // SAFETY: both are live, dense channels-last float tensors of their sizes (checked),
        // distinct allocations of the network's (a level's buffer and the next one's). This
        // job reads channels 0..c of its rows' pairs of `buffer` and writes channels 0..g of
        // its rows of `next` only.
        let (from, to) = unsafe { ((src as *const f32).add(image * h * w * total), (dst as *mut f32).add(image * h2 * w2 * total2)) };
        pool_band(to, total2, from, &geometry, &layer, b * band..((b + 1) * band).min(h2), width);
    });
    true
}

/// NaN wins, as in libtorch's max pooling.
fn max_or_nan(a: f32, b: f32) -> f32 {
    if b > a || b.is_nan() { b } else { a }
}

/// Rows `rows` of the pooled output (`to`, pixels of `total2` channels): each from two
/// normalised input rows, convolved 1×1, the 2×2 maximum written.
#[allow(clippy::too_many_arguments)]
fn pool_band(to: *mut f32, total2: usize, from: *const f32, geo: &Geometry, layer: &Layer, rows: std::ops::Range<usize>, width: Width) {
    let plane = layer.c * geo.row;
    let mut cache = vec![0.0f32; 2 * plane];
    let input = Input { base: 0, image: 0, row: geo.w * geo.total, pixel: geo.total, up: 0 };
    let block = width.block();
    let (mut top, mut bottom) = (vec![0.0f32; GROUP * block], vec![0.0f32; GROUP * block]);
    let w2 = geo.w / 2;
    for y2 in rows {
        for k in 0..2 {
            // SAFETY: input row 2·y2 + k < h lies inside the image (see the caller).
            let pixels = unsafe { std::slice::from_raw_parts(from.add((2 * y2 + k) * input.row), (geo.w - 1) * geo.total + layer.c) };
            normalise_row(&mut cache[k * plane..][..plane], pixels, &input, geo, layer);
        }
        // Column 0 of a cached row is the padding: pixel x is at 1 + x.
        let (r0, r1) = (&cache[1..plane], &cache[plane + 1..]);
        for group in 0..layer.g.div_ceil(GROUP) {
            let outputs = GROUP.min(layer.g - group * GROUP);
            let weights = &layer.weights[group * layer.c * GROUP..][..layer.c * GROUP];
            let bias = &layer.bias[group * GROUP..][..GROUP];
            let mut x0 = 0;
            while x0 < geo.w {
                convolve_group(&mut top, [r0], x0, geo.row, layer.c, weights, bias, outputs, width);
                convolve_group(&mut bottom, [r1], x0, geo.row, layer.c, weights, bias, outputs, width);
                for p in 0..block.min(geo.w - x0) / 2 {
                    // SAFETY: output pixel (y2, x0/2 + p) lies in `to` (x0 + 2p < w); its
                    // channels 8·group + o < g ≤ total2 belong to this job's row alone.
                    let dst = unsafe { to.add((y2 * w2 + x0 / 2 + p) * total2 + group * GROUP) };
                    for o in 0..outputs {
                        let at = o * block + 2 * p;
                        let m = max_or_nan(max_or_nan(max_or_nan(top[at], top[at + 1]), bottom[at]), bottom[at + 1]);
                        // SAFETY: see `dst`.
                        unsafe { *dst.add(o) = m };
                    }
                }
                x0 += block;
            }
        }
    }
}

/// Where the convolution's input pixels are: pixel (image, y, x) of the output's grid reads
/// its `c` channels at base + image·image + (y >> up)·row + (x >> up)·pixel (values).
struct Input {
    base: usize,
    image: usize,
    row: usize,
    pixel: usize,
    /// 1: the input is the nearest ×2 upsampling of the tensor there; 0: the tensor itself.
    up: u32,
}

/// The layer over the whole buffer, in bands of rows on the thread pool.
fn run(buffer: &Tensor, [n, total, h, w]: [usize; 4], at: usize, input: &Input, layer: &Layer, width: Width) {
    let base = buffer.data_ptr() as usize;
    let geometry = Geometry { h, w, total, at, row: padded_row(w, width.block()) };
    // Bands of rows, a few per thread (each band normalises its two border rows again).
    let bands_per_image = (rayon::current_num_threads() * 4).clamp(1, h.div_ceil(8).max(1));
    let band = h.div_ceil(bands_per_image);
    (0..n * h.div_ceil(band)).into_par_iter().for_each(|job| {
        let (image, b) = (job / h.div_ceil(band), job % h.div_ceil(band));
        let rows = b * band..((b + 1) * band).min(h);
        // SAFETY: the buffer is a live, dense channels-last float tensor of n·h·w·total values
        // (checked by the callers); image `image` starts h·w·total values in. The input is
        // read at the offsets `Input` gives, inside its own live tensor (checked by the
        // callers), which shares no memory with the channels written — at..at+g of this
        // band's rows only: no two bands write the same value, and no value written is read.
        let (out, src) = unsafe { ((base as *mut f32).add(image * h * w * total), (input.base as *const f32).add(image * input.image)) };
        run_band(out, src, input, &geometry, layer, rows, width);
    });
}

/// An image's shape, the first channel written, and the padded length of a cached channel row.
struct Geometry {
    h: usize,
    w: usize,
    total: usize,
    at: usize,
    row: usize,
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
    let source_w = geo.w >> input.up;
    for y in rows {
        for k in y.saturating_sub(1)..(y + 2).min(geo.h) {
            if cached[k % 3] != k {
                // SAFETY: source row k >> up lies inside the input (see `run`).
                let pixels = unsafe { std::slice::from_raw_parts(src.add((k >> input.up) * input.row), (source_w - 1) * input.pixel + layer.c) };
                normalise_row(&mut cache[(k % 3) * plane..][..plane], pixels, input, geo, layer);
                cached[k % 3] = k;
            }
        }
        let at = |k: isize| if k < 0 || k as usize >= geo.h { &zeros[..] } else { &cache[(k as usize % 3) * plane..][..plane] };
        let three = [at(y as isize - 1), at(y as isize), at(y as isize + 1)];
        for group in 0..layer.g.div_ceil(GROUP) {
            let outputs = GROUP.min(layer.g - group * GROUP);
            let weights = &layer.weights[group * 9 * layer.c * GROUP..][..9 * layer.c * GROUP];
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
                // Turn the block into the pixels' channels at + 8·group …, 8 pixels at a time.
                let valid = width.block().min(geo.w - x0);
                // SAFETY: pixels (y, x0 .. x0 + valid) lie in the image; their channels
                // at + 8·group + 0..8 are inside `total` (checked: at + g ≤ total) and belong
                // to this band's row alone; `out` holds 8 rows of `block` values.
                let pixel = |px: usize| unsafe { image.add((y * geo.w + x0 + px) * geo.total + geo.at + group * GROUP) };
                let mut px = 0;
                #[cfg(target_arch = "x86_64")]
                while outputs == GROUP && px + 8 <= valid {
                    // SAFETY: as above, AVX2 is present where this runs (both widths have it).
                    unsafe { simd::store_8x8(pixel(px), geo.total, out.as_ptr().add(px), width.block()) };
                    px += 8;
                }
                #[cfg(target_arch = "x86_64")]
                while outputs == HALF && px + 8 <= valid {
                    // SAFETY: as above.
                    unsafe { simd::store_4x8(pixel(px), geo.total, out.as_ptr().add(px), width.block()) };
                    px += 8;
                }
                for px in px..valid {
                    for o in 0..outputs {
                        // SAFETY: see `pixel` (only the group's outputs below g are written).
                        unsafe { *pixel(px).add(o) = out[o * width.block() + px] };
                    }
                }
                x0 += width.block();
            }
        }
    }
}

/// `relu(x·scale + shift)` (or x itself, for the way up) of one output row into the cache's
/// channel rows: channel ch's pixel x at ch·row + 1 + x, read from source pixel x >> up (at
/// (x >> up)·pixel in `pixels`). NaN stays NaN, as with libtorch. Blocks of 8 pixels × 8
/// channels are normalised as read and turned in registers.
fn normalise_row(cache: &mut [f32], pixels: &[f32], input: &Input, geo: &Geometry, layer: &Layer) {
    let c = layer.c;
    let (full_x, full_c) = (geo.w / 8 * 8, c / 8 * 8);
    let source = |x: usize| (x >> input.up) * input.pixel;
    assert!(cache.len() >= c * geo.row && geo.row > geo.w && pixels.len() >= source(geo.w - 1) + c);
    #[cfg(target_arch = "x86_64")]
    for x in (0..full_x).step_by(8) {
        for ch in (0..full_c).step_by(8) {
            // SAFETY: the caller runs this only where AVX2 is present; pixels x..x+8 (< w) read
            // channels ch..ch+8 (≤ c) of source pixels inside `pixels`, and channel rows
            // ch..ch+8 hold x+1..x+9 (≤ w + 1 ≤ row) in `cache` (asserted above).
            unsafe {
                simd::normalise_8x8(cache.as_mut_ptr().add(ch * geo.row + 1 + x), geo.row, pixels.as_ptr().add(source(x) + ch), input.pixel, input.up, &layer.scale[ch..ch + 8], &layer.shift[ch..ch + 8], layer.relu_in)
            };
        }
    }
    let one = |cache: &mut [f32], x: usize, ch: usize| {
        let v = pixels[source(x) + ch] * layer.scale[ch] + layer.shift[ch];
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
fn convolve_group<const TAPS: usize>(out: &mut [f32], rows: [&[f32]; TAPS], x0: usize, row: usize, c: usize, weights: &[f32], bias: &[f32], outputs: usize, width: Width) {
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
fn convolve_block<const TAPS: usize, const OUT: usize>(out: &mut [f32], rows: [&[f32]; TAPS], x0: usize, row: usize, c: usize, weights: &[f32], bias: &[f32], width: Width) {
    assert!(OUT <= GROUP && rows.iter().all(|r| r.len() >= (c - 1) * row + x0 + width.block() + TAPS - 1) && weights.len() >= TAPS * TAPS * c * GROUP && bias.len() >= OUT && out.len() >= OUT * width.block());
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `width` came from the CPU's features (or a test that checked them); the loads
    // stay inside the rows, the weights and `out` (asserted above).
    unsafe {
        match width {
            Width::Avx512 => simd::block_avx512::<TAPS, OUT>(out, rows, x0, row, c, weights, bias),
            Width::Avx2 => simd::block_avx2::<TAPS, OUT>(out, rows, x0, row, c, weights, bias),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fused::tests::{randomise_batch_norms, seeded};
    use crate::model::net::to_channels_last;

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
        for (c, g, total, h, w) in [(21, 16, 40, 9, 45), (16, 8, 24, 5, 8), (8, 8, 16, 3, 70), (32, 12, 44, 6, 37), (5, 3, 8, 4, 19)] {
            let vs = nn::VarStore::new(Device::Cpu);
            let bn = nn::batch_norm2d(vs.root() / "bn", c, Default::default());
            let conv = nn::conv2d(vs.root() / "conv", c, g, 3, nn::ConvConfig { padding: 1, ..Default::default() });
            randomise_batch_norms(&vs);
            let original = to_channels_last(&Tensor::randn([2, total, h, w], (Kind::Float, Device::Cpu)));
            let _ = original.get(1).get(2).get(h / 2).get(w - 1).fill_(f64::NAN);
            let input = original.narrow(1, 0, c);
            let want = tch::no_grad(|| input.contiguous().apply_t(&bn, false).relu().apply(&conv));
            assert!(want.abs().nan_to_num(0.0, None, None).max().double_value(&[]) > 0.5, "a layer that computes nothing proves nothing");
            for width in widths() {
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
            }
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
            let below = to_channels_last(&Tensor::randn([2, wider, h / 2, w / 2], (Kind::Float, Device::Cpu)));
            let _ = below.get(1).get(wider - c).get(1).get(w / 2 - 1).fill_(f64::NAN);
            let x = below.narrow(1, wider - c, c);
            let want = tch::no_grad(|| x.upsample_nearest2d([h, w], None, None).apply(&conv).relu());
            assert!(want.nan_to_num(0.0, None, None).max().double_value(&[]) > 0.5 && want.eq(0.0).any().int64_value(&[]) == 1, "the ReLU both keeps and clips");
            let original = to_channels_last(&Tensor::randn([2, total, h, w], (Kind::Float, Device::Cpu)));
            for width in widths() {
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
                assert!(!conv_with(&buffer, skip, &to_channels_last(&Tensor::zeros([2, c, h, w], (Kind::Float, Device::Cpu))), &conv, 1, width));
                let inside = buffer.narrow(2, 0, h / 2).narrow(3, 0, w / 2).narrow(1, 0, c);
                assert!(!conv_with(&buffer, skip, &inside, &conv, 1, width), "aliasing input taken");
                assert!(buffer.nan_to_num(7.0, None, None).equal(&before.nan_to_num(7.0, None, None)), "a refusal wrote");
            }
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
            let buffer = to_channels_last(&Tensor::randn([2, total, h, w], (Kind::Float, Device::Cpu)));
            let _ = buffer.get(1).get(0).get(h - 1).get(3).fill_(f64::NAN);
            let want = tch::no_grad(|| buffer.narrow(1, 0, c).contiguous().apply_t(&bn, false).relu().apply(&conv).max_pool2d_default(2));
            assert!(want.isnan().any().int64_value(&[]) == 1 && want.nan_to_num(0.0, None, None).abs().max().double_value(&[]) > 0.5);
            let original = to_channels_last(&Tensor::randn([2, total2, h / 2, w / 2], (Kind::Float, Device::Cpu)));
            let input_before = buffer.copy();
            for width in widths() {
                let next = original.copy();
                assert!(tch::no_grad(|| transition_down_with(&next, &buffer, c, &bn, &conv, width)), "{width:?} refused");
                let got = next.narrow(1, 0, g);
                assert!(got.isnan().equal(&want.isnan()), "{width:?}: NaN elsewhere than libtorch's");
                let diff = (got.nan_to_num(0.0, None, None) - want.nan_to_num(0.0, None, None)).abs().max().double_value(&[]);
                assert!(diff < 1e-5 * want.nan_to_num(0.0, None, None).abs().max().double_value(&[]), "{width:?} c={c} g={g} {h}×{w}: largest difference {diff}");
                assert!(next.narrow(1, g, total2 - g).equal(&original.narrow(1, g, total2 - g)), "{width:?} wrote past its channels");
                assert!(buffer.nan_to_num(7.0, None, None).equal(&input_before.nan_to_num(7.0, None, None)), "{width:?} wrote into its input");
                // Sizes that do not halve, and the buffer as its own next, are refused.
                let wrong = to_channels_last(&Tensor::zeros([2, total2, h / 2, w / 2 - 1], (Kind::Float, Device::Cpu)));
                assert!(!transition_down_with(&wrong, &buffer, c, &bn, &conv, width) && wrong.eq(0.0).all().int64_value(&[]) == 1);
                assert!(!transition_down_with(&buffer, &buffer, c, &bn, &conv, width));
                let odd = to_channels_last(&Tensor::zeros([2, total, h + 1, w], (Kind::Float, Device::Cpu)));
                assert!(!transition_down_with(&original.copy(), &odd, c, &bn, &conv, width));
            }
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
            let x = if c == 1 { image.shallow_clone() } else { to_channels_last(&image) };
            let want = tch::no_grad(|| image.apply(&conv));
            for width in widths() {
                let buffer = to_channels_last(&Tensor::zeros([2, total, h, w], (Kind::Float, Device::Cpu)));
                assert!(tch::no_grad(|| conv_with(&buffer, 0, &x, &conv, 0, width)), "{width:?} refused");
                let diff = (buffer.narrow(1, 0, g) - &want).abs().max().double_value(&[]);
                assert!(diff < 1e-5 * want.abs().max().double_value(&[]), "{width:?} c={c}: largest difference {diff}");
                assert!(buffer.narrow(1, g, total - g).eq(0.0).all().int64_value(&[]) == 1, "{width:?} wrote past its channels");
                if c > 1 {
                    assert!(!conv_with(&buffer, 0, &image, &conv, 0, width), "planar channels taken");
                }
            }
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
