//! The queue's figures from the source of truth, for every queue: depth by state, age of the
//! oldest ready task, and the task-wait SLI's events (tasks started, and started within the
//! threshold of becoming ready), read from the database every interval.
//!
//! Metrics: `flowforge_queue_depth{queue,state}` (`ready`, `scheduled`, `running`, `dead`),
//! `flowforge_queue_oldest_ready_age_seconds{queue}`, `flowforge_task_wait_events_total{queue}`
//! and `flowforge_task_wait_good_events_total{queue}` (counters: SLI = good / all).
//!
//! The scaler also publishes the task-wait SLO's burn rate over every window of the SRE
//! Workbook's multiwindow alerts, `flowforge_slo_burn_rate{slo="task-wait",window}`, and its
//! error budget remaining over 30 days, `flowforge_slo_error_budget_remaining{slo="task-wait"}`,
//! from the per-minute ledger in the database ([`flowforge_core::queue::ledger`]): they exist
//! without any recording rule (a Lambda-only deployment, a cluster without the Prometheus
//! Operator) and agree with the rules computed from the counters above.

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
    /// The task-wait SLO's objective (0.99: 99 % of tasks start within `task_wait`).
    pub objective: f64,
}

/// The SLO windows burn rates are published for (the SRE Workbook's multiwindow alerts), with
/// their label values; the last one is the SLO period, for the error budget.
pub const WINDOWS: [(&str, u64); 8] = [
    ("5m", 300),
    ("30m", 1_800),
    ("1h", 3_600),
    ("2h", 7_200),
    ("6h", 21_600),
    ("1d", 86_400),
    ("3d", 259_200),
    ("30d", 2_592_000),
];

/// Burn rate of an error budget: the window's error ratio over the budget (1 - objective).
/// A window without events burns nothing.
pub fn burn_rate(started: i64, within: i64, objective: f64) -> f64 {
    if started <= 0 {
        return 0.0;
    }
    let error_ratio = (started - within).max(0) as f64 / started as f64;
    error_ratio / (1.0 - objective)
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
        // Counters exist (at 0) from the moment a queue is seen, before its first events are
        // counted (they settle for 5 s): Prometheus's rate() cannot see the increase that
        // creates a series, so a series born with the first events would lose them.
        metrics::counter!("flowforge_task_wait_events_total", "queue" => q.clone()).increment(0);
        metrics::counter!("flowforge_task_wait_good_events_total", "queue" => q.clone())
            .increment(0);
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

    queue
        .step_task_wait_ledger(settings.task_wait, Duration::from_secs_f64(SETTLE), HORIZON)
        .await?;
    let windows: Vec<Duration> = WINDOWS
        .iter()
        .map(|(_, s)| Duration::from_secs(*s))
        .collect();
    let events = queue.task_wait_windows(&windows).await?;
    for ((label, _), e) in WINDOWS.iter().zip(&events) {
        let rate = burn_rate(e.started, e.within, settings.objective);
        metrics::gauge!("flowforge_slo_burn_rate", "slo" => "task-wait", "window" => *label)
            .set(rate);
        if *label == "30d" {
            metrics::gauge!("flowforge_slo_error_budget_remaining", "slo" => "task-wait")
                .set(1.0 - rate);
        }
    }
    metrics::gauge!("flowforge_scaler_figures_timestamp_seconds").set(until + SETTLE);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burn_rate_is_the_error_ratio_over_the_budget() {
        // 2 of 100 late against a 1 % budget: burning twice as fast as allowed.
        assert!((burn_rate(100, 98, 0.99) - 2.0).abs() < 1e-9);
        assert!((burn_rate(1_000, 999, 0.999) - 1.0).abs() < 1e-9);
        assert_eq!(burn_rate(0, 0, 0.99), 0.0);
        assert_eq!(burn_rate(10, 10, 0.99), 0.0);
        assert_eq!(WINDOWS.last().unwrap().0, "30d");
    }
}
