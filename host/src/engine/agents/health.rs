//! The health check: a built-in job (see [`super::HEALTH_PLUGIN`]) that checks every
//! agent whose interval has passed, by its health command or, without one, by the age of
//! its last heartbeat. An agent that misses the configured number of checks in a row is
//! `offline` and gets no new work; its waiting tasks move to a healthy agent of the same
//! repository. A passed check brings it back.

use super::process::{self, Spawn};
use crate::engine::Shared;
use crate::model::agent::{Agent, Health};
use crate::model::{Millis, now_ms};
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::time::Duration;

/// Longest a health command may run.
const MAX_CHECK_TIME: Duration = Duration::from_secs(30);
/// A check is due this early, so that a schedule matching the interval never skips one.
const SLACK_MS: Millis = 500;

/// What one check found.
enum Verdict {
    Passed,
    Missed(String),
}

/// Checks every agent that is due; returns what it found, as the job's result.
pub(in crate::engine) async fn check(shared: &Shared) -> Result<Value, String> {
    let now = now_ms();
    let agents = shared.store.agents().await.map_err(|e| e.to_string())?;
    let due: Vec<&Agent> = agents
        .iter()
        .filter(|a| {
            let interval = Millis::from(a.spec.health_interval_seconds) * 1000;
            a.last_health_check_at
                .is_none_or(|at| now - at >= interval - SLACK_MS)
        })
        .collect();
    let verdicts = join_all(due.iter().map(|agent| verdict(agent, now))).await;
    let mut report = Vec::new();
    for (agent, verdict) in due.into_iter().zip(verdicts) {
        let (health, misses, reason) = match verdict {
            Verdict::Passed => (Health::Healthy, 0, None),
            Verdict::Missed(why) => {
                let misses = agent.health_misses + 1;
                let health = if misses >= shared.config.agents.health_misses {
                    Health::Offline
                } else {
                    agent.health
                };
                (health, misses, Some(why))
            }
        };
        shared
            .store
            .set_agent_health(&agent.spec.id, health, misses, reason.clone(), now)
            .await
            .map_err(|e| e.to_string())?;
        report.push(json!({
            "agent_id": agent.spec.id, "health": health, "misses": misses, "reason": reason,
        }));
    }
    super::sync(shared).await;
    Ok(json!({ "checked": report }))
}

/// Runs one agent's check.
async fn verdict(agent: &Agent, now: Millis) -> Verdict {
    let spec = &agent.spec;
    let interval = Millis::from(spec.health_interval_seconds) * 1000;
    let Some(command) = &spec.health_command else {
        return match agent.last_heartbeat_at {
            Some(at) if now - at > interval => {
                Verdict::Missed(format!("no heartbeat for {} s", (now - at) / 1000))
            }
            _ => Verdict::Passed,
        };
    };
    let spawn = Spawn {
        argv: command.clone(),
        cwd: spec.repository_path.clone().into(),
        env: super::environment(spec),
    };
    let timeout = MAX_CHECK_TIME.min(Duration::from_secs(spec.health_interval_seconds.into()));
    match process::run(&spawn, timeout, &|_, _| {}).await {
        Ok(done) if done.timed_out => {
            Verdict::Missed(format!("health command ran over {} s", timeout.as_secs()))
        }
        Ok(done) if done.exit_code == Some(0) => Verdict::Passed,
        Ok(done) => Verdict::Missed(format!(
            "health command exited with {}: {}",
            done.exit_code
                .map_or_else(|| "a signal".to_owned(), |c| c.to_string()),
            tail(&done.stderr, &done.stdout)
        )),
        Err(e) => Verdict::Missed(e.to_string()),
    }
}

/// The last 200 characters of `first`, or of `second` when `first` is blank.
fn tail(first: &str, second: &str) -> String {
    let text = if first.trim().is_empty() {
        second
    } else {
        first
    }
    .trim();
    let skip = text.chars().count().saturating_sub(200);
    text.chars().skip(skip).collect()
}
