//! The writes everyone above the engine makes: submitting jobs and batches, retrying,
//! cancelling and deleting them, recurring jobs, queue controls, workflow runs, API
//! tokens and alert rules.
//! Each goes to the store, whose writes publish what they changed as they commit (see
//! [`super::publish`]); the events that are not a job's (`batch.*`, `workflow.*`,
//! `recurring.fired`, `queue.*`) are published here.

use super::{Scheduler, alerts, workflows};
use crate::events::{Event, EventBus, Ids};
use crate::model::alert::AlertRule;
use crate::model::token::{Role, TokenHash};
use crate::model::{Job, JobId, Millis, now_ms};
use crate::store::alerts::PutAlert;
use crate::store::audit::AuditEntry;
use crate::store::tokens::TokenInfo;
use crate::store::workflows::{Advanced, RunState};
use crate::store::{
    self, CancelOutcome, NewBatch, NewJob, PutRecurring, RecurringDefinition, RecurringJob,
    Submitted,
};
use crate::workflow::Definition;
use serde_json::Value;

impl Scheduler {
    /// Stores a job (or, for a held unique key, returns the job that holds it).
    ///
    /// # Errors
    /// As [`store::JobStore::enqueue`].
    pub async fn submit(&self, job: NewJob, now: Millis) -> store::Result<Submitted> {
        self.shared.store.enqueue(job, now).await
    }

    /// Stores a batch's jobs and callbacks at once.
    ///
    /// # Errors
    /// As [`store::JobStore::create_batch`].
    pub async fn submit_batch(&self, batch: NewBatch, now: Millis) -> store::Result<()> {
        let id = batch.id;
        let size = u32::try_from(batch.jobs.len()).unwrap_or(u32::MAX);
        self.shared.store.create_batch(batch, now).await?;
        self.shared
            .events
            .publish(Ids::default(), Event::BatchCreated { batch: id, size });
        Ok(())
    }

    /// Sends a failed or cancelled job back to `enqueued`.
    ///
    /// # Errors
    /// As [`store::JobStore::retry`].
    pub async fn retry(&self, id: JobId, now: Millis) -> store::Result<Job> {
        Ok(self.shared.store.retry(id, now).await?.value)
    }

    /// Cancels a waiting job, or interrupts a running one.
    ///
    /// # Errors
    /// As [`store::JobStore::cancel`].
    pub async fn cancel(&self, id: JobId, now: Millis) -> store::Result<CancelOutcome> {
        let cancelled = self.shared.store.cancel(id, now).await?;
        if cancelled.value == CancelOutcome::Requested {
            self.shared.held.interrupt(id);
        }
        Ok(cancelled.value)
    }

    /// Cancels a batch: its waiting jobs at once, its running ones interrupted; returns
    /// the running ones.
    ///
    /// # Errors
    /// As [`store::JobStore::cancel_batch`].
    pub async fn cancel_batch(&self, id: JobId, now: Millis) -> store::Result<Vec<JobId>> {
        let cancelled = self.shared.store.cancel_batch(id, now).await?;
        for job in &cancelled.value {
            self.shared.held.interrupt(*job);
        }
        self.shared
            .events
            .publish(Ids::default(), Event::BatchCancelled { batch: id });
        Ok(cancelled.value)
    }

    /// Deletes a job that is not running.
    ///
    /// # Errors
    /// As [`store::JobStore::delete`].
    pub async fn delete(&self, id: JobId, now: Millis) -> store::Result<()> {
        self.shared.store.delete(id, now).await?;
        Ok(())
    }

    /// Pauses or resumes a queue.
    ///
    /// # Errors
    /// As [`store::QueueStore::set_queue_paused`].
    pub async fn set_queue_paused(&self, queue: &str, paused: bool) -> store::Result<()> {
        self.shared.store.set_queue_paused(queue, paused).await?;
        let queue = queue.to_owned();
        let event = Event::QueuePaused { queue, paused };
        self.shared.events.publish(Ids::default(), event);
        if !paused {
            self.notify();
        }
        Ok(())
    }

    /// Caps (or uncaps) how many jobs of a queue run at once.
    ///
    /// # Errors
    /// As [`store::QueueStore::set_queue_concurrency`].
    pub async fn set_queue_concurrency(
        &self,
        queue: &str,
        concurrency: Option<u32>,
    ) -> store::Result<()> {
        let store = &self.shared.store;
        store.set_queue_concurrency(queue, concurrency).await?;
        self.notify();
        Ok(())
    }

    /// Creates or replaces a recurring job.
    ///
    /// # Errors
    /// As [`store::RecurringStore::put_recurring`].
    pub async fn put_recurring(
        &self,
        definition: RecurringDefinition,
        now: Millis,
    ) -> store::Result<PutRecurring> {
        self.shared.store.put_recurring(definition, now).await
    }

    /// Deletes a recurring job; its jobs stay.
    ///
    /// # Errors
    /// As [`store::RecurringStore::delete_recurring`].
    pub async fn delete_recurring(&self, id: &str) -> store::Result<()> {
        self.shared.store.delete_recurring(id).await
    }

    /// Pauses or resumes a recurring job.
    ///
    /// # Errors
    /// As [`store::RecurringStore::set_recurring_paused`].
    pub async fn set_recurring_paused(
        &self,
        id: &str,
        paused: bool,
        now: Millis,
    ) -> store::Result<RecurringJob> {
        self.shared
            .store
            .set_recurring_paused(id, paused, now)
            .await
    }

