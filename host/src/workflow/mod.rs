//! Workflows: definitions, their parsing and validation, parameter templates, step
//! conditions, and the plan of a run's advance.
//!
//! A workflow is a list of stages run in order; a stage is `sequential` or `parallel`
//! and holds steps, each a job spec plus an optional `when` condition on a step that
//! comes earlier:
//!
//! ```json
//! {"name": "ci", "stages": [
//!   {"name": "fetch", "mode": "sequential", "steps": [
//!     {"id": "fetch", "plugin": "git", "args": {"repo": "{{params.repo}}"}}]},
//!   {"name": "checks", "mode": "parallel", "steps": [
//!     {"id": "lint", "plugin": "lint", "when": {"step": "fetch", "state": "succeeded"}},
//!     {"id": "test", "plugin": "test", "continue_on_failure": true,
//!      "when": {"step": "fetch", "path": "/changed", "equals": true}}]}]}
//! ```
//!
//! This module holds the definition's types; one submodule per job on them:
//! - `parse`: [`Definition::parse`] validates a definition as it is stored, so every
//!   error ([`DefinitionError`]) names the step (and stage) concerned.
//! - `template`: [`render`] fills a step's args from a run's parameters.
//! - `condition`: [`Condition::holds`] decides whether a step runs or is skipped.
//! - `plan`: [`plan()`] decides one advance of a [`WorkflowRun`]: which steps start, are
//!   skipped or end, and whether the run ends. Every store backend applies it.
//!
//! Nothing here does I/O or scheduling.

mod condition;
mod parse;
mod plan;
mod template;

pub use condition::StepOutcome;
pub use parse::DefinitionError;
pub use plan::{Plan, RunState, RunStep, StepChange, WorkflowRun, plan};
pub use template::render;

use crate::model::JobState;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use utoipa::ToSchema;

/// Longest step id.
pub const MAX_STEP_ID_LEN: usize = 64;

/// A validated workflow definition.
///
/// Build one with [`Definition::parse`]; the serde impls are for storing and loading a
/// definition that was validated before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// The workflow's name.
    pub name: String,
    /// The stages, run one after the other.
    pub stages: Vec<Stage>,
}

/// A group of steps; it starts when the previous stage has finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// The stage's name, unique in the workflow.
    pub name: String,
    /// How its steps run.
    pub mode: Mode,
    /// Its steps, in order.
    pub steps: Vec<Step>,
}

/// How the steps of a stage run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One after the other, in order.
    Sequential,
    /// All at once; the stage waits for all of them.
    Parallel,
}

impl Mode {
    /// The mode's name as written in a definition.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sequential => "sequential",
            Mode::Parallel => "parallel",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step: a job spec plus an optional condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The step's id, unique in the workflow.
    pub id: String,
    /// The plugin that runs it.
    pub plugin: String,
    /// The job's args, a JSON object that may hold `{{params.NAME}}` templates.
    #[serde(default = "empty_object")]
    pub args: Value,
    /// The queue, if not the plugin's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The priority, if not the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// The attempts, if not the plugin's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Run only if this holds; else the step is `skipped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
    /// Whether the run goes on when this step fails.
    #[serde(default)]
    pub continue_on_failure: bool,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// A condition on a step that comes earlier; told apart by its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum Condition {
    /// `{"step": "fetch", "state": "succeeded"}`: the step ended in this state.
    State {
        /// The step tested.
        step: String,
        /// The state it must have ended in.
        state: StepState,
    },
    /// `{"step": "fetch", "path": "/changed", "equals": true}`: the value at a JSON
    /// pointer in the step's result equals `equals`.
    Value {
        /// The step tested.
        step: String,
        /// A JSON pointer into its result.
        path: String,
        /// The value that must be there.
        equals: Value,
    },
}

/// Where a step of a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Not started, or its job is waiting.
    Pending,
    /// Its job is running.
    Running,
    /// Its job succeeded.
    Succeeded,
    /// Its job failed.
    Failed,
    /// Its job was cancelled.
    Cancelled,
    /// Its condition was false, so it did not run.
    Skipped,
}

impl StepState {
    /// Every state.
    pub const ALL: [StepState; 6] = [
        StepState::Pending,
        StepState::Running,
        StepState::Succeeded,
        StepState::Failed,
        StepState::Cancelled,
        StepState::Skipped,
    ];

    /// The states a condition may name: the ones a step ends in.
    pub const FINAL: [StepState; 4] = [
        StepState::Succeeded,
        StepState::Failed,
        StepState::Cancelled,
        StepState::Skipped,
    ];

