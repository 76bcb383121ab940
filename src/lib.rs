//! CoMIR: multimodal image registration through contrastive representations.
//!
//! The data path reads top to bottom: [`image`] in → [`model`] (representation) →
//! [`register`] (transform, warp) → [`export`] (files). The CLI (`src/bin/comir.rs`) and the
//! JNI surface (`src/jni`) are thin layers over the calls below.
// A panic reaches a Fiji user as "internal error": errors are returned, and the few proven
// invariants that remain say why they hold (#[expect(clippy::expect_used, reason = …)]).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
pub mod batch;
pub mod error;
pub mod eval;
pub mod eval_plot;
pub mod export;
pub mod files;
pub mod image;
#[cfg(feature = "torch")]
mod jni;
mod lanes;
pub mod memory;
pub mod model;
pub mod params;
pub mod progress;
pub mod register;
pub mod request;
pub mod rng;
pub mod train_check;

pub use error::{Error, Result};
pub use export::transform_file::TransformFile;
pub use image::region::{Rect, Region};
pub use image::Image;
pub use register::transform::{Affine2, TransformKind};
pub use request::{ApplyRequest, ExportRequest, ImportRequest};

/// The libtorch version this crate is built for (tch 0.26).
pub const LIBTORCH_VERSION: &str = "2.13.0";

/// Apply a transform file to an image: resample it onto the fixed grid. The output size and
/// calibration follow [`apply_plan`].
pub fn apply_transform(image: &Image, transform: &TransformFile, size: Option<(usize, usize)>) -> Result<Image> {
    let plan = apply_plan(transform, (image.width(), image.height()), size);
    let mut out = register::warp::warp_image(image, &transform.fixed_to_moving, plan.width, plan.height)?;
    if let Some(cal) = plan.calibration {
        out.calibration = cal;
    }
    Ok(out)
}

/// Where applying a transform puts its output, the one rule of both front ends: the size is
/// `size` if given, else the fixed image's size recorded in the file, else the input's; the
/// calibration is the fixed image's when the file has it (else the input's is kept).
#[derive(Clone, Debug, serde::Serialize)]
pub struct ApplyPlan {
    /// Fixed → moving, pixels, row-packed: a, b, tx, c, d, ty.
    pub matrix: [f64; 6],
    pub kind: TransformKind,
    pub width: usize,
    pub height: usize,
    pub calibration: Option<image::Calibration>,
}

pub fn apply_plan(transform: &TransformFile, input_size: (usize, usize), size: Option<(usize, usize)>) -> ApplyPlan {
    let (width, height) = size.or(transform.fixed.as_ref().map(|f| (f.width, f.height))).unwrap_or(input_size);
    ApplyPlan {
        matrix: transform.fixed_to_moving.row_packed(),
        kind: transform.kind,
        width,
        height,
        calibration: transform.fixed.as_ref().and_then(|f| f.calibration.clone()),
    }
}



/// Fit the transform of a BigWarp landmarks file and judge it (see [`Outcome::of_landmarks`]).
pub fn import_landmarks(request: &ImportRequest) -> Result<Outcome> {
    request.fixed.check()?;
    request.moving_calibration.check()?;
    let kind = request.kind.as_deref().map(str::trim).filter(|k| !k.is_empty()).map(TransformKind::parse).transpose()?;
    let fixed = request.fixed.calibration.clone().unwrap_or_default();
    let fit = export::bigwarp::import_landmarks(&request.landmarks, kind, &fixed, &request.moving_calibration)?;
    Ok(Outcome::of_landmarks(&fit, request.fixed.width, &request.moving_calibration))
}


/// Write transform.json, the BigWarp landmarks (CSV + JSON) and ngff-affine.json into `dir`
/// for the transform of `request`; returns the paths written.
pub fn export_transform(dir: &std::path::Path, request: &ExportRequest) -> Result<Vec<std::path::PathBuf>> {
    let t = Affine2::from_row_packed(request.matrix);
    t.validate()?;
    request.fixed.check()?;
    request.moving.check()?;
    let tf = TransformFile { kind: TransformKind::parse(&request.kind)?, fixed_to_moving: t, fixed: Some(request.fixed.clone()), moving: Some(request.moving.clone()) };
    export::outputs::write_transform_exports(dir, &tf)
}

/// Read the transform of `request` and plan its output (see [`apply_plan`]).
pub fn plan_apply(request: &ApplyRequest) -> Result<ApplyPlan> {
    request.moving_calibration.check()?;
    if let Some(grid) = &request.fixed {
        grid.check()?;
    }
    if request.size.is_some_and(|[w, h]| w == 0 || h == 0) {
        return Err(Error::Size("the output width and height must be positive".into()));
    }
    let t = export::transform_file::read_any(&request.transform, request.fixed.as_ref(), &request.moving_calibration)?;
    let [iw, ih] = request.input_size;
    Ok(apply_plan(&t, (iw, ih), request.size.map(|[w, h]| (w, h))))
}

