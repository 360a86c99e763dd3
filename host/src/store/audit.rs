//! The audit log: who changed what that runs commands on the host (agents), lets
//! clients in (tokens) or sends news out (alert rules), and when.

use super::Result;
use super::rows::corrupt;
use crate::model::{JsonText, Millis};
use async_trait::async_trait;

/// One entry to record.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// When.
    pub at: Millis,
    /// Who: the token's name, or `no-auth`.
    pub actor: String,
    /// What was done: `agent.created`, `agent.changed`, `agent.deleted`,
    /// `token.created`, `token.revoked`, `alert.created`, `alert.changed`,
    /// `alert.deleted`.
    pub action: String,
    /// To what: the agent's id, the token's name, the alert rule's id.
    pub target: String,
    /// What was set, as JSON.
    pub detail: JsonText,
}

/// Storage of the audit log; every [`super::JobStore`] is one.
#[async_trait]
pub trait AuditStore {
    /// Appends `entry`.
    async fn record_audit(&self, entry: AuditEntry) -> Result<()>;

    /// The latest `limit` entries, newest first.
    async fn audit(&self, limit: u32) -> Result<Vec<AuditEntry>>;
}

/// An `audit_log` row as reads select it: at, actor, action, target, detail.
pub(crate) type AuditRow = (i64, String, String, String, String);

/// The entry a row holds.
pub(crate) fn entry((at, actor, action, target, detail): AuditRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        detail: JsonText::parse(detail).map_err(|e| corrupt("audit detail", e))?,
        at,
        actor,
        action,
        target,
    })
}

/// Implements [`AuditStore`] for `$store`, whose reads go to its pool `$reads` and whose
/// writes to its `exec`: the same SQL on every backend.
macro_rules! audit_store {
    ($store:ty, $reads:ident) => {
        use crate::store::Result;
        use crate::store::audit::{AuditEntry, AuditRow, AuditStore, entry};
        use async_trait::async_trait;

        #[async_trait]
        impl AuditStore for $store {
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
                .fetch_all(&self.$reads)
                .await?;
                rows.into_iter().map(entry).collect()
            }
        }
    };
}

pub(super) use audit_store;
