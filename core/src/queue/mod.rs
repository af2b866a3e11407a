//! The PostgreSQL task queue.
//!
//! [`Queue`] is a cheap handle (a pool and settings). Operations are grouped by concern:
//! enqueueing in [`enqueue`], the life of a claimed task in [`lifecycle`], housekeeping
//! (lease rescue, pruning) in [`maintenance`], and wake-ups in [`listen`].

mod backoff;
pub mod enqueue;
pub mod ledger;
pub mod lifecycle;
pub mod listen;
pub mod maintenance;
mod model;
pub mod notify;

use std::time::Duration;

use sqlx::QueryBuilder;
use uuid::Uuid;

pub use backoff::Backoff;
pub use enqueue::Enqueuer;
pub use ledger::WindowEvents;
pub use lifecycle::FailOutcome;
pub use listen::Wakeups;
pub use model::*;
pub use notify::Notifier;

use crate::db::{with_retry, Db};
use crate::{Error, Result};

/// The channel enqueues notify, with the queue name as payload.
pub const NOTIFY_CHANNEL: &str = "flowforge_tasks";

/// A handle on the queue tables.
#[derive(Clone, Debug)]
pub struct Queue {
    db: Db,
    backoff: Backoff,
    keep_succeeded: bool,
    notifier: std::sync::Arc<std::sync::OnceLock<Notifier>>,
}

/// Filters and page of a task listing.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub queue: Option<String>,
    pub status: Option<TaskStatus>,
    /// Only tasks with an id greater than this one (ids are time ordered).
    pub after: Option<Uuid>,
    pub limit: i64,
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct TaskPage {
    pub tasks: Vec<Task>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next_cursor: Option<Uuid>,
}

impl Queue {
    /// A queue over `db` (a [`Db`], or a plain pool with fixed credentials).
    pub fn new(db: impl Into<Db>) -> Self {
        Queue {
            db: db.into(),
            backoff: Backoff::default(),
            keep_succeeded: true,
            notifier: Default::default(),
        }
    }

    /// Use this retry backoff for failed attempts.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Whether succeeded tasks are moved to the history (default) or deleted at once. Not keeping
    /// them saves a history row per task; they then read as not found once done.
    pub fn with_keep_succeeded(mut self, keep: bool) -> Self {
        self.keep_succeeded = keep;
        self
    }

