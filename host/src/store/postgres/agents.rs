//! agents on PostgreSQL (being written).

#![allow(unused)]

use super::PostgresStore;
use crate::model::agent::{Agent, AgentSpec, AgentStatus, Health, agent_queue};
use crate::model::{JobId, Millis};
use crate::store::agents::{AgentMetrics, AgentStore};
use crate::store::{Error, Result};
use async_trait::async_trait;
use std::collections::HashMap;

#[async_trait]
impl AgentStore for PostgresStore {
    async fn create_agent(&self, spec: AgentSpec, now: Millis) -> Result<Agent> {
        todo!()
    }

    async fn put_agent(&self, spec: AgentSpec, now: Millis) -> Result<Agent> {
        todo!()
    }

    async fn agent(&self, id: &str) -> Result<Option<Agent>> {
        todo!()
    }

    async fn agents(&self) -> Result<Vec<Agent>> {
        todo!()
    }

    async fn delete_agent(&self, id: &str, force: bool) -> Result<Agent> {
        todo!()
    }

    async fn agent_heartbeat(&self, id: &str, now: Millis) -> Result<Agent> {
        todo!()
    }

    async fn set_agent_health(
        &self,
        id: &str,
        health: Health,
        misses: u32,
        reason: Option<String>,
        now: Millis,
    ) -> Result<()> {
        todo!()
    }

    async fn agent_load(&self) -> Result<HashMap<String, u64>> {
        todo!()
    }

    async fn waiting_jobs(&self, agent_id: &str) -> Result<Vec<JobId>> {
        todo!()
    }

    async fn rebind_job(&self, job: JobId, from: &str, to: &str, now: Millis) -> Result<bool> {
        todo!()
    }

    async fn agent_metrics(&self, id: &str, now: Millis) -> Result<AgentMetrics> {
        todo!()
    }
}
