//! BigWarp landmark CSV files, then the fit a user's import runs on them.
#![no_main]
use comir::export::bigwarp::{fit_landmarks, parse_csv};
use comir::image::Calibration;
use comir::TransformKind;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Ok(landmarks) = parse_csv(text) {
            let cal = Calibration::default();
            for kind in [TransformKind::Rigid, TransformKind::Similarity, TransformKind::Affine] {
                let _ = fit_landmarks(&landmarks, kind, &cal, &cal);
            }
        }
    }
});
