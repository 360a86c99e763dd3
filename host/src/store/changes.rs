//! What a write changed: every job that moved from one state to another, came into
//! being or was deleted, including the moves that the write's rules caused in turn
//! (continuations released or cancelled, batch callbacks), and the progress of the
//! batches those jobs belong to. The store hands every write's changes to a
//! [`ChangeSink`] as the write commits; the engine's sink publishes one event per
//! change.

use crate::model::{Job, JobId, JobState, Millis};
use crate::store::LeaseId;
use std::sync::{Arc, OnceLock};

/// One job's move, as a write made it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobChange {
    /// The job.
    pub id: JobId,
    /// The state it left; `None` when the write created it.
    pub from: Option<JobState>,
    /// The state it entered; `None` when the write deleted it.
    pub to: Option<JobState>,
    /// Why, as its history says.
    pub reason: String,
    /// When.
    pub at: Millis,
    /// Its queue.
    pub queue: String,
    /// The plugin that handles it.
    pub plugin: String,
    /// Its attempts so far (the one that starts, for a move to `processing`).
    pub attempt: u32,
    /// The batch it belongs to.
    pub batch: Option<JobId>,
    /// The agent it is bound to.
    pub agent: Option<String>,
    /// The task it runs, for a task's job.
    pub task: Option<JobId>,
    /// The lease of the run that starts, for a move to `processing`.
    pub lease: Option<LeaseId>,
}

impl JobChange {
    /// The move the claim of `job` (running `task`, if a task's job) made: `enqueued`
    /// → `processing` under `lease`.
    pub fn started(job: &Job, lease: LeaseId, task: Option<JobId>) -> JobChange {
        JobChange {
            id: job.id,
            from: Some(JobState::Enqueued),
            to: Some(JobState::Processing),
            reason: format!("attempt {} of {} started", job.attempt, job.max_attempts),
            at: job.started_at.unwrap_or(job.created_at),
            queue: job.queue.clone(),
            plugin: job.plugin.clone(),
            attempt: job.attempt,
            batch: None,
            agent: job.agent_id.clone(),
            task,
            lease: Some(lease),
        }
    }

    /// Whether the job just became ready to run.
    pub fn is_ready(&self) -> bool {
        self.to == Some(JobState::Enqueued)
    }

    /// Whether this move ended a run on an agent, which frees that agent's lock.
    pub fn frees_agent(&self) -> Option<&str> {
        let left_run =
            self.from == Some(JobState::Processing) && self.to != Some(JobState::Processing);
        self.agent.as_deref().filter(|_| left_run)
    }
}

/// Where a batch's jobs stand after a write finished some of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchProgress {
    /// The batch.
    pub id: JobId,
    /// Its jobs (callbacks not counted).
    pub total: u32,
    /// Of those, how many succeeded.
    pub succeeded: u32,
    /// How many failed.
    pub failed: u32,
    /// How many were cancelled.
    pub cancelled: u32,
}

impl BatchProgress {
    /// Jobs that finished, however.
    pub fn finished(&self) -> u32 {
        self.succeeded + self.failed + self.cancelled
    }

    /// Whether every job finished.
    pub fn is_done(&self) -> bool {
        self.finished() >= self.total
    }
}

/// Everything one write changed, in the order it happened.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Changes {
    /// Jobs that moved, in order; one job may move more than once.
    pub jobs: Vec<JobChange>,
    /// Batches whose jobs finished in this write.
    pub batches: Vec<BatchProgress>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.batches.is_empty()
    }

    /// The moves of job `id`, in order.
    pub fn of(&self, id: JobId) -> impl Iterator<Item = &JobChange> {
        self.jobs.iter().filter(move |change| change.id == id)
    }

    /// Whether some job became ready to run.
    pub fn any_ready(&self) -> bool {
        self.jobs.iter().any(JobChange::is_ready)
    }
}

/// Where a store sends what each write changed: in the order the writes commit, before
/// the write returns to its caller, so that what is told about a job is told in the
/// order it happened.
pub trait ChangeSink: std::fmt::Debug + Send + Sync + 'static {
    /// Takes what one write changed.
    fn changed(&self, changes: &Changes);

    /// Whether anyone listens now: when not, a store may leave out the changes that only
    /// the sink would see (a claim's moves, which no caller needs).
    fn listening(&self) -> bool;

    /// Takes the size (writes carried) and duration of one group commit.
    fn committed(&self, writes: usize, took: std::time::Duration) {
        let _ = (writes, took);
    }

    /// Takes what a write through another host changed (told by a database several hosts
    /// share), in the order that host's writes committed.
    fn changed_elsewhere(&self, changes: &Changes) {
        let _ = changes;
    }

    /// Hears that cancelling `job`, which runs, was asked for through another host (told
    /// by a database several hosts share): the host running it stops it.
    fn cancel_asked(&self, job: JobId) {
        let _ = job;
    }
}

/// A write's own answer together with what it changed.
#[derive(Debug, Clone)]
pub struct Changed<T> {
    /// What the write returns.
    pub value: T,
    /// What it changed.
    pub changes: Changes,
}

/// Where committed changes go, once the engine has said (see [`ChangeSink`]).
pub(crate) type Sink = Arc<OnceLock<Arc<dyn ChangeSink>>>;

/// Whether a sink is set and anyone listens to it.
pub(crate) fn listening(sink: &Sink) -> bool {
    sink.get().is_some_and(|sink| sink.listening())
}

/// Hands committed `changes` to the sink, if there is one and they are not empty.
pub(crate) fn report(sink: &Sink, changes: &Changes) {
    if let Some(sink) = sink.get()
        && !changes.is_empty()
    {
        sink.changed(changes);
    }
}
