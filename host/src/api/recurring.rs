//! `/api/recurring`: recurring jobs: create or update (`PUT`), read, list, delete,
//! pause, resume, and trigger (run one now).

use super::AppState;
use super::error::{ApiError, ApiJson};
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
            InvalidRecurring::Invalid(refused) => refused.into(),
        }
    }
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
