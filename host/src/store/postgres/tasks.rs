//! tasks on PostgreSQL (being written).

#![allow(unused)]

use super::PostgresStore;
use crate::model::agent::TaskPriority;
use crate::model::{Job, JobId, Millis};
use crate::store::agents::{ExecRecord, NewTask, Task, TaskFilter};
use crate::store::tasks::TaskStore;
use crate::store::{Changes, Error, Result};
use async_trait::async_trait;

#[async_trait]
impl TaskStore for PostgresStore {
    async fn create_task(&self, task: NewTask, now: Millis) -> Result<Changes> {
        todo!()
    }

    async fn task(&self, id: JobId) -> Result<Option<Task>> {
        todo!()
    }

    async fn task_of_job(&self, job: JobId) -> Result<Option<JobId>> {
        todo!()
    }

    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        todo!()
    }

    async fn record_exec(&self, job: JobId, exec: ExecRecord) -> Result<()> {
        todo!()
    }
}
