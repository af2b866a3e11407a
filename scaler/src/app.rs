//! The scaler process: database, LISTEN hub, gRPC server (optionally TLS), admin server and the
//! queue figures, wired together.

use std::net::SocketAddr;
use std::sync::Arc;

use flowforge_core::admin::{self, AdminState};
use flowforge_core::db::Db;
use flowforge_core::queue::listen::{spawn_listener, Event};
use flowforge_core::queue::Queue;
use flowforge_core::shutdown::Readiness;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::config::Config;
use crate::proto::external_scaler_server::ExternalScalerServer;
use crate::service::ScalerService;
use crate::slo::{self, SloSettings};

/// Errors of building or running the scaler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad configuration (exit 64).
    #[error("{0}")]
    Config(String),
    #[error("cannot bind {what} to {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("admin server failed: {0}")]
    Admin(#[from] std::io::Error),
}

/// The scaler with its listeners bound, ready to run.
pub struct Application {
    config: Config,
    queue: Queue,
    tls: Option<ServerTlsConfig>,
    grpc: TcpListener,
    admin: TcpListener,
    stop_secrets: CancellationToken,
}

impl Application {
    /// Starts the credentials' refresher, reads the TLS files and binds both listeners (port 0
    /// works for tests).
    pub async fn build(config: Config) -> Result<Self, Error> {
        flowforge_core::telemetry::metrics_handle();
        let stop_secrets = CancellationToken::new();
        let db = Db::from_config(
            &config.db,
            &config.secrets,
            "flowforge-scaler",
            stop_secrets.clone(),
        )
        .map_err(Error::Config)?;
        db.wait_loaded(std::time::Duration::from_secs(2)).await;
        let tls = tls_config(&config)?;
        let grpc = bind("gRPC server", config.grpc_addr).await?;
        let admin = bind("admin server", config.admin_addr).await?;
        Ok(Application {
            config,
            queue: Queue::new(db),
            tls,
            grpc,
            admin,
            stop_secrets,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Serves until `shutdown` resolves: readiness turns 503, open streams end (cleanly, so KEDA
    /// reconnects to another replica), calls in flight get the grace period.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let Application {
            config,
            queue,
            tls,
            grpc,
            admin,
            stop_secrets,
        } = self;
        let readiness = Arc::new(Readiness::default());
        let stop = CancellationToken::new();
        let admin_server = tokio::spawn(admin::serve(
            admin,
            AdminState {
                name: "flowforge-scaler",
                version: env!("CARGO_PKG_VERSION"),
                readiness: readiness.clone(),
                check: admin::database_check(queue.clone()),
                metrics: flowforge_core::telemetry::metrics_handle(),
                db: Some(queue.db().clone()),
            },
            stop.clone(),
        ));
        // One LISTEN connection for every stream: each notification (and each reconnect, after
        // which anything may have been missed) bumps a counter the streams watch.
        let (changes_tx, changes) = watch::channel(0u64);
        spawn_listener(queue.db().clone(), stop.clone(), move |event| {
            // Any queue: each stream re-checks its own queues (one small query).
            let (Event::Notified(_) | Event::Reconnected) = event;
            changes_tx.send_modify(|n| *n = n.wrapping_add(1));
        });
        let figures = tokio::spawn(slo::run(
            queue.clone(),
            SloSettings {
                interval: config.metrics_interval,
                task_wait: config.slo_task_wait,
                objective: config.slo_task_wait_objective,
            },
            stop.clone(),
        ));
        let stop_grpc = CancellationToken::new();
        let service = ScalerService::new(queue, changes, config.poll_interval, stop_grpc.clone());
        let mut builder = Server::builder();
        if let Some(tls) = tls {
            builder = builder.tls_config(tls)?;
        }
        {
            let (readiness, stop_grpc) = (readiness.clone(), stop_grpc.clone());
            tokio::spawn(async move {
                shutdown.await;
                readiness.start_draining();
                stop_grpc.cancel();
            });
        }
        tracing::info!(grpc = %config.grpc_addr, admin = %config.admin_addr,
            tls = config.grpc_tls_cert.is_some(), client_auth = config.grpc_tls_client_ca.is_some(),
            "scaler listening");
        let server = builder
            .add_service(ExternalScalerServer::new(service))
            .serve_with_incoming_shutdown(TcpListenerStream::new(grpc), {
                let stop_grpc = stop_grpc.clone();
                async move { stop_grpc.cancelled().await }
            });
        let grace = config.shutdown_grace;
        let result = tokio::select! {
            r = server => r.map_err(Error::from),
            _ = async { stop_grpc.cancelled().await; tokio::time::sleep(grace).await } => Ok(()),
        };
        stop.cancel();
        let _ = figures.await;
        let admin_result = admin_server.await;
        stop_secrets.cancel();
        tracing::info!("scaler stopped");
        result?;
        if let Ok(Err(err)) = admin_result {
            return Err(Error::Admin(err));
        }
        Ok(())
    }
}

fn tls_config(config: &Config) -> Result<Option<ServerTlsConfig>, Error> {
    let (Some(cert), Some(key)) = (&config.grpc_tls_cert, &config.grpc_tls_key) else {
        return Ok(None);
    };
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let read = |p: &std::path::PathBuf| {
        std::fs::read(p).map_err(|e| Error::Config(format!("cannot read {}: {e}", p.display())))
    };
    // Checked here, so a bad file is a configuration error (exit 64) with its name, not a
    // failure of the server later.
    let certs = |flag: &str, p: &std::path::PathBuf, pem: &[u8]| {
        let n = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                Error::Config(format!("{flag} {}: not PEM certificates: {e}", p.display()))
            })?
            .len();
        if n == 0 {
            return Err(Error::Config(format!(
                "{flag} {}: no certificate in it",
                p.display()
            )));
        }
        Ok(())
    };
    let cert_pem = read(cert)?;
    certs("FLOWFORGE_GRPC_TLS_CERT", cert, &cert_pem)?;
    let key_pem = read(key)?;
    PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        Error::Config(format!(
            "FLOWFORGE_GRPC_TLS_KEY {}: no PKCS#8, PKCS#1 or SEC1 private key in it: {e}",
            key.display()
        ))
    })?;
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(cert_pem, key_pem));
    if let Some(ca) = &config.grpc_tls_client_ca {
        let ca_pem = read(ca)?;
        certs("FLOWFORGE_GRPC_TLS_CLIENT_CA", ca, &ca_pem)?;
        tls = tls.client_ca_root(Certificate::from_pem(ca_pem));
    }
    Ok(Some(tls))
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { what, addr, source })
}
