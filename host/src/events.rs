//! The in-process event bus: job, agent and task events for whoever listens (the live
//! event stream, the benchmark).
//!
//! Publishing never blocks: the bus keeps the last [`CAPACITY`] events, and a subscriber
//! that falls further behind misses events (its receiver says how many), so a slow
//! listener never slows the host or grows its memory. The same last events are kept for
//! clients that reconnect and resume after the last event they saw; events are numbered
//! and kept while someone listens, and for [`RESUME_WINDOW`] after the last one left.

use crate::model::agent::AgentStatus;
use crate::model::{JobId, JobState, Millis, now_ms};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use uuid::Uuid;

/// Events kept for slow subscribers and for resuming clients.
pub const CAPACITY: usize = 4096;
/// How long events are still numbered and kept after the last subscriber left, so a
/// client that reconnects can resume.
pub const RESUME_WINDOW_MS: Millis = 60_000;
/// [`RESUME_WINDOW_MS`] as a duration.
pub const RESUME_WINDOW: std::time::Duration =
    std::time::Duration::from_millis(RESUME_WINDOW_MS as u64);

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A job was stored.
    JobCreated {
        /// Its first state (`enqueued`, `scheduled` or `awaiting`).
        state: JobState,
        /// Its queue.
        queue: String,
        /// Why it is in that state.
        reason: String,
    },
    /// A job moved from one state to another.
    JobMoved {
        /// The state it left.
        from: JobState,
        /// The state it entered.
        to: JobState,
        /// Its queue.
        queue: String,
        /// Its attempts so far (the one that starts, for `job.started`).
        attempt: u32,
        /// Why.
        reason: String,
    },
    /// A job was deleted.
    JobDeleted {
        /// The state it was in.
        from: JobState,
        /// Its queue.
        queue: String,
        /// Why.
        reason: String,
    },
    /// A running job reported progress (at most one event per job every 100 ms).
    Progress {
        /// 0 to 100.
        percent: u8,
        /// What it is doing.
        message: String,
    },
    /// A running job wrote a log line.
    Log {
        /// Its level, or `stdout`/`stderr`.
        level: String,
        /// The line.
        message: String,
    },
    /// A batch was stored with its jobs.
    BatchCreated {
        /// The batch.
        batch: JobId,
        /// Its jobs (callbacks not counted).
        size: u32,
    },
    /// Jobs of a batch finished; `done` when the last one did.
    BatchProgress {
        /// The batch.
        batch: JobId,
        /// Its jobs, finished or not.
        total: u32,
        /// Jobs that succeeded.
        succeeded: u32,
        /// Jobs that failed.
        failed: u32,
        /// Jobs that were cancelled.
        cancelled: u32,
        /// Whether every job finished (the event is then `batch.completed`).
        done: bool,
    },
    /// A batch was cancelled.
    BatchCancelled {
        /// The batch.
        batch: JobId,
    },
    /// A workflow run started.
    WorkflowStarted {
        /// The run.
        run: JobId,
        /// The workflow it runs.
        workflow: String,
    },
    /// A step of a workflow run started (with its job), was skipped, or ended.
    WorkflowStep {
        /// The run.
        run: JobId,
        /// The step.
        step: String,
        /// Its new state.
        state: &'static str,
    },
    /// A workflow run ended: `succeeded`, `failed` or `cancelled`.
    WorkflowEnded {
        /// The run.
        run: JobId,
        /// How it ended.
        state: &'static str,
    },
    /// A recurring job enqueued its job (on schedule or triggered).
    RecurringFired {
        /// The recurring job.
        recurring: String,
    },
    /// A queue was paused or resumed.
    QueuePaused {
        /// The queue.
        queue: String,
        /// `true`: paused (`queue.paused`); `false`: resumed (`queue.resumed`).
        paused: bool,
    },
    /// An agent's status changed.
    AgentStatus {
        /// The new status.
        status: AgentStatus,
        /// The status before, if known.
        previous: Option<AgentStatus>,
        /// Why, for offline and error.
        reason: Option<String>,
    },
    /// A run that held an agent ended, and the agent's lock on it was freed.
    AgentReleased,
    /// A task was submitted.
    TaskCreated {
        /// The queue its job went to.
        queue: String,
    },
    /// A task that had not started moved to another agent.
    TaskMoved {
        /// The agent it left.
        from: String,
    },
    /// A task's job started a command on its agent.
    TaskExecStarted {
        /// The command.
        command: String,
    },
    /// A task's command ended.
    TaskExecFinished {
        /// `exited`, `timeout` or `spawn_failure`.
        outcome: &'static str,
        /// Exit code, when it exited.
        exit_code: Option<i32>,
        /// How long it ran.
        duration_ms: u64,
    },
    /// A version of a plugin was loaded from the plugin folder.
    PluginLoaded {
        /// The plugin.
        plugin: String,
        /// sha256 of its module.
        digest: String,
    },
    /// A plugin's latest module or manifest could not be loaded.
    PluginFailed {
        /// The plugin.
        plugin: String,
        /// Why.
        error: String,
    },
    /// A plugin's module left the plugin folder.
    PluginRemoved {
        /// The plugin.
        plugin: String,
    },
    /// An alert rule's condition began to hold for a subject: an incident opened.
    AlertFired(AlertNotice),
    /// An incident's condition cleared: it resolved.
    AlertResolved(AlertNotice),
}

