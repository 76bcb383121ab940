//! Registration: transforms, resampling, and the methods that find the transform.
pub mod alpha_amd;
pub mod correlation;
pub mod driver;
pub mod fit;
pub mod mask;
pub mod params;
pub mod physical;
pub mod pipeline;
pub mod quality;
pub mod refine;
pub mod matching;
pub mod mi;
pub mod sift;
pub mod transform;
pub mod warp;
