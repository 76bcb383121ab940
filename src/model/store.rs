//! A CoMIR model: two networks (one per modality) and the header that describes them,
//! stored as one safetensors file whose metadata holds the JSON header under "comir".
//! Loading checks the header, the version and every tensor, and says what is wrong. With
//! libtorch the networks live in its variable stores (training, GPUs); without it (the `torch`
//! feature off) as named weights that `cpu_net` reads, checked against `NetConfig::variables`.
use super::config::NetConfig;
#[cfg(feature = "torch")]
use super::net::Tiramisu;
use super::preprocess::Preprocess;
use crate::error::{Error, Result};
use crate::files::read_bytes;
#[cfg(feature = "torch")]
use crate::files::write_atomically;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
#[cfg(feature = "torch")]
use tch::{nn, Device, Kind, Tensor};

pub const FORMAT: &str = "comir-model";
pub const VERSION: u32 = 1;

/// One modality: its name (e.g. "BF", "SHG"), and how its images become network input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Modality {
    pub name: String,
    pub preprocess: Preprocess,
    pub net: NetConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub comir_version: String,
    pub created_unix: u64,
    #[serde(default)]
    pub command: Option<String>,
    /// The model file training started from (fine-tuning), when not random weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_from: Option<String>,
}

impl Provenance {
    pub fn now(command: Option<String>) -> Provenance {
        let created_unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        Provenance { comir_version: env!("CARGO_PKG_VERSION").into(), created_unix, command, started_from: None }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelHeader {
    pub format: String,
    pub version: u32,
    pub modalities: [Modality; 2],
    /// Training steps done so far (resume continues from here).
    pub steps_trained: u64,
    /// The training settings used (free-form JSON, for the record).
    #[serde(default)]
    pub training: Option<serde_json::Value>,
    pub provenance: Provenance,
    /// The training check of the weights this model holds (`crate::train_check`): how well
    /// its CoMIRs register crops of its own training pair. None: never checked (older files,
    /// images too small for the check). Registration uses it to qualify its PASS flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckRecord>,
}

/// One training check's numbers: `registered` of `crops` moved crops land within 2 % of the
/// crop width, with this median corner error (pixels).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckRecord {
    pub step: u64,
    pub registered: usize,
    pub crops: usize,
    pub median_error_px: f64,
}

impl CheckRecord {
    /// The criterion training stops on: every crop registered, the median within a pixel.
    pub fn good(&self) -> bool {
        self.registered == self.crops && self.median_error_px <= 1.0
    }

    /// Higher is better: more crops registered, then a smaller median error.
    pub fn rank(&self) -> f64 {
        let error = if self.median_error_px.is_finite() { self.median_error_px } else { f64::MAX };
        self.registered as f64 + 1.0 / (1.0 + error)
    }
}

impl std::fmt::Display for CheckRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "registers {}/{} test crops (median error {:.1} px)", self.registered, self.crops, self.median_error_px)
    }
}

pub struct Model {
    pub header: ModelHeader,
    #[cfg(feature = "torch")]
    stores: [nn::VarStore; 2],
    #[cfg(feature = "torch")]
    nets: [Tiramisu; 2],
    /// Without libtorch: the networks, built once from the file's weights (they do not change).
    #[cfg(not(feature = "torch"))]
    nets: [super::cpu_net::CpuNet; 2],
}

