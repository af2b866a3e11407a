//! `flowforge-scaler simulate`: replays an arrival trace through a model of KEDA + the HPA for
//! several autoscaling policies side by side, and reports task wait, cost and scale events.
//!
//! The model, its limits and the trace format are described in `docs/autoscaling-simulator.md`.
//!
//! - [`trace`]: the CSV trace format and its parser.
//! - [`hpa`]: the HPA's replica calculation (tolerance, stabilisation, rate policies).
//! - [`keda`]: KEDA's activation and cooldown.
//! - [`policy`]: built-in policies and policy files.
//! - [`workload`]: workers (concurrency, start-up, shutdown grace) and task durations.
//! - [`engine`]: the discrete-event simulation.
//! - [`report`] and [`chart`]: the table, the JSON and the SVG.

pub mod chart;
pub mod engine;
pub mod hpa;
pub mod keda;
pub mod policy;
pub mod report;
pub mod trace;
pub mod workload;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use flowforge_core::config::parse_duration;

pub use engine::{Outcome, Phases};
pub use policy::Policy;
pub use report::{Report, Summary};
pub use trace::Trace;
pub use workload::{DurationModel, Workload};

/// Replays an arrival trace through a model of KEDA + HPA, for several autoscaling policies side
/// by side: task wait percentiles, SLO attainment, worker-seconds and scale events, with a chart.
#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Arrival trace: CSV rows `t_seconds,count[,duration_ms[,spread_s]]`, `#` comments
    /// (format in docs/autoscaling-simulator.md; examples in scaler/traces/).
    #[arg(long, value_name = "PATH")]
    pub trace: PathBuf,

    /// Policy to simulate; repeat for several. Built in: keda-postgresql-default,
    /// keda-postgresql-tuned, flowforge-push-recommended. Default: every built-in policy, then
    /// every policy of --policies-file.
    #[arg(long = "policy", value_name = "NAME")]
    pub policies: Vec<String>,

    /// More policies, in TOML (`[[policy]]` tables) or JSON (`.json`); see
    /// scaler/traces/policies.example.toml.
    #[arg(long, value_name = "PATH")]
    pub policies_file: Option<PathBuf>,

    /// Tasks one worker runs at once (the workers' FLOWFORGE_CONCURRENCY); also the built-in
    /// policies' target tasks per worker.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: u32,

    /// Duration of tasks whose trace row has no duration_ms: `2s` (every task), `exp:2s`
    /// (exponential, mean 2 s) or `uniform:1s..3s`; random durations follow --seed.
    #[arg(long, value_name = "MODEL", default_value = "2s", value_parser = DurationModel::parse)]
    pub task_duration: DurationModel,

    /// From a worker pod's creation to its first claim (scheduling, image pull, start-up).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub startup_delay: Duration,

    /// The workers' FLOWFORGE_SHUTDOWN_GRACE: after a scale-in, in-flight tasks may run this
    /// long; what is still running is handed back to the queue and runs again elsewhere. The
    /// default is what k8s/base/worker ships (the binary's own default is 25s).
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// Replace every policy's maxReplicaCount.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_replicas: Option<u32>,

    /// Task wait SLO: a task should start within this long of becoming ready.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub slo_wait: Duration,

    /// Also write the full results (settings, summaries, scale events, time series) as JSON.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,

    /// Also draw arrivals, queue depth and replicas over time for every policy, as SVG.
    #[arg(long, value_name = "PATH")]
    pub chart: Option<PathBuf>,

    /// Seed for random task durations and for where KEDA's polls and the HPA's syncs fall.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Bad input: the trace, the policies file or a policy name. A configuration error (exit 64):
