//! Background upkeep: renew this host's leases, promote due scheduled jobs, fire due
//! recurring jobs, advance workflow runs, and return jobs whose lease expired (their host
//! died) to their queue.

use super::Shared;
use crate::model::{Millis, now_ms};
use std::sync::Arc;
use std::time::Duration;

/// How often due scheduled jobs are promoted: well within the promised second.
const PROMOTE_EVERY: Duration = Duration::from_millis(200);
/// How often due recurring jobs are fired: a schedule with a seconds field fires within
/// about 0.2 s of its time.
const FIRE_EVERY: Duration = Duration::from_millis(200);
/// How often running workflow runs are advanced.
const ADVANCE_EVERY: Duration = Duration::from_millis(200);
/// How often expired leases are looked for.
const EXPIRE_EVERY: Duration = Duration::from_secs(2);
/// Most jobs one pass moves.
const BATCH: u32 = 1000;

/// Runs until the scheduler stops claiming.
pub(super) async fn run(shared: Arc<Shared>) {
    let mut promote = tokio::time::interval(PROMOTE_EVERY);
    let mut fire = tokio::time::interval(FIRE_EVERY);
    let mut expire = tokio::time::interval(EXPIRE_EVERY);
    let mut advance = tokio::time::interval(ADVANCE_EVERY);
    let mut heartbeat = tokio::time::interval(shared.config.lease / 3);
    loop {
        tokio::select! {
            () = shared.stop_claiming.cancelled() => return,
            _ = promote.tick() => promote_due(&shared).await,
            _ = fire.tick() => fire_recurring(&shared).await,
            _ = expire.tick() => expire_leases(&shared).await,
            _ = advance.tick() => super::workflows::advance_all(&shared).await,
            _ = heartbeat.tick() => renew_leases(&shared).await,
        }
    }
}

async fn promote_due(shared: &Shared) {
    loop {
        match shared.store.promote_due(now_ms(), BATCH).await {
            Ok(0) => return,
            Ok(n) => {
                shared.wake.notify_one();
                if n < u64::from(BATCH) {
                    return;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "promoting due jobs failed");
                return;
            }
        }
    }
}

async fn fire_recurring(shared: &Shared) {
    match shared.store.fire_recurring(now_ms()).await {
        Ok(0) => {}
        Ok(jobs) => {
            tracing::debug!(jobs, "enqueued recurring jobs");
            shared.wake.notify_one();
        }
        Err(e) => tracing::error!(error = %e, "firing recurring jobs failed"),
    }
}

async fn expire_leases(shared: &Shared) {
    match shared.store.expire_leases(now_ms(), BATCH).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::warn!(jobs = n, "returned jobs whose lease expired to their queue");
            shared.wake.notify_one();
        }
        Err(e) => tracing::error!(error = %e, "expiring leases failed"),
    }
}

async fn renew_leases(shared: &Shared) {
    let until = now_ms() + shared.config.lease.as_millis() as Millis;
    if let Err(e) = shared.store.heartbeat(&shared.config.owner, until).await {
        tracing::error!(error = %e, "renewing leases failed");
    }
    let agents_until = now_ms() + shared.config.agents.lock.as_millis() as Millis;
    let renewed = shared
        .store
        .renew_agent_locks(&shared.config.owner, agents_until)
        .await;
    if let Err(e) = renewed {
        tracing::error!(error = %e, "renewing agent locks failed");
    }
}