/// The parts of a model file every build reads the same way: the checked header, and the
/// tensors (each checked f32 and finite when read with [`tensor_values`]).
fn read_file<'a>(bytes: &'a [u8], path: &Path) -> Result<(ModelHeader, safetensors::SafeTensors<'a>)> {
    let bad = |reason: String| Error::Model { path: path.to_path_buf(), reason };
    let tensors = safetensors::SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a CoMIR model file (not a complete safetensors file: {e:?})")))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("{e:?}")))?;
    let header_text = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("comir"))
        .ok_or_else(|| bad("a safetensors file, but without a CoMIR header: not a CoMIR model".into()))?;
    let value: serde_json::Value = serde_json::from_str(header_text).map_err(|e| bad(format!("the header is not valid JSON ({e})")))?;
    if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(bad(format!("the header's format is not \"{FORMAT}\"")));
    }
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v > VERSION as u64 => return Err(bad(format!("model format version {v} is newer than this CoMIR reads ({VERSION}); please update the plugin"))),
        Some(_) => {}
        None => return Err(bad("the header has no version".into())),
    }
    let header: ModelHeader = serde_json::from_value(value).map_err(|e| bad(format!("header: {e}")))?;
    for m in &header.modalities {
        m.net.validate().map_err(|e| bad(e.to_string()))?;
    }
    if header.modalities[0].net.out_channels != header.modalities[1].net.out_channels {
        return Err(bad("both modalities need the same number of output channels".into()));
    }
    Ok((header, tensors))
}

/// The values of tensor `key`, which must be f32 of the `expected` shape and finite.
fn tensor_values(tensors: &safetensors::SafeTensors, key: &str, expected: &[usize], path: &Path) -> Result<Vec<f32>> {
    let bad = |reason: String| Error::Model { path: path.to_path_buf(), reason };
    let view = tensors.tensor(key).map_err(|_| bad(format!("tensor \"{key}\" is missing")))?;
    if view.dtype() != safetensors::Dtype::F32 || view.shape() != expected {
        return Err(bad(format!("tensor \"{key}\" has shape {:?} ({:?}), expected {:?} (f32)", view.shape(), view.dtype(), expected)));
    }
    let values: Vec<f32> = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    if values.iter().any(|v| !v.is_finite()) {
        return Err(bad(format!("tensor \"{key}\" contains NaN or infinite values")));
    }
    Ok(values)
}

impl Model {
    /// The model file at `path`, on the device models run on (see `device::default_device`;
    /// without libtorch, the CPU kernels).
    pub fn open(path: &Path) -> Result<Model> {
        #[cfg(feature = "torch")]
        return Model::load(path, super::device::default_device());
        #[cfg(not(feature = "torch"))]
        return Model::from_bytes(&read_bytes(path)?, path);
    }

    /// Index (0 or 1) of the modality called `name` (or "a"/"b", "0"/"1").
    pub fn side(&self, name: &str) -> Result<usize> {
        let names: Vec<&str> = self.header.modalities.iter().map(|m| m.name.as_str()).collect();
        match name {
            _ if name.eq_ignore_ascii_case(names[0]) => Ok(0),
            _ if name.eq_ignore_ascii_case(names[1]) => Ok(1),
            "a" | "A" | "0" => Ok(0),
            "b" | "B" | "1" => Ok(1),
            _ => Err(Error::ModelInput(format!("the model has modalities \"{}\" and \"{}\", not \"{name}\"", names[0], names[1]))),
        }
    }

    /// Whether the networks run on this crate's CPU kernels (see `dense_conv`), which take
    /// less memory per pixel than libtorch's layers.
    pub fn cpu_kernels(&self) -> bool {
        #[cfg(feature = "torch")]
        return super::dense_conv::serve(self.device());
        #[cfg(not(feature = "torch"))]
        return super::dense_conv::Width::detect().is_some();
    }

