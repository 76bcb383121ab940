//! The CoMIR model: architecture, loss, training, equivariance, tiled inference, model files.
use comir::model::augment::TrainingPair;
use comir::model::config::NetConfig;
use comir::model::infer::{axis_windows, plan_tiles, represent, InferOptions};
use comir::model::loss::{info_nce, Critic};
use comir::model::preprocess::Preprocess;
use comir::model::store::{Modality, Model};
use comir::model::train::{train, Checked, TrainConfig};
use comir::progress::{CancelFlag, Silent};
use ndarray::{Array2, Array3};
use tch::{Device, Tensor};

fn modality(name: &str, net: NetConfig) -> Modality {
    Modality { name: name.into(), preprocess: Preprocess::Scale, net }
}

fn tiny_net(in_c: usize) -> NetConfig {
    NetConfig { init_filters: 8, growth_rate: 4, down_blocks: vec![1, 1], up_blocks: vec![1, 1], bottleneck_layers: 1, dropout: 0.0, ..NetConfig::small(in_c, 1) }
}

/// libtorch's random generator is global: every test here seeds it or draws from it (network
/// initialisation, dropout), so they take turns instead of interleaving.
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn torch_lock() -> std::sync::MutexGuard<'static, ()> {
    TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner())
}

fn model(a: NetConfig, b: NetConfig, seed: i64) -> Model {
    tch::manual_seed(seed);
    Model::new([modality("A", a), modality("B", b)], Device::Cpu).unwrap()
}

#[test]
fn paper_configuration_has_about_1_05_million_parameters() {
    let _serial = torch_lock();
    // Counted: every trainable tensor (conv weights and biases, BatchNorm scale and shift) of
    // one single-channel-in, single-channel-out network; running statistics are not parameters.
    let m = model(NetConfig::paper(1, 1), NetConfig::paper(3, 1), 0);
    let single = m.parameter_count(0);
    assert!((1_000_000..1_100_000).contains(&single), "{single}");
    // RGB input only adds the extra input filters of the first convolution: 2 × 32 × 3 × 3.
    assert_eq!(m.parameter_count(1) - single, 2 * 32 * 9);
    let x = Tensor::rand([1, 1, 64, 64], (tch::Kind::Float, Device::Cpu));
    use tch::nn::ModuleT;
    assert_eq!(m.net(0).forward_t(&x, false).size(), vec![1, 1, 64, 64]);
}

/// The loss by its definition, one pair at a time.
fn reference_loss(a: &[Vec<f64>], b: &[Vec<f64>], critic: Critic, tau: f64) -> f64 {
    let points: Vec<&Vec<f64>> = a.iter().chain(b.iter()).collect();
    let n = a.len();
    let sim = |x: &Vec<f64>, y: &Vec<f64>| match critic {
        Critic::Mse => -x.iter().zip(y).map(|(p, q)| (p - q).powi(2)).sum::<f64>() / x.len() as f64 / tau,
        Critic::Cosine => {
            // one channel: per-pixel cosine is the sign product
            x.iter().zip(y).map(|(p, q)| (p * q) / (p.abs() * q.abs())).sum::<f64>() / x.len() as f64 / tau
        }
    };
    let mut total = 0.0;
    for i in 0..2 * n {
        let pos = (i + n) % (2 * n);
        let denom: f64 = (0..2 * n).filter(|&j| j != i).map(|j| sim(points[i], points[j]).exp()).sum();
        total += -sim(points[i], points[pos]) + denom.ln();
    }
    total / (2 * n) as f64
}

#[test]
fn info_nce_matches_the_hand_computed_value() {
    let _serial = torch_lock();
    let a = vec![vec![0.5, -1.0, 2.0, 0.25], vec![1.5, 0.5, -0.5, 1.0], vec![-2.0, 0.75, 0.1, 0.3]];
    let b = vec![vec![0.4, -0.8, 1.5, 0.5], vec![1.0, 1.0, -1.0, 0.9], vec![-1.0, 0.5, 0.3, -0.2]];
    let t = |v: &Vec<Vec<f64>>| {
        let flat: Vec<f32> = v.iter().flatten().map(|&x| x as f32).collect();
        Tensor::from_slice(&flat).reshape([3, 1, 2, 2])
    };
    for critic in [Critic::Mse, Critic::Cosine] {
        let (loss, _) = info_nce(&t(&a), &t(&b), critic, 0.5);
        let expected = reference_loss(&a, &b, critic, 0.5);
        assert!((loss.double_value(&[]) - expected).abs() < 1e-5, "{critic:?}: {} vs {expected}", loss.double_value(&[]));
    }
    // Hand check of one MSE entry: s(a0, b0) = −mean((0.1, −0.2, 0.5, −0.25)²)/0.5
    // = −(0.01 + 0.04 + 0.25 + 0.0625)/4/0.5 = −0.18125.
    let (_, sim) = info_nce(&t(&a), &t(&b), Critic::Mse, 0.5);
    assert!((sim.double_value(&[0, 3]) + 0.18125).abs() < 1e-6);
}