use model::store::Model;
use ndarray::{Array2, ArrayView2};
use register::mask::Masks;

/// The CoMIRs of the fixed and the moving image (each on its own image's grid), when a model
/// was used.
pub type Comirs = Option<(Array2<f32>, Array2<f32>)>;
use register::pipeline::{register_planes_masked, Registration, RegisterOptions};

/// The representation (CoMIR) of the first slice of `image` by the model's network `side`,
/// averaged over its channels into one plane.
pub fn comir_plane(model: &Model, side: usize, image: &Image, monitor: &dyn progress::Monitor) -> Result<Array2<f32>> {
    let x = model::preprocess::prepare(image, model.header.modalities[side].preprocess)?;
    let y = model::infer::represent(model, side, &x, &Default::default(), monitor)?;
    y.mean_axis(ndarray::Axis(0)).ok_or_else(|| Error::Internal("a representation without channels".into()))
}

/// Which network of `model` an image of `channels` channels goes through: the named modality,
/// or, with none named, the network whose input channel count fits.
pub fn network_side(model: &Model, modality: Option<&str>, channels: usize) -> Result<usize> {
    match modality {
        Some(name) => model.side(name),
        None => (0..2)
            .find(|&s| model.header.modalities[s].net.in_channels == channels)
            .ok_or_else(|| Error::ModelInput(format!("the model has no network for {channels}-channel images"))),
    }
}

/// The CoMIR of the first slice of `image` (every representation channel) through the network
/// [`network_side`] chooses. Takes the image so that a large input is held once: its samples
/// are dropped once the network input is prepared.
pub fn represent_image(model: &Model, image: Image, modality: Option<&str>, options: &model::infer::InferOptions, monitor: &dyn progress::Monitor) -> Result<ndarray::Array3<f32>> {
    let side = network_side(model, modality, image.channels())?;
    let x = model::preprocess::prepare(&image, model.header.modalities[side].preprocess)?;
    drop(image);
    model::infer::represent(model, side, &x, options, monitor)
}

/// The first slice of `image` as one plane (channels averaged), for registration without a model.
#[expect(clippy::expect_used, reason = "an Image always has at least one channel (checked when it is made)")]
pub fn gray_plane(image: &Image) -> Array2<f32> {
    image.data.index_axis(ndarray::Axis(0), 0).mean_axis(ndarray::Axis(0)).expect("at least one channel")
}

/// Which model network each image goes through: (fixed side, moving side). When the
/// channel counts tell them apart, that decides; otherwise fixed = first modality.
pub fn model_sides(model: &Model, fixed: &Image, moving: &Image) -> Result<(usize, usize)> {
    sides_for_channels(model, fixed.channels(), moving.channels())
}

/// [`model_sides`] from the images' channel counts.
pub fn sides_for_channels(model: &Model, cf: usize, cm: usize) -> Result<(usize, usize)> {
    let want = |s: usize| model.header.modalities[s].net.in_channels;
    if cf == want(0) && cm == want(1) {
        Ok((0, 1))
    } else if cf == want(1) && cm == want(0) {
        Ok((1, 0))
    } else {
        Err(Error::ModelInput(format!(
            "the model expects {} channel(s) for \"{}\" and {} for \"{}\", but the images have {cf} (fixed) and {cm} (moving)",
            want(0), model.header.modalities[0].name, want(1), model.header.modalities[1].name
        )))
    }
}

/// Register `moving` onto `fixed`: with a model through their CoMIRs (SIFT / α-AMD), without
/// one on the raw images (MI). Returns the registration and, with a model, the two CoMIRs
/// (each on its own image's grid).
///
/// Registration happens in physical units: when both images are calibrated and their pixel
/// sizes differ, the moving image is first resampled to the fixed pixel size (see
/// [`register::physical`]), so a `rigid` transform is rigid in µm; the returned transform and
/// matches are in the original pixels of each image.
///
/// Without a model, a pair too large for [`memory::working_budget`] is registered on k × k
/// binned copies (`Registration::binning`), so memory stays bounded whatever the image size;
/// the transform is exact for the binned grids and returned in original pixels.
pub fn register(fixed: &Image, moving: &Image, model: Option<(&Model, (usize, usize))>, options: &RegisterOptions, monitor: &dyn progress::Monitor) -> Result<(Registration, Comirs)> {
    register_masked(fixed, moving, Masks::default(), model, options, monitor)
}

