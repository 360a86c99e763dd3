//! `/api/alerts`: alert rules (list; create or replace and delete, for admins, audited)
//! and their incidents. A rule's webhook secret is never shown, and a `read` token sees
//! only the scheme and host of its URL.

use super::AppState;
use super::access::Caller;
use super::audit;
use super::error::{ApiError, ApiJson};
use super::queues::unserved_warning;
use super::responses::{AlertList, AlertView, IncidentList, IncidentView, Warned};
use crate::model::alert::{AlertSpec, validate_rule_id};
use crate::model::names::shown;
use crate::model::now_ms;
use crate::model::token::Role;
use crate::store::alerts::IncidentFilter;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use serde::Deserialize;

/// Default and largest number of incidents `GET /api/alerts/incidents` answers.
const DEFAULT_INCIDENTS: u32 = 100;
const MAX_INCIDENTS: u32 = 1000;
/// The queue webhook deliveries wait in.
const DELIVERY_QUEUE: &str = "maintenance";

/// The routes of this module.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/alerts", get(list))
        .route("/api/alerts/incidents", get(incidents))
        .route("/api/alerts/{id}", put(put_rule).delete(delete))
}

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

/// Creates (201) or replaces (200) a rule.
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentQuery {
    /// `true`: only open incidents; `false`: only resolved ones.
    open: Option<String>,
    /// Most incidents answered.
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