/// Two "modalities" of one synthetic scene related by a non-monotonic intensity map.
fn synthetic_pair(size: usize, seed: u64) -> (Array3<f32>, Array3<f32>) {
    let mut rng = comir::rng::Rng::new(seed);
    let blobs: Vec<(f64, f64, f64, f64)> = (0..40).map(|_| (rng.range(0.0, size as f64), rng.range(0.0, size as f64), rng.range(3.0, 9.0), rng.range(0.2, 1.0))).collect();
    let scene = Array2::from_shape_fn((size, size), |(y, x)| {
        blobs.iter().map(|&(bx, by, r, v)| v * (-((x as f64 - bx).powi(2) + (y as f64 - by).powi(2)) / (r * r)).exp()).sum::<f64>().min(1.0)
    });
    let a = scene.mapv(|s| s as f32).insert_axis(ndarray::Axis(0));
    // Modality B: bright where the scene is mid-grey, dark at both ends.
    let b = scene.mapv(|s| (1.0 - (2.0 * s - 1.0).powi(2)) as f32).insert_axis(ndarray::Axis(0));
    (a, b)
}

fn quick_config(steps: u64) -> TrainConfig {
    TrainConfig { steps, batch_size: 6, patch_size: 32, learning_rate: 1e-2, seed: 7, ..TrainConfig::default() }
}

#[test]
fn training_lowers_the_loss_and_raises_positive_similarity() {
    let _serial = torch_lock();
    let (a, b) = synthetic_pair(96, 1);
    let pairs = [TrainingPair::new(a, b, None).unwrap()];
    let mut m = model(tiny_net(1), tiny_net(1), 3);
    let report = train(&mut m, &pairs, &TrainConfig { optimizer: comir::model::train::OptimizerKind::Adam, learning_rate: 3e-3, ..quick_config(120) }, None, None, &Silent).unwrap();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (first, last) = (mean(&report.losses[..15]), mean(&report.losses[report.losses.len() - 15..]));
    assert!(last < first - 0.1, "loss {first} → {last}");
    let p = &report.positive_probability;
    let (p0, p1) = (mean(&p[..15]), mean(&p[p.len() - 15..]));
    assert!(p1 > p0 + 0.05, "probability of the positive among all candidates {p0} → {p1}");
    assert_eq!(m.header.steps_trained, 120);
}

#[test]
fn training_is_reproducible_with_a_seed_and_stops_on_cancel() {
    let _serial = torch_lock();
    let (a, b) = synthetic_pair(64, 2);
    let pairs = [TrainingPair::new(a, b, None).unwrap()];
    let run = || {
        let mut m = model(tiny_net(1), tiny_net(1), 5);
        train(&mut m, &pairs, &quick_config(3), None, None, &Silent).unwrap().losses
    };
    assert_eq!(run(), run());
    let cancel = CancelFlag::default();
    cancel.cancel();
    let mut m = model(tiny_net(1), tiny_net(1), 5);
    let report = train(&mut m, &pairs, &quick_config(3), None, None, &cancel).unwrap();
    assert!(report.cancelled && report.losses.is_empty());
}

/// The registration check runs at every checkpoint and at the end, on the model as trained
/// so far, and its sentences are kept in the report.
#[test]
fn the_check_runs_at_every_checkpoint_and_at_the_end() {
    let _serial = torch_lock();
    let (a, b) = synthetic_pair(64, 2);
    let pairs = [TrainingPair::new(a, b, None).unwrap()];
    let mut m = model(tiny_net(1), tiny_net(1), 5);
    let check = |model: &Model, step: u64| -> comir::Result<Checked> { Ok(Checked { sentence: format!("{step} = {}", model.header.steps_trained), good: false, rank: step as f64, record: None }) };
    let report = train(&mut m, &pairs, &TrainConfig { checkpoint_every: 2, ..quick_config(5) }, None, Some(&check), &Silent).unwrap();
    let steps: Vec<u64> = report.checks.iter().map(|(s, _)| *s).collect();
    assert_eq!(steps, vec![2, 4, 5]);
    assert_eq!(report.checks[1].1, "4 = 4");
    assert!(!report.stopped_when_good);
}