/// [`register`] with only the pixels inside `masks` (one per image, on its own grid) taking
/// part: sampled, matched and scored (see [`register::mask`]).
pub fn register_masked(fixed: &Image, moving: &Image, masks: Masks, model: Option<(&Model, (usize, usize))>, options: &RegisterOptions, monitor: &dyn progress::Monitor) -> Result<(Registration, Comirs)> {
    masks.check((fixed.height(), fixed.width()), (moving.height(), moving.width()))?;
    let k = memory::bin_factor((fixed.width(), fixed.height()), (moving.width(), moving.height()), memory::working_budget());
    if model.is_none() && k > 1 {
        // A CoMIR is computed at the resolution its network was trained on, so only the
        // model-free path bins; with a model the full-size check below decides.
        let (bf, bm) = (image::bin::bin_image(fixed, k)?, image::bin::bin_image(moving, k)?);
        let binned = (masks.fixed.map(|m| register::mask::bin_mask(m, k)), masks.moving.map(|m| register::mask::bin_mask(m, k)));
        let to_original = image::bin::binned_to_original(k);
        let binned_options = start_shift_onto(options, &to_original.inverse()?);
        let (mut reg, _) = register_full_size(&bf, &bm, Masks { fixed: binned.0.as_ref(), moving: binned.1.as_ref() }, None, &binned_options, monitor)?;
        reg.transform = to_original.compose(&reg.transform).compose(&to_original.inverse()?);
        reg.binning = k;
        return Ok((reg, None));
    }
    register_full_size(fixed, moving, masks, model, options, monitor)
}

/// `options` for a search on resampled pixels: the start shift (a vector in the original moving
/// pixels) mapped onto them by `original_to_working` (binned copies, or the moving image at the
/// fixed pixel size).
fn start_shift_onto(options: &RegisterOptions, original_to_working: &Affine2) -> RegisterOptions {
    let (sx, sy) = options.start_shift;
    let (ox, oy) = original_to_working.apply(0.0, 0.0);
    let (ex, ey) = original_to_working.apply(sx, sy);
    RegisterOptions { start_shift: (ex - ox, ey - oy), ..options.clone() }
}

fn register_full_size(fixed: &Image, moving: &Image, masks: Masks, model: Option<(&Model, (usize, usize))>, options: &RegisterOptions, monitor: &dyn progress::Monitor) -> Result<(Registration, Comirs)> {
    // Every step's large blocks stay in the heap for the next: the second CoMIR pass reuses
    // the pages the first faulted in (1.4 GB at 1 MP; measured: 0.7 s of 3.3 s), SIFT's scale
    // space those of the network (1 MP, one arena: 162k page faults instead of 222–256k).
    let _heap = model::heap::HeapReuse::begin();
    memory::check_registration_fits((fixed.width(), fixed.height()), (moving.width(), moving.height()), memory::available_bytes())?;
    let rescaled = register::physical::moving_at_fixed_pixel_size(&fixed.calibration, moving)?;
    let (moving_used, to_moving) = match &rescaled {
        Some((image, scale)) => (image, *scale),
        None => (moving, Affine2::IDENTITY),
    };
    // The moving mask follows the moving image onto the fixed pixel size.
    let rescaled_mask = match (&rescaled, masks.moving) {
        (Some((image, scale)), Some(m)) => Some(register::mask::resample_mask(m.view(), scale, image.width(), image.height())),
        _ => None,
    };
    let masks = Masks { fixed: masks.fixed, moving: rescaled_mask.as_ref().or(masks.moving) };
    let options = &start_shift_onto(options, &to_moving.inverse()?);
    let (mut reg, comirs) = match model {
        Some((m, (fs, ms))) => {
            let t0 = std::time::Instant::now();
            let cf = comir_plane(m, fs, fixed, monitor)?;
            let cm = comir_plane(m, ms, moving_used, monitor)?;
            let seconds = t0.elapsed().as_secs_f64();
            let mut reg = register_with_comirs(fixed, moving_used, cf.view(), cm.view(), masks, options, monitor)?;
            reg.timings.insert(0, ("comir".into(), seconds));
            if let Some(c) = &m.header.check {
                register::quality::limit_to_model(&mut reg.quality, c.registered, c.crops, c.median_error_px);
            }
            (reg, Some((cf, cm)))
        }
        None => (register_planes_masked(gray_plane(fixed).view(), gray_plane(moving_used).view(), masks, false, options, monitor)?, None),
    };
    if rescaled.is_none() {
        return Ok((reg, comirs));
    }
    // Back to the original moving pixels: transform, matches, and the moving CoMIR's grid.
    reg.transform = to_moving.compose(&reg.transform);
    for (_, q) in reg.matches.iter_mut() {
        *q = to_moving.apply(q.0, q.1);
    }
    let to_rescaled = to_moving.inverse()?;
    let comirs = comirs.map(|(cf, cm)| (cf, register::warp::warp_plane(cm.view(), &to_rescaled, moving.width(), moving.height())));
    Ok((reg, comirs))
}

