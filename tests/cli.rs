//! The `comir` command line on real files.
use comir::image::io::{read_image, write_tiff};
use comir::image::{Image, PixelType};
use comir::{Affine2, TransformFile, TransformKind};
use std::process::Command;

fn comir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_comir"))
}

/// `img` written twice (a.tif, b.tif) in `dir`: a pair to register.
fn two_copies(dir: &std::path::Path, img: &Image) -> (std::path::PathBuf, std::path::PathBuf) {
    let (a, b) = (dir.join("a.tif"), dir.join("b.tif"));
    write_tiff(&a, img).unwrap();
    write_tiff(&b, img).unwrap();
    (a, b)
}

#[test]
fn apply_writes_the_warped_image_and_a_preview() {
    let dir = tempfile::tempdir().unwrap();
    let mut img = Image::zeros(1, 1, 20, 30, PixelType::U16).unwrap();
    for ((_, _, y, x), v) in img.data.indexed_iter_mut() {
        *v = (y * 100 + x) as f32;
    }
    let input = dir.path().join("in.tif");
    write_tiff(&input, &img).unwrap();
    let transform = dir.path().join("t.json");
    TransformFile::new(TransformKind::Translation, Affine2::translation(3.0, 2.0)).write(&transform).unwrap();
    let (output, preview) = (dir.path().join("out.tif"), dir.path().join("out.png"));
    let status = comir()
        .args(["apply", "--transform"]).arg(&transform)
        .arg("--input").arg(&input).arg("--output").arg(&output).arg("--preview").arg(&preview)
        .args(["--size", "10x8"])
        .status().unwrap();
    assert!(status.success());
    let out = read_image(&output).unwrap();
    assert_eq!((out.width(), out.height(), out.pixel_type), (10, 8, PixelType::U16));
    assert_eq!(out.data[[0, 0, 5, 4]], ((5 + 2) * 100 + 4 + 3) as f32);
    assert!(image::open(&preview).unwrap().width() == 10);
}

#[test]
fn apply_fails_cleanly_on_bad_input_and_never_overwrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.tif");
    write_tiff(&input, &Image::zeros(1, 1, 4, 4, PixelType::U8).unwrap()).unwrap();
    let before = std::fs::read(&input).unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    let out = comir().args(["apply", "--transform"]).arg(&bad).arg("--input").arg(&input).arg("--output").arg(dir.path().join("o.tif")).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a refused input exits 1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: invalid transform file") && stderr.contains("bad.json"), "{stderr}");
    let missing = comir().args(["apply", "--transform"]).arg(good_missing(dir.path())).arg("--input").arg(dir.path().join("absent.tif"))
        .arg("--output").arg(dir.path().join("o.tif")).output().unwrap();
    assert_eq!(missing.status.code(), Some(3), "a file that cannot be read exits 3: {}", String::from_utf8_lossy(&missing.stderr));
    assert!(!dir.path().join("o.tif").exists());

    let good = dir.path().join("t.json");
    TransformFile::new(TransformKind::Translation, Affine2::IDENTITY).write(&good).unwrap();
    let out = comir().args(["apply", "--transform"]).arg(&good).arg("--input").arg(&input).arg("--output").arg(&input).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must not overwrite"));
    assert_eq!(std::fs::read(&input).unwrap(), before);
}

/// An identity transform file in `dir` (for calls that must fail on something else).
fn good_missing(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("identity.json");
    TransformFile::new(TransformKind::Translation, Affine2::IDENTITY).write(&path).unwrap();
    path
}

#[test]
fn info_runs_libtorch() {
    let out = comir().arg("info").output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("conv2d check: 36"), "{stdout}");
}

