//! The queue's figures from the source of truth, for every queue: depth by state, age of the
//! oldest ready task, and the task-wait SLI's events (tasks started, and started within the
//! threshold of becoming ready), read from the database every interval.
//!
//! Metrics: `flowforge_queue_depth{queue,state}` (`ready`, `scheduled`, `running`, `dead`),
//! `flowforge_queue_oldest_ready_age_seconds{queue}`, `flowforge_task_wait_events_total{queue}`
//! and `flowforge_task_wait_good_events_total{queue}` (counters: SLI = good / all).

use std::collections::HashSet;
use std::time::Duration;

use flowforge_core::queue::Queue;
use tokio_util::sync::CancellationToken;

/// Tasks are counted once they started this long ago, so a claim that committed late (its
/// start time is taken before its commit) is not missed.
const SETTLE: f64 = 5.0;

/// Task waits are looked for among finished tasks created in the last day (the history's primary
/// key is time-ordered, so the scan stays bounded as history grows). A finished task created
/// earlier — scheduled more than a day ahead, or waiting that long — is left out of the SLI;
/// a long wait still shows in the oldest-ready-age figure. Every scaler replica publishes the
/// same figures: aggregate with `max by (queue)`, never `sum`.
const HORIZON: Duration = Duration::from_secs(86_400);

pub struct SloSettings {
    pub interval: Duration,
    pub task_wait: Duration,
}

/// Reads and publishes the figures until `stop`.
pub async fn run(queue: Queue, settings: SloSettings, stop: CancellationToken) {
    let mut known: HashSet<String> = HashSet::new();
    let mut last: Option<f64> = None;
    loop {
        if let Err(err) = publish(&queue, &settings, &mut known, &mut last).await {
            tracing::warn!(error = %err, "cannot read the queue's figures; retrying");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(settings.interval) => {}
        }
    }
}

async fn publish(
    queue: &Queue,
    settings: &SloSettings,
    known: &mut HashSet<String>,
    last: &mut Option<f64>,
) -> flowforge_core::Result<()> {
    let stats = queue.stats().await?;
    let mut seen = HashSet::new();
    for s in &stats {
        let q = s.queue.clone();
        for (state, n) in [
            ("ready", s.ready),
            ("scheduled", s.scheduled),
            ("running", s.running),
            ("dead", s.dead),
        ] {
            metrics::gauge!("flowforge_queue_depth", "queue" => q.clone(), "state" => state)
                .set(n as f64);
        }
        metrics::gauge!("flowforge_queue_oldest_ready_age_seconds", "queue" => q.clone())
            .set(s.oldest_ready_age_seconds);
        seen.insert(q);
    }
    // A queue that emptied completely keeps reporting zeros rather than its last figures.
    for gone in known.difference(&seen) {
        for state in ["ready", "scheduled", "running", "dead"] {
            metrics::gauge!("flowforge_queue_depth", "queue" => gone.clone(), "state" => state)
                .set(0.0);
        }
        metrics::gauge!("flowforge_queue_oldest_ready_age_seconds", "queue" => gone.clone())
            .set(0.0);
    }
    known.extend(seen);

    let until = queue.now().await? - SETTLE;
    let after = last.unwrap_or(until);
    if until > after {
        for w in queue
            .task_waits(after, until, settings.task_wait, HORIZON)
            .await?
        {
            metrics::counter!("flowforge_task_wait_events_total", "queue" => w.queue.clone())
                .increment(w.started as u64);
            metrics::counter!("flowforge_task_wait_good_events_total", "queue" => w.queue)
                .increment(w.within as u64);
        }
    }
    *last = Some(until.max(after));
    metrics::gauge!("flowforge_scaler_figures_timestamp_seconds").set(until + SETTLE);
    Ok(())
}
