//! The CoMIR model (networks, training, inference). For now: the libtorch runtime.
pub mod device;
