//! The JNI surface for `comir.fiji.Native`: convert Java arrays, call the library, turn every
//! error (and any panic) into a `comir.fiji.ComirException`. No numerics here.
mod pixels;

use crate::error::{Error, Result};
use ::jni::objects::{JClass, JDoubleArray, JObject, JString};
use ::jni::sys::{jdouble, jint, jobject, jstring};
use ::jni::JNIEnv;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

const EXCEPTION_CLASS: &str = "comir/fiji/ComirException";

impl From<::jni::errors::Error> for Error {
    fn from(e: ::jni::errors::Error) -> Self {
        Error::Argument(format!("Java interface: {e}"))
    }
}

/// Run `body`; on error or panic throw a Java exception and return `fallback` (which Java
/// never sees, because the exception is pending).
fn guard<'l, T>(env: &mut JNIEnv<'l>, fallback: T, body: impl FnOnce(&mut JNIEnv<'l>) -> Result<T>) -> T {
    let outcome = catch_unwind(AssertUnwindSafe(|| body(&mut *env)));
    let message = match outcome {
        Ok(Ok(value)) => return value,
        Ok(Err(e)) => e.to_string(),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            format!("internal error in the CoMIR native library (please report): {what}")
        }
    };
    // A Java exception raised inside a JNI call is already pending and more precise.
    if !env.exception_check().unwrap_or(false) {
        let _ = env.throw_new(EXCEPTION_CLASS, message);
    }
    fallback
}

fn java_string(env: &mut JNIEnv, s: &JString) -> Result<String> {
    if s.is_null() {
        return Err(Error::Argument("a text argument was null".into()));
    }
    Ok(env.get_string(s)?.into())
}

fn to_jstring(env: &mut JNIEnv, s: &str) -> Result<jstring> {
    Ok(env.new_string(s)?.into_raw())
}

fn non_negative(value: jint, what: &str) -> Result<usize> {
    usize::try_from(value).map_err(|_| Error::Argument(format!("{what} must not be negative (got {value})")))
}

/// `String Native.runtimeInfo()`: versions and devices; also proves libtorch computes.
#[no_mangle]
pub extern "system" fn Java_comir_fiji_Native_runtimeInfo<'l>(mut env: JNIEnv<'l>, _: JClass<'l>) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let sum = crate::model::device::conv2d_smoke(tch::Device::Cpu)?;
        to_jstring(env, &format!("{} (conv2d check: {sum})", crate::model::device::runtime_info()))
    })
}

/// `Object[] Native.readTransform(String path)` → `{double[6] matrix (row-major 2×3, fixed →
/// moving, pixels), int[2] fixed size or null, double[2] fixed pixel size or null, String unit
/// or null}`.
#[no_mangle]
pub extern "system" fn Java_comir_fiji_Native_readTransform<'l>(mut env: JNIEnv<'l>, _: JClass<'l>, path: JString<'l>) -> jobject {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let path = PathBuf::from(java_string(env, &path)?);
        let t = crate::TransformFile::read(&path)?;
        let matrix: Vec<jdouble> = t.fixed_to_moving.m.iter().flatten().copied().collect();
        let out = env.new_object_array(4, "java/lang/Object", JObject::null())?;
        let m = env.new_double_array(6)?;
        env.set_double_array_region(&m, 0, &matrix)?;
        env.set_object_array_element(&out, 0, m)?;
        if let Some(fixed) = &t.fixed {
            let size = env.new_int_array(2)?;
            let (w, h) = (jint::try_from(fixed.width), jint::try_from(fixed.height));
            let (Ok(w), Ok(h)) = (w, h) else { return Err(Error::Argument("fixed image size too large for ImageJ".into())) };
            env.set_int_array_region(&size, 0, &[w, h])?;
            env.set_object_array_element(&out, 1, size)?;
            if let Some(cal) = &fixed.calibration {
                let px = env.new_double_array(2)?;
                env.set_double_array_region(&px, 0, &[cal.pixel_width, cal.pixel_height])?;
                env.set_object_array_element(&out, 2, px)?;
                let unit = env.new_string(&cal.unit)?;
                env.set_object_array_element(&out, 3, unit)?;
            }
        }
        Ok(out.into_raw())
    })
}

/// `Object Native.warpPlane(Object pixels, int width, int height, double[] matrix, int
/// outWidth, int outHeight)`: one ImageJ plane (byte[], short[], float[] or RGB int[])
/// resampled through the fixed → moving matrix; returns a new array of the same type.
#[no_mangle]
pub extern "system" fn Java_comir_fiji_Native_warpPlane<'l>(
    mut env: JNIEnv<'l>,
    _: JClass<'l>,
    pixels: JObject<'l>,
    width: jint,
    height: jint,
    matrix: JDoubleArray<'l>,
    out_width: jint,
    out_height: jint,
) -> jobject {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let (w, h) = (non_negative(width, "width")?, non_negative(height, "height")?);
        let (ow, oh) = (non_negative(out_width, "output width")?, non_negative(out_height, "output height")?);
        if matrix.is_null() || env.get_array_length(&matrix)? != 6 {
            return Err(Error::Argument("the matrix must have 6 numbers (a, b, tx, c, d, ty)".into()));
        }
        let mut m = [0.0; 6];
        env.get_double_array_region(&matrix, 0, &mut m)?;
        let t = crate::Affine2::new([[m[0], m[1], m[2]], [m[3], m[4], m[5]]]);
        let image = pixels::plane_to_image(env, &pixels, w, h)?;
        let warped = crate::register::warp::warp_image(&image, &t, ow, oh)?;
        let kind = pixels::kind_of(env, &pixels)?;
        pixels::image_to_plane(env, &warped, kind)
    })
}
