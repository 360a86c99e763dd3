//! What each condition makes of what the evaluator sees: the subjects it fires for now,
//! each with a summary, and which incidents that opens and resolves. Pure.

use super::feed::FailedMove;
use crate::model::Millis;
use crate::model::agent::Agent;
use crate::model::alert::{AlertCondition, Incident};
use crate::plugins::PluginStatus;
use crate::store::alerts::{RunCounts, Waiting};
use std::collections::BTreeMap;

/// The subjects a rule fires for now, each with what was seen.
pub(super) type Firing = BTreeMap<String, String>;

/// Longest summary kept: a plugin's load error may be long.
const MAX_SUMMARY_CHARS: usize = 500;

/// `text`, cut to [`MAX_SUMMARY_CHARS`].
fn summary(text: String) -> String {
    match text.char_indices().nth(MAX_SUMMARY_CHARS) {
        None => text,
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// One subject firing, or none.
fn fires(holds: bool, subject: &str, summary_of: impl FnOnce() -> String) -> Firing {
    if holds {
        Firing::from([(subject.to_owned(), summary(summary_of()))])
    } else {
        Firing::new()
    }
}

/// Agents that take no work (`agent`, or any).
pub(super) fn agents(agent: Option<&str>, agents: &[Agent]) -> Firing {
    agents
        .iter()
        .filter(|a| agent.is_none_or(|id| a.spec.id == id) && !a.status.takes_work())
        .map(|a| {
            let why = a.status_reason.as_deref().unwrap_or("no reason given");
            let text = format!("agent {} is {}: {why}", a.spec.id, a.status.as_str());
            (a.spec.id.clone(), summary(text))
        })
        .collect()
}

/// `queue` when more than `above` jobs wait in it.
pub(super) fn queue_depth(queue: &str, above: u64, waiting: Waiting) -> Firing {
    fires(waiting.jobs > above, queue, || {
        format!(
            "queue {queue} has {} jobs waiting, over {above}",
            waiting.jobs
        )
    })
}

/// `queue` when its longest-waiting job has waited more than `above_seconds` at `now`.
pub(super) fn queue_age(queue: &str, above_seconds: u32, waiting: Waiting, now: Millis) -> Firing {
    let waited = waiting.oldest_run_at.map_or(0, |at| (now - at).max(0));
    fires(waited > Millis::from(above_seconds) * 1000, queue, || {
        format!(
            "the oldest job of queue {queue} has waited {} s, over {above_seconds} s",
            waited / 1000
        )
    })
}

/// What a failure rate counts, as its incidents' subject: `plugin=echo queue=default`,
/// `plugin=echo`, `queue=default`, or `all runs`.
pub(super) fn scope(plugin: Option<&str>, queue: Option<&str>) -> String {
    match (plugin, queue) {
        (Some(plugin), Some(queue)) => format!("plugin={plugin} queue={queue}"),
        (Some(plugin), None) => format!("plugin={plugin}"),
        (None, Some(queue)) => format!("queue={queue}"),
        (None, None) => "all runs".to_owned(),
    }
}

/// How a failure rate is judged.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rate {
    /// The highest share of failed runs allowed.
    pub(super) above: f64,
    /// Runs needed before the share counts.
    pub(super) min_runs: u32,
    /// The window the runs ended in, in seconds.
    pub(super) window_seconds: u32,
}

/// `subject` when more than a share `rate.above` of at least `rate.min_runs` runs failed.
pub(super) fn failure_rate(subject: &str, rate: Rate, runs: RunCounts) -> Firing {
    let enough = runs.ended > 0 && runs.ended >= u64::from(rate.min_runs);
    let share = runs.failed as f64 / runs.ended.max(1) as f64;
    fires(enough && share > rate.above, subject, || {
        format!(
            "{} of {} runs ({subject}) failed in the last {} s: {:.1}%, over {:.1}%",
            runs.failed,
            runs.ended,
            rate.window_seconds,
            share * 100.0,
            rate.above * 100.0
        )
    })
}

/// How long a measure of `condition` stands, for a failure rate: a sixtieth of its
/// window, from one second to one minute. Other conditions are looked at every pass.
pub(super) fn measured_every(condition: &AlertCondition) -> Option<Millis> {
    match condition {
        AlertCondition::FailureRate { window_seconds, .. } => {
            Some((Millis::from(*window_seconds) * 1000 / 60).clamp(1000, 60_000))
        }
        _ => None,
    }
}

/// Plugins (`plugin`, or any) whose latest module or manifest failed to load.
pub(super) fn plugins(plugin: Option<&str>, plugins: &[PluginStatus]) -> Firing {
    plugins
        .iter()
        .filter(|p| plugin.is_none_or(|name| p.name == name))
        .filter_map(|p| {
            let error = p.error.as_deref()?;
            let text = format!("plugin {} failed to load: {error}", p.name);
            Some((p.name.clone(), summary(text)))
        })
        .collect()
}

/// Whether a `job_failed` rule's `condition` covers a job of `plugin` on `queue`.
pub(super) fn covers(condition: &AlertCondition, plugin: &str, queue: &str) -> bool {
    match condition {
        AlertCondition::JobFailed {
            plugin: only_plugin,
            queue: only_queue,
        } => {
            only_plugin.as_deref().is_none_or(|p| p == plugin)
                && only_queue.as_deref().is_none_or(|q| q == queue)
        }
        _ => false,
    }
}

/// The summary of a job's failure.
pub(super) fn job_failed(moved: &FailedMove) -> String {
    summary(format!(
        "job {} of plugin {} on queue {} failed ({})",
        moved.job, moved.plugin, moved.queue, moved.reason
    ))
}

/// What a rule's evaluation changes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Decision {
    /// Subjects that began to fire, with their summaries: an incident opens for each.
    pub(super) open: Vec<(String, String)>,
    /// Subjects with an open incident that no longer fire: it resolves.
    pub(super) resolve: Vec<String>,
}

