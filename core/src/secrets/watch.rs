//! Keeping a secret current while the process runs.
//!
//! A [`Watched`] secret checks its source periodically (jittered): `DescribeSecret` tells
//! whether AWSCURRENT moved, and only then is the value fetched and parsed; a file is re-read
//! and compared. A failing source keeps the last good value in use, backs off, logs once per
//! change of state and says so in metrics. Callers that have reason to believe the secret
//! changed (PostgreSQL rejected the password, a bearer token is unknown) ask for an immediate
//! check with [`Watched::refresh_now`]; concurrent askers share one check (single flight).
//!
//! Metrics (label `secret`): `flowforge_secret_refresh_total{result}` (`unchanged`, `updated`,
//! `unreachable`, `refused`, `invalid`), `flowforge_secret_last_success_timestamp_seconds`,
//! `flowforge_secret_version_info{version}` (1 for the version in use),
//! `flowforge_secret_version_written_timestamp_seconds`, `flowforge_secret_loaded` and
//! `flowforge_secret_refresh_failing`. Never a value.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rand::Rng;
use secrecy::SecretString;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::store::{FetchError, Fetched, Stage, Store};
use super::SecretSource;

/// How a secret is kept current.
#[derive(Debug, Clone, Copy)]
pub struct WatchSettings {
    /// Period of the cheap check against Secrets Manager (jittered by ±20%).
    pub refresh: Duration,
    /// Period of re-reading a file source.
    pub file_poll: Duration,
    /// Also keep the previous version (AWSPREVIOUS, or a file's former content).
    pub keep_previous: bool,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            refresh: Duration::from_secs(30),
            file_poll: Duration::from_secs(1),
            keep_previous: false,
        }
    }
}

/// One parsed version of a secret.
#[derive(Debug)]
pub struct Versioned<T> {
    pub value: T,
    /// Identity of the version (compared, never shown).
    pub version: String,
    /// How the version is shown: Secrets Manager's VersionId or a file's modification time.
    pub label: String,
    /// When the version was written to the store.
    pub written: SystemTime,
}

/// The versions in use.
#[derive(Debug)]
pub struct Snapshot<T> {
    pub current: Arc<Versioned<T>>,
    /// The version before the current one, if kept.
    pub previous: Option<Arc<Versioned<T>>>,
    /// When the current version took over: when this process saw it change, or (for the value
    /// found at start-up) when it was written.
    pub since: SystemTime,
    /// Counts installs, so a change is easy to notice.
    pub generation: u64,
    /// A version that holds AWSCURRENT but is deliberately not used: the credentials of a
    /// rotation in progress (AWSPENDING) already log in where the current ones no longer do.
    /// The periodic check leaves it alone until AWSCURRENT moves.
    pub held_back: Option<String>,
}

type Parser<T> = Arc<dyn Fn(&SecretString) -> Result<T, String> + Send + Sync>;

/// A secret kept current in the background. Cheap to clone.
pub struct Watched<T> {
    inner: Arc<Inner<T>>,
}

impl<T> std::fmt::Debug for Watched<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Watched({}: {})", self.inner.name, self.inner.source)
    }
}