/// Good checks in a row stop training early (two by default: the second checkpoint), unless
/// asked not to.
#[test]
fn training_stops_after_two_good_checks_in_a_row_when_asked() {
    let _serial = torch_lock();
    let (a, b) = synthetic_pair(64, 2);
    let pairs = [TrainingPair::new(a, b, None).unwrap()];
    // Good from step 4 on: checks at 2 (bad), 4 (good), 6 (good) → stop at 6 of 10.
    let check = |_: &Model, step: u64| -> comir::Result<Checked> { Ok(Checked { sentence: String::new(), good: step >= 4, rank: step as f64, record: None }) };
    let config = TrainConfig { checkpoint_every: 2, ..quick_config(10) };
    let mut m = model(tiny_net(1), tiny_net(1), 5);
    let report = train(&mut m, &pairs, &config, None, Some(&check), &Silent).unwrap();
    assert!(report.stopped_when_good);
    assert_eq!((m.header.steps_trained, report.losses.len()), (6, 6));
    // One good check is enough when asked for one: stop at 4.
    let mut m = model(tiny_net(1), tiny_net(1), 5);
    let report = train(&mut m, &pairs, &TrainConfig { good_checks_to_stop: 1, ..config.clone() }, None, Some(&check), &Silent).unwrap();
    assert!(report.stopped_when_good && report.good_checks_in_a_row == 1 && m.header.steps_trained == 4);
    let mut m = model(tiny_net(1), tiny_net(1), 5);
    let report = train(&mut m, &pairs, &TrainConfig { good_checks_to_stop: 0, ..config }, None, Some(&check), &Silent).unwrap();
    assert!(!report.stopped_when_good && m.header.steps_trained == 10);
}

