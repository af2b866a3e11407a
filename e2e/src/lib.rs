//! End-to-end rig: the real `flowforge-*` binaries, a database of their own in the run's
//! PostgreSQL cluster with application roles that can be rotated, Secrets Manager (moto), and a
//! steady load generator. Used by the tests in `e2e/tests/`.
//!
//! The application logs in as a role of its own (never the superuser), a member of a group
//! role that holds the privileges, the way AWS's RDS rotation functions expect: the
//! alternating-users strategy creates `<user>_clone` with the same memberships.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use flowforge_testkit::{bin_path, free_port, wait_for_http, Child, MotoServer, SecretsAdmin};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Binaries that load their database credentials from a rotating secret: every rotation test
/// runs and checks each of them.
pub const DB_SECRET_BINARIES: &[Binary] = &[Binary::Api, Binary::Worker, Binary::Scaler];

/// A FlowForge binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    Api,
    Worker,
    Scaler,
}

impl Binary {
    pub fn name(self) -> &'static str {
        match self {
            Binary::Api => "flowforge-api",
            Binary::Worker => "flowforge-worker",
            Binary::Scaler => "flowforge-scaler",
        }
    }
}

/// A database for one test, the group role holding its privileges, and Secrets Manager.
pub struct Rig {
    /// Superuser pool on the test database.
    pub admin: PgPool,
    pub host: String,
    pub port: u16,
    pub database: String,
    /// Prefix of every role and secret this rig creates (unique per test).
    pub prefix: String,
    pub moto: MotoServer,
    pub sm: SecretsAdmin,
    /// What every process this rig started wrote (stdout and stderr, one file each).
    logs: tempfile::TempDir,
}

impl Rig {
    /// A fresh migrated database with the group role `<prefix>_app`, and `moto` as the store.
    pub async fn new(moto: MotoServer) -> Result<Rig> {
        let url = flowforge_testkit::fresh_database().await?;
        let options = PgConnectOptions::from_str(&url)?;
        let admin = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
            .context("connecting to the test database as superuser")?;
        flowforge_core::db::MIGRATOR
            .run(&admin)
            .await
            .context("applying the migrations")?;
        let prefix = format!("ff{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let database = options.get_database().unwrap_or("postgres").to_owned();
        let group = format!("{prefix}_app");
        for sql in [
            format!("CREATE ROLE {group} NOLOGIN"),
            format!("GRANT CONNECT ON DATABASE {database} TO {group}"),
            format!("GRANT USAGE ON SCHEMA flowforge TO {group}"),
            format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA flowforge TO {group}"
            ),
            format!("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA flowforge TO {group}"),
        ] {
            sqlx::query(&sql)
                .execute(&admin)
                .await
                .with_context(|| sql.clone())?;
        }
        let sm = moto.admin().await;
        Ok(Rig {
            admin,
            host: options.get_host().to_owned(),
            port: options.get_port(),
            database,
            prefix,
            moto,
            sm,
            logs: tempfile::Builder::new()
                .prefix("flowforge-e2e-logs")
                .tempdir()?,
        })
    }

    /// A login role in the application group.
    pub async fn create_login(&self, user: &str, password: &str) -> Result<()> {
        let sql = format!(
            "CREATE ROLE {user} LOGIN PASSWORD '{password}' IN ROLE {}_app",
            self.prefix
        );
        sqlx::query(&sql).execute(&self.admin).await?;
        Ok(())
    }

    /// `ALTER ROLE ... PASSWORD`: what a rotation function's setSecret step does.
    pub async fn set_password(&self, user: &str, password: &str) -> Result<()> {
        sqlx::query(&format!("ALTER ROLE {user} PASSWORD '{password}'"))
            .execute(&self.admin)
            .await?;
        Ok(())
    }

