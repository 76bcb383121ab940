//! What a user chooses for a registration, in the one shape both front ends take: the CLI's
//! flags, the Fiji dialog and macro keys, and the JSON the plugin hands across JNI. The names
//! of the choices and the defaults live here only; the Fiji dialog asks for them
//! ([`choices_json`]) instead of keeping copies.
use crate::error::{Error, Result};
use crate::register::pipeline::{Method, RegisterOptions};
use crate::register::transform::TransformKind;
use serde::{Deserialize, Serialize};

/// The registration methods a user can choose, in menu order.
pub const METHODS: &[&str] = &["auto", "sift", "ncc", "amd", "mi"];
/// The transform types a user can choose, in menu order.
pub const TRANSFORMS: &[&str] = &["rigid", "similarity", "affine", "translation"];
/// The network sizes a new model can have (`model::config::NetConfig::preset`), default first.
pub const NET_SIZES: &[&str] = &["small", "paper"];
/// What to register of a stack (z and/or t), default first: its current plane (the first of a
/// file), the maximum projection over z, or every plane on its own (Fiji; `comir batch` for files).
pub const STACK_PLANES: &[&str] = &["current", "max-projection", "every-plane"];

/// One of [`STACK_PLANES`], parsed once so that no front end matches on the strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackPlanes {
    Current,
    MaxProjection,
    EveryPlane,
}

impl StackPlanes {
    const ALL: [StackPlanes; 3] = [StackPlanes::Current, StackPlanes::MaxProjection, StackPlanes::EveryPlane];

    /// Its name in [`STACK_PLANES`] (menus, macro keys, `--stack`).
    pub fn name(self) -> &'static str {
        STACK_PLANES[self as usize]
    }

    pub fn parse(s: &str) -> Result<StackPlanes> {
        Self::ALL.into_iter().find(|p| p.name() == s.trim().to_ascii_lowercase()).ok_or_else(|| Error::UnknownChoice { what: "stack planes", given: s.into(), choices: STACK_PLANES.join(", ") })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegisterParams {
    /// One of [`METHODS`].
    pub method: String,
    /// One of [`TRANSFORMS`].
    pub transform: String,
    /// Search every rotation (12 starts) instead of small ones only.
    pub any_rotation: bool,
}

impl Default for RegisterParams {
    fn default() -> Self {
        RegisterParams { method: "auto".into(), transform: "rigid".into(), any_rotation: true }
    }
}

impl RegisterParams {
    /// Read parameters sent as JSON (missing fields take their defaults, unknown ones are
    /// refused: a misspelt key must not be ignored silently).
    pub fn from_json(text: &str) -> Result<RegisterParams> {
        crate::request::from_json(text, "registration parameters")
    }

    pub fn options(&self) -> Result<RegisterOptions> {
        Ok(RegisterOptions { method: Method::parse(&self.method)?, kind: TransformKind::parse(&self.transform)?, any_rotation: self.any_rotation, ..Default::default() })
    }
}

/// What a user chooses for training a new model in the Fiji dialog (the CLI has more flags;
/// everything not here takes the defaults of `crate::NewModel` and `model::train::TrainConfig`,
/// which are also `comir train`'s).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainParams {
    pub name_a: String,
    pub name_b: String,
    /// One of [`NET_SIZES`].
    pub size: String,
    pub steps: u64,
    /// "random", or the path of a model file to fine-tune (see [`crate::Start`]).
    pub start: String,
}

impl Default for TrainParams {
    fn default() -> Self {
        let new = crate::NewModel::default();
        let [name_a, name_b] = new.names;
        TrainParams { name_a, name_b, size: new.size, steps: crate::model::train::TrainConfig::default().steps, start: new.start.to_string() }
    }
}

impl TrainParams {
    /// Read parameters sent as JSON (missing fields take their defaults, unknown ones are refused).
    pub fn from_json(text: &str) -> Result<TrainParams> {
        crate::request::from_json(text, "training parameters")
    }

