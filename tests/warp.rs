//! The warp against analytic expectations.
use comir::image::{Image, PixelType};
use comir::register::warp::{warp_image, warp_plane};
use comir::Affine2;
use ndarray::{Array2, Array4};

fn pattern(w: usize, h: usize, ty: PixelType) -> Image {
    let mut img = Image::zeros(1, 1, h, w, ty).unwrap();
    for y in 0..h {
        for x in 0..w {
            let v = match ty {
                PixelType::U8 => ((x * 37 + y * 91) % 256) as f32,
                PixelType::U16 => ((x * 4099 + y * 7919) % 65536) as f32,
                PixelType::F32 => (x as f32 * 0.37 - y as f32 * 1.91).sin() * 1e3 + 0.125,
            };
            img.data[[0, 0, y, x]] = v;
        }
    }
    img
}

#[test]
fn identity_is_exact_for_every_pixel_type() {
    for ty in [PixelType::U8, PixelType::U16, PixelType::F32] {
        let img = pattern(31, 17, ty);
        let out = warp_image(&img, &Affine2::IDENTITY, 31, 17).unwrap();
        assert_eq!(out.data, img.data, "{ty:?}");
        assert_eq!(out.pixel_type, ty);
    }
}

#[test]
fn integer_translation_moves_pixels_exactly() {
    let img = pattern(40, 30, PixelType::U16);
    // fixed → moving: output (x, y) reads input (x + 5, y - 3).
    let out = warp_image(&img, &Affine2::translation(5.0, -3.0), 40, 30).unwrap();
    for y in 0..30 {
        for x in 0..40 {
            let (sx, sy) = (x as isize + 5, y as isize - 3);
            let expected = if (0..40).contains(&sx) && (0..30).contains(&sy) { img.data[[0, 0, sy as usize, sx as usize]] } else { 0.0 };
            assert_eq!(out.data[[0, 0, y, x]], expected, "at ({x}, {y})");
        }
    }
}

#[test]
fn rotation_by_90_degrees_about_the_centre_permutes_pixels() {
    let (w, h) = (24, 24);
    let img = pattern(w, h, PixelType::F32);
    let c = (w as f64 - 1.0) / 2.0;
    let t = Affine2::rotation_about(std::f64::consts::FRAC_PI_2, c, c);
    let out = warp_plane(img.plane(0, 0), &t, w, h);
    for y in 0..h {
        for x in 0..w {
            // (x, y) ↦ (c - (y - c), c + (x - c)) = (2c - y, x)
            let expected = img.data[[0, 0, x, (2.0 * c) as usize - y]];
            assert!((out[[y, x]] - expected).abs() < 1e-3, "at ({x}, {y}): {} vs {expected}", out[[y, x]]);
        }
    }
}

#[test]
fn half_pixel_shift_averages_neighbours() {
    let plane = Array2::from_shape_vec((1, 4), vec![0.0f32, 10.0, 20.0, 30.0]).unwrap();
    let out = warp_plane(plane.view(), &Affine2::translation(0.5, 0.0), 4, 1);
    assert_eq!(out.as_slice().unwrap(), &[5.0, 15.0, 25.0, 30.0]);
}

#[test]
fn sixteen_bit_results_are_rounded_and_clamped_into_range() {
    let mut img = Image::zeros(1, 1, 1, 2, PixelType::U16).unwrap();
    img.data[[0, 0, 0, 0]] = 65535.0;
    img.data[[0, 0, 0, 1]] = 0.0;
    let out = warp_image(&img, &Affine2::translation(0.25, 0.0), 2, 1).unwrap();
    assert_eq!(out.data[[0, 0, 0, 0]], (65535.0f32 * 0.75).round());
    assert!(out.data.iter().all(|v| v.fract() == 0.0 && (0.0..=65535.0).contains(v)));
}

#[test]
fn every_slice_and_channel_is_warped_alike() {
    let mut data = Array4::zeros((2, 3, 8, 9));
    for ((z, c, y, x), v) in data.indexed_iter_mut() {
        *v = (z * 1000 + c * 100 + y * 10 + x) as f32;
    }
    let img = Image { data, pixel_type: PixelType::F32, calibration: Default::default() };
    let out = warp_image(&img, &Affine2::translation(1.0, 2.0), 5, 4).unwrap();
    assert_eq!(out.data.shape(), &[2, 3, 4, 5]);
    for ((z, c, y, x), v) in out.data.indexed_iter() {
        assert_eq!(*v, (z * 1000 + c * 100 + (y + 2) * 10 + x + 1) as f32);
    }
}

#[test]
fn nan_next_to_an_exact_sample_does_not_leak() {
    let plane = Array2::from_shape_vec((1, 3), vec![1.0f32, f32::NAN, 3.0]).unwrap();
    let out = warp_plane(plane.view(), &Affine2::IDENTITY, 3, 1);
    assert_eq!(out[[0, 0]], 1.0);
    assert!(out[[0, 1]].is_nan());
    assert_eq!(out[[0, 2]], 3.0);
}

#[test]
fn singular_transforms_are_refused() {
    let img = pattern(4, 4, PixelType::U8);
    let singular = Affine2::new([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0]]);
    let err = warp_image(&img, &singular, 4, 4).unwrap_err();
    assert!(err.to_string().contains("singular"), "{err}");
    let nan = Affine2::new([[f64::NAN, 0.0, 0.0], [0.0, 1.0, 0.0]]);
    assert!(warp_image(&img, &nan, 4, 4).is_err());
}