    /// Terminates every session of `user` (forcing the processes to open new connections).
    pub async fn terminate_sessions(&self, user: &str) -> Result<i64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1",
        )
        .bind(user)
        .fetch_one(&self.admin)
        .await?;
        Ok(n)
    }

    /// Open sessions by user name, for the application roles of this rig.
    pub async fn sessions_by_user(&self) -> Result<HashMap<String, i64>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT usename::text, count(*) FROM pg_stat_activity \
             WHERE usename LIKE $1 GROUP BY usename",
        )
        .bind(format!("{}%", self.prefix))
        .fetch_all(&self.admin)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Every session of this rig's roles: user, application, state, backend start, last query
    /// (for failure messages).
    pub async fn session_details(&self) -> Result<Vec<(String, String, String, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT usename::text, application_name, coalesce(state, ''), backend_start::text,              left(query, 80) FROM pg_stat_activity WHERE usename LIKE $1 ORDER BY backend_start",
        )
        .bind(format!("{}%", self.prefix))
        .fetch_all(&self.admin)
        .await?)
    }

    /// The RDS rotation JSON for `user`/`password` on this database (TLS off: the test cluster
    /// has none).
    pub fn db_secret_json(&self, user: &str, password: &str) -> String {
        serde_json::json!({
            "engine": "postgres",
            "host": self.host,
            "port": self.port,
            "username": user,
            "password": password,
            "dbname": self.database,
            "sslmode": "disable",
        })
        .to_string()
    }

    /// A unique secret name.
    pub fn secret_name(&self, what: &str) -> String {
        format!("flowforge/{}/{what}", self.prefix)
    }

    /// Starts `binary` with the moto environment, loopback addresses and `envs`; waits until
    /// its admin server answers `/healthz`.
    /// Its output goes to the rig's log directory (see [`Rig::assert_logs_never_contain`]).
    pub async fn spawn(&self, binary: Binary, envs: &[(&str, String)]) -> Result<Service> {
        let log = self
            .logs
            .path()
            .join(format!("{}-{}.log", binary.name(), free_port()));
        self.spawn_with(binary, &[], envs, Some(&log)).await
    }

    /// Fails if any process started by [`Rig::spawn`] wrote one of `secrets` (passwords,
    /// tokens) in its logs. Also fails if they logged nothing about secrets at all, so the check
    /// cannot pass by reading empty files.
    pub fn assert_logs_never_contain(&self, secrets: &[&str]) -> Result<()> {
        let mut logged_secret_events = 0;
        let mut files = 0;
        for entry in std::fs::read_dir(self.logs.path())? {
            let path = entry?.path();
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            files += 1;
            logged_secret_events +=
                text.matches("secret loaded").count() + text.matches("secret rotated").count();
            for secret in secrets {
                if let Some(at) = text.find(secret) {
                    let line = text[..at].lines().count();
                    bail!(
                        "{} logged a secret value on line {line}",
                        path.file_name().unwrap_or_default().to_string_lossy()
                    );
                }
            }
        }
        if files == 0 || logged_secret_events == 0 {
            bail!("no process logged its secrets being loaded ({files} log files): nothing was checked");
        }
        Ok(())
    }

    /// [`Rig::spawn`] with command-line `args`, and the output appended to `log` if given.
    pub async fn spawn_with(
        &self,
        binary: Binary,
        args: &[&str],
        envs: &[(&str, String)],
        log: Option<&std::path::Path>,
    ) -> Result<Service> {
        let admin_port = free_port();
        let api_port = free_port();
        let mut all: Vec<(String, String)> = self.moto.aws_env();
        all.push((
            "FLOWFORGE_ADMIN_ADDR".into(),
            format!("127.0.0.1:{admin_port}"),
        ));
        all.push(("FLOWFORGE_API_ADDR".into(), format!("127.0.0.1:{api_port}")));
        all.push((
            "FLOWFORGE_GRPC_ADDR".into(),
            format!("127.0.0.1:{}", free_port()),
        ));
        all.push(("FLOWFORGE_SCALER_METRICS_INTERVAL".into(), "1s".into()));
        all.push(("FLOWFORGE_LOG_FORMAT".into(), "text".into()));
        // The code that handles secrets logs at debug too, so the log checks see all of it.
        all.push((
            "RUST_LOG".into(),
            "info,flowforge_core::secrets=debug,flowforge_core::db=debug,flowforge_api::auth=debug"
                .into(),
        ));
        all.push(("FLOWFORGE_RATE_LIMIT_RPS".into(), "0".into()));
        for (k, v) in envs {
            all.push(((*k).to_owned(), v.clone()));
        }
        let env_refs: Vec<(&str, String)> =
            all.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let bin = bin_path(binary.name())?;
        let child = match log {
            Some(log) => Child::spawn_logged(&bin, args, &env_refs, log)?,
            None => Child::spawn(&bin, args, &env_refs)?,
        };
        let service = Service {
            binary,
            child,
            admin: format!("http://127.0.0.1:{admin_port}"),
            api: format!("http://127.0.0.1:{api_port}"),
        };
        wait_for_http(&service.admin_url("/healthz"), Duration::from_secs(30))
            .await
            .with_context(|| format!("{} did not start", binary.name()))?;
        Ok(service)
    }

    /// Starts every binary of [`DB_SECRET_BINARIES`] with the database secret `db_source` and the
    /// tokens secret `tokens_source` (`file:`/`aws-sm:` sources), the secret refresh period
    /// `refresh`, claiming from `queue`, plus `envs`; waits until each is ready.
    pub async fn start_services(
        &self,
        db_source: &str,
        tokens_source: &str,
        refresh: &str,
        queue: &str,
        envs: &[(&str, String)],
    ) -> Result<Vec<Service>> {
        let mut all: Vec<(&str, String)> = vec![
            ("FLOWFORGE_DB_SECRET", db_source.to_owned()),
            ("FLOWFORGE_API_TOKENS_SECRET", tokens_source.to_owned()),
            ("FLOWFORGE_SECRET_REFRESH", refresh.to_owned()),
            ("FLOWFORGE_QUEUES", queue.to_owned()),
            ("FLOWFORGE_POLL_INTERVAL", "200ms".to_owned()),
        ];
        all.extend(envs.iter().cloned());
        let mut services = Vec::new();
        for binary in DB_SECRET_BINARIES {
            let service = self.spawn(*binary, &all).await?;
            service.wait_ready(Duration::from_secs(30)).await?;
            services.push(service);
        }
        Ok(services)
    }

    /// Waits until every session of this rig's roles is `user`'s (and there is one); the error
    /// lists the sessions.
    pub async fn wait_sessions_only_of(&self, user: &str, timeout: Duration) -> Result<()> {
        let moved = eventually(&format!("every session uses {user}"), timeout, || async {
            let s = self.sessions_by_user().await?;
            Ok((s.len() == 1 && s.contains_key(user)).then_some(()))
        })
        .await;
        if let Err(err) = moved {
            bail!("{err}; sessions: {:#?}", self.session_details().await?);
        }
        Ok(())
    }

    /// Waits until every task in `ids` succeeded (bounded by `timeout`).
    pub async fn wait_succeeded(&self, ids: &[String], timeout: Duration) -> Result<()> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.parse()).collect::<Result<_, _>>()?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let done: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM flowforge.task_history \
                 WHERE status = 'succeeded' AND id = ANY($1)",
            )
            .bind(&ids)
            .fetch_one(&self.admin)
            .await?;
            if done == ids.len() as i64 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let states: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT status, count(*) FROM (SELECT status FROM flowforge.tasks WHERE id = ANY($1) \
                     UNION ALL SELECT status FROM flowforge.task_history WHERE id = ANY($1)) s GROUP BY status",
                )
                .bind(&ids)
                .fetch_all(&self.admin)
                .await?;
                bail!(
                    "{done} of {} tasks succeeded within {timeout:?}; by status: {states:?}",
                    ids.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The service running `binary` among `services`.
pub fn find(services: &[Service], binary: Binary) -> &Service {
    services
        .iter()
        .find(|s| s.binary == binary)
        .expect("the service runs")
}

/// A running binary.
pub struct Service {
    pub binary: Binary,
    pub child: Child,
    /// Base URL of the admin server.
    pub admin: String,
    /// Base URL of the task API (the API only).
    pub api: String,
}

impl Service {
    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{path}", self.admin)
    }

    /// `/metrics`, parsed into (series with labels, value) pairs.
    pub async fn metrics(&self) -> Result<Vec<(String, f64)>> {
        let text = client()
            .get(self.admin_url("/metrics"))
            .send()
            .await?
            .text()
            .await?;
        Ok(text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect())
    }

    /// Sum of the series of `name` whose labels include every `label="value"` of `labels`.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Result<f64> {
        Ok(self
            .metrics()
            .await?
            .into_iter()
            .filter(|(series, _)| series == name || series.starts_with(&format!("{name}{{")))
            .filter(|(series, _)| {
                labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|(_, v)| v)
            .sum())
    }

    /// Waits until the sum of `name` with `labels` satisfies `ok`.
    pub async fn wait_metric(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        ok: impl Fn(f64) -> bool,
        timeout: Duration,
    ) -> Result<f64> {
        let what = format!("{} {name}{labels:?}", self.binary.name());
        eventually(&what, timeout, || async {
            let v = self.metric(name, labels).await?;
            Ok(ok(v).then_some(v))
        })
        .await
    }

    /// `/readyz`: status code and body.
    pub async fn readyz(&self) -> Result<(u16, String)> {
        let r = client().get(self.admin_url("/readyz")).send().await?;
        Ok((r.status().as_u16(), r.text().await?))
    }

    /// Polls `/readyz` until it answers 200.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        wait_for_http(&self.admin_url("/readyz"), timeout)
            .await
            .with_context(|| format!("{} not ready", self.binary.name()))
    }
}

