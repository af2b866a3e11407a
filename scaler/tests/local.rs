//! `flowforge-scaler local`: a burst of tasks scales real worker processes from 0 to N, every
//! task completes, and the workers go back to 0 after the cooldown.

use std::time::Duration;

use flowforge_core::queue::{NewTask, Queue};
use flowforge_testkit::{bin_path, free_port, wait_for_http, Child};
use nix::sys::signal::Signal;
use sqlx::postgres::PgPoolOptions;

async fn scaler_metric(admin: u16, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://127.0.0.1:{admin}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_burst_scales_workers_from_zero_to_n_and_back_to_zero() {
    let url = flowforge_testkit::fresh_database().await.unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .unwrap();
    flowforge_core::db::MIGRATOR.run(&pool).await.unwrap();
    let queue = Queue::new(pool.clone());
    // The scaler runs flowforge-worker from its own directory.
    if let Err(err) = bin_path("flowforge-worker") {
        panic!("{err:#}");
    }
    let admin = free_port();
    let mut scaler = Child::spawn(
        &bin_path("flowforge-scaler").unwrap(),
        &[
            "local",
            "--queues",
            "burst",
            "--target-tasks-per-worker",
            "5",
            "--max-workers",
            "3",
            "--polling-interval",
            "300ms",
            "--cooldown",
            "2s",
            "--scale-down-stabilization",
            "1s",
            "--worker-admin-base-port",
            "0",
        ],
        &[
            ("DATABASE_URL", url.clone()),
            ("FLOWFORGE_GRPC_ADDR", format!("127.0.0.1:{}", free_port())),
            ("FLOWFORGE_ADMIN_ADDR", format!("127.0.0.1:{admin}")),
            ("FLOWFORGE_LOG_FORMAT", "text".into()),
            ("FLOWFORGE_SHUTDOWN_GRACE", "5s".into()),
        ],
    )
    .unwrap();
    wait_for_http(
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let workers = || async { scaler_metric(admin, "flowforge_local_workers").await };
    wait_until(
        "no worker while the queue is empty",
        Duration::from_secs(10),
        || async { workers().await == Some(0.0) },
    )
    .await;

    // 60 tasks of 200 ms: ceil(60 / 5) = 12 wanted, 3 at most.
    let burst: Vec<NewTask> = (0..60)
        .map(|_| NewTask::new("burst", "sleep", serde_json::json!({"ms": 200})))
        .collect();
    let ids: Vec<uuid::Uuid> = queue
        .enqueue_many(&burst)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.task.id)
        .collect();
    let mut peak = 0.0f64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        peak = peak.max(workers().await.unwrap_or(0.0));
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM flowforge.task_history WHERE status = 'succeeded' AND id = ANY($1)",
        )
        .bind(&ids)
        .fetch_one(&pool)
        .await
        .unwrap();
        if done == ids.len() as i64 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{done} of 60 tasks succeeded within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        peak >= 2.0,
        "the burst scaled out to several workers (peak {peak})"
    );
    assert!(peak <= 3.0, "never above --max-workers (peak {peak})");

    wait_until(
        "back to zero workers after the cooldown",
        Duration::from_secs(60),
        || async {
            let sessions: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'flowforge-worker' \
             AND datname = current_database()",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
            workers().await == Some(0.0) && sessions == 0
        },
    )
    .await;

    scaler.signal(Signal::SIGTERM).unwrap();
    assert_eq!(
        scaler.wait_exit(Duration::from_secs(30)).await.unwrap(),
        Some(0)
    );
}
