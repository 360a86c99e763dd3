//! The store conformance suite: every `check_*` states one behaviour any [`JobStore`]
//! must have. Each backend runs all of them (see the bottom of this file).

mod alerts;
mod changes;
mod hosts;
mod search;
mod search_index;
mod stats;
mod tokens;

use super::agents::{Acquired, ExecRecord, NewTask, TaskFilter};
use super::*;
use crate::model::{
    ErrorKind, JobError, JobLinks, JobRef, JobState, JsonText, LogLine, MAX_LINKED_JOBS, Progress,
    StepRef, StoredLogLine, Usage, new_job_id,
};
use alerts::*;
use changes::*;
use search::*;
use serde_json::json;
use stats::*;
use std::sync::Arc;
use tokens::*;

const NOW: Millis = 1_700_000_000_000;
const OWNER: &str = "host-a";

fn new_job(queue: &str, priority: i32) -> NewJob {
    NewJob {
        priority,
        ..NewJob::new("echo", JsonText::from_value(&json!({"n": 1})), queue)
    }
}

/// Job counts per state of `queue`.
async fn counts(store: &dyn JobStore, queue: &str) -> Vec<(JobState, u64)> {
    let queues = store.queues().await.unwrap();
    let info = queues.into_iter().find(|q| q.name == queue);
    let mut counts = info.map(|q| q.counts).unwrap_or_default();
    counts.sort_by_key(|(state, _)| state.as_str());
    counts
}

fn claim_params(queues: &[&str], limit: u32) -> ClaimParams {
    ClaimParams {
        queues: queues.iter().map(|q| q.to_string()).collect(),
        limit,
        owner: OWNER.into(),
        lease_until: NOW + 30_000,
        parked_agents: Vec::new(),
        waiting_plugins: Vec::new(),
    }
}

/// A result as the executor hands it over: JSON text.
fn raw(value: serde_json::Value) -> JsonText {
    JsonText::from_value(&value)
}

fn completion() -> Completion {
    Completion {
        result: raw(json!({"ok": true})),
        plugin_digest: "d1".into(),
        usage: Usage {
            fuel_consumed: 10,
            wall_ms: 2,
            memory_peak_bytes: 65536,
        },
    }
}

fn failure(kind: ErrorKind, then: AfterFailure) -> Failure {
    Failure {
        error: JobError::new(kind, "boom"),
        then,
        plugin_digest: Some("d1".into()),
        usage: Usage::default(),
    }
}

/// Stores a new job at `NOW`.
async fn add(store: &dyn JobStore, job: NewJob) -> Job {
    store.enqueue(job, NOW).await.unwrap().job
}

async fn state_of(store: &dyn JobStore, id: JobId) -> JobState {
    store.get(id).await.unwrap().expect("job exists").job.state
}

async fn claim_one(store: &dyn JobStore, now: Millis) -> Claimed {
    let mut claimed = store
        .claim(&claim_params(&["default"], 1), now)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "one job should be ready");
    claimed.remove(0)
}

async fn check_enqueue_records_state_and_history(store: &dyn JobStore) {
    let job = add(store, new_job("default", 0)).await;
    assert_eq!(job.state, JobState::Enqueued);
    let detail = store.get(job.id).await.unwrap().unwrap();
    assert_eq!(detail.job, job);
    assert_eq!(detail.history.len(), 1);
    assert_eq!(detail.history[0].state, JobState::Enqueued);
    assert!(store.get(new_job_id()).await.unwrap().is_none());
}

async fn check_future_jobs_wait_until_promoted(store: &dyn JobStore) {
    let mut later = new_job("default", 0);
    later.run_at = Some(NOW + 5_000);
    let job = add(store, later).await;
    assert_eq!(job.state, JobState::Scheduled);
    assert!(
        store
            .claim(&claim_params(&["default"], 10), NOW)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .promote_due(NOW + 4_999, 100)
            .await
            .unwrap()
            .jobs
            .len(),
        0
    );
    assert_eq!(
        store
            .promote_due(NOW + 5_000, 100)
            .await
            .unwrap()
            .jobs
            .len(),
        1
    );
    assert_eq!(state_of(store, job.id).await, JobState::Enqueued);
}

async fn check_claim_order_is_queue_then_priority_then_fifo(store: &dyn JobStore) {
    let low = add(store, new_job("default", -5)).await;
    let first = add(store, new_job("default", 10)).await;
    let second = add(store, new_job("default", 10)).await;
    let urgent = add(store, new_job("high-priority", -100)).await;
    let other = add(store, new_job("elsewhere", 100)).await;
    let claimed = store
        .claim(&claim_params(&["high-priority", "default"], 10), NOW)
        .await
        .unwrap();
    let ids: Vec<JobId> = claimed.iter().map(|c| c.job.id).collect();
    assert_eq!(ids, [urgent.id, first.id, second.id, low.id]);
    assert_eq!(state_of(store, other.id).await, JobState::Enqueued);
    let limited = store
        .claim(&claim_params(&["elsewhere"], 0), NOW)
        .await
        .unwrap();
    assert!(limited.is_empty());
}

