//! Batch registration of a folder: pairing by file-name endings, per-pair outputs, a summary
//! that records failures without stopping, cancellation.
mod common;
use comir::batch::{find_pairs, register_all};
use comir::image::io::{read_image, write_tiff};
use comir::image::{Image, PixelType};
use comir::progress::{CancelFlag, Silent};
use comir::register::pipeline::RegisterOptions;
use comir::Affine2;
use std::path::Path;

fn save(path: &Path, plane: &ndarray::Array2<f32>) {
    let (h, w) = plane.dim();
    let mut img = Image::zeros(1, 1, h, w, PixelType::F32).unwrap();
    img.data.slice_mut(ndarray::s![0, 0, .., ..]).assign(plane);
    write_tiff(path, &img).unwrap();
}

#[test]
fn pairs_are_found_by_their_endings_and_typos_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["b_he.tif", "b_if.tif", "a_he.tif", "a_if.tif", "notes.txt"] {
        std::fs::write(dir.path().join(f), b"x").unwrap();
    }
    let pairs = find_pairs(dir.path(), "_he.tif", "_if.tif").unwrap();
    assert_eq!(pairs.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(pairs[0].moving, dir.path().join("a_if.tif"));

    let err = find_pairs(dir.path(), "_he.tif", "_IF.tif").unwrap_err().to_string();
    assert!(err.contains("a_he.tif") && err.contains("_IF.tif"), "{err}");
    let err = find_pairs(dir.path(), "_x.tif", "_y.tif").unwrap_err().to_string();
    assert!(err.contains("no image pairs"), "{err}");
    assert!(find_pairs(dir.path(), "_he.tif", "_he.tif").is_err());
    assert!(find_pairs(&dir.path().join("missing"), "_he.tif", "_if.tif").unwrap_err().to_string().contains("missing"));
}

#[test]
fn every_pair_is_registered_and_a_broken_one_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let truths = [
        Affine2::rotation_about(0.1, 99.5, 89.5).compose(&Affine2::translation(6.0, -4.0)),
        Affine2::rotation_about(-0.15, 99.5, 89.5).compose(&Affine2::translation(-3.0, 5.0)),
    ];
    for (i, truth) in truths.iter().enumerate() {
        let (fixed, moving) = common::view_pair(200, 180, truth, 11 + i as u64);
        save(&dir.path().join(format!("s{i}_fixed.tif")), &fixed);
        save(&dir.path().join(format!("s{i}_moving.tif")), &common::other_modality(&moving));
    }
    std::fs::write(dir.path().join("s2_fixed.tif"), b"II*\0 truncated").unwrap();
    std::fs::write(dir.path().join("s2_moving.tif"), b"II*\0 truncated").unwrap();
    let out = dir.path().join("results");
    let pairs = find_pairs(dir.path(), "_fixed.tif", "_moving.tif").unwrap();
    let options = RegisterOptions { any_rotation: false, ..Default::default() };
    let results = register_all(&pairs, &out, None, &options, &Silent).unwrap();

    assert_eq!(results.len(), 3);
    for (r, truth) in results.iter().zip(&truths) {
        let s = r.outcome.as_ref().unwrap();
        assert!(s.passed, "{}: {}", r.pair.name, s.reason);
        let tf = comir::TransformFile::read(&out.join(&r.pair.name).join("transform.json")).unwrap();
        assert!(common::corner_error(&tf.fixed_to_moving, truth, 200, 180) < 2.0);
        let warped = read_image(&out.join(&r.pair.name).join("warped.tif")).unwrap();
        assert_eq!((warped.width(), warped.height()), (200, 180));
        assert!(out.join(&r.pair.name).join("bigwarp-landmarks.csv").is_file());
    }
    let broken = results[2].outcome.as_ref().unwrap_err();
    assert!(broken.contains("s2_fixed.tif"), "{broken}");

    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines.len(), 4, "{summary}");
    assert!(lines[0].starts_with("name,status,"));
    assert!(lines[1].starts_with("\"s0\",pass,mi,"), "{}", lines[1]);
    assert!(lines[3].starts_with("\"s2\",error,"), "{}", lines[3]);
    // The recovered angle in the CSV is the truth's (0.1 rad).
    let angle: f64 = lines[1].split(',').nth(3).unwrap().parse().unwrap();
    assert!((angle - 0.1f64.to_degrees()).abs() < 0.5, "{angle}");
}

#[test]
fn a_cancelled_batch_stops_before_the_next_pair() {
    let dir = tempfile::tempdir().unwrap();
    let (fixed, moving) = common::view_pair(64, 64, &Affine2::IDENTITY, 3);
    save(&dir.path().join("a_f.tif"), &fixed);
    save(&dir.path().join("a_m.tif"), &moving);
    let pairs = find_pairs(dir.path(), "_f.tif", "_m.tif").unwrap();
    let flag = CancelFlag::default();
    flag.cancel();
    let err = register_all(&pairs, &dir.path().join("out"), None, &RegisterOptions::default(), &flag).unwrap_err();
    assert!(matches!(err, comir::Error::Cancelled), "{err}");
    assert!(!dir.path().join("out").join("a").exists());
}
