//! HTTPS on the API address: certificates made by the test (testkit's `TestCa`), a renewal
//! picked up without a restart or a failed request, a drain on shutdown, and bad files refused
//! at start-up.

mod helpers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use flowforge_testkit::{CertFiles, TestCa};
use helpers::{peer_certificate, TestApp};
use reqwest::StatusCode;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// The names a test server certificate is valid for.
const SERVER_NAMES: [&str; 2] = ["127.0.0.1", "localhost"];

fn der_of(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("a PEM certificate")
        .to_vec()
}

/// A CA, a server certificate it issued, written to `dir` as `tls.crt` and `tls.key` (the names
/// cert-manager mounts).
fn issue(dir: &std::path::Path) -> (TestCa, flowforge_testkit::IssuedCert, CertFiles) {
    let ca = TestCa::new("flowforge api test CA").expect("a test CA");
    let cert = ca.issue(&SERVER_NAMES).expect("a server certificate");
    let files = cert.write_to(dir, "tls").expect("writing the certificate");
    (ca, cert, files)
}

#[tokio::test]
async fn https_serves_the_api_to_a_client_that_trusts_the_ca_and_refuses_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, files) = issue(dir.path());
    let app = TestApp::spawn_tls(&files, &ca.ca_pem(), &[]).await;
    assert!(app.url("/").starts_with("https://127.0.0.1:"));

    let response = app
        .post_json("/v1/tasks", &json!({"queue": "tls", "kind": "noop"}))
        .await;
    assert_eq!(
        peer_certificate(&response),
        Some(der_of(&cert.cert_pem)),
        "the configured certificate is served"
    );
    assert_eq!(response.status(), StatusCode::CREATED);
    let task: Value = response.json().await.unwrap();
    let read = app
        .get(&format!("/v1/tasks/{}", task["id"].as_str().unwrap()))
        .await;
    assert_eq!(read.status(), StatusCode::OK);

    // Plain HTTP to the TLS port gets no answer.
    let plain = helpers::client()
        .get(format!("http://{}/v1/queues", app.addr))
        .bearer_auth(&app.token)
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP must fail: {plain:?}");

    // A client that does not trust the CA refuses the server.
    let untrusted = helpers::client().get(app.url("/v1/queues")).send().await;
    assert!(
        untrusted.is_err(),
        "an unknown CA must be refused: {untrusted:?}"
    );

    // The admin server stays plain HTTP (probes), and the API still answers over HTTPS.
    let ready = app.admin_get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(app.get("/v1/queues").await.status(), StatusCode::OK);
    app.stop().await;
}

/// Replaces `files` with `new` the way a careless writer would: certificate first, then the key
/// after `gap`, each by an atomic rename (so a reader sees a whole file, but for `gap` the new
/// certificate with the old key).
async fn replace(files: &CertFiles, new: &flowforge_testkit::IssuedCert, gap: Duration) {
    let dir = files.cert.parent().unwrap();
    let staged = new.write_to(dir, "staged").unwrap();
    std::fs::rename(&staged.cert, &files.cert).unwrap();
    tokio::time::sleep(gap).await;
    std::fs::rename(&staged.key, &files.key).unwrap();
}

#[tokio::test]
async fn renewed_certificate_is_served_after_the_files_change_without_a_failed_request() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, old, files) = issue(dir.path());
    let ca_pem = ca.ca_pem();
    let app = Arc::new(TestApp::spawn_tls(&files, &ca_pem, &[]).await);
    let old_der = der_of(&old.cert_pem);
    let renewed = ca.issue(&SERVER_NAMES).unwrap();
    let new_der = der_of(&renewed.cert_pem);
    assert_ne!(
        old_der, new_der,
        "the renewal is another certificate (new serial, new key)"
    );

    // One client, a new connection (and handshake) per request, until told to stop.
    let stop = CancellationToken::new();
    let client = tokio::spawn({
        let app = app.clone();
        let stop = stop.clone();
        let ca_pem = ca_pem.clone();
        async move {
            let https = helpers::tls_client(&ca_pem, true);
            let mut seen: Vec<Result<Vec<u8>, String>> = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.is_cancelled() && Instant::now() < deadline {
                let outcome = match https
                    .get(app.url("/v1/queues"))
                    .bearer_auth(&app.token)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == StatusCode::OK => {
                        peer_certificate(&r).ok_or_else(|| "no peer certificate".to_owned())
                    }
                    Ok(r) => Err(format!("status {}", r.status())),
                    Err(e) => Err(format!("{e:?}")),
                };
                seen.push(outcome);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seen
        }
    });

    tokio::time::sleep(Duration::from_millis(500)).await;
    // The reloader looks every second: for 1.5 s it finds a certificate that does not fit the
    // key, which it must refuse while it keeps serving the old pair.
    replace(&files, &renewed, Duration::from_millis(1500)).await;
    let https = helpers::tls_client(&ca_pem, true);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = https
            .get(app.url("/v1/queues"))
            .bearer_auth(&app.token)
            .send()
            .await;
        if let Ok(r) = response {
            if peer_certificate(&r) == Some(new_der.clone()) {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was not served within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    let seen = client.await.unwrap();

    let failures: Vec<&String> = seen.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "failed requests during the renewal: {failures:?}"
    );
    let certs: Vec<&Vec<u8>> = seen.iter().filter_map(|o| o.as_ref().ok()).collect();
    let first_new = certs
        .iter()
        .position(|c| **c == new_der)
        .expect("the client saw the renewed certificate");
    assert!(first_new > 0, "the client saw the old certificate first");
    assert!(
        certs[..first_new].iter().all(|c| **c == old_der),
        "only the old certificate before the switch"
    );
    assert!(
        certs[first_new..].iter().all(|c| **c == new_der),
        "only the renewed certificate after the switch"
    );

    let metrics = app.admin_get("/metrics").await.text().await.unwrap();
    for result in ["loaded", "refused"] {
        assert!(
            metrics.lines().any(|l| l.starts_with(&format!(
                r#"flowforge_api_tls_reloads_total{{result="{result}"}}"#
            ))),
            "a {result} reload is counted:\n{metrics}"
        );
    }
}

