//! Agents in the engine: which agent a task goes to, agent queues, status events, moving
//! waiting tasks off agents that cannot take work, the built-in health check, and the
//! agent side of a run (the lock and `agent.exec`).
//!
//! A task is a job of the [`TASK_PLUGIN`] plugin bound to an agent: normal and low tasks
//! wait in the agent's queue `agent-{id}` (capped at the agent's `max_concurrency`),
//! high and critical ones in `high-priority`. A run of a bound job first takes the
//! agent's lock (see [`crate::store::agents`]); the lock goes when the job stops running.

pub(super) mod health;
mod process;
mod run;

pub(super) use run::AgentRun;

use super::{Scheduler, Shared};
use crate::cron::Schedule;
use crate::events::{Event, EventBus, Ids};
use crate::model::agent::{Agent, AgentSpec, AgentStatus, TaskPriority};
use crate::model::{JobId, JsonText, Millis, new_job_id, now_ms};
use crate::store::agents::NewTask;
use crate::store::{self, Misfire, NewJob, RecurringDefinition};
use std::collections::HashMap;
use std::time::Duration;

/// The plugin that runs tasks.
pub const TASK_PLUGIN: &str = "task_execution";
/// The built-in plugin that checks agents' health; clients cannot submit it.
pub const HEALTH_PLUGIN: &str = "orchestra.agent-health";
/// The recurring job that enqueues the health check.
pub const HEALTH_ID: &str = "orchestra-agent-health";

/// How agents are watched and held.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// When the health check runs.
    pub health_schedule: Schedule,
    /// Checks missed in a row before an agent is offline.
    pub health_misses: u32,
    /// How long a job holds its agent without renewal.
    pub lock: Duration,
    /// Agents the settings file declares.
    pub declared: Vec<AgentSpec>,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            health_schedule: Schedule::parse("0 * * * * *", "UTC")
                .expect("a valid built-in schedule"),
            health_misses: 3,
            lock: Duration::from_secs(1500),
            declared: Vec::new(),
        }
    }
}

/// The recurring job behind the health check, on the `maintenance` queue; declared
/// while there are agents.
fn health_check_schedule(settings: &AgentSettings) -> RecurringDefinition {
    RecurringDefinition {
        id: HEALTH_ID.to_owned(),
        schedule: settings.health_schedule.clone(),
        plugin: HEALTH_PLUGIN.to_owned(),
        args: serde_json::json!({}),
        queue: "maintenance".to_owned(),
        priority: 0,
        max_attempts: 1,
        misfire: Misfire::Skip,
    }
}

/// What the engine remembers of agents between store reads.
#[derive(Debug, Default)]
pub(super) struct Agents {
    /// The status last published per agent, to publish changes only.
    statuses: std::sync::Mutex<HashMap<String, AgentStatus>>,
    /// Queues of the agents that take work: served after `default`.
    queues: std::sync::RwLock<Vec<String>>,
    /// Agents that take no work: their jobs wait, in any queue.
    parked: std::sync::RwLock<Vec<String>>,
    /// Whether the health check's recurring job is declared (`None`: not known yet).
    health_declared: std::sync::Mutex<Option<bool>>,
}

impl Agents {
    /// Publishes `agent.status` on `events` for every agent whose status differs from
    /// the last published.
    pub(super) fn publish_statuses(&self, events: &EventBus, agents: &[Agent]) {
        let mut statuses = self.statuses.lock().expect("agent statuses lock poisoned");
        for agent in agents {
            let previous = statuses.insert(agent.spec.id.clone(), agent.status);
            if previous != Some(agent.status) {
                events.publish(
                    Ids::agent(&agent.spec.id),
                    Event::AgentStatus {
                        status: agent.status,
                        previous,
                        reason: agent.status_reason.clone(),
                    },
                );
            }
        }
    }

    /// The agents whose jobs wait.
    pub(super) fn parked(&self) -> Vec<String> {
        self.parked
            .read()
            .expect("parked agents lock poisoned")
            .clone()
    }

    /// Whether `queue` is the queue of an agent that takes work.
    pub(super) fn serves(&self, queue: &str) -> bool {
        self.queues
            .read()
            .expect("agent queues lock poisoned")
            .iter()
            .any(|q| q == queue)
    }

