use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral loopback port")
}

/// Path of a workspace binary built alongside the running executable: next to it (a binary in
/// target/<profile>/) or one level up (a test in target/<profile>/deps/).
pub fn bin_path(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let here = exe
        .parent()
        .context("the running executable has no directory")?;
    let candidates = [Some(here), here.parent()];
    for dir in candidates.into_iter().flatten() {
        let path = dir.join(name);
        if path.is_file() {
            return Ok(path);
        }
    }
    bail!(
        "{name} not found next to {} or one level up: build the workspace binaries first (cargo build)",
        exe.display()
    )
}

fn command(program: &std::path::Path, args: &[&str], envs: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

/// A child process that is killed (SIGKILL) when dropped, so a failing test leaves nothing behind.
pub struct Child {
    inner: std::process::Child,
    pub name: String,
}

impl Child {
    /// Spawns `program` with `envs` added to a clean-ish environment; output is discarded unless
    /// `TEST_LOG` is set.
    pub fn spawn(
        program: &std::path::Path,
        args: &[&str],
        envs: &[(&str, String)],
    ) -> Result<Self> {
        let mut cmd = command(program, args, envs);
        if std::env::var_os("TEST_LOG").is_none() {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        Self::start(cmd, program)
    }

    /// Like [`Child::spawn`], with stdout and stderr appended to the file `log` (for tests that
    /// read what the process logged).
    pub fn spawn_logged(
        program: &std::path::Path,
        args: &[&str],
        envs: &[(&str, String)],
        log: &std::path::Path,
    ) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut cmd = command(program, args, envs);
        cmd.stdout(file.try_clone()?).stderr(file);
        Self::start(cmd, program)
    }

    fn start(mut cmd: Command, program: &std::path::Path) -> Result<Self> {
        let inner = cmd
            .spawn()
            .with_context(|| format!("spawning {}", program.display()))?;
        Ok(Child {
            inner,
            name: program.display().to_string(),
        })
    }

    /// Wraps an already spawned process (for callers that set up its stdio themselves).
    pub(crate) fn from_std(inner: std::process::Child, name: String) -> Self {
        Child { inner, name }
    }

    /// The exit status if the process has exited, without waiting.
    pub fn try_wait(&mut self) -> Result<Option<std::process::ExitStatus>> {
        self.inner.try_wait().context("checking the child's status")
    }

    /// Sends a signal (SIGTERM for a drain, SIGKILL for a crash).
    pub fn signal(&self, signal: Signal) -> Result<()> {
        kill(Pid::from_raw(self.inner.id() as i32), signal).context("sending signal")
    }

    /// Waits up to `timeout` for the process to exit; returns its exit code (None if killed by a signal).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<Option<i32>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.inner.try_wait()? {
                return Ok(status.code());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("{} did not exit within {timeout:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.inner.kill();
        let _ = self.inner.wait();
    }
}

/// Polls `url` until it answers 200, for up to `timeout`.
pub async fn wait_for_http(url: &str, timeout: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(status) = http_get_status(url).await {
            if status == 200 {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{url} did not answer 200 within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn http_get_status(url: &str) -> Result<u16> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    Ok(client.get(url).send().await?.status().as_u16())
}
