//! Answers about recurring jobs.

use crate::model::{JobId, JobState, rfc3339};
use crate::store::{Misfire, RecurringJob};
use serde::Serialize;
use utoipa::ToSchema;

/// A recurring job: `GET /api/recurring/{id}`, `POST /api/recurring/{id}/pause` and
/// `/resume`, each of `GET /api/recurring`, and `PUT /api/recurring/{id}` (201 when new,
/// 200 when replaced; with a `warning`, see [`super::Warned`]).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RecurringView {
    /// Its id.
    pub(crate) id: String,
    /// Its cron expression, as given.
    pub(crate) cron: String,
    /// The time zone the expression is read in.
    pub(crate) timezone: String,
    /// The plugin its jobs run.
    pub(crate) plugin: String,
    /// The args of every job (a JSON object).
    pub(crate) args: serde_json::Value,
    /// The queue of its jobs.
    pub(crate) queue: String,
    /// The priority of its jobs.
    pub(crate) priority: i32,
    /// Attempts each job gets.
    pub(crate) max_attempts: u32,
    /// What missed occurrences get.
    pub(crate) misfire: Misfire,
    /// Whether it is paused.
    pub(crate) paused: bool,
    /// When it fires next (RFC 3339); `null` if never (or paused).
    #[schema(format = DateTime)]
    pub(crate) next_run_at: Option<String>,
    /// When it last fired; `null` if never.
    #[schema(format = DateTime)]
    pub(crate) last_run_at: Option<String>,
    /// The job it last enqueued; `null` if none.
    #[schema(value_type = Option<Uuid>)]
    pub(crate) last_job_id: Option<JobId>,
    /// That job's state; `null` if none (or deleted).
    pub(crate) last_job_state: Option<JobState>,
}

/// `GET /api/recurring`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RecurringList {
    /// Every recurring job.
    pub(crate) recurring: Vec<RecurringView>,
}

/// `GET /api/recurring/preview`: when a schedule would fire next.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RecurringPreview {
    /// The cron expression, as given.
    pub(crate) cron: String,
    /// The time zone it is read in.
    pub(crate) timezone: String,
    /// The expression in words (the expression itself when it has no plain wording).
    pub(crate) description: String,
    /// The next fire times after now, oldest first (RFC 3339, UTC); fewer than asked
    /// when the schedule stops firing.
    #[schema(value_type = Vec<String>, format = DateTime)]
    pub(crate) next: Vec<String>,
}

/// `POST /api/recurring/{id}/trigger` (201): the job enqueued now.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RecurringTriggered {
    /// The job.
    #[schema(value_type = Uuid)]
    pub(crate) id: JobId,
    /// Its state.
    pub(crate) state: JobState,
    /// The recurring job it belongs to.
    pub(crate) recurring_id: String,
}

impl From<RecurringJob> for RecurringView {
    fn from(recurring: RecurringJob) -> RecurringView {
        let definition = recurring.definition;
        RecurringView {
            cron: definition.schedule.expression().to_owned(),
            timezone: definition.schedule.timezone().to_owned(),
            id: definition.id,
            plugin: definition.plugin,
            args: definition.args,
            queue: definition.queue,
            priority: definition.priority,
            max_attempts: definition.max_attempts,
            misfire: definition.misfire,
            paused: recurring.paused,
            next_run_at: recurring.next_run_at.map(rfc3339::format),
            last_run_at: recurring.last_run_at.map(rfc3339::format),
            last_job_id: recurring.last_job_id,
            last_job_state: recurring.last_job_state,
        }
    }
}