    /// The new model and the training configuration these parameters mean.
    pub fn resolve(&self) -> Result<(crate::NewModel, crate::model::train::TrainConfig)> {
        if self.steps == 0 {
            return Err(Error::Parameter("the number of training steps must be at least 1".into()));
        }
        if !NET_SIZES.contains(&self.size.as_str()) {
            return Err(Error::UnknownChoice { what: "network size", given: self.size.clone(), choices: NET_SIZES.join(" or ") });
        }
        let new = crate::NewModel { names: [self.name_a.clone(), self.name_b.clone()], size: self.size.clone(), start: self.start.parse()?, ..Default::default() };
        Ok((new, crate::model::train::TrainConfig { steps: self.steps, ..Default::default() }))
    }
}

/// The choices and defaults of the registration and training parameters, for a front end's
/// dialogs.
pub fn choices_json() -> String {
    serde_json::json!({
        "methods": METHODS,
        "transforms": TRANSFORMS,
        "register_defaults": RegisterParams::default(),
        "net_sizes": NET_SIZES,
        "stack_planes": STACK_PLANES,
        "train_defaults": TrainParams::default(),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_choice_parses_and_the_defaults_are_the_library_defaults() {
        for m in METHODS {
            RegisterParams { method: m.to_string(), ..Default::default() }.options().unwrap();
        }
        for t in TRANSFORMS {
            RegisterParams { transform: t.to_string(), ..Default::default() }.options().unwrap();
        }
        let o = RegisterParams::default().options().unwrap();
        let d = RegisterOptions::default();
        assert_eq!((o.method, o.kind, o.any_rotation), (d.method, d.kind, d.any_rotation));
        for name in STACK_PLANES {
            assert_eq!(StackPlanes::parse(name).unwrap().name(), *name);
        }
        assert_eq!(StackPlanes::parse(" Max-Projection").unwrap(), StackPlanes::MaxProjection);
        assert!(StackPlanes::parse("all").unwrap_err().to_string().contains("current, max-projection, every-plane"));
    }

    #[test]
    fn every_listed_net_size_exists_and_the_default_size_is_listed_first() {
        for size in NET_SIZES {
            crate::model::config::NetConfig::preset(size, 1, 1).unwrap();
        }
        assert_eq!(NET_SIZES[0], crate::NewModel::default().size);
        let c: serde_json::Value = serde_json::from_str(&choices_json()).unwrap();
        assert_eq!(c["train_defaults"]["steps"], crate::model::train::TrainConfig::default().steps);
        let (new, config) = TrainParams::default().resolve().unwrap();
        assert_eq!((new, config), (crate::NewModel::default(), crate::model::train::TrainConfig::default()));
        assert!(TrainParams::from_json(r#"{"steps":0}"#).unwrap().resolve().unwrap_err().to_string().contains("at least 1"));
        assert!(TrainParams::from_json(r#"{"size":"huge"}"#).unwrap().resolve().unwrap_err().to_string().contains("small or paper"));
        assert!(TrainParams::from_json(r#"{"stepz":5}"#).unwrap_err().to_string().contains("stepz"));
        assert_eq!(TrainParams::default().start, "random");
        let (new, _) = TrainParams::from_json(r#"{"start":" /data/bf-shg.safetensors "}"#).unwrap().resolve().unwrap();
        assert_eq!(new.start, crate::Start::From("/data/bf-shg.safetensors".into()));
    }

    #[test]
    fn json_fills_defaults_and_refuses_unknown_keys() {
        let p = RegisterParams::from_json(r#"{"method":"mi"}"#).unwrap();
        assert_eq!(p, RegisterParams { method: "mi".into(), ..Default::default() });
        let e = RegisterParams::from_json(r#"{"method":"mi","any_rotaton":false}"#).unwrap_err().to_string();
        assert!(e.contains("any_rotaton"), "{e}");
        assert!(RegisterParams::from_json(r#"{"method":"nope"}"#).unwrap().options().is_err());
    }
}
