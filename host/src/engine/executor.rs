//! One job run: the runtime under the plugin's limits, then the outcome recorded through
//! the retry policy.

use super::Shared;
use super::agents::{self, AgentRun};
use super::alerts;
use super::output::{FLUSH_EVERY, RunOutput};
use crate::events::Ids;
use crate::model::retry::RetryPolicy;
use crate::model::{ErrorKind, Job, JobError, JobId, JsonText, Millis, Usage, now_ms};
use crate::plugins::{Plugin, Registry};
use crate::runtime::{RunInput, RunOutcome, RunReport};
use crate::store::{AfterFailure, Changes, Claimed, Completion, Error, Failure, LeaseId};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Where a failed attempt goes: terminal when fatal, cancelled, or out of attempts;
/// otherwise scheduled by the retry policy.
pub(super) fn after_failure(
    error: &JobError,
    attempt: u32,
    max_attempts: u32,
    policy: &RetryPolicy,
    now: Millis,
    random: f64,
) -> AfterFailure {
    if error.kind == ErrorKind::Cancelled {
        AfterFailure::Cancel
    } else if !error.kind.is_retryable() || attempt >= max_attempts {
        AfterFailure::Fail
    } else {
        let wait = policy.delay(attempt, random);
        AfterFailure::RetryAt(now + wait.as_millis() as Millis)
    }
}

/// Runs a built-in job in the host: its result, or a retryable failure.
async fn builtin(work: impl Future<Output = Result<serde_json::Value, String>>) -> RunReport {
    let started = Instant::now();
    let outcome = match work.await {
        Ok(result) => RunOutcome::Succeeded(result.to_string()),
        Err(e) => RunOutcome::Failed(JobError::new(ErrorKind::Retryable, e)),
    };
    let usage = Usage {
        wall_ms: started.elapsed().as_millis() as u64,
        ..Usage::default()
    };
    RunReport { outcome, usage }
}

/// The built-in cleanup: what it removed.
async fn clean(shared: &Shared) -> Result<serde_json::Value, String> {
    let done = super::retention::clean(shared.store.as_ref(), shared.config.retention)
        .await
        .map_err(|e| e.to_string())?;
    Ok(serde_json::json!({
        "removed": done.removed,
        "succeeded_before": crate::model::rfc3339::format(done.succeeded_before),
        "failed_before": crate::model::rfc3339::format(done.failed_before),
        "incidents_removed": done.incidents_removed,
    }))
}

/// Folds a run's duration into the scheduler's moving average (weight 1/8).
fn note_run_time(shared: &Shared, took: std::time::Duration) {
    let took = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    let _ = shared
        .recent_run_us
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |avg| {
            Some(avg - avg / 8 + took / 8)
        });
}

/// How a run ended, as far as the executor is concerned.
enum Ended {
    Ran(RunReport),
    Cancelled,
    Abandoned,
}

/// Runs one claimed job to an outcome and records it. The worker slot (`permit`) is
/// freed as soon as the run ends, so recording overlaps with the next run.
pub(super) async fn execute(shared: &Shared, claimed: Claimed, permit: OwnedSemaphorePermit) {
    let id = claimed.job.id;
    run_and_record(shared, claimed, permit).await;
    shared.held.let_go(id);
}

