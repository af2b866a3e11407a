//! The PostgreSQL connection pool, its rotating credentials, and the embedded migrations.
//!
//! [`Db`] is what the rest of the code holds: a pool plus, when the credentials come from a
//! rotating secret (`FLOWFORGE_DB_SECRET`), the logic that keeps them current. Every
//! connection is taken through [`Db::acquire`], which retries a connection that PostgreSQL
//! refused for bad credentials after one shared, immediate refresh of the secret (see
//! [`credentials`]), so the request that met a just-rotated password still succeeds.

pub mod credentials;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};
use tokio_util::sync::CancellationToken;

use crate::config::{DbArgs, SecretArgs};
use crate::secrets::rds::TlsSettings;
use crate::secrets::WatchSettings;
use crate::{Error, Result};

pub use credentials::Retirement;
use credentials::RotatingCredentials;

/// The schema, embedded in every binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The database handle: a lazy pool, and the rotating credentials if any. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: PgPool,
    credentials: Option<Arc<RotatingCredentials>>,
}

impl From<PgPool> for Db {
    /// A pool with fixed credentials.
    fn from(pool: PgPool) -> Self {
        Db {
            pool,
            credentials: None,
        }
    }
}

impl Db {
    /// The database of the configuration: credentials from `FLOWFORGE_DB_SECRET` (kept current
    /// until `stop`), or the fixed `DATABASE_URL`. Nothing connects yet: processes start (and
    /// answer `/readyz` 503) while the database or the secret store is down. The error is the
    /// one-line reason for exit 64.
    pub fn from_config(
        args: &DbArgs,
        secrets: &SecretArgs,
        application_name: &str,
        stop: CancellationToken,
    ) -> Result<Db, String> {
        let tls = TlsSettings {
            sslmode: args.db_sslmode,
            root_cert: args.db_sslrootcert.clone(),
        };
        if let Some(ca) = &tls.root_cert {
            if !ca.is_file() {
                return Err(format!(
                    "FLOWFORGE_DB_SSLROOTCERT {}: no such file",
                    ca.display()
                ));
            }
        }
        let Some(source) = args.db_secret.clone() else {
            let mut options = PgConnectOptions::from_str(args.database_url.expose_secret())
                .map_err(|e| format!("invalid DATABASE_URL: {e}"))?
                .application_name(application_name);
            if let Some(mode) = tls.sslmode {
                options = options.ssl_mode(mode);
            }
            if let Some(ca) = &tls.root_cert {
                options = options.ssl_root_cert(ca);
            }
            let pool = pool_with(
                options,
                args.db_max_connections,
                args.db_acquire_timeout,
                None,
            );
            return Ok(Db::from(pool));
        };
        let retirement = Arc::new(Retirement::default());
        // Placeholder options: nothing connects before the secret is loaded (see `acquire`).
        let pool = pool_with(
            PgConnectOptions::new_without_pgpass().application_name(application_name),
            args.db_max_connections,
            args.db_acquire_timeout,
            Some(retirement.clone()),
        );
        let credentials = RotatingCredentials::start(
            source,
            WatchSettings {
                refresh: secrets.secret_refresh,
                ..WatchSettings::default()
            },
            tls,
            application_name.to_owned(),
            pool.clone(),
            retirement,
            args.db_acquire_timeout,
            stop,
        );
        Ok(Db {
            pool,
            credentials: Some(Arc::new(credentials)),
        })
    }

