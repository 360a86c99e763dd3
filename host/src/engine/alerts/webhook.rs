//! Webhook delivery: a built-in job of [`WEBHOOK_PLUGIN`] on the `maintenance` queue
//! posts one incident's news to its rule's webhook. The job's args hold the rule's id and
//! the incident, never the secret: the run reads the rule's URL and secret from the store
//! as it delivers. A network error or an answer other than 2xx fails the attempt, and the
//! job is tried again by [`retry_policy`].

use crate::engine::Shared;
use crate::model::alert::{Incident, IncidentId, signature};
use crate::model::retry::RetryPolicy;
use crate::model::{Job, JsonText, Millis, NewJob, now_ms, rfc3339};
use crate::store::{self, JobStore};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

/// The built-in plugin that delivers webhooks; clients cannot submit it.
pub const WEBHOOK_PLUGIN: &str = "orchestra.webhook";
/// The header that carries a body's signature: `sha256=<hex HMAC-SHA256>`.
const SIGNATURE_HEADER: &str = "X-Orchestra-Signature";
/// The header that names the event: `alert.fired` or `alert.resolved`.
const EVENT_HEADER: &str = "X-Orchestra-Event";

/// The queue deliveries wait in.
const QUEUE: &str = "maintenance";
/// Attempts per delivery: over an hour and a half of waits in all.
const ATTEMPTS: u32 = 8;
/// Longest wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a whole delivery.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The waits between a delivery's attempts, in seconds: short at first, for a blip,
/// then longer, for an outage.
pub(in crate::engine) fn retry_policy() -> RetryPolicy {
    RetryPolicy::Delays(vec![1, 5, 30, 120, 600, 1800, 3600])
}

/// An incident as webhooks see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct IncidentBody {
    id: IncidentId,
    subject: String,
    summary: String,
    opened_at: String,
    resolved_at: Option<String>,
}

/// A delivery job's args.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Delivery {
    /// `alert.fired` or `alert.resolved`.
    event: String,
    /// The rule whose webhook gets it.
    rule: String,
    /// The incident.
    incident: IncidentBody,
}

impl Delivery {
    fn new(event: &str, incident: &Incident) -> Delivery {
        Delivery {
            event: event.to_owned(),
            rule: incident.rule.clone(),
            incident: IncidentBody {
                id: incident.id,
                subject: incident.subject.clone(),
                summary: incident.summary.clone(),
                opened_at: rfc3339::format(incident.opened_at),
                resolved_at: incident.resolved_at.map(rfc3339::format),
            },
        }
    }

    /// The body posted at `now`: the delivery and when it was sent.
    fn body(&self, now: Millis) -> Vec<u8> {
        let body = json!({
            "event": self.event,
            "rule": self.rule,
            "incident": self.incident,
            "sent_at": rfc3339::format(now),
        });
        body.to_string().into_bytes()
    }
}

/// Queues the delivery of `event` about `incident` to its rule's webhook.
pub(super) async fn enqueue(
    store: &dyn JobStore,
    event: &str,
    incident: &Incident,
    now: Millis,
) -> store::Result<()> {
    let args = JsonText::from_value(&json!(Delivery::new(event, incident)));
    let job = NewJob {
        max_attempts: ATTEMPTS,
        ..NewJob::new(WEBHOOK_PLUGIN, args, QUEUE)
    };
    store.enqueue(job, now).await?;
    Ok(())
}

/// Runs a delivery job: what was delivered, or why the attempt failed.
pub(in crate::engine) async fn deliver(shared: &Shared, job: &Job) -> Result<Value, String> {
    let delivery: Delivery = serde_json::from_str(job.args.as_str())
        .map_err(|e| format!("not a webhook delivery: {e}"))?;
    let rule = shared
        .store
        .alert_rule(&delivery.rule)
        .await
        .map_err(|e| e.to_string())?;
    let Some(webhook) = rule.and_then(|stored| stored.rule.webhook) else {
        return Ok(json!({"delivered": false, "reason": "the rule or its webhook is gone"}));
    };
    let body = delivery.body(now_ms());
    let signed = webhook
        .secret
        .as_ref()
        .map(|secret| signature(secret, &body));
    let event = delivery.event;
    let status = tokio::task::spawn_blocking(move || post(&webhook.url, &event, signed, &body))
        .await
        .map_err(|e| format!("the delivery stopped: {e}"))??;
    Ok(json!({"delivered": true, "status": status}))
}

/// Posts `body` to `url`; the answer's status when it is 2xx.
fn post(url: &str, event: &str, signed: Option<String>, body: &[u8]) -> Result<u16, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(TIMEOUT))
        .user_agent("orchestra")
        .build()
        .into();
    let mut request = agent
        .post(url)
        .header("content-type", "application/json")
        .header(EVENT_HEADER, event);
    if let Some(signed) = signed {
        request = request.header(SIGNATURE_HEADER, &signed);
    }
    let answer = request
        .send(body)
        .map_err(|e| format!("posting to the webhook failed: {e}"))?;
    let status = answer.status();
    if status.is_success() {
        Ok(status.as_u16())
    } else {
        Err(format!("the webhook answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::new_job_id;

    #[test]
    fn a_delivery_carries_the_incident_but_no_secret_and_its_body_says_when_it_was_sent() {
        let incident = Incident {
            id: new_job_id(),
            rule: "depth".into(),
            subject: "default".into(),
            summary: "queue default has 3 jobs waiting, over 2".into(),
            opened_at: 1_700_000_000_000,
            resolved_at: Some(1_700_000_060_000),
        };
        let delivery = Delivery::new("alert.resolved", &incident);
        let args = serde_json::to_value(&delivery).unwrap();
        assert_eq!(
            args.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["event", "incident", "rule"]
        );
        let body: Value = serde_json::from_slice(&delivery.body(1_700_000_061_000)).unwrap();
        assert_eq!(
            body,
            json!({
                "event": "alert.resolved",
                "rule": "depth",
                "incident": {
                    "id": incident.id,
                    "subject": "default",
                    "summary": "queue default has 3 jobs waiting, over 2",
                    "opened_at": "2023-11-14T22:13:20.000Z",
                    "resolved_at": "2023-11-14T22:14:20.000Z",
                },
                "sent_at": "2023-11-14T22:14:21.000Z",
            })
        );
    }
}
