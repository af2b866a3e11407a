//! The API as an AWS Lambda function, for real: the `flowforge-api` binary this test run built,
//! started with `AWS_LAMBDA_RUNTIME_API` pointing at cargo-lambda's Runtime API emulator
//! (`cargo lambda watch --only-lambda-apis`, so cargo-lambda compiles nothing), and called two
//! ways:
//!
//! - through the emulator's function URL (`/lambda-url/flowforge-api/...`), which turns each HTTP
//!   request into a payload 2.0 event, as a Lambda function URL does;
//! - with raw API Gateway HTTP API events (payload format 2.0, the `$default` route and stage of
//!   terraform/modules/lambda_api), POSTed to the emulator's Invoke API
//!   (`/2015-03-31/functions/flowforge-api/invocations`), whose reply is the function's own
//!   response document (`statusCode`, `headers`, `body`, `isBase64Encoded`), as API Gateway
//!   receives it.
//!
//! cargo-lambda comes from PyPI (`scripts/install-deps.sh test` installs it); the test finds it
//! at `$FLOWFORGE_CARGO_LAMBDA`, else
//! `${FLOWFORGE_TOOLS_DIR:-~/.cache/flowforge}/cargo-lambda-venv/bin/cargo-lambda`.
//!
//! The test prints the cold start (process start to first reply). To measure the artefact that
//! `cargo lambda build --release` makes instead of the test build, point
//! `FLOWFORGE_LAMBDA_BOOTSTRAP` at it (`target/lambda/flowforge-api/bootstrap`).

mod helpers;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flowforge_testkit::Child;
use helpers::{assert_problem_document, error_fields, expect_problem, header};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::StatusCode;
use serde_json::{json, Value};

const FUNCTION: &str = "flowforge-api";

/// The cargo-lambda executable that `scripts/install-deps.sh test` installs.
fn cargo_lambda() -> PathBuf {
    let path = match std::env::var_os("FLOWFORGE_CARGO_LAMBDA") {
        Some(path) => PathBuf::from(path),
        None => std::env::var_os("FLOWFORGE_TOOLS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                    .join(".cache/flowforge")
            })
            .join("cargo-lambda-venv/bin/cargo-lambda"),
    };
    assert!(
        path.is_file(),
        "cargo-lambda not found at {} (FLOWFORGE_CARGO_LAMBDA): run scripts/install-deps.sh test",
        path.display()
    );
    path
}

/// cargo-lambda's emulator of the Lambda Runtime API and of function URLs, on a loopback port.
struct Emulator {
    port: u16,
    _process: Child,
}

impl Emulator {
    async fn start(cargo_lambda: &Path, log: &Path) -> Emulator {
        let port = flowforge_testkit::free_port();
        let port_arg = port.to_string();
        // cargo-lambda reads the workspace's metadata to know its functions (binaries).
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let process = Child::spawn_logged(
            cargo_lambda,
            &[
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port_arg,
                "--manifest-path",
                manifest,
            ],
            &[],
            log,
        )
        .expect("starting cargo lambda watch");
        let deadline = Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch did not listen on {port} within 60 s:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Emulator {
            port,
            _process: process,
        }
    }

    /// The Runtime API base for the function named `FUNCTION`.
    fn runtime_api(&self) -> String {
        format!("http://127.0.0.1:{}/.rt/{FUNCTION}", self.port)
    }

    /// The function URL of `path`.
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/lambda-url/{FUNCTION}{path}", self.port)
    }

    /// The Invoke API of the function named `FUNCTION` (what API Gateway calls).
    fn invocations(&self) -> String {
        format!(
            "http://127.0.0.1:{}/2015-03-31/functions/{FUNCTION}/invocations",
            self.port
        )
    }
}

