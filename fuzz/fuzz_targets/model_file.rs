//! Model files: safetensors container, CoMIR JSON header, tensor table.
#![no_main]
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = comir::model::store::Model::from_bytes(bytes, std::path::Path::new("fuzz"), tch::Device::Cpu);
});
