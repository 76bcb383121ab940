//! Registration: transforms, resampling, and (later) the methods that find the transform.
pub mod transform;
pub mod warp;
