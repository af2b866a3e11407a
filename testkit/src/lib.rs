//! Test support for FlowForge: ephemeral PostgreSQL clusters and databases, a moto server as
//! AWS Secrets Manager, throwaway certificate authorities, free ports and child processes. Tests
//! talk to real servers; nothing here mocks one.
//!
//! `make test` starts one ephemeral cluster for the whole run and exports its URL as
//! `FLOWFORGE_TEST_DATABASE_URL`; [`fresh_database`] gives every test its own database in it.
//! Tests that stop or crash PostgreSQL start a dedicated cluster with [`PgCluster::start`]
//! ([`PgCluster::enable_tls`] turns TLS on with a certificate from a [`TestCa`]).
//!
//! `make test` also runs one moto server (`FLOWFORGE_TEST_MOTO_URL`): [`MotoServer::shared`]
//! uses it (tests give their secrets unique names), [`MotoServer::start`] starts a dedicated one
//! for tests that stop, restart or pause the store. [`MotoServer::aws_env`] points a child
//! process's AWS SDK at it; [`SecretsAdmin`] creates and rotates secrets like a rotation Lambda.
//!
//! [`Prometheus`] runs a real Prometheus server on loopback for the monitoring tests.
#![forbid(unsafe_code)]

mod cluster;
mod moto;
mod process;
mod prometheus;
mod tls;

pub use cluster::{fresh_database, PgCluster};
pub use moto::{
    secrets_manager_client, MotoServer, SecretsAdmin, AWSCURRENT, AWSPENDING, AWSPREVIOUS,
    MOTO_REGION,
};
pub use process::{bin_path, free_port, wait_for_http, Child};
pub use prometheus::{which, Prometheus, Sample};
pub use tls::{CertFiles, IssuedCert, TestCa};
