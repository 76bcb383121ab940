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
    /// Core tile side (rounded down to the size multiple); None: the image runs whole if the
    /// memory budget allows, else in the fewest tiles whose windows fit it.
    pub tile: Option<usize>,
    /// Context margin around each tile (rounded up to the size multiple); None: the
    /// receptive field, capped at 128 pixels.
    pub margin: Option<usize>,
    /// Half precision on CUDA devices (ignored on the CPU).
    pub half: bool,
    /// Peak memory (bytes) a representation aims at: the image, its CoMIR and the network's
    /// working memory of one window. A smaller budget means more tiles, more margins to
    /// recompute, slower.
    pub memory_budget: u64,
}

/// A 10000² image must be represented in under 2 GiB.
pub const MEMORY_BUDGET: u64 = 2 << 30;

/// What a process that runs the network holds besides the image, its CoMIR and the window:
/// libtorch and the weights (~90 MiB: the peak RSS of a 512² pass less its window).
const BASE_BYTES: u64 = 128 << 20;

/// A tiled pass takes more than one window's working memory: with the heap kept between
/// tiles (see [`super::heap`]) its free blocks fragment, and RSS crept from 1.77 to 2.03 GiB
/// over the 49 tiles of a 5000² image whose window alone should take 1.3 GB (peaks of the same
/// plan 1.6–2.1 GiB from run to run, `bench/memory.sh`). So tiles get windows 1.6× smaller
/// than one whole pass would.
const TILED_SLACK: f64 = 1.6;

impl Default for InferOptions {
    fn default() -> Self {
        InferOptions { tile: None, margin: None, half: false, memory_budget: MEMORY_BUDGET }
    }
}

fn round_up(v: usize, m: usize) -> usize {
    v.div_ceil(m) * m
}

/// How an image is cut: core tiles of `tile` (rows, columns) pixels, each run with `margin`
/// pixels of context on every side that has image there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TilePlan {
    pub tile: (usize, usize),
    pub margin: usize,
}

