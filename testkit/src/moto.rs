//! moto, the AWS emulator, as the AWS Secrets Manager the tests talk to, and an admin client
//! that plays the part of a rotation Lambda.
//!
//! `make test` (scripts/test.sh) runs one moto server for the whole run
//! (`FLOWFORGE_TEST_MOTO_URL`); [`MotoServer::shared`] uses it, so tests must give their
//! secrets unique names. Tests that stop, restart or pause the store start a server of their own
//! with [`MotoServer::start`] (the `moto_server` of `FLOWFORGE_MOTO_SERVER`, exported by
//! scripts/test.sh, or of the venv that scripts/install-deps.sh creates).
//!
//! Known moto behaviour (see testkit/tests/moto.rs, which checks it):
//! - `RotateSecret` without a Lambda leaves an empty AWSCURRENT: rotate with
//!   [`SecretsAdmin::rotate`] (PutSecretValue AWSPENDING + UpdateSecretVersionStage) instead.
//! - `GetSecretValue` without `VersionStage` can return a stale version after
//!   `UpdateSecretVersionStage`: [`SecretsAdmin::current`] always asks for AWSCURRENT.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use aws_sdk_secretsmanager::Client;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use nix::sys::signal::Signal;

use crate::process::{free_port, Child};

/// The region every client and child process is configured with.
pub const MOTO_REGION: &str = "us-east-1";
/// moto accepts any credentials; these are the ones its documentation uses.
const ACCESS_KEY: &str = "testing";
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Stage labels of Secrets Manager versions.
pub const AWSCURRENT: &str = "AWSCURRENT";
pub const AWSPENDING: &str = "AWSPENDING";
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";

/// A moto server on 127.0.0.1: either the run's shared one or a dedicated child process,
/// killed on drop.
pub struct MotoServer {
    url: String,
    port: u16,
    own: Option<Dedicated>,
}

struct Dedicated {
    program: PathBuf,
    /// stdout + stderr of every process started for this server (kept for error messages).
    log: tempfile::NamedTempFile,
    child: Option<Child>,
}

impl std::fmt::Debug for MotoServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MotoServer")
            .field("url", &self.url)
            .field("dedicated", &self.own.is_some())
            .finish()
    }
}

