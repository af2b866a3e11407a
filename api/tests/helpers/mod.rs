//! Shared set-up for the API's integration tests: the real application on loopback ports (port 0)
//! against a database of its own, and a few assertions about problem documents.
//!
//! Logs stay hidden unless `TEST_LOG` is set.
// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use flowforge_api::app::Application;
use flowforge_api::config::Config;
use flowforge_core::queue::Queue;
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Every field of a task (brief §3), as the API must show it.
pub const TASK_FIELDS: [&str; 15] = [
    "id",
    "queue",
    "kind",
    "payload",
    "priority",
    "status",
    "attempts",
    "max_attempts",
    "run_at",
    "timeout",
    "idempotency_key",
    "created_at",
    "started_at",
    "finished_at",
    "last_error",
];

/// A running API: its addresses, a client holding a valid token, and its database.
pub struct TestApp {
    /// `http`, or `https` when the API serves TLS.
    pub scheme: &'static str,
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub token: String,
    /// A second accepted token (rate limits are per token).
    pub other_token: String,
    pub client: reqwest::Client,
    /// URL of the app's database.
    pub db_url: String,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    _tokens_file: tempfile::NamedTempFile,
}

/// Logs go to stderr only when `TEST_LOG` is set.
pub fn init_test_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        flowforge_core::telemetry::init_logs("text", std::io::stderr);
    }
}

/// A client that never goes through a proxy and never waits forever.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("building the HTTP client")
}

/// A client that trusts `ca_pem` (besides the public roots) and never goes through a proxy.
/// With `fresh_connections`, every request opens a new connection (so a new TLS handshake).
/// Responses carry the server's certificate (`reqwest::tls::TlsInfo`).
pub fn tls_client(ca_pem: &str, fresh_connections: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .tls_info(true)
        .add_root_certificate(
            reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("the CA certificate parses"),
        );
    if fresh_connections {
        builder = builder.pool_max_idle_per_host(0);
    }
    builder.build().expect("building the HTTPS client")
}

/// The certificate (DER) the server presented for `response`.
pub fn peer_certificate(response: &Response) -> Option<Vec<u8>> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(<[u8]>::to_vec)
}

