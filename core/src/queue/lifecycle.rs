//! The life of a task after it is enqueued: claim, heartbeat, complete, fail, hand back,
//! cancel and re-drive.
//!
//! Every operation on a claimed task names its lease: once a lease has expired and the task was
//! rescued (or claimed again), the old holder's calls change nothing, so each attempt completes
//! at most once.
//!
//! A task has a `lease_id` only while it runs (every path back to `queued` clears it), so the
//! statements below match on `(id, lease_id)` alone, through the primary key. (An earlier schema
//! had a partial index on running tasks; with `status = 'running'` in these statements the planner
//! joined through it using statistics taken while every task was queued, and a batch completion
//! became a scan per task. Keep the primary key the obvious path.)

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{model, ClaimedTask, Queue, Task};
use crate::db::with_retry;
use crate::{Error, Result};

/// What [`Queue::fail`] did with a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailOutcome {
    /// Queued again; the next attempt may start at this time.
    Retrying { run_at: DateTime<Utc> },
    /// Out of attempts (or not retryable): moved to the dead tasks, re-drivable.
    Dead,
    /// The lease was no longer held: someone else owns the task now; nothing changed.
    LeaseLost,
}

/// Moves the rows that `moved_cte` deletes from the active table (it must return `*`) into the
/// history table with the given status and error, returning `returning`.
fn move_to_history_sql(moved_cte: &str, status: &str, error_expr: &str, returning: &str) -> String {
    format!(
        r#"
        WITH moved AS ({moved_cte})
        INSERT INTO flowforge.task_history
            (id, queue, kind, payload, priority, status, attempts, max_attempts, run_at, timeout_secs,
             idempotency_key, created_at, started_at, finished_at, last_error, trace_parent)
        SELECT id, queue, kind, payload, priority, '{status}', attempts, max_attempts, run_at, timeout_secs,
               idempotency_key, created_at, started_at, now(), {error_expr}, trace_parent
        FROM moved
        RETURNING {returning}
        "#
    )
}

