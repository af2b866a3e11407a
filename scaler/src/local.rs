//! Local autoscaling: plays KEDA + HPA against the scaler's own gRPC answers and runs real
//! `flowforge-worker` processes, 0..N, so a laptop (`make up`) shows scale-from-zero and back.
//!
//! Like KEDA with an `external-push` trigger: a `StreamIsActive` stream activates at once (0 →
//! 1 worker as soon as work arrives), `GetMetrics` is read every polling interval and the
//! replica count follows the HPA formula `ceil(metric / targetTasksPerWorker)` within
//! [min, max], scale-in waits for a stabilisation window (the highest recommendation in it
//! wins), and after `cooldown` without activity the count goes to zero. Scale-in sends SIGTERM:
//! the worker drains (running tasks finish, the rest are handed back) and exits.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use flowforge_core::config::{parse_duration, parse_names};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::proto::external_scaler_client::ExternalScalerClient;
use crate::proto::{GetMetricsRequest, ScaledObjectRef};

/// Settings of the local autoscaler (flags of `flowforge-scaler local`).
#[derive(Debug, Clone, clap::Args)]
pub struct LocalArgs {
    /// The worker binary to run (default: flowforge-worker next to this binary).
    #[arg(long, env = "FLOWFORGE_LOCAL_WORKER_BIN")]
    pub worker_bin: Option<PathBuf>,

    /// Queues the workers claim from, and whose depth drives them.
    #[arg(long, env = "FLOWFORGE_QUEUES", default_value = "default", value_parser = parse_names)]
    pub queues: std::vec::Vec<String>,

    /// Ready + running tasks per worker (the ScaledObject's targetTasksPerWorker).
    #[arg(
        long,
        env = "FLOWFORGE_LOCAL_TARGET_TASKS_PER_WORKER",
        default_value_t = 32.0
    )]
    pub target_tasks_per_worker: f64,

    #[arg(long, env = "FLOWFORGE_LOCAL_MIN_WORKERS", default_value_t = 0)]
    pub min_workers: usize,

    #[arg(long, env = "FLOWFORGE_LOCAL_MAX_WORKERS", default_value_t = 4)]
    pub max_workers: usize,

    /// How often the metric is read (KEDA's pollingInterval).
    #[arg(long, env = "FLOWFORGE_LOCAL_POLLING_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub polling_interval: Duration,

    /// Time without activity before scaling to zero (KEDA's cooldownPeriod).
    #[arg(long, env = "FLOWFORGE_LOCAL_COOLDOWN", default_value = "30s", value_parser = parse_duration)]
    pub cooldown: Duration,

    /// Scale-in waits this long: the highest count recommended within it wins (the HPA's
    /// scale-down stabilisation window).
    #[arg(long, env = "FLOWFORGE_LOCAL_SCALE_DOWN_STABILIZATION", default_value = "10s", value_parser = parse_duration)]
    pub scale_down_stabilization: Duration,

    /// Worker i's admin server listens on 127.0.0.1:(this + i); 0 lets each pick a free port.
    #[arg(
        long,
        env = "FLOWFORGE_LOCAL_WORKER_ADMIN_BASE_PORT",
        default_value_t = 9180
    )]
    pub worker_admin_base_port: u16,
}

impl LocalArgs {
    pub fn validate(&self) -> Result<(), String> {
        if self.target_tasks_per_worker <= 0.0 {
            return Err("--target-tasks-per-worker must be greater than 0".into());
        }
        if self.max_workers == 0 || self.min_workers > self.max_workers {
            return Err("--max-workers must be at least 1 and at least --min-workers".into());
        }
        let bin = self.worker_bin()?;
        if !bin.is_file() {
            return Err(format!(
                "worker binary {} not found (build it, or set --worker-bin / FLOWFORGE_LOCAL_WORKER_BIN)",
                bin.display()
            ));
        }
        Ok(())
    }

    /// The worker binary: --worker-bin, or flowforge-worker next to this binary.
    pub fn worker_bin(&self) -> Result<PathBuf, String> {
        if let Some(p) = &self.worker_bin {
            return Ok(p.clone());
        }
        let exe = std::env::current_exe().map_err(|e| format!("cannot locate this binary: {e}"))?;
        let dir = exe
            .parent()
            .ok_or_else(|| format!("{} has no directory", exe.display()))?;
        Ok(dir.join("flowforge-worker"))
    }
}

