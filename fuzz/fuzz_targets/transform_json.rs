//! Our transform JSON files.
#![no_main]
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = comir::export::transform_file::TransformFile::from_json(text, std::path::Path::new("fuzz"));
    }
});
