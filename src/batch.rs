//! Batch registration: every pair of a folder (matched by file-name suffixes) registered with
//! one model and one set of options, each pair's outputs in its own subfolder, and one summary
//! CSV. A pair that fails is reported in the summary and the batch goes on.
use crate::error::{Error, Result};
use crate::export::bigwarp::write_text;
use crate::image::io::read_image;
use crate::model::store::Model;
use crate::progress::{Monitor, Progress};
use crate::register::pipeline::RegisterOptions;
use std::path::{Path, PathBuf};

/// One pair found in the input folder: `<name><fixed suffix>` and `<name><moving suffix>`.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    pub name: String,
    pub fixed: PathBuf,
    pub moving: PathBuf,
}

/// The pairs in `dir`, sorted by name. Fixed files without a moving partner are an error
/// (a typo in a suffix should not silently skip data).
pub fn find_pairs(dir: &Path, fixed_suffix: &str, moving_suffix: &str) -> Result<Vec<Pair>> {
    if fixed_suffix.is_empty() || moving_suffix.is_empty() || fixed_suffix == moving_suffix {
        return Err(Error::Batch("the fixed and moving file-name endings must be given and differ (e.g. _he.tif and _if.tif)".into()));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Error::Read { path: dir.to_path_buf(), source: e })?;
    let mut names: Vec<String> = entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
    names.sort();
    let mut pairs = Vec::new();
    let mut unmatched = Vec::new();
    for file in &names {
        let Some(name) = file.strip_suffix(fixed_suffix) else { continue };
        let partner = format!("{name}{moving_suffix}");
        if names.contains(&partner) {
            pairs.push(Pair { name: name.to_string(), fixed: dir.join(file), moving: dir.join(partner) });
        } else {
            unmatched.push(file.clone());
        }
    }
    if !unmatched.is_empty() {
        return Err(Error::Batch(format!("no moving image (ending \"{moving_suffix}\") for: {}", unmatched.join(", "))));
    }
    if pairs.is_empty() {
        return Err(Error::Batch(format!("no image pairs in {} (files ending \"{fixed_suffix}\" with a partner ending \"{moving_suffix}\")", dir.display())));
    }
    Ok(pairs)
}

/// The summary line of one pair.
#[derive(Clone, Debug)]
pub struct PairResult {
    pub pair: Pair,
    /// The registration's verdict and numbers, or the error that stopped this pair.
    pub outcome: std::result::Result<Summary, String>,
}

#[derive(Clone, Debug)]
pub struct Summary {
    pub passed: bool,
    pub reason: String,
    pub method: String,
    pub angle_degrees: f64,
    pub scale: f64,
    pub translation: (f64, f64),
    pub score: f64,
    pub seconds: f64,
}

/// Progress of the whole batch from the progress of the current pair.
struct PairStage<'a> {
    outer: &'a dyn Monitor,
    index: usize,
    count: usize,
}

impl Monitor for PairStage<'_> {
    fn report(&self, p: &Progress) {
        let fraction = if p.total > 0 { p.done as f64 / p.total as f64 } else { 0.0 };
        let done = ((self.index as f64 + fraction.min(1.0)) * 1000.0) as u64;
        self.outer.report(&Progress { done, total: self.count as u64 * 1000, message: format!("pair {}/{}: {}", self.index + 1, self.count, p.message) });
    }
    fn is_cancelled(&self) -> bool {
        self.outer.is_cancelled()
    }
}

fn register_pair(pair: &Pair, out: &Path, model: Option<&Model>, options: &RegisterOptions, monitor: &dyn Monitor) -> Result<Summary> {
    let start = std::time::Instant::now();
    let fixed = read_image(&pair.fixed)?;
    let moving = read_image(&pair.moving)?;
    let sides = model.map(|m| crate::model_sides(m, &fixed, &moving)).transpose()?;
    let (reg, comirs) = crate::register(&fixed, &moving, model.zip(sides), options, monitor)?;
    let inputs = serde_json::json!({"fixed": pair.fixed, "moving": pair.moving});
    crate::export::outputs::write_registration(&out.join(&pair.name), &fixed, &moving, &reg, comirs.as_ref(), inputs)?;
    let (angle_degrees, scale, translation) = reg.decompose();
    let method = reg.method.name().to_string();
    Ok(Summary { passed: reg.quality.passed, reason: reg.quality.reason.to_string(), method, angle_degrees, scale, translation, score: reg.quality.score, seconds: start.elapsed().as_secs_f64() })
}

