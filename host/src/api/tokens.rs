//! `/api/tokens`: admins make, list and revoke API tokens.

use super::AppState;
use super::access::Caller;
use super::audit;
use super::error::{ApiError, ApiJson};
use super::responses::{ErrorBody, MadeToken, TokenList, TokenView};
use crate::model::now_ms;
use crate::model::token::{self, Role, Secret};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this module.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

/// `POST /api/tokens` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewToken {
    /// What it allows.
    role: Role,
    /// Its name [default: the role and the start of its hash].
    name: Option<String>,
}

/// Lists every token, revoked ones too (never the tokens themselves).
#[utoipa::path(
    get,
    path = "/api/tokens",
    operation_id = "list_tokens",
    tag = "access",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "Every token, by name.", body = TokenList))
)]
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

/// Makes a token: the answer is the only one that shows it.
#[utoipa::path(
    post,
    path = "/api/tokens",
    operation_id = "create_token",
    tag = "access",
    security(("bearer" = ["admin"])),
    request_body = NewToken,
    responses(
        (status = 201, description = "The token, shown only now.", body = MadeToken),
        (status = 409, description = "A token with this name exists already.", body = ErrorBody),
        (status = 422, description = "The name is refused (`name`).", body = ErrorBody),
    )
)]
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

/// Revokes a token: it can no longer be used.
#[utoipa::path(
    delete,
    path = "/api/tokens/{name}",
    operation_id = "revoke_token",
    tag = "access",
    security(("bearer" = ["admin"])),
    params(("name" = String, Path, description = "The token's name.")),
    responses(
        (status = 200, description = "The token, revoked.", body = TokenView),
        (status = 404, description = "No such token, or it is revoked already.", body = ErrorBody),
    )
)]
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
