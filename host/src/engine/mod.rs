//! The [`Scheduler`]: claims ready jobs as workers free up, runs each in the runtime, and
//! records the outcome; plus the background upkeep (leases, promotion of due jobs,
//! recurring jobs) and the alert rules' evaluation.
//!
//! Pickup is push-driven: an in-process enqueue or a due promotion wakes the dispatcher
//! at once; a one-second poll covers jobs written by anything else.

pub mod agents;
pub mod alerts;
pub mod bulk;
mod declared;
mod executor;
pub mod filters;
mod held;
mod lifecycle;
mod maintenance;
mod output;
mod publish;
pub mod recurring;
mod retention;
pub mod workflows;

pub use retention::{CLEANUP_ID, CLEANUP_PLUGIN, Cleanup, Retention, cleanup_schedule};

use crate::events::EventBus;
use crate::metrics::Metrics;
use crate::model::{Millis, now_ms};
use crate::plugins::Registry;
use crate::runtime::Runtime;
use crate::store::{self, ClaimParams, Claimed, JobStore};
use filters::{Counters, Counts, Filter, RunLog};
use held::Held;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The default queues, in order of precedence.
pub const DEFAULT_QUEUES: [&str; 4] = ["high-priority", "default", "long-running", "maintenance"];

/// How the scheduler works.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Jobs run at once.
    pub workers: usize,
    /// Queues served, in order of precedence.
    pub queues: Vec<String>,
    /// This process's name on the leases it takes: its own for every start, so that no
    /// other process (nor a later start of this host) ever takes its leases for its
    /// own. Leases of a process that died expire.
    pub owner: String,
    /// How long a lease lasts without renewal.
    pub lease: Duration,
    /// How long running jobs may take to finish at shutdown before they are released.
    pub grace: Duration,
    /// How long finished jobs are kept.
    pub retention: Retention,
    /// Agent health checks and locks.
    pub agents: agents::AgentSettings,
}

/// Jobs claimed ahead per worker while there is a backlog of short jobs.
const PREFETCH_PER_WORKER: usize = 8;
/// Runs shorter than this (µs, on average) are worth claiming ahead.
const SHORT_RUN_US: u64 = 2_000;
/// The run time assumed before any run was measured.
const LONG_RUN_US: u64 = 1_000_000;

/// Poll interval when nothing wakes the dispatcher.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Handle to the running scheduler. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    store: Arc<dyn JobStore>,
    runtime: Arc<Runtime>,
    registry: Arc<Registry>,
    events: EventBus,
    config: SchedulerConfig,
    /// Wakes the dispatcher: a job became ready.
    wake: Arc<Notify>,
    /// The jobs this process holds: their leases and runs.
    held: Arc<Held>,
    /// Whether this host leads the upkeep (see [`store::Leadership`]).
    leading: AtomicBool,
    /// Recent run time in microseconds (a moving average): prefetching pays only for
    /// short runs.
    recent_run_us: AtomicU64,
    /// Fired at shutdown: stop claiming.
    stop_claiming: CancellationToken,
    /// Fired when the grace period ends: abandon runs (their jobs are released).
    abandon: CancellationToken,
    /// Runs and background tasks in flight.
    tasks: TaskTracker,
    /// Middleware around every run.
    filters: Vec<Arc<dyn Filter>>,
    /// The built-in counters (also among `filters`).
    counters: Arc<Counters>,
    /// What the engine remembers of agents.
    agents: agents::Agents,
    /// Jobs moving into and out of `failed`, for the alert rules that watch them.
    failed_jobs: Arc<alerts::FailedJobs>,
}

impl Shared {
    /// Whether this host leads the upkeep.
    fn leads(&self) -> bool {
        self.leading.load(Ordering::Relaxed)
    }
}

impl Scheduler {
    /// Starts the dispatcher and upkeep tasks. Jobs that a process which died still
    /// held run again when their leases expire.
    pub async fn start(
        store: Arc<dyn JobStore>,
        runtime: Arc<Runtime>,
        registry: Arc<Registry>,
        events: EventBus,
        metrics: Arc<Metrics>,
        config: SchedulerConfig,
    ) -> Scheduler {
        let counters = Arc::new(Counters::default());
        let wake = Arc::new(Notify::new());
        let (failed_jobs, failed_moves) = alerts::FailedJobs::new();
        let failed_jobs = Arc::new(failed_jobs);
        let held = Arc::new(Held::default());
        store.report_to(Arc::new(publish::Publisher {
            events: events.clone(),
            wake: wake.clone(),
            metrics: metrics.clone(),
            failed_jobs: failed_jobs.clone(),
            held: held.clone(),
        }));
        let shared = Arc::new(Shared {
            store,
            runtime,
            registry,
            events,
            config,
            wake,
            held,
            leading: AtomicBool::new(false),
            recent_run_us: AtomicU64::new(LONG_RUN_US),
            stop_claiming: CancellationToken::new(),
            abandon: CancellationToken::new(),
            tasks: TaskTracker::new(),
            filters: vec![
                Arc::new(RunLog),
                counters.clone(),
                Arc::new(filters::Measure(metrics)),
            ],
            counters,
            agents: agents::Agents::default(),
            failed_jobs,
        });
        agents::sync(&shared).await;
        tokio::spawn(dispatch(shared.clone()));
        tokio::spawn(maintenance::run(shared.clone()));
        tokio::spawn(alerts::run(shared.clone(), failed_moves));
        Scheduler { shared }
    }

