//! Conformance: each run is counted in the rollup as the write that records it commits,
//! once per resolution and key; the rollup outlives the jobs and is pruned by age.

use super::*;
use crate::model::stats::{Resolution, RollupKey, RollupRow};

const HOUR: Millis = 3_600_000;

/// A run of a job of `plugin` submitted at `at`, started `pickup` ms later and ended
/// after `run` ms: succeeded, or failed and retried.
async fn run(store: &dyn JobStore, plugin: &str, at: Millis, pickup: Millis, run: u64, ok: bool) {
    let job = NewJob::new(plugin, JsonText::from_value(&json!({})), "default");
    add_at(store, job, at).await;
    let claimed = claim_one(store, at + pickup).await;
    let usage = Usage {
        wall_ms: run,
        ..Usage::default()
    };
    let ended = at + pickup + run as Millis;
    if ok {
        let done = Completion {
            usage,
            ..completion()
        };
        store
            .complete(claimed.job.id, claimed.lease, done, ended)
            .await
            .unwrap();
    } else {
        let failed = Failure {
            usage,
            ..failure(ErrorKind::Trap, AfterFailure::RetryAt(ended + 1000 * HOUR))
        };
        store
            .fail(claimed.job.id, claimed.lease, failed, ended)
            .await
            .unwrap();
    }
}

async fn add_at(store: &dyn JobStore, job: NewJob, at: Millis) {
    store.enqueue(job, at).await.unwrap();
}

fn of<'a>(rows: &'a [RollupRow], plugin: &str) -> Vec<&'a RollupRow> {
    let mut rows: Vec<_> = rows.iter().filter(|r| r.key.plugin == plugin).collect();
    rows.sort_by_key(|r| r.bucket);
    rows
}

pub(super) async fn check_runs_are_rolled_up_per_bucket_and_key(store: &dyn JobStore) {
    let day = Resolution::Day.bucket_of(NOW);
    // A day of history: each hour one run of `echo` (every fourth fails), and in the
    // first minute a second run of `echo` and one of `flaky`.
    for hour in 0..24 {
        let ok = hour % 4 != 0;
        run(store, "echo", day + hour * HOUR, 10 * (hour + 1), 100, ok).await;
    }
    run(store, "echo", day + 1_000, 5, 300, true).await;
    run(store, "flaky", day + 2_000, 5, 7, false).await;

    let hours = store
        .rollup(Resolution::Hour, day, day + 24 * HOUR)
        .await
        .unwrap();
    let echo = of(&hours, "echo");
    assert_eq!(echo.len(), 24, "one row per hour and key");
    let key = RollupKey {
        plugin: "echo".into(),
        queue: "default".into(),
        agent: None,
    };
    assert!(echo.iter().all(|row| row.key == key));
    assert_eq!(
        (echo[0].rollup.succeeded, echo[0].rollup.failed),
        (1, 1),
        "the first hour: one failed run and the extra one"
    );
    assert_eq!((echo[1].rollup.succeeded, echo[1].rollup.failed), (1, 0));
    assert_eq!(echo[0].rollup.run_ms.count(), 2);
    assert_eq!(echo[0].rollup.pickup_ms.count(), 2);
    let pickup = echo[23].rollup.pickup_ms.quantile(0.5).unwrap();
    assert!((pickup - 240.0).abs() < 12.0, "pickup {pickup}");
    assert_eq!(of(&hours, "flaky").len(), 1);

    let days = store
        .rollup(Resolution::Day, day, day + 24 * HOUR)
        .await
        .unwrap();
    let echo_day = &of(&days, "echo")[0].rollup;
    assert_eq!((echo_day.succeeded, echo_day.failed), (19, 6));
    let p95 = echo_day.run_ms.quantile(0.95).unwrap();
    assert!(
        (p95 - 100.0).abs() < 5.0,
        "the 300 ms run is past p95: {p95}"
    );
    let max = echo_day.run_ms.quantile(1.0).unwrap();
    assert!((max - 300.0).abs() < 15.0, "max {max}");

    let minutes = store
        .rollup(Resolution::Minute, day, day + 60_000)
        .await
        .unwrap();
    assert_eq!(of(&minutes, "echo")[0].rollup.succeeded, 1);
    assert_eq!(of(&minutes, "echo")[0].rollup.failed, 1);

    // Cleaning the jobs leaves the rollup; pruning removes minutes past a week first.
    store
        .delete_finished(
            day + 30 * 24 * HOUR,
            day + 30 * 24 * HOUR,
            1000,
            day + 30 * 24 * HOUR,
        )
        .await
        .unwrap();
    let after = store
        .rollup(Resolution::Hour, day, day + 24 * HOUR)
        .await
        .unwrap();
    assert_eq!(after, hours, "cleaning jobs keeps their statistics");
    let removed = store.prune_rollup(day + 8 * 24 * HOUR).await.unwrap();
    assert!(removed >= 25, "the minute rows are past a week: {removed}");
    let minutes = store
        .rollup(Resolution::Minute, day, day + 24 * HOUR)
        .await
        .unwrap();
    assert!(minutes.is_empty());
    let kept = store
        .rollup(Resolution::Hour, day, day + 24 * HOUR)
        .await
        .unwrap();
    assert_eq!(kept, hours, "hours are kept for 90 days");
}

pub(super) async fn check_cancelled_runs_are_not_counted_and_lost_hosts_have_no_run_time(
    store: &dyn JobStore,
) {
    let at = Resolution::Day.bucket_of(NOW);
    add_at(store, new_job("default", 0), at).await;
    let cancelled = claim_one(store, at).await;
    store
        .fail(
            cancelled.job.id,
            cancelled.lease,
            failure(ErrorKind::Cancelled, AfterFailure::Cancel),
            at + 1,
        )
        .await
        .unwrap();
    add_at(store, new_job("default", 0), at).await;
    let lost = claim_one(store, at).await;
    let expired = Failure {
        usage: Usage {
            wall_ms: 30_000,
            ..Usage::default()
        },
        ..failure(ErrorKind::LeaseExpired, AfterFailure::Fail)
    };
    store
        .fail(lost.job.id, lost.lease, expired, at + 2)
        .await
        .unwrap();
    let rows = store.rollup(Resolution::Day, at, at + 1).await.unwrap();
    assert_eq!(rows.len(), 1);
    let rollup = &rows[0].rollup;
    assert_eq!((rollup.succeeded, rollup.failed), (0, 1));
    assert_eq!(
        rollup.run_ms.count(),
        0,
        "a lost host's run time is unknown"
    );
    assert_eq!(rollup.pickup_ms.count(), 2, "both runs started");
}
