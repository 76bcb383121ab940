//! The MultiRegEval protocol on one aligned image pair: random rigid transforms in levels of
//! difficulty, error = mean displacement of the four patch corners, success = error ≤ 2% of
//! the patch width.
use crate::error::{Error, Result};
use crate::image::Image;
use crate::rng::Rng;
use crate::model::store::Model;
use crate::progress::Monitor;
use crate::register::pipeline::{Method, RegisterOptions};
use crate::register::transform::{corner_error, Affine2};
use crate::register::warp::warp_image;
use serde::Serialize;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum EvalMethod {
    #[serde(rename = "CoMIR+SIFT")]
    ComirSift,
    #[serde(rename = "CoMIR+α-AMD")]
    ComirAmd,
    #[serde(rename = "CoMIR+MI")]
    ComirMi,
    #[serde(rename = "CoMIR+NCC")]
    ComirNcc,
    #[serde(rename = "MI")]
    Mi,
    /// `auto` with the model: every candidate (CoMIR+SIFT, CoMIR+α-AMD, MI on the originals),
    /// the most distinct passing one chosen.
    #[serde(rename = "auto")]
    Auto,
}

impl EvalMethod {
    pub fn label(self) -> &'static str {
        match self {
            EvalMethod::ComirSift => "CoMIR+SIFT",
            EvalMethod::ComirAmd => "CoMIR+α-AMD",
            EvalMethod::ComirMi => "CoMIR+MI",
            EvalMethod::ComirNcc => "CoMIR+NCC",
            EvalMethod::Mi => "MI",
            EvalMethod::Auto => "auto",
        }
    }
}

#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Square patch size (pixels).
    pub patch: usize,
    pub per_level: usize,
    /// Region of the pair to draw patches from: x, y, width, height.
    pub region: Option<[usize; 4]>,
    pub methods: Vec<EvalMethod>,
    pub seed: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct EvalRow {
    pub method: EvalMethod,
    /// 1–4: rotation up to 5·level degrees, translation up to 7·level px per 300 px;
    /// 5: any rotation, translation up to a quarter of the patch.
    pub level: usize,
    pub sample: usize,
    pub rotation_degrees: f64,
    pub error_px: f64,
    pub success: bool,
    pub quality_passed: bool,
    pub quality_score: f64,
    /// The best rival pose's score (shifted or turned): how distinct the found pose is.
    pub quality_rival: f64,
    pub seconds: f64,
    /// The candidate whose pose was kept ("sift", "mi on the CoMIRs", …): for `auto`, which
    /// one won.
    pub chosen: String,
    /// Every candidate tried with its verdict and distinctness ("sift fail 0.12; …").
    pub candidates: String,
    /// What the final refinement on the CoMIRs did with the pose: "kept 0.84", "kept far 8.03",
    /// "refused 12.10" (its move in pixels), "" when none ran. A refused move about the size of
    /// the error is a pose the CoMIRs placed better (session 35's silent wrong result).
    pub refinement: String,
}

/// The eval CSV's word for a refinement (see [`EvalRow::refinement`]).
fn refinement_label(r: Option<&crate::register::refine::Refinement>) -> String {
    match r {
        None => String::new(),
        Some(r) if r.kept && r.beyond_local => format!("kept far {:.2}", r.moved_px),
        Some(r) if r.kept => format!("kept {:.2}", r.moved_px),
        Some(r) => format!("refused {:.2}", r.moved_px),
    }
}

/// The protocol's success criterion: a mean corner error of at most 2 % of the patch width.
pub fn is_success(error_px: f64, width: usize) -> bool {
    error_px <= 0.02 * width as f64
}

