//! `/api/agents`: register, read, list, change and remove agents, and take heartbeats
//! from agents managed outside the host. Every agent is shown with its metrics.

use super::AppState;
use super::access::Caller;
use super::audit;
use super::error::{ApiError, ApiJson};
use super::responses::{AgentList, AgentView, ErrorBody, TaskView};
use crate::model::agent::{Agent, AgentSpec, validate_agent_id};
use crate::model::now_ms;
use crate::model::token::Role;
use crate::store::agents::TaskFilter;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Recent tasks shown with an agent.
const RECENT_TASKS: u32 = 20;

/// The routes of this module.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, patch, delete))
        .routes(routes!(heartbeat))
}

/// Checks an agent's definition, with its repository made canonical.
///
/// # Errors
/// What is wrong, as a 422 naming the field.
fn check_agent(spec: AgentSpec, roots: &[PathBuf]) -> Result<AgentSpec, ApiError> {
    Ok(spec.checked(roots)?)
}

/// What a `read` caller sees of an agent's environment values.
const HIDDEN: &str = "(hidden)";

/// An agent with its metrics, as `caller` sees it: the values of its environment, which
/// may hold secrets, only for admins.
async fn agent_view(
    state: &AppState,
    caller: &Caller,
    mut agent: Agent,
) -> Result<AgentView, ApiError> {
    if caller.role != Role::Admin {
        agent
            .spec
            .env
            .values_mut()
            .for_each(|value| *value = HIDDEN.to_owned());
    }
    let metrics = state.store.agent_metrics(&agent.spec.id, now_ms()).await?;
    Ok(AgentView {
        agent,
        metrics,
        recent_jobs: None,
    })
}

/// The path's id, checked.
fn checked(id: &str) -> Result<&str, ApiError> {
    validate_agent_id(id).map_err(ApiError::BadRequest)?;
    Ok(id)
}

async fn found(state: &AppState, id: &str) -> Result<Agent, ApiError> {
    state
        .store
        .agent(checked(id)?)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no agent with id {id}")))
}

/// Registers an agent.
#[utoipa::path(
    post,
    path = "/api/agents",
    operation_id = "create_agent",
    tag = "agents",
    security(("bearer" = ["admin"])),
    request_body = AgentSpec,
    responses(
        (status = 201, description = "The agent was registered.", body = AgentView),
        (status = 409, description = "An agent with this id exists already.", body = ErrorBody),
        (status = 422, description = "A value is refused (`field` names it).", body = ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(spec): ApiJson<AgentSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let spec = check_agent(spec, &state.repo_roots)?;
    let agent = state.scheduler.register_agent(spec, false).await?;
    audit::record(
        &state,
        &caller,
        "agent.created",
        &agent.spec.id,
        &agent.spec,
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(agent_view(&state, &caller, agent).await?),
    ))
}

/// Lists every agent with its metrics. A `read` token sees the values of their
/// environment as `(hidden)`.
#[utoipa::path(
    get,
    path = "/api/agents",
    operation_id = "list_agents",
    tag = "agents",
    security(("bearer" = ["read"])),
    responses((status = 200, description = "Every agent.", body = AgentList))
)]
async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<impl IntoResponse, ApiError> {
    let mut agents = Vec::new();
    for agent in state.store.agents().await? {
        agents.push(agent_view(&state, &caller, agent).await?);
    }
    Ok(Json(AgentList { agents }))
}

/// One agent with its metrics and latest tasks. A `read` token sees the values of its
/// environment as `(hidden)`.
#[utoipa::path(
    get,
    path = "/api/agents/{id}",
    operation_id = "get_agent",
    tag = "agents",
    security(("bearer" = ["read"])),
    params(("id" = String, Path, description = "The agent's id.")),
    responses(
        (status = 200, description = "The agent, with `recent_jobs`.", body = AgentView),
        (status = 400, description = "The id is malformed.", body = ErrorBody),
        (status = 404, description = "No such agent.", body = ErrorBody),
    )
)]
async fn show(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let agent = found(&state, &id).await?;
    let filter = TaskFilter {
        agent_id: Some(agent.spec.id.clone()),
        state: None,
        limit: RECENT_TASKS,
    };
    let now = now_ms();
    let recent = state.store.tasks(&filter).await?;
    let recent = recent.into_iter().map(|task| TaskView::new(task, now));
    let mut body = agent_view(&state, &caller, agent).await?;
    body.recent_jobs = Some(recent.collect());
    Ok(Json(body))
}

/// `PATCH /api/agents/{id}` body: the fields to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AgentPatch {
    /// A name for people.
    name: Option<String>,
    /// The repository it acts on, under an allowed root.
    repository_path: Option<String>,
    /// The executable and its argument template, with `{command}` once in an argument.
    command: Option<Vec<String>>,
    /// Environment variables the executable gets (all of them).
    env: Option<BTreeMap<String, String>>,
    /// A command whose exit code 0 means the agent is healthy; `null` removes it.
    #[serde(default, with = "serde_with_null")]
    health_command: Option<Option<Vec<String>>>,
    /// Seconds between health checks.
    health_interval_seconds: Option<u32>,
    /// Tasks it may run at once.
    max_concurrency: Option<u32>,
    /// Free-form labels (all of them).
    labels: Option<BTreeMap<String, String>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
