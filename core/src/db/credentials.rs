//! Database credentials that rotate under a running pool.
//!
//! The credentials come from a watched secret in the RDS rotation format. When a new version is
//! in use, the pool's connect options are swapped (new connections use it at once) and the
//! connections opened before are retired as they come back to the pool: nothing is killed in
//! the middle of a query. This covers both AWS rotation strategies:
//!
//! - **alternating users**: the secret flips between `u` and `u_clone`; both logins stay valid,
//!   so the swap is seamless whenever the new version is seen (periodic check).
//! - **single user**: the password changes on the server first (the rotation function's
//!   `setSecret` step), so new connections are refused (28P01) until the new value is read.
//!   Such a refusal triggers one immediate recovery for all waiting callers: read AWSCURRENT
//!   and AWSPENDING and use the first that logs in (tried on a throw-away connection), then
//!   retry the connection. While a rotation is between `setSecret` and `finishSecret`, only
//!   AWSPENDING works; the periodic check then leaves the held-back AWSCURRENT alone until the
//!   rotation moves it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool, Postgres};
use tokio_util::sync::CancellationToken;

use crate::secrets::rds::{DbSecret, TlsSettings};
use crate::secrets::{SecretSource, Stage, WatchSettings, Watched};
use crate::{Error, Result};

/// Recoveries are at least this far apart, so a password that is simply wrong does not cost a
/// read of the secret per request. The gap doubles after each recovery that found nothing (up to
/// [`MAX_RECOVERY_GAP`]) and is reset by one that succeeds: the first try after a rotation is
/// immediate, a lasting mismatch costs a few reads a minute.
const RECOVERY_GAP: Duration = Duration::from_millis(100);
const MAX_RECOVERY_GAP: Duration = Duration::from_secs(10);

/// How long a throw-away login attempt may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Marks connections opened with credentials that are no longer in use.
///
/// A connection opened before the last change is stale: it is closed when it comes back to the
/// pool or is found idle. One that was being opened while the change happened may have used the
/// old options although it became live after the change: for a while after each change, new
/// connections check who they logged in as (one `SELECT current_user`), and one of the wrong
/// user is refused at once, so the pool opens another with the new options. (sqlx logs that
/// refusal as "error returned from after_connect"; it is expected during a rotation.)
#[derive(Debug)]
pub struct Retirement {
    base: Instant,
    /// Microseconds after `base` of the last change, plus one (0: never changed).
    changed_at: AtomicU64,
    /// The user new connections should log in as.
    expected_user: Mutex<Option<String>>,
}

/// How long after a change new connections check the user they logged in as (longer than any
/// connection attempt takes).
const RACE_WINDOW: Duration = Duration::from_secs(10);

impl Default for Retirement {
    fn default() -> Self {
        Retirement {
            base: Instant::now(),
            changed_at: AtomicU64::new(0),
            expected_user: Mutex::new(None),
        }
    }
}

impl Retirement {
    fn now_us(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }

    /// New connections log in as `user` from now on; with `retire_older`, connections opened
    /// before are stale.
    pub fn set_login(&self, user: &str, retire_older: bool) {
        *self.expected_user.lock().expect("retirement lock") = Some(user.to_owned());
        if retire_older {
            self.changed_at.store(self.now_us() + 1, Ordering::SeqCst);
        }
    }

    /// Whether connections opened now should check who they logged in as.
    pub fn in_race_window(&self) -> bool {
        match self.changed_at.load(Ordering::SeqCst) {
            0 => false,
            mark => self.now_us().saturating_sub(mark - 1) < RACE_WINDOW.as_micros() as u64,
        }
    }

    /// Whether a connection that logged in as `user` uses the credentials in use.
    pub fn is_current_user(&self, user: &str) -> bool {
        let expected = self.expected_user.lock().expect("retirement lock");
        expected.as_deref().is_none_or(|e| e == user)
    }

    /// Whether a connection of this age was opened before the last change.
    pub fn is_stale(&self, age: Duration) -> bool {
        let opened = self.now_us().saturating_sub(age.as_micros() as u64);
        let mark = self.changed_at.load(Ordering::SeqCst);
        mark != 0 && opened < mark - 1
    }
}

