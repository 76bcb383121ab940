//! BigWarp landmark JSON files, then the fit with the type they name.
#![no_main]
use comir::export::bigwarp::{fit_landmarks, parse_json};
use comir::image::Calibration;
use comir::TransformKind;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Ok((landmarks, kind)) = parse_json(text) {
            let cal = Calibration::default();
            let _ = fit_landmarks(&landmarks, kind.unwrap_or(TransformKind::Affine), &cal, &cal);
        }
    }
});
