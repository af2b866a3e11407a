//! The PostgreSQL pool and the embedded schema migrations.

use std::str::FromStr;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::config::DbArgs;
use crate::Result;

/// The schema, embedded in every binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Builds the pool without connecting: processes start (and answer `/readyz` 503) while the
/// database is down, and connect as soon as it is back.
pub fn pool(args: &DbArgs, application_name: &str) -> Result<PgPool, String> {
    let options = PgConnectOptions::from_str(args.database_url.expose_secret())
        .map_err(|e| format!("invalid DATABASE_URL: {e}"))?
        .application_name(application_name);
    Ok(pool_with(
        options,
        args.db_max_connections,
        args.db_acquire_timeout,
    ))
}

/// A lazy pool over `options`.
pub fn pool_with(
    options: PgConnectOptions,
    max_connections: u32,
    acquire_timeout: Duration,
) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .min_connections(0)
        .acquire_timeout(acquire_timeout)
        // Idle connections are recycled, and one that sat idle for a while is pinged before it is
        // handed out, so a database restart leaves few stale connections behind. Busy connections
        // are not pinged: that would double the round trips of every statement.
        .idle_timeout(Some(Duration::from_secs(300)))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > Duration::from_secs(1) {
                    use sqlx::Connection;
                    Ok(conn.ping().await.is_ok())
                } else {
                    Ok(true)
                }
            })
        })
        .connect_lazy_with(options)
}

/// Applies pending migrations, retrying while the database is unreachable for up to `wait`.
pub async fn migrate(pool: &PgPool, wait: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match MIGRATOR.run(pool).await {
            Ok(()) => return Ok(()),
            Err(sqlx::migrate::MigrateError::Execute(err))
                if crate::error::is_unavailable(&err) && tokio::time::Instant::now() < deadline =>
            {
                tracing::warn!(error = %err, "database not reachable yet; retrying migrations");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// The `migrate` subcommand of every binary: applies the migrations (waiting up to 30 s for the
/// database) and reports. Bad connection settings exit 64.
pub async fn migrate_command(args: &DbArgs, application_name: &str) -> Result<()> {
    let pool =
        pool(args, application_name).unwrap_or_else(|e| crate::config::exit_config_error(&e));
    migrate(&pool, Duration::from_secs(30)).await?;
    tracing::info!("migrations applied");
    Ok(())
}
