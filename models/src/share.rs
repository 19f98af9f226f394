//! Where the files BayLens ships beside its binaries are found, from any working directory:
//! the ONNX models, the OCR models and the ONNX Runtime library.
//!
//! In order, the first that exists wins:
//! 1. next to the executable, in an installed tree: `<exe>/../share/baylens/…` and
//!    `<exe>/../lib/baylens/…` (`/usr/bin/edge-agent` → `/usr/share/baylens`, or an unpacked
//!    package anywhere);
//! 2. `/usr/share/baylens/…` and `/usr/lib/baylens/…` (the Debian packages);
//! 3. a source checkout: relative to the working directory, then to the executable in
//!    `target/<profile>/`.
//!
//! A flag or setting that names a path wins over all of them (`--models`, `models_dir`,
//! `ORT_DYLIB_PATH`). When nothing exists, the checkout path is returned, so that the error
//! names what was expected.

use std::path::{Path, PathBuf};

/// Where a packaged file lives under `share` (`/usr/share/baylens`) or `lib`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tree {
    /// Architecture-independent files (models).
    Share,
    /// Libraries (ONNX Runtime).
    Lib,
}

impl Tree {
    fn dir(self) -> &'static str {
        match self {
            Tree::Share => "share/baylens",
            Tree::Lib => "lib/baylens",
        }
    }
}

/// The candidates for a file at `packaged` in `tree` of an installed tree, or at `checkout` in
/// a source checkout, in the order they are tried.
pub fn candidates(tree: Tree, packaged: &str, checkout: &str) -> Vec<PathBuf> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.canonicalize().ok())
        .and_then(|e| e.parent().map(Path::to_path_buf));
    let mut out = Vec::new();
    if let Some(bin) = &exe_dir {
        out.push(bin.join("..").join(tree.dir()).join(packaged));
    }
    out.push(Path::new("/usr").join(tree.dir()).join(packaged));
    out.push(PathBuf::from(checkout));
    if let Some(bin) = &exe_dir {
        // target/<profile>/<binary> (or target/<profile>/deps/<test>) in a checkout.
        for up in ["../..", "../../.."] {
            out.push(bin.join(up).join(checkout));
        }
    }
    out
}

/// The first of [`candidates`] that exists, else `checkout` as given.
pub fn locate(tree: Tree, packaged: &str, checkout: &str) -> PathBuf {
    candidates(tree, packaged, checkout)
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(checkout))
}

/// The concealment and tiny OCR models' folder.
pub fn models_dir() -> PathBuf {
    locate(Tree::Share, "models", "models/onnx")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_installed_tree_comes_before_the_system_and_the_checkout() {
        let c = candidates(Tree::Lib, "libonnxruntime.so", ".ort/libonnxruntime.so");
        assert!(c[0].ends_with("../lib/baylens/libonnxruntime.so"), "{c:?}");
        assert_eq!(c[1], Path::new("/usr/lib/baylens/libonnxruntime.so"));
        assert_eq!(c[2], Path::new(".ort/libonnxruntime.so"));
        // From this test binary (target/debug/deps/), the checkout's models are found.
        assert!(models_dir().join("xray-concealment.onnx").exists());
    }
}