/// Credentials from a rotating secret, applied to a pool.
#[derive(Debug)]
pub struct RotatingCredentials {
    secret: Watched<DbSecret>,
    applier: Applier,
    acquire_timeout: Duration,
    /// One recovery at a time; when the last one started, and the gap before the next.
    recovery: tokio::sync::Mutex<RecoveryPace>,
    recoveries: AtomicU64,
}

impl RotatingCredentials {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        source: SecretSource,
        settings: WatchSettings,
        tls: TlsSettings,
        application_name: String,
        pool: PgPool,
        retirement: Arc<Retirement>,
        acquire_timeout: Duration,
        stop: CancellationToken,
    ) -> Self {
        let secret = Watched::start("db", source, DbSecret::parse, settings, stop.clone());
        let applier = Applier {
            secret: secret.clone(),
            tls,
            application_name,
            retirement,
            applied: Arc::default(),
        };
        let credentials = RotatingCredentials {
            secret: secret.clone(),
            applier: applier.clone(),
            acquire_timeout,
            recovery: tokio::sync::Mutex::new(RecoveryPace::default()),
            recoveries: AtomicU64::new(0),
        };
        // Swap the pool's options as soon as a version is installed, not only at the next
        // acquire, so idle connections retire and the log shows the moment.
        let mut changes = secret.subscribe();
        tokio::spawn(async move {
            loop {
                applier.apply(&pool);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    r = changes.changed() => if r.is_err() { return },
                }
            }
        });
        credentials
    }

    /// The watched secret.
    pub fn secret(&self) -> &Watched<DbSecret> {
        &self.secret
    }

    pub(crate) async fn acquire(&self, pool: &PgPool) -> Result<PoolConnection<Postgres>> {
        let deadline = Instant::now() + self.acquire_timeout;
        if self.secret.snapshot().is_none() && !self.secret.wait_loaded(self.acquire_timeout).await
        {
            let reason = self
                .secret
                .not_ready_reason()
                .unwrap_or_else(|| "database credentials not loaded".into());
            return Err(Error::Unavailable(sqlx::Error::Configuration(
                reason.into(),
            )));
        }
        loop {
            self.applier.apply(pool);
            let seen = self.recoveries.load(Ordering::SeqCst);
            match pool.acquire().await {
                Ok(conn) => return Ok(conn),
                Err(err) if is_auth_error(&err) && Instant::now() < deadline => {
                    metrics::counter!("flowforge_db_auth_failures_total").increment(1);
                    tracing::debug!(error = %err, "database refused the credentials; refreshing them");
                    // Bounded by the caller's deadline: past it, the refusal is the answer.
                    // Boxed: the rare path holds the AWS SDK's deep futures, which would
                    // otherwise be part of every caller's future type.
                    let recover = Box::pin(self.recover(seen));
                    let _ = tokio::time::timeout_at(deadline.into(), recover).await;
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Finds credentials that log in, once for all callers that failed since the last try.
    async fn recover(&self, seen: u64) {
        let mut pace = self.recovery.lock().await;
        if self.recoveries.load(Ordering::SeqCst) != seen {
            return; // someone recovered after we failed: just retry
        }
        if let Some(at) = pace.last {
            let since = at.elapsed();
            if since < pace.gap {
                tokio::time::sleep(pace.gap - since).await;
            }
        }
        pace.last = Some(Instant::now());
        self.recoveries.fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        let outcome = self.find_working_credentials().await;
        let result = match &outcome {
            Ok(Some(_)) => "recovered",
            Ok(None) => "no_working_credentials",
            Err(_) => "store_failed",
        };
        metrics::counter!("flowforge_db_credential_recoveries_total", "result" => result)
            .increment(1);
        pace.gap = match outcome {
            Ok(Some(_)) => RECOVERY_GAP,
            _ => (pace.gap * 2).min(MAX_RECOVERY_GAP),
        };
        match outcome {
            Ok(Some(stage)) => tracing::info!(
                stage = stage.label(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "database refused the credentials in use; switched to the ones that log in"
            ),
            Ok(None) => tracing::warn!(
                "database refuses the credentials in use and no version of the secret logs in yet"
            ),
            Err(err) => {
                tracing::warn!(error = %err, "database refuses the credentials in use and the secret cannot be read")
            }
        }
    }

    /// AWSCURRENT, then AWSPENDING: the first that differs from what is in use and logs in
    /// is installed.
    async fn find_working_credentials(&self) -> std::result::Result<Option<Stage>, String> {
        let in_use = self.secret.snapshot();
        let mut store_error = None;
        for stage in [Stage::Current, Stage::Pending] {
            let candidate = match self.secret.fetch(stage).await {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(err) => {
                    store_error = Some(err.to_string());
                    continue;
                }
            };
            if in_use
                .as_ref()
                .is_some_and(|s| s.current.value.same_login(&candidate.value))
            {
                continue;
            }
            let options = candidate
                .value
                .connect_options(&self.applier.tls, &self.applier.application_name);
            if probe(&options).await {
                let held_back = match stage {
                    Stage::Pending => self
                        .secret
                        .fetch(Stage::Current)
                        .await
                        .ok()
                        .flatten()
                        .map(|c| c.version),
                    _ => None,
                };
                self.secret.install_holding_back(candidate, held_back);
                return Ok(Some(stage));
            }
        }
        match store_error {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }
}

#[derive(Debug)]
struct RecoveryPace {
    last: Option<Instant>,
    gap: Duration,
}

impl Default for RecoveryPace {
    fn default() -> Self {
        RecoveryPace {
            last: None,
            gap: RECOVERY_GAP,
        }
    }
}

/// Puts the version in use into the pool: new connections log in with it, and connections
/// opened before are retired when released. Shared by the background task and the acquire path.
#[derive(Debug, Clone)]
struct Applier {
    secret: Watched<DbSecret>,
    tls: TlsSettings,
    application_name: String,
    retirement: Arc<Retirement>,
    applied: Arc<Mutex<Applied>>,
}

#[derive(Debug, Default)]
struct Applied {
    generation: u64,
    login: Option<DbSecret>,
}

impl Applier {
    fn apply(&self, pool: &PgPool) {
        let Some(snapshot) = self.secret.snapshot() else {
            return;
        };
        let mut applied = self.applied.lock().expect("applied lock");
        if applied.generation >= snapshot.generation {
            return;
        }
        applied.generation = snapshot.generation;
        let version = &snapshot.current;
        if applied
            .login
            .as_ref()
            .is_some_and(|l| l.same_login(&version.value))
        {
            return; // a new version with the same login: nothing to retire
        }
        let first = applied.login.is_none();
        applied.login = Some(version.value.clone());
        self.retirement.set_login(&version.value.username, !first);
        pool.set_connect_options(
            version
                .value
                .connect_options(&self.tls, &self.application_name),
        );
        if first {
            return;
        }
        metrics::counter!("flowforge_db_credential_swaps_total").increment(1);
        tracing::info!(
            username = %version.value.username,
            host = %version.value.host,
            version = %version.label,
            "database credentials in use changed; connections opened before retire when released"
        );
    }
}

/// Whether `options` log in (a throw-away connection, closed at once).
async fn probe(options: &PgConnectOptions) -> bool {
    match tokio::time::timeout(PROBE_TIMEOUT, PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            true
        }
        Ok(Err(err)) => {
            tracing::debug!(error = %err, "candidate credentials do not log in");
            false
        }
        Err(_) => false,
    }
}

/// PostgreSQL refused the credentials: 28P01 (invalid_password) or 28000
/// (invalid_authorization_specification, e.g. no such role or pg_hba rejection).
pub fn is_auth_error(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db)
        if matches!(db.code().as_deref(), Some("28P01") | Some("28000")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_opened_before_a_change_are_stale() {
        let r = Retirement::default();
        assert!(!r.is_stale(Duration::from_secs(100)));
        std::thread::sleep(Duration::from_millis(20));
        r.set_login("u_clone", true);
        // Opened 10 ms before the mark (age = time since mark + 10 ms).
        assert!(r.is_stale(Duration::from_millis(10)));
        std::thread::sleep(Duration::from_millis(5));
        // Opened after the mark.
        assert!(!r.is_stale(Duration::from_millis(1)));
    }

    #[test]
    fn connections_check_their_user_for_a_while_after_a_change() {
        let r = Retirement::default();
        r.set_login("u", false);
        assert!(!r.in_race_window());
        assert!(r.is_current_user("u"));
        r.set_login("u_clone", true);
        assert!(r.in_race_window());
        assert!(!r.is_current_user("u"));
        assert!(r.is_current_user("u_clone"));
    }
}
