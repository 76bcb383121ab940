//! CoMIR: multimodal image registration through contrastive representations.
//!
//! The data path reads top to bottom: [`image`] in → [`model`] (representation) →
//! [`register`] (transform, warp) → [`export`] (files). The CLI (`src/bin/comir.rs`) and the
//! JNI surface (`src/jni`) are thin layers over the calls below.
pub mod error;
pub mod export;
pub mod files;
pub mod image;
mod jni;
pub mod model;
pub mod progress;
pub mod register;

pub use error::{Error, Result};
pub use export::transform_file::TransformFile;
pub use image::Image;
pub use register::transform::{Affine2, TransformKind};

/// The libtorch version this crate is built for (tch 0.26).
pub const LIBTORCH_VERSION: &str = "2.13.0";

/// Apply a transform file to an image: resample it onto the fixed grid. The output size is
/// `size` if given, else the fixed image's size recorded in the file, else the input's;
/// the calibration is the fixed image's when the file has it.
pub fn apply_transform(image: &Image, transform: &TransformFile, size: Option<(usize, usize)>) -> Result<Image> {
    let (width, height) = size
        .or(transform.fixed.as_ref().map(|f| (f.width, f.height)))
        .unwrap_or((image.width(), image.height()));
    let mut out = register::warp::warp_image(image, &transform.fixed_to_moving, width, height)?;
    if let Some(cal) = transform.fixed.as_ref().and_then(|f| f.calibration.clone()) {
        out.calibration = cal;
    }
    Ok(out)
}
