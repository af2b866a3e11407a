//! `GET /v1/queues`: depth of every queue.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use flowforge_core::queue::QueueStats;
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::Result;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/queues", get(list_queues))
}

#[derive(Serialize, ToSchema)]
pub struct QueueList {
    pub queues: Vec<QueueStats>,
}

/// Depth of every queue that has active or dead tasks.
#[utoipa::path(get, path = "/v1/queues", tag = "queues",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Queue depths", body = QueueList),
        crate::problem::V1Problems,
    ))]
pub async fn list_queues(State(state): State<AppState>) -> Result<Json<QueueList>> {
    Ok(Json(QueueList {
        queues: state.queue.stats().await?,
    }))
}
