//! Recurring jobs as the store keeps them, and the rule every backend follows when it
//! fires one.
//!
//! A [`RecurringDefinition`] says what to enqueue and on which [`Schedule`]; a
//! [`RecurringJob`] adds where the schedule stands. The store keeps the pending
//! occurrence in `next_run_at`, and one firing pass ([`RecurringStore::fire_recurring`])
//! enqueues the job of every due occurrence and moves `next_run_at` on in the same
//! transaction, so an occurrence is enqueued once even if the host stops around it.
//!
//! # Missed occurrences
//! An occurrence is *missed* when, at the pass that finds it due, the occurrence after
//! it has come due too (the host was down or stalled for a whole period), or it is more
//! than [`MISSED_AFTER`] late. Missed occurrences never cause a burst: however many were
//! missed, [`Misfire::RunOnce`] enqueues one job at once and [`Misfire::Skip`] none, and
//! the schedule resumes at the first occurrence after the pass. An occurrence that is
//! late but not missed (a pass comes every few hundred milliseconds) gets its job.

use crate::cron::Schedule;
use crate::model::{Job, JobId, JobState, JsonText, Millis, rfc3339};
use crate::store::rows::{parse_id, parse_state};
use crate::store::{Changed, Error, NewJob, Result};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How late an occurrence may be found due and still run as itself: a minute.
pub const MISSED_AFTER: Millis = 60_000;

/// What a recurring job does about occurrences missed while the host was down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Misfire {
    /// Enqueue one job at once for all of them.
    #[default]
    RunOnce,
    /// Enqueue nothing; wait for the next occurrence.
    Skip,
}

impl Misfire {
    /// The name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Misfire::RunOnce => "run_once",
            Misfire::Skip => "skip",
        }
    }
}

impl fmt::Display for Misfire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Misfire {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "run_once" => Ok(Misfire::RunOnce),
            "skip" => Ok(Misfire::Skip),
            other => Err(format!(
                "unknown misfire policy `{other}` (use run_once or skip)"
            )),
        }
    }
}

/// What a recurring job enqueues, and when. Built from checked input only.
#[derive(Debug, Clone, PartialEq)]
pub struct RecurringDefinition {
    /// The client's name for it: 1 to 128 characters of `A-Z a-z 0-9 . _ -`.
    pub id: String,
    /// When it fires.
    pub schedule: Schedule,
    /// The plugin its jobs run.
    pub plugin: String,
    /// Arguments of every job (a JSON object).
    pub args: serde_json::Value,
    /// The queue of its jobs.
    pub queue: String,
    /// The priority of its jobs.
    pub priority: i32,
    /// Attempts each job gets.
    pub max_attempts: u32,
    /// What missed occurrences get.
    pub misfire: Misfire,
}

impl RecurringDefinition {
    /// A job of this definition, to run at `run_at` (`None`: at once).
    pub fn new_job(&self, run_at: Option<Millis>) -> NewJob {
        let args = JsonText::from_value(&self.args);
        NewJob {
            priority: self.priority,
            max_attempts: self.max_attempts,
            run_at,
            ..NewJob::new(&self.plugin, args, &self.queue)
        }
    }
}

/// A stored recurring job: its definition and where its schedule stands.
#[derive(Debug, Clone, PartialEq)]
pub struct RecurringJob {
    /// What it enqueues, and when.
    pub definition: RecurringDefinition,
    /// Paused recurring jobs do not fire (a trigger still runs them).
    pub paused: bool,
    /// The pending occurrence; `None` while paused or when the schedule never fires
    /// again.
    pub next_run_at: Option<Millis>,
    /// The occurrence (or trigger time) of its last job.
    pub last_run_at: Option<Millis>,
    /// Its last job, if it enqueued any.
    pub last_job_id: Option<JobId>,
    /// That job's state, if the job still exists.
    pub last_job_state: Option<JobState>,
}

/// What [`RecurringStore::put_recurring`] did.
#[derive(Debug, Clone)]
pub struct PutRecurring {
    /// The stored recurring job.
    pub recurring: RecurringJob,
    /// Whether it is new (else an existing one was replaced).
    pub created: bool,
}

/// Why a job of a recurring job was enqueued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occurrence {
    /// For its occurrence at this time.
    OnTime(Millis),
    /// Once, for the occurrences missed since this time.
    CatchUp {
        /// The first missed occurrence.
        missed_since: Millis,
    },
    /// By request (`trigger`), outside the schedule.
    Triggered,
}

impl Occurrence {
    /// When the job may run: its occurrence, or at once.
    pub fn run_at(self) -> Option<Millis> {
        match self {
            Occurrence::OnTime(at) => Some(at),
            Occurrence::CatchUp { .. } | Occurrence::Triggered => None,
        }
    }

