//! Support for the worker's integration tests: a migrated database per test, the real
//! `flowforge-worker` binary as a child process, and "eventually" polling with generous deadlines.
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use flowforge_core::queue::{NewTask, Queue, Task, TaskStatus};
use flowforge_testkit::{free_port, wait_for_http, Child};
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

/// How long "eventually" may take before a test gives up. Generous: a deadline, not a benchmark.
pub const DEADLINE: Duration = Duration::from_secs(30);
/// How often the database is polled while waiting.
pub const POLL: Duration = Duration::from_millis(50);

/// The worker binary built for these tests.
pub fn worker_bin() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_flowforge-worker"))
}

/// A queue handle on `url`, with the schema applied.
pub async fn migrated_queue(url: &str) -> Queue {
    let pool = PgPoolOptions::new()
        .max_connections(5)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .expect("connecting to the test database");
    flowforge_core::db::MIGRATOR
        .run(&pool)
        .await
        .expect("applying the schema");
    Queue::new(pool)
}

/// A fresh database in the run's shared cluster, migrated: its URL and a queue handle on it.
pub async fn fresh_queue() -> (String, Queue) {
    let url = flowforge_testkit::fresh_database()
        .await
        .expect("a fresh test database (run with `make test` or set FLOWFORGE_TEST_DATABASE_URL)");
    let queue = migrated_queue(&url).await;
    (url, queue)
}

/// Settings of a worker process, as environment variables. Defaults are tuned for quick tests:
/// fast rescue and polling, tiny retry delays. The lease is long enough that a busy test machine
/// never loses one by accident; tests about lease expiry set a short one.
#[derive(Debug, Clone)]
pub struct WorkerEnv {
    pub vars: Vec<(&'static str, String)>,
}

impl WorkerEnv {
    pub fn new(database_url: &str) -> Self {
        WorkerEnv {
            vars: vec![
                ("DATABASE_URL", database_url.to_owned()),
                ("FLOWFORGE_QUEUES", "default".into()),
                ("FLOWFORGE_CONCURRENCY", "16".into()),
                ("FLOWFORGE_LEASE", "10s".into()),
                ("FLOWFORGE_RESCUE_INTERVAL", "200ms".into()),
                ("FLOWFORGE_POLL_INTERVAL", "200ms".into()),
                ("FLOWFORGE_SHUTDOWN_GRACE", "2s".into()),
                ("FLOWFORGE_RETRY_BASE", "50ms".into()),
                ("FLOWFORGE_RETRY_CAP", "200ms".into()),
                ("FLOWFORGE_DB_ACQUIRE_TIMEOUT", "2s".into()),
                ("FLOWFORGE_LOG_FORMAT", "text".into()),
            ],
        }
    }

    /// Sets (or replaces) one variable.
    pub fn set(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.vars.retain(|(k, _)| *k != key);
        self.vars.push((key, value.into()));
        self
    }
}

/// A running `flowforge-worker` process, SIGKILLed when dropped.
pub struct Worker {
    pub child: Child,
    /// `http://127.0.0.1:PORT` of its admin server.
    pub admin: String,
}

impl Worker {
    /// Spawns a worker and waits until `/readyz` answers 200.
    pub async fn start(env: WorkerEnv) -> Worker {
        let worker = Worker::spawn(env);
        worker.wait_ready(DEADLINE).await;
        worker
    }

