//! Answers about alert rules and their incidents.

use crate::model::alert::{AlertCondition, Incident, IncidentId};
use crate::model::rfc3339;
use crate::store::alerts::RuleInfo;
use serde::Serialize;
use utoipa::ToSchema;

/// A rule's webhook as shown: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookView {
    /// Where incidents are posted; to a `read` token, only the URL's scheme and host,
    /// since its path or query may carry the receiving service's token.
    pub(crate) url: String,
    /// Whether bodies are signed (`X-Orchestra-Signature`).
    pub(crate) has_secret: bool,
}

/// An alert rule: each of `GET /api/alerts`, and `PUT /api/alerts/{id}` (201 when new,
/// 200 when replaced; with a `warning` when deliveries would wait in a queue no worker
/// serves, see [`super::Warned`]).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AlertView {
    /// Its id.
    pub(crate) id: String,
    /// What it watches: `{"kind": ..., ...}`.
    pub(crate) condition: AlertCondition,
    /// Where its incidents are posted; `null` when only logged and published.
    pub(crate) webhook: Option<WebhookView>,
    /// Whether it is evaluated.
    pub(crate) enabled: bool,
    /// When it was first stored.
    #[schema(format = DateTime)]
    pub(crate) created_at: String,
    /// When it was last replaced.
    #[schema(format = DateTime)]
    pub(crate) updated_at: String,
}

impl AlertView {
    /// `rule` as shown; `full_url` for admins.
    pub(crate) fn new(rule: RuleInfo, full_url: bool) -> AlertView {
        let has_secret = rule.has_secret;
        let webhook = rule.webhook_url.map(|url| WebhookView {
            url: if full_url {
                url
            } else {
                origin(&url).to_owned()
            },
            has_secret,
        });
        AlertView {
            id: rule.id,
            condition: rule.condition,
            webhook,
            enabled: rule.enabled,
            created_at: rfc3339::format(rule.created_at),
            updated_at: rfc3339::format(rule.updated_at),
        }
    }
}

/// A URL's scheme and host, without its path or query.
fn origin(url: &str) -> &str {
    let start = url.find("://").map_or(0, |i| i + 3);
    url[start..]
        .find(['/', '?', '#'])
        .map_or(url, |end| &url[..start + end])
}

/// Every alert rule, by id (`GET /api/alerts`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AlertList {
    /// The rules.
    pub(crate) alerts: Vec<AlertView>,
}

/// An incident: one stretch of time a rule's condition held for one subject.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IncidentView {
    /// Its id.
    #[schema(value_type = Uuid)]
    pub(crate) id: IncidentId,
    /// The rule that fired.
    pub(crate) rule_id: String,
    /// What it is about: a job id, an agent id, a queue, a plugin, or the runs a failure
    /// rate counts.
    pub(crate) subject: String,
    /// What was seen when it opened.
    pub(crate) summary: String,
    /// When it opened.
    #[schema(format = DateTime)]
    pub(crate) opened_at: String,
    /// When its condition cleared; `null` while open.
    #[schema(format = DateTime)]
    pub(crate) resolved_at: Option<String>,
}

impl From<Incident> for IncidentView {
    fn from(incident: Incident) -> Self {
        IncidentView {
            id: incident.id,
            rule_id: incident.rule,
            subject: incident.subject,
            summary: incident.summary,
            opened_at: rfc3339::format(incident.opened_at),
            resolved_at: incident.resolved_at.map(rfc3339::format),
        }
    }
}

/// Incidents, newest first (`GET /api/alerts/incidents`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IncidentList {
    /// The incidents.
    pub(crate) incidents: Vec<IncidentView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_leaves_out_the_path_and_query() {
        assert_eq!(
            origin("https://hooks.example.com/services/T0/B0/secret"),
            "https://hooks.example.com"
        );
        assert_eq!(
            origin("http://127.0.0.1:9000?token=x"),
            "http://127.0.0.1:9000"
        );
        assert_eq!(origin("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
    }
}
