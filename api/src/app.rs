//! The API process: router, servers and shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::serve::{Listener, ListenerExt};
use axum::{middleware, Json, Router};
use flowforge_core::admin::{self, AdminState};
use flowforge_core::db::Db;
use flowforge_core::queue::{Enqueuer, Queue};
use flowforge_core::secrets::ApiTokens;
use flowforge_core::shutdown::Readiness;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::{require_token, RateLimit};
use crate::config::Config;
use crate::problem::ApiError;
use crate::state::{AppState, Limits};
use crate::tls::ServerTls;

/// Errors of building or running the API process.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad configuration (exit 64).
    #[error("{0}")]
    Config(String),
    #[error("cannot bind {what} to {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(#[from] std::io::Error),
    /// The AWS Lambda runtime client gave up (the Runtime API failed).
    #[error("the Lambda runtime failed: {0}")]
    Lambda(#[source] lambda_http::Error),
}

/// How long start-up waits for the secrets' first load before serving anyway.
const STARTUP_SECRET_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The full router: `/v1` behind auth, `/openapi.json` open, problems for unknown routes and methods.
pub fn router(state: AppState) -> Router {
    let limits = state.limits;
    let v1 = Router::new()
        .merge(crate::routes::tasks::router(limits))
        .merge(crate::routes::queues::router())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .merge(v1)
        .route(
            "/openapi.json",
            get(|| async { Json(crate::openapi::document()) }),
        )
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn(crate::observe::request_context))
        .with_state(state)
}

/// The API with its listeners bound, ready to run.
pub struct Application {
    config: Config,
    state: AppState,
    api: TcpListener,
    admin: TcpListener,
    /// HTTPS on the API address, if configured.
    tls: Option<Arc<ServerTls>>,
    /// Stops the secret refreshers (and the certificate reloader) when the application ends.
    stop_secrets: CancellationToken,
}

/// The handlers' state, shared by both ways of serving (a listener, or AWS Lambda): starts the
/// secret refreshers, which `stop_secrets` (returned) ends, and waits briefly for their first
/// load.
pub(crate) async fn build_state(
    config: &Config,
) -> Result<(AppState, CancellationToken), AppError> {
    let source = config
        .api_tokens_secret
        .clone()
        .ok_or_else(|| AppError::Config("FLOWFORGE_API_TOKENS_SECRET is required".into()))?;
    // The recorder first: the secret watchers publish gauges as soon as they start.
    flowforge_core::telemetry::metrics_handle();
    let stop_secrets = CancellationToken::new();
    let db = Db::from_config(
        &config.db,
        &config.secrets,
        "flowforge-api",
        stop_secrets.clone(),
    )
    .map_err(AppError::Config)?;
    let tokens = ApiTokens::start(
        source,
        config.secrets.secret_refresh,
        config.api_token_grace,
        stop_secrets.clone(),
    );
    // A normal start is ready at once: give the secrets a moment to load (a store that is
    // down is not fatal; readiness says why until they load).
    tokio::join!(
        tokens.wait_loaded(STARTUP_SECRET_WAIT),
        db.wait_loaded(STARTUP_SECRET_WAIT)
    );
    let queue = Queue::new(db);
    let enqueuer = Enqueuer::new(
        queue.clone(),
        config.enqueue_flushers as usize,
        config.enqueue_max_batch as usize,
    );
    let state = AppState {
        queue,
        enqueuer,
        tokens,
        rate_limit: RateLimit::new(config.rate_limit_rps, config.rate_limit_burst),
        limits: Limits {
            max_body_bytes: config.max_body_bytes,
            max_batch: config.max_batch as usize,
            max_batch_body_bytes: config.max_batch_body_bytes,
            max_task_timeout_secs: i32::try_from(config.max_task_timeout.as_secs())
                .unwrap_or(i32::MAX),
        },
    };
    Ok((state, stop_secrets))
}