impl MotoServer {
    /// Starts a dedicated server on a free loopback port and waits (up to 30 s) until it answers.
    pub async fn start() -> Result<Self> {
        let program = moto_server_program()?;
        let log = tempfile::Builder::new()
            .prefix("flowforge-moto-")
            .suffix(".log")
            .tempfile()
            .context("creating the moto log file")?;
        let mut last_error = None;
        // A port taken between free_port() and moto's bind makes moto exit: take another one.
        for _ in 0..3 {
            let port = free_port();
            match spawn_ready(&program, port, log.path()).await? {
                Spawned::Ready(child) => {
                    return Ok(MotoServer {
                        url: format!("http://127.0.0.1:{port}"),
                        port,
                        own: Some(Dedicated {
                            program,
                            log,
                            child: Some(child),
                        }),
                    })
                }
                Spawned::Exited(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("moto server did not start")))
    }

    /// The run's shared server (`FLOWFORGE_TEST_MOTO_URL`, set by `make test`) if there is one,
    /// else a dedicated one. The shared server cannot be stopped, restarted or paused.
    pub async fn shared() -> Result<Self> {
        match std::env::var("FLOWFORGE_TEST_MOTO_URL") {
            Ok(url) if !url.trim().is_empty() => {
                let url = url.trim().trim_end_matches('/').to_owned();
                let port = url
                    .rsplit_once(':')
                    .and_then(|(_, p)| p.parse().ok())
                    .with_context(|| {
                        format!("FLOWFORGE_TEST_MOTO_URL={url:?} is not http://HOST:PORT")
                    })?;
                Ok(MotoServer {
                    url,
                    port,
                    own: None,
                })
            }
            _ => Self::start().await,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether this is the run's shared server (not a child of this test).
    pub fn is_shared(&self) -> bool {
        self.own.is_none()
    }

    fn dedicated(&mut self, what: &str) -> Result<&mut Dedicated> {
        self.own.as_mut().ok_or_else(|| shared_error(what))
    }

    /// Kills the server (SIGKILL) and waits for it: the port then refuses connections.
    /// No error if it is already stopped.
    pub fn stop(&mut self) -> Result<()> {
        let own = self.dedicated("stop")?;
        // Child's Drop kills and reaps (also a paused process).
        drop(own.child.take());
        Ok(())
    }

    /// Stops the server (if running) and starts a new one on the same port. moto keeps no
    /// state across restarts: every secret is gone.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop()?;
        let port = self.port;
        let own = self.dedicated("restart")?;
        match spawn_ready(&own.program, port, own.log.path()).await? {
            Spawned::Ready(child) => {
                own.child = Some(child);
                Ok(())
            }
            Spawned::Exited(e) => Err(e.context(format!("restarting moto on port {port}"))),
        }
    }

    /// SIGSTOP: the port still accepts connections (the kernel queues them) but nothing
    /// answers, so requests hang until the client's timeouts fire.
    pub fn pause(&self) -> Result<()> {
        self.signal("pause", Signal::SIGSTOP)
    }

    /// SIGCONT after [`MotoServer::pause`]: queued requests are then answered.
    pub fn resume(&self) -> Result<()> {
        self.signal("resume", Signal::SIGCONT)
    }

    fn signal(&self, what: &str, signal: Signal) -> Result<()> {
        let own = self.own.as_ref().ok_or_else(|| shared_error(what))?;
        own.child
            .as_ref()
            .with_context(|| format!("cannot {what} a stopped moto server"))?
            .signal(signal)
    }

    /// Environment for a child process whose AWS SDK must use this server for Secrets Manager:
    /// endpoint, region and static credentials, with instance metadata and the shared
    /// config/credentials files disabled, so nothing probes the network or the home directory.
    pub fn aws_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", self.url.as_str()),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false"),
            ("AWS_REGION", MOTO_REGION),
            ("AWS_DEFAULT_REGION", MOTO_REGION),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", ACCESS_KEY),
            // An inherited session token would be sent with the test credentials; the SDK
            // ignores an empty one.
            ("AWS_SESSION_TOKEN", ""),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// A Secrets Manager client for this server, configured explicitly (endpoint, region,
    /// static credentials, rustls with ring, 30 s per operation): nothing comes from the
    /// process environment or profile files.
    pub async fn client(&self) -> Client {
        secrets_manager_client(&self.url)
    }

    /// [`SecretsAdmin`] over [`MotoServer::client`].
    pub async fn admin(&self) -> SecretsAdmin {
        SecretsAdmin::new(self.client().await)
    }
}

fn shared_error(what: &str) -> anyhow::Error {
    anyhow!(
        "cannot {what} the shared moto server (FLOWFORGE_TEST_MOTO_URL): use \
         MotoServer::start() for a server of the test's own"
    )
}

/// The Secrets Manager client [`MotoServer::client`] builds, for any endpoint URL.
pub fn secrets_manager_client(endpoint_url: &str) -> Client {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint_url)
        .region(Region::new(MOTO_REGION))
        .credentials_provider(Credentials::new(
            ACCESS_KEY,
            ACCESS_KEY,
            None,
            None,
            "flowforge-testkit",
        ))
        .http_client(http_client)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

enum Spawned {
    Ready(Child),
    /// The process exited before answering (e.g. its port was taken).
    Exited(anyhow::Error),
}

async fn spawn_ready(program: &Path, port: u16, log: &Path) -> Result<Spawned> {
    let out = std::fs::OpenOptions::new()
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let err = out.try_clone()?;
    let port_arg = port.to_string();
    let inner = Command::new(program)
        .args(["-H", "127.0.0.1", "-p", &port_arg])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("spawning {}", program.display()))?;
    let mut child = Child::from_std(inner, format!("moto_server on 127.0.0.1:{port}"));

