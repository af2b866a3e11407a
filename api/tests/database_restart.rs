//! A PostgreSQL restart under load: the API answers 503 (never 500, never a hang) while the
//! database is away, recovers by itself, and every task it acknowledged is in the database.

mod helpers;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use flowforge_testkit::PgCluster;
use helpers::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const CLIENTS: usize = 4;

/// What one client saw for one request.
#[derive(Debug)]
struct Outcome {
    /// When the request was sent.
    sent: Instant,
    /// The HTTP status, or the transport error.
    status: Result<u16, String>,
    retry_after: Option<String>,
    /// The id of an acknowledged (201) task.
    id: Option<Uuid>,
    /// The body of a 5xx.
    body: Option<String>,
}

async fn client_loop(app: Arc<TestApp>, client: usize, stop: CancellationToken) -> Vec<Outcome> {
    let http = reqwest::Client::builder()
        .no_proxy()
        // A request hanging this long would be a hang, not a slow answer.
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut outcomes = Vec::new();
    for n in 0u64.. {
        let sent = Instant::now();
        let request = http
            .post(app.url("/v1/tasks"))
            .bearer_auth(&app.token)
            .json(
                &json!({"queue": "restart", "kind": "noop", "payload": {"client": client, "n": n}}),
            )
            .send();
        if stop.is_cancelled() {
            break;
        }
        let response = tokio::select! {
            r = request => r,
            _ = stop.cancelled() => break,
        };
        let outcome = match response {
            Err(e) => Outcome {
                sent,
                status: Err(e.to_string()),
                retry_after: None,
                id: None,
                body: None,
            },
            Ok(response) => {
                let status = response.status();
                let retry_after = helpers::header(&response, "retry-after");
                let text = response.text().await.unwrap_or_default();
                let id = (status == StatusCode::CREATED)
                    .then(|| serde_json::from_str::<Value>(&text).ok())
                    .flatten()
                    .and_then(|task| task["id"].as_str().and_then(|s| s.parse().ok()));
                Outcome {
                    sent,
                    status: Ok(status.as_u16()),
                    retry_after,
                    id,
                    body: status.is_server_error().then_some(text),
                }
            }
        };
        let unavailable = outcome.status == Ok(503);
        outcomes.push(outcome);
        if unavailable {
            // A well-behaved client backs off a little (the API says Retry-After: 2).
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    outcomes
}

#[tokio::test]
async fn database_restart_under_load_loses_no_acknowledged_task() {
    let cluster = Arc::new(
        tokio::task::spawn_blocking(PgCluster::start)
            .await
            .unwrap()
            .expect("starting a dedicated PostgreSQL cluster"),
    );
    let db_url = cluster
        .create_database()
        .await
        .expect("creating a database");
    helpers::migrate(&db_url).await;
    // Requests wait up to the acquire timeout for a connection: shorter than the outage, so that
    // requests sent while the database is down get their 503.
    let app = Arc::new(
        TestApp::spawn_on(
            &db_url,
            &["--rate-limit-rps", "0", "--db-acquire-timeout", "500ms"],
        )
        .await,
    );

    let stop = CancellationToken::new();
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(client_loop(app.clone(), c, stop.clone())))
        .collect();

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let stopping = Instant::now();
    {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || cluster.stop())
            .await
            .unwrap()
            .expect("stopping PostgreSQL");
    }
    let stopped = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || cluster.restart())
            .await
            .unwrap()
            .expect("restarting PostgreSQL");
    }
    let restarted = Instant::now();
    // Load goes on for a while after the restart (at least 7 s in all).
    let end = (restarted + Duration::from_secs(4)).max(started + Duration::from_secs(7));
    tokio::time::sleep_until(end).await;
    stop.cancel();
    let mut outcomes = Vec::new();
    for client in clients {
        outcomes.extend(
            tokio::time::timeout(Duration::from_secs(30), client)
                .await
                .expect("clients stop")
                .unwrap(),
        );
    }

    // Tally.
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for o in &outcomes {
        let key = match &o.status {
            Ok(s) => s.to_string(),
            Err(_) => "transport error".to_owned(),
        };
        *by_status.entry(key).or_default() += 1;
    }
    let summary = format!("outcomes by status: {by_status:?}");

    let failures: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| !matches!(o.status, Ok(201) | Ok(503)))
        .collect();
    assert!(
        failures.is_empty(),
        "only 201 or 503 may be answered ({summary}); others: {:?}",
        failures.iter().take(5).collect::<Vec<_>>()
    );
    for o in outcomes.iter().filter(|o| o.status == Ok(503)) {
        let retry_after = o.retry_after.as_deref().unwrap_or_default();
        assert!(
            retry_after.parse::<u64>().is_ok_and(|s| s >= 1),
            "a 503 carries Retry-After: {o:?}"
        );
        let body = o.body.as_deref().unwrap_or_default();
        helpers::assert_no_internal_detail(body);
        let problem: Value = serde_json::from_str(body).expect("a 503 body is a problem");
        assert_eq!(problem["status"], 503);
    }
    let acknowledged_before = outcomes
        .iter()
        .filter(|o| o.status == Ok(201) && o.sent < stopping)
        .count();
    let unavailable = outcomes.iter().filter(|o| o.status == Ok(503)).count();
    let acknowledged_after = outcomes
        .iter()
        .filter(|o| o.status == Ok(201) && o.sent > restarted)
        .count();
    assert!(
        acknowledged_before > 0,
        "tasks were created before the stop ({summary})"
    );
    assert!(
        unavailable > 0,
        "requests during the outage were answered 503 ({summary})"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| o.status == Ok(503) && o.sent >= stopped && o.sent < restarted),
        "requests sent while the database was down were answered 503 ({summary})"
    );
    assert!(
        acknowledged_after > 0,
        "201s resumed by themselves after the restart ({summary})"
    );

    // Every acknowledged id is in the database, once.
    let acknowledged: Vec<Uuid> = outcomes.iter().filter_map(|o| o.id).collect();
    let distinct: HashSet<Uuid> = acknowledged.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        acknowledged.len(),
        "no id acknowledged twice"
    );
    assert_eq!(
        acknowledged.len(),
        by_status.get("201").copied().unwrap_or(0),
        "every 201 named its task"
    );
    let pool = helpers::connect(&db_url).await;
    let stored: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM flowforge.tasks WHERE id = ANY($1) \
         UNION ALL SELECT id FROM flowforge.task_history WHERE id = ANY($1)",
    )
    .bind(&acknowledged)
    .fetch_all(&pool)
    .await
    .expect("reading the stored tasks");
    let stored: HashSet<Uuid> = stored.into_iter().collect();
    let lost: Vec<&Uuid> = distinct.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged tasks are missing ({summary}): {:?}",
        lost.len(),
        distinct.len(),
        lost.iter().take(10).collect::<Vec<_>>()
    );
    pool.close().await;
    if std::env::var_os("TEST_LOG").is_some() {
        eprintln!("{summary}; {} acknowledged, all stored", distinct.len());
    }
    drop(app);
    drop(cluster);
}
