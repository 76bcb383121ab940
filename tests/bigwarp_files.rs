//! Landmark files as BigWarp itself writes them, read back to the transform they describe.
use comir::export::bigwarp::{import_landmarks, parse_csv, parse_json, read_landmarks, NamedType};
use comir::export::transform_file::{read_any, ImageGrid};
use comir::image::Calibration;
use comir::{Affine2, TransformKind};
use std::path::PathBuf;

fn cal(p: f64) -> Calibration {
    Calibration { pixel_width: p, pixel_height: p, unit: "micron".into() }
}

/// A file in a fresh temporary folder, removed when the returned guard drops.
fn temp_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    (dir, p)
}

/// World points of a known similarity: moving = 2·R(30°)·fixed + (5, −3).
fn known_pairs() -> Vec<((f64, f64), (f64, f64))> {
    let t = Affine2::similarity_about(30f64.to_radians(), 2.0, 0.0, 0.0).compose(&Affine2::IDENTITY);
    let t = Affine2::translation(5.0, -3.0).compose(&t);
    [(0.0, 0.0), (40.0, 0.0), (0.0, 30.0), (40.0, 30.0), (17.0, 11.0)].iter().map(|&f| (f, t.apply(f.0, f.1))).collect()
}

#[test]
fn csv_skips_unpaired_infinity_rows_and_reads_quoted_commas() {
    let mut csv = String::new();
    for (i, (f, m)) in known_pairs().iter().enumerate() {
        // A name with a comma inside quotes, as opencsv writes it.
        csv += &format!("\"Pt-{i}, nucleus\",\"true\",\"{}\",\"{}\",\"{}\",\"{}\"\n", m.0, m.1, f.0, f.1);
    }
    // A point placed in the moving image only: BigWarp writes Infinity for the other side.
    csv += "\"Pt-9\",\"true\",\"12.0\",\"8.0\",\"Infinity\",\"Infinity\"\n";
    let landmarks = parse_csv(&csv).expect("BigWarp's own CSV must be read");
    assert_eq!(landmarks.len(), 5, "the unpaired row is skipped");
    assert_eq!(landmarks[0].name, "Pt-0, nucleus");
    assert!(parse_csv("\"a\",\"true\",\"x\",\"1\",\"2\",\"3\"\n").unwrap_err().to_string().contains("moving x"));
}

#[test]
fn json_with_bare_infinity_is_read_and_unpaired_points_skipped() {
    let pairs = known_pairs();
    type Side = fn(&((f64, f64), (f64, f64))) -> (f64, f64);
    let pts = |f: Side| pairs.iter().map(|p| format!("[{}, {}]", f(p).0, f(p).1)).collect::<Vec<_>>().join(", ");
    let json = format!(
        r#"{{"type": "Similarity", "landmarks": {{"type": "BigWarpLandmarks", "numDimensions": 2,
            "movingPoints": [{}, [3.0, 4.0]], "fixedPoints": [{}, [Infinity, -Infinity]],
            "active": [true, true, true, true, true, true], "names": ["a", "b", "c", "d", "e", "Infinity \"quoted\""]}}}}"#,
        pts(|p| p.1),
        pts(|p| p.0)
    );
    let (landmarks, kind) = parse_json(&json).expect("Gson's special floats must be accepted");
    assert_eq!(kind, Some(TransformKind::Similarity));
    assert_eq!(landmarks.len(), 5);
    let (_dir, path) = temp_file("sim.json", &json);
    let fit = import_landmarks(&path, None, &cal(1.0), &cal(1.0)).unwrap();
    let (angle, scale, _) = fit.transform.decompose();
    assert!((angle - 30.0).abs() < 1e-6 && (scale - 2.0).abs() < 1e-9, "angle {angle} scale {scale}");
    assert!(fit.rms_residual < 1e-9);
}

