//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{queues, tasks};

#[derive(OpenApi)]
#[openapi(
    info(title = "FlowForge task API", description = "Submit tasks to durable PostgreSQL-backed queues and follow them to completion. Errors are RFC 9457 problem+json."),
    paths(
        tasks::create_task,
        tasks::create_batch,
        tasks::list_tasks,
        tasks::get_task,
        tasks::cancel_task,
        tasks::retry_task,
        queues::list_queues,
    ),
    components(schemas(
        flowforge_core::queue::Task,
        flowforge_core::queue::TaskStatus,
        flowforge_core::queue::QueueStats,
        crate::problem::Problem,
        crate::problem::FieldError,
    )),
    modifiers(&BearerAuth),
    tags((name = "tasks", description = "Tasks"), (name = "queues", description = "Queue depth")),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as served at `/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}
