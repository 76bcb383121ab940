//! Our half of bench/pytorch_peer.sh: the paper-configuration network, trained for a few
//! steps (timed) and run for inference (timed) on files the Python peer reads too.
//!
//!   bench_model WORKDIR [SIZE] [STEPS] [NET]
//!
//! Writes WORKDIR/model.safetensors, input.f32 (SIZE², raw little-endian), output-whole.f32,
//! and prints "key value" lines: train_steps_per_second (not with STEPS = 0),
//! infer_whole_seconds, infer_tiled_seconds (our default tiling), flops_per_pixel (the
//! network's arithmetic) and gemm_gflops (libtorch's float GEMM, 2048², on the same threads:
//! the machine's attainable peak). NET: paper (default) or small.
use comir::model::augment::{AugmentConfig, TrainingPair};
use comir::model::config::NetConfig;
use comir::model::infer::{represent, InferOptions};
use comir::model::preprocess::Preprocess;
use comir::model::store::{Modality, Model};
use comir::model::train::{train, TrainConfig};
use comir::progress::Silent;
use ndarray::Array3;
use std::path::Path;
use std::time::Instant;

/// A smooth random-looking scene and a non-monotonic map of it (the "other modality").
fn scene(n: usize) -> (Array3<f32>, Array3<f32>) {
    let a = Array3::from_shape_fn((1, n, n), |(_, y, x)| {
        let (x, y) = (x as f32 / 17.0, y as f32 / 23.0);
        0.5 + 0.25 * (x.sin() * y.cos()) + 0.25 * ((x * 0.37 + y * 0.61).sin() * (x * 1.3).cos())
    });
    let b = a.mapv(|v| (v - 0.5).abs() * 2.0);
    (a, b)
}

fn write_f32(path: &Path, values: impl Iterator<Item = f32>) {
    let bytes: Vec<u8> = values.flat_map(f32::to_le_bytes).collect();
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..n {
        let t = Instant::now();
        out = Some(f());
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best, out.expect("n > 0"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let work = Path::new(args.get(1).expect("usage: bench_model WORKDIR [SIZE] [STEPS]"));
    let size: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(1024);
    let steps: u64 = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(6);
    let net = NetConfig::preset(args.get(4).map_or("paper", String::as_str), 1, 1).expect("net size: paper or small");
    tch::manual_seed(0);
    let modality = |name: &str| Modality { name: name.into(), preprocess: Preprocess::Scale, net: net.clone() };
    let mut model = Model::new([modality("A"), modality("B")], tch::Device::Cpu).expect("model");

    // Training: the same work as the peer's step (random crops, C4 equivariance, InfoNCE, SGD);
    // the CPU-side augmentations that the peer does not do are off. The first step warms up.
    let (a, b) = scene(512);
    let pair = TrainingPair::new(a, b, None).expect("pair");
    let none = AugmentConfig { rotate: false, flip: false, blur_sigma_max: 0.0, intensity_jitter: 0.0 };
    let config = TrainConfig { steps: 1, augment: none, ..Default::default() };
    if steps > 0 {
        // The warm-up warms the heap too: each `train` call keeps freed blocks for its next
        // step and hands them back at its end (see `heap`), so without this guard the timed
        // call's first step would fault every page in again (~1 M faults, once per training,
        // which a user's thousand steps do not notice; PyTorch's timed steps follow its
        // warm-up in one process as well).
        let _warm_heap = comir::model::heap::HeapReuse::begin();
        train(&mut model, std::slice::from_ref(&pair), &config, None, None, &Silent).expect("warm-up step");
        let report = train(&mut model, std::slice::from_ref(&pair), &TrainConfig { steps, ..config }, None, None, &Silent).expect("train");
        println!("train_steps_per_second {:.4}", report.steps_per_second);
    }
    model.save(&work.join("model.safetensors")).expect("save");

    let (input, _) = scene(size);
    write_f32(&work.join("input.f32"), input.iter().copied());
    let whole = InferOptions { tile: Some(size), margin: Some(0), ..Default::default() };
    let (t_whole, out) = best_of(2, || represent(&model, 0, &input, &whole, &Silent).expect("represent"));
    write_f32(&work.join("output-whole.f32"), out.iter().copied());
    println!("infer_whole_seconds {t_whole:.4}");
    // Tiled as the default cuts a 10000² image: the window its budget leaves after the image.
    let io = ((net.in_channels + net.out_channels) * 4) as u64;
    let tiled_budget = comir::model::infer::MEMORY_BUDGET - io * 10000 * 10000 + io * (size * size) as u64;
    let tiled_plan = comir::model::infer::plan_tiles(&net, size, size, comir::model::dense_conv::serve(tch::Device::Cpu), &InferOptions { memory_budget: tiled_budget, ..Default::default() });
    println!("# tiled as a 10000² image: windows {:?}, margin {}", tiled_plan.window, tiled_plan.margin);
    let (t_tiled, _) = best_of(2, || represent(&model, 0, &input, &InferOptions { memory_budget: tiled_budget, ..Default::default() }, &Silent).expect("represent"));
    println!("infer_tiled_seconds {t_tiled:.4}");
    println!("flops_per_pixel {:.1}", net.flops_per_pixel());
    println!("gemm_gflops {:.2}", gemm_gflops(2048));
}

/// GFLOP/s of libtorch's float matrix product of two n × n matrices (2n³ operations), best of
/// 5 after a warm-up: what this machine's cores attain on the densest arithmetic there is.
fn gemm_gflops(n: i64) -> f64 {
    let a = tch::Tensor::rand([n, n], (tch::Kind::Float, tch::Device::Cpu));
    let b = tch::Tensor::rand([n, n], (tch::Kind::Float, tch::Device::Cpu));
    let _ = a.mm(&b);
    let (t, _) = best_of(5, || a.mm(&b));
    2.0 * (n as f64).powi(3) / t / 1e9
}
