//! Typed errors of the vision core. Every variant names the file or setting at fault.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "ONNX Runtime could not be loaded ({tried}): {reason}. Run `deploy/setup.sh` or point ORT_DYLIB_PATH at libonnxruntime.so"
    )]
    RuntimeLoad { tried: String, reason: String },

    #[error(
        "{what} model not found at {path}: set the element property or FACEREC_MODEL_DIR, or run `deploy/setup.sh`"
    )]
    ModelMissing { what: &'static str, path: PathBuf },

    #[error("{what} model {path} could not be loaded: {reason}")]
    ModelLoad {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },

    #[error(
        "execution provider '{requested}' is not available ({reason}) and strict provider mode is on"
    )]
    ProviderUnavailable { requested: String, reason: String },

    #[error("unknown execution provider '{0}': expected auto, cpu, cuda or tensorrt")]
    UnknownProvider(String),

    #[error("unknown model variant '{0}': expected fp32, fp16 or int8")]
    UnknownModelVariant(String),

    #[error("model variant {variant} is not selectable: {reason}")]
    ModelVariantNotAccepted {
        variant: crate::models::ModelVariant,
        reason: &'static str,
    },

    #[error("{what} inference failed: {reason}")]
    Inference { what: &'static str, reason: String },

    #[error("gallery {path}: {kind}")]
    Gallery {
        path: PathBuf,
        kind: crate::gallery::GalleryError,
    },

    /// The I/O error is part of the message rather than a `source`, so that reports which
    /// print the error chain do not repeat it.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    #[error("image {path}: {reason}")]
    Image { path: PathBuf, reason: String },

    #[error("invalid frame: {0}")]
    InvalidFrame(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error,
        }
    }
}