/// Compares what fires now with the open incidents (by subject).
pub(super) fn decide(firing: Firing, open: Option<&BTreeMap<String, Incident>>) -> Decision {
    let is_open = |subject: &str| open.is_some_and(|open| open.contains_key(subject));
    let resolve = open
        .into_iter()
        .flat_map(BTreeMap::keys)
        .filter(|subject| !firing.contains_key(*subject))
        .cloned()
        .collect();
    let open = firing
        .into_iter()
        .filter(|(subject, _)| !is_open(subject))
        .collect();
    Decision { open, resolve }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::agent::{AgentSpec, AgentStatus, Health};
    use crate::model::new_job_id;

    fn incident(subject: &str) -> Incident {
        Incident {
            id: new_job_id(),
            rule: "r".into(),
            subject: subject.into(),
            summary: String::new(),
            opened_at: 0,
            resolved_at: None,
        }
    }

    fn subjects(firing: &Firing) -> Vec<&str> {
        firing.keys().map(String::as_str).collect()
    }

    #[test]
    fn only_new_subjects_open_and_only_cleared_ones_resolve() {
        let open: BTreeMap<String, Incident> =
            ["a", "b"].map(|s| (s.to_owned(), incident(s))).into();
        let firing = Firing::from([("b".into(), "still".into()), ("c".into(), "new".into())]);
        let decision = decide(firing.clone(), Some(&open));
        assert_eq!(
            decision,
            Decision {
                open: vec![("c".into(), "new".into())],
                resolve: vec!["a".into()],
            }
        );
        let first = decide(firing, None);
        assert_eq!(first.open.len(), 2, "nothing open yet: every subject opens");
        assert!(first.resolve.is_empty());
        assert_eq!(decide(Firing::new(), Some(&open)).resolve, ["a", "b"]);
    }

    #[test]
    fn queues_fire_over_their_thresholds_only() {
        let waiting = |jobs, oldest_run_at| Waiting {
            jobs,
            oldest_run_at,
        };
        assert!(queue_depth("q", 2, waiting(2, Some(0))).is_empty());
        let deep = queue_depth("q", 2, waiting(3, Some(0)));
        assert_eq!(subjects(&deep), ["q"]);
        assert!(deep["q"].contains("3 jobs waiting"), "{deep:?}");
        let now = 100_000;
        assert!(queue_age("q", 60, waiting(1, Some(now - 60_000)), now).is_empty());
        let old = queue_age("q", 60, waiting(1, Some(now - 61_000)), now);
        assert!(old["q"].contains("waited 61 s"), "{old:?}");
        assert!(queue_age("q", 0, waiting(0, None), now).is_empty());
    }

    #[test]
    fn a_failure_rate_needs_enough_runs_and_a_share_over_its_threshold() {
        let rate = Rate {
            above: 0.5,
            min_runs: 4,
            window_seconds: 60,
        };
        let runs = |ended, failed| RunCounts { ended, failed };
        assert!(
            failure_rate("all runs", rate, runs(3, 3)).is_empty(),
            "too few runs"
        );
        assert!(
            failure_rate("all runs", rate, runs(4, 2)).is_empty(),
            "not over"
        );
        let high = failure_rate("all runs", rate, runs(4, 3));
        assert!(high["all runs"].contains("75.0%, over 50.0%"), "{high:?}");
        let any = Rate {
            above: 0.0,
            min_runs: 1,
            ..rate
        };
        assert!(failure_rate("x", any, runs(0, 0)).is_empty(), "no runs");
        assert_eq!(subjects(&failure_rate("x", any, runs(1, 1))), ["x"]);
        assert_eq!(scope(Some("echo"), None), "plugin=echo");
        assert_eq!(scope(None, None), "all runs");
    }

    #[test]
    fn a_failure_rate_is_measured_again_after_a_sixtieth_of_its_window() {
        let rate = |window_seconds| AlertCondition::FailureRate {
            plugin: None,
            queue: None,
            above: 0.5,
            window_seconds,
            min_runs: 1,
        };
        assert_eq!(measured_every(&rate(30)), Some(1000));
        assert_eq!(measured_every(&rate(600)), Some(10_000));
        assert_eq!(measured_every(&rate(86_400)), Some(60_000));
        let depth = AlertCondition::QueueDepth {
            queue: "q".into(),
            above: 1,
        };
        assert_eq!(measured_every(&depth), None);
    }

    #[test]
    fn agents_that_take_no_work_fire() {
        let agent = |id: &str, status, reason: Option<&str>| Agent {
            spec: serde_json::from_value::<AgentSpec>(serde_json::json!({
                "id": id, "name": id, "repository_path": "/tmp",
                "command": ["/bin/sh", "-c", "{command}"]
            }))
            .unwrap(),
            status,
            status_reason: reason.map(str::to_owned),
            health_misses: 0,
            last_health_check_at: None,
            last_heartbeat_at: None,
            current_jobs: Vec::new(),
            created_at: 0,
            updated_at: 0,
            health: Health::Healthy,
        };
        let all = [
            agent("idle", AgentStatus::Idle, None),
            agent("busy", AgentStatus::Busy, None),
            agent("gone", AgentStatus::Offline, Some("no heartbeat for 90 s")),
            agent("broken", AgentStatus::Error, Some("spawn failed")),
        ];
        let firing = agents(None, &all);
        assert_eq!(subjects(&firing), ["broken", "gone"]);
        assert_eq!(
            firing["gone"],
            "agent gone is offline: no heartbeat for 90 s"
        );
        assert_eq!(subjects(&agents(Some("gone"), &all)), ["gone"]);
        assert!(agents(Some("idle"), &all).is_empty());
    }

    #[test]
    fn plugins_that_failed_to_load_fire_with_their_error_cut_short() {
        let status = |name: &str, error: Option<String>| PluginStatus {
            name: name.into(),
            current: None,
            compiling: None,
            error,
        };
        let all = [status("good", None), status("bad", Some("x".repeat(2000)))];
        let firing = plugins(None, &all);
        assert_eq!(subjects(&firing), ["bad"]);
        assert_eq!(firing["bad"].chars().count(), MAX_SUMMARY_CHARS + 1);
        assert!(plugins(Some("good"), &all).is_empty());
    }

    #[test]
    fn job_failed_rules_cover_their_plugin_and_queue() {
        let rule = |plugin: Option<&str>, queue: Option<&str>| AlertCondition::JobFailed {
            plugin: plugin.map(str::to_owned),
            queue: queue.map(str::to_owned),
        };
        assert!(covers(&rule(None, None), "echo", "default"));
        assert!(covers(&rule(Some("echo"), None), "echo", "default"));
        assert!(!covers(&rule(Some("flaky"), None), "echo", "default"));
        assert!(covers(
            &rule(Some("echo"), Some("default")),
            "echo",
            "default"
        ));
        assert!(!covers(&rule(None, Some("high")), "echo", "default"));
        let other = AlertCondition::AgentOffline { agent: None };
        assert!(!covers(&other, "echo", "default"));
    }
}
