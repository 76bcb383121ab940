//! Transform algebra and the transform file.
use comir::export::transform_file::{ImageGrid, TransformFile};
use comir::image::Calibration;
use comir::{Affine2, TransformKind};
use std::path::Path;

fn some_transforms() -> Vec<Affine2> {
    vec![
        Affine2::translation(12.5, -3.0),
        Affine2::rotation_about(0.7, 100.0, 50.0),
        Affine2::similarity_about(-2.1, 1.7, -30.0, 8.0),
        Affine2::new([[1.3, 0.4, 7.0], [-0.2, 0.8, -11.0]]),
    ]
}

#[test]
fn compose_with_inverse_is_identity() {
    for t in some_transforms() {
        let inv = t.inverse().unwrap();
        assert!(t.compose(&inv).max_difference(&Affine2::IDENTITY) < 1e-9, "{t:?}");
        assert!(inv.compose(&t).max_difference(&Affine2::IDENTITY) < 1e-9, "{t:?}");
    }
}

#[test]
fn compose_applies_the_right_operand_first() {
    let a = Affine2::translation(10.0, 0.0);
    let b = Affine2::rotation_about(std::f64::consts::FRAC_PI_2, 0.0, 0.0);
    let (x, y) = a.compose(&b).apply(1.0, 0.0);
    assert!((x - 10.0).abs() < 1e-12 && (y - 1.0).abs() < 1e-12, "({x}, {y})");
}

#[test]
fn calibrated_form_maps_world_points_consistently() {
    let fixed = Calibration { pixel_width: 0.5, pixel_height: 0.25, unit: "µm".into() };
    let moving = Calibration { pixel_width: 2.0, pixel_height: 2.0, unit: "µm".into() };
    for t in some_transforms() {
        let world = t.to_calibrated(&fixed, &moving);
        let (px, py) = (13.0, 7.0);
        let (mx, my) = t.apply(px, py);
        let (wx, wy) = world.apply(px * 0.5, py * 0.25);
        assert!((wx - mx * 2.0).abs() < 1e-9 && (wy - my * 2.0).abs() < 1e-9);
        assert!(world.from_calibrated(&fixed, &moving).max_difference(&t) < 1e-12);
    }
}

#[test]
fn transform_file_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.json");
    let mut file = TransformFile::new(TransformKind::Similarity, Affine2::similarity_about(0.3, 1.2, 5.0, 6.0));
    file.fixed = Some(ImageGrid { width: 640, height: 480, calibration: Some(Calibration { pixel_width: 0.65, pixel_height: 0.65, unit: "µm".into() }) });
    file.write(&path).unwrap();
    assert_eq!(TransformFile::read(&path).unwrap(), file);
}

fn parse(text: &str) -> String {
    TransformFile::from_json(text, Path::new("t.json")).unwrap_err().to_string()
}

#[test]
fn bad_transform_files_say_what_is_wrong() {
    let ok = r#""format":"comir-transform","version":1,"kind":"affine","direction":"fixed_to_moving""#;
    let cases = [
        ("{", "not valid JSON"),
        ("[1,2]", "no \"format\""),
        (r#"{"format":"bigwarp"}"#, "expected \"comir-transform\""),
        (r#"{"format":"comir-transform","version":7}"#, "newer CoMIR"),
        (&format!("{{{ok},\"matrix\":[[1,0,0]]}}"), "2 rows of 3"),
        (&format!("{{{ok},\"matrix\":[[1,0,0],[0,1]]}}"), "2 rows of 3"),
        (&format!("{{{ok},\"matrix\":[[0,0,0],[0,0,0]]}}"), "singular"),
        (&format!("{{{ok},\"matrix\":[[1,0,\"x\"],[0,1,0]]}}"), "invalid type"),
        (&format!("{{{ok}}}"), "missing field `matrix`"),
        (&format!("{{{ok},\"matrix\":[[1,0,0],[0,1,0]],\"fixed\":{{\"width\":0,\"height\":3}}}}"), "positive"),
        (r#"{"format":"comir-transform","version":1,"kind":"warp","direction":"fixed_to_moving","matrix":[[1,0,0],[0,1,0]]}"#, "unknown variant"),
        (r#"{"format":"comir-transform","version":1,"kind":"rigid","direction":"moving_to_fixed","matrix":[[1,0,0],[0,1,0]]}"#, "direction"),
    ];
    for (text, expected) in cases {
        let msg = parse(text);
        assert!(msg.contains(expected), "{text} → {msg}");
        assert!(msg.contains("t.json"), "the message names the file: {msg}");
    }
}

#[test]
fn non_utf8_transform_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bin.json");
    std::fs::write(&path, [0xff, 0xfe, 0x00, 0x7b]).unwrap();
    assert!(TransformFile::read(&path).unwrap_err().to_string().contains("not UTF-8"));
}

/// Apply Transform's output grid: one rule for `comir apply` and Fiji (`apply_plan`), and the
/// request Fiji sends is checked before anything is read.
#[test]
fn the_output_grid_follows_one_rule_and_bad_requests_are_refused() {
    let cal = Calibration { pixel_width: 0.5, pixel_height: 0.25, unit: "µm".into() };
    let with_grid = TransformFile { fixed: Some(ImageGrid { width: 40, height: 30, calibration: Some(cal.clone()) }), ..TransformFile::new(TransformKind::Rigid, Affine2::translation(2.0, 1.0)) };
    let bare = TransformFile::new(TransformKind::Rigid, Affine2::translation(2.0, 1.0));
    let p = comir::apply_plan(&with_grid, (8, 9), None);
    assert_eq!((p.width, p.height, p.calibration.as_ref()), (40, 30, Some(&cal)));
    assert_eq!(p.matrix, [1.0, 0.0, 2.0, 0.0, 1.0, 1.0]);
    let p = comir::apply_plan(&with_grid, (8, 9), Some((5, 6)));
    assert_eq!((p.width, p.height), (5, 6));
    let p = comir::apply_plan(&bare, (8, 9), None);
    assert_eq!((p.width, p.height, p.calibration), (8, 9, None));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.json");
    with_grid.write(&path).unwrap();
    let request = |extra: &str| format!(r#"{{"transform":{:?},"moving_calibration":{{"pixel_width":1,"pixel_height":1,"unit":"pixel"}},"input_size":[8,9]{extra}}}"#, path.display().to_string());
    let plan = comir::plan_apply(&serde_json::from_str(&request("")).unwrap()).unwrap();
    assert_eq!((plan.width, plan.height), (40, 30));
    let bad_size: comir::ApplyRequest = serde_json::from_str(&request(r#","size":[0,3]"#)).unwrap();
    assert!(comir::plan_apply(&bad_size).unwrap_err().to_string().contains("positive"));
    let bad_fixed: comir::ApplyRequest = serde_json::from_str(&request(r#","fixed":{"width":10,"height":10,"calibration":{"pixel_width":-1,"pixel_height":1,"unit":"µm"}}"#)).unwrap();
    assert!(comir::plan_apply(&bad_fixed).unwrap_err().to_string().contains("pixel sizes must be positive"));
    assert!(serde_json::from_str::<comir::ApplyRequest>(&request(r#","sise":[3,3]"#)).is_err(), "unknown keys are refused");
}