    let probe = format!("http://127.0.0.1:{port}/moto-api/");
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()?;
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Spawned::Exited(anyhow!(
                "{} exited ({status}) before answering; its output ({}):\n{}",
                program.display(),
                log.display(),
                log_tail(log)
            )));
        }
        if let Ok(resp) = http.get(&probe).send().await {
            if resp.status().is_success() {
                return Ok(Spawned::Ready(child));
            }
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "{} did not answer on {probe} within {START_TIMEOUT:?}; its output ({}):\n{}",
                program.display(),
                log.display(),
                log_tail(log)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// `FLOWFORGE_MOTO_SERVER`, else the venv of scripts/install-deps.sh
/// (`${FLOWFORGE_TOOLS_DIR:-$HOME/.cache/flowforge}/moto-venv/bin/moto_server`), else
/// `moto_server` on PATH.
fn moto_server_program() -> Result<PathBuf> {
    const HINT: &str = "install it with `bash scripts/install-deps.sh test` (make test does)";
    if let Some(p) = std::env::var_os("FLOWFORGE_MOTO_SERVER").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        bail!(
            "FLOWFORGE_MOTO_SERVER={} does not exist: {HINT}",
            p.display()
        );
    }
    let tools = match std::env::var_os("FLOWFORGE_TOOLS_DIR").filter(|p| !p.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/flowforge")),
    };
    if let Some(venv) = tools.map(|t| t.join("moto-venv/bin/moto_server")) {
        if venv.is_file() {
            return Ok(venv);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(p) = std::env::split_paths(&path)
            .map(|dir| dir.join("moto_server"))
            .find(|p| p.is_file())
        {
            return Ok(p);
        }
    }
    bail!("moto_server not found (FLOWFORGE_MOTO_SERVER, the moto venv, PATH): {HINT}")
}

/// Secrets Manager operations a test needs to act like a rotation Lambda (and to look at the
/// result). `id` is a secret's name or ARN.
#[derive(Debug, Clone)]
pub struct SecretsAdmin {
    client: Client,
}

fn sdk_error<E: std::error::Error>(what: String) -> impl FnOnce(E) -> anyhow::Error {
    move |e| anyhow!("{what}: {}", DisplayErrorContext(&e))
}

impl SecretsAdmin {
    pub fn new(client: Client) -> Self {
        SecretsAdmin { client }
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// CreateSecret with a string value; returns the ARN.
    pub async fn create(&self, name: &str, value: &str) -> Result<String> {
        let out = self
            .client
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .map_err(sdk_error(format!("CreateSecret {name}")))?;
        out.arn()
            .map(str::to_owned)
            .with_context(|| format!("CreateSecret {name} returned no ARN"))
    }

    /// PutSecretValue without stages: the new version becomes AWSCURRENT at once. Returns its
    /// version id.
    pub async fn put_current(&self, id: &str, value: &str) -> Result<String> {
        let out = self
            .client
            .put_secret_value()
            .secret_id(id)
            .secret_string(value)
            .send()
            .await
            .map_err(sdk_error(format!("PutSecretValue {id}")))?;
        out.version_id()
            .map(str::to_owned)
            .with_context(|| format!("PutSecretValue {id} returned no version id"))
    }

    /// PutSecretValue with VersionStages=[AWSPENDING] (a rotation's createSecret step).
    /// Returns the new version id.
    pub async fn put_pending(&self, id: &str, value: &str) -> Result<String> {
        let out = self
            .client
            .put_secret_value()
            .secret_id(id)
            .secret_string(value)
            .version_stages(AWSPENDING)
            .send()
            .await
            .map_err(sdk_error(format!("PutSecretValue {id} (AWSPENDING)")))?;
        out.version_id()
            .map(str::to_owned)
            .with_context(|| format!("PutSecretValue {id} returned no version id"))
    }

    /// UpdateSecretVersionStage AWSCURRENT to `version_id`, removed from the version holding it
    /// now (a rotation's finishSecret step). No-op if `version_id` already is AWSCURRENT.
    pub async fn promote(&self, id: &str, version_id: &str) -> Result<()> {
        let current = self
            .stages(id)
            .await?
            .into_iter()
            .find(|(_, stages)| stages.iter().any(|s| s == AWSCURRENT))
            .map(|(version, _)| version);
        if current.as_deref() == Some(version_id) {
            return Ok(());
        }
        self.client
            .update_secret_version_stage()
            .secret_id(id)
            .version_stage(AWSCURRENT)
            .move_to_version_id(version_id)
            .set_remove_from_version_id(current)
            .send()
            .await
            .map_err(sdk_error(format!(
                "UpdateSecretVersionStage {id} AWSCURRENT -> {version_id}"
            )))?;
        Ok(())
    }

    /// A whole rotation: [`SecretsAdmin::put_pending`] then [`SecretsAdmin::promote`].
    /// Returns the new (now AWSCURRENT) version id.
    pub async fn rotate(&self, id: &str, value: &str) -> Result<String> {
        let version = self.put_pending(id, value).await?;
        self.promote(id, &version).await?;
        Ok(version)
    }

    /// (version id, value) of AWSCURRENT, asked for explicitly.
    pub async fn current(&self, id: &str) -> Result<(String, String)> {
        self.get(id, AWSCURRENT).await
    }

    /// (version id, value) of the version holding `stage`.
    pub async fn get(&self, id: &str, stage: &str) -> Result<(String, String)> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(id)
            .version_stage(stage)
            .send()
            .await
            .map_err(sdk_error(format!("GetSecretValue {id} {stage}")))?;
        let version = out
            .version_id()
            .with_context(|| format!("GetSecretValue {id} {stage} returned no version id"))?;
        let value = out
            .secret_string()
            .with_context(|| format!("GetSecretValue {id} {stage} returned no SecretString"))?;
        Ok((version.to_owned(), value.to_owned()))
    }

    /// DescribeSecret's VersionIdsToStages: version id -> stage labels.
    pub async fn stages(&self, id: &str) -> Result<HashMap<String, Vec<String>>> {
        let out = self
            .client
            .describe_secret()
            .secret_id(id)
            .send()
            .await
            .map_err(sdk_error(format!("DescribeSecret {id}")))?;
        Ok(out.version_ids_to_stages().cloned().unwrap_or_default())
    }

    /// DeleteSecret without a recovery window (gone at once).
    pub async fn delete(&self, id: &str) -> Result<()> {
        self.client
            .delete_secret()
            .secret_id(id)
            .force_delete_without_recovery(true)
            .send()
            .await
            .map_err(sdk_error(format!("DeleteSecret {id}")))?;
        Ok(())
    }
}