/// `run`'s error downcasts to it; any other error is a failure to write the outputs.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Runs the simulation, prints the report to stdout and writes the requested files.
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let show_progress = std::io::stderr().is_terminal();
    let report = execute(&args, show_progress)?;
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report.json())?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &args.chart {
        std::fs::write(path, chart::render(&report))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Loads the trace and policies the arguments name and simulates every policy.
/// `show_progress` draws a progress bar on stderr for long runs.
pub fn execute(args: &SimulateArgs, show_progress: bool) -> anyhow::Result<Report> {
    let trace = Trace::load(&args.trace).map_err(|e| InputError(e.to_string()))?;
    let policies = select_policies(args)?;
    let workload = Workload {
        concurrency: args.concurrency,
        task_duration: args.task_duration,
        startup_delay_ms: millis(args.startup_delay),
        shutdown_grace_ms: millis(args.shutdown_grace),
        slo_wait_ms: millis(args.slo_wait),
        seed: args.seed,
    };
    Ok(simulate_all(&trace, policies, workload, show_progress))
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

/// The policies to run, in order: those named by --policy, or all built-ins then the file's.
pub fn select_policies(args: &SimulateArgs) -> anyhow::Result<Vec<Policy>> {
    let from_file = match &args.policies_file {
        Some(path) => policy::load_policies(path).map_err(InputError)?,
        None => Vec::new(),
    };
    let mut available = Policy::builtins();
    available.extend(from_file.iter().cloned());
    let mut chosen: Vec<Policy> = if args.policies.is_empty() {
        available
    } else {
        let mut out: Vec<Policy> = Vec::new();
        for name in &args.policies {
            let Some(p) = available.iter().find(|p| &p.name == name) else {
                return Err(InputError(format!(
                    "unknown policy {name:?}; available: {}",
                    available
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .into());
            };
            if !out.iter().any(|q| q.name == p.name) {
                out.push(p.clone());
            }
        }
        out
    };
    if let Some(max) = args.max_replicas {
        for p in &mut chosen {
            p.max_replica_count = max;
            p.min_replica_count = p.min_replica_count.min(max);
        }
    }
    Ok(chosen)
}

/// Chart and time-series bucket: a round width giving at most ~1,000 buckets.
pub fn bucket_ms_for(end_ms: u64) -> u64 {
    const WIDTHS_S: [u64; 12] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800];
    let w = WIDTHS_S
        .iter()
        .copied()
        .find(|w| end_ms / (w * 1000) < 1000)
        .unwrap_or(3600);
    w * 1000
}

/// Simulates every policy over the trace (one thread per policy) and collects the report.
pub fn simulate_all(
    trace: &Trace,
    policies: Vec<Policy>,
    workload: Workload,
    show_progress: bool,
) -> Report {
    let phases = Phases::from_seed(workload.seed);
    let bucket_ms = bucket_ms_for(trace.end_ms);
    let mut report = Report::new(trace, workload.clone(), phases, bucket_ms);
    // Long runs only: a bar that flashes by for a small trace is noise.
    let long = trace.tasks.saturating_mul(policies.len() as u64) >= 200_000;
    let bar = if show_progress && long {
        let total_s = (trace.end_ms / 1000).max(1) * policies.len() as u64;
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total_s),
            indicatif::ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "simulating {msg} [{bar:30}] {percent:>3}% ({eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(format!("{} policies", policies.len()));
        Some(bar)
    } else {
        None
    };
    let cap_ms = trace.end_ms;
    let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = policies
            .iter()
            .map(|p| {
                let bar = bar.clone();
                let workload = &workload;
                scope.spawn(move || {
                    let reached = std::cell::Cell::new(0u64);
                    let progress = |now_ms: u64| {
                        if let Some(bar) = &bar {
                            let s = now_ms.min(cap_ms) / 1000;
                            let prev = reached.replace(s);
                            bar.inc(s.saturating_sub(prev));
                        }
                    };
                    engine::simulate(trace, p, workload, phases, bucket_ms, &progress)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(o) => o,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    report.runs = policies.into_iter().zip(outcomes).collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_widths_are_round_and_bounded() {
        assert_eq!(bucket_ms_for(600_000), 1_000);
        assert_eq!(bucket_ms_for(3_600_000), 5_000);
        assert_eq!(bucket_ms_for(86_400_000), 120_000);
        assert_eq!(bucket_ms_for(1), 1_000);
    }
}