    /// Spawns a worker without waiting for readiness.
    pub fn spawn(env: WorkerEnv) -> Worker {
        let port = free_port();
        let env = env.set("FLOWFORGE_ADMIN_ADDR", format!("127.0.0.1:{port}"));
        let child = Child::spawn(worker_bin(), &[], &env.vars).expect("spawning the worker binary");
        Worker {
            child,
            admin: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Like [`Worker::start`], with stdout and stderr appended to the file `log`.
    pub async fn start_logged(env: WorkerEnv, log: &std::path::Path) -> Worker {
        let port = free_port();
        let env = env.set("FLOWFORGE_ADMIN_ADDR", format!("127.0.0.1:{port}"));
        let child = Child::spawn_logged(worker_bin(), &[], &env.vars, log)
            .expect("spawning the worker binary");
        let worker = Worker {
            child,
            admin: format!("http://127.0.0.1:{port}"),
        };
        worker.wait_ready(DEADLINE).await;
        worker
    }

    pub async fn wait_ready(&self, timeout: Duration) {
        wait_for_http(&format!("{}/readyz", self.admin), timeout)
            .await
            .expect("the worker became ready");
    }

    /// Status code of `GET /readyz`, or `None` when nothing answers.
    pub async fn readyz(&self) -> Option<u16> {
        http_client()
            .get(format!("{}/readyz", self.admin))
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        http_client()
            .get(format!("{}/metrics", self.admin))
            .send()
            .await
            .expect("GET /metrics")
            .error_for_status()
            .expect("/metrics answers 200")
            .text()
            .await
            .expect("/metrics body")
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        self.child.signal(signal).expect("signalling the worker");
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("HTTP client")
}

/// Sum of the samples of counter `name` whose labels contain every `label="value"` in `labels`.
pub fn counter_sum(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let rest = series.strip_prefix(name)?;
            if !(rest.is_empty() || rest.starts_with('{')) {
                return None;
            }
            labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// Polls `check` every [`POLL`] until it returns `Ok`, or panics after `timeout` naming `what`
/// and the last state `check` reported (its `Err`).
pub async fn eventually<T, S, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, S>>,
    S: std::fmt::Debug,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(v) => return v,
            Err(state) => state,
        };
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}; last state: {last:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A task (which must exist), wherever it is.
pub async fn get(queue: &Queue, id: Uuid) -> Task {
    queue
        .get(id)
        .await
        .expect("reading a task")
        .unwrap_or_else(|| panic!("task {id} does not exist"))
}

/// Enqueues `tasks`, returning their ids in order.
pub async fn enqueue(queue: &Queue, tasks: &[NewTask]) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(tasks.len());
    for chunk in tasks.chunks(1000) {
        let out = queue.enqueue_many(chunk).await.expect("enqueueing tasks");
        ids.extend(out.into_iter().map(|e| e.task.id));
    }
    ids
}

/// Waits until task `id` has `status`, returning it.
pub async fn wait_for_status(queue: &Queue, id: Uuid, status: TaskStatus) -> Task {
    eventually(
        &format!("task {id} to be {status}"),
        DEADLINE,
        || async move {
            let task = get(queue, id).await;
            if task.status == status {
                Ok(task)
            } else {
                Err((task.status, task.attempts, task.last_error))
            }
        },
    )
    .await
}

/// Waits until every task of `ids` is finished (succeeded, dead or cancelled), returning them.
pub async fn wait_all_finished(queue: &Queue, ids: &[Uuid], timeout: Duration) -> Vec<Task> {
    eventually(
        &format!("all {} tasks to finish", ids.len()),
        timeout,
        || async move {
            let tasks = tasks_by_id(queue, ids).await;
            let unfinished = tasks.iter().filter(|t| !t.status.is_finished()).count();
            if unfinished == 0 && tasks.len() == ids.len() {
                Ok(tasks)
            } else {
                Err(format!(
                    "{} of {} found, {unfinished} unfinished; by status: {:?}",
                    tasks.len(),
                    ids.len(),
                    count_by_status(&tasks)
                ))
            }
        },
    )
    .await
}

/// The tasks `ids`, read in one query from both tables (missing ids are left out).
pub async fn tasks_by_id(queue: &Queue, ids: &[Uuid]) -> Vec<Task> {
    const COLUMNS: &str = "id, queue, kind, payload, priority, status, attempts, max_attempts, \
        run_at, timeout_secs, idempotency_key, created_at, started_at, finished_at, last_error";
    let sql = format!(
        "SELECT {COLUMNS} FROM (\
           SELECT id, queue, kind, payload, priority, status, attempts, max_attempts, run_at, \
                  timeout_secs, idempotency_key, created_at, started_at, \
                  NULL::timestamptz AS finished_at, last_error FROM flowforge.tasks \
           UNION ALL SELECT {COLUMNS} FROM flowforge.task_history) t \
         WHERE id = ANY($1)"
    );
    sqlx::query_as(&sql)
        .bind(ids)
        .fetch_all(queue.db().pool())
        .await
        .expect("reading tasks")
}

pub fn count_by_status(tasks: &[Task]) -> HashMap<TaskStatus, usize> {
    let mut counts = HashMap::new();
    for t in tasks {
        *counts.entry(t.status).or_insert(0) += 1;
    }
    counts
}

/// A task of kind `kind` on the `default` queue.
pub fn task(kind: &str, payload: serde_json::Value) -> NewTask {
    NewTask::new("default", kind, payload)
}
