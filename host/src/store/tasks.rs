//! Tasks: the [`TaskStore`] trait. A task is a command for an agent, stored with the job
//! that runs it; its types ([`Task`], [`NewTask`], [`TaskFilter`], [`ExecRecord`]) are in
//! [`super::agents`].

use super::agents::{ExecRecord, NewTask, Task, TaskFilter};
use super::rows::{JobRow, corrupt};
use super::{Changes, Error, Result};
use crate::model::agent::TaskPriority;
use crate::model::{Job, JobId, Millis};
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

/// A `tasks` row joined with its job.
#[derive(sqlx::FromRow)]
pub(crate) struct TaskRow {
    task_id: String,
    task_command: String,
    task_repository: String,
    task_priority: String,
    exec_outcome: Option<String>,
    exit_code: Option<i64>,
    stdout: Option<String>,
    stderr: Option<String>,
    duration_ms: Option<i64>,
    #[sqlx(flatten)]
    job: JobRow,
}

/// Every read of tasks selects these, in [`TaskRow`] order.
pub(crate) const TASK_SELECT: &str = "SELECT t.id AS task_id, t.command AS task_command, \
    t.repository_path AS task_repository, t.priority AS task_priority, t.exec_outcome, \
    t.exit_code, t.stdout, t.stderr, t.duration_ms, j.* FROM tasks t JOIN jobs j ON j.id = t.job_id";

impl TryFrom<TaskRow> for Task {
    type Error = Error;

    fn try_from(row: TaskRow) -> Result<Task> {
        let exec = row.exec_outcome.map(|outcome| ExecRecord {
            outcome: match outcome.as_str() {
                "timeout" => "timeout",
                "spawn_failure" => "spawn_failure",
                _ => "exited",
            },
            exit_code: row.exit_code.map(|c| c as i32),
            stdout: row.stdout.unwrap_or_default(),
            stderr: row.stderr.unwrap_or_default(),
            duration_ms: row.duration_ms.unwrap_or(0).max(0) as u64,
        });
        Ok(Task {
            id: row.task_id.parse().map_err(|e| corrupt("task id", e))?,
            command: row.task_command,
            repository_path: row.task_repository,
            priority: TaskPriority::parse(&row.task_priority)
                .map_err(|e| corrupt("priority", e))?,
            job: Job::try_from(row.job)?,
            exec,
        })
    }
}
