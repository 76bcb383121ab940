//! `comir`: the command-line tool over the library. One subcommand per job.
#![deny(clippy::unwrap_used, clippy::expect_used)]
use clap::{Args, Parser, Subcommand};
use comir::image::io::{read_image, write_image, write_tiff};
use comir::image::preview::write_preview_png;
use comir::image::{stain, Image, PixelType};
use comir::model::infer::InferOptions;
use comir::model::preprocess::Preprocess;
use comir::model::store::Model;
#[cfg(feature = "torch")]
use comir::model::train::OptimizerKind;
use comir::model::train::TrainConfig;
use comir::progress::{Monitor, Progress};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "comir", version, about = "Multimodal image registration with CoMIR")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Resample an image through a transform file (fixed → moving, as written by registration)
    /// or BigWarp landmarks (CSV or JSON; they need --fixed).
    Apply {
        /// Transform JSON (format "comir-transform"), or BigWarp landmarks (.csv / .json).
        #[arg(long)]
        transform: PathBuf,
        /// The fixed (target) image: its size and pixel size place BigWarp landmarks (given in
        /// calibrated units) and become the output grid (a CoMIR file names its own).
        #[arg(long)]
        fixed: Option<PathBuf>,
        /// Image to warp (TIFF or PNG): the moving image.
        #[arg(long)]
        input: PathBuf,
        /// Output image; .tif keeps the pixel type, .png writes an 8-bit preview.
        #[arg(long)]
        output: PathBuf,
        /// Output size WIDTHxHEIGHT (default: the fixed size in the transform file, else the input size).
        #[arg(long, value_parser = parse_size)]
        size: Option<(usize, usize)>,
        /// Also write an 8-bit PNG preview of the result here.
        #[arg(long)]
        preview: Option<PathBuf>,
    },
    /// Train a CoMIR model (two networks) on aligned image pairs.
    Train(TrainArgs),
    /// Compute the representation (CoMIR) of an image with one of a model's networks.
    Represent {
        #[arg(long)]
        model: PathBuf,
        /// Which network: a modality name of the model, or a / b.
        #[arg(long)]
        modality: String,
        #[arg(long)]
        input: PathBuf,
        /// Float TIFF output.
        #[arg(long)]
        output: PathBuf,
        /// Also write an 8-bit PNG preview.
        #[arg(long)]
        preview: Option<PathBuf>,
        /// Core tile size in pixels (memory grows with its square). Default: the whole image
        /// in one pass if that fits the 2 GiB memory budget, else the fewest tiles that do.
        #[arg(long)]
        tile: Option<usize>,
    },
    /// Split an RGB bright-field image into stain channels (hematoxylin, eosin, DAB).
    Unmix {
        #[arg(long)]
        input: PathBuf,
        /// Writes hematoxylin.tif, eosin.tif and dab.tif (32-bit) here.
        #[arg(long)]
        out_dir: PathBuf,
    },
    /// Make a synthetic multimodal pair from one image (for evaluation): a.tif is the image
    /// (mild blur, noise), b.tif a random non-monotonic map of it mixed with its edges
    /// (more blur, more noise); the two are exactly aligned.
    Synth {
        #[arg(long)]
        input: PathBuf,
        /// Writes a.tif and b.tif (32-bit) here.
        #[arg(long)]
        out_dir: PathBuf,
        /// The intensity map, blur and noise are drawn from this seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Register a moving image onto a fixed one (with a model: via CoMIRs; without: MI).
    Register(RegisterArgs),
    /// Register every pair of a folder with one model; a summary CSV and per-pair outputs.
    Batch(BatchArgs),
    /// Evaluate registration on an aligned pair with random known transforms (MultiRegEval protocol).
    Eval(EvalArgs),
    /// Print versions and devices, and check that libtorch computes.
    Info,
}

/// The images to register (or evaluate on) and the model, shared by `register` and `eval`.
#[derive(Args)]
struct PairArgs {
    /// CoMIR model (.safetensors); without it the raw images are registered by mutual information.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Image of the fixed modality.
    #[arg(long)]
    fixed: PathBuf,
    /// Image of the moving modality (for eval: aligned with the fixed one).
    #[arg(long)]
    moving: PathBuf,
}