/// Register every pair, writing `<out>/<name>/…` (as `comir register`) and `<out>/summary.csv`.
/// Errors of one pair are recorded and the batch continues; cancelling stops after the
/// current pair and still writes the summary of the pairs done.
pub fn register_all(pairs: &[Pair], out: &Path, model: Option<&Model>, options: &RegisterOptions, monitor: &dyn Monitor) -> Result<Vec<PairResult>> {
    std::fs::create_dir_all(out).map_err(|e| Error::Write { path: out.to_path_buf(), source: e })?;
    // The heap kept from pair to pair (not only within one): the next pair reuses the pages
    // the last one faulted in (see `model::heap`).
    let _heap = crate::model::heap::HeapReuse::begin();
    let mut results = Vec::new();
    for (index, pair) in pairs.iter().enumerate() {
        if monitor.is_cancelled() {
            break;
        }
        let stage = PairStage { outer: monitor, index, count: pairs.len() };
        let outcome = match register_pair(pair, out, model, options, &stage) {
            Err(Error::Cancelled) => break,
            other => other.map_err(|e| e.to_string()),
        };
        results.push(PairResult { pair: pair.clone(), outcome });
        write_text(&out.join("summary.csv"), &summary_csv(&results))?;
    }
    if results.is_empty() && monitor.is_cancelled() {
        return Err(Error::Cancelled);
    }
    Ok(results)
}

/// How many pairs passed the quality check, failed it, and could not be registered.
pub fn counts(results: &[PairResult]) -> [usize; 3] {
    let mut c = [0; 3];
    for r in results {
        c[match &r.outcome {
            Ok(s) if s.passed => 0,
            Ok(_) => 1,
            Err(_) => 2,
        }] += 1;
    }
    c
}

fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// One row per pair: name, status (pass / FAIL / error), method, rotation, scale, translation,
/// score, seconds, reason (the quality reason or the error message).
pub fn summary_csv(results: &[PairResult]) -> String {
    let mut s = String::from("name,status,method,rotation_degrees,scale,tx_px,ty_px,score,seconds,reason\n");
    for r in results {
        let line = match &r.outcome {
            Ok(m) => format!(
                "{},{},{},{:.6},{:.6},{:.4},{:.4},{:.6},{:.2},{}",
                csv_field(&r.pair.name), if m.passed { "pass" } else { "FAIL" }, m.method, m.angle_degrees, m.scale, m.translation.0, m.translation.1, m.score, m.seconds, csv_field(&m.reason)
            ),
            Err(e) => format!("{},error,,,,,,,,{}", csv_field(&r.pair.name), csv_field(e)),
        };
        s.push_str(&line);
        s.push('\n');
    }
    s
}

/// What a batch did, as both front ends report it (JSON across JNI).
#[derive(Clone, Debug, serde::Serialize)]
pub struct BatchOutcome {
    pub summary_csv_path: std::path::PathBuf,
    pub pass: usize,
    pub fail: usize,
    pub error: usize,
    /// The summary table itself (also written to `summary_csv_path`).
    pub summary_csv: String,
}

/// Find the pairs of `dir` (`NAME<fixed_suffix>` / `NAME<moving_suffix>`) and register them
/// all into `out` (see [`register_all`]): the batch of `comir batch` and Fiji's Batch Register.
pub fn run(dir: &Path, fixed_suffix: &str, moving_suffix: &str, out: &Path, model: Option<&Model>, options: &RegisterOptions, monitor: &dyn Monitor) -> Result<BatchOutcome> {
    let pairs = find_pairs(dir, fixed_suffix, moving_suffix)?;
    let results = register_all(&pairs, out, model, options, monitor)?;
    let [pass, fail, error] = counts(&results);
    Ok(BatchOutcome { summary_csv_path: out.join("summary.csv"), pass, fail, error, summary_csv: summary_csv(&results) })
}
