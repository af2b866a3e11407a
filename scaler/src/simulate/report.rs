//! What a simulation run reports: the table on stdout and the `--json` document.

use std::fmt::Write as _;

use serde::Serialize;

use super::engine::{Outcome, Phases, ScaleEvent};
use super::policy::Policy;
use super::trace::Trace;
use super::workload::Workload;

/// The results of every policy over one trace.
#[derive(Debug, Clone)]
pub struct Report {
    pub trace_name: String,
    pub trace_tasks: u64,
    pub trace_rows: usize,
    pub trace_end_ms: u64,
    /// Shortest and longest `duration_ms` given in the trace, if any row gives one.
    pub trace_durations: Option<(u64, u64)>,
    /// Whether every task's duration comes from the trace.
    pub trace_durations_complete: bool,
    pub workload: Workload,
    pub phases: Phases,
    pub bucket_ms: u64,
    /// Tasks arriving in each chart bucket.
    pub arrivals: Vec<u64>,
    pub runs: Vec<(Policy, Outcome)>,
}

/// The headline figures of one policy (also what the golden tests compare).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub policy: String,
    pub tasks: u64,
    pub starts: u64,
    pub handed_back: u64,
    pub wait_p50_s: f64,
    pub wait_p95_s: f64,
    pub wait_p99_s: f64,
    pub wait_max_s: f64,
    pub wait_mean_s: f64,
    /// Share of task starts within the wait SLO, 0..1.
    pub within_slo: f64,
    pub worker_seconds: f64,
    /// Share of worker slots (pods × concurrency) that ran tasks.
    pub busy: f64,
    pub scale_ups: usize,
    pub scale_downs: usize,
    pub max_replicas: u32,
    /// Times a task arrived with no replicas and no work (a scale from zero).
    pub cold_starts: usize,
    /// Mean wait of the first task of each cold start.
    pub cold_start_wait_mean_s: f64,
    pub cold_start_wait_max_s: f64,
    pub scale_ins_below_running: u32,
    pub end_s: f64,
    pub settled: bool,
    /// Tasks not finished when the run was cut off.
    pub unfinished: u64,
}

impl Report {
    pub fn new(trace: &Trace, workload: Workload, phases: Phases, bucket_ms: u64) -> Report {
        let buckets = (trace.end_ms / bucket_ms + 1) as usize;
        let mut arrivals = vec![0u64; buckets];
        for a in &trace.arrivals {
            arrivals[(a.at_ms / bucket_ms) as usize] += u64::from(a.count);
        }
        let with_count = trace.rows.iter().filter(|r| r.count > 0);
        let durations = with_count.clone().filter_map(|r| r.duration_ms);
        let trace_durations = durations.clone().min().zip(durations.max());
        let trace_durations_complete = with_count.clone().all(|r| r.duration_ms.is_some());
        Report {
            trace_durations,
            trace_durations_complete,
            trace_name: trace.name.clone(),
            trace_tasks: trace.tasks,
            trace_rows: trace.rows.len(),
            trace_end_ms: trace.end_ms,
            workload,
            phases,
            bucket_ms,
            arrivals,
            runs: Vec::new(),
        }
    }

    pub fn summaries(&self) -> Vec<Summary> {
        self.runs
            .iter()
            .map(|(_, o)| summarize(o, self.workload.concurrency))
            .collect()
    }

    /// Where task durations come from, e.g. `task duration 2s` or `task durations from the trace
    /// (10s to 30s)`.
    pub fn duration_source(&self) -> String {
        let model = self.workload.task_duration;
        let range = |lo: u64, hi: u64| {
            if lo == hi {
                fmt_ms(lo)
            } else {
                format!("{} to {}", fmt_ms(lo), fmt_ms(hi))
            }
        };
        match (self.trace_durations, self.trace_durations_complete) {
            (Some((lo, hi)), true) => format!("task durations from the trace ({})", range(lo, hi)),
            (Some((lo, hi)), false) => format!(
                "task duration {model} where the trace gives none (some rows: {})",
                range(lo, hi)
            ),
            (None, _) => format!("task duration {model}"),
        }
    }

    /// Highest arrival rate over one chart bucket, per second.
    pub fn peak_arrival_rate(&self) -> f64 {
        let peak = self.arrivals.iter().copied().max().unwrap_or(0);
        peak as f64 * 1000.0 / self.bucket_ms as f64
    }

