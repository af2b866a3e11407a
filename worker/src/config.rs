//! `flowforge-worker` settings: flags and `FLOWFORGE_*` environment variables.

use std::net::SocketAddr;
use std::time::Duration;

pub use flowforge_core::config::Command;
use flowforge_core::config::{parse_duration, parse_names, DbArgs, LogArgs, SecretArgs};

/// Claims tasks from the FlowForge queue in PostgreSQL and runs them.
///
/// Every flag can also be set through the environment variable shown. Bad configuration exits 64.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "flowforge-worker", version)]
pub struct Config {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub db: DbArgs,

    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub secrets: SecretArgs,

    /// Address of the admin server (/healthz, /readyz, /version, /metrics).
    #[arg(long, env = "FLOWFORGE_ADMIN_ADDR", default_value = "127.0.0.1:9081")]
    pub admin_addr: SocketAddr,

    /// Queues to claim from, comma-separated, served in turn.
    #[arg(long, env = "FLOWFORGE_QUEUES", default_value = "default", value_parser = parse_names)]
    pub queues: std::vec::Vec<String>,

    /// Largest number of tasks this worker runs at once.
    #[arg(long, env = "FLOWFORGE_CONCURRENCY", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: u32,

    /// Largest number of tasks claimed by one database statement.
    #[arg(long, env = "FLOWFORGE_CLAIM_BATCH", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub claim_batch: u32,

    /// Lease on a claimed task; heartbeats renew it. A worker that dies loses its tasks to
    /// another worker once the lease expires.
    #[arg(long, env = "FLOWFORGE_LEASE", default_value = "30s", value_parser = parse_duration)]
    pub lease: Duration,

    /// Longest wait between claims when no LISTEN/NOTIFY wake-up arrives.
    #[arg(long, env = "FLOWFORGE_POLL_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub poll_interval: Duration,

    /// On SIGTERM, how long in-flight tasks may finish before they are handed back. Keep it
    /// below the pod's terminationGracePeriodSeconds.
    #[arg(long, env = "FLOWFORGE_SHUTDOWN_GRACE", default_value = "25s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// Hosts the `http` kind may call, comma-separated (empty: none).
    #[arg(
        long,
        env = "FLOWFORGE_HTTP_ALLOW_HOSTS",
        default_value = "",
        value_delimiter = ','
    )]
    pub http_allow_hosts: Vec<String>,

    /// Leave the `fail` drill kind unregistered (its tasks then die as unknown kinds).
    #[arg(long, env = "FLOWFORGE_DISABLE_FAIL_KIND", default_value_t = false, num_args = 0..=1,
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub disable_fail_kind: bool,

    /// Also stop (drain as on SIGTERM) when standard input reaches end of file. For a parent
    /// that holds the other end of a pipe: the worker then never outlives it, however the
    /// parent ends (`flowforge-scaler local` sets it).
    #[arg(long, env = "FLOWFORGE_STOP_ON_STDIN_EOF", default_value_t = false, num_args = 0..=1,
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub stop_on_stdin_eof: bool,

    /// First retry's maximum delay; each retry doubles it (full jitter), up to --retry-cap.
    #[arg(long, env = "FLOWFORGE_RETRY_BASE", default_value = "1s", value_parser = parse_duration)]
    pub retry_base: Duration,

    /// Largest retry delay.
    #[arg(long, env = "FLOWFORGE_RETRY_CAP", default_value = "10m", value_parser = parse_duration)]
    pub retry_cap: Duration,

    /// How long succeeded and cancelled tasks are kept before pruning. `0s` does not keep
    /// succeeded tasks at all (they are deleted when they finish, which is cheaper).
    #[arg(long, env = "FLOWFORGE_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub retention: Duration,

    /// How long dead tasks are kept (re-drivable) before pruning.
    #[arg(long, env = "FLOWFORGE_DEAD_RETENTION", default_value = "30d", value_parser = parse_duration)]
    pub dead_retention: Duration,

    /// How often expired leases are rescued.
    #[arg(long, env = "FLOWFORGE_RESCUE_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub rescue_interval: Duration,

    /// How often finished tasks past retention are pruned.
    #[arg(long, env = "FLOWFORGE_PRUNE_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub prune_interval: Duration,
}

impl Config {
    /// Checks that go beyond parsing; the message is the one-line reason for exit 64.
    pub fn validate(&self) -> Result<(), String> {
        if self.lease < Duration::from_millis(300) {
            return Err("--lease must be at least 300ms".into());
        }
        if self.retry_base.is_zero() || self.retry_cap < self.retry_base {
            return Err("--retry-base must be positive and not above --retry-cap".into());
        }
        if self.poll_interval.is_zero() {
            return Err("--poll-interval must be positive".into());
        }
        Ok(())
    }
}