/// The API as a Lambda function against a migrated database of its own: the emulator, the
/// function process (the test's `flowforge-api`, or `FLOWFORGE_LAMBDA_BOOTSTRAP`), its token and
/// logs.
struct LambdaApi {
    emulator: Emulator,
    function: Child,
    bootstrap: PathBuf,
    /// When the function process was started.
    spawned: Instant,
    token: String,
    db_url: String,
    dir: tempfile::TempDir,
}

impl LambdaApi {
    async fn start() -> LambdaApi {
        let cargo_lambda = cargo_lambda();
        let bootstrap = std::env::var_os("FLOWFORGE_LAMBDA_BOOTSTRAP")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_flowforge-api")));
        let dir = tempfile::tempdir().unwrap();
        let db_url = helpers::migrated_database().await;
        let token = format!("tok-{}", uuid::Uuid::new_v4().simple());
        let tokens = dir.path().join("tokens.json");
        std::fs::write(&tokens, json!({ "tokens": [token] }).to_string()).unwrap();
        let emulator = Emulator::start(&cargo_lambda, &dir.path().join("emulator.log")).await;
        let spawned = Instant::now();
        let function = Child::spawn_logged(
            &bootstrap,
            &[],
            &[
                ("AWS_LAMBDA_RUNTIME_API", emulator.runtime_api()),
                ("AWS_LAMBDA_FUNCTION_NAME", FUNCTION.into()),
                ("AWS_LAMBDA_FUNCTION_VERSION", "1".into()),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".into()),
                (
                    "FLOWFORGE_API_TOKENS_SECRET",
                    format!("file:{}", tokens.display()),
                ),
                ("DATABASE_URL", db_url.clone()),
                ("FLOWFORGE_LOG_FORMAT", "json".into()),
            ],
            &dir.path().join("function.log"),
        )
        .expect("starting flowforge-api");
        LambdaApi {
            emulator,
            function,
            bootstrap,
            spawned,
            token,
            db_url,
            dir,
        }
    }

    /// The function's and the emulator's logs, for failure messages.
    fn logs(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "function log:\n{}\nemulator log:\n{}",
            read("function.log"),
            read("emulator.log")
        )
    }

    /// SIGTERM (Lambda sends it when it retires an instance): the function exits 0.
    async fn retire(mut self) {
        self.function
            .signal(nix::sys::signal::Signal::SIGTERM)
            .unwrap();
        let code = self
            .function
            .wait_exit(Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(code, Some(0), "exit after SIGTERM\n{}", self.logs());
    }
}

/// Whether the task `id` is committed in the database at `db_url`.
async fn committed(db_url: &str, id: &str) -> bool {
    let pool = helpers::connect(db_url).await;
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM flowforge.tasks WHERE id = $1::text::uuid")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    stored == 1
}

/// An API Gateway HTTP API request event, payload format 2.0, as the `$default` route of the
/// `$default` stage delivers it (terraform/modules/lambda_api): the headers lower-cased, the
/// query both raw and parsed, the body a string. (With a named stage, lambda_http would put the
/// stage in front of the path and no route would match: the stage must stay `$default`.)
fn api_gateway_event(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Value {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut header_map = serde_json::Map::new();
    header_map.insert(
        "host".into(),
        json!("abc123.execute-api.eu-west-1.amazonaws.com"),
    );
    header_map.insert("user-agent".into(), json!("flowforge-lambda-test"));
    if body.is_some() {
        header_map.insert("content-type".into(), json!("application/json"));
    }
    for (name, value) in headers {
        header_map.insert(name.to_ascii_lowercase(), json!(value));
    }
    let mut parameters = serde_json::Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        parameters.insert(k.into(), json!(v));
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": header_map,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10",
                "userAgent": "flowforge-lambda-test"
            },
            "requestId": format!("apigw-{}", uuid::Uuid::new_v4().simple()),
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Dec/2026:00:00:00 +0000",
            "timeEpoch": 1_796_083_200_000_u64
        },
        "isBase64Encoded": false
    });
    if !parameters.is_empty() {
        event["queryStringParameters"] = Value::Object(parameters);
    }
    if let Some(body) = body {
        event["body"] = json!(body.to_string());
    }
    event
}

