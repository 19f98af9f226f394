//! BayLens domain and wire types.
//!
//! Everything that crosses a boundary (a scanner's sidecar file, a report from a bay to the
//! server) is parsed here, once, into types that cannot hold an invalid value. The rest of the
//! code base takes these types and never re-validates. This crate is pure: no I/O, no async.
//!
//! # Layout
//! - [`ids`]: identifiers that end up in file names and URLs (`ScanId`, `BayId`, `ReportId`),
//!   restricted to a safe alphabet so that no id can traverse a path.
//! - [`camera_code`]: the code a bay's camera read over a truck pass, as sent to the server's
//!   case, and how it may disagree with the scanner's and the declaration's.
//! - [`code_read`]: a container code from OCR output, with confusion correction, or "unreadable".
//! - [`homography`]: plane-to-plane homographies (camera views of a container face).
//! - [`container_code`]: ISO 6346 container codes with check-digit validation.
//! - [`hs`]: the HS chapter → material profile table (`assets/hs_chapters.csv`).
//! - [`declaration`]: advance cargo declarations (`baylens.declaration/1`), a WCO Data Model subset.
//! - [`sidecar`]: the scan contract (`baylens.scan/1`), documented in `SCAN_FORMAT.md`.
//! - [`report`]: what a bay reports to the server for each scan: model output, findings, risk, lane.
//! - [`phantom`]: the calibration phantom's description (`baylens.phantom/1`): step-wedge
//!   materials, thicknesses and where each step lies in its scan.
//! - [`release`]: signed model releases (ed25519) and their verification.
//! - [`risk`]: scan and case risk, its breakdown per finding, and the lanes (site thresholds).
//! - [`error`]: the crate's error type; every variant says exactly what was wrong.

pub mod camera_code;
pub mod cargo_space;
pub mod code_pass;
pub mod code_read;
pub mod container_code;
pub mod declaration;
pub mod error;
pub mod homography;
pub mod hs;
pub mod ids;
pub mod phantom;
pub mod release;
pub mod report;
pub mod risk;
pub mod sidecar;

pub use container_code::ContainerCode;
pub use declaration::{DECLARATION_CONTRACT, Declarant, Declaration, DeclaredItem, Vehicle};
pub use error::ProtocolError;
pub use ids::{BayId, ReportId, ScanId};
pub use report::{Finding, FindingKind, Lane, ModelRun, Region, ScanReport};
pub use sidecar::{Energy, ScanImage, ScanSidecar};