#[test]
fn thin_plate_spline_is_refused_unless_a_linear_type_is_chosen() {
    let json = r#"{"type": "Thin Plate Spline", "landmarks": {"type": "BigWarpLandmarks", "numDimensions": 2,
        "movingPoints": [[0,0],[10,0],[0,10],[10,10]], "fixedPoints": [[0,0],[10,0],[0,10],[10,10]],
        "active": [true,true,true,true], "names": ["a","b","c","d"]}}"#;
    let (_dir, path) = temp_file("tps.json", json);
    assert_eq!(read_landmarks(&path).unwrap().1, NamedType::Unsupported("Thin Plate Spline".into()));
    let err = import_landmarks(&path, None, &cal(1.0), &cal(1.0)).unwrap_err().to_string();
    assert!(err.contains("Thin Plate Spline") && err.contains("cannot apply"), "{err}");
    let grid = ImageGrid { width: 20, height: 20, calibration: Some(cal(1.0)) };
    assert!(read_any(&path, Some(&grid), &cal(1.0)).is_err(), "Apply Transform must not fit it silently either");
    // Chosen explicitly, an affine fit is what the user asked for.
    assert!(import_landmarks(&path, Some(TransformKind::Affine), &cal(1.0), &cal(1.0)).is_ok());
}

#[test]
fn landmarks_use_the_fixed_pixel_size_for_fixed_points() {
    // Same world positions (identity in µm); fixed pixels are 0.5 µm, moving pixels 1 µm.
    let csv: String = [(0.0, 0.0), (40.0, 0.0), (0.0, 30.0), (40.0, 30.0)]
        .iter()
        .enumerate()
        .map(|(i, (x, y))| format!("\"Pt-{i}\",\"true\",\"{x}\",\"{y}\",\"{x}\",\"{y}\"\n"))
        .collect();
    let (_dir, path) = temp_file("cal.csv", &csv);
    let grid = ImageGrid { width: 100, height: 80, calibration: Some(cal(0.5)) };
    let t = read_any(&path, Some(&grid), &cal(1.0)).unwrap();
    let expected = Affine2::new([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]);
    assert!(t.fixed_to_moving.max_difference(&expected) < 1e-9, "{:?}", t.fixed_to_moving);
    assert_eq!(t.fixed, Some(grid), "the result takes the fixed grid");
    let err = read_any(&path, None, &cal(1.0)).unwrap_err().to_string();
    assert!(err.contains("fixed (target) image"), "{err}");
}

/// The NGFF file is one bare RFC-5 affine object as BigWarp's `NgffTransformations.openJson`
/// reads it: `type` "affine", `affine` a nested 2 × 3 list (not row-packed), `input`/`output`
/// naming coordinate systems defined in the file, UDUNITS axis units; and its numbers map
/// fixed world points to moving world points.
#[test]
fn ngff_affine_is_a_bare_rfc5_transform_in_world_units() {
    let t = Affine2::new([[0.9, -0.2, 14.0], [0.2, 0.9, -6.0]]);
    let (fc, mc) = (cal(0.5), Calibration { unit: "µm".into(), ..cal(0.25) });
    let v: serde_json::Value = serde_json::from_str(&comir::export::ngff::ngff_json(&t, &fc, &mc)).unwrap();
    assert_eq!(v["type"], "affine", "a bare transform object, no wrapper");
    let rows = v["affine"].as_array().expect("nested affine");
    assert_eq!(rows.len(), 2);
    let m: Vec<Vec<f64>> = rows.iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()).collect();
    assert!(m.iter().all(|r| r.len() == 3));
    let systems = v["coordinateSystems"].as_array().unwrap();
    for end in ["input", "output"] {
        let name = v[end].as_str().unwrap();
        let cs = systems.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{end} {name} is not defined"));
        for axis in cs["axes"].as_array().unwrap() {
            assert_eq!(axis["unit"], "micrometer", "UDUNITS name, not µm/micron");
        }
    }
    assert!(v["ngff"].as_str().unwrap().contains("RFC-5"));
    // fixed pixel (10, 20) → moving pixel t(10, 20); in world units through the file's matrix.
    let (fx, fy) = (10.0 * 0.5, 20.0 * 0.5);
    let (px, py) = t.apply(10.0, 20.0);
    let (wx, wy) = (m[0][0] * fx + m[0][1] * fy + m[0][2], m[1][0] * fx + m[1][1] * fy + m[1][2]);
    assert!((wx - px * 0.25).abs() < 1e-9 && (wy - py * 0.25).abs() < 1e-9, "({wx}, {wy}) vs ({}, {})", px * 0.25, py * 0.25);
    // Uncalibrated images: no made-up unit.
    let v: serde_json::Value = serde_json::from_str(&comir::export::ngff::ngff_json(&t, &Calibration::default(), &Calibration::default())).unwrap();
    assert!(v["coordinateSystems"][0]["axes"][0].get("unit").is_none());
}

