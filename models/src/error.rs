//! Errors of model loading and inference.

use std::path::PathBuf;

use thiserror::Error;

/// What went wrong with a model.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The ONNX Runtime shared library could not be found or loaded.
    #[error(
        "cannot load ONNX Runtime from {path}: {reason} (run `./baylens setup`, or set ORT_DYLIB_PATH)"
    )]
    Runtime {
        /// Where we looked.
        path: PathBuf,
        /// The loader's message.
        reason: String,
    },
    /// The model file could not be read.
    #[error("cannot read model {path}: {source}")]
    Read {
        /// The model file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The model file is not the one this build was tested with.
    #[error("model {path} has sha256 {found}, expected {expected}; refusing to load it")]
    Checksum {
        /// The model file.
        path: PathBuf,
        /// Its actual hash.
        found: String,
        /// The hash recorded in the model card and compiled in, or in a verified release.
        expected: String,
    },
    /// ONNX Runtime refused the model or the run.
    #[error("ONNX Runtime: {0}")]
    Ort(String),
    /// The input does not fit the model.
    #[error("bad model input: {0}")]
    Input(String),
    /// The model produced something other than what its card promises.
    #[error("unexpected model output: {0}")]
    Output(String),
}

impl<R> From<ort::Error<R>> for ModelError {
    fn from(e: ort::Error<R>) -> Self {
        Self::Ort(e.to_string())
    }
}
