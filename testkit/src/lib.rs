//! Test support for FlowForge: ephemeral PostgreSQL clusters and databases, free ports and child
//! processes. Tests talk to real servers; nothing here mocks one.
//!
//! `make test` starts one ephemeral cluster for the whole run and exports its URL as
//! `FLOWFORGE_TEST_DATABASE_URL`; [`fresh_database`] gives every test its own database in it.
//! Tests that stop or crash PostgreSQL start a dedicated cluster with [`PgCluster::start`].
#![forbid(unsafe_code)]

mod cluster;
mod process;

pub use cluster::{fresh_database, PgCluster};
pub use process::{bin_path, free_port, wait_for_http, Child};
