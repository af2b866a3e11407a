//! Scale-from-zero signal: from an enqueue's commit into an empty queue to `true` arriving on a
//! KEDA-style `StreamIsActive` stream of the real `flowforge-scaler` (release binary next to
//! this one), repeated from cold: after each activation the task is finished and the stream is
//! waited on until it says `false` again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use flowforge_core::queue::{NewTask, Queue};
use flowforge_scaler::proto::external_scaler_client::ExternalScalerClient;
use flowforge_scaler::proto::{IsActiveResponse, ScaledObjectRef};
use flowforge_testkit::{bin_path, free_port, wait_for_http, Child};
use tonic::Streaming;

const QUEUE: &str = "activation";

pub async fn run(queue: Queue, database_url: &str, n: usize) -> Result<()> {
    let grpc = free_port();
    let admin = free_port();
    let _scaler = Child::spawn(
        &bin_path("flowforge-scaler")?,
        &[],
        &[
            ("DATABASE_URL", database_url.to_owned()),
            ("FLOWFORGE_GRPC_ADDR", format!("127.0.0.1:{grpc}")),
            ("FLOWFORGE_ADMIN_ADDR", format!("127.0.0.1:{admin}")),
            // Only for going back to `false` between runs; `true` is pushed.
            ("FLOWFORGE_SCALER_POLL_INTERVAL", "100ms".into()),
            ("RUST_LOG", "warn".into()),
        ],
    )?;
    wait_for_http(
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(30),
    )
    .await?;
    let mut client = ExternalScalerClient::connect(format!("http://127.0.0.1:{grpc}")).await?;
    let so = ScaledObjectRef {
        name: "bench".into(),
        namespace: "bench".into(),
        scaler_metadata: HashMap::from([("queues".to_owned(), QUEUE.to_owned())]),
    };
    let mut stream = client.stream_is_active(so).await?.into_inner();
    expect(&mut stream, false).await?;

    let mut latencies = hdrhistogram::Histogram::<u64>::new(3)?;
    let task = NewTask::new(QUEUE, "noop", serde_json::json!({}));
    for _ in 0..n {
        queue.enqueue_many(std::slice::from_ref(&task)).await?;
        let committed = Instant::now();
        expect(&mut stream, true).await?;
        latencies.record(committed.elapsed().as_micros() as u64)?;
        let claimed = queue
            .claim(QUEUE, 10, "bench", Duration::from_secs(60))
            .await?;
        let done: Vec<_> = claimed.iter().map(|t| (t.id, t.lease_id)).collect();
        queue.complete_many(&done).await?;
        expect(&mut stream, false).await?;
        tokio::time::sleep(Duration::from_millis(rand::random_range(1..=5))).await;
    }
    let ms = |q: f64| latencies.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{}",
        serde_json::json!({
            "test": "activation", "n": n,
            "p50_ms": ms(0.5), "p90_ms": ms(0.9), "p99_ms": ms(0.99),
            "max_ms": latencies.max() as f64 / 1000.0, "mean_ms": latencies.mean() / 1000.0,
        })
    );
    Ok(())
}

async fn expect(stream: &mut Streaming<IsActiveResponse>, want: bool) -> Result<()> {
    let message = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .with_context(|| format!("no StreamIsActive message ({want}) within 10 s"))??
        .context("the scaler closed the stream")?;
    if message.result != want {
        bail!("StreamIsActive said {}, expected {want}", message.result);
    }
    Ok(())
}
