//! Loaded models, cached by path and modification time so a dialog run twice does not load
//! the file twice, and a retrained file is picked up.
use crate::error::Result;
use crate::model::store::Model;
use once_cell::sync::Lazy;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// A model shared between threads for inference only.
pub struct SharedModel(Model);

// Safety: a cached model is never trained or mutated; it is only run forward under no_grad
// in eval mode (BatchNorm uses its stored statistics, dropout is off). libtorch supports
// concurrent forward passes over the same parameters, which are only read.
unsafe impl Sync for SharedModel {}
unsafe impl Send for SharedModel {}

impl std::ops::Deref for SharedModel {
    type Target = Model;
    fn deref(&self) -> &Model {
        &self.0
    }
}

type Cache = HashMap<PathBuf, (Option<SystemTime>, Arc<SharedModel>)>;
static CACHE: Lazy<Mutex<Cache>> = Lazy::new(Default::default);

pub fn load(path: &Path) -> Result<Arc<SharedModel>> {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    if let Some((when, model)) = CACHE.lock().unwrap_or_else(|e| e.into_inner()).get(path) {
        if *when == modified {
            return Ok(model.clone());
        }
    }
    // Load outside the lock: other threads keep working meanwhile.
    let model = Arc::new(SharedModel(Model::load(path, crate::model::device::default_device())?));
    CACHE.lock().unwrap_or_else(|e| e.into_inner()).insert(path.to_path_buf(), (modified, model.clone()));
    Ok(model)
}