    /// The queues to claim from: the configured ones, with the agent queues after
    /// `default` (or last).
    pub(super) fn queues(&self, configured: &[String]) -> Vec<String> {
        let agents = self.queues.read().expect("agent queues lock poisoned");
        if agents.is_empty() {
            return configured.to_vec();
        }
        let at = configured
            .iter()
            .position(|q| q == "default")
            .map_or(configured.len(), |i| i + 1);
        let mut queues = configured[..at].to_vec();
        queues.extend(agents.iter().cloned());
        queues.extend(configured[at..].iter().cloned());
        queues
    }
}

/// Why a task could not be submitted.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// No registered agent serves the task's repository.
    #[error("no registered agent serves repository {0}")]
    NoAgent(String),
    /// The task plugin is neither loaded nor compiling.
    #[error("plugin `{TASK_PLUGIN}` is not loaded: tasks cannot run")]
    NoPlugin,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// A task as submitted.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    /// The command.
    pub command: String,
    /// Canonical repository path.
    pub repository_path: String,
    /// How urgent.
    pub priority: TaskPriority,
    /// When it may start (`None`: now).
    pub run_at: Option<Millis>,
}

/// A submitted task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSubmitted {
    /// The task.
    pub task_id: JobId,
    /// Its job.
    pub job_id: JobId,
    /// The agent it went to.
    pub agent_id: String,
    /// The queue its job waits in.
    pub queue: String,
}

/// Host variables an agent's executables get besides the agent's own `env`.
const PASSED_VARIABLES: [&str; 3] = ["PATH", "HOME", "LANG"];

/// Git settings every agent command and health command runs with. Given through
/// `GIT_CONFIG_*`, they win over the repository's own config, so nothing a plugin could
/// have planted in the repository makes git run a program (a hook or an fsmonitor).
const GIT_SAFETY: [(&str, &str); 2] =
    [("core.hooksPath", "/dev/null"), ("core.fsmonitor", "false")];

/// The environment of an agent's commands and health command: [`PASSED_VARIABLES`] from
/// the host, then the agent's `env`, then [`GIT_SAFETY`] after any `GIT_CONFIG_*`
/// entries the agent's `env` gives.
fn environment(spec: &AgentSpec) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = PASSED_VARIABLES
        .iter()
        .filter_map(|name| std::env::var(name).ok().map(|v| ((*name).to_owned(), v)))
        .collect();
    env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let count = "GIT_CONFIG_COUNT";
    let first = env
        .iter()
        .find(|(k, _)| k == count)
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    env.retain(|(k, _)| k != count);
    for (i, (key, value)) in GIT_SAFETY.iter().enumerate() {
        env.push((format!("GIT_CONFIG_KEY_{}", first + i), (*key).to_owned()));
        env.push((
            format!("GIT_CONFIG_VALUE_{}", first + i),
            (*value).to_owned(),
        ));
    }
    env.push((count.to_owned(), (first + GIT_SAFETY.len()).to_string()));
    env
}

/// Of `agents`, the one `load` says is least loaded for its size.
fn least_loaded<'a>(agents: &[&'a Agent], load: &HashMap<String, u64>) -> Option<&'a Agent> {
    agents
        .iter()
        .min_by(|a, b| {
            let share = |a: &Agent| {
                load.get(&a.spec.id).copied().unwrap_or(0) as f64
                    / f64::from(a.spec.max_concurrency)
            };
            share(a).total_cmp(&share(b))
        })
        .copied()
}

impl Scheduler {
    /// Registers an agent (or, with `replace`, creates or redefines it), then brings the
    /// agent queues up to date.
    ///
    /// # Errors
    /// As [`crate::store::AgentStore::create_agent`].
    pub async fn register_agent(&self, spec: AgentSpec, replace: bool) -> store::Result<Agent> {
        let store = &self.shared.store;
        let agent = if replace {
            store.put_agent(spec, now_ms()).await?
        } else {
            store.create_agent(spec, now_ms()).await?
        };
        store
            .set_queue_concurrency(&agent.spec.queue(), Some(agent.spec.max_concurrency))
            .await?;
        sync(&self.shared).await;
        Ok(agent)
    }