async fn run_and_record(shared: &Shared, claimed: Claimed, permit: OwnedSemaphorePermit) {
    let Claimed { job, lease } = claimed;
    let agent = match &job.agent_id {
        Some(agent_id) => Some(AgentRun::bind(shared, &job, agent_id, lease).await),
        None => None,
    };
    if let Some(bound) = agent.as_ref().and_then(AgentRun::agent) {
        // Holding it may have made the agent busy.
        let bound = std::slice::from_ref(bound);
        shared.agents.publish_statuses(&shared.events, bound);
    }
    let ids = agent.as_ref().map_or_else(
        || Ids {
            correlation: Some(lease),
            ..Ids::job(job.id)
        },
        |agent| agent.ids().clone(),
    );
    let cancel = shared.held.token(job.id);
    for filter in &shared.filters {
        filter.before_run(&job);
    }
    let started = Instant::now();
    let plugin = shared.registry.get(&job.plugin);
    let ended = match &plugin {
        _ if job.plugin == super::CLEANUP_PLUGIN => Ended::Ran(builtin(clean(shared)).await),
        _ if job.plugin == agents::HEALTH_PLUGIN => {
            Ended::Ran(builtin(agents::health::check(shared)).await)
        }
        _ if job.plugin == alerts::WEBHOOK_PLUGIN => {
            Ended::Ran(builtin(alerts::deliver(shared, &job)).await)
        }
        Some(plugin) => run(shared, &job, lease, plugin, ids.clone(), agent, &cancel).await,
        None => Ended::Ran(RunReport {
            outcome: RunOutcome::Failed(JobError::new(
                ErrorKind::Retryable,
                not_loaded(&shared.registry, &job.plugin),
            )),
            usage: Usage::default(),
        }),
    };
    drop(permit);
    note_run_time(shared, started.elapsed());
    shared.held.ended(job.id);
    let digest = plugin.as_ref().map(|p| p.digest.clone());
    let policy = retry_policy(&job, plugin.as_deref());
    let report = match ended {
        Ended::Ran(report) => report,
        Ended::Cancelled => RunReport {
            outcome: RunOutcome::Failed(JobError::new(
                ErrorKind::Cancelled,
                "cancelled while running",
            )),
            usage: Usage::default(),
        },
        // Shutdown released the job; it runs again elsewhere or after restart.
        Ended::Abandoned => return,
    };
    for filter in &shared.filters {
        filter.after_run(&job, &report);
    }
    let changes = record(shared, &job, lease, report, digest, &policy).await;
    let state = changes.and_then(|c| c.of(job.id).find_map(|change| change.to));
    if let Some(state) = state {
        for filter in &shared.filters {
            filter.on_state_change(&job, state);
        }
        // A finished run may have freed a queue's concurrency cap: wake the dispatcher
        // if it is idle (a busy one claims again anyway).
        shared.wake.notify_waiters();
    }
    if job.agent_id.is_some() {
        // The agent was let go with the outcome: publish its new status.
        agents::sync(shared).await;
    }
}

/// Why a job of `plugin` has no version to run: its module could not be loaded (and
/// why), or none is in the plugin folder. (Jobs of a plugin still compiling are not
/// claimed.)
fn not_loaded(registry: &Registry, plugin: &str) -> String {
    match registry.status(plugin).and_then(|status| status.error) {
        Some(error) => format!("plugin `{plugin}` could not be loaded: {error}"),
        None => format!("plugin `{plugin}` is not loaded"),
    }
}

async fn run(
    shared: &Shared,
    job: &Job,
    lease: LeaseId,
    plugin: &Plugin,
    ids: Ids,
    agent: Option<AgentRun>,
    cancel: &CancellationToken,
) -> Ended {
    let input = RunInput {
        id: job.id.to_string(),
        plugin: job.plugin.clone(),
        queue: job.queue.clone(),
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        args: job.args.as_str().to_owned(),
    };
    let output = Arc::new(RunOutput::new(
        shared.store.clone(),
        shared.events.clone(),
        job.id,
        job.attempt,
        lease,
        ids,
        agent,
    ));
    let repo = job.repository_path.as_deref().map(Path::new);
    let limits = &plugin.settings.limits;
    let run = shared
        .runtime
        .run(&plugin.prepared, &input, limits, repo, output.clone());
    tokio::pin!(run);
    let mut flush = tokio::time::interval_at(Instant::now() + FLUSH_EVERY, FLUSH_EVERY);
    let ended = loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break Ended::Cancelled,
            () = shared.abandon.cancelled() => break Ended::Abandoned,
            report = &mut run => break Ended::Ran(report),
            _ = flush.tick() => output.flush(),
        }
    };
    output.flush();
    ended
}

/// The retry policy of `job`: a webhook delivery's own, or that of its `plugin`, or the
/// default one for a plugin not loaded.
pub(super) fn retry_policy(job: &Job, plugin: Option<&Plugin>) -> RetryPolicy {
    if job.plugin == alerts::WEBHOOK_PLUGIN {
        return alerts::retry_policy();
    }
    plugin.map(|p| p.settings.retry.clone()).unwrap_or_default()
}

/// A failed attempt's [`Failure`]: where it goes by the retry policy.
pub(super) fn failure(
    job: &Job,
    error: JobError,
    policy: &RetryPolicy,
    digest: Option<String>,
    usage: Usage,
    now: Millis,
) -> Failure {
    let then = after_failure(
        &error,
        job.attempt,
        job.max_attempts,
        policy,
        now,
        fastrand::f64(),
    );
    Failure {
        error,
        then,
        plugin_digest: digest,
        usage,
    }
}

