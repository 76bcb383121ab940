//! Image files: round trips keep type, channels, slices and calibration; bad files fail clearly.
use comir::image::io::{read_image, write_tiff};
use comir::image::{Calibration, Image, PixelType};
use ndarray::Array4;

fn image(slices: usize, channels: usize, ty: PixelType) -> Image {
    let mut data = Array4::zeros((slices, channels, 13, 21));
    for ((z, c, y, x), v) in data.indexed_iter_mut() {
        *v = match ty {
            PixelType::U8 => ((z * 50 + c * 30 + y * 7 + x) % 256) as f32,
            PixelType::U16 => (z * 20000 + c * 9000 + y * 400 + x * 13) as f32,
            PixelType::F32 => (z as f32 - c as f32 * 0.5) * 1e-3 + (y * x) as f32 * 1.25e5,
        };
    }
    Image { data, pixel_type: ty, calibration: Calibration { pixel_width: 0.325, pixel_height: 0.5, unit: "µm".into() } }
}

#[test]
fn tiff_round_trip_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    for (slices, channels, ty) in [(1, 1, PixelType::U8), (1, 3, PixelType::U8), (3, 1, PixelType::U16), (2, 2, PixelType::F32), (2, 3, PixelType::U16)] {
        let img = image(slices, channels, ty);
        let path = dir.path().join(format!("{slices}-{channels}-{ty:?}.tif"));
        write_tiff(&path, &img).unwrap();
        let back = read_image(&path).unwrap();
        assert_eq!(back.pixel_type, ty);
        assert_eq!(back.data, img.data, "{slices} slices, {channels} channels, {ty:?}");
        assert!((back.calibration.pixel_width - 0.325).abs() < 1e-6);
        assert!((back.calibration.pixel_height - 0.5).abs() < 1e-6);
        assert_eq!(back.calibration.unit, "µm");
    }
}

#[test]
fn png_reads_rgb_and_gray() {
    let dir = tempfile::tempdir().unwrap();
    let rgb = dir.path().join("rgb.png");
    image::RgbImage::from_fn(5, 4, |x, y| image::Rgb([x as u8, y as u8, 200])).save(&rgb).unwrap();
    let img = read_image(&rgb).unwrap();
    assert_eq!((img.channels(), img.height(), img.width()), (3, 4, 5));
    assert_eq!(img.data[[0, 0, 2, 3]], 3.0);
    assert_eq!(img.data[[0, 1, 2, 3]], 2.0);
    assert_eq!(img.data[[0, 2, 2, 3]], 200.0);
    let gray = dir.path().join("gray16.png");
    image::ImageBuffer::<image::Luma<u16>, _>::from_fn(3, 2, |x, _| image::Luma([x as u16 * 30000])).save(&gray).unwrap();
    let img = read_image(&gray).unwrap();
    assert_eq!((img.pixel_type, img.channels()), (PixelType::U16, 1));
    assert_eq!(img.data[[0, 0, 1, 2]], 60000.0);
}

#[test]
fn broken_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.tif");
    write_tiff(&good, &image(2, 1, PixelType::U16)).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated.tif", bytes[..bytes.len() / 2].to_vec(), "not a readable image"),
        ("header-only.tif", bytes[..8].to_vec(), "not a readable image"),
        ("text.png", b"hello".to_vec(), "only TIFF and PNG"),
        ("empty.tif", vec![], "only TIFF and PNG"),
        ("bad.png", b"\x89PNG\r\n\x1a\n garbage".to_vec(), "not a readable image"),
    ];
    for (name, content, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let msg = read_image(&path).unwrap_err().to_string();
        assert!(msg.contains(expected) && msg.contains(name), "{name}: {msg}");
    }
    let msg = read_image(&dir.path().join("missing.tif")).unwrap_err().to_string();
    assert!(msg.contains("cannot read") && msg.contains("missing.tif"), "{msg}");
}

#[test]
fn empty_and_oversized_images_are_refused_before_allocation() {
    assert!(Image::zeros(1, 1, 0, 5, PixelType::U8).unwrap_err().to_string().contains("empty"));
    let err = comir::image::check_size(1 << 20, 1 << 20, 4).unwrap_err().to_string();
    assert!(err.contains("too large") && err.contains("COMIR_MAX_IMAGE_BYTES"), "{err}");
}
