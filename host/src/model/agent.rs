//! Agents and tasks as data: an agent's definition and its checks, its status, and the
//! task priorities. Nothing here does I/O beyond looking at the agent's repository.
//!
//! An agent is a worker that acts on one repository: the host runs the agent's
//! executable, its argument template with a task's command put in place of
//! `{command}`, in that repository. A task is a command for an agent, run by a job of
//! the `task-execution` plugin bound to the agent.

use crate::model::names::{MAX_NAME_CHARS, check_length, shown};
use crate::model::{Invalid, JobId, Millis, rfc3339};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema, ToSchema};

/// Longest agent id: it names the agent's queue `agent-{id}`.
pub const MAX_AGENT_ID_LEN: usize = 58;
/// Longest task command, in characters.
pub const MAX_COMMAND_CHARS: usize = 2000;
/// Most tasks one agent may run at once.
pub const MAX_CONCURRENCY: u32 = 64;
/// Longest interval between health checks: a day.
pub const MAX_HEALTH_INTERVAL_SECONDS: u32 = 86_400;
/// The placeholder in an agent's argument template that receives the task's command.
pub const COMMAND_PLACEHOLDER: &str = "{command}";

/// An agent as registered: what it runs and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// Its id: 1 to 58 characters of `a-z`, `0-9`, `-` and `_`.
    pub id: String,
    /// A name for people.
    pub name: String,
    /// The repository it acts on (canonical, under an allowed repository root).
    pub repository_path: String,
    /// The executable and its argument template: `{command}` appears once, in an argument
    /// (never in the executable).
    pub command: Vec<String>,
    /// Environment variables the executable gets.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// A command whose exit code 0 means the agent is healthy.
    #[serde(default)]
    pub health_command: Option<Vec<String>>,
    /// Seconds between health checks.
    #[serde(default = "default_health_interval")]
    pub health_interval_seconds: u32,
    /// Tasks it may run at once.
    #[serde(default = "default_concurrency")]
    pub max_concurrency: u32,
    /// Free-form labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_health_interval() -> u32 {
    60
}

fn default_concurrency() -> u32 {
    1
}

impl AgentSpec {
    /// Checks everything but the repository path (see [`AgentSpec::checked`]): the id,
    /// the argument template, the environment and the numbers.
    ///
    /// # Errors
    /// The field refused, and why.
    pub fn validate(&self) -> Result<(), Invalid> {
        validate_agent_id(&self.id).map_err(Invalid::of("id"))?;
        if self.name.trim().is_empty() || self.name.chars().count() > MAX_NAME_CHARS {
            return Err(Invalid {
                field: "name",
                message: format!("name must be 1 to {MAX_NAME_CHARS} characters"),
            });
        }
        validate_argv("command", &self.command).map_err(Invalid::of("command"))?;
        validate_template(&self.command).map_err(Invalid::of("command"))?;
        if let Some(health) = &self.health_command {
            validate_argv("health_command", health).map_err(Invalid::of("health_command"))?;
        }
        let env = Invalid::of("env");
        for key in self.env.keys() {
            check_length("env name", key).map_err(Invalid::of("env"))?;
            if key.contains(['=', '\0']) {
                return Err(env(format!("env name `{key}` is invalid")));
            }
        }
        for (key, value) in &self.labels {
            check_length("label key", key).map_err(Invalid::of("labels"))?;
            if value.chars().count() > MAX_NAME_CHARS {
                return Err(Invalid {
                    field: "labels",
                    message: format!("label `{key}` must have at most {MAX_NAME_CHARS} characters"),
                });
            }
        }
        if self.env.values().any(|v| v.contains('\0')) {
            return Err(env("env values must not contain NUL".into()));
        }
        if !(1..=MAX_HEALTH_INTERVAL_SECONDS).contains(&self.health_interval_seconds) {
            return Err(Invalid {
                field: "health_interval_seconds",
                message: format!(
                    "health_interval_seconds must be between 1 and {MAX_HEALTH_INTERVAL_SECONDS}, got {}",
                    self.health_interval_seconds
                ),
            });
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.max_concurrency) {
            return Err(Invalid {
                field: "max_concurrency",
                message: format!(
                    "max_concurrency must be between 1 and {MAX_CONCURRENCY}, got {}",
                    self.max_concurrency
                ),
            });
        }
        Ok(())
    }

