//! What the rules make of a new job and of a failed run: the state it goes to and the
//! reason its history gives, the same on every backend.

use crate::model::{Job, JobId, JobState, Millis};
use crate::store::changes::{Changes, JobChange};
use crate::store::{AfterFailure, ClaimParams, Claimed, Failure, NewJob};
use std::collections::HashMap;

/// The change that storing `job` at `now` makes.
pub(crate) fn created(job: &NewJob, now: Millis) -> JobChange {
    let state = initial_state(job, now);
    JobChange {
        id: job.id,
        from: None,
        to: Some(state),
        reason: initial_reason(state).to_owned(),
        at: now,
        queue: job.queue.clone(),
        plugin: job.plugin.clone(),
        attempt: 0,
        batch: None,
        agent: job.agent_id.clone(),
        task: None,
        lease: None,
    }
}

/// Why a new job is in `state`, as its history says.
pub(crate) fn initial_reason(state: JobState) -> &'static str {
    match state {
        JobState::Awaiting => "submitted: waits for its parents",
        JobState::Scheduled => "submitted for later",
        _ => "submitted",
    }
}

/// The state a new job starts in.
pub(crate) fn initial_state(job: &NewJob, now: Millis) -> JobState {
    match job.run_at {
        _ if job.parents.is_some() => JobState::Awaiting,
        Some(at) if at > now => JobState::Scheduled,
        _ => JobState::Enqueued,
    }
}

/// The state and wording a failure asks for.
pub(crate) fn failure_target(failure: &Failure) -> (JobState, Option<Millis>, String) {
    let kind = failure.error.kind.as_str();
    match failure.then {
        AfterFailure::RetryAt(at) => (
            JobState::Scheduled,
            Some(at),
            format!("{kind}: retry scheduled"),
        ),
        AfterFailure::Fail => (JobState::Failed, None, format!("{kind}: failed")),
        AfterFailure::Cancel => (
            JobState::Cancelled,
            None,
            "cancelled while running".to_owned(),
        ),
    }
}

/// The job `job` becomes when stored at `now`.
pub(crate) fn stored(job: &NewJob, now: Millis) -> Job {
    Job {
        id: job.id,
        plugin: job.plugin.clone(),
        args: job.args.clone(),
        queue: job.queue.clone(),
        priority: job.priority,
        state: initial_state(job, now),
        attempt: 0,
        max_attempts: job.max_attempts,
        run_at: job.run_at.unwrap_or(now),
        created_at: now,
        started_at: None,
        finished_at: None,
        repository_path: job.repository_path.clone(),
        agent_id: job.agent_id.clone(),
        result: None,
        error: None,
        progress: None,
        plugin_digest: None,
        usage: None,
    }
}

/// Puts claimed jobs in dispatch order: queue precedence, priority, age.
pub(crate) fn sort_for_dispatch(params: &ClaimParams, claimed: &mut [Claimed]) {
    let key = |c: &Claimed| {
        let precedence = params.queues.iter().position(|q| *q == c.job.queue);
        (precedence, -c.job.priority, c.job.run_at, c.job.id)
    };
    claimed.sort_by_key(key);
}

/// Adds to each completed or failed job's changes (by job) the moves its end caused, from
/// `all`, the moves of one transaction in the order they were made: a job's own move out
/// of `processing` opens its segment, and the moves its triggers made follow it.
pub(crate) fn attribute(
    all: Vec<JobChange>,
    completed: &mut HashMap<JobId, Changes>,
    failed: &mut HashMap<JobId, Changes>,
) {
    let mut current: Option<JobId> = None;
    for change in all {
        let own = change.from == Some(JobState::Processing)
            && (completed.contains_key(&change.id) || failed.contains_key(&change.id));
        if own {
            current = Some(change.id);
        } else if change.to == Some(JobState::Processing) {
            current = None;
        } else if let Some(cause) = current
            && change.from.is_some()
        {
            let changes = completed.get_mut(&cause);
            if let Some(changes) = changes.or(failed.get_mut(&cause)) {
                changes.jobs.push(change);
            }
        }
    }
}
