//! Files that carry results out: our transform JSON (later BigWarp, NGFF, reports).
pub mod transform_file;
