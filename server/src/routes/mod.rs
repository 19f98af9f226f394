//! HTTP routes, one module per resource.

pub mod accounts;
pub mod admin;
pub mod agents;
pub mod bundles;
pub mod camera_codes;
pub mod cases;
pub mod datasets;
pub mod declarations;
pub mod evidence;
pub mod health;
pub mod models;
pub mod outcomes;
pub mod pages;
pub mod tdr;