/// How to register, shared by `register` and `batch` (defaults: `comir::params::RegisterParams`).
#[derive(Args)]
struct MethodArgs {
    /// auto | sift | ncc | amd | mi (auto: every candidate that applies, the most convincing kept)
    #[arg(long, default_value_t = comir::params::RegisterParams::default().method)]
    method: String,
    /// rigid | similarity | affine | translation
    #[arg(long, default_value_t = comir::params::RegisterParams::default().transform)]
    transform: String,
    /// Only search small rotations (faster when the images are roughly aligned).
    #[arg(long)]
    small_rotation: bool,
}

impl MethodArgs {
    fn options(&self) -> comir::Result<comir::register::pipeline::RegisterOptions> {
        comir::params::RegisterParams { method: self.method.clone(), transform: self.transform.clone(), any_rotation: !self.small_rotation }.options()
    }
}

#[derive(Args)]
struct RegisterArgs {
    #[command(flatten)]
    pair: PairArgs,
    #[command(flatten)]
    how: MethodArgs,
    /// Output folder: transform.json, BigWarp landmarks, warped.tif, overlay.png, report.json.
    #[arg(long)]
    out: PathBuf,
    /// For stacks (several slices): current (the first slice) | max-projection (the maximum
    /// over the slices). warped.tif always has every slice, moved by the one transform.
    #[arg(long, default_value = comir::params::STACK_PLANES[0])]
    stack: String,
    /// Print where the time went (load, CoMIRs, each method, writing); report.json has it too.
    #[arg(long)]
    verbose: bool,
}

