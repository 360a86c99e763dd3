//! Conformance: jobs are found by text (an id's start, args, error text) and by agent,
//! and counted by the same filter.

use super::*;

fn with_args(args: serde_json::Value) -> NewJob {
    NewJob::new("echo", JsonText::from_value(&args), "default")
}

/// The jobs `filter` lists (100 at most), checking that they are counted alike.
pub(super) async fn found(store: &dyn JobStore, filter: JobFilter) -> Vec<JobId> {
    let filter = JobFilter {
        limit: 100,
        ..filter
    };
    let listed = store.list(&filter).await.unwrap();
    let counted = store.count(&filter, 100).await.unwrap();
    assert_eq!(counted, listed.jobs.len() as u64, "{filter:?}");
    if counted > 1 {
        assert_eq!(
            store.count(&filter, 1).await.unwrap(),
            1,
            "counted no further"
        );
    }
    listed.jobs.into_iter().map(|job| job.id).collect()
}

/// A filter on `text` alone.
pub(super) fn text(text: &str) -> JobFilter {
    JobFilter {
        text: Some(text.into()),
        ..JobFilter::default()
    }
}

/// Waits until no job waits to be indexed for search.
pub(super) async fn indexed(store: &dyn JobStore) {
    for _ in 0..1000 {
        if store.search_backlog().await.unwrap() == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("jobs are still waiting to be indexed");
}

/// The jobs [`assert_found_by_text`] looks for.
#[derive(Clone, Copy)]
pub(super) struct Searched {
    acme: JobId,
    percent: JobId,
    plain: JobId,
    failing: JobId,
    bound: JobId,
}

/// Stores the jobs [`assert_found_by_text`] looks for; one of them fails.
pub(super) async fn store_searched(store: &dyn JobStore) -> Searched {
    let acme = add(store, with_args(json!({"customer": "ACME-42"})))
        .await
        .id;
    let percent = add(store, with_args(json!({"discount": "100%"}))).await.id;
    let plain = add(store, with_args(json!({"discount": "1000"}))).await.id;
    let failing = add(store, with_args(json!({}))).await.id;
    let claimed = claim_one(store, NOW).await;
    assert_eq!(claimed.job.id, acme, "oldest first");
    store
        .fail(
            acme,
            claimed.lease,
            Failure {
                error: JobError::new(ErrorKind::Fatal, "the disk is full"),
                ..failure(ErrorKind::Fatal, AfterFailure::Fail)
            },
            NOW + 1,
        )
        .await
        .unwrap();
    let bound = add(store, bound_job("builder")).await.id;
    Searched {
        acme,
        percent,
        plain,
        failing,
        bound,
    }
}

/// Each of `jobs` is found by its text or agent, and only it.
pub(super) async fn assert_found_by_text(store: &dyn JobStore, jobs: &Searched) {
    let Searched {
        acme,
        percent,
        plain,
        failing,
        bound,
    } = *jobs;
    assert_eq!(found(store, text("acme")).await, [acme], "any case");
    assert_eq!(found(store, text("100%")).await, [percent], "% is itself");
    assert!(found(store, text("_")).await.is_empty(), "_ is itself");
    assert!(found(store, text("a_m")).await.is_empty(), "_ is itself");
    assert_eq!(found(store, text("disk is")).await, [acme], "error text");
    let id = failing.to_string();
    assert_eq!(found(store, text(&id)).await, [failing], "an id");
    let start = found(store, text(&id[..8])).await;
    assert!(
        start.len() >= 4 && start.contains(&failing),
        "an id's start"
    );
    assert!(
        found(store, text(&id[9..18])).await.is_empty(),
        "an id is found by its start only"
    );
    assert_eq!(found(store, text("discount")).await, [plain, percent]);
    let on_agent = JobFilter {
        agent: Some("builder".into()),
        ..JobFilter::default()
    };
    assert_eq!(found(store, on_agent).await, [bound]);
    let failed_acme = JobFilter {
        state: Some(JobState::Failed),
        ..text("ACME")
    };
    assert_eq!(found(store, failed_acme).await, [acme]);
    let enqueued_acme = JobFilter {
        state: Some(JobState::Enqueued),
        ..text("ACME")
    };
    assert!(found(store, enqueued_acme).await.is_empty());
    let older = JobFilter {
        before: Some(plain),
        limit: 100,
        ..text("discount")
    };
    assert_eq!(store.list(&older).await.unwrap().jobs[0].id, percent);
}

pub(super) async fn check_jobs_are_found_by_text_and_agent_and_counted(store: &dyn JobStore) {
    let jobs = store_searched(store).await;
    indexed(store).await;
    assert_found_by_text(store, &jobs).await;
}
