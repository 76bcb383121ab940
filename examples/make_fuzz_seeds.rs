//! Writes the small seed inputs of the fuzz corpus (fuzz/corpus/<target>/) with our own writers.
//! Run: cargo run --release --example make_fuzz_seeds
use comir::export::bigwarp::{grid_landmarks, landmarks_csv, landmarks_json};
use comir::export::transform_file::ImageGrid;
use comir::export::transform_file::TransformFile;
use comir::image::io::write_tiff;
use comir::image::{Calibration, Image, PixelType};
use comir::model::config::NetConfig;
use comir::model::preprocess::Preprocess;
use comir::model::store::{Modality, Model};
use comir::{Affine2, TransformKind};
use std::fs;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let dir = |t: &str| {
        let d = root.join(t);
        fs::create_dir_all(&d).unwrap();
        d
    };
    for (name, pixel_type, channels) in [("u16-2ch.tif", PixelType::U16, 2), ("u8-rgb.tif", PixelType::U8, 3), ("f32.tif", PixelType::F32, 1)] {
        let mut img = Image::zeros(1, channels, 6, 7, pixel_type)?;
        img.data.iter_mut().enumerate().for_each(|(i, v)| *v = (i * 37 % 251) as f32);
        img.calibration = Calibration { pixel_width: 0.5, pixel_height: 0.25, unit: "micron".into() };
        write_tiff(&dir("decode_image").join(name), &img)?;
    }
    image::RgbImage::from_fn(5, 4, |x, y| image::Rgb([x as u8 * 30, y as u8 * 40, 9]))
        .save(dir("decode_image").join("rgb.png"))
        .unwrap();
    image::GrayImage::from_fn(3, 3, |x, y| image::Luma([(x * y) as u8])).save(dir("decode_image").join("gray.png")).unwrap();

    let t = Affine2::rotation_about(0.3, 5.0, 5.0);
    for kind in [TransformKind::Rigid, TransformKind::Affine] {
        fs::write(dir("transform_json").join(format!("{kind:?}.json")), TransformFile::new(kind, t).to_json()?)?;
    }
    let cal = Calibration::default();
    let grid = ImageGrid { width: 20, height: 10, calibration: Some(cal.clone()) };
    let landmarks = grid_landmarks(&t, &grid, &cal);
    fs::write(dir("bigwarp_csv").join("grid.csv"), landmarks_csv(&landmarks))?;
    fs::write(dir("bigwarp_json").join("grid.json"), landmarks_json(&landmarks, TransformKind::Similarity))?;

    tch::manual_seed(0);
    let net = NetConfig { init_filters: 4, growth_rate: 2, down_blocks: vec![1], up_blocks: vec![1], bottleneck_layers: 1, ..NetConfig::small(1, 1) };
    let modality = |n: &str| Modality { name: n.into(), preprocess: Preprocess::Scale, net: net.clone() };
    Model::new([modality("A"), modality("B")], tch::Device::Cpu)?.save(&dir("model_file").join("tiny.safetensors"))?;
    Ok(())
}
