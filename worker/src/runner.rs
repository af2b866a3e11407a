//! The engine: claim ready tasks in batches, run them with bounded concurrency, record results in
//! batches, keep leases alive, and drain on shutdown.
//!
//! ```text
//!  claim loop ──claim(batch)──▶ spawn one tokio task per claimed task ──result──▶ completers
//!      ▲  wake-ups (LISTEN), poll timer, freed capacity                 (complete_many / fail / release)
//!  heartbeat loop: extends the leases of everything in flight; interrupts attempts whose lease was lost
//! ```

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flowforge_core::queue::{ClaimedTask, FailOutcome, Queue, Wakeups};
use flowforge_core::trace::TraceContext;
use futures::FutureExt;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::task_metrics::{Completed, KindMetrics, TaskMetrics};
use crate::{HandlerError, Registry, TaskContext};

/// How the runner claims and runs tasks.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// Recorded on claimed tasks, for operators.
    pub worker_id: String,
    /// Queues to claim from, in turn.
    pub queues: Vec<String>,
    /// Largest number of tasks running at once.
    pub concurrency: usize,
    /// Largest number of tasks claimed by one statement.
    pub claim_batch: usize,
    /// Lease length; heartbeats renew it every third of it.
    pub lease: Duration,
    /// Longest wait between claims when no wake-up arrives.
    pub poll_interval: Duration,
    /// On shutdown, how long in-flight tasks may run before they are handed back.
    pub shutdown_grace: Duration,
}

/// What a drain did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DrainReport {
    /// Tasks still running when the grace period ended, handed back without using an attempt.
    pub handed_back: usize,
}

enum Outcome {
    Succeeded,
    Failed(HandlerError),
    /// Stopped early (shutdown past grace, or lease lost): hand the task back.
    Interrupted,
}

struct Done {
    id: Uuid,
    lease_id: Uuid,
    outcome: Outcome,
    metrics: Arc<KindMetrics>,
    /// The attempt's log span (task id, queue, kind, attempt, trace context).
    span: tracing::Span,
}

struct InFlight {
    lease_id: Uuid,
    cancel: CancellationToken,
    /// The handler returned; only its result remains to be recorded.
    finished: bool,
}

type InFlightMap = Arc<Mutex<HashMap<Uuid, InFlight>>>;

/// When busy, how long the claim loop waits for more slots to free up before claiming.
const FILL_DELAY: Duration = Duration::from_millis(2);

/// Claims and runs tasks until stopped.
pub struct Runner {
    queue: Queue,
    registry: Arc<Registry>,
    settings: RunnerSettings,
    metrics: Arc<TaskMetrics>,
}

impl Runner {
    pub fn new(queue: Queue, registry: Registry, settings: RunnerSettings) -> Self {
        Runner {
            queue,
            registry: Arc::new(registry),
            settings,
            metrics: Arc::default(),
        }
    }

    /// Runs until `stop` is cancelled, then drains: no new claims, in-flight tasks get the grace
    /// period to finish, the rest are handed back.
    pub async fn run(self, wakeups: Wakeups, stop: CancellationToken) -> DrainReport {
        let concurrency = self.settings.concurrency.max(1);
        metrics::gauge!("flowforge_worker_concurrency").set(concurrency as f64);
        let semaphore = Arc::new(Semaphore::new(concurrency));
        let capacity = Arc::new(Notify::new());
        let in_flight: InFlightMap = Arc::default();
        let (done_tx, done_rx) = mpsc::unbounded_channel::<Done>();
        let handed_back = Arc::new(std::sync::atomic::AtomicUsize::new(0));

        let done_rx = Arc::new(tokio::sync::Mutex::new(done_rx));
        let completers: Vec<_> = (0..2)
            .map(|_| {
                tokio::spawn(completer(
                    self.queue.clone(),
                    done_rx.clone(),
                    in_flight.clone(),
                    handed_back.clone(),
                ))
            })
            .collect();
        let heartbeat_stop = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat_loop(
            self.queue.clone(),
            in_flight.clone(),
            self.settings.lease,
            heartbeat_stop.clone(),
        ));

        self.claim_loop(&semaphore, &capacity, &in_flight, &done_tx, &wakeups, &stop)
            .await;

