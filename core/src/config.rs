//! Settings shared by the binaries, and the rule that bad configuration exits 64.

use std::time::Duration;

use clap::Parser;
use secrecy::SecretString;

/// Exit code for bad configuration (`EX_USAGE` in sysexits.h).
pub const EXIT_CONFIG: i32 = 64;

/// Parses the command line and environment; on an error prints a one-line reason and exits 64.
/// `--help` and `--version` print and exit 0.
pub fn parse_or_exit<T: Parser>() -> T {
    match T::try_parse() {
        Ok(config) => config,
        Err(err) => match err.kind() {
            clap::error::ErrorKind::DisplayHelp
            | clap::error::ErrorKind::DisplayVersion
            | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => err.exit(),
            _ => exit_config_error(&first_line(&err.to_string())),
        },
    }
}

/// Prints `<binary>: configuration error: <reason>` on one line and exits 64.
pub fn exit_config_error(reason: &str) -> ! {
    let binary = binary_name();
    let reason = reason.trim().trim_start_matches("error: ");
    eprintln!(
        "{binary}: configuration error: {}",
        reason.replace('\n', " ")
    );
    std::process::exit(EXIT_CONFIG)
}

/// How a process that ran ends: 0, or 1 with the error and its causes on one line (never a
/// backtrace dump).
pub fn exit_code(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            let message = one_line(&err);
            tracing::error!(error = %message, "exiting after an error");
            eprintln!("{}: error: {message}", binary_name());
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, skipping causes whose text the message already holds
/// (error types that print their source would otherwise repeat it).
fn one_line(err: &anyhow::Error) -> String {
    let mut message = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
    }
    message.replace('\n', " ")
}

fn binary_name() -> String {
    std::env::args()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "flowforge".into())
}

/// clap's first line, joined with the next ones when it ends with a colon (for example "the
/// following required arguments were not provided:" followed by the flags).
fn first_line(message: &str) -> String {
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut line = lines.next().unwrap_or("invalid arguments").to_owned();
    if line.ends_with(':') {
        let rest: Vec<&str> = lines.take_while(|l| !l.starts_with("Usage:")).collect();
        if !rest.is_empty() {
            line = format!("{line} {}", rest.join(", "));
        }
    }
    line
}

/// Subcommands every binary has.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Apply the embedded schema migrations and exit.
    Migrate,
    /// Exit 0 if this process's admin server (--admin-addr) answers /healthz with 200, else 1
    /// (a container health check that needs no curl or shell).
    Healthcheck,
}

/// Database connection settings.
#[derive(Debug, Clone, clap::Args)]
pub struct DbArgs {
    /// PostgreSQL URL (the embedded default; production names a rotating secret instead).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/flowforge",
        value_parser = parse_secret,
        global = true
    )]
    pub database_url: SecretString,

    /// Secret holding the database credentials in the RDS rotation format
    /// ({"engine":"postgres","host","port","username","password","dbname"}, optional "sslmode"):
    /// `file:PATH` or `aws-sm:SECRET_NAME_OR_ARN`. Rotations are picked up without a restart.
    /// Takes precedence over DATABASE_URL.
    #[arg(long, env = "FLOWFORGE_DB_SECRET", global = true)]
    pub db_secret: Option<crate::secrets::SecretSource>,

    /// TLS mode to PostgreSQL (disable, allow, prefer, require, verify-ca, verify-full). With
    /// FLOWFORGE_DB_SECRET: used when the secret has no "sslmode"; the default is verify-full.
    /// With DATABASE_URL: overrides the URL's sslmode.
    #[arg(long, env = "FLOWFORGE_DB_SSLMODE", value_parser = crate::secrets::rds::parse_sslmode, global = true)]
    pub db_sslmode: Option<sqlx::postgres::PgSslMode>,

    /// CA bundle (PEM) the server certificate is verified against (in production the RDS
    /// global bundle).
    #[arg(long, env = "FLOWFORGE_DB_SSLROOTCERT", global = true)]
    pub db_sslrootcert: Option<std::path::PathBuf>,

    /// Largest number of pooled database connections.
    #[arg(
        long,
        env = "FLOWFORGE_DB_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    pub db_max_connections: u32,

    /// How long a request waits for a pooled connection before the database counts as unavailable.
    #[arg(long, env = "FLOWFORGE_DB_ACQUIRE_TIMEOUT", default_value = "3s", value_parser = parse_duration, global = true)]
    pub db_acquire_timeout: Duration,
}

/// Settings of every rotating secret.
#[derive(Debug, Clone, clap::Args)]
pub struct SecretArgs {
    /// How often secrets in AWS Secrets Manager are checked for a new version (a cheap
    /// DescribeSecret; the value is fetched only when AWSCURRENT moved). Jittered by ±20%.
    /// File secrets are re-read every second.
    #[arg(long, env = "FLOWFORGE_SECRET_REFRESH", default_value = "30s", value_parser = parse_refresh, global = true)]
    pub secret_refresh: Duration,
}

fn parse_refresh(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(3600) {
        return Err(format!(
            "{s:?}: the secret refresh period must be between 1s and 1h"
        ));
    }
    Ok(d)
}

/// Logging settings.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log format: `json` (one object per line) or `text`. Levels come from RUST_LOG (default info).
    #[arg(long, env = "FLOWFORGE_LOG_FORMAT", default_value = "json", value_parser = ["json", "text"], global = true)]
    pub log_format: String,
}

/// Parses a human duration such as `250ms`, `30s` or `7d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("invalid duration {s:?}: {e} (examples: 500ms, 30s, 7d)"))
}

/// Wraps a value so it is never printed by `Debug` or logs.
pub fn parse_secret(s: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(s.to_owned()))
}

/// Parses a comma-separated list of queue or kind names, validating each.
pub fn parse_names(s: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        return Err("expected at least one name".into());
    }
    for n in &names {
        if !crate::names::is_valid_name(n) {
            return Err(format!(
                "invalid name {n:?}: names match {}",
                crate::names::NAME_PATTERN
            ));
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_split_trimmed_and_validated() {
        assert_eq!(parse_names("a, b.c ,d").unwrap(), vec!["a", "b.c", "d"]);
        assert!(parse_names("").is_err());
        assert!(parse_names("ok,Bad").unwrap_err().contains("Bad"));
    }

    #[test]
    fn error_chains_print_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer: {0}")]
        struct Outer(#[source] std::io::Error);
        let err =
            anyhow::Error::new(Outer(std::io::Error::other("disk gone"))).context("migrating");
        assert_eq!(one_line(&err), "migrating: outer: disk gone");
    }

    #[test]
    fn a_reason_that_ends_with_a_colon_keeps_what_follows() {
        let clap = "error: the following required arguments were not provided:\n  --grpc-tls-key <GRPC_TLS_KEY>\n\nUsage: flowforge-scaler --grpc-tls-key <GRPC_TLS_KEY>\n";
        assert_eq!(
            first_line(clap),
            "error: the following required arguments were not provided: --grpc-tls-key <GRPC_TLS_KEY>"
        );
        assert_eq!(first_line("error: bad value\nmore"), "error: bad value");
    }

    #[test]
    fn durations_accept_human_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86400)
        );
        assert!(parse_duration("soon").unwrap_err().contains("soon"));
    }
}
