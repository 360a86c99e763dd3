//! Alerts: every second, each enabled rule is evaluated; an incident opens once per
//! subject its condition holds for, and resolves when the condition clears. Each
//! opening and resolution is logged (`warn` and `info`), published on the event stream
//! (`alert.fired`, `alert.resolved`) and, for a rule with a webhook, delivered by a job
//! (see [`webhook`]).
//!
//! The evaluator is the only writer of incidents, so it keeps the open ones in memory
//! (read from the store at start). `job_failed` rules follow jobs as they move into and
//! out of `failed` (the change sink hands the moves over, see [`feed`]); every other kind
//! looks at a state anew each time: the subjects it fires for are compared with its open
//! incidents. The incidents of a rule that is disabled or deleted resolve.

mod conditions;
mod declare;
mod feed;
mod seen;
mod webhook;

pub use declare::{DeclareError, declare};
pub(super) use feed::FailedJobs;
pub use webhook::WEBHOOK_PLUGIN;
pub(super) use webhook::{deliver, retry_policy};

use super::Shared;
use crate::events::{AlertNotice, Event, Ids};
use crate::model::alert::{AlertCondition, AlertRule, Incident};
use crate::model::{JobId, JobState, Millis, now_ms};
use crate::store::alerts::IncidentFilter;
use crate::store::{self, JobStore};
use conditions::{Decision, Firing};
use feed::FailedMove;
use seen::Seen;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often rules are evaluated.
const EVERY: Duration = Duration::from_secs(1);
/// Most rules a host keeps: each is evaluated every second.
pub const MAX_RULES: usize = 100;
/// Jobs whose states one read looks up.
const STATES_PER_READ: usize = 500;

/// Open incidents by rule, then by subject.
type Open = HashMap<String, BTreeMap<String, Incident>>;

/// Evaluates the rules every [`EVERY`], while this host leads, until the scheduler stops
/// claiming.
pub(super) async fn run(shared: Arc<Shared>, moves: mpsc::Receiver<FailedMove>) {
    let mut evaluator = Evaluator {
        shared,
        moves,
        pending: VecDeque::new(),
        open: Open::new(),
        loaded: false,
        check_jobs: true,
        rates: HashMap::new(),
    };
    let mut every = tokio::time::interval(EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = evaluator.shared.stop_claiming.cancelled() => return,
            _ = every.tick() => {
                if !evaluator.shared.leads() {
                    evaluator.stand_by();
                    continue;
                }
                if let Err(e) = evaluator.tick().await {
                    tracing::error!(error = %e, "evaluating alert rules failed");
                    evaluator.loaded = false;
                }
            }
        }
    }
}

/// The evaluator's state between passes.
struct Evaluator {
    shared: Arc<Shared>,
    /// Moves into and out of `failed`, from the change sink.
    moves: mpsc::Receiver<FailedMove>,
    /// Moves taken from `moves` and not yet acted on (a failed pass leaves them here).
    pending: VecDeque<FailedMove>,
    /// The open incidents, as stored.
    open: Open,
    /// Whether `open` is what the store holds; read again when not.
    loaded: bool,
    /// Whether the open `job_failed` incidents are to be checked against their jobs'
    /// states (at start, and when moves were dropped).
    check_jobs: bool,
    /// The last measure of each `failure_rate` rule, by rule id.
    rates: HashMap<String, Measured>,
}

/// A failure rate as last measured: counting a window's runs costs in proportion to the
/// window, so a rate is measured again only after a share of it (see
/// [`conditions::measured_every`]).
struct Measured {
    /// The condition measured (a rule replaced since is measured anew).
    condition: AlertCondition,
    /// Until when the measure stands.
    until: Millis,
    /// What it fired for.
    firing: Firing,
}

impl Evaluator {
    /// Lets the moves go while another host leads (its evaluator acts on them), and
    /// forgets what it knew: once this host leads, it reads the incidents anew and checks
    /// the open ones against their jobs.
    fn stand_by(&mut self) {
        while self.moves.try_recv().is_ok() {}
        self.pending.clear();
        self.rates.clear();
        self.loaded = false;
        self.check_jobs = true;
    }

    fn store(&self) -> Arc<dyn JobStore> {
        self.shared.store.clone()
    }

