//! The BayLens edge agent: one process per inspection bay.
//!
//! Scanners drop scans (16-bit images plus a sidecar, per `protocol/SCAN_FORMAT.md`) into a
//! folder. The agent takes each scan only when it is complete, decodes it exactly, runs the
//! concealment model through ONNX Runtime, and writes the scan and its report durably into its
//! own store before it touches the original files. An uplink task then delivers every stored
//! report to the central server, retrying with backoff for as long as the server is away.
//!
//! # Layout
//! - [`config`]: the agent's TOML configuration (unknown keys are errors).
//! - [`ingest`]: the drop folder (`drop_folder`) and the image decoder with its limits (`decode`).
//! - [`calibration`]: readings to attenuation and areal mass, the container's cargo space, the
//!   cargo's estimated mass (per-scanner constants in a TOML file).
//! - [`commission`]: `edge-agent calibrate`: a scanner's calibration from a phantom scan, and the
//!   site's tolerances and model threshold from cleared scans.
//! - [`material_map`]: the dual-energy material classes (organic, mixed, inorganic, metal).
//! - [`manifest`]: manifest verification: the scan against the declaration (mass, material,
//!   declared empty, container code, no declaration).
//! - [`analysis`]: model output to findings, risk and lane: the report.
//! - [`preview`]: the concealment heat layer.
//! - [`overlay`]: the overlay layers (contrast-enhanced scan, material map, expected cargo,
//!   findings) as PNGs and vector JSON with a legend.
//! - [`expected`]: the declared goods laid out as they should show; the observed load in blocks.
//! - [`declarations`]: the local declaration cache, synced from the server, used offline.
//! - [`outbox`]: the durable store (SQLite in WAL mode plus files).
//! - [`uplink`]: delivery to the server, idempotent by report id, with backoff and jitter.
//! - [`push`]: the scanners' HTTP push API (`POST /api/v1/scans`, 202 once stored durably).
//! - [`status`]: `edge-agent status`, the queue and the last contact with the server.
//! - [`updates`]: signed model updates: verify, self-check, install, roll back.
//! - `camera` (feature `camera`): frame sources, AR registration, the live overlay.
//! - [`bay`]: the bay now: latest scan, live frame, code read, camera health.
//! - [`tablet`]: the officers' tablet page and the AR overlay stream (WebSocket).
//! - [`annotations`]: officers' seal, examination, note and photo, stored then sent to the server.
//! - [`agent`]: [`run`], which wires them together until shutdown.
//! - [`analyze`]: `edge-agent analyze`, the whole pipeline on scans from disk, no server.

pub mod agent;
pub mod analysis;
pub mod analyze;
pub mod annotations;
pub mod bay;
pub mod calibration;
#[cfg(feature = "camera")]
pub mod camera;
pub mod commission;
pub mod config;
pub mod declarations;
pub mod error;
pub mod expected;
pub mod ingest;
pub mod manifest;
pub mod material_map;
pub mod outbox;
pub mod overlay;
pub mod preview;
pub mod push;
pub mod read_code;
pub mod redact;
pub mod status;
pub mod tablet;
pub mod updates;
pub mod uplink;

pub use agent::run;
pub use config::AgentConfig;
pub use error::AgentError;
