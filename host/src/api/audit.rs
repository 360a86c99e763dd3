//! `/api/audit`: the audit log (admin), and how handlers add to it.

use super::AppState;
use super::access::Caller;
use super::error::ApiError;
use super::responses::{AuditList, AuditView};
use crate::model::{JsonText, now_ms};
use crate::store::audit::AuditEntry;
use axum::extract::State;
use axum::{Extension, Json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Entries `GET /api/audit` answers: the latest.
const LATEST: u32 = 500;

/// The routes of this module.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// The audit log, newest first: who registered, changed or deleted an agent, and who
/// made or revoked a token.
#[utoipa::path(
    get,
    path = "/api/audit",
    operation_id = "list_audit",
    tag = "access",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The latest entries.", body = AuditList))
)]
async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<AuditList>, ApiError> {
    caller.admin()?;
    let entries = state.store.audit(LATEST).await?;
    Ok(Json(AuditList {
        entries: entries.into_iter().map(AuditView::from).collect(),
    }))
}

/// Records that `caller` did `action` to `target`, setting `detail`. The change is
/// made already: a failure to record it is logged, not answered.
pub(super) async fn record(
    state: &AppState,
    caller: &Caller,
    action: &str,
    target: &str,
    detail: &impl serde::Serialize,
) {
    let entry = AuditEntry {
        at: now_ms(),
        actor: caller.name.as_deref().unwrap_or("no-auth").to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail: JsonText::from_value(&serde_json::to_value(detail).unwrap_or_default()),
    };
    if let Err(e) = state.scheduler.record_audit(entry).await {
        tracing::error!(error = %e, action, target, "recording an audit entry failed");
    }
}