    /// One pass over every rule.
    async fn tick(&mut self) -> store::Result<()> {
        let store = self.store();
        if !self.loaded {
            self.open = open_incidents(store.as_ref()).await?;
            self.loaded = true;
        }
        let now = now_ms();
        let watch = self.shared.failed_jobs.seen();
        let rules: Vec<AlertRule> = store
            .alert_rules()
            .await?
            .into_iter()
            .map(|stored| stored.rule)
            .collect();
        let enabled: Vec<&AlertRule> = rules.iter().filter(|rule| rule.enabled).collect();
        let (failures, states): (Vec<&AlertRule>, Vec<&AlertRule>) = enabled
            .iter()
            .copied()
            .partition(|rule| follows_failures(rule));
        self.shared.failed_jobs.settle(watch, !failures.is_empty());
        let dropped = self.shared.failed_jobs.take_dropped();
        if dropped > 0 {
            tracing::warn!(
                moves = dropped,
                "jobs moved into or out of failed faster than alerts could follow; their open incidents are checked"
            );
            self.check_jobs = true;
        }
        self.follow_failed_jobs(&failures, &rules, now).await?;
        if self.check_jobs {
            self.check_failed_jobs(&rules, now).await?;
            self.check_jobs = false;
        }
        let registry = self.shared.registry.clone();
        let mut seen = Seen::new(store.as_ref(), &registry);
        self.rates
            .retain(|id, _| states.iter().any(|rule| rule.id == *id));
        for rule in states {
            let firing = match self.rates.get(&rule.id) {
                Some(rate) if rate.condition == rule.condition && now < rate.until => {
                    rate.firing.clone()
                }
                _ => {
                    let firing = seen.firing(&rule.condition, now).await?;
                    if let Some(every) = conditions::measured_every(&rule.condition) {
                        let rate = Measured {
                            condition: rule.condition.clone(),
                            until: now + every,
                            firing: firing.clone(),
                        };
                        self.rates.insert(rule.id.clone(), rate);
                    }
                    firing
                }
            };
            self.settle(&rule.id, Some(rule), firing, now).await?;
        }
        let enabled_ids: HashSet<&str> = enabled.iter().map(|rule| rule.id.as_str()).collect();
        let left: Vec<String> = self
            .open
            .keys()
            .filter(|id| !enabled_ids.contains(id.as_str()))
            .cloned()
            .collect();
        for id in left {
            let rule = rules.iter().find(|rule| rule.id == id);
            self.settle(&id, rule, Firing::new(), now).await?;
        }
        Ok(())
    }

    /// Opens an incident for each job that failed and a `job_failed` rule covers, and
    /// resolves those of the jobs that left `failed`, in the order they moved.
    async fn follow_failed_jobs(
        &mut self,
        failures: &[&AlertRule],
        rules: &[AlertRule],
        now: Millis,
    ) -> store::Result<()> {
        while self.pending.len() < feed::CAPACITY {
            let Ok(moved) = self.moves.try_recv() else {
                break;
            };
            self.pending.push_back(moved);
        }
        while let Some(moved) = self.pending.front().cloned() {
            let subject = moved.job.to_string();
            if moved.entered {
                let summary = conditions::job_failed(&moved);
                for rule in failures {
                    if conditions::covers(&rule.condition, &moved.plugin, &moved.queue) {
                        self.open(rule, subject.clone(), summary.clone(), now)
                            .await?;
                    }
                }
            } else {
                for rule in rules.iter().filter(|rule| follows_failures(rule)) {
                    self.resolve(&rule.id, &subject, Some(rule), now).await?;
                }
            }
            self.pending.pop_front();
        }
        Ok(())
    }

    /// Resolves the open `job_failed` incidents whose job is no longer `failed`.
    async fn check_failed_jobs(&mut self, rules: &[AlertRule], now: Millis) -> store::Result<()> {
        let mut held: Vec<(&AlertRule, JobId)> = Vec::new();
        for rule in rules.iter().filter(|rule| follows_failures(rule)) {
            let subjects = self.open.get(&rule.id).into_iter().flat_map(BTreeMap::keys);
            held.extend(
                subjects
                    .filter_map(|s| s.parse().ok())
                    .map(|job| (rule, job)),
            );
        }
        let mut failed = HashSet::new();
        for chunk in held.chunks(STATES_PER_READ) {
            let jobs: Vec<JobId> = chunk.iter().map(|(_, job)| *job).collect();
            let states = self.store().job_states(&jobs).await?;
            failed.extend(
                states
                    .into_iter()
                    .filter(|(_, state)| *state == JobState::Failed)
                    .map(|(job, _)| job),
            );
        }
        for (rule, job) in held {
            if !failed.contains(&job) {
                self.resolve(&rule.id, &job.to_string(), Some(rule), now)
                    .await?;
            }
        }
        Ok(())
    }

