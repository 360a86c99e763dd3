//! Reading a job's log, by the same SQL on every backend: its latest lines and counts per
//! attempt (for the job's detail), and pages in reading order, by attempt then as written.
//! Every read walks the index `job_logs (job_id, attempt, seq)`, so its cost follows the
//! lines it returns, not the size of the log.

/// Defines `latest`, `counts` and `page` (see the module) in the invoking module, for
/// database `$db` whose connections are `$conn`.
macro_rules! log_reads {
    ($db:ty, $conn:ty) => {
        use crate::model::{AttemptLogCount, JobId, StoredLogLine};
        use crate::store::rows::LogRow;
        use crate::store::{Error, LogPage, LogQuery, Result};
        use sqlx::QueryBuilder;

        const LINE_COLUMNS: &str = "SELECT seq, attempt, at, level, message FROM job_logs";

        /// The job's latest `limit` lines, in reading order.
        pub(super) async fn latest(
            conn: &mut $conn,
            id: JobId,
            limit: u32,
        ) -> Result<Vec<StoredLogLine>> {
            let rows: Vec<LogRow> = sqlx::query_as(&format!(
                "{LINE_COLUMNS} WHERE job_id = $1 ORDER BY attempt DESC, seq DESC LIMIT $2"
            ))
            .bind(id.to_string())
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await?;
            Ok(rows.into_iter().rev().map(StoredLogLine::from).collect())
        }

        /// How many lines each attempt of the job logged, by attempt.
        pub(super) async fn counts(conn: &mut $conn, id: JobId) -> Result<Vec<AttemptLogCount>> {
            let rows: Vec<(i64, i64)> = sqlx::query_as(
                "SELECT attempt, count(*) FROM job_logs WHERE job_id = $1 GROUP BY attempt ORDER BY attempt",
            )
            .bind(id.to_string())
            .fetch_all(conn)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(attempt, count)| AttemptLogCount {
                    attempt: attempt.max(0) as u32,
                    count: count.max(0) as u64,
                })
                .collect())
        }

        /// The attempt of line `after` of the job.
        ///
        /// # Errors
        /// [`Error::Invalid`] when it is not a line of this job.
        async fn cursor_attempt(conn: &mut $conn, id: JobId, after: i64) -> Result<u32> {
            let attempt: Option<i64> =
                sqlx::query_scalar("SELECT attempt FROM job_logs WHERE seq = $1 AND job_id = $2")
                    .bind(after)
                    .bind(id.to_string())
                    .fetch_optional(conn)
                    .await?;
            attempt
                .map(|a| a.max(0) as u32)
                .ok_or_else(|| Error::Invalid(format!("after: {after} is not a line of job {id}")))
        }

        /// One page of the job's log (the job exists).
        ///
        /// # Errors
        /// [`Error::Invalid`] when `query.after` is not a line of this job.
        pub(super) async fn page(conn: &mut $conn, id: JobId, query: &LogQuery) -> Result<LogPage> {
            let cursor = match query.after {
                Some(after) => Some((cursor_attempt(conn, id, after).await?, after)),
                None => None,
            };
            let mut sql: QueryBuilder<$db> = QueryBuilder::new(LINE_COLUMNS);
            sql.push(" WHERE job_id = ").push_bind(id.to_string());
            // Each shape seeks the index and reads in its order: no sort, whatever the log's size.
            match (query.attempt, cursor) {
                (Some(attempt), Some((at, _))) if at > attempt => {
                    return Ok(LogPage {
                        lines: Vec::new(),
                        next_cursor: None,
                    });
                }
                (Some(attempt), Some((at, after))) if at == attempt => {
                    sql.push(" AND attempt = ").push_bind(i64::from(attempt));
                    sql.push(" AND seq > ").push_bind(after);
                }
                (Some(attempt), _) => {
                    sql.push(" AND attempt = ").push_bind(i64::from(attempt));
                }
                (None, Some((at, after))) => {
                    sql.push(" AND (attempt, seq) > (")
                        .push_bind(i64::from(at))
                        .push(", ")
                        .push_bind(after)
                        .push(")");
                }
                (None, None) => {}
            }
            sql.push(" ORDER BY attempt, seq LIMIT ")
                .push_bind(i64::from(query.limit) + 1);
            let mut lines: Vec<StoredLogLine> = sql
                .build_query_as::<LogRow>()
                .fetch_all(conn)
                .await?
                .into_iter()
                .map(StoredLogLine::from)
                .collect();
            let more = lines.len() > query.limit as usize;
            lines.truncate(query.limit as usize);
            let next_cursor = more.then(|| lines.last().map(|line| line.seq)).flatten();
            Ok(LogPage { lines, next_cursor })
        }
    };
}

pub(super) use log_reads;
