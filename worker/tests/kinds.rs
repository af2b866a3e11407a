//! The built-in kinds and per-task limits, run by the real worker binary against its own database:
//! timeouts, the `fail` drill kind and its switch, and the `http` kind with its allow-list.

mod helpers;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use flowforge_core::queue::TaskStatus;
use helpers::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_task_timeout_fails_the_attempt() {
    let (url, queue) = fresh_queue().await;
    let _worker = Worker::start(WorkerEnv::new(&url)).await;
    let mut t = task("sleep", json!({"ms": 5000}));
    t.timeout_secs = 1;
    t.max_attempts = 1;
    let id = enqueue(&queue, &[t]).await[0];
    let dead = wait_for_status(&queue, id, TaskStatus::Dead).await;
    assert_eq!(dead.attempts, 1);
    let error = dead.last_error.unwrap_or_default();
    assert!(
        error.contains("timed out"),
        "the attempt failed on its 1 s limit, not after sleeping 5 s; last_error = {error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_kind_retries_with_backoff_then_succeeds() {
    let (url, queue) = fresh_queue().await;
    let _worker = Worker::start(WorkerEnv::new(&url)).await;
    let mut t = task("fail", json!({"times": 2}));
    t.max_attempts = 5;
    let id = enqueue(&queue, &[t]).await[0];
    let done = wait_for_status(&queue, id, TaskStatus::Succeeded).await;
    assert_eq!(done.attempts, 3, "two planned failures, then a success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_kind_exhausts_attempts_and_dies() {
    let (url, queue) = fresh_queue().await;
    let _worker = Worker::start(WorkerEnv::new(&url)).await;
    let mut t = task("fail", json!({"times": 10}));
    t.max_attempts = 3;
    let id = enqueue(&queue, &[t]).await[0];
    let dead = wait_for_status(&queue, id, TaskStatus::Dead).await;
    assert_eq!(dead.attempts, 3, "dead after max_attempts, not before");
    let error = dead.last_error.unwrap_or_default();
    assert!(
        error.contains("attempt 3"),
        "last_error is the last attempt's; got {error:?}"
    );
    // Nothing runs it again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later = get(&queue, id).await;
    assert_eq!((later.status, later.attempts), (TaskStatus::Dead, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_fail_kind_dies_as_unregistered() {
    let (url, queue) = fresh_queue().await;
    let _worker =
        Worker::start(WorkerEnv::new(&url).set("FLOWFORGE_DISABLE_FAIL_KIND", "true")).await;
    let mut t = task("fail", json!({"times": 0}));
    t.max_attempts = 5;
    let ids = enqueue(&queue, &[t, task("noop", json!({}))]).await;
    let done = wait_all_finished(&queue, &ids, DEADLINE).await;
    let fail = done.iter().find(|t| t.id == ids[0]).expect("fail task");
    let noop = done.iter().find(|t| t.id == ids[1]).expect("noop task");
    assert_eq!(
        (noop.status, noop.attempts),
        (TaskStatus::Succeeded, 1),
        "the worker runs other kinds"
    );
    assert_eq!(
        (fail.status, fail.attempts),
        (TaskStatus::Dead, 1),
        "an unregistered kind dies at once, without retries (it would succeed if `fail` ran)"
    );
    let error = fail.last_error.clone().unwrap_or_default();
    assert!(
        error.contains("no handler registered") && error.contains("fail"),
        "last_error names the missing kind; got {error:?}"
    );
}

/// One request the webhook target received.
#[derive(Debug, Clone)]
struct Call {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// A webhook target: records every call; `/ok` answers 200, `/flaky` 500 on its first call and
/// 200 afterwards, anything else 404.
#[derive(Clone, Default)]
struct Target {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Target {
    fn calls_to(&self, path: &str) -> Vec<Call> {
        self.calls
            .lock()
            .expect("calls lock")
            .iter()
            .filter(|c| c.path == path)
            .cloned()
            .collect()
    }
}

async fn webhook(
    State(target): State<Target>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let path = uri.path().to_owned();
    let mut calls = target.calls.lock().expect("calls lock");
    let earlier = calls.iter().filter(|c| c.path == path).count();
    calls.push(Call {
        method,
        path: path.clone(),
        headers,
        body,
    });
    match (path.as_str(), earlier) {
        ("/ok", _) => StatusCode::OK,
        ("/flaky", 0) => StatusCode::INTERNAL_SERVER_ERROR,
        ("/flaky", _) => StatusCode::OK,
        _ => StatusCode::NOT_FOUND,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_kind_calls_allowed_hosts_only() {
    let target = Target::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding the webhook target");
    let port = listener.local_addr().expect("bound").port();
    let app = axum::Router::new()
        .fallback(webhook)
        .with_state(target.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let (url, queue) = fresh_queue().await;
    let _worker =
        Worker::start(WorkerEnv::new(&url).set("FLOWFORGE_HTTP_ALLOW_HOSTS", "127.0.0.1")).await;

    let hook = |host: &str, path: &str| format!("http://{host}:{port}{path}");
    let mut tasks = vec![
        task(
            "http",
            json!({
                "url": hook("127.0.0.1", "/ok"),
                "method": "PUT",
                "headers": {"X-FlowForge-Test": "yes"},
                "body": {"hello": "world"},
            }),
        ),
        task("http", json!({"url": hook("localhost", "/denied")})),
        task("http", json!({"url": hook("127.0.0.1", "/flaky")})),
        task("http", json!({"url": hook("127.0.0.1", "/missing")})),
    ];
    for t in &mut tasks {
        t.max_attempts = 3;
    }
    let ids = enqueue(&queue, &tasks).await;
    let done = wait_all_finished(&queue, &ids, DEADLINE).await;
    let by_id = |i: usize| {
        done.iter()
            .find(|t| t.id == ids[i])
            .expect("task finished")
            .clone()
    };
    let (ok, denied, flaky, missing) = (by_id(0), by_id(1), by_id(2), by_id(3));

    // Allowed host: called once, as asked.
    assert_eq!((ok.status, ok.attempts), (TaskStatus::Succeeded, 1));
    let calls = target.calls_to("/ok");
    assert_eq!(calls.len(), 1, "/ok called once: {calls:?}");
    let call = &calls[0];
    assert_eq!(call.method, Method::PUT);
    assert_eq!(
        call.headers
            .get("x-flowforge-test")
            .and_then(|v| v.to_str().ok()),
        Some("yes"),
        "custom header sent"
    );
    let body: serde_json::Value = serde_json::from_slice(&call.body).expect("JSON body");
    assert_eq!(body, json!({"hello": "world"}));

    // A host that is not on the allow-list: dead at once, never called.
    assert_eq!((denied.status, denied.attempts), (TaskStatus::Dead, 1));
    let error = denied.last_error.unwrap_or_default();
    assert!(error.contains("allow-list"), "last_error = {error:?}");
    assert!(
        target.calls_to("/denied").is_empty(),
        "a host off the allow-list is never called"
    );

    // 500: retried, and the retry succeeds.
    assert_eq!(
        (flaky.status, flaky.attempts),
        (TaskStatus::Succeeded, 2),
        "a 500 is retried; last_error = {:?}",
        flaky.last_error
    );
    assert_eq!(target.calls_to("/flaky").len(), 2);

    // 404: dead immediately, called once.
    assert_eq!(
        (missing.status, missing.attempts),
        (TaskStatus::Dead, 1),
        "a 404 is not retried"
    );
    let error = missing.last_error.unwrap_or_default();
    assert!(error.contains("404"), "last_error = {error:?}");
    assert_eq!(target.calls_to("/missing").len(), 1);

    server.abort();
}

/// Payload errors and failed webhook calls, in `last_error` and in the worker's JSON log lines,
/// say what went wrong without quoting payload values or the webhook URL's query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_never_quote_payload_values_or_webhook_urls() {
    const MARKER: &str = "MARKER-e9d24b-never-logged";
    // A loopback port with nothing listening on it.
    let closed = flowforge_testkit::free_port();
    let logs = tempfile::tempdir().expect("a temporary directory");
    let log = logs.path().join("worker.log");
    let (url, queue) = fresh_queue().await;
    let _worker = Worker::start_logged(
        WorkerEnv::new(&url)
            .set("FLOWFORGE_LOG_FORMAT", "json")
            .set("FLOWFORGE_HTTP_ALLOW_HOSTS", "127.0.0.1"),
        &log,
    )
    .await;

    let mut tasks = vec![
        task("sleep", json!({"ms": MARKER})),
        task("fail", json!({"times": 1, "note": MARKER})),
        task(
            "http",
            json!({"url": format!("http://127.0.0.1:{closed}/hook?token={MARKER}")}),
        ),
        task(
            "http",
            json!({"url": "http://127.0.0.1:1/", "headers": {"Authorization": [MARKER]}}),
        ),
    ];
    for t in &mut tasks {
        t.max_attempts = 2;
    }
    let ids = enqueue(&queue, &tasks).await;
    let done = wait_all_finished(&queue, &ids, DEADLINE).await;
    let last_error = |i: usize| {
        let t = done.iter().find(|t| t.id == ids[i]).expect("task finished");
        assert_eq!(t.status, TaskStatus::Dead, "{t:?}");
        t.last_error.clone().unwrap_or_default()
    };
    let expected = [
        "payload.ms: invalid type: string, expected u64",
        "payload.note: unknown field `note`, expected `times`",
        &format!("webhook call to http://127.0.0.1:{closed} failed: "),
        "payload.headers.Authorization: invalid type: array, expected a string",
    ];
    for (i, expected) in expected.iter().enumerate() {
        let error = last_error(i);
        assert!(
            !error.contains(MARKER),
            "last_error of task {i} quotes the payload: {error:?}"
        );
        assert!(
            error.contains(expected),
            "last_error of task {i} says what is wrong ({expected:?}): {error:?}"
        );
    }

    // Every failed attempt was logged (the webhook's first attempt is retried, the rest die at
    // once), with its error and without the marker.
    let text = eventually("the failures to be logged", DEADLINE, || {
        let log = log.clone();
        let ids = ids.clone();
        async move {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let logged = ids
                .iter()
                .filter(|id| {
                    text.lines().any(|l| {
                        l.contains(&id.to_string()) && l.contains("attempt failed; task is dead")
                    })
                })
                .count();
            if logged == ids.len() {
                Ok(text)
            } else {
                Err(format!("{logged} of {} dead tasks logged", ids.len()))
            }
        }
    })
    .await;
    let failures: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("attempt failed"))
        })
        .collect();
    assert!(
        failures.len() > ids.len(),
        "the webhook's retry and every death were logged: {failures:?}"
    );
    for line in &failures {
        assert!(line["error"].is_string(), "the error is logged: {line}");
    }
    assert!(
        !text.contains(MARKER),
        "the worker's log quotes a payload value or a webhook URL:\n{text}"
    );
}