#[derive(Args)]
struct BatchArgs {
    /// Folder with the pairs: NAME<fixed-suffix> and NAME<moving-suffix>.
    #[arg(long)]
    dir: PathBuf,
    /// File-name ending of the fixed images (e.g. _he.tif).
    #[arg(long)]
    fixed_suffix: String,
    /// File-name ending of the moving images (e.g. _shg.tif).
    #[arg(long)]
    moving_suffix: String,
    /// CoMIR model (.safetensors); without it the raw images are registered by mutual information.
    #[arg(long)]
    model: Option<PathBuf>,
    #[command(flatten)]
    how: MethodArgs,
    /// Output folder: NAME/ with the files of `comir register` per pair, and summary.csv.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct EvalArgs {
    #[command(flatten)]
    pair: PairArgs,
    /// Draw patches from this region only: X,Y,WIDTH,HEIGHT (e.g. the part not used for training).
    #[arg(long, value_parser = parse_region)]
    region: Option<[usize; 4]>,
    #[arg(long, default_value_t = 192)]
    patch: usize,
    /// Random transforms per difficulty level.
    #[arg(long, default_value_t = 10)]
    per_level: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Writes eval.csv, summary.txt and eval.png (success rate per level) here.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct TrainArgs {
    /// Images of modality A (one per pair).
    #[arg(long = "a", required = true, num_args = 1..)]
    a: Vec<PathBuf>,
    /// Images of modality B, aligned with those of A, in the same order.
    #[arg(long = "b", required = true, num_args = 1..)]
    b: Vec<PathBuf>,
    /// Model file to write (.safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Continue training this model instead of starting afresh.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// What a new model's networks start from: random, or a model file to fine-tune (a
    /// model of similar modalities, with the same network size and representation channels;
    /// any image channels). The new model keeps its own names and preprocessing
    #[arg(long, default_value_t = comir::NewModel::default().start)]
    start: comir::Start,
    #[arg(long, default_value = "A")]
    name_a: String,
    #[arg(long, default_value = "B")]
    name_b: String,
    /// scale | log | percentile
    #[arg(long, default_value_t = Preprocess::default())]
    preprocess_a: Preprocess,
    #[arg(long, default_value_t = Preprocess::default())]
    preprocess_b: Preprocess,
    /// Network size: small (CPU-friendly) or paper.
    #[arg(long, default_value_t = comir::NewModel::default().size)]
    size: String,
    /// Channels of the representation.
    #[arg(long, default_value_t = comir::NewModel::default().channels)]
    channels: usize,
    /// The most steps: training stops earlier once the checks say the model is good (see
    /// --all-steps).
    #[arg(long, default_value_t = TrainConfig::default().steps)]
    steps: u64,
    #[arg(long, default_value_t = TrainConfig::default().batch_size)]
    batch: usize,
    #[arg(long, default_value_t = TrainConfig::default().patch_size)]
    patch: usize,
    /// sgd | adam
    #[arg(long, default_value = "sgd")]
    optimizer: String,
    #[arg(long)]
    lr: Option<f64>,
    /// mse | cosine
    #[arg(long, default_value = "mse")]
    critic: comir::model::loss::Critic,
    #[arg(long, default_value_t = 0.5)]
    tau: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Save every N steps (0: only at the end). At every save the CoMIRs are checked on six
    /// crops of the training pair moved by known transforms ("registers 5/6 test crops").
    #[arg(long, default_value_t = TrainConfig::default().checkpoint_every)]
    checkpoint_every: u64,
    /// Train all --steps even when the checks say the model is good (by default training
    /// stops once --good-checks checks in a row register every crop within a pixel: --steps is
    /// the most a hard pair may take).
    #[arg(long)]
    all_steps: bool,
    /// How many checks in a row must register every crop within a pixel before training
    /// stops by itself.
    #[arg(long, default_value_t = TrainConfig::default().good_checks_to_stop, value_parser = clap::value_parser!(u32).range(1..))]
    good_checks: u32,
    /// Do not rotate each patch by a random multiple of 90° per modality (the C4 equivariance
    /// of the CoMIR paper); for ablations (bench/train_ablation.sh)
    #[arg(long)]
    no_equivariance: bool,
    /// Do not augment the patch pairs (random rotation, flips, blur, intensity jitter); for
    /// ablations (bench/train_ablation.sh)
    #[arg(long)]
    no_augmentation: bool,
    /// Train only on this region of every image: X,Y,WIDTH,HEIGHT (pixels).
    #[arg(long, value_parser = parse_region)]
    region: Option<[usize; 4]>,
}

fn parse_region(s: &str) -> Result<[usize; 4], String> {
    let v: Vec<usize> = s.split(',').map(|p| p.trim().parse::<usize>().map_err(|_| format!("'{p}' is not a whole number"))).collect::<Result<_, _>>()?;
    match v[..] {
        [x, y, w, h] if w > 0 && h > 0 => Ok([x, y, w, h]),
        _ => Err("expected X,Y,WIDTH,HEIGHT with positive width and height".into()),
    }
}


fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or("expected WIDTHxHEIGHT, e.g. 512x512")?;
    let parse = |v: &str| v.trim().parse::<usize>().map_err(|_| format!("'{v}' is not a whole number"));
    let (w, h) = (parse(w)?, parse(h)?);
    if w == 0 || h == 0 {
        return Err("width and height must be positive".into());
    }
    Ok((w, h))
}

/// A terminal progress bar as the library's progress monitor.
struct Bar(ProgressBar);
impl Bar {
    #[expect(clippy::expect_used, reason = "the progress template is a constant")]
    fn new(total: u64) -> Bar {
        let bar = ProgressBar::new(total);
        bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} [{elapsed}<{eta}]").expect("valid template"));
        Bar(bar)
    }
}
impl Monitor for Bar {
    fn report(&self, p: &Progress) {
        self.0.set_length(p.total);
        self.0.set_position(p.done);
        self.0.set_message(p.message.clone());
    }
}

fn refuse_overwrite(output: &std::path::Path, inputs: &[&PathBuf]) -> comir::Result<()> {
    if inputs.iter().any(|i| i.as_path() == output) {
        return Err(comir::Error::Parameter(format!("the output {} must not overwrite an input", output.display())));
    }
    Ok(())
}

