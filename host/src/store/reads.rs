//! [`Reads`]: the store's read side, for the layers above the engine, which write only
//! through it (so that every change is published).

use super::agents::{AgentMetrics, Task, TaskFilter};
use super::alerts::{IncidentFilter, RuleInfo};
use super::workflows::{StoredWorkflow, WorkflowRun};
use super::{
    BatchInfo, JobFilter, JobStore, LogPage, LogQuery, Page, QueueInfo, RecurringJob, Result,
};
use crate::model::agent::Agent;
use crate::model::alert::Incident;
use crate::model::stats::{Resolution, RollupRow};
use crate::model::{JobDetail, JobId, Millis};
use std::sync::Arc;

/// Reads of a [`JobStore`], and nothing else. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Reads(Arc<dyn JobStore>);

impl Reads {
    /// The read side of `store`.
    pub fn of(store: Arc<dyn JobStore>) -> Reads {
        Reads(store)
    }

    /// See [`JobStore::get`].
    pub async fn get(&self, id: JobId) -> Result<Option<JobDetail>> {
        self.0.get(id).await
    }

    /// See [`JobStore::logs`].
    pub async fn logs(&self, id: JobId, query: &LogQuery) -> Result<Option<LogPage>> {
        self.0.logs(id, query).await
    }

    /// See [`JobStore::list`].
    pub async fn list(&self, filter: &JobFilter) -> Result<Page> {
        self.0.list(filter).await
    }

    /// See [`JobStore::count`].
    pub async fn count(&self, filter: &JobFilter, most: u64) -> Result<u64> {
        self.0.count(filter, most).await
    }

    /// See [`JobStore::search_backlog`].
    pub async fn search_backlog(&self) -> Result<u64> {
        self.0.search_backlog().await
    }

    /// See [`JobStore::batch`].
    pub async fn batch(&self, id: JobId) -> Result<Option<BatchInfo>> {
        self.0.batch(id).await
    }

    /// See [`super::QueueStore::queues`].
    pub async fn queues(&self) -> Result<Vec<QueueInfo>> {
        self.0.queues().await
    }

    /// See [`super::StatsStore::rollup`].
    pub async fn rollup(
        &self,
        resolution: Resolution,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<RollupRow>> {
        self.0.rollup(resolution, from, to).await
    }

    /// See [`super::QueueStore::finished_since`].
    pub async fn finished_since(&self, since: Millis) -> Result<Vec<(String, u64)>> {
        self.0.finished_since(since).await
    }

    /// See [`super::RecurringStore::recurring`].
    pub async fn recurring(&self, id: &str) -> Result<Option<RecurringJob>> {
        self.0.recurring(id).await
    }

    /// See [`super::RecurringStore::list_recurring`].
    pub async fn list_recurring(&self) -> Result<Vec<RecurringJob>> {
        self.0.list_recurring().await
    }

    /// See [`super::WorkflowStore::workflow`].
    pub async fn workflow(&self, id: &str) -> Result<Option<StoredWorkflow>> {
        self.0.workflow(id).await
    }

    /// See [`super::WorkflowStore::workflow_run`].
    pub async fn workflow_run(&self, id: JobId) -> Result<Option<WorkflowRun>> {
        self.0.workflow_run(id).await
    }

    /// See [`super::AgentStore::agent`].
    pub async fn agent(&self, id: &str) -> Result<Option<Agent>> {
        self.0.agent(id).await
    }

    /// See [`super::AgentStore::agents`].
    pub async fn agents(&self) -> Result<Vec<Agent>> {
        self.0.agents().await
    }

    /// See [`super::AgentStore::agent_metrics`].
    pub async fn agent_metrics(&self, id: &str, now: Millis) -> Result<AgentMetrics> {
        self.0.agent_metrics(id, now).await
    }

    /// See [`super::TaskStore::task`].
    pub async fn task(&self, id: JobId) -> Result<Option<Task>> {
        self.0.task(id).await
    }

    /// See [`super::TaskStore::tasks`].
    pub async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        self.0.tasks(filter).await
    }

    /// See [`super::TokenStore::tokens`].
    pub async fn tokens(&self) -> Result<Vec<super::tokens::TokenInfo>> {
        self.0.tokens().await
    }

    /// See [`super::TokenStore::active_tokens`].
    pub async fn active_tokens(&self) -> Result<Vec<super::tokens::ActiveToken>> {
        self.0.active_tokens().await
    }

    /// See [`super::AuditStore::audit`].
    pub async fn audit(&self, limit: u32) -> Result<Vec<super::audit::AuditEntry>> {
        self.0.audit(limit).await
    }

    /// Every alert rule, by id, without its webhook's secret (see
    /// [`super::AlertStore::alert_rules`]).
    pub async fn alert_rules(&self) -> Result<Vec<RuleInfo>> {
        let rules = self.0.alert_rules().await?;
        Ok(rules.into_iter().map(RuleInfo::from).collect())
    }

    /// See [`super::AlertStore::incidents`].
    pub async fn incidents(&self, filter: IncidentFilter) -> Result<Vec<Incident>> {
        self.0.incidents(filter).await
    }

    /// See [`JobStore::health`].
    pub fn health(&self) -> Result<()> {
        self.0.health()
    }
}