/// A run whose last check is worse than an earlier one ends with the best-checked weights
/// (and says so); a run whose last check is its best keeps the last weights.
#[test]
fn training_returns_to_the_best_checked_weights() {
    use comir::model::store::CheckRecord;
    let _serial = torch_lock();
    let (a, b) = synthetic_pair(64, 2);
    let pairs = [TrainingPair::new(a, b, None).unwrap()];
    let weights = |m: &Model| -> Vec<f32> {
        let mut v: Vec<(String, tch::Tensor)> = m.var_store(0).variables().into_iter().collect();
        v.sort_by(|x, y| x.0.cmp(&y.0));
        v.iter().flat_map(|(_, t)| Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()).collect()
    };
    // Checks at 2, 4, 6 (the end); the one at 4 is the best.
    let at_step_4 = std::cell::RefCell::new(Vec::new());
    let check = |m: &Model, step: u64| -> comir::Result<Checked> {
        if step == 4 {
            *at_step_4.borrow_mut() = weights(m);
        }
        let r = CheckRecord { step, registered: if step == 4 { 6 } else { 3 }, crops: 6, median_error_px: 0.5 };
        Ok(Checked { sentence: r.to_string(), good: false, rank: r.rank(), record: Some(r) })
    };
    let config = TrainConfig { checkpoint_every: 2, ..quick_config(6) };
    let mut m = model(tiny_net(1), tiny_net(1), 5);
    let report = train(&mut m, &pairs, &config, None, Some(&check), &Silent).unwrap();
    assert_eq!(report.returned_to, Some(4));
    assert_eq!(m.header.steps_trained, 4);
    // The header keeps the check of the weights the model holds (registration reads it).
    assert_eq!(m.header.check.as_ref().map(|c| (c.step, c.registered)), Some((4, 6)));
    assert_eq!(weights(&m), *at_step_4.borrow(), "the model does not hold the weights of step 4");
    // Improving checks: the last weights stay.
    let rising = |_: &Model, step: u64| -> comir::Result<Checked> {
        let r = CheckRecord { step, registered: step as usize, crops: 6, median_error_px: 0.5 };
        Ok(Checked { sentence: r.to_string(), good: false, rank: r.rank(), record: Some(r) })
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.safetensors");
    let mut m = model(tiny_net(1), tiny_net(1), 5);
    let report = train(&mut m, &pairs, &config, None, Some(&rising), &Silent).unwrap();
    assert_eq!((report.returned_to, m.header.steps_trained), (None, 6));
    m.save(&file).unwrap();
    let loaded = Model::load(&file, tch::Device::Cpu).unwrap().header.check;
    assert_eq!(loaded, Some(CheckRecord { step: 6, registered: 6, crops: 6, median_error_px: 0.5 }), "the check travels with the model file");
}

fn rot90_chw(x: &Array3<f32>) -> Array3<f32> {
    // counter-clockwise as torch.rot90(k=1, dims=[1, 2]): out[c, i, j] = x[c, j, W-1-i]
    let (c, h, w) = x.dim();
    Array3::from_shape_fn((c, w, h), |(ch, i, j)| x[[ch, j, w - 1 - i]])
}

fn equivariance_error(m: &Model, x: &Array3<f32>) -> f64 {
    let opts = InferOptions { tile: Some(1024), ..Default::default() };
    let direct = rot90_chw(&represent(m, 0, x, &opts, &Silent).unwrap());
    let rotated = represent(m, 0, &rot90_chw(x), &opts, &Silent).unwrap();
    // Relative to the spread of the representation (a constant offset says nothing).
    let mean = direct.iter().map(|&v| v as f64).sum::<f64>() / direct.len() as f64;
    let scale = direct.iter().map(|&v| (v as f64 - mean).abs()).sum::<f64>() / direct.len() as f64;
    direct.iter().zip(rotated.iter()).map(|(p, q)| (p - q).abs() as f64).sum::<f64>() / direct.len() as f64 / scale.max(1e-12)
}

#[test]
fn trained_networks_are_more_rotation_equivariant_than_untrained_ones() {
    let _serial = torch_lock();
    let (a, b) = synthetic_pair(96, 3);
    let probe = synthetic_pair(64, 4).0;
    let pairs = [TrainingPair::new(a, b, None).unwrap()];
    let mut m = model(tiny_net(1), tiny_net(1), 11);
    let before = equivariance_error(&m, &probe);
    train(&mut m, &pairs, &TrainConfig { optimizer: comir::model::train::OptimizerKind::Adam, learning_rate: 3e-3, ..quick_config(300) }, None, None, &Silent).unwrap();
    let after = equivariance_error(&m, &probe);
    assert!(after < before * 0.9, "relative equivariance error {before:.4} → {after:.4}");
}

#[test]
fn tiled_inference_equals_whole_image_inference() {
    let _serial = torch_lock();
    let m = model(NetConfig::small(1, 2), NetConfig::small(1, 2), 13);
    // Not multiples of 16 (the padding), and larger than two margins of the receptive field:
    // 100-pixel cores (96 on the grid) ask for windows of 288², five down and three across
    // (windows between the edge ones have margins on both sides). A smaller image would run
    // as one window whatever tile is asked for, and prove nothing about tiling.
    let (x, _) = synthetic_pair(400, 5);
    let x = x.slice(ndarray::s![.., .., ..330]).to_owned();
    let whole = represent(&m, 0, &x, &InferOptions { tile: Some(4096), ..Default::default() }, &Silent).unwrap();
    let radius = m.net(0).config().receptive_radius();
    let options = InferOptions { tile: Some(100), margin: Some(radius), ..Default::default() };
    let plan = plan_tiles(m.net(0).config(), 400, 336, false, &options);
    assert_eq!((plan.window, plan.margin), ((288, 288), 128));
    assert_eq!((axis_windows(400, 288, 128, 16).len(), axis_windows(336, 288, 128, 16).len()), (5, 3));
    let tiled = represent(&m, 0, &x, &options, &Silent).unwrap();
    assert_eq!(whole.dim(), (2, 400, 330));
    // The default runs such a small image as one window: the same values again.
    let default = represent(&m, 0, &x, &InferOptions::default(), &Silent).unwrap();
    assert_eq!(default, whole);
    let worst = whole.iter().zip(tiled.iter()).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "largest difference {worst}");
    // Without margins the values near the seams change: the comparison above can tell.
    let short = represent(&m, 0, &x, &InferOptions { margin: Some(0), ..options }, &Silent).unwrap();
    let worst_short = whole.iter().zip(short.iter()).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
    assert!(worst_short > 1e-2, "largest difference with a short margin {worst_short} (with the receptive field: {worst})");
}

