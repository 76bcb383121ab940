//! The JNI surface for `comir.fiji.Native`: convert Java arrays, call the library, turn every
//! error (and any panic) into a `comir.fiji.ComirException`. No numerics here.
mod jobs;
mod models;
mod pixels;

use crate::error::{Error, Result};
use ::jni::objects::{JByteArray, JClass, JDoubleArray, JObject, JObjectArray, JString};
use ::jni::sys::{jboolean, jdouble, jint, jlong, jobject, jobjectArray, jstring};
use ::jni::JNIEnv;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

const EXCEPTION_CLASS: &str = "comir/fiji/ComirException";

impl From<::jni::errors::Error> for Error {
    fn from(e: ::jni::errors::Error) -> Self {
        Error::JavaInterface(e.to_string())
    }
}

/// Run `body`; on error or panic throw a Java exception and return `fallback` (which Java
/// never sees, because the exception is pending).
fn guard<'l, T>(env: &mut JNIEnv<'l>, fallback: T, body: impl FnOnce(&mut JNIEnv<'l>) -> Result<T>) -> T {
    let outcome = catch_unwind(AssertUnwindSafe(|| body(&mut *env)));
    let error = match outcome {
        Ok(Ok(value)) => return value,
        Ok(Err(e)) => e,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Error::Internal(what)
        }
    };
    // A Java exception raised inside a JNI call is already pending and more precise.
    if !env.exception_check().unwrap_or(false) {
        throw(env, &error);
    }
    fallback
}

/// Throw `comir.fiji.ComirException(kind, message)`: the kind lets Java tell a cancel from a
/// refused input from a bug without reading the message. Falls back to a plain message.
fn throw(env: &mut JNIEnv, error: &Error) {
    let thrown = (|| -> std::result::Result<(), ::jni::errors::Error> {
        let kind = JObject::from(env.new_string(error.kind())?);
        let message = JObject::from(env.new_string(error.to_string())?);
        let exception = env.new_object(EXCEPTION_CLASS, "(Ljava/lang/String;Ljava/lang/String;)V", &[(&kind).into(), (&message).into()])?;
        env.throw(::jni::objects::JThrowable::from(exception))
    })();
    if thrown.is_err() {
        let _ = env.exception_clear();
        let _ = env.throw_new(EXCEPTION_CLASS, error.to_string());
    }
}

fn java_string(env: &mut JNIEnv, s: &JString) -> Result<String> {
    if s.is_null() {
        return Err(Error::JavaInterface("a text argument was null".into()));
    }
    Ok(env.get_string(s)?.into())
}

fn to_jstring(env: &mut JNIEnv, s: &str) -> Result<jstring> {
    Ok(env.new_string(s)?.into_raw())
}

/// A Java double[] of exactly `n` numbers; `what` says which, for the message.
fn read_doubles(env: &mut JNIEnv, array: &JDoubleArray, n: usize, what: &str) -> Result<Vec<f64>> {
    if array.is_null() || env.get_array_length(array)? as usize != n {
        return Err(Error::JavaInterface(format!("{what} must have {n} numbers")));
    }
    let mut v = vec![0.0; n];
    env.get_double_array_region(array, 0, &mut v)?;
    Ok(v)
}

/// The 6-number fixed → moving matrix {a, b, tx, c, d, ty} of a Java double[].
fn read_matrix(env: &mut JNIEnv, matrix: &JDoubleArray) -> Result<crate::Affine2> {
    let m = read_doubles(env, matrix, 6, "the matrix (a, b, tx, c, d, ty)")?;
    Ok(crate::Affine2::from_row_packed([m[0], m[1], m[2], m[3], m[4], m[5]]))
}

/// A front end's JSON request (see `crate::request`); `what` names it in an error.
fn read_request<T: serde::de::DeserializeOwned>(env: &mut JNIEnv, request: &JString, what: &str) -> Result<T> {
    crate::request::from_json(&java_string(env, request)?, what)
}

