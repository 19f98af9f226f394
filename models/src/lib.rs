//! BayLens's ONNX models, run through ONNX Runtime (`ort`), each with its own pre- and
//! post-processing in plain Rust.
//!
//! Every model has the same shape: `preprocess -> engine.run -> postprocess`. The model never owns
//! its ONNX Runtime session directly; it holds an [`Engine`], so pipeline tests can swap in canned
//! tensors while the parity tests run the real session. Every ONNX file is checked against the
//! sha256 compiled into this crate before it is loaded, so a swapped or corrupted model refuses to
//! start rather than silently flagging the wrong things.
//!
//! # Layout
//! - [`runtime`]: the process-wide ONNX Runtime environment, loaded from `ORT_DYLIB_PATH`.
//! - [`engine`]: the [`Engine`] trait and [`OrtEngine`], a verified ONNX Runtime session.
//! - [`concealment`]: the X-ray concealment model (`xray-concealment`): attenuation in, per-pixel
//!   probability of a hidden dense package out, then regions.
//! - [`ocr`]: container-code OCR with PaddleOCR's PP-OCRv6 detector and recogniser (DB boxes,
//!   CTC decoding, vertical codes).
//! - [`error`]: the crate error type, [`ModelError`].
//!
//! The ONNX files and their cards live in `models/onnx/`; the scripts that trained them in
//! `models/train/`.

pub mod concealment;
pub mod engine;
pub mod error;
pub mod ocr;
pub mod runtime;
pub mod share;

pub use concealment::{
    ConcealmentModel, ConcealmentOutput, Detection, HighEnergyScan, OperatingPoint,
};
pub use engine::{Engine, OrtEngine};
pub use error::ModelError;
pub use ocr::{OcrModel, OcrOptions, TextLine};
