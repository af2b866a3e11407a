//! Per-task metrics with handles registered once per (queue, kind): recording a task's figures
//! then costs two hash lookups instead of building label sets and searching the registry three
//! times per task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use metrics::{Counter, Histogram};

/// Handles for one (queue, kind).
pub(crate) struct KindMetrics {
    /// `flowforge_task_wait_seconds{queue}`: from ready (run_at or creation) to start.
    pub wait: Histogram,
    /// `flowforge_task_processing_duration_seconds{queue,kind}`.
    pub processing: Histogram,
    succeeded: Counter,
    retried: Counter,
    dead: Counter,
    lease_lost: Counter,
    handed_back: Counter,
}

/// How an attempt ended, as counted in `flowforge_tasks_completed_total{outcome}`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Completed {
    Succeeded,
    Retried,
    Dead,
    LeaseLost,
    HandedBack,
}

impl KindMetrics {
    fn new(queue: &str, kind: &str) -> Self {
        let completed = |outcome: &'static str| {
            metrics::counter!(
                "flowforge_tasks_completed_total",
                "queue" => queue.to_owned(),
                "kind" => kind.to_owned(),
                "outcome" => outcome
            )
        };
        KindMetrics {
            wait: metrics::histogram!("flowforge_task_wait_seconds", "queue" => queue.to_owned()),
            processing: metrics::histogram!(
                "flowforge_task_processing_duration_seconds",
                "queue" => queue.to_owned(),
                "kind" => kind.to_owned()
            ),
            succeeded: completed("succeeded"),
            retried: completed("retried"),
            dead: completed("dead"),
            lease_lost: completed("lease_lost"),
            handed_back: completed("handed_back"),
        }
    }

    pub fn completed(&self, how: Completed) {
        match how {
            Completed::Succeeded => &self.succeeded,
            Completed::Retried => &self.retried,
            Completed::Dead => &self.dead,
            Completed::LeaseLost => &self.lease_lost,
            Completed::HandedBack => &self.handed_back,
        }
        .increment(1);
    }
}

/// The handles of every (queue, kind) seen so far. Kinds without a handler share the label
/// `unregistered`, so arbitrary kind names cannot grow the metric set.
#[derive(Default)]
pub(crate) struct TaskMetrics {
    by_queue: Mutex<HashMap<String, HashMap<String, Arc<KindMetrics>>>>,
}

impl TaskMetrics {
    pub fn get(&self, queue: &str, kind_label: &str) -> Arc<KindMetrics> {
        let mut by_queue = self.by_queue.lock().expect("metrics lock");
        if let Some(m) = by_queue.get(queue).and_then(|kinds| kinds.get(kind_label)) {
            return m.clone();
        }
        let m = Arc::new(KindMetrics::new(queue, kind_label));
        by_queue
            .entry(queue.to_owned())
            .or_default()
            .insert(kind_label.to_owned(), m.clone());
        m
    }
}