impl Application {
    /// Checks the TLS files (if any), starts the secret refreshers, builds the pool and binds
    /// both listeners (port 0 works for tests). Secrets load in the background: until they do,
    /// `/readyz` says why.
    pub async fn build(config: Config) -> Result<Self, AppError> {
        let tls = config
            .api_tls()
            .map(ServerTls::load)
            .transpose()
            .map_err(AppError::Config)?
            .map(Arc::new);
        let (state, stop_secrets) = build_state(&config).await?;
        let api = bind("API", config.api_addr).await?;
        let admin = bind("admin server", config.admin_addr).await?;
        Ok(Application {
            config,
            state,
            api,
            admin,
            tls,
            stop_secrets,
        })
    }

    pub fn api_addr(&self) -> SocketAddr {
        self.api
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Serves until `shutdown` resolves; then readiness turns 503, new connections stop after the
    /// shutdown delay, and in-flight requests get the grace period to finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let Application {
            config,
            state,
            api,
            admin,
            tls,
            stop_secrets,
        } = self;
        let readiness = Arc::new(Readiness::default());
        let stop_admin = CancellationToken::new();
        let admin_server = tokio::spawn(admin::serve(
            admin,
            AdminState {
                name: "flowforge-api",
                version: env!("CARGO_PKG_VERSION"),
                readiness: readiness.clone(),
                check: admin::all(vec![
                    admin::tokens_check(state.tokens.clone()),
                    admin::database_check(state.queue.clone()),
                ]),
                metrics: flowforge_core::telemetry::metrics_handle(),
                db: Some(state.queue.db().clone()),
            },
            stop_admin.clone(),
        ));
        let stop_api = CancellationToken::new();
        {
            let stop_api = stop_api.clone();
            let readiness = readiness.clone();
            let delay = config.shutdown_delay;
            tokio::spawn(async move {
                shutdown.await;
                readiness.start_draining();
                tracing::info!(
                    ?delay,
                    "not ready any more; stopping after the shutdown delay"
                );
                tokio::time::sleep(delay).await;
                stop_api.cancel();
            });
        }
        let grace = config.shutdown_grace;
        let router = router(state);
        let result = match tls {
            None => {
                tracing::info!(api = %config.api_addr, admin = %config.admin_addr, "API listening (HTTP)");
                // Answers go out at once: without TCP_NODELAY, Nagle's algorithm and delayed
                // ACKs hold small responses on keep-alive connections for tens of milliseconds.
                let api = api.tap_io(|tcp| {
                    if let Err(err) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %err, "cannot set TCP_NODELAY");
                    }
                });
                serve(api, router, stop_api, grace).await
            }
            Some(tls) => {
                tracing::info!(api = %config.api_addr, admin = %config.admin_addr, "API listening (HTTPS)");
                tls.clone().spawn_reloader(stop_secrets.clone());
                match tls.listener(api) {
                    Ok(api) => serve(api, router, stop_api, grace).await,
                    Err(err) => Err(AppError::Serve(err)),
                }
            }
        };
        // Requests are answered only after their enqueue committed: nothing is left to flush.
        stop_admin.cancel();
        let _ = admin_server.await;
        stop_secrets.cancel();
        tracing::info!("API stopped");
        result
    }
}

/// Serves `router` on `listener` until `stop` is cancelled, then lets in-flight requests finish
/// for up to `grace`.
async fn serve<L>(
    listener: L,
    router: Router,
    stop: CancellationToken,
    grace: std::time::Duration,
) -> Result<(), AppError>
where
    L: Listener,
    L::Addr: std::fmt::Debug,
{
    let server = axum::serve(listener, router).with_graceful_shutdown({
        let stop = stop.clone();
        async move { stop.cancelled().await }
    });
    let server = std::future::IntoFuture::into_future(server);
    tokio::select! {
        r = server => r.map_err(AppError::Serve),
        _ = async { stop.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(?grace, "in-flight requests did not finish within the grace period");
            Ok(())
        }
    }
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, AppError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind { what, addr, source })
}
