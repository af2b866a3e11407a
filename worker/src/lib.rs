//! `flowforge-worker`: claims tasks from the PostgreSQL queue and runs them.
//!
//! - [`handler`]: the [`Handler`] trait every task kind implements, and the [`Registry`].
//! - [`handlers`]: the built-in kinds `noop`, `sleep`, `http` and `fail`.
//! - [`runner`]: claims, runs, completes, heartbeats and drains.
//! - [`app`]: wires config, database, admin server and runner into a process.
#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod error;
pub mod handler;
pub mod handlers;
pub mod runner;
mod task_metrics;

pub use error::{Error, Result};
pub use handler::{Handler, HandlerError, Registry, TaskContext};
