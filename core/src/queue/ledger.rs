//! The task-wait SLI ledger: per-minute counts of tasks started, and started within the
//! threshold, kept (35 days) beyond task retention, so that every SLO window up to 30 days can be
//! computed from the database alone.
//!
//! [`Queue::step_task_wait_ledger`] appends the minutes completed since the last step; any
//! number of processes may call it (they take turns on a lock and the values are the same
//! whoever computes them). [`Queue::task_wait_windows`] sums the ledger over trailing windows
//! that end where the ledger is complete.

use std::time::Duration;

use super::Queue;
use crate::db::with_retry;
use crate::Result;

/// Ledger rows are dropped after this long (the longest SLO window is 30 days).
pub const LEDGER_RETENTION: Duration = Duration::from_secs(35 * 86_400);

/// Task-wait events over one trailing window of the ledger.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowEvents {
    /// The window's length.
    pub window: Duration,
    /// Tasks that started in the window.
    pub started: i64,
    /// Of those, tasks that started within the threshold of becoming ready.
    pub within: i64,
}

impl Queue {
    /// Appends to the ledger every whole minute that ended more than `settle` ago and is not in
    /// it yet (at most `horizon` back: tasks created earlier are not looked at). Returns the
    /// number of rows written.
    pub async fn step_task_wait_ledger(
        &self,
        threshold: Duration,
        settle: Duration,
        horizon: Duration,
    ) -> Result<i64> {
        with_retry!(self.db, |conn| {
            sqlx::query_scalar(
            r#"
            WITH mark AS (
                SELECT upto FROM flowforge.ledger_watermarks WHERE name = 'task_wait' FOR UPDATE
            ), bounds AS (
                SELECT greatest((SELECT upto FROM mark), date_trunc('minute', now() - make_interval(secs => $3))) AS from_t,
                       date_trunc('minute', now() - make_interval(secs => $2)) AS to_t
            ), started AS (
                SELECT queue, started_at, greatest(run_at, created_at) AS ready_at
                FROM flowforge.tasks, bounds
                WHERE status = 'running' AND started_at >= from_t AND started_at < to_t
                UNION ALL
                SELECT queue, started_at, greatest(run_at, created_at)
                FROM flowforge.task_history, bounds
                WHERE id >= flowforge.uuid7_floor(now() - make_interval(secs => $3))
                  AND started_at >= from_t AND started_at < to_t
            ), written AS (
                INSERT INTO flowforge.task_wait_minutes (minute, queue, started, within)
                SELECT date_trunc('minute', started_at), queue, count(*),
                       count(*) FILTER (WHERE started_at - ready_at <= make_interval(secs => $1))
                FROM started GROUP BY 1, 2
                ON CONFLICT DO NOTHING
                RETURNING 1
            ), advanced AS (
                UPDATE flowforge.ledger_watermarks w SET upto = b.to_t
                FROM bounds b
                WHERE w.name = 'task_wait' AND (w.upto IS NULL OR w.upto < b.to_t)
                RETURNING 1
            ), pruned AS (
                DELETE FROM flowforge.task_wait_minutes
                WHERE minute < now() - make_interval(secs => $4)
                RETURNING 1
            )
            -- (Data-modifying CTEs run whether or not the query reads them.)
            SELECT count(*) FROM written
            "#,
        )
        .bind(threshold.as_secs_f64())
        .bind(settle.as_secs_f64())
        .bind(horizon.as_secs_f64())
        .bind(LEDGER_RETENTION.as_secs_f64())
        .fetch_one(conn)
        .await
        })
    }

    /// Task-wait events of every queue over each trailing window, ending where the ledger is
    /// complete. Windows without events give zeros.
    pub async fn task_wait_windows(&self, windows: &[Duration]) -> Result<Vec<WindowEvents>> {
        let secs: Vec<f64> = windows.iter().map(Duration::as_secs_f64).collect();
        let rows: Vec<(f64, i64, i64)> = with_retry!(self.db, |conn| sqlx::query_as(
            r#"
            SELECT w.secs, coalesce(sum(l.started), 0)::int8, coalesce(sum(l.within), 0)::int8
            FROM unnest($1::float8[]) AS w(secs)
            CROSS JOIN (SELECT upto FROM flowforge.ledger_watermarks WHERE name = 'task_wait') m
            LEFT JOIN flowforge.task_wait_minutes l
                   ON l.minute >= m.upto - make_interval(secs => w.secs) AND l.minute < m.upto
            GROUP BY w.secs
            "#,
        )
        .bind(&secs)
        .fetch_all(conn)
        .await)?;
        Ok(windows
            .iter()
            .map(|w| {
                let found = rows.iter().find(|(s, _, _)| *s == w.as_secs_f64());
                WindowEvents {
                    window: *w,
                    started: found.map_or(0, |r| r.1),
                    within: found.map_or(0, |r| r.2),
                }
            })
            .collect())
    }
}