#[cfg(feature = "torch")]
fn run_train(args: TrainArgs) -> comir::Result<()> {
    if args.a.len() != args.b.len() {
        return Err(comir::Error::Training(format!("{} image(s) for A but {} for B: give aligned pairs", args.a.len(), args.b.len())));
    }
    let inputs: Vec<&PathBuf> = args.a.iter().chain(&args.b).collect();
    refuse_overwrite(&args.out, &inputs)?;
    let resume = args.resume.as_ref().map(|p| Model::open(p)).transpose()?;
    let pairs = args.a.iter().zip(&args.b).map(|(a, b)| Ok((read_image(a)?, read_image(b)?))).collect::<comir::Result<Vec<_>>>()?;
    let optimizer: OptimizerKind = args.optimizer.parse()?;
    let config = TrainConfig {
        steps: args.steps,
        batch_size: args.batch,
        patch_size: args.patch,
        optimizer,
        learning_rate: args.lr.unwrap_or(if optimizer == OptimizerKind::Adam { 1e-3 } else { 1e-2 }),
        critic: args.critic,
        temperature: args.tau,
        seed: args.seed,
        checkpoint_every: args.checkpoint_every,
        good_checks_to_stop: if args.all_steps { 0 } else { args.good_checks },
        equivariance: !args.no_equivariance,
        augment: if args.no_augmentation { comir::model::augment::AugmentConfig::none() } else { Default::default() },
        ..TrainConfig::default()
    };
    let new = comir::NewModel { names: [args.name_a, args.name_b], preprocess: [args.preprocess_a, args.preprocess_b], size: args.size, channels: args.channels, start: args.start };
    eprintln!("training on {} pair(s), {}", pairs.len(), comir::model::device::runtime_info());
    if let (None, Some((a, b))) = (&resume, pairs.first()) {
        eprintln!("{}", comir::training_estimate(&new, [a.channels(), b.channels()], &config)?);
    }
    let bar = Bar::new(config.steps);
    let command = Some(std::env::args().collect::<Vec<_>>().join(" "));
    let (model, report) = comir::train_model(&pairs, args.region.map(comir::Region::rect).as_ref(), &new, resume, &config, &args.out, command, &bar)?;
    bar.0.finish();
    eprintln!("{}", comir::train_summary(&args.out, &model, &report, config.steps));
    if report.stopped_when_good {
        eprintln!("(--all-steps trains on)");
    }
    Ok(())
}

type Pair = (Image, Image, Option<Model>, Option<(usize, usize)>);

/// Fixed and moving image, the model if any, and which network each image goes through.
fn load_pair(args: &PairArgs) -> comir::Result<Pair> {
    let (fixed, moving) = (read_image(&args.fixed)?, read_image(&args.moving)?);
    let model = args.model.as_ref().map(|p| Model::open(p)).transpose()?;
    let sides = model.as_ref().map(|m| comir::model_sides(m, &fixed, &moving)).transpose()?;
    Ok((fixed, moving, model, sides))
}

