//! Leadership on PostgreSQL: the single row of `leader`, taken or renewed by one upsert
//! that succeeds only for its holder or once its lease has expired.

use super::PostgresStore;
use crate::model::Millis;
use crate::store::{Leadership, Result};
use async_trait::async_trait;

#[async_trait]
impl Leadership for PostgresStore {
    async fn lead(&self, owner: &str, until: Millis, now: Millis) -> Result<bool> {
        let led: Option<String> = sqlx::query_scalar(
            "INSERT INTO leader (id, owner, expires_at) VALUES (true, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, \
                 expires_at = excluded.expires_at \
             WHERE leader.owner = excluded.owner OR leader.expires_at < $3 \
             RETURNING owner",
        )
        .bind(owner)
        .bind(until)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(led.is_some())
    }

    async fn resign(&self, owner: &str) -> Result<()> {
        sqlx::query("DELETE FROM leader WHERE owner = $1")
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
