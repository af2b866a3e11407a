use std::time::Duration;

use serde::Deserialize;

use crate::{Handler, HandlerError, TaskContext};

/// `sleep` (`{"ms": N}`): waits N milliseconds, then succeeds. Stops early if cancelled.
pub struct Sleep;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    ms: u64,
}

#[async_trait::async_trait]
impl Handler for Sleep {
    async fn run(&self, task: &TaskContext) -> Result<(), HandlerError> {
        let p: Payload = task.parse_payload()?;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(p.ms)) => Ok(()),
            _ = task.cancel.cancelled() => Err(HandlerError::retryable("sleep interrupted")),
        }
    }
}