/// `start_up`: the process's start-up before `main` (see [`start_up_seconds`]), a step of
/// `register`'s profile.
fn run(cli: Cli, start_up: Option<f64>) -> comir::Result<()> {
    match cli.command {
        Command::Apply { transform, fixed, input, output, size, preview } => {
            refuse_overwrite(&output, &[&input])?;
            let image = read_image(&input)?;
            let fixed_grid = fixed.map(|f| -> comir::Result<_> {
                let f = read_image(&f)?;
                Ok(comir::export::transform_file::ImageGrid { width: f.width(), height: f.height(), calibration: Some(f.calibration) })
            }).transpose()?;
            // The same reading rule as Fiji's Apply Transform: CoMIR files and BigWarp landmarks.
            let transform = comir::export::transform_file::read_any(&transform, fixed_grid.as_ref(), &image.calibration)?;
            let warped = comir::apply_transform(&image, &transform, size)?;
            write_image(&output, &warped)?;
            if let Some(preview) = preview {
                write_preview_png(&preview, &warped)?;
            }
            eprintln!("wrote {} ({}×{}, {} channel(s), {} slice(s))", output.display(), warped.width(), warped.height(), warped.channels(), warped.slices());
            Ok(())
        }
        #[cfg(feature = "torch")]
        Command::Train(args) => run_train(args),
        #[cfg(not(feature = "torch"))]
        Command::Train(_) | Command::Info => hand_to_torch(),
        Command::Represent { model, modality, input, output, preview, tile } => {
            refuse_overwrite(&output, &[&input, &model])?;
            let model = Model::open(&model)?;
            let image = read_image(&input)?;
            let calibration = image.calibration.clone();
            // An explicit --tile always tiles; without it the memory budget decides.
            let options = InferOptions { tile, ..Default::default() };
            let bar = Bar::new(1);
            let y = comir::represent_image(&model, image, Some(&modality), &options, &bar)?;
            bar.0.finish_and_clear();
            let out = Image { data: y.insert_axis(ndarray::Axis(0)), pixel_type: PixelType::F32, calibration };
            write_tiff(&output, &out)?;
            if let Some(p) = preview {
                write_preview_png(&p, &out)?;
            }
            eprintln!("wrote {}", output.display());
            Ok(())
        }
        Command::Unmix { input, out_dir } => {
            let hed = stain::separate_hed(&read_image(&input)?)?;
            std::fs::create_dir_all(&out_dir).map_err(|e| comir::Error::Write { path: out_dir.clone(), source: e })?;
            for (c, name) in ["hematoxylin", "eosin", "dab"].iter().enumerate() {
                write_tiff(&out_dir.join(format!("{name}.tif")), &stain::channel(&hed, c))?;
            }
            eprintln!("wrote hematoxylin.tif, eosin.tif, dab.tif to {}", out_dir.display());
            Ok(())
        }
        Command::Synth { input, out_dir, seed } => {
            let (a, b) = comir::image::synthetic::modality_pair(&read_image(&input)?, seed)?;
            std::fs::create_dir_all(&out_dir).map_err(|e| comir::Error::Write { path: out_dir.clone(), source: e })?;
            write_tiff(&out_dir.join("a.tif"), &a)?;
            write_tiff(&out_dir.join("b.tif"), &b)?;
            eprintln!("wrote a.tif, b.tif ({}×{}) to {}", a.width(), a.height(), out_dir.display());
            Ok(())
        }
        Command::Register(a) => {
            let t0 = std::time::Instant::now();
            // Large blocks stay in the heap until this process ends: the library hands its free
            // memory back after each registration (`HeapReuse`, for Fiji's long-lived process),
            // which here, just before the outputs are written and the process ends, only costs
            // (1 MP: `malloc_trim` ~30 ms, then the writing faulted fresh pages in).
            let _heap = comir::model::heap::HeapReuse::begin();
            let (fixed, moving, model, sides) = load_pair(&a.pair)?;
            let load = t0.elapsed().as_secs_f64();
            let options = a.how.options()?;
            let project = match comir::params::StackPlanes::parse(&a.stack)? {
                comir::params::StackPlanes::Current => false,
                comir::params::StackPlanes::MaxProjection => true,
                comir::params::StackPlanes::EveryPlane => return Err(comir::Error::Parameter("--stack every-plane is offered by the Fiji command; for files, save each plane as its own image and use `comir batch`".into())),
            };
            for (image, path) in [(&fixed, &a.pair.fixed), (&moving, &a.pair.moving)] {
                if image.slices() > 1 {
                    eprintln!("{} has {} slices: registering {}", path.display(), image.slices(), if project { "their maximum projection" } else { "the first (use --stack max-projection for all)" });
                }
            }
            let projected = project.then(|| (fixed.max_projection(), moving.max_projection()));
            let (fixed_used, moving_used) = projected.as_ref().map_or((&fixed, &moving), |(f, m)| (f, m));
            let bar = Bar::new(1);
            let (mut reg, comirs) = comir::register(fixed_used, moving_used, model.as_ref().zip(sides), &options, &bar)?;
            bar.0.finish_and_clear();
            reg.timings.insert(0, ("load (images, model)".into(), load));
            // The process's start-up is a step of this command's profile too (in Fiji and
            // `comir batch` it is paid once, so it is not a step of the library's).
            if let Some(seconds) = start_up {
                reg.timings.insert(0, (START_UP.into(), seconds));
            }
            let inputs = serde_json::json!({"fixed": a.pair.fixed, "moving": a.pair.moving, "model": a.pair.model});
            let t1 = std::time::Instant::now();
            comir::export::outputs::write_registration(&a.out, &fixed, &moving, &reg, comirs.as_ref(), inputs)?;
            if a.verbose {
                for (step, seconds) in reg.timings.iter().chain([("write outputs".to_string(), t1.elapsed().as_secs_f64())].iter()) {
                    eprintln!("{step:>32}: {seconds:8.3} s");
                }
                eprintln!("{:>32}: {:8.3} s", "total", t0.elapsed().as_secs_f64() + start_up.unwrap_or(0.0));
            }
            let o = comir::Outcome::of_registration(&reg, t0.elapsed().as_secs_f64(), &moving.calibration);
            println!(
                "{:?} registration ({}): rotation {:.2}°, scale {:.4}, translation ({:.2}, {:.2}) px; quality {} ({} {:.3}, overlap {:.0}%{}); outputs in {}",
                o.kind, o.method, o.rotation_degrees, o.scale, o.translation_px[0], o.translation_px[1], if o.passed { "PASS" } else { "FAIL" }, o.measure, o.score, o.overlap.unwrap_or(f64::NAN) * 100.0,
                if o.passed { String::new() } else { format!(": {}", o.reason) }, a.out.display()
            );
            if !o.choice.is_empty() {
                println!("auto {}", o.choice);
            }
            if !o.refinement.is_empty() {
                println!("{}", o.refinement);
            }
            if o.binning > 1 {
                eprintln!("note: registered as {0}×{0} binned copies (the pair is too large for working memory at full size); the transform is in full-resolution pixels", o.binning);
            }
            Ok(())
        }
        Command::Batch(a) => {
            // The heap is not kept across pairs (as `register` keeps it): each pair's memory
            // check reads the memory the system has available, which a heap kept from the pair
            // before would lower for the next.
            let model = a.model.as_ref().map(|p| Model::open(p)).transpose()?;
            let bar = Bar::new(1);
            let o = comir::batch::run(&a.dir, &a.fixed_suffix, &a.moving_suffix, &a.out, model.as_ref(), &a.how.options()?, &bar)?;
            bar.0.finish_and_clear();
            println!("{} pair(s): {} pass, {} FAIL, {} error; summary in {}", o.pass + o.fail + o.error, o.pass, o.fail, o.error, o.summary_csv_path.display());
            Ok(())
        }
        Command::Eval(a) => {
            let (fixed, moving, model, sides) = load_pair(&a.pair)?;
            use comir::eval::{evaluate, EvalMethod, EvalOptions};
            let options = EvalOptions { patch: a.patch, per_level: a.per_level, region: a.region, methods: vec![EvalMethod::ComirSift, EvalMethod::ComirNcc, EvalMethod::ComirAmd, EvalMethod::ComirMi, EvalMethod::Mi, EvalMethod::Auto], seed: a.seed };
            let bar = Bar::new(5 * a.per_level as u64);
            let rows = evaluate(&fixed, &moving, model.as_ref().zip(sides), &options, &bar)?;
            bar.0.finish_and_clear();
            std::fs::create_dir_all(&a.out).map_err(|e| comir::Error::Write { path: a.out.clone(), source: e })?;
            comir::export::bigwarp::write_text(&a.out.join("eval.csv"), &comir::eval::csv(&rows))?;
            let table = comir::eval::summary(&rows);
            comir::export::bigwarp::write_text(&a.out.join("summary.txt"), &table)?;
            comir::eval_plot::write_png(&a.out.join("eval.png"), &rows)?;
            print!("{table}");
            Ok(())
        }
        #[cfg(feature = "torch")]
        Command::Info => {
            let sum = comir::model::device::conv2d_smoke(tch::Device::Cpu)?;
            println!("{}", comir::model::device::runtime_info());
            println!("conv2d check: {sum} (expected 36)");
            Ok(())
        }
    }
}