    /// Tells the dispatcher a job may be ready.
    fn notify(&self) {
        self.shared.wake.notify_one();
    }

    /// Whether this host's workers claim from `queue`: one of its configured queues, or
    /// the queue of an agent that takes work.
    pub fn serves(&self, queue: &str) -> bool {
        self.shared.config.queues.iter().any(|q| q == queue) || self.shared.agents.serves(queue)
    }

    /// The queues this host's workers claim from, in order.
    pub fn served_queues(&self) -> Vec<String> {
        self.shared.agents.queues(&self.shared.config.queues)
    }

    /// Runs and outcomes counted since the host started.
    pub fn counts(&self) -> Counts {
        self.shared.counters.snapshot()
    }

    /// Whether this host leads the upkeep every host would otherwise repeat.
    pub fn leads(&self) -> bool {
        self.shared.leads()
    }

    /// The event bus runs publish to.
    pub fn events(&self) -> &EventBus {
        &self.shared.events
    }

    /// Removes finished jobs past their retention now.
    ///
    /// # Errors
    /// The store failed.
    pub async fn cleanup(&self) -> store::Result<Cleanup> {
        retention::clean(self.shared.store.as_ref(), self.shared.config.retention).await
    }

    /// Stops claiming, lets running jobs finish within the grace period, releases the
    /// rest, and flushes the store.
    pub async fn shutdown(&self) {
        let shared = &self.shared;
        shared.stop_claiming.cancel();
        shared.tasks.close();
        if tokio::time::timeout(shared.config.grace, shared.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("grace period over: releasing jobs still running");
            shared.abandon.cancel();
            shared.tasks.wait().await;
        }
        match shared.store.release(&shared.config.owner, now_ms()).await {
            Ok(released) if released.jobs.is_empty() => {}
            Ok(released) => {
                let released = released.jobs.len();
                tracing::info!(released, "released unfinished jobs");
            }
            Err(e) => tracing::error!(error = %e, "releasing unfinished jobs failed"),
        }
        if let Err(e) = shared.store.resign(&shared.config.owner).await {
            tracing::warn!(error = %e, "giving up the lead failed; it expires with its lease");
        }
    }
}

/// Claims jobs whenever workers are free and spawns a run for each.
///
/// While the queues have a backlog (the last claim came back full) of short jobs (recent
/// runs took under [`SHORT_RUN_US`]), it claims up to [`PREFETCH_PER_WORKER`] × workers
/// jobs ahead of free workers, so that claiming (one group commit away) overlaps with
/// running instead of alternating with it. A job claimed ahead waits a few milliseconds
/// at most; with longer runs nothing is claimed ahead, so a later job of higher priority
/// never waits behind jobs already claimed.
async fn dispatch(shared: Arc<Shared>) {
    let workers = shared.config.workers;
    let slots = Arc::new(Semaphore::new(workers));
    let mut ready: VecDeque<Claimed> = VecDeque::new();
    let mut backlog = false;
    loop {
        let first = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("semaphore never closed"),
            () = shared.stop_claiming.cancelled() => return,
        };
        let mut permits = vec![first];
        while let Ok(permit) = slots.clone().try_acquire_owned() {
            permits.push(permit);
        }
        if ready.len() < permits.len() {
            let short = shared.recent_run_us.load(Ordering::Relaxed) < SHORT_RUN_US;
            let prefetch = if backlog && short {
                PREFETCH_PER_WORKER * workers
            } else {
                0
            };
            let limit = permits.len() + prefetch - ready.len();
            let claimed = claim(&shared, limit).await;
            backlog = claimed.len() == limit;
            ready.extend(claimed);
        }
        if ready.is_empty() {
            drop(permits);
            tokio::select! {
                () = shared.wake.notified() => {}
                () = tokio::time::sleep(IDLE_POLL) => {}
                () = shared.stop_claiming.cancelled() => return,
            }
            continue;
        }
        for permit in permits {
            let Some(job) = ready.pop_front() else { break };
            let shared = shared.clone();
            shared
                .tasks
                .clone()
                .spawn(async move { executor::execute(&shared, job, permit).await });
        }
    }
}

/// Claims up to `limit` jobs from the served queues; none on a store error.
async fn claim(shared: &Shared, limit: usize) -> Vec<Claimed> {
    let params = ClaimParams {
        queues: shared.agents.queues(&shared.config.queues),
        limit: limit as u32,
        owner: shared.config.owner.clone(),
        lease_until: now_ms() + shared.config.lease.as_millis() as Millis,
        parked_agents: shared.agents.parked(),
        waiting_plugins: shared.registry.waiting(),
    };
    match shared.store.claim(&params, now_ms()).await {
        Ok(claimed) => {
            shared.held.take(&claimed);
            claimed
        }
        Err(e) => {
            tracing::error!(error = %e, "claiming jobs failed");
            Vec::new()
        }
    }
}
