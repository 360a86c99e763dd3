//! API tokens as the store keeps them: a name, a role and the token's hash, never the
//! token itself.

use super::rows::corrupt;
use super::{Error, Result};
use crate::model::Millis;
use crate::model::token::{Role, TokenHash};
use async_trait::async_trait;

/// A token as listed: never its secret nor its hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    /// Its name.
    pub name: String,
    /// What it allows.
    pub role: Role,
    /// When it was made.
    pub created_at: Millis,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Millis>,
}

/// A token that may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveToken {
    /// Its name.
    pub name: String,
    /// What it allows.
    pub role: Role,
    /// The hash a presented token must have.
    pub hash: TokenHash,
}

/// Storage of API tokens; every [`super::JobStore`] is one.
#[async_trait]
pub trait TokenStore {
    /// Stores token `name` by its hash.
    ///
    /// # Errors
    /// [`super::Error::Conflict`] when the name is taken (revoked tokens keep theirs).
    async fn create_token(
        &self,
        name: &str,
        role: Role,
        hash: TokenHash,
        now: Millis,
    ) -> Result<TokenInfo>;

    /// Every token, revoked ones included, by name.
    async fn tokens(&self) -> Result<Vec<TokenInfo>>;

    /// The tokens not revoked.
    async fn active_tokens(&self) -> Result<Vec<ActiveToken>>;

    /// Revokes token `name`: it can no longer be used.
    ///
    /// # Errors
    /// [`super::Error::TokenNotFound`] for an unknown or already revoked token.
    async fn revoke_token(&self, name: &str, now: Millis) -> Result<TokenInfo>;
}

/// An `api_tokens` row as listings select it: name, role, created_at, revoked_at.
pub(crate) type TokenRow = (String, String, i64, Option<i64>);

/// The role stored as `name`.
fn role(name: &str) -> Result<Role> {
    Role::parse(name).ok_or_else(|| corrupt("token role", format!("unknown role `{name}`")))
}

/// The token a listed row describes.
pub(crate) fn info((name, role_name, created_at, revoked_at): TokenRow) -> Result<TokenInfo> {
    Ok(TokenInfo {
        role: role(&role_name)?,
        name,
        created_at,
        revoked_at,
    })
}

/// The unrevoked token a row of name, role and hash describes.
pub(crate) fn active((name, role_name, hash): (String, String, Vec<u8>)) -> Result<ActiveToken> {
    let hash = TokenHash::try_from(hash.as_slice())
        .map_err(|_| corrupt("token hash", format!("token `{name}`")))?;
    Ok(ActiveToken {
        role: role(&role_name)?,
        name,
        hash,
    })
}

/// The error for a second token named `name`, when `e` is the unique violation it
/// causes; `e` itself otherwise.
pub(crate) fn create_error(name: &str, e: sqlx::Error) -> Error {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Error::Conflict(format!("a token named `{name}` exists already"))
        }
        e => e.into(),
    }
}