        // Drain: wait for in-flight handlers, up to the grace period.
        let running = concurrency - semaphore.available_permits();
        tracing::info!(running, grace = ?self.settings.shutdown_grace, "draining: no new claims");
        let all = concurrency as u32;
        if tokio::time::timeout(self.settings.shutdown_grace, semaphore.acquire_many(all))
            .await
            .is_err()
        {
            let interrupted: Vec<CancellationToken> = in_flight
                .lock()
                .expect("in-flight lock")
                .values()
                .filter(|t| !t.finished)
                .map(|t| t.cancel.clone())
                .collect();
            tracing::warn!(
                tasks = interrupted.len(),
                "grace period over: handing back unfinished tasks"
            );
            for cancel in interrupted {
                cancel.cancel();
            }
            let _ = semaphore.acquire_many(all).await;
        }
        drop(done_tx);
        for c in completers {
            let _ = c.await;
        }
        heartbeat_stop.cancel();
        let _ = heartbeat.await;
        DrainReport {
            handed_back: handed_back.load(std::sync::atomic::Ordering::SeqCst),
        }
    }

    async fn claim_loop(
        &self,
        semaphore: &Arc<Semaphore>,
        capacity: &Arc<Notify>,
        in_flight: &InFlightMap,
        done_tx: &mpsc::UnboundedSender<Done>,
        wakeups: &Wakeups,
        stop: &CancellationToken,
    ) {
        let mut next_queue = 0usize;
        let mut db_down = false;
        let low_water = (self.settings.concurrency.min(self.settings.claim_batch) / 4).max(1);
        loop {
            if stop.is_cancelled() {
                return;
            }
            let mut available = semaphore.available_permits();
            if available == 0 {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = capacity.notified() => continue,
                }
            }
            if available < low_water {
                // Busy: let a few more slots free up (briefly) so that one claim fills many of
                // them. Claiming one task per freed slot would cost a transaction each.
                let fill = async {
                    while semaphore.available_permits() < low_water {
                        capacity.notified().await;
                    }
                };
                let _ = tokio::time::timeout(FILL_DELAY, fill).await;
                available = semaphore.available_permits();
            }
            let want = available.min(self.settings.claim_batch.max(1));
            let mut permits = match semaphore.clone().try_acquire_many_owned(want as u32) {
                Ok(p) => p,
                Err(_) => continue,
            };
            match self.claim_round(want, &mut next_queue).await {
                Ok(tasks) => {
                    if db_down {
                        tracing::info!("database reachable again: claiming");
                        db_down = false;
                    }
                    let got = tasks.len();
                    for task in tasks {
                        let permit = permits.split(1).expect("one permit per claimed task");
                        self.start(task, permit, capacity, in_flight, done_tx);
                    }
                    drop(permits);
                    if got == want {
                        continue; // more are probably waiting
                    }
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = wakeups.wait() => {}
                        _ = tokio::time::sleep(self.settings.poll_interval) => {}
                    }
                }
                Err(err) => {
                    drop(permits);
                    if !db_down {
                        tracing::warn!(error = %err, "claiming failed; retrying every poll interval");
                        db_down = true;
                    }
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(self.settings.poll_interval) => {}
                    }
                }
            }
        }
    }

    /// Claims up to `want` tasks, visiting the queues in turn starting after the last one served.
    async fn claim_round(
        &self,
        want: usize,
        next_queue: &mut usize,
    ) -> flowforge_core::Result<Vec<ClaimedTask>> {
        let queues = &self.settings.queues;
        let mut claimed = Vec::new();
        for i in 0..queues.len() {
            let remaining = want - claimed.len();
            if remaining == 0 {
                break;
            }
            let queue = &queues[(*next_queue + i) % queues.len()];
            let mut batch = self
                .queue
                .claim(
                    queue,
                    remaining as i64,
                    &self.settings.worker_id,
                    self.settings.lease,
                )
                .await?;
            claimed.append(&mut batch);
        }
        *next_queue = (*next_queue + 1) % queues.len().max(1);
        Ok(claimed)
    }

    fn start(
        &self,
        task: ClaimedTask,
        permit: tokio::sync::OwnedSemaphorePermit,
        capacity: &Arc<Notify>,
        in_flight: &InFlightMap,
        done_tx: &mpsc::UnboundedSender<Done>,
    ) {
        let cancel = CancellationToken::new();
        in_flight.lock().expect("in-flight lock").insert(
            task.id,
            InFlight {
                lease_id: task.lease_id,
                cancel: cancel.clone(),
                finished: false,
            },
        );
        let kind_label = if self.registry.get(&task.kind).is_some() {
            task.kind.as_str()
        } else {
            "unregistered"
        };
        let metrics = self.metrics.get(&task.queue, kind_label);
        let ready_at = task.run_at.max(task.created_at);
        let wait = (task.started_at - ready_at).to_std().unwrap_or_default();
        metrics.wait.record(wait.as_secs_f64());

        // Every log line of this attempt carries the task and the trace of the request that
        // created it (a new trace when there was none); the attempt is a span of its own.
        let trace = TraceContext::continue_or_start(task.trace_parent.as_deref());
        let span = tracing::info_span!(
            "task",
            task_id = %task.id,
            queue = %task.queue,
            kind = %task.kind,
            attempt = task.attempt,
            trace_id = %trace.trace_id(),
            span_id = %trace.span_id(),
        );
        let running = metrics::gauge!("flowforge_worker_tasks_running");
        running.increment(1.0);

        let registry = self.registry.clone();
        let capacity = capacity.clone();
        let in_flight = in_flight.clone();
        let done_tx = done_tx.clone();
        let task_span = span.clone();
        let attempt = async move {
            let started = Instant::now();
            let ctx = TaskContext {
                id: task.id,
                queue: task.queue,
                kind: task.kind,
                payload: task.payload,
                attempt: task.attempt,
                max_attempts: task.max_attempts,
                cancel: cancel.clone(),
            };
            let outcome = match registry.get(&ctx.kind) {
                None => Outcome::Failed(HandlerError::permanent(format!(
                    "no handler registered for kind {:?} on this worker",
                    ctx.kind
                ))),
                Some(handler) => {
                    let limit = Duration::from_secs(task.timeout_secs.max(1) as u64);
                    let run = AssertUnwindSafe(handler.run(&ctx)).catch_unwind();
                    tokio::select! {
                        result = tokio::time::timeout(limit, run) => match result {
                            Ok(Ok(Ok(()))) => Outcome::Succeeded,
                            Ok(Ok(Err(err))) => Outcome::Failed(err),
                            Ok(Err(_panic)) => Outcome::Failed(HandlerError::retryable("handler panicked")),
                            Err(_) => Outcome::Failed(HandlerError::retryable(format!(
                                "timed out after {}s", limit.as_secs()
                            ))),
                        },
                        _ = cancel.cancelled() => Outcome::Interrupted,
                    }
                }
            };
            // A handler that watches `cancel` returns an error when it fires: that attempt was
            // interrupted (shutdown past grace, lost lease), not failed, so it is handed back.
            let outcome = match outcome {
                Outcome::Failed(_) if cancel.is_cancelled() => Outcome::Interrupted,
                other => other,
            };
            metrics.processing.record(started.elapsed().as_secs_f64());
            running.decrement(1.0);
            if let Some(t) = in_flight.lock().expect("in-flight lock").get_mut(&ctx.id) {
                t.finished = true;
            }
            let _ = done_tx.send(Done {
                id: ctx.id,
                lease_id: task.lease_id,
                metrics,
                outcome,
                span: task_span,
            });
            drop(permit);
            capacity.notify_one();
        };
        tokio::spawn(attempt.instrument(span));
    }
}

