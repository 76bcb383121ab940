//! Everything one registration writes into its output folder, for the CLI and the plugin.
use super::bigwarp::{grid_landmarks, landmarks_csv, landmarks_json, write_text};
use super::ngff::ngff_json;
use super::transform_file::{ImageGrid, TransformFile};
use crate::error::Result;
use crate::image::bin;
use crate::image::io::{write_tiff, write_tiff_planes, PageShape};
use crate::image::preview::write_preview_png;
use crate::image::{Image, PixelType};
use crate::register::pipeline::Registration;
use crate::register::transform::Affine2;
use crate::register::warp::{warp_plane, warped_samples};
use ndarray::{Array2, Array4};
use std::path::{Path, PathBuf};

/// The transform file of a registration, with both image grids and calibrations.
pub fn transform_file(reg: &Registration, fixed: &Image, moving: &Image) -> TransformFile {
    let grid = |i: &Image| ImageGrid { width: i.width(), height: i.height(), calibration: Some(i.calibration.clone()) };
    TransformFile { kind: reg.kind, fixed_to_moving: reg.transform, fixed: Some(grid(fixed)), moving: Some(grid(moving)) }
}

/// Two planes as a 2-channel float image (for overlays and CoMIR side-by-sides).
fn two_channels(a: &Array2<f32>, b: &Array2<f32>) -> Image {
    let (h, w) = a.dim();
    let mut data = Array4::zeros((1, 2, h, w));
    data.slice_mut(ndarray::s![0, 0, .., ..]).assign(a);
    data.slice_mut(ndarray::s![0, 1, .., ..]).assign(b);
    Image { data, pixel_type: PixelType::F32, calibration: Default::default() }
}

/// Write transform.json, bigwarp-landmarks.csv/.json and ngff-affine.json for a fixed → moving
/// transform between two image grids.
pub fn write_transform_exports(dir: &Path, tf: &TransformFile) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::Write { path: dir.to_path_buf(), source: e })?;
    let fixed = tf.fixed.clone().ok_or_else(|| crate::Error::Internal("the fixed image grid is needed for the BigWarp export".into()))?;
    let moving_cal = tf.moving.as_ref().and_then(|m| m.calibration.clone()).unwrap_or_default();
    let fixed_cal = fixed.calibration.clone().unwrap_or_default();
    let landmarks = grid_landmarks(&tf.fixed_to_moving, &fixed, &moving_cal);
    let names = ["transform.json", "bigwarp-landmarks.csv", "bigwarp-landmarks.json", "ngff-affine.json"];
    let paths: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    tf.write(&paths[0])?;
    write_text(&paths[1], &landmarks_csv(&landmarks))?;
    write_text(&paths[2], &landmarks_json(&landmarks, tf.kind))?;
    write_text(&paths[3], &ngff_json(&tf.fixed_to_moving, &fixed_cal, &moving_cal))?;
    Ok(paths)
}

/// Largest side of overlay.png: it is for looking at, and a full-size overlay of a 20000²
/// pair would take 3 GB to draw.
pub const PREVIEW_MAX_SIDE: usize = 4096;

/// The fixed image (green) and the moving image warped onto it (magenta), both drawn from
/// binned copies when the fixed image is larger than [`PREVIEW_MAX_SIDE`].
pub fn overlay_preview(fixed: &Image, moving: &Image, fixed_to_moving: &Affine2) -> Result<Image> {
    let k = bin::factor_for_side(fixed.width(), fixed.height(), PREVIEW_MAX_SIDE);
    let (f, m) = if k == 1 {
        (crate::gray_plane(fixed), crate::gray_plane(moving))
    } else {
        (crate::gray_plane(&bin::bin_image(fixed, k)?), crate::gray_plane(&bin::bin_image(moving, k)?))
    };
    // preview pixel → fixed pixel → moving pixel → binned moving pixel
    let to_original = bin::binned_to_original(k);
    let t = to_original.inverse()?.compose(fixed_to_moving).compose(&to_original);
    Ok(two_channels(&f, &warp_plane(m.view(), &t, f.ncols(), f.nrows())))
}

