//! End-to-end tests of BayLens live in `tests/`: they start a real server and a real edge agent
//! on `127.0.0.1:0`, feed them scanner-sim scans, and check the outcome through the HTTP API.
//!
//! # Layout
//! - `tests/walking_skeleton.rs`: scan in the drop folder to case on the server, and the
//!   authentication of the ingest API.
