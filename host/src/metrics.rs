//! The host's metrics, in the Prometheus (OpenMetrics) text format through
//! `prometheus-client`: what happened to jobs and runs, counted as it happens, and what
//! the queues, agents, plugins, event stream and search index look like, set when
//! `/metrics` is read.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// A job event's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    plugin: String,
    queue: String,
    /// `created`, `started`, `succeeded`, `retried`, `failed`, `cancelled`, `deleted`.
    event: &'static str,
}

/// A finished run's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    plugin: String,
    queue: String,
    /// `succeeded` or `failed`.
    outcome: &'static str,
    /// The error's kind for a failed run; empty otherwise.
    error_kind: &'static str,
}

/// A plugin's label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabel {
    plugin: String,
}

/// A queue's labels, with one of its jobs' states.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueStateLabels {
    queue: String,
    state: &'static str,
}

/// A queue's label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    queue: String,
}

/// An agent's label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentLabel {
    agent: String,
}

/// An agent's labels, with its status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentLabels {
    agent: String,
    status: &'static str,
}

fn seconds_histogram() -> Histogram {
    // 1 ms to about 9 hours.
    Histogram::new(exponential_buckets(0.001, 4.0, 12))
}

/// The host's metrics. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    jobs: Family<JobLabels, Counter>,
    runs: Family<RunLabels, Counter>,
    run_seconds: Family<PluginLabel, Histogram, fn() -> Histogram>,
    pickup_seconds: Histogram,
    fuel: Family<PluginLabel, Counter>,
    memory_peak_bytes: Histogram,
    queue_jobs: Family<QueueStateLabels, Gauge>,
    queue_oldest_seconds: Family<QueueLabel, Gauge<f64, AtomicU64>>,
    queue_served: Family<QueueLabel, Gauge>,
    agent_status: Family<AgentLabels, Gauge>,
    agent_running: Family<AgentLabel, Gauge>,
    plugin_load_errors: Gauge,
    event_clients: Gauge,
    search_backlog: Gauge,
    leader: Gauge,
    commit_writes: Histogram,
    commit_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("orchestra");
        let metrics = Metrics {
            jobs: Family::default(),
            runs: Family::default(),
            run_seconds: Family::new_with_constructor(seconds_histogram),
            pickup_seconds: seconds_histogram(),
            fuel: Family::default(),
            // 64 KiB to 4 GiB.
            memory_peak_bytes: Histogram::new(exponential_buckets(65_536.0, 4.0, 9)),
            queue_jobs: Family::default(),
            queue_oldest_seconds: Family::default(),
            queue_served: Family::default(),
            agent_status: Family::default(),
            agent_running: Family::default(),
            plugin_load_errors: Gauge::default(),
            event_clients: Gauge::default(),
            search_backlog: Gauge::default(),
            leader: Gauge::default(),
            // 1 to 1024 writes.
            commit_writes: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            // 0.1 ms to about 1.7 s.
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 4.0, 8)),
            registry: Registry::default(),
        };
        let m = &metrics;
        registry.register(
            "jobs",
            "Job events by plugin, queue and event",
            m.jobs.clone(),
        );
        registry.register(
            "runs",
            "Finished runs by plugin, queue, outcome and error kind",
            m.runs.clone(),
        );
        registry.register(
            "run_seconds",
            "Wall time of runs by plugin",
            m.run_seconds.clone(),
        );
        registry.register(
            "pickup_seconds",
            "Time from a job being due to its run starting",
            m.pickup_seconds.clone(),
        );
        registry.register("fuel", "Fuel consumed by plugin", m.fuel.clone());
        registry.register(
            "memory_peak_bytes",
            "Largest linear memory of runs",
            m.memory_peak_bytes.clone(),
        );
        registry.register(
            "queue_jobs",
            "Jobs per queue and state",
            m.queue_jobs.clone(),
        );
        registry.register(
            "queue_oldest_waiting_seconds",
            "Age of each queue's longest-waiting enqueued job",
            m.queue_oldest_seconds.clone(),
        );
        registry.register(
            "queue_served",
            "Whether a worker of this host takes each queue's jobs (1) or none does (0)",
            m.queue_served.clone(),
        );
        registry.register(
            "agent_status",
            "Each agent's status (1 for its current one)",
            m.agent_status.clone(),
        );
        registry.register(
            "agent_running_jobs",
            "Jobs each agent runs now",
            m.agent_running.clone(),
        );
        registry.register(
            "plugin_load_errors",
            "Plugins in the folder that failed to load",
            m.plugin_load_errors.clone(),
        );
        registry.register(
            "event_stream_clients",
            "Clients of the live event stream",
            m.event_clients.clone(),
        );
        registry.register(
            "search_backlog_jobs",
            "Jobs waiting to be indexed for search",
            m.search_backlog.clone(),
        );
        registry.register(
            "leader",
            "1 while this host leads the upkeep hosts share (promotion, recurring jobs, lease rescue, alerts)",
            m.leader.clone(),
        );
        registry.register(
            "db_commit_writes",
            "Writes carried by each group commit",
            m.commit_writes.clone(),
        );
        registry.register(
            "db_commit_seconds",
            "Duration of each group commit",
            m.commit_seconds.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }
}