/// What an alert event says about its incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertNotice {
    /// The rule.
    pub rule: String,
    /// The incident.
    pub incident: Uuid,
    /// What it is about.
    pub subject: String,
    /// What was seen when it opened.
    pub summary: String,
}

impl Event {
    /// The event's type as clients filter on it: `job.created`, `job.enqueued`,
    /// `job.started`, `job.progress`, `job.log`, `job.retrying`, `job.scheduled`,
    /// `job.succeeded`, `job.failed`, `job.cancelled`, `job.deleted`, `batch.created`,
    /// `batch.progress`, `batch.completed`, `batch.cancelled`, `workflow.started`,
    /// `workflow.step`, `workflow.succeeded`, `workflow.failed`, `workflow.cancelled`,
    /// `recurring.fired`, `queue.paused`, `queue.resumed`, `agent.status`,
    /// `agent.released`, `task.created`, `task.moved`, `task.exec_started`,
    /// `task.exec_finished`, `plugin.loaded`, `plugin.failed`, `plugin.removed`,
    /// `alert.fired`, `alert.resolved`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::JobCreated { .. } => "job.created",
            Event::JobMoved { from, to, .. } => moved_type(*from, *to),
            Event::JobDeleted { .. } => "job.deleted",
            Event::Progress { .. } => "job.progress",
            Event::Log { .. } => "job.log",
            Event::BatchCreated { .. } => "batch.created",
            Event::BatchProgress { done: false, .. } => "batch.progress",
            Event::BatchProgress { done: true, .. } => "batch.completed",
            Event::BatchCancelled { .. } => "batch.cancelled",
            Event::WorkflowStarted { .. } => "workflow.started",
            Event::WorkflowStep { .. } => "workflow.step",
            Event::WorkflowEnded { state, .. } => match *state {
                "succeeded" => "workflow.succeeded",
                "cancelled" => "workflow.cancelled",
                _ => "workflow.failed",
            },
            Event::RecurringFired { .. } => "recurring.fired",
            Event::QueuePaused { paused: true, .. } => "queue.paused",
            Event::QueuePaused { paused: false, .. } => "queue.resumed",
            Event::AgentStatus { .. } => "agent.status",
            Event::AgentReleased => "agent.released",
            Event::TaskCreated { .. } => "task.created",
            Event::TaskMoved { .. } => "task.moved",
            Event::TaskExecStarted { .. } => "task.exec_started",
            Event::TaskExecFinished { .. } => "task.exec_finished",
            Event::PluginLoaded { .. } => "plugin.loaded",
            Event::PluginFailed { .. } => "plugin.failed",
            Event::PluginRemoved { .. } => "plugin.removed",
            Event::AlertFired(_) => "alert.fired",
            Event::AlertResolved(_) => "alert.resolved",
        }
    }

    fn details(&self) -> Value {
        match self {
            Event::JobCreated {
                state,
                queue,
                reason,
            } => json!({"state": state, "queue": queue, "reason": reason}),
            Event::JobMoved {
                from,
                to,
                queue,
                attempt,
                reason,
            } => json!({"state": to, "previous": from, "queue": queue, "attempt": attempt,
                        "reason": reason}),
            Event::JobDeleted {
                from,
                queue,
                reason,
            } => json!({"previous": from, "queue": queue, "reason": reason}),
            Event::Progress { percent, message } => {
                json!({"percent": percent, "message": message})
            }
            Event::Log { level, message } => json!({"level": level, "message": message}),
            Event::BatchCreated { batch, size } => json!({"batch_id": batch, "size": size}),
            Event::BatchProgress {
                batch,
                total,
                succeeded,
                failed,
                cancelled,
                done: _,
            } => json!({"batch_id": batch, "total": total, "succeeded": succeeded,
                        "failed": failed, "cancelled": cancelled,
                        "finished": succeeded + failed + cancelled}),
            Event::BatchCancelled { batch } => json!({"batch_id": batch}),
            Event::WorkflowStarted { run, workflow } => {
                json!({"run_id": run, "workflow_id": workflow, "state": "running"})
            }
            Event::WorkflowStep { run, step, state } => {
                json!({"run_id": run, "step": step, "state": state})
            }
            Event::WorkflowEnded { run, state } => json!({"run_id": run, "state": state}),
            Event::RecurringFired { recurring } => json!({"recurring_id": recurring}),
            Event::QueuePaused { queue, .. } => json!({"queue": queue}),
            Event::AgentStatus {
                status,
                previous,
                reason,
            } => json!({"status": status, "previous": previous, "reason": reason}),
            Event::AgentReleased => json!({}),
            Event::TaskCreated { queue } => json!({"queue": queue}),
            Event::TaskMoved { from } => json!({"from_agent_id": from}),
            Event::TaskExecStarted { command } => json!({"command": command}),
            Event::TaskExecFinished {
                outcome,
                exit_code,
                duration_ms,
            } => json!({"outcome": outcome, "exit_code": exit_code, "duration_ms": duration_ms}),
            Event::PluginLoaded { plugin, digest } => {
                json!({"plugin": plugin, "digest": digest})
            }
            Event::PluginFailed { plugin, error } => json!({"plugin": plugin, "error": error}),
            Event::PluginRemoved { plugin } => json!({"plugin": plugin}),
            Event::AlertFired(notice) | Event::AlertResolved(notice) => json!({
                "rule_id": notice.rule, "incident_id": notice.incident,
                "subject": notice.subject, "summary": notice.summary,
            }),
        }
    }
}

