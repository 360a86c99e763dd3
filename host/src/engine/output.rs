//! A run's output on its way to the store: progress and log lines are buffered and
//! written at most every [`FLUSH_EVERY`], so progress is rate-limited and a short run's
//! output rides in the same group commit as its completion. Each write is also published
//! on the event bus.

use super::agents::AgentRun;
use crate::events::{Event, EventBus, Ids};
use crate::model::{JobId, LogLine, Progress, now_ms};
use crate::runtime::{AgentInfo, ExecError, ExecLog, ExecResult, RunHost};
use crate::store::{JobStore, LeaseId};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the executor writes a running job's buffered output.
pub(super) const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Lines buffered before they are written without waiting for the next flush.
const MAX_BUFFERED_LINES: usize = 1000;

/// The [`RunHost`] of one run: guest imports land here.
pub(super) struct RunOutput {
    store: Arc<dyn JobStore>,
    events: EventBus,
    id: JobId,
    /// The attempt this run is: its log lines are stored under it.
    attempt: u32,
    lease: LeaseId,
    /// The ids of the run's events.
    ids: Ids,
    /// The agent the job is bound to.
    agent: Option<AgentRun>,
    pending: Mutex<Pending>,
}

/// Output not yet handed to the store.
#[derive(Default)]
struct Pending {
    progress: Option<Progress>,
    logs: Vec<LogLine>,
}

impl RunOutput {
    pub(super) fn new(
        store: Arc<dyn JobStore>,
        events: EventBus,
        id: JobId,
        attempt: u32,
        lease: LeaseId,
        ids: Ids,
        agent: Option<AgentRun>,
    ) -> Self {
        Self {
            store,
            events,
            id,
            attempt,
            lease,
            ids,
            agent,
            pending: Mutex::default(),
        }
    }

    /// Hands whatever output is pending to the store.
    pub(super) fn flush(&self) {
        let mut pending = self.pending.lock().expect("pending output lock poisoned");
        self.write(&mut pending);
    }

    fn write(&self, pending: &mut Pending) {
        let heard = self.events.is_heard();
        if let Some(progress) = pending.progress.take() {
            if heard {
                self.events.publish(
                    self.ids.clone(),
                    Event::Progress {
                        percent: progress.percent,
                        message: progress.message.clone(),
                    },
                );
            }
            self.store.record_progress(self.id, self.lease, progress);
        }
        if !pending.logs.is_empty() {
            for line in pending.logs.iter().filter(|_| heard) {
                self.events.publish(
                    self.ids.clone(),
                    Event::Log {
                        level: line.level.clone(),
                        message: line.message.clone(),
                    },
                );
            }
            self.store
                .append_logs(self.id, self.attempt, std::mem::take(&mut pending.logs));
        }
    }
}

#[async_trait::async_trait]
impl RunHost for RunOutput {
    fn progress(&self, percent: u8, message: &str) {
        let progress = Progress {
            percent,
            message: message.to_owned(),
            updated_at: now_ms(),
        };
        self.pending
            .lock()
            .expect("pending output lock poisoned")
            .progress = Some(progress);
    }

    fn log(&self, level: &str, message: &str) {
        let line = LogLine {
            at: now_ms(),
            level: level.to_owned(),
            message: message.to_owned(),
        };
        let mut pending = self.pending.lock().expect("pending output lock poisoned");
        pending.logs.push(line);
        if pending.logs.len() >= MAX_BUFFERED_LINES {
            self.write(&mut pending);
        }
    }

    fn agent(&self) -> Option<AgentInfo> {
        self.agent.as_ref().and_then(AgentRun::info)
    }

    async fn exec(
        &self,
        command: String,
        timeout: Duration,
        log: &ExecLog,
    ) -> Result<ExecResult, ExecError> {
        let Some(agent) = &self.agent else {
            return Err(ExecError::Unavailable(
                "this job is not bound to an agent".into(),
            ));
        };
        agent
            .exec(command, timeout, &|stream, line| log(stream.level(), line))
            .await
    }
}
