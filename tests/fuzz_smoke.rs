//! Bounded fuzzing in CI: thousands of mutated inputs for every parser of untrusted files
//! (TIFF, PNG, model files, transform JSON, BigWarp CSV/JSON). Errors are fine; a panic is a
//! bug (across JNI it would be turned into an exception, but it must not happen at all).
use comir::export::bigwarp::{parse_csv, parse_json};
use comir::export::transform_file::TransformFile;
use comir::image::io::{read_image, write_tiff};
use comir::image::{Image, PixelType};
use comir::rng::Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next_u64() as u8;
            }
            2 => v.truncate(rng.below(v.len() + 1)),
            3 => {
                let i = rng.below(v.len() + 1);
                v.insert(i, [0u8, 0xff, b'"', b',', b'{', b'9'][rng.below(6)]);
            }
            _ if v.len() > 8 => {
                // overwrite 4 bytes with a large number (sizes, offsets, counts)
                let i = rng.below(v.len() - 4);
                v[i..i + 4].copy_from_slice(&(u32::MAX - rng.below(1000) as u32).to_le_bytes());
            }
            _ => {}
        }
    }
    v
}

/// Run `parse` on `n` mutations of `seed`; returns (inputs tried, panics).
fn fuzz(seed: &[u8], n: usize, parse: impl Fn(&[u8])) -> (usize, usize) {
    let mut rng = Rng::new(seed.len() as u64);
    let mut panics = 0;
    for _ in 0..n {
        let input = mutate(seed, &mut rng);
        if catch_unwind(AssertUnwindSafe(|| parse(&input))).is_err() {
            panics += 1;
        }
    }
    (n, panics)
}

#[test]
fn parsers_never_panic_on_mutated_input() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {})); // keep the output readable; panics are counted
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input");
    let through_file = |bytes: &[u8], f: &dyn Fn(&Path)| {
        std::fs::write(&file, bytes).unwrap();
        f(&file);
    };

    let mut img = Image::zeros(2, 1, 9, 11, PixelType::U16).unwrap();
    img.data.iter_mut().enumerate().for_each(|(i, v)| *v = (i * 37 % 65536) as f32);
    let tif = dir.path().join("seed.tif");
    write_tiff(&tif, &img).unwrap();
    let tiff_seed = std::fs::read(&tif).unwrap();
    let png = dir.path().join("seed.png");
    image::RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8 * 30, y as u8 * 40, 9])).save(&png).unwrap();
    let png_seed = std::fs::read(&png).unwrap();
    let transform_seed = TransformFile::new(comir::TransformKind::Rigid, comir::Affine2::rotation_about(0.3, 5.0, 5.0)).to_json().unwrap();
    let csv_seed = "\"Pt-0\",\"true\",1.5,2.0,3.0,4.0\n\"Pt-1\",\"false\",5.0,6.0,7.0,8.0\n\"Pt-2\",\"true\",9.0,1.0E-4,2.0,3.0\n";
    let json_seed = r#"{"type":"Affine","landmarks":{"type":"BigWarpLandmarks","numDimensions":2,"movingPoints":[[1,2],[3,4],[5,7]],"fixedPoints":[[0,1],[2,3],[4,6]],"active":[true,true,true],"names":["a","b","c"]}}"#;
    tch::manual_seed(0);
    let net = comir::model::config::NetConfig { init_filters: 4, growth_rate: 2, down_blocks: vec![1], up_blocks: vec![1], bottleneck_layers: 1, ..comir::model::config::NetConfig::small(1, 1) };
    let modality = |n: &str| comir::model::store::Modality { name: n.into(), preprocess: comir::model::preprocess::Preprocess::Scale, net: net.clone() };
    let model_path = dir.path().join("seed.safetensors");
    comir::model::store::Model::new([modality("A"), modality("B")], tch::Device::Cpu).unwrap().save(&model_path).unwrap();
    let model_seed = std::fs::read(&model_path).unwrap();

    let results = [
        ("TIFF", fuzz(&tiff_seed, 3000, |b| through_file(b, &|p| { let _ = read_image(p); }))),
        ("PNG", fuzz(&png_seed, 2000, |b| through_file(b, &|p| { let _ = read_image(p); }))),
        ("model file", fuzz(&model_seed, 1000, |b| through_file(b, &|p| { let _ = comir::model::store::Model::load(p, tch::Device::Cpu); }))),
        ("transform JSON", fuzz(transform_seed.as_bytes(), 3000, |b| through_file(b, &|p| { let _ = TransformFile::read(p); }))),
        ("BigWarp CSV", fuzz(csv_seed.as_bytes(), 3000, |b| { let _ = parse_csv(&String::from_utf8_lossy(b)); })),
        ("BigWarp JSON", fuzz(json_seed.as_bytes(), 3000, |b| { let _ = parse_json(&String::from_utf8_lossy(b)); })),
    ];
    std::panic::set_hook(prev);
    let mut total = 0;
    for (name, (tried, panics)) in &results {
        println!("{name}: {tried} mutated inputs, {panics} panics");
        total += panics;
    }
    assert_eq!(total, 0, "{results:?}");
}
