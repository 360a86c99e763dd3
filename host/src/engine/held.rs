//! [`Held`]: the jobs this process holds — the leases it renews and the cancellation
//! token of each run — and nothing else of the engine.

use crate::model::JobId;
use crate::store::{Claimed, LeaseId};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// What this process holds of the jobs it claimed.
#[derive(Debug, Default)]
pub(super) struct Held {
    /// Cancellation tokens of the jobs this process holds, by job. A cancel that
    /// arrives before its run starts leaves a cancelled token for the run to find.
    running: Mutex<HashMap<JobId, CancellationToken>>,
    /// Leases of the jobs this process claimed and has not finished with (running,
    /// waiting for a worker, or having their outcome written): only these are renewed,
    /// so a job whose outcome could not be written is let go and runs again.
    leases: Mutex<HashMap<JobId, LeaseId>>,
}

impl Held {
    /// Takes on the leases of `claimed`.
    pub(super) fn take(&self, claimed: &[Claimed]) {
        let mut leases = self.leases.lock().expect("leases lock poisoned");
        leases.extend(claimed.iter().map(|c| (c.job.id, c.lease)));
    }

    /// The leases this process still means to renew.
    pub(super) fn live_leases(&self) -> Vec<(JobId, LeaseId)> {
        let leases = self.leases.lock().expect("leases lock poisoned");
        leases.iter().map(|(id, lease)| (*id, *lease)).collect()
    }

    /// Whether this process still holds `lease` on `id`.
    pub(super) fn holds(&self, id: JobId, lease: LeaseId) -> bool {
        let leases = self.leases.lock().expect("leases lock poisoned");
        leases.get(&id) == Some(&lease)
    }

    /// Stops renewing the lease of `id` and forgets its run: this process is done with
    /// it. (A cancel heard while its outcome was being written leaves no token behind.)
    pub(super) fn let_go(&self, id: JobId) {
        let mut leases = self.leases.lock().expect("leases lock poisoned");
        leases.remove(&id);
        drop(leases);
        self.ended(id);
    }

    /// The token that stops the run of `id` (already cancelled if a cancel came first).
    pub(super) fn token(&self, id: JobId) -> CancellationToken {
        let mut running = self.running.lock().expect("running lock poisoned");
        running.entry(id).or_default().clone()
    }

    /// Stops the run of `id` if this process holds the job (a cancel asked through another
    /// host, which every host hears).
    pub(super) fn interrupt_if_held(&self, id: JobId) {
        let held = self
            .leases
            .lock()
            .expect("leases lock poisoned")
            .contains_key(&id);
        if held {
            self.interrupt(id);
        }
    }

    /// Forgets the run of `id`, which ended.
    pub(super) fn ended(&self, id: JobId) {
        let mut running = self.running.lock().expect("running lock poisoned");
        running.remove(&id);
    }

    /// Stops the run of `id` in this process, now or, if it has not started yet, as soon
    /// as it does.
    pub(super) fn interrupt(&self, id: JobId) {
        let mut running = self.running.lock().expect("running lock poisoned");
        running.entry(id).or_default().cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_heard_after_the_run_ended_is_forgotten_with_the_job() {
        let held = Held::default();
        let id = JobId::now_v7();
        held.leases.lock().unwrap().insert(id, LeaseId::now_v7());
        let run = held.token(id);
        held.ended(id);
        // The outcome is being written, the lease still held: a cancel arrives.
        held.interrupt_if_held(id);
        assert!(!run.is_cancelled(), "the run had ended");
        held.let_go(id);
        assert!(held.live_leases().is_empty());
        assert!(
            held.running.lock().unwrap().is_empty(),
            "no token is left behind"
        );
    }
}