/// With a model: the CoMIR candidates; for `auto`, when they all fail, MI on the original
/// images too; an MI result on the originals needs the CoMIRs' second opinion; a pose from
/// SIFT or from the originals is polished on the CoMIRs. `cf`, `cm`: the CoMIRs of `fixed` and
/// `moving` (already at the fixed pixel size). Public for callers whose representations are
/// already computed (and for benches that time registration alone).
pub fn register_with_comirs(fixed: &Image, moving: &Image, cf: ArrayView2<f32>, cm: ArrayView2<f32>, masks: Masks, options: &RegisterOptions, monitor: &dyn progress::Monitor) -> Result<Registration> {
    let auto = options.method == register::pipeline::Method::Auto;
    let on_originals = |monitor: &dyn progress::Monitor| register_planes_masked(gray_plane(fixed).view(), gray_plane(moving).view(), masks, false, options, monitor);
    // MI on the originals beside α-AMD and MI on the CoMIRs when those run (see
    // `register_planes_beside`), if memory allows both at once: the same result either way.
    let (fh, fw) = cf.dim();
    let (mh, mw) = cm.dim();
    let beside = auto && memory::available_bytes().is_some_and(|have| have / 2 >= memory::registration_bytes((fh * fw) as u64, (mh * mw) as u64));
    let (mut reg, early) = register::pipeline::register_planes_beside(cf, cm, masks, true, options, monitor, beside.then_some(&on_originals))?;
    if auto && !reg.quality.passed {
        // `auto` never loses to the training-free method: when the CoMIR candidates
        // fail their check, MI on the originals is tried too, and the more convincing
        // verdict wins (see `more_convincing`). A passing CoMIR result saves that time.
        let (mi, mi_seconds) = match early {
            Some(done) => (done?, None),
            None => {
                let t1 = std::time::Instant::now();
                (on_originals(monitor)?, Some(t1.elapsed().as_secs_f64()))
            }
        };
        let mut candidates = std::mem::take(&mut reg.candidates);
        candidates.extend(mi.candidates.iter().cloned());
        if register::quality::more_convincing(&mi.quality, &reg.quality) {
            reg = Registration { timings: std::mem::take(&mut reg.timings), search_poses: std::mem::take(&mut reg.search_poses), ..mi };
        }
        reg.candidates = candidates;
        // Run beside the CoMIR candidates, its time is in their step's.
        if let Some(seconds) = mi_seconds {
            reg.timings.push(("mi-candidate".into(), seconds));
        }
    }
    // The CoMIRs' verdict on a pose: the second opinion on MI and the refinement's check.
    let on_comirs = register::pipeline::Assessor::new(cf, cm, masks, true, options);
    let on_originals = reg.input == register::pipeline::Input::Originals;
    if on_originals {
        register::pipeline::confirm_with_comirs(&mut reg.quality, &reg.transform, &on_comirs, options);
        // The list shows MI's verdict after the CoMIRs' second opinion.
        if let Some(c) = reg.candidates.iter_mut().rev().find(|c| c.input == register::pipeline::Input::Originals) {
            *c = register::pipeline::Candidate::of(reg.method, reg.input, &reg.quality);
        }
    }
    // Only MI on the CoMIRs ends at its own optimum of the polish's measure; every other pose
    // (SIFT's fit to keypoints, the NCC search's and α-AMD's equal-intensity match, MI's
    // optimum on the originals) gets a polish (see `register::refine`).
    let polished_already = reg.method == register::pipeline::Method::Mi && !on_originals;
    if options.refine && !polished_already {
        let t2 = std::time::Instant::now();
        let mi = register::mi::MiOptions { kind: options.kind, ..options.mi.clone() };
        // A copy (a few poses): the far check reads them while the registration is updated.
        let search_poses = reg.search_poses.clone();
        let verdicts = register::refine::Verdicts { near: &|t| on_comirs.assess(t, None), far: &|t| on_comirs.assess_among(t, None, &search_poses) };
        register::refine::refine_registration(&mut reg, cf, cm, masks, &mi, &verdicts, monitor)?;
        reg.timings.push(("refine".into(), t2.elapsed().as_secs_f64()));
    }
    Ok(reg)
}