/// A Java byte[] that may be null (an ROI mask: null for rectangles and no ROI).
fn optional_bytes(env: &mut JNIEnv, bytes: &JByteArray) -> Result<Option<Vec<u8>>> {
    Ok(if bytes.is_null() { None } else { Some(env.convert_byte_array(bytes)?) })
}

/// A Java int that must be a size or count.
fn non_negative(value: jint, what: &str) -> Result<usize> {
    usize::try_from(value).map_err(|_| Error::JavaInterface(format!("{what} must not be negative (got {value})")))
}

/// `String Native.runtimeInfo()`: versions and devices; also proves libtorch computes.
#[no_mangle]
pub extern "system" fn Java_comir_fiji_Native_runtimeInfo<'l>(mut env: JNIEnv<'l>, _: JClass<'l>) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let sum = crate::model::device::conv2d_smoke(tch::Device::Cpu)?;
        to_jstring(env, &format!("{} (conv2d check: {sum})", crate::model::device::runtime_info()))
    })
}

/// `String Native.planApply(String request)`: a [`crate::ApplyRequest`] as JSON in, the
/// [`crate::ApplyPlan`] (matrix, kind, output width and height, calibration or null) as JSON out.
#[no_mangle]
pub extern "system" fn Java_comir_fiji_Native_planApply<'l>(mut env: JNIEnv<'l>, _: JClass<'l>, request: JString<'l>) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let text = java_string(env, &request)?;
        let request: crate::ApplyRequest = crate::request::from_json(&text, "apply request")?;
        let plan = crate::plan_apply(&request)?;
        Ok(env.new_string(crate::error::json_text(&plan, false)?)?.into_raw())
    })
}

/// `Object Native.warpPlane(Object pixels, String request)`: one ImageJ plane (byte[],
/// short[], float[] or RGB int[]) resampled as the [`crate::request::WarpRequest`] says;
/// returns a new array of the same type.
#[no_mangle]
pub extern "system" fn Java_comir_fiji_Native_warpPlane<'l>(mut env: JNIEnv<'l>, _: JClass<'l>, pixels: JObject<'l>, request: JString<'l>) -> jobject {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let request: crate::request::WarpRequest = read_request(env, &request, "warp request")?;
        let image = pixels::plane_to_image(env, &pixels, request.width, request.height)?;
        let warped = crate::warp_request(&image, &request)?;
        let kind = pixels::kind_of(env, &pixels)?;
        pixels::image_to_plane(env, &warped, kind)
    })
}

fn optional_string(env: &mut JNIEnv, s: &JString) -> Result<Option<String>> {
    if s.is_null() {
        return Ok(None);
    }
    let v = java_string(env, s)?;
    Ok(if v.trim().is_empty() { None } else { Some(v) })
}

fn doubles<'a>(env: &mut JNIEnv<'a>, values: &[f64]) -> Result<JObject<'a>> {
    let a = env.new_double_array(values.len() as i32)?;
    env.set_double_array_region(&a, 0, values)?;
    Ok(a.into())
}

/// A Java Object[] of the given items (null entries stay null).
fn object_array(env: &mut JNIEnv, items: Vec<JObject>) -> Result<jobjectArray> {
    let out = env.new_object_array(items.len() as i32, "java/lang/Object", JObject::null())?;
    for (i, item) in items.into_iter().enumerate() {
        if !item.is_null() {
            env.set_object_array_element(&out, i as i32, item)?;
        }
    }
    Ok(out.into_raw())
}

fn jstring_object<'a>(env: &mut JNIEnv<'a>, s: &str) -> Result<JObject<'a>> {
    Ok(env.new_string(s)?.into())
}

/// `long Native.newJob()`: an id to pass to a long call, to watch and cancel it.
/// The registration options a dialog chose (method, transform kind, rotation search).
fn register_options(env: &mut JNIEnv, params: &JString) -> Result<crate::register::pipeline::RegisterOptions> {
    crate::params::RegisterParams::from_json(&java_string(env, params)?)?.options()
}