    /// The state's name as written and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Cancelled => "cancelled",
            StepState::Skipped => "skipped",
        }
    }

    /// Whether the step will not change again.
    pub fn is_final(self) -> bool {
        Self::FINAL.contains(&self)
    }
}

impl fmt::Display for StepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<JobState> for StepState {
    /// The state of a step whose job is in `state`.
    fn from(state: JobState) -> Self {
        match state {
            JobState::Awaiting | JobState::Scheduled | JobState::Enqueued => StepState::Pending,
            JobState::Processing => StepState::Running,
            JobState::Succeeded => StepState::Succeeded,
            JobState::Failed => StepState::Failed,
            JobState::Cancelled => StepState::Cancelled,
        }
    }
}

/// Why a condition's step does not come earlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotEarlier {
    /// The step names itself.
    Itself,
    /// The step names a later step.
    Later,
    /// The step names an earlier step of the same parallel stage.
    SameParallelStage,
}

impl fmt::Display for NotEarlier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotEarlier::Itself => "a cycle: a step cannot wait for itself",
            NotEarlier::Later => "a forward reference, which would make a cycle",
            NotEarlier::SameParallelStage => "the steps of a parallel stage run together",
        })
    }
}

impl Definition {
    /// Every step, in order, with its stage's index and its index in that stage.
    pub fn positioned(&self) -> impl Iterator<Item = (usize, usize, &Step)> {
        self.stages.iter().enumerate().flat_map(|(s, stage)| {
            let steps = stage.steps.iter().enumerate();
            steps.map(move |(i, step)| (s, i, step))
        })
    }

    /// Every step in order with its stage index.
    pub fn steps(&self) -> impl Iterator<Item = (usize, &Step)> {
        self.positioned().map(|(s, _, step)| (s, step))
    }
}

#[cfg(test)]
mod tests {
    //! Tests of the types, and the definition the submodules' tests share.

    use super::*;
    use serde_json::json;

    const PLUGINS: [&str; 4] = ["git", "lint", "test", "deploy"];

    fn known(name: &str) -> bool {
        PLUGINS.contains(&name)
    }

    pub(super) fn parse(json: Value) -> Result<Definition, DefinitionError> {
        Definition::parse(&json, known)
    }

    /// A valid three-stage definition.
    pub(super) fn valid() -> Value {
        json!({
            "name": "ci",
            "stages": [
                {"name": "fetch", "mode": "sequential", "steps": [
                    {"id": "fetch", "plugin": "git",
                     "args": {"repo": "{{params.repo}}", "depth": "{{ params.depth }}"}},
                    {"id": "inspect", "plugin": "git",
                     "when": {"step": "fetch", "state": "succeeded"}}
                ]},
                {"name": "checks", "mode": "parallel", "steps": [
                    {"id": "lint", "plugin": "lint", "args": {"repo": "{{params.repo}}"},
                     "when": {"step": "fetch", "state": "succeeded"},
                     "continue_on_failure": false},
                    {"id": "test", "plugin": "test", "queue": "ci", "priority": 5,
                     "max_attempts": 2, "continue_on_failure": true}
                ]},
                {"name": "ship", "mode": "sequential", "steps": [
                    {"id": "deploy", "plugin": "deploy",
                     "args": {"target": "{{params.env}}-{{params.repo}}"},
                     "when": {"step": "inspect", "path": "/changed", "equals": true}}
                ]}
            ]
        })
    }

    #[test]
    fn steps_lists_every_step_with_its_stage() {
        let definition = parse(valid()).expect("valid");
        let steps: Vec<(usize, &str)> = definition
            .steps()
            .map(|(stage, step)| (stage, step.id.as_str()))
            .collect();
        assert_eq!(
            steps,
            [
                (0, "fetch"),
                (0, "inspect"),
                (1, "lint"),
                (1, "test"),
                (2, "deploy")
            ]
        );
    }

    #[test]
    fn a_stored_definition_round_trips_through_serde() {
        let definition = parse(valid()).expect("valid");
        let stored = serde_json::to_value(&definition).expect("serialises");
        let loaded: Definition = serde_json::from_value(stored.clone()).expect("loads");
        assert_eq!(loaded, definition);
        // What is stored is itself a valid definition.
        assert_eq!(parse(stored).expect("valid"), definition);
    }

    #[test]
    fn step_state_follows_job_state() {
        assert_eq!(StepState::from(JobState::Enqueued), StepState::Pending);
        assert_eq!(StepState::from(JobState::Scheduled), StepState::Pending);
        assert_eq!(StepState::from(JobState::Processing), StepState::Running);
        assert_eq!(StepState::from(JobState::Failed), StepState::Failed);
        assert!(StepState::Skipped.is_final());
        assert!(!StepState::Running.is_final());
    }
}
