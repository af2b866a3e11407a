//! The `flowforge-scaler` binary refuses bad configuration with exit 64 and a one-line reason;
//! `simulate` runs offline from the command line.

use std::process::Stdio;
use std::time::Duration;

async fn run(args: &[&str]) -> (Option<i32>, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_flowforge-scaler"));
    command
        .args(args)
        .env_clear()
        .env("FLOWFORGE_GRPC_ADDR", "127.0.0.1:0")
        .env("FLOWFORGE_ADMIN_ADDR", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("the scaler exits")
        .expect("running the scaler");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn bad_config_exits_64_with_one_line_reason() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let junk = junk.to_str().unwrap();
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let steady = format!("{}/traces/steady.csv", env!("CARGO_MANIFEST_DIR"));
    for (args, mentions) in [
        (vec!["--grpc-tls-cert", junk], "--grpc-tls-key"),
        (
            vec!["--grpc-tls-cert", junk, "--grpc-tls-key", junk],
            "FLOWFORGE_GRPC_TLS_CERT",
        ),
        (
            vec!["--grpc-tls-cert", missing, "--grpc-tls-key", junk],
            "missing.pem",
        ),
        (vec!["--poll-interval", "1ms"], "--poll-interval"),
        (vec!["--grpc-addr", "nowhere"], "grpc-addr"),
        (vec!["local", "--max-workers", "0"], "--max-workers"),
        (vec!["local", "--worker-bin", missing], "missing.pem"),
        (vec!["simulate", "--trace", missing], "missing.pem"),
        (vec!["simulate", "--trace", junk], "junk.pem"),
        (
            vec!["simulate", "--trace", &steady, "--policy", "hpa-magic"],
            "hpa-magic",
        ),
        (
            vec!["simulate", "--trace", &steady, "--concurrency", "0"],
            "--concurrency",
        ),
    ] {
        let (code, stderr) = run(&args).await;
        assert_eq!(code, Some(64), "{args:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: one line, got {stderr}");
        assert!(lines[0].contains(mentions), "{args:?}: {}", lines[0]);
    }
    let (code, _) = run(&["--help"]).await;
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn simulate_needs_no_database_and_writes_its_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("chart.svg");
    let json = dir.path().join("report.json");
    let steady = format!("{}/traces/steady.csv", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_flowforge-scaler"))
        .args(["simulate", "--trace", &steady, "--chart"])
        .arg(&chart)
        .arg("--json")
        .arg(&json)
        .env_clear()
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("running the simulator");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    for policy in ["keda-postgresql-default", "flowforge-push-recommended"] {
        assert!(table.contains(policy), "{policy} missing from:\n{table}");
    }
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(
        svg.starts_with("<svg") || svg.starts_with("<?xml"),
        "{}",
        &svg[..80.min(svg.len())]
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(report.is_object(), "{report}");
}

/// The scaler publishes the task-wait burn rates against its own objective and windows: they
/// must be the SLO spec's, or its figures and the generated rules would disagree.
#[test]
fn defaults_match_the_slo_spec() {
    use clap::Parser as _;
    let spec_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../slo/slos.yaml");
    let spec: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(spec_path).unwrap()).unwrap();
    let task_wait = spec["slos"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str() == Some("task-wait"))
        .expect("a task-wait SLO in slo/slos.yaml");
    let objective = task_wait["objective"].as_f64().unwrap() / 100.0;
    let config = flowforge_scaler::config::Config::parse_from(["flowforge-scaler"]);
    assert!(
        (config.slo_task_wait_objective - objective).abs() < 1e-12,
        "scaler {} vs spec {objective}",
        config.slo_task_wait_objective
    );
    let windows: Vec<&str> = spec["windows"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    let published: Vec<&str> = flowforge_scaler::slo::WINDOWS
        .iter()
        .map(|(w, _)| *w)
        .collect();
    assert_eq!(published, windows);
    assert_eq!(spec["window"].as_str(), Some("30d"));
    // The deployment sets the same objective (and no other threshold than the spec's).
    let kustomization = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../k8s/base/scaler/kustomization.yaml"
    ))
    .unwrap();
    let setting = |name: &str| -> Option<String> {
        kustomization
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("- {name}=")))
            .map(str::to_owned)
    };
    let deployed: f64 = setting("FLOWFORGE_SLO_TASK_WAIT_OBJECTIVE")
        .expect("k8s/base/scaler sets the objective")
        .parse()
        .unwrap();
    assert!(
        (deployed - objective).abs() < 1e-12,
        "k8s {deployed} vs spec {objective}"
    );
    let threshold = task_wait["threshold"]
        .as_str()
        .expect("the task-wait SLO's threshold in slo/slos.yaml");
    assert_eq!(
        format!("{}s", config.slo_task_wait.as_secs()),
        threshold,
        "the scaler's default FLOWFORGE_SLO_TASK_WAIT"
    );
    if let Some(deployed) = setting("FLOWFORGE_SLO_TASK_WAIT") {
        assert_eq!(deployed, threshold, "k8s/base/scaler");
    }
}
