//! A job's links, by the same SQL on every backend: its parents and continuations
//! (`job_parents`), its batch (`jobs.batch_id`) and its workflow run step
//! (`workflow_steps.job_id`, indexed).

/// Defines `of` (the links of a job) in the invoking module, for connections `$conn`.
macro_rules! link_reads {
    ($conn:ty) => {
        use crate::model::{JobId, JobLinks, JobRef, MAX_LINKED_JOBS, StepRef};
        use crate::store::Result;
        use crate::store::rows::{parse_id, parse_state};

        /// The links of job `id` (none for an unknown job).
        pub(super) async fn of(conn: &mut $conn, id: JobId) -> Result<JobLinks> {
            let parents = linked(
                conn,
                id,
                "SELECT p.parent_id, j.state FROM job_parents AS p JOIN jobs AS j ON j.id = p.parent_id \
                 WHERE p.job_id = $1 ORDER BY p.parent_id LIMIT $2",
            )
            .await?;
            let continuations = linked(
                conn,
                id,
                "SELECT p.job_id, j.state FROM job_parents AS p JOIN jobs AS j ON j.id = p.job_id \
                 WHERE p.parent_id = $1 ORDER BY p.job_id LIMIT $2",
            )
            .await?;
            let groups: Option<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
                "SELECT j.batch_id, s.run_id, s.step_id FROM jobs AS j \
                 LEFT JOIN workflow_steps AS s ON s.job_id = j.id WHERE j.id = $1 LIMIT 1",
            )
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
            let (batch, run, step) = groups.unwrap_or_default();
            let workflow_run = match (run, step) {
                (Some(run), Some(step_id)) => Some(StepRef {
                    run_id: parse_id(&run)?,
                    step_id,
                }),
                _ => None,
            };
            Ok(JobLinks {
                parents,
                continuations,
                batch_id: batch.as_deref().map(parse_id).transpose()?,
                workflow_run,
            })
        }

        /// The jobs `sql` selects (id and state) for job `$1`, at most [`MAX_LINKED_JOBS`].
        async fn linked(conn: &mut $conn, id: JobId, sql: &str) -> Result<Vec<JobRef>> {
            let rows: Vec<(String, String)> = sqlx::query_as(sql)
                .bind(id.to_string())
                .bind(MAX_LINKED_JOBS as i64)
                .fetch_all(&mut *conn)
                .await?;
            rows.iter()
                .map(|(job, state)| {
                    Ok(JobRef {
                        id: parse_id(job)?,
                        state: parse_state(state)?,
                    })
                })
                .collect()
        }
    };
}

pub(super) use link_reads;
