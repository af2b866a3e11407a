//! Enqueueing: one multi-row statement per call, and a group-commit batcher for single enqueues.

use std::collections::HashMap;

use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::{model, NewTask, Queue, Task};
use crate::db::with_retry;
use crate::{Error, Result};

use super::Enqueued;

impl Queue {
    /// Inserts `tasks` in one statement (one commit), returning one result per input, in order.
    ///
    /// A task whose `(queue, idempotency_key)` matches a retained task is not inserted: the
    /// retained task is returned with `created == false`. This holds for concurrent duplicates
    /// too, and for duplicates within `tasks` (the first one wins).
    #[tracing::instrument(skip_all, fields(tasks = tasks.len()))]
    pub async fn enqueue_many(&self, tasks: &[NewTask]) -> Result<Vec<Enqueued>> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let n = tasks.len();
        let mut ids = Vec::with_capacity(n);
        let mut queues = Vec::with_capacity(n);
        let mut kinds = Vec::with_capacity(n);
        let mut payloads = Vec::with_capacity(n);
        let mut priorities = Vec::with_capacity(n);
        let mut run_ats = Vec::with_capacity(n);
        let mut max_attempts = Vec::with_capacity(n);
        let mut timeouts = Vec::with_capacity(n);
        let mut keys = Vec::with_capacity(n);
        let mut trace_parents = Vec::with_capacity(n);
        for t in tasks {
            ids.push(Uuid::now_v7());
            queues.push(t.queue.as_str());
            kinds.push(t.kind.as_str());
            payloads.push(&t.payload);
            priorities.push(t.priority);
            run_ats.push(t.run_at);
            max_attempts.push(t.max_attempts);
            timeouts.push(t.timeout_secs);
            keys.push(t.idempotency_key.as_deref());
            trace_parents.push(t.trace_parent.as_deref());
        }
        let sql = format!(
            r#"
            WITH input AS (
                SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::int2[],
                                     $6::timestamptz[], $7::int4[], $8::int4[], $9::text[], $10::text[])
                    AS i(id, queue, kind, payload, priority, run_at, max_attempts, timeout_secs, idempotency_key,
                         trace_parent)
            ), keyed AS (
                INSERT INTO flowforge.idempotency_keys (queue, key, task_id)
                SELECT queue, idempotency_key, id FROM input WHERE idempotency_key IS NOT NULL
                ON CONFLICT DO NOTHING
                RETURNING task_id
            )
            INSERT INTO flowforge.tasks
                (id, queue, kind, payload, priority, run_at, max_attempts, timeout_secs, idempotency_key,
                 trace_parent)
            SELECT id, queue, kind, payload, priority, coalesce(run_at, now()), max_attempts, timeout_secs,
                   idempotency_key, trace_parent
            FROM input
            WHERE idempotency_key IS NULL OR id IN (SELECT task_id FROM keyed)
            RETURNING {}
            "#,
            model::ACTIVE_COLUMNS
        );
        let inserted: Vec<Task> = with_retry!(self.db, |conn| sqlx::query_as(&sql)
            .bind(&ids)
            .bind(&queues)
            .bind(&kinds)
            .bind(&payloads)
            .bind(&priorities)
            .bind(&run_ats)
            .bind(&max_attempts)
            .bind(&timeouts)
            .bind(&keys)
            .bind(&trace_parents)
            .fetch_all(conn)
            .await)?;

        for queue in inserted
            .iter()
            .map(|t| t.queue.as_str())
            .collect::<std::collections::BTreeSet<_>>()
        {
            self.notifier().notify(queue);
        }
        let mut by_id: HashMap<Uuid, Task> = inserted.into_iter().map(|t| (t.id, t)).collect();
        let mut results: Vec<Option<Enqueued>> = ids
            .iter()
            .map(|id| {
                by_id.remove(id).map(|task| Enqueued {
                    task,
                    created: true,
                })
            })
            .collect();

        // Inputs that were not inserted lost to a retained task with the same key.
        let missing: Vec<usize> = (0..n).filter(|&i| results[i].is_none()).collect();
        if !missing.is_empty() {
            let existing = self.tasks_by_key(&missing, tasks).await?;
            for i in missing {
                let key = (
                    tasks[i].queue.clone(),
                    tasks[i].idempotency_key.clone().unwrap_or_default(),
                );
                let task = existing.get(&key).cloned().ok_or_else(|| {
                    // The matching task was pruned between the insert and the lookup: vanishingly
                    // rare, and the caller may simply retry.
                    Error::Unavailable(sqlx::Error::Protocol(
                        "idempotency key matched a task that was pruned meanwhile".into(),
                    ))
                })?;
                results[i] = Some(Enqueued {
                    task,
                    created: false,
                });
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every input resolved"))
            .collect())
    }

    /// Retained tasks for the idempotency keys of `tasks[i]`, `i` in `which`, keyed by (queue, key).
    async fn tasks_by_key(
        &self,
        which: &[usize],
        tasks: &[NewTask],
    ) -> Result<HashMap<(String, String), Task>> {
        let queues: Vec<&str> = which.iter().map(|&i| tasks[i].queue.as_str()).collect();
        let keys: Vec<&str> = which
            .iter()
            .map(|&i| tasks[i].idempotency_key.as_deref().unwrap_or(""))
            .collect();
        let sql = format!(
            r#"
            WITH k AS (
                SELECT k.task_id FROM flowforge.idempotency_keys k
                JOIN unnest($1::text[], $2::text[]) AS i(queue, key) USING (queue, key)
            )
            SELECT {} FROM flowforge.tasks WHERE id IN (SELECT task_id FROM k)
            UNION ALL
            SELECT {} FROM flowforge.task_history WHERE id IN (SELECT task_id FROM k)
            "#,
            model::ACTIVE_COLUMNS,
            model::HISTORY_COLUMNS
        );
        let found: Vec<Task> = with_retry!(self.db, |conn| sqlx::query_as(&sql)
            .bind(&queues)
            .bind(&keys)
            .fetch_all(conn)
            .await)?;
        let out = found
            .into_iter()
            .map(|task| {
                let key = (
                    task.queue.clone(),
                    task.idempotency_key.clone().unwrap_or_default(),
                );
                (key, task)
            })
            .collect();
        Ok(out)
    }
}