    /// Removes an agent: refused while it runs something unless `force`, which cancels
    /// those jobs. Its waiting tasks move to another agent of its repository, or are
    /// cancelled when there is none.
    ///
    /// # Errors
    /// As [`crate::store::AgentStore::delete_agent`].
    pub async fn delete_agent(&self, id: &str, force: bool) -> store::Result<()> {
        let shared = &self.shared;
        let agent = shared.store.delete_agent(id, force).await?;
        for job in agent.current_jobs {
            self.cancel(job, now_ms()).await.ok();
        }
        let waiting = shared.store.waiting_jobs(id).await?;
        if !waiting.is_empty() {
            let agents = shared.store.agents().await?;
            let repository = &agent.spec.repository_path;
            let moved = move_jobs(shared, id, repository, &waiting, &agents).await?;
            for job in waiting.iter().filter(|job| !moved.contains(job)) {
                self.cancel(*job, now_ms()).await.ok();
            }
        }
        shared
            .agents
            .statuses
            .lock()
            .expect("agent statuses lock poisoned")
            .remove(id);
        sync(shared).await;
        Ok(())
    }

    /// Records a heartbeat of an agent managed outside the host.
    ///
    /// # Errors
    /// As [`crate::store::AgentStore::agent_heartbeat`].
    pub async fn agent_heartbeat(&self, id: &str) -> store::Result<Agent> {
        let agent = self.shared.store.agent_heartbeat(id, now_ms()).await?;
        sync(&self.shared).await;
        Ok(agent)
    }

    /// Submits a task to the least-loaded agent that takes work among those serving its
    /// repository (or, when none takes work now, to the least loaded of them, where it
    /// waits until it moves).
    ///
    /// # Errors
    /// [`TaskError::NoAgent`], [`TaskError::NoPlugin`], or the store failed.
    pub async fn submit_task(&self, request: TaskRequest) -> Result<TaskSubmitted, TaskError> {
        let shared = &self.shared;
        let settings = shared
            .registry
            .settings(TASK_PLUGIN)
            .ok_or(TaskError::NoPlugin)?;
        let agents = shared.store.agents().await?;
        let serving: Vec<&Agent> = agents
            .iter()
            .filter(|a| a.spec.repository_path == request.repository_path)
            .collect();
        let load = shared.store.agent_load().await?;
        let working: Vec<&Agent> = serving
            .iter()
            .copied()
            .filter(|a| a.status.takes_work())
            .collect();
        let agent = least_loaded(&working, &load)
            .or_else(|| least_loaded(&serving, &load))
            .ok_or_else(|| TaskError::NoAgent(request.repository_path.clone()))?;
        let task_id = new_job_id();
        let queue = request.priority.queue(&agent.spec.id);
        let args = serde_json::json!({"task_id": task_id, "command": request.command});
        let job = NewJob {
            priority: request.priority.job_priority(),
            max_attempts: settings.max_attempts,
            run_at: request.run_at,
            agent_id: Some(agent.spec.id.clone()),
            ..NewJob::new(TASK_PLUGIN, JsonText::from_value(&args), &queue)
        };
        let job_id = job.id;
        let now = now_ms();
        let task = NewTask {
            id: task_id,
            command: request.command,
            repository_path: request.repository_path,
            priority: request.priority,
            job,
        };
        shared.store.create_task(task, now).await?;
        Ok(TaskSubmitted {
            task_id,
            job_id,
            agent_id: agent.spec.id.clone(),
            queue,
        })
    }
}

/// Brings the engine's view of agents up to date: publishes status changes, serves the
/// queues of agents that take work, and moves waiting tasks off those that do not.
pub(super) async fn sync(shared: &Shared) {
    let agents = match shared.store.agents().await {
        Ok(agents) => agents,
        Err(e) => {
            tracing::error!(error = %e, "reading agents failed");
            return;
        }
    };
    shared.agents.publish_statuses(&shared.events, &agents);
    declare_health_check(shared, !agents.is_empty()).await;
    *shared
        .agents
        .queues
        .write()
        .expect("agent queues lock poisoned") = agents
        .iter()
        .filter(|a| a.status.takes_work())
        .map(|a| a.spec.queue())
        .collect();
    *shared
        .agents
        .parked
        .write()
        .expect("parked agents lock poisoned") = agents
        .iter()
        .filter(|a| !a.status.takes_work())
        .map(|a| a.spec.id.clone())
        .collect();
    for agent in agents.iter().filter(|a| !a.status.takes_work()) {
        let waiting = match shared.store.waiting_jobs(&agent.spec.id).await {
            Ok(waiting) => waiting,
            Err(e) => {
                tracing::error!(agent = %agent.spec.id, error = %e, "reading waiting tasks failed");
                continue;
            }
        };
        let from = agent.spec.id.as_str();
        let repository = &agent.spec.repository_path;
        if let Err(e) = move_jobs(shared, from, repository, &waiting, &agents).await {
            tracing::error!(agent = from, error = %e, "moving waiting tasks failed");
        }
    }
    shared.wake.notify_one();
}

