//! Answers of browser sessions.

use crate::model::token::Role;
use serde::Serialize;
use utoipa::ToSchema;

/// `POST /api/session` (201, with the cookie) and `GET /api/session`: who the session
/// acts as, and the CSRF token its state-changing requests must carry.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionView {
    /// The token's name; absent when tokens are not asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    /// `read` or `admin`.
    pub(crate) role: Role,
    /// Send it as `X-CSRF-Token` with every request that changes something.
    pub(crate) csrf_token: String,
    /// When the session ends (RFC 3339).
    #[schema(format = DateTime)]
    pub(crate) expires_at: String,
}
