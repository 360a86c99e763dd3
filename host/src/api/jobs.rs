//! `/api/jobs`: submit, read, list, retry, cancel and delete jobs.

use super::AppState;
use super::access::Caller;
use super::error::{ApiError, ApiJson, invalid, refused_at};
use super::queues::unserved_warning;
use super::responses::{BulkDone, CancelledJob, ErrorBody, JobPage, JobRef, SubmittedJob};
use super::times::run_at;
use crate::engine::bulk::BulkAction;
use crate::model::agent::validate_agent_id;
use crate::model::names::{check_length, shown};
use crate::model::rules::{validate_max_attempts, validate_queue_name};
use crate::model::{
    JobDetail, JobId, JobState, JsonText, Millis, now_ms, repository, validate_priority,
};
use crate::store::{AwaitOn, CancelOutcome, JobFilter, NewJob, Parents};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Deserialize;
use std::path::PathBuf;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Default and largest page of `GET /api/jobs`.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 1000;

/// The routes of this module.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit, list))
        .routes(routes!(show, delete))
        .routes(routes!(retry))
        .routes(routes!(cancel))
        .routes(routes!(bulk))
}

/// `POST /api/jobs` body (and a job spec inside a batch).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SubmitJob {
    /// The plugin that handles it; it must be loaded.
    plugin: String,
    /// Arguments for the handler: a JSON object, or a string holding one [default: `{}`].
    args: Option<JsonText>,
    /// The queue [default: the plugin's].
    queue: Option<String>,
    /// -100..=100, higher first within a queue [default: 0].
    priority: Option<i32>,
    /// Attempts allowed [default: the plugin's].
    max_attempts: Option<u32>,
    /// Seconds to wait before it may run (at most ten years); not with `run_at`.
    delay_seconds: Option<u64>,
    /// When it may run (RFC 3339, from 2000 to ten years ahead); not with `delay_seconds`.
    #[schema(format = DateTime)]
    run_at: Option<String>,
    /// A directory under an allowed root, mounted at `/repo` for its runs.
    repository_path: Option<String>,
    /// While a job with this key is unfinished, submitting another returns that job (200).
    unique_key: Option<String>,
    /// Job ids (1 to 10,000) that must finish first: the job waits in `awaiting`.
    #[schema(value_type = Option<Vec<Uuid>>)]
    after: Option<Vec<String>>,
    /// With `after`: `success` (every parent must succeed; the default) or `finish`.
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
        let settings = state
            .registry
            .require(&self.plugin)
            .map_err(invalid("plugin"))?;
        let priority =
            validate_priority(self.priority.unwrap_or(0)).map_err(invalid("priority"))?;
        let max_attempts =
            validate_max_attempts(self.max_attempts.unwrap_or(settings.max_attempts))
                .map_err(invalid("max_attempts"))?;
        let queue = self.queue.unwrap_or(settings.queue);
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

/// Submits a job.
///
/// 201 with the job stored; 200 with the unfinished job that already holds its
/// `unique_key`.
#[utoipa::path(
    post,
    path = "/api/jobs",
    operation_id = "submit_job",
    tag = "jobs",
    security(("bearer" = ["admin"])),
    request_body = SubmitJob,
    responses(
        (status = 201, description = "The job was stored.", body = SubmittedJob),
        (status = 200, description = "A job with this `unique_key` exists already.", body = SubmittedJob),
        (status = 400, description = "`args` is a string that does not hold JSON.", body = ErrorBody),
        (status = 422, description = "A value is refused (`field` names it): an unknown plugin, a parent job that does not exist…", body = ErrorBody),
    )
)]
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

/// One job, with its history and the end of its log.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}",
    operation_id = "get_job",
    tag = "jobs",
    security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "The job's id.")),
    responses(
        (status = 200, description = "The job.", body = JobDetail),
        (status = 400, description = "The id is not a UUID.", body = ErrorBody),
        (status = 404, description = "No such job.", body = ErrorBody),
    )
)]
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
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only jobs in this state.
    #[param(value_type = Option<JobState>)]
    state: Option<String>,
    /// Only jobs of this queue.
    queue: Option<String>,
    /// Only jobs of this plugin.
    plugin: Option<String>,
    /// Only jobs bound to this agent.
    agent: Option<String>,
    /// Only jobs whose id starts with this text, or whose args or error message hold
    /// it (ASCII letters in any case; at most 200 characters).
    q: Option<String>,
    /// Jobs per page [default: 50].
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(value_type = Option<Uuid>)]
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
        if let Some(agent) = &self.agent {
            validate_agent_id(agent).map_err(ApiError::BadRequest)?;
        }
        Ok(JobFilter {
            state,
            queue: self.queue,
            plugin: self.plugin,
            agent: self.agent,
            text: search_text(self.q)?,
            limit,
            before,
        })
    }
}

/// Most ids one bulk action names.
const MAX_BULK_IDS: usize = 1000;

/// `POST /api/jobs/bulk` body: an action and either the jobs' ids or a filter.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BulkRequest {
    /// `retry`, `cancel` or `delete`.
    action: String,
    /// The jobs (at most 1,000).
    #[schema(value_type = Option<Vec<Uuid>>)]
    ids: Option<Vec<JobId>>,
    /// Every job this matches instead (at most 100,000).
    filter: Option<BulkFilter>,
}

