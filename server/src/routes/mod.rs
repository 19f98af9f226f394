//! HTTP routes, one module per resource.

pub mod cases;
pub mod health;
pub mod pages;
pub mod reports;