/// Records results: successes in batches, failures and hand-backs as they come. Write errors are
/// retried while the database is unavailable; if it never returns, the leases expire and the tasks
/// are rescued and run again, so nothing is lost.
async fn completer(
    queue: Queue,
    rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Done>>>,
    in_flight: InFlightMap,
    handed_back: Arc<std::sync::atomic::AtomicUsize>,
) {
    const MAX_BATCH: usize = 5000;
    const GATHER: Duration = Duration::from_millis(2);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            batch.push(first);
            // Gather what arrives within a moment: one statement (and one commit) for many
            // results is far cheaper than one each. Results wait at most GATHER; leases last
            // much longer.
            let deadline = tokio::time::Instant::now() + GATHER;
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(done) => batch.push(done),
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        match tokio::time::timeout_at(deadline, rx.recv()).await {
                            Ok(Some(done)) => batch.push(done),
                            Ok(None) | Err(_) => break,
                        }
                    }
                }
            }
        }
        let mut succeeded = Vec::new();
        let mut interrupted = Vec::new();
        let mut failed = Vec::new();
        for done in batch.drain(..) {
            match done.outcome {
                Outcome::Succeeded => succeeded.push(done),
                Outcome::Interrupted => interrupted.push(done),
                Outcome::Failed(ref _e) => failed.push(done),
            }
        }
        if !succeeded.is_empty() {
            let pairs: Vec<(Uuid, Uuid)> = succeeded.iter().map(|d| (d.id, d.lease_id)).collect();
            if let Some(ids) = with_retry("complete", || queue.complete_many(&pairs)).await {
                let ids: HashSet<Uuid> = ids.into_iter().collect();
                for d in &succeeded {
                    let outcome = if ids.contains(&d.id) {
                        Completed::Succeeded
                    } else {
                        Completed::LeaseLost
                    };
                    count(d, outcome);
                }
            }
        }
        if !interrupted.is_empty() {
            let pairs: Vec<(Uuid, Uuid)> = interrupted.iter().map(|d| (d.id, d.lease_id)).collect();
            if let Some(ids) = with_retry("hand back", || queue.release(&pairs)).await {
                handed_back.fetch_add(ids.len(), std::sync::atomic::Ordering::SeqCst);
                let ids: HashSet<Uuid> = ids.into_iter().collect();
                for d in &interrupted {
                    count(
                        d,
                        if ids.contains(&d.id) {
                            Completed::HandedBack
                        } else {
                            Completed::LeaseLost
                        },
                    );
                }
            }
        }
        let failures = failed.iter().map(|d| {
            let queue = queue.clone();
            async move {
                let Outcome::Failed(err) = &d.outcome else { unreachable!() };
                let result = with_retry("fail", || queue.fail(d.id, d.lease_id, &err.message, err.retryable)).await;
                match result {
                    Some(FailOutcome::Retrying { run_at }) => {
                        d.span.in_scope(|| tracing::info!(error = %err.message, %run_at, "attempt failed; will retry"));
                        count(d, Completed::Retried);
                    }
                    Some(FailOutcome::Dead) => {
                        d.span.in_scope(|| tracing::warn!(error = %err.message, "attempt failed; task is dead"));
                        count(d, Completed::Dead);
                    }
                    Some(FailOutcome::LeaseLost) => count(d, Completed::LeaseLost),
                    None => {}
                }
            }
        });
        futures::future::join_all(failures).await;

        let mut map = in_flight.lock().expect("in-flight lock");
        for d in succeeded.iter().chain(&interrupted).chain(&failed) {
            map.remove(&d.id);
        }
    }
}

