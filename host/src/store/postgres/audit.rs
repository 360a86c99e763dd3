//! audit on PostgreSQL (being written).

#![allow(unused)]

use super::PostgresStore;
use crate::model::JsonText;
use crate::store::Result;
use crate::store::audit::{AuditEntry, AuditStore};
use async_trait::async_trait;

#[async_trait]
impl AuditStore for PostgresStore {
    async fn record_audit(&self, entry: AuditEntry) -> Result<()> {
        todo!()
    }

    async fn audit(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        todo!()
    }
}
