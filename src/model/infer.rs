//! Computing representations (CoMIRs) of images of any size in bounded memory.
//!
//! The image is padded by reflection to a multiple of the network's size multiple, then cut
//! into core tiles on that grid (so max-pooling sees the same grid as in one pass). Each tile
//! is run with a context margin around it, and only its core is kept. When the margin covers
//! the network's receptive field, tiling gives the same result as one whole-image pass; a
//! smaller margin trades exactness at tile borders for memory.
use super::store::Model;
use crate::error::{Error, Result};
use crate::image::filter::mirror;
use crate::progress::{Monitor, Progress};
use ndarray::{s, Array3};
use tch::nn::ModuleT;
use tch::{Kind, Tensor};

#[derive(Clone, Debug)]
pub struct InferOptions {
    /// Core tile size (rounded down to the size multiple).
    pub tile: usize,
    /// Context margin around each tile (rounded up to the size multiple); None: the
    /// receptive field, capped at 128 pixels.
    pub margin: Option<usize>,
    /// Half precision on CUDA devices (ignored on the CPU).
    pub half: bool,
    /// Images of at most this many pixels (after padding) run as one window, without tiles
    /// or margins: exact, and at 1 MP 1.7× faster than 384 px tiles (whose margins compute
    /// every pixel ~2.8 times), for ~1.4 GB peak with the small net. 0: always tile.
    pub whole_image_pixels: usize,
}

impl Default for InferOptions {
    fn default() -> Self {
        InferOptions { tile: 384, margin: None, half: false, whole_image_pixels: 1 << 20 }
    }
}

fn round_up(v: usize, m: usize) -> usize {
    v.div_ceil(m) * m
}

/// The representation of `input` ((C, H, W), preprocessed) by the network of `side`.
pub fn represent(model: &Model, side: usize, input: &Array3<f32>, options: &InferOptions, monitor: &dyn Monitor) -> Result<Array3<f32>> {
    let net = model.net(side);
    let cfg = net.config();
    let (c, h, w) = input.dim();
    if c != cfg.in_channels {
        return Err(Error::Parameter(format!(
            "the image has {c} channel(s) but the model's \"{}\" network expects {}",
            model.header.modalities[side].name, cfg.in_channels
        )));
    }
    let m = cfg.size_multiple();
    let (hp, wp) = (round_up(h, m), round_up(w, m));
    let whole = hp * wp <= options.whole_image_pixels;
    let tile = if whole { hp.max(wp) } else { (options.tile / m).max(1) * m };
    let margin = if whole { 0 } else { round_up(options.margin.unwrap_or(cfg.receptive_radius().min(128)), m) };
    // The input padded to a multiple of the net's size by mirroring, read window by window
    // (no padded copy of the whole image: that would double the memory of large inputs).
    let padded = |ch: usize, y: usize, x: usize| input[[ch, mirror(y as isize, h), mirror(x as isize, w)]];
    let device = model.device();
    let half = options.half && device.is_cuda();
    let out_c = cfg.out_channels;
    let mut out = Array3::<f32>::zeros((out_c, h, w));
    let tiles_y: Vec<usize> = (0..hp).step_by(tile).collect();
    let tiles_x: Vec<usize> = (0..wp).step_by(tile).collect();
    let total = (tiles_y.len() * tiles_x.len()) as u64;
    let mut done = 0;
    tch::no_grad(|| -> Result<()> {
        for &y0 in &tiles_y {
            for &x0 in &tiles_x {
                if monitor.is_cancelled() {
                    return Err(Error::Cancelled);
                }
                let (wy0, wx0) = (y0.saturating_sub(margin), x0.saturating_sub(margin));
                let (wy1, wx1) = ((y0 + tile + margin).min(hp), (x0 + tile + margin).min(wp));
                let (th, tw) = (wy1 - wy0, wx1 - wx0);
                let flat: Vec<f32> = Array3::from_shape_fn((c, th, tw), |(ch, y, x)| padded(ch, wy0 + y, wx0 + x)).into_iter().collect();
                let mut x = Tensor::from_slice(&flat).reshape([1, c as i64, th as i64, tw as i64]).to_device(device);
                if half {
                    x = x.to_kind(Kind::Half);
                }
                // libtorch reports failures (out of GPU memory above all) by panicking in tch:
                // a message about memory, not an "internal error".
                let y = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| net.forward_t(&x, false).to_kind(Kind::Float).to_device(tch::Device::Cpu).contiguous())).map_err(|panic| {
                    let what = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                    Error::Resources(format!("the network failed on a {tw}×{th} tile on {device:?} (out of memory? a smaller tile size needs less): {}", what.lines().next().unwrap_or("")))
                })?;
                let values: Vec<f32> = Vec::try_from(y.flatten(0, -1))?;
                let y = Array3::from_shape_vec((out_c, th, tw), values).map_err(|e| Error::Internal(e.to_string()))?;
                // Keep the core, clipped to the original (unpadded) image.
                let (cy1, cx1) = ((y0 + tile).min(h), (x0 + tile).min(w));
                if y0 < cy1 && x0 < cx1 {
                    out.slice_mut(s![.., y0..cy1, x0..cx1]).assign(&y.slice(s![.., y0 - wy0..cy1 - wy0, x0 - wx0..cx1 - wx0]));
                }
                done += 1;
                monitor.report(&Progress { done, total, message: format!("tile {done}/{total}") });
            }
        }
        Ok(())
    })?;
    Ok(out)
}
