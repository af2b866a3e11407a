//! KEDA's external scaler contract, called with a tonic client against the real scaler and a
//! real database: metadata errors, the metric for mixed task states, pushed activation for
//! several streams, after a database restart, and TLS with a client certificate.

use std::collections::HashMap;
use std::time::Duration;

use clap::Parser;
use flowforge_core::queue::{FailOutcome, NewTask, Queue};
use flowforge_scaler::app::Application;
use flowforge_scaler::config::Config;
use flowforge_scaler::proto::external_scaler_client::ExternalScalerClient;
use flowforge_scaler::proto::{GetMetricsRequest, IsActiveResponse, ScaledObjectRef};
use flowforge_testkit::{PgCluster, TestCa};
use sqlx::postgres::PgPoolOptions;
use tokio::sync::oneshot;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Streaming};

/// A scaler on `db_url` (migrated here), with `extra` flags; stopped when dropped.
struct Scaler {
    grpc: std::net::SocketAddr,
    queue: Queue,
    _stop: oneshot::Sender<()>,
}

async fn migrated(url: &str) -> Queue {
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(url)
        .await
        .expect("connecting to the test database");
    flowforge_core::db::MIGRATOR.run(&pool).await.unwrap();
    Queue::new(pool)
}

async fn start(db_url: &str, extra: &[&str]) -> Scaler {
    let queue = migrated(db_url).await;
    let mut args = vec![
        "flowforge-scaler",
        "--grpc-addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
        "--database-url",
        db_url,
        "--log-format",
        "text",
    ];
    if !extra.contains(&"--poll-interval") {
        args.extend_from_slice(&["--poll-interval", "200ms"]);
    }
    args.extend_from_slice(extra);
    let config = Config::try_parse_from(&args).expect("test configuration parses");
    config.validate().expect("test configuration is valid");
    let app = Application::build(config)
        .await
        .expect("building the scaler");
    let grpc = app.grpc_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        app.run_until_stopped(async move {
            let _ = stopped.await;
        })
        .await
        .expect("the scaler failed");
    });
    Scaler {
        grpc,
        queue,
        _stop: stop,
    }
}

async fn client(addr: std::net::SocketAddr) -> ExternalScalerClient<Channel> {
    ExternalScalerClient::connect(format!("http://{addr}"))
        .await
        .expect("connecting to the scaler")
}

fn scaled_object(meta: &[(&str, &str)]) -> ScaledObjectRef {
    ScaledObjectRef {
        name: "workers".into(),
        namespace: "flowforge".into(),
        scaler_metadata: meta
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<HashMap<_, _>>(),
    }
}

/// A `StreamIsActive` stream opened on its own connection, as KEDA opens one.
async fn open_stream(
    addr: std::net::SocketAddr,
    so: ScaledObjectRef,
) -> Streaming<IsActiveResponse> {
    client(addr)
        .await
        .stream_is_active(so)
        .await
        .expect("StreamIsActive opens")
        .into_inner()
}

async fn next(stream: &mut Streaming<IsActiveResponse>) -> bool {
    tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("a StreamIsActive message within 20 s")
        .expect("the stream is healthy")
        .expect("the stream is open")
        .result
}

fn task(queue: &str) -> NewTask {
    NewTask::new(queue, "noop", serde_json::json!({}))
}