/// `String Native.choices()`: the methods, transform types and registration defaults as JSON
/// (see `crate::params`), for the dialogs.
#[no_mangle]
pub extern "system" fn Java_comir_fiji_Native_choices<'l>(mut env: JNIEnv<'l>, _: JClass<'l>) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| Ok(env.new_string(crate::params::choices_json())?.into_raw()))
}

#[no_mangle]
pub extern "system" fn Java_comir_fiji_Native_newJob<'l>(_env: JNIEnv<'l>, _: JClass<'l>) -> jlong {
    jobs::create()
}

/// `void Native.cancelJob(long job)`
#[no_mangle]
pub extern "system" fn Java_comir_fiji_Native_cancelJob<'l>(_env: JNIEnv<'l>, _: JClass<'l>, job: jlong) {
    jobs::cancel(job)
}

/// `void Native.endJob(long job)`
#[no_mangle]
pub extern "system" fn Java_comir_fiji_Native_endJob<'l>(_env: JNIEnv<'l>, _: JClass<'l>, job: jlong) {
    jobs::end(job)
}

/// `String Native.jobStatus(long job)`: ": 40%, about 3 min left" (or "..." until known).
#[no_mangle]
pub extern "system" fn Java_comir_fiji_Native_jobStatus<'l>(mut env: JNIEnv<'l>, _: JClass<'l>, job: jlong) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| to_jstring(env, &jobs::status(job)))
}

/// `double Native.jobProgress(long job)`: fraction done in [0, 1] (0 when unknown).
#[no_mangle]
pub extern "system" fn Java_comir_fiji_Native_jobProgress<'l>(_env: JNIEnv<'l>, _: JClass<'l>, job: jlong) -> jdouble {
    let (done, total) = jobs::progress(job);
    if total == 0 { 0.0 } else { (done as f64 / total as f64).min(1.0) }
}

/// `String Native.register(Object[] fixedPlanes, byte[] fixedMask, Object[] movingPlanes,
/// byte[] movingMask, String request, long job)`: a [`crate::request::RegisterRequest`] as
/// JSON, the channels of each image beside it (and the masks of non-rectangular ROIs) →
/// the [`crate::Outcome`] as JSON.
#[no_mangle]
pub extern "system" fn Java_comir_fiji_Native_register<'l>(
    mut env: JNIEnv<'l>,
    _: JClass<'l>,
    fixed_planes: JObjectArray<'l>,
    fixed_mask: JByteArray<'l>,
    moving_planes: JObjectArray<'l>,
    moving_mask: JByteArray<'l>,
    request: JString<'l>,
    job: jlong,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let request: crate::request::RegisterRequest = read_request(env, &request, "registration request")?;
        let fixed = pixels::planes_to_image(env, &fixed_planes, request.fixed.width, request.fixed.height)?;
        let moving = pixels::planes_to_image(env, &moving_planes, request.moving.width, request.moving.height)?;
        let (fm, mm) = (optional_bytes(env, &fixed_mask)?, optional_bytes(env, &moving_mask)?);
        let model = request.model.as_deref().map(models::load).transpose()?;
        let outcome = crate::register_request(fixed, moving, [fm.as_deref(), mm.as_deref()], model.as_deref().map(|m| &**m), &request, jobs::get(job).as_ref())?;
        to_jstring(env, &outcome.to_json()?)
    })
}

/// `String[] Native.exportTransform(String dir, String request)`: a [`crate::ExportRequest`]
/// as JSON (matrix, kind, fixed and moving grids); writes transform.json, the BigWarp
/// landmarks (CSV + JSON) and ngff-affine.json; returns the paths.
#[no_mangle]
pub extern "system" fn Java_comir_fiji_Native_exportTransform<'l>(mut env: JNIEnv<'l>, _: JClass<'l>, dir: JString<'l>, request: JString<'l>) -> jobjectArray {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let dir = PathBuf::from(java_string(env, &dir)?);
        let text = java_string(env, &request)?;
        let request: crate::ExportRequest = crate::request::from_json(&text, "export request")?;
        let paths = crate::export_transform(&dir, &request)?;
        let out = env.new_object_array(paths.len() as i32, "java/lang/String", JObject::null())?;
        for (i, p) in paths.iter().enumerate() {
            let s = env.new_string(p.display().to_string())?;
            env.set_object_array_element(&out, i as i32, s)?;
        }
        Ok(out.into_raw())
    })
}