#[test]
fn batch_registers_a_folder_and_prints_the_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut img = Image::zeros(1, 1, 64, 64, PixelType::F32).unwrap();
    for ((_, _, y, x), v) in img.data.indexed_iter_mut() {
        *v = ((x as f32 / 5.0).sin() * (y as f32 / 7.0).cos()).abs();
    }
    write_tiff(&dir.path().join("p_a.tif"), &img).unwrap();
    write_tiff(&dir.path().join("p_b.tif"), &img).unwrap();
    std::fs::write(dir.path().join("q_a.tif"), b"II*\0").unwrap();
    std::fs::write(dir.path().join("q_b.tif"), b"II*\0").unwrap();
    let out_dir = dir.path().join("out");
    let out = comir()
        .args(["batch", "--dir"]).arg(dir.path())
        .args(["--fixed-suffix", "_a.tif", "--moving-suffix", "_b.tif", "--method", "mi", "--small-rotation", "--out"]).arg(&out_dir)
        .output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("2 pair(s)") && stdout.contains("1 error"), "{stdout}");
    let summary = std::fs::read_to_string(out_dir.join("summary.csv")).unwrap();
    assert!(summary.lines().nth(1).unwrap().starts_with("\"p\","), "{summary}");
    assert!(out_dir.join("p").join("warped.tif").is_file());

    let typo = comir().args(["batch", "--dir"]).arg(dir.path()).args(["--fixed-suffix", "_a.tif", "--moving-suffix", "_c.tif", "--out"]).arg(&out_dir).output().unwrap();
    assert!(!typo.status.success());
    assert!(String::from_utf8_lossy(&typo.stderr).contains("no moving image"));
}

