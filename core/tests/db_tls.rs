//! TLS to PostgreSQL through the product's own connection path (`Db::from_config` with a
//! credentials secret): `verify-full` against a CA bundle connects; a server certificate from
//! another CA, or for another host name, is refused with an error that says so.

use std::path::PathBuf;
use std::time::Duration;

use flowforge_core::config::{DbArgs, SecretArgs};
use flowforge_core::db::Db;
use flowforge_core::queue::Queue;
use flowforge_core::secrets::rds::parse_sslmode;
use flowforge_testkit::{PgCluster, TestCa};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

struct Tls {
    cluster: PgCluster,
    dir: tempfile::TempDir,
    ca: PathBuf,
    other_ca: PathBuf,
}

/// A cluster serving a certificate for `localhost` only, signed by a CA of the test.
fn tls_cluster() -> Tls {
    let cluster = PgCluster::start().expect("starting a dedicated cluster");
    let ca = TestCa::new("flowforge test CA").unwrap();
    let cert = ca.issue(&["localhost"]).unwrap();
    cluster.enable_tls(&cert.cert_pem, &cert.key_pem).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_to(dir.path(), "ca").unwrap();
    let other_ca = TestCa::new("some other CA")
        .unwrap()
        .write_to(dir.path(), "other")
        .unwrap();
    Tls {
        cluster,
        dir,
        ca: ca_file,
        other_ca,
    }
}

/// A queue over `Db::from_config` with the credentials in a file secret naming `host`, the given
/// sslmode (in the secret) and CA bundle (in configuration).
fn db(tls: &Tls, host: &str, sslmode: &str, root: Option<&PathBuf>) -> (Queue, CancellationToken) {
    let secret = tls.dir.path().join(format!("db-{host}-{sslmode}.json"));
    std::fs::write(
        &secret,
        serde_json::json!({
            "engine": "postgres", "host": host, "port": tls.cluster.port(),
            "username": "postgres", "password": tls.cluster.password(),
            "dbname": "postgres", "sslmode": sslmode,
        })
        .to_string(),
    )
    .unwrap();
    let args = DbArgs {
        database_url: SecretString::from("postgres://unused@127.0.0.1:1/unused".to_owned()),
        db_secret: Some(format!("file:{}", secret.display()).parse().unwrap()),
        db_sslmode: None,
        db_sslrootcert: root.cloned(),
        db_max_connections: 2,
        db_acquire_timeout: Duration::from_secs(5),
    };
    let secrets = SecretArgs {
        secret_refresh: Duration::from_secs(30),
    };
    let stop = CancellationToken::new();
    let db = Db::from_config(&args, &secrets, "flowforge-tls-test", stop.clone()).unwrap();
    (Queue::new(db), stop)
}

async fn ssl_in_use(queue: &Queue) -> Result<bool, String> {
    let mut conn = queue.db().acquire().await.map_err(|e| e.to_string())?;
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn verify_full_connects_with_the_right_ca_and_host_only() {
    let tls = tls_cluster();

    let (queue, stop) = db(&tls, "localhost", "verify-full", Some(&tls.ca));
    assert_eq!(ssl_in_use(&queue).await, Ok(true));
    queue.ping(Duration::from_secs(5)).await.unwrap();
    stop.cancel();

    let (queue, stop) = db(&tls, "localhost", "verify-full", Some(&tls.other_ca));
    let err = ssl_in_use(&queue).await.unwrap_err();
    assert!(
        err.contains("TLS") && err.contains("UnknownIssuer"),
        "a server certificate from another CA is refused, and the error says why: {err}"
    );
    stop.cancel();

    // The certificate names `localhost`; reaching the same server as 127.0.0.1 must fail.
    let (queue, stop) = db(&tls, "127.0.0.1", "verify-full", Some(&tls.ca));
    let err = ssl_in_use(&queue).await.unwrap_err();
    assert!(
        err.contains("TLS") && err.contains("NotValidForName"),
        "a certificate for another host name is refused, and the error says why: {err}"
    );
    stop.cancel();

    // Without verification, the same wrong CA still encrypts (sslmode=require).
    let (queue, stop) = db(&tls, "127.0.0.1", "require", Some(&tls.other_ca));
    assert_eq!(ssl_in_use(&queue).await, Ok(true));
    stop.cancel();
}

#[test]
fn sslmodes_are_parsed_like_libpq() {
    for ok in [
        "disable",
        "allow",
        "prefer",
        "require",
        "verify-ca",
        "verify-full",
    ] {
        assert!(parse_sslmode(ok).is_ok(), "{ok}");
    }
    assert!(parse_sslmode("verify_full").is_err());
}
