//! HTTPS on the API address: rustls (ring) over the same axum server, with the certificate
//! reloaded from its files when they change (cert-manager renews them in place).
//!
//! - [`ServerTls`] holds the certificate being served. It is checked at start-up (a bad file is
//!   a configuration error, exit 64) and then every [`RELOAD_PERIOD`]: when the files' content
//!   changed and the new pair is valid, new handshakes get the new certificate; connections
//!   already open keep theirs. An invalid new pair (half-written, key not matching) is refused
//!   and the last good certificate stays in use, so a renewal never fails a request.
//! - [`TlsListener`] is an [`axum::serve::Listener`]: it accepts TCP connections and hands over
//!   those whose handshake succeeded, so graceful shutdown works exactly as without TLS.
//!   Handshakes run concurrently (a slow client does not hold up others) and time out.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How often the certificate files are compared with what is served.
pub const RELOAD_PERIOD: Duration = Duration::from_secs(1);

/// Longest time a client gets to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the certificate and its key are (`FLOWFORGE_API_TLS_CERT`, `FLOWFORGE_API_TLS_KEY`).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The file contents last looked at, and what became of them.
#[derive(Default)]
struct Seen {
    cert: Vec<u8>,
    key: Vec<u8>,
    /// Why the last read or the last new pair was refused (logged once, not every second).
    refused: Option<String>,
}

/// The certificate served, swapped on reload.
pub struct ServerTls {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: Arc<CurrentCert>,
    seen: Mutex<Seen>,
    config: Arc<ServerConfig>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// What new handshakes are answered with.
#[derive(Debug)]
struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl CurrentCert {
    fn get(&self) -> Arc<CertifiedKey> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, key: Arc<CertifiedKey>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = key;
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

impl ServerTls {
    /// Reads and checks the certificate and key. The error is the one-line reason for exit 64,
    /// naming the variable and the file.
    pub fn load(files: TlsFiles) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let read = |variable: &str, path: &Path| {
            std::fs::read(path).map_err(|e| format!("{variable} {}: {e}", path.display()))
        };
        let cert = read("FLOWFORGE_API_TLS_CERT", &files.cert)?;
        let key = read("FLOWFORGE_API_TLS_KEY", &files.key)?;
        let certified = certified_key(&files, &cert, &key, &provider)?;
        let current = Arc::new(CurrentCert(RwLock::new(Arc::new(certified))));
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        // axum serves HTTP/1.1 (the load balancer's protocol to its targets).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // No session resumption: a resumed session skips the certificate, so a client could go
        // on without ever seeing a renewed one. Every new connection makes a full handshake
        // (cheap with ECDSA, and a load balancer keeps its connections to the pod open).
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        Ok(ServerTls {
            files,
            provider,
            current,
            seen: Mutex::new(Seen {
                cert,
                key,
                refused: None,
            }),
            config: Arc::new(config),
        })
    }

    /// The end-entity certificate new handshakes get (DER).
    pub fn served_certificate(&self) -> CertificateDer<'static> {
        self.current.get().cert[0].clone()
    }

    /// Reads the files and, if they changed and hold a valid pair, serves the new certificate.
    /// `Ok(true)`: reloaded; `Ok(false)`: unchanged (or the same refused content as last time);
    /// `Err`: refused, the last good certificate stays in use.
    pub async fn reload_if_changed(&self) -> Result<bool, String> {
        let (cert, key) = match tokio::try_join!(
            tokio::fs::read(&self.files.cert),
            tokio::fs::read(&self.files.key)
        ) {
            Ok(pair) => pair,
            Err(e) => {
                let reason = format!(
                    "cannot read {} or {}: {e}",
                    self.files.cert.display(),
                    self.files.key.display()
                );
                return self.refuse(reason);
            }
        };
        {
            let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.cert == cert && seen.key == key {
                return Ok(false);
            }
        }
        let outcome = certified_key(&self.files, &cert, &key, &self.provider);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.cert = cert;
        seen.key = key;
        match outcome {
            Ok(certified) => {
                self.current.set(Arc::new(certified));
                seen.refused = None;
                Ok(true)
            }
            Err(reason) => {
                seen.refused = Some(reason.clone());
                Err(reason)
            }
        }
    }