impl<T> Clone for Watched<T> {
    fn clone(&self) -> Self {
        Watched {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<T> {
    name: &'static str,
    source: SecretSource,
    store: Store,
    parse: Parser<T>,
    settings: WatchSettings,
    tx: watch::Sender<Option<Arc<Snapshot<T>>>>,
    /// One check at a time; holds when the last forced check started.
    check: tokio::sync::Mutex<Option<Instant>>,
    /// Number of checks started, for single flight.
    checks: AtomicU64,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    /// Kind of the current failure, to log once per change of state.
    failing: Option<&'static str>,
    last_error: Option<String>,
}

impl<T: Send + Sync + 'static> Watched<T> {
    /// Starts watching `source`: the first read happens at once, in the background, and is
    /// retried with backoff until it succeeds or `stop` is cancelled. `name` labels logs and
    /// metrics (`db`, `api_tokens`); `parse` turns the raw JSON into a value and must not
    /// include the value in its error.
    pub fn start(
        name: &'static str,
        source: SecretSource,
        parse: impl Fn(&SecretString) -> Result<T, String> + Send + Sync + 'static,
        settings: WatchSettings,
        stop: CancellationToken,
    ) -> Self {
        let watched = Watched {
            inner: Arc::new(Inner {
                name,
                store: Store::new(&source),
                source,
                parse: Arc::new(parse),
                settings,
                tx: watch::Sender::new(None),
                check: tokio::sync::Mutex::new(None),
                checks: AtomicU64::new(0),
                health: Mutex::default(),
            }),
        };
        metrics::gauge!("flowforge_secret_loaded", "secret" => name).set(0.0);
        metrics::gauge!("flowforge_secret_refresh_failing", "secret" => name).set(0.0);
        tokio::spawn(watched.clone().run(stop));
        watched
    }

    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    pub fn source(&self) -> &SecretSource {
        &self.inner.source
    }

    /// The versions in use; `None` until the secret was read successfully once.
    pub fn snapshot(&self) -> Option<Arc<Snapshot<T>>> {
        self.inner.tx.borrow().clone()
    }

    /// Notified on every change of the versions in use.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<Snapshot<T>>>> {
        self.inner.tx.subscribe()
    }

    /// Why the secret is not usable yet, or `None` once it was loaded.
    pub fn not_ready_reason(&self) -> Option<String> {
        if self.inner.tx.borrow().is_some() {
            return None;
        }
        let health = self.inner.health.lock().expect("health lock");
        Some(format!(
            "secret {} ({}) not loaded yet: {}",
            self.inner.name,
            self.inner.source,
            health
                .last_error
                .as_deref()
                .unwrap_or("first read in progress")
        ))
    }

    /// Waits until the secret is loaded, up to `timeout`. Returns whether it is.
    pub async fn wait_loaded(&self, timeout: Duration) -> bool {
        let mut rx = self.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(Option::is_some))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Checks the source now, unless a check started after this call began (its result is as
    /// fresh as ours would be) or the last forced check is less than `min_gap` old. Returns
    /// whether a new version was installed meanwhile.
    pub async fn refresh_now(&self, min_gap: Duration) -> bool {
        let generation = self.generation();
        let asked = self.inner.checks.load(Ordering::SeqCst);
        let mut last_forced = self.inner.check.lock().await;
        if self.inner.checks.load(Ordering::SeqCst) == asked
            && last_forced.is_none_or(|t| t.elapsed() >= min_gap)
        {
            *last_forced = Some(Instant::now());
            let _ = self.check_locked().await;
        }
        drop(last_forced);
        self.generation() != generation
    }

    /// Reads and parses one stage, without installing it (for example AWSPENDING, to try
    /// credentials a rotation has set on the database but not yet made current).
    pub async fn fetch(&self, stage: Stage) -> Result<Option<Versioned<T>>, FetchError> {
        match self.inner.store.fetch(stage).await? {
            Some(fetched) => self.parse(fetched).map(Some),
            None => Ok(None),
        }
    }

    /// Makes `version` the one in use (the former current one becomes previous), while the
    /// version `held_back` keeps AWSCURRENT without being used (see [`Snapshot::held_back`]).
    pub fn install_holding_back(&self, version: Versioned<T>, held_back: Option<String>) {
        let previous = self.snapshot().map(|s| s.current.clone());
        self.install_snapshot(Arc::new(version), previous, SystemTime::now(), held_back);
    }

    /// Installs count (starts at 0, before the first load).
    pub fn generation(&self) -> u64 {
        self.inner.tx.borrow().as_ref().map_or(0, |s| s.generation)
    }

    async fn run(self, stop: CancellationToken) {
        let period = if self.inner.store.has_stages() {
            self.inner.settings.refresh
        } else {
            self.inner.settings.file_poll
        };
        let mut backoff = Duration::from_secs(1);
        let mut delay = Duration::ZERO;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            let guard = self.inner.check.lock().await;
            let result = self.check_locked().await;
            drop(guard);
            delay = match result {
                Ok(()) => {
                    backoff = Duration::from_secs(1);
                    jitter(period)
                }
                Err(_) => {
                    let d = jitter(backoff.min(period));
                    backoff = (backoff * 2).min(period.max(Duration::from_secs(1)));
                    d
                }
            };
        }
    }

    /// One check; the caller holds the check lock.
    async fn check_locked(&self) -> Result<(), FetchError> {
        self.inner.checks.fetch_add(1, Ordering::SeqCst);
        let name = self.inner.name;
        let result = self.check_once().await;
        let outcome = match &result {
            Ok(true) => "updated",
            Ok(false) => "unchanged",
            Err(e) => e.kind(),
        };
        metrics::counter!("flowforge_secret_refresh_total", "secret" => name, "result" => outcome)
            .increment(1);
        let mut health = self.inner.health.lock().expect("health lock");
        match &result {
            Ok(_) => {
                metrics::gauge!("flowforge_secret_last_success_timestamp_seconds", "secret" => name)
                    .set(unix_seconds(SystemTime::now()));
                metrics::gauge!("flowforge_secret_refresh_failing", "secret" => name).set(0.0);
                if let Some(kind) = health.failing.take() {
                    tracing::info!(secret = name, source = %self.inner.source, was = kind, "secret refresh recovered");
                }
                health.last_error = None;
            }
            Err(err) => {
                metrics::gauge!("flowforge_secret_refresh_failing", "secret" => name).set(1.0);
                let loaded = self.snapshot().is_some();
                if health.failing != Some(err.kind()) {
                    if loaded {
                        tracing::warn!(secret = name, source = %self.inner.source, error = %err,
                            "secret refresh failing; keeping the last good value");
                    } else {
                        tracing::error!(secret = name, source = %self.inner.source, error = %err,
                            "cannot load secret; not ready until it loads");
                    }
                } else {
                    tracing::debug!(secret = name, error = %err, "secret refresh still failing");
                }
                health.failing = Some(err.kind());
                health.last_error = Some(err.to_string());
            }
        }
        result.map(|_| ())
    }

    /// Whether a new version was installed.
    async fn check_once(&self) -> Result<bool, FetchError> {
        let store = &self.inner.store;
        let versions = store.versions().await?;
        let Some(current_version) = versions.current.clone() else {
            return Err(FetchError::Invalid("no version is AWSCURRENT".into()));
        };
        let snapshot = self.snapshot();
        if let Some(s) = &snapshot {
            if s.held_back.as_deref() == Some(current_version.as_str()) {
                return Ok(false);
            }
            if s.current.version == current_version {
                if s.held_back.is_some() {
                    // The rotation we ran ahead of has finished: nothing is held back any more.
                    self.inner.tx.send_replace(Some(Arc::new(Snapshot {
                        current: s.current.clone(),
                        previous: s.previous.clone(),
                        since: s.since,
                        generation: s.generation,
                        held_back: None,
                    })));
                }
                return Ok(false);
            }
        }
        let Some(fetched) = store.fetch(Stage::Current).await? else {
            return Err(FetchError::Invalid("no version is AWSCURRENT".into()));
        };
        let current = Arc::new(self.parse(fetched)?);
        let previous = if !self.inner.settings.keep_previous {
            None
        } else if store.has_stages() {
            self.fetch_previous(snapshot.as_deref()).await
        } else {
            snapshot.as_ref().map(|s| s.current.clone())
        };
        let since = if snapshot.is_some() {
            SystemTime::now()
        } else {
            current.written
        };
        self.install_snapshot(current, previous, since, None);
        Ok(true)
    }

    /// AWSPREVIOUS, reusing what is in memory when it is the same version. A previous version
    /// that cannot be read or parsed is left out (with a warning): it only extends a grace.
    async fn fetch_previous(&self, old: Option<&Snapshot<T>>) -> Option<Arc<Versioned<T>>> {
        let versions = self.inner.store.versions().await.ok()?;
        let wanted = versions.previous?;
        if let Some(old) = old {
            if old.current.version == wanted {
                return Some(old.current.clone());
            }
            if let Some(p) = old.previous.as_ref().filter(|p| p.version == wanted) {
                return Some(p.clone());
            }
        }
        match self.fetch(Stage::Previous).await {
            Ok(v) => v.map(Arc::new),
            Err(err) => {
                tracing::warn!(secret = self.inner.name, error = %err, "ignoring the previous version of the secret");
                None
            }
        }
    }

    fn parse(&self, fetched: Fetched) -> Result<Versioned<T>, FetchError> {
        let value = (self.inner.parse)(&fetched.value)
            .map_err(|e| FetchError::Invalid(format!("version {}: {e}", fetched.label)))?;
        Ok(Versioned {
            value,
            version: fetched.version,
            label: fetched.label,
            written: fetched.written,
        })
    }

    fn install_snapshot(
        &self,
        current: Arc<Versioned<T>>,
        previous: Option<Arc<Versioned<T>>>,
        since: SystemTime,
        held_back: Option<String>,
    ) {
        let name = self.inner.name;
        let old = self.snapshot();
        if let Some(old) = &old {
            metrics::gauge!("flowforge_secret_version_info", "secret" => name, "version" => old.current.label.clone())
                .set(0.0);
        }
        metrics::gauge!("flowforge_secret_version_info", "secret" => name, "version" => current.label.clone())
            .set(1.0);
        metrics::gauge!("flowforge_secret_version_written_timestamp_seconds", "secret" => name)
            .set(unix_seconds(current.written));
        metrics::gauge!("flowforge_secret_loaded", "secret" => name).set(1.0);
        match &old {
            Some(old) => tracing::info!(secret = name, source = %self.inner.source,
                version = %current.label, replaced = %old.current.label, "secret rotated: new version in use"),
            None => tracing::info!(secret = name, source = %self.inner.source,
                version = %current.label, "secret loaded"),
        }
        let generation = old.as_ref().map_or(0, |s| s.generation) + 1;
        self.inner.tx.send_replace(Some(Arc::new(Snapshot {
            current,
            previous,
            since,
            generation,
            held_back,
        })));
    }
}

fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.8..1.2))
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_number(raw: &SecretString) -> Result<u32, String> {
        use secrecy::ExposeSecret;
        serde_json::from_str::<serde_json::Value>(raw.expose_secret())
            .ok()
            .and_then(|v| v.get("n")?.as_u64())
            .map(|n| n as u32)
            .ok_or_else(|| "expected {\"n\": NUMBER}".to_owned())
    }

    fn settings() -> WatchSettings {
        WatchSettings {
            refresh: Duration::from_secs(3600),
            file_poll: Duration::from_millis(50),
            keep_previous: true,
        }
    }

    async fn wait_for<T: Send + Sync + 'static>(
        watched: &Watched<T>,
        mut pred: impl FnMut(&Snapshot<T>) -> bool,
    ) {
        let mut rx = watched.subscribe();
        tokio::time::timeout(
            Duration::from_secs(30),
            rx.wait_for(|s| s.as_deref().is_some_and(&mut pred)),
        )
        .await
        .expect("snapshot condition within 30 s")
        .expect("watcher alive");
    }

    #[tokio::test]
    async fn a_file_source_is_reloaded_and_keeps_the_last_good_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let stop = CancellationToken::new();
        let watched = Watched::start(
            "test",
            SecretSource::File(path.clone()),
            parse_number,
            settings(),
            stop.clone(),
        );
        // Missing file: not ready, with the reason.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let reason = watched.not_ready_reason().expect("not loaded");
        assert!(reason.contains("not loaded yet"), "{reason}");
        assert!(reason.contains("cannot read"), "{reason}");

        std::fs::write(&path, r#"{"n": 1}"#).unwrap();
        wait_for(&watched, |s| s.current.value == 1).await;
        assert!(watched.not_ready_reason().is_none());
        let loaded_generation = watched.generation();

        // Garbage: the last good value stays.
        std::fs::write(&path, "{not json").unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(watched.snapshot().unwrap().current.value, 1);
        assert_eq!(watched.generation(), loaded_generation);

        // A valid rotation: the former value becomes previous.
        std::fs::write(&path, r#"{"n": 2}"#).unwrap();
        wait_for(&watched, |s| s.current.value == 2).await;
        let snapshot = watched.snapshot().unwrap();
        assert_eq!(snapshot.previous.as_ref().map(|p| p.value), Some(1));
        stop.cancel();
    }

    #[tokio::test]
    async fn concurrent_forced_refreshes_share_one_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        std::fs::write(&path, r#"{"n": 1}"#).unwrap();
        let stop = CancellationToken::new();
        let watched = Watched::start(
            "test",
            SecretSource::File(path.clone()),
            parse_number,
            WatchSettings {
                file_poll: Duration::from_secs(3600),
                ..settings()
            },
            stop.clone(),
        );
        assert!(watched.wait_loaded(Duration::from_secs(10)).await);
        let before = watched.inner.checks.load(Ordering::SeqCst);
        std::fs::write(&path, r#"{"n": 2}"#).unwrap();
        let results = futures::future::join_all(
            (0..20).map(|_| watched.refresh_now(Duration::from_secs(60))),
        )
        .await;
        // The first asker checks; whoever asked before that check finished shares its result
        // (a caller that asked after the new version was installed rightly sees no change).
        assert!(results[0], "{results:?}");
        assert_eq!(watched.snapshot().unwrap().current.value, 2);
        assert_eq!(watched.inner.checks.load(Ordering::SeqCst), before + 1);
        // Within min_gap, a later ask does not check again.
        assert!(!watched.refresh_now(Duration::from_secs(60)).await);
        assert_eq!(watched.inner.checks.load(Ordering::SeqCst), before + 1);
        stop.cancel();
    }
}