/// The moving image resampled onto the fixed grid, written as it is computed (every slice
/// and channel, the moving pixel type, the fixed calibration).
fn write_warped(path: &Path, fixed: &Image, moving: &Image, fixed_to_moving: &Affine2) -> Result<()> {
    fixed_to_moving.validate()?;
    let (w, h) = (fixed.width(), fixed.height());
    let shape = PageShape { width: w, height: h, slices: moving.slices(), channels: moving.channels(), pixel_type: moving.pixel_type };
    write_tiff_planes(path, shape, &fixed.calibration, &|z, c| warped_samples(moving.plane(z, c), *fixed_to_moving, w, h, moving.pixel_type))
}

/// Write transform.json, the BigWarp landmarks (CSV + JSON), ngff-affine.json, warped.tif
/// (moving resampled onto the fixed grid), overlay.png (fixed green, warped moving magenta),
/// report.json, and with a model the CoMIRs. Returns the paths written.
pub fn write_registration(dir: &Path, fixed: &Image, moving: &Image, reg: &Registration, comirs: Option<&(Array2<f32>, Array2<f32>)>, inputs: serde_json::Value) -> Result<Vec<PathBuf>> {
    let mut written = write_transform_exports(dir, &transform_file(reg, fixed, moving))?;
    let mut put = |name: &str| {
        let p = dir.join(name);
        written.push(p.clone());
        p
    };
    let (warped, overlay) = (put("warped.tif"), put("overlay.png"));
    let comir_files = comirs.map(|planes| (planes, put("comir-overlay.png"), put("comir-fixed.tif"), put("comir-moving.tif")));
    // The images are independent: written side by side, four jobs for the pool (1 MP with
    // CoMIRs: 0.15 s one after the other; 0.13 s with the previews and CoMIRs on one thread
    // beside the warped image, whose two PNG encodings alone took half of that).
    let ((a, b), (c, d)) = rayon::join(
        || rayon::join(|| write_warped(&warped, fixed, moving, &reg.transform), || write_preview_png(&overlay, &overlay_preview(fixed, moving, &reg.transform)?)),
        || match &comir_files {
            Some(((cf, cm), pair, fixed_path, moving_path)) => rayon::join(
                || write_preview_png(pair, &two_channels(cf, &warp_plane(cm.view(), &reg.transform, cf.ncols(), cf.nrows()))),
                || -> Result<()> {
                    let single = |p: &Array2<f32>| Image { data: p.clone().insert_axis(ndarray::Axis(0)).insert_axis(ndarray::Axis(0)), pixel_type: PixelType::F32, calibration: Default::default() };
                    write_tiff(fixed_path, &single(cf))?;
                    write_tiff(moving_path, &single(cm))
                },
            ),
            None => (Ok(()), Ok(())),
        },
    );
    a?;
    b?;
    c?;
    d?;
    let o = crate::Outcome::of_registration(reg, 0.0, &moving.calibration);
    let report = serde_json::json!({
        "inputs": inputs,
        "method": reg.method,
        "kind": reg.kind,
        "matrix_fixed_to_moving_px": reg.transform.m,
        "rotation_degrees": o.rotation_degrees,
        "scale": o.scale,
        "translation_px": o.translation_px,
        "translation_calibrated": o.translation_calibrated,
        "unit": o.unit,
        "quality": reg.quality,
        "inlier_matches": reg.matches.len(),
        "binning": reg.binning,
        "candidates": reg.candidates,
        "choice": o.choice,
        "timings_seconds": reg.timings.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
        "comir_version": env!("CARGO_PKG_VERSION"),
    });
    write_text(&put("report.json"), &crate::error::json_text(&report, true)?)?;
    Ok(written)
}
