//! The API on AWS Lambda: when `AWS_LAMBDA_RUNTIME_API` is set, the same router (auth, rate
//! limits, request ids, trace context, problem+json) answers API Gateway HTTP API (payload 2.0)
//! events and Lambda function URL requests through `lambda_http`, instead of a listener.
//!
//! What differs from a server process:
//!
//! - No listener and no admin server: a Lambda function has no inbound port besides its
//!   invocations, so nothing could reach `/healthz`, `/readyz` or `/metrics`. The Lambda service
//!   does the health keeping (a failed init or a crash is retried on a new instance) and its
//!   CloudWatch metrics (invocations, errors, duration, and API Gateway's 4xx/5xx and latency)
//!   stand in for the HTTP metrics. Logs are the same JSON lines on stderr, which Lambda sends
//!   to CloudWatch Logs.
//! - Lambda freezes the process between invocations. Background work simply resumes on the next
//!   thaw: the secret refreshers' timers fire late and then check the store as usual, and a
//!   pooled connection that PostgreSQL closed meanwhile is replaced and its statement retried
//!   (as after a failover). One cut silently by something in between during a long freeze (a
//!   NAT or proxy idle timeout under the pool's 30 min connection lifetime) fails that one
//!   request with a 503 and `Retry-After`, never with a lost task. No acknowledged task can be
//!   lost in a freeze: a create is answered only after the group-commit flush that holds it has
//!   committed ([`flowforge_core::queue::Enqueuer`]), so while the response is not sent the
//!   invocation is still running and the process is not frozen. The wake-up NOTIFY is sent after
//!   the commit by a background task and may wait for the next thaw (or be lost with the
//!   instance); workers also poll every second, so that costs latency, never a task.
//! - Secrets come from the same sources (`aws-sm:` with the function's execution role, or
//!   `file:`), refreshed in the same way.

use std::future::Future;

use crate::app::{build_state, router, AppError};
use crate::config::Config;

/// Set by the Lambda service (and by emulators such as `cargo lambda watch`): where the Runtime
/// API is.
pub const RUNTIME_API_ENV: &str = "AWS_LAMBDA_RUNTIME_API";

/// Whether this process runs as a Lambda function.
pub fn enabled() -> bool {
    std::env::var_os(RUNTIME_API_ENV).is_some_and(|v| !v.is_empty())
}

/// Checks what serving on Lambda needs beyond the usual configuration; the error is the one-line
/// reason for exit 64.
fn check(config: &Config) -> Result<(), String> {
    if config.api_tls_cert.is_some() || config.api_tls_key.is_some() {
        return Err(format!(
            "FLOWFORGE_API_TLS_CERT and FLOWFORGE_API_TLS_KEY do not apply on AWS Lambda \
             ({RUNTIME_API_ENV} is set): API Gateway and function URLs terminate TLS"
        ));
    }
    // The Lambda service sets these along with the Runtime API; without them the runtime client
    // would panic. Missing, they mean a hand-started process with a stray AWS_LAMBDA_RUNTIME_API.
    for variable in [
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    ] {
        if std::env::var_os(variable).is_none_or(|v| v.is_empty()) {
            return Err(format!(
                "{RUNTIME_API_ENV} is set (running on AWS Lambda) but {variable} is not"
            ));
        }
    }
    let memory = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").unwrap_or_default();
    if memory.parse::<i32>().is_err() {
        return Err(format!(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE {memory:?} is not a number of megabytes"
        ));
    }
    Ok(())
}

/// Serves Lambda invocations until the Runtime API fails or `shutdown` resolves (the Lambda
/// service sends SIGTERM only when the instance is being retired, between invocations).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), AppError> {
    check(&config).map_err(AppError::Config)?;
    let (state, stop_secrets) = build_state(&config).await?;
    tracing::info!(
        function = %std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
        "serving AWS Lambda invocations (API Gateway HTTP API and function URLs)"
    );
    let result = tokio::select! {
        // One invocation at a time, as Lambda sends them to an instance.
        served = lambda_http::run(router(state)) => served.map_err(AppError::Lambda),
        _ = shutdown => Ok(()),
    };
    stop_secrets.cancel();
    tracing::info!("API stopped");
    result
}