/// The type of a job's move from `from` to `to`.
fn moved_type(from: JobState, to: JobState) -> &'static str {
    match to {
        JobState::Enqueued => "job.enqueued",
        JobState::Processing => "job.started",
        JobState::Succeeded => "job.succeeded",
        JobState::Failed => "job.failed",
        JobState::Cancelled => "job.cancelled",
        JobState::Scheduled if from == JobState::Processing => "job.retrying",
        JobState::Scheduled => "job.scheduled",
        JobState::Awaiting => "job.awaiting",
    }
}

/// What an event is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ids {
    /// The job.
    pub job: Option<JobId>,
    /// The task the job runs.
    pub task: Option<JobId>,
    /// The agent.
    pub agent: Option<Arc<str>>,
    /// The attempt (its lease) that produced a run's events.
    pub correlation: Option<Uuid>,
}

impl Ids {
    /// Ids of a job's event.
    pub fn job(id: JobId) -> Ids {
        Ids {
            job: Some(id),
            ..Ids::default()
        }
    }

    /// Ids of an agent's event.
    pub fn agent(id: &str) -> Ids {
        Ids {
            agent: Some(id.into()),
            ..Ids::default()
        }
    }
}

/// An event as published: numbered in publishing order and timed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Position in this host's stream, from 1.
    pub seq: u64,
    /// When it was published.
    pub at: Millis,
    /// What it is about.
    pub ids: Ids,
    /// What happened.
    pub event: Event,
}

impl Published {
    /// The event as clients see it.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "seq": self.seq,
            "type": self.event.type_name(),
            "at": crate::model::rfc3339::format(self.at),
        });
        let ids = [
            ("job_id", self.ids.job.map(|id| id.to_string())),
            ("task_id", self.ids.task.map(|id| id.to_string())),
            ("agent_id", self.ids.agent.as_deref().map(str::to_owned)),
            (
                "correlation_id",
                self.ids.correlation.map(|id| id.to_string()),
            ),
        ];
        if let (Value::Object(body), Value::Object(details)) = (&mut body, self.event.details()) {
            for (name, id) in ids {
                if let Some(id) = id {
                    body.insert(name.to_owned(), Value::String(id));
                }
            }
            body.extend(details);
        }
        body
    }
}

