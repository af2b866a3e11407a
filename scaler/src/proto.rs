//! KEDA's external scaler contract, generated at build time from `proto/externalscaler.proto`.
#![allow(clippy::all, missing_docs)]

tonic::include_proto!("externalscaler");