    /// Decode a model file's bytes without libtorch; `path` only names the file in errors.
    /// Every tensor is checked (f32, finite) and must be one of the networks' variables, and
    /// the networks must be buildable from them (shapes that fit the header's architecture).
    #[cfg(not(feature = "torch"))]
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Model> {
        let bad = |reason: String| Error::Model { path: path.to_path_buf(), reason };
        let (header, tensors) = read_file(bytes, path)?;
        if super::dense_conv::Width::detect().is_none() {
            return Err(Error::Resources("this build runs networks on AVX2 CPUs only: use comir-torch (the build with libtorch)".into()));
        }
        // Every variable the header's networks have, of its shape, as libtorch's build reads
        // them (its names, shapes and messages), and no other tensor.
        let mut weights = [HashMap::new(), HashMap::new()];
        for (side, prefix) in [(0, "a"), (1, "b")] {
            for (name, shape) in header.modalities[side].net.variables() {
                let values = tensor_values(&tensors, &format!("{prefix}.{name}"), &shape, path)?;
                weights[side].insert(name, (shape, values));
            }
        }
        let seen = weights[0].len() + weights[1].len();
        if seen != tensors.len() {
            return Err(bad(format!("the file has {} tensors but the networks have {seen}", tensors.len())));
        }
        let net = |side: usize| {
            let lookup = |name: &str| weights[side].get(name).cloned();
            let net = super::cpu_net::CpuNet::new(&header.modalities[side].net, &lookup);
            net.ok_or_else(|| bad(format!("the \"{}\" network's tensors do not fit its architecture", header.modalities[side].name)))
        };
        let nets = [net(0)?, net(1)?];
        Ok(Model { header, nets })
    }

    /// The network of `side` for inference on the CPU without libtorch (see
    /// [`super::cpu_net`]): the one built when the file was read.
    #[cfg(not(feature = "torch"))]
    pub fn cpu_net(&self, side: usize) -> Option<std::borrow::Cow<'_, super::cpu_net::CpuNet>> {
        Some(std::borrow::Cow::Borrowed(&self.nets[side]))
    }
}

#[cfg(feature = "torch")]
impl Model {
    /// Fresh, randomly initialised networks (seed with `tch::manual_seed` first).
    pub fn new(modalities: [Modality; 2], device: Device) -> Result<Model> {
        for m in &modalities {
            m.net.validate()?;
        }
        if modalities[0].net.out_channels != modalities[1].net.out_channels {
            return Err(Error::Parameter("both modalities need the same number of output channels".into()));
        }
        let header = ModelHeader {
            format: FORMAT.into(),
            version: VERSION,
            modalities,
            steps_trained: 0,
            training: None,
            provenance: Provenance::now(None),
            check: None,
        };
        let stores = [nn::VarStore::new(device), nn::VarStore::new(device)];
        let nets = [Tiramisu::new(&stores[0].root(), &header.modalities[0].net), Tiramisu::new(&stores[1].root(), &header.modalities[1].net)];
        stores.iter().for_each(crate::model::net::use_channels_last);
        Ok(Model { header, stores, nets })
    }

    /// A new model for `modalities` whose networks start from `pretrained`'s weights instead of
    /// random ones (fine-tuning). The architectures must match apart from the input channels:
    /// a first convolution made for another channel count is summed over its input channels
    /// and spread evenly over the new ones, so that a grey image seen as R = G = B (or the
    /// mean of an RGB image seen as grey) meets the same filter.
    pub fn starting_from(modalities: [Modality; 2], pretrained: &Model, device: Device) -> Result<Model> {
        for (side, m) in modalities.iter().enumerate() {
            let p = &pretrained.header.modalities[side].net;
            if (NetConfig { in_channels: p.in_channels, ..m.net.clone() }) != *p {
                return Err(Error::Parameter(format!(
                    "the model to start from has other networks ({} representation channel(s), {} levels; this one: {} and {}): choose its size and channels, or start from random weights",
                    p.out_channels,
                    p.down_blocks.len(),
                    m.net.out_channels,
                    m.net.down_blocks.len()
                )));
            }
        }
        let model = Model::new(modalities, device)?;
        tch::no_grad(|| -> Result<()> {
            for side in 0..2 {
                let source = pretrained.stores[side].variables();
                for (name, mut var) in model.stores[side].variables() {
                    let from = source.get(&name).ok_or_else(|| Error::Internal(format!("the pretrained network has no weight {name}")))?;
                    let value = if from.size() == var.size() {
                        from.to_device(device)
                    } else if from.dim() == 4 && var.dim() == 4 && from.size()[0] == var.size()[0] {
                        let new_in = var.size()[1];
                        (from.sum_dim_intlist(1, true, Kind::Float) / new_in as f64).expand(var.size(), false).to_device(device)
                    } else {
                        return Err(Error::Internal(format!("weight {name}: {:?} cannot start from {:?}", var.size(), from.size())));
                    };
                    var.f_copy_(&value)?;
                }
            }
            Ok(())
        })?;
        Ok(model)
    }

