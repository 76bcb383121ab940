//! One error type for the whole library. Every input-driven failure ends up here with a
//! message a biologist can act on; the CLI prints it, the JNI layer throws it as a Java
//! exception. Nothing on an input path panics.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },

    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },

    #[error("{path} is not a readable image: {reason}")]
    Decode { path: PathBuf, reason: String },

    #[error("unsupported image: {0}")]
    UnsupportedImage(String),

    #[error("image of {width}×{height}×{planes} planes is too large: {bytes} bytes needed, the limit is {limit} bytes (set COMIR_MAX_IMAGE_BYTES to raise it)")]
    TooLarge { width: u64, height: u64, planes: u64, bytes: u64, limit: u64 },

    #[error("invalid transform file {path}: {reason}")]
    TransformFile { path: PathBuf, reason: String },

    #[error("invalid transform: {0}")]
    Transform(String),

    #[error("cannot use the model {path}: {reason}")]
    Model { path: PathBuf, reason: String },

    /// The message says what is wrong with the input; no prefix, so that wrapping one in
    /// another (with the file name) does not repeat "invalid argument:".
    #[error("{0}")]
    Argument(String),

    #[error("libtorch error: {0}")]
    Torch(String),

    #[error("cancelled")]
    Cancelled,

    /// A broken invariant of this library, not the user's input: said as such, never a panic.
    #[error("internal error in the CoMIR library (please report): {0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<tch::TchError> for Error {
    fn from(e: tch::TchError) -> Self {
        Error::Torch(e.to_string())
    }
}

/// Plain data as JSON text (pretty: indented, for files people read). Serialising our own
/// structs cannot fail; if it ever did, it is reported as an internal error.
pub fn json_text<T: serde::Serialize + ?Sized>(value: &T, pretty: bool) -> Result<String> {
    let text = if pretty { serde_json::to_string_pretty(value) } else { serde_json::to_string(value) };
    text.map_err(|e| Error::Internal(format!("JSON of plain data: {e}")))
}
