//! A real Prometheus server (Debian's `prometheus` package, installed by
//! `scripts/install-deps.sh test`) on a loopback port with a throwaway data directory, and its
//! HTTP query API.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::{free_port, wait_for_http, Child};

/// A running Prometheus, killed when dropped (its data directory goes with it).
pub struct Prometheus {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    _child: Child,
    _dir: tempfile::TempDir,
}

/// One series of an instant query's result: its labels and value.
#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: serde_json::Map<String, serde_json::Value>,
    pub value: f64,
}

impl Prometheus {
    /// Starts Prometheus with `config` (prometheus.yml text; rule files named in it must be
    /// absolute paths) and waits until it is ready. Its output goes to `log` if given.
    pub async fn start(config: &str, log: Option<&Path>) -> Result<Prometheus> {
        let binary = which("prometheus").context(
            "prometheus not found on PATH: run scripts/install-deps.sh test (or make test)",
        )?;
        let dir = tempfile::tempdir()?;
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config)?;
        let port = free_port();
        let args = [
            format!("--config.file={}", config_path.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--web.enable-lifecycle".to_owned(),
            "--log.level=warn".to_owned(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = match log {
            Some(log) => Child::spawn_logged(&binary, &args, &[], log)?,
            None => Child::spawn(&binary, &args, &[])?,
        };
        let url = format!("http://127.0.0.1:{port}");
        wait_for_http(&format!("{url}/-/ready"), Duration::from_secs(60))
            .await
            .context("Prometheus did not become ready")?;
        Ok(Prometheus {
            url,
            _child: child,
            _dir: dir,
        })
    }

    /// An instant query at the current time; an error if Prometheus rejects the expression.
    pub async fn query(&self, expr: &str) -> Result<Vec<Sample>> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()?;
        let body: serde_json::Value = client
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", expr)])
            .send()
            .await?
            .json()
            .await?;
        if body["status"] != "success" {
            bail!("query {expr:?} failed: {}", body["error"]);
        }
        let result = &body["data"]["result"];
        let samples = match body["data"]["resultType"].as_str() {
            Some("vector") => result
                .as_array()
                .map(|series| {
                    series
                        .iter()
                        .map(|s| Sample {
                            labels: s["metric"].as_object().cloned().unwrap_or_default(),
                            value: parse_value(&s["value"][1]),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            Some("scalar") => vec![Sample {
                labels: Default::default(),
                value: parse_value(&result[1]),
            }],
            other => bail!("query {expr:?}: unexpected result type {other:?}"),
        };
        Ok(samples)
    }

    /// Targets' health by job: `(job, instance, health)`.
    pub async fn targets(&self) -> Result<Vec<(String, String, String)>> {
        let client = reqwest::Client::builder().no_proxy().build()?;
        let body: serde_json::Value = client
            .get(format!("{}/api/v1/targets", self.url))
            .send()
            .await?
            .json()
            .await?;
        Ok(body["data"]["activeTargets"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .map(|t| {
                        (
                            t["labels"]["job"].as_str().unwrap_or_default().to_owned(),
                            t["labels"]["instance"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                            t["health"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

fn parse_value(v: &serde_json::Value) -> f64 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN)
}

/// `name` on PATH.
pub fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}