    /// Enqueues a job of a recurring job now.
    ///
    /// # Errors
    /// As [`store::RecurringStore::trigger_recurring`].
    pub async fn trigger_recurring(&self, id: &str, now: Millis) -> store::Result<Job> {
        let triggered = self.shared.store.trigger_recurring(id, now).await?;
        let job = triggered.value;
        fired(&self.shared.events, &[(id.to_owned(), job.id)]);
        Ok(job)
    }

    /// Stores workflow `id`; returns whether it is new.
    ///
    /// # Errors
    /// As [`store::WorkflowStore::put_workflow`].
    pub async fn put_workflow(
        &self,
        id: &str,
        definition: &Definition,
        now: Millis,
    ) -> store::Result<bool> {
        self.shared.store.put_workflow(id, definition, now).await
    }

    /// Deletes a workflow (its runs stay); returns whether it existed.
    ///
    /// # Errors
    /// As [`store::WorkflowStore::delete_workflow`].
    pub async fn delete_workflow(&self, id: &str) -> store::Result<bool> {
        self.shared.store.delete_workflow(id).await
    }

    /// Starts a run of workflow `workflow_id` and advances it once; returns the run's
    /// id and where it stands.
    ///
    /// # Errors
    /// As [`workflows::create_run`].
    pub async fn start_workflow(
        &self,
        workflow_id: &str,
        parameters: Option<Value>,
    ) -> Result<(JobId, Option<RunState>), workflows::RunError> {
        let shared = &self.shared;
        let (run, advanced) = workflows::create_run(
            shared.store.as_ref(),
            &shared.registry,
            workflow_id,
            parameters,
        )
        .await?;
        let started = Event::WorkflowStarted {
            run,
            workflow: workflow_id.to_owned(),
        };
        shared.events.publish(Ids::default(), started);
        let state = advanced.state;
        workflows::published(&shared.events, run, &advanced);
        let store = shared.store.as_ref();
        workflows::cancel_jobs(store, &shared.held, &advanced.to_cancel, now_ms()).await;
        Ok((run, state))
    }

    /// Cancels a running workflow run and the jobs of its unfinished steps; `false` for
    /// an unknown run.
    ///
    /// # Errors
    /// As [`store::WorkflowStore::cancel_workflow_run`].
    pub async fn cancel_workflow_run(&self, run: JobId, now: Millis) -> store::Result<bool> {
        let shared = &self.shared;
        let Some(jobs) = shared.store.cancel_workflow_run(run, now).await? else {
            return Ok(false);
        };
        let ended = Advanced {
            state: Some(RunState::Cancelled),
            ended: true,
            ..Advanced::default()
        };
        workflows::published(&shared.events, run, &ended);
        workflows::cancel_jobs(shared.store.as_ref(), &shared.held, &jobs, now).await;
        Ok(true)
    }

    /// Stores API token `name` by its hash.
    ///
    /// # Errors
    /// As [`store::TokenStore::create_token`].
    pub async fn create_token(
        &self,
        name: &str,
        role: Role,
        hash: TokenHash,
        now: Millis,
    ) -> store::Result<TokenInfo> {
        self.shared.store.create_token(name, role, hash, now).await
    }

    /// Records who did what to an agent or a token.
    ///
    /// # Errors
    /// As [`store::AuditStore::record_audit`].
    pub async fn record_audit(&self, entry: AuditEntry) -> store::Result<()> {
        self.shared.store.record_audit(entry).await
    }

    /// Creates or replaces an alert rule; the evaluator takes it up within a second.
    ///
    /// # Errors
    /// [`store::Error::Conflict`] for a new rule when [`alerts::MAX_RULES`] are kept
    /// already; else as [`store::AlertStore::put_alert_rule`].
    pub async fn put_alert(&self, rule: AlertRule, now: Millis) -> store::Result<PutAlert> {
        let store = &self.shared.store;
        let kept = store.alert_rules().await?;
        if kept.len() >= alerts::MAX_RULES && !kept.iter().any(|k| k.rule.id == rule.id) {
            return Err(store::Error::Conflict(format!(
                "at most {} alert rules may be kept: delete one first",
                alerts::MAX_RULES
            )));
        }
        let id = rule.id.clone();
        let follows_failures = rule.enabled && alerts::follows_failures(&rule);
        let created = store.put_alert_rule(rule, now).await?;
        if follows_failures {
            // From now on, not from the evaluator's next pass.
            self.shared.failed_jobs.watch();
        }
        let stored = store.alert_rule(&id).await?.ok_or_else(|| {
            store::Error::Conflict(format!("alert rule {id} was deleted meanwhile"))
        })?;
        Ok(PutAlert {
            rule: stored.into(),
            created,
        })
    }

    /// Deletes an alert rule; its open incidents resolve within a second. Returns
    /// whether it existed.
    ///
    /// # Errors
    /// As [`store::AlertStore::delete_alert_rule`].
    pub async fn delete_alert(&self, id: &str) -> store::Result<bool> {
        self.shared.store.delete_alert_rule(id).await
    }

    /// Revokes API token `name`.
    ///
    /// # Errors
    /// As [`store::TokenStore::revoke_token`].
    pub async fn revoke_token(&self, name: &str, now: Millis) -> store::Result<TokenInfo> {
        self.shared.store.revoke_token(name, now).await
    }
}

/// Publishes `recurring.fired` for each job a firing enqueued (after the job's own
/// `job.created`, published as the firing committed).
pub(super) fn fired(events: &EventBus, jobs: &[(String, JobId)]) {
    for (recurring, job) in jobs {
        let recurring = recurring.clone();
        events.publish(Ids::job(*job), Event::RecurringFired { recurring });
    }
}