    pub fn net(&self, side: usize) -> &Tiramisu {
        &self.nets[side]
    }

    /// The network of `side` for inference on the CPU without libtorch (see
    /// [`super::cpu_net`]), with the weights it holds now (training changes them); None where
    /// the model is on another device or this CPU has no kernels for it.
    pub fn cpu_net(&self, side: usize) -> Option<std::borrow::Cow<'_, super::cpu_net::CpuNet>> {
        if self.device() != Device::Cpu {
            return None;
        }
        let weights = super::cpu_net::var_store_weights(&self.stores[side]);
        super::cpu_net::CpuNet::new(&self.header.modalities[side].net, &weights).map(std::borrow::Cow::Owned)
    }

    pub fn var_store(&self, side: usize) -> &nn::VarStore {
        &self.stores[side]
    }

    pub fn device(&self) -> Device {
        self.stores[0].device()
    }

    /// Number of trainable parameters of one network.
    pub fn parameter_count(&self, side: usize) -> i64 {
        self.stores[side].trainable_variables().iter().map(|t| t.numel() as i64).sum()
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let mut named: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
        for (side, prefix) in [(0, "a"), (1, "b")] {
            for (name, t) in self.stores[side].variables() {
                let t = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
                let shape: Vec<usize> = t.size().iter().map(|&s| s as usize).collect();
                let values: Vec<f32> = Vec::try_from(t.flatten(0, -1)).map_err(Error::from)?;
                let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                named.push((format!("{prefix}.{name}"), bytes, shape));
            }
        }
        let views: Vec<(String, safetensors::tensor::TensorView)> = named
            .iter()
            .map(|(n, b, s)| Ok((n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).map_err(|e| Error::Internal(format!("{e:?}")))?)))
            .collect::<Result<_>>()?;
        let header = crate::error::json_text(&self.header, false)?;
        let metadata = Some(HashMap::from([("comir".to_string(), header)]));
        let bytes = safetensors::tensor::serialize(views, &metadata).map_err(|e| Error::Internal(format!("cannot encode the model: {e:?}")))?;
        write_atomically(path, |out| Ok(std::io::Write::write_all(out, &bytes)?))
    }

    pub fn load(path: &Path, device: Device) -> Result<Model> {
        Model::from_bytes(&read_bytes(path)?, path, device)
    }

    /// Decode a model file's bytes; `path` only names the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path, device: Device) -> Result<Model> {
        let bad = |reason: String| Error::Model { path: path.to_path_buf(), reason };
        let (header, tensors) = read_file(bytes, path)?;
        let mut model = Model::new(header.modalities.clone(), device).map_err(|e| bad(e.to_string()))?;
        model.header = header;
        let mut seen = 0;
        tch::no_grad(|| -> Result<()> {
            for (side, prefix) in [(0, "a"), (1, "b")] {
                for (name, mut var) in model.stores[side].variables() {
                    let key = format!("{prefix}.{name}");
                    let expected: Vec<usize> = var.size().iter().map(|&s| s as usize).collect();
                    let values = tensor_values(&tensors, &key, &expected, path)?;
                    let src = Tensor::from_slice(&values).reshape(var.size()).to_device(device);
                    var.f_copy_(&src)?;
                    seen += 1;
                }
            }
            Ok(())
        })?;
        if seen != tensors.len() {
            return Err(bad(format!("the file has {} tensors but the networks have {seen}", tensors.len())));
        }
        Ok(model)
    }
}
