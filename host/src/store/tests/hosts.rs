//! Several hosts on one PostgreSQL database: each test opens one store per host on the
//! same fresh database, and shows a rule holding across them.

use super::postgres::{Database, open_postgres};
use super::{NOW, add, claim_params, completion, failure, new_job};
use crate::model::{ErrorKind, JobId};
use crate::store::postgres::PostgresStore;
use crate::store::{AfterFailure, Error, JobStore, Leadership, QueueStore};
use std::collections::HashSet;
use std::sync::Arc;

/// `n` stores (hosts) on one fresh database.
async fn hosts(n: usize) -> (Vec<Arc<PostgresStore>>, Database) {
    let (first, database) = open_postgres().await;
    let mut stores = vec![first];
    for _ in 1..n {
        let store = PostgresStore::open(&database.url()).await.expect("open");
        stores.push(Arc::new(store));
    }
    (stores, database)
}

async fn close(stores: Vec<Arc<PostgresStore>>) {
    for store in stores {
        store.close().await;
    }
}

#[tokio::test]
async fn a_queue_paused_through_one_host_runs_nothing_on_another() {
    let (stores, _db) = hosts(2).await;
    let (a, b) = (&stores[0], &stores[1]);
    add(a.as_ref(), new_job("q", 0)).await;
    a.set_queue_paused("q", true).await.unwrap();
    let claimed = b.claim(&claim_params(&["q"], 5), NOW).await.unwrap();
    assert!(claimed.is_empty(), "paused through the other host");
    a.set_queue_paused("q", false).await.unwrap();
    let claimed = b.claim(&claim_params(&["q"], 5), NOW).await.unwrap();
    assert_eq!(claimed.len(), 1);
    close(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cap_of_one_holds_when_hosts_claim_at_once() {
    let (stores, _db) = hosts(3).await;
    let jobs = (0..20).map(|_| new_job("capped", 0)).collect();
    stores[0].enqueue_many(jobs, NOW).await.unwrap();
    stores[1]
        .set_queue_concurrency("capped", Some(1))
        .await
        .unwrap();
    let claims: Vec<_> = (0..60)
        .map(|n| {
            let store = stores[n % stores.len()].clone();
            tokio::spawn(async move { store.claim(&claim_params(&["capped"], 5), NOW).await })
        })
        .collect();
    let mut running = 0;
    for claim in claims {
        running += claim.await.unwrap().unwrap().len();
    }
    assert_eq!(running, 1, "one job of a queue capped at one runs");
    close(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hosts_claiming_at_once_run_each_job_once() {
    let (stores, _db) = hosts(3).await;
    let jobs: Vec<_> = (0..1500).map(|_| new_job("default", 0)).collect();
    stores[0].enqueue_many(jobs, NOW).await.unwrap();
    let workers: Vec<_> = (0..9)
        .map(|n| {
            let store = stores[n % stores.len()].clone();
            tokio::spawn(async move {
                let mut ran: Vec<JobId> = Vec::new();
                loop {
                    let params = claim_params(&["default"], 10);
                    let claimed = store.claim(&params, NOW).await.unwrap();
                    if claimed.is_empty() {
                        return ran;
                    }
                    for c in claimed {
                        store
                            .complete(c.job.id, c.lease, completion(), NOW + 1)
                            .await
                            .unwrap();
                        ran.push(c.job.id);
                    }
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for worker in workers {
        for id in worker.await.unwrap() {
            assert!(seen.insert(id), "job {id} ran twice");
        }
    }
    assert_eq!(seen.len(), 1500, "every job ran");
    close(stores).await;
}

#[tokio::test]
async fn a_host_that_lost_its_lease_cannot_complete_the_job() {
    let (stores, _db) = hosts(2).await;
    let (a, b) = (&stores[0], &stores[1]);
    let job = add(a.as_ref(), new_job("default", 0)).await;
    let mut params = claim_params(&["default"], 1);
    params.lease_until = NOW + 10;
    let held = a.claim(&params, NOW).await.unwrap().remove(0);
    // Host B finds the lease expired and records the attempt as failed, to retry.
    let expired = b.expired_leases(NOW + 11, 10).await.unwrap();
    assert_eq!(expired.len(), 1);
    let lost = failure(ErrorKind::LeaseExpired, AfterFailure::RetryAt(NOW + 20));
    b.fail(job.id, expired[0].lease, lost, NOW + 11)
        .await
        .unwrap();
    let refused = a
        .complete(job.id, held.lease, completion(), NOW + 12)
        .await
        .expect_err("the lease was lost");
    assert!(matches!(refused, Error::LeaseLost { .. }), "{refused}");
    close(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_unique_key_submitted_through_two_hosts_at_once_makes_one_job() {
    let (stores, _db) = hosts(2).await;
    let submits = (0..8).map(|n| {
        let store = stores[n % 2].clone();
        tokio::spawn(async move {
            let mut job = new_job("default", 0);
            job.unique_key = Some("only-one".into());
            store.enqueue(job, NOW).await.unwrap()
        })
    });
    let mut ids = HashSet::new();
    let mut created = 0;
    for submit in submits {
        let submitted = submit.await.unwrap();
        ids.insert(submitted.job.id);
        created += usize::from(submitted.created);
    }
    assert_eq!((ids.len(), created), (1, 1), "one job holds the key");
    close(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_hosts_asking_to_lead_at_once_one_leads() {
    let (stores, _db) = hosts(3).await;
    let asks: Vec<_> = (0..30)
        .map(|n| {
            let store = stores[n % stores.len()].clone();
            tokio::spawn(async move {
                let owner = format!("host-{n}");
                store.lead(&owner, NOW + 1_000, NOW).await.unwrap()
            })
        })
        .collect();
    let mut leaders = 0;
    for ask in asks {
        leaders += usize::from(ask.await.unwrap());
    }
    assert_eq!(leaders, 1);
    close(stores).await;
}

/// What another host told a store, as its sink heard it.
#[derive(Debug, Default)]
struct Heard {
    changes: std::sync::Mutex<Vec<crate::store::JobChange>>,
    cancels: std::sync::Mutex<Vec<JobId>>,
}

impl crate::store::ChangeSink for Heard {
    fn changed(&self, _: &crate::store::Changes) {}

    fn listening(&self) -> bool {
        true
    }

    fn changed_elsewhere(&self, changes: &crate::store::Changes) {
        self.changes.lock().unwrap().extend(changes.jobs.clone());
    }

    fn cancel_asked(&self, job: JobId) {
        self.cancels.lock().unwrap().push(job);
    }
}

/// Waits up to a few seconds for `heard` to hold what `done` looks for.
async fn until_heard(heard: &Heard, done: impl Fn(&Heard) -> bool) {
    for _ in 0..100 {
        if done(heard) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    panic!("not heard: {heard:?}");
}

#[tokio::test]
async fn a_host_hears_what_another_changed_and_which_running_job_to_stop() {
    use crate::model::JobState;
    let (stores, _db) = hosts(2).await;
    let (a, b) = (&stores[0], &stores[1]);
    let heard = Arc::new(Heard::default());
    b.report_to(heard.clone());
    a.report_to(Arc::new(Heard::default()));
    let job = add(a.as_ref(), new_job("default", 0)).await;
    let claimed = a.claim(&claim_params(&["default"], 1), NOW).await.unwrap();
    assert_eq!(claimed.len(), 1);
    until_heard(&heard, |h| {
        let changes = h.changes.lock().unwrap();
        let moves: Vec<_> = changes.iter().map(|c| (c.id, c.from, c.to)).collect();
        moves
            == [
                (job.id, None, Some(JobState::Enqueued)),
                (job.id, Some(JobState::Enqueued), Some(JobState::Processing)),
            ]
    })
    .await;
    a.cancel(job.id, NOW + 1).await.unwrap();
    until_heard(&heard, |h| *h.cancels.lock().unwrap() == [job.id]).await;
    let own = add(b.as_ref(), new_job("default", 0)).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let changes = heard.changes.lock().unwrap().clone();
    assert!(
        changes.iter().all(|c| c.id != own.id),
        "a store does not hear its own writes back"
    );
    close(stores).await;
}

#[tokio::test]
async fn a_refused_write_leaves_no_job_locked_for_claims() {
    let (stores, _db) = hosts(1).await;
    let store = stores[0].as_ref();
    for _ in 0..20 {
        let job = add(store, new_job("default", 0)).await;
        let refused = store.retry(job.id, NOW).await;
        assert!(matches!(refused, Err(Error::Conflict(_))), "{refused:?}");
        let claimed = store.claim(&claim_params(&["default"], 1), NOW).await;
        assert_eq!(
            claimed.unwrap().len(),
            1,
            "the job a refused retry looked at"
        );
    }
    close(stores).await;
}

#[tokio::test]
async fn an_unreachable_database_is_refused_with_its_cause() {
    // Port 1 on this machine: nothing listens there.
    let refused = PostgresStore::open("postgres://postgres@127.0.0.1:1/none").await;
    let message = refused.expect_err("nothing listens there").to_string();
    assert!(message.contains("refused"), "{message}");
}
