//! Background upkeep: renew the leases of this process's runs and the lead, and read the
//! agents again (another host may have changed them); while this host
//! leads (see [`crate::store::Leadership`]), promote due scheduled jobs, fire due recurring
//! jobs, advance workflow runs, and fail the attempts whose lease expired (their host
//! died), which then go where their retry policy says.

use super::held::Held;
use super::{SchedulerConfig, Shared, agents, executor, lifecycle, workflows};
use crate::events::EventBus;
use crate::model::{ErrorKind, JobError, Millis, Usage, now_ms};
use crate::plugins::Registry;
use crate::store::JobStore;
use crate::store::{self, Claimed};
use std::sync::Arc;
use std::sync::atomic::Ordering;
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
/// How often the agents are read again: a change made through another host sharing the
/// database (a new agent, one deleted or parked) reaches this host's claims within this.
const AGENTS_EVERY: Duration = Duration::from_secs(2);
/// Most jobs one pass moves.
const BATCH: u32 = 1000;

/// Runs until the scheduler stops claiming. The renewals run apart from the rest, so a
/// long pass (a thousand expired leases to record) never delays them past a lease.
pub(super) async fn run(shared: Arc<Shared>) {
    tokio::spawn(renew(shared.clone()));
    let mut promote = tokio::time::interval(PROMOTE_EVERY);
    let mut fire = tokio::time::interval(FIRE_EVERY);
    let mut expire = tokio::time::interval(EXPIRE_EVERY);
    let mut advance = tokio::time::interval(ADVANCE_EVERY);
    let mut agents = tokio::time::interval(AGENTS_EVERY);
    let store = shared.store.as_ref();
    loop {
        let leads = shared.leads();
        tokio::select! {
            () = shared.stop_claiming.cancelled() => return,
            _ = agents.tick() => agents::sync(&shared).await,
            _ = promote.tick(), if leads => promote_due(store).await,
            _ = fire.tick(), if leads => fire_recurring(store, &shared.events).await,
            _ = expire.tick(), if leads => expire_leases(store, &shared.held, &shared.registry).await,
            _ = advance.tick(), if leads => workflows::advance_all(store, &shared.events, &shared.held).await,
        }
    }
}

/// Renews the lead and this process's leases every third of a lease, until the scheduler
/// stops claiming.
async fn renew(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(shared.config.lease / 3);
    loop {
        tokio::select! {
            () = shared.stop_claiming.cancelled() => return,
            _ = every.tick() => {
                renew_lead(&shared).await;
                renew_leases(shared.store.as_ref(), &shared.held, &shared.config).await;
            }
        }
    }
}

/// Takes or keeps the lead for a lease period; a host that cannot reach the store does not
/// lead. Another host takes over within a lease period and a third of one after the
/// leader stopped renewing.
async fn renew_lead(shared: &Shared) {
    let now = now_ms();
    let until = now + shared.config.lease.as_millis() as Millis;
    let leads = match shared.store.lead(&shared.config.owner, until, now).await {
        Ok(leads) => leads,
        Err(e) => {
            tracing::error!(error = %e, "renewing the lead failed");
            false
        }
    };
    if shared.leading.swap(leads, Ordering::Relaxed) != leads {
        if leads {
            tracing::info!("this host leads the upkeep");
        } else {
            tracing::info!("this host no longer leads the upkeep");
        }
    }
}

