//! Getting scans in: the drop folder and the decoder.
//!
//! Every problem with a single scan becomes a [`Rejection`] whose text is written next to the
//! moved-aside files, so the scanner's operator can read exactly what was wrong.

pub mod decode;
pub mod dicos;
pub mod dicos_drop;
pub mod drop_folder;
pub mod scan;

use std::fmt;

/// Why a scan was refused. The message names the file and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection(pub String);

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Rejection {}