/// An HTTP client that never uses a proxy and never waits forever.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("building the HTTP client")
}

/// What a load run did.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    /// Ids of the tasks the API accepted (201).
    pub created: Vec<String>,
    /// Every request that did not get a 201: status (or transport error) and body.
    pub failures: Vec<String>,
}

/// A steady stream of `POST /v1/tasks` from a few concurrent clients, until stopped.
pub struct Load {
    stop: CancellationToken,
    report: Arc<Mutex<LoadReport>>,
    handles: Vec<JoinHandle<()>>,
}

impl Load {
    /// `clients` loops, each sending one request every `pace` (a steady, modest load).
    pub fn start(api: &str, token: &str, queue: &str, clients: usize, pace: Duration) -> Load {
        let stop = CancellationToken::new();
        let report = Arc::new(Mutex::new(LoadReport::default()));
        let handles = (0..clients)
            .map(|_| {
                let (stop, report) = (stop.clone(), report.clone());
                let url = format!("{api}/v1/tasks");
                let token = token.to_owned();
                let body = serde_json::json!({"queue": queue, "kind": "noop"});
                tokio::spawn(async move {
                    let client = client();
                    while !stop.is_cancelled() {
                        let started = tokio::time::Instant::now();
                        let outcome = client
                            .post(&url)
                            .bearer_auth(&token)
                            .json(&body)
                            .send()
                            .await;
                        let entry = match outcome {
                            Ok(r) if r.status().as_u16() == 201 => {
                                match r.json::<serde_json::Value>().await {
                                    Ok(v) => Ok(v["id"].as_str().unwrap_or_default().to_owned()),
                                    Err(e) => Err(format!("201 with unreadable body: {e}")),
                                }
                            }
                            Ok(r) => {
                                let status = r.status();
                                Err(format!("{status}: {}", r.text().await.unwrap_or_default()))
                            }
                            Err(e) => Err(format!("transport error: {e}")),
                        };
                        {
                            let mut report = report.lock().expect("report lock");
                            match entry {
                                Ok(id) => report.created.push(id),
                                Err(f) => report.failures.push(f),
                            }
                        }
                        tokio::time::sleep_until(started + pace).await;
                    }
                })
            })
            .collect();
        Load {
            stop,
            report,
            handles,
        }
    }

    /// Tasks accepted so far.
    pub fn created(&self) -> usize {
        self.report.lock().expect("report lock").created.len()
    }

    /// Stops the clients and returns what they did.
    pub async fn stop(self) -> LoadReport {
        self.stop.cancel();
        for h in self.handles {
            let _ = h.await;
        }
        let report = self.report.lock().expect("report lock").clone();
        report
    }
}

/// Polls `probe` every 100 ms until it returns `Some`, for up to `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{what}: not within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