/// `String Native.importLandmarks(String request)`: a [`crate::ImportRequest`] as JSON in,
/// the [`crate::Outcome`] of the fitted transform as JSON out.
#[no_mangle]
pub extern "system" fn Java_comir_fiji_Native_importLandmarks<'l>(mut env: JNIEnv<'l>, _: JClass<'l>, request: JString<'l>) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let text = java_string(env, &request)?;
        let request: crate::ImportRequest = crate::request::from_json(&text, "import request")?;
        Ok(jstring_object(env, &crate::import_landmarks(&request)?.to_json()?)?.into_raw())
    })
}

/// `String Native.batchRegister(String dir, String fixedSuffix, String movingSuffix, String
/// modelPath, String params, String outDir, long job)` (params as for `register`): every pair
/// of `dir` registered (see `comir batch`); returns the [`crate::batch::BatchOutcome`] as JSON.
#[no_mangle]
pub extern "system" fn Java_comir_fiji_Native_batchRegister<'l>(
    mut env: JNIEnv<'l>,
    _: JClass<'l>,
    dir: JString<'l>,
    fixed_suffix: JString<'l>,
    moving_suffix: JString<'l>,
    model_path: JString<'l>,
    params: JString<'l>,
    out_dir: JString<'l>,
    job: jlong,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let dir = PathBuf::from(java_string(env, &dir)?);
        let out = PathBuf::from(java_string(env, &out_dir)?);
        let (fixed_suffix, moving_suffix) = (java_string(env, &fixed_suffix)?, java_string(env, &moving_suffix)?);
        let options = register_options(env, &params)?;
        let model = optional_string(env, &model_path)?.map(|p| models::load(std::path::Path::new(&p))).transpose()?;
        let monitor = jobs::get(job);
        let outcome = crate::batch::run(&dir, &fixed_suffix, &moving_suffix, &out, model.as_deref().map(|m| &**m), &options, monitor.as_ref())?;
        Ok(env.new_string(crate::error::json_text(&outcome, false)?)?.into_raw())
    })
}

/// `Object[] Native.modelSides(String modelPath, int fixedChannels, int movingChannels)`: the
/// modality names the fixed and the moving image go through, as `register` decides.
#[no_mangle]
pub extern "system" fn Java_comir_fiji_Native_modelSides<'l>(mut env: JNIEnv<'l>, _: JClass<'l>, model_path: JString<'l>, fixed_channels: jint, moving_channels: jint) -> jobjectArray {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let model = models::load(std::path::Path::new(&java_string(env, &model_path)?))?;
        let (f, m) = crate::sides_for_channels(&model, non_negative(fixed_channels, "channels")?, non_negative(moving_channels, "channels")?)?;
        let names = [&model.header.modalities[f].name, &model.header.modalities[m].name];
        let items = names.iter().map(|n| jstring_object(env, n)).collect::<Result<Vec<_>>>()?;
        object_array(env, items)
    })
}

/// `double[] Native.mapPoints(double[] matrix, double[] xy, boolean inverse)`: points
/// (x0, y0, x1, y1, …) through the fixed → moving matrix, or its inverse (moving → fixed).
#[no_mangle]
pub extern "system" fn Java_comir_fiji_Native_mapPoints<'l>(mut env: JNIEnv<'l>, _: JClass<'l>, matrix: JDoubleArray<'l>, xy: JDoubleArray<'l>, inverse: jboolean) -> jobject {
    guard(&mut env, std::ptr::null_mut(), |env| {
        if xy.is_null() {
            return Err(Error::JavaInterface("mapPoints needs a point list".into()));
        }
        let t = read_matrix(env, &matrix)?;
        let t = if inverse != 0 { t.inverse()? } else { t };
        let n = env.get_array_length(&xy)? as usize;
        let mut p = vec![0.0; n];
        env.get_double_array_region(&xy, 0, &mut p)?;
        let out: Vec<f64> = p.chunks(2).flat_map(|c| if c.len() == 2 { let (x, y) = t.apply(c[0], c[1]); vec![x, y] } else { vec![] }).collect();
        Ok(doubles(env, &out)?.into_raw())
    })
}

