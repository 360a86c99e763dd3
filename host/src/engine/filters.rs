//! Job filters: host-side middleware around every run (Hangfire's job filters).
//!
//! A [`Filter`] is told before a run starts, after it ends, and when the job's state
//! changes because of it. The host's own run log and counters are filters; alerting
//! and metrics export hang on the same seam. Filters run on the executor's path, so
//! they must be quick and must not block.

use crate::metrics::Metrics;
use crate::model::{Job, JobState};
use crate::runtime::{RunOutcome, RunReport};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Middleware around runs. Every method has an empty default.
pub trait Filter: std::fmt::Debug + Send + Sync {
    /// A worker is about to run `job` (already `processing`, attempt counted).
    fn before_run(&self, job: &Job) {
        let _ = job;
    }

    /// The run of `job` ended with `report` (not called for runs abandoned at shutdown).
    fn after_run(&self, job: &Job, report: &RunReport) {
        let _ = (job, report);
    }

    /// The run moved `job` to `state`.
    fn on_state_change(&self, job: &Job, state: JobState) {
        let _ = (job, state);
    }
}

/// Feeds the metrics: each run's start and pickup latency, and how it ended.
#[derive(Debug)]
pub struct Measure(pub Arc<Metrics>);

impl Filter for Measure {
    fn before_run(&self, job: &Job) {
        self.0.job_event(&job.plugin, &job.queue, "started");
        if let Some(started) = job.started_at {
            let due = job.run_at.max(job.created_at);
            self.0.pickup((started - due) as f64 / 1000.0);
        }
    }

    fn after_run(&self, job: &Job, report: &RunReport) {
        let kind = match &report.outcome {
            RunOutcome::Succeeded(_) => None,
            RunOutcome::Failed(error) => Some(error.kind.as_str()),
        };
        self.0.run(&job.plugin, &job.queue, kind, &report.usage);
    }
}

/// Logs every run's start and end.
#[derive(Debug, Default)]
pub struct RunLog;

impl Filter for RunLog {
    fn before_run(&self, job: &Job) {
        tracing::debug!(job = %job.id, plugin = %job.plugin, attempt = job.attempt, "run started");
    }

    fn after_run(&self, job: &Job, report: &RunReport) {
        match &report.outcome {
            RunOutcome::Succeeded(_) => {
                tracing::debug!(job = %job.id, wall_ms = report.usage.wall_ms, "run succeeded");
            }
            RunOutcome::Failed(error) => tracing::info!(
                job = %job.id, plugin = %job.plugin, attempt = job.attempt,
                kind = error.kind.as_str(), error = %error.message, "run failed"
            ),
        }
    }
}

/// Counts runs and their outcomes since the host started.
#[derive(Debug, Default)]
pub struct Counters {
    started: AtomicU64,
    succeeded: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    fuel: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Counts {
    /// Runs started.
    pub started: u64,
    /// Jobs that succeeded.
    pub succeeded: u64,
    /// Failed runs scheduled for another attempt.
    pub retried: u64,
    /// Jobs that failed for good.
    pub failed: u64,
    /// Jobs cancelled while running.
    pub cancelled: u64,
    /// Fuel all runs consumed.
    pub fuel_consumed: u64,
}

impl Counters {
    /// The counts now.
    pub fn snapshot(&self) -> Counts {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Counts {
            started: get(&self.started),
            succeeded: get(&self.succeeded),
            retried: get(&self.retried),
            failed: get(&self.failed),
            cancelled: get(&self.cancelled),
            fuel_consumed: get(&self.fuel),
        }
    }
}

impl Filter for Counters {
    fn before_run(&self, _: &Job) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    fn after_run(&self, _: &Job, report: &RunReport) {
        self.fuel
            .fetch_add(report.usage.fuel_consumed, Ordering::Relaxed);
    }

    fn on_state_change(&self, _: &Job, state: JobState) {
        let counter = match state {
            JobState::Succeeded => &self.succeeded,
            JobState::Scheduled => &self.retried,
            JobState::Failed => &self.failed,
            JobState::Cancelled => &self.cancelled,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ErrorKind, JobError, Usage, new_job_id};

    fn job() -> Job {
        Job {
            id: new_job_id(),
            plugin: "echo".into(),
            args: crate::model::JsonText::from_value(&serde_json::json!({})),
            queue: "default".into(),
            priority: 0,
            state: JobState::Processing,
            attempt: 1,
            max_attempts: 3,
            run_at: 0,
            created_at: 0,
            started_at: None,
            finished_at: None,
            repository_path: None,
            agent_id: None,
            result: None,
            error: None,
            progress: None,
            plugin_digest: None,
            usage: None,
        }
    }

    #[test]
    fn counters_count_runs_outcomes_and_fuel() {
        let counters = Counters::default();
        let job = job();
        let report = |outcome| RunReport {
            outcome,
            usage: Usage {
                fuel_consumed: 10,
                ..Usage::default()
            },
        };
        counters.before_run(&job);
        counters.after_run(&job, &report(RunOutcome::Succeeded("{}".into())));
        counters.on_state_change(&job, JobState::Succeeded);
        counters.before_run(&job);
        let failed = RunOutcome::Failed(JobError::new(ErrorKind::Trap, "boom"));
        counters.after_run(&job, &report(failed));
        counters.on_state_change(&job, JobState::Scheduled);
        assert_eq!(
            counters.snapshot(),
            Counts {
                started: 2,
                succeeded: 1,
                retried: 1,
                failed: 0,
                cancelled: 0,
                fuel_consumed: 20,
            }
        );
    }
}
