//! Files that carry results out: our transform JSON (later BigWarp, NGFF, reports).
pub mod bigwarp;
pub mod outputs;
pub mod transform_file;