impl Queue {
    /// Claims up to `limit` ready tasks of `queue` for `worker_id`, highest priority first, then
    /// oldest `run_at`. Locked rows are skipped, so concurrent claimers never get the same task.
    /// Every task of one claim shares one lease, valid for `lease`.
    ///
    /// The claim commits asynchronously (no wait for the WAL flush): it is on the critical path of
    /// every pickup. If PostgreSQL crashes before the claim reaches disk, the claim is undone by
    /// recovery and the task is simply queued again; the old holder's completion then no longer
    /// matches its lease and changes nothing. That is a re-run, which at-least-once execution
    /// allows, and never a lost task: enqueues and completions stay durable.
    #[tracing::instrument(skip_all, fields(queue = queue, limit = limit))]
    pub async fn claim(
        &self,
        queue: &str,
        limit: i64,
        worker_id: &str,
        lease: Duration,
    ) -> Result<Vec<ClaimedTask>> {
        let lease_id = Uuid::new_v4();
        let rows: Vec<ClaimRow> = with_retry!(self.db, |conn| sqlx::query_as(
            r#"
            WITH async_commit AS (
                SELECT set_config('synchronous_commit', 'off', true)
            ), picked AS (
                SELECT id FROM flowforge.tasks
                WHERE queue = $1 AND status = 'queued' AND run_at <= now()
                ORDER BY priority DESC, run_at
                LIMIT $2
                FOR UPDATE SKIP LOCKED
            )
            UPDATE flowforge.tasks t
            SET status = 'running', attempts = t.attempts + 1, started_at = clock_timestamp(),
                lease_id = $3, lease_expires_at = now() + make_interval(secs => $4), worker_id = $5
            FROM picked, async_commit WHERE t.id = picked.id
            RETURNING t.id, t.queue, t.kind, t.payload, t.priority, t.attempts, t.max_attempts,
                      t.timeout_secs, t.run_at, t.created_at, t.started_at, t.trace_parent
            "#,
        )
        .bind(queue)
        .bind(limit)
        .bind(lease_id)
        .bind(lease.as_secs_f64())
        .bind(worker_id)
        .fetch_all(conn)
        .await)?;
        let mut tasks: Vec<ClaimedTask> = rows
            .into_iter()
            .map(|r| ClaimedTask {
                id: r.id,
                queue: r.queue,
                kind: r.kind,
                payload: r.payload,
                priority: r.priority,
                attempt: r.attempts,
                max_attempts: r.max_attempts,
                timeout_secs: r.timeout_secs,
                run_at: r.run_at,
                created_at: r.created_at,
                started_at: r.started_at,
                trace_parent: r.trace_parent,
                lease_id,
            })
            .collect();
        tasks.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.run_at.cmp(&b.run_at)));
        Ok(tasks)
    }

    /// Extends the leases `lease_ids` by `lease` from now. Returns the ids of the tasks still held
    /// under those leases; a running task missing from the answer has lost its lease.
    #[tracing::instrument(skip_all, fields(leases = lease_ids.len()))]
    pub async fn heartbeat(&self, lease_ids: &[Uuid], lease: Duration) -> Result<Vec<Uuid>> {
        if lease_ids.is_empty() {
            return Ok(Vec::new());
        }
        // Asynchronous commit, as for claims: a heartbeat lost in a crash only shortens a lease.
        let ids = with_retry!(self.db, |conn| sqlx::query_scalar(
            "WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true)) \
             UPDATE flowforge.tasks SET lease_expires_at = now() + make_interval(secs => $2) \
             FROM async_commit WHERE lease_id = ANY($1) AND status = 'running' RETURNING id",
        )
        .bind(lease_ids)
        .bind(lease.as_secs_f64())
        .fetch_all(conn)
        .await)?;
        Ok(ids)
    }

    /// Marks attempts as succeeded, in one statement: moved to the history, or deleted when
    /// succeeded tasks are not retained. Returns the ids that were completed; an attempt whose
    /// lease was lost is not.
    #[tracing::instrument(skip_all, fields(tasks = done.len()))]
    pub async fn complete_many(&self, done: &[(Uuid, Uuid)]) -> Result<Vec<Uuid>> {
        if done.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, leases): (Vec<Uuid>, Vec<Uuid>) = done.iter().copied().unzip();
        const DELETE_DONE: &str = "DELETE FROM flowforge.tasks t \
             USING unnest($1::uuid[], $2::uuid[]) AS d(id, lease_id) \
             WHERE t.id = d.id AND t.lease_id = d.lease_id RETURNING t.*";
        let sql = if self.keeps_succeeded() {
            move_to_history_sql(DELETE_DONE, "succeeded", "last_error", "id")
        } else {
            // Succeeded tasks are not retained: delete them and free their idempotency keys.
            format!(
                "WITH moved AS ({DELETE_DONE}), keys AS ( \
                   DELETE FROM flowforge.idempotency_keys k USING moved m \
                   WHERE m.idempotency_key IS NOT NULL AND k.queue = m.queue \
                     AND k.key = m.idempotency_key AND k.task_id = m.id RETURNING 1) \
                 SELECT id FROM moved"
            )
        };
        let ids = with_retry!(self.db, |conn| sqlx::query_scalar(&sql)
            .bind(&ids)
            .bind(&leases)
            .fetch_all(conn)
            .await)?;
        Ok(ids)
    }

    /// Records a failed attempt: queued again after a backoff delay while attempts remain and the
    /// error is retryable, otherwise dead.
    #[tracing::instrument(skip_all, fields(task_id = %id))]
    pub async fn fail(
        &self,
        id: Uuid,
        lease_id: Uuid,
        error: &str,
        retryable: bool,
    ) -> Result<FailOutcome> {
        let error = truncate_error(error);
        let backoff = self.backoff();
        with_retry!(self.db, |conn| fail_in(
            conn, id, lease_id, &error, retryable, backoff
        )
        .await)
    }

    /// Hands claimed tasks back unfinished (a worker draining on SIGTERM): queued again at once,
    /// and the attempt they used is given back. Returns the ids handed back.
    #[tracing::instrument(skip_all, fields(tasks = tasks.len()))]
    pub async fn release(&self, tasks: &[(Uuid, Uuid)]) -> Result<Vec<Uuid>> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, leases): (Vec<Uuid>, Vec<Uuid>) = tasks.iter().copied().unzip();
        let released: Vec<(Uuid, String)> = with_retry!(self.db, |conn| {
            sqlx::query_as(
            "UPDATE flowforge.tasks t SET status = 'queued', attempts = greatest(t.attempts - 1, 0), \
             run_at = now(), lease_id = NULL, lease_expires_at = NULL, worker_id = NULL \
             FROM unnest($1::uuid[], $2::uuid[]) AS r(id, lease_id) \
             WHERE t.id = r.id AND t.lease_id = r.lease_id \
             RETURNING t.id, t.queue",
        )
        .bind(&ids)
        .bind(&leases)
        .fetch_all(conn).await
        })?;
        for (_, queue) in &released {
            self.notifier().notify(queue);
        }
        Ok(released.into_iter().map(|(id, _)| id).collect())
    }

    /// Cancels a queued task. A running or finished task is a conflict.
    #[tracing::instrument(skip_all, fields(task_id = %id))]
    pub async fn cancel(&self, id: Uuid) -> Result<Task> {
        let sql = move_to_history_sql(
            "DELETE FROM flowforge.tasks WHERE id = $1 AND status = 'queued' RETURNING *",
            "cancelled",
            "last_error",
            model::HISTORY_COLUMNS,
        );
        if let Some(task) = with_retry!(self.db, |conn| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(conn)
            .await)?
        {
            return Ok(task);
        }
        match self.get(id).await? {
            None => Err(Error::NotFound(id)),
            Some(task) => Err(Error::Conflict {
                id,
                status: task.status.to_string(),
                action: "cancel",
                needs: "queued",
            }),
        }
    }

    /// Re-drives a dead or cancelled task: queued again now, with a fresh set of attempts.
    #[tracing::instrument(skip_all, fields(task_id = %id))]
    pub async fn retry(&self, id: Uuid) -> Result<Task> {
        let sql = format!(
            r#"
            WITH moved AS (
                DELETE FROM flowforge.task_history WHERE id = $1 AND status IN ('dead', 'cancelled')
                RETURNING *
            )
            INSERT INTO flowforge.tasks
                (id, queue, kind, payload, priority, status, attempts, max_attempts, run_at, timeout_secs,
                 idempotency_key, created_at, last_error, trace_parent)
            SELECT id, queue, kind, payload, priority, 'queued', 0, max_attempts, now(), timeout_secs,
                   idempotency_key, created_at, last_error, trace_parent
            FROM moved
            RETURNING {}
            "#,
            model::ACTIVE_COLUMNS
        );
        if let Some(task) = with_retry!(self.db, |conn| sqlx::query_as::<_, Task>(&sql)
            .bind(id)
            .fetch_optional(conn)
            .await)?
        {
            self.notifier().notify(&task.queue);
            return Ok(task);
        }
        match self.get(id).await? {
            None => Err(Error::NotFound(id)),
            Some(task) => Err(Error::Conflict {
                id,
                status: task.status.to_string(),
                action: "retry",
                needs: "dead or cancelled",
            }),
        }
    }
}