/// The plan for a (padded) `hp` × `wp` image, the network running on our CPU kernels or not
/// (`fused_kernels`, see [`super::dense_conv::serve`]): whole if it fits the budget's window
/// (what the budget leaves after the image and its CoMIR), else the fewest tiles per axis whose
/// windows (core and margins) fit, with equal cores. Every window costs its margins again, so
/// fewer, larger tiles are faster (and since [`super::heap::HeapReuse`], larger windows cost no
/// more per pixel).
pub fn plan_tiles(cfg: &super::config::NetConfig, hp: usize, wp: usize, fused_kernels: bool, options: &InferOptions) -> TilePlan {
    let m = cfg.size_multiple();
    let margin = round_up(options.margin.unwrap_or(cfg.receptive_radius().min(128)), m);
    if let Some(tile) = options.tile {
        let t = (tile / m).max(1) * m;
        return TilePlan { tile: (t, t), margin };
    }
    let image_bytes = (hp * wp * (cfg.in_channels + cfg.out_channels) * 4) as u64;
    let window_bytes = options.memory_budget.saturating_sub(BASE_BYTES + image_bytes);
    let window_pixels = (window_bytes / cfg.inference_bytes_per_pixel(fused_kernels)) as usize;
    if hp * wp <= window_pixels {
        return TilePlan { tile: (hp, wp), margin: 0 };
    }
    let window_pixels = (window_pixels as f64 / TILED_SLACK) as usize;
    // The side of the largest square window, at least the margins and one multiple of core.
    let side = (((window_pixels as f64).sqrt() as usize) / m * m).max(2 * margin + m);
    let core = side - 2 * margin;
    let cut = |n: usize| {
        let tiles = n.div_ceil(core);
        round_up(n.div_ceil(tiles), m)
    };
    TilePlan { tile: (cut(hp), cut(wp)), margin }
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
    let device = model.device();
    let TilePlan { tile: (tile_h, tile_w), margin } = plan_tiles(cfg, hp, wp, super::dense_conv::serve(device), options);
    // The input padded to a multiple of the net's size by mirroring, read window by window
    // (no padded copy of the whole image: that would double the memory of large inputs).
    let padded = |ch: usize, y: usize, x: usize| input[[ch, mirror(y as isize, h), mirror(x as isize, w)]];
    let half = options.half && device.is_cuda();
    let out_c = cfg.out_channels;
    let mut out = Array3::<f32>::zeros((out_c, h, w));
    let tiles_y: Vec<usize> = (0..hp).step_by(tile_h).collect();
    let tiles_x: Vec<usize> = (0..wp).step_by(tile_w).collect();
    let total = (tiles_y.len() * tiles_x.len()) as u64;
    let mut done = 0;
    let _heap = super::heap::HeapReuse::begin();
    tch::no_grad(|| -> Result<()> {
        for &y0 in &tiles_y {
            for &x0 in &tiles_x {
                if monitor.is_cancelled() {
                    return Err(Error::Cancelled);
                }
                // Every window has the same size: at the image's edges it reaches further
                // inwards instead of shrinking (more context, and the allocator reuses the
                // same blocks for every tile instead of fragmenting its heap).
                let (th, tw) = ((tile_h + 2 * margin).min(hp), (tile_w + 2 * margin).min(wp));
                let (wy0, wx0) = (y0.saturating_sub(margin).min(hp - th), x0.saturating_sub(margin).min(wp - tw));
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
                let (cy1, cx1) = ((y0 + tile_h).min(h), (x0 + tile_w).min(w));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::NetConfig;

    fn window_bytes(cfg: &NetConfig, hp: usize, wp: usize, plan: TilePlan, fused: bool) -> u64 {
        let (th, tw) = (plan.tile.0.min(hp) + 2 * plan.margin, plan.tile.1.min(wp) + 2 * plan.margin);
        (th.min(hp) * tw.min(wp)) as u64 * cfg.inference_bytes_per_pixel(fused)
    }

    #[test]
    fn images_run_whole_while_they_fit_and_in_the_fewest_fitting_tiles_beyond() {
        let small = NetConfig::small(1, 1);
        let o = InferOptions::default();
        for fused in [false, true] {
            // 1 MP runs whole (exact, no margins to recompute).
            assert_eq!(plan_tiles(&small, 1024, 1024, fused, &o), TilePlan { tile: (1024, 1024), margin: 0 });
            for (hp, wp) in [(2000, 2000), (10000, 10000), (8000, 512)] {
                let plan = plan_tiles(&small, hp, wp, fused, &o);
                assert_eq!(plan.margin, 128, "the small net's receptive field");
                let io = (hp * wp * 2 * 4) as u64;
                assert!((window_bytes(&small, hp, wp, plan, fused) as f64 * TILED_SLACK) as u64 + io + BASE_BYTES <= MEMORY_BUDGET, "{hp}×{wp}: {plan:?}");
                // The fewest tiles: with one tile fewer along either axis, a core with margins
                // on both sides (a square window, as the plan assumes) would not fit.
                for (n, side) in [(hp.div_ceil(plan.tile.0), hp), (wp.div_ceil(plan.tile.1), wp)] {
                    if n > 1 {
                        let window = round_up(side.div_ceil(n - 1), 16) + 2 * plan.margin;
                        assert!(((window * window) as u64 * small.inference_bytes_per_pixel(fused)) as f64 * TILED_SLACK + (io + BASE_BYTES) as f64 > MEMORY_BUDGET as f64, "{hp}×{wp}: {plan:?}");
                    }
                }
            }
            // Cores are multiples of the net's size and cover the image.
            let plan = plan_tiles(&small, 2000, 2000, fused, &o);
            assert_eq!(plan.tile.0 % 16, 0);
            assert!(plan.tile.0 * 2000usize.div_ceil(plan.tile.0) >= 2000);
            // A smaller budget cuts finer; an explicit tile is taken as given (rounded to the multiple).
            let tight = plan_tiles(&small, 2000, 2000, fused, &InferOptions { memory_budget: 600 << 20, ..o.clone() });
            assert!(tight.tile.0 < plan.tile.0, "{tight:?} vs {plan:?}");
            assert_eq!(plan_tiles(&small, 2000, 2000, fused, &InferOptions { tile: Some(100), ..o.clone() }).tile, (96, 96));
        }
        // The paper net needs more memory per pixel; libtorch's path more than our kernels
        // (1 MP runs whole with them, in tiles without), so its windows are smaller.
        let paper = NetConfig::paper(1, 1);
        assert!(paper.inference_bytes_per_pixel(true) > 2 * small.inference_bytes_per_pixel(true));
        assert_ne!(plan_tiles(&paper, 1024, 1024, false, &o).margin, 0);
        assert_eq!(plan_tiles(&paper, 1024, 1024, true, &o).margin, 0);
        let (with, without) = (plan_tiles(&paper, 10000, 10000, true, &o), plan_tiles(&paper, 10000, 10000, false, &o));
        assert!(with.tile.0 > without.tile.0, "{with:?} vs {without:?}");
    }
}