/// [`register`] restricted to regions of the two images (ROIs of any shape: the images are
/// cropped to their rectangles and, for other shapes, masked); the returned transform and
/// matches are in full-image pixel coordinates.
pub fn register_regions(fixed: &Image, moving: &Image, fixed_region: Option<&Region>, moving_region: Option<&Region>, model: Option<(&Model, (usize, usize))>, options: &RegisterOptions, monitor: &dyn progress::Monitor) -> Result<Registration> {
    let clip = |r: Option<&Region>, image: &Image| r.map(|r| r.clip(image.width(), image.height())).transpose();
    let (fr, mr) = (clip(fixed_region, fixed)?, clip(moving_region, moving)?);
    let (f, fo) = image::region::crop(fixed, fr.as_ref().map(|r| r.0))?;
    let (m, mo) = image::region::crop(moving, mr.as_ref().map(|r| r.0))?;
    let masks = Masks { fixed: fr.as_ref().and_then(|r| r.1.as_ref()), moving: mr.as_ref().and_then(|r| r.1.as_ref()) };
    // Start where the crops lie in the whole images (whole images start centre on centre): a
    // region off the centre would otherwise start its search far from the pose.
    let off_centre = |whole: &Image, crop: &Image, crop_to_whole: &Affine2| {
        let (x, y) = crop_to_whole.apply((crop.width() as f64 - 1.0) / 2.0, (crop.height() as f64 - 1.0) / 2.0);
        (x - (whole.width() as f64 - 1.0) / 2.0, y - (whole.height() as f64 - 1.0) / 2.0)
    };
    let ((fx, fy), (mx, my)) = (off_centre(fixed, &f, &fo), off_centre(moving, &m, &mo));
    let options = &RegisterOptions { start_shift: (fx - mx, fy - my), ..options.clone() };
    let (mut reg, _) = register_masked(&f, &m, masks, model, options, monitor)?;
    // full fixed → crop fixed → crop moving → full moving
    reg.transform = mo.compose(&reg.transform).compose(&fo.inverse()?);
    for (p, q) in reg.matches.iter_mut() {
        *p = fo.apply(p.0, p.1);
        *q = mo.apply(q.0, q.1);
    }
    Ok(reg)
}

/// Register as a front end asks ([`request::RegisterRequest`]): the two images as the front
/// end handed their pixels over, the masks of their ROIs (bytes, see
/// [`request::PixelsInfo::region`]) and the model the request names, loaded (a front end may
/// keep models loaded between calls). Returns what the front end shows.
pub fn register_request(fixed: Image, moving: Image, masks: [Option<&[u8]>; 2], model: Option<&Model>, request: &request::RegisterRequest, monitor: &dyn progress::Monitor) -> Result<Outcome> {
    let start = std::time::Instant::now();
    let (fixed, moving) = (request.fixed.calibrate(fixed)?, request.moving.calibrate(moving)?);
    let (fr, mr) = (request.fixed.region(masks[0])?, request.moving.region(masks[1])?);
    let options = request.params.options()?;
    let sides = model.map(|m| model_sides(m, &fixed, &moving)).transpose()?;
    let reg = register_regions(&fixed, &moving, fr.as_ref(), mr.as_ref(), model.zip(sides), &options, monitor)?;
    Ok(Outcome::of_registration(&reg, start.elapsed().as_secs_f64(), &moving.calibration))
}

/// One plane resampled through the request's fixed → moving matrix onto its output grid
/// (Apply Transform, the overlay): same pixel type.
pub fn warp_request(image: &Image, request: &request::WarpRequest) -> Result<Image> {
    let t = Affine2::from_row_packed(request.matrix);
    t.validate()?;
    register::warp::warp_image(image, &t, request.out_width, request.out_height)
}

/// How a new model is set up: modality names, their preprocessing, network size preset
/// ("small" or "paper") and representation channels. `Default` is THE default of both front
/// ends (the CLI's flags and the Fiji dialog start from it).
#[derive(Clone, Debug, PartialEq)]
pub struct NewModel {
    pub names: [String; 2],
    pub preprocess: [model::preprocess::Preprocess; 2],
    pub size: String,
    pub channels: usize,
    pub start: Start,
}

impl Default for NewModel {
    fn default() -> Self {
        NewModel { names: ["A".into(), "B".into()], preprocess: [Default::default(); 2], size: "small".into(), channels: 1, start: Start::Random }
    }
}

/// The weights a new model's training starts from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Start {
    #[default]
    Random,
    /// Fine-tune the networks of this model file (a model of similar modalities, or one
    /// pretrained on synthetic pairs by `scripts/pretrain.sh`): same architecture, any input
    /// channels (see `Model::starting_from`); the new model keeps its own names and
    /// preprocessing.
    From(std::path::PathBuf),
}