#[tokio::test]
async fn metric_spec_and_metadata_errors() {
    let url = flowforge_testkit::fresh_database().await.unwrap();
    let scaler = start(&url, &[]).await;
    let mut c = client(scaler.grpc).await;
    let spec = c
        .get_metric_spec(scaled_object(&[
            ("queues", "emails,default"),
            ("targetTasksPerWorker", "8"),
        ]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(spec.metric_specs.len(), 1);
    assert_eq!(
        spec.metric_specs[0].metric_name,
        "flowforge-tasks-default-emails"
    );
    assert_eq!(spec.metric_specs[0].target_size_float, 8.0);
    assert_eq!(spec.metric_specs[0].target_size, 8);

    for (meta, key) in [
        (vec![], "queues"),
        (vec![("queues", "Not A Queue")], "queues"),
        (
            vec![("queues", "q"), ("targetTasksPerWorker", "0")],
            "targetTasksPerWorker",
        ),
        (
            vec![("queues", "q"), ("activationTasks", "x")],
            "activationTasks",
        ),
    ] {
        let status = c.is_active(scaled_object(&meta)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{meta:?}");
        assert!(
            status.message().contains(key),
            "{meta:?}: {}",
            status.message()
        );
        assert!(
            status.message().contains("flowforge/workers"),
            "{}",
            status.message()
        );
        let status = c
            .get_metrics(GetMetricsRequest {
                scaled_object_ref: Some(scaled_object(&meta)),
                metric_name: "x".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let status = c.get_metric_spec(scaled_object(&meta)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains(key), "{}", status.message());
        // A stream with bad metadata is refused before it opens.
        let status = c.stream_is_active(scaled_object(&meta)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains(key), "{}", status.message());
    }
    let status = c
        .get_metrics(GetMetricsRequest {
            scaled_object_ref: None,
            metric_name: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn the_metric_counts_ready_and_running_tasks_only() {
    let url = flowforge_testkit::fresh_database().await.unwrap();
    let scaler = start(&url, &[]).await;
    let q = &scaler.queue;
    // 5 ready, 3 scheduled for later, 2 of the ready claimed (running), 1 dead, and tasks of
    // another queue that must not count.
    let mut batch: Vec<NewTask> = (0..5).map(|_| task("metric")).collect();
    for _ in 0..3 {
        let mut t = task("metric");
        t.run_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
        batch.push(t);
    }
    batch.extend((0..4).map(|_| task("other")));
    q.enqueue_many(&batch).await.unwrap();
    let claimed = q
        .claim("metric", 3, "test", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let dead = &claimed[2];
    q.fail(dead.id, dead.lease_id, "boom", false).await.unwrap();

    let mut c = client(scaler.grpc).await;
    let so = scaled_object(&[("queues", "metric"), ("targetTasksPerWorker", "2")]);
    let metrics = c
        .get_metrics(GetMetricsRequest {
            scaled_object_ref: Some(so.clone()),
            metric_name: "flowforge-tasks-metric".into(),
        })
        .await
        .unwrap()
        .into_inner();
    // ready 2 (5 - 3 claimed) + running 2 (3 claimed - 1 dead) = 4.
    assert_eq!(metrics.metric_values[0].metric_value_float, 4.0);
    assert_eq!(metrics.metric_values[0].metric_value, 4);
    assert!(c.is_active(so).await.unwrap().into_inner().result);
    let both = scaled_object(&[("queues", "metric,other")]);
    let metrics = c
        .get_metrics(GetMetricsRequest {
            scaled_object_ref: Some(both),
            metric_name: "m".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metrics.metric_values[0].metric_value_float, 8.0);
    // Activation threshold: active only above it.
    let so = scaled_object(&[("queues", "metric"), ("activationTasks", "4")]);
    assert!(!c.is_active(so).await.unwrap().into_inner().result);
}

#[tokio::test]
async fn two_streams_get_true_when_an_empty_queue_gets_work() {
    let url = flowforge_testkit::fresh_database().await.unwrap();
    // A poll far away: only the notification can deliver `true` in time.
    let scaler = start(&url, &["--poll-interval", "1h"]).await;
    let so = scaled_object(&[("queues", "push")]);
    let mut a = open_stream(scaler.grpc, so.clone()).await;
    let mut b = open_stream(scaler.grpc, so).await;
    assert!(!next(&mut a).await, "an empty queue is inactive");
    assert!(!next(&mut b).await);
    // Work on another queue does not activate these streams.
    scaler
        .queue
        .enqueue_many(&[task("elsewhere")])
        .await
        .unwrap();
    scaler.queue.enqueue_many(&[task("push")]).await.unwrap();
    assert!(next(&mut a).await, "stream a gets true");
    assert!(next(&mut b).await, "stream b gets true");

    // KEDA reconnects (operator restart): the old streams go away, a new one gets the current
    // state at once and later changes too.
    drop((a, b));
    let so = scaled_object(&[("queues", "push")]);
    let mut c = open_stream(scaler.grpc, so).await;
    assert!(
        next(&mut c).await,
        "the new stream starts with the current state"
    );
    let claimed = scaler
        .queue
        .claim("push", 10, "test", Duration::from_secs(60))
        .await
        .unwrap();
    let done: Vec<_> = claimed.iter().map(|t| (t.id, t.lease_id)).collect();
    scaler.queue.complete_many(&done).await.unwrap();
    let so = scaled_object(&[("queues", "push")]);
    let mut d = open_stream(scaler.grpc, so).await;
    assert!(!next(&mut d).await, "drained");
    scaler.queue.enqueue_many(&[task("push")]).await.unwrap();
    assert!(next(&mut d).await, "the reopened stream gets the push");
}

#[tokio::test]
async fn a_stream_says_false_once_the_queue_drains() {
    let url = flowforge_testkit::fresh_database().await.unwrap();
    let scaler = start(&url, &[]).await;
    scaler.queue.enqueue_many(&[task("drain")]).await.unwrap();
    let so = scaled_object(&[("queues", "drain")]);
    let mut s = open_stream(scaler.grpc, so).await;
    assert!(next(&mut s).await);
    let claimed = scaler
        .queue
        .claim("drain", 10, "test", Duration::from_secs(60))
        .await
        .unwrap();
    // Still active while the task runs, with the running task counted: it needs its worker.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut c = client(scaler.grpc).await;
    let so = scaled_object(&[("queues", "drain")]);
    assert!(c.is_active(so.clone()).await.unwrap().into_inner().result);
    let metrics = c
        .get_metrics(GetMetricsRequest {
            scaled_object_ref: Some(so),
            metric_name: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metrics.metric_values[0].metric_value_float, 1.0);
    let done: Vec<_> = claimed.iter().map(|t| (t.id, t.lease_id)).collect();
    scaler.queue.complete_many(&done).await.unwrap();
    assert!(
        !next(&mut s).await,
        "false once nothing is ready or running"
    );
}

#[tokio::test]
async fn a_stream_survives_a_database_restart_and_still_gets_true() {
    let cluster = PgCluster::start().unwrap();
    let url = cluster.create_database().await.unwrap();
    let scaler = start(&url, &["--poll-interval", "1h"]).await;
    let so = scaled_object(&[("queues", "restart")]);
    let mut s = open_stream(scaler.grpc, so).await;
    assert!(!next(&mut s).await);
    cluster.restart().unwrap();
    // The enqueue goes through a fresh connection of the test; the scaler's LISTEN reconnects
    // (with backoff) and re-checks the queue, so the task is seen either way.
    let queue = migrated(&url).await;
    queue.enqueue_many(&[task("restart")]).await.unwrap();
    assert!(next(&mut s).await, "true after the restart");
}

#[tokio::test]
async fn a_task_the_listener_missed_is_found_by_the_recheck_after_reconnecting() {
    // No periodic check and no notification: only the re-check that follows a reconnect of the
    // LISTEN connection can see this task.
    let url = flowforge_testkit::fresh_database().await.unwrap();
    let scaler = start(&url, &["--poll-interval", "1h"]).await;
    let so = scaled_object(&[("queues", "missed")]);
    let mut s = open_stream(scaler.grpc, so).await;
    assert!(!next(&mut s).await);
    let admin = PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap();
    // A task inserted without NOTIFY, under a lock that holds every reader of the queue until
    // the listener is gone: whatever re-check runs after that sees the task.
    let mut tx = admin.begin().await.unwrap();
    sqlx::query("LOCK TABLE flowforge.tasks IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO flowforge.tasks (id, queue, kind, max_attempts, timeout_secs) \
         VALUES (gen_random_uuid(), 'missed', 'noop', 1, 60)",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    let cut: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'flowforge-scaler' \
           AND query ILIKE 'LISTEN%'",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(cut, 1, "the scaler's LISTEN connection");
    // The re-check is waiting for the lock: commit, and it reads the task.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
               AND application_name = 'flowforge-scaler' AND wait_event_type = 'Lock'",
        )
        .fetch_one(&admin)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no re-check of the queue after the LISTEN connection was cut"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tx.commit().await.unwrap();
    assert!(next(&mut s).await, "true from the re-check");
}

#[tokio::test]
async fn tls_with_a_client_certificate() {
    let url = flowforge_testkit::fresh_database().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("flowforge scaler test CA").unwrap();
    let server = ca
        .issue(&["localhost"])
        .unwrap()
        .write_to(dir.path(), "server")
        .unwrap();
    let client_cert = ca.issue(&["keda-operator"]).unwrap();
    let ca_file = ca.write_to(dir.path(), "ca").unwrap();
    let scaler = start(
        &url,
        &[
            "--grpc-tls-cert",
            server.cert.to_str().unwrap(),
            "--grpc-tls-key",
            server.key.to_str().unwrap(),
            "--grpc-tls-client-ca",
            ca_file.to_str().unwrap(),
        ],
    )
    .await;
    let endpoint = format!("https://localhost:{}", scaler.grpc.port());
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.ca_pem()))
        .domain_name("localhost");
    let so = scaled_object(&[("queues", "tls")]);

    // With the client certificate: served.
    let channel = Channel::from_shared(endpoint.clone())
        .unwrap()
        .tls_config(tls.clone().identity(Identity::from_pem(
            &client_cert.cert_pem,
            &client_cert.key_pem,
        )))
        .unwrap()
        .connect()
        .await
        .expect("TLS with a client certificate connects");
    let active = ExternalScalerClient::new(channel)
        .is_active(so.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(!active.result);

    // Without one: refused.
    let refused = async {
        let channel = Channel::from_shared(endpoint.clone())
            .unwrap()
            .tls_config(tls.clone())
            .unwrap()
            .connect()
            .await?;
        ExternalScalerClient::new(channel)
            .is_active(so.clone())
            .await
            .map(|_| ())
            .map_err(|s| Box::new(s) as Box<dyn std::error::Error>)?;
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    assert!(
        refused.await.is_err(),
        "a client without a certificate is refused"
    );

    // Plain text to a TLS server: refused.
    let plain =
        ExternalScalerClient::connect(format!("http://127.0.0.1:{}", scaler.grpc.port())).await;
    if let Ok(mut c) = plain {
        assert!(c.is_active(so).await.is_err());
    }
}

/// Value of the series `name{labels...}` on the scaler's admin `/metrics`, if present.
async fn metric(admin: std::net::SocketAddr, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let text = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn queue_figures_and_task_wait_events_come_from_the_database() {
    let url = flowforge_testkit::fresh_database().await.unwrap();
    let queue = migrated(&url).await;
    let config = Config::try_parse_from([
        "flowforge-scaler",
        "--grpc-addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
        "--database-url",
        &url,
        "--metrics-interval",
        "1s",
        "--slo-task-wait",
        "1s",
    ])
    .unwrap();
    // One task fails for good at once (dead; its start was within the 1 s threshold), one
    // starts at once, one after waiting 1.5 s (not within), one has been ready for 10 minutes
    // and one is scheduled for later.
    let mut doomed = task("fig");
    doomed.max_attempts = 1;
    queue.enqueue_many(&[doomed]).await.unwrap();
    let claimed = queue
        .claim("fig", 1, "test", Duration::from_secs(60))
        .await
        .unwrap();
    let outcome = queue
        .fail(claimed[0].id, claimed[0].lease_id, "boom", false)
        .await
        .unwrap();
    assert!(matches!(outcome, FailOutcome::Dead), "{outcome:?}");
    queue.enqueue_many(&[task("fig")]).await.unwrap();
    queue
        .claim("fig", 1, "test", Duration::from_secs(60))
        .await
        .unwrap();
    queue.enqueue_many(&[task("fig")]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    queue
        .claim("fig", 1, "test", Duration::from_secs(60))
        .await
        .unwrap();
    let mut later = task("fig");
    later.run_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
    queue.enqueue_many(&[task("fig"), later]).await.unwrap();
    // The ready one has been waiting for 10 minutes.
    let moved = sqlx::query(
        "UPDATE flowforge.tasks SET created_at = created_at - interval '10 minutes', \
         run_at = run_at - interval '10 minutes' \
         WHERE queue = 'fig' AND status = 'queued' AND run_at <= now()",
    )
    .execute(queue.db().pool())
    .await
    .unwrap();
    assert_eq!(moved.rows_affected(), 1);

    let app = Application::build(config).await.unwrap();
    let admin = app.admin_addr();
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    // Task waits are counted once the start is a few seconds old (a claim's start time is taken
    // before it commits), so this takes a few intervals.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let depth = |state: &'static str| async move {
            metric(
                admin,
                "flowforge_queue_depth",
                &[("queue", "fig"), ("state", state)],
            )
            .await
        };
        let (ready, scheduled, running, dead) = (
            depth("ready").await,
            depth("scheduled").await,
            depth("running").await,
            depth("dead").await,
        );
        let events = metric(
            admin,
            "flowforge_task_wait_events_total",
            &[("queue", "fig")],
        )
        .await;
        let good = metric(
            admin,
            "flowforge_task_wait_good_events_total",
            &[("queue", "fig")],
        )
        .await;
        let figures = (ready, scheduled, running, dead, events, good);
        let one = Some(1.0);
        if figures == (one, one, Some(2.0), one, Some(3.0), Some(2.0)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "figures (ready, scheduled, running, dead, wait events, good): {figures:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let age = metric(
        admin,
        "flowforge_queue_oldest_ready_age_seconds",
        &[("queue", "fig")],
    )
    .await
    .unwrap();
    // Ready since 10 minutes ago.
    assert!((600.0..900.0).contains(&age), "oldest ready age {age}");
}

#[tokio::test]
async fn shutdown_ends_open_streams_cleanly() {
    let url = flowforge_testkit::fresh_database().await.unwrap();
    let scaler = start(&url, &[]).await;
    let so = scaled_object(&[("queues", "bye")]);
    let mut s = open_stream(scaler.grpc, so).await;
    assert!(!next(&mut s).await);
    drop(scaler); // its shutdown signal
    let end = tokio::time::timeout(Duration::from_secs(20), s.message())
        .await
        .expect("the stream ends within 20 s");
    assert!(
        matches!(end, Ok(None)),
        "a clean end of stream, got {end:?}"
    );
}
