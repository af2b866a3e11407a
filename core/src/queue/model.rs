//! The task as stored and as shown to clients.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Lifecycle state of a task. `queued` includes delayed tasks and tasks waiting to be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Queued,
    Running,
    Succeeded,
    Dead,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 5] = [
        TaskStatus::Queued,
        TaskStatus::Running,
        TaskStatus::Succeeded,
        TaskStatus::Dead,
        TaskStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Dead => "dead",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    /// Whether tasks in this state live in the history table.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskStatus::Succeeded | TaskStatus::Dead | TaskStatus::Cancelled
        )
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TaskStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                format!("unknown status {s:?}: expected one of queued, running, succeeded, dead, cancelled")
            })
    }
}

/// A task, as returned by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Task {
    /// UUIDv7, so ids sort by creation time.
    pub id: Uuid,
    pub queue: String,
    pub kind: String,
    pub payload: serde_json::Value,
    /// Higher runs first.
    pub priority: i16,
    pub status: TaskStatus,
    /// Attempts started so far.
    pub attempts: i32,
    pub max_attempts: i32,
    /// Earliest time the task may start (the retry time while waiting to be retried).
    pub run_at: DateTime<Utc>,
    /// Per-attempt time limit in seconds, enforced by the worker.
    pub timeout: i32,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// Columns selected to build a [`Task`] from either table (the `tasks` table has no `finished_at`).
pub(crate) const ACTIVE_COLUMNS: &str = "id, queue, kind, payload, priority, status, attempts, max_attempts, run_at, \
     timeout_secs, idempotency_key, created_at, started_at, NULL::timestamptz AS finished_at, last_error";
pub(crate) const HISTORY_COLUMNS: &str =
    "id, queue, kind, payload, priority, status, attempts, max_attempts, run_at, \
     timeout_secs, idempotency_key, created_at, started_at, finished_at, last_error";

impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for Task {
    fn from_row(row: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row;
        let status: &str = row.try_get("status")?;
        let status = status
            .parse()
            .map_err(|e: String| sqlx::Error::ColumnDecode {
                index: "status".into(),
                source: e.into(),
            })?;
        Ok(Task {
            id: row.try_get("id")?,
            queue: row.try_get("queue")?,
            kind: row.try_get("kind")?,
            payload: row.try_get("payload")?,
            priority: row.try_get("priority")?,
            status,
            attempts: row.try_get("attempts")?,
            max_attempts: row.try_get("max_attempts")?,
            run_at: row.try_get("run_at")?,
            timeout: row.try_get("timeout_secs")?,
            idempotency_key: row.try_get("idempotency_key")?,
            created_at: row.try_get("created_at")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
            last_error: row.try_get("last_error")?,
        })
    }
}

/// A task to enqueue. Names are validated by the caller (the API); the database trusts them.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    pub queue: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub priority: i16,
    pub max_attempts: i32,
    /// `None` means now (the database's clock).
    pub run_at: Option<DateTime<Utc>>,
    pub timeout_secs: i32,
    pub idempotency_key: Option<String>,
    /// W3C `traceparent` of the request that created the task (kept for the worker's logs).
    pub trace_parent: Option<String>,
}

impl NewTask {
    /// A task with the default priority, attempts and timeout.
    pub fn new(
        queue: impl Into<String>,
        kind: impl Into<String>,
        payload: serde_json::Value,
    ) -> Self {
        NewTask {
            queue: queue.into(),
            kind: kind.into(),
            payload,
            priority: 0,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            run_at: None,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            idempotency_key: None,
            trace_parent: None,
        }
    }
}

pub const DEFAULT_MAX_ATTEMPTS: i32 = 5;
pub const DEFAULT_TIMEOUT_SECS: i32 = 300;

/// What an enqueue did with one task.
#[derive(Debug, Clone, PartialEq)]
pub struct Enqueued {
    pub task: Task,
    /// `false` when an idempotency key matched a retained task, which is returned instead.
    pub created: bool,
}

/// A task handed to a worker by a claim.
#[derive(Debug, Clone)]
pub struct ClaimedTask {
    pub id: Uuid,
    pub queue: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub priority: i16,
    /// This attempt's number, starting at 1.
    pub attempt: i32,
    pub max_attempts: i32,
    pub timeout_secs: i32,
    pub run_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    /// W3C `traceparent` of the request that created the task, if any.
    pub trace_parent: Option<String>,
    /// Fences completion: only the holder of the current lease can finish this attempt.
    pub lease_id: Uuid,
}

/// Depth of one queue, as `GET /v1/queues` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct QueueStats {
    pub queue: String,
    /// Queued and due now.
    pub ready: i64,
    /// Queued for later (delayed or waiting to be retried).
    pub scheduled: i64,
    pub running: i64,
    /// Dead tasks still retained (re-drivable).
    pub dead: i64,
    /// Age of the oldest ready task, measured from when it became ready; 0 when none is ready.
    pub oldest_ready_age_seconds: f64,
}

/// Ready and running tasks of a set of queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Depth {
    /// Queued and due now.
    pub ready: i64,
    pub running: i64,
}

impl Depth {
    /// Tasks that need a worker now: ready plus running.
    pub fn active(&self) -> i64 {
        self.ready + self.running
    }
}

/// Task-wait SLI events of one queue over a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskWaits {
    pub queue: String,
    /// Tasks that started within the threshold of becoming ready.
    pub within: i64,
    /// Tasks that started.
    pub started: i64,
}