fn count(d: &Done, how: Completed) {
    d.metrics.completed(how);
}

/// Runs `op` until it succeeds, retrying (with backoff, for up to two minutes) while the database
/// is unavailable. Gives up on other errors. `None` when it gave up.
async fn with_retry<T, F, Fut>(what: &str, mut op: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = flowforge_core::Result<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut delay = Duration::from_millis(50);
    loop {
        match op().await {
            Ok(v) => return Some(v),
            Err(err) if err.is_unavailable() && Instant::now() < deadline => {
                tracing::warn!(error = %err, "{what}: database unavailable; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(err) => {
                tracing::error!(error = %err, "{what} failed; the lease will expire and the task run again");
                return None;
            }
        }
    }
}

/// Extends the leases of everything in flight every third of the lease, and interrupts attempts
/// whose lease was lost (rescued after a stall) so they stop working on a task someone else owns.
async fn heartbeat_loop(
    queue: Queue,
    in_flight: InFlightMap,
    lease: Duration,
    stop: CancellationToken,
) {
    let period = (lease / 3).max(Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let leases: Vec<Uuid> = {
            let map = in_flight.lock().expect("in-flight lock");
            let set: HashSet<Uuid> = map
                .values()
                .filter(|t| !t.finished)
                .map(|t| t.lease_id)
                .collect();
            set.into_iter().collect()
        };
        if leases.is_empty() {
            continue;
        }
        match queue.heartbeat(&leases, lease).await {
            Ok(held) => {
                let held: HashSet<Uuid> = held.into_iter().collect();
                let map = in_flight.lock().expect("in-flight lock");
                for (id, t) in map.iter() {
                    if !t.finished && !held.contains(id) && !t.cancel.is_cancelled() {
                        tracing::warn!(task_id = %id, "lease lost: another worker owns this task now; stopping this attempt");
                        t.cancel.cancel();
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "heartbeat failed; will retry"),
        }
    }
}
