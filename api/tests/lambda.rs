//! The API as an AWS Lambda function, for real: the `flowforge-api` binary this test run built,
//! started with `AWS_LAMBDA_RUNTIME_API` pointing at cargo-lambda's Runtime API emulator
//! (`cargo lambda watch --only-lambda-apis`, so cargo-lambda compiles nothing), and called
//! through the emulator's function URL (`/lambda-url/flowforge-api/...`), which turns each HTTP
//! request into an API Gateway HTTP API (payload 2.0) event.
//!
//! cargo-lambda comes from PyPI (`scripts/install-deps.sh test` installs it); the test finds it
//! at `$FLOWFORGE_CARGO_LAMBDA`, else
//! `${FLOWFORGE_TOOLS_DIR:-~/.cache/flowforge}/cargo-lambda-venv/bin/cargo-lambda`.
//!
//! The test prints the cold start (process start to first reply). To measure the artefact that
//! `cargo lambda build --release` makes instead of the test build, point
//! `FLOWFORGE_LAMBDA_BOOTSTRAP` at it (`target/lambda/flowforge-api/bootstrap`).

mod helpers;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use flowforge_testkit::Child;
use helpers::{error_fields, expect_problem, header};
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
    async fn start(cargo_lambda: &std::path::Path, log: &std::path::Path) -> Emulator {
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
}

#[tokio::test]
async fn on_lambda_a_function_url_creates_and_reads_tasks_and_errors_are_problems() {
    let started = Instant::now();
    let cargo_lambda = cargo_lambda();
    let bootstrap = std::env::var_os("FLOWFORGE_LAMBDA_BOOTSTRAP")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_flowforge-api")));
    let dir = tempfile::tempdir().unwrap();
    let db_url = helpers::migrated_database().await;
    let token = format!("tok-{}", uuid::Uuid::new_v4().simple());
    let tokens = dir.path().join("tokens.json");
    std::fs::write(&tokens, json!({ "tokens": [token] }).to_string()).unwrap();
    let emulator_log = dir.path().join("emulator.log");
    let emulator = Emulator::start(&cargo_lambda, &emulator_log).await;
    let function_log = dir.path().join("function.log");
    let logs = || {
        format!(
            "function log:\n{}\nemulator log:\n{}",
            std::fs::read_to_string(&function_log).unwrap_or_default(),
            std::fs::read_to_string(&emulator_log).unwrap_or_default()
        )
    };

    // Process start to first reply: the request waits in the emulator until the function has
    // initialised (secrets, pool) and asks the Runtime API for its first invocation.
    let client = helpers::client();
    let spawned = Instant::now();
    let mut function = Child::spawn_logged(
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
        &function_log,
    )
    .expect("starting flowforge-api");
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let created = client
        .post(emulator.url("/v1/tasks"))
        .bearer_auth(&token)
        .header("x-request-id", "lambda-create-1")
        .header("traceparent", traceparent)
        .json(&json!({"queue": "lambda", "kind": "noop", "payload": {"n": 1}}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("create through the function URL: {e}\n{}", logs()));
    let cold_start = spawned.elapsed();
    assert_eq!(
        created.status(),
        StatusCode::CREATED,
        "create through the function URL\n{}",
        logs()
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
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let warm = warm.elapsed();
    assert_eq!(read.status(), StatusCode::OK);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["id"], task["id"]);
    assert_eq!(read["payload"], json!({"n": 1}));
    let pool = helpers::connect(&db_url).await;
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM flowforge.tasks WHERE id = $1::text::uuid")
            .bind(task["id"].as_str().unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored, 1, "the acknowledged task is committed");

    // Errors are problem+json, with the same request ids.
    let invalid = client
        .post(emulator.url("/v1/tasks"))
        .bearer_auth(&token)
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
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_problem(unknown, StatusCode::NOT_FOUND).await;

    // SIGTERM (Lambda sends it when it retires an instance): exit 0.
    function.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    let code = function.wait_exit(Duration::from_secs(10)).await.unwrap();
    assert_eq!(code, Some(0), "exit after SIGTERM\n{}", logs());

    eprintln!(
        "lambda ({}): cold start to first response {} ms, a warm GET {} ms, whole test {} ms",
        bootstrap.display(),
        cold_start.as_millis(),
        warm.as_millis(),
        started.elapsed().as_millis()
    );
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
