//! The command line without libtorch (target/bin/comir, made by scripts/build.sh, which
//! `make test` runs first) against the build with it (the one cargo builds for these tests):
//! the same outputs to the last byte, training handed over, bad model files refused.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The build without libtorch, beside its comir-torch.
fn lite() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bin/comir");
    assert!(path.is_file(), "{} is missing: run scripts/build.sh first (make test does)", path.display());
    path
}

fn torch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_comir"))
}

fn run(mut command: Command) -> Output {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The shipped model, and a pair it registers: the demo's stains, the moving one turned.
fn demo_pair(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let stains = dir.join("stains");
    let mut unmix = Command::new(lite());
    unmix.args(["unmix", "--input"]).arg(root.join(".deps/demo/ihc.png")).arg("--out-dir").arg(&stains);
    run(unmix);
    let moved = dir.join("moved.tif");
    let mut apply = Command::new(lite());
    apply.args(["apply", "--transform"]).arg(root.join("demo/transform.json")).arg("--input").arg(stains.join("dab.tif")).arg("--output").arg(&moved);
    run(apply);
    (root.join("models/ihc-hdab-small.safetensors"), stains.join("hematoxylin.tif"), moved)
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names.into_iter().map(|n| (n.clone(), std::fs::read(dir.join(&n)).unwrap())).collect()
}

/// `register` gives byte for byte the files of the libtorch build (report.json but its
/// timings), with the model (every method that uses it) and without (MI), and its profile
/// has no libtorch start-up.
#[test]
fn register_without_libtorch_writes_what_the_libtorch_build_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (model, fixed, moving) = demo_pair(dir.path());
    for method in ["auto", "sift", "alpha-amd", "mi"] {
        let mut outs = vec![];
        for (name, mut c) in [("lite", Command::new(lite())), ("torch", torch())] {
            let out = dir.path().join(format!("{method}-{name}"));
            c.args(["register", "--method", method, "--fixed"]).arg(&fixed).arg("--moving").arg(&moving).arg("--out").arg(&out);
            if method != "mi" {
                c.arg("--model").arg(&model);
            }
            run(c);
            outs.push(out);
        }
        let (a, b) = (files(&outs[0]), files(&outs[1]));
        assert_eq!(a.iter().map(|f| &f.0).collect::<Vec<_>>(), b.iter().map(|f| &f.0).collect::<Vec<_>>());
        assert!(a.iter().any(|(n, _)| n == "transform.json") && (method == "mi" || a.iter().any(|(n, _)| n == "comir-fixed.tif")), "{method}: {a:?}", a = a.iter().map(|f| &f.0).collect::<Vec<_>>());
        for ((name, x), (_, y)) in a.iter().zip(&b) {
            if name == "report.json" {
                let strip = |bytes: &[u8]| {
                    let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
                    let timings = v.as_object_mut().unwrap().remove("timings_seconds").unwrap();
                    (v, timings)
                };
                let ((x, tx), (y, ty)) = (strip(x), strip(y));
                assert_eq!(x, y, "{method}: report.json");
                assert!(tx.get("start-up (before main)").is_some() && ty.get("start-up (libtorch, before main)").is_some(), "{method}: {tx} / {ty}");
            } else {
                assert!(x == y, "{method}: {name} differs between the builds");
            }
        }
    }
}

/// `represent` gives the libtorch build's CoMIR, and `batch` its transforms.
#[test]
fn represent_and_batch_without_libtorch_match_the_libtorch_build() {
    let dir = tempfile::tempdir().unwrap();
    let (model, fixed, moving) = demo_pair(dir.path());
    let mut comirs = vec![];
    for (name, mut c) in [("lite", Command::new(lite())), ("torch", torch())] {
        let out = dir.path().join(format!("comir-{name}.tif"));
        c.args(["represent", "--modality", "DAB", "--model"]).arg(&model).arg("--input").arg(&moving).arg("--output").arg(&out);
        run(c);
        comirs.push(std::fs::read(out).unwrap());
    }
    assert!(comirs[0] == comirs[1], "the CoMIRs differ");
    let pairs = dir.path().join("pairs");
    std::fs::create_dir_all(&pairs).unwrap();
    std::fs::copy(&fixed, pairs.join("p1_fixed.tif")).unwrap();
    std::fs::copy(&moving, pairs.join("p1_moving.tif")).unwrap();
    let mut transforms = vec![];
    for (name, mut c) in [("lite", Command::new(lite())), ("torch", torch())] {
        let out = dir.path().join(format!("batch-{name}"));
        c.args(["batch", "--model"]).arg(&model).arg("--dir").arg(&pairs).args(["--fixed-suffix", "_fixed.tif", "--moving-suffix", "_moving.tif", "--out"]).arg(&out);
        run(c);
        let found: Vec<PathBuf> = walk(&out).into_iter().filter(|p| p.file_name().is_some_and(|n| n == "transform.json")).collect();
        assert_eq!(found.len(), 1, "{found:?}");
        transforms.push(std::fs::read(&found[0]).unwrap());
    }
    assert!(transforms[0] == transforms[1], "the batch transforms differ");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).unwrap().flat_map(|e| {
        let p = e.unwrap().path();
        if p.is_dir() { walk(&p) } else { vec![p] }
    }).collect()
}

/// What needs libtorch goes to comir-torch (`info` prints libtorch's version); without a
/// comir-torch beside it the command says so and fails, and writes nothing.
#[test]
fn commands_that_need_libtorch_go_to_comir_torch_or_say_it_is_missing() {
    let out = run({
        let mut c = Command::new(lite());
        c.arg("info");
        c
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("libtorch") && text.contains("conv2d check: 36"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("comir");
    std::fs::copy(lite(), &alone).unwrap();
    let model = dir.path().join("m.safetensors");
    let out = Command::new(&alone).args(["train", "--a", "x.tif", "--b", "y.tif", "--out"]).arg(&model).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("comir-torch") && stderr.contains("make build"), "{stderr}");
    assert!(!model.exists());
}

/// A model file that is not whole, or whose tensors do not fit its header, is refused by the
/// build without libtorch as by the other, naming the file.
#[test]
fn bad_model_files_are_refused_without_libtorch() {
    let dir = tempfile::tempdir().unwrap();
    let (model, fixed, moving) = demo_pair(dir.path());
    let bytes = std::fs::read(&model).unwrap();
    let truncated = dir.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    // The header's first network given another growth rate than its tensors have.
    let key = b"\\\"growth_rate\\\":";
    let at = bytes.windows(key.len()).position(|w| w == key).expect("the header names the growth rate") + key.len();
    let mut changed = bytes.clone();
    assert!(changed[at].is_ascii_digit() && !changed[at + 1].is_ascii_digit(), "one digit");
    changed[at] = if changed[at] == b'9' { b'7' } else { b'9' };
    let other = dir.path().join("other-architecture.safetensors");
    std::fs::write(&other, &changed).unwrap();
    for (file, words) in [(&truncated, "not a complete safetensors file"), (&other, "has shape")] {
        for mut c in [Command::new(lite()), torch()] {
            let out = c.args(["register", "--model"]).arg(file).arg("--fixed").arg(&fixed).arg("--moving").arg(&moving).arg("--out").arg(dir.path().join("r")).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success() && stderr.contains(file.file_name().unwrap().to_str().unwrap()) && stderr.contains(words), "{c:?}: {stderr}");
        }
    }
}
