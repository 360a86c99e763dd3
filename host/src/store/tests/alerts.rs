//! Conformance: alert rules are stored with their secrets and replaced; at most one
//! incident is open per rule and subject; ended runs, ready jobs and job states are
//! read as the evaluator needs them.

use super::*;
use crate::model::alert::{AlertCondition, AlertRule, Incident, Webhook, WebhookSecret};
use crate::store::alerts::{IncidentFilter, RunCounts, RunScope, Waiting};

fn rule(id: &str, above: u64) -> AlertRule {
    AlertRule {
        id: id.into(),
        condition: AlertCondition::QueueDepth {
            queue: "default".into(),
            above,
        },
        webhook: Some(Webhook {
            url: "https://example.com/hook".into(),
            secret: Some(WebhookSecret::new("0123456789abcdef".into())),
        }),
        enabled: true,
    }
}

fn incident(rule: &str, subject: &str, at: Millis) -> Incident {
    Incident {
        id: uuid::Uuid::now_v7(),
        rule: rule.into(),
        subject: subject.into(),
        summary: format!("{subject} is wrong"),
        opened_at: at,
        resolved_at: None,
    }
}

pub(super) async fn check_alert_rules_are_stored_replaced_and_deleted(store: &dyn JobStore) {
    assert!(store.put_alert_rule(rule("depth", 5), NOW).await.unwrap());
    assert!(store.put_alert_rule(rule("another", 1), NOW).await.unwrap());
    let mut replaced = rule("depth", 9);
    replaced.webhook = None;
    replaced.enabled = false;
    assert!(
        !store
            .put_alert_rule(replaced.clone(), NOW + 5)
            .await
            .unwrap(),
        "a rule of that id exists"
    );
    let rules = store.alert_rules().await.unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r.rule.id.as_str()).collect();
    assert_eq!(ids, ["another", "depth"]);
    let stored = store.alert_rule("depth").await.unwrap().expect("stored");
    assert_eq!(stored.rule, replaced);
    assert_eq!((stored.created_at, stored.updated_at), (NOW, NOW + 5));
    assert_eq!(
        rules[0].rule,
        rule("another", 1),
        "kept whole, its secret included"
    );
    assert!(store.delete_alert_rule("depth").await.unwrap());
    assert!(!store.delete_alert_rule("depth").await.unwrap());
    assert!(store.alert_rule("depth").await.unwrap().is_none());
}

pub(super) async fn check_one_incident_is_open_per_rule_and_subject(store: &dyn JobStore) {
    let first = incident("depth", "default", NOW);
    assert!(store.open_incident(&first).await.unwrap());
    let twin = incident("depth", "default", NOW + 1);
    assert!(
        !store.open_incident(&twin).await.unwrap(),
        "one is open already"
    );
    let other = incident("depth", "other", NOW + 2);
    assert!(store.open_incident(&other).await.unwrap());
    assert!(store.resolve_incident(first.id, NOW + 3).await.unwrap());
    assert!(!store.resolve_incident(first.id, NOW + 4).await.unwrap());
    let again = incident("depth", "default", NOW + 5);
    assert!(
        store.open_incident(&again).await.unwrap(),
        "a resolved incident does not hold its subject"
    );
    let listed = |open, limit| store.incidents(IncidentFilter { open, limit });
    let ids = |incidents: Vec<Incident>| incidents.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(
        ids(listed(None, 10).await.unwrap()),
        [again.id, other.id, first.id],
        "newest first"
    );
    assert_eq!(
        ids(listed(Some(true), 10).await.unwrap()),
        [again.id, other.id]
    );
    assert_eq!(ids(listed(None, 1).await.unwrap()), [again.id]);
    let resolved = listed(Some(false), 10).await.unwrap();
    assert_eq!(
        resolved,
        [Incident {
            resolved_at: Some(NOW + 3),
            ..first
        }]
    );
    assert_eq!(
        store.delete_resolved_incidents(NOW + 3, 10).await.unwrap(),
        0
    );
    assert_eq!(
        store.delete_resolved_incidents(NOW + 4, 10).await.unwrap(),
        1
    );
    assert_eq!(
        ids(listed(None, 10).await.unwrap()),
        [again.id, other.id],
        "open incidents stay"
    );
}

