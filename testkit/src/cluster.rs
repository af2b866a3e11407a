use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sqlx::Connection;

/// The script that creates, starts and stops clusters (shared with `make test` and `make up`).
fn pg_script() -> PathBuf {
    if let Ok(p) = std::env::var("FLOWFORGE_PG_SCRIPT") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg.sh")
}

fn run_script(args: &[&str]) -> Result<String> {
    let script = pg_script();
    let out = Command::new("bash")
        .arg(&script)
        .args(args)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} {} failed: {}",
            script.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(stdout.lines().last().unwrap_or_default().trim().to_owned())
}

/// A dedicated PostgreSQL cluster in a temporary directory, destroyed on drop.
pub struct PgCluster {
    dir: tempfile::TempDir,
    url: String,
}

impl PgCluster {
    /// Creates and starts a cluster on a free loopback port.
    pub fn start() -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("flowforge-pg-").tempdir()?;
        let url = run_script(&["start", path_str(dir.path())?])?;
        Ok(PgCluster { dir, url })
    }

    /// Superuser URL of the `postgres` database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Creates a fresh database in this cluster and returns its URL.
    pub async fn create_database(&self) -> Result<String> {
        create_database_in(&self.url).await
    }

    /// Fast shutdown: connections are closed, the server stops.
    pub fn stop(&self) -> Result<()> {
        run_script(&["stop", path_str(self.dir.path())?]).map(|_| ())
    }

    /// Starts the cluster again on the same port.
    pub fn restart(&self) -> Result<()> {
        run_script(&["restart", path_str(self.dir.path())?]).map(|_| ())
    }

    /// The loopback port the cluster listens on.
    pub fn port(&self) -> u16 {
        url_parts(&self.url)
            .and_then(|(_, port)| port.parse().ok())
            .expect("pg.sh prints postgres://USER:PASSWORD@127.0.0.1:PORT/DB")
    }

    /// The superuser (`postgres`) password.
    pub fn password(&self) -> &str {
        url_parts(&self.url)
            .map(|(password, _)| password)
            .expect("pg.sh prints postgres://USER:PASSWORD@127.0.0.1:PORT/DB")
    }

    /// Turns TLS on (`scripts/pg.sh tls`): the server presents `cert_pem` (a PEM certificate,
    /// optionally followed by its intermediates) with `key_pem`. Plain connections keep working;
    /// the setting survives [`PgCluster::restart`]. Fails if the server refuses the pair.
    pub fn enable_tls(&self, cert_pem: &str, key_pem: &str) -> Result<()> {
        let files = tempfile::Builder::new()
            .prefix("flowforge-pg-tls-")
            .tempdir()?;
        let cert = files.path().join("server.crt");
        let key = files.path().join("server.key");
        std::fs::write(&cert, cert_pem)?;
        std::fs::write(&key, key_pem)?;
        run_script(&[
            "tls",
            path_str(self.dir.path())?,
            path_str(&cert)?,
            path_str(&key)?,
        ])
        .map(|_| ())
    }
}

/// (password, port) of `postgres://USER:PASSWORD@HOST:PORT/DB`.
fn url_parts(url: &str) -> Option<(&str, &str)> {
    let rest = url.split_once("://")?.1;
    let (userinfo, hostport) = rest.rsplit_once('@')?;
    let password = userinfo.split_once(':')?.1;
    let hostport = hostport.split(['/', '?']).next()?;
    let port = hostport.rsplit_once(':')?.1;
    Some((password, port))
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Ok(dir) = path_str(self.dir.path()) {
            let _ = run_script(&["destroy", dir]);
        }
    }
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str().context("temporary path is not UTF-8")
}

fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

async fn create_database_in(server_url: &str) -> Result<String> {
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(server_url)
        .await
        .with_context(|| "connecting to the test cluster")?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(replace_database(server_url, &name))
}

/// A new, empty database in the run's shared cluster (`FLOWFORGE_TEST_DATABASE_URL`, set by
/// `make test`), so tests never share data.
pub async fn fresh_database() -> Result<String> {
    let url = std::env::var("FLOWFORGE_TEST_DATABASE_URL").context(
        "FLOWFORGE_TEST_DATABASE_URL is not set: run the tests with `make test`, which starts an \
         ephemeral PostgreSQL cluster for them",
    )?;
    create_database_in(&url).await
}

#[cfg(test)]
mod tests {
    use super::{replace_database, url_parts};

    #[test]
    fn password_and_port_are_read_from_urls() {
        assert_eq!(
            url_parts("postgres://postgres:abc123@127.0.0.1:5432/postgres"),
            Some(("abc123", "5432"))
        );
        assert_eq!(
            url_parts("postgres://postgres:p@127.0.0.1:7/x?sslmode=disable"),
            Some(("p", "7"))
        );
    }

    #[test]
    fn database_names_are_replaced_in_urls() {
        assert_eq!(
            replace_database("postgres://u:p@127.0.0.1:5/postgres", "t_1"),
            "postgres://u:p@127.0.0.1:5/t_1"
        );
        assert_eq!(
            replace_database("postgres://u:p@127.0.0.1:5/postgres?sslmode=disable", "x"),
            "postgres://u:p@127.0.0.1:5/x?sslmode=disable"
        );
    }
}