/// What a queue looks like when `/metrics` is read.
#[derive(Debug, Clone)]
pub struct QueueGauge {
    /// The queue.
    pub queue: String,
    /// Jobs per state.
    pub jobs: Vec<(&'static str, u64)>,
    /// Age of its longest-waiting enqueued job, in seconds.
    pub oldest_seconds: Option<f64>,
    /// Whether a worker of this host takes its jobs.
    pub served: bool,
}

/// What an agent looks like when `/metrics` is read.
#[derive(Debug, Clone)]
pub struct AgentGauge {
    /// The agent.
    pub agent: String,
    /// Its status's name.
    pub status: &'static str,
    /// Jobs it runs now.
    pub running: u64,
}

/// What the host looks like when `/metrics` is read.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every queue.
    pub queues: Vec<QueueGauge>,
    /// Every agent.
    pub agents: Vec<AgentGauge>,
    /// Plugins that failed to load.
    pub plugin_load_errors: u64,
    /// Clients of the live event stream.
    pub event_clients: u64,
    /// Jobs waiting to be indexed for search.
    pub search_backlog: u64,
    /// Whether this host leads the upkeep.
    pub leader: bool,
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Metrics {
    /// Counts a job event (`created`, `started`, `succeeded`, `retried`, `failed`,
    /// `cancelled`, `deleted`).
    pub fn job_event(&self, plugin: &str, queue: &str, event: &'static str) {
        let labels = JobLabels {
            plugin: plugin.to_owned(),
            queue: queue.to_owned(),
            event,
        };
        self.jobs.get_or_create(&labels).inc();
    }

    /// Records a finished run: its outcome (`error_kind` for a failed one), wall time,
    /// fuel and peak memory.
    pub fn run(
        &self,
        plugin: &str,
        queue: &str,
        error_kind: Option<&'static str>,
        usage: &crate::model::Usage,
    ) {
        let labels = RunLabels {
            plugin: plugin.to_owned(),
            queue: queue.to_owned(),
            outcome: if error_kind.is_some() {
                "failed"
            } else {
                "succeeded"
            },
            error_kind: error_kind.unwrap_or_default(),
        };
        self.runs.get_or_create(&labels).inc();
        let plugin = PluginLabel {
            plugin: plugin.to_owned(),
        };
        self.run_seconds
            .get_or_create(&plugin)
            .observe(usage.wall_ms as f64 / 1000.0);
        self.fuel.get_or_create(&plugin).inc_by(usage.fuel_consumed);
        self.memory_peak_bytes
            .observe(usage.memory_peak_bytes as f64);
    }

    /// Records one group commit: how many writes it carried and how long it took.
    pub fn commit(&self, writes: usize, took: std::time::Duration) {
        self.commit_writes.observe(writes as f64);
        self.commit_seconds.observe(took.as_secs_f64());
    }

    /// Records how long a run waited to start after its job was due.
    pub fn pickup(&self, seconds: f64) {
        self.pickup_seconds.observe(seconds.max(0.0));
    }

    /// The metrics as text, with the gauges set from `now`.
    pub fn render(&self, now: &Snapshot) -> String {
        self.queue_jobs.clear();
        self.queue_oldest_seconds.clear();
        self.queue_served.clear();
        for queue in &now.queues {
            let label = QueueLabel {
                queue: queue.queue.clone(),
            };
            for (state, count) in &queue.jobs {
                let labels = QueueStateLabels {
                    queue: queue.queue.clone(),
                    state,
                };
                self.queue_jobs.get_or_create(&labels).set(gauge(*count));
            }
            self.queue_oldest_seconds
                .get_or_create(&label)
                .set(queue.oldest_seconds.unwrap_or(0.0));
            self.queue_served
                .get_or_create(&label)
                .set(i64::from(queue.served));
        }
        self.agent_status.clear();
        self.agent_running.clear();
        for agent in &now.agents {
            let labels = AgentLabels {
                agent: agent.agent.clone(),
                status: agent.status,
            };
            self.agent_status.get_or_create(&labels).set(1);
            let label = AgentLabel {
                agent: agent.agent.clone(),
            };
            self.agent_running
                .get_or_create(&label)
                .set(gauge(agent.running));
        }
        self.plugin_load_errors.set(gauge(now.plugin_load_errors));
        self.event_clients.set(gauge(now.event_clients));
        self.search_backlog.set(gauge(now.search_backlog));
        self.leader.set(i64::from(now.leader));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Usage;

    #[test]
    fn events_runs_and_gauges_are_rendered() {
        let metrics = Metrics::default();
        metrics.job_event("echo", "default", "created");
        metrics.job_event("echo", "default", "created");
        let usage = Usage {
            fuel_consumed: 1_000,
            wall_ms: 20,
            memory_peak_bytes: 1 << 20,
        };
        metrics.run("echo", "default", None, &usage);
        metrics.run("echo", "default", Some("trap"), &usage);
        metrics.pickup(0.002);
        metrics.commit(8, std::time::Duration::from_millis(2));
        let text = metrics.render(&Snapshot {
            queues: vec![QueueGauge {
                queue: "default".into(),
                jobs: vec![("enqueued", 3)],
                oldest_seconds: Some(1.5),
                served: true,
            }],
            agents: vec![AgentGauge {
                agent: "a1".into(),
                status: "busy",
                running: 1,
            }],
            plugin_load_errors: 1,
            event_clients: 2,
            search_backlog: 7,
            leader: true,
        });
        for line in [
            r#"orchestra_jobs_total{plugin="echo",queue="default",event="created"} 2"#,
            r#"orchestra_runs_total{plugin="echo",queue="default",outcome="failed",error_kind="trap"} 1"#,
            r#"orchestra_fuel_total{plugin="echo"} 2000"#,
            r#"orchestra_queue_jobs{queue="default",state="enqueued"} 3"#,
            r#"orchestra_queue_oldest_waiting_seconds{queue="default"} 1.5"#,
            r#"orchestra_agent_status{agent="a1",status="busy"} 1"#,
            r#"orchestra_agent_running_jobs{agent="a1"} 1"#,
            "orchestra_plugin_load_errors 1",
            "orchestra_event_stream_clients 2",
            "orchestra_search_backlog_jobs 7",
            "orchestra_leader 1",
            "orchestra_pickup_seconds_count 1",
            "orchestra_db_commit_writes_sum 8.0",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        let empty = metrics.render(&Snapshot::default());
        assert!(
            !empty.contains("queue=\"default\",state"),
            "gauges of gone queues go"
        );
    }
}