/// Which jobs a bulk action takes: the filters of `GET /api/jobs`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkFilter {
    /// Only jobs in this state.
    #[schema(value_type = Option<JobState>)]
    pub(crate) state: Option<String>,
    /// Only jobs of this queue.
    pub(crate) queue: Option<String>,
    /// Only jobs of this plugin.
    pub(crate) plugin: Option<String>,
    /// Only jobs bound to this agent.
    pub(crate) agent: Option<String>,
    /// Only jobs whose id starts with this text, or whose args or error hold it.
    pub(crate) q: Option<String>,
}

impl BulkFilter {
    /// The store's filter for it.
    ///
    /// # Errors
    /// 422 naming the field that is refused.
    pub(crate) fn filter(self) -> Result<JobFilter, ApiError> {
        let list = ListQuery {
            state: self.state,
            queue: self.queue,
            plugin: self.plugin,
            agent: self.agent,
            q: self.q,
            limit: None,
            cursor: None,
        };
        list.filter()
            .map_err(|e| ApiError::invalid("filter", e.to_string()))
    }
}

/// Retries, cancels or deletes many jobs: the ones named, or every one a filter
/// matches. Each job is treated as the single action would treat it; the ones it does
/// not apply to are skipped and counted.
#[utoipa::path(
    post,
    path = "/api/jobs/bulk",
    operation_id = "bulk_jobs",
    tag = "jobs",
    security(("bearer" = ["admin"])),
    request_body = BulkRequest,
    responses(
        (status = 200, description = "What the action did.", body = BulkDone),
        (status = 422, description = "A value is refused (`action`, `ids`, `filter`).", body = ErrorBody),
    )
)]
async fn bulk(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<BulkRequest>,
) -> Result<Json<BulkDone>, ApiError> {
    caller.admin()?;
    let action = BulkAction::parse(&body.action).ok_or_else(|| {
        ApiError::invalid(
            "action",
            format!(
                "action must be retry, cancel or delete, got `{}`",
                shown(&body.action)
            ),
        )
    })?;
    let ids = match (body.ids, body.filter) {
        (Some(ids), None) if ids.len() <= MAX_BULK_IDS => ids,
        (Some(_), None) => {
            return Err(ApiError::invalid(
                "ids",
                format!("ids must name at most {MAX_BULK_IDS} jobs: use a filter for more"),
            ));
        }
        (None, Some(filter)) => state.scheduler.matching(&filter.filter()?).await?,
        _ => {
            return Err(ApiError::invalid(
                "ids",
                "name the jobs with either ids or filter, not both and not neither",
            ));
        }
    };
    Ok(Json(
        state.scheduler.bulk(action, &ids, now_ms()).await.into(),
    ))
}

/// Longest text a job search takes.
pub(crate) const MAX_SEARCH_CHARS: usize = 200;

/// The text to search jobs for: `None` for none or blank.
///
/// # Errors
/// 400 for a text longer than [`MAX_SEARCH_CHARS`].
pub(crate) fn search_text(q: Option<String>) -> Result<Option<String>, ApiError> {
    let q = q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty());
    if q.as_ref()
        .is_some_and(|q| q.chars().count() > MAX_SEARCH_CHARS)
    {
        return Err(ApiError::BadRequest(format!(
            "q must be at most {MAX_SEARCH_CHARS} characters"
        )));
    }
    Ok(q)
}

/// Lists jobs, newest first, one page at a time.
#[utoipa::path(
    get,
    path = "/api/jobs",
    operation_id = "list_jobs",
    tag = "jobs",
    security(("bearer" = ["read"])),
    params(ListQuery),
    responses(
        (status = 200, description = "One page of jobs.", body = JobPage),
        (status = 400, description = "A query parameter is malformed or unknown.", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query?;
    let page = state.store.list(&query.filter()?).await?;
    Ok(Json(JobPage::from(page)))
}

/// Retries a failed or cancelled job: it is enqueued again with its attempts reset.
#[utoipa::path(
    post,
    path = "/api/jobs/{id}/retry",
    operation_id = "retry_job",
    tag = "jobs",
    security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path, description = "The job's id.")),
    responses(
        (status = 200, description = "The job, enqueued.", body = JobRef),
        (status = 400, description = "The id is not a UUID.", body = ErrorBody),
        (status = 404, description = "No such job.", body = ErrorBody),
        (status = 409, description = "The job is neither failed nor cancelled.", body = ErrorBody),
    )
)]
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

/// Cancels a job: at once if it waits, by stopping its run if it runs.
#[utoipa::path(
    post,
    path = "/api/jobs/{id}/cancel",
    operation_id = "cancel_job",
    tag = "jobs",
    security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path, description = "The job's id.")),
    responses(
        (status = 200, description = "The job, cancelled or being stopped.", body = CancelledJob),
        (status = 400, description = "The id is not a UUID.", body = ErrorBody),
        (status = 404, description = "No such job.", body = ErrorBody),
        (status = 409, description = "The job has finished already.", body = ErrorBody),
    )
)]
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

/// Deletes a job that is not running.
#[utoipa::path(
    delete,
    path = "/api/jobs/{id}",
    operation_id = "delete_job",
    tag = "jobs",
    security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path, description = "The job's id.")),
    responses(
        (status = 204, description = "The job was deleted."),
        (status = 400, description = "The id is not a UUID.", body = ErrorBody),
        (status = 404, description = "No such job.", body = ErrorBody),
        (status = 409, description = "The job is running: cancel it first.", body = ErrorBody),
    )
)]
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
