use crate::{Handler, HandlerError, TaskContext};

/// `noop`: succeeds at once. For smoke tests and benchmarks.
pub struct Noop;

#[async_trait::async_trait]
impl Handler for Noop {
    async fn run(&self, _task: &TaskContext) -> Result<(), HandlerError> {
        Ok(())
    }
}
