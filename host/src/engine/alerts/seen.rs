//! What one pass of the evaluator reads: agents, plugins and queues once each, when a
//! rule first needs them, and the runs each failure rate counts.

use super::conditions::{self, Firing, Rate};
use crate::model::Millis;
use crate::model::agent::Agent;
use crate::model::alert::AlertCondition;
use crate::plugins::{PluginStatus, Registry};
use crate::store::alerts::{RunScope, Waiting};
use crate::store::{self, JobStore};
use std::collections::HashMap;

/// What one pass has read so far: each thing is read once, when a rule first needs it.
pub(super) struct Seen<'a> {
    store: &'a dyn JobStore,
    registry: &'a Registry,
    agents: Option<Vec<Agent>>,
    plugins: Option<Vec<PluginStatus>>,
    waiting: HashMap<String, Waiting>,
}

impl<'a> Seen<'a> {
    pub(super) fn new(store: &'a dyn JobStore, registry: &'a Registry) -> Seen<'a> {
        Seen {
            store,
            registry,
            agents: None,
            plugins: None,
            waiting: HashMap::new(),
        }
    }

    /// The subjects `condition` fires for at `now`.
    pub(super) async fn firing(
        &mut self,
        condition: &AlertCondition,
        now: Millis,
    ) -> store::Result<Firing> {
        Ok(match condition {
            AlertCondition::JobFailed { .. } => Firing::new(),
            AlertCondition::AgentOffline { agent } => {
                conditions::agents(agent.as_deref(), self.agents().await?)
            }
            AlertCondition::QueueDepth { queue, above } => {
                conditions::queue_depth(queue, *above, self.waiting(queue).await?)
            }
            AlertCondition::QueueAge {
                queue,
                above_seconds,
            } => conditions::queue_age(queue, *above_seconds, self.waiting(queue).await?, now),
            AlertCondition::FailureRate {
                plugin,
                queue,
                above,
                window_seconds,
                min_runs,
            } => {
                let scope = RunScope {
                    plugin: plugin.as_deref(),
                    queue: queue.as_deref(),
                };
                let since = now - Millis::from(*window_seconds) * 1000;
                let runs = self.store.runs_since(scope, since).await?;
                let rate = Rate {
                    above: *above,
                    min_runs: *min_runs,
                    window_seconds: *window_seconds,
                };
                let subject = conditions::scope(scope.plugin, scope.queue);
                conditions::failure_rate(&subject, rate, runs)
            }
            AlertCondition::PluginLoadFailed { plugin } => {
                let plugins = self.plugins.get_or_insert_with(|| self.registry.list());
                conditions::plugins(plugin.as_deref(), plugins)
            }
        })
    }

    async fn agents(&mut self) -> store::Result<&[Agent]> {
        if self.agents.is_none() {
            self.agents = Some(self.store.agents().await?);
        }
        Ok(self.agents.as_deref().unwrap_or_default())
    }

    async fn waiting(&mut self, queue: &str) -> store::Result<Waiting> {
        if let Some(waiting) = self.waiting.get(queue) {
            return Ok(*waiting);
        }
        let waiting = self.store.waiting(queue).await?;
        self.waiting.insert(queue.to_owned(), waiting);
        Ok(waiting)
    }
}