#[test]
fn save_then_load_gives_identical_outputs() {
    let _serial = torch_lock();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let m = model(NetConfig::small(3, 1), NetConfig::small(1, 1), 17);
    m.save(&path).unwrap();
    let back = Model::load(&path, Device::Cpu).unwrap();
    assert_eq!(back.header, m.header);
    let (x, _) = synthetic_pair(40, 6);
    let rgb = ndarray::concatenate(ndarray::Axis(0), &[x.view(), x.view(), x.view()]).unwrap();
    let o = InferOptions::default();
    assert_eq!(represent(&m, 0, &rgb, &o, &Silent).unwrap(), represent(&back, 0, &rgb, &o, &Silent).unwrap());
    assert_eq!(represent(&m, 1, &x, &o, &Silent).unwrap(), represent(&back, 1, &x, &o, &Silent).unwrap());
    let err = represent(&back, 1, &rgb, &o, &Silent).unwrap_err().to_string();
    assert!(err.contains("3 channel(s)") && err.contains("expects 1"), "{err}");
}

#[test]
fn broken_model_files_give_clear_errors() {
    let _serial = torch_lock();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("m.safetensors");
    model(tiny_net(1), tiny_net(1), 19).save(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8(bytes[8..8 + header_len].to_vec()).unwrap();
    let with_header = |h: String| {
        let mut v = (h.len() as u64).to_le_bytes().to_vec();
        v.extend(h.as_bytes());
        v.extend(&bytes[8 + header_len..]);
        v
    };
    let newer = header.replace("\\\"version\\\":1", "\\\"version\\\":9");
    assert_ne!(newer, header);
    let foreign = header.replace("\\\"format\\\":\\\"comir-model\\\"", "\\\"format\\\":\\\"other\\\"");
    let mut corrupted = bytes.clone();
    let last = corrupted.len() - 3;
    corrupted[last..].copy_from_slice(&[0xff, 0xff, 0xff]); // a NaN in the last weight
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", bytes[..bytes.len() - 100].to_vec(), "not a complete safetensors"),
        ("empty", vec![], "not a complete safetensors"),
        ("text", b"hello, I am not a model".to_vec(), "not a complete safetensors"),
        ("newer", with_header(newer), "newer than this CoMIR"),
        ("foreign", with_header(foreign), "format is not"),
        ("corrupted", corrupted, "NaN"),
    ];
    for (name, content, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let err = Model::load(&path, Device::Cpu).err().expect(name).to_string();
        assert!(err.contains(expected) && err.contains(name), "{name}: {err}");
    }
}

/// The estimate both front ends show before training: a measured, positive time per step; an
/// unknown network size is refused like training refuses it.
#[test]
fn training_time_per_step_is_measured_for_the_chosen_network() {
    let config = comir::model::train::TrainConfig { batch_size: 2, patch_size: 32, ..Default::default() };
    let s = comir::training_seconds_per_step(&comir::NewModel::default(), [1, 3], &config).unwrap();
    assert!(s.is_finite() && s > 0.0, "{s}");
    let huge = comir::NewModel { size: "huge".into(), ..Default::default() };
    assert!(comir::training_seconds_per_step(&huge, [1, 1], &config).is_err());
    assert_eq!(comir::progress::duration_words(42.4), "42 s");
    assert_eq!(comir::progress::duration_words(600.0), "10 min");
    assert_eq!(comir::progress::duration_words(7200.0), "2.0 h");
}

/// The network an image goes through is chosen in one place for both front ends: the named
/// modality, or the one whose input channels fit (Fiji's Compute CoMIR without a modality).
#[test]
fn the_network_side_is_the_named_modality_or_the_one_whose_channels_fit() {
    let new = comir::NewModel::default();
    let model = comir::model::store::Model::new(
        [
            comir::model::store::Modality { name: "gray".into(), preprocess: new.preprocess[0], net: comir::model::config::NetConfig::preset("small", 1, 1).unwrap() },
            comir::model::store::Modality { name: "rgb".into(), preprocess: new.preprocess[1], net: comir::model::config::NetConfig::preset("small", 3, 1).unwrap() },
        ],
        tch::Device::Cpu,
    )
    .unwrap();
    assert_eq!(comir::network_side(&model, None, 3).unwrap(), 1);
    assert_eq!(comir::network_side(&model, None, 1).unwrap(), 0);
    assert_eq!(comir::network_side(&model, Some("rgb"), 1).unwrap(), 1);
    assert!(comir::network_side(&model, None, 2).unwrap_err().to_string().contains("2-channel"));
    let image = comir::Image::zeros(1, 3, 32, 32, comir::image::PixelType::U8).unwrap();
    let y = comir::represent_image(&model, image, None, &Default::default(), &comir::progress::Silent).unwrap();
    assert_eq!(y.dim(), (1, 32, 32));
}

