//! Alerts as the store keeps them: rules (with their webhook secrets, which only the
//! engine reads), incidents (at most one open per rule and subject), and the counts the
//! rules are evaluated on.

use super::Result;
use super::rows::{corrupt, parse_id};
use crate::model::alert::{
    AlertCondition, AlertRule, Incident, IncidentId, Webhook, WebhookSecret,
};
use crate::model::{JobId, JobState, Millis};
use async_trait::async_trait;
use sqlx::FromRow;

/// A rule as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRule {
    /// The rule, its webhook's secret included.
    pub rule: AlertRule,
    /// When it was first stored.
    pub created_at: Millis,
    /// When it was last replaced.
    pub updated_at: Millis,
}

/// A rule as reads see it: never its webhook's secret, only whether it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleInfo {
    /// Its id.
    pub id: String,
    /// What it watches.
    pub condition: AlertCondition,
    /// Its webhook's URL, if it has a webhook.
    pub webhook_url: Option<String>,
    /// Whether its webhook signs bodies.
    pub has_secret: bool,
    /// Whether it is evaluated.
    pub enabled: bool,
    /// When it was first stored.
    pub created_at: Millis,
    /// When it was last replaced.
    pub updated_at: Millis,
}

impl From<StoredRule> for RuleInfo {
    fn from(stored: StoredRule) -> Self {
        let AlertRule {
            id,
            condition,
            webhook,
            enabled,
        } = stored.rule;
        RuleInfo {
            id,
            condition,
            has_secret: webhook.as_ref().is_some_and(|w| w.secret.is_some()),
            webhook_url: webhook.map(|w| w.url),
            enabled,
            created_at: stored.created_at,
            updated_at: stored.updated_at,
        }
    }
}

/// What storing a rule did (see `Scheduler::put_alert`).
#[derive(Debug, Clone, PartialEq)]
pub struct PutAlert {
    /// The rule as stored, as reads see it.
    pub rule: RuleInfo,
    /// Whether it is new.
    pub created: bool,
}

/// Which incidents [`AlertStore::incidents`] returns.
#[derive(Debug, Clone, Copy)]
pub struct IncidentFilter {
    /// Only open ones (`Some(true)`) or only resolved ones (`Some(false)`).
    pub open: Option<bool>,
    /// Most incidents returned, newest first.
    pub limit: u32,
}

/// Which runs [`AlertStore::runs_since`] counts.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunScope<'a> {
    /// Only runs of this plugin.
    pub plugin: Option<&'a str>,
    /// Only runs of this queue.
    pub queue: Option<&'a str>,
}

/// Runs that ended in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Runs that ended: succeeded, failed (for good or to be retried) or cancelled.
    pub ended: u64,
    /// Of those, the ones that failed.
    pub failed: u64,
}

/// The ready jobs of a queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Waiting {
    /// How many.
    pub jobs: u64,
    /// When the longest-waiting one became due.
    pub oldest_run_at: Option<Millis>,
}

/// Storage of alert rules and incidents; every [`super::JobStore`] is one.
#[async_trait]
pub trait AlertStore {
    /// Creates or replaces rule `rule.id`; returns whether it is new.
    async fn put_alert_rule(&self, rule: AlertRule, now: Millis) -> Result<bool>;

    /// Deletes a rule (its incidents stay); returns whether it existed.
    async fn delete_alert_rule(&self, id: &str) -> Result<bool>;

    /// Every rule, by id, secrets included.
    async fn alert_rules(&self) -> Result<Vec<StoredRule>>;

    /// One rule, its secret included.
    async fn alert_rule(&self, id: &str) -> Result<Option<StoredRule>>;

    /// Stores `incident` unless an incident of the same rule and subject is open;
    /// returns whether it was stored.
    async fn open_incident(&self, incident: &Incident) -> Result<bool>;

    /// Resolves an open incident at `at`; returns whether it was open.
    async fn resolve_incident(&self, id: IncidentId, at: Millis) -> Result<bool>;

    /// Deletes up to `limit` incidents resolved before `before`; returns how many.
    async fn delete_resolved_incidents(&self, before: Millis, limit: u32) -> Result<u64>;

    /// Incidents matching `filter`, newest first.
    async fn incidents(&self, filter: IncidentFilter) -> Result<Vec<Incident>>;

    /// Runs of `scope` that ended at or after `since`: the input of a failure rate.
    async fn runs_since(&self, scope: RunScope<'_>, since: Millis) -> Result<RunCounts>;

    /// The ready jobs of `queue`.
    async fn waiting(&self, queue: &str) -> Result<Waiting>;

    /// The state of each of `jobs` that still exists.
    async fn job_states(&self, jobs: &[JobId]) -> Result<Vec<(JobId, JobState)>>;
}

/// The `alert_rules` columns reads select, in [`RuleRow`] order.
pub(crate) const RULE_COLUMNS: &str =
    "id, condition, webhook_url, webhook_secret, enabled, created_at, updated_at";

/// An `alert_rules` row.
#[derive(Debug, FromRow)]
pub(crate) struct RuleRow {
    id: String,
    condition: String,
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
    enabled: bool,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<RuleRow> for StoredRule {
    type Error = crate::store::Error;

    fn try_from(row: RuleRow) -> Result<StoredRule> {
        let condition: AlertCondition =
            serde_json::from_str(&row.condition).map_err(|e| corrupt("alert condition", e))?;
        let webhook = row.webhook_url.map(|url| Webhook {
            url,
            secret: row.webhook_secret.map(WebhookSecret::new),
        });
        Ok(StoredRule {
            rule: AlertRule {
                id: row.id,
                condition,
                webhook,
                enabled: row.enabled,
            },
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// The `alert_incidents` columns reads select, in [`IncidentRow`] order.
pub(crate) const INCIDENT_COLUMNS: &str = "id, rule_id, subject, summary, opened_at, resolved_at";

/// An `alert_incidents` row.
#[derive(Debug, FromRow)]
pub(crate) struct IncidentRow {
    id: String,
    rule_id: String,
    subject: String,
    summary: String,
    opened_at: i64,
    resolved_at: Option<i64>,
}

impl TryFrom<IncidentRow> for Incident {
    type Error = crate::store::Error;

    fn try_from(row: IncidentRow) -> Result<Incident> {
        Ok(Incident {
            id: parse_id(&row.id)?,
            rule: row.rule_id,
            subject: row.subject,
            summary: row.summary,
            opened_at: row.opened_at,
            resolved_at: row.resolved_at,
        })
    }
}