    /// The time recorded as the recurring job's `last_run_at`.
    pub fn at(self, now: Millis) -> Millis {
        self.run_at().unwrap_or(now)
    }

    /// The reason in the job's history: `recurring ID at TIME`, with what kind of run
    /// it is unless it is on time.
    pub fn reason(self, id: &str, now: Millis) -> String {
        let at = rfc3339::format(self.at(now));
        match self {
            Occurrence::OnTime(_) => format!("recurring {id} at {at}"),
            Occurrence::CatchUp { missed_since } => format!(
                "recurring {id} at {at}, once for the occurrences missed since {}",
                rfc3339::format(missed_since)
            ),
            Occurrence::Triggered => format!("recurring {id} at {at}, triggered by request"),
        }
    }
}

/// What one firing pass does with a recurring job whose occurrence `due` has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Firing {
    /// The job to enqueue, if any.
    pub job: Option<Occurrence>,
    /// The occurrence to wait for next, if the schedule fires again.
    pub next_run_at: Option<Millis>,
}

impl Firing {
    /// Decides, at `now`, for the occurrence `due` (`due <= now`) of `schedule`; see the
    /// module doc.
    pub fn plan(schedule: &Schedule, misfire: Misfire, due: Millis, now: Millis) -> Firing {
        let following = schedule.next_after(due);
        let missed = following.is_some_and(|next| next <= now) || now - due > MISSED_AFTER;
        if !missed {
            return Firing {
                job: Some(Occurrence::OnTime(due)),
                next_run_at: following,
            };
        }
        let job = match misfire {
            Misfire::RunOnce => Some(Occurrence::CatchUp { missed_since: due }),
            Misfire::Skip => None,
        };
        Firing {
            job,
            next_run_at: schedule.next_after(now),
        }
    }
}

/// Storage of recurring jobs; every [`crate::store::JobStore`] is one.
#[async_trait]
pub trait RecurringStore {
    /// Creates the recurring job `definition.id`, or replaces its definition. A new or
    /// changed schedule (cron or zone) waits for its first occurrence after `now`; an
    /// unchanged one keeps its pending occurrence, so that re-declaring a schedule (as
    /// every host start does for the config file's) never drops or repeats one.
    /// Whether it is paused does not change.
    async fn put_recurring(
        &self,
        definition: RecurringDefinition,
        now: Millis,
    ) -> Result<PutRecurring>;

    /// One recurring job, with the state of its last job.
    async fn recurring(&self, id: &str) -> Result<Option<RecurringJob>>;

    /// Every recurring job, by id.
    async fn list_recurring(&self) -> Result<Vec<RecurringJob>>;

    /// Deletes a recurring job; the jobs it enqueued stay.
    ///
    /// # Errors
    /// [`crate::store::Error::RecurringNotFound`].
    async fn delete_recurring(&self, id: &str) -> Result<()>;

    /// Pauses a recurring job (it stops firing), or resumes it: a resumed job waits for
    /// its first occurrence after `now`, whatever it missed while paused.
    ///
    /// # Errors
    /// [`crate::store::Error::RecurringNotFound`].
    async fn set_recurring_paused(
        &self,
        id: &str,
        paused: bool,
        now: Millis,
    ) -> Result<RecurringJob>;

    /// The firing pass: for every unpaused recurring job whose occurrence is due by
    /// `now`, enqueues its job (or, for missed occurrences, what its
    /// [`Misfire`] policy says; see the [module doc](self)) and moves it to its next occurrence,
    /// all in one transaction. Returns each recurring job that enqueued a job, with
    /// that job.
    async fn fire_recurring(&self, now: Millis) -> Result<Changed<Vec<(String, JobId)>>>;

    /// Enqueues a job of a recurring job at once, paused or not, without changing its
    /// schedule; it becomes the recurring job's last job.
    ///
    /// # Errors
    /// [`crate::store::Error::RecurringNotFound`].
    async fn trigger_recurring(&self, id: &str, now: Millis) -> Result<Changed<Job>>;
}

/// Every read selects these, in [`RecurringRow`] order.
pub(crate) const SELECT_RECURRING: &str = "SELECT r.id, r.cron, r.timezone, r.plugin, r.args, r.queue, \
    r.priority, r.max_attempts, r.misfire, r.paused, r.next_run_at, r.last_run_at, \
    r.last_job_id, j.state AS last_job_state \
    FROM recurring_jobs AS r LEFT JOIN jobs AS j ON j.id = r.last_job_id";