    /// The definition, checked, with its repository made canonical (it must lie under
    /// one of `roots`).
    ///
    /// # Errors
    /// What is wrong, naming the field.
    pub fn checked(mut self, roots: &[std::path::PathBuf]) -> Result<AgentSpec, Invalid> {
        self.validate()?;
        self.repository_path = super::repository::check_repository(roots, &self.repository_path)
            .map_err(Invalid::of("repository_path"))?;
        Ok(self)
    }

    /// The queue of tasks bound to this agent.
    pub fn queue(&self) -> String {
        agent_queue(&self.id)
    }

    /// The definition's schema as part of an [`Agent`]: without the
    /// `additionalProperties: false` of a definition sent alone.
    fn schema_within() -> RefOr<Schema> {
        let mut schema = AgentSpec::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.additional_properties = None;
        }
        schema
    }
}

/// The queue of tasks bound to agent `id`.
pub fn agent_queue(id: &str) -> String {
    format!("agent-{id}")
}

/// Checks an agent id.
///
/// # Errors
/// The id is empty, too long, or has characters outside `a-z`, `0-9`, `-`, `_`.
pub fn validate_agent_id(id: &str) -> Result<(), String> {
    let valid = id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if id.is_empty() || id.len() > MAX_AGENT_ID_LEN || !valid {
        return Err(format!(
            "agent id `{}` is invalid: use 1 to {MAX_AGENT_ID_LEN} characters of a-z, 0-9, - and _",
            shown(id)
        ));
    }
    Ok(())
}

/// Checks that an argument template names a program of its own and passes the task's
/// command exactly once, never as the program.
fn validate_template(command: &[String]) -> Result<(), String> {
    let uses: usize = command
        .iter()
        .map(|arg| arg.matches(COMMAND_PLACEHOLDER).count())
        .sum();
    if command[0].contains(COMMAND_PLACEHOLDER) {
        return Err(format!(
            "command must name a program of its own: {COMMAND_PLACEHOLDER} cannot be (part of) the executable"
        ));
    }
    if uses != 1 {
        return Err(format!(
            "command must pass the task's command once: put {COMMAND_PLACEHOLDER} in exactly one of its arguments, found it {uses} times"
        ));
    }
    Ok(())
}

fn validate_argv(field: &str, argv: &[String]) -> Result<(), String> {
    match argv.first() {
        None => Err(format!("{field} must name an executable")),
        Some(program) if program.trim().is_empty() => {
            Err(format!("{field}'s executable must not be empty"))
        }
        _ if argv.iter().any(|a| a.contains('\0')) => {
            Err(format!("{field} must not contain NUL characters"))
        }
        _ => Ok(()),
    }
}

/// Checks a task's command: not blank, at most [`MAX_COMMAND_CHARS`] characters.
///
/// # Errors
/// What is wrong.
pub fn validate_command(command: &str) -> Result<(), String> {
    let chars = command.chars().count();
    if command.trim().is_empty() {
        Err("command must not be empty".into())
    } else if chars > MAX_COMMAND_CHARS {
        Err(format!(
            "command must be at most {MAX_COMMAND_CHARS} characters, got {chars}"
        ))
    } else if command.contains('\0') {
        Err("command must not contain NUL characters".into())
    } else {
        Ok(())
    }
}

/// What the health checks last concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Answering; gets work.
    Healthy,
    /// Missed too many checks; gets no new work until it answers again.
    Offline,
    /// Its executable could not be started; gets no new work until a check passes.
    Error,
}

