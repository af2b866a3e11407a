//! `/v1/tasks`: create (single and batch), read, list, cancel and re-drive tasks.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use flowforge_core::names::{is_valid_name, NAME_PATTERN};
use flowforge_core::queue::enqueue::EnqueueError;
use flowforge_core::queue::{
    ListFilter, NewTask, Task, TaskStatus, DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT_SECS,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::extract::{TaskId, ValidJson, ValidQuery};
use crate::problem::{ApiError, FieldError, Result};
use crate::state::{AppState, Limits};

pub fn router(limits: Limits) -> Router<AppState> {
    Router::new()
        .route("/v1/tasks", post(create_task).get(list_tasks))
        .route(
            "/v1/tasks/batch",
            post(create_batch).layer(axum::extract::DefaultBodyLimit::max(
                limits.max_batch_body_bytes,
            )),
        )
        .route("/v1/tasks/{id}", get(get_task))
        .route("/v1/tasks/{id}/cancel", post(cancel_task))
        .route("/v1/tasks/{id}/retry", post(retry_task))
}

/// A task to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    /// Queue name, matching `^[a-z0-9][a-z0-9_.-]{0,62}$`.
    #[schema(pattern = "^[a-z0-9][a-z0-9_.-]{0,62}$", example = "emails")]
    pub queue: String,
    /// Task kind (the handler that runs it), same pattern as queue names.
    #[schema(pattern = "^[a-z0-9][a-z0-9_.-]{0,62}$", example = "sleep")]
    pub kind: String,
    /// Arbitrary JSON handed to the handler (default `{}`).
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"ms": 100}))]
    pub payload: Option<serde_json::Value>,
    /// Higher runs first (-32768..32767, default 0).
    #[serde(default)]
    pub priority: Option<i16>,
    /// Attempts before the task is dead (1..=100, default 5).
    #[serde(default)]
    pub max_attempts: Option<i32>,
    /// Earliest start (RFC 3339); default now.
    #[serde(default)]
    pub run_at: Option<DateTime<Utc>>,
    /// Per-attempt time limit in seconds: 1 up to the deployment's maximum
    /// (`FLOWFORGE_MAX_TASK_TIMEOUT`, at most 86400); default 300, or the maximum if lower.
    #[serde(default)]
    pub timeout: Option<i32>,
    /// Makes the create idempotent: while a task with this key is retained in the queue, creating
    /// another returns it instead (1..=255 characters). The `Idempotency-Key` header works too.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

impl CreateTask {
    /// Checks every field, prefixing paths with `prefix` (e.g. `tasks[3].`), and converts.
    /// `payload_limit` bounds the serialised payload; single creates pass `None`, since the body
    /// limit already bounds them. `max_timeout` is the longest timeout allowed, seconds.
    fn validate(
        self,
        prefix: &str,
        payload_limit: Option<usize>,
        max_timeout: i32,
        errors: &mut Vec<FieldError>,
    ) -> Option<NewTask> {
        let before = errors.len();
        let mut bad = |field: &str, message: String| {
            errors.push(FieldError::new(format!("{prefix}{field}"), message))
        };
        if !is_valid_name(&self.queue) {
            bad(
                "queue",
                format!("{:?} does not match {NAME_PATTERN}", self.queue),
            );
        }
        if !is_valid_name(&self.kind) {
            bad(
                "kind",
                format!("{:?} does not match {NAME_PATTERN}", self.kind),
            );
        }
        let max_attempts = self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if !(1..=100).contains(&max_attempts) {
            bad("max_attempts", format!("{max_attempts} is outside 1..=100"));
        }
        let timeout = self
            .timeout
            .unwrap_or(DEFAULT_TIMEOUT_SECS.min(max_timeout));
        if !(1..=max_timeout).contains(&timeout) {
            bad(
                "timeout",
                format!("{timeout} is outside 1..={max_timeout} seconds (this deployment's maximum task timeout)"),
            );
        }
        if let Some(key) = &self.idempotency_key {
            if key.is_empty() || key.len() > 255 {
                bad("idempotency_key", "must be 1 to 255 bytes long".into());
            }
        }
        let payload = self.payload.unwrap_or_else(|| serde_json::json!({}));
        if let Some(limit) = payload_limit {
            let size = serde_json::to_vec(&payload)
                .map(|v| v.len())
                .unwrap_or(usize::MAX);
            if size > limit {
                bad(
                    "payload",
                    format!("{size} bytes is over the {limit} byte limit"),
                );
            }
        }
        (errors.len() == before).then(|| NewTask {
            queue: self.queue,
            kind: self.kind,
            payload,
            priority: self.priority.unwrap_or(0),
            max_attempts,
            run_at: self.run_at,
            timeout_secs: timeout,
            idempotency_key: self.idempotency_key,
            trace_parent: crate::observe::current_traceparent(),
        })
    }
}

