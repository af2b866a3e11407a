//! What a task kind implements, and how kinds are found.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Everything a handler knows about the attempt it runs.
#[derive(Debug, Clone)]
pub struct TaskContext {
    pub id: Uuid,
    pub queue: String,
    pub kind: String,
    pub payload: serde_json::Value,
    /// This attempt's number, starting at 1.
    pub attempt: i32,
    pub max_attempts: i32,
    /// Cancelled when the attempt must stop early (shutdown past its grace period, lost lease).
    /// Long-running handlers should watch it; the runner also drops the handler's future.
    pub cancel: CancellationToken,
}

/// A failed attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    pub message: String,
    /// `false` sends the task straight to the dead tasks (for example a malformed payload that no
    /// retry can fix).
    pub retryable: bool,
}

impl HandlerError {
    /// A failure worth retrying (after backoff, while attempts remain).
    pub fn retryable(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure no retry can fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
            retryable: false,
        }
    }

    /// A payload that does not match what the kind expects.
    pub fn bad_payload(kind: &str, err: impl std::fmt::Display) -> Self {
        Self::permanent(format!("invalid payload for kind {kind:?}: {err}"))
    }
}

/// A task kind.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn run(&self, task: &TaskContext) -> Result<(), HandlerError>;
}

/// Handlers by kind name.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Arc<dyn Handler>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for `kind`, replacing any earlier one.
    pub fn register(&mut self, kind: impl Into<String>, handler: impl Handler) -> &mut Self {
        self.handlers.insert(kind.into(), Arc::new(handler));
        self
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Handler>> {
        self.handlers.get(kind)
    }

    /// Registered kinds, sorted.
    pub fn kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<&str> = self.handlers.keys().map(String::as_str).collect();
        kinds.sort_unstable();
        kinds
    }
}
