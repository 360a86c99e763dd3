//! `/api/alerts`: alert rules (list; create or replace and delete, for admins, audited)
//! and their incidents. A rule's webhook secret is never shown, and a `read` token sees
//! only the scheme and host of its URL.

use super::AppState;
use super::access::Caller;
use super::audit;
use super::error::{ApiError, ApiJson};
use super::queues::unserved_warning;
use super::responses::{AlertList, AlertView, ErrorBody, IncidentList, IncidentView, Warned};
use crate::model::alert::{AlertSpec, validate_rule_id};
use crate::model::names::shown;
use crate::model::now_ms;
use crate::model::token::Role;
use crate::store::alerts::IncidentFilter;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Default and largest number of incidents `GET /api/alerts/incidents` answers.
const DEFAULT_INCIDENTS: u32 = 100;
const MAX_INCIDENTS: u32 = 1000;
/// The queue webhook deliveries wait in.
const DELIVERY_QUEUE: &str = "maintenance";

/// The routes of this module.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(incidents))
        .routes(routes!(put_rule, delete))
}

/// Every alert rule: a webhook shows its URL (to a `read` token only its scheme and
/// host) and whether it has a secret, never the secret.
#[utoipa::path(
    get,
    path = "/api/alerts",
    operation_id = "list_alerts",
    tag = "alerts",
    security(("bearer" = ["read"])),
    responses((status = 200, description = "The rules, by id.", body = AlertList))
)]
async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<AlertList>, ApiError> {
    let admin = caller.role == Role::Admin;
    let rules = state.store.alert_rules().await?;
    Ok(Json(AlertList {
        alerts: rules
            .into_iter()
            .map(|rule| AlertView::new(rule, admin))
            .collect(),
    }))
}

/// Creates (201) or replaces (200) a rule; audited, without its secret.
#[utoipa::path(
    put,
    path = "/api/alerts/{id}",
    operation_id = "put_alert",
    tag = "alerts",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "The rule's id.")),
    request_body = AlertSpec,
    responses(
        (status = 201, description = "The rule was created.", body = Warned<AlertView>),
        (status = 200, description = "The rule was replaced.", body = Warned<AlertView>),
        (status = 422, description = "A value is refused (`field` names it).", body = ErrorBody),
    )
)]
async fn put_rule(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<AlertSpec>,
) -> Result<impl IntoResponse, ApiError> {
    caller.admin()?;
    let rule = spec.rule(&id)?;
    let warning = rule
        .webhook
        .as_ref()
        .and_then(|_| unserved_warning(&state.scheduler, [DELIVERY_QUEUE]));
    let put = state.scheduler.put_alert(rule, now_ms()).await?;
    let view = AlertView::new(put.rule, true);
    let action = if put.created {
        "alert.created"
    } else {
        "alert.changed"
    };
    audit::record(&state, &caller, action, &view.id, &view).await;
    let status = if put.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = Warned {
        body: view,
        warning,
    };
    Ok((status, Json(body)))
}

/// Deletes a rule; its incidents stay (resolved). Audited.
#[utoipa::path(
    delete,
    path = "/api/alerts/{id}",
    operation_id = "delete_alert",
    tag = "alerts",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "The rule's id.")),
    responses(
        (status = 204, description = "The rule was deleted."),
        (status = 404, description = "No rule has this id.", body = ErrorBody),
        (status = 422, description = "The id is malformed (`id`).", body = ErrorBody),
    )
)]
async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.admin()?;
    validate_rule_id(&id).map_err(|message| ApiError::invalid("id", message))?;
    if !state.scheduler.delete_alert(&id).await? {
        return Err(ApiError::NotFound(format!("no alert rule with id {id}")));
    }
    audit::record(
        &state,
        &caller,
        "alert.deleted",
        &id,
        &serde_json::json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/alerts/incidents` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct IncidentQuery {
    /// `true`: only open incidents; `false`: only resolved ones.
    #[param(value_type = Option<bool>)]
    open: Option<String>,
    /// Most incidents answered [default: 100].
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

impl IncidentQuery {
    fn filter(self) -> Result<IncidentFilter, ApiError> {
        let open = match self.open.as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "open must be `true` or `false`, got `{}`",
                    shown(other)
                )));
            }
        };
        let limit = match self.limit {
            None => DEFAULT_INCIDENTS,
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=MAX_INCIDENTS).contains(&n) => n,
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "limit must be a whole number from 1 to {MAX_INCIDENTS}, got `{}`",
                        shown(&text)
                    )));
                }
            },
        };
        Ok(IncidentFilter { open, limit })
    }
}

/// Incidents, newest first: each a stretch of time a rule's condition held for one
/// subject.
#[utoipa::path(
    get,
    path = "/api/alerts/incidents",
    operation_id = "list_incidents",
    tag = "alerts",
    security(("bearer" = ["read"])),
    params(IncidentQuery),
    responses(
        (status = 200, description = "The incidents.", body = IncidentList),
        (status = 400, description = "A query parameter is malformed or unknown.", body = ErrorBody),
    )
)]
async fn incidents(
    State(state): State<AppState>,
    query: Result<Query<IncidentQuery>, QueryRejection>,
) -> Result<Json<IncidentList>, ApiError> {
    let Query(query) = query?;
    let incidents = state.store.incidents(query.filter()?).await?;
    Ok(Json(IncidentList {
        incidents: incidents.into_iter().map(IncidentView::from).collect(),
    }))
}