impl From<EnqueueError> for ApiError {
    fn from(err: EnqueueError) -> Self {
        match err {
            EnqueueError::Unavailable(_) | EnqueueError::Stopped => ApiError::Unavailable(None),
            EnqueueError::Database(msg) => ApiError::Internal(anyhow::anyhow!(msg)),
        }
    }
}

/// Create a task.
///
/// 201 with the new task, or 200 with the retained task when the idempotency key was seen before.
#[utoipa::path(post, path = "/v1/tasks", tag = "tasks", request_body = CreateTask,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Same as the idempotency_key field")),
    responses(
        (status = 201, description = "Created", body = Task, headers(("location" = String, description = "URL of the task"))),
        (status = 200, description = "Idempotent repeat: the original task", body = Task),
        (status = 400, description = "Malformed JSON", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over the limit", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = crate::problem::Problem, content_type = "application/problem+json"),
        crate::problem::V1Problems,
    ))]
pub async fn create_task(
    State(state): State<AppState>,
    headers: HeaderMap,
    ValidJson(mut body): ValidJson<CreateTask>,
) -> Result<Response> {
    if let Some(header_key) = headers.get("idempotency-key") {
        let header_key = header_key.to_str().map_err(|_| {
            ApiError::Validation(vec![FieldError::new(
                "Idempotency-Key",
                "must be visible ASCII",
            )])
        })?;
        match &body.idempotency_key {
            Some(k) if k != header_key => {
                return Err(ApiError::Validation(vec![FieldError::new(
                    "idempotency_key",
                    "differs from the Idempotency-Key header",
                )]))
            }
            _ => body.idempotency_key = Some(header_key.to_owned()),
        }
    }
    let mut errors = Vec::new();
    let Some(task) = body.validate("", None, state.limits.max_task_timeout_secs, &mut errors)
    else {
        return Err(ApiError::Validation(errors));
    };
    let enqueued = state.enqueuer.enqueue(task).await?;
    let status = if enqueued.created {
        metrics::counter!("flowforge_tasks_created_total", "queue" => enqueued.task.queue.clone())
            .increment(1);
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let location = HeaderValue::from_str(&format!("/v1/tasks/{}", enqueued.task.id))
        .expect("a UUID path is a valid header");
    Ok((status, [(header::LOCATION, location)], Json(enqueued.task)).into_response())
}

/// A batch of tasks to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBatch {
    /// Up to 10,000 tasks (the server's limit).
    pub tasks: Vec<CreateTask>,
}

/// Ids of a batch's tasks, in request order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchCreated {
    pub ids: Vec<Uuid>,
}

/// Create many tasks in one request (and one commit).
///
/// All or nothing: if any task is invalid, none is created. A task whose idempotency key was
/// seen before contributes the original task's id.
#[utoipa::path(post, path = "/v1/tasks/batch", tag = "tasks", request_body = CreateBatch,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = BatchCreated),
        (status = 400, description = "Malformed JSON", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body or batch over the limit", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = crate::problem::Problem, content_type = "application/problem+json"),
        crate::problem::V1Problems,
    ))]
