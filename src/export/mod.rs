//! Files that carry results out: our transform JSON, BigWarp landmarks, the NGFF affine.
pub mod bigwarp;
pub mod ngff;
pub mod outputs;
pub mod transform_file;
