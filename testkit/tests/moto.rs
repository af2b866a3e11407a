//! What moto (the AWS Secrets Manager the tests run against) does with versions and staging
//! labels, so that tests built on it rely on checked behaviour; and the lifecycle of dedicated
//! moto servers. Runs against `MotoServer::shared()` (the `make test` server) unless a test
//! needs a server of its own.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_secretsmanager::config::BehaviorVersion;
use flowforge_testkit::{MotoServer, SecretsAdmin, AWSCURRENT, AWSPENDING, AWSPREVIOUS};

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

async fn shared_admin() -> (MotoServer, SecretsAdmin) {
    let moto = MotoServer::shared().await.expect("moto server");
    let admin = moto.admin().await;
    (moto, admin)
}

fn labels<'a>(stages: &'a HashMap<String, Vec<String>>, version: &str) -> Vec<&'a str> {
    let mut l: Vec<&str> = stages
        .get(version)
        .unwrap_or_else(|| panic!("version {version} not in {stages:?}"))
        .iter()
        .map(String::as_str)
        .collect();
    l.sort_unstable();
    l
}

#[tokio::test]
async fn create_makes_awscurrent_and_put_current_moves_it_marking_the_old_version_awsprevious() {
    let (_moto, admin) = shared_admin().await;
    let name = unique("put-current");
    let arn = admin.create(&name, "v1").await.unwrap();
    assert!(
        arn.starts_with("arn:aws:secretsmanager:us-east-1:"),
        "{arn}"
    );
    let (v1, value) = admin.current(&name).await.unwrap();
    assert_eq!(value, "v1");
    assert_eq!(
        labels(&admin.stages(&name).await.unwrap(), &v1),
        [AWSCURRENT]
    );

    let v2 = admin.put_current(&arn, "v2").await.unwrap();
    assert_eq!(
        admin.current(&name).await.unwrap(),
        (v2.clone(), "v2".into())
    );
    assert_eq!(
        admin.get(&name, AWSPREVIOUS).await.unwrap(),
        (v1.clone(), "v1".into())
    );
    let stages = admin.stages(&name).await.unwrap();
    assert_eq!(labels(&stages, &v2), [AWSCURRENT]);
    assert_eq!(labels(&stages, &v1), [AWSPREVIOUS]);
}

/// The rotation path (PutSecretValue AWSPENDING, then UpdateSecretVersionStage AWSCURRENT):
/// - DescribeSecret reflects every step at once;
/// - moto, like Secrets Manager, puts AWSPREVIOUS on the version that lost AWSCURRENT, and
///   GetSecretValue(VersionStage=AWSPREVIOUS) returns that version and its value;
/// - the promoted version keeps AWSPENDING too (nothing removes it) until the next
///   PutSecretValue AWSPENDING moves it;
/// - the version that was AWSPREVIOUS before is still listed, with no labels.
#[tokio::test]
async fn promote_moves_awscurrent_sets_awsprevious_and_describe_secret_shows_it_at_once() {
    let (_moto, admin) = shared_admin().await;
    let name = unique("promote");
    admin.create(&name, "v1").await.unwrap();
    let (v1, _) = admin.current(&name).await.unwrap();
    let v2 = admin.put_current(&name, "v2").await.unwrap();

    let v3 = admin.put_pending(&name, "v3").await.unwrap();
    let stages = admin.stages(&name).await.unwrap();
    assert_eq!(labels(&stages, &v3), [AWSPENDING]);
    assert_eq!(labels(&stages, &v2), [AWSCURRENT]);
    assert_eq!(
        admin.current(&name).await.unwrap(),
        (v2.clone(), "v2".into())
    );
    assert_eq!(
        admin.get(&name, AWSPENDING).await.unwrap(),
        (v3.clone(), "v3".into())
    );

    admin.promote(&name, &v3).await.unwrap();
    let stages = admin.stages(&name).await.unwrap();
    assert_eq!(labels(&stages, &v3), [AWSCURRENT, AWSPENDING]);
    assert_eq!(labels(&stages, &v2), [AWSPREVIOUS]);
    assert!(labels(&stages, &v1).is_empty(), "{stages:?}");
    assert_eq!(
        admin.current(&name).await.unwrap(),
        (v3.clone(), "v3".into())
    );
    assert_eq!(
        admin.get(&name, AWSPREVIOUS).await.unwrap(),
        (v2.clone(), "v2".into())
    );

    // Promoting the current version again changes nothing.
    admin.promote(&name, &v3).await.unwrap();
    assert_eq!(admin.stages(&name).await.unwrap(), stages);
}

#[tokio::test]
async fn rotations_keep_every_label_on_one_version() {
    let (_moto, admin) = shared_admin().await;
    let name = unique("rotate");
    admin.create(&name, "v1").await.unwrap();
    let (v1, _) = admin.current(&name).await.unwrap();
    let v2 = admin.rotate(&name, "v2").await.unwrap();
    let v3 = admin.rotate(&name, "v3").await.unwrap();
    assert_eq!(
        admin.current(&name).await.unwrap(),
        (v3.clone(), "v3".into())
    );
    assert_eq!(
        admin.get(&name, AWSPREVIOUS).await.unwrap(),
        (v2.clone(), "v2".into())
    );
    let stages = admin.stages(&name).await.unwrap();
    assert_eq!(labels(&stages, &v3), [AWSCURRENT, AWSPENDING]);
    assert_eq!(labels(&stages, &v2), [AWSPREVIOUS]);
    assert!(labels(&stages, &v1).is_empty(), "{stages:?}");
}

