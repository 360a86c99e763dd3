//! alerts on PostgreSQL (being written).

#![allow(unused)]

use super::PostgresStore;
use crate::model::alert::{
    AlertCondition, AlertRule, Incident, IncidentId, Webhook, WebhookSecret,
};
use crate::model::{JobId, JobState, Millis};
use crate::store::Result;
use crate::store::alerts::{AlertStore, IncidentFilter, RunCounts, RunScope, StoredRule, Waiting};
use async_trait::async_trait;

#[async_trait]
impl AlertStore for PostgresStore {
    async fn put_alert_rule(&self, rule: AlertRule, now: Millis) -> Result<bool> {
        todo!()
    }

    async fn delete_alert_rule(&self, id: &str) -> Result<bool> {
        todo!()
    }

    async fn alert_rules(&self) -> Result<Vec<StoredRule>> {
        todo!()
    }

    async fn alert_rule(&self, id: &str) -> Result<Option<StoredRule>> {
        todo!()
    }

    async fn open_incident(&self, incident: &Incident) -> Result<bool> {
        todo!()
    }

    async fn resolve_incident(&self, id: IncidentId, at: Millis) -> Result<bool> {
        todo!()
    }

    async fn delete_resolved_incidents(&self, before: Millis, limit: u32) -> Result<u64> {
        todo!()
    }

    async fn incidents(&self, filter: IncidentFilter) -> Result<Vec<Incident>> {
        todo!()
    }

    async fn runs_since(&self, scope: RunScope<'_>, since: Millis) -> Result<RunCounts> {
        todo!()
    }

    async fn waiting(&self, queue: &str) -> Result<Waiting> {
        todo!()
    }

    async fn job_states(&self, jobs: &[JobId]) -> Result<Vec<(JobId, JobState)>> {
        todo!()
    }
}
