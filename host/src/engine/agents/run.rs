//! The agent side of one run: the lock it holds on its agent, and `agent.exec`, which
//! runs the agent's executable with the command in the agent's repository.

use super::process::{self, Spawn, Stream};
use crate::engine::Shared;
use crate::events::{Event, EventBus, Ids};
use crate::model::agent::{Agent, Health};
use crate::model::{Job, JobId, Millis, now_ms};
use crate::runtime::{AgentInfo, ExecError, ExecResult};
use crate::store::agents::{Acquired, ExecRecord};
use crate::store::{JobStore, LeaseId};
use std::sync::Arc;
use std::time::Duration;

/// A run's hold on the agent its job is bound to.
pub(in crate::engine) struct AgentRun {
    job: JobId,
    /// The agent, if it is registered.
    agent: Option<Agent>,
    /// `Ok` while the run holds the agent's lock; why not otherwise.
    held: Result<(), String>,
    ids: Ids,
    store: Arc<dyn JobStore>,
    events: EventBus,
}

impl AgentRun {
    /// Takes the lock of agent `agent_id` for `job`'s run under `lease`.
    pub(in crate::engine) async fn bind(
        shared: &Shared,
        job: &Job,
        agent_id: &str,
        lease: LeaseId,
    ) -> AgentRun {
        let now = now_ms();
        let until = now + shared.config.agents.lock.as_millis() as Millis;
        let store = &shared.store;
        let acquired = store
            .acquire_agent(agent_id, job.id, &shared.config.owner, until, now)
            .await
            .unwrap_or_else(|e| Acquired {
                held: Err(format!("agent {agent_id} cannot be locked: {e}")),
                agent: None,
                task_id: None,
            });
        let Acquired {
            held,
            agent,
            task_id: task,
        } = acquired;
        AgentRun {
            job: job.id,
            agent,
            held,
            ids: Ids {
                job: Some(job.id),
                task,
                agent: Some(agent_id.into()),
                correlation: Some(lease),
            },
            store: store.clone(),
            events: shared.events.clone(),
        }
    }

    /// The bound agent as it was when the run took it, if it is registered.
    pub(in crate::engine) fn agent(&self) -> Option<&Agent> {
        self.agent.as_ref()
    }

    /// The ids of the run's events.
    pub(in crate::engine) fn ids(&self) -> &Ids {
        &self.ids
    }

    /// The bound agent as the guest sees it.
    pub(in crate::engine) fn info(&self) -> Option<AgentInfo> {
        self.agent.as_ref().map(|agent| AgentInfo {
            id: agent.spec.id.clone(),
            name: agent.spec.name.clone(),
            repository_path: agent.spec.repository_path.clone(),
            max_concurrency: agent.spec.max_concurrency,
            labels: agent
                .spec
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    /// Runs `command` on the agent, its output lines going to `on_line` as they come.
    pub(in crate::engine) async fn exec(
        &self,
        command: String,
        timeout: Duration,
        on_line: &(dyn Fn(Stream, &str) + Send + Sync),
    ) -> Result<ExecResult, ExecError> {
        if let Err(why) = &self.held {
            return Err(ExecError::Unavailable(why.clone()));
        }
        let Some(agent) = &self.agent else {
            return Err(ExecError::Unavailable(
                "the job's agent is not registered".into(),
            ));
        };
        let spec = &agent.spec;
        let mut env = super::environment(spec);
        env.push(("ORCHESTRA_JOB_ID".into(), self.job.to_string()));
        env.push(("ORCHESTRA_AGENT_ID".into(), spec.id.clone()));
        if let Some(task) = self.ids.task {
            env.push(("ORCHESTRA_TASK_ID".into(), task.to_string()));
        }
        let spawn = Spawn {
            argv: process::render(&spec.command, &command, &spec.repository_path),
            cwd: spec.repository_path.clone().into(),
            env,
        };
        self.events
            .publish(self.ids.clone(), Event::TaskExecStarted { command });
        let ran = process::run(&spawn, timeout, on_line).await;
        let record = match &ran {
            Ok(done) => ExecRecord {
                outcome: if done.timed_out { "timeout" } else { "exited" },
                exit_code: done.exit_code,
                stdout: done.stdout.clone(),
                stderr: done.stderr.clone(),
                duration_ms: done.duration.as_millis() as u64,
            },
            Err(e) => ExecRecord {
                outcome: "spawn_failure",
                exit_code: None,
                stdout: String::new(),
                stderr: e.to_string(),
                duration_ms: 0,
            },
        };
        self.finish(agent, &record).await;
        match ran {
            Ok(done) => {
                let result = ExecResult {
                    exit_code: done.exit_code,
                    stdout: done.stdout,
                    stderr: done.stderr,
                    duration_ms: done.duration.as_millis() as u64,
                };
                if done.timed_out {
                    Err(ExecError::Timeout(result))
                } else {
                    Ok(result)
                }
            }
            Err(e) => Err(ExecError::Spawn(e.to_string())),
        }
    }

    /// Stores and publishes a command's outcome; an executable that cannot be started
    /// puts the agent in `error` (the executor then publishes the change).
    async fn finish(&self, agent: &Agent, record: &ExecRecord) {
        self.events.publish(
            self.ids.clone(),
            Event::TaskExecFinished {
                outcome: record.outcome,
                exit_code: record.exit_code,
                duration_ms: record.duration_ms,
            },
        );
        if record.outcome == "spawn_failure" {
            let reason = Some(format!("executable cannot be started: {}", record.stderr));
            let marked = self
                .store
                .set_agent_health(
                    &agent.spec.id,
                    Health::Error,
                    agent.health_misses,
                    reason,
                    now_ms(),
                )
                .await;
            if let Err(e) = marked {
                tracing::error!(agent = %agent.spec.id, error = %e, "recording agent error failed");
            }
        }
        if let Err(e) = self.store.record_exec(self.job, record.clone()).await {
            tracing::error!(job = %self.job, error = %e, "recording a command's outcome failed");
        }
    }
}
