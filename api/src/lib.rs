//! `flowforge-api`: the task API.
//!
//! - [`app`]: builds the router and runs the server (and the admin server) until shutdown.
//! - [`routes`]: one module per resource (`tasks`, `queues`), each with its `router()`.
//! - [`problem`]: the crate's error type, rendered as RFC 9457 problem+json.
//! - [`extract`]: JSON, path and query extractors whose rejections are problems.
//! - [`auth`]: bearer tokens and per-token rate limits.
//! - [`observe`]: request ids, request logs and HTTP metrics by route template.
//! - [`openapi`]: the OpenAPI 3.1 document, generated from the handlers.
//! - [`tls`]: HTTPS on the API address, with the certificate reloaded when its files change.
//! - [`lambda`]: the same router on AWS Lambda (API Gateway HTTP API and function URLs).
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod config;
pub mod extract;
pub mod lambda;
pub mod observe;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod state;
pub mod tls;

pub use problem::{ApiError, Result};