    /// Opens and resolves rule `id`'s incidents by what fires now. `rule` is `None` for
    /// a rule that was deleted.
    async fn settle(
        &mut self,
        id: &str,
        rule: Option<&AlertRule>,
        firing: Firing,
        now: Millis,
    ) -> store::Result<()> {
        let Decision { open, resolve } = conditions::decide(firing, self.open.get(id));
        for subject in resolve {
            self.resolve(id, &subject, rule, now).await?;
        }
        if let Some(rule) = rule {
            for (subject, summary) in open {
                self.open(rule, subject, summary, now).await?;
            }
        }
        Ok(())
    }

    /// Opens an incident of `rule` about `subject`, and tells of it.
    async fn open(
        &mut self,
        rule: &AlertRule,
        subject: String,
        summary: String,
        now: Millis,
    ) -> store::Result<()> {
        let incident = Incident {
            id: uuid::Uuid::now_v7(),
            rule: rule.id.clone(),
            subject,
            summary,
            opened_at: now,
            resolved_at: None,
        };
        if !self.store().open_incident(&incident).await? {
            // One is open already that this evaluator did not know of: read them again.
            self.loaded = false;
            return Ok(());
        }
        tracing::warn!(
            rule = %incident.rule,
            subject = %incident.subject,
            incident = %incident.id,
            "alert fired: {}",
            incident.summary
        );
        self.tell(Some(rule), Event::AlertFired, &incident, now)
            .await;
        self.open
            .entry(incident.rule.clone())
            .or_default()
            .insert(incident.subject.clone(), incident);
        Ok(())
    }

    /// Resolves rule `id`'s open incident about `subject`, if there is one, and tells
    /// of it (by webhook only while the rule has one).
    async fn resolve(
        &mut self,
        id: &str,
        subject: &str,
        rule: Option<&AlertRule>,
        now: Millis,
    ) -> store::Result<()> {
        let Some(incident) = self.open.get(id).and_then(|open| open.get(subject)) else {
            return Ok(());
        };
        self.store().resolve_incident(incident.id, now).await?;
        let mut incident = self.remove(id, subject).expect("looked up above");
        incident.resolved_at = Some(now);
        tracing::info!(
            rule = %incident.rule,
            subject = %incident.subject,
            incident = %incident.id,
            "alert resolved: {}",
            incident.summary
        );
        self.tell(rule, Event::AlertResolved, &incident, now).await;
        Ok(())
    }

    /// Takes rule `id`'s open incident about `subject` out of `open`.
    fn remove(&mut self, id: &str, subject: &str) -> Option<Incident> {
        let open = self.open.get_mut(id)?;
        let incident = open.remove(subject);
        if open.is_empty() {
            self.open.remove(id);
        }
        incident
    }

    /// Publishes the event `made` of `incident` and, if `rule` has a webhook, queues
    /// its delivery (a failure to queue it is logged: the incident stands).
    async fn tell(
        &self,
        rule: Option<&AlertRule>,
        made: fn(AlertNotice) -> Event,
        incident: &Incident,
        now: Millis,
    ) {
        let ids = ids_of(rule, &incident.subject);
        let event = made(AlertNotice {
            rule: incident.rule.clone(),
            incident: incident.id,
            subject: incident.subject.clone(),
            summary: incident.summary.clone(),
        });
        let name = event.type_name();
        self.shared.events.publish(ids, event);
        if rule.is_none_or(|rule| rule.webhook.is_none()) {
            return;
        }
        let store = self.shared.store.as_ref();
        if let Err(e) = webhook::enqueue(store, name, incident, now).await {
            tracing::error!(rule = %incident.rule, incident = %incident.id, error = %e, "queueing a webhook delivery failed");
        }
    }
}

/// The ids of an alert event: the job of a `job_failed` incident, the agent of an
/// `agent_offline` one.
fn ids_of(rule: Option<&AlertRule>, subject: &str) -> Ids {
    match rule.map(|rule| &rule.condition) {
        Some(AlertCondition::JobFailed { .. }) => {
            subject.parse().map_or_else(|_| Ids::default(), Ids::job)
        }
        Some(AlertCondition::AgentOffline { .. }) => Ids::agent(subject),
        _ => Ids::default(),
    }
}

/// Whether `rule` follows failed jobs (a `job_failed` rule).
pub(super) fn follows_failures(rule: &AlertRule) -> bool {
    matches!(rule.condition, AlertCondition::JobFailed { .. })
}

/// Every open incident in the store.
async fn open_incidents(store: &dyn JobStore) -> store::Result<Open> {
    let filter = IncidentFilter {
        open: Some(true),
        limit: u32::MAX,
    };
    let mut open = Open::new();
    for incident in store.incidents(filter).await? {
        open.entry(incident.rule.clone())
            .or_default()
            .insert(incident.subject.clone(), incident);
    }
    Ok(open)
}
