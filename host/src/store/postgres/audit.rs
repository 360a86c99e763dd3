//! The audit log on PostgreSQL: the `audit_log` table, appended to only.

use super::PostgresStore;
use crate::store::Result;
use crate::store::audit::{AuditEntry, AuditRow, AuditStore, entry};
use async_trait::async_trait;

#[async_trait]
impl AuditStore for PostgresStore {
    async fn record_audit(&self, entry: AuditEntry) -> Result<()> {
        self.exec(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO audit_log (at, actor, action, target, detail) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(entry.at)
                .bind(&entry.actor)
                .bind(&entry.action)
                .bind(&entry.target)
                .bind(entry.detail.as_str())
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn audit(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT at, actor, action, target, detail FROM audit_log ORDER BY seq DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(entry).collect()
    }
}
