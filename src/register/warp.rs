//! Resampling an image through a transform (bilinear interpolation).
//!
//! For each output (fixed-grid) pixel centre p, the value is the moving image sampled at
//! T(p), with T the fixed → moving transform. Points outside the moving image (more than
//! half a pixel beyond its edge pixels) get the background value 0.
use super::transform::Affine2;
use crate::error::{Error, Result};
use crate::image::{check_size, Image};
use ndarray::{Array2, Array4, ArrayView2};
use rayon::prelude::*;

/// A plane read by bilinear interpolation. Made once per plane: a plane stored row after row
/// (the usual case) is then read as a slice, without ndarray's per-read index arithmetic
/// (MI reads ~10⁸ samples per registration).
#[derive(Clone, Copy)]
pub struct Bilinear<'a> {
    plane: ArrayView2<'a, f32>,
    flat: Option<&'a [f32]>,
    width: usize,
    height: usize,
}

impl<'a> Bilinear<'a> {
    pub fn new(plane: ArrayView2<'a, f32>) -> Bilinear<'a> {
        let (height, width) = plane.dim();
        Bilinear { flat: plane.to_slice(), plane, width, height }
    }

    #[inline(always)]
    fn value(&self, y: usize, x: usize) -> f32 {
        match self.flat {
            Some(flat) => flat[y * self.width + x],
            None => self.plane[[y, x]],
        }
    }

    /// The sample at (x, y); `None` outside the image. Neighbours with zero weight are not
    /// read, so integer positions return the stored value exactly (even next to NaN or Inf).
    #[inline(always)]
    pub fn at(&self, x: f64, y: f64) -> Option<f32> {
        let (h, w) = (self.height, self.width);
        if !(x >= -0.5 && y >= -0.5 && x <= w as f64 - 0.5 && y <= h as f64 - 0.5) {
            return None;
        }
        // Within half a pixel of the border the edge value is extended.
        let x = x.clamp(0.0, (w - 1) as f64);
        let y = y.clamp(0.0, (h - 1) as f64);
        // x, y ≥ 0 after the clamp: truncation is the floor (f64::floor is a libm call on the
        // baseline x86-64 target, and this runs for every MI sample).
        let (x0, y0) = (x as usize, y as usize);
        let (fx, fy) = (x - x0 as f64, y - y0 as f64);
        let mut acc = 0.0f64;
        for (dy, wy) in [(0, 1.0 - fy), (1, fy)] {
            if wy == 0.0 {
                continue;
            }
            for (dx, wx) in [(0, 1.0 - fx), (1, fx)] {
                if wx == 0.0 {
                    continue;
                }
                acc += wy * wx * self.value(y0 + dy, x0 + dx) as f64;
            }
        }
        Some(acc as f32)
    }
}

/// Warp one plane onto an `out_width` × `out_height` grid.
#[expect(clippy::expect_used, reason = "the buffer is filled to exactly out_height × out_width samples above")]
pub fn warp_plane(plane: ArrayView2<f32>, fixed_to_moving: &Affine2, out_width: usize, out_height: usize) -> Array2<f32> {
    let mut out = vec![0.0f32; out_width * out_height];
    if out_width > 0 {
        let plane = Bilinear::new(plane);
        out.par_chunks_mut(out_width).enumerate().for_each(|(y, row)| {
            for (x, v) in row.iter_mut().enumerate() {
                let (mx, my) = fixed_to_moving.apply(x as f64, y as f64);
                *v = plane.at(mx, my).unwrap_or(0.0);
            }
        });
    }
    Array2::from_shape_vec((out_height, out_width), out).expect("buffer has out_width*out_height samples")
}

/// One plane warped onto an `out_width` × `out_height` grid as a stream of samples in the
/// range of `pixel_type`, computed a band of rows at a time (in parallel within the band):
/// for writing a large result without holding it whole.
pub fn warped_samples<'a>(plane: ArrayView2<'a, f32>, fixed_to_moving: Affine2, out_width: usize, out_height: usize, pixel_type: crate::image::PixelType) -> Box<dyn Iterator<Item = f32> + 'a> {
    const BAND: usize = 64;
    let plane = Bilinear::new(plane);
    Box::new((0..out_height).step_by(BAND).flat_map(move |y0| {
        let rows = BAND.min(out_height - y0);
        let mut band = vec![0.0f32; rows * out_width];
        if out_width > 0 {
            band.par_chunks_mut(out_width).enumerate().for_each(|(dy, row)| {
                for (x, v) in row.iter_mut().enumerate() {
                    let (mx, my) = fixed_to_moving.apply(x as f64, (y0 + dy) as f64);
                    *v = pixel_type.quantise(plane.at(mx, my).unwrap_or(0.0));
                }
            });
        }
        band.into_iter()
    }))
}

/// Warp every plane (all slices and channels) of `image`; values are rounded and clamped
/// back into the image's pixel type, and the calibration is kept.
pub fn warp_image(image: &Image, fixed_to_moving: &Affine2, out_width: usize, out_height: usize) -> Result<Image> {
    fixed_to_moving.validate()?;
    check_size(out_width as u64, out_height as u64, (image.slices() * image.channels()) as u64)?;
    if out_width > 1 << 20 || out_height > 1 << 20 {
        return Err(Error::Size(format!("output size {out_width}×{out_height} is larger than 1048576 pixels on a side")));
    }
    let mut data = Array4::zeros((image.slices(), image.channels(), out_height, out_width));
    for z in 0..image.slices() {
        for c in 0..image.channels() {
            let warped = warp_plane(image.plane(z, c), fixed_to_moving, out_width, out_height);
            let ty = image.pixel_type;
            data.slice_mut(ndarray::s![z, c, .., ..]).assign(&warped.mapv(|v| ty.quantise(v)));
        }
    }
    Ok(Image { data, pixel_type: image.pixel_type, calibration: image.calibration.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plane stored row after row is read as a slice, any other through ndarray: the same
    /// samples bit for bit, inside, at the edges and outside.
    #[test]
    fn both_ways_of_reading_a_plane_give_the_same_samples() {
        let plane = Array2::from_shape_fn((7, 9), |(y, x)| ((x * 7 + y * 3) % 11) as f32 * 0.37 - 1.0);
        let transposed = plane.t().as_standard_layout().into_owned();
        let strided = transposed.t(); // the same values, stored column after column
        assert!(strided.to_slice().is_none() && plane.view().to_slice().is_some());
        let (flat, general) = (Bilinear::new(plane.view()), Bilinear::new(strided));
        let mut inside = 0;
        for i in 0..200 {
            let (x, y) = (i as f64 * 0.173 % 10.0 - 0.7, i as f64 * 0.291 % 8.0 - 0.7);
            let (a, b) = (flat.at(x, y), general.at(x, y));
            assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits), "at ({x}, {y})");
            inside += usize::from(a.is_some());
        }
        assert!(inside > 100 && inside < 200, "{inside}");
        // Integer positions give the stored value; a fraction mixes the four neighbours.
        assert_eq!(flat.at(3.0, 2.0), Some(plane[[2, 3]]));
        let mixed = 0.25 * (plane[[2, 3]] + plane[[2, 4]] + plane[[3, 3]] + plane[[3, 4]]) as f64;
        assert!((flat.at(3.5, 2.5).unwrap() as f64 - mixed).abs() < 1e-6);
    }
}