pub(super) async fn check_ended_runs_are_counted_with_their_failures(store: &dyn JobStore) {
    for _ in 0..3 {
        add(store, new_job("default", 0)).await;
    }
    add(store, NewJob::new("other", raw(json!({})), "default")).await;
    add(store, new_job("elsewhere", 0)).await;
    let done = claim_one(store, NOW).await;
    finish(store, &done, true).await;
    let retried = claim_one(store, NOW).await;
    let retry = failure(ErrorKind::Retryable, AfterFailure::RetryAt(NOW + 60_000));
    store
        .fail(retried.job.id, retried.lease, retry, NOW + 10)
        .await
        .unwrap();
    let failed = claim_one(store, NOW).await;
    store
        .fail(
            failed.job.id,
            failed.lease,
            failure(ErrorKind::Fatal, AfterFailure::Fail),
            NOW + 20,
        )
        .await
        .unwrap();
    let given_up = claim_one(store, NOW).await;
    store.release(OWNER, NOW + 30).await.unwrap();
    assert_eq!(given_up.job.plugin, "other");
    let elsewhere = store
        .claim(&claim_params(&["elsewhere"], 1), NOW)
        .await
        .unwrap();
    finish(store, &elsewhere[0], false).await;

    let counts = |scope, since| store.runs_since(scope, since);
    assert_eq!(
        counts(RunScope::default(), NOW).await.unwrap(),
        RunCounts {
            ended: 4,
            failed: 3
        },
        "a retry is a failed run; a run given up at shutdown did not end"
    );
    let echo = RunScope {
        plugin: Some("echo"),
        queue: Some("default"),
    };
    assert_eq!(
        counts(echo, NOW).await.unwrap(),
        RunCounts {
            ended: 3,
            failed: 2
        }
    );
    assert_eq!(
        counts(echo, NOW + 15).await.unwrap(),
        RunCounts {
            ended: 1,
            failed: 1
        },
        "only runs that ended in the window"
    );
    let queue = RunScope {
        plugin: None,
        queue: Some("elsewhere"),
    };
    assert_eq!(
        counts(queue, NOW).await.unwrap(),
        RunCounts {
            ended: 1,
            failed: 1
        }
    );
    let nothing = RunScope {
        plugin: Some("other"),
        queue: None,
    };
    assert_eq!(counts(nothing, NOW).await.unwrap(), RunCounts::default());
}

pub(super) async fn check_ready_jobs_and_job_states_are_read(store: &dyn JobStore) {
    let first = add(store, new_job("default", 0)).await;
    let mut due_later = new_job("default", 0);
    due_later.run_at = Some(NOW + 5_000);
    let later = add(store, due_later).await;
    let second = store
        .enqueue(new_job("default", 0), NOW + 10)
        .await
        .unwrap()
        .job;
    assert_eq!(
        store.waiting("default").await.unwrap(),
        Waiting {
            jobs: 2,
            oldest_run_at: Some(NOW)
        },
        "scheduled jobs do not wait in the queue yet"
    );
    assert_eq!(store.waiting("empty").await.unwrap(), Waiting::default());
    let gone = new_job_id();
    let mut states = store
        .job_states(&[first.id, later.id, second.id, gone])
        .await
        .unwrap();
    states.sort_by_key(|(id, _)| *id);
    let expected = [
        (first.id, JobState::Enqueued),
        (later.id, JobState::Scheduled),
        (second.id, JobState::Enqueued),
    ];
    assert_eq!(states, expected, "unknown jobs are left out");
}
