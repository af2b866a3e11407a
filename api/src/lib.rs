//! `flowforge-api`: the task API.
//!
//! - [`app`]: builds the router and runs the server (and the admin server) until shutdown.
//! - [`routes`]: one module per resource (`tasks`, `queues`), each with its `router()`.
//! - [`problem`]: the crate's error type, rendered as RFC 9457 problem+json.
//! - [`extract`]: JSON, path and query extractors whose rejections are problems.
//! - [`auth`]: bearer tokens and per-token rate limits.
//! - [`observe`]: request ids, request logs and HTTP metrics by route template.
//! - [`openapi`]: the OpenAPI 3.1 document, generated from the handlers.
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod config;
pub mod extract;
pub mod observe;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod state;

pub use problem::{ApiError, Result};
