//! Registration: transforms, resampling, and the methods that find the transform.
pub mod alpha_amd;
pub mod fit;
pub mod params;
pub mod matching;
pub mod sift;
pub mod transform;
pub mod warp;
