//! `/api/jobs`: submit, read, list, retry, cancel and delete jobs.

use super::AppState;
use super::error::{ApiError, ApiJson, invalid, refused_at};
use super::queues::unserved_warning;
use super::responses::{CancelledJob, JobPage, JobRef, SubmittedJob};
use super::times::run_at;
use crate::model::names::{check_length, shown};
use crate::model::rules::{validate_max_attempts, validate_queue_name};
use crate::model::{JobId, JobState, JsonText, Millis, now_ms, repository, validate_priority};
use crate::store::{AwaitOn, CancelOutcome, JobFilter, NewJob, Parents};
use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use std::path::PathBuf;

/// Default and largest page of `GET /api/jobs`.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 1000;

/// The routes of this module.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/jobs", post(submit).get(list))
        .route("/api/jobs/{id}", get(show).delete(delete))
        .route("/api/jobs/{id}/retry", post(retry))
        .route("/api/jobs/{id}/cancel", post(cancel))
}

/// `POST /api/jobs` body (and a job spec inside a batch).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SubmitJob {
    plugin: String,
    args: Option<JsonText>,
    queue: Option<String>,
    priority: Option<i32>,
    max_attempts: Option<u32>,
    delay_seconds: Option<u64>,
    run_at: Option<String>,
    repository_path: Option<String>,
    unique_key: Option<String>,
    after: Option<Vec<String>>,
    on: Option<String>,
}

/// Most parents a continuation may wait for.
const MAX_PARENTS: usize = 10_000;

/// The parents a continuation waits for, checked.
fn parents(after: Option<Vec<String>>, on: Option<String>) -> Result<Option<Parents>, ApiError> {
    let on = match on.as_deref() {
        None | Some("success") => AwaitOn::Success,
        Some("finish") => AwaitOn::Finish,
        Some(other) => {
            return Err(ApiError::invalid(
                "on",
                format!("on must be `success` or `finish`, got `{other}`"),
            ));
        }
    };
    let Some(after) = after else {
        return Ok(None);
    };
    if after.is_empty() || after.len() > MAX_PARENTS {
        return Err(ApiError::invalid(
            "after",
            format!("after must list 1 to {MAX_PARENTS} job ids"),
        ));
    }
    let ids = after
        .iter()
        .map(|id| parse_id(id))
        .collect::<Result<_, _>>()?;
    Ok(Some(Parents { ids, on }))
}

/// Args must be a JSON object; a string holding a JSON object is accepted too. The text is
/// checked, not parsed into a tree, and kept as sent.
fn parse_args(args: Option<JsonText>) -> Result<JsonText, ApiError> {
    let Some(args) = args else {
        return Ok(JsonText::from_value(&serde_json::Value::Object(
            serde_json::Map::new(),
        )));
    };
    if args.is_object() {
        return Ok(args);
    }
    let not_an_object = || ApiError::invalid("args", "args must be a JSON object");
    let text = serde_json::from_str::<String>(args.as_str()).map_err(|_| not_an_object())?;
    let inner = JsonText::parse(text)
        .map_err(|e| ApiError::BadRequest(format!("args is not JSON: {e}")))?;
    if inner.is_object() {
        Ok(inner)
    } else {
        Err(not_an_object())
    }
}

/// The repository path, canonical, if it lies under an allowed root.
pub(super) fn check_repository(roots: &[PathBuf], path: &str) -> Result<String, ApiError> {
    repository::check_repository(roots, path).map_err(invalid("repository_path"))
}

impl SubmitJob {
    /// Validates the submission against the host's plugins and roots.
    pub(super) fn validate(self, state: &AppState, now: Millis) -> Result<NewJob, ApiError> {
        if self.on.is_some() && self.after.is_none() {
            return Err(ApiError::invalid(
                "on",
                "on needs after: the jobs to wait for",
            ));
        }
        let plugin = state
            .registry
            .require(&self.plugin)
            .map_err(invalid("plugin"))?;
        let priority =
            validate_priority(self.priority.unwrap_or(0)).map_err(invalid("priority"))?;
        let max_attempts =
            validate_max_attempts(self.max_attempts.unwrap_or(plugin.settings.max_attempts))
                .map_err(invalid("max_attempts"))?;
        let queue = self.queue.unwrap_or_else(|| plugin.settings.queue.clone());
        validate_queue_name(&queue).map_err(invalid("queue"))?;
        let run_at = run_at(self.delay_seconds, self.run_at.as_deref(), now)?;
        if let Some(key) = &self.unique_key {
            check_length("unique_key", key).map_err(invalid("unique_key"))?;
        }
        let repository_path = self
            .repository_path
            .map(|path| check_repository(&state.repo_roots, &path))
            .transpose()?;
        Ok(NewJob {
            priority,
            max_attempts,
            run_at,
            repository_path,
            unique_key: self.unique_key,
            parents: parents(self.after, self.on)?,
            ..NewJob::new(self.plugin, parse_args(self.args)?, queue)
        })
    }
}

