//! `flowforge-api` settings: flags and `FLOWFORGE_*` environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use flowforge_core::config::Command;
use flowforge_core::config::{parse_duration, DbArgs, LogArgs, SecretArgs};
use flowforge_core::secrets::SecretSource;

/// The FlowForge task API: submit, inspect, cancel and re-drive tasks.
///
/// Every flag can also be set through the environment variable shown. Bad configuration exits 64.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "flowforge-api", version)]
pub struct Config {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub db: DbArgs,

    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub secrets: SecretArgs,

    /// Address of the task API.
    #[arg(long, env = "FLOWFORGE_API_ADDR", default_value = "127.0.0.1:8080")]
    pub api_addr: SocketAddr,

    /// PEM certificate chain (leaf first) for HTTPS on the API address, with --api-tls-key; for
    /// example cert-manager's mounted tls.crt. Checked every second: a renewed certificate is
    /// served to new connections without a restart. Refused on AWS Lambda (exit 64).
    #[arg(long, env = "FLOWFORGE_API_TLS_CERT", requires = "api_tls_key")]
    pub api_tls_cert: Option<PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --api-tls-cert, e.g. cert-manager's tls.key.
    #[arg(long, env = "FLOWFORGE_API_TLS_KEY", requires = "api_tls_cert")]
    pub api_tls_key: Option<PathBuf>,

    /// Address of the admin server (/healthz, /readyz, /version, /metrics).
    #[arg(long, env = "FLOWFORGE_ADMIN_ADDR", default_value = "127.0.0.1:9080")]
    pub admin_addr: SocketAddr,

    /// Where the accepted bearer tokens are: `file:PATH` or `aws-sm:SECRET_NAME_OR_ARN`, holding
    /// {"tokens":["..."]}. Rotations are picked up without a restart.
    #[arg(long, env = "FLOWFORGE_API_TOKENS_SECRET")]
    pub api_tokens_secret: Option<SecretSource>,

    /// How long tokens of the previous version of the tokens secret (AWSPREVIOUS, or a file's
    /// former content) stay valid after a rotation, so clients can roll over.
    #[arg(long, env = "FLOWFORGE_API_TOKEN_GRACE", default_value = "1h", value_parser = parse_duration)]
    pub api_token_grace: Duration,

    /// Largest request body of a single-task request, in bytes (payloads above it get 413).
    #[arg(long, env = "FLOWFORGE_MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,

    /// Longest per-attempt timeout a task may ask for (1s to 24h; a task that sets none gets
    /// 300 s, or this if it is lower). The workers' drain (`FLOWFORGE_SHUTDOWN_GRACE`) and their
    /// pods' termination grace are sized from it, so a scale-in or a rollout lets every running
    /// task finish where it started.
    #[arg(long, env = "FLOWFORGE_MAX_TASK_TIMEOUT", default_value = "24h", value_parser = parse_duration)]
    pub max_task_timeout: Duration,

    /// Largest number of tasks in one batch request.
    #[arg(long, env = "FLOWFORGE_MAX_BATCH", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_batch: u32,

    /// Largest body of a batch request, in bytes.
    #[arg(long, env = "FLOWFORGE_MAX_BATCH_BODY_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_batch_body_bytes: usize,

    /// Requests per second allowed per token (0 turns rate limiting off).
    #[arg(long, env = "FLOWFORGE_RATE_LIMIT_RPS", default_value_t = 1000)]
    pub rate_limit_rps: u32,

    /// Burst of requests allowed per token above the steady rate.
    #[arg(long, env = "FLOWFORGE_RATE_LIMIT_BURST", default_value_t = 2000)]
    pub rate_limit_burst: u32,

    /// Concurrent group-commit flushers for single enqueues.
    #[arg(long, env = "FLOWFORGE_ENQUEUE_FLUSHERS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub enqueue_flushers: u32,

    /// Largest number of single enqueues committed together.
    #[arg(long, env = "FLOWFORGE_ENQUEUE_MAX_BATCH", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub enqueue_max_batch: u32,

    /// On SIGTERM: how long to keep accepting requests after readiness turns 503, so load
    /// balancers stop routing here before the listener closes.
    #[arg(long, env = "FLOWFORGE_SHUTDOWN_DELAY", default_value = "0s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,

    /// Longest time in-flight requests get to finish on shutdown.
    #[arg(long, env = "FLOWFORGE_SHUTDOWN_GRACE", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

impl Config {
    /// The certificate and key files of HTTPS on the API address, if it is on.
    pub fn api_tls(&self) -> Option<crate::tls::TlsFiles> {
        match (&self.api_tls_cert, &self.api_tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        }
    }

    /// Checks that go beyond parsing; the message is the one-line reason for exit 64.
    pub fn validate(&self) -> Result<(), String> {
        if self.command.is_none() && self.api_tokens_secret.is_none() {
            return Err("FLOWFORGE_API_TOKENS_SECRET (--api-tokens-secret) is required, e.g. file:/run/secrets/tokens.json".into());
        }
        if self.max_body_bytes < 1024 {
            return Err("--max-body-bytes must be at least 1024".into());
        }
        let max_timeout = self.max_task_timeout;
        if max_timeout < Duration::from_secs(1)
            || max_timeout > Duration::from_secs(86_400)
            || max_timeout.subsec_nanos() != 0
        {
            return Err(format!(
                "FLOWFORGE_MAX_TASK_TIMEOUT (--max-task-timeout) must be whole seconds from 1s to 24h, not {}",
                humantime::format_duration(max_timeout)
            ));
        }
        if self.rate_limit_rps > 0 && self.rate_limit_burst == 0 {
            return Err("--rate-limit-burst must be positive when rate limiting is on".into());
        }
        for (variable, path) in [
            ("FLOWFORGE_API_TLS_CERT", &self.api_tls_cert),
            ("FLOWFORGE_API_TLS_KEY", &self.api_tls_key),
        ] {
            if let Some(path) = path {
                if !path.is_file() {
                    return Err(format!("{variable} {}: no such file", path.display()));
                }
            }
        }
        Ok(())
    }
}