impl Health {
    /// The name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Offline => "offline",
            Health::Error => "error",
        }
    }

    /// Parses a stored name.
    ///
    /// # Errors
    /// An unknown name.
    pub fn parse(s: &str) -> Result<Health, String> {
        match s {
            "healthy" => Ok(Health::Healthy),
            "offline" => Ok(Health::Offline),
            "error" => Ok(Health::Error),
            other => Err(format!("unknown agent health `{other}`")),
        }
    }
}

/// An agent's status as clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    /// Healthy and running nothing.
    Idle,
    /// Healthy and running at least one task.
    Busy,
    /// Missed its health checks.
    Offline,
    /// Its executable could not be started.
    Error,
}

impl AgentStatus {
    /// The status of an agent in `health` holding `running` locks.
    pub fn of(health: Health, running: usize) -> AgentStatus {
        match health {
            Health::Offline => AgentStatus::Offline,
            Health::Error => AgentStatus::Error,
            Health::Healthy if running > 0 => AgentStatus::Busy,
            Health::Healthy => AgentStatus::Idle,
        }
    }

    /// The name clients see.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Idle => "idle",
            AgentStatus::Busy => "busy",
            AgentStatus::Offline => "offline",
            AgentStatus::Error => "error",
        }
    }

    /// Whether the agent may be given new work.
    pub fn takes_work(self) -> bool {
        matches!(self, AgentStatus::Idle | AgentStatus::Busy)
    }
}

/// An agent with its state, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Agent {
    /// Its definition.
    #[serde(flatten)]
    #[schema(schema_with = AgentSpec::schema_within)]
    pub spec: AgentSpec,
    /// Idle, busy, offline or error.
    pub status: AgentStatus,
    /// Why it is offline or in error.
    pub status_reason: Option<String>,
    /// Health checks missed in a row.
    pub health_misses: u32,
    /// When its health was last checked.
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_health_check_at: Option<Millis>,
    /// When it last sent a heartbeat.
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_heartbeat_at: Option<Millis>,
    /// The jobs holding it now.
    #[schema(value_type = Vec<Uuid>)]
    pub current_jobs: Vec<JobId>,
    /// When it was registered.
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Millis,
    /// When its definition last changed.
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Millis,
    /// Its health as stored (its status without the running count).
    #[serde(skip)]
    pub health: Health,
}

/// How urgent a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskPriority {
    /// Runs after the others of its agent.
    Low,
    /// The default.
    Normal,
    /// Goes to the `high-priority` queue.
    High,
    /// Goes to the `high-priority` queue, ahead of `high`.
    Critical,
}

