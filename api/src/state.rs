//! State shared by the request handlers.

use std::sync::Arc;

use flowforge_core::queue::{Enqueuer, Queue};
use flowforge_core::secrets::ApiTokens;

use crate::auth::RateLimit;

/// Request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest single-task body (and largest payload of any task), bytes.
    pub max_body_bytes: usize,
    pub max_batch: usize,
    pub max_batch_body_bytes: usize,
    /// Longest per-attempt timeout a task may set, seconds.
    pub max_task_timeout_secs: i32,
}

#[derive(Clone)]
pub struct AppState {
    pub queue: Queue,
    pub enqueuer: Enqueuer,
    pub tokens: ApiTokens,
    pub rate_limit: Option<Arc<RateLimit>>,
    pub limits: Limits,
}