    /// The pool itself. Prefer [`Db::acquire`], which survives credential rotation.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Sets `flowforge_db_pool_connections{state="in_use"|"idle"}` and
    /// `flowforge_db_pool_max_connections` from the pool as it is now (called at every scrape).
    pub fn record_pool_metrics(&self) {
        let size = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle())
            .unwrap_or(u32::MAX)
            .min(size);
        metrics::gauge!("flowforge_db_pool_connections", "state" => "in_use")
            .set(f64::from(size - idle));
        metrics::gauge!("flowforge_db_pool_connections", "state" => "idle").set(f64::from(idle));
        metrics::gauge!("flowforge_db_pool_max_connections")
            .set(f64::from(self.pool.options().get_max_connections()));
    }

    /// The rotating credentials, if the database is configured through a secret.
    pub fn credentials(&self) -> Option<&RotatingCredentials> {
        self.credentials.as_deref()
    }

    /// A pooled connection. With rotating credentials: waits (up to the acquire timeout) for
    /// the secret's first load, and when PostgreSQL rejects the credentials (28P01, 28000)
    /// refreshes them — once for all concurrent callers — and tries again.
    pub async fn acquire(&self) -> Result<PoolConnection<Postgres>> {
        let result = match &self.credentials {
            None => self.pool.acquire().await.map_err(Error::from),
            Some(credentials) => credentials.acquire(&self.pool).await,
        };
        result.map_err(explain_tls)
    }

    /// Why the database cannot be used yet (credentials never loaded), if so.
    pub fn not_ready_reason(&self) -> Option<String> {
        self.credentials
            .as_ref()
            .and_then(|c| c.secret().not_ready_reason())
    }

    /// Waits up to `timeout` for the credentials' first load (at once for fixed credentials).
    pub async fn wait_loaded(&self, timeout: Duration) -> bool {
        match &self.credentials {
            None => true,
            Some(c) => c.secret().wait_loaded(timeout).await,
        }
    }

    /// Counts the changes of the credentials in use (0 for fixed credentials).
    pub fn credentials_generation(&self) -> u64 {
        self.credentials
            .as_ref()
            .map_or(0, |c| c.secret().generation())
    }

    /// Resolves once the credentials in use differ from generation `since` (at once if they
    /// already do; never, for fixed credentials). Long-lived connections (LISTEN) take the
    /// generation before connecting and reconnect on this, so they too move to the new
    /// credentials, even when the change happened while they were connecting.
    pub async fn credentials_changed(&self, since: u64) {
        match &self.credentials {
            None => std::future::pending().await,
            Some(c) => {
                let mut rx = c.secret().subscribe();
                let _ = rx
                    .wait_for(|s| s.as_ref().map_or(0, |s| s.generation) != since)
                    .await;
            }
        }
    }
}

/// Runs `$body` with `$conn: &mut PgConnection` from `$db` (a [`Db`]), evaluating to
/// `crate::Result`. A connection that PostgreSQL terminated while it sat in the pool (an
/// operator's `pg_terminate_backend`, a failover, sessions cut during a credential rotation)
/// fails its next statement before running it (see [`never_ran`]): `$body` then runs again on
/// the next connection. Every idle connection may be dead (all sessions were cut), so it tries
/// up to the pool size plus one; a dead connection fails at once, so that costs next to nothing. `$body` must be safe to
/// run again after such a failure: one statement, or one transaction.
///
/// A macro rather than a function taking a closure: the body awaits on a borrowed connection,
/// which async closures cannot yet express for futures spawned on a multi-threaded runtime.
macro_rules! with_retry {
    ($db:expr, |$conn:ident| $body:expr) => {{
        let mut retries = 0u32;
        let max_retries = $db.pool().options().get_max_connections() + 1;
        loop {
            let mut pooled = $db.acquire().await?;
            let $conn: &mut sqlx::PgConnection = &mut pooled;
            match $body {
                Ok(value) => break Ok::<_, $crate::Error>(value),
                Err(err) if retries < max_retries && $crate::db::never_ran(&err) => {
                    retries += 1;
                    pooled.close_on_drop();
                    metrics::counter!("flowforge_db_statement_retries_total").increment(1);
                    tracing::debug!(error = %err, "connection was terminated while idle; retrying on a fresh one");
                }
                Err(err) => {
                    // In the caller's span (the queue operation and its task or queue).
                    tracing::warn!(error = %err, "database operation failed");
                    break Err($crate::Error::from(err));
                }
            }
        }
    }};
}
pub(crate) use with_retry;

/// A refused server certificate surfaces from sqlx as an I/O error; say what it is and what to
/// check, so `/readyz` and the logs point at the CA bundle or the host name.
fn explain_tls(err: Error) -> Error {
    let Error::Unavailable(sqlx::Error::Io(io)) = &err else {
        return err;
    };
    let Some(rustls::Error::InvalidCertificate(why)) = io
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return err;
    };
    Error::Unavailable(sqlx::Error::Tls(
        format!(
            "the server certificate was refused ({why:?}): check FLOWFORGE_DB_SSLROOTCERT (the CA \
             bundle) and that the host name in the secret is one the certificate names"
        )
        .into(),
    ))
}