async fn check_claim_takes_a_job_once_and_counts_the_attempt(store: &dyn JobStore) {
    let job = add(store, new_job("default", 0)).await;
    let claimed = claim_one(store, NOW + 1).await;
    assert_eq!(claimed.job.id, job.id);
    assert_eq!(claimed.job.state, JobState::Processing);
    assert_eq!(claimed.job.attempt, 1);
    assert_eq!(claimed.job.started_at, Some(NOW + 1));
    assert!(
        store
            .claim(&claim_params(&["default"], 5), NOW + 2)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn check_completion_is_guarded_by_the_lease(store: &dyn JobStore) {
    store.enqueue(new_job("default", 0), NOW).await.unwrap();
    let claimed = claim_one(store, NOW).await;
    let id = claimed.job.id;
    let wrong = store
        .complete(id, new_job_id(), completion(), NOW + 1)
        .await;
    assert!(matches!(wrong, Err(Error::LeaseLost { .. })), "{wrong:?}");
    store
        .complete(id, claimed.lease, completion(), NOW + 2)
        .await
        .unwrap();
    let job = store.get(id).await.unwrap().unwrap().job;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.result, Some(json!({"ok": true})));
    assert_eq!(job.finished_at, Some(NOW + 2));
    assert_eq!(job.plugin_digest.as_deref(), Some("d1"));
    assert_eq!(job.usage, Some(completion().usage));
    let again = store
        .complete(id, claimed.lease, completion(), NOW + 3)
        .await;
    assert!(
        matches!(again, Err(Error::LeaseLost { .. })),
        "completing twice: {again:?}"
    );
}

async fn check_failures_retry_or_end(store: &dyn JobStore) {
    let retried = add(store, new_job("default", 0)).await;
    let claimed = claim_one(store, NOW).await;
    let retry = failure(ErrorKind::Retryable, AfterFailure::RetryAt(NOW + 60_000));
    store
        .fail(retried.id, claimed.lease, retry, NOW + 1)
        .await
        .unwrap();
    let job = store.get(retried.id).await.unwrap().unwrap().job;
    assert_eq!(job.state, JobState::Scheduled);
    assert_eq!(job.run_at, NOW + 60_000);
    assert_eq!(job.finished_at, None);
    assert_eq!(job.error.map(|e| e.kind), Some(ErrorKind::Retryable));

    let dead = add(store, new_job("default", 0)).await;
    let claimed = claim_one(store, NOW).await;
    let fatal = failure(ErrorKind::Fatal, AfterFailure::Fail);
    store
        .fail(dead.id, claimed.lease, fatal, NOW + 1)
        .await
        .unwrap();
    let detail = store.get(dead.id).await.unwrap().unwrap();
    assert_eq!(detail.job.state, JobState::Failed);
    assert_eq!(detail.job.finished_at, Some(NOW + 1));
    let states: Vec<JobState> = detail.history.iter().map(|t| t.state).collect();
    assert_eq!(
        states,
        [JobState::Enqueued, JobState::Processing, JobState::Failed]
    );
}

async fn check_expired_leases_are_found_and_failing_them_uses_the_attempt(store: &dyn JobStore) {
    store.enqueue(new_job("default", 0), NOW).await.unwrap();
    let claimed = claim_one(store, NOW).await;
    assert!(
        store
            .expired_leases(NOW + 29_999, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let expired = store.expired_leases(NOW + 30_001, 100).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].lease, claimed.lease);
    assert_eq!(expired[0].job.id, claimed.job.id);
    let lost = failure(ErrorKind::LeaseExpired, AfterFailure::RetryAt(NOW + 31_000));
    store
        .fail(claimed.job.id, expired[0].lease, lost, NOW + 30_001)
        .await
        .unwrap();
    let job = store.get(claimed.job.id).await.unwrap().unwrap().job;
    assert_eq!((job.state, job.attempt), (JobState::Scheduled, 1));
    assert_eq!(job.error.map(|e| e.kind), Some(ErrorKind::LeaseExpired));
    let late = store
        .complete(job.id, claimed.lease, completion(), NOW + 30_002)
        .await;
    assert!(matches!(late, Err(Error::LeaseLost { .. })), "{late:?}");
    assert!(
        store
            .expired_leases(NOW + 60_000, 100)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .promote_due(NOW + 31_000, 100)
        .await
        .unwrap()
        .jobs
        .len();
    let again = claim_one(store, NOW + 31_001).await;
    assert_eq!(again.job.attempt, 2);
}

async fn check_heartbeat_extends_only_the_leases_given(store: &dyn JobStore) {
    store.enqueue(new_job("default", 0), NOW).await.unwrap();
    store.enqueue(new_job("default", 0), NOW).await.unwrap();
    let live = claim_one(store, NOW).await;
    let dropped = claim_one(store, NOW).await;
    let given = [(live.job.id, live.lease), (dropped.job.id, new_job_id())];
    let renewal = store.heartbeat(&given, NOW + 90_000).await.unwrap();
    assert_eq!((renewal.renewed, renewal.cancel_asked), (1, vec![]));
    let none = store.heartbeat(&[], NOW + 90_000).await.unwrap();
    assert_eq!(none, Renewal::default());
    store.cancel(live.job.id, NOW).await.unwrap();
    let renewal = store.heartbeat(&given, NOW + 90_000).await.unwrap();
    assert_eq!(
        (renewal.renewed, renewal.cancel_asked),
        (1, vec![live.job.id]),
        "the holder of a job asked to cancel hears it again with each heartbeat"
    );
    let expired = store.expired_leases(NOW + 60_000, 100).await.unwrap();
    let ids: Vec<JobId> = expired.iter().map(|c| c.job.id).collect();
    assert_eq!(ids, [dropped.job.id]);
    assert_eq!(
        store.expired_leases(NOW + 90_001, 100).await.unwrap().len(),
        2
    );
}

async fn check_release_returns_the_owners_jobs(store: &dyn JobStore) {
    store.enqueue(new_job("default", 0), NOW).await.unwrap();
    let claimed = claim_one(store, NOW).await;
    assert_eq!(
        store.release("someone-else", NOW).await.unwrap().jobs.len(),
        0
    );
    assert_eq!(store.release(OWNER, NOW).await.unwrap().jobs.len(), 1);
    let job = store.get(claimed.job.id).await.unwrap().unwrap().job;
    assert_eq!((job.state, job.attempt), (JobState::Enqueued, 0));
}

async fn check_cancel_waiting_and_running_jobs(store: &dyn JobStore) {
    let waiting = add(store, new_job("default", 0)).await;
    assert_eq!(
        store.cancel(waiting.id, NOW).await.unwrap().value,
        CancelOutcome::Cancelled
    );
    assert_eq!(state_of(store, waiting.id).await, JobState::Cancelled);
    let again = store.cancel(waiting.id, NOW).await;
    assert!(matches!(again, Err(Error::Conflict(_))), "{again:?}");
    let missing = store.cancel(new_job_id(), NOW).await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");

    let running = add(store, new_job("default", 0)).await;
    let claimed = claim_one(store, NOW).await;
    assert_eq!(
        store.cancel(running.id, NOW).await.unwrap().value,
        CancelOutcome::Requested
    );
    // Whatever the run's failure, a requested cancellation wins.
    let retry = failure(ErrorKind::Trap, AfterFailure::RetryAt(NOW + 1_000));
    store
        .fail(running.id, claimed.lease, retry, NOW + 1)
        .await
        .unwrap();
    assert_eq!(state_of(store, running.id).await, JobState::Cancelled);
}

async fn check_retry_resets_failed_jobs_only(store: &dyn JobStore) {
    let job = add(store, new_job("default", 0)).await;
    let conflict = store.retry(job.id, NOW).await;
    assert!(matches!(conflict, Err(Error::Conflict(_))), "{conflict:?}");
    let claimed = claim_one(store, NOW).await;
    store
        .fail(
            job.id,
            claimed.lease,
            failure(ErrorKind::Fatal, AfterFailure::Fail),
            NOW,
        )
        .await
        .unwrap();
    let retried = store.retry(job.id, NOW + 5).await.unwrap().value;
    assert_eq!((retried.state, retried.attempt), (JobState::Enqueued, 0));
    assert_eq!(claim_one(store, NOW + 6).await.job.attempt, 1);
}

async fn check_delete_removes_everything_but_running_jobs(store: &dyn JobStore) {
    let job = add(store, new_job("default", 0)).await;
    let claimed = claim_one(store, NOW).await;
    let busy = store.delete(job.id, NOW).await;
    assert!(matches!(busy, Err(Error::Conflict(_))), "{busy:?}");
    store
        .complete(job.id, claimed.lease, completion(), NOW)
        .await
        .unwrap();
    store.delete(job.id, NOW).await.unwrap();
    assert!(store.get(job.id).await.unwrap().is_none());
    assert!(matches!(
        store.delete(job.id, NOW).await,
        Err(Error::NotFound(_))
    ));
}

async fn check_progress_and_logs_land_before_completion(store: &dyn JobStore) {
    let job = add(store, new_job("default", 0)).await;
    let claimed = claim_one(store, NOW).await;
    for percent in [10, 60] {
        let progress = Progress {
            percent,
            message: format!("at {percent}"),
            updated_at: NOW + i64::from(percent),
        };
        store.record_progress(job.id, claimed.lease, progress);
    }
    let stale = Progress {
        percent: 99,
        message: "from a lost lease".into(),
        updated_at: NOW,
    };
    store.record_progress(job.id, new_job_id(), stale);
    for n in 0..3 {
        let line = LogLine {
            at: NOW + n,
            level: "info".into(),
            message: format!("line {n}"),
        };
        store.append_logs(job.id, 1, vec![line]);
    }
    store
        .complete(job.id, claimed.lease, completion(), NOW + 100)
        .await
        .unwrap();
    let detail = store.get(job.id).await.unwrap().unwrap();
    let progress = detail.job.progress.expect("progress recorded");
    assert_eq!((progress.percent, progress.message.as_str()), (60, "at 60"));
    let lines: Vec<&str> = detail
        .logs
        .iter()
        .map(|l| l.line.message.as_str())
        .collect();
    assert_eq!(lines, ["line 0", "line 1", "line 2"]);
}

/// Queues `count` lines `{prefix} {n}` of `attempt`.
fn log_lines(store: &dyn JobStore, id: JobId, attempt: u32, prefix: &str, count: usize) {
    let lines = (0..count)
        .map(|n| LogLine {
            at: NOW,
            level: "info".into(),
            message: format!("{prefix} {n}"),
        })
        .collect();
    store.append_logs(id, attempt, lines);
}

/// Every line of `id`'s log matching `attempt`, read in pages of `limit`.
async fn read_log(
    store: &dyn JobStore,
    id: JobId,
    attempt: Option<u32>,
    limit: u32,
) -> Vec<String> {
    let mut messages = Vec::new();
    let mut after = None;
    loop {
        let query = LogQuery {
            attempt,
            after,
            limit,
        };
        let page = store
            .logs(id, &query)
            .await
            .unwrap()
            .expect("the job exists");
        assert!(page.lines.len() <= limit as usize);
        messages.extend(page.lines.into_iter().map(|l| l.line.message));
        match page.next_cursor {
            Some(cursor) => after = Some(cursor),
            None => return messages,
        }
    }
}

async fn check_logs_are_counted_per_attempt_and_paged_in_order(store: &dyn JobStore) {
    let job = add(store, new_job("default", 0)).await;
    let first = claim_one(store, NOW).await;
    log_lines(store, job.id, 1, "first", 3);
    let retry = failure(ErrorKind::Retryable, AfterFailure::RetryAt(NOW));
    store.fail(job.id, first.lease, retry, NOW).await.unwrap();
    store.promote_due(NOW, 10).await.unwrap().jobs.len();
    let second = claim_one(store, NOW).await;
    let many = DETAIL_LOG_LINES as usize + 5;
    log_lines(store, job.id, 2, "second", many);
    store
        .complete(job.id, second.lease, completion(), NOW)
        .await
        .unwrap();

    let detail = store.get(job.id).await.unwrap().unwrap();
    assert_eq!(
        detail.logs.len(),
        DETAIL_LOG_LINES as usize,
        "only the latest lines"
    );
    let last = detail.logs.last().unwrap();
    assert_eq!(
        (last.attempt, last.line.message.as_str()),
        (2, "second 104")
    );
    assert_eq!(detail.log_count, 3 + many as u64);
    let counts: Vec<(u32, u64)> = detail
        .log_counts
        .iter()
        .map(|c| (c.attempt, c.count))
        .collect();
    assert_eq!(counts, [(1, 3), (2, many as u64)]);

    let expected: Vec<String> = (0..3)
        .map(|n| format!("first {n}"))
        .chain((0..many).map(|n| format!("second {n}")))
        .collect();
    assert_eq!(read_log(store, job.id, None, 7).await, expected);
    assert_eq!(read_log(store, job.id, Some(1), 2).await, expected[..3]);
    assert_eq!(read_log(store, job.id, Some(2), 1000).await, expected[3..]);

    let page = |attempt, after| {
        let query = LogQuery {
            attempt,
            after,
            limit: 1,
        };
        async move { store.logs(job.id, &query).await.unwrap().unwrap().lines }
    };
    let in_first = page(Some(1), None).await[0].seq;
    let in_second = page(Some(2), None).await[0].seq;
    let messages = |lines: Vec<StoredLogLine>| -> Vec<String> {
        lines.into_iter().map(|l| l.line.message).collect()
    };
    assert_eq!(messages(page(Some(2), Some(in_first)).await), ["second 0"]);
    assert_eq!(messages(page(None, Some(in_first)).await), ["first 1"]);
    assert!(page(Some(1), Some(in_second)).await.is_empty());

    let foreign = LogQuery {
        attempt: None,
        after: Some(i64::MAX),
        limit: 10,
    };
    assert!(matches!(
        store.logs(job.id, &foreign).await,
        Err(Error::Invalid(_))
    ));
    assert!(store.logs(new_job_id(), &foreign).await.unwrap().is_none());
}

async fn check_list_pages_newest_first_with_filters(store: &dyn JobStore) {
    let mut ids = Vec::new();
    for n in 0..5 {
        let queue = if n % 2 == 0 { "even" } else { "odd" };
        ids.push(add(store, new_job(queue, 0)).await.id);
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut filter = JobFilter {
        limit: 2,
        ..JobFilter::default()
    };
    loop {
        let page = store.list(&filter).await.unwrap();
        seen.extend(page.jobs.iter().map(|j| j.id));
        match page.next_cursor {
            Some(cursor) => filter.before = Some(cursor),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let odd = store
        .list(&JobFilter {
            queue: Some("odd".into()),
            limit: 10,
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(odd.jobs.len(), 2);
    let scheduled = store
        .list(&JobFilter {
            state: Some(JobState::Scheduled),
            limit: 10,
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert!(scheduled.jobs.is_empty());
}

async fn check_queue_counts_and_batches(store: &dyn JobStore) {
    let jobs: Vec<NewJob> = (0..300).map(|_| new_job("bulk", 0)).collect();
    store.enqueue_many(jobs, NOW).await.unwrap();
    store.enqueue(new_job("other", 0), NOW).await.unwrap();
    assert_eq!(counts(store, "bulk").await, [(JobState::Enqueued, 300)]);
    assert_eq!(counts(store, "other").await, [(JobState::Enqueued, 1)]);
    let queues = store.queues().await.unwrap();
    let bulk = queues.iter().find(|q| q.name == "bulk").unwrap();
    assert_eq!(bulk.oldest_enqueued_at, Some(NOW));
    assert_eq!(bulk.settings, QueueSettings::default());
}

async fn check_concurrent_workers_run_each_job_once(store: Arc<dyn JobStore>) {
    let jobs: Vec<NewJob> = (0..3000).map(|_| new_job("default", 0)).collect();
    store.enqueue_many(jobs, NOW).await.unwrap();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut done = 0;
                loop {
                    let claimed = store
                        .claim(&claim_params(&["default"], 7), NOW)
                        .await
                        .unwrap();
                    if claimed.is_empty() {
                        return done;
                    }
                    for c in claimed {
                        let progress = Progress {
                            percent: 50,
                            message: String::new(),
                            updated_at: NOW,
                        };
                        store.record_progress(c.job.id, c.lease, progress);
                        store
                            .complete(c.job.id, c.lease, completion(), NOW)
                            .await
                            .unwrap();
                        done += 1;
                    }
                }
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.await.unwrap();
    }
    assert_eq!(total, 3000);
    assert_eq!(
        counts(store.as_ref(), "default").await,
        [(JobState::Succeeded, 3000)]
    );
}

async fn check_finished_jobs_are_counted_per_queue(store: &dyn JobStore) {
    add(store, new_job("default", 0)).await;
    add(store, new_job("default", 0)).await;
    add(store, new_job("other", 0)).await;
    let first = claim_one(store, NOW).await;
    finish(store, &first, true).await;
    let second = claim_one(store, NOW + 10).await;
    finish(store, &second, false).await;
    assert_eq!(
        store.finished_since(NOW).await.unwrap(),
        [("default".to_owned(), 2)],
        "succeeded and failed jobs count; waiting ones do not"
    );
    assert!(
        store.finished_since(NOW + 1).await.unwrap().is_empty(),
        "finish() stamps NOW"
    );
}

async fn check_unique_keys_dedupe_unfinished_jobs(store: &dyn JobStore) {
    let keyed = || NewJob {
        unique_key: Some("nightly".into()),
        ..new_job("default", 0)
    };
    let first = store.enqueue(keyed(), NOW).await.unwrap();
    assert!(first.created);
    let second = store.enqueue(keyed(), NOW).await.unwrap();
    assert!(!second.created);
    assert_eq!(second.job.id, first.job.id);
    let claimed = claim_one(store, NOW).await;
    assert!(
        !store.enqueue(keyed(), NOW).await.unwrap().created,
        "still running"
    );
    store
        .complete(claimed.job.id, claimed.lease, completion(), NOW)
        .await
        .unwrap();
    let after = store.enqueue(keyed(), NOW).await.unwrap();
    assert!(after.created, "a finished job frees its key");
    assert_ne!(after.job.id, first.job.id);
}

async fn check_paused_queues_run_nothing(store: &dyn JobStore) {
    store.enqueue(new_job("default", 0), NOW).await.unwrap();
    store.set_queue_paused("default", true).await.unwrap();
    assert!(
        store
            .claim(&claim_params(&["default"], 5), NOW)
            .await
            .unwrap()
            .is_empty()
    );
    let queues = store.queues().await.unwrap();
    assert!(
        queues
            .iter()
            .any(|q| q.name == "default" && q.settings.paused)
    );
    store.set_queue_paused("default", false).await.unwrap();
    claim_one(store, NOW).await;
}

async fn check_concurrency_caps_running_jobs(store: &dyn JobStore) {
    for _ in 0..5 {
        store.enqueue(new_job("capped", 0), NOW).await.unwrap();
    }
    store
        .set_queue_concurrency("capped", Some(2))
        .await
        .unwrap();
    let first = store
        .claim(&claim_params(&["capped"], 10), NOW)
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    assert!(
        store
            .claim(&claim_params(&["capped"], 10), NOW)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .complete(first[0].job.id, first[0].lease, completion(), NOW)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim(&claim_params(&["capped"], 10), NOW)
            .await
            .unwrap()
            .len(),
        1
    );
    store.set_queue_concurrency("capped", None).await.unwrap();
    assert_eq!(
        store
            .claim(&claim_params(&["capped"], 10), NOW)
            .await
            .unwrap()
            .len(),
        2
    );
}

fn continuation(parents: &[JobId], on: AwaitOn) -> NewJob {
    NewJob {
        parents: Some(Parents {
            ids: parents.to_vec(),
            on,
        }),
        ..new_job("default", 0)
    }
}

/// Runs a claimed job to `succeeded` or `failed`.
async fn finish(store: &dyn JobStore, claimed: &Claimed, succeed: bool) {
    if succeed {
        store
            .complete(claimed.job.id, claimed.lease, completion(), NOW)
            .await
            .unwrap();
    } else {
        let fatal = failure(ErrorKind::Fatal, AfterFailure::Fail);
        store
            .fail(claimed.job.id, claimed.lease, fatal, NOW)
            .await
            .unwrap();
    }
}

async fn check_continuations_wait_for_every_parent(store: &dyn JobStore) {
    let a = add(store, new_job("default", 0)).await;
    let b = add(store, new_job("default", 0)).await;
    let child = add(store, continuation(&[a.id, b.id], AwaitOn::Success)).await;
    assert_eq!(child.state, JobState::Awaiting);
    let first = claim_one(store, NOW).await;
    finish(store, &first, true).await;
    assert_eq!(
        state_of(store, child.id).await,
        JobState::Awaiting,
        "one parent left"
    );
    let second = claim_one(store, NOW).await;
    finish(store, &second, true).await;
    assert_eq!(state_of(store, child.id).await, JobState::Enqueued);
    assert_eq!(claim_one(store, NOW).await.job.id, child.id);
}

async fn check_a_failed_parent_cancels_a_success_continuation(store: &dyn JobStore) {
    let parent = add(store, new_job("default", 0)).await;
    let on_success = add(store, continuation(&[parent.id], AwaitOn::Success)).await;
    let grandchild = add(store, continuation(&[on_success.id], AwaitOn::Success)).await;
    let on_finish = add(store, continuation(&[parent.id], AwaitOn::Finish)).await;
    let claimed = claim_one(store, NOW).await;
    finish(store, &claimed, false).await;
    let cancelled = store.get(on_success.id).await.unwrap().unwrap();
    assert_eq!(cancelled.job.state, JobState::Cancelled);
    let reason = &cancelled.history.last().unwrap().reason;
    assert!(
        reason.contains(&parent.id.to_string()) && reason.contains("failed"),
        "{reason}"
    );
    assert_eq!(
        state_of(store, grandchild.id).await,
        JobState::Cancelled,
        "the cancel cascades"
    );
    assert_eq!(state_of(store, on_finish.id).await, JobState::Enqueued);
}

async fn check_continuations_of_finished_or_missing_parents(store: &dyn JobStore) {
    let done = add(store, new_job("default", 0)).await;
    let claimed = claim_one(store, NOW).await;
    finish(store, &claimed, true).await;
    let child = add(store, continuation(&[done.id], AwaitOn::Success)).await;
    assert_eq!(
        child.state,
        JobState::Enqueued,
        "its parent had already succeeded"
    );
    let missing = store
        .enqueue(continuation(&[new_job_id()], AwaitOn::Finish), NOW)
        .await;
    assert!(matches!(missing, Err(Error::Invalid(_))), "{missing:?}");
}

async fn check_batches_run_their_callbacks_once(store: &dyn JobStore) {
    let jobs: Vec<NewJob> = (0..50).map(|_| new_job("default", 0)).collect();
    let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    let batch = NewBatch {
        id: new_job_id(),
        description: "fifty".into(),
        on_success: Some(continuation(&ids, AwaitOn::Success)),
        on_complete: Some(continuation(&ids, AwaitOn::Finish)),
        jobs,
    };
    let batch_id = batch.id;
    store.create_batch(batch, NOW).await.unwrap();
    let claimed = store
        .claim(&claim_params(&["default"], 100), NOW)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 50, "the callbacks wait");
    for c in &claimed {
        finish(store, c, true).await;
    }
    let info = store.batch(batch_id).await.unwrap().unwrap();
    assert!(info.jobs.iter().all(|(_, s)| *s == JobState::Succeeded));
    assert_eq!(info.on_success.map(|c| c.1), Some(JobState::Enqueued));
    assert_eq!(info.on_complete.map(|c| c.1), Some(JobState::Enqueued));
    let callbacks = store
        .claim(&claim_params(&["default"], 100), NOW)
        .await
        .unwrap();
    assert_eq!(callbacks.len(), 2, "each callback runs once");
    assert!(store.batch(new_job_id()).await.unwrap().is_none());
}

async fn check_cancelling_a_batch(store: &dyn JobStore) {
    let jobs: Vec<NewJob> = (0..3).map(|_| new_job("default", 0)).collect();
    let batch = NewBatch {
        id: new_job_id(),
        description: String::new(),
        on_success: None,
        on_complete: None,
        jobs,
    };
    let batch_id = batch.id;
    store.create_batch(batch, NOW).await.unwrap();
    let running = claim_one(store, NOW).await;
    let interrupted = store.cancel_batch(batch_id, NOW).await.unwrap().value;
    assert_eq!(interrupted, [running.job.id]);
    let info = store.batch(batch_id).await.unwrap().unwrap();
    assert!(info.cancelled_at.is_some());
    let cancelled = info
        .jobs
        .iter()
        .filter(|(_, s)| *s == JobState::Cancelled)
        .count();
    assert_eq!(cancelled, 2, "{:?}", info.jobs);
}

/// A recurring job of `echo` that fires every 5 s (`NOW` is such a time), its jobs
/// marked with args `{"from": id}`.
fn every_5s(id: &str, misfire: Misfire) -> RecurringDefinition {
    RecurringDefinition {
        id: id.into(),
        schedule: crate::cron::Schedule::parse("*/5 * * * * *", "UTC").unwrap(),
        plugin: "echo".into(),
        args: json!({"from": id}),
        queue: "default".into(),
        priority: 0,
        max_attempts: 3,
        misfire,
    }
}

/// The jobs recurring job `id` enqueued, oldest first, each with the reason it was
/// enqueued for.
async fn jobs_of(store: &dyn JobStore, id: &str) -> Vec<(Job, String)> {
    let filter = JobFilter {
        limit: 1000,
        ..JobFilter::default()
    };
    let mut found = Vec::new();
    for job in store.list(&filter).await.unwrap().jobs.into_iter().rev() {
        if job.args.to_value()["from"] == id {
            let detail = store.get(job.id).await.unwrap().unwrap();
            found.push((job, detail.history[0].reason.clone()));
        }
    }
    found
}

async fn check_recurring_jobs_fire_once_per_occurrence(store: &dyn JobStore) {
    let put = store
        .put_recurring(every_5s("tick", Misfire::RunOnce), NOW)
        .await
        .unwrap();
    assert!(put.created);
    assert_eq!(put.recurring.next_run_at, Some(NOW + 5_000));
    assert_eq!(
        store.fire_recurring(NOW + 4_999).await.unwrap().value.len(),
        0
    );
    let mut fired = 0;
    for now in [NOW + 5_000, NOW + 5_000, NOW + 5_300, NOW + 9_999] {
        fired += store.fire_recurring(now).await.unwrap().value.len();
    }
    assert_eq!(fired, 1, "one job for the occurrence at +5 s");
    assert_eq!(
        store
            .fire_recurring(NOW + 10_100)
            .await
            .unwrap()
            .value
            .len(),
        1
    );
    assert_eq!(
        store
            .fire_recurring(NOW + 10_200)
            .await
            .unwrap()
            .value
            .len(),
        0
    );
    let jobs = jobs_of(store, "tick").await;
    let reasons: Vec<&str> = jobs.iter().map(|(_, reason)| reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "recurring tick at 2023-11-14T22:13:25.000Z",
            "recurring tick at 2023-11-14T22:13:30.000Z"
        ]
    );
    let (last, _) = &jobs[1];
    assert_eq!(
        (last.state, last.run_at, last.plugin.as_str()),
        (JobState::Enqueued, NOW + 10_000, "echo")
    );
    let tick = store.recurring("tick").await.unwrap().unwrap();
    assert_eq!(tick.last_job_id, Some(last.id));
    assert_eq!(tick.last_job_state, Some(JobState::Enqueued));
    assert_eq!(tick.last_run_at, Some(NOW + 10_000));
    assert_eq!(tick.next_run_at, Some(NOW + 15_000));
}

async fn check_missed_recurring_occurrences_run_once_or_never(store: &dyn JobStore) {
    for (id, misfire) in [("once", Misfire::RunOnce), ("skip", Misfire::Skip)] {
        store
            .put_recurring(every_5s(id, misfire), NOW)
            .await
            .unwrap();
    }
    // Down for an hour: 720 occurrences missed.
    let back = NOW + 3_600_000 + 1_234;
    assert_eq!(store.fire_recurring(back).await.unwrap().value.len(), 1);
    assert_eq!(
        store.fire_recurring(back + 100).await.unwrap().value.len(),
        0
    );
    let once = jobs_of(store, "once").await;
    assert_eq!(
        once.len(),
        1,
        "run_once: one job for all missed occurrences"
    );
    assert_eq!(once[0].0.run_at, back);
    assert!(
        once[0].1.ends_with("missed since 2023-11-14T22:13:25.000Z"),
        "{}",
        once[0].1
    );
    assert!(jobs_of(store, "skip").await.is_empty(), "skip: no job");
    for id in ["once", "skip"] {
        let recurring = store.recurring(id).await.unwrap().unwrap();
        assert_eq!(recurring.next_run_at, Some(NOW + 3_605_000), "{id}");
    }
    let skip = store.recurring("skip").await.unwrap().unwrap();
    assert_eq!((skip.last_job_id, skip.last_run_at), (None, None));
}

async fn check_paused_recurring_jobs_do_not_fire_and_resume_from_now(store: &dyn JobStore) {
    store
        .put_recurring(every_5s("p", Misfire::RunOnce), NOW)
        .await
        .unwrap();
    let paused = store
        .set_recurring_paused("p", true, NOW + 1)
        .await
        .unwrap();
    assert!(paused.paused);
    assert_eq!(paused.next_run_at, None);
    assert_eq!(
        store
            .fire_recurring(NOW + 60_000)
            .await
            .unwrap()
            .value
            .len(),
        0
    );
    let triggered = store
        .trigger_recurring("p", NOW + 61_000)
        .await
        .unwrap()
        .value;
    assert_eq!(triggered.state, JobState::Enqueued);
    let after_trigger = store.recurring("p").await.unwrap().unwrap();
    assert_eq!(after_trigger.last_job_id, Some(triggered.id));
    assert_eq!(after_trigger.last_run_at, Some(NOW + 61_000));
    assert_eq!(
        after_trigger.next_run_at, None,
        "a trigger leaves the schedule"
    );
    let resumed = store
        .set_recurring_paused("p", false, NOW + 62_000)
        .await
        .unwrap();
    assert!(!resumed.paused);
    assert_eq!(
        resumed.next_run_at,
        Some(NOW + 65_000),
        "no burst of the paused time"
    );
    assert_eq!(
        store
            .fire_recurring(NOW + 62_000)
            .await
            .unwrap()
            .value
            .len(),
        0
    );
    assert_eq!(
        store
            .fire_recurring(NOW + 65_000)
            .await
            .unwrap()
            .value
            .len(),
        1
    );
    let reasons: Vec<String> = jobs_of(store, "p")
        .await
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(reasons.len(), 2);
    assert!(reasons[0].contains("triggered"), "{reasons:?}");
    assert_eq!(reasons[1], "recurring p at 2023-11-14T22:14:25.000Z");
    for missing in [
        store
            .set_recurring_paused("nope", true, NOW)
            .await
            .unwrap_err(),
        store.trigger_recurring("nope", NOW).await.unwrap_err(),
    ] {
        assert!(matches!(missing, Error::RecurringNotFound(ref id) if id == "nope"));
    }
}

async fn check_put_recurring_updates_and_recomputes_the_schedule(store: &dyn JobStore) {
    store
        .put_recurring(every_5s("r", Misfire::RunOnce), NOW)
        .await
        .unwrap();
    // Same schedule, new args: the pending (now due) occurrence stays.
    let mut changed = every_5s("r", Misfire::Skip);
    changed.args = json!({"from": "r", "v": 2});
    let put = store
        .put_recurring(changed.clone(), NOW + 7_000)
        .await
        .unwrap();
    assert!(!put.created);
    assert_eq!(put.recurring.next_run_at, Some(NOW + 5_000));
    assert_eq!(put.recurring.definition, changed);
    // A new schedule waits for its first occurrence after now: 22:14:00.
    changed.schedule = crate::cron::Schedule::parse("0 * * * * *", "UTC").unwrap();
    let put = store
        .put_recurring(changed.clone(), NOW + 7_000)
        .await
        .unwrap();
    assert_eq!(put.recurring.next_run_at, Some(NOW + 40_000));
    let all = store.list_recurring().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].definition.schedule.expression(), "0 * * * * *");
    assert_eq!(
        store
            .fire_recurring(NOW + 39_999)
            .await
            .unwrap()
            .value
            .len(),
        0
    );
    assert_eq!(
        store
            .fire_recurring(NOW + 40_000)
            .await
            .unwrap()
            .value
            .len(),
        1
    );
    let jobs = jobs_of(store, "r").await;
    assert_eq!(jobs[0].0.args.to_value(), json!({"from": "r", "v": 2}));
}

async fn check_delete_recurring_keeps_its_jobs(store: &dyn JobStore) {
    store
        .put_recurring(every_5s("d", Misfire::RunOnce), NOW)
        .await
        .unwrap();
    assert_eq!(
        store.fire_recurring(NOW + 5_000).await.unwrap().value.len(),
        1
    );
    store.delete_recurring("d").await.unwrap();
    assert!(store.recurring("d").await.unwrap().is_none());
    assert!(store.list_recurring().await.unwrap().is_empty());
    assert!(matches!(
        store.delete_recurring("d").await.unwrap_err(),
        Error::RecurringNotFound(_)
    ));
    assert_eq!(
        store
            .fire_recurring(NOW + 10_000)
            .await
            .unwrap()
            .value
            .len(),
        0
    );
    assert_eq!(jobs_of(store, "d").await.len(), 1, "its job stays");
}

/// A two-stage workflow: `a` (echo, gets `{{params.x}}`), then `b` and `c` in parallel,
/// `c` only if `a`'s result has `/x` = 1.
fn two_stage_workflow() -> crate::workflow::Definition {
    let step = |id: &str, args: serde_json::Value| json!({"id": id, "plugin": "echo", "args": args, "queue": "default", "max_attempts": 1});
    let mut c = step("c", json!({}));
    c["when"] = json!({"step": "a", "path": "/x", "equals": 2});
    let json = json!({"name": "w", "stages": [
        {"name": "one", "mode": "sequential", "steps": [step("a", json!({"x": "{{params.x}}"}))]},
        {"name": "two", "mode": "parallel", "steps": [step("b", json!({})), c]}]});
    crate::workflow::Definition::parse(&json, |_| true).expect("a valid definition")
}

/// Starts a run of [`two_stage_workflow`] with `x` = 1.
async fn start_run(store: &dyn JobStore) -> JobId {
    let run = workflows::NewWorkflowRun {
        id: new_job_id(),
        workflow_id: "w".into(),
        definition: two_stage_workflow(),
        parameters: json!({"x": 1}).as_object().cloned().unwrap(),
    };
    let id = run.id;
    store.create_workflow_run(run, NOW).await.unwrap();
    id
}

/// The states of a run's steps, in order.
async fn step_states(
    store: &dyn JobStore,
    run: JobId,
) -> Vec<(String, crate::workflow::StepState)> {
    let run = store.workflow_run(run).await.unwrap().expect("run exists");
    run.steps.into_iter().map(|s| (s.id, s.state)).collect()
}

async fn check_workflows_are_stored_replaced_and_deleted(store: &dyn JobStore) {
    let definition = two_stage_workflow();
    assert!(store.put_workflow("w", &definition, NOW).await.unwrap());
    let mut changed = definition.clone();
    changed.name = "renamed".into();
    assert!(!store.put_workflow("w", &changed, NOW + 1).await.unwrap());
    let stored = store.workflow("w").await.unwrap().expect("stored");
    assert_eq!(stored.definition, changed);
    assert_eq!((stored.created_at, stored.updated_at), (NOW, NOW + 1));
    assert!(store.delete_workflow("w").await.unwrap());
    assert!(!store.delete_workflow("w").await.unwrap());
    assert!(store.workflow("w").await.unwrap().is_none());
}

async fn check_workflow_runs_advance_stage_by_stage_creating_each_job_once(store: &dyn JobStore) {
    use crate::workflow::StepState::{Pending, Skipped, Succeeded};
    let run = start_run(store).await;
    let first = store.advance_workflow_run(run, NOW).await.unwrap();
    assert_eq!(first.enqueued.len(), 1);
    let again = store.advance_workflow_run(run, NOW).await.unwrap();
    assert!(again.enqueued.is_empty(), "a step's job is created once");
    let job = store.get(first.enqueued[0]).await.unwrap().unwrap().job;
    assert_eq!(
        job.args.to_value(),
        json!({"x": 1}),
        "the parameter keeps its type"
    );
    let claimed = claim_one(store, NOW).await;
    let done = Completion {
        result: raw(json!({"x": 1})),
        ..completion()
    };
    store
        .complete(claimed.job.id, claimed.lease, done, NOW)
        .await
        .unwrap();
    let second = store.advance_workflow_run(run, NOW + 1).await.unwrap();
    assert_eq!(second.enqueued.len(), 1, "b starts, c is skipped");
    let states = step_states(store, run).await;
    assert_eq!(
        states,
        [
            ("a".into(), Succeeded),
            ("b".into(), Pending),
            ("c".into(), Skipped)
        ]
    );
    finish(store, &claim_one(store, NOW + 2).await, true).await;
    let last = store.advance_workflow_run(run, NOW + 3).await.unwrap();
    assert_eq!(last.state, Some(workflows::RunState::Succeeded));
    let stored = store.workflow_run(run).await.unwrap().unwrap();
    assert_eq!(stored.finished_at, Some(NOW + 3));
    assert!(store.running_workflow_runs().await.unwrap().is_empty());
}

async fn check_a_failed_step_fails_its_workflow_run(store: &dyn JobStore) {
    use crate::workflow::StepState::{Cancelled, Failed};
    let run = start_run(store).await;
    store.advance_workflow_run(run, NOW).await.unwrap();
    finish(store, &claim_one(store, NOW).await, false).await;
    let advanced = store.advance_workflow_run(run, NOW + 1).await.unwrap();
    assert_eq!(advanced.state, Some(workflows::RunState::Failed));
    assert!(advanced.enqueued.is_empty());
    let states = step_states(store, run).await;
    assert_eq!(
        states,
        [
            ("a".into(), Failed),
            ("b".into(), Cancelled),
            ("c".into(), Cancelled)
        ]
    );
}

async fn check_cancelling_a_workflow_run(store: &dyn JobStore) {
    let run = start_run(store).await;
    let advanced = store.advance_workflow_run(run, NOW).await.unwrap();
    let jobs = store.cancel_workflow_run(run, NOW + 1).await.unwrap();
    assert_eq!(jobs, Some(advanced.enqueued), "the caller cancels a's job");
    let stored = store.workflow_run(run).await.unwrap().unwrap();
    assert_eq!(stored.state, workflows::RunState::Cancelled);
    assert_eq!(stored.steps[1].state, crate::workflow::StepState::Cancelled);
    assert!(matches!(
        store.cancel_workflow_run(run, NOW + 2).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(
        store.cancel_workflow_run(new_job_id(), NOW).await.unwrap(),
        None
    );
    let after = store.advance_workflow_run(run, NOW + 3).await.unwrap();
    assert!(after.enqueued.is_empty(), "a cancelled run starts nothing");
}

/// The links `get` reads with job `id`.
async fn links_of(store: &dyn JobStore, id: JobId) -> JobLinks {
    store.get(id).await.unwrap().expect("the job exists").links
}

async fn check_a_job_is_read_with_its_links(store: &dyn JobStore) {
    let plain = add(store, new_job("default", 0)).await;
    assert!(links_of(store, plain.id).await.is_empty());
    let mut parents = vec![
        add(store, new_job("default", 0)).await.id,
        add(store, new_job("default", 0)).await.id,
    ];
    parents.sort();
    let child = add(store, continuation(&parents, AwaitOn::Success)).await;
    let waiting = JobRef {
        id: child.id,
        state: JobState::Awaiting,
    };
    let enqueued = |id| JobRef {
        id,
        state: JobState::Enqueued,
    };
    let links = links_of(store, child.id).await;
    assert_eq!(
        links.parents,
        parents.iter().copied().map(enqueued).collect::<Vec<_>>()
    );
    assert_eq!(links_of(store, parents[0]).await.continuations, [waiting]);

    let jobs = vec![new_job("default", 0)];
    let member = jobs[0].id;
    let callback = continuation(&[member], AwaitOn::Finish);
    let batch = NewBatch {
        id: new_job_id(),
        description: String::new(),
        on_success: None,
        on_complete: Some(callback.clone()),
        jobs,
    };
    let batch_id = batch.id;
    store.create_batch(batch, NOW).await.unwrap();
    let links = links_of(store, member).await;
    assert_eq!(links.batch_id, Some(batch_id));
    assert_eq!(
        links.continuations.iter().map(|c| c.id).collect::<Vec<_>>(),
        [callback.id]
    );
    assert_eq!(
        links_of(store, callback.id).await.parents,
        [enqueued(member)]
    );

    let run = start_run(store).await;
    let step_job = store.advance_workflow_run(run, NOW).await.unwrap().enqueued[0];
    let links = links_of(store, step_job).await;
    let step = StepRef {
        run_id: run,
        step_id: "a".into(),
    };
    assert_eq!(links.workflow_run, Some(step));
    assert_eq!(links.batch_id, None);

    let hub = add(store, new_job("default", 0)).await;
    let mut children = Vec::new();
    for _ in 0..=MAX_LINKED_JOBS {
        children.push(
            add(store, continuation(&[hub.id], AwaitOn::Finish))
                .await
                .id,
        );
    }
    children.sort();
    let named: Vec<JobId> = links_of(store, hub.id)
        .await
        .continuations
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(named, children[..MAX_LINKED_JOBS], "the oldest, capped");
}

async fn check_one_owner_leads_until_its_lease_expires(store: &dyn JobStore) {
    let leads = |owner: &'static str, until: Millis, now: Millis| async move {
        store.lead(owner, NOW + until, NOW + now).await.unwrap()
    };
    assert!(leads("a", 100, 0).await, "nobody led");
    assert!(!leads("b", 150, 50).await, "a's lease holds");
    assert!(leads("a", 200, 100).await, "a renews");
    assert!(
        !leads("b", 300, 200).await,
        "a's renewed lease holds to its end"
    );
    assert!(
        leads("b", 300, 201).await,
        "a's lease expired: b takes the lead"
    );
    assert!(!leads("a", 400, 250).await, "b leads now");
    store.resign("a").await.unwrap();
    assert!(!leads("a", 400, 260).await, "only the holder can resign");
    store.resign("b").await.unwrap();
    assert!(leads("a", 400, 270).await, "b resigned");
}

/// Runs every check on a fresh store from `open`.
macro_rules! conformance {
    ($open:expr, $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let (store, _guard) = $open.await;
                super::$check(store.as_ref()).await;
                store.close().await;
            }
        )*
    };
}

/// Runs every check of the suite on fresh stores from `open`.
macro_rules! every_check {
    ($open:expr) => {
        conformance!(
            $open,
            check_enqueue_records_state_and_history,
            check_future_jobs_wait_until_promoted,
            check_claim_order_is_queue_then_priority_then_fifo,
            check_claim_takes_a_job_once_and_counts_the_attempt,
            check_completion_is_guarded_by_the_lease,
            check_failures_retry_or_end,
            check_expired_leases_are_found_and_failing_them_uses_the_attempt,
            check_heartbeat_extends_only_the_leases_given,
            check_release_returns_the_owners_jobs,
            check_cancel_waiting_and_running_jobs,
            check_retry_resets_failed_jobs_only,
            check_delete_removes_everything_but_running_jobs,
            check_progress_and_logs_land_before_completion,
            check_logs_are_counted_per_attempt_and_paged_in_order,
            check_list_pages_newest_first_with_filters,
            check_queue_counts_and_batches,
            check_unique_keys_dedupe_unfinished_jobs,
            check_paused_queues_run_nothing,
            check_concurrency_caps_running_jobs,
            check_continuations_wait_for_every_parent,
            check_a_failed_parent_cancels_a_success_continuation,
            check_continuations_of_finished_or_missing_parents,
            check_batches_run_their_callbacks_once,
            check_cancelling_a_batch,
            check_a_job_is_read_with_its_links,
            check_recurring_jobs_fire_once_per_occurrence,
            check_missed_recurring_occurrences_run_once_or_never,
            check_paused_recurring_jobs_do_not_fire_and_resume_from_now,
            check_put_recurring_updates_and_recomputes_the_schedule,
            check_delete_recurring_keeps_its_jobs,
            check_workflows_are_stored_replaced_and_deleted,
            check_workflow_runs_advance_stage_by_stage_creating_each_job_once,
            check_a_failed_step_fails_its_workflow_run,
            check_cancelling_a_workflow_run,
            check_agent_locks_respect_concurrency_and_go_with_their_job,
            check_agents_are_defined_replaced_and_deleted,
            check_jobs_of_parked_agents_wait,
            check_jobs_of_compiling_plugins_wait,
            check_tasks_are_stored_with_their_job_and_move_between_agents,
            check_every_write_reports_the_jobs_it_moved,
            check_finishing_a_parent_reports_what_its_continuations_did,
            check_batch_writes_report_their_jobs_and_progress,
            check_ending_an_agent_run_reports_the_freed_lock,
            check_recurring_workflow_and_task_writes_report_their_jobs,
            check_tokens_are_kept_by_hash_and_revoked,
            check_audit_entries_are_kept_newest_first,
            check_finished_jobs_are_counted_per_queue,
            check_runs_are_rolled_up_per_bucket_and_key,
            check_jobs_are_found_by_text_and_agent_and_counted,
            check_cancelled_runs_are_not_counted_and_lost_hosts_have_no_run_time,
            check_alert_rules_are_stored_replaced_and_deleted,
            check_one_incident_is_open_per_rule_and_subject,
            check_ended_runs_are_counted_with_their_failures,
            check_ready_jobs_and_job_states_are_read,
            check_one_owner_leads_until_its_lease_expires,
        );
    };
}

fn agent_spec(id: &str, max_concurrency: u32) -> crate::model::agent::AgentSpec {
    crate::model::agent::AgentSpec {
        id: id.into(),
        name: format!("agent {id}"),
        repository_path: "/repo".into(),
        command: vec!["/bin/sh".into(), "-c".into(), "{command}".into()],
        env: Default::default(),
        health_command: None,
        health_interval_seconds: 60,
        max_concurrency,
        labels: Default::default(),
    }
}

fn bound_job(agent: &str) -> NewJob {
    NewJob {
        agent_id: Some(agent.into()),
        ..new_job("default", 0)
    }
}

async fn holders(store: &dyn JobStore, agent: &str) -> Vec<JobId> {
    store.agent(agent).await.unwrap().unwrap().current_jobs
}

async fn acquire(store: &dyn JobStore, agent: &str, job: JobId, now: Millis) -> Acquired {
    store
        .acquire_agent(agent, job, OWNER, now + 60_000, now)
        .await
        .unwrap()
}

fn unavailable(acquired: Acquired) -> String {
    acquired.held.expect_err("the agent should not be had")
}

async fn check_agent_locks_respect_concurrency_and_go_with_their_job(store: &dyn JobStore) {
    use crate::model::agent::{AgentStatus, Health};
    store.create_agent(agent_spec("a1", 1), NOW).await.unwrap();
    let first = add(store, bound_job("a1")).await;
    let second = add(store, bound_job("a1")).await;
    let claimed = store
        .claim(&claim_params(&["default"], 2), NOW)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let lease = |id: JobId| claimed.iter().find(|c| c.job.id == id).unwrap().lease;
    let first_hold = acquire(store, "a1", first.id, NOW).await;
    assert!(first_hold.held.is_ok() && first_hold.task_id.is_none());
    assert!(unavailable(acquire(store, "a1", second.id, NOW).await).contains("busy"));
    let agent = store.agent("a1").await.unwrap().unwrap();
    assert_eq!(
        (agent.status, agent.current_jobs.clone()),
        (AgentStatus::Busy, vec![first.id])
    );

    store
        .complete(first.id, lease(first.id), completion(), NOW + 1)
        .await
        .unwrap();
    assert!(holders(store, "a1").await.is_empty(), "completion lets go");
    assert!(acquire(store, "a1", second.id, NOW + 2).await.held.is_ok());
    let retry = failure(ErrorKind::Retryable, AfterFailure::RetryAt(NOW + 10_000));
    store
        .fail(second.id, lease(second.id), retry, NOW + 3)
        .await
        .unwrap();
    assert!(holders(store, "a1").await.is_empty(), "a failure lets go");

    let third = add(store, bound_job("a1")).await;
    claim_one(store, NOW + 4).await;
    assert!(acquire(store, "a1", third.id, NOW + 4).await.held.is_ok());
    assert_eq!(store.release(OWNER, NOW + 5).await.unwrap().jobs.len(), 1);
    assert!(holders(store, "a1").await.is_empty(), "a release lets go");

    let stale = new_job_id();
    store
        .acquire_agent("a1", stale, "dead-host", NOW + 10, NOW + 5)
        .await
        .unwrap();
    assert!(
        acquire(store, "a1", third.id, NOW + 11).await.held.is_ok(),
        "an expired lock does not count"
    );
    assert_eq!(holders(store, "a1").await, vec![third.id]);
    assert_eq!(
        store.renew_agent_locks(OWNER, NOW + 99_000).await.unwrap(),
        1
    );

    store.create_agent(agent_spec("a2", 2), NOW).await.unwrap();
    store
        .set_agent_health("a2", Health::Offline, 3, Some("no answer".into()), NOW)
        .await
        .unwrap();
    assert!(unavailable(acquire(store, "a2", new_job_id(), NOW).await).contains("offline"));
    assert!(
        unavailable(acquire(store, "nobody", new_job_id(), NOW).await).contains("not registered")
    );
    store.agent_heartbeat("a2", NOW + 1).await.unwrap();
    let a2 = store.agent("a2").await.unwrap().unwrap();
    assert_eq!(
        (a2.status, a2.health_misses),
        (AgentStatus::Idle, 0),
        "a heartbeat heals"
    );
}

async fn check_jobs_of_parked_agents_wait(store: &dyn JobStore) {
    let parked = add(store, bound_job("gone")).await;
    let free = add(store, new_job("default", -10)).await;
    let mut params = claim_params(&["default"], 10);
    params.parked_agents = vec!["gone".into(), "other".into()];
    let claimed = store.claim(&params, NOW).await.unwrap();
    let ids: Vec<JobId> = claimed.iter().map(|c| c.job.id).collect();
    assert_eq!(ids, vec![free.id], "the parked agent's job waits");
    params.parked_agents.clear();
    let claimed = store.claim(&params, NOW).await.unwrap();
    assert_eq!(claimed[0].job.id, parked.id);
}

async fn check_jobs_of_compiling_plugins_wait(store: &dyn JobStore) {
    let compiling = add(store, new_job("default", 10)).await;
    let mut other = new_job("default", 0);
    other.plugin = "other".into();
    let other = add(store, other).await;
    let mut params = claim_params(&["default"], 10);
    params.waiting_plugins = vec![compiling.plugin.clone(), "third".into()];
    let claimed = store.claim(&params, NOW).await.unwrap();
    let ids: Vec<JobId> = claimed.iter().map(|c| c.job.id).collect();
    assert_eq!(ids, vec![other.id], "the compiling plugin's job waits");
    params.waiting_plugins.clear();
    let claimed = store.claim(&params, NOW).await.unwrap();
    assert_eq!(claimed[0].job.id, compiling.id);
}

async fn check_agents_are_defined_replaced_and_deleted(store: &dyn JobStore) {
    use crate::model::agent::{AgentStatus, Health};
    store.create_agent(agent_spec("a1", 1), NOW).await.unwrap();
    assert!(matches!(
        store.create_agent(agent_spec("a1", 2), NOW).await,
        Err(Error::Conflict(_))
    ));
    store
        .set_agent_health("a1", Health::Error, 0, Some("bad exe".into()), NOW)
        .await
        .unwrap();
    let mut changed = agent_spec("a1", 3);
    changed.labels.insert("team".into(), "core".into());
    let agent = store.put_agent(changed.clone(), NOW + 1).await.unwrap();
    assert_eq!(agent.spec, changed);
    assert_eq!(
        agent.status,
        AgentStatus::Error,
        "a redefinition keeps the health"
    );
    assert_eq!(agent.status_reason.as_deref(), Some("bad exe"));
    assert_eq!((agent.created_at, agent.updated_at), (NOW, NOW + 1));

    let job = add(store, bound_job("a1")).await;
    claim_one(store, NOW).await;
    store
        .set_agent_health("a1", Health::Healthy, 0, None, NOW)
        .await
        .unwrap();
    assert!(acquire(store, "a1", job.id, NOW).await.held.is_ok());
    assert!(matches!(
        store.delete_agent("a1", false).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(
        store.delete_agent("a1", true).await.unwrap().current_jobs,
        vec![job.id]
    );
    assert!(store.agent("a1").await.unwrap().is_none());
    assert!(matches!(
        store.delete_agent("a1", true).await,
        Err(Error::AgentNotFound(_))
    ));
    assert!(matches!(
        store.agent_heartbeat("a1", NOW).await,
        Err(Error::AgentNotFound(_))
    ));
    assert!(store.agents().await.unwrap().is_empty());
}

async fn check_tasks_are_stored_with_their_job_and_move_between_agents(store: &dyn JobStore) {
    use crate::model::agent::TaskPriority;
    store.create_agent(agent_spec("a1", 1), NOW).await.unwrap();
    store.create_agent(agent_spec("a2", 1), NOW).await.unwrap();
    let job = NewJob {
        queue: "agent-a1".into(),
        ..bound_job("a1")
    };
    let (task_id, job_id) = (new_job_id(), job.id);
    let task = NewTask {
        id: task_id,
        command: "make test".into(),
        repository_path: "/repo".into(),
        priority: TaskPriority::Normal,
        job,
    };
    store.create_task(task, NOW).await.unwrap();
    let stored = store.task(task_id).await.unwrap().unwrap();
    assert_eq!(
        (
            stored.job.id,
            stored.agent_id(),
            stored.job.queue.as_str(),
            stored.job.state
        ),
        (job_id, "a1", "agent-a1", JobState::Enqueued)
    );
    assert_eq!(store.task_of_job(job_id).await.unwrap(), Some(task_id));
    assert_eq!(store.agent_load().await.unwrap().get("a1"), Some(&1));
    assert_eq!(store.waiting_jobs("a1").await.unwrap(), vec![job_id]);

    assert!(store.rebind_job(job_id, "a1", "a2", NOW).await.unwrap());
    assert!(
        !store.rebind_job(job_id, "a1", "a2", NOW).await.unwrap(),
        "moved already"
    );
    let moved = store.task(task_id).await.unwrap().unwrap();
    assert_eq!(
        (moved.agent_id(), moved.job.queue.as_str()),
        ("a2", "agent-a2")
    );
    let filter = TaskFilter {
        agent_id: Some("a2".into()),
        state: None,
        limit: 10,
    };
    assert_eq!(store.tasks(&filter).await.unwrap().len(), 1);
    let filter = TaskFilter {
        agent_id: Some("a1".into()),
        state: None,
        limit: 10,
    };
    assert!(store.tasks(&filter).await.unwrap().is_empty());

    let claimed = store
        .claim(&claim_params(&["agent-a2"], 1), NOW)
        .await
        .unwrap();
    assert!(
        !store.rebind_job(job_id, "a2", "a1", NOW).await.unwrap(),
        "started"
    );
    let exec = ExecRecord {
        outcome: "exited",
        exit_code: Some(2),
        stdout: "out".into(),
        stderr: "err".into(),
        duration_ms: 1500,
    };
    store.record_exec(job_id, exec.clone()).await.unwrap();
    let fatal = failure(ErrorKind::Fatal, AfterFailure::Fail);
    store
        .fail(job_id, claimed[0].lease, fatal, NOW + 1500)
        .await
        .unwrap();
    let done = store.task(task_id).await.unwrap().unwrap();
    assert_eq!((done.job.state, done.exec), (JobState::Failed, Some(exec)));
    let metrics = store.agent_metrics("a2", NOW + 2000).await.unwrap();
    assert_eq!(
        (metrics.tasks_run, metrics.succeeded, metrics.failed),
        (1, 0, 1)
    );
    assert_eq!(
        (metrics.mean_duration_ms, metrics.p95_duration_ms),
        (Some(1500), Some(1500))
    );
    assert!((metrics.utilisation_last_hour - 1500.0 / 3_600_000.0).abs() < 1e-9);

    store.delete(job_id, NOW).await.unwrap();
    assert!(
        store.task(task_id).await.unwrap().is_none(),
        "a task goes with its job"
    );
}

/// A small file system to fill up or make read-only (needs root, as CI has).
pub(crate) mod disk {
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// A tmpfs mounted on a temporary directory; unmounted when dropped.
    pub(crate) struct Tmpfs(tempfile::TempDir);

    fn mount(args: &[&str], dir: &Path) {
        let status = Command::new("mount")
            .args(args)
            .arg(dir)
            .status()
            .expect("running mount");
        assert!(status.success(), "mount {args:?}: {status}");
    }

    impl Tmpfs {
        /// Mounts a tmpfs of `size` (e.g. `4m`).
        pub(crate) fn mount(size: &str) -> Tmpfs {
            let dir = tempfile::tempdir().expect("temp dir");
            mount(
                &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
                dir.path(),
            );
            Tmpfs(dir)
        }

        pub(crate) fn path(&self) -> &Path {
            self.0.path()
        }

        /// Remounts it `ro` or `rw`.
        pub(crate) fn remount(&self, mode: &str) {
            mount(&["-o", &format!("remount,{mode}")], self.path());
        }

        /// Fills it with a file of zeros; returns that file.
        pub(crate) fn fill(&self) -> PathBuf {
            let path = self.path().join("filler");
            let mut file = std::fs::File::create(&path).expect("creating the filler");
            let chunk = vec![0u8; 64 << 10];
            let full = loop {
                if let Err(e) = file.write_all(&chunk) {
                    break e;
                }
            };
            assert_eq!(full.kind(), std::io::ErrorKind::StorageFull, "{full}");
            path
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.path()).status();
        }
    }
}

mod postgres {
    use super::super::JobStore;
    use super::super::postgres::PostgresStore;
    use std::sync::Arc;

    /// A fresh database on the test server, dropped with it.
    pub(super) struct Database {
        name: String,
    }

    /// The server the tests use: `ORCHESTRA_TEST_POSTGRES`, else the local one.
    fn server() -> String {
        std::env::var("ORCHESTRA_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
    }

    impl Database {
        /// Creates a database of its own on the test server.
        pub(super) async fn create() -> Database {
            use sqlx::{Connection, Executor};
            let name = format!("orchestra_test_{}", uuid::Uuid::now_v7().simple());
            let mut conn = sqlx::PgConnection::connect(&server())
                .await
                .expect("the test server (PostgreSQL) is reachable");
            conn.execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create a test database");
            Database { name }
        }

        /// Its URL.
        pub(super) fn url(&self) -> String {
            let server = server();
            let base = server
                .rsplit_once('/')
                .map_or(server.as_str(), |(base, _)| base);
            format!("{base}/{}", self.name)
        }
    }

    impl Drop for Database {
        fn drop(&mut self) {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            // Dropped outside any runtime's worker: a thread of its own runs the statement.
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async {
                    use sqlx::{Connection, Executor};
                    let mut conn = sqlx::PgConnection::connect(&server()).await?;
                    conn.execute(sql.as_str()).await?;
                    Ok::<_, sqlx::Error>(())
                })?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!("a test database was left behind: {}", self.name);
            }
        }
    }

    /// A store on a fresh database.
    pub(super) async fn open_postgres() -> (Arc<PostgresStore>, Database) {
        let database = Database::create().await;
        let store = PostgresStore::open(&database.url())
            .await
            .expect("open store");
        (Arc::new(store), database)
    }

    async fn open() -> (Arc<dyn JobStore>, Database) {
        let (store, database) = open_postgres().await;
        (store, database)
    }

    every_check!(open());

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn check_concurrent_workers_run_each_job_once() {
        let (store, _guard) = open().await;
        super::check_concurrent_workers_run_each_job_once(store.clone()).await;
        store.close().await;
    }
}

mod sqlite {
    use super::super::Durability;
    use super::super::JobStore;
    use super::super::sqlite::SqliteStore;
    use std::sync::Arc;

    /// A store on `jobs.db` in a new temporary folder.
    pub(super) async fn open_sqlite() -> (Arc<SqliteStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("jobs.db"), Durability::Normal)
            .await
            .expect("open store");
        (Arc::new(store), dir)
    }

    async fn open() -> (Arc<dyn JobStore>, tempfile::TempDir) {
        let (store, dir) = open_sqlite().await;
        (store, dir)
    }

    /// A connection of its own to the database at `path`, beside the store's.
    pub(super) async fn connect(path: &std::path::Path) -> sqlx::SqliteConnection {
        use sqlx::Connection;
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("a second connection")
    }

    every_check!(open());

    #[tokio::test]
    async fn a_second_store_on_the_same_file_is_refused() {
        let (store, dir) = open().await;
        let second = SqliteStore::open(&dir.path().join("jobs.db"), Durability::Normal).await;
        let refused = second.expect_err("the file is in use");
        assert!(
            matches!(refused, super::Error::InUse(_))
                && refused.to_string().contains("SQLite is one host"),
            "{refused}"
        );
        store.close().await;
    }

    #[tokio::test]
    async fn writes_are_refused_once_the_file_is_replaced() {
        let (store, dir) = open().await;
        let path = dir.path().join("jobs.db");
        super::add(store.as_ref(), super::new_job("default", 0)).await;
        assert!(store.health().is_ok());
        let copy = dir.path().join("copy.db");
        std::fs::copy(&path, &copy).unwrap();
        std::fs::rename(&copy, &path).unwrap();
        let refused = store
            .enqueue(super::new_job("default", 0), super::NOW)
            .await
            .expect_err("the file is not the one opened");
        assert!(
            matches!(
                refused,
                super::Error::Unavailable {
                    fault: super::Fault::Replaced,
                    ..
                }
            ),
            "{refused}"
        );
        assert!(store.health().is_err());
        store.close().await;
    }

    #[tokio::test]
    async fn a_full_disk_refuses_writes_and_loses_nothing_once_space_is_back() {
        use super::{Error, Fault, LogLine};
        let disk = super::disk::Tmpfs::mount("4m");
        let store = SqliteStore::open(&disk.path().join("jobs.db"), Durability::Normal)
            .await
            .expect("open store");
        let job = super::add(&store, super::new_job("default", 0)).await;
        let claimed = super::claim_one(&store, super::NOW).await;
        let filler = disk.fill();
        let line = LogLine {
            at: super::NOW,
            level: "info".into(),
            message: "written while the disk was full".into(),
        };
        store.append_logs(job.id, claimed.job.attempt, vec![line.clone()]);
        let full = |e: Error| {
            matches!(
                e,
                Error::Unavailable {
                    fault: Fault::DiskFull,
                    ..
                }
            )
        };
        let refused = store
            .complete(job.id, claimed.lease, super::completion(), super::NOW + 1)
            .await
            .expect_err("the disk is full");
        assert!(full(refused));
        let refused = store
            .enqueue(super::new_job("default", 0), super::NOW)
            .await
            .expect_err("the disk is full");
        assert!(full(refused));

        std::fs::remove_file(filler).unwrap();
        store
            .complete(job.id, claimed.lease, super::completion(), super::NOW + 2)
            .await
            .expect("space is back");
        let detail = store.get(job.id).await.unwrap().unwrap();
        assert_eq!(detail.job.state, super::JobState::Succeeded);
        let logged: Vec<&LogLine> = detail.logs.iter().map(|stored| &stored.line).collect();
        assert_eq!(logged, [&line], "the log line waited for space");
        store.close().await;
    }

    /// Succeeded runs the rollup in the file at `path` counts, over every resolution,
    /// read by a connection of its own (not through the store, whose reads write what
    /// waits first).
    async fn rolled_up(path: &std::path::Path) -> i64 {
        let mut conn = connect(path).await;
        sqlx::query_scalar("SELECT coalesce(sum(succeeded), 0) FROM stats_rollup")
            .fetch_one(&mut conn)
            .await
            .expect("the rollup")
    }

    /// Stores a job on `queue`, claims it and completes it.
    async fn run_one(store: &dyn JobStore, queue: &str) {
        super::add(store, super::new_job(queue, 0)).await;
        let params = super::claim_params(&[queue], 1);
        let claimed = store.claim(&params, super::NOW).await.unwrap().remove(0);
        let done = super::completion();
        store
            .complete(claimed.job.id, claimed.lease, done, super::NOW + 5)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn counted_runs_are_written_by_an_idle_writer_and_at_close() {
        let (store, dir) = open().await;
        let path = dir.path().join("jobs.db");
        run_one(store.as_ref(), "default").await;
        // No write follows the completion: only the idle writer can write its count.
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        assert_eq!(rolled_up(&path).await, 3, "a minute, an hour and a day");

        run_one(store.as_ref(), "other").await;
        store.close().await;
        assert_eq!(rolled_up(&path).await, 6, "closing writes what waits");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn check_concurrent_workers_run_each_job_once() {
        let (store, _guard) = open().await;
        super::check_concurrent_workers_run_each_job_once(store.clone()).await;
        store.close().await;
    }
}