impl TaskPriority {
    /// The name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskPriority::Low => "low",
            TaskPriority::Normal => "normal",
            TaskPriority::High => "high",
            TaskPriority::Critical => "critical",
        }
    }

    /// Parses a name.
    ///
    /// # Errors
    /// An unknown name.
    pub fn parse(s: &str) -> Result<TaskPriority, String> {
        match s {
            "low" => Ok(TaskPriority::Low),
            "normal" => Ok(TaskPriority::Normal),
            "high" => Ok(TaskPriority::High),
            "critical" => Ok(TaskPriority::Critical),
            other => Err(format!(
                "priority must be low, normal, high or critical, got `{other}`"
            )),
        }
    }

    /// The job priority a task of this priority gets.
    pub fn job_priority(self) -> i32 {
        match self {
            TaskPriority::Low => -50,
            TaskPriority::Normal => 0,
            TaskPriority::High => 50,
            TaskPriority::Critical => 100,
        }
    }

    /// The queue a task of this priority goes to, for `agent`: high and critical tasks
    /// to `high-priority`, the rest to the agent's own queue.
    pub fn queue(self, agent: &str) -> String {
        match self {
            TaskPriority::High | TaskPriority::Critical => "high-priority".to_owned(),
            TaskPriority::Low | TaskPriority::Normal => agent_queue(agent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AgentSpec {
        serde_json::from_value(serde_json::json!({
            "id": "a1", "name": "shell", "repository_path": "/tmp",
            "command": ["/usr/bin/env", "bash", "-c", "{command}"]
        }))
        .unwrap()
    }

    #[test]
    fn defaults_and_a_valid_spec() {
        let spec = spec();
        assert_eq!(spec.max_concurrency, 1);
        assert_eq!(spec.health_interval_seconds, 60);
        assert_eq!(spec.validate(), Ok(()));
        assert_eq!(spec.queue(), "agent-a1");
    }

    #[test]
    fn each_rule_names_its_field() {
        type Change = Box<dyn Fn(&mut AgentSpec)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|s| s.id = "A B".into()), "agent id"),
            (Box::new(|s| s.id = "a".repeat(59)), "agent id"),
            (Box::new(|s| s.name = " ".into()), "name"),
            (Box::new(|s| s.command = vec![]), "command must name"),
            (
                Box::new(|s| s.command = vec!["/bin/true".into()]),
                "{command}",
            ),
            (
                Box::new(|s| s.command = vec!["{command}".into()]),
                "program of its own",
            ),
            (
                Box::new(|s| s.command = vec!["run-{command}".into(), "x".into()]),
                "program of its own",
            ),
            (
                Box::new(|s| {
                    s.command = vec!["/bin/sh".into(), "{command}".into(), "{command}".into()]
                }),
                "2 times",
            ),
            (
                Box::new(|s| {
                    s.command = vec!["/bin/sh".into(), "-c".into(), "{command};{command}".into()]
                }),
                "2 times",
            ),
            (
                Box::new(|s| {
                    s.labels.insert("k".repeat(201), "v".into());
                }),
                "label key",
            ),
            (
                Box::new(|s| {
                    s.labels.insert("team".into(), "v".repeat(201));
                }),
                "label `team`",
            ),
            (
                Box::new(|s| {
                    s.env.insert("E".repeat(201), "v".into());
                }),
                "env name",
            ),
            (
                Box::new(|s| s.health_command = Some(vec![])),
                "health_command",
            ),
            (
                Box::new(|s| {
                    s.env.insert("A=B".into(), "x".into());
                }),
                "env name",
            ),
            (
                Box::new(|s| s.health_interval_seconds = 0),
                "health_interval_seconds",
            ),
            (Box::new(|s| s.max_concurrency = 0), "max_concurrency"),
            (Box::new(|s| s.max_concurrency = 65), "max_concurrency"),
        ];
        for (change, expected) in cases {
            let mut spec = spec();
            change(&mut spec);
            let error = spec.validate().unwrap_err().message;
            assert!(
                error.contains(expected),
                "{error} should mention {expected}"
            );
        }
    }

    #[test]
    fn commands_are_checked() {
        assert!(validate_command("echo hi").is_ok());
        assert!(validate_command("  ").unwrap_err().contains("empty"));
        assert!(validate_command(&"x".repeat(2000)).is_ok());
        assert!(
            validate_command(&"é".repeat(2001))
                .unwrap_err()
                .contains("2001")
        );
    }

    #[test]
    fn status_follows_health_then_locks() {
        assert_eq!(AgentStatus::of(Health::Healthy, 0), AgentStatus::Idle);
        assert_eq!(AgentStatus::of(Health::Healthy, 2), AgentStatus::Busy);
        assert_eq!(AgentStatus::of(Health::Offline, 1), AgentStatus::Offline);
        assert_eq!(AgentStatus::of(Health::Error, 0), AgentStatus::Error);
        assert!(!AgentStatus::Offline.takes_work());
    }

    #[test]
    fn high_and_critical_tasks_go_to_the_high_priority_queue() {
        assert_eq!(TaskPriority::High.queue("a1"), "high-priority");
        assert_eq!(TaskPriority::Critical.queue("a1"), "high-priority");
        assert_eq!(TaskPriority::Normal.queue("a1"), "agent-a1");
        assert_eq!(TaskPriority::Low.queue("a1"), "agent-a1");
        assert!(TaskPriority::parse("urgent").is_err());
    }
}
