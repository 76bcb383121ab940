//! Where tensors run: CUDA when this libtorch has it, otherwise the CPU.
use crate::error::Result;
use tch::{Device, Kind, Tensor};

/// The device models run on unless the user asks otherwise.
pub fn default_device() -> Device {
    if tch::Cuda::is_available() { Device::Cuda(0) } else { Device::Cpu }
}

/// Run one real 3×3 convolution through libtorch and return its output sum. A 4×4 input of
/// ones convolved with a 3×3 kernel of ones (no padding) gives four outputs of 9: sum 36.
/// Proves that the native library, libtorch and its runtime libraries load and compute.
pub fn conv2d_smoke(device: Device) -> Result<f64> {
    let input = Tensor::f_ones([1, 1, 4, 4], (Kind::Float, device))?;
    let weight = Tensor::f_ones([1, 1, 3, 3], (Kind::Float, device))?;
    let out = input.f_conv2d(&weight, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1)?;
    Ok(out.f_sum(Kind::Double)?.f_double_value(&[])?)
}

/// One line for logs and the About dialog: versions and devices.
pub fn runtime_info() -> String {
    let device = default_device();
    let cuda = if tch::Cuda::is_available() { format!("CUDA ({} device(s))", tch::Cuda::device_count()) } else { "no CUDA".into() };
    format!(
        "comir {} with libtorch {}, {cuda}, {} CPU threads, running on {device:?}",
        env!("CARGO_PKG_VERSION"),
        crate::LIBTORCH_VERSION,
        tch::get_num_threads()
    )
}