/// The function's reply to one API Gateway event, as API Gateway receives it.
struct GatewayResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl GatewayResponse {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Invokes the function with `event` through the emulator's Invoke API and decodes the
/// payload 2.0 response document.
async fn invoke(lambda: &LambdaApi, client: &reqwest::Client, event: &Value) -> GatewayResponse {
    let response = client
        .post(lambda.emulator.invocations())
        .json(event)
        .send()
        .await
        .unwrap_or_else(|e| panic!("invoking the function: {e}\n{}", lambda.logs()));
    let invoke_status = response.status();
    let document: Value = response.json().await.unwrap();
    assert_eq!(
        invoke_status,
        StatusCode::OK,
        "the invocation itself must succeed (an HTTP error is a response, not a function error): \
         {document}\n{}",
        lambda.logs()
    );
    let status = document["statusCode"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(u16::try_from(s).ok()?).ok())
        .unwrap_or_else(|| panic!("no statusCode in the response document: {document}"));
    // API Gateway would have to decode a base64 body; JSON must travel as text.
    assert_eq!(
        document["isBase64Encoded"],
        json!(false),
        "a JSON body travels as text: {document}"
    );
    let mut headers = HeaderMap::new();
    for (name, value) in document["headers"].as_object().into_iter().flatten() {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value.as_str().unwrap_or_default()).unwrap(),
        );
    }
    let body = document["body"].as_str().unwrap_or_default().to_owned();
    GatewayResponse {
        status,
        headers,
        body,
    }
}