/// moto caveat: GetSecretValue without VersionStage (or VersionId) returns the version the last
/// plain PutSecretValue made current, not the one UpdateSecretVersionStage moved AWSCURRENT to.
/// Secrets Manager returns AWSCURRENT; code under test must ask for AWSCURRENT explicitly
/// (which is what real Secrets Manager does by default anyway).
#[tokio::test]
async fn moto_get_secret_value_without_a_stage_is_stale_after_update_secret_version_stage() {
    let (_moto, admin) = shared_admin().await;
    let name = unique("stale");
    admin.create(&name, "v1").await.unwrap();
    let v2 = admin.put_current(&name, "v2").await.unwrap();
    let v3 = admin.rotate(&name, "v3").await.unwrap();
    assert_eq!(admin.current(&name).await.unwrap(), (v3, "v3".into()));
    let plain = admin
        .client()
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (plain.version_id(), plain.secret_string()),
        (Some(v2.as_str()), Some("v2")),
        "moto now answers AWSCURRENT without VersionStage: update the caveat in testkit/src/moto.rs"
    );
}

/// moto caveat: RotateSecret without a rotation Lambda moves AWSCURRENT to a new version that
/// has no value, so GetSecretValue(AWSCURRENT) fails. Rotate with SecretsAdmin::rotate.
#[tokio::test]
async fn moto_rotate_secret_without_a_lambda_leaves_awscurrent_without_a_value() {
    let (_moto, admin) = shared_admin().await;
    let name = unique("rotate-secret");
    admin.create(&name, "v1").await.unwrap();
    let (v1, _) = admin.current(&name).await.unwrap();
    let out = admin
        .client()
        .rotate_secret()
        .secret_id(&name)
        .send()
        .await
        .unwrap();
    let new = out.version_id().expect("a version id").to_owned();
    let stages = admin.stages(&name).await.unwrap();
    assert_eq!(labels(&stages, &new), [AWSCURRENT]);
    assert_eq!(labels(&stages, &v1), [AWSPREVIOUS]);
    let err = admin.current(&name).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("ResourceNotFoundException"),
        "{err:#}"
    );
}

#[tokio::test]
async fn the_shared_server_cannot_be_stopped_or_paused() {
    let mut moto = MotoServer::shared().await.unwrap();
    if !moto.is_shared() {
        // Not under `make test`: shared() started a dedicated server, which may be stopped.
        return;
    }
    assert!(moto.pause().is_err());
    assert!(moto.stop().is_err());
    let name = unique("still-up");
    moto.admin().await.create(&name, "x").await.unwrap();
}

/// stop refuses connections, restart comes back on the same port without state, pause hangs.
#[tokio::test]
async fn a_dedicated_server_stops_restarts_empty_and_pauses() {
    let mut moto = MotoServer::start().await.unwrap();
    assert!(!moto.is_shared());
    let addr = ("127.0.0.1", moto.port());
    let admin = moto.admin().await;
    admin.create("lifecycle", "v1").await.unwrap();

    moto.stop().unwrap();
    let err = std::net::TcpStream::connect(addr).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(admin.current("lifecycle").await.is_err());

    moto.restart().await.unwrap();
    let err = admin.current("lifecycle").await.unwrap_err();
    assert!(
        format!("{err:#}").contains("ResourceNotFoundException"),
        "a restarted moto has no secrets: {err:#}"
    );
    admin.create("lifecycle", "v2").await.unwrap();

    moto.pause().unwrap();
    // The kernel still accepts the connection; nothing answers.
    let _conn = std::net::TcpStream::connect(addr).expect("a paused server's port accepts");
    let started = std::time::Instant::now();
    let res = tokio::time::timeout(Duration::from_secs(2), admin.current("lifecycle")).await;
    assert!(res.is_err(), "a paused server must not answer: {res:?}");
    assert!(started.elapsed() >= Duration::from_secs(2));

    moto.resume().unwrap();
    let (_, value) = admin.current("lifecycle").await.unwrap();
    assert_eq!(value, "v2");
}

const CHILD_MARKER: &str = "FLOWFORGE_TESTKIT_AWS_ENV_CHILD";

/// `aws_env()` is all a child process needs: the AWS SDK's default chain (aws-config) finds the
/// endpoint, region and credentials there, and reads the secret from moto without probing
/// instance metadata. The child is this test binary running `aws_env_child` below.
#[tokio::test]
async fn aws_env_is_enough_for_the_default_aws_config_chain_of_a_child_process() {
    let (moto, admin) = shared_admin().await;
    let name = unique("aws-env");
    admin.create(&name, "from-moto").await.unwrap();
    let exe = std::env::current_exe().unwrap();
    let started = std::time::Instant::now();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "aws_env_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(moto.aws_env())
        .env(CHILD_MARKER, &name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("SECRET=from-moto"), "{stdout}");
    // Probing instance metadata would take seconds of timeouts.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// Half of the test above: does nothing unless started by it.
#[tokio::test]
async fn aws_env_child() {
    let Ok(name) = std::env::var(CHILD_MARKER) else {
        return;
    };
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let out = client
        .get_secret_value()
        .secret_id(&name)
        .version_stage(AWSCURRENT)
        .send()
        .await
        .map_err(aws_sdk_secretsmanager::error::DisplayErrorContext)
        .unwrap();
    println!("SECRET={}", out.secret_string().unwrap_or_default());
}
