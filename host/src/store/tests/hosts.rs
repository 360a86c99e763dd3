//! Several hosts on one PostgreSQL database: each test opens one store per host on the
//! same fresh database, and shows a rule holding across them.

use super::postgres::{Database, open_postgres};
use super::{NOW, add, claim_params, completion, failure, new_job};
use crate::model::{ErrorKind, JobId};
use crate::store::postgres::PostgresStore;
use crate::store::{AfterFailure, Error, JobStore, QueueStore};
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