/// Where a resuming subscriber starts.
#[derive(Debug)]
pub struct Resumed {
    /// Kept events after the one the client saw last, oldest first.
    pub replay: Vec<Published>,
    /// Events after the client's last one that are no longer kept (or, after a restart
    /// of the host, that cannot be told apart): `Some` when it missed any.
    pub missed: Option<u64>,
    /// Every event published from now on.
    pub live: Subscription,
}

/// A subscriber's receiver; when the last one is dropped, events are still kept for
/// [`RESUME_WINDOW`].
#[derive(Debug)]
pub struct Subscription {
    receiver: broadcast::Receiver<Published>,
    keep_until: Arc<AtomicI64>,
}

impl Subscription {
    /// The next event, or how many this subscriber missed.
    ///
    /// # Errors
    /// As [`broadcast::Receiver::recv`].
    pub async fn recv(&mut self) -> Result<Published, broadcast::error::RecvError> {
        self.receiver.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.keep_until
            .fetch_max(now_ms() + RESUME_WINDOW_MS, Ordering::Relaxed);
    }
}

/// Publishes [`Event`]s to any number of subscribers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    /// When this bus was made: event numbers count from 1 again in every run of the host,
    /// so a client's last event id names the run too.
    epoch: Millis,
    sender: broadcast::Sender<Published>,
    /// The last [`CAPACITY`] events and the number of the last one published.
    kept: Arc<Mutex<(VecDeque<Published>, u64)>>,
    /// Until when events are kept with nobody listening.
    keep_until: Arc<AtomicI64>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            epoch: now_ms(),
            sender: broadcast::channel(CAPACITY).0,
            kept: Arc::default(),
            keep_until: Arc::default(),
        }
    }
}

impl EventBus {
    /// When this bus was made; with an event's number, it identifies the event across
    /// runs of the host.
    pub fn epoch(&self) -> Millis {
        self.epoch
    }

    /// Whether anyone listens (or may resume): events need not even be built otherwise.
    pub fn is_heard(&self) -> bool {
        self.sender.receiver_count() > 0 || self.keep_until.load(Ordering::Relaxed) > now_ms()
    }

    /// Sends `event` about `ids` to current subscribers, if any.
    pub fn publish(&self, ids: Ids, event: Event) {
        if !self.is_heard() {
            return;
        }
        let mut kept = self.kept.lock().expect("event bus lock poisoned");
        kept.1 += 1;
        let published = Published {
            seq: kept.1,
            at: now_ms(),
            ids,
            event,
        };
        if kept.0.len() == CAPACITY {
            kept.0.pop_front();
        }
        kept.0.push_back(published.clone());
        let _ = self.sender.send(published);
    }

    /// How many clients listen now.
    pub fn clients(&self) -> usize {
        self.sender.receiver_count()
    }

    /// Receives every event published from now on.
    pub fn subscribe(&self) -> Subscription {
        Subscription {
            receiver: self.sender.subscribe(),
            keep_until: self.keep_until.clone(),
        }
    }