mod serde_with_null {
    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

/// Changes an agent's definition: the fields sent, the rest kept.
#[utoipa::path(
    patch,
    path = "/api/agents/{id}",
    operation_id = "change_agent",
    tag = "agents",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "The agent's id.")),
    request_body = AgentPatch,
    responses(
        (status = 200, description = "The agent as changed.", body = AgentView),
        (status = 400, description = "The id is malformed.", body = ErrorBody),
        (status = 404, description = "No such agent.", body = ErrorBody),
        (status = 422, description = "A value is refused (`field` names it).", body = ErrorBody),
    )
)]
async fn patch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<AgentPatch>,
) -> Result<impl IntoResponse, ApiError> {
    let mut spec = found(&state, &id).await?.spec;
    let AgentPatch {
        name,
        repository_path,
        command,
        env,
        health_command,
        health_interval_seconds,
        max_concurrency,
        labels,
    } = patch;
    spec.name = name.unwrap_or(spec.name);
    spec.repository_path = repository_path.unwrap_or(spec.repository_path);
    spec.command = command.unwrap_or(spec.command);
    spec.env = env.unwrap_or(spec.env);
    spec.health_command = health_command.unwrap_or(spec.health_command);
    spec.health_interval_seconds = health_interval_seconds.unwrap_or(spec.health_interval_seconds);
    spec.max_concurrency = max_concurrency.unwrap_or(spec.max_concurrency);
    spec.labels = labels.unwrap_or(spec.labels);
    let spec = check_agent(spec, &state.repo_roots)?;
    let agent = state.scheduler.register_agent(spec, true).await?;
    audit::record(
        &state,
        &caller,
        "agent.changed",
        &agent.spec.id,
        &agent.spec,
    )
    .await;
    Ok(Json(agent_view(&state, &caller, agent).await?))
}

/// `DELETE /api/agents/{id}` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    /// Removes it even while it runs tasks [default: false].
    #[serde(default)]
    force: bool,
}

/// Removes an agent.
#[utoipa::path(
    delete,
    path = "/api/agents/{id}",
    operation_id = "delete_agent",
    tag = "agents",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "The agent's id."), DeleteQuery),
    responses(
        (status = 204, description = "The agent was removed."),
        (status = 400, description = "The id or the query is malformed.", body = ErrorBody),
        (status = 404, description = "No such agent.", body = ErrorBody),
        (status = 409, description = "The agent runs tasks: wait, or send `force=true`.", body = ErrorBody),
    )
)]
async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query?;
    state
        .scheduler
        .delete_agent(checked(&id)?, query.force)
        .await?;
    let detail = serde_json::json!({"force": query.force});
    audit::record(&state, &caller, "agent.deleted", &id, &detail).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Takes a heartbeat from an agent managed outside the host: it is healthy now.
#[utoipa::path(
    post,
    path = "/api/agents/{id}/heartbeat",
    operation_id = "agent_heartbeat",
    tag = "agents",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "The agent's id.")),
    responses(
        (status = 200, description = "The agent.", body = AgentView),
        (status = 400, description = "The id is malformed.", body = ErrorBody),
        (status = 404, description = "No such agent.", body = ErrorBody),
    )
)]
async fn heartbeat(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let agent = state.scheduler.agent_heartbeat(checked(&id)?).await?;
    Ok(Json(agent_view(&state, &caller, agent).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An agent definition that passes every check but the repository's.
    fn spec() -> AgentSpec {
        serde_json::from_value(serde_json::json!({
            "id": "builder",
            "name": "Builder",
            "repository_path": "/",
            "command": ["/bin/sh", "-c", "{command}"],
        }))
        .expect("a valid definition")
    }

    /// The field named when `change` makes [`spec`] wrong.
    fn refused(change: impl FnOnce(&mut AgentSpec)) -> String {
        let mut bad = spec();
        change(&mut bad);
        match check_agent(bad, &[]) {
            Err(ApiError::Invalid { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn each_refusal_of_a_definition_names_its_field() {
        let text = |s: &str| s.to_owned();
        let long = "x".repeat(201);
        assert_eq!(refused(|s| s.id = text("Not Valid")), "id");
        assert_eq!(refused(|s| s.name = long.clone()), "name");
        assert_eq!(refused(|s| s.command = Vec::new()), "command");
        assert_eq!(refused(|s| s.command = vec![text("/bin/true")]), "command");
        assert_eq!(
            refused(|s| s.health_command = Some(Vec::new())),
            "health_command"
        );
        assert_eq!(
            refused(|s| s.env = [(text("A=B"), text("x"))].into()),
            "env"
        );
        assert_eq!(refused(|s| s.env = [(text("A"), text("\0"))].into()), "env");
        assert_eq!(
            refused(|s| s.labels = [(long.clone(), text("v"))].into()),
            "labels"
        );
        assert_eq!(
            refused(|s| s.labels = [(text("kind"), long.clone())].into()),
            "labels"
        );
        assert_eq!(
            refused(|s| s.health_interval_seconds = 0),
            "health_interval_seconds"
        );
        assert_eq!(refused(|s| s.max_concurrency = 0), "max_concurrency");
        assert_eq!(refused(|_| ()), "repository_path");
    }
}
