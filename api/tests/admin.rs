//! The admin server on its own address, and how the binary refuses bad configuration.

mod helpers;

use helpers::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn admin_endpoints_answer_on_their_own_address() {
    let app = TestApp::spawn(&[]).await;
    assert_ne!(app.admin_addr, app.addr);

    let health = app.admin_get("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);

    let ready = app.admin_get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK, "database is up");

    let version = app.admin_get("/version").await;
    assert_eq!(version.status(), StatusCode::OK);
    let version: Value = version.json().await.expect("/version is JSON");
    assert_eq!(version["name"], "flowforge-api");
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));

    // The admin routes are not on the API address, and the API is not on the admin address.
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = app
        .client
        .get(app.admin_url("/v1/queues"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_never_by_raw_path() {
    let app = TestApp::spawn(&[]).await;
    let task = app
        .create_task(json!({"queue": "metrics", "kind": "noop"}))
        .await;
    let id = task["id"].as_str().unwrap();
    for _ in 0..3 {
        let response = app.get(&format!("/v1/tasks/{id}")).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = app.get("/v1/tasks/not-a-uuid-at-all").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = app.get("/v1/no-such-route/abc123").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let response = app.admin_get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let metrics = response.text().await.unwrap();
    let requests: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("flowforge_http_requests_total{"))
        .collect();
    assert!(
        !requests.is_empty(),
        "flowforge_http_requests_total is exported:\n{metrics}"
    );
    let get_task: Vec<&&str> = requests
        .iter()
        .filter(|l| l.contains(r#"route="/v1/tasks/{id}""#) && l.contains(r#"status="200""#))
        .collect();
    assert_eq!(
        get_task.len(),
        1,
        "one series for GET /v1/tasks/{{id}} 200:\n{metrics}"
    );
    let count: f64 = get_task[0]
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .expect("a sample value");
    assert_eq!(count, 3.0, "{}", get_task[0]);
    assert!(
        requests
            .iter()
            .any(|l| l.contains(r#"route="/v1/tasks""#) && l.contains(r#"status="201""#)),
        "the create is counted under /v1/tasks:\n{metrics}"
    );
    for raw in [id, "not-a-uuid-at-all", "abc123"] {
        assert!(
            !metrics.contains(raw),
            "a raw path segment ({raw}) leaked into the metrics:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn readyz_is_503_while_the_database_is_unreachable() {
    let app = TestApp::spawn_on(
        &helpers::unreachable_database_url(),
        &["--db-acquire-timeout", "500ms"],
    )
    .await;
    let health = app.admin_get("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK, "alive without a database");
    let ready = app.admin_get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// A configuration the binary must refuse.
struct BadConfig<'a> {
    what: &'a str,
    args: Vec<&'a str>,
    envs: Vec<(&'a str, &'a str)>,
    /// A word the one-line reason must contain.
    mentions: &'a str,
}

#[tokio::test]
async fn bad_config_exits_64_with_one_line_reason() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-ca.pem");
    let valid = dir.path().join("tokens.json");
    std::fs::write(&valid, r#"{"tokens":["t"]}"#).unwrap();
    let valid_secret = format!("file:{}", valid.display());

    let cases = [
        BadConfig {
            what: "no tokens secret",
            args: vec![],
            envs: vec![],
            mentions: "FLOWFORGE_API_TOKENS_SECRET",
        },
        BadConfig {
            what: "database secret of an unknown kind",
            args: vec![],
            envs: vec![
                ("FLOWFORGE_API_TOKENS_SECRET", valid_secret.as_str()),
                ("FLOWFORGE_DB_SECRET", "vault:db"),
            ],
            mentions: "aws-sm:",
        },
        BadConfig {
            what: "unknown sslmode",
            args: vec![],
            envs: vec![
                ("FLOWFORGE_API_TOKENS_SECRET", valid_secret.as_str()),
                ("FLOWFORGE_DB_SSLMODE", "sometimes"),
            ],
            mentions: "verify-full",
        },
        BadConfig {
            what: "CA bundle that does not exist",
            args: vec![],
            envs: vec![
                ("FLOWFORGE_API_TOKENS_SECRET", valid_secret.as_str()),
                ("FLOWFORGE_DB_SSLROOTCERT", missing.to_str().unwrap()),
            ],
            mentions: "FLOWFORGE_DB_SSLROOTCERT",
        },
        BadConfig {
            what: "secret refresh period below a second",
            args: vec!["--secret-refresh", "100ms"],
            envs: vec![("FLOWFORGE_API_TOKENS_SECRET", valid_secret.as_str())],
            mentions: "secret refresh",
        },
        BadConfig {
            what: "maximum task timeout above a day",
            args: vec![],
            envs: vec![
                ("FLOWFORGE_API_TOKENS_SECRET", valid_secret.as_str()),
                ("FLOWFORGE_MAX_TASK_TIMEOUT", "2d"),
            ],
            mentions: "FLOWFORGE_MAX_TASK_TIMEOUT",
        },
        BadConfig {
            what: "invalid FLOWFORGE_API_ADDR",
            args: vec![],
            envs: vec![
                ("FLOWFORGE_API_TOKENS_SECRET", valid_secret.as_str()),
                ("FLOWFORGE_API_ADDR", "not-an-address"),
            ],
            mentions: "api-addr",
        },
        BadConfig {
            what: "invalid --api-addr flag",
            args: vec!["--api-addr", "127.0.0.1:99999"],
            envs: vec![("FLOWFORGE_API_TOKENS_SECRET", valid_secret.as_str())],
            mentions: "api-addr",
        },
        BadConfig {
            what: "tokens secret without a scheme",
            args: vec![],
            envs: vec![("FLOWFORGE_API_TOKENS_SECRET", "/run/tokens.json")],
            mentions: "file:",
        },
    ];
    for BadConfig {
        what,
        args,
        envs,
        mentions,
    } in cases
    {
        let (code, stderr) = helpers::run_binary(&args, &envs).await;
        assert_eq!(code, Some(64), "{what}: exit code; stderr: {stderr}");
        helpers::assert_one_line_mentioning(what, &stderr, mentions);
    }
}
