//! Answers about tasks.

use crate::model::agent::TaskPriority;
use crate::model::{JobId, JobState, Millis, rfc3339};
use crate::store::agents::Task;
use serde::Serialize;
use utoipa::ToSchema;

/// A task with its job: `GET /api/tasks/{id}`, each task of `GET /api/tasks`, and each of
/// an agent's `recent_jobs`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskView {
    /// The task.
    #[schema(value_type = Uuid)]
    pub(crate) task_id: JobId,
    /// The job that runs it.
    #[schema(value_type = Uuid)]
    pub(crate) job_id: JobId,
    /// The agent it is bound to (empty if none).
    pub(crate) agent_id: String,
    /// The command.
    pub(crate) command: String,
    /// The repository it acts on.
    pub(crate) repository_path: String,
    /// How urgent.
    pub(crate) priority: TaskPriority,
    /// The job's queue.
    pub(crate) queue: String,
    /// The job's state.
    pub(crate) state: JobState,
    /// The job's attempt.
    pub(crate) attempt: u32,
    /// The job's most attempts.
    pub(crate) max_attempts: u32,
    /// When the job was created (RFC 3339).
    #[schema(format = DateTime)]
    pub(crate) created_at: String,
    /// When its current attempt started; `null` before.
    #[schema(format = DateTime)]
    pub(crate) started_at: Option<String>,
    /// When it finished; `null` before.
    #[schema(format = DateTime)]
    pub(crate) finished_at: Option<String>,
    /// Its latest progress; `null` if none reported.
    pub(crate) progress: Option<TaskProgress>,
    /// How the command ended (`exec_outcome` of the run); `null` until it ran.
    pub(crate) exec_outcome: Option<&'static str>,
    /// The command's exit code; `null` until it ran, or if it had none.
    pub(crate) exit_code: Option<i32>,
    /// The command's standard output; `null` until it ran.
    pub(crate) output: Option<String>,
    /// The command's standard error; `null` until it ran.
    pub(crate) error_output: Option<String>,
    /// How long the command ran; `null` until it ran.
    pub(crate) duration_ms: Option<u64>,
    /// The job's error, if it failed; `null` otherwise.
    pub(crate) error: Option<crate::model::JobError>,
}

/// The `progress` of a [`TaskView`].
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskProgress {
    /// Percent done.
    pub(crate) percent: u8,
    /// What the run said.
    pub(crate) message: String,
    /// When it said it (RFC 3339).
    #[schema(format = DateTime)]
    pub(crate) updated_at: String,
    /// Seconds left by the rate so far, while the task runs; `null` otherwise.
    pub(crate) eta_seconds: Option<u64>,
}

/// `POST /api/tasks` (201).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SubmittedTask {
    /// The task.
    #[schema(value_type = Uuid)]
    pub(crate) task_id: JobId,
    /// The job that runs it.
    #[schema(value_type = Uuid)]
    pub(crate) job_id: JobId,
    /// The agent it went to.
    pub(crate) agent_id: String,
    /// Says no worker of this host serves the task's queue; absent when one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) warning: Option<String>,
}

/// `GET /api/tasks`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskList {
    /// The tasks, newest first.
    pub(crate) tasks: Vec<TaskView>,
}

/// `POST /api/tasks/{id}/cancel` (202).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CancelledTask {
    /// The task.
    #[schema(value_type = Uuid)]
    pub(crate) task_id: JobId,
    /// Its job.
    #[schema(value_type = Uuid)]
    pub(crate) job_id: JobId,
    /// `cancelled`, or `cancelling` while its running command is being stopped.
    pub(crate) state: &'static str,
}

/// Seconds left by the rate of progress so far, while the task runs.
fn eta_seconds(task: &Task, now: Millis) -> Option<u64> {
    let job = &task.job;
    let progress = job.progress.as_ref()?;
    let started = job.started_at?;
    let percent = i64::from(progress.percent);
    if job.state != JobState::Processing || !(1..100).contains(&percent) {
        return None;
    }
    let spent = (progress.updated_at - started).max(0);
    let left_at_update = spent * (100 - percent) / percent;
    Some(((left_at_update - (now - progress.updated_at)).max(0) / 1000) as u64)
}

impl TaskView {
    /// `task` as clients see it at `now`.
    pub(crate) fn new(task: Task, now: Millis) -> TaskView {
        let eta_seconds = eta_seconds(&task, now);
        let agent_id = task.agent_id().to_owned();
        let (job, exec) = (task.job, task.exec);
        let (exec_outcome, exit_code, duration_ms) =
            exec.as_ref().map_or((None, None, None), |e| {
                (Some(e.outcome), e.exit_code, Some(e.duration_ms))
            });
        let (output, error_output) =
            exec.map_or((None, None), |e| (Some(e.stdout), Some(e.stderr)));
        TaskView {
            task_id: task.id,
            job_id: job.id,
            agent_id,
            command: task.command,
            repository_path: task.repository_path,
            priority: task.priority,
            queue: job.queue,
            state: job.state,
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            created_at: rfc3339::format(job.created_at),
            started_at: job.started_at.map(rfc3339::format),
            finished_at: job.finished_at.map(rfc3339::format),
            progress: job.progress.map(|p| TaskProgress {
                percent: p.percent,
                message: p.message,
                updated_at: rfc3339::format(p.updated_at),
                eta_seconds,
            }),
            exec_outcome,
            exit_code,
            output,
            error_output,
            duration_ms,
            error: job.error,
        }
    }
}
