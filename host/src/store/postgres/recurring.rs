//! recurring on PostgreSQL (being written).

#![allow(unused)]

use super::PostgresStore;
use crate::cron::Schedule;
use crate::model::{Job, JobId, Millis};
use crate::store::changes::{Changed, Changes};
use crate::store::recurring::{Firing, Occurrence};
use crate::store::{
    Error, NewJob, PutRecurring, RecurringDefinition, RecurringJob, RecurringStore, Result,
};
use async_trait::async_trait;

#[async_trait]
impl RecurringStore for PostgresStore {
    async fn put_recurring(
        &self,
        definition: RecurringDefinition,
        now: Millis,
    ) -> Result<PutRecurring> {
        todo!()
    }

    async fn recurring(&self, id: &str) -> Result<Option<RecurringJob>> {
        todo!()
    }

    async fn list_recurring(&self) -> Result<Vec<RecurringJob>> {
        todo!()
    }

    async fn delete_recurring(&self, id: &str) -> Result<()> {
        todo!()
    }

    async fn set_recurring_paused(
        &self,
        id: &str,
        paused: bool,
        now: Millis,
    ) -> Result<RecurringJob> {
        todo!()
    }

    async fn fire_recurring(&self, now: Millis) -> Result<Changed<Vec<(String, JobId)>>> {
        todo!()
    }

    async fn trigger_recurring(&self, id: &str, now: Millis) -> Result<Changed<Job>> {
        todo!()
    }
}
