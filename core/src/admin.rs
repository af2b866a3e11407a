//! The admin server every process runs: `/healthz`, `/readyz`, `/version`, `/metrics`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::shutdown::Readiness;

/// A readiness check beyond draining (for example "the database answers").
pub type ReadyCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// What the admin routes need.
#[derive(Clone)]
pub struct AdminState {
    pub name: &'static str,
    pub version: &'static str,
    pub readiness: Arc<Readiness>,
    pub check: ReadyCheck,
    pub metrics: PrometheusHandle,
    /// The process's database handle: its pool's figures are sampled at every scrape.
    pub db: Option<crate::db::Db>,
}

/// The admin router.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Serves the admin router on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    stop: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AdminState>) -> Response {
    if state.readiness.is_draining() {
        return not_ready("draining: shutting down");
    }
    match (state.check)().await {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({"status": "ready"}))).into_response(),
        Err(reason) => not_ready(&reason),
    }
}

fn not_ready(reason: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({"status": "not ready", "reason": reason})),
    )
        .into_response()
}

async fn version(State(state): State<AdminState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "name": state.name,
        "version": state.version,
        "git_sha": option_env!("FLOWFORGE_GIT_SHA").unwrap_or("unknown"),
    }))
}

async fn metrics(State(state): State<AdminState>) -> Response {
    if let Some(db) = &state.db {
        db.record_pool_metrics();
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// The `healthcheck` subcommand: GET `http://ADDR/healthz` (an unspecified address such as
/// 0.0.0.0 is asked on loopback) within 2 s; `Ok` on 200, else the reason.
pub async fn healthcheck(addr: std::net::SocketAddr) -> Result<(), String> {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let url = format!("http://{addr}/healthz");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(2))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("{url}: {}", r.status())),
        Err(e) => Err(format!("{url}: {e}")),
    }
}

/// Every check must pass; the first failure's reason is reported.
pub fn all(checks: Vec<ReadyCheck>) -> ReadyCheck {
    let checks = Arc::new(checks);
    Arc::new(move || {
        let checks = checks.clone();
        Box::pin(async move {
            for check in checks.iter() {
                check().await?;
            }
            Ok(())
        })
    })
}

/// A readiness check that the API tokens secret was loaded at least once.
pub fn tokens_check(tokens: crate::secrets::ApiTokens) -> ReadyCheck {
    Arc::new(move || {
        let reason = tokens.not_ready_reason();
        Box::pin(async move { reason.map_or(Ok(()), Err) })
    })
}

/// A readiness check that pings the database (and says so when its credentials secret was never
/// loaded).
pub fn database_check(queue: crate::queue::Queue) -> ReadyCheck {
    Arc::new(move || {
        let queue = queue.clone();
        Box::pin(async move {
            if let Some(reason) = queue.db().not_ready_reason() {
                return Err(format!("database: {reason}"));
            }
            queue
                .ping(std::time::Duration::from_secs(2))
                .await
                .map_err(|e| format!("database: {e}"))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn healthcheck_passes_against_a_live_admin_server_only() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let state = AdminState {
            name: "test",
            version: "0",
            readiness: Arc::new(Readiness::default()),
            check: all(vec![]),
            metrics: crate::telemetry::metrics_handle(),
            db: None,
        };
        let server = tokio::spawn(serve(listener, state, stop.clone()));
        assert_eq!(healthcheck(addr).await, Ok(()));
        // 0.0.0.0 (how containers bind) is asked on loopback.
        let any = std::net::SocketAddr::from(([0, 0, 0, 0], addr.port()));
        assert_eq!(healthcheck(any).await, Ok(()));
        stop.cancel();
        server.await.unwrap().unwrap();
        let err = healthcheck(addr).await.unwrap_err();
        assert!(err.contains(&format!("{addr}/healthz")), "{err}");
    }
}