/// First wait before writing an outcome again.
const REWRITE_FIRST_WAIT: Duration = Duration::from_millis(100);
/// Longest wait between two tries.
const REWRITE_MAX_WAIT: Duration = Duration::from_secs(5);

/// Stores a run's outcome; returns what that changed, or `None` if it was not stored
/// (see [`write`]).
async fn record(
    shared: &Shared,
    job: &Job,
    lease: LeaseId,
    report: RunReport,
    digest: Option<String>,
    policy: &RetryPolicy,
) -> Option<Changes> {
    let now = now_ms();
    let outcome = match report.outcome {
        RunOutcome::Succeeded(text) => {
            let start: String = text.chars().take(200).collect();
            JsonText::parse(text).map_err(|e| {
                JobError::new(
                    ErrorKind::Fatal,
                    format!("handler returned a result that is not JSON ({e}): {start}"),
                )
            })
        }
        RunOutcome::Failed(error) => Err(error),
    };
    let outcome = match outcome {
        Ok(result) => Ok(Completion {
            result,
            plugin_digest: digest.unwrap_or_default(),
            usage: report.usage,
        }),
        Err(error) => Err(failure(job, error, policy, digest, report.usage, now)),
    };
    write(shared, job.id, lease, outcome, now).await
}

/// Writes an outcome; what it changed, if it landed. A write the store fails is tried
/// again, with backoff, for up to two lease periods (the lease is renewed meanwhile). If
/// it still fails (or the grace period of a shutdown ends first), the outcome is dropped
/// and the caller lets the lease go: the job runs again once it expires.
async fn write(
    shared: &Shared,
    id: JobId,
    lease: LeaseId,
    outcome: Result<Completion, Failure>,
    now: Millis,
) -> Option<Changes> {
    let store = shared.store.as_ref();
    let give_up_at = Instant::now() + 2 * shared.config.lease;
    let mut wait = REWRITE_FIRST_WAIT;
    loop {
        let written = match outcome.clone() {
            Ok(done) => store.complete(id, lease, done, now).await,
            Err(failure) => store.fail(id, lease, failure, now).await,
        };
        match written {
            Ok(changes) => return Some(changes),
            Err(Error::LeaseLost { id }) => {
                tracing::warn!(job = %id, "run finished after its lease was lost; outcome dropped");
                return None;
            }
            Err(e) if Instant::now() + wait < give_up_at => {
                tracing::warn!(job = %id, error = %e, retry_in = ?wait, "writing the run's outcome failed; trying again");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    // Shutdown releases the job instead.
                    () = shared.abandon.cancelled() => return None,
                }
                wait = (wait * 2).min(REWRITE_MAX_WAIT);
            }
            Err(e) => {
                tracing::error!(job = %id, error = %e, "the run's outcome could not be written; giving its lease up, the job runs again once the lease expires");
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(kind: ErrorKind) -> JobError {
        JobError::new(kind, "x")
    }

    #[test]
    fn retryable_failures_are_scheduled_by_the_policy_while_attempts_remain() {
        let policy = RetryPolicy::Delays(vec![10, 20]);
        for kind in [
            ErrorKind::Retryable,
            ErrorKind::Trap,
            ErrorKind::Timeout,
            ErrorKind::OutOfFuel,
            ErrorKind::MemoryLimit,
        ] {
            assert_eq!(
                after_failure(&error(kind), 1, 3, &policy, 1000, 0.5),
                AfterFailure::RetryAt(11_000)
            );
            assert_eq!(
                after_failure(&error(kind), 2, 3, &policy, 1000, 0.5),
                AfterFailure::RetryAt(21_000)
            );
            assert_eq!(
                after_failure(&error(kind), 3, 3, &policy, 1000, 0.5),
                AfterFailure::Fail
            );
        }
    }

    #[test]
    fn fatal_fails_at_once_and_cancelled_cancels() {
        let policy = RetryPolicy::default();
        assert_eq!(
            after_failure(&error(ErrorKind::Fatal), 1, 3, &policy, 0, 0.0),
            AfterFailure::Fail
        );
        assert_eq!(
            after_failure(&error(ErrorKind::Cancelled), 1, 3, &policy, 0, 0.0),
            AfterFailure::Cancel
        );
    }
}
