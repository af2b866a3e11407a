//! Every API route doing its job, over real HTTP against the real application and database.

mod helpers;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use helpers::{header, TestApp, TASK_FIELDS};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Asserts `value` is an RFC 3339 timestamp in UTC and returns it.
fn utc_timestamp(task: &Value, field: &str) -> DateTime<Utc> {
    let text = task[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} must be a string timestamp: {task}"));
    let parsed = DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{field} = {text:?} is not RFC 3339: {e}"));
    assert_eq!(
        parsed.offset().local_minus_utc(),
        0,
        "{field} = {text:?} must be in UTC"
    );
    assert!(
        text.ends_with('Z') || text.ends_with("+00:00"),
        "{field} = {text:?} must be written in UTC"
    );
    parsed.with_timezone(&Utc)
}

fn ids_of(page: &Value) -> Vec<String> {
    page["tasks"]
        .as_array()
        .unwrap_or_else(|| panic!("a listing has a tasks array: {page}"))
        .iter()
        .map(|t| t["id"].as_str().expect("task id").to_owned())
        .collect()
}

async fn json_of(response: reqwest::Response, expected: StatusCode) -> Value {
    let status = response.status();
    let text = response.text().await.expect("reading the body");
    assert_eq!(status, expected, "body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"))
}

#[tokio::test]
async fn create_task_returns_201_with_location_and_every_task_field() {
    let app = TestApp::spawn(&[]).await;
    let run_at = "2030-01-02T03:04:05Z";
    let body = json!({
        "queue": "emails",
        "kind": "sleep",
        "payload": {"ms": 5, "nested": {"list": [1, 2]}},
        "priority": 7,
        "max_attempts": 3,
        "timeout": 42,
        "run_at": run_at,
    });
    let response = app.post_json("/v1/tasks", &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = header(&response, "location").expect("a 201 carries Location");
    let content_type = header(&response, "content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let task: Value = response.json().await.expect("task JSON");

    let object = task.as_object().expect("a task is a JSON object");
    for field in TASK_FIELDS {
        assert!(object.contains_key(field), "task lacks {field:?}: {task}");
    }
    let id = task["id"].as_str().expect("id is a string");
    let uuid = uuid::Uuid::parse_str(id).expect("id is a UUID");
    assert_eq!(uuid.get_version_num(), 7, "ids are UUIDv7: {id}");
    assert_eq!(location, format!("/v1/tasks/{id}"));
    assert_eq!(task["queue"], "emails");
    assert_eq!(task["kind"], "sleep");
    assert_eq!(task["payload"], body["payload"]);
    assert_eq!(task["priority"], 7);
    assert_eq!(task["status"], "queued");
    assert_eq!(task["attempts"], 0);
    assert_eq!(task["max_attempts"], 3);
    assert_eq!(task["timeout"], 42);
    assert_eq!(task["idempotency_key"], Value::Null);
    assert_eq!(task["started_at"], Value::Null);
    assert_eq!(task["finished_at"], Value::Null);
    assert_eq!(task["last_error"], Value::Null);
    assert_eq!(
        utc_timestamp(&task, "run_at"),
        run_at.parse::<DateTime<Utc>>().unwrap()
    );
    utc_timestamp(&task, "created_at");

    // The Location names the task.
    let fetched = json_of(app.get(&location).await, StatusCode::OK).await;
    assert_eq!(fetched, task);

    // Defaults: payload {}, priority 0, run_at about now.
    let minimal = app
        .create_task(json!({"queue": "emails", "kind": "noop"}))
        .await;
    assert_eq!(minimal["payload"], json!({}));
    assert_eq!(minimal["priority"], 0);
    assert!(minimal["max_attempts"].as_i64().unwrap() >= 1);
    assert!(minimal["timeout"].as_i64().unwrap() >= 1);
    let created = utc_timestamp(&minimal, "created_at");
    let ready = utc_timestamp(&minimal, "run_at");
    assert!(
        (ready - created).num_seconds().abs() <= 1,
        "run_at defaults to now: {minimal}"
    );
}

#[tokio::test]
async fn idempotent_repeat_returns_200_with_the_original_task() {
    let app = TestApp::spawn(&[]).await;
    let body = json!({"queue": "billing", "kind": "noop", "payload": {"n": 1}, "idempotency_key": "order-17"});
    let first = app.post_json("/v1/tasks", &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let original: Value = first.json().await.unwrap();
    assert_eq!(original["idempotency_key"], "order-17");

    // A repeat, even with a different payload, returns the original task.
    let again = json!({"queue": "billing", "kind": "noop", "payload": {"n": 2}, "idempotency_key": "order-17"});
    let repeat = app.post_json("/v1/tasks", &again).await;
    assert_eq!(repeat.status(), StatusCode::OK);
    assert_eq!(
        header(&repeat, "location").as_deref(),
        Some(format!("/v1/tasks/{}", original["id"].as_str().unwrap()).as_str())
    );
    let repeated: Value = repeat.json().await.unwrap();
    assert_eq!(repeated, original);

    // The same through the Idempotency-Key header.
    let plain = json!({"queue": "billing", "kind": "noop"});
    let send = || {
        app.request(Method::POST, "/v1/tasks")
            .header("Idempotency-Key", "header-key-1")
            .json(&plain)
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let by_header: Value = first.json().await.unwrap();
    assert_eq!(by_header["idempotency_key"], "header-key-1");
    let repeat = send().await.unwrap();
    assert_eq!(repeat.status(), StatusCode::OK);
    let repeated: Value = repeat.json().await.unwrap();
    assert_eq!(repeated, by_header);

    // The header and the field name the same key.
    let with_field = json!({"queue": "billing", "kind": "noop", "idempotency_key": "header-key-1"});
    let mixed = app.post_json("/v1/tasks", &with_field).await;
    assert_eq!(mixed.status(), StatusCode::OK);
    assert_eq!(mixed.json::<Value>().await.unwrap()["id"], by_header["id"]);

    // Keys are unique per queue: the same key in another queue is another task.
    let other_queue = json!({"queue": "shipping", "kind": "noop", "idempotency_key": "order-17"});
    let other = app.create_task(other_queue).await;
    assert_ne!(other["id"], original["id"]);

    // Exactly one task per key and queue exists.
    let listed = json_of(app.get("/v1/tasks?queue=billing").await, StatusCode::OK).await;
    assert_eq!(ids_of(&listed).len(), 2, "{listed}");
}

#[tokio::test]
async fn concurrent_duplicates_with_one_key_create_exactly_one_task() {
    let app = TestApp::spawn(&[]).await;
    let body = json!({"queue": "payments", "kind": "noop", "payload": {"amount": 10}});
    let requests = (0..20).map(|_| {
        app.request(Method::POST, "/v1/tasks")
            .header("Idempotency-Key", "charge-abc")
            .json(&body)
            .send()
    });
    let mut statuses = Vec::new();
    let mut ids = HashSet::new();
    for response in join_all(requests).await {
        let response = response.expect("request");
        statuses.push(response.status());
        let task: Value = response.json().await.expect("task JSON");
        ids.insert(task["id"].as_str().expect("id").to_owned());
    }
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let repeats = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(created, 1, "exactly one 201: {statuses:?}");
    assert_eq!(repeats, 19, "the other 19 are 200: {statuses:?}");
    assert_eq!(ids.len(), 1, "every answer names the same task: {ids:?}");

    let listed = json_of(app.get("/v1/tasks?queue=payments").await, StatusCode::OK).await;
    assert_eq!(
        ids_of(&listed),
        ids.into_iter().collect::<Vec<_>>(),
        "one task stored"
    );
}

#[tokio::test]
async fn batch_of_1000_returns_201_with_ids_in_request_order() {
    let app = TestApp::spawn(&[]).await;
    let tasks: Vec<Value> = (0..1000)
        .map(|n| json!({"queue": "bulk", "kind": "noop", "payload": {"n": n}}))
        .collect();
    let ids = app.create_batch(tasks).await;
    assert_eq!(ids.len(), 1000);
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        1000,
        "ids are distinct"
    );

    // Every id names the task at the same position of the request.
    let page = json_of(
        app.get("/v1/tasks?queue=bulk&limit=1000").await,
        StatusCode::OK,
    )
    .await;
    let n_by_id: HashMap<String, i64> = page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_owned(),
                t["payload"]["n"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(n_by_id.len(), 1000);
    for (position, id) in ids.iter().enumerate() {
        assert_eq!(
            n_by_id.get(id),
            Some(&(position as i64)),
            "ids[{position}] = {id} must be the task sent at position {position}"
        );
    }

    // A task whose idempotency key was seen before contributes the original id.
    let keyed = app
        .create_task(json!({"queue": "bulk", "kind": "noop", "idempotency_key": "k-1"}))
        .await;
    let ids = app
        .create_batch(vec![
            json!({"queue": "bulk", "kind": "noop"}),
            json!({"queue": "bulk", "kind": "noop", "idempotency_key": "k-1"}),
        ])
        .await;
    assert_eq!(ids[1], keyed["id"].as_str().unwrap());
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test]
async fn get_task_returns_the_task() {
    let app = TestApp::spawn(&[]).await;
    let created = app
        .create_task(json!({"queue": "reports", "kind": "noop", "payload": {"x": "y"}}))
        .await;
    let id = created["id"].as_str().unwrap();
    let fetched = json_of(app.get(&format!("/v1/tasks/{id}")).await, StatusCode::OK).await;
    assert_eq!(fetched, created);
}

#[tokio::test]
async fn list_pages_through_every_task_once_filtered_by_queue_and_status() {
    let app = TestApp::spawn(&[]).await;
    let tasks: Vec<Value> = (0..25)
        .map(|n| json!({"queue": "paging", "kind": "noop", "payload": {"n": n}}))
        .collect();
    let ids = app.create_batch(tasks).await;
    app.create_batch(vec![json!({"queue": "elsewhere", "kind": "noop"}); 5])
        .await;
    let cancelled: BTreeSet<String> = ids.iter().step_by(8).cloned().collect(); // 4 tasks
    for id in &cancelled {
        let response = app.post_empty(&format!("/v1/tasks/{id}/cancel")).await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    // Walk every page of the queue: each task exactly once, pages of at most `limit`.
    let walk = |filter: &'static str| {
        let app = &app;
        async move {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            for _ in 0..100 {
                let mut path = format!("/v1/tasks?{filter}&limit=7");
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={c}"));
                }
                let page = json_of(app.get(&path).await, StatusCode::OK).await;
                let page_ids = ids_of(&page);
                assert!(page_ids.len() <= 7, "page over the limit: {page}");
                seen.extend(page_ids);
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => {
                        assert_eq!(page["next_cursor"], Value::Null);
                        return seen;
                    }
                }
            }
            panic!("paging {filter} did not end");
        }
    };

    let all = walk("queue=paging").await;
    assert_eq!(all.len(), 25, "no task missed or repeated: {all:?}");
    assert_eq!(
        all.iter().cloned().collect::<BTreeSet<_>>(),
        ids.iter().cloned().collect::<BTreeSet<_>>()
    );

    let queued = walk("queue=paging&status=queued").await;
    assert_eq!(queued.len(), 21);
    assert!(queued.iter().all(|id| !cancelled.contains(id)));

    let only_cancelled = walk("queue=paging&status=cancelled").await;
    assert_eq!(
        only_cancelled.into_iter().collect::<BTreeSet<_>>(),
        cancelled
    );

    // Without a queue filter every queue is listed.
    let everything = walk("status=queued").await;
    assert_eq!(everything.len(), 21 + 5);

    // Listed tasks carry every field too.
    let page = json_of(
        app.get("/v1/tasks?queue=paging&limit=1").await,
        StatusCode::OK,
    )
    .await;
    let first = &page["tasks"][0];
    for field in TASK_FIELDS {
        assert!(
            first.as_object().unwrap().contains_key(field),
            "{field}: {first}"
        );
    }
}

#[tokio::test]
async fn cancel_moves_a_queued_task_to_cancelled_and_retry_queues_it_again() {
    let app = TestApp::spawn(&[]).await;
    let task = app
        .create_task(json!({"queue": "jobs", "kind": "noop", "max_attempts": 4}))
        .await;
    let id = task["id"].as_str().unwrap();

    let cancelled = json_of(
        app.post_empty(&format!("/v1/tasks/{id}/cancel")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cancelled["id"], task["id"]);
    assert_eq!(cancelled["status"], "cancelled");
    utc_timestamp(&cancelled, "finished_at");
    let fetched = json_of(app.get(&format!("/v1/tasks/{id}")).await, StatusCode::OK).await;
    assert_eq!(fetched["status"], "cancelled");

    let retried = json_of(
        app.post_empty(&format!("/v1/tasks/{id}/retry")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(retried["id"], task["id"]);
    assert_eq!(retried["status"], "queued");
    assert_eq!(retried["attempts"], 0);
    assert_eq!(retried["max_attempts"], 4);
    assert_eq!(retried["finished_at"], Value::Null);
    let fetched = json_of(app.get(&format!("/v1/tasks/{id}")).await, StatusCode::OK).await;
    assert_eq!(fetched["status"], "queued");
}

#[tokio::test]
async fn retry_re_drives_a_dead_task() {
    let app = TestApp::spawn(&[]).await;
    let task = app
        .create_task(json!({"queue": "drill", "kind": "fail", "max_attempts": 1}))
        .await;
    let queue = app.queue().await;
    let claimed = queue
        .claim("drill", 1, "test-worker", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    queue
        .fail(claimed[0].id, claimed[0].lease_id, "boom", true)
        .await
        .unwrap();
    let id = task["id"].as_str().unwrap();
    let dead = json_of(app.get(&format!("/v1/tasks/{id}")).await, StatusCode::OK).await;
    assert_eq!(dead["status"], "dead");
    assert_eq!(dead["last_error"], "boom");

    let retried = json_of(
        app.post_empty(&format!("/v1/tasks/{id}/retry")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(retried["status"], "queued");
    assert_eq!(retried["attempts"], 0);
}

#[tokio::test]
async fn queues_report_ready_scheduled_running_dead_and_oldest_ready_age() {
    let app = TestApp::spawn(&[]).await;
    let queue = app.queue().await;

    // One dead task: claimed first (highest priority), failed without retry.
    app.create_task(json!({"queue": "stats", "kind": "noop", "priority": 10}))
        .await;
    let claimed = queue
        .claim("stats", 1, "w", Duration::from_secs(60))
        .await
        .unwrap();
    queue
        .fail(claimed[0].id, claimed[0].lease_id, "fatal", false)
        .await
        .unwrap();
    // One running task.
    app.create_task(json!({"queue": "stats", "kind": "noop", "priority": 5}))
        .await;
    let running = queue
        .claim("stats", 1, "w", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(running.len(), 1);
    // Two ready tasks, one of them ready for a minute already.
    let old = app
        .create_task(json!({"queue": "stats", "kind": "noop"}))
        .await;
    app.create_task(json!({"queue": "stats", "kind": "noop"}))
        .await;
    let pool = queue.db().pool();
    sqlx::query(
        "UPDATE flowforge.tasks SET created_at = now() - interval '60 seconds', \
         run_at = now() - interval '60 seconds' WHERE id = $1",
    )
    .bind(uuid::Uuid::parse_str(old["id"].as_str().unwrap()).unwrap())
    .execute(pool)
    .await
    .unwrap();
    // Two delayed tasks count as scheduled, not ready.
    let later = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    for _ in 0..2 {
        app.create_task(json!({"queue": "stats", "kind": "noop", "run_at": later}))
            .await;
    }
    // Another queue with only a scheduled task.
    app.create_task(json!({"queue": "stats-other", "kind": "noop", "run_at": later}))
        .await;

    let body = json_of(app.get("/v1/queues").await, StatusCode::OK).await;
    let queues = body["queues"].as_array().expect("queues array");
    let find = |name: &str| {
        queues
            .iter()
            .find(|q| q["queue"] == name)
            .unwrap_or_else(|| panic!("queue {name} missing: {body}"))
            .clone()
    };
    let stats = find("stats");
    for field in [
        "queue",
        "ready",
        "scheduled",
        "running",
        "dead",
        "oldest_ready_age_seconds",
    ] {
        assert!(stats.get(field).is_some(), "{field} missing: {stats}");
    }
    assert_eq!(stats["ready"], 2, "{stats}");
    assert_eq!(stats["scheduled"], 2, "{stats}");
    assert_eq!(stats["running"], 1, "{stats}");
    assert_eq!(stats["dead"], 1, "{stats}");
    let age = stats["oldest_ready_age_seconds"]
        .as_f64()
        .expect("a number");
    assert!(
        (59.0..3600.0).contains(&age),
        "the oldest ready task became ready 60 s ago: {stats}"
    );

    let other = find("stats-other");
    assert_eq!(other["ready"], 0);
    assert_eq!(other["scheduled"], 1);
    assert_eq!(other["running"], 0);
    assert_eq!(other["dead"], 0);
    assert_eq!(other["oldest_ready_age_seconds"].as_f64(), Some(0.0));
    assert_eq!(queues.len(), 2, "only queues with tasks are listed: {body}");
}

/// Every route and method of the router, with the error statuses each can return.
const DOCUMENTED: &[(&str, &str, &[&str])] = &[
    (
        "/v1/tasks",
        "post",
        &[
            "201", "200", "400", "401", "413", "415", "422", "429", "503",
        ],
    ),
    (
        "/v1/tasks/batch",
        "post",
        &["201", "400", "401", "413", "415", "422", "429", "503"],
    ),
    ("/v1/tasks", "get", &["200", "401", "422", "429", "503"]),
    (
        "/v1/tasks/{id}",
        "get",
        &["200", "401", "404", "429", "503"],
    ),
    (
        "/v1/tasks/{id}/cancel",
        "post",
        &["200", "401", "404", "409", "429", "503"],
    ),
    (
        "/v1/tasks/{id}/retry",
        "post",
        &["200", "401", "404", "409", "429", "503"],
    ),
    ("/v1/queues", "get", &["200", "401", "429", "503"]),
];

#[tokio::test]
async fn openapi_document_is_3_1_and_lists_every_route_and_its_errors() {
    let app = TestApp::spawn(&[]).await;
    // Served without a token.
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    let doc = json_of(response, StatusCode::OK).await;
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3.1."), "OpenAPI 3.1.x, got {version}");
    assert!(
        doc["components"]["schemas"]["Problem"].is_object(),
        "Problem schema"
    );
    assert!(
        doc["components"]["schemas"]["Task"].is_object(),
        "Task schema"
    );

    let paths = doc["paths"].as_object().expect("paths");
    for (path, method, statuses) in DOCUMENTED {
        let operation = &paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} is not documented"))[*method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        assert!(
            operation["security"].is_array(),
            "{method} {path} documents its bearer auth"
        );
        let responses = operation["responses"].as_object().expect("responses");
        for status in *statuses {
            let response = responses
                .get(*status)
                .unwrap_or_else(|| panic!("{method} {path} does not document {status}"));
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &response["content"]["application/problem+json"]["schema"];
                assert_eq!(
                    schema["$ref"], "#/components/schemas/Problem",
                    "{method} {path} {status} is a Problem: {response}"
                );
            }
        }
    }
    // Nothing documented that the router does not serve.
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| {
                    ["get", "post", "put", "patch", "delete", "head", "options"]
                        .contains(&k.as_str())
                })
                .map(|m| (path.clone(), m.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    // (`/openapi.json` itself may be documented or not.)
    let served: BTreeSet<(String, String)> = DOCUMENTED
        .iter()
        .map(|(p, m, _)| (p.to_string(), m.to_string()))
        .chain([("/openapi.json".to_owned(), "get".to_owned())])
        .collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(
        extra.is_empty(),
        "documented operations the router does not serve: {extra:?}"
    );
}

#[tokio::test]
async fn request_id_from_the_client_is_echoed_and_generated_otherwise() {
    let app = TestApp::spawn(&[]).await;
    let response = app
        .request(Method::GET, "/v1/queues")
        .header("x-request-id", "client-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "x-request-id").as_deref(),
        Some("client-abc-123")
    );

    // On a problem too, in the header and in the document.
    let response = app
        .request(Method::GET, "/v1/tasks/not-a-task")
        .header("x-request-id", "client-def-456")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&response, "x-request-id").as_deref(),
        Some("client-def-456")
    );
    let problem = helpers::expect_problem(response, StatusCode::NOT_FOUND).await;
    assert_eq!(problem["request_id"], "client-def-456");

    // Without one, each response gets its own.
    let mut generated = HashSet::new();
    for _ in 0..2 {
        let response = app.get("/v1/queues").await;
        let id = header(&response, "x-request-id").expect("a generated x-request-id");
        assert!(!id.is_empty());
        generated.insert(id);
    }
    assert_eq!(
        generated.len(),
        2,
        "generated ids are unique: {generated:?}"
    );

    // Unusable ones (spaces, too long) are replaced.
    let long = "x".repeat(500);
    for bad in ["has spaces in it", long.as_str()] {
        let response = app
            .request(Method::GET, "/v1/queues")
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        let id = header(&response, "x-request-id").expect("x-request-id");
        assert_ne!(id, bad);
        assert!(!id.is_empty());
    }
}

#[tokio::test]
async fn trace_context_is_continued_echoed_and_stored_with_the_task() {
    let app = TestApp::spawn(&[]).await;
    let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let response = app
        .request(Method::POST, "/v1/tasks")
        .header("traceparent", parent)
        .json(&json!({"queue": "traced", "kind": "noop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    // Same trace, the request's own span, the caller's flags.
    let ours = header(&response, "traceparent").expect("a traceparent on the response");
    assert!(
        ours.starts_with("00-0af7651916cd43dd8448eb211c80319c-") && ours.ends_with("-01"),
        "{ours}"
    );
    assert_ne!(ours, parent);
    let task: Value = response.json().await.unwrap();
    // The worker will see the request's context: it is stored with the task.
    let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
    let stored: Option<String> =
        sqlx::query_scalar("SELECT trace_parent FROM flowforge.tasks WHERE id = $1::uuid")
            .bind(task["id"].as_str().unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored.as_deref(), Some(ours.as_str()));

    // Without a (valid) traceparent a new trace starts.
    for sent in [None, Some("garbage")] {
        let mut request = app.request(Method::GET, "/v1/queues");
        if let Some(v) = sent {
            request = request.header("traceparent", v);
        }
        let response = request.send().await.unwrap();
        let fresh = header(&response, "traceparent").expect("a traceparent");
        assert_eq!(fresh.len(), 55, "{fresh}");
        assert!(!fresh.contains("0af7651916cd43dd8448eb211c80319c"));
    }
}
