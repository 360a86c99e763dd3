//! Tasks: the [`TaskStore`] trait. A task is a command for an agent, stored with the job
//! that runs it; its types ([`Task`], [`NewTask`], [`TaskFilter`], [`ExecRecord`]) are in
//! [`super::agents`].

use super::agents::{ExecRecord, NewTask, Task, TaskFilter};
use super::{Changes, Result};
use crate::model::{JobId, Millis};
use async_trait::async_trait;

/// Storage of tasks.
#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Stores a task and its job at once.
    async fn create_task(&self, task: NewTask, now: Millis) -> Result<Changes>;

    /// One task.
    async fn task(&self, id: JobId) -> Result<Option<Task>>;

    /// The task run by job `job`, if it is one.
    async fn task_of_job(&self, job: JobId) -> Result<Option<JobId>>;

    /// Tasks matching `filter`, newest first.
    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>>;

    /// Records the outcome of a command a task's job ran.
    async fn record_exec(&self, job: JobId, exec: ExecRecord) -> Result<()>;
}
