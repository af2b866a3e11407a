//! Bearer-token authentication and per-token rate limiting for the `/v1` routes.

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use flowforge_core::secrets::{TokenSet, Verdict};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::problem::ApiError;
use crate::state::AppState;

/// A rate limit per token (keyed by a digest of the token, never the token itself).
pub struct RateLimit {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl RateLimit {
    /// `None` when `per_second` is 0 (rate limiting off).
    pub fn new(per_second: u32, burst: u32) -> Option<Arc<Self>> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst).unwrap_or(rate);
        Some(Arc::new(RateLimit {
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
        }))
    }

    /// Ok, or the whole seconds to wait before the next request would be allowed.
    fn check(&self, key: &String) -> Result<(), u64> {
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

/// Rejects requests without a valid bearer token (401), then applies the token's rate limit (429).
/// Tokens of the previous secret version pass within their grace window; every outcome is
/// counted in `flowforge_auth_total{result}` (`current`, `previous`, `rejected`, `not_loaded`),
/// so operators see when clients stopped using a rotated token.
pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = bearer_token(&request)?;
    let verdict = state.tokens.verify(token).await;
    let result = match &verdict {
        Verdict::Current => "current",
        Verdict::Previous => "previous",
        Verdict::Rejected => "rejected",
        Verdict::NotLoaded(_) => "not_loaded",
    };
    metrics::counter!("flowforge_auth_total", "result" => result).increment(1);
    match verdict {
        Verdict::Current | Verdict::Previous => {}
        Verdict::Rejected => return Err(ApiError::Unauthorized("the bearer token is not valid")),
        Verdict::NotLoaded(reason) => {
            tracing::warn!(%reason, "request refused: API tokens not loaded");
            return Err(ApiError::NotReady(
                "the API tokens are not loaded yet; retry shortly",
            ));
        }
    }
    if let Some(limit) = &state.rate_limit {
        let key = TokenSet::label(token);
        limit
            .check(&key)
            .map_err(|retry_after_secs| ApiError::RateLimited {
                retry_after_secs: retry_after_secs.max(1),
            })?;
    }
    Ok(next.run(request).await)
}

fn bearer_token(request: &Request) -> Result<&str, ApiError> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized(
            "missing Authorization: Bearer <token> header",
        ))?
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the Authorization header is not valid text"))?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::Unauthorized(
        "the Authorization header must be Bearer <token>",
    ))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthorized(
            "the Authorization header must be Bearer <token>",
        ));
    }
    Ok(token.trim())
}
