//! API tokens rotated through Secrets Manager, a secret store that goes away and comes back,
//! invalid secret values, a secret that was never loaded, and a file secret rotated under load.

use std::time::{Duration, Instant};

use anyhow::Result;
use flowforge_e2e::{client, eventually, find, Binary, Load, Rig};
use flowforge_testkit::MotoServer;
use serde_json::json;

fn tokens(list: &[&str]) -> String {
    json!({ "tokens": list }).to_string()
}

/// Status of `POST /v1/tasks` with `token`.
async fn create_status(api: &str, token: &str) -> Result<u16> {
    let r = client()
        .post(format!("{api}/v1/tasks"))
        .bearer_auth(token)
        .json(&json!({"queue": "tokens", "kind": "noop"}))
        .send()
        .await?;
    Ok(r.status().as_u16())
}

#[tokio::test]
async fn rotated_api_tokens_are_accepted_at_once_and_old_ones_only_within_the_grace() -> Result<()>
{
    let rig = Rig::new(MotoServer::shared().await?).await?;
    let user = format!("{}_u", rig.prefix);
    let password = format!("pw-{}", rig.prefix);
    rig.create_login(&user, &password).await?;
    let db_secret = rig.secret_name("db");
    rig.sm
        .create(&db_secret, &rig.db_secret_json(&user, &password))
        .await?;
    let tokens_secret = rig.secret_name("tokens");
    // Values that cannot turn up in a log by chance: the test looks for them there.
    let (old_token, new_token) = (format!("old-{}", rig.prefix), format!("new-{}", rig.prefix));
    let (old_token, new_token) = (old_token.as_str(), new_token.as_str());
    rig.sm.create(&tokens_secret, &tokens(&[old_token])).await?;
    // Long enough that seeing the new token (at most one look at the store per 5 s) fits well
    // inside it, even on a slow machine.
    let grace = Duration::from_secs(20);
    let api = rig
        .spawn(
            Binary::Api,
            &[
                ("FLOWFORGE_DB_SECRET", format!("aws-sm:{db_secret}")),
                (
                    "FLOWFORGE_API_TOKENS_SECRET",
                    format!("aws-sm:{tokens_secret}"),
                ),
                // Far longer than the test: new tokens must not wait for the periodic check.
                ("FLOWFORGE_SECRET_REFRESH", "1h".into()),
                ("FLOWFORGE_API_TOKEN_GRACE", "20s".into()),
            ],
        )
        .await?;
    api.wait_ready(Duration::from_secs(30)).await?;
    assert_eq!(create_status(&api.api, old_token).await?, 201);
    assert_eq!(create_status(&api.api, new_token).await?, 401);

    let new_version = rig.sm.rotate(&tokens_secret, &tokens(&[new_token])).await?;
    let rotated = Instant::now();
    // The unknown token makes the API look at the store at once (rate-limited to one look per
    // 5 s, so wait out the one the 401 above used).
    eventually(
        "the new token is accepted",
        Duration::from_secs(15),
        || async { Ok((create_status(&api.api, new_token).await? == 201).then_some(())) },
    )
    .await?;
    assert_eq!(
        create_status(&api.api, old_token).await?,
        201,
        "old token within its grace"
    );
    assert!(
        rotated.elapsed() < grace,
        "the check above ran inside the grace window"
    );
    assert_eq!(create_status(&api.api, "neither").await?, 401);
    assert_eq!(
        api.metric(
            "flowforge_secret_version_info",
            &[("secret", "api_tokens"), ("version", &new_version)]
        )
        .await?,
        1.0
    );
    assert!(
        api.metric("flowforge_auth_total", &[("result", "previous")])
            .await?
            >= 1.0
    );

    eventually(
        "the old token is refused after the grace",
        Duration::from_secs(60),
        || async { Ok((create_status(&api.api, old_token).await? == 401).then_some(())) },
    )
    .await?;
    assert!(rotated.elapsed() >= grace - Duration::from_secs(1));
    assert_eq!(create_status(&api.api, new_token).await?, 201);
    rig.assert_logs_never_contain(&[old_token, new_token, &password])?;
    Ok(())
}