/// The replica count the HPA would set for `metric` (External metric, AverageValue target).
pub fn desired(metric: f64, target: f64, min: usize, max: usize) -> usize {
    let raw = (metric / target).ceil().max(0.0) as usize;
    raw.clamp(min, max)
}

/// Scale-in stabilisation: the highest recommendation within the window.
struct Stabilizer {
    window: Duration,
    history: VecDeque<(Instant, usize)>,
}

impl Stabilizer {
    fn recommend(&mut self, now: Instant, count: usize) -> usize {
        self.history.push_back((now, count));
        while self
            .history
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > self.window)
        {
            self.history.pop_front();
        }
        self.history.iter().map(|(_, c)| *c).max().unwrap_or(count)
    }
}

struct Worker {
    slot: usize,
    child: Child,
    /// The write end of the worker's stdin, never written: it closes when this process ends.
    _lifeline: Option<tokio::process::ChildStdin>,
    draining: bool,
}

/// Runs the local autoscaler against the scaler at `grpc` until `stop`; then stops every worker
/// (SIGTERM, waiting for their drain).
pub async fn run(grpc: String, args: LocalArgs, stop: CancellationToken) -> Result<()> {
    let worker_bin = args.worker_bin().map_err(anyhow::Error::msg)?;
    let so = ScaledObjectRef {
        name: "local".into(),
        namespace: "local".into(),
        scaler_metadata: HashMap::from([
            ("queues".to_owned(), args.queues.join(",")),
            (
                "targetTasksPerWorker".to_owned(),
                args.target_tasks_per_worker.to_string(),
            ),
        ]),
    };
    let mut workers: Vec<Worker> = Vec::new();
    let mut stabilizer = Stabilizer {
        window: args.scale_down_stabilization,
        history: VecDeque::new(),
    };
    let mut last_active: Option<Instant> = None;
    tracing::info!(queues = ?args.queues, max = args.max_workers, worker = %worker_bin.display(),
        "local autoscaler started: workers follow the queue");
    'connect: loop {
        let mut client = loop {
            match ExternalScalerClient::connect(grpc.clone()).await {
                Ok(c) => break c,
                Err(err) => {
                    tracing::debug!(error = %err, "scaler not reachable yet");
                    tokio::select! {
                        _ = stop.cancelled() => break 'connect,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
            }
        };
        let mut stream = match client.stream_is_active(so.clone()).await {
            Ok(s) => s.into_inner(),
            Err(err) => {
                tracing::warn!(error = %err, "StreamIsActive failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut tick = tokio::time::interval(args.polling_interval);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break 'connect,
                message = stream.message() => match message {
                    // A push: re-evaluate now instead of at the next tick.
                    Ok(Some(m)) => {
                        if m.result {
                            last_active = Some(Instant::now());
                        }
                    }
                    _ => {
                        tracing::warn!("the activity stream ended; reconnecting");
                        continue 'connect;
                    }
                },
                _ = tick.tick() => {}
            }
            reap(&mut workers);
            let metric = match client
                .get_metrics(GetMetricsRequest {
                    scaled_object_ref: Some(so.clone()),
                    metric_name: String::new(),
                })
                .await
            {
                Ok(r) => r
                    .into_inner()
                    .metric_values
                    .first()
                    .map_or(0.0, |v| v.metric_value_float),
                Err(err) => {
                    tracing::warn!(error = %err, "GetMetrics failed; keeping the workers");
                    continue;
                }
            };
            let now = Instant::now();
            if metric > 0.0 {
                last_active = Some(now);
            }
            let active = last_active.is_some_and(|t| now.duration_since(t) < args.cooldown);
            let min = if active {
                args.min_workers.max(1)
            } else {
                args.min_workers
            };
            let want = desired(metric, args.target_tasks_per_worker, min, args.max_workers);
            // Scale-out at once, scale-in only as far as the stabilisation window allows.
            let running = workers.iter().filter(|w| !w.draining).count();
            let stabilized = stabilizer.recommend(now, want);
            let target = if want >= running {
                want
            } else {
                stabilized.min(running)
            };
            scale(&mut workers, target, &worker_bin, &args)?;
            // What the HPA would set (after stabilisation) and what runs, as on a cluster
            // kube-state-metrics reports desired and available replicas.
            metrics::gauge!("flowforge_local_workers_desired").set(target as f64);
            metrics::gauge!("flowforge_local_workers")
                .set(workers.iter().filter(|w| !w.draining).count() as f64);
        }
    }
    // Stop: every worker drains.
    for w in workers.iter_mut() {
        terminate(w);
    }
    for mut w in workers {
        let _ = w.child.wait().await;
    }
    metrics::gauge!("flowforge_local_workers").set(0.0);
    metrics::gauge!("flowforge_local_workers_desired").set(0.0);
    Ok(())
}

fn scale(
    workers: &mut Vec<Worker>,
    target: usize,
    bin: &std::path::Path,
    args: &LocalArgs,
) -> Result<()> {
    let live: Vec<usize> = workers
        .iter()
        .filter(|w| !w.draining)
        .map(|w| w.slot)
        .collect();
    if live.len() < target {
        for _ in live.len()..target {
            let slot = (0..)
                .find(|s| !workers.iter().any(|w| w.slot == *s))
                .unwrap_or(0);
            let port = match args.worker_admin_base_port {
                0 => 0,
                base => base as usize + slot,
            };
            // The worker drains when its stdin closes: it cannot outlive this process, even
            // one killed with SIGKILL (the pipe closes with it).
            let mut child = Command::new(bin)
                .env("FLOWFORGE_ADMIN_ADDR", format!("127.0.0.1:{port}"))
                .env("FLOWFORGE_QUEUES", args.queues.join(","))
                .env("FLOWFORGE_STOP_ON_STDIN_EOF", "true")
                .stdin(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {}", bin.display()))?;
            tracing::info!(
                slot,
                pid = child.id(),
                workers = workers.len() + 1,
                "scaled out: worker started"
            );
            let lifeline = child.stdin.take();
            workers.push(Worker {
                slot,
                child,
                _lifeline: lifeline,
                draining: false,
            });
        }
    } else if live.len() > target {
        // The newest go first.
        let mut excess = live.len() - target;
        for w in workers.iter_mut().rev() {
            if excess == 0 {
                break;
            }
            if !w.draining {
                terminate(w);
                excess -= 1;
                tracing::info!(slot = w.slot, "scaled in: worker draining (SIGTERM)");
            }
        }
    }
    Ok(())
}

fn terminate(w: &mut Worker) {
    w.draining = true;
    if let Some(pid) = w.child.id() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

/// Forgets workers that exited (a drained one, or one that crashed: it is replaced at the next
/// tick).
fn reap(workers: &mut Vec<Worker>) {
    workers.retain_mut(|w| match w.child.try_wait() {
        Ok(Some(status)) => {
            if w.draining {
                tracing::info!(slot = w.slot, %status, "worker drained and exited");
            } else {
                tracing::warn!(slot = w.slot, %status, "worker exited on its own; it will be replaced");
            }
            false
        }
        _ => true,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_follows_the_hpa_formula_within_bounds() {
        assert_eq!(desired(0.0, 32.0, 0, 4), 0);
        assert_eq!(desired(1.0, 32.0, 0, 4), 1);
        assert_eq!(desired(64.0, 32.0, 0, 4), 2);
        assert_eq!(desired(65.0, 32.0, 0, 4), 3);
        assert_eq!(desired(1000.0, 32.0, 0, 4), 4);
        assert_eq!(desired(0.0, 32.0, 1, 4), 1);
    }

    #[test]
    fn scale_in_waits_for_the_stabilization_window() {
        let mut s = Stabilizer {
            window: Duration::from_secs(10),
            history: VecDeque::new(),
        };
        let t0 = Instant::now();
        assert_eq!(s.recommend(t0, 4), 4);
        assert_eq!(s.recommend(t0 + Duration::from_secs(5), 1), 4);
        assert_eq!(s.recommend(t0 + Duration::from_secs(11), 1), 1);
    }
}
