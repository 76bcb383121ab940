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
#[cfg(feature = "torch")]
use tch::nn::ModuleT;
#[cfg(feature = "torch")]
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

/// How an image is cut: windows of `window` (rows, columns) pixels, all of one size, each
/// keeping of its output the core that lies at least `margin` pixels inside those of its edges
/// that are not the image's (see [`axis_windows`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TilePlan {
    pub window: (usize, usize),
    pub margin: usize,
}

/// One window along an axis: where it starts and the core of it that is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AxisWindow {
    pub start: usize,
    pub core: std::ops::Range<usize>,
}

/// How many windows of `window` pixels cover `n` with every core `margin` inside the windows'
/// inner edges: neighbours overlap by at least 2 × `margin`, and the windows at the ends need no
/// margin outwards (the image's edge is there in a whole pass too).
fn windows_needed(n: usize, window: usize, margin: usize) -> usize {
    if window >= n {
        1
    } else {
        (n - window).div_ceil(window.saturating_sub(2 * margin).max(1)) + 1
    }
}

/// The smallest window (a multiple of `m`, at most `n`) with which `k` windows cover `n` pixels:
/// k·window − 2·margin·(k − 1) ≥ n.
fn window_for(n: usize, k: usize, margin: usize, m: usize) -> usize {
    round_up((n + 2 * margin * (k - 1)).div_ceil(k), m).min(n)
}

/// The windows of `window` pixels along an axis of `n` (both multiples of `m`, as `margin` is):
/// starts on the grid of `m` (max-pooling then sees the grid of one whole pass), spread evenly,
/// the last ending at `n`; each core ends in the middle of its overlap with the next window.
/// Equal windows, not equal cores: with equal cores every window had a margin on both sides,
/// and the two at the ends reached inwards by a margin they did not need (a 2048² image in four
/// windows of 1280² computed 6.6 MP; now four of 1152², 5.3 MP).
pub fn axis_windows(n: usize, window: usize, margin: usize, m: usize) -> Vec<AxisWindow> {
    let window = window.min(n);
    let k = windows_needed(n, window, margin);
    if k == 1 {
        return vec![AxisWindow { start: 0, core: 0..n }];
    }
    // At most window − 2·margin (see `windows_needed`), so neighbours overlap by 2·margin.
    let step = round_up((n - window).div_ceil(k - 1), m);
    let starts: Vec<usize> = (0..k).map(|i| (i * step).min(n - window)).collect();
    // Where one core ends and the next begins: the axis's ends, and the middle of each overlap.
    let cuts: Vec<usize> = std::iter::once(0).chain(starts.windows(2).map(|p| (p[0] + window + p[1]) / 2)).chain([n]).collect();
    starts.into_iter().zip(cuts.windows(2)).map(|(start, cut)| AxisWindow { start, core: cut[0]..cut[1] }).collect()
}

/// The plan for a (padded) `hp` × `wp` image, the network running on our CPU kernels or not
/// (`fused_kernels`, see [`super::dense_conv::serve`]): whole if it fits the budget's window
/// (what the budget leaves after the image and its CoMIR), else the fewest windows per axis that
/// fit, each as small as that number allows. Every window costs its margins again, so fewer,
/// larger windows are faster (and since [`super::heap::HeapReuse`], larger windows cost no more
/// per pixel). An explicit `tile` (core side) asks for as many windows as cores of that side
/// take.
pub fn plan_tiles(cfg: &super::config::NetConfig, hp: usize, wp: usize, fused_kernels: bool, options: &InferOptions) -> TilePlan {
    let m = cfg.size_multiple();
    let margin = round_up(options.margin.unwrap_or(cfg.receptive_radius().min(128)), m);
    let fit = |n: usize, k: usize| window_for(n, k, margin, m);
    if let Some(tile) = options.tile {
        let t = (tile / m).max(1) * m;
        return TilePlan { window: (fit(hp, hp.div_ceil(t)), fit(wp, wp.div_ceil(t))), margin };
    }
    let image_bytes = (hp * wp * (cfg.in_channels + cfg.out_channels) * 4) as u64;
    let window_bytes = options.memory_budget.saturating_sub(BASE_BYTES + image_bytes);
    let window_pixels = (window_bytes / cfg.inference_bytes_per_pixel(fused_kernels)) as usize;
    if hp * wp <= window_pixels {
        return TilePlan { window: (hp, wp), margin: 0 };
    }
    let window_pixels = (window_pixels as f64 / TILED_SLACK) as usize;
    // The side of the largest square window, at least the margins and one multiple of core.
    let side = (((window_pixels as f64).sqrt() as usize) / m * m).max(2 * margin + m);
    TilePlan { window: (fit(hp, windows_needed(hp, side, margin)), fit(wp, windows_needed(wp, side, margin))), margin }
}