    pub fn keeps_succeeded(&self) -> bool {
        self.keep_succeeded
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// The wake-up sender, started on first use (it needs a Tokio runtime).
    pub(crate) fn notifier(&self) -> &Notifier {
        self.notifier
            .get_or_init(|| Notifier::spawn(self.db.clone()))
    }

    /// A task by id, wherever it is (active or finished and retained).
    #[tracing::instrument(skip_all, fields(task_id = %id))]
    pub async fn get(&self, id: Uuid) -> Result<Option<Task>> {
        let sql = format!(
            "SELECT {} FROM flowforge.tasks WHERE id = $1 \
             UNION ALL SELECT {} FROM flowforge.task_history WHERE id = $1 LIMIT 1",
            model::ACTIVE_COLUMNS,
            model::HISTORY_COLUMNS
        );
        Ok(with_retry!(self.db, |conn| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(conn)
            .await)?)
    }

    /// Tasks in id (creation) order, filtered by queue and status, one page at a time.
    #[tracing::instrument(skip_all)]
    pub async fn list(&self, filter: &ListFilter) -> Result<TaskPage> {
        let limit = filter.limit.max(1);
        let (active, history) = match filter.status {
            None => (true, true),
            Some(s) => (!s.is_finished(), s.is_finished()),
        };
        let mut qb = QueryBuilder::new("SELECT * FROM (");
        let mut first = true;
        for (include, table, columns) in [
            (active, "flowforge.tasks", model::ACTIVE_COLUMNS),
            (history, "flowforge.task_history", model::HISTORY_COLUMNS),
        ] {
            if !include {
                continue;
            }
            if !first {
                qb.push(" UNION ALL ");
            }
            first = false;
            qb.push(format_args!("(SELECT {columns} FROM {table} WHERE true"));
            if let Some(queue) = &filter.queue {
                qb.push(" AND queue = ").push_bind(queue.clone());
            }
            if let Some(status) = filter.status {
                qb.push(" AND status = ").push_bind(status.as_str());
            }
            if let Some(after) = filter.after {
                qb.push(" AND id > ").push_bind(after);
            }
            qb.push(" ORDER BY id LIMIT ")
                .push_bind(limit + 1)
                .push(")");
        }
        qb.push(") AS t ORDER BY id LIMIT ").push_bind(limit + 1);
        let mut tasks: Vec<Task> =
            with_retry!(self.db, |conn| qb.build_query_as().fetch_all(conn).await)?;
        let next_cursor = if tasks.len() as i64 > limit {
            tasks.truncate(limit as usize);
            tasks.last().map(|t| t.id)
        } else {
            None
        };
        Ok(TaskPage { tasks, next_cursor })
    }

    /// Depth of every queue that has active or dead tasks.
    #[tracing::instrument(skip_all)]
    pub async fn stats(&self) -> Result<Vec<QueueStats>> {
        let rows: Vec<(String, i64, i64, i64, i64, f64)> =
            with_retry!(self.db, |conn| sqlx::query_as(
                r#"
            WITH active AS (
                SELECT queue,
                       count(*) FILTER (WHERE status = 'queued' AND run_at <= now()) AS ready,
                       count(*) FILTER (WHERE status = 'queued' AND run_at > now())  AS scheduled,
                       count(*) FILTER (WHERE status = 'running')                    AS running,
                       min(greatest(run_at, created_at))
                           FILTER (WHERE status = 'queued' AND run_at <= now())      AS oldest_ready
                FROM flowforge.tasks GROUP BY queue
            ), dead AS (
                SELECT queue, count(*) AS dead FROM flowforge.task_history
                WHERE status = 'dead' GROUP BY queue
            )
            SELECT queue,
                   coalesce(a.ready, 0), coalesce(a.scheduled, 0), coalesce(a.running, 0),
                   coalesce(d.dead, 0),
                   coalesce(greatest(extract(epoch FROM now() - a.oldest_ready), 0), 0)::float8
            FROM active a FULL JOIN dead d USING (queue)
            ORDER BY queue
            "#,
            )
            .fetch_all(conn)
            .await)?;
        Ok(rows
            .into_iter()
            .map(
                |(queue, ready, scheduled, running, dead, oldest_ready_age_seconds)| QueueStats {
                    queue,
                    ready,
                    scheduled,
                    running,
                    dead,
                    oldest_ready_age_seconds,
                },
            )
            .collect())
    }

    /// Ready and running tasks of `queues` together: what a worker fleet for them must carry.
    pub async fn depth(&self, queues: &[String]) -> Result<Depth> {
        let (ready, running): (i64, i64) = with_retry!(self.db, |conn| sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status = 'queued' AND run_at <= now()), \
                    count(*) FILTER (WHERE status = 'running') \
             FROM flowforge.tasks WHERE queue = ANY($1)",
        )
        .bind(queues)
        .fetch_one(conn)
        .await)?;
        Ok(Depth { ready, running })
    }

    /// Tasks of each queue that started in `(after, until]` (seconds since the epoch, the
    /// database's clock), and how many of them started within `threshold` of becoming ready:
    /// the events of the task-wait SLI. Only tasks created in the last `horizon` are looked at,
    /// so the scan stays bounded as history grows.
    pub async fn task_waits(
        &self,
        after: f64,
        until: f64,
        threshold: Duration,
        horizon: Duration,
    ) -> Result<Vec<TaskWaits>> {
        let rows: Vec<(String, i64, i64)> = with_retry!(self.db, |conn| {
            sqlx::query_as(
            r#"
            WITH started AS (
                SELECT queue, started_at, greatest(run_at, created_at) AS ready_at
                FROM flowforge.tasks
                WHERE status = 'running' AND started_at > to_timestamp($1) AND started_at <= to_timestamp($2)
                UNION ALL
                SELECT queue, started_at, greatest(run_at, created_at)
                FROM flowforge.task_history
                WHERE id >= flowforge.uuid7_floor(now() - make_interval(secs => $4))
                  AND started_at > to_timestamp($1) AND started_at <= to_timestamp($2)
            )
            SELECT queue,
                   count(*) FILTER (WHERE started_at - ready_at <= make_interval(secs => $3)),
                   count(*)
            FROM started GROUP BY queue ORDER BY queue
            "#,
        )
        .bind(after)
        .bind(until)
        .bind(threshold.as_secs_f64())
        .bind(horizon.as_secs_f64())
        .fetch_all(conn)
        .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(queue, within, started)| TaskWaits {
                queue,
                within,
                started,
            })
            .collect())
    }

    /// The database's clock, as seconds since the epoch.
    pub async fn now(&self) -> Result<f64> {
        with_retry!(self.db, |conn| sqlx::query_scalar(
            "SELECT extract(epoch FROM clock_timestamp())::float8"
        )
        .fetch_one(conn)
        .await)
    }

    /// Runs `SELECT 1` within `timeout`: the readiness check.
    pub async fn ping(&self, timeout: Duration) -> Result<()> {
        let ping =
            async { with_retry!(self.db, |conn| sqlx::query("SELECT 1").execute(conn).await) };
        match tokio::time::timeout(timeout, ping).await {
            Ok(result) => result.map(|_| ()),
            Err(_) => Err(Error::Unavailable(sqlx::Error::PoolTimedOut)),
        }
    }
}
