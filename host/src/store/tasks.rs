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

/// Implements [`TaskStore`] for `$store` on database `$db`, whose reads go to its pool
/// `$reads`, whose writes to its `exec`, and whose jobs are stored by `$insert`: the same
/// SQL on every backend.
macro_rules! task_store {
    ($store:ty, $db:ty, $reads:ident, $insert:path) => {
        use crate::model::{JobId, Millis};
        use crate::store::agents::{ExecRecord, NewTask, Task, TaskFilter};
        use crate::store::rows::parse_id;
        use crate::store::tasks::{TASK_SELECT, TaskRow, TaskStore};
        use crate::store::{Changes, Result};
        use async_trait::async_trait;
        use sqlx::QueryBuilder;

        #[async_trait]
        impl TaskStore for $store {
            async fn create_task(&self, task: NewTask, now: Millis) -> Result<Changes> {
                let created = self.exec_changing(move |conn| {
                    Box::pin(async move {
                        $insert(conn, std::slice::from_ref(&task.job), now).await?;
                        sqlx::query(
                            "INSERT INTO tasks (id, job_id, command, repository_path, priority, created_at) \
                             VALUES ($1, $2, $3, $4, $5, $6)",
                        )
                        .bind(task.id.to_string())
                        .bind(task.job.id.to_string())
                        .bind(&task.command)
                        .bind(&task.repository_path)
                        .bind(task.priority.as_str())
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                        Ok(())
                    })
                });
                Ok(created.await?.changes)
            }

            async fn task(&self, id: JobId) -> Result<Option<Task>> {
                let row: Option<TaskRow> = sqlx::query_as(&format!("{TASK_SELECT} WHERE t.id = $1"))
                    .bind(id.to_string())
                    .fetch_optional(&self.$reads)
                    .await?;
                row.map(Task::try_from).transpose()
            }

            async fn task_of_job(&self, job: JobId) -> Result<Option<JobId>> {
                let id: Option<String> = sqlx::query_scalar("SELECT id FROM tasks WHERE job_id = $1")
                    .bind(job.to_string())
                    .fetch_optional(&self.$reads)
                    .await?;
                id.as_deref().map(parse_id).transpose()
            }

            async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
                let mut query: QueryBuilder<$db> = QueryBuilder::new(TASK_SELECT);
                query.push(" WHERE true");
                if let Some(agent) = &filter.agent_id {
                    query.push(" AND j.agent_id = ").push_bind(agent.clone());
                }
                if let Some(state) = filter.state {
                    query.push(" AND j.state = ").push_bind(state.as_str());
                }
                query
                    .push(" ORDER BY t.id DESC LIMIT ")
                    .push_bind(i64::from(filter.limit));
                let rows: Vec<TaskRow> = query.build_query_as().fetch_all(&self.$reads).await?;
                rows.into_iter().map(Task::try_from).collect()
            }

            async fn record_exec(&self, job: JobId, exec: ExecRecord) -> Result<()> {
                self.exec(move |conn| {
                    Box::pin(async move {
                        sqlx::query(
                            "UPDATE tasks SET exec_outcome = $2, exit_code = $3, stdout = $4, \
                             stderr = $5, duration_ms = $6 WHERE job_id = $1",
                        )
                        .bind(job.to_string())
                        .bind(exec.outcome)
                        .bind(exec.exit_code.map(i64::from))
                        .bind(exec.stdout)
                        .bind(exec.stderr)
                        .bind(i64::try_from(exec.duration_ms).unwrap_or(i64::MAX))
                        .execute(&mut *conn)
                        .await?;
                        Ok(())
                    })
                })
                .await
            }
        }
    };
}

pub(super) use task_store;