#[tokio::test]
async fn an_outage_of_the_secret_store_keeps_the_last_good_values_and_says_so() -> Result<()> {
    let mut rig = Rig::new(MotoServer::start().await?).await?;
    let user = format!("{}_u", rig.prefix);
    rig.create_login(&user, "pw-0").await?;
    let db_secret = rig.secret_name("db");
    let tokens_secret = rig.secret_name("tokens");
    rig.sm
        .create(&db_secret, &rig.db_secret_json(&user, "pw-0"))
        .await?;
    rig.sm.create(&tokens_secret, &tokens(&["t"])).await?;
    let services = rig
        .start_services(
            &format!("aws-sm:{db_secret}"),
            &format!("aws-sm:{tokens_secret}"),
            "1s",
            "outage",
            &[],
        )
        .await?;
    let api = find(&services, Binary::Api);
    let load = Load::start(&api.api, "t", "outage", 2, Duration::from_millis(50));

    // Garbage in the store: refused, the last good value stays in use.
    rig.sm
        .put_current(&db_secret, "{\"username\": \"x\"")
        .await?;
    for s in &services {
        s.wait_metric(
            "flowforge_secret_refresh_total",
            &[("secret", "db"), ("result", "invalid")],
            |v| v >= 1.0,
            Duration::from_secs(30),
        )
        .await?;
        assert_eq!(s.readyz().await?.0, 200, "{} stays ready", s.binary.name());
    }
    rig.sm
        .put_current(
            &db_secret,
            &json!({"host": rig.host, "port": rig.port, "username": user}).to_string(),
        )
        .await?;
    for s in &services {
        s.wait_metric(
            "flowforge_secret_refresh_total",
            &[("secret", "db"), ("result", "invalid")],
            |v| v >= 2.0,
            Duration::from_secs(30),
        )
        .await?;
    }

    // The store goes away: still serving, failing refreshes counted, readiness unchanged.
    rig.moto.stop()?;
    for s in &services {
        s.wait_metric(
            "flowforge_secret_refresh_total",
            &[("secret", "db"), ("result", "unreachable")],
            |v| v >= 1.0,
            Duration::from_secs(30),
        )
        .await?;
        assert_eq!(
            s.metric("flowforge_secret_refresh_failing", &[("secret", "db")])
                .await?,
            1.0,
            "{} says the refresh is failing",
            s.binary.name()
        );
        assert_eq!(s.readyz().await?.0, 200, "{} stays ready", s.binary.name());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // It comes back (empty, as moto keeps no state), the password rotated meanwhile: the new
    // secret is picked up and the failure clears.
    rig.moto.restart().await?;
    rig.set_password(&user, "pw-1").await?;
    rig.sm
        .create(&db_secret, &rig.db_secret_json(&user, "pw-1"))
        .await?;
    rig.sm.create(&tokens_secret, &tokens(&["t"])).await?;
    rig.terminate_sessions(&user).await?;
    for s in &services {
        s.wait_metric(
            "flowforge_secret_refresh_failing",
            &[("secret", "db")],
            |v| v == 0.0,
            Duration::from_secs(30),
        )
        .await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = load.stop().await;
    assert!(
        report.failures.is_empty(),
        "failed requests: {:?}",
        &report.failures[..report.failures.len().min(5)]
    );
    assert!(report.created.len() > 20, "the load ran");
    rig.wait_succeeded(&report.created, Duration::from_secs(60))
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_secret_never_loaded_fails_readiness_with_the_reason() -> Result<()> {
    let rig = Rig::new(MotoServer::shared().await?).await?;
    let user = format!("{}_u", rig.prefix);
    rig.create_login(&user, "pw").await?;
    let db_secret = rig.secret_name("db");
    let tokens_secret = rig.secret_name("tokens");
    rig.sm.create(&tokens_secret, &tokens(&["t"])).await?;
    let api = rig
        .spawn(
            Binary::Api,
            &[
                ("FLOWFORGE_DB_SECRET", format!("aws-sm:{db_secret}")),
                (
                    "FLOWFORGE_API_TOKENS_SECRET",
                    format!("aws-sm:{tokens_secret}"),
                ),
                ("FLOWFORGE_SECRET_REFRESH", "1s".into()),
            ],
        )
        .await?;
    let (status, body) = api.readyz().await?;
    assert_eq!(status, 503);
    assert!(body.contains("not loaded yet"), "{body}");
    assert!(
        body.contains(&db_secret),
        "the reason names the secret: {body}"
    );
    let r = client()
        .post(format!("{}/v1/tasks", api.api))
        .bearer_auth("t")
        .json(&json!({"queue": "q", "kind": "noop"}))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().get("retry-after").is_some());

    rig.sm
        .create(&db_secret, &rig.db_secret_json(&user, "pw"))
        .await?;
    api.wait_ready(Duration::from_secs(30)).await?;
    assert_eq!(create_status(&api.api, "t").await?, 201);
    Ok(())
}

#[tokio::test]
async fn a_file_secret_rotated_under_load_fails_nothing() -> Result<()> {
    let rig = Rig::new(MotoServer::shared().await?).await?;
    let user = format!("{}_u", rig.prefix);
    let pw = |n: u32| format!("pw{n}-{}", rig.prefix);
    rig.create_login(&user, &pw(0)).await?;
    let dir = tempfile::tempdir()?;
    let db_file = dir.path().join("db.json");
    let tokens_file = dir.path().join("tokens.json");
    std::fs::write(&db_file, rig.db_secret_json(&user, &pw(0)))?;
    std::fs::write(&tokens_file, tokens(&["t"]))?;
    let services = rig
        .start_services(
            &format!("file:{}", db_file.display()),
            &format!("file:{}", tokens_file.display()),
            "30s",
            "files",
            &[],
        )
        .await?;
    let api = find(&services, Binary::Api);
    let load = Load::start(&api.api, "t", "files", 4, Duration::from_millis(20));
    tokio::time::sleep(Duration::from_millis(500)).await;
    rig.set_password(&user, &pw(1)).await?;
    rig.terminate_sessions(&user).await?;
    // Written the way Kubernetes updates a mounted secret: a new file renamed over the old one.
    let tmp = dir.path().join("db.json.new");
    std::fs::write(&tmp, rig.db_secret_json(&user, &pw(1)))?;
    std::fs::rename(&tmp, &db_file)?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = load.stop().await;
    assert!(
        report.failures.is_empty(),
        "failed requests: {:?}",
        &report.failures[..report.failures.len().min(5)]
    );
    assert!(report.created.len() > 20, "the load ran");
    rig.wait_succeeded(&report.created, Duration::from_secs(60))
        .await?;
    for s in &services {
        let swaps = s.metric("flowforge_db_credential_swaps_total", &[]).await?;
        assert!(
            swaps >= 1.0,
            "{} swapped to the rotated credentials",
            s.binary.name()
        );
    }
    rig.assert_logs_never_contain(&[&pw(0), &pw(1)])?;
    Ok(())
}