impl std::str::FromStr for Start {
    type Err = Error;
    /// "random", or the path of a model file.
    fn from_str(s: &str) -> Result<Start> {
        match s.trim() {
            "" | "random" => Ok(Start::Random),
            path => Ok(Start::From(path.into())),
        }
    }
}

impl std::fmt::Display for Start {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Start::Random => f.write_str("random"),
            Start::From(path) => write!(f, "{}", path.display()),
        }
    }
}

#[cfg(feature = "torch")]
/// A new, untrained model as `new` describes, for images of these channel counts.
fn new_model(new: &NewModel, channels: [usize; 2]) -> Result<Model> {
    use model::store::Modality;
    let modality = |i: usize| -> Result<Modality> {
        Ok(Modality { name: new.names[i].clone(), preprocess: new.preprocess[i], net: model::config::NetConfig::preset(&new.size, channels[i], new.channels)? })
    };
    let modalities = [modality(0)?, modality(1)?];
    let device = model::device::default_device();
    match &new.start {
        Start::Random => Model::new(modalities, device),
        Start::From(path) => {
            let mut model = Model::starting_from(modalities, &Model::load(path, device)?, device)?;
            model.header.provenance.started_from = Some(path.display().to_string());
            Ok(model)
        }
    }
}

#[cfg(feature = "torch")]
/// Seconds one training step of `new` with `config` takes on this machine, measured: a
/// throwaway model trains a few steps on random patches (the first, which allocates, is not
/// counted). Both front ends show `steps ×` this before a run that may last hours.
pub fn training_seconds_per_step(new: &NewModel, channels: [usize; 2], config: &model::train::TrainConfig) -> Result<f64> {
    const PROBE_STEPS: u64 = 3;
    let mut model = new_model(new, channels)?;
    let side = 2 * config.patch_size;
    let mut rng = rng::Rng::new(1);
    let mut noise = |c: usize| ndarray::Array3::from_shape_simple_fn((c, side, side), || rng.uniform() as f32);
    let pair = [model::augment::TrainingPair::new(noise(channels[0]), noise(channels[1]), None)?];
    let probe = |steps: u64| model::train::TrainConfig { steps, checkpoint_every: 0, ..config.clone() };
    model::train::train(&mut model, &pair, &probe(1), None, None, &progress::Silent)?;
    let t0 = std::time::Instant::now();
    model::train::train(&mut model, &pair, &probe(PROBE_STEPS), None, None, &progress::Silent)?;
    Ok(t0.elapsed().as_secs_f64() / PROBE_STEPS as f64)
}

#[cfg(feature = "torch")]
/// "a check", "2 checks in a row".
fn checks_in_a_row(n: u32) -> String {
    if n == 1 { "a check".into() } else { format!("{n} checks in a row") }
}

#[cfg(feature = "torch")]
/// How long training would take here, as both front ends say it before a run that may last
/// hours (measured on a few steps, see [`training_seconds_per_step`]).
pub fn training_estimate(new: &NewModel, channels: [usize; 2], config: &model::train::TrainConfig) -> Result<String> {
    let per_step = training_seconds_per_step(new, channels, config)?;
    let total = progress::duration_words(per_step * config.steps as f64);
    let (at_most, earlier) = match config.good_checks_to_stop {
        0 => (String::new(), String::new()),
        n => (" at most".into(), format!("; it stops earlier once {} register every test crop", checks_in_a_row(n))),
    };
    Ok(format!("{} steps of the {} network will take about {total}{at_most} on this machine ({per_step:.2} s per step, measured){earlier}", config.steps, new.size))
}

#[cfg(feature = "torch")]
/// [`training_estimate`] for a front end's request.
pub fn estimate_request(request: &request::EstimateRequest) -> Result<String> {
    let (new, config) = request.params.resolve()?;
    training_estimate(&new, request.channels, &config)
}

#[cfg(feature = "torch")]
/// Train as a front end asks ([`request::TrainRequest`]): a new model on one aligned pair
/// (inside the ROI if the request has one; `mask` for its shape), written to the request's
/// file. Returns [`train_summary`].
pub fn train_request(a: Image, b: Image, mask: Option<&[u8]>, request: &request::TrainRequest, command: Option<String>, monitor: &dyn progress::Monitor) -> Result<String> {
    if (a.width(), a.height()) != (b.width(), b.height()) {
        return Err(Error::Training(format!("the training images must be aligned and of equal size ({}×{} vs {}×{})", a.width(), a.height(), b.width(), b.height())));
    }
    let (a, b) = (request.a.calibrate(a)?, request.b.calibrate(b)?);
    let region = request.a.region(mask)?;
    let (new, config) = request.params.resolve()?;
    let (model, report) = train_model(&[(a, b)], region.as_ref(), &new, None, &config, &request.out, command, monitor)?;
    Ok(train_summary(&request.out, &model, &report, config.steps))
}