    /// The human-readable report: settings, policies, the results table and notes.
    pub fn table(&self) -> String {
        let w = &self.workload;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "trace     {}: {} tasks in {} rows over {} (peak {}/s over {})",
            self.trace_name,
            fmt_int(self.trace_tasks),
            fmt_int(self.trace_rows as u64),
            fmt_clock(self.trace_end_ms),
            fmt_rate(self.peak_arrival_rate()),
            fmt_ms(self.bucket_ms)
        );
        let _ = writeln!(
            s,
            "workers   concurrency {}, {}, start-up {}, shutdown grace {}",
            w.concurrency,
            self.duration_source(),
            fmt_ms(w.startup_delay_ms),
            fmt_ms(w.shutdown_grace_ms)
        );
        let _ = writeln!(
            s,
            "SLO       a task starts within {} of becoming ready",
            fmt_ms(w.slo_wait_ms)
        );
        let _ = writeln!(
            s,
            "seed      {} (KEDA polls {:.2} and HPA syncs {:.2} of a period after the start)",
            w.seed, self.phases.poll, self.phases.hpa
        );
        let _ = writeln!(s);
        for (p, _) in &self.runs {
            s.push_str(&p.describe(w.concurrency));
        }
        let _ = writeln!(s);

        let summaries = self.summaries();
        let name_w = summaries
            .iter()
            .map(|x| x.policy.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let slo_head = format!("≤{}", fmt_ms(w.slo_wait_ms));
        let _ = writeln!(
            s,
            "{:<name_w$}  {:>9}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>11}  {:>11}  {:>5}  {:>4}  {:>5}  {:>4}",
            "policy",
            "tasks",
            "wait p50",
            "p95",
            "p99",
            "max",
            slo_head,
            "from zero",
            "worker-s",
            "busy",
            "ups",
            "downs",
            "max"
        );
        for x in &summaries {
            let _ = writeln!(
                s,
                "{:<name_w$}  {:>9}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>11}  {:>11}  {:>5}  {:>4}  {:>5}  {:>4}",
                x.policy,
                fmt_int(x.tasks),
                fmt_secs(x.wait_p50_s),
                fmt_secs(x.wait_p95_s),
                fmt_secs(x.wait_p99_s),
                fmt_secs(x.wait_max_s),
                format!("{:.2}%", x.within_slo * 100.0),
                if x.cold_starts == 0 {
                    "-".to_owned()
                } else {
                    format!("{}× {}", x.cold_starts, fmt_secs(x.cold_start_wait_mean_s))
                },
                fmt_int(x.worker_seconds.round() as u64),
                format!("{:.0}%", x.busy * 100.0),
                x.scale_ups,
                x.scale_downs,
                x.max_replicas
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "wait: from ready to started, for every start (re-runs too); {slo_head}: share of starts \
             within the SLO;\n\
             from zero: scale-ups from zero replicas × mean wait of the first task each served;\n\
             worker-s: pod time from creation to exit (start-up and drain included); busy: share \
             of worker slots\n\
             running tasks; ups/downs: replica changes by KEDA or the HPA; max: most replicas."
        );
        for x in &summaries {
            if x.scale_ins_below_running > 0 {
                let _ = writeln!(
                    s,
                    "note: {} set fewer replicas than its running tasks need {} time(s).",
                    x.policy,
                    fmt_int(u64::from(x.scale_ins_below_running))
                );
            }
            if x.handed_back > 0 {
                let _ = writeln!(
                    s,
                    "note: {}: {} task(s) were still running when a removed worker's shutdown \
                     grace ({}) ended; they went back to the queue and ran again.",
                    x.policy,
                    fmt_int(x.handed_back),
                    fmt_ms(w.shutdown_grace_ms)
                );
            }
            if !x.settled {
                let _ = writeln!(
                    s,
                    "note: {} had not finished the work when the run was cut off at {}, {} after \
                     the trace: {} task(s) unfinished (waits of tasks still queued count up to \
                     the cut-off).",
                    x.policy,
                    fmt_clock((x.end_s * 1000.0) as u64),
                    fmt_clock(super::engine::SETTLE_LIMIT_MS),
                    fmt_int(x.unfinished)
                );
            }
        }
        s
    }

    /// The `--json` document: settings, summaries, scale events and the time series.
    pub fn json(&self) -> serde_json::Value {
        let bucket_s = self.bucket_ms as f64 / 1000.0;
        let policies: Vec<serde_json::Value> = self
            .runs
            .iter()
            .map(|(p, o)| {
                let events: Vec<JsonEvent> = o.scale_events.iter().map(JsonEvent::from).collect();
                serde_json::json!({
                    "settings": p,
                    "summary": summarize(o, self.workload.concurrency),
                    "scale_events": events,
                    "series": {
                        "ready_max": o.series.ready,
                        "running_max": o.series.running,
                        "replicas_max": o.series.replicas,
                        "pods_max": o.series.pods,
                    },
                })
            })
            .collect();
        serde_json::json!({
            "trace": {
                "name": self.trace_name,
                "tasks": self.trace_tasks,
                "rows": self.trace_rows,
                "end_s": self.trace_end_ms as f64 / 1000.0,
            },
            "workload": self.workload,
            "phases": self.phases,
            "bucket_s": bucket_s,
            "arrivals_per_bucket": self.arrivals,
            "policies": policies,
        })
    }
}

#[derive(Serialize)]
struct JsonEvent {
    at_s: f64,
    from: u32,
    to: u32,
    by: super::engine::Actor,
    running_tasks: u64,
}

impl From<&ScaleEvent> for JsonEvent {
    fn from(e: &ScaleEvent) -> Self {
        JsonEvent {
            at_s: e.at_ms as f64 / 1000.0,
            from: e.from,
            to: e.to,
            by: e.by,
            running_tasks: e.running_tasks,
        }
    }
}

pub fn summarize(o: &Outcome, concurrency: u32) -> Summary {
    let s = |ms: u64| ms as f64 / 1000.0;
    let slots = o.pod_ms as f64 * f64::from(concurrency);
    Summary {
        policy: o.policy.clone(),
        tasks: o.tasks,
        starts: o.starts,
        handed_back: o.handed_back,
        wait_p50_s: s(o.wait_quantile_ms(0.50)),
        wait_p95_s: s(o.wait_quantile_ms(0.95)),
        wait_p99_s: s(o.wait_quantile_ms(0.99)),
        wait_max_s: s(o.wait_max_ms()),
        wait_mean_s: o.wait_mean_ms() / 1000.0,
        within_slo: o.slo_ratio(),
        worker_seconds: o.pod_ms as f64 / 1000.0,
        busy: if slots > 0.0 {
            o.busy_task_ms as f64 / slots
        } else {
            0.0
        },
        scale_ups: o.scale_ups(),
        scale_downs: o.scale_downs(),
        max_replicas: o.max_replicas,
        cold_starts: o.cold_start_waits.len(),
        cold_start_wait_mean_s: if o.cold_start_waits.is_empty() {
            0.0
        } else {
            o.cold_start_waits.iter().sum::<u64>() as f64 / o.cold_start_waits.len() as f64 / 1000.0
        },
        cold_start_wait_max_s: s(o.cold_start_waits.iter().copied().max().unwrap_or(0)),
        scale_ins_below_running: o.scale_ins_below_running,
        end_s: s(o.end_ms),
        settled: o.settled,
        unfinished: o.unfinished,
    }
}

/// `250ms`, `2s`, `1.5s`, `300s`.
pub fn fmt_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{}s", super::trace::fmt_seconds(ms))
    }
}

/// Seconds with one decimal: `12.3s`.
pub fn fmt_secs(s: f64) -> String {
    format!("{s:.1}s")
}

/// `6h00m`, `12m30s`, `45s`.
pub fn fmt_clock(ms: u64) -> String {
    let total = ms / 1000;
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{}s", super::trace::fmt_seconds(ms))
    }
}

/// `1,234,567`.
pub fn fmt_int(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn fmt_rate(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_ms(250), "250ms");
        assert_eq!(fmt_ms(2000), "2s");
        assert_eq!(fmt_ms(1500), "1.5s");
        assert_eq!(fmt_clock(6 * 3_600_000), "6h00m");
        assert_eq!(fmt_clock(750_000), "12m30s");
        assert_eq!(fmt_clock(45_500), "45.5s");
        assert_eq!(fmt_int(0), "0");
        assert_eq!(fmt_int(999), "999");
        assert_eq!(fmt_int(1_234_567), "1,234,567");
        assert_eq!(fmt_secs(12.345), "12.3s");
    }
}
