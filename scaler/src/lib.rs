//! `flowforge-scaler`: KEDA's external-push scaler for FlowForge workers, and the tools that let
//! operators tune autoscaling.
//!
//! - [`service`]: the gRPC service KEDA calls (`externalscaler.proto`, generated into [`proto`]).
//! - [`metadata`]: the ScaledObject's trigger metadata.
//! - [`slo`]: the queue's figures from the database, as metrics.
//! - [`app`]: the process: database, LISTEN hub, gRPC and admin servers.
//! - [`local`]: KEDA + HPA played locally, running real worker processes (`make up`).
#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod local;
pub mod metadata;
pub mod proto;
pub mod service;
pub mod simulate;
pub mod slo;
