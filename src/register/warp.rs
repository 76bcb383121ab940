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

    /// `out[i]` = the sample at `t(xs[i], ys[i]) / factor`, NaN outside the image: [`at`]'s
    /// value bit for bit (NaN for its `None`), four points at a time where the CPU has AVX2.
    /// MI reads all its samples so, ~10⁸ per registration.
    ///
    /// [`at`]: Bilinear::at
    pub fn at_mapped(&self, out: &mut [f32], xs: &[f64], ys: &[f64], t: &Affine2, factor: f64) {
        let n = out.len().min(xs.len()).min(ys.len());
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if let Some(flat) = self.flat.filter(|f| crate::lanes::has_avx2() && i32::try_from(f.len()).is_ok()) {
            done = n / 4 * 4;
            // SAFETY: the CPU has AVX2 (checked above); the slices hold at least `done` values.
            unsafe { mapped_avx2(flat, self.width, self.height, &mut out[..done], &xs[..done], &ys[..done], t, factor) };
        }
        for i in done..n {
            let (mx, my) = t.apply(xs[i], ys[i]);
            out[i] = self.at(mx / factor, my / factor).unwrap_or(f32::NAN);
        }
    }
}

/// [`Bilinear::at_mapped`] on a row-major plane of fewer than 2³¹ values, four points per
/// step, each operation the one `at` does in the same order (a term whose weight is 0 adds
/// +0.0 instead of being skipped: the sum starts at +0.0 and so never is −0.0, and x + 0.0 = x
/// for every other x); `out.len()` a multiple of 4, `xs` and `ys` as long.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[expect(clippy::too_many_arguments, reason = "the plane's parts and the map, unpacked for the vector loop")]
unsafe fn mapped_avx2(flat: &[f32], width: usize, height: usize, out: &mut [f32], xs: &[f64], ys: &[f64], t: &Affine2, factor: f64) {
    use std::arch::x86_64::*;
    let m = &t.m;
    let splat = |v: f64| _mm256_set1_pd(v);
    let (m00, m01, m02, m10, m11, m12) = (splat(m[0][0]), splat(m[0][1]), splat(m[0][2]), splat(m[1][0]), splat(m[1][1]), splat(m[1][2]));
    let (w, h) = (width as f64, height as f64);
    let (low, x_high, y_high) = (splat(-0.5), splat(w - 0.5), splat(h - 0.5));
    let (zero, one, x_last, y_last, f) = (splat(0.0), splat(1.0), splat(w - 1.0), splat(h - 1.0), splat(factor));
    // Plane sizes fit i32 (checked by the caller), so indices do too.
    let (last_col, last_row, row_len) = (_mm_set1_epi32(width as i32 - 1), _mm_set1_epi32(height as i32 - 1), _mm_set1_epi32(width as i32));
    let clamp = |v: __m256d, hi: __m256d| {
        // f64::clamp: below → the low end, above → the high end, else the value itself.
        let v = _mm256_blendv_pd(v, zero, _mm256_cmp_pd::<_CMP_LT_OQ>(v, zero));
        _mm256_blendv_pd(v, hi, _mm256_cmp_pd::<_CMP_GT_OQ>(v, hi))
    };
    for ((o, x), y) in out.chunks_exact_mut(4).zip(xs.chunks_exact(4)).zip(ys.chunks_exact(4)) {
        let (x, y) = (_mm256_loadu_pd(x.as_ptr()), _mm256_loadu_pd(y.as_ptr()));
        let mx = _mm256_div_pd(_mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(m00, x), _mm256_mul_pd(m01, y)), m02), f);
        let my = _mm256_div_pd(_mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(m10, x), _mm256_mul_pd(m11, y)), m12), f);
        let inside = _mm256_and_pd(
            _mm256_and_pd(_mm256_cmp_pd::<_CMP_GE_OQ>(mx, low), _mm256_cmp_pd::<_CMP_GE_OQ>(my, low)),
            _mm256_and_pd(_mm256_cmp_pd::<_CMP_LE_OQ>(mx, x_high), _mm256_cmp_pd::<_CMP_LE_OQ>(my, y_high)),
        );
        // Outside points read pixel 0 (and get NaN below): no index from a NaN position.
        let (cx, cy) = (_mm256_and_pd(clamp(mx, x_last), inside), _mm256_and_pd(clamp(my, y_last), inside));
        let (x0, y0) = (_mm256_cvttpd_epi32(cx), _mm256_cvttpd_epi32(cy));
        let (fx, fy) = (_mm256_sub_pd(cx, _mm256_cvtepi32_pd(x0)), _mm256_sub_pd(cy, _mm256_cvtepi32_pd(y0)));
        // The right and lower neighbours, kept inside the plane where their weight is 0.
        let (x1, y1) = (_mm_min_epi32(_mm_add_epi32(x0, _mm_set1_epi32(1)), last_col), _mm_min_epi32(_mm_add_epi32(y0, _mm_set1_epi32(1)), last_row));
        let (r0, r1) = (_mm_mullo_epi32(y0, row_len), _mm_mullo_epi32(y1, row_len));
        let read = |row: __m128i, col: __m128i| _mm256_cvtps_pd(_mm_i32gather_ps::<4>(flat.as_ptr(), _mm_add_epi32(row, col)));
        let (wx0, wy0) = (_mm256_sub_pd(one, fx), _mm256_sub_pd(one, fy));
        let term = |wy: __m256d, wx: __m256d, v: __m256d| {
            let used = _mm256_and_pd(_mm256_cmp_pd::<_CMP_NEQ_UQ>(wy, zero), _mm256_cmp_pd::<_CMP_NEQ_UQ>(wx, zero));
            _mm256_and_pd(_mm256_mul_pd(_mm256_mul_pd(wy, wx), v), used)
        };
        let mut acc = _mm256_add_pd(zero, term(wy0, wx0, read(r0, x0)));
        acc = _mm256_add_pd(acc, term(wy0, fx, read(r0, x1)));
        acc = _mm256_add_pd(acc, term(fy, wx0, read(r1, x0)));
        acc = _mm256_add_pd(acc, term(fy, fx, read(r1, x1)));
        _mm_storeu_ps(o.as_mut_ptr(), _mm256_cvtpd_ps(_mm256_blendv_pd(splat(f64::NAN), acc, inside)));
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

    /// The four-at-a-time reads give `at`'s values bit for bit (NaN where it gives None): at
    /// edges, just outside, on whole pixels next to NaN and Inf (zero weights must not read
    /// them), on the last row and column, and on both lane widths.
    #[test]
    fn mapped_reads_are_at_bit_for_bit() {
        let mut plane = Array2::from_shape_fn((6, 11), |(y, x)| ((x * 5 + y * 7) % 13) as f32 * 0.21 - 0.9);
        plane[[2, 4]] = f32::NAN;
        plane[[4, 7]] = f32::INFINITY;
        plane[[3, 3]] = -0.0;
        let plane = Bilinear::new(plane.view());
        let factor = 2.0;
        let mut points = vec![(3.0, 2.0), (4.0, 2.0), (4.0, 3.0), (7.0, 4.0), (10.0, 5.0), (10.0, 4.5), (-0.5, -0.5), (-0.51, 0.0), (10.5, 5.5), (10.51, 5.0), (0.0, 5.5), (f64::NAN, 1.0), (3.0, 3.0)];
        points.extend((0..300).map(|i| (i as f64 * 0.137 % 12.5 - 1.0, i as f64 * 0.291 % 7.5 - 1.0)));
        // The identity hits the whole pixels exactly; a rotation lands anywhere.
        for t in [Affine2::IDENTITY, Affine2::rotation_about(0.3, 5.0, 3.0)] {
            // Positions before the map, so that the map sends them to (about) the points above.
            let inverse = t.inverse().unwrap();
            let (xs, ys): (Vec<f64>, Vec<f64>) = points.iter().map(|&(x, y)| inverse.apply(x * factor, y * factor)).unzip();
            let want: Vec<u32> = xs.iter().zip(&ys).map(|(&x, &y)| {
                let (mx, my) = t.apply(x, y);
                plane.at(mx / factor, my / factor).unwrap_or(f32::NAN).to_bits()
            }).collect();
            let mapped = || {
                let mut out = vec![0f32; xs.len()];
                plane.at_mapped(&mut out, &xs, &ys, &t, factor);
                out.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
            };
            assert_eq!(mapped(), want);
            assert_eq!(crate::lanes::with_baseline_only(mapped), want);
            let values: Vec<f32> = want.iter().map(|&b| f32::from_bits(b)).collect();
            let (nan, finite) = (values.iter().filter(|v| v.is_nan()).count(), values.iter().filter(|v| v.is_finite()).count());
            assert!(nan > 10 && finite > 150, "{nan} outside or NaN, {finite} finite");
            if t == Affine2::IDENTITY {
                assert_eq!(values[..6].iter().map(|v| v.is_finite()).collect::<Vec<_>>(), [true, false, true, false, true, true], "whole pixels read themselves alone");
            }
        }
    }
}