/// Runs the `flowforge-api` binary with exactly `envs` (and `args`), API and admin on port 0 and
/// an unreachable database unless `envs` says otherwise, and returns its exit code and stderr.
pub async fn run_binary(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_flowforge-api"));
    command
        .args(args)
        .env_clear()
        .env("FLOWFORGE_API_ADDR", "127.0.0.1:0")
        .env("FLOWFORGE_ADMIN_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", unreachable_database_url())
        .envs(envs.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .unwrap_or_else(|_| panic!("flowforge-api {args:?} {envs:?} did not exit"))
        .expect("running flowforge-api");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Asserts that `stderr` is one line that mentions `mentions` (case-insensitive).
pub fn assert_one_line_mentioning(what: &str, stderr: &str, mentions: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{what}: one line on stderr, got:\n{stderr}");
    assert!(
        lines[0].to_lowercase().contains(&mentions.to_lowercase()),
        "{what}: the reason should mention {mentions:?}: {}",
        lines[0]
    );
}

/// A new, migrated database in the run's shared cluster.
pub async fn migrated_database() -> String {
    let url = flowforge_testkit::fresh_database()
        .await
        .expect("creating a test database (run the tests with `make test`)");
    migrate(&url).await;
    url
}

/// Applies the schema to the database at `url`.
pub async fn migrate(url: &str) {
    let pool = connect(url).await;
    flowforge_core::db::MIGRATOR
        .run(&pool)
        .await
        .expect("applying the migrations");
    pool.close().await;
}

/// A small pool on `url`, for checks behind the API's back.
pub async fn connect(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .expect("connecting to the test database")
}

/// A URL on which no PostgreSQL listens (a loopback port that was free a moment ago).
pub fn unreachable_database_url() -> String {
    format!(
        "postgres://postgres:secret-password@127.0.0.1:{}/flowforge",
        flowforge_testkit::free_port()
    )
}

impl TestApp {
    /// The API on a fresh migrated database, with default settings plus `extra_args`.
    pub async fn spawn(extra_args: &[&str]) -> TestApp {
        let db_url = migrated_database().await;
        TestApp::spawn_on(&db_url, extra_args).await
    }

    /// The API on the database at `db_url` (which need not be reachable), with `extra_args`.
    pub async fn spawn_on(db_url: &str, extra_args: &[&str]) -> TestApp {
        TestApp::start(db_url, extra_args, "http", client()).await
    }

    /// The API serving HTTPS with the certificate in `files` on a fresh migrated database, and a
    /// client that trusts `ca_pem` (and shows the peer certificate of each response).
    pub async fn spawn_tls(
        files: &flowforge_testkit::CertFiles,
        ca_pem: &str,
        extra_args: &[&str],
    ) -> TestApp {
        let db_url = migrated_database().await;
        let cert = files.cert.to_str().expect("UTF-8 path");
        let key = files.key.to_str().expect("UTF-8 path");
        let mut args = vec!["--api-tls-cert", cert, "--api-tls-key", key];
        args.extend_from_slice(extra_args);
        TestApp::start(&db_url, &args, "https", tls_client(ca_pem, true)).await
    }

    async fn start(
        db_url: &str,
        extra_args: &[&str],
        scheme: &'static str,
        client: reqwest::Client,
    ) -> TestApp {
        init_test_logs();
        let token = format!("tok-{}", uuid::Uuid::new_v4().simple());
        let other_token = format!("tok-{}", uuid::Uuid::new_v4().simple());
        let mut tokens_file = tempfile::NamedTempFile::new().expect("creating the tokens file");
        write!(
            tokens_file,
            "{}",
            serde_json::json!({ "tokens": [token, other_token] })
        )
        .expect("writing the tokens file");
        tokens_file.flush().expect("flushing the tokens file");
        let secret = format!("file:{}", tokens_file.path().display());
        let mut args: Vec<&str> = vec![
            "flowforge-api",
            "--api-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "--database-url",
            db_url,
            "--api-tokens-secret",
            &secret,
            "--log-format",
            "text",
        ];
        args.extend_from_slice(extra_args);
        let config = Config::try_parse_from(&args).expect("test configuration parses");
        config.validate().expect("test configuration is valid");
        let app = Application::build(config)
            .await
            .expect("building the application");
        let addr = app.api_addr();
        let admin_addr = app.admin_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until_stopped(async move {
                let _ = stopped.await;
            })
            .await
            .expect("the API server failed");
        });
        TestApp {
            scheme,
            addr,
            admin_addr,
            token,
            other_token,
            client,
            db_url: db_url.to_owned(),
            stop: Some(stop),
            server: Some(server),
            _tokens_file: tokens_file,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.addr, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin_addr, path)
    }

    /// A GET on the admin address (no token).
    pub async fn admin_get(&self, path: &str) -> Response {
        self.client
            .get(self.admin_url(path))
            .send()
            .await
            .expect("admin GET request")
    }

    /// A request to the API carrying the valid bearer token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path)
            .send()
            .await
            .expect("GET request")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("POST request")
    }

    pub async fn post_empty(&self, path: &str) -> Response {
        self.request(Method::POST, path)
            .send()
            .await
            .expect("POST request")
    }

    /// Creates a task, expecting 201, and returns its JSON.
    pub async fn create_task(&self, body: Value) -> Value {
        let response = self.post_json("/v1/tasks", &body).await;
        let status = response.status();
        let text = response.text().await.expect("reading the body");
        assert_eq!(status, StatusCode::CREATED, "creating {body}: {text}");
        serde_json::from_str(&text).expect("task JSON")
    }

    /// Creates tasks in one batch, expecting 201, and returns their ids in request order.
    pub async fn create_batch(&self, tasks: Vec<Value>) -> Vec<String> {
        let response = self
            .post_json("/v1/tasks/batch", &serde_json::json!({ "tasks": tasks }))
            .await;
        let status = response.status();
        let text = response.text().await.expect("reading the body");
        assert_eq!(status, StatusCode::CREATED, "batch: {text}");
        let body: Value = serde_json::from_str(&text).expect("batch JSON");
        body["ids"]
            .as_array()
            .expect("ids array")
            .iter()
            .map(|id| id.as_str().expect("string id").to_owned())
            .collect()
    }

    /// The queue, for moving tasks along (claims, failures) as a worker would.
    pub async fn queue(&self) -> Queue {
        Queue::new(connect(&self.db_url).await)
    }

    /// Tells the server to stop (as SIGTERM would), without waiting for it.
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops the server and waits for it (the runtime would drop it at the end of the test anyway).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Asserts that `response` is an RFC 9457 problem with `status`, whose `request_id` equals the
/// `x-request-id` response header, and returns the document.
pub async fn expect_problem(response: Response, status: StatusCode) -> Value {
    let headers = response.headers().clone();
    let actual = response.status();
    let text = response.text().await.expect("reading the problem body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    assert_problem_document(&headers, &text, status)
}

/// The checks of [`expect_problem`] on an already read response.
pub fn assert_problem_document(headers: &HeaderMap, text: &str, status: StatusCode) -> Value {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        content_type.starts_with("application/problem+json"),
        "a {status} must be application/problem+json, got {content_type:?}; body: {text}"
    );
    let problem: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("a {status} body must be JSON ({e}): {text}"));
    for member in ["type", "title", "detail"] {
        let value = problem[member].as_str().unwrap_or_default();
        assert!(
            !value.is_empty(),
            "problem member {member:?} must be a non-empty string: {problem}"
        );
    }
    assert_eq!(
        problem["status"].as_u64(),
        Some(u64::from(status.as_u16())),
        "problem status must equal the HTTP status: {problem}"
    );
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("a {status} must carry x-request-id: {problem}"));
    assert_eq!(
        problem["request_id"].as_str(),
        Some(request_id),
        "problem request_id must equal the x-request-id header: {problem}"
    );
    if status.is_server_error() {
        assert_no_internal_detail(text);
    }
    problem
}

/// A 5xx body must not reveal how the service is built or where its database is.
pub fn assert_no_internal_detail(body: &str) {
    let lower = body.to_ascii_lowercase();
    for needle in [
        "sqlx",
        "postgres",
        "127.0.0.1",
        "connection refused",
        "os error",
        "pool",
        "password",
        "secret",
        "panicked",
        "backtrace",
        "src/",
    ] {
        assert!(
            !lower.contains(needle),
            "a 5xx body must not contain internal detail ({needle:?}): {body}"
        );
    }
}

/// The `field` members of a 422 problem's `errors`.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("a 422 problem must list its errors: {problem}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The value of header `name`, as text.
pub fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