pub async fn create_batch(
    State(state): State<AppState>,
    ValidJson(body): ValidJson<CreateBatch>,
) -> Result<(StatusCode, Json<BatchCreated>)> {
    let limits = state.limits;
    if body.tasks.len() > limits.max_batch {
        return Err(ApiError::PayloadTooLarge(format!(
            "{} tasks is over the batch limit of {}",
            body.tasks.len(),
            limits.max_batch
        )));
    }
    if body.tasks.is_empty() {
        return Err(ApiError::Validation(vec![FieldError::new(
            "tasks",
            "must hold at least one task",
        )]));
    }
    let mut errors = Vec::new();
    let tasks: Vec<NewTask> = body
        .tasks
        .into_iter()
        .enumerate()
        .filter_map(|(i, t)| {
            t.validate(
                &format!("tasks[{i}]."),
                Some(limits.max_body_bytes),
                limits.max_task_timeout_secs,
                &mut errors,
            )
        })
        .collect();
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let enqueued = state.queue.enqueue_many(&tasks).await?;
    for e in enqueued.iter().filter(|e| e.created) {
        metrics::counter!("flowforge_tasks_created_total", "queue" => e.task.queue.clone())
            .increment(1);
    }
    Ok((
        StatusCode::CREATED,
        Json(BatchCreated {
            ids: enqueued.into_iter().map(|e| e.task.id).collect(),
        }),
    ))
}

/// Read a task.
#[utoipa::path(get, path = "/v1/tasks/{id}", tag = "tasks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Task id")),
    responses(
        (status = 200, description = "The task", body = Task),
        (status = 404, description = "No such task (or no longer retained)", body = crate::problem::Problem, content_type = "application/problem+json"),
        crate::problem::V1Problems,
    ))]
pub async fn get_task(State(state): State<AppState>, TaskId(id): TaskId) -> Result<Json<Task>> {
    state
        .queue
        .get(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no task with id {id}")))
}

/// Filters and page of `GET /v1/tasks`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only tasks of this queue.
    pub queue: Option<String>,
    /// Only tasks in this state: queued, running, succeeded, dead or cancelled.
    pub status: Option<String>,
    /// Page size, 1..=1000 (default 100).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of tasks, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TaskList {
    pub tasks: Vec<Task>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// List tasks, oldest first, filtered by queue and status.
#[utoipa::path(get, path = "/v1/tasks", tag = "tasks",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "A page of tasks", body = TaskList),
        (status = 422, description = "Invalid query parameters", body = crate::problem::Problem, content_type = "application/problem+json"),
        crate::problem::V1Problems,
    ))]
pub async fn list_tasks(
    State(state): State<AppState>,
    ValidQuery(params): ValidQuery<ListParams>,
) -> Result<Json<TaskList>> {
    let mut errors = Vec::new();
    if let Some(q) = &params.queue {
        if !is_valid_name(q) {
            errors.push(FieldError::new(
                "queue",
                format!("{q:?} does not match {NAME_PATTERN}"),
            ));
        }
    }
    let status = match params.status.as_deref().map(str::parse::<TaskStatus>) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            errors.push(FieldError::new("status", e));
            None
        }
    };
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        errors.push(FieldError::new(
            "limit",
            format!("{limit} is outside 1..=1000"),
        ));
    }
    let after = match params.cursor.as_deref().map(str::parse::<Uuid>) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            errors.push(FieldError::new(
                "cursor",
                "not a cursor returned by this API",
            ));
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let page = state
        .queue
        .list(&ListFilter {
            queue: params.queue,
            status,
            after,
            limit,
        })
        .await?;
    Ok(Json(TaskList {
        tasks: page.tasks,
        next_cursor: page.next_cursor.map(|id| id.to_string()),
    }))
}

/// Cancel a queued task.
#[utoipa::path(post, path = "/v1/tasks/{id}/cancel", tag = "tasks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Task id")),
    responses(
        (status = 200, description = "Cancelled", body = Task),
        (status = 404, description = "No such task", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is not queued", body = crate::problem::Problem, content_type = "application/problem+json"),
        crate::problem::V1Problems,
    ))]
pub async fn cancel_task(State(state): State<AppState>, TaskId(id): TaskId) -> Result<Json<Task>> {
    Ok(Json(state.queue.cancel(id).await?))
}

/// Re-drive a dead or cancelled task: queued again now with fresh attempts.
#[utoipa::path(post, path = "/v1/tasks/{id}/retry", tag = "tasks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Task id")),
    responses(
        (status = 200, description = "Queued again", body = Task),
        (status = 404, description = "No such task", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The task is not dead or cancelled", body = crate::problem::Problem, content_type = "application/problem+json"),
        crate::problem::V1Problems,
    ))]
pub async fn retry_task(State(state): State<AppState>, TaskId(id): TaskId) -> Result<Json<Task>> {
    Ok(Json(state.queue.retry(id).await?))
}
