//! Database credentials rotated under load, both AWS strategies, through Secrets Manager (moto):
//! no request fails, no task is lost, and the processes end up on the new credentials without
//! a restart. Every binary of `DB_SECRET_BINARIES` runs and is checked.

use std::time::Duration;

use anyhow::Result;
use flowforge_e2e::{find, Binary, Load, Rig, Service};
use flowforge_testkit::MotoServer;

const QUEUE: &str = "rotation";

/// The services on the rig's database secret and a tokens secret holding `token`.
async fn start_services(
    rig: &Rig,
    db_secret: &str,
    token: &str,
    refresh: &str,
) -> Result<Vec<Service>> {
    let tokens_secret = rig.secret_name("tokens");
    rig.sm
        .create(
            &tokens_secret,
            &serde_json::json!({ "tokens": [token] }).to_string(),
        )
        .await?;
    rig.start_services(
        &format!("aws-sm:{db_secret}"),
        &format!("aws-sm:{tokens_secret}"),
        refresh,
        QUEUE,
        &[],
    )
    .await
}

/// Every service reports `version` as the database secret's version in use.
async fn assert_all_use_version(services: &[Service], version: &str) -> Result<()> {
    for service in services {
        service
            .wait_metric(
                "flowforge_secret_version_info",
                &[("secret", "db"), ("version", version)],
                |v| v == 1.0,
                Duration::from_secs(30),
            )
            .await?;
    }
    Ok(())
}

#[tokio::test]
async fn single_user_rotation_under_load_fails_nothing_and_loses_nothing() -> Result<()> {
    let rig = Rig::new(MotoServer::shared().await?).await?;
    let user = format!("{}_u", rig.prefix);
    // Values that cannot turn up in a log by chance: the test looks for them there.
    let pw = |n: u32| format!("pw{n}-{}", rig.prefix);
    rig.create_login(&user, &pw(0)).await?;
    let db_secret = rig.secret_name("db");
    rig.sm
        .create(&db_secret, &rig.db_secret_json(&user, &pw(0)))
        .await?;
    // A refresh period far longer than the test: only the auth-failure path can find the
    // new password.
    let token = format!("token-{}", rig.prefix);
    let token = token.as_str();
    let services = start_services(&rig, &db_secret, token, "1h").await?;
    // From the start, every process says which version it uses (never the value).
    let (v0, _) = rig.sm.current(&db_secret).await?;
    assert_all_use_version(&services, &v0).await?;
    for service in &services {
        assert_eq!(
            service
                .metric("flowforge_secret_loaded", &[("secret", "db")])
                .await?,
            1.0,
            "{} reports the secret loaded",
            service.binary.name()
        );
    }
    let load = Load::start(
        &find(&services, Binary::Api).api,
        token,
        QUEUE,
        4,
        Duration::from_millis(20),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 1. As the issue describes it: the password changes, every session is cut, then the
    //    new version is written (PutSecretValue AWSPENDING + UpdateSecretVersionStage).
    rig.set_password(&user, &pw(1)).await?;
    let cut = rig.terminate_sessions(&user).await?;
    assert!(cut > 0, "the services had sessions to terminate");
    let v1 = rig
        .sm
        .rotate(&db_secret, &rig.db_secret_json(&user, &pw(1)))
        .await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_all_use_version(&services, &v1).await?;

    // 2. As AWS's rotation function runs it: createSecret (AWSPENDING), setSecret (ALTER
    //    ROLE), sessions cut meanwhile, and finishSecret only later. Until then only AWSPENDING
    //    logs in; the services find it on the auth failure.
    let v2 = rig
        .sm
        .put_pending(&db_secret, &rig.db_secret_json(&user, &pw(2)))
        .await?;
    rig.set_password(&user, &pw(2)).await?;
    assert!(rig.terminate_sessions(&user).await? > 0);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_all_use_version(&services, &v2).await?;
    rig.sm.promote(&db_secret, &v2).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let before_stop = load.created();
    let report = load.stop().await;
    assert!(
        report.failures.is_empty(),
        "{} of {} requests failed: {:?}",
        report.failures.len(),
        report.failures.len() + report.created.len(),
        &report.failures[..report.failures.len().min(5)]
    );
    assert!(before_stop > 20, "the load ran ({before_stop} tasks)");
    rig.wait_succeeded(&report.created, Duration::from_secs(60))
        .await?;
    // Sessions exist again, so they logged in with the newest password (the others fail).
    let sessions = rig.sessions_by_user().await?;
    assert!(
        sessions.get(&user).copied().unwrap_or(0) > 0,
        "{sessions:?}"
    );
    for service in &services {
        let recovered = service
            .metric(
                "flowforge_db_credential_recoveries_total",
                &[("result", "recovered")],
            )
            .await?;
        assert!(
            recovered >= 1.0,
            "{} recovered through the auth-failure path",
            service.binary.name()
        );
    }
    // No process wrote a password or the token in its logs.
    rig.assert_logs_never_contain(&[&pw(0), &pw(1), &pw(2), token])?;
    Ok(())
}

#[tokio::test]
async fn alternating_users_rotation_moves_every_connection_to_the_new_user() -> Result<()> {
    let rig = Rig::new(MotoServer::shared().await?).await?;
    let user = format!("{}_u", rig.prefix);
    let clone = format!("{user}_clone");
    let pw = |n: u32| format!("pw{n}-{}", rig.prefix);
    rig.create_login(&user, &pw(0)).await?;
    let db_secret = rig.secret_name("db");
    rig.sm
        .create(&db_secret, &rig.db_secret_json(&user, &pw(0)))
        .await?;
    let token = format!("token-{}", rig.prefix);
    let token = token.as_str();
    let services = start_services(&rig, &db_secret, token, "1s").await?;
    let load = Load::start(
        &find(&services, Binary::Api).api,
        token,
        QUEUE,
        4,
        Duration::from_millis(20),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Rotation 1: the clone is created with the same memberships and becomes current.
    let v1 = rig
        .sm
        .put_pending(&db_secret, &rig.db_secret_json(&clone, &pw(1)))
        .await?;
    rig.create_login(&clone, &pw(1)).await?;
    rig.sm.promote(&db_secret, &v1).await?;
    assert_all_use_version(&services, &v1).await?;
    // Connections of the old user retire as they are released (none is killed): soon every
    // session is the clone's.
    rig.wait_sessions_only_of(&clone, Duration::from_secs(30))
        .await?;

    // Rotation 2: back to the first user, whose password changes this time; its old sessions
    // are long gone, and cutting the clone's sessions forces new connections at once.
    let v2 = rig
        .sm
        .put_pending(&db_secret, &rig.db_secret_json(&user, &pw(2)))
        .await?;
    rig.set_password(&user, &pw(2)).await?;
    rig.sm.promote(&db_secret, &v2).await?;
    rig.terminate_sessions(&clone).await?;
    assert_all_use_version(&services, &v2).await?;
    rig.wait_sessions_only_of(&user, Duration::from_secs(30))
        .await?;

    let report = load.stop().await;
    assert!(
        report.failures.is_empty(),
        "{} requests failed: {:?}",
        report.failures.len(),
        &report.failures[..report.failures.len().min(5)]
    );
    assert!(report.created.len() > 20, "the load ran");
    rig.wait_succeeded(&report.created, Duration::from_secs(60))
        .await?;
    rig.assert_logs_never_contain(&[&pw(0), &pw(1), &pw(2), token])?;
    Ok(())
}