/// Fine-tuning starts from another model's weights: the same outputs as that model at step 0,
/// also for an RGB image whose first convolution was adapted from a grey one (a grey image given
/// as R = G = B meets the same filter), and a clear refusal for another architecture.
#[test]
fn a_model_started_from_pretrained_weights_computes_what_they_compute() {
    let _serial = torch_lock();
    let pretrained = model(NetConfig::small(1, 1), NetConfig::small(1, 1), 21);
    let other = model(NetConfig::small(1, 1), NetConfig::small(1, 1), 22);
    let started = Model::starting_from([modality("grey", NetConfig::small(1, 1)), modality("rgb", NetConfig::small(3, 1))], &pretrained, Device::Cpu).unwrap();
    assert_eq!(started.header.steps_trained, 0);
    let (x, _) = synthetic_pair(48, 9);
    let rgb = ndarray::concatenate(ndarray::Axis(0), &[x.view(), x.view(), x.view()]).unwrap();
    let o = InferOptions::default();
    let want_a = represent(&pretrained, 0, &x, &o, &Silent).unwrap();
    assert_eq!(represent(&started, 0, &x, &o, &Silent).unwrap(), want_a);
    let want_b = represent(&pretrained, 1, &x, &o, &Silent).unwrap();
    let got_b = represent(&started, 1, &rgb, &o, &Silent).unwrap();
    let diff = (&got_b - &want_b).iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(diff < 1e-4, "adapted RGB filter differs by {diff}");
    // Not a copy of just any model: another seed's networks compute something else.
    assert_ne!(represent(&other, 0, &x, &o, &Silent).unwrap(), want_a);
    let err = Model::starting_from([modality("A", NetConfig::small(1, 3)), modality("B", NetConfig::small(1, 3))], &pretrained, Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("other networks"), "{err}");
}

/// Both front ends fine-tune a model file when told to (`--start FILE`, the Fiji dialog's Start
/// field) and say so; random weights by default; a missing file or other networks are clear
/// errors.
#[test]
fn new_models_start_from_random_weights_or_the_model_file_given() {
    let _serial = torch_lock();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = synthetic_pair(96, 4);
    let image = |p: Array3<f32>| comir::image::Image { data: p.insert_axis(ndarray::Axis(0)), pixel_type: comir::image::PixelType::F32, calibration: Default::default() };
    let pairs = [(image(a), image(b))];
    let config = TrainConfig { steps: 1, batch_size: 2, patch_size: 32, checkpoint_every: 0, ..Default::default() };
    let out = dir.path().join("m.safetensors");
    let train_with = |new: comir::NewModel| comir::train_model(&pairs, None, &new, None, &config, &out, None, &Silent).map(|(m, r)| (comir::train_summary(&out, &m, &r, 1), m));
    let (summary, random) = train_with(comir::NewModel::default()).unwrap();
    assert!(!summary.contains("started from"), "{summary}");
    assert_eq!(random.header.provenance.started_from, None);
    // The model file keeps its last check, and the summary warns when that check missed crops
    // (its registrations will not be flagged PASS).
    let c = random.header.check.clone().expect("a 96² pair is checked");
    assert_eq!((c.step, c.crops), (1, 6));
    assert_eq!(Model::load(&out, Device::Cpu).unwrap().header.check, Some(c.clone()));
    assert_eq!(summary.contains("will not be flagged PASS"), c.registered < c.crops, "{summary}");
    let start = dir.path().join("start.safetensors");
    random.save(&start).unwrap();
    let new = comir::NewModel { start: start.display().to_string().parse().unwrap(), ..Default::default() };
    let (summary, tuned) = train_with(new).unwrap();
    assert!(summary.contains(&format!("started from {}", start.display())), "{summary}");
    assert_eq!(Model::load(&out, Device::Cpu).unwrap().header.provenance.started_from, tuned.header.provenance.started_from);
    let missing = comir::NewModel { start: comir::Start::From(dir.path().join("nope.safetensors")), ..Default::default() };
    let err = train_with(missing).err().unwrap().to_string();
    assert!(err.contains("nope.safetensors"), "{err}");
    let other = comir::NewModel { start: comir::Start::From(start.clone()), channels: 3, ..Default::default() };
    let err = train_with(other).err().unwrap().to_string();
    assert!(err.contains("other networks"), "{err}");
    assert_eq!("random".parse::<comir::Start>().unwrap(), comir::Start::Random);
}
