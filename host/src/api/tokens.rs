//! `/api/tokens`: admins make, list and revoke API tokens.

use super::AppState;
use super::access::Caller;
use super::audit;
use super::error::{ApiError, ApiJson};
use super::responses::{MadeToken, TokenList, TokenView};
use crate::model::now_ms;
use crate::model::token::{self, Role, Secret};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use serde::Deserialize;

/// The routes of this module.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/tokens", get(list).post(create))
        .route("/api/tokens/{name}", delete(revoke))
}

/// `POST /api/tokens` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    /// What it allows.
    role: Role,
    /// Its name [default: the role and the start of its hash].
    name: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<TokenList>, ApiError> {
    caller.admin()?;
    let tokens = state.store.tokens().await?;
    Ok(Json(TokenList {
        tokens: tokens.into_iter().map(TokenView::from).collect(),
    }))
}

async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<MadeToken>), ApiError> {
    caller.admin()?;
    let secret = Secret::generate().map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let name = body
        .name
        .unwrap_or_else(|| token::default_name(body.role, &secret));
    token::validate_name(&name).map_err(|message| ApiError::invalid("name", message))?;
    let made = state
        .scheduler
        .create_token(&name, body.role, secret.hash, now_ms())
        .await?;
    reload(&state).await?;
    let detail = serde_json::json!({"role": made.role});
    audit::record(&state, &caller, "token.created", &made.name, &detail).await;
    let made = MadeToken {
        name: made.name,
        role: made.role,
        token: secret.text,
    };
    Ok((StatusCode::CREATED, Json(made)))
}

async fn revoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    caller.admin()?;
    let revoked = state.scheduler.revoke_token(&name, now_ms()).await?;
    reload(&state).await?;
    audit::record(
        &state,
        &caller,
        "token.revoked",
        &name,
        &serde_json::json!({}),
    )
    .await;
    Ok(Json(revoked.into()))
}

/// Takes the stored tokens as the ones that may be used.
async fn reload(state: &AppState) -> Result<(), ApiError> {
    state
        .access
        .replace_tokens(state.store.active_tokens().await?);
    Ok(())
}
