//! Credential rotation under steady load: how long after a rotation is written the first
//! connection uses the new credentials, through each path, and how many requests fail.
//!
//! The real `flowforge-api` and `flowforge-worker` (release builds next to this binary) read
//! their database credentials from Secrets Manager (a dedicated moto server) while a steady
//! load of `POST /v1/tasks` runs. Rotations alternate between:
//! - **auth-failure path** (single user, in the order of the issue's test): `ALTER ROLE ...
//!   PASSWORD`, every session terminated, then the new version written (AWSPENDING +
//!   UpdateSecretVersionStage). The refresh period is far away, so only the processes' reaction
//!   to the refused login can find the new password.
//! - **periodic path** (alternating users): the other user gets a new password and becomes
//!   AWSCURRENT; nothing is refused, the processes notice on their next periodic check.
//!
//! The delay is measured in PostgreSQL's clock: from the moment the new version was readable
//! (AWSPENDING for the auth-failure path, AWSCURRENT for the periodic one) to the
//! `backend_start` of the first session logged in with it.

use std::time::Duration;

use anyhow::{bail, Result};
use flowforge_e2e::{find, Binary, Load, Rig};
use flowforge_testkit::MotoServer;

pub struct Settings {
    pub rotations: usize,
    /// Refresh period of the periodic path.
    pub refresh: Duration,
}

pub async fn run(settings: Settings) -> Result<()> {
    let rig = Rig::new(MotoServer::start().await?).await?;
    let users = [
        format!("{}_u", rig.prefix),
        format!("{}_u_clone", rig.prefix),
    ];
    rig.create_login(&users[0], "pw-0").await?;
    rig.create_login(&users[1], "pw-0").await?;
    let db_secret = rig.secret_name("db");
    rig.sm
        .create(&db_secret, &rig.db_secret_json(&users[0], "pw-0"))
        .await?;
    let tokens_secret = rig.secret_name("tokens");
    rig.sm
        .create(&tokens_secret, r#"{"tokens":["bench"]}"#)
        .await?;
    let refresh = format!("{}ms", settings.refresh.as_millis());
    let services = rig
        .start_services(
            &format!("aws-sm:{db_secret}"),
            &format!("aws-sm:{tokens_secret}"),
            &refresh,
            "rotation",
            &[("RUST_LOG", "warn".to_owned())],
        )
        .await?;
    let api = find(&services, Binary::Api);
    // About 200 requests per second from 4 clients.
    let load = Load::start(&api.api, "bench", "rotation", 4, Duration::from_millis(20));
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut current = 0usize;
    let mut auth_failure_ms = Vec::new();
    let mut periodic_ms = Vec::new();
    for i in 0..settings.rotations {
        let password = format!("pw-{}", i + 1);
        if i % 2 == 0 {
            let user = &users[current];
            rig.set_password(user, &password).await?;
            let cut_at = db_now(&rig).await?;
            rig.terminate_sessions(user).await?;
            let version = rig
                .sm
                .put_pending(&db_secret, &rig.db_secret_json(user, &password))
                .await?;
            // Readable from here on (the processes may use it as AWSPENDING already).
            let written = db_now(&rig).await?;
            rig.sm.promote(&db_secret, &version).await?;
            let first = first_session(&rig, user, cut_at, Duration::from_secs(10)).await?;
            auth_failure_ms.push((first - written).max(0.0) * 1000.0);
        } else {
            let next = 1 - current;
            let user = &users[next];
            rig.set_password(user, &password).await?;
            let before = db_now(&rig).await?;
            rig.sm
                .rotate(&db_secret, &rig.db_secret_json(user, &password))
                .await?;
            // The periodic check only looks at AWSCURRENT: written once promoted.
            let written = db_now(&rig).await?;
            let first = first_session(&rig, user, before, settings.refresh * 3).await?;
            periodic_ms.push((first - written).max(0.0) * 1000.0);
            current = next;
        }
        let (path, ms) = if i % 2 == 0 {
            ("auth-failure", auth_failure_ms.last())
        } else {
            ("periodic", periodic_ms.last())
        };
        eprintln!(
            "rotation {} of {} ({path} path): first connection {:.0} ms after the write",
            i + 1,
            settings.rotations,
            ms.copied().unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let report = load.stop().await;
    let requests = report.created.len() + report.failures.len();
    let lost = match rig
        .wait_succeeded(&report.created, Duration::from_secs(120))
        .await
    {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("{err}");
            1
        }
    };
    println!(
        "{}",
        serde_json::json!({
            "test": "rotation",
            "rotations": settings.rotations,
            "refresh_ms": settings.refresh.as_millis() as u64,
            "auth_failure_ms": auth_failure_ms,
            "periodic_ms": periodic_ms,
            "requests": requests,
            "failed_requests": report.failures.len(),
            "failures_sample": &report.failures[..report.failures.len().min(3)],
            "tasks_not_succeeded": lost,
        })
    );
    Ok(())
}

/// PostgreSQL's clock, as seconds since the epoch.
async fn db_now(rig: &Rig) -> Result<f64> {
    Ok(
        sqlx::query_scalar("SELECT extract(epoch FROM clock_timestamp())::float8")
            .fetch_one(&rig.admin)
            .await?,
    )
}

/// `backend_start` (epoch seconds) of the first session of `user` started after `after`.
async fn first_session(rig: &Rig, user: &str, after: f64, timeout: Duration) -> Result<f64> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let first: Option<f64> = sqlx::query_scalar(
            "SELECT extract(epoch FROM min(backend_start))::float8 FROM pg_stat_activity \
             WHERE usename = $1 AND backend_start > to_timestamp($2)",
        )
        .bind(user)
        .bind(after)
        .fetch_one(&rig.admin)
        .await?;
        if let Some(t) = first {
            return Ok(t);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("no session of {user} within {timeout:?} of the rotation");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
