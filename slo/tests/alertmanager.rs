//! The Alertmanager configuration: amtool's checks, the routes, and the inhibitions on a real
//! Alertmanager listening on 127.0.0.1.

mod helpers;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use helpers::{repo_root, run, text, tool};
use serde_json::{json, Value};

const CONFIG: &str = "alerts/alertmanager.yml";

#[test]
fn config_passes_amtool_check() {
    let amtool = tool(&["amtool"]);
    let out = run(&amtool, &["check-config", CONFIG]);
    assert!(
        out.status.success(),
        "amtool check-config failed:\n{}",
        text(&out)
    );
}

fn receiver_of(labels: &[&str]) -> String {
    let amtool = tool(&["amtool"]);
    let config = format!("--config.file={CONFIG}");
    let mut args = vec!["config", "routes", "test", config.as_str()];
    args.extend_from_slice(labels);
    let out = run(&amtool, &args);
    assert!(
        out.status.success(),
        "amtool config routes test {labels:?}:\n{}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn pages_and_tickets_reach_their_receivers() {
    assert_eq!(
        receiver_of(&[
            "alertname=TaskWaitBudgetBurn",
            "severity=page",
            "slo=task-wait"
        ]),
        "page"
    );
    assert_eq!(
        receiver_of(&[
            "alertname=TaskWaitBudgetBurn",
            "severity=ticket",
            "slo=task-wait"
        ]),
        "ticket"
    );
    assert_eq!(
        receiver_of(&[
            "alertname=FlowForgeBacklogNoWorkers",
            "severity=page",
            "queue=default"
        ]),
        "page"
    );
    assert_eq!(
        receiver_of(&["alertname=FlowForgeSecretRefreshFailing", "severity=ticket"]),
        "ticket"
    );
    // Without a severity: still someone's ticket.
    assert_eq!(receiver_of(&["alertname=Unknown"]), "ticket");
}

/// A running Alertmanager, stopped when dropped.
struct Alertmanager {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request to 127.0.0.1:port; returns (status, body).
fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn start_alertmanager() -> Alertmanager {
    let binary = tool(&["prometheus-alertmanager", "alertmanager"]);
    let dir = tempfile::tempdir().unwrap();
    // The receivers point at an in-cluster relay: send to a closed loopback port instead.
    let config = std::fs::read_to_string(repo_root().join(CONFIG))
        .unwrap()
        .replace(
            "http://alert-relay.monitoring.svc.cluster.local:8080",
            "http://127.0.0.1:9",
        );
    let config_path = dir.path().join("alertmanager.yml");
    std::fs::write(&config_path, config).unwrap();
    let port = free_port();
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting alertmanager");
    let am = Alertmanager {
        child,
        port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok((200, _)) = http(port, "GET", "/-/ready", None) {
            return am;
        }
        assert!(
            Instant::now() < deadline,
            "alertmanager did not become ready on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn alert(labels: &[(&str, &str)]) -> Value {
    let labels: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({"labels": labels, "annotations": {"summary": "test"}})
}

fn key(alert: &Value) -> String {
    let l = &alert["labels"];
    format!(
        "{}/{}/{}",
        l["alertname"].as_str().unwrap_or(""),
        l["severity"].as_str().unwrap_or(""),
        l["slo"].as_str().or(l["queue"].as_str()).unwrap_or("")
    )
}

#[test]
fn a_page_inhibits_the_ticket_of_its_slo_and_nothing_else() {
    let am = start_alertmanager();
    let alerts = json!([
        alert(&[
            ("alertname", "TaskWaitBudgetBurn"),
            ("severity", "page"),
            ("slo", "task-wait")
        ]),
        alert(&[
            ("alertname", "TaskWaitBudgetBurn"),
            ("severity", "ticket"),
            ("slo", "task-wait")
        ]),
        alert(&[
            ("alertname", "ApiLatencyBudgetBurn"),
            ("severity", "ticket"),
            ("slo", "api-latency")
        ]),
        alert(&[
            ("alertname", "FlowForgeBacklogNoWorkers"),
            ("severity", "page"),
            ("queue", "emails")
        ]),
        alert(&[
            ("alertname", "FlowForgeQueueBacklog"),
            ("severity", "ticket"),
            ("queue", "emails")
        ]),
        alert(&[
            ("alertname", "FlowForgeQueueBacklog"),
            ("severity", "ticket"),
            ("queue", "default")
        ]),
        alert(&[
            ("alertname", "FlowForgeSecretRefreshFailing"),
            ("severity", "ticket"),
            ("secret", "db")
        ]),
    ]);
    let (status, body) = http(am.port, "POST", "/api/v2/alerts", Some(&alerts)).unwrap();
    assert_eq!(status, 200, "{body}");

    let expected_inhibited = [
        "TaskWaitBudgetBurn/ticket/task-wait",
        "FlowForgeQueueBacklog/ticket/emails",
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = http(am.port, "GET", "/api/v2/alerts", None).unwrap();
        assert_eq!(status, 200, "{body}");
        let listed: Vec<Value> = serde_json::from_str(&body).unwrap();
        let inhibited: Vec<String> = listed
            .iter()
            .filter(|a| {
                a["status"]["inhibitedBy"]
                    .as_array()
                    .is_some_and(|by| !by.is_empty())
            })
            .map(key)
            .collect();
        let mut sorted = inhibited.clone();
        sorted.sort();
        let mut want: Vec<String> = expected_inhibited.iter().map(|s| s.to_string()).collect();
        want.sort();
        if listed.len() == 7 && sorted == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected exactly {want:?} inhibited, got {sorted:?} of {} alerts",
            listed.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
