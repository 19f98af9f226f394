//! The process-wide ONNX Runtime environment.
//!
//! ONNX Runtime allows one environment per process, and `ort` panics if the shared library cannot
//! be found when it first needs it. We load it ourselves, once, from `ORT_DYLIB_PATH` (set by
//! `.cargo/config.toml` for cargo) or from beside the binaries ([`crate::share`]), so a missing
//! library is an error message, not a panic.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

use crate::ModelError;

static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// Where the ONNX Runtime library is looked for: `ORT_DYLIB_PATH`, else beside the binaries
/// (`crate::share`: an installed tree, the Debian package, a checkout's `.ort/`).
pub fn library_path() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => crate::share::locate(
            crate::share::Tree::Lib,
            "libonnxruntime.so",
            ".ort/libonnxruntime.so",
        ),
    }
}

/// The environment, created on first use.
pub fn environment() -> Result<&'static Environment, ModelError> {
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let _guard = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let path = library_path();
    if !path.exists() {
        return Err(ModelError::Runtime {
            path,
            reason: "no such file".into(),
        });
    }
    let env = ort::init_from(&path)
        .map_err(|e| ModelError::Runtime {
            path: path.clone(),
            reason: e.to_string(),
        })?
        .with_name("baylens")
        .build()?;
    Ok(ENVIRONMENT.get_or_init(|| env))
}