/// Declares the health check's recurring job while there are agents, and removes it
/// when there are none, so a host without agents runs no health checks at all.
async fn declare_health_check(shared: &Shared, wanted: bool) {
    let declared = *shared
        .agents
        .health_declared
        .lock()
        .expect("health check flag lock poisoned");
    if declared == Some(wanted) {
        return;
    }
    let done = if wanted {
        let schedule = health_check_schedule(&shared.config.agents);
        shared
            .store
            .put_recurring(schedule, now_ms())
            .await
            .map(drop)
    } else {
        match shared.store.delete_recurring(HEALTH_ID).await {
            Err(store::Error::RecurringNotFound(_)) => Ok(()),
            other => other,
        }
    };
    match done {
        Ok(()) => {
            *shared
                .agents
                .health_declared
                .lock()
                .expect("health check flag lock poisoned") = Some(wanted);
        }
        Err(e) => tracing::error!(error = %e, "declaring the agent health check failed"),
    }
}

/// Moves `jobs`, bound to agent `from`, each to the least-loaded agent of `agents` that
/// takes work and serves `repository`; returns the jobs moved.
async fn move_jobs(
    shared: &Shared,
    from: &str,
    repository: &str,
    jobs: &[JobId],
    agents: &[Agent],
) -> store::Result<Vec<JobId>> {
    let peers: Vec<&Agent> = agents
        .iter()
        .filter(|a| a.spec.id != from && a.spec.repository_path == *repository)
        .filter(|a| a.status.takes_work())
        .collect();
    if jobs.is_empty() || peers.is_empty() {
        return Ok(Vec::new());
    }
    let mut load = shared.store.agent_load().await?;
    let mut moved = Vec::new();
    for job in jobs {
        let Some(to) = least_loaded(&peers, &load) else {
            break;
        };
        if shared
            .store
            .rebind_job(*job, from, &to.spec.id, now_ms())
            .await?
        {
            *load.entry(to.spec.id.clone()).or_default() += 1;
            moved.push(*job);
            let ids = Ids {
                job: Some(*job),
                task: shared.store.task_of_job(*job).await?,
                agent: Some(to.spec.id.as_str().into()),
                correlation: None,
            };
            shared.events.publish(
                ids,
                Event::TaskMoved {
                    from: from.to_owned(),
                },
            );
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(env: &[(&str, &str)]) -> AgentSpec {
        AgentSpec {
            id: "a".into(),
            name: "a".into(),
            repository_path: "/srv/repo".into(),
            command: vec!["run".into(), "{command}".into()],
            env: env
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            health_command: None,
            health_interval_seconds: 60,
            max_concurrency: 1,
            labels: std::collections::BTreeMap::new(),
        }
    }

    fn value<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
        let mut found = env.iter().filter(|(k, _)| k == name);
        let value = found.next().map(|(_, v)| v.as_str());
        assert!(found.next().is_none(), "{name} is set once");
        value
    }

    #[test]
    fn git_runs_without_hooks_or_fsmonitor_after_the_agents_own_git_settings() {
        let env = environment(&spec(&[]));
        assert_eq!(value(&env, "GIT_CONFIG_COUNT"), Some("2"));
        assert_eq!(value(&env, "GIT_CONFIG_KEY_0"), Some("core.hooksPath"));
        assert_eq!(value(&env, "GIT_CONFIG_VALUE_0"), Some("/dev/null"));
        assert_eq!(value(&env, "GIT_CONFIG_KEY_1"), Some("core.fsmonitor"));
        assert_eq!(value(&env, "GIT_CONFIG_VALUE_1"), Some("false"));

        let own = [
            ("GIT_CONFIG_COUNT", "1"),
            ("GIT_CONFIG_KEY_0", "user.name"),
            ("GIT_CONFIG_VALUE_0", "bot"),
        ];
        let env = environment(&spec(&own));
        assert_eq!(value(&env, "GIT_CONFIG_COUNT"), Some("3"));
        assert_eq!(value(&env, "GIT_CONFIG_KEY_0"), Some("user.name"));
        assert_eq!(value(&env, "GIT_CONFIG_KEY_1"), Some("core.hooksPath"));
        assert_eq!(value(&env, "GIT_CONFIG_KEY_2"), Some("core.fsmonitor"));
    }
}