/// Whether `err` proves the statement never ran: the server had terminated the session
/// (admin or crash shutdown, answered instead of the statement, so nothing was executed or
/// committed), or the statement could not even be sent (broken pipe).
pub(crate) fn never_ran(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("57P01") | Some("57P02")),
        sqlx::Error::Io(io) => io.kind() == std::io::ErrorKind::BrokenPipe,
        _ => false,
    }
}

/// A lazy pool over `options`. With `retirement`, connections opened before the last change of
/// credentials are closed when they are returned (or found idle), never in the middle of use.
pub fn pool_with(
    options: PgConnectOptions,
    max_connections: u32,
    acquire_timeout: Duration,
    retirement: Option<Arc<Retirement>>,
) -> PgPool {
    let on_release = retirement.clone();
    let on_connect = retirement.clone();
    PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .min_connections(0)
        .acquire_timeout(acquire_timeout)
        // Idle connections are recycled, and one that sat idle for a while is pinged before it is
        // handed out, so a database restart leaves few stale connections behind. Busy connections
        // are not pinged: that would double the round trips of every statement.
        .idle_timeout(Some(Duration::from_secs(300)))
        .max_lifetime(Some(Duration::from_secs(1800)))
        .test_before_acquire(false)
        .after_connect(move |conn, _meta| {
            let retirement = on_connect.clone().filter(|r| r.in_race_window());
            Box::pin(async move {
                if let Some(retirement) = retirement {
                    let user: String = sqlx::query_scalar("SELECT current_user::text")
                        .fetch_one(&mut *conn)
                        .await?;
                    if !retirement.is_current_user(&user) {
                        tracing::info!(%user, "a connection opened with the previous credentials while they were replaced; opening another");
                        return Err(sqlx::Error::Configuration(
                            format!("opened as {user} during a credential rotation (expected; reconnecting with the new credentials)").into(),
                        ));
                    }
                }
                Ok(())
            })
        })
        .before_acquire(move |conn, meta| {
            let retire = retirement.as_ref().is_some_and(|r| r.is_stale(meta.age));
            Box::pin(async move {
                if retire {
                    return Ok(false);
                }
                if meta.idle_for > Duration::from_secs(1) {
                    use sqlx::Connection;
                    Ok(conn.ping().await.is_ok())
                } else {
                    Ok(true)
                }
            })
        })
        .after_release(move |_conn, meta| {
            let keep = !on_release.as_ref().is_some_and(|r| r.is_stale(meta.age));
            Box::pin(async move { Ok(keep) })
        })
        .connect_lazy_with(options)
}

/// Applies pending migrations, retrying while the database is unreachable for up to `wait`.
pub async fn migrate(db: &Db, wait: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let attempt = match db.acquire().await {
            Ok(mut conn) => MIGRATOR.run(&mut *conn).await.map_err(Error::from),
            Err(err) => Err(err),
        };
        match attempt {
            Ok(()) => return Ok(()),
            Err(err) if retryable(&err) && tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %err, "database not reachable yet; retrying migrations");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(err) => return Err(err),
        }
    }
}

fn retryable(err: &Error) -> bool {
    match err {
        Error::Unavailable(_) => true,
        Error::Migrate(sqlx::migrate::MigrateError::Execute(e)) => crate::error::is_unavailable(e),
        _ => false,
    }
}

/// The `migrate` subcommand of every binary: applies the migrations (waiting up to 30 s for the
/// database and the secret) and reports. Bad connection settings exit 64.
pub async fn migrate_command(
    args: &DbArgs,
    secrets: &SecretArgs,
    application_name: &str,
) -> Result<()> {
    let stop = CancellationToken::new();
    let db = Db::from_config(args, secrets, application_name, stop.clone())
        .unwrap_or_else(|e| crate::config::exit_config_error(&e));
    let result = migrate(&db, Duration::from_secs(30)).await;
    stop.cancel();
    result?;
    tracing::info!("migrations applied");
    Ok(())
}