/// When the dynamic loader first ran code of ours: an executable's `.preinit_array` runs before
/// the initialisers of the shared libraries it loads, so this comes before libtorch builds its
/// operator registry (0.14–0.25 s of every process here, one core). Without it a profile's steps
/// fell that far short of the command's wall time, and nothing said where it went.
static LOADED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

extern "C" fn note_load_time() {
    // Only a clock read and an atomic store: no allocation, no thread, nothing of libtorch.
    let _ = LOADED.set(std::time::Instant::now());
}

#[cfg(target_os = "linux")]
#[used]
#[link_section = ".preinit_array"]
static NOTE_LOAD_TIME: extern "C" fn() = note_load_time;

/// The time from the loader's first call into this program until now (libtorch's start-up,
/// when called first thing in `main`), where the platform offers the hook (else None).
fn start_up_seconds() -> Option<f64> {
    LOADED.get().map(|t| t.elapsed().as_secs_f64())
}

/// The profile's name for [`start_up_seconds`].
#[cfg(feature = "torch")]
const START_UP: &str = "start-up (libtorch, before main)";
#[cfg(not(feature = "torch"))]
const START_UP: &str = "start-up (before main)";

/// Without libtorch: run `comir-torch` (the build with libtorch, beside this program) with
/// the same arguments in this process's place, for the commands that need libtorch (training,
/// `info`), and for every command where a GPU may be there or this CPU has no AVX2 (libtorch
/// computes the networks then). It prints, writes and exits as `comir` would have.
#[cfg(not(feature = "torch"))]
fn hand_to_torch() -> comir::Result<()> {
    let exe = std::env::current_exe().map_err(|e| comir::Error::Internal(format!("cannot find this program's own path: {e}")))?;
    let torch = exe.with_file_name("comir-torch");
    if !torch.is_file() {
        return Err(comir::Error::Resources(format!("this command needs libtorch, and {} (the build with it) is not there: `make build` makes both", torch.display())));
    }
    use std::os::unix::process::CommandExt;
    let error = std::process::Command::new(&torch).args(std::env::args_os().skip(1)).exec();
    Err(comir::Error::Resources(format!("cannot run {}: {error}", torch.display())))
}

