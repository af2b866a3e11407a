//! `PgCluster::enable_tls` (scripts/pg.sh tls) with a certificate from a `TestCa`: clients that
//! verify the server (sslmode=verify-full) connect over TLS by name and by address, clients
//! trusting another CA are refused, and TLS survives a restart.

use flowforge_testkit::{PgCluster, TestCa};
use sqlx::Connection;

async fn tls_in_use(url: &str) -> Result<bool, sqlx::Error> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(ssl)
}

#[tokio::test]
async fn verify_full_connections_use_the_test_ca_certificate() {
    let cluster = PgCluster::start().unwrap();
    let ca = TestCa::new("flowforge pg test CA").unwrap();
    let cert = ca.issue(&["localhost", "127.0.0.1"]).unwrap();
    cluster.enable_tls(&cert.cert_pem, &cert.key_pem).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_to(dir.path(), "ca").unwrap();
    let other_ca_file = TestCa::new("another CA")
        .unwrap()
        .write_to(dir.path(), "other")
        .unwrap();
    let url = |host: &str, root: &std::path::Path| {
        format!(
            "postgres://postgres:{}@{host}:{}/postgres?sslmode=verify-full&sslrootcert={}",
            cluster.password(),
            cluster.port(),
            root.display()
        )
    };

    for host in ["127.0.0.1", "localhost"] {
        assert!(
            tls_in_use(&url(host, &ca_file)).await.unwrap(),
            "TLS via {host}"
        );
        let err = tls_in_use(&url(host, &other_ca_file)).await.unwrap_err();
        assert!(
            err.to_string().contains("UnknownIssuer"),
            "a certificate from another CA must be refused ({host}): {err}"
        );
    }
    // Plain connections keep working.
    assert!(!tls_in_use(&format!("{}?sslmode=disable", cluster.url()))
        .await
        .unwrap());

    cluster.restart().unwrap();
    assert!(tls_in_use(&url("127.0.0.1", &ca_file)).await.unwrap());
}

#[tokio::test]
async fn a_key_that_does_not_match_the_certificate_is_refused_and_tls_stays_off() {
    let cluster = PgCluster::start().unwrap();
    let ca = TestCa::new("flowforge pg test CA").unwrap();
    let cert = ca.issue(&["127.0.0.1"]).unwrap();
    let other = ca.issue(&["127.0.0.1"]).unwrap();
    let err = cluster
        .enable_tls(&cert.cert_pem, &other.key_pem)
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("could not enable TLS"),
        "{err:#}"
    );
    // pg.sh rolled back: the cluster still restarts and serves plain connections.
    cluster.restart().unwrap();
    assert!(!tls_in_use(cluster.url()).await.unwrap());
}