/// `comir train` starts from the library's defaults, the same the Fiji Train command uses
/// (before, the CLI scaled by the pixel type while Fiji used percentiles, and only Fiji saved
/// checkpoints: one user got different models from the two front ends).
#[test]
fn train_defaults_are_the_library_defaults() {
    let out = comir().args(["train", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).replace('\n', " ");
    let default_of = |flag: &str| -> String {
        let at = help.find(flag).unwrap_or_else(|| panic!("{flag} missing from --help"));
        let rest = &help[at..];
        let d = rest.find("[default: ").expect("a default") + "[default: ".len();
        rest[d..d + rest[d..].find(']').unwrap()].to_string()
    };
    let (new, config) = (comir::NewModel::default(), comir::model::train::TrainConfig::default());
    assert_eq!(default_of("--preprocess-a"), new.preprocess[0].to_string());
    assert_eq!(default_of("--preprocess-b"), new.preprocess[1].to_string());
    assert_eq!(default_of("--size"), new.size);
    assert_eq!(default_of("--channels"), new.channels.to_string());
    assert_eq!(default_of("--steps"), config.steps.to_string());
    assert_eq!(default_of("--checkpoint-every"), config.checkpoint_every.to_string());
    assert_eq!(default_of("--start"), new.start.to_string());
    assert_eq!(new.preprocess[0], comir::model::preprocess::Preprocess::Percentile);
}

/// A registration that would not fit into the available memory is refused before it starts,
/// with the numbers (a 20000² pair peaked at 21 GB and an OOM kill takes Fiji with it).
#[test]
fn registration_that_does_not_fit_is_refused_up_front() {
    use comir::memory::check_registration_fits;
    let err = check_registration_fits((20000, 20000), (20000, 20000), Some(16_000_000_000)).unwrap_err().to_string();
    assert!(err.contains("20000×20000") && err.contains("19.2 GB") && err.contains("16.0 GB"), "{err}");
    assert!(check_registration_fits((20000, 20000), (20000, 20000), Some(32_000_000_000)).is_ok());
    assert!(check_registration_fits((2000, 2000), (2000, 2000), None).is_ok(), "unknown memory: nothing refused");

    let dir = tempfile::tempdir().unwrap();
    let mut img = Image::zeros(1, 1, 64, 64, PixelType::U8).unwrap();
    for ((_, _, y, x), v) in img.data.indexed_iter_mut() {
        *v = ((x * 7 + y * 13) % 256) as f32;
    }
    let (a, b) = two_copies(dir.path(), &img);
    let out = comir()
        .env("COMIR_AVAILABLE_MEMORY", "10000")
        .args(["register", "--fixed"]).arg(&a).arg("--moving").arg(&b).arg("--out").arg(dir.path().join("r"))
        .output().unwrap();
    assert_eq!(out.status.code(), Some(4), "not enough memory exits 4");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs about") && stderr.contains("is available"), "{stderr}");
    assert!(!dir.path().join("r").exists(), "nothing written");
}

/// `comir register --verbose` prints where the time went; report.json carries the same steps.
#[test]
fn register_verbose_prints_a_profile() {
    let dir = tempfile::tempdir().unwrap();
    let mut img = Image::zeros(1, 1, 96, 96, PixelType::U8).unwrap();
    for ((_, _, y, x), v) in img.data.indexed_iter_mut() {
        *v = (((x as f32 * 0.3).sin() * (y as f32 * 0.2).cos() + 1.0) * 120.0).round();
    }
    let (a, b) = two_copies(dir.path(), &img);
    let wall = std::time::Instant::now();
    let out = comir()
        .args(["register", "--verbose", "--small-rotation", "--fixed"]).arg(&a).arg("--moving").arg(&b).arg("--out").arg(dir.path().join("r"))
        .output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for step in ["load (images, model)", "mi", "write outputs", "total"] {
        assert!(stderr.contains(&format!("{step}:")), "{step} missing from:\n{stderr}");
    }
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("r/report.json")).unwrap()).unwrap();
    let timings = report["timings_seconds"].as_object().unwrap();
    assert!(timings.contains_key("load (images, model)") && timings.contains_key("mi"), "{timings:?}");
    assert!(timings.values().all(|v| v.as_f64().unwrap() >= 0.0));
    // The process's start-up (libtorch's, before main) is a step: it lies within the command's
    // wall time, and the steps together do not exceed it.
    let wall = wall.elapsed().as_secs_f64();
    let start_up = timings.get("start-up (libtorch, before main)").and_then(|v| v.as_f64());
    assert!(start_up.is_some_and(|s| s > 0.0 && s < wall), "start-up {start_up:?} of {wall} s: {timings:?}");
    let steps: f64 = timings.values().map(|v| v.as_f64().unwrap()).sum();
    assert!(steps <= wall, "steps {steps} s in a command of {wall} s: {timings:?}");
    assert!(stderr.contains("start-up (libtorch, before main):"), "{stderr}");
}

/// `comir apply` reads BigWarp landmarks like Fiji's Apply Transform does (before: "not valid
/// JSON"), placing them with each image's pixel size: fixed 0.5 µm, moving 1 µm.
#[test]
fn apply_reads_bigwarp_landmarks_with_the_fixed_image() {
    let dir = tempfile::tempdir().unwrap();
    let cal = |p: f64| comir::image::Calibration { pixel_width: p, pixel_height: p, unit: "micron".into() };
    let mut moving = Image::zeros(1, 1, 40, 50, PixelType::U16).unwrap();
    for ((_, _, y, x), v) in moving.data.indexed_iter_mut() {
        *v = (x * 3 + y * 100) as f32;
    }
    moving.calibration = cal(1.0);
    let mut fixed = Image::zeros(1, 1, 80, 100, PixelType::U16).unwrap();
    fixed.calibration = cal(0.5);
    let (mp, fp) = (dir.path().join("moving.tif"), dir.path().join("fixed.tif"));
    write_tiff(&mp, &moving).unwrap();
    write_tiff(&fp, &fixed).unwrap();
    let csv: String = [(0.0, 0.0), (40.0, 0.0), (0.0, 30.0), (40.0, 30.0)]
        .iter()
        .enumerate()
        .map(|(i, (x, y))| format!("\"Pt-{i}\",\"true\",\"{x}\",\"{y}\",\"{x}\",\"{y}\"\n"))
        .collect();
    let landmarks = dir.path().join("landmarks.csv");
    std::fs::write(&landmarks, csv).unwrap();
    let output = dir.path().join("out.tif");
    let status = comir().args(["apply", "--transform"]).arg(&landmarks).arg("--fixed").arg(&fp)
        .arg("--input").arg(&mp).arg("--output").arg(&output).status().unwrap();
    assert!(status.success());
    let out = read_image(&output).unwrap();
    assert_eq!((out.width(), out.height()), (100, 80), "the fixed grid");
    assert!((out.calibration.pixel_width - 0.5).abs() < 1e-9, "{:?}", out.calibration);
    for (x, y) in [(0, 0), (10, 7), (24, 19)] {
        assert_eq!(out.data[[0, 0, 2 * y, 2 * x]], moving.data[[0, 0, y, x]], "fixed ({}, {})", 2 * x, 2 * y);
    }
    let refused = comir().args(["apply", "--transform"]).arg(&landmarks)
        .arg("--input").arg(&mp).arg("--output").arg(dir.path().join("x.tif")).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("fixed (target) image"));
}