    /// Receives the kept events after number `last_seen`, then every event published
    /// from now on, with nothing lost or repeated in between.
    pub fn resume(&self, last_seen: u64) -> Resumed {
        let kept = self.kept.lock().expect("event bus lock poisoned");
        let (events, newest) = &*kept;
        let live = self.subscribe();
        if last_seen > *newest {
            // A number this run never gave (another run's): nothing can be matched.
            return Resumed {
                replay: events.iter().cloned().collect(),
                missed: Some(0),
                live,
            };
        }
        let oldest = events.front().map_or(newest + 1, |e| e.seq);
        let missed = oldest.saturating_sub(last_seen + 1);
        Resumed {
            replay: events
                .iter()
                .filter(|e| e.seq > last_seen)
                .cloned()
                .collect(),
            missed: (missed > 0).then_some(missed),
            live,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::new_job_id;

    fn started(attempt: u32) -> Event {
        moved(JobState::Enqueued, JobState::Processing, attempt)
    }

    fn moved(from: JobState, to: JobState, attempt: u32) -> Event {
        Event::JobMoved {
            from,
            to,
            queue: "default".into(),
            attempt,
            reason: "because".into(),
        }
    }

    #[tokio::test]
    async fn events_are_numbered_and_shown_with_their_type_and_ids() {
        let bus = EventBus::default();
        let id = new_job_id();
        bus.publish(Ids::job(id), started(1));
        let mut events = bus.subscribe();
        let task = new_job_id();
        let ids = Ids {
            job: Some(id),
            task: Some(task),
            agent: Some("a1".into()),
            correlation: None,
        };
        bus.publish(
            ids,
            Event::Progress {
                percent: 50,
                message: "half".into(),
            },
        );
        bus.publish(
            Ids::job(id),
            moved(JobState::Processing, JobState::Scheduled, 1),
        );
        let progress = events.recv().await.unwrap();
        let retrying = events.recv().await.unwrap();
        assert_eq!(
            (progress.seq, retrying.seq),
            (1, 2),
            "unheard events are not numbered"
        );
        let json = progress.to_json();
        assert_eq!(json["type"], "job.progress");
        assert_eq!(json["percent"], 50);
        assert_eq!(json["job_id"], json!(id));
        assert_eq!(json["task_id"], json!(task));
        assert_eq!(json["agent_id"], "a1");
        assert!(json.get("correlation_id").is_none());
        let retrying = retrying.to_json();
        assert_eq!(retrying["type"], "job.retrying");
        assert_eq!(
            (
                &retrying["state"],
                &retrying["previous"],
                &retrying["attempt"]
            ),
            (&json!("scheduled"), &json!("processing"), &json!(1))
        );
    }

    #[test]
    fn a_move_is_named_for_the_state_it_enters() {
        use JobState::*;
        let name = |from, to| moved(from, to, 1).type_name();
        assert_eq!(name(Scheduled, Enqueued), "job.enqueued");
        assert_eq!(name(Awaiting, Enqueued), "job.enqueued");
        assert_eq!(name(Enqueued, Processing), "job.started");
        assert_eq!(name(Processing, Scheduled), "job.retrying");
        assert_eq!(name(Enqueued, Scheduled), "job.scheduled");
        assert_eq!(name(Processing, Succeeded), "job.succeeded");
        assert_eq!(name(Processing, Failed), "job.failed");
        assert_eq!(name(Awaiting, Cancelled), "job.cancelled");
        let deleted = Event::JobDeleted {
            from: Succeeded,
            queue: "q".into(),
            reason: "deleted by request".into(),
        };
        assert_eq!(deleted.type_name(), "job.deleted");
        let published = Published {
            seq: 1,
            at: 0,
            ids: Ids::default(),
            event: deleted,
        };
        let json = published.to_json();
        assert_eq!(
            (&json["previous"], json.get("state")),
            (&json!("succeeded"), None)
        );
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_how_much_it_missed() {
        let bus = EventBus::default();
        let mut slow = bus.subscribe();
        let id = new_job_id();
        for attempt in 0..(CAPACITY as u32 + 10) {
            bus.publish(Ids::job(id), started(attempt));
        }
        match slow.recv().await {
            Err(broadcast::error::RecvError::Lagged(missed)) => assert_eq!(missed, 10),
            other => panic!("expected a lag notice, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_client_resumes_after_its_last_event_even_after_everyone_left() {
        let bus = EventBus::default();
        let id = new_job_id();
        drop(bus.subscribe());
        assert!(
            bus.is_heard(),
            "events are kept for a while after the last one left"
        );
        for attempt in 1..=5 {
            bus.publish(Ids::job(id), started(attempt));
        }
        let mut resumed = bus.resume(2);
        let replayed: Vec<u64> = resumed.replay.iter().map(|e| e.seq).collect();
        assert_eq!(replayed, [3, 4, 5]);
        assert_eq!(resumed.missed, None);
        bus.publish(Ids::job(id), started(6));
        assert_eq!(resumed.live.recv().await.unwrap().seq, 6);
        assert_eq!(bus.resume(99).missed, Some(0), "numbers from another run");
    }

    #[tokio::test]
    async fn resuming_past_the_kept_events_says_how_many_were_lost() {
        let bus = EventBus::default();
        let _listener = bus.subscribe();
        let id = new_job_id();
        for attempt in 0..(CAPACITY as u32 + 10) {
            bus.publish(Ids::job(id), started(attempt));
        }
        let resumed = bus.resume(5);
        assert_eq!(resumed.missed, Some(5));
        assert_eq!(resumed.replay.len(), CAPACITY);
        assert_eq!(resumed.replay[0].seq, 11);
    }

    #[test]
    fn nothing_is_kept_when_nobody_ever_listened() {
        let bus = EventBus::default();
        assert!(!bus.is_heard());
        bus.publish(Ids::job(new_job_id()), started(1));
        assert!(bus.resume(0).replay.is_empty());
    }
}