/// One failed attempt recorded in one transaction (see [`Queue::fail`]).
async fn fail_in(
    conn: &mut sqlx::PgConnection,
    id: Uuid,
    lease_id: Uuid,
    error: &str,
    retryable: bool,
    backoff: super::Backoff,
) -> Result<FailOutcome, sqlx::Error> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    let row: Option<(i32, i32)> = sqlx::query_as(
        "SELECT attempts, max_attempts FROM flowforge.tasks \
             WHERE id = $1 AND lease_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(lease_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((attempts, max_attempts)) = row else {
        return Ok(FailOutcome::LeaseLost);
    };
    let outcome = if retryable && attempts < max_attempts {
        let delay = backoff.delay(attempts);
        let run_at: DateTime<Utc> = sqlx::query_scalar(
                "UPDATE flowforge.tasks SET status = 'queued', run_at = now() + make_interval(secs => $2), \
                 last_error = $3, lease_id = NULL, lease_expires_at = NULL, worker_id = NULL \
                 WHERE id = $1 RETURNING run_at",
            )
            .bind(id)
            .bind(delay.as_secs_f64())
            .bind(error)
            .fetch_one(&mut *tx)
            .await?;
        FailOutcome::Retrying { run_at }
    } else {
        let sql = move_to_history_sql(
            "DELETE FROM flowforge.tasks WHERE id = $1 RETURNING *",
            "dead",
            "$2",
            "id",
        );
        sqlx::query(&sql)
            .bind(id)
            .bind(error)
            .execute(&mut *tx)
            .await?;
        FailOutcome::Dead
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Error messages are stored for operators, not as logs: keep them bounded.
pub(crate) fn truncate_error(error: &str) -> String {
    const MAX: usize = 4096;
    if error.len() <= MAX {
        return error.to_owned();
    }
    let mut end = MAX;
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &error[..end])
}

#[derive(sqlx::FromRow)]
struct ClaimRow {
    id: Uuid,
    queue: String,
    kind: String,
    payload: serde_json::Value,
    priority: i16,
    attempts: i32,
    max_attempts: i32,
    timeout_secs: i32,
    run_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    started_at: DateTime<Utc>,
    trace_parent: Option<String>,
}
