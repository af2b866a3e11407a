//! `flowforge-scaler` settings: flags and `FLOWFORGE_*` environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use flowforge_core::config::{parse_duration, DbArgs, LogArgs, SecretArgs};

/// KEDA external-push scaler for FlowForge workers: scales them from zero on queue depth,
/// pushed by LISTEN/NOTIFY; publishes the queue's SLO figures. `simulate` replays an arrival
/// trace through a model of KEDA + HPA.
///
/// Every flag can also be set through the environment variable shown. Bad configuration exits 64.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "flowforge-scaler", version)]
pub struct Config {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub db: DbArgs,

    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub secrets: SecretArgs,

    /// Address of the gRPC server KEDA calls.
    #[arg(long, env = "FLOWFORGE_GRPC_ADDR", default_value = "127.0.0.1:6000")]
    pub grpc_addr: SocketAddr,

    /// Address of the admin server (/healthz, /readyz, /version, /metrics).
    #[arg(long, env = "FLOWFORGE_ADMIN_ADDR", default_value = "127.0.0.1:9082")]
    pub admin_addr: SocketAddr,

    /// PEM certificate (chain) for TLS on the gRPC server (with --grpc-tls-key). KEDA's
    /// `enableTLS`/`caCert` then verify it.
    #[arg(long, env = "FLOWFORGE_GRPC_TLS_CERT", requires = "grpc_tls_key")]
    pub grpc_tls_cert: Option<PathBuf>,

    /// PEM private key of --grpc-tls-cert.
    #[arg(long, env = "FLOWFORGE_GRPC_TLS_KEY", requires = "grpc_tls_cert")]
    pub grpc_tls_key: Option<PathBuf>,

    /// PEM CA bundle: when set, clients must present a certificate it signed (KEDA's
    /// `tlsClientCert`/`tlsClientKey`). Needs TLS on.
    #[arg(long, env = "FLOWFORGE_GRPC_TLS_CLIENT_CA", requires = "grpc_tls_cert")]
    pub grpc_tls_client_ca: Option<PathBuf>,

    /// How often an open StreamIsActive re-checks its queues without a notification.
    #[arg(long, env = "FLOWFORGE_SCALER_POLL_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub poll_interval: Duration,

    /// How often the queue's SLO figures (depth, oldest ready task, task waits) are read.
    #[arg(long, env = "FLOWFORGE_SCALER_METRICS_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub metrics_interval: Duration,

    /// The task-wait SLO's threshold: a task meets it if it started within this time of
    /// becoming ready.
    #[arg(long, env = "FLOWFORGE_SLO_TASK_WAIT", default_value = "30s", value_parser = parse_duration)]
    pub slo_task_wait: Duration,

    /// The task-wait SLO's objective: the share of tasks that must start within
    /// --slo-task-wait (over 30 days). Burn rates are published against it; keep it equal to
    /// the objective in slo/slos.yaml.
    #[arg(
        long,
        env = "FLOWFORGE_SLO_TASK_WAIT_OBJECTIVE",
        default_value_t = 0.99
    )]
    pub slo_task_wait_objective: f64,

    /// On SIGTERM: how long open streams and calls get to finish.
    #[arg(long, env = "FLOWFORGE_SHUTDOWN_GRACE", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

/// Subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Apply the embedded schema migrations and exit.
    Migrate,
    /// Exit 0 if this process's admin server (--admin-addr) answers /healthz with 200, else 1
    /// (a container health check that needs no curl or shell).
    Healthcheck,
    /// Serve, and play KEDA + HPA locally against this scaler: run flowforge-worker processes,
    /// 0..N, from the scaler's own answers (what `make up` runs).
    Local(crate::local::LocalArgs),
    /// Replay an arrival trace through a model of KEDA + HPA for several autoscaling policies
    /// side by side; needs no database (see docs/autoscaling-simulator.md).
    Simulate(crate::simulate::SimulateArgs),
}

impl Config {
    /// Checks beyond parsing; the message is the one-line reason for exit 64.
    pub fn validate(&self) -> Result<(), String> {
        if self.poll_interval < Duration::from_millis(100) {
            return Err("--poll-interval must be at least 100ms".into());
        }
        if !(self.slo_task_wait_objective > 0.0 && self.slo_task_wait_objective < 1.0) {
            return Err(
                "--slo-task-wait-objective must be between 0 and 1 (exclusive), e.g. 0.99".into(),
            );
        }
        if self.metrics_interval < Duration::from_secs(1) {
            return Err("--metrics-interval must be at least 1s".into());
        }
        for (flag, path) in [
            ("FLOWFORGE_GRPC_TLS_CERT", &self.grpc_tls_cert),
            ("FLOWFORGE_GRPC_TLS_KEY", &self.grpc_tls_key),
            ("FLOWFORGE_GRPC_TLS_CLIENT_CA", &self.grpc_tls_client_ca),
        ] {
            if let Some(p) = path {
                if !p.is_file() {
                    return Err(format!("{flag} {}: no such file", p.display()));
                }
            }
        }
        Ok(())
    }
}