#[tokio::test]
async fn on_lambda_a_function_url_creates_and_reads_tasks_and_errors_are_problems() {
    let started = Instant::now();
    let lambda = LambdaApi::start().await;
    let (emulator, token) = (&lambda.emulator, &lambda.token);

    // Process start to first reply: the request waits in the emulator until the function has
    // initialised (secrets, pool) and asks the Runtime API for its first invocation.
    let client = helpers::client();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let created = client
        .post(emulator.url("/v1/tasks"))
        .bearer_auth(token)
        .header("x-request-id", "lambda-create-1")
        .header("traceparent", traceparent)
        .json(&json!({"queue": "lambda", "kind": "noop", "payload": {"n": 1}}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("create through the function URL: {e}\n{}", lambda.logs()));
    let cold_start = lambda.spawned.elapsed();
    assert_eq!(
        created.status(),
        StatusCode::CREATED,
        "create through the function URL\n{}",
        lambda.logs()
    );
    assert_eq!(
        header(&created, "x-request-id").as_deref(),
        Some("lambda-create-1")
    );
    let echoed = header(&created, "traceparent").expect("traceparent on the response");
    assert!(
        echoed.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "the caller's trace is continued: {echoed}"
    );
    let location = header(&created, "location").expect("Location on a 201");
    let task: Value = created.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/tasks/{}", task["id"].as_str().unwrap())
    );
    assert_eq!(task["status"], "queued");

    // Read it back, and check it is in the database, committed.
    let warm = Instant::now();
    let read = client
        .get(emulator.url(&location))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let warm = warm.elapsed();
    assert_eq!(read.status(), StatusCode::OK);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["id"], task["id"]);
    assert_eq!(read["payload"], json!({"n": 1}));
    assert!(
        committed(&lambda.db_url, task["id"].as_str().unwrap()).await,
        "the acknowledged task is committed"
    );

    // Errors are problem+json, with the same request ids.
    let invalid = client
        .post(emulator.url("/v1/tasks"))
        .bearer_auth(token)
        .json(&json!({"queue": "Bad Name", "kind": "", "max_attempts": 0}))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(invalid, StatusCode::UNPROCESSABLE_ENTITY).await;
    let mut fields = error_fields(&problem);
    fields.sort();
    assert_eq!(fields, ["kind", "max_attempts", "queue"]);

    let unauthorized = client.get(emulator.url("/v1/queues")).send().await.unwrap();
    assert_eq!(
        header(&unauthorized, "www-authenticate").as_deref(),
        Some(r#"Bearer realm="flowforge""#)
    );
    expect_problem(unauthorized, StatusCode::UNAUTHORIZED).await;

    let unknown = client
        .get(emulator.url("/v1/no-such-route"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    expect_problem(unknown, StatusCode::NOT_FOUND).await;

    let bootstrap = lambda.bootstrap.clone();
    lambda.retire().await;

    eprintln!(
        "lambda ({}): cold start to first response {} ms, a warm GET {} ms, whole test {} ms",
        bootstrap.display(),
        cold_start.as_millis(),
        warm.as_millis(),
        started.elapsed().as_millis()
    );
}

#[tokio::test]
async fn on_lambda_api_gateway_http_api_events_create_and_read_tasks_and_errors_are_problems() {
    let lambda = LambdaApi::start().await;
    let client = helpers::client();
    let bearer = format!("Bearer {}", lambda.token);

    // Create: 201, Location, the caller's request id, the task committed.
    let created = invoke(
        &lambda,
        &client,
        &api_gateway_event(
            "POST",
            "/v1/tasks",
            &[
                ("Authorization", &bearer),
                ("X-Request-Id", "apigw-create-1"),
            ],
            Some(&json!({"queue": "apigw", "kind": "noop", "payload": {"n": 2}})),
        ),
    )
    .await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "create through an API Gateway event: {}\n{}",
        created.body,
        lambda.logs()
    );
    assert_eq!(created.header("x-request-id"), Some("apigw-create-1"));
    assert!(
        created
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        created.headers
    );
    let task = created.json();
    let id = task["id"].as_str().expect("the task's id").to_owned();
    assert_eq!(
        created.header("location"),
        Some(format!("/v1/tasks/{id}").as_str())
    );
    assert_eq!(task["status"], "queued");
    assert_eq!(task["payload"], json!({"n": 2}));
    assert!(
        committed(&lambda.db_url, &id).await,
        "the acknowledged task is committed"
    );

    // Read back by path, and find it by query string (rawQueryString reaches the router).
    let read = invoke(
        &lambda,
        &client,
        &api_gateway_event(
            "GET",
            &format!("/v1/tasks/{id}"),
            &[("authorization", &bearer)],
            None,
        ),
    )
    .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(read.json()["id"], json!(id));
    let listed = invoke(
        &lambda,
        &client,
        &api_gateway_event(
            "GET",
            "/v1/tasks?queue=apigw&status=queued&limit=10",
            &[("authorization", &bearer)],
            None,
        ),
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let ids: Vec<Value> = listed.json()["tasks"]
        .as_array()
        .expect("a page of tasks")
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    assert_eq!(ids, [json!(id)]);

    // Errors: problem+json documents with the HTTP status in statusCode, carrying the request id.
    let invalid = invoke(
        &lambda,
        &client,
        &api_gateway_event(
            "POST",
            "/v1/tasks",
            &[
                ("authorization", &bearer),
                ("x-request-id", "apigw-invalid-1"),
            ],
            Some(&json!({"queue": "Bad Name", "kind": "", "max_attempts": 0})),
        ),
    )
    .await;
    assert_eq!(
        invalid.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        invalid.body
    );
    let problem = assert_problem_document(&invalid.headers, &invalid.body, invalid.status);
    assert_eq!(problem["request_id"], "apigw-invalid-1");
    let mut fields = error_fields(&problem);
    fields.sort();
    assert_eq!(fields, ["kind", "max_attempts", "queue"]);

    let bad_query = invoke(
        &lambda,
        &client,
        &api_gateway_event(
            "GET",
            "/v1/tasks?limit=0",
            &[("authorization", &bearer)],
            None,
        ),
    )
    .await;
    assert_eq!(
        bad_query.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        bad_query.body
    );
    let problem = assert_problem_document(&bad_query.headers, &bad_query.body, bad_query.status);
    assert_eq!(error_fields(&problem), ["limit"]);

    let unauthorized = invoke(
        &lambda,
        &client,
        &api_gateway_event("GET", "/v1/queues", &[], None),
    )
    .await;
    assert_eq!(
        unauthorized.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        unauthorized.body
    );
    assert_eq!(
        unauthorized.header("www-authenticate"),
        Some(r#"Bearer realm="flowforge""#)
    );
    assert_problem_document(
        &unauthorized.headers,
        &unauthorized.body,
        unauthorized.status,
    );

    // An event that is no API Gateway event is a function error reported to the Invoke API, and
    // the instance goes on serving.
    let response = client
        .post(lambda.emulator.invocations())
        .body("not an event")
        .send()
        .await
        .unwrap();
    assert!(
        !response.status().is_success(),
        "a malformed event must fail its invocation, got {}",
        response.status()
    );
    let again = invoke(
        &lambda,
        &client,
        &api_gateway_event(
            "GET",
            &format!("/v1/tasks/{id}"),
            &[("authorization", &bearer)],
            None,
        ),
    )
    .await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "{}\n{}",
        again.body,
        lambda.logs()
    );

    lambda.retire().await;
}

#[tokio::test]
async fn lambda_misconfiguration_exits_64_with_one_line_reason() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.json");
    std::fs::write(&tokens, r#"{"tokens":["t"]}"#).unwrap();
    let tokens = format!("file:{}", tokens.display());
    let ca = flowforge_testkit::TestCa::new("lambda test CA").unwrap();
    let files = ca
        .issue(&["127.0.0.1"])
        .unwrap()
        .write_to(dir.path(), "tls")
        .unwrap();
    let (cert, key) = (
        files.cert.to_str().unwrap().to_owned(),
        files.key.to_str().unwrap().to_owned(),
    );
    let lambda = [
        ("FLOWFORGE_API_TOKENS_SECRET", tokens.as_str()),
        ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9"),
        ("AWS_LAMBDA_FUNCTION_NAME", FUNCTION),
        ("AWS_LAMBDA_FUNCTION_VERSION", "1"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"),
    ];
    let without = |name: &str| -> Vec<(&str, &str)> {
        lambda.iter().copied().filter(|(k, _)| *k != name).collect()
    };
    let with_tls: Vec<(&str, &str)> = lambda
        .iter()
        .copied()
        .chain([
            ("FLOWFORGE_API_TLS_CERT", cert.as_str()),
            ("FLOWFORGE_API_TLS_KEY", key.as_str()),
        ])
        .collect();
    let mut bad_memory = without("AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
    bad_memory.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots"));
    let cases = [
        (
            "runtime API without a function name",
            without("AWS_LAMBDA_FUNCTION_NAME"),
            "AWS_LAMBDA_FUNCTION_NAME",
        ),
        (
            "runtime API without a function version",
            without("AWS_LAMBDA_FUNCTION_VERSION"),
            "AWS_LAMBDA_FUNCTION_VERSION",
        ),
        (
            "memory size that is not a number",
            bad_memory,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        ),
        ("TLS files on Lambda", with_tls, "Lambda"),
        (
            "no tokens secret on Lambda either",
            without("FLOWFORGE_API_TOKENS_SECRET"),
            "FLOWFORGE_API_TOKENS_SECRET",
        ),
    ];
    for (what, envs, mentions) in cases {
        let (code, stderr) = helpers::run_binary(&[], &envs).await;
        assert_eq!(code, Some(64), "{what}: exit code; stderr: {stderr}");
        helpers::assert_one_line_mentioning(what, &stderr, mentions);
    }
}