#[cfg(feature = "torch")]
/// What both front ends say after training, one line each: the file, steps, speed and final
/// loss; the registration check at each checkpoint; why it stopped early, if it did.
pub fn train_summary(out: &std::path::Path, model: &Model, report: &model::train::TrainReport, steps_asked: u64) -> String {
    let tail = &report.losses[report.losses.len().saturating_sub(20)..];
    let mut lines = vec![format!(
        "wrote {} ({} + {} parameters) after {} steps ({:.2} steps/s); loss over the last {} steps: {:.4}",
        out.display(), model.parameter_count(0), model.parameter_count(1), model.header.steps_trained, report.steps_per_second, tail.len(),
        tail.iter().sum::<f64>() / tail.len().max(1) as f64
    )];
    if let Some(from) = &model.header.provenance.started_from {
        lines.push(format!("started from {from}"));
    }
    lines.extend(report.checks.iter().map(|(step, check)| format!("after {step} steps the CoMIRs {check}")));
    if report.cancelled {
        lines.push(format!("stopped on request before {steps_asked} steps; the model holds the steps done"));
    } else if report.stopped_when_good {
        lines.push(format!("stopped before {steps_asked} steps: {} registered every test crop within a pixel", checks_in_a_row(report.good_checks_in_a_row)));
    }
    if let Some(step) = report.returned_to {
        lines.push(format!("the model holds the weights of step {step}: its check was the best, better than the last one"));
    }
    // Said now, not only in every registration report (see `register::quality::limit_to_model`).
    if let Some(c) = model.header.check.as_ref().filter(|c| !register::quality::model_vouches(c.registered, c.crops)) {
        lines.push(format!(
            "its check missed {} of {} test crops: registrations with this model will not be flagged PASS; train it further (comir train --resume) or again with more steps until every crop registers",
            c.crops - c.registered, c.crops
        ));
    }
    lines.join("\n")
}

/// Train on aligned image pairs (first slice of each; only inside `region` if given: patches
/// are centred inside its shape), either a new model or one to continue (`resume`). Checkpoints and the final model go to `out`,
/// written atomically: a cancelled run still leaves a complete model of the steps done.
#[allow(clippy::too_many_arguments)] // each is a separate choice of both front ends
#[cfg(feature = "torch")]
pub fn train_model(pairs: &[(Image, Image)], region: Option<&Region>, new: &NewModel, resume: Option<Model>, config: &model::train::TrainConfig, out: &std::path::Path, command: Option<String>, monitor: &dyn progress::Monitor) -> Result<(Model, model::train::TrainReport)> {
    use model::store::Provenance;
    let first = pairs.first().ok_or_else(|| Error::Training("at least one aligned image pair is needed for training".into()))?;
    let mut model = match resume {
        Some(m) => m,
        None => {
            tch::manual_seed(config.seed as i64);
            new_model(new, [first.0.channels(), first.1.channels()])?
        }
    };
    let mut prepared = Vec::with_capacity(pairs.len());
    for (a, b) in pairs {
        let (rect, mask) = match region {
            Some(r) => r.clip(a.width(), a.height()).map(|(rect, mask)| (Some(rect), mask))?,
            None => (None, None),
        };
        let xa = image::region::crop_input(model::preprocess::prepare(a, model.header.modalities[0].preprocess)?, rect)?;
        let xb = image::region::crop_input(model::preprocess::prepare(b, model.header.modalities[1].preprocess)?, rect)?;
        prepared.push(model::augment::TrainingPair::new(xa, xb, mask)?);
    }
    let started_from = model.header.provenance.started_from.take();
    model.header.provenance = model::store::Provenance { command, started_from, ..Provenance::now(None) };
    // The registration check (see `train_check`): crops of the first pair, drawn once.
    let crops = train_check::draw(&prepared[0], config.seed);
    let check = |m: &Model, step: u64| -> Result<model::train::Checked> {
        let crops = crops.as_ref().ok_or_else(|| Error::Internal("a training check without crops".into()))?;
        let c = train_check::check(m, crops, step)?;
        Ok(model::train::Checked { sentence: c.to_string(), good: c.good(), rank: c.rank(), record: Some(c) })
    };
    let check: Option<model::train::CheckFn> = if crops.is_some() { Some(&check) } else { None };
    let report = model::train::train(&mut model, &prepared, config, Some(out.to_path_buf()), check, monitor)?;
    model.save(out)?;
    Ok((model, report))
}

