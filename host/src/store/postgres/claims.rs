//! Claims on PostgreSQL: one statement takes the ready jobs of every queue asked for,
//! `FOR UPDATE SKIP LOCKED`, so hosts claiming at once never take the same job and never
//! wait for each other. Queue controls are read in the same statement: a queue paused
//! through any host is skipped, and a capped queue is filled only up to its cap. Claims
//! on capped queues lock those queues' rows first, so two hosts cannot both see room for
//! the last slot. The runs started are added to the rollup in the same transaction.

use crate::model::{Job, Millis};
use crate::store::changes::{Changed, Changes, JobChange};
use crate::store::moves::sort_for_dispatch;
use crate::store::rows::{JOB_COLUMNS, JobRow, parse_id};
use crate::store::{ClaimParams, Claimed, Result};
use sqlx::{FromRow, PgConnection, Row};
use uuid::Uuid;

/// Takes up to `params.limit` ready jobs under a new lease, in dispatch order, with
/// their moves to `processing`; counts their pickup latency in the rollup.
pub(super) async fn claim(
    conn: &mut PgConnection,
    params: &ClaimParams,
    now: Millis,
) -> Result<Changed<Vec<Claimed>>> {
    if params.queues.is_empty() || params.limit == 0 {
        return Ok(Changed {
            value: Vec::new(),
            changes: Changes::default(),
        });
    }
    sqlx::query(
        "SELECT name FROM queues WHERE name = ANY($1) AND concurrency IS NOT NULL \
         ORDER BY name FOR UPDATE",
    )
    .bind(&params.queues)
    .execute(&mut *conn)
    .await?;
    let rows = sqlx::query(&format!(
        "WITH wanted AS ( \
             SELECT q.name, q.precedence, \
                 CASE WHEN c.concurrency IS NULL THEN $1 \
                      ELSE GREATEST(0, LEAST($1, c.concurrency - (SELECT count(*) FROM jobs r \
                           WHERE r.state = 'processing' AND r.queue = q.name))) END AS room \
             FROM unnest($2::text[]) WITH ORDINALITY AS q(name, precedence) \
             LEFT JOIN queues c ON c.name = q.name \
             WHERE NOT coalesce(c.paused, false)), \
         picked AS ( \
             SELECT j.id AS pick_id FROM wanted w CROSS JOIN LATERAL ( \
                 SELECT id, priority, run_at FROM jobs \
                 WHERE state = 'enqueued' AND queue = w.name AND NOT (plugin = ANY($3)) \
                   AND (agent_id IS NULL OR NOT (agent_id = ANY($4))) \
                 ORDER BY priority DESC, run_at, id LIMIT w.room \
                 FOR UPDATE SKIP LOCKED) AS j \
             ORDER BY w.precedence, j.priority DESC, j.run_at, j.id LIMIT $1) \
         UPDATE jobs SET state = 'processing', state_at = $5, \
             state_reason = 'attempt ' || (attempt + 1) || ' of ' || max_attempts || \
                            ' started by ' || $6, \
             attempt = attempt + 1, started_at = $5, finished_at = NULL, lease_id = $7, \
             lease_owner = $6, lease_expires_at = $8, progress_percent = NULL, \
             progress_message = NULL, progress_updated_at = NULL \
         FROM picked WHERE jobs.id = picked.pick_id \
         RETURNING lease_id, (SELECT t.id FROM tasks t WHERE t.job_id = jobs.id) AS task_id, \
             {JOB_COLUMNS}"
    ))
    .bind(i64::from(params.limit))
    .bind(&params.queues)
    .bind(&params.waiting_plugins)
    .bind(&params.parked_agents)
    .bind(now)
    .bind(&params.owner)
    .bind(Uuid::now_v7().to_string())
    .bind(params.lease_until)
    .fetch_all(&mut *conn)
    .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    let mut started = Vec::with_capacity(rows.len());
    for row in &rows {
        let job = Job::try_from(JobRow::from_row(row)?)?;
        let lease = parse_id(&row.try_get::<String, _>("lease_id")?)?;
        let task = row
            .try_get::<Option<String>, _>("task_id")?
            .as_deref()
            .map(parse_id)
            .transpose()?;
        started.push(JobChange::started(&job, lease, task));
        claimed.push(Claimed { job, lease });
    }
    sort_for_dispatch(params, &mut claimed);
    Ok(Changed {
        value: claimed,
        changes: Changes {
            jobs: started,
            batches: Vec::new(),
        },
    })
}