/// A raw HTTPS connection to the app (to send a request in parts).
async fn connect(
    app: &TestApp,
    ca_pem: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .expect("TLS handshake")
}

#[tokio::test]
async fn shutdown_over_https_finishes_the_request_in_flight_and_refuses_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, files) = issue(dir.path());
    let mut app = TestApp::spawn_tls(&files, &ca.ca_pem(), &[]).await;

    let body = json!({"queue": "drain", "kind": "noop"}).to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut stream = connect(&app, &ca.ca_pem()).await;
    let head = format!(
        "POST /v1/tasks HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        app.token,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    app.begin_stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = tokio::net::TcpStream::connect(app.addr).await;
    assert!(
        refused.is_err(),
        "no new connections once shutting down: {refused:?}"
    );

    stream.write_all(rest.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the answer within 10 s")
        .ok();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 201"),
        "the request in flight is answered: {answer}"
    );
    app.stop().await;
}

/// TLS files the binary must refuse at start-up.
struct BadTls<'a> {
    what: &'a str,
    args: Vec<&'a str>,
    cert: Option<&'a str>,
    key: Option<&'a str>,
    /// A word the one-line reason must contain.
    mentions: &'a str,
}

#[tokio::test]
async fn bad_tls_files_exit_64_with_one_line_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, files) = issue(dir.path());
    let other = ca
        .issue(&SERVER_NAMES)
        .unwrap()
        .write_to(dir.path(), "other")
        .unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let tokens = dir.path().join("tokens.json");
    std::fs::write(&tokens, r#"{"tokens":["t"]}"#).unwrap();
    let tokens = format!("file:{}", tokens.display());
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let (cert, key) = (path(&files.cert), path(&files.key));
    let (junk, broken, other_key) = (path(&junk), path(&broken), path(&other.key));
    let missing = path(&dir.path().join("missing.key"));

    let cases = [
        BadTls {
            what: "certificate without a key (flag)",
            args: vec!["--api-tls-cert", &cert],
            cert: None,
            key: None,
            mentions: "--api-tls-key",
        },
        BadTls {
            what: "key without a certificate (environment)",
            args: vec![],
            cert: None,
            key: Some(&key),
            mentions: "--api-tls-cert",
        },
        BadTls {
            what: "key file missing",
            args: vec![],
            cert: Some(&cert),
            key: Some(&missing),
            mentions: "FLOWFORGE_API_TLS_KEY",
        },
        BadTls {
            what: "junk instead of a certificate",
            args: vec![],
            cert: Some(&junk),
            key: Some(&key),
            mentions: "no certificate",
        },
        BadTls {
            what: "a PEM certificate that does not decode",
            args: vec![],
            cert: Some(&broken),
            key: Some(&key),
            mentions: "FLOWFORGE_API_TLS_CERT",
        },
        BadTls {
            what: "a certificate where the key should be",
            args: vec![],
            cert: Some(&cert),
            key: Some(&cert),
            mentions: "FLOWFORGE_API_TLS_KEY",
        },
        BadTls {
            what: "a key that does not fit the certificate",
            args: vec![],
            cert: Some(&cert),
            key: Some(&other_key),
            mentions: "does not fit",
        },
    ];
    for BadTls {
        what,
        args,
        cert,
        key,
        mentions,
    } in cases
    {
        let mut envs = vec![("FLOWFORGE_API_TOKENS_SECRET", tokens.as_str())];
        envs.extend(cert.map(|c| ("FLOWFORGE_API_TLS_CERT", c)));
        envs.extend(key.map(|k| ("FLOWFORGE_API_TLS_KEY", k)));
        let (code, stderr) = helpers::run_binary(&args, &envs).await;
        assert_eq!(code, Some(64), "{what}: exit code; stderr: {stderr}");
        helpers::assert_one_line_mentioning(what, &stderr, mentions);
    }
}
