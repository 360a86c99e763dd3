//! API tokens on SQLite: the `api_tokens` table.

use super::SqliteStore;
use crate::model::Millis;
use crate::model::token::{Role, TokenHash};
use crate::store::tokens::{
    ActiveToken, TokenInfo, TokenRow, TokenStore, active, create_error, info,
};
use crate::store::{Error, Result};
use async_trait::async_trait;

#[async_trait]
impl TokenStore for SqliteStore {
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
                    "INSERT INTO api_tokens (name, role, hash, created_at) VALUES (?1, ?2, ?3, ?4)",
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
        .fetch_all(&self.readers)
        .await?;
        rows.into_iter().map(info).collect()
    }

    async fn active_tokens(&self) -> Result<Vec<ActiveToken>> {
        let rows: Vec<(String, String, Vec<u8>)> =
            sqlx::query_as("SELECT name, role, hash FROM api_tokens WHERE revoked_at IS NULL")
                .fetch_all(&self.readers)
                .await?;
        rows.into_iter().map(active).collect()
    }

    async fn revoke_token(&self, name: &str, now: Millis) -> Result<TokenInfo> {
        let name = name.to_owned();
        self.exec(move |conn| {
            Box::pin(async move {
                let row: Option<TokenRow> = sqlx::query_as(
                    "UPDATE api_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL \
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