/// What every front end shows of a registration or landmark fit: the Fiji Results row and log
/// (it crosses JNI as this JSON) and the CLI's summary line. One value, so both show the same.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Outcome {
    /// Fixed → moving, pixels, row-packed: a, b, tx, c, d, ty.
    pub matrix: [f64; 6],
    pub kind: TransformKind,
    /// "auto" never appears: the method that produced the transform ("sift", "alpha-amd", "mi",
    /// "landmarks").
    pub method: String,
    pub passed: bool,
    pub score: f64,
    /// What `score` is: "ncc", "nmi" or "RMS residual (px)".
    pub measure: String,
    /// Fraction of the fixed image the moving one covers; None for landmark fits.
    pub overlap: Option<f64>,
    /// RANSAC inliers or landmarks; None for intensity-based methods.
    pub inliers: Option<usize>,
    /// Why the check failed ("" when it passed).
    pub reason: String,
    pub rotation_degrees: f64,
    pub scale: f64,
    pub translation_px: [f64; 2],
    /// The translation in the moving image's unit (pixel × its pixel size), and that unit;
    /// None for uncalibrated images.
    pub translation_calibrated: Option<[f64; 2]>,
    pub unit: Option<String>,
    /// Registered as k × k binned copies (1: full resolution).
    pub binning: usize,
    /// What `auto` tried and which it kept, as a sentence ("" when one method was tried).
    pub choice: String,
    /// What the final refinement on the CoMIRs did, as a sentence ("" when none ran).
    pub refinement: String,
    pub seconds: f64,
    /// Corresponding points (fixed x, y, moving x, y), pixels.
    pub matches: Vec<[f64; 4]>,
}

impl Outcome {
    fn new(t: &Affine2, kind: TransformKind, method: String, matches: &[register::pipeline::MatchPair]) -> Outcome {
        let (rotation_degrees, scale, (tx, ty)) = t.decompose();
        Outcome {
            matrix: t.row_packed(),
            kind,
            method,
            passed: false,
            score: 0.0,
            measure: String::new(),
            overlap: None,
            inliers: None,
            reason: String::new(),
            rotation_degrees,
            scale,
            translation_px: [tx, ty],
            translation_calibrated: None,
            unit: None,
            binning: 1,
            choice: String::new(),
            refinement: String::new(),
            seconds: 0.0,
            matches: matches.iter().map(|(p, q)| [p.0, p.1, q.0, q.1]).collect(),
        }
    }

    /// `moving`: the moving image's calibration, for the calibrated translation.
    pub fn of_registration(reg: &Registration, seconds: f64, moving: &image::Calibration) -> Outcome {
        let q = &reg.quality;
        let method = reg.method.name().to_string();
        let reason = if q.passed { String::new() } else { q.reason.to_string() };
        let choice = register::pipeline::explain_choice(&reg.candidates, reg.method, reg.input);
        let refinement = reg.refinement.as_ref().map(|r| r.to_string()).unwrap_or_default();
        Outcome { passed: q.passed, score: q.score, measure: q.measure.name().into(), overlap: Some(q.overlap), inliers: q.inliers, reason, binning: reg.binning, choice, refinement, seconds, ..Outcome::new(&reg.transform, reg.kind, method, &reg.matches) }
            .calibrated(moving)
    }

    fn calibrated(mut self, moving: &image::Calibration) -> Outcome {
        let uncalibrated = matches!(moving.unit.trim(), "" | "pixel" | "pixels") && moving.pixel_width == 1.0 && moving.pixel_height == 1.0;
        if !uncalibrated {
            let [tx, ty] = self.translation_px;
            self.translation_calibrated = Some([tx * moving.pixel_width, ty * moving.pixel_height]);
            self.unit = Some(moving.unit.clone());
        }
        self
    }

    /// A BigWarp landmark fit judged against a fixed image `fixed_width` pixels wide.
    pub fn of_landmarks(fit: &export::bigwarp::LandmarkFit, fixed_width: usize, moving: &image::Calibration) -> Outcome {
        let (passed, reason) = fit.verdict(fixed_width);
        Outcome { passed, score: fit.rms_residual, measure: "RMS residual (px)".into(), inliers: Some(fit.pairs.len()), reason, ..Outcome::new(&fit.transform, fit.kind, "landmarks".into(), &fit.pairs) }
            .calibrated(moving)
    }

    pub fn to_json(&self) -> Result<String> {
        error::json_text(self, false)
    }
}
