//! `/api/recurring`: recurring jobs: create or update (`PUT`), read, list, delete,
//! pause, resume, and trigger (run one now); and when a schedule would fire
//! (`/api/recurring/preview`).

use super::AppState;
use super::error::{ApiError, ApiJson};
use super::queues::unserved_warning;
use super::responses::{
    ErrorBody, RecurringList, RecurringPreview, RecurringTriggered, RecurringView, Warned,
};
use crate::cron::describe;
use crate::engine::recurring::{InvalidRecurring, RecurringSpec, schedule, validate_id};
use crate::model::names::shown;
use crate::model::{Millis, now_ms};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this module.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(preview))
        .routes(routes!(show, put, delete))
        .routes(routes!(trigger))
        .routes(routes!(pause))
        .routes(routes!(resume))
}

impl From<InvalidRecurring> for ApiError {
    fn from(e: InvalidRecurring) -> Self {
        match e {
            InvalidRecurring::Id(_) | InvalidRecurring::Reserved => {
                ApiError::BadRequest(e.to_string())
            }
            InvalidRecurring::Invalid(refused) => refused.into(),
        }
    }
}

/// Fire times a preview shows unless asked for another number.
const DEFAULT_PREVIEW: u32 = 5;
/// Most fire times a preview shows.
const MAX_PREVIEW: u32 = 50;
/// Longest cron expression or zone name a preview reads.
const MAX_PREVIEW_CHARS: usize = 256;

/// `GET /api/recurring/preview` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreviewQuery {
    /// The cron expression: 5 fields, 6 with seconds first, or a macro such as `@daily`.
    #[serde(default)]
    pub(crate) cron: String,
    /// The IANA zone the fields are read in [default: UTC].
    pub(crate) timezone: Option<String>,
    /// How many fire times [default: 5].
    #[param(value_type = Option<u32>, minimum = 1, maximum = 50)]
    pub(crate) count: Option<String>,
}

impl PreviewQuery {
    /// The schedule's next fire times after `now`, in words and as RFC 3339 times with
    /// the zone's offset.
    ///
    /// # Errors
    /// A refusal naming `cron`, `timezone` or `count`.
    pub(crate) fn preview(&self, now: Millis) -> Result<RecurringPreview, ApiError> {
        let timezone = self.timezone.as_deref().unwrap_or("UTC");
        for (field, text) in [("cron", self.cron.as_str()), ("timezone", timezone)] {
            if text.len() > MAX_PREVIEW_CHARS {
                let message = format!("{field} is longer than {MAX_PREVIEW_CHARS} bytes");
                return Err(ApiError::invalid(field, message));
            }
        }
        let count = match self.count.as_deref() {
            None => DEFAULT_PREVIEW,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_PREVIEW).contains(n))
                .ok_or_else(|| {
                    let message = format!(
                        "count must be a whole number from 1 to {MAX_PREVIEW}, got `{}`",
                        shown(text)
                    );
                    ApiError::invalid("count", message)
                })?,
        };
        let schedule = schedule(&self.cron, timezone)?;
        let next = std::iter::successors(schedule.next_after(now), |at| schedule.next_after(*at))
            .take(count as usize)
            .map(|at| schedule.local_rfc3339(at))
            .collect();
        Ok(RecurringPreview {
            description: describe(&self.cron),
            cron: self.cron.clone(),
            timezone: timezone.to_owned(),
            next,
        })
    }
}

/// The next fire times of a cron expression in a time zone, and the expression in words;
/// nothing is stored.
#[utoipa::path(
    get,
    path = "/api/recurring/preview",
    operation_id = "preview_recurring",
    tag = "recurring",
    security(("bearer" = ["read"])),
    params(PreviewQuery),
    responses(
        (status = 200, description = "The next fire times.", body = RecurringPreview),
        (status = 400, description = "A query parameter is malformed or unknown.", body = ErrorBody),
        (status = 422, description = "The cron expression, zone or count is refused (`field` names it).", body = ErrorBody),
    )
)]
async fn preview(
    query: Result<Query<PreviewQuery>, QueryRejection>,
) -> Result<Json<RecurringPreview>, ApiError> {
    let Query(query) = query?;
    Ok(Json(query.preview(now_ms())?))
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
        field_of(ApiError::from(refused))
    }

    fn query(cron: &str, timezone: Option<&str>, count: Option<&str>) -> PreviewQuery {
        PreviewQuery {
            cron: cron.to_owned(),
            timezone: timezone.map(str::to_owned),
            count: count.map(str::to_owned),
        }
    }

    /// 2026-03-27T00:00:00Z, a Friday, two days before Berlin moves to summer time.
    const FRIDAY: Millis = 1_774_569_600_000;

    #[test]
    fn a_preview_lists_fire_times_in_the_zone() {
        let shown = query("0 30 9 * * MON-FRI", Some("Europe/Berlin"), Some("3"))
            .preview(FRIDAY)
            .unwrap();
        assert_eq!(
            shown.next,
            [
                "2026-03-27T09:30:00+01:00",
                "2026-03-30T09:30:00+02:00",
                "2026-03-31T09:30:00+02:00",
            ]
        );
        assert_eq!(shown.description, "at 09:30 on Monday to Friday");
        assert_eq!(shown.timezone, "Europe/Berlin");
        let hourly = query("@hourly", None, None).preview(FRIDAY).unwrap();
        assert_eq!(hourly.timezone, "UTC");
        assert_eq!(hourly.next.len(), 5);
        assert_eq!(hourly.next[0], "2026-03-27T01:00:00+00:00");
        assert_eq!(hourly.next[4], "2026-03-27T05:00:00+00:00");
        let most = query("* * * * * *", None, Some("50")).preview(FRIDAY);
        assert_eq!(most.unwrap().next.len(), 50);
    }

    #[test]
    fn a_preview_refuses_by_field() {
        let refused = |q: PreviewQuery| field_of(q.preview(FRIDAY).unwrap_err());
        assert_eq!(refused(query("61 * * * *", None, None)), "cron");
        assert_eq!(refused(query("", None, None)), "cron");
        assert_eq!(refused(query("0 0 30 2 *", None, None)), "cron");
        assert_eq!(refused(query(&"* ".repeat(200), None, None)), "cron");
        assert_eq!(
            refused(query("@daily", Some("Mars/Base"), None)),
            "timezone"
        );
        for count in ["0", "51", "-1", "x", ""] {
            assert_eq!(refused(query("@daily", None, Some(count))), "count");
        }
    }

    fn field_of(error: ApiError) -> String {
        match error {
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
