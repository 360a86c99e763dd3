//! Answers about the audit log.

use crate::model::{JsonText, rfc3339};
use crate::store::audit::AuditEntry;
use serde::Serialize;
use utoipa::ToSchema;

/// One entry of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditView {
    /// When.
    #[schema(format = DateTime)]
    pub(crate) at: String,
    /// Who: the token's name, or `no-auth`.
    pub(crate) actor: String,
    /// What was done (`agent.created`, `agent.changed`, `agent.deleted`,
    /// `token.created`, `token.revoked`, `alert.created`, `alert.changed`,
    /// `alert.deleted`).
    pub(crate) action: String,
    /// To what: the agent's id, the token's name, the alert rule's id.
    pub(crate) target: String,
    /// What was set.
    pub(crate) detail: JsonText,
}

impl From<AuditEntry> for AuditView {
    fn from(entry: AuditEntry) -> Self {
        AuditView {
            at: rfc3339::format(entry.at),
            actor: entry.actor,
            action: entry.action,
            target: entry.target,
            detail: entry.detail,
        }
    }
}

/// The audit log, newest first (`GET /api/audit`, admin).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditList {
    /// The latest entries.
    pub(crate) entries: Vec<AuditView>,
}