/// The representation of `input` ((C, H, W), preprocessed) by the network of `side`.
pub fn represent(model: &Model, side: usize, input: &Array3<f32>, options: &InferOptions, monitor: &dyn Monitor) -> Result<Array3<f32>> {
    let cfg = &model.header.modalities[side].net;
    let (c, h, w) = input.dim();
    if c != cfg.in_channels {
        return Err(Error::Parameter(format!(
            "the image has {c} channel(s) but the model's \"{}\" network expects {}",
            model.header.modalities[side].name, cfg.in_channels
        )));
    }
    let m = cfg.size_multiple();
    let (hp, wp) = (round_up(h, m), round_up(w, m));
    let TilePlan { window: (win_h, win_w), margin } = plan_tiles(cfg, hp, wp, model.cpu_kernels(), options);
    // The input padded to a multiple of the net's size by mirroring, read window by window
    // (no padded copy of the whole image: that would double the memory of large inputs).
    let padded = |ch: usize, y: usize, x: usize| input[[ch, mirror(y as isize, h), mirror(x as isize, w)]];
    let out_c = cfg.out_channels;
    let mut out = Array3::<f32>::zeros((out_c, h, w));
    let rows = axis_windows(hp, win_h, margin, m);
    let columns = axis_windows(wp, win_w, margin, m);
    let (th, tw) = (win_h.min(hp), win_w.min(wp));
    let total = (rows.len() * columns.len()) as u64;
    let mut done = 0;
    let _heap = super::heap::HeapReuse::begin();
    // On the CPU the network runs without libtorch's tensors (the same kernels, the same bits).
    let cpu = model.cpu_net(side);
    let mut workspace = super::cpu_net::Workspace::default();
    for row in &rows {
        for column in &columns {
            if monitor.is_cancelled() {
                return Err(Error::Cancelled);
            }
            // Every window has the same size (the allocator reuses the same blocks for
            // every window instead of fragmenting its heap).
            let (wy0, wx0) = (row.start, column.start);
            let flat: Vec<f32> = Array3::from_shape_fn((c, th, tw), |(ch, y, x)| padded(ch, wy0 + y, wx0 + x)).into_iter().collect();
            let values = match cpu.as_ref().and_then(|net| net.forward(&flat, c, th, tw, &mut workspace)) {
                Some(values) => values,
                None => libtorch_window(model, side, &flat, [c, th, tw], options.half)?,
            };
            let y = Array3::from_shape_vec((out_c, th, tw), values).map_err(|e| Error::Internal(e.to_string()))?;
            // Keep the core, clipped to the original (unpadded) image.
            let (ys, xs) = (row.core.start.min(h)..row.core.end.min(h), column.core.start.min(w)..column.core.end.min(w));
            if !ys.is_empty() && !xs.is_empty() {
                out.slice_mut(s![.., ys.clone(), xs.clone()]).assign(&y.slice(s![.., ys.start - wy0..ys.end - wy0, xs.start - wx0..xs.end - wx0]));
            }
            done += 1;
            monitor.report(&Progress { done, total, message: format!("tile {done}/{total}") });
        }
    }
    Ok(out)
}

/// One window through libtorch's network (GPUs; CPUs without AVX2), in half precision on CUDA
/// if `half`; the output as (outputs, h, w) row-major.
#[cfg(feature = "torch")]
fn libtorch_window(model: &Model, side: usize, flat: &[f32], [c, th, tw]: [usize; 3], half: bool) -> Result<Vec<f32>> {
    let device = model.device();
    tch::no_grad(|| {
        let mut x = Tensor::from_slice(flat).reshape([1, c as i64, th as i64, tw as i64]).to_device(device);
        if half && device.is_cuda() {
            x = x.to_kind(Kind::Half);
        }
        // libtorch reports failures (out of GPU memory above all) by panicking in tch:
        // a message about memory, not an "internal error".
        let y = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.net(side).forward_t(&x, false).to_kind(Kind::Float).to_device(tch::Device::Cpu).contiguous())).map_err(|panic| {
            let what = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            Error::Resources(format!("the network failed on a {tw}×{th} tile on {device:?} (out of memory? a smaller tile size needs less): {}", what.lines().next().unwrap_or("")))
        })?;
        Ok(Vec::try_from(y.flatten(0, -1))?)
    })
}

