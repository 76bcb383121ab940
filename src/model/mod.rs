//! The CoMIR model: one FC-DenseNet per modality, trained with a contrastive loss so that
//! both map their modality to alike representations.
pub mod augment;
pub mod config;
pub mod cpu_net;
pub mod dense_conv;
#[cfg(feature = "torch")]
pub mod device;
pub mod fused;
pub mod heap;
pub mod infer;
pub mod loss;
#[cfg(feature = "torch")]
pub mod net;
pub mod preprocess;
pub mod store;
pub mod train;
