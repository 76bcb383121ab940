//! TIFF and PNG decoding (images opened from disk or handed over by Fiji).
#![no_main]
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = comir::image::io::decode_image(bytes);
});