/// A random rigid fixed → moving transform of `level` about the patch centre.
fn random_transform(level: usize, size: usize, rng: &mut Rng) -> (Affine2, f64) {
    let c = (size as f64 - 1.0) / 2.0;
    let sign = |rng: &mut Rng| if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
    let (angle, max_shift) = if level <= 4 {
        (sign(rng) * rng.range(5.0 * (level as f64 - 1.0), 5.0 * level as f64), 7.0 * level as f64 * size as f64 / 300.0)
    } else {
        (rng.range(-180.0, 180.0), size as f64 / 4.0)
    };
    let (tx, ty) = (rng.range(-max_shift, max_shift), rng.range(-max_shift, max_shift));
    (Affine2::translation(tx, ty).compose(&Affine2::rotation_about(angle.to_radians(), c, c)), angle)
}

/// Run the protocol: `fixed_image` and `moving_image` are aligned images of two modalities.
pub fn evaluate(fixed_image: &Image, moving_image: &Image, model: Option<(&Model, (usize, usize))>, options: &EvalOptions, monitor: &dyn Monitor) -> Result<Vec<EvalRow>> {
    let (w, h) = (fixed_image.width(), fixed_image.height());
    if (moving_image.width(), moving_image.height()) != (w, h) {
        return Err(Error::Size("evaluation needs an aligned pair of equal size".into()));
    }
    let [rx, ry, rw, rh] = options.region.unwrap_or([0, 0, w, h]);
    if rx + rw > w || ry + rh > h || rw < options.patch || rh < options.patch {
        return Err(Error::Region(format!("the region must lie inside the {w}×{h} images and hold a {0}×{0} patch", options.patch)));
    }
    let mut rng = Rng::new(options.seed);
    let mut rows = Vec::new();
    let s = options.patch;
    for level in 1..=5 {
        for sample in 0..options.per_level {
            if monitor.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let (truth, angle) = random_transform(level, s, &mut rng);
            let ox = rx as f64 + rng.range(0.0, (rw - s) as f64);
            let oy = ry as f64 + rng.range(0.0, (rh - s) as f64);
            let offset = Affine2::translation(ox, oy);
            let fixed = warp_image(fixed_image, &offset, s, s)?;
            // moving(q) = B(offset(truth⁻¹(q))): truth maps fixed patch → moving patch coordinates.
            let moving = warp_image(moving_image, &offset.compose(&truth.inverse()?), s, s)?;
            for &method in &options.methods {
                let (opts, with_model) = match method {
                    EvalMethod::ComirSift => (RegisterOptions { method: Method::Sift, ..Default::default() }, true),
                    EvalMethod::ComirAmd => (RegisterOptions { method: Method::AlphaAmd, ..Default::default() }, true),
                    EvalMethod::ComirMi => (RegisterOptions { method: Method::Mi, ..Default::default() }, true),
                    EvalMethod::ComirNcc => (RegisterOptions { method: Method::Ncc, ..Default::default() }, true),
                    EvalMethod::Mi => (RegisterOptions { method: Method::Mi, ..Default::default() }, false),
                    EvalMethod::Auto => (RegisterOptions { method: Method::Auto, ..Default::default() }, true),
                };
                if with_model && model.is_none() {
                    continue;
                }
                let t0 = Instant::now();
                let (reg, _) = crate::register(&fixed, &moving, if with_model { model } else { None }, &opts, monitor)?;
                let error = corner_error(&reg.transform, &truth, s, s);
                rows.push(EvalRow {
                    method,
                    level,
                    sample,
                    rotation_degrees: angle,
                    error_px: error,
                    success: is_success(error, s),
                    quality_passed: reg.quality.passed,
                    quality_score: reg.quality.score,
                    quality_rival: reg.quality.rival_score,
                    seconds: t0.elapsed().as_secs_f64(),
                    chosen: crate::register::pipeline::label(reg.method, reg.input),
                    candidates: reg.candidates.iter().map(|c| format!("{} {} {:.2}", c.label(), if c.passed { "pass" } else { "fail" }, c.distinctness)).collect::<Vec<_>>().join("; "),
                    refinement: refinement_label(reg.refinement.as_ref()),
                });
            }
            monitor.report(&crate::progress::Progress { done: ((level - 1) * options.per_level + sample + 1) as u64, total: (5 * options.per_level) as u64, message: format!("level {level}") });
        }
    }
    Ok(rows)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// A text table: success rate, median error and time per method and level, and how often
/// the quality flag agreed with the truth.
/// The methods that have rows, in table order.
pub fn methods_in(rows: &[EvalRow]) -> Vec<EvalMethod> {
    let mut methods: Vec<EvalMethod> = rows.iter().map(|r| r.method).collect();
    methods.sort_by_key(|m| *m as u8);
    methods.dedup();
    methods
}

pub fn summary(rows: &[EvalRow]) -> String {
    let mut out = format!("{:<12} {:>5} {:>9} {:>12} {:>9} {:>16} {:>16}\n", "method", "level", "success", "median err", "median s", "flag pass→succ", "flag fail→fail");
    for m in methods_in(rows) {
        for level in 1..=5 {
            let r: Vec<&EvalRow> = rows.iter().filter(|r| r.method == m && r.level == level).collect();
            if r.is_empty() {
                continue;
            }
            let success = r.iter().filter(|x| x.success).count();
            let passed: Vec<&&EvalRow> = r.iter().filter(|x| x.quality_passed).collect();
            let failed: Vec<&&EvalRow> = r.iter().filter(|x| !x.quality_passed).collect();
            let frac = |n: usize, d: usize| if d == 0 { "-".to_string() } else { format!("{n}/{d}") };
            out += &format!(
                "{:<12} {:>5} {:>8.0}% {:>10.2}px {:>9.2} {:>16} {:>16}\n",
                m.label(),
                level,
                100.0 * success as f64 / r.len() as f64,
                median(r.iter().map(|x| x.error_px).collect()),
                median(r.iter().map(|x| x.seconds).collect()),
                frac(passed.iter().filter(|x| x.success).count(), passed.len()),
                frac(failed.iter().filter(|x| !x.success).count(), failed.len()),
            );
        }
    }
    out
}

pub fn csv(rows: &[EvalRow]) -> String {
    let mut out = String::from("method,level,sample,rotation_degrees,error_px,success,quality_passed,quality_score,quality_rival,seconds,chosen,candidates,refinement\n");
    for r in rows {
        out += &format!("{},{},{},{:.3},{:.4},{},{},{:.4},{:.4},{:.3},{},{},{}\n", r.method.label(), r.level, r.sample, r.rotation_degrees, r.error_px, r.success, r.quality_passed, r.quality_score, r.quality_rival, r.seconds, r.chosen, r.candidates, r.refinement);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::register::refine::Refinement;

    #[test]
    fn the_csv_says_what_the_refinement_did_with_each_pose() {
        let r = |kept, beyond_local, moved_px| Refinement { moved_px, kept, beyond_local, why_not: if kept { String::new() } else { "far".into() } };
        assert_eq!(refinement_label(None), "");
        assert_eq!(refinement_label(Some(&r(true, false, 0.844))), "kept 0.84");
        assert_eq!(refinement_label(Some(&r(true, true, 8.029))), "kept far 8.03");
        assert_eq!(refinement_label(Some(&r(false, false, 12.1))), "refused 12.10");
        let row = EvalRow { method: EvalMethod::ComirAmd, level: 4, sample: 3, rotation_degrees: -16.7, error_px: 0.73, success: true, quality_passed: true, quality_score: 0.5, quality_rival: 0.2, seconds: 0.3, chosen: "alpha-amd".into(), candidates: "alpha-amd pass 0.54".into(), refinement: refinement_label(Some(&r(true, true, 8.029))) };
        let text = csv(&[row]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with(",chosen,candidates,refinement"), "{}", lines[0]);
        assert!(lines[1].ends_with(",alpha-amd,alpha-amd pass 0.54,kept far 8.03"), "{}", lines[1]);
        assert_eq!(lines[0].split(',').count(), lines[1].split(',').count());
    }
}