    /// A read error: reported once until it changes.
    fn refuse(&self, reason: String) -> Result<bool, String> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.refused.as_deref() == Some(reason.as_str()) {
            return Ok(false);
        }
        // Read again in full next time, whatever the content then.
        seen.cert.clear();
        seen.key.clear();
        seen.refused = Some(reason.clone());
        Err(reason)
    }

    /// Checks the files every [`RELOAD_PERIOD`] until `stop`.
    pub fn spawn_reloader(self: Arc<Self>, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                match self.reload_if_changed().await {
                    Ok(false) => {}
                    Ok(true) => {
                        metrics::counter!("flowforge_api_tls_reloads_total", "result" => "loaded")
                            .increment(1);
                        tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                    }
                    Err(reason) => {
                        metrics::counter!("flowforge_api_tls_reloads_total", "result" => "refused")
                            .increment(1);
                        tracing::warn!(
                            reason = %reason,
                            "new TLS certificate files refused; still serving the previous certificate"
                        );
                    }
                }
            }
        })
    }

    /// A listener serving TLS on `tcp` with this certificate.
    pub fn listener(&self, tcp: TcpListener) -> std::io::Result<TlsListener> {
        TlsListener::new(tcp, TlsAcceptor::from(self.config.clone()))
    }
}

/// Parses and checks a certificate chain and its key.
fn certified_key(
    files: &TlsFiles,
    cert: &[u8],
    key: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "FLOWFORGE_API_TLS_CERT {}: not PEM certificates: {e}",
                files.cert.display()
            )
        })?;
    if chain.is_empty() {
        return Err(format!(
            "FLOWFORGE_API_TLS_CERT {}: no certificate in it",
            files.cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| {
        format!(
            "FLOWFORGE_API_TLS_KEY {}: no PKCS#8, PKCS#1 or SEC1 private key in it: {e}",
            files.key.display()
        )
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        format!(
            "FLOWFORGE_API_TLS_KEY {} does not fit FLOWFORGE_API_TLS_CERT {}: {e}",
            files.key.display(),
            files.cert.display()
        )
    })
}

/// Accepts TCP connections, completes their TLS handshakes concurrently, and yields the
/// connections that made it. Dropping it (as `axum::serve` does on graceful shutdown) closes
/// the socket and abandons handshakes in progress.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl TlsListener {
    fn new(tcp: TcpListener, tls: TlsAcceptor) -> std::io::Result<Self> {
        let local_addr = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = tokio::spawn(accept_loop(tcp, tls, tx));
        Ok(TlsListener {
            ready,
            local_addr,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop ended, which it does only when aborted: nothing will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

async fn accept_loop(
    tcp: TcpListener,
    tls: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Answers go out at once (see the plain listener in app.rs).
                    if let Err(err) = stream.set_nodelay(true) {
                        tracing::debug!(error = %err, "cannot set TCP_NODELAY");
                    }
                    let tls = tls.clone();
                    handshakes.spawn(async move {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                            Ok(Ok(stream)) => Some((stream, peer)),
                            Ok(Err(err)) => {
                                tracing::debug!(%peer, error = %err, "TLS handshake failed");
                                None
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                None
                            }
                        }
                    });
                }
                Err(err) => accept_error(err).await,
            },
            Some(done) = handshakes.join_next(), if !handshakes.is_empty() => {
                if let Ok(Some(connection)) = done {
                    if ready.send(connection).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// As axum's own listener: a connection that failed before it was accepted is skipped; any
/// other error (out of file descriptors, ...) is logged and the loop pauses for a second.
async fn accept_error(err: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "accept error");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use flowforge_testkit::TestCa;

    use super::*;

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[tokio::test]
    async fn reload_serves_a_valid_new_pair_and_keeps_the_last_good_one_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("reload test CA").unwrap();
        let first = ca.issue(&["localhost"]).unwrap();
        let files = first.write_to(dir.path(), "tls").unwrap();
        let tls = ServerTls::load(TlsFiles {
            cert: files.cert.clone(),
            key: files.key.clone(),
        })
        .unwrap();
        assert_eq!(tls.served_certificate(), der(&first.cert_pem));
        assert_eq!(tls.reload_if_changed().await, Ok(false), "nothing changed");

        // A new certificate with the old key: refused once, then not looked at again.
        let second = ca.issue(&["localhost"]).unwrap();
        std::fs::write(&files.cert, &second.cert_pem).unwrap();
        let refused = tls.reload_if_changed().await.unwrap_err();
        assert!(refused.contains("does not fit"), "{refused}");
        assert_eq!(tls.reload_if_changed().await, Ok(false));
        assert_eq!(tls.served_certificate(), der(&first.cert_pem));

        // Its key arrives: served.
        std::fs::write(&files.key, &second.key_pem).unwrap();
        assert_eq!(tls.reload_if_changed().await, Ok(true));
        assert_eq!(tls.served_certificate(), der(&second.cert_pem));

        // The files vanish, then come back with junk: refused, the last good pair stays.
        std::fs::remove_file(&files.key).unwrap();
        let missing = tls.reload_if_changed().await.unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");
        assert_eq!(tls.reload_if_changed().await, Ok(false), "reported once");
        std::fs::write(&files.key, "junk").unwrap();
        let junk = tls.reload_if_changed().await.unwrap_err();
        assert!(junk.contains("FLOWFORGE_API_TLS_KEY"), "{junk}");
        assert_eq!(tls.served_certificate(), der(&second.cert_pem));
    }
}
