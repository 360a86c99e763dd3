//! Tasks on PostgreSQL: the `tasks` table (see the migration), each task read joined
//! with its job. Each write is a transaction of its own.

use super::PostgresStore;
use super::jobs::insert;
use crate::model::{JobId, Millis};
use crate::store::agents::{ExecRecord, NewTask, Task, TaskFilter};
use crate::store::rows::parse_id;
use crate::store::tasks::{TASK_SELECT, TaskRow, TaskStore};
use crate::store::{Changes, Result};
use async_trait::async_trait;
use sqlx::{Postgres, QueryBuilder};

#[async_trait]
impl TaskStore for PostgresStore {
    async fn create_task(&self, task: NewTask, now: Millis) -> Result<Changes> {
        let created = self.exec_changing(move |conn| {
            Box::pin(async move {
                insert(conn, std::slice::from_ref(&task.job), now).await?;
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
            .fetch_optional(&self.pool)
            .await?;
        row.map(Task::try_from).transpose()
    }

    async fn task_of_job(&self, job: JobId) -> Result<Option<JobId>> {
        let id: Option<String> = sqlx::query_scalar("SELECT id FROM tasks WHERE job_id = $1")
            .bind(job.to_string())
            .fetch_optional(&self.pool)
            .await?;
        id.as_deref().map(parse_id).transpose()
    }

    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        let mut query: QueryBuilder<Postgres> = QueryBuilder::new(TASK_SELECT);
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
        let rows: Vec<TaskRow> = query.build_query_as().fetch_all(&self.pool).await?;
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
