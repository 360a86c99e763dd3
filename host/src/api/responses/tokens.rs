//! Answers about API tokens.

use crate::model::Millis;
use crate::model::rfc3339;
use crate::model::token::Role;
use crate::store::tokens::TokenInfo;
use serde::Serialize;
use utoipa::ToSchema;

/// A token as listed (`GET /api/tokens`, `DELETE /api/tokens/{name}`): never the token.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenView {
    /// Its name.
    pub(crate) name: String,
    /// What it allows.
    pub(crate) role: Role,
    /// When it was made.
    #[schema(format = DateTime)]
    pub(crate) created_at: String,
    /// When it was revoked; `null` while it may be used.
    #[schema(format = DateTime)]
    pub(crate) revoked_at: Option<String>,
}

impl From<TokenInfo> for TokenView {
    fn from(token: TokenInfo) -> Self {
        let time = |at: Millis| rfc3339::format(at);
        TokenView {
            name: token.name,
            role: token.role,
            created_at: time(token.created_at),
            revoked_at: token.revoked_at.map(time),
        }
    }
}

/// Every token (`GET /api/tokens`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenList {
    /// The tokens, by name.
    pub(crate) tokens: Vec<TokenView>,
}

/// A token just made (`POST /api/tokens`): the only answer that shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MadeToken {
    /// Its name.
    pub(crate) name: String,
    /// What it allows.
    pub(crate) role: Role,
    /// The token, to send as `Authorization: Bearer <token>`; shown only now.
    pub(crate) token: String,
}
