//! `flowforge-bench`: measurements that need FlowForge's own code in-process. `scripts/bench.sh`
//! runs them side by side with pgbench and graphile-worker (`make bench`).
//!
//! - `pickup`: idle-worker pickup latency, from the enqueue's commit to the handler's start.
//! - `seed`: inserts N ready `noop` tasks (not timed) for a drain measurement.
//! - `rotation`: database credentials rotated under steady load (see [`rotation`]).
//! - `activation`: scale-from-zero signal, enqueue commit → `StreamIsActive` true (see
//!   [`activation`]).
#![forbid(unsafe_code)]

mod activation;
mod rotation;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use flowforge_core::queue::{NewTask, Queue, Wakeups};
use flowforge_worker::runner::{Runner, RunnerSettings};
use flowforge_worker::{Handler, HandlerError, Registry, TaskContext};
use sqlx::postgres::PgPoolOptions;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "flowforge-bench")]
struct Cli {
    /// Database with the FlowForge schema applied.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Idle-worker pickup latency: enqueue one task at a time, time commit → handler start.
    Pickup {
        #[arg(long, default_value_t = 1000)]
        tasks: usize,
    },
    /// Insert N ready noop tasks in batches (setup, not timed).
    Seed {
        #[arg(long, default_value_t = 200_000)]
        tasks: usize,
        #[arg(long, default_value = "bench")]
        queue: String,
    },
    /// Scale-from-zero signal: enqueue into an empty queue, time commit → StreamIsActive true
    /// from the real flowforge-scaler (release binary), N times from cold.
    Activation {
        #[arg(long, default_value_t = 1000)]
        n: usize,
    },
    /// Rotate the database credentials N times under steady API load (real binaries, moto):
    /// time to the first connection with the new credentials, failed requests. Needs
    /// FLOWFORGE_TEST_DATABASE_URL (a superuser URL of the cluster) and the release binaries.
    Rotation {
        #[arg(long, default_value_t = 10)]
        rotations: usize,
        /// Refresh period of the services (the periodic path waits for it).
        #[arg(long, default_value = "5s", value_parser = flowforge_core::config::parse_duration)]
        refresh: Duration,
    },
}

struct Probe(mpsc::UnboundedSender<Instant>);

#[async_trait::async_trait]
impl Handler for Probe {
    async fn run(&self, _task: &TaskContext) -> Result<(), HandlerError> {
        let _ = self.0.send(Instant::now());
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect(&cli.database_url)
        .await
        .context("connecting")?;
    flowforge_core::db::MIGRATOR.run(&pool).await?;
    let queue = Queue::new(pool.clone());
    match cli.command {
        Command::Seed { tasks, queue: name } => {
            let started = Instant::now();
            let batch: Vec<NewTask> = (0..10_000)
                .map(|_| NewTask::new(&name, "noop", serde_json::json!({})))
                .collect();
            let mut left = tasks;
            while left > 0 {
                let n = left.min(batch.len());
                queue.enqueue_many(&batch[..n]).await?;
                left -= n;
            }
            eprintln!("seeded {tasks} tasks in {:?}", started.elapsed());
        }
        Command::Pickup { tasks } => pickup(queue, tasks).await?,
        Command::Activation { n } => activation::run(queue, &cli.database_url, n).await?,
        Command::Rotation { rotations, refresh } => {
            rotation::run(rotation::Settings { rotations, refresh }).await?
        }
    }
    Ok(())
}

async fn pickup(queue: Queue, n: usize) -> Result<()> {
    // The worker side: its own pool, as a separate worker process would have.
    let worker_pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(queue.db().pool().connect_options().as_ref().clone())
        .await?;
    let worker_queue = Queue::new(worker_pool.clone());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut registry = Registry::new();
    registry.register("probe", Probe(tx));
    let stop = CancellationToken::new();
    let wakeups = Wakeups::spawn(worker_pool.into(), vec!["pickup".into()], stop.clone());
    let runner = Runner::new(
        worker_queue,
        registry,
        RunnerSettings {
            worker_id: "bench".into(),
            queues: vec!["pickup".into()],
            concurrency: 16,
            claim_batch: 1000,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(5),
        },
    );
    let run = tokio::spawn(runner.run(wakeups, stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await; // let LISTEN settle; the worker is idle

    let mut latencies = hdrhistogram::Histogram::<u64>::new(3)?;
    let task = NewTask::new("pickup", "probe", serde_json::json!({}));
    for _ in 0..n {
        queue.enqueue_many(std::slice::from_ref(&task)).await?;
        let committed = Instant::now();
        let started = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .context("the worker did not pick the task up within 10 s")?
            .context("worker stopped")?;
        latencies.record(started.saturating_duration_since(committed).as_micros() as u64)?;
        tokio::time::sleep(Duration::from_millis(rand::random_range(1..=5))).await;
    }
    stop.cancel();
    let _ = run.await;
    let ms = |q: f64| latencies.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{}",
        serde_json::json!({
            "peer": "flowforge", "test": "pickup", "n": n,
            "p50_ms": ms(0.5), "p90_ms": ms(0.9), "p99_ms": ms(0.99),
            "max_ms": latencies.max() as f64 / 1000.0, "mean_ms": latencies.mean() / 1000.0,
        })
    );
    Ok(())
}