/// Without libtorch every network runs on the CPU kernels (`Model::from_bytes` refused the
/// model otherwise); a window they refuse is an error of ours.
#[cfg(not(feature = "torch"))]
fn libtorch_window(_: &Model, _: usize, _: &[f32], [_, th, tw]: [usize; 3], _: bool) -> Result<Vec<f32>> {
    Err(Error::Internal(format!("the CPU kernels refused a {tw}×{th} window")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::NetConfig;

    fn window_bytes(cfg: &NetConfig, plan: TilePlan, fused: bool) -> u64 {
        (plan.window.0 * plan.window.1) as u64 * cfg.inference_bytes_per_pixel(fused)
    }

    /// A square window of `side` as the plan weighs it against the budget.
    fn fits(cfg: &NetConfig, side: usize, io: u64, fused: bool) -> bool {
        ((side * side) as u64 * cfg.inference_bytes_per_pixel(fused)) as f64 * TILED_SLACK + (io + BASE_BYTES) as f64 <= MEMORY_BUDGET as f64
    }

    #[test]
    fn images_run_whole_while_they_fit_and_in_the_fewest_fitting_windows_beyond() {
        let small = NetConfig::small(1, 1);
        let o = InferOptions::default();
        for fused in [false, true] {
            // 1 MP runs whole (exact, no margins to recompute).
            assert_eq!(plan_tiles(&small, 1024, 1024, fused, &o), TilePlan { window: (1024, 1024), margin: 0 });
            for (hp, wp) in [(2000, 2000), (2048, 2048), (10000, 10000), (8000, 512)] {
                let plan = plan_tiles(&small, hp, wp, fused, &o);
                assert_eq!(plan.margin, 128, "the small net's receptive field");
                let io = (hp * wp * 2 * 4) as u64;
                assert!((window_bytes(&small, plan, fused) as f64 * TILED_SLACK) as u64 + io + BASE_BYTES <= MEMORY_BUDGET, "{hp}×{wp}: {plan:?}");
                for (n, window) in [(hp, plan.window.0), (wp, plan.window.1)] {
                    assert_eq!(window % 16, 0);
                    let k = axis_windows(n, window, plan.margin, 16).len();
                    // The fewest windows: one fewer would need a larger window than fits (as a
                    // square, which the plan assumes) …
                    if k > 1 {
                        assert!(!fits(&small, window_for(n, k - 1, plan.margin, 16), io, fused), "{hp}×{wp}: {plan:?}");
                    }
                    // … and the window is the smallest that number of windows allows.
                    assert!(window == n || axis_windows(n, window - 16, plan.margin, 16).len() > k, "{hp}×{wp}: {plan:?}");
                }
            }
            // A 2048² image: four windows of 1152² (5.3 MP computed), not four of 1280² (6.6 MP)
            // as with equal cores and margins on every side.
            if fused {
                assert_eq!(plan_tiles(&small, 2048, 2048, fused, &o).window, (1152, 1152));
            }
            // A smaller budget cuts finer; an explicit tile (a core side, rounded to the
            // multiple) gives windows no larger than such a core and its margins, and no more
            // of them than such cores would need.
            let plan = plan_tiles(&small, 2000, 2000, fused, &o);
            let tight = plan_tiles(&small, 2000, 2000, fused, &InferOptions { memory_budget: 600 << 20, ..o.clone() });
            assert!(tight.window.0 < plan.window.0, "{tight:?} vs {plan:?}");
            let asked = plan_tiles(&small, 2000, 2000, fused, &InferOptions { tile: Some(100), ..o.clone() });
            assert!(axis_windows(2000, asked.window.0, asked.margin, 16).len() <= 2000usize.div_ceil(96), "{asked:?}");
            assert!(asked.window.0 <= 96 + 2 * 128, "{asked:?}");
        }
        // The paper net needs more memory per pixel; libtorch's path more than our kernels
        // (1 MP runs whole with them, in tiles without), so its windows are smaller.
        let paper = NetConfig::paper(1, 1);
        assert!(paper.inference_bytes_per_pixel(true) > 2 * small.inference_bytes_per_pixel(true));
        assert_ne!(plan_tiles(&paper, 1024, 1024, false, &o).margin, 0);
        assert_eq!(plan_tiles(&paper, 1024, 1024, true, &o).margin, 0);
        let (with, without) = (plan_tiles(&paper, 10000, 10000, true, &o), plan_tiles(&paper, 10000, 10000, false, &o));
        assert!(with.window.0 > without.window.0, "{with:?} vs {without:?}");
    }

    /// The windows along an axis: on the pooling grid, inside the image, all of one size; their
    /// cores cut the axis into consecutive pieces, each at least a margin inside its window's
    /// edges (but at the image's own edges), which is what makes tiling exact.
    #[test]
    fn windows_cover_the_axis_with_cores_a_margin_inside_them() {
        for n in [16, 160, 336, 400, 2048, 3008, 10000] {
            for margin in [0, 16, 128] {
                for window in [n, 2 * margin + 16, 2 * margin + 48, 304, 1152, 1504] {
                    if window > n || window <= 2 * margin {
                        continue;
                    }
                    let windows = axis_windows(n, window, margin, 16);
                    assert_eq!(windows.len(), windows_needed(n, window, margin));
                    let mut covered = 0;
                    for (i, wi) in windows.iter().enumerate() {
                        let what = format!("n {n}, window {window}, margin {margin}: {windows:?}");
                        assert_eq!(wi.start % 16, 0, "{what}");
                        assert!(wi.start + window <= n, "{what}");
                        assert_eq!(wi.core.start, covered, "{what}");
                        assert!(wi.core.start < wi.core.end, "{what}");
                        assert!(i == 0 || wi.core.start >= wi.start + margin, "{what}");
                        assert!(i + 1 == windows.len() || wi.core.end + margin <= wi.start + window, "{what}");
                        assert!(wi.start <= wi.core.start && wi.core.end <= wi.start + window, "{what}");
                        covered = wi.core.end;
                    }
                    assert_eq!(covered, n);
                    assert_eq!(windows[0].start, 0);
                    assert_eq!(windows.last().map(|w| w.start + window), Some(n));
                }
            }
        }
    }
}
