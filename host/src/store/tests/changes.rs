//! Conformance: every write reports what it changed, the effects of its rules included,
//! and the last reported state of each job is the stored one.

use super::*;

/// `(job, from, to)` of each change, in order.
fn moves(changes: &Changes) -> Vec<(JobId, Option<JobState>, Option<JobState>)> {
    changes.jobs.iter().map(|c| (c.id, c.from, c.to)).collect()
}

/// Asserts that each changed job's last reported state is its stored state (or that it
/// is gone, when the last change deleted it).
async fn assert_last_state_is_stored(store: &dyn JobStore, changes: &Changes) {
    for change in &changes.jobs {
        let last = changes.of(change.id).last().expect("the job changed");
        let stored = store.get(change.id).await.unwrap().map(|d| d.job.state);
        assert_eq!(stored, last.to, "{:?}", changes.jobs);
    }
}

use JobState::{Awaiting, Cancelled, Enqueued, Failed, Processing, Scheduled, Succeeded};

/// A sink that keeps every change it is given.
#[derive(Debug, Default)]
struct Recorder(std::sync::Mutex<Vec<JobChange>>);

impl ChangeSink for Recorder {
    fn changed(&self, changes: &Changes) {
        self.0.lock().unwrap().extend(changes.jobs.iter().cloned());
    }

    fn listening(&self) -> bool {
        true
    }
}

