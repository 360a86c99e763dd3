//! `/api/recurring`: recurring jobs: create or update (`PUT`), read, list, delete,
//! pause, resume, and trigger (run one now).

use super::AppState;
use super::error::{ApiError, ApiJson};
use super::queues::unserved_warning;
use super::responses::{ErrorBody, RecurringList, RecurringTriggered, RecurringView, Warned};
use crate::engine::recurring::{InvalidRecurring, RecurringSpec, validate_id};
use crate::model::now_ms;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this module.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show, put, delete))
        .routes(routes!(trigger))
        .routes(routes!(pause))
        .routes(routes!(resume))
}

impl From<InvalidRecurring> for ApiError {
    fn from(e: InvalidRecurring) -> Self {
        match e {
            InvalidRecurring::Id(_) => ApiError::BadRequest(e.to_string()),
            InvalidRecurring::Invalid(refused) => refused.into(),
        }
    }
}

/// The path's id, checked.
fn checked(id: &str) -> Result<&str, ApiError> {
    validate_id(id)?;
    Ok(id)
}

/// Lists every recurring job.
#[utoipa::path(
    get,
    path = "/api/recurring",
    operation_id = "list_recurring",
    tag = "recurring",
    security(("bearer" = ["read"])),
    responses((status = 200, description = "Every recurring job.", body = RecurringList))
)]
async fn list(State(state): State<AppState>) -> Result<Json<RecurringList>, ApiError> {
    let all = state.store.list_recurring().await?;
    Ok(Json(RecurringList {
        recurring: all.into_iter().map(RecurringView::from).collect(),
    }))
}

/// One recurring job.
#[utoipa::path(
    get,
    path = "/api/recurring/{id}",
    operation_id = "get_recurring",
    tag = "recurring",
    security(("bearer" = ["read"])),
    params(("id" = String, Path, description = "The recurring job's id.")),
    responses(
        (status = 200, description = "The recurring job.", body = RecurringView),
        (status = 400, description = "The id is malformed.", body = ErrorBody),
        (status = 404, description = "No such recurring job.", body = ErrorBody),
    )
)]
async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RecurringView>, ApiError> {
    let recurring = state
        .store
        .recurring(checked(&id)?)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no recurring job with id {id}")))?;
    Ok(Json(recurring.into()))
}

/// Creates (201) or updates (200) a recurring job.
#[utoipa::path(
    put,
    path = "/api/recurring/{id}",
    operation_id = "put_recurring",
    tag = "recurring",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "The recurring job's id.")),
    request_body = RecurringSpec,
    responses(
        (status = 201, description = "The recurring job was created.", body = Warned<RecurringView>),
        (status = 200, description = "The recurring job was replaced.", body = Warned<RecurringView>),
        (status = 400, description = "The id is malformed.", body = ErrorBody),
        (status = 422, description = "A value is refused (`field` names it).", body = ErrorBody),
    )
)]
async fn put(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<RecurringSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let definition = spec.definition(&id, &state.registry)?;
    let warning = unserved_warning(&state.scheduler, [definition.queue.as_str()]);
    let put = state.scheduler.put_recurring(definition, now_ms()).await?;
    let status = if put.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = Warned {
        body: RecurringView::from(put.recurring),
        warning,
    };
    Ok((status, Json(body)))
}

/// Deletes a recurring job; the jobs it enqueued stay.
#[utoipa::path(
    delete,
    path = "/api/recurring/{id}",
    operation_id = "delete_recurring",
    tag = "recurring",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "The recurring job's id.")),
    responses(
        (status = 204, description = "The recurring job was deleted."),
        (status = 400, description = "The id is malformed.", body = ErrorBody),
        (status = 404, description = "No such recurring job.", body = ErrorBody),
    )
)]
async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.scheduler.delete_recurring(checked(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enqueues a job of the recurring job now (201 with the job's id and state).
#[utoipa::path(
    post,
    path = "/api/recurring/{id}/trigger",
    operation_id = "trigger_recurring",
    tag = "recurring",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "The recurring job's id.")),
    responses(
        (status = 201, description = "The job enqueued.", body = RecurringTriggered),
        (status = 400, description = "The id is malformed.", body = ErrorBody),
        (status = 404, description = "No such recurring job.", body = ErrorBody),
    )
)]
async fn trigger(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let job = state
        .scheduler
        .trigger_recurring(checked(&id)?, now_ms())
        .await?;
    let body = RecurringTriggered {
        id: job.id,
        state: job.state,
        recurring_id: id,
    };
    Ok((StatusCode::CREATED, Json(body)))
}

/// Pauses a recurring job: it fires no more until resumed.
#[utoipa::path(
    post,
    path = "/api/recurring/{id}/pause",
    operation_id = "pause_recurring",
    tag = "recurring",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "The recurring job's id.")),
    responses(
        (status = 200, description = "The recurring job, paused.", body = RecurringView),
        (status = 400, description = "The id is malformed.", body = ErrorBody),
        (status = 404, description = "No such recurring job.", body = ErrorBody),
    )
)]
async fn pause(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RecurringView>, ApiError> {
    let recurring = state
        .scheduler
        .set_recurring_paused(checked(&id)?, true, now_ms())
        .await?;
    Ok(Json(recurring.into()))
}

/// Resumes a paused recurring job from its next occurrence.
#[utoipa::path(
    post,
    path = "/api/recurring/{id}/resume",
    operation_id = "resume_recurring",
    tag = "recurring",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "The recurring job's id.")),
    responses(
        (status = 200, description = "The recurring job, resumed.", body = RecurringView),
        (status = 400, description = "The id is malformed.", body = ErrorBody),
        (status = 404, description = "No such recurring job.", body = ErrorBody),
    )
)]
async fn resume(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RecurringView>, ApiError> {
    let recurring = state
        .scheduler
        .set_recurring_paused(checked(&id)?, false, now_ms())
        .await?;
    Ok(Json(recurring.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::Registry;

    fn field(refused: InvalidRecurring) -> String {
        match ApiError::from(refused) {
            ApiError::Invalid { field, .. } => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_refusal_of_a_spec_names_its_field() {
        let registry = Registry::default();
        let spec: RecurringSpec =
            serde_json::from_value(serde_json::json!({"cron": "@daily", "plugin": "nosuch"}))
                .unwrap();
        let unknown = spec.clone().definition("r", &registry).unwrap_err();
        assert_eq!(field(unknown), "plugin");
        let other: RecurringSpec = serde_json::from_value(
            serde_json::json!({"id": "a", "cron": "@daily", "plugin": "echo"}),
        )
        .unwrap();
        assert_eq!(field(other.definition("b", &registry).unwrap_err()), "id");
        let id = ApiError::from(validate_id("a b").unwrap_err());
        assert_eq!(id.status(), StatusCode::BAD_REQUEST);
    }
}
