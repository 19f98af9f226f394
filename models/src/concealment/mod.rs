//! The concealment model, `concealment-v1`: a small U-Net trained on scanner-sim scans to find
//! dense packages hidden inside otherwise homogeneous cargo. Card: `models/onnx/concealment-v1.md`.
//!
//! `preprocess` (attenuation, scaled, padded) -> engine -> `postprocess` (threshold, connected
//! regions, scores).

mod postprocess;
mod preprocess;

use std::path::Path;
use std::time::Instant;

use ndarray::{Array2, s};

pub use postprocess::{Detection, regions};
pub use preprocess::{ATTENUATION_SCALE, T_MIN, attenuation_input, padded_size};

use crate::ModelError;
use crate::engine::{Engine, OrtEngine};

/// Name and version, as reported to the server.
pub const NAME: &str = "concealment-v1";
/// File name under `models/onnx/`.
pub const FILE: &str = "concealment-v1.onnx";
/// sha256 of the ONNX file; the card records the same value and a test keeps them equal.
pub const SHA256: &str = include_str!("../../onnx/concealment-v1.sha256").trim_ascii();
/// Pixel probability above which a pixel counts as flagged (chosen on the validation split; see
/// the card).
pub const THRESHOLD: f32 = 0.5;
/// Regions smaller than this many pixels are noise, not packages (a 200 x 200 mm package at
/// 16 mm pitch covers about 150 pixels).
pub const MIN_REGION_PIXELS: usize = 12;

/// What the model says about one scan.
#[derive(Debug, Clone, PartialEq)]
pub struct ConcealmentOutput {
    /// Per-pixel probability, the scan's size (rows x columns).
    pub heatmap: Array2<f32>,
    /// Regions above the threshold, largest score first.
    pub detections: Vec<Detection>,
    /// Highest pixel probability in the scan.
    pub max_probability: f32,
    /// Fraction of pixels above the threshold.
    pub flagged_fraction: f32,
    /// Time spent in the engine, milliseconds.
    pub inference_ms: f32,
}

/// The concealment model over some engine.
#[derive(Debug)]
pub struct ConcealmentModel<E = OrtEngine> {
    engine: E,
    sha256: String,
}

impl ConcealmentModel<OrtEngine> {
    /// Loads `concealment-v1.onnx` from `models_dir`, verifies it, and warms it up so the first
    /// real scan is not slow.
    pub fn load(models_dir: &Path, threads: usize) -> Result<Self, ModelError> {
        let engine = OrtEngine::load(&models_dir.join(FILE), SHA256, threads)?;
        let sha256 = engine.sha256().to_owned();
        let mut model = Self { engine, sha256 };
        let warm = vec![0u16; 64 * 64];
        model.analyse(&warm, 64, 64, 1000, 0)?;
        Ok(model)
    }
}

impl<E: Engine> ConcealmentModel<E> {
    /// Wraps any engine (tests use canned outputs); `sha256` is what gets reported.
    pub fn with_engine(engine: E, sha256: String) -> Self {
        Self { engine, sha256 }
    }

    /// sha256 of the model in use.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Runs the model on one high-energy image (`width` x `height` raw readings, row-major).
    pub fn analyse(
        &mut self,
        readings: &[u16],
        width: u32,
        height: u32,
        air: u16,
        dark: u16,
    ) -> Result<ConcealmentOutput, ModelError> {
        let (w, h) = (width as usize, height as usize);
        let input = attenuation_input(readings, w, h, air, dark)?;
        let started = Instant::now();
        let output = self.engine.run(input.view())?;
        let inference_ms = started.elapsed().as_secs_f32() * 1000.0;
        if output.shape() != input.shape() {
            return Err(ModelError::Output(format!(
                "output shape {:?} differs from input shape {:?}",
                output.shape(),
                input.shape()
            )));
        }
        let heatmap = output.slice(s![0, 0, ..h, ..w]).to_owned();
        let max_probability = heatmap.iter().copied().fold(0.0f32, f32::max);
        let flagged = heatmap.iter().filter(|&&p| p > THRESHOLD).count();
        let detections = regions(heatmap.view(), THRESHOLD, MIN_REGION_PIXELS);
        Ok(ConcealmentOutput {
            flagged_fraction: flagged as f32 / (w * h).max(1) as f32,
            heatmap,
            detections,
            max_probability,
            inference_ms,
        })
    }
}
