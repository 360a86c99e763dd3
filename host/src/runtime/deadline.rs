//! A run's wall-clock deadline, which time spent waiting for agent commands does not use.
//!
//! Two mechanisms enforce it (see the runtime notes): the epoch callback reads
//! [`Deadline::at`] to interrupt a spinning guest, and an outer timer ([`Expiry`]) stops a
//! guest blocked in a host call. While an agent command is in flight the deadline is
//! paused; when it ends, both move back by the command's duration.

use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The deadline as the run's store sees it.
#[derive(Debug)]
pub(super) struct Deadline {
    at: Instant,
    /// What [`Expiry`] waits for: the deadline, or `None` while a command is in flight.
    timer: watch::Sender<Option<Instant>>,
}

/// The outer timer's view of a [`Deadline`].
#[derive(Debug)]
pub(super) struct Expiry(watch::Receiver<Option<Instant>>);

impl Deadline {
    /// A deadline at `at`, and the timer that watches it.
    pub(super) fn new(at: Instant) -> (Deadline, Expiry) {
        let (timer, watch) = watch::channel(Some(at));
        (Deadline { at, timer }, Expiry(watch))
    }

    /// When the guest is interrupted, unless paused.
    pub(super) fn at(&self) -> Instant {
        self.at
    }

    /// Stops the clock: the outer timer does not fire until [`Deadline::resume`].
    pub(super) fn pause(&self) {
        self.timer.send_replace(None);
    }

    /// Restarts the clock after a pause of `paused`, moving the deadline back by as much.
    pub(super) fn resume(&mut self, paused: Duration) {
        self.at += paused;
        self.timer.send_replace(Some(self.at));
    }
}

impl Expiry {
    /// Resolves once `grace` past the deadline has gone by with the clock running.
    pub(super) async fn expired(mut self, grace: Duration) {
        loop {
            let at = *self.0.borrow_and_update();
            match at {
                Some(at) => tokio::select! {
                    () = tokio::time::sleep_until((at + grace).into()) => return,
                    changed = self.0.changed() => {
                        if changed.is_err() {
                            // The run is over (its store is gone): keep the last deadline.
                            tokio::time::sleep_until((at + grace).into()).await;
                            return;
                        }
                    }
                },
                None => {
                    if self.0.changed().await.is_err() {
                        // Dropped while paused: the run is over, so never fire.
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_millis(20);
    /// Scheduling slack allowed on a busy machine.
    const SLACK: Duration = Duration::from_millis(250);

    #[tokio::test]
    async fn fires_at_the_deadline_plus_grace() {
        let start = Instant::now();
        let (_deadline, expiry) = Deadline::new(start + Duration::from_millis(100));
        expiry.expired(GRACE).await;
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(100) + GRACE, "{took:?}");
        assert!(
            took < Duration::from_millis(100) + GRACE + SLACK,
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn a_pause_moves_the_deadline_back_by_its_length() {
        let start = Instant::now();
        let original = start + Duration::from_millis(100);
        let (mut deadline, expiry) = Deadline::new(original);
        let timer = tokio::spawn(expiry.expired(GRACE));
        tokio::time::sleep(Duration::from_millis(50)).await;
        deadline.pause();
        let paused = Instant::now();
        // Well past the original deadline, but paused: the timer must not fire.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!timer.is_finished(), "the timer fired while paused");
        deadline.resume(paused.elapsed());
        assert!(deadline.at() >= original + Duration::from_millis(300));
        timer.await.unwrap();
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(400) + GRACE, "{took:?}");
        assert!(
            took < Duration::from_millis(400) + GRACE + SLACK,
            "{took:?}"
        );
    }
}