impl Recorder {
    /// The changes received since the last call.
    fn take(&self) -> Vec<JobChange> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

pub(super) async fn check_every_write_reports_the_jobs_it_moved(store: &dyn JobStore) {
    let recorder = Arc::new(Recorder::default());
    store.report_to(recorder.clone());
    let now_job = new_job("default", 0);
    let submitted = store.enqueue(now_job.clone(), NOW).await.unwrap();
    assert_eq!(
        moves(&submitted.changes),
        [(now_job.id, None, Some(Enqueued))]
    );
    let change = &submitted.changes.jobs[0];
    assert_eq!((change.queue.as_str(), change.at), ("default", NOW));

    let later = NewJob {
        run_at: Some(NOW + 1_000),
        ..new_job("default", 0)
    };
    let created = store.enqueue_many(vec![later.clone()], NOW).await.unwrap();
    assert_eq!(moves(&created), [(later.id, None, Some(Scheduled))]);
    let promoted = store.promote_due(NOW + 1_000, 10).await.unwrap();
    assert_eq!(
        moves(&promoted),
        [(later.id, Some(Scheduled), Some(Enqueued))]
    );
    assert_last_state_is_stored(store, &promoted).await;

    assert_eq!(
        moves(&Changes {
            jobs: recorder.take(),
            batches: Vec::new()
        }),
        [
            (now_job.id, None, Some(Enqueued)),
            (later.id, None, Some(Scheduled)),
            (later.id, Some(Scheduled), Some(Enqueued)),
        ],
        "the sink hears every write's changes in commit order"
    );
    let first = claim_one(store, NOW + 2_000).await;
    let started = recorder.take();
    assert_eq!(
        started
            .iter()
            .map(|c| (c.id, c.from, c.to, c.lease))
            .collect::<Vec<_>>(),
        [(
            first.job.id,
            Some(Enqueued),
            Some(Processing),
            Some(first.lease)
        )],
        "a claim is reported to the sink"
    );
    let done = store
        .complete(first.job.id, first.lease, completion(), NOW + 2_001)
        .await
        .unwrap();
    assert_eq!(
        moves(&done),
        [(first.job.id, Some(Processing), Some(Succeeded))]
    );
    assert_last_state_is_stored(store, &done).await;

    let second = claim_one(store, NOW + 3_000).await;
    let retry = failure(ErrorKind::Retryable, AfterFailure::RetryAt(NOW + 9_000));
    let retried = store
        .fail(second.job.id, second.lease, retry, NOW + 3_001)
        .await
        .unwrap();
    assert_eq!(
        moves(&retried),
        [(second.job.id, Some(Processing), Some(Scheduled))]
    );
    assert_eq!(retried.jobs[0].attempt, 1);

    let third = add(store, new_job("default", 0)).await;
    claim_one(store, NOW + 4_000).await;
    let released = store.release(OWNER, NOW + 4_001).await.unwrap();
    assert_eq!(
        moves(&released),
        [(third.id, Some(Processing), Some(Enqueued))]
    );
    let cancelled = store.cancel(third.id, NOW + 4_002).await.unwrap();
    assert_eq!(
        moves(&cancelled.changes),
        [(third.id, Some(Enqueued), Some(Cancelled))]
    );
    let again = store.retry(third.id, NOW + 4_003).await.unwrap();
    assert_eq!(
        moves(&again.changes),
        [(third.id, Some(Cancelled), Some(Enqueued))]
    );
    let running = claim_one(store, NOW + 4_004).await;
    let requested = store.cancel(running.job.id, NOW + 4_005).await.unwrap();
    assert_eq!(requested.value, CancelOutcome::Requested);
    assert!(
        requested.changes.is_empty(),
        "a requested cancel moves nothing yet"
    );
    let lost = failure(ErrorKind::Retryable, AfterFailure::RetryAt(NOW + 9_000));
    let ended = store
        .fail(running.job.id, running.lease, lost, NOW + 4_006)
        .await
        .unwrap();
    assert_eq!(
        moves(&ended),
        [(running.job.id, Some(Processing), Some(Cancelled))],
        "the store reports the state it stored, not the one asked for"
    );

    let before_delete = recorder.take();
    assert_eq!(
        before_delete.last().map(|c| (c.id, c.to)),
        Some((running.job.id, Some(Cancelled))),
        "{before_delete:?}"
    );
    let deleted = store.delete(third.id, NOW + 5_000).await.unwrap();
    assert_eq!(recorder.take(), deleted.jobs, "a deletion is reported too");
    assert_eq!(moves(&deleted), [(third.id, Some(Cancelled), None)]);
    assert_last_state_is_stored(store, &deleted).await;
    let removed = store
        .delete_finished(NOW + 10_000, NOW + 10_000, 100, NOW + 10_000)
        .await
        .unwrap();
    assert_eq!(
        moves(&removed),
        [(first.job.id, Some(Succeeded), None)],
        "retention reports what it deleted"
    );
}

pub(super) async fn check_finishing_a_parent_reports_what_its_continuations_did(
    store: &dyn JobStore,
) {
    let parent = add(store, new_job("default", 0)).await;
    let on_success = add(store, continuation(&[parent.id], AwaitOn::Success)).await;
    let grandchild = add(store, continuation(&[on_success.id], AwaitOn::Success)).await;
    let on_finish = add(store, continuation(&[parent.id], AwaitOn::Finish)).await;
    let unrelated = add(store, new_job("default", 0)).await;
    let claimed = store
        .claim(&claim_params(&["default"], 2), NOW)
        .await
        .unwrap();
    let lease = |id: JobId| claimed.iter().find(|c| c.job.id == id).unwrap().lease;
    let fatal = failure(ErrorKind::Fatal, AfterFailure::Fail);
    // Both outcomes go to the store at once: each reports only its own effects.
    let (failed, completed) = tokio::join!(
        store.fail(parent.id, lease(parent.id), fatal, NOW + 1),
        store.complete(unrelated.id, lease(unrelated.id), completion(), NOW + 1),
    );
    let failed = failed.unwrap();
    assert_eq!(
        moves(&failed),
        [
            (parent.id, Some(Processing), Some(Failed)),
            (on_success.id, Some(Awaiting), Some(Cancelled)),
            (grandchild.id, Some(Awaiting), Some(Cancelled)),
            (on_finish.id, Some(Awaiting), Some(Enqueued)),
        ]
    );
    assert!(failed.any_ready());
    assert_last_state_is_stored(store, &failed).await;
    assert_eq!(
        moves(&completed.unwrap()),
        [(unrelated.id, Some(Processing), Some(Succeeded))]
    );

    let done = add(store, new_job("default", 0)).await;
    finish(store, &claim_one(store, NOW + 2).await, true).await;
    let settled = store
        .enqueue(continuation(&[done.id], AwaitOn::Success), NOW + 3)
        .await
        .unwrap();
    let child = settled.job.id;
    assert_eq!(
        moves(&settled.changes),
        [
            (child, None, Some(Awaiting)),
            (child, Some(Awaiting), Some(Enqueued))
        ],
        "a continuation of a finished parent is released as it is stored"
    );
}

pub(super) async fn check_batch_writes_report_their_jobs_and_progress(store: &dyn JobStore) {
    let jobs: Vec<NewJob> = (0..2).map(|_| new_job("default", 0)).collect();
    let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    let callback = continuation(&ids, AwaitOn::Finish);
    let batch = NewBatch {
        id: new_job_id(),
        description: "two".into(),
        on_success: None,
        on_complete: Some(callback.clone()),
        jobs,
    };
    let batch_id = batch.id;
    let created = store.create_batch(batch, NOW).await.unwrap();
    assert_eq!(
        moves(&created),
        [
            (ids[0], None, Some(Enqueued)),
            (ids[1], None, Some(Enqueued)),
            (callback.id, None, Some(Awaiting)),
        ]
    );
    assert!(created.jobs[..2].iter().all(|c| c.batch == Some(batch_id)));

    let first = claim_one(store, NOW).await;
    let one = store
        .complete(first.job.id, first.lease, completion(), NOW + 1)
        .await
        .unwrap();
    let progress = one.batches.first().copied().expect("batch progress");
    assert_eq!(
        (
            progress.id,
            progress.total,
            progress.succeeded,
            progress.is_done()
        ),
        (batch_id, 2, 1, false)
    );
    let second = claim_one(store, NOW + 2).await;
    let fatal = failure(ErrorKind::Fatal, AfterFailure::Fail);
    let last = store
        .fail(second.job.id, second.lease, fatal, NOW + 3)
        .await
        .unwrap();
    assert_eq!(
        moves(&last),
        [
            (second.job.id, Some(Processing), Some(Failed)),
            (callback.id, Some(Awaiting), Some(Enqueued)),
        ]
    );
    let progress = last.batches.first().copied().expect("batch progress");
    assert_eq!(
        (progress.succeeded, progress.failed, progress.finished()),
        (1, 1, 2)
    );
    assert!(progress.is_done());

    let waiting: Vec<NewJob> = (0..2).map(|_| new_job("other", 0)).collect();
    let waiting_ids: Vec<JobId> = waiting.iter().map(|j| j.id).collect();
    let cancellable = NewBatch {
        id: new_job_id(),
        description: String::new(),
        on_success: None,
        on_complete: None,
        jobs: waiting,
    };
    let cancellable_id = cancellable.id;
    store.create_batch(cancellable, NOW).await.unwrap();
    let cancelled = store.cancel_batch(cancellable_id, NOW + 4).await.unwrap();
    assert_eq!(
        moves(&cancelled.changes),
        waiting_ids
            .iter()
            .map(|id| (*id, Some(Enqueued), Some(Cancelled)))
            .collect::<Vec<_>>()
    );
    let progress = cancelled.changes.batches.first().copied().unwrap();
    assert_eq!((progress.cancelled, progress.is_done()), (2, true));
}

pub(super) async fn check_ending_an_agent_run_reports_the_freed_lock(store: &dyn JobStore) {
    store.create_agent(agent_spec("a1", 1), NOW).await.unwrap();
    let job = add(store, bound_job("a1")).await;
    let claimed = claim_one(store, NOW).await;
    assert!(acquire(store, "a1", job.id, NOW).await.held.is_ok());
    let done = store
        .complete(job.id, claimed.lease, completion(), NOW + 1)
        .await
        .unwrap();
    let change = done.of(job.id).last().unwrap();
    assert_eq!(change.frees_agent(), Some("a1"));
    assert!(holders(store, "a1").await.is_empty(), "and it is freed");
    let created = store.enqueue(bound_job("a1"), NOW + 2).await.unwrap();
    assert_eq!(created.changes.jobs[0].frees_agent(), None);
}

pub(super) async fn check_recurring_workflow_and_task_writes_report_their_jobs(
    store: &dyn JobStore,
) {
    store
        .put_recurring(every_5s("r", Misfire::RunOnce), NOW)
        .await
        .unwrap();
    let fired = store.fire_recurring(NOW + 5_000).await.unwrap();
    let [(recurring, job)] = fired.value.as_slice() else {
        panic!("one job: {:?}", fired.value);
    };
    assert_eq!(recurring, "r");
    assert_eq!(moves(&fired.changes), [(*job, None, Some(Enqueued))]);
    let triggered = store.trigger_recurring("r", NOW + 6_000).await.unwrap();
    assert_eq!(
        moves(&triggered.changes),
        [(triggered.value.id, None, Some(Enqueued))]
    );

    let run = start_run(store).await;
    let advanced = store.advance_workflow_run(run, NOW).await.unwrap();
    assert_eq!(
        moves(&advanced.changes),
        [(advanced.enqueued[0], None, Some(Enqueued))]
    );
    assert_eq!(
        advanced.steps,
        [(
            "a".to_owned(),
            crate::workflow::StepState::Pending,
            Some(advanced.enqueued[0])
        )]
    );
    assert!(!advanced.ended);

    store.create_agent(agent_spec("a2", 1), NOW).await.unwrap();
    let task = NewTask {
        id: new_job_id(),
        command: "make".into(),
        repository_path: "/repo".into(),
        priority: crate::model::agent::TaskPriority::Normal,
        job: bound_job("a2"),
    };
    let (task_id, job_id) = (task.id, task.job.id);
    let created = store.create_task(task, NOW).await.unwrap();
    assert_eq!(moves(&created), [(job_id, None, Some(Enqueued))]);
    assert_eq!(created.jobs[0].agent.as_deref(), Some("a2"));
    assert_eq!(
        created.jobs[0].task,
        Some(task_id),
        "a task's job names its task"
    );
    let claimed = store
        .claim(&claim_params(&["default"], 10), NOW)
        .await
        .unwrap();
    let run = claimed
        .iter()
        .find(|c| c.job.id == job_id)
        .expect("claimed");
    let done = store
        .complete(job_id, run.lease, completion(), NOW + 1)
        .await
        .unwrap();
    assert_eq!(done.jobs[0].task, Some(task_id));
}
