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

/// Implements [`TokenStore`] for `$store`, whose reads go to its pool `$reads` and whose
/// writes to its `exec`: the same SQL on every backend.
macro_rules! token_store {
    ($store:ty, $reads:ident) => {
        use crate::model::Millis;
        use crate::model::token::{Role, TokenHash};
        use crate::store::tokens::{
            ActiveToken, TokenInfo, TokenRow, TokenStore, active, create_error, info,
        };
        use crate::store::{Error, Result};
        use async_trait::async_trait;

        #[async_trait]
        impl TokenStore for $store {
            async fn create_token(
                &self,
                name: &str,
                role: Role,
                hash: TokenHash,
                now: Millis,
            ) -> Result<TokenInfo> {
                let name = name.to_owned();
                self.exec(move |conn| {
                    Box::pin(async move {
                        let stored = sqlx::query(
                            "INSERT INTO api_tokens (name, role, hash, created_at) VALUES ($1, $2, $3, $4)",
                        )
                        .bind(&name)
                        .bind(role.as_str())
                        .bind(&hash[..])
                        .bind(now)
                        .execute(&mut *conn)
                        .await;
                        match stored {
                            Ok(_) => Ok(TokenInfo {
                                name,
                                role,
                                created_at: now,
                                revoked_at: None,
                            }),
                            Err(e) => Err(create_error(&name, e)),
                        }
                    })
                })
                .await
            }

            async fn tokens(&self) -> Result<Vec<TokenInfo>> {
                let rows: Vec<TokenRow> = sqlx::query_as(
                    "SELECT name, role, created_at, revoked_at FROM api_tokens ORDER BY name",
                )
                .fetch_all(&self.$reads)
                .await?;
                rows.into_iter().map(info).collect()
            }

            async fn active_tokens(&self) -> Result<Vec<ActiveToken>> {
                let rows: Vec<(String, String, Vec<u8>)> =
                    sqlx::query_as("SELECT name, role, hash FROM api_tokens WHERE revoked_at IS NULL")
                        .fetch_all(&self.$reads)
                        .await?;
                rows.into_iter().map(active).collect()
            }

            async fn revoke_token(&self, name: &str, now: Millis) -> Result<TokenInfo> {
                let name = name.to_owned();
                self.exec(move |conn| {
                    Box::pin(async move {
                        let row: Option<TokenRow> = sqlx::query_as(
                            "UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL \
                             RETURNING name, role, created_at, revoked_at",
                        )
                        .bind(&name)
                        .bind(now)
                        .fetch_optional(&mut *conn)
                        .await?;
                        row.map(info).unwrap_or(Err(Error::TokenNotFound(name)))
                    })
                })
                .await
            }
        }
    };
}

pub(super) use token_store;