/// Whether every command goes to `comir-torch` (see [`hand_to_torch`]): an NVIDIA driver is
/// loaded (libtorch may run the networks on its GPU), or this CPU has no AVX2.
#[cfg(not(feature = "torch"))]
fn torch_for_everything() -> bool {
    std::path::Path::new("/proc/driver/nvidia/version").exists() || !comir::model::cpu_net::available()
}

fn main() {
    let start_up = start_up_seconds();
    #[cfg(not(feature = "torch"))]
    if torch_for_everything() {
        let error = hand_to_torch().err().map_or(String::new(), |e| e.to_string());
        eprintln!("error: {error}");
        end_process(1)
    }
    comir::model::heap::one_arena_for_this_process();
    let code = match run(Cli::parse(), start_up) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    };
    end_process(code)
}

/// Ends the process without running the C++ static destructors: libtorch's destructors
/// deregister every operator registered at start-up, 60–80 ms of every command (perf of
/// `comir register`, 512², session 34: `torch::jit::deregisterOperator`, `~KernelFunction`
/// after the outputs were written). Nothing is lost by skipping them: every output file was written, synced and
/// renamed into place before `run` returned (`comir::files::write_atomically`), no thread of
/// ours is left writing, and the standard streams are flushed here.
fn end_process(code: u8) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    #[cfg(unix)]
    {
        extern "C" {
            fn _exit(status: std::os::raw::c_int) -> !;
        }
        // SAFETY: _exit ends the process at once; nothing of ours runs after it.
        unsafe { _exit(code.into()) }
    }
    #[cfg(not(unix))]
    std::process::exit(code.into())
}
