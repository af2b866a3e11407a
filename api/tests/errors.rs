//! Every error status the API can answer, each as an RFC 9457 problem+json document whose
//! `request_id` matches the `x-request-id` header.

mod helpers;

use std::time::Duration;

use futures::future::join_all;
use helpers::{error_fields, expect_problem, header, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const SOME_UUID: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

#[tokio::test]
async fn malformed_json_is_400() {
    let app = TestApp::spawn(&[]).await;
    let mut wrong = Vec::new();
    for (path, body) in [
        ("/v1/tasks", r#"{"queue": "a", "kind": "#),
        ("/v1/tasks", "not json at all"),
        ("/v1/tasks", r#"{"queue": "a", "kind": "noop"} trailing"#),
        // Not JSON, even though a field is missing or mistyped before the syntax error.
        ("/v1/tasks", r#"{"kind": "noop"} trailing"#),
        ("/v1/tasks", r#"{"queue": 5, "kind": "#),
        ("/v1/tasks/batch", r#"{"tasks": [{"queue": "a"}] garbage"#),
        (
            "/v1/tasks/batch",
            r#"{"tasks": [{"queue": "a", "kind": "noop"},"#,
        ),
    ] {
        let response = app
            .request(Method::POST, path)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::BAD_REQUEST {
            expect_problem(response, StatusCode::BAD_REQUEST).await;
        } else {
            wrong.push(format!(
                "POST {path} {body}: got {}: {}",
                response.status(),
                response.text().await.unwrap()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "a body that is not JSON must be a 400:\n{}",
        wrong.join("\n")
    );
}

#[tokio::test]
async fn missing_wrong_or_non_bearer_token_is_401_with_www_authenticate() {
    let app = TestApp::spawn(&[]).await;
    let attempts: [(&str, Option<String>); 5] = [
        ("missing", None),
        ("wrong token", Some("Bearer not-a-valid-token".into())),
        ("wrong scheme", Some(format!("Basic {}", app.token))),
        ("bare token", Some(app.token.clone())),
        ("empty bearer", Some("Bearer ".into())),
    ];
    let routes = [
        (Method::POST, "/v1/tasks".to_owned()),
        (Method::POST, "/v1/tasks/batch".to_owned()),
        (Method::GET, "/v1/tasks".to_owned()),
        (Method::GET, format!("/v1/tasks/{SOME_UUID}")),
        (Method::POST, format!("/v1/tasks/{SOME_UUID}/cancel")),
        (Method::POST, format!("/v1/tasks/{SOME_UUID}/retry")),
        (Method::GET, "/v1/queues".to_owned()),
    ];
    for (what, authorization) in &attempts {
        for (method, path) in &routes {
            let mut request = app
                .client
                .request(method.clone(), app.url(path))
                .json(&json!({"queue": "a", "kind": "noop"}));
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let response = request.send().await.unwrap();
            let challenge = header(&response, "www-authenticate")
                .unwrap_or_else(|| panic!("{what}: {method} {path} lacks WWW-Authenticate"));
            assert!(
                challenge.to_ascii_lowercase().starts_with("bearer"),
                "{what}: challenge {challenge:?}"
            );
            expect_problem(response, StatusCode::UNAUTHORIZED).await;
        }
    }
    // Nothing was created by the rejected requests.
    let listed: Value = app.get("/v1/tasks").await.json().await.unwrap();
    assert_eq!(listed["tasks"], json!([]));
}

#[tokio::test]
async fn unknown_task_non_uuid_id_and_unknown_route_are_404() {
    let app = TestApp::spawn(&[]).await;
    for path in [
        format!("/v1/tasks/{SOME_UUID}"),
        "/v1/tasks/not-a-uuid".to_owned(),
        "/v1/tasks/12345".to_owned(),
        "/v1/nothing-here".to_owned(),
        "/nothing-here".to_owned(),
        format!("/v1/tasks/{SOME_UUID}/unknown-action"),
    ] {
        expect_problem(app.get(&path).await, StatusCode::NOT_FOUND).await;
    }
    for action in ["cancel", "retry"] {
        for id in [SOME_UUID, "not-a-uuid"] {
            let response = app.post_empty(&format!("/v1/tasks/{id}/{action}")).await;
            expect_problem(response, StatusCode::NOT_FOUND).await;
        }
    }
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let app = TestApp::spawn(&[]).await;
    for (method, path, allowed) in [
        (Method::DELETE, "/v1/tasks".to_owned(), "POST"),
        (Method::PUT, format!("/v1/tasks/{SOME_UUID}"), "GET"),
        (Method::GET, format!("/v1/tasks/{SOME_UUID}/cancel"), "POST"),
        (Method::DELETE, "/v1/queues".to_owned(), "GET"),
        (Method::POST, "/openapi.json".to_owned(), "GET"),
    ] {
        let response = app.request(method.clone(), &path).send().await.unwrap();
        let allow = header(&response, "allow")
            .unwrap_or_else(|| panic!("{method} {path}: a 405 must carry Allow (RFC 9110)"));
        assert!(allow.contains(allowed), "{method} {path}: Allow {allow:?}");
        expect_problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
    }
}

#[tokio::test]
async fn cancel_of_a_non_queued_task_and_retry_of_a_queued_task_are_409() {
    let app = TestApp::spawn(&[]).await;
    let running = app
        .create_task(json!({"queue": "conflicts", "kind": "noop"}))
        .await;
    let claimed = app
        .queue()
        .await
        .claim("conflicts", 1, "test-worker", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let running_id = running["id"].as_str().unwrap();
    let response = app
        .post_empty(&format!("/v1/tasks/{running_id}/cancel"))
        .await;
    expect_problem(response, StatusCode::CONFLICT).await;
    // Still running: the conflict changed nothing.
    let task: Value = app
        .get(&format!("/v1/tasks/{running_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(task["status"], "running");
    // A running task cannot be re-driven either.
    let response = app
        .post_empty(&format!("/v1/tasks/{running_id}/retry"))
        .await;
    expect_problem(response, StatusCode::CONFLICT).await;

    let queued = app
        .create_task(json!({"queue": "conflicts", "kind": "noop"}))
        .await;
    let queued_id = queued["id"].as_str().unwrap();
    let response = app
        .post_empty(&format!("/v1/tasks/{queued_id}/retry"))
        .await;
    expect_problem(response, StatusCode::CONFLICT).await;

    // Cancelling twice: the second is a conflict.
    let response = app
        .post_empty(&format!("/v1/tasks/{queued_id}/cancel"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .post_empty(&format!("/v1/tasks/{queued_id}/cancel"))
        .await;
    expect_problem(response, StatusCode::CONFLICT).await;
}

/// A create body whose serialized size is about `bytes`.
fn task_of_size(bytes: usize) -> Value {
    json!({"queue": "big", "kind": "noop", "payload": {"blob": "x".repeat(bytes.saturating_sub(64))}})
}

#[tokio::test]
async fn single_body_over_256_kib_is_413() {
    let app = TestApp::spawn(&[]).await;
    // Just under the default limit is accepted.
    let fits = task_of_size(250 * 1024);
    assert!(serde_json::to_vec(&fits).unwrap().len() < 256 * 1024);
    app.create_task(fits).await;

    let over = task_of_size(257 * 1024);
    assert!(serde_json::to_vec(&over).unwrap().len() > 256 * 1024);
    let response = app.post_json("/v1/tasks", &over).await;
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;

    // Far over, too.
    let response = app
        .post_json("/v1/tasks", &task_of_size(2 * 1024 * 1024))
        .await;
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;

    // A batch item carries the same payload limit, reported as the offending field.
    let response = app
        .post_json(
            "/v1/tasks/batch",
            &json!({"tasks": [{"queue": "big", "kind": "noop"}, task_of_size(300 * 1024)]}),
        )
        .await;
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error_fields(&problem), vec!["tasks[1].payload"]);

    let listed: Value = app.get("/v1/tasks?queue=big").await.json().await.unwrap();
    assert_eq!(
        listed["tasks"].as_array().unwrap().len(),
        1,
        "only the fitting task"
    );
}

#[tokio::test]
async fn batch_over_its_task_limit_or_body_limit_is_413() {
    let app = TestApp::spawn(&["--max-batch", "5", "--max-batch-body-bytes", "65536"]).await;
    let five = vec![json!({"queue": "batches", "kind": "noop"}); 5];
    assert_eq!(app.create_batch(five).await.len(), 5);

    let six = vec![json!({"queue": "batches", "kind": "noop"}); 6];
    let response = app
        .post_json("/v1/tasks/batch", &json!({ "tasks": six }))
        .await;
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;

    // Few tasks, but a body over the batch body limit.
    let heavy = vec![
        json!({"queue": "batches", "kind": "noop", "payload": {"blob": "y".repeat(20 * 1024)}});
        4
    ];
    let response = app
        .post_json("/v1/tasks/batch", &json!({ "tasks": heavy }))
        .await;
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;

    let listed: Value = app
        .get("/v1/tasks?queue=batches")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["tasks"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn missing_or_non_json_content_type_is_415() {
    let app = TestApp::spawn(&[]).await;
    let body = r#"{"queue": "a", "kind": "noop"}"#;
    for path in ["/v1/tasks", "/v1/tasks/batch"] {
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("application/xml"),
        ] {
            let mut request = app.request(Method::POST, path).body(body);
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let response = request.send().await.unwrap();
            expect_problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
        }
    }
    // `application/json; charset=utf-8` is JSON.
    let response = app
        .request(Method::POST, "/v1/tasks")
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

/// Posts `body` to `path` and returns the offending fields of the expected 422.
async fn invalid_fields(app: &TestApp, path: &str, body: Value) -> Vec<String> {
    let response = app.post_json(path, &body).await;
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    for error in problem["errors"].as_array().unwrap() {
        assert!(
            !error["message"].as_str().unwrap_or_default().is_empty(),
            "each error says what is wrong: {problem}"
        );
    }
    error_fields(&problem)
}

#[tokio::test]
async fn invalid_fields_are_422_naming_each_offending_field() {
    let app = TestApp::spawn(&[]).await;
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        // wrong types
        (
            "/v1/tasks",
            json!({"queue": "q", "kind": "noop", "priority": "high"}),
            vec!["priority"],
        ),
        (
            "/v1/tasks",
            json!({"queue": 5, "kind": "noop"}),
            vec!["queue"],
        ),
        (
            "/v1/tasks",
            json!({"queue": "q", "kind": "noop", "run_at": "tomorrow"}),
            vec!["run_at"],
        ),
        (
            "/v1/tasks",
            json!({"queue": "q", "kind": "noop", "priority": 40000}),
            vec!["priority"],
        ),
        (
            "/v1/tasks/batch",
            json!({"tasks": [{"queue": "q", "kind": "noop"}, {"queue": "q", "kind": "noop", "max_attempts": "3"}]}),
            vec!["tasks[1].max_attempts"],
        ),
        (
            "/v1/tasks/batch",
            json!({"tasks": {"queue": "q"}}),
            vec!["tasks"],
        ),
        // unknown fields
        (
            "/v1/tasks",
            json!({"queue": "q", "kind": "noop", "colour": "red"}),
            vec!["colour"],
        ),
        (
            "/v1/tasks/batch",
            json!({"tasks": [{"queue": "q", "kind": "noop"}, {"queue": "q", "kind": "noop", "colour": 1}]}),
            vec!["tasks[1].colour"],
        ),
        // missing fields
        ("/v1/tasks", json!({"kind": "noop"}), vec!["queue"]),
        ("/v1/tasks", json!({"queue": "q"}), vec!["kind"]),
        (
            "/v1/tasks/batch",
            json!({"tasks": [{"queue": "q", "kind": "noop"}, {"kind": "noop"}]}),
            vec!["tasks[1].queue"],
        ),
        // invalid names and values: every offending field is listed
        (
            "/v1/tasks",
            json!({"queue": "Bad Queue", "kind": "-starts-with-dash"}),
            vec!["queue", "kind"],
        ),
        (
            "/v1/tasks",
            json!({"queue": "q".repeat(64), "kind": "noop"}),
            vec!["queue"],
        ),
        (
            "/v1/tasks",
            json!({"queue": "q", "kind": "noop", "max_attempts": 0, "timeout": 0}),
            vec!["max_attempts", "timeout"],
        ),
        (
            "/v1/tasks",
            json!({"queue": "q", "kind": "noop", "idempotency_key": ""}),
            vec!["idempotency_key"],
        ),
        (
            "/v1/tasks/batch",
            json!({"tasks": [
                {"queue": "ok", "kind": "UPPER"},
                {"queue": "bad/queue", "kind": "noop"},
                {"queue": "ok", "kind": "noop"},
            ]}),
            vec!["tasks[0].kind", "tasks[1].queue"],
        ),
        ("/v1/tasks/batch", json!({"tasks": []}), vec!["tasks"]),
    ];
    let mut wrong = Vec::new();
    for (path, body, expected) in cases {
        let fields = invalid_fields(&app, path, body.clone()).await;
        if fields != expected {
            wrong.push(format!(
                "POST {path} {body}: expected fields {expected:?}, got {fields:?}"
            ));
        }
    }
    // Batches are all or nothing: nothing above was created.
    let listed: Value = app.get("/v1/tasks").await.json().await.unwrap();
    assert_eq!(listed["tasks"], json!([]), "invalid requests created tasks");
    assert!(
        wrong.is_empty(),
        "422s must name each offending field by its path:\n{}",
        wrong.join("\n")
    );
}

#[tokio::test]
async fn timeouts_above_the_deployments_maximum_are_422() {
    // Workers drain for the maximum task timeout (k8s/): a longer task could be cut short.
    let app = TestApp::spawn(&["--max-task-timeout", "1m"]).await;
    for path in ["/v1/tasks", "/v1/tasks/batch"] {
        let task = json!({"queue": "q", "kind": "noop", "timeout": 61});
        let body = if path.ends_with("batch") {
            json!({ "tasks": [task] })
        } else {
            task
        };
        let problem = expect_problem(
            app.post_json(path, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        let message = problem["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("1..=60"), "{problem}");
    }
    let at_limit = app
        .post_json(
            "/v1/tasks",
            &json!({"queue": "q", "kind": "noop", "timeout": 60}),
        )
        .await;
    assert_eq!(at_limit.status(), StatusCode::CREATED);
    // A task that sets no timeout gets the default (300 s), capped at the maximum.
    let unset: Value = app
        .post_json("/v1/tasks", &json!({"queue": "q", "kind": "noop"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unset["timeout"], 60, "{unset}");
}

#[tokio::test]
async fn invalid_idempotency_key_header_is_422() {
    let app = TestApp::spawn(&[]).await;
    let response = app
        .request(Method::POST, "/v1/tasks")
        .header("Idempotency-Key", "one")
        .json(&json!({"queue": "q", "kind": "noop", "idempotency_key": "two"}))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error_fields(&problem), vec!["idempotency_key"]);

    let response = app
        .request(Method::POST, "/v1/tasks")
        .header("Idempotency-Key", "x".repeat(300))
        .json(&json!({"queue": "q", "kind": "noop"}))
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
}

#[tokio::test]
async fn bad_list_query_parameters_are_422_naming_each_parameter() {
    let app = TestApp::spawn(&[]).await;
    let cases: [(&str, &[&str]); 9] = [
        ("limit=0", &["limit"]),
        ("limit=1001", &["limit"]),
        ("limit=-3", &["limit"]),
        ("status=bogus", &["status"]),
        ("cursor=junk", &["cursor"]),
        ("queue=Not%20A%20Queue", &["queue"]),
        (
            "limit=0&status=bogus&cursor=junk",
            &["status", "limit", "cursor"],
        ),
        ("limit=ten", &["limit"]),
        ("colour=red", &["colour"]),
    ];
    let mut wrong = Vec::new();
    for (query, expected) in cases {
        let response = app.get(&format!("/v1/tasks?{query}")).await;
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        let mut fields = error_fields(&problem);
        let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        fields.sort();
        expected.sort();
        // `query.limit` is an acceptable spelling of `limit`.
        let fields: Vec<String> = fields
            .into_iter()
            .map(|f| f.trim_start_matches("query.").to_owned())
            .collect();
        if fields != expected {
            wrong.push(format!(
                "GET /v1/tasks?{query}: expected fields {expected:?}, got {fields:?} ({})",
                problem["detail"]
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "422s must name each offending query parameter:\n{}",
        wrong.join("\n")
    );
}

#[tokio::test]
async fn requests_over_the_rate_limit_get_429_with_retry_after() {
    let app = TestApp::spawn(&["--rate-limit-rps", "1", "--rate-limit-burst", "2"]).await;
    let mut limited = None;
    for _ in 0..20 {
        let response = app.get("/v1/queues").await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = limited.expect("20 quick requests at 1 rps with a burst of 2 hit the limit");
    let retry_after = header(&response, "retry-after").expect("a 429 carries Retry-After");
    let seconds: u64 = retry_after
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After is whole seconds: {retry_after:?}"));
    assert!(seconds >= 1, "Retry-After {seconds}");
    expect_problem(response, StatusCode::TOO_MANY_REQUESTS).await;

    // The limit is per token: another token is not limited by the first one's traffic.
    let response = app
        .client
        .get(app.url("/v1/queues"))
        .bearer_auth(&app.other_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn unreachable_database_is_503_with_retry_after_on_every_route_never_500() {
    let app = TestApp::spawn_on(
        &helpers::unreachable_database_url(),
        &["--db-acquire-timeout", "500ms"],
    )
    .await;
    let task = json!({"queue": "q", "kind": "noop"});
    let requests = vec![
        app.request(Method::POST, "/v1/tasks").json(&task),
        app.request(Method::POST, "/v1/tasks")
            .header("Idempotency-Key", "k")
            .json(&task),
        app.request(Method::POST, "/v1/tasks/batch")
            .json(&json!({"tasks": [task.clone(), task.clone()]})),
        app.request(Method::GET, &format!("/v1/tasks/{SOME_UUID}")),
        app.request(Method::GET, "/v1/tasks?queue=q&limit=5"),
        app.request(Method::POST, &format!("/v1/tasks/{SOME_UUID}/cancel")),
        app.request(Method::POST, &format!("/v1/tasks/{SOME_UUID}/retry")),
        app.request(Method::GET, "/v1/queues"),
    ];
    let responses = join_all(requests.into_iter().map(|r| r.send())).await;
    for response in responses {
        let response = response.expect("the API answers while the database is down");
        let url = response.url().clone();
        let retry_after = header(&response, "retry-after")
            .unwrap_or_else(|| panic!("{url}: a 503 carries Retry-After"));
        assert!(
            retry_after.parse::<u64>().is_ok_and(|s| s >= 1),
            "{url}: Retry-After {retry_after:?}"
        );
        expect_problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    }
    // Routes that do not need the database keep working.
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Validation still comes first: a bad request is the client's problem, not a 503.
    let response = app
        .post_json("/v1/tasks", &json!({"queue": "Bad", "kind": "noop"}))
        .await;
    expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
}

#[tokio::test]
async fn rejected_database_credentials_are_503_not_500() {
    // The run's cluster, with a password it does not accept (what a rotated secret looks like to a
    // process still holding the previous one).
    let url = helpers::migrated_database().await;
    let (scheme_and_user, host_and_db) = url
        .split_once('@')
        .expect("the test database URL has credentials");
    let user = scheme_and_user
        .rsplit_once(':')
        .map(|(user, _password)| user)
        .expect("the test database URL has a password");
    let wrong = format!("{user}:not-the-password@{host_and_db}");
    let app = TestApp::spawn_on(&wrong, &["--db-acquire-timeout", "2s"]).await;
    let requests = vec![
        app.request(Method::POST, "/v1/tasks")
            .json(&json!({"queue": "q", "kind": "noop"})),
        app.request(Method::GET, &format!("/v1/tasks/{SOME_UUID}")),
        app.request(Method::GET, "/v1/queues"),
    ];
    for response in join_all(requests.into_iter().map(|r| r.send())).await {
        let response = response.expect("the API answers");
        let url = response.url().clone();
        let retry_after = header(&response, "retry-after");
        // (a 500 here also checks that its body leaks nothing)
        expect_problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
        assert!(retry_after.is_some(), "{url}: a 503 carries Retry-After");
    }
}