async fn promote_due(store: &dyn JobStore) {
    loop {
        match store.promote_due(now_ms(), BATCH).await {
            Ok(promoted) => {
                if promoted.jobs.len() < BATCH as usize {
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

async fn fire_recurring(store: &dyn JobStore, events: &EventBus) {
    match store.fire_recurring(now_ms()).await {
        Ok(fired) => {
            if !fired.value.is_empty() {
                tracing::debug!(jobs = fired.value.len(), "enqueued recurring jobs");
            }
            lifecycle::fired(events, &fired.value);
        }
        Err(e) => tracing::error!(error = %e, "firing recurring jobs failed"),
    }
}

/// Records every attempt whose lease expired as failed with `lease_expired`: it counts,
/// and the job goes back by its retry policy, or fails once its attempts are used up.
/// Leases this process still holds are left to the next renewal (they expired only
/// because the store took no writes for a while).
async fn expire_leases(store: &dyn JobStore, held: &Held, registry: &Registry) {
    let expired = match store.expired_leases(now_ms(), BATCH).await {
        Ok(expired) => expired,
        Err(e) => return tracing::error!(error = %e, "looking for expired leases failed"),
    };
    let now = now_ms();
    let writes: Vec<_> = expired
        .iter()
        .filter(|Claimed { job, lease }| !held.holds(job.id, *lease))
        .map(|Claimed { job, lease }| {
            let plugin = registry.get(&job.plugin);
            let policy = executor::retry_policy(job, plugin.as_deref());
            let error = JobError::new(
                ErrorKind::LeaseExpired,
                format!(
                    "lease expired: the host running attempt {} of {} stopped",
                    job.attempt, job.max_attempts
                ),
            );
            let failure = executor::failure(job, error, &policy, None, Usage::default(), now);
            store.fail(job.id, *lease, failure, now)
        })
        .collect();
    if writes.is_empty() {
        return;
    }
    let written = futures_util::future::join_all(writes).await;
    let expired = written.iter().filter(|w| w.is_ok()).count();
    let failed = written
        .iter()
        .filter(|w| matches!(w, Err(e) if !matches!(e, store::Error::LeaseLost { .. })))
        .count();
    if expired > 0 {
        tracing::warn!(
            jobs = expired,
            "attempts whose lease expired (their host stopped) failed"
        );
    }
    if failed > 0 {
        tracing::error!(jobs = failed, "recording expired leases failed");
    }
}

async fn renew_leases(store: &dyn JobStore, held: &Held, config: &SchedulerConfig) {
    let until = now_ms() + config.lease.as_millis() as Millis;
    match store.heartbeat(&held.live_leases(), until).await {
        // A cancel asked through another host whose notice this one missed.
        Ok(renewal) => renewal
            .cancel_asked
            .into_iter()
            .for_each(|id| held.interrupt(id)),
        Err(e) => tracing::error!(error = %e, "renewing leases failed"),
    }
    let agents_until = now_ms() + config.agents.lock.as_millis() as Millis;
    let renewed = store.renew_agent_locks(&config.owner, agents_until).await;
    if let Err(e) = renewed {
        tracing::error!(error = %e, "renewing agent locks failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::JsonText;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{ClaimParams, Durability, NewJob};

    #[tokio::test]
    async fn a_cancel_whose_notice_was_missed_stops_its_run_at_the_next_renewal() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("jobs.db"), Durability::Normal)
            .await
            .unwrap();
        let now = now_ms();
        let args = JsonText::from_value(&serde_json::json!({}));
        let job = NewJob::new("echo", args, "default");
        store.enqueue(job, now).await.unwrap();
        let config = SchedulerConfig {
            workers: 1,
            queues: vec!["default".into()],
            owner: "this-host".into(),
            lease: Duration::from_secs(30),
            grace: Duration::from_secs(1),
            retention: Default::default(),
            agents: Default::default(),
        };
        let params = ClaimParams {
            queues: config.queues.clone(),
            limit: 1,
            owner: config.owner.clone(),
            lease_until: now + 30_000,
            parked_agents: Vec::new(),
            waiting_plugins: Vec::new(),
        };
        let claimed = store.claim(&params, now).await.unwrap();
        let held = Held::default();
        held.take(&claimed);
        let run = held.token(claimed[0].job.id);
        renew_leases(&store, &held, &config).await;
        assert!(!run.is_cancelled(), "nobody asked to cancel it");
        // Asked through the store alone, as through another host whose notice was lost.
        store.cancel(claimed[0].job.id, now).await.unwrap();
        renew_leases(&store, &held, &config).await;
        assert!(run.is_cancelled(), "the renewal found the cancel");
    }
}