async fn submit(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SubmitJob>,
) -> Result<impl IntoResponse, ApiError> {
    let now = now_ms();
    let job = body.validate(&state, now)?;
    // A parent the store does not know is the only refusal it can give.
    let submitted = state
        .scheduler
        .submit(job, now)
        .await
        .map_err(refused_at("after"))?;
    let job = submitted.job;
    let status = if submitted.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = SubmittedJob {
        id: job.id,
        state: job.state,
        warning: unserved_warning(&state.scheduler, [job.queue.as_str()]),
        existing: !submitted.created,
    };
    Ok((status, Json(body)))
}

/// Parses a job id from the path.
pub(super) fn parse_id(id: &str) -> Result<JobId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::BadRequest(format!("`{}` is not a job id (a UUID)", shown(id))))
}

async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id(&id)?;
    let detail = state
        .store
        .get(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no job with id {id}")))?;
    Ok(Json(detail))
}

/// `GET /api/jobs` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    queue: Option<String>,
    plugin: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

impl ListQuery {
    fn filter(self) -> Result<JobFilter, ApiError> {
        let state = self
            .state
            .map(|s| s.parse::<JobState>().map_err(ApiError::BadRequest))
            .transpose()?;
        let limit = match self.limit {
            None => DEFAULT_PAGE,
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "limit must be a whole number from 1 to {MAX_PAGE}, got `{text}`"
                    )));
                }
            },
        };
        let before = self
            .cursor
            .map(|c| {
                c.parse()
                    .map_err(|_| ApiError::BadRequest(format!("`{c}` is not a cursor")))
            })
            .transpose()?;
        if let Some(queue) = &self.queue {
            validate_queue_name(queue).map_err(ApiError::BadRequest)?;
        }
        if let Some(plugin) = &self.plugin {
            check_length("plugin", plugin).map_err(ApiError::BadRequest)?;
        }
        Ok(JobFilter {
            state,
            queue: self.queue,
            plugin: self.plugin,
            limit,
            before,
        })
    }
}

async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query?;
    let page = state.store.list(&query.filter()?).await?;
    Ok(Json(JobPage::from(page)))
}

async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let job = state.scheduler.retry(parse_id(&id)?, now_ms()).await?;
    Ok(Json(JobRef {
        id: job.id,
        state: job.state,
    }))
}

async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id(&id)?;
    let body = match state.scheduler.cancel(id, now_ms()).await? {
        CancelOutcome::Cancelled => CancelledJob {
            id,
            state: JobState::Cancelled,
            cancel_requested: false,
        },
        CancelOutcome::Requested => CancelledJob {
            id,
            state: JobState::Processing,
            cancel_requested: true,
        },
    };
    Ok(Json(body))
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    state.scheduler.delete(parse_id(&id)?, now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Result<String, StatusCode> {
        let sent = JsonText::parse(text.to_owned()).expect("test args are JSON");
        parse_args(Some(sent))
            .map(|args| args.as_str().to_owned())
            .map_err(|e| e.status())
    }

    #[test]
    fn args_must_be_an_object_and_are_kept_as_sent() {
        assert_eq!(parse_args(None).unwrap().as_str(), "{}");
        assert_eq!(args(r#"{"b": 1, "a":2}"#), Ok(r#"{"b": 1, "a":2}"#.into()));
        assert_eq!(args(r#""{\"a\":1}""#), Ok(r#"{"a":1}"#.into()));
        assert_eq!(args(r#""{oops""#), Err(StatusCode::BAD_REQUEST));
        assert_eq!(args("[1]"), Err(StatusCode::UNPROCESSABLE_ENTITY));
        assert_eq!(args(r#""[1]""#), Err(StatusCode::UNPROCESSABLE_ENTITY));
        assert_eq!(args("3"), Err(StatusCode::UNPROCESSABLE_ENTITY));
    }

    /// The field a refusal names, or what else the error was.
    fn field(result: Result<impl std::fmt::Debug, ApiError>) -> String {
        match result {
            Err(ApiError::Invalid { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn refusals_name_args_after_and_on() {
        let array = JsonText::parse("[1]".into()).unwrap();
        assert_eq!(field(parse_args(Some(array))), "args");
        assert_eq!(field(parents(Some(Vec::new()), None)), "after");
        assert_eq!(field(parents(None, Some("later".into()))), "on");
    }
}
