//! locks on PostgreSQL (being written).

#![allow(unused)]

use super::PostgresStore;
use crate::model::agent::AgentStatus;
use crate::model::{JobId, Millis};
use crate::store::agents::Acquired;
use crate::store::locks::AgentLocks;
use crate::store::{Error, Result};
use async_trait::async_trait;

#[async_trait]
impl AgentLocks for PostgresStore {
    async fn acquire_agent(
        &self,
        agent_id: &str,
        job: JobId,
        owner: &str,
        until: Millis,
        now: Millis,
    ) -> Result<Acquired> {
        todo!()
    }

    async fn renew_agent_locks(&self, owner: &str, until: Millis) -> Result<u64> {
        todo!()
    }
}
