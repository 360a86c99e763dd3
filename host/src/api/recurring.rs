//! `/api/recurring`: recurring jobs: create or update (`PUT`), read, list, delete,
//! pause, resume, and trigger (run one now).

use super::AppState;
use super::error::{ApiError, ApiJson, field_named};
use super::queues::unserved_warning;
use super::responses::{RecurringList, RecurringTriggered, RecurringView, Warned};
use crate::engine::recurring::{InvalidRecurring, RecurringSpec, validate_id};
use crate::model::now_ms;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};

/// The routes of this module.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/recurring", get(list))
        .route("/api/recurring/{id}", get(show).put(put).delete(delete))
        .route("/api/recurring/{id}/trigger", post(trigger))
        .route("/api/recurring/{id}/pause", post(pause))
        .route("/api/recurring/{id}/resume", post(resume))
}

impl From<InvalidRecurring> for ApiError {
    fn from(e: InvalidRecurring) -> Self {
        match e {
            InvalidRecurring::Id(_) => ApiError::BadRequest(e.to_string()),
            InvalidRecurring::Invalid(message) => ApiError::invalid(spec_field(&message), message),
        }
    }
}

/// The field of a recurring job's spec a refusal of [`RecurringSpec::definition`]
/// concerns: its message begins with the field, in these words.
fn spec_field(message: &str) -> &'static str {
    field_named(
        message,
        &[
            ("id", "id"),
            ("cron", "cron"),
            ("timezone", "timezone"),
            ("unknown plugin", "plugin"),
            ("plugin", "plugin"),
            ("args", "args"),
            ("queue", "queue"),
            ("priority", "priority"),
            ("max_attempts", "max_attempts"),
        ],
    )
}

/// The path's id, checked.
fn checked(id: &str) -> Result<&str, ApiError> {
    validate_id(id)?;
    Ok(id)
}

async fn list(State(state): State<AppState>) -> Result<Json<RecurringList>, ApiError> {
    let all = state.store.list_recurring().await?;
    Ok(Json(RecurringList {
        recurring: all.into_iter().map(RecurringView::from).collect(),
    }))
}

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

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.scheduler.delete_recurring(checked(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enqueues a job of the recurring job now (201 with the job's id and state).
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
    use crate::model::rules::{validate_max_attempts, validate_queue_name};
    use crate::model::validate_priority;
    use crate::plugins::Registry;

    fn field(message: String) -> String {
        match ApiError::from(InvalidRecurring::Invalid(message)) {
            ApiError::Invalid { field, .. } => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn each_refusal_of_a_spec_names_its_field() {
        let registry = Registry::default();
        let unknown = registry.require("nosuch").unwrap_err();
        let too_long = registry.require(&"p".repeat(201)).unwrap_err();
        let refusals = [
            (
                "id `a` in the body differs from `b` in the path".into(),
                "id",
            ),
            ("cron `x`: bad field".into(), "cron"),
            ("cron `0 0 30 2 *` never fires".into(), "cron"),
            ("timezone: unknown time zone `Mars/Base`".into(), "timezone"),
            (unknown, "plugin"),
            (too_long, "plugin"),
            ("args must be a JSON object".into(), "args"),
            (validate_queue_name("Bad Queue").unwrap_err(), "queue"),
            (validate_priority(101).unwrap_err(), "priority"),
            (validate_max_attempts(0).unwrap_err(), "max_attempts"),
        ];
        for (message, named) in refusals {
            assert_eq!(field(message), named);
        }
        let id = ApiError::from(validate_id("a b").unwrap_err());
        assert_eq!(id.status(), StatusCode::BAD_REQUEST);
    }
}
