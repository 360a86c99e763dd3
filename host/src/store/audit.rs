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
