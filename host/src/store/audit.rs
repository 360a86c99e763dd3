//! The audit log: who changed what that runs commands on the host (agents), lets
//! clients in (tokens) or sends news out (alert rules), and when.

use super::Result;
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
