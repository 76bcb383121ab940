//! Replays the fuzzers' corpus and any crashers they found (fuzz/corpus/<target>/,
//! fuzz/artifacts/<target>/, written by scripts/fuzz.sh) through the same parsers the fuzz
//! targets call, so every input that once mattered stays a regression test.
use comir::export::bigwarp::{fit_landmarks, parse_csv, parse_json};
use comir::export::transform_file::TransformFile;
use comir::image::io::decode_image;
use comir::image::Calibration;
use comir::model::store::Model;
use comir::TransformKind;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files: Vec<PathBuf> = ["corpus", "artifacts"]
        .iter()
        .filter_map(|d| std::fs::read_dir(root.join(d).join(target)).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn fit_all(landmarks: &[comir::export::bigwarp::Landmark], kinds: &[TransformKind]) {
    let cal = Calibration::default();
    for &kind in kinds {
        let _ = fit_landmarks(landmarks, kind, &cal, &cal);
    }
}

fn parse(target: &str, bytes: &[u8]) {
    let text = std::str::from_utf8(bytes);
    match target {
        "decode_image" => drop(decode_image(bytes)),
        "model_file" => drop(Model::from_bytes(bytes, Path::new("corpus"), tch::Device::Cpu)),
        "transform_json" => drop(text.map(|t| TransformFile::from_json(t, Path::new("corpus")))),
        "bigwarp_csv" => {
            if let Ok(l) = text.map_err(|_| ()).and_then(|t| parse_csv(t).map_err(|_| ())) {
                fit_all(&l, &[TransformKind::Rigid, TransformKind::Similarity, TransformKind::Affine]);
            }
        }
        "bigwarp_json" => {
            if let Ok((l, kind)) = text.map_err(|_| ()).and_then(|t| parse_json(t).map_err(|_| ())) {
                fit_all(&l, &[kind.unwrap_or(TransformKind::Affine)]);
            }
        }
        other => panic!("unknown fuzz target {other}"),
    }
}

#[test]
fn fuzz_corpus_and_crashers_parse_without_panics() {
    // Same bound as scripts/fuzz.sh: big declared sizes must be refused, not allocated.
    std::env::set_var("COMIR_MAX_IMAGE_BYTES", "67108864");
    let mut tried = 0;
    let mut panicked = Vec::new();
    for target in ["decode_image", "model_file", "transform_json", "bigwarp_csv", "bigwarp_json"] {
        let files = inputs(target);
        assert!(!files.is_empty(), "the corpus of {target} is missing");
        for path in files {
            let bytes = std::fs::read(&path).unwrap();
            tried += 1;
            if catch_unwind(AssertUnwindSafe(|| parse(target, &bytes))).is_err() {
                panicked.push(path);
            }
        }
    }
    assert!(panicked.is_empty(), "{} of {tried} corpus inputs panicked: {panicked:?}", panicked.len());
    println!("{tried} corpus inputs replayed, 0 panics");
}
