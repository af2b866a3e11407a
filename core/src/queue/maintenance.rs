//! Housekeeping: rescue of expired leases and pruning of finished tasks.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Queue;
use crate::db::with_retry;
use crate::Result;

/// What one rescue pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rescued {
    /// Tasks whose lease expired and that were queued again.
    pub requeued: i64,
    /// Tasks whose lease expired on their last attempt, now dead.
    pub dead: i64,
}

/// How long finished tasks are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Succeeded and cancelled tasks.
    pub finished: Duration,
    /// Dead tasks (kept longer by default so they can be inspected and re-driven).
    pub dead: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            finished: Duration::from_secs(7 * 24 * 3600),
            dead: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl Queue {
    /// Takes back up to `limit` tasks whose lease expired (their worker died or stalled): queued
    /// again at once while attempts remain, dead otherwise. The lost attempt counts.
    #[tracing::instrument(skip_all)]
    pub async fn rescue_expired(&self, limit: i64) -> Result<Rescued> {
        let (requeued, dead, queues): (i64, i64, Vec<String>) = with_retry!(self.db, |conn| {
            sqlx::query_as(
            r#"
            WITH expired AS (
                SELECT id FROM flowforge.tasks
                WHERE status = 'running' AND lease_expires_at < now()
                ORDER BY lease_expires_at
                LIMIT $1
                FOR UPDATE SKIP LOCKED
            ), requeued AS (
                UPDATE flowforge.tasks t
                SET status = 'queued', run_at = now(), lease_id = NULL, lease_expires_at = NULL,
                    worker_id = NULL, last_error = 'lease expired: the worker running attempt '
                        || t.attempts || ' stopped heartbeating'
                FROM expired e WHERE t.id = e.id AND t.attempts < t.max_attempts
                RETURNING t.queue
            ), exhausted AS (
                DELETE FROM flowforge.tasks t USING expired e
                WHERE t.id = e.id AND t.attempts >= t.max_attempts
                RETURNING t.*
            ), buried AS (
                INSERT INTO flowforge.task_history
                    (id, queue, kind, payload, priority, status, attempts, max_attempts, run_at,
                     timeout_secs, idempotency_key, created_at, started_at, finished_at, last_error,
                     trace_parent)
                SELECT id, queue, kind, payload, priority, 'dead', attempts, max_attempts, run_at,
                       timeout_secs, idempotency_key, created_at, started_at, now(),
                       'lease expired on the last attempt (' || attempts || ' of ' || max_attempts || ')',
                       trace_parent
                FROM exhausted
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM requeued),
                   (SELECT count(*) FROM buried),
                   (SELECT coalesce(array_agg(DISTINCT queue), '{}') FROM requeued)
            "#,
        )
        .bind(limit)
        .fetch_one(conn).await
        })?;
        for queue in &queues {
            self.notifier().notify(queue);
        }
        Ok(Rescued { requeued, dead })
    }

    /// Deletes up to `limit` finished tasks older than their retention, with their idempotency
    /// keys. Returns how many were deleted; call again while it returns `limit`.
    #[tracing::instrument(skip_all)]
    pub async fn prune(&self, retention: Retention, limit: i64) -> Result<i64> {
        let pruned: i64 = with_retry!(self.db, |conn| {
            sqlx::query_scalar(
            r#"
            WITH doomed AS (
                SELECT id FROM flowforge.task_history
                WHERE id < flowforge.uuid7_floor(now() - make_interval(secs => least($1, $2)))
                  AND finished_at < now() - make_interval(secs => CASE WHEN status = 'dead' THEN $2 ELSE $1 END)
                ORDER BY id
                LIMIT $3
                FOR UPDATE SKIP LOCKED
            ), pruned AS (
                DELETE FROM flowforge.task_history h USING doomed d WHERE h.id = d.id
                RETURNING h.id, h.queue, h.idempotency_key
            ), keys AS (
                DELETE FROM flowforge.idempotency_keys k USING pruned p
                WHERE p.idempotency_key IS NOT NULL AND k.queue = p.queue AND k.key = p.idempotency_key
                  AND k.task_id = p.id
                RETURNING 1
            )
            SELECT count(*) + 0 * (SELECT count(*) FROM keys) FROM pruned
            "#,
        )
        .bind(retention.finished.as_secs_f64())
        .bind(retention.dead.as_secs_f64())
        .bind(limit)
        .fetch_one(conn).await
        })?;
        Ok(pruned)
    }

    /// Prunes in batches of `batch` until nothing old is left; returns the total.
    pub async fn prune_all(&self, retention: Retention, batch: i64) -> Result<i64> {
        let mut total = 0;
        loop {
            let n = self.prune(retention, batch).await?;
            total += n;
            if n < batch {
                return Ok(total);
            }
        }
    }
}

/// Settings of the housekeeping loop.
#[derive(Debug, Clone, Copy)]
pub struct MaintenanceSettings {
    /// How often expired leases are looked for.
    pub rescue_interval: Duration,
    /// How often old finished tasks are pruned.
    pub prune_interval: Duration,
    pub retention: Retention,
    /// Rows per rescue or prune statement.
    pub batch: i64,
}

impl Default for MaintenanceSettings {
    fn default() -> Self {
        MaintenanceSettings {
            rescue_interval: Duration::from_secs(5),
            prune_interval: Duration::from_secs(60),
            retention: Retention::default(),
            batch: 5000,
        }
    }
}

/// Runs rescue and pruning until `stop` is cancelled. Safe to run in every worker at once:
/// each statement skips rows another one has locked.
pub async fn run_maintenance(queue: Queue, settings: MaintenanceSettings, stop: CancellationToken) {
    let mut rescue = tokio::time::interval(jittered(settings.rescue_interval));
    let mut prune = tokio::time::interval(jittered(settings.prune_interval));
    rescue.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = rescue.tick() => {
                match queue.rescue_expired(settings.batch).await {
                    Ok(r) => {
                        if r.requeued > 0 || r.dead > 0 {
                            tracing::warn!(requeued = r.requeued, dead = r.dead, "rescued tasks with expired leases");
                        }
                        metrics::counter!("flowforge_tasks_rescued_total", "outcome" => "requeued").increment(r.requeued as u64);
                        metrics::counter!("flowforge_tasks_rescued_total", "outcome" => "dead").increment(r.dead as u64);
                    }
                    Err(err) => tracing::warn!(error = %err, "lease rescue failed; will try again"),
                }
            }
            _ = prune.tick() => {
                match queue.prune_all(settings.retention, settings.batch).await {
                    Ok(n) => {
                        if n > 0 {
                            tracing::info!(pruned = n, "pruned finished tasks past retention");
                        }
                        metrics::counter!("flowforge_tasks_pruned_total").increment(n as u64);
                    }
                    Err(err) => tracing::warn!(error = %err, "pruning failed; will try again"),
                }
            }
        }
    }
}

/// `d` ± 10%, so that many workers started together do not run housekeeping in lockstep.
fn jittered(d: Duration) -> Duration {
    let factor = rand::random_range(0.9..=1.1);
    d.mul_f64(factor).max(Duration::from_millis(10))
}
