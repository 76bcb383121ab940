//! ImageJ pixel arrays ↔ [`Image`]: byte[] (8-bit), short[] (unsigned 16-bit), float[]
//! (32-bit) and int[] (packed RGB, split into three 8-bit channels).
use crate::error::{Error, Result};
use crate::image::{Image, PixelType};
use ::jni::objects::{JByteArray, JFloatArray, JIntArray, JObject, JShortArray};
use ::jni::sys::jobject;
use ::jni::JNIEnv;
use ndarray::Array4;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ArrayKind {
    Byte,
    Short,
    Float,
    Rgb,
}

pub fn kind_of(env: &mut JNIEnv, pixels: &JObject) -> Result<ArrayKind> {
    if pixels.is_null() {
        return Err(Error::JavaInterface("the pixel array is null".into()));
    }
    for (sig, kind) in [("[B", ArrayKind::Byte), ("[S", ArrayKind::Short), ("[F", ArrayKind::Float), ("[I", ArrayKind::Rgb)] {
        if env.is_instance_of(pixels, sig)? {
            return Ok(kind);
        }
    }
    Err(Error::UnsupportedImage("pixels must be byte[], short[], float[] or int[] (RGB)".into()))
}

pub fn plane_to_image(env: &mut JNIEnv, pixels: &JObject, width: usize, height: usize) -> Result<Image> {
    let kind = kind_of(env, pixels)?;
    let n = width.checked_mul(height).ok_or_else(|| Error::Size("image size overflows".into()))?;
    crate::image::check_size(width as u64, height as u64, if kind == ArrayKind::Rgb { 3 } else { 1 })?;
    // Safety: `kind_of` checked the Java array type, so the typed view below is right.
    let raw = unsafe { JObject::from_raw(pixels.as_raw()) };
    let len = env.get_array_length(&JByteArray::from(unsafe { JObject::from_raw(pixels.as_raw()) }))? as usize;
    if len != n {
        return Err(Error::JavaInterface(format!("the pixel array has {len} values but {width}×{height} = {n} were expected")));
    }
    let (samples, channels, ty): (Vec<f32>, usize, PixelType) = match kind {
        ArrayKind::Byte => {
            let v = env.convert_byte_array(JByteArray::from(raw))?;
            (v.into_iter().map(f32::from).collect(), 1, PixelType::U8)
        }
        ArrayKind::Short => {
            let mut v = vec![0i16; n];
            env.get_short_array_region(JShortArray::from(raw), 0, &mut v)?;
            (v.into_iter().map(|s| (s as u16) as f32).collect(), 1, PixelType::U16)
        }
        ArrayKind::Float => {
            let mut v = vec![0f32; n];
            env.get_float_array_region(JFloatArray::from(raw), 0, &mut v)?;
            (v, 1, PixelType::F32)
        }
        ArrayKind::Rgb => {
            let mut v = vec![0i32; n];
            env.get_int_array_region(JIntArray::from(raw), 0, &mut v)?;
            let mut planes = Vec::with_capacity(3 * n);
            for shift in [16, 8, 0] {
                planes.extend(v.iter().map(|&p| ((p >> shift) & 0xff) as f32));
            }
            (planes, 3, PixelType::U8)
        }
    };
    let data = Array4::from_shape_vec((1, channels, height, width), samples)
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Image { data, pixel_type: ty, calibration: Default::default() })
}

pub fn image_to_plane(env: &mut JNIEnv, image: &Image, kind: ArrayKind) -> Result<jobject> {
    let n = image.width() * image.height();
    let len = i32::try_from(n).map_err(|_| Error::Size("the result is too large for a Java array".into()))?;
    let plane = |c: usize| image.plane(0, c).iter().copied().collect::<Vec<f32>>();
    Ok(match kind {
        ArrayKind::Byte => {
            let v: Vec<u8> = plane(0).into_iter().map(|x| x as u8).collect();
            env.byte_array_from_slice(&v)?.into_raw()
        }
        ArrayKind::Short => {
            let v: Vec<i16> = plane(0).into_iter().map(|x| x as u16 as i16).collect();
            let a = env.new_short_array(len)?;
            env.set_short_array_region(&a, 0, &v)?;
            a.into_raw()
        }
        ArrayKind::Float => {
            let a = env.new_float_array(len)?;
            env.set_float_array_region(&a, 0, &plane(0))?;
            a.into_raw()
        }
        ArrayKind::Rgb => {
            let (r, g, b) = (plane(0), plane(1), plane(2));
            let v: Vec<i32> = (0..n)
                .map(|i| (0xff << 24) | ((r[i] as i32) << 16) | ((g[i] as i32) << 8) | b[i] as i32)
                .collect();
            let a = env.new_int_array(len)?;
            env.set_int_array_region(&a, 0, &v)?;
            a.into_raw()
        }
    })
}

/// One image from several ImageJ planes of equal size (the channels; an RGB plane counts 3).
pub fn planes_to_image(env: &mut JNIEnv, planes: &::jni::objects::JObjectArray, width: usize, height: usize) -> Result<Image> {
    if planes.is_null() {
        return Err(Error::JavaInterface("the image planes are null".into()));
    }
    let n = env.get_array_length(planes)?;
    if n == 0 {
        return Err(Error::JavaInterface("an image needs at least one plane".into()));
    }
    let mut parts = Vec::new();
    for i in 0..n {
        let plane = env.get_object_array_element(planes, i)?;
        parts.push(plane_to_image(env, &plane, width, height)?);
        env.delete_local_ref(plane)?;
    }
    let pixel_type = parts[0].pixel_type;
    let views: Vec<_> = parts.iter().map(|p| p.data.view()).collect();
    let data = ndarray::concatenate(ndarray::Axis(1), &views).map_err(|e| Error::Size(e.to_string()))?;
    Ok(Image { data, pixel_type, calibration: Default::default() })
}