/// `float[][] Native.represent(Object[] planes, String request, long job)`: the CoMIR of one
/// image (a [`crate::request::RepresentRequest`] as JSON), one float[] per channel.
#[no_mangle]
pub extern "system" fn Java_comir_fiji_Native_represent<'l>(mut env: JNIEnv<'l>, _: JClass<'l>, planes: JObjectArray<'l>, request: JString<'l>, job: jlong) -> jobjectArray {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let request: crate::request::RepresentRequest = read_request(env, &request, "representation request")?;
        let image = request.image.calibrate(pixels::planes_to_image(env, &planes, request.image.width, request.image.height)?)?;
        let model = models::load(&request.model)?;
        let y = crate::represent_image(&model, image, request.modality.as_deref(), &Default::default(), jobs::get(job).as_ref())?;
        let out = env.new_object_array(y.shape()[0] as i32, "[F", JObject::null())?;
        for (c, plane) in y.outer_iter().enumerate() {
            let values: Vec<f32> = plane.iter().copied().collect();
            let a = env.new_float_array(values.len() as i32)?;
            env.set_float_array_region(&a, 0, &values)?;
            env.set_object_array_element(&out, c as i32, a)?;
        }
        Ok(out.into_raw())
    })
}

/// `String Native.trainingEstimate(String request)`: a [`crate::request::EstimateRequest`] as
/// JSON → the sentence saying how long the training takes here (measured on a few steps).
#[no_mangle]
pub extern "system" fn Java_comir_fiji_Native_trainingEstimate<'l>(mut env: JNIEnv<'l>, _: JClass<'l>, request: JString<'l>) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let request: crate::request::EstimateRequest = read_request(env, &request, "training estimate request")?;
        to_jstring(env, &crate::estimate_request(&request)?)
    })
}

/// `String Native.train(Object[] aPlanes, Object[] bPlanes, byte[] regionMask, String request,
/// long job)`: a [`crate::request::TrainRequest`] as JSON; trains a new model on one aligned
/// pair and writes it (also when cancelled: the steps done so far); returns the summary lines.
#[no_mangle]
pub extern "system" fn Java_comir_fiji_Native_train<'l>(
    mut env: JNIEnv<'l>,
    _: JClass<'l>,
    a_planes: JObjectArray<'l>,
    b_planes: JObjectArray<'l>,
    region_mask: JByteArray<'l>,
    request: JString<'l>,
    job: jlong,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let request: crate::request::TrainRequest = read_request(env, &request, "training request")?;
        let a = pixels::planes_to_image(env, &a_planes, request.a.width, request.a.height)?;
        let b = pixels::planes_to_image(env, &b_planes, request.b.width, request.b.height)?;
        let mask = optional_bytes(env, &region_mask)?;
        let summary = crate::train_request(a, b, mask.as_deref(), &request, Some("Fiji: Train CoMIR Model".into()), jobs::get(job).as_ref())?;
        to_jstring(env, &summary)
    })
}

#[cfg(test)]
mod error_tests {
    use super::*;

    /// A JNI failure reads "Java interface: …" once (the variant's display adds the prefix).
    #[test]
    fn a_jni_error_is_a_java_interface_error_said_once() {
        let e = Error::from(::jni::errors::Error::NullPtr("get_array_length"));
        assert_eq!(e.kind(), "java_interface");
        let text = e.to_string();
        assert!(text.starts_with("Java interface: ") && text.matches("Java interface").count() == 1, "{text}");
    }
}