type Reply = oneshot::Sender<Result<Enqueued, EnqueueError>>;

/// Why a batched enqueue failed; cloneable so one database error can answer a whole batch.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EnqueueError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("the enqueue batcher has stopped")]
    Stopped,
}

impl EnqueueError {
    fn from_core(err: &Error) -> Self {
        if err.is_unavailable() {
            EnqueueError::Unavailable(err.to_string())
        } else {
            EnqueueError::Database(err.to_string())
        }
    }
}

/// Group commit for single enqueues.
///
/// Concurrent callers' tasks are gathered into one multi-row insert, so many requests share one
/// commit (and one fsync) instead of paying for one each. A caller is answered only after the
/// commit, so an acknowledged task is durable.
///
/// There is no standing flusher: a caller that finds a flush slot free starts a flush task (on
/// its own worker thread, so no thread hand-off), which commits everything waiting and keeps
/// going while more arrives. Up to `flushers` flushes run at once; the others' tasks wait for the
/// next batch. A flush task is spawned rather than run inside the caller so that a client that
/// disconnects mid-request cannot abandon other callers' commit.
#[derive(Clone, Debug)]
pub struct Enqueuer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    queue: Queue,
    pending: Mutex<Vec<(NewTask, Reply)>>,
    slots: Arc<Semaphore>,
    max_batch: usize,
}

impl Enqueuer {
    /// Group commit over `queue` with up to `flushers` concurrent flushes of up to `max_batch`
    /// tasks each.
    pub fn new(queue: Queue, flushers: usize, max_batch: usize) -> Self {
        Enqueuer {
            inner: Arc::new(Inner {
                queue,
                pending: Mutex::new(Vec::new()),
                slots: Arc::new(Semaphore::new(flushers.max(1))),
                max_batch: max_batch.max(1),
            }),
        }
    }

    /// Enqueues one task, sharing a commit with concurrent callers.
    pub async fn enqueue(&self, task: NewTask) -> Result<Enqueued, EnqueueError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .pending
            .lock()
            .expect("enqueue lock")
            .push((task, reply));
        if let Ok(slot) = self.inner.slots.clone().try_acquire_owned() {
            tokio::spawn(flush_while_pending(self.inner.clone(), slot));
        }
        // Otherwise a running flush takes this task: each checks for waiting tasks after
        // giving its slot back.
        answer.await.map_err(|_| EnqueueError::Stopped)?
    }
}

/// Commits waiting tasks, batch after batch, until none is left.
async fn flush_while_pending(inner: Arc<Inner>, mut slot: OwnedSemaphorePermit) {
    loop {
        let batch: Vec<(NewTask, Reply)> = {
            let mut pending = inner.pending.lock().expect("enqueue lock");
            let n = pending.len().min(inner.max_batch);
            pending.drain(..n).collect()
        };
        if !batch.is_empty() {
            flush(&inner.queue, batch).await;
            continue;
        }
        drop(slot);
        // A task may have arrived after the batch was taken, when every slot was busy.
        if inner.pending.lock().expect("enqueue lock").is_empty() {
            return;
        }
        match inner.slots.clone().try_acquire_owned() {
            Ok(again) => slot = again,
            Err(_) => return, // another flush holds a slot and will take it
        }
    }
}

async fn flush(queue: &Queue, batch: Vec<(NewTask, Reply)>) {
    let (tasks, replies): (Vec<NewTask>, Vec<Reply>) = batch.into_iter().unzip();
    metrics::histogram!("flowforge_enqueue_batch_size").record(tasks.len() as f64);
    match queue.enqueue_many(&tasks).await {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(Ok(result));
            }
        }
        Err(err) => {
            let err = EnqueueError::from_core(&err);
            for reply in replies {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}
