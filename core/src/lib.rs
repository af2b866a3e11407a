//! FlowForge's shared library: everything the three binaries have in common.
//!
//! - [`config`]: command-line/environment settings shared by every binary, and the exit-64 rule.
//! - [`telemetry`]: JSON logs and the Prometheus recorder.
//! - [`shutdown`]: SIGINT/SIGTERM handling and readiness.
//! - [`db`]: the PostgreSQL pool and the embedded migrations.
//! - [`queue`]: the task queue itself.
//! - [`secrets`]: secret sources (API tokens).
//! - [`admin`]: the `/healthz`, `/readyz`, `/version`, `/metrics` server every process runs.
#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
pub mod db;
pub mod error;
pub mod names;
pub mod queue;
pub mod secrets;
pub mod shutdown;
pub mod telemetry;
pub mod trace;

pub use error::{Error, Result};
