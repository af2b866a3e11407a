use serde::Deserialize;

use crate::{Handler, HandlerError, TaskContext};

/// `fail` (`{"times": N}`): fails its first N attempts, then succeeds. A drill kind for retries,
/// dead-lettering, alerts and runbooks; `--disable-fail-kind` leaves it unregistered.
pub struct Fail;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    times: i32,
}

#[async_trait::async_trait]
impl Handler for Fail {
    async fn run(&self, task: &TaskContext) -> Result<(), HandlerError> {
        let p: Payload = task.parse_payload()?;
        if task.attempt <= p.times {
            Err(HandlerError::retryable(format!(
                "drill failure: attempt {} of the {} planned to fail",
                task.attempt, p.times
            )))
        } else {
            Ok(())
        }
    }
}
