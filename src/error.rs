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

    /// A name that is not one of the choices (method, transform type, preprocessing, …).
    #[error("unknown {what} \"{given}\" (use {choices})")]
    UnknownChoice { what: &'static str, given: String, choices: String },

    /// A request or parameter set (JSON from a front end or a macro) that does not parse:
    /// a misspelt key, a value of the wrong type.
    #[error("{what} {text}: {reason}")]
    Request { what: String, text: String, reason: String },

    // The variants below carry a message that says what is wrong and with which input; no
    // prefix, so that wrapping one in another (with a file name) reads as one sentence.
    /// A parameter value outside its range (steps, bins, pyramid levels, output size).
    #[error("{0}")]
    Parameter(String),

    /// Images (or pixel arrays, masks) whose sizes do not fit together or cannot be handled.
    #[error("{0}")]
    Size(String),

    /// An ROI, mask or region that is empty, outside the image or too small for the method.
    #[error("{0}")]
    Region(String),

    /// BigWarp landmarks that cannot be read or fitted.
    #[error("{0}")]
    Landmarks(String),

    /// Training data or a training run that cannot go on (unaligned pair, divergence).
    #[error("{0}")]
    Training(String),

    /// A batch folder whose files do not pair up.
    #[error("{0}")]
    Batch(String),

    /// Images that do not fit the model (channel counts, modality names).
    #[error("{0}")]
    ModelInput(String),

    /// Not enough memory (or GPU memory) for the work asked.
    #[error("{0}")]
    Resources(String),

    /// A call from Java that breaks the interface (null array, wrong length): a front-end bug.
    #[error("Java interface: {0}")]
    JavaInterface(String),

    #[error("libtorch error: {0}")]
    Torch(String),

    #[error("cancelled")]
    Cancelled,

    /// A broken invariant of this library, not the user's input: said as such, never a panic.
    #[error("internal error in the CoMIR library (please report): {0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A stable name of the failure's kind, so that front ends can tell kinds apart without
    /// reading messages: Fiji shows a cancel in the status bar instead of an error dialog,
    /// scripts see it in the exception and the CLI's exit code.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Read { .. } | Error::Write { .. } => "file",
            Error::Decode { .. } | Error::UnsupportedImage(_) | Error::TooLarge { .. } => "image",
            Error::TransformFile { .. } | Error::Transform(_) => "transform",
            Error::Model { .. } | Error::ModelInput(_) => "model",
            Error::UnknownChoice { .. } => "unknown_choice",
            Error::Request { .. } => "request",
            Error::Parameter(_) => "parameter",
            Error::Size(_) => "size",
            Error::Region(_) => "region",
            Error::Landmarks(_) => "landmarks",
            Error::Training(_) => "training",
            Error::Batch(_) => "batch",
            Error::Resources(_) => "resources",
            Error::JavaInterface(_) => "java_interface",
            Error::Torch(_) => "torch",
            Error::Cancelled => "cancelled",
            Error::Internal(_) => "internal",
        }
    }

    /// The CLI's exit status: 2 is clap's for a malformed command line; the others let a batch
    /// script tell "fix your input" from "a file could not be read or written" from "a bug".
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Read { .. } | Error::Write { .. } => 3,
            Error::Resources(_) | Error::TooLarge { .. } => 4,
            Error::Cancelled => 130,
            Error::Internal(_) | Error::Torch(_) | Error::JavaInterface(_) => 70,
            _ => 1,
        }
    }
}

#[cfg(feature = "torch")]
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
