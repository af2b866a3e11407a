//! Per-request context: request id, W3C trace context, a log span, and HTTP metrics labelled by
//! route template.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use flowforge_core::trace::TraceContext;

use crate::problem::REQUEST_ID;

/// The header carrying the request id, in and out.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The W3C Trace Context header, in (the caller's span) and out (this request's span).
pub const TRACEPARENT_HEADER: &str = "traceparent";

tokio::task_local! {
    /// The current request's trace context, set by [`request_context`] for every request; tasks
    /// created by the request carry it to the worker.
    pub static TRACE: TraceContext;
}

/// The current request's `traceparent`, if called within a request.
pub fn current_traceparent() -> Option<String> {
    TRACE.try_with(|t| t.to_string()).ok()
}

/// Takes the caller's `x-request-id` (if sane) or makes one, echoes it on the response, makes it
/// available to problem documents and logs, and records `flowforge_http_requests_total` and
/// `flowforge_http_request_duration_seconds` by method, route template and status.
pub async fn request_context(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().clone();
    let trace = TraceContext::continue_or_start(
        request
            .headers()
            .get(TRACEPARENT_HEADER)
            .and_then(|v| v.to_str().ok()),
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        request.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = %route,
        trace_id = %trace.trace_id(),
        span_id = %trace.span_id(),
    );
    let mut response = REQUEST_ID
        .scope(
            request_id.clone(),
            TRACE.scope(trace, next.run(request).instrument(span.clone())),
        )
        .await;
    let status = response.status();
    let elapsed = started.elapsed().as_secs_f64();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&trace.to_string()) {
        response.headers_mut().insert(TRACEPARENT_HEADER, v);
    }
    let labels = [
        ("method", method.to_string()),
        ("route", route),
        ("status", status.as_u16().to_string()),
    ];
    metrics::counter!("flowforge_http_requests_total", &labels).increment(1);
    metrics::histogram!("flowforge_http_request_duration_seconds", &labels).record(elapsed);
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(
                status = status.as_u16(),
                elapsed_ms = elapsed * 1e3,
                "request failed"
            );
        } else {
            tracing::debug!(
                status = status.as_u16(),
                elapsed_ms = elapsed * 1e3,
                "request served"
            );
        }
    });
    response
}