/// An error read back from a file names the file once and says what is wrong once (before:
/// "invalid argument: …: invalid argument: row 1 …").
#[test]
fn errors_do_not_repeat_their_prefix() {
    let (_dir, path) = temp_file("bad.csv", "\"a\",\"maybe\",\"1\",\"2\",\"3\",\"4\"\n");
    let msg = read_landmarks(&path).unwrap_err().to_string();
    assert!(msg.contains("row 1") && msg.contains("true or false"), "{msg}");
    assert_eq!(msg.matches(&path.display().to_string()).count(), 1, "{msg}");
    assert!(!msg.contains("invalid argument"), "{msg}");
}

/// The request both front ends send (Fiji as JSON): the fixed grid and the moving calibration
/// place the points; "" means the type the file names; bad pixel sizes are refused, not
/// replaced (the plugin used to turn them into 1 on its own).
#[test]
fn an_import_request_fits_in_pixels_of_each_image_and_refuses_bad_calibrations() {
    let csv: String = [(0.0, 0.0), (40.0, 0.0), (0.0, 30.0), (40.0, 30.0)]
        .iter()
        .enumerate()
        .map(|(i, (x, y))| format!("\"Pt-{i}\",\"true\",\"{}\",\"{}\",\"{x}\",\"{y}\"\n", x + 4.0, y - 2.0))
        .collect();
    let (_dir, path) = temp_file("request.csv", &csv);
    let request = |fixed_px: f64, moving_px: f64, kind: &str| {
        let text = format!(
            r#"{{"landmarks":{:?},"kind":"{kind}","fixed":{{"width":100,"height":80,"calibration":{{"pixel_width":{fixed_px},"pixel_height":{fixed_px},"unit":"micron"}}}},"moving_calibration":{{"pixel_width":{moving_px},"pixel_height":{moving_px},"unit":"micron"}}}}"#,
            path.to_str().unwrap()
        );
        serde_json::from_str::<comir::ImportRequest>(&text).unwrap()
    };
    let o = comir::import_landmarks(&request(0.5, 1.0, "")).unwrap();
    // fixed pixel p → world 0.5·p → moving world 0.5·p + (4, −2) → moving pixel (same, 1 µm).
    let expected = [0.5, 0.0, 4.0, 0.0, 0.5, -2.0];
    assert!(o.matrix.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-9), "{:?}", o.matrix);
    assert_eq!(o.method, "landmarks");
    assert!(o.passed, "{}", o.reason);
    assert_eq!(comir::import_landmarks(&request(0.5, 1.0, "rigid")).unwrap().kind, TransformKind::Rigid);
    let err = comir::import_landmarks(&request(0.5, 0.0, "")).unwrap_err().to_string();
    assert!(err.contains("pixel"), "{err}");
    assert!(serde_json::from_str::<comir::ImportRequest>(r#"{"landmark":"x"}"#).is_err());
}
