//! Alerts on SQLite: the `alert_rules` and `alert_incidents` tables, and the reads the
//! rules are evaluated on (ended runs from `job_history`, ready jobs from `jobs`).

use super::SqliteStore;
use super::rows::parse_id;
use super::rows::{corrupt, parse_state};
use crate::model::alert::{AlertRule, Incident, IncidentId, WebhookSecret};
use crate::model::{JobId, JobState, Millis};
use crate::store::Result;
use crate::store::alerts::{
    AlertStore, INCIDENT_COLUMNS, IncidentFilter, IncidentRow, RULE_COLUMNS, RuleRow, RunCounts,
    RunScope, StoredRule, Waiting,
};
use async_trait::async_trait;

#[async_trait]
impl AlertStore for SqliteStore {
    async fn put_alert_rule(&self, rule: AlertRule, now: Millis) -> Result<bool> {
        let condition =
            serde_json::to_string(&rule.condition).map_err(|e| corrupt("alert condition", e))?;
        self.exec(move |conn| {
            Box::pin(async move {
                let existed = sqlx::query("SELECT 1 FROM alert_rules WHERE id = ?1")
                    .bind(&rule.id)
                    .fetch_optional(&mut *conn)
                    .await?
                    .is_some();
                let webhook = rule.webhook.as_ref();
                sqlx::query(
                    "INSERT INTO alert_rules (id, condition, webhook_url, webhook_secret, enabled, \
                     created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) \
                     ON CONFLICT (id) DO UPDATE SET condition = excluded.condition, \
                     webhook_url = excluded.webhook_url, webhook_secret = excluded.webhook_secret, \
                     enabled = excluded.enabled, updated_at = excluded.updated_at",
                )
                .bind(&rule.id)
                .bind(&condition)
                .bind(webhook.map(|w| w.url.as_str()))
                .bind(
                    webhook
                        .and_then(|w| w.secret.as_ref())
                        .map(WebhookSecret::expose),
                )
                .bind(rule.enabled)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                Ok(!existed)
            })
        })
        .await
    }

    async fn delete_alert_rule(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.exec(move |conn| {
            Box::pin(async move {
                let deleted = sqlx::query("DELETE FROM alert_rules WHERE id = ?1")
                    .bind(&id)
                    .execute(&mut *conn)
                    .await?;
                Ok(deleted.rows_affected() > 0)
            })
        })
        .await
    }

    async fn alert_rules(&self) -> Result<Vec<StoredRule>> {
        let rows: Vec<RuleRow> = sqlx::query_as(&format!(
            "SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY id"
        ))
        .fetch_all(&self.readers)
        .await?;
        rows.into_iter().map(StoredRule::try_from).collect()
    }

    async fn alert_rule(&self, id: &str) -> Result<Option<StoredRule>> {
        let row: Option<RuleRow> = sqlx::query_as(&format!(
            "SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = ?1"
        ))
        .bind(id)
        .fetch_optional(&self.readers)
        .await?;
        row.map(StoredRule::try_from).transpose()
    }

    async fn open_incident(&self, incident: &Incident) -> Result<bool> {
        let incident = incident.clone();
        self.exec(move |conn| {
            Box::pin(async move {
                // At most one open incident per rule and subject (a partial unique index).
                let stored = sqlx::query(
                    "INSERT INTO alert_incidents (id, rule_id, subject, summary, opened_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                )
                .bind(incident.id.to_string())
                .bind(&incident.rule)
                .bind(&incident.subject)
                .bind(&incident.summary)
                .bind(incident.opened_at)
                .execute(&mut *conn)
                .await?;
                Ok(stored.rows_affected() > 0)
            })
        })
        .await
    }

    async fn resolve_incident(&self, id: IncidentId, at: Millis) -> Result<bool> {
        self.exec(move |conn| {
            Box::pin(async move {
                let resolved = sqlx::query(
                    "UPDATE alert_incidents SET resolved_at = ?2 \
                     WHERE id = ?1 AND resolved_at IS NULL",
                )
                .bind(id.to_string())
                .bind(at)
                .execute(&mut *conn)
                .await?;
                Ok(resolved.rows_affected() > 0)
            })
        })
        .await
    }

    async fn delete_resolved_incidents(&self, before: Millis, limit: u32) -> Result<u64> {
        self.exec(move |conn| {
            Box::pin(async move {
                let deleted = sqlx::query(
                    "DELETE FROM alert_incidents WHERE id IN (SELECT id FROM alert_incidents \
                     WHERE resolved_at < ?1 LIMIT ?2)",
                )
                .bind(before)
                .bind(i64::from(limit))
                .execute(&mut *conn)
                .await?;
                Ok(deleted.rows_affected())
            })
        })
        .await
    }

    async fn incidents(&self, filter: IncidentFilter) -> Result<Vec<Incident>> {
        let only = match filter.open {
            None => "",
            Some(true) => "WHERE resolved_at IS NULL",
            Some(false) => "WHERE resolved_at IS NOT NULL",
        };
        let rows: Vec<IncidentRow> = sqlx::query_as(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM alert_incidents {only} ORDER BY id DESC LIMIT ?1"
        ))
        .bind(i64::from(filter.limit))
        .fetch_all(&self.readers)
        .await?;
        rows.into_iter().map(Incident::try_from).collect()
    }

    async fn runs_since(&self, scope: RunScope<'_>, since: Millis) -> Result<RunCounts> {
        // A run ends with its job's move out of `processing`; one back to `enqueued` is a
        // run given up at shutdown, which did not end. A failed run goes to `failed`, or
        // to `scheduled` for a retry. Jobs are read only to filter by plugin or queue.
        let filtered = scope.plugin.is_some() || scope.queue.is_some();
        let jobs = if filtered {
            "JOIN jobs j ON j.id = h.job_id AND (?2 IS NULL OR j.plugin = ?2) \
             AND (?3 IS NULL OR j.queue = ?3)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT COUNT(*), SUM(h.state IN ('failed', 'scheduled')) FROM job_history h {jobs} \
             WHERE h.from_state = 'processing' AND h.at >= ?1 AND h.state != 'enqueued'"
        );
        let mut query = sqlx::query_as(&sql).bind(since);
        if filtered {
            query = query.bind(scope.plugin).bind(scope.queue);
        }
        let (ended, failed): (i64, Option<i64>) = query.fetch_one(&self.readers).await?;
        Ok(RunCounts {
            ended: ended.max(0) as u64,
            failed: failed.unwrap_or(0).max(0) as u64,
        })
    }

    async fn waiting(&self, queue: &str) -> Result<Waiting> {
        // The claim's index holds only ready jobs: a queue's finished ones are not read.
        let (jobs, oldest_run_at): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(run_at) FROM jobs INDEXED BY jobs_ready \
             WHERE state = 'enqueued' AND queue = ?1",
        )
        .bind(queue)
        .fetch_one(&self.readers)
        .await?;
        Ok(Waiting {
            jobs: jobs.max(0) as u64,
            oldest_run_at,
        })
    }

    async fn job_states(&self, jobs: &[JobId]) -> Result<Vec<(JobId, JobState)>> {
        let ids = serde_json::to_string(jobs).map_err(|e| corrupt("job ids", e))?;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, state FROM jobs WHERE id IN (SELECT value FROM json_each(?1))",
        )
        .bind(ids)
        .fetch_all(&self.readers)
        .await?;
        rows.into_iter()
            .map(|(id, state)| Ok((parse_id(&id)?, parse_state(&state)?)))
            .collect()
    }
}
