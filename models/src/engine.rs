//! The [`Engine`] trait between a model and ONNX Runtime, and [`OrtEngine`], its real
//! implementation.

use std::path::Path;

use ndarray::{Array4, ArrayView4, IxDyn};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;
use sha2::{Digest, Sha256};

use crate::{ModelError, runtime};

/// Runs one 4-D float tensor through a model and returns its first output.
pub trait Engine: Send {
    /// Runs inference.
    fn run(&mut self, input: ArrayView4<'_, f32>) -> Result<Array4<f32>, ModelError>;
}

/// An ONNX Runtime session over a checksum-verified model file.
#[derive(Debug)]
pub struct OrtEngine {
    session: Session,
    /// sha256 of the loaded file, hex.
    sha256: String,
}

/// sha256 of a byte string, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl OrtEngine {
    /// Loads `path` after checking that its sha256 is `expected_sha256`, with `threads`
    /// intra-op threads and full graph optimisation.
    pub fn load(path: &Path, expected_sha256: &str, threads: usize) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Read {
            path: path.to_owned(),
            source,
        })?;
        let found = sha256_hex(&bytes);
        if found != expected_sha256 {
            return Err(ModelError::Checksum {
                path: path.to_owned(),
                found,
                expected: expected_sha256.to_owned(),
            });
        }
        let env = runtime::environment()?;
        let session = Session::builder(env)?
            .with_optimization_level(GraphOptimizationLevel::Level3)?
            .with_intra_threads(threads.max(1))?
            .with_inter_threads(1)?
            // After a run, ORT's workers would spin for a while waiting for the next one, and on
            // a 2-core bay box that steals the core calibration and image encoding need.
            .with_intra_op_spinning(false)?
            .commit_from_memory(&bytes)?;
        Ok(Self {
            session,
            sha256: found,
        })
    }

    /// sha256 of the model file that was loaded.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

impl Engine for OrtEngine {
    fn run(&mut self, input: ArrayView4<'_, f32>) -> Result<Array4<f32>, ModelError> {
        let tensor = TensorRef::from_array_view(input.into_dyn())?;
        let outputs = self.session.run(ort::inputs![tensor])?;
        let (out_shape, values) = outputs[0].try_extract_tensor::<f32>()?;
        let dims: Vec<usize> = out_shape.iter().map(|&d| d as usize).collect();
        if dims.len() != 4 {
            return Err(ModelError::Output(format!(
                "expected a 4-D output, got shape {dims:?}"
            )));
        }
        let array = ndarray::ArrayD::from_shape_vec(IxDyn(&dims), values.to_vec())
            .map_err(|e| ModelError::Output(e.to_string()))?
            .into_dimensionality::<ndarray::Ix4>()
            .map_err(|e| ModelError::Output(e.to_string()))?;
        Ok(array)
    }
}