/// A `recurring_jobs` row with its last job's state, as every backend reads it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RecurringRow {
    id: String,
    cron: String,
    timezone: String,
    plugin: String,
    args: String,
    queue: String,
    priority: i64,
    max_attempts: i64,
    misfire: String,
    paused: bool,
    next_run_at: Option<i64>,
    last_run_at: Option<i64>,
    last_job_id: Option<String>,
    last_job_state: Option<String>,
}

/// A stored value that does not decode: the database was written by something else.
fn corrupt_definition(id: &str, detail: impl std::fmt::Display) -> Error {
    Error::Database(sqlx::Error::Decode(
        format!("stored recurring job {id} is invalid: {detail}").into(),
    ))
}

impl TryFrom<RecurringRow> for RecurringJob {
    type Error = Error;

    fn try_from(row: RecurringRow) -> Result<RecurringJob> {
        let id = row.id;
        let schedule =
            Schedule::parse(&row.cron, &row.timezone).map_err(|e| corrupt_definition(&id, e))?;
        let definition = RecurringDefinition {
            args: serde_json::from_str(&row.args).map_err(|e| corrupt_definition(&id, e))?,
            priority: i32::try_from(row.priority).map_err(|e| corrupt_definition(&id, e))?,
            max_attempts: u32::try_from(row.max_attempts)
                .map_err(|e| corrupt_definition(&id, e))?,
            misfire: row
                .misfire
                .parse()
                .map_err(|e| corrupt_definition(&id, e))?,
            plugin: row.plugin,
            queue: row.queue,
            schedule,
            id,
        };
        Ok(RecurringJob {
            definition,
            paused: row.paused,
            next_run_at: row.next_run_at,
            last_run_at: row.last_run_at,
            last_job_id: row.last_job_id.as_deref().map(parse_id).transpose()?,
            last_job_state: row.last_job_state.as_deref().map(parse_state).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2023-11-14T22:13:20Z, a whole minute plus 20 s.
    const NOW: Millis = 1_700_000_000_000;

    fn every(seconds: u32) -> Schedule {
        Schedule::parse(&format!("*/{seconds} * * * * *"), "UTC").unwrap()
    }

    #[test]
    fn an_occurrence_found_in_time_runs_as_itself() {
        let firing = Firing::plan(&every(5), Misfire::Skip, NOW, NOW + 900);
        assert_eq!(firing.job, Some(Occurrence::OnTime(NOW)));
        assert_eq!(firing.next_run_at, Some(NOW + 5_000));
    }

    #[test]
    fn a_missed_period_runs_once_or_not_at_all_and_resumes_after_now() {
        let late = NOW + 12_300;
        let once = Firing::plan(&every(5), Misfire::RunOnce, NOW, late);
        assert_eq!(once.job, Some(Occurrence::CatchUp { missed_since: NOW }));
        assert_eq!(once.next_run_at, Some(NOW + 15_000));
        let skip = Firing::plan(&every(5), Misfire::Skip, NOW, late);
        assert_eq!(skip.job, None);
        assert_eq!(skip.next_run_at, Some(NOW + 15_000));
    }

    #[test]
    fn a_long_period_counts_as_missed_after_a_minute() {
        let hourly = Schedule::parse("@hourly", "UTC").unwrap();
        let due = NOW - 800_000; // 22:00:00
        let in_time = Firing::plan(&hourly, Misfire::Skip, due, due + MISSED_AFTER);
        assert_eq!(in_time.job, Some(Occurrence::OnTime(due)));
        let late = Firing::plan(&hourly, Misfire::Skip, due, due + MISSED_AFTER + 1);
        assert_eq!(late.job, None);
        assert_eq!(late.next_run_at, hourly.next_after(due + MISSED_AFTER + 1));
    }

    #[test]
    fn reasons_name_the_recurring_job_and_the_time() {
        assert_eq!(
            Occurrence::OnTime(NOW).reason("nightly", 0),
            "recurring nightly at 2023-11-14T22:13:20.000Z"
        );
        let catch_up = Occurrence::CatchUp { missed_since: NOW }.reason("n", NOW + 5_000);
        assert!(catch_up.starts_with("recurring n at 2023-11-14T22:13:25.000Z, "));
        assert!(catch_up.ends_with("missed since 2023-11-14T22:13:20.000Z"));
        assert!(Occurrence::Triggered.reason("n", NOW).contains("triggered"));
    }

    #[test]
    fn misfire_names_round_trip() {
        for misfire in [Misfire::RunOnce, Misfire::Skip] {
            assert_eq!(misfire.as_str().parse::<Misfire>(), Ok(misfire));
        }
        assert!("sometimes".parse::<Misfire>().is_err());
    }
}
