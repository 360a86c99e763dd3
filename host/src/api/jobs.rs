//! `/api/jobs`: submit, read, list, retry, cancel and delete jobs.

use super::AppState;
use super::error::{ApiError, ApiJson};
use super::queues::unserved_warning;
use super::times::run_at;
use crate::events::{Event, Ids};
use crate::model::names::{check_length, shown};
use crate::model::rules::{validate_max_attempts, validate_queue_name};
use crate::model::{JobId, JobState, JsonText, Millis, new_job_id, now_ms, validate_priority};
use crate::store::{AwaitOn, CancelOutcome, JobFilter, NewJob, Parents};
use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
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
            return Err(ApiError::Unprocessable(format!(
                "on must be `success` or `finish`, got `{other}`"
            )));
        }
    };
    let Some(after) = after else {
        return Ok(None);
    };
    if after.is_empty() || after.len() > MAX_PARENTS {
        return Err(ApiError::Unprocessable(format!(
            "after must list 1 to {MAX_PARENTS} job ids"
        )));
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
        return Ok(JsonText::from_value(&json!({})));
    };
    if args.is_object() {
        return Ok(args);
    }
    let not_an_object = || ApiError::Unprocessable("args must be a JSON object".into());
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
    let refused =
        |why: &str| ApiError::Unprocessable(format!("repository_path `{}` {why}", shown(path)));
    if !std::path::Path::new(path).is_absolute() {
        return Err(refused("must be an absolute path"));
    }
    if roots.is_empty() {
        return Err(refused(
            "is refused: this host allows no repository roots (--repo-root)",
        ));
    }
    let canonical =
        std::fs::canonicalize(path).map_err(|e| refused(&format!("cannot be opened: {e}")))?;
    if !canonical.is_dir() {
        return Err(refused("is not a directory"));
    }
    if !roots.iter().any(|root| canonical.starts_with(root)) {
        return Err(refused("is not under an allowed repository root"));
    }
    canonical
        .into_os_string()
        .into_string()
        .map_err(|_| refused("is not valid UTF-8"))
}

impl SubmitJob {
    /// Validates the submission against the host's plugins and roots.
    pub(super) fn validate(self, state: &AppState, now: Millis) -> Result<NewJob, ApiError> {
        if self.on.is_some() && self.after.is_none() {
            return Err(ApiError::Unprocessable(
                "on needs after: the jobs to wait for".into(),
            ));
        }
        let plugin = state
            .registry
            .require(&self.plugin)
            .map_err(ApiError::Unprocessable)?;
        let priority =
            validate_priority(self.priority.unwrap_or(0)).map_err(ApiError::Unprocessable)?;
        let max_attempts =
            validate_max_attempts(self.max_attempts.unwrap_or(plugin.settings.max_attempts))
                .map_err(ApiError::Unprocessable)?;
        let queue = self.queue.unwrap_or_else(|| plugin.settings.queue.clone());
        validate_queue_name(&queue).map_err(ApiError::Unprocessable)?;
        let run_at = run_at(self.delay_seconds, self.run_at.as_deref(), now)?;
        if let Some(key) = &self.unique_key {
            check_length("unique_key", key).map_err(ApiError::Unprocessable)?;
        }
        let repository_path = self
            .repository_path
            .map(|path| check_repository(&state.repo_roots, &path))
            .transpose()?;
        Ok(NewJob {
            id: new_job_id(),
            plugin: self.plugin,
            args: parse_args(self.args)?,
            queue,
            priority,
            max_attempts,
            run_at,
            repository_path,
            agent_id: None,
            unique_key: self.unique_key,
            parents: parents(self.after, self.on)?,
        })
    }
}

async fn submit(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SubmitJob>,
) -> Result<impl IntoResponse, ApiError> {
    let now = now_ms();
    let job = body.validate(&state, now)?;
    let submitted = state.store.enqueue(job, now).await?;
    let job = submitted.job;
    let mut body = json!({"id": job.id, "state": job.state});
    if let Some(warning) = unserved_warning(&state.scheduler, [job.queue.as_str()]) {
        body["warning"] = json!(warning);
    }
    if !submitted.created {
        body["existing"] = json!(true);
        return Ok((StatusCode::OK, Json(body)));
    }
    state
        .scheduler
        .events()
        .publish(Ids::job(job.id), Event::Enqueued { state: job.state });
    if job.state == JobState::Enqueued {
        state.scheduler.notify();
    }
    Ok((StatusCode::CREATED, Json(body)))
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
    Ok(Json(
        json!({"jobs": page.jobs, "next_cursor": page.next_cursor}),
    ))
}

async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let job = state.store.retry(parse_id(&id)?, now_ms()).await?;
    state.scheduler.notify();
    Ok(Json(json!({"id": job.id, "state": job.state})))
}

async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id(&id)?;
    let body = match state.scheduler.cancel(id, now_ms()).await? {
        CancelOutcome::Cancelled => json!({"id": id, "state": JobState::Cancelled}),
        CancelOutcome::Requested => {
            json!({"id": id, "state": JobState::Processing, "cancel_requested": true})
        }
    };
    Ok(Json(body))
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    state.store.delete(parse_id(&id)?).await?;
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

    #[test]
    fn repositories_must_lie_under_a_root() {
        let root = tempfile::tempdir().unwrap();
        let inside = root.path().join("repo");
        std::fs::create_dir(&inside).unwrap();
        let roots = vec![std::fs::canonicalize(root.path()).unwrap()];
        assert!(check_repository(&roots, inside.to_str().unwrap()).is_ok());
        let escape = format!("{}/../", inside.display());
        assert!(check_repository(&roots, &format!("{escape}..")).is_err());
        assert!(check_repository(&roots, "/etc").is_err());
        assert!(check_repository(&[], inside.to_str().unwrap()).is_err());
        assert!(check_repository(&roots, "/no/such/dir").is_err());
        let relative = check_repository(&roots, "repo").unwrap_err();
        assert!(relative.to_string().contains("absolute"), "{relative}");
    }
}
