//! Outputs are replaced atomically: a write that fails half-way (an interrupted save) leaves
//! the previous file intact and no temporary file behind.
use comir::files::write_atomically;
use std::io::Write;

#[test]
fn an_interrupted_write_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, b"the previous, complete model").unwrap();
    let err = write_atomically(&path, |out| {
        out.write_all(b"half of the new mo")?;
        Err("interrupted".into())
    })
    .unwrap_err();
    assert!(err.to_string().contains("model.safetensors") && err.to_string().contains("interrupted"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"the previous, complete model");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

#[test]
fn a_completed_write_replaces_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.json");
    std::fs::write(&path, b"old").unwrap();
    write_atomically(&path, |out| Ok(out.write_all(b"new")?)).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new");
}

#[test]
fn cancelled_training_still_writes_a_complete_model() {
    use comir::model::preprocess::Preprocess;
    use comir::model::train::TrainConfig;
    use comir::progress::CancelFlag;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.safetensors");
    let plane = ndarray::Array2::from_shape_fn((64, 64), |(y, x)| ((x * 7 + y * 3) % 17) as f32 / 17.0);
    let image = comir::Image { data: plane.insert_axis(ndarray::Axis(0)).insert_axis(ndarray::Axis(0)), pixel_type: comir::image::PixelType::F32, calibration: Default::default() };
    let new = comir::NewModel { names: ["A".into(), "B".into()], preprocess: [Preprocess::Scale; 2], size: "small".into(), channels: 1, start: comir::Start::Random };
    let cancel = CancelFlag::default();
    cancel.cancel();
    let config = TrainConfig { steps: 10, patch_size: 32, ..Default::default() };
    let (_, report) = comir::train_model(&[(image.clone(), image)], None, &new, None, &config, &out, None, &cancel).unwrap();
    assert!(report.cancelled);
    let back = comir::model::store::Model::load(&out, tch::Device::Cpu).unwrap();
    assert_eq!(back.header.steps_trained, 0);
}
