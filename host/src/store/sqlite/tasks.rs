//! Tasks on SQLite: the `tasks` table (see the migration), each task read joined with
//! its job. Writes run on the writer's connection, each in a transaction of its own.

use super::rows::corrupt;
use super::{SqliteStore, batch};
use crate::model::{JobId, Millis};
use crate::store::agents::{ExecRecord, NewTask, Task, TaskFilter};
use crate::store::tasks::{TASK_SELECT, TaskRow, TaskStore};
use crate::store::{Changes, Result};
use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite};

#[async_trait]
impl TaskStore for SqliteStore {
    async fn create_task(&self, task: NewTask, now: Millis) -> Result<Changes> {
        let created = self.exec_changing(move |conn| {
            Box::pin(async move {
                batch::insert(conn, std::slice::from_ref(&task.job), now).await?;
                sqlx::query(
                    "INSERT INTO tasks (id, job_id, command, repository_path, priority, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
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
        let row: Option<TaskRow> = sqlx::query_as(&format!("{TASK_SELECT} WHERE t.id = ?1"))
            .bind(id.to_string())
            .fetch_optional(&self.readers)
            .await?;
        row.map(Task::try_from).transpose()
    }

    async fn task_of_job(&self, job: JobId) -> Result<Option<JobId>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT id FROM tasks WHERE job_id = ?1")
            .bind(job.to_string())
            .fetch_optional(&self.readers)
            .await?;
        row.map(|(id,)| id.parse().map_err(|e| corrupt("task id", e)))
            .transpose()
    }

    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(TASK_SELECT);
        query.push(" WHERE 1 = 1");
        if let Some(agent) = &filter.agent_id {
            query.push(" AND j.agent_id = ").push_bind(agent.clone());
        }
        if let Some(state) = filter.state {
            query.push(" AND j.state = ").push_bind(state.as_str());
        }
        query
            .push(" ORDER BY t.id DESC LIMIT ")
            .push_bind(i64::from(filter.limit));
        let rows: Vec<TaskRow> = query.build_query_as().fetch_all(&self.readers).await?;
        rows.into_iter().map(Task::try_from).collect()
    }

    async fn record_exec(&self, job: JobId, exec: ExecRecord) -> Result<()> {
        self.exec(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE tasks SET exec_outcome = ?2, exit_code = ?3, stdout = ?4, \
                     stderr = ?5, duration_ms = ?6 WHERE job_id = ?1",
                )
                .bind(job.to_string())
                .bind(exec.outcome)
                .bind(exec.exit_code)
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