/// A stack's slices: the first by default (said on stderr), or their maximum projection. Here
/// the structures lie in the middle slice only, as in a z-stack with one slice in focus.
#[test]
fn register_uses_the_max_projection_of_a_stack_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = |dx: f32, dy: f32| {
        move |x: f32, y: f32| {
            let centres = [(30.0, 25.0, 9.0), (70.0, 40.0, 6.0), (45.0, 75.0, 12.0), (80.0, 85.0, 5.0), (20.0, 70.0, 4.0)];
            centres.iter().map(|&(cx, cy, r): &(f32, f32, f32)| (-((x - dx - cx).powi(2) + (y - dy - cy).powi(2)) / (r * r)).exp()).sum::<f32>() * 200.0
        }
    };
    let mut fixed = Image::zeros(1, 1, 112, 112, PixelType::F32).unwrap();
    let f = blobs(0.0, 0.0);
    for ((_, _, y, x), v) in fixed.data.indexed_iter_mut() {
        *v = f(x as f32, y as f32);
    }
    let mut moving = Image::zeros(3, 1, 112, 112, PixelType::F32).unwrap();
    let m = blobs(5.0, -3.0);
    for ((z, _, y, x), v) in moving.data.indexed_iter_mut() {
        *v = if z == 1 { m(x as f32, y as f32) } else { 0.0 };
    }
    let (a, b) = (dir.path().join("fixed.tif"), dir.path().join("moving-stack.tif"));
    write_tiff(&a, &fixed).unwrap();
    write_tiff(&b, &moving).unwrap();
    let run = |extra: &[&str], out: &str| {
        comir().args(["register", "--method", "mi", "--transform", "translation", "--small-rotation", "--fixed"]).arg(&a).arg("--moving").arg(&b).arg("--out").arg(dir.path().join(out)).args(extra).output().unwrap()
    };
    let first = run(&[], "first");
    assert!(String::from_utf8_lossy(&first.stderr).contains("has 3 slices: registering the first"), "{}", String::from_utf8_lossy(&first.stderr));
    let out = run(&["--stack", "max-projection"], "max");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t = TransformFile::read(&dir.path().join("max/transform.json")).unwrap();
    let (tx, ty) = t.fixed_to_moving.apply(0.0, 0.0);
    assert!((tx - 5.0).abs() < 0.5 && (ty + 3.0).abs() < 0.5, "translation ({tx}, {ty})");
    assert_eq!(read_image(&dir.path().join("max/warped.tif")).unwrap().slices(), 3, "every slice is warped");
    let every = run(&["--stack", "every-plane"], "every");
    assert!(!every.status.success() && String::from_utf8_lossy(&every.stderr).contains("comir batch"));
}
