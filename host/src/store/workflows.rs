//! Workflows as the store keeps them, and the rule every backend follows when it
//! advances a run.
//!
//! A stored workflow is a validated [`Definition`]. A run snapshots the definition (with
//! every step's queue and attempts filled in from its plugin) and its parameters, and
//! keeps one row per step. One advance of a run ([`WorkflowStore::advance_workflow_run`])
//! reads the run with its steps' jobs, decides with [`plan`], and writes the steps it
//! starts (enqueueing their jobs), skips or cancels, and the run's end, all in one
//! transaction: a step's job is created exactly once, even across restarts.

use crate::model::{JobId, JsonText, Millis, new_job_id};
use crate::store::{NewJob, Result};
use crate::workflow::{Definition, Mode, Stage, Step, StepOutcome, StepState, render};
use async_trait::async_trait;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Steps are left to run.
    Running,
    /// Every stage finished and no step failed the run.
    Succeeded,
    /// A step without `continue_on_failure` failed or was cancelled.
    Failed,
    /// Cancelled by request.
    Cancelled,
}

impl RunState {
    /// The name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "running" => Ok(RunState::Running),
            "succeeded" => Ok(RunState::Succeeded),
            "failed" => Ok(RunState::Failed),
            "cancelled" => Ok(RunState::Cancelled),
            other => Err(format!("unknown run state `{other}`")),
        }
    }
}

/// Parses a step state as stored.
pub fn parse_step_state(s: &str) -> Option<StepState> {
    StepState::ALL.into_iter().find(|state| state.as_str() == s)
}

/// A stored workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredWorkflow {
    /// Its id.
    pub id: String,
    /// Its definition.
    pub definition: Definition,
    /// When it was first stored.
    pub created_at: Millis,
    /// When it was last stored.
    pub updated_at: Millis,
}

/// A run to create.
#[derive(Debug, Clone)]
pub struct NewWorkflowRun {
    /// The run's id.
    pub id: JobId,
    /// The workflow it runs.
    pub workflow_id: String,
    /// The definition, with every step's queue and max_attempts set.
    pub definition: Definition,
    /// The parameters its templates use.
    pub parameters: Map<String, Value>,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStep {
    /// The step's id.
    pub id: String,
    /// Its stage's index, from 0.
    pub stage: usize,
    /// Its index in the stage, from 0.
    pub position: usize,
    /// Where it is (its job's state once it has one).
    pub state: StepState,
    /// Its job, once started.
    pub job_id: Option<JobId>,
    /// Its job's result, if the job succeeded.
    pub result: Option<Value>,
}

/// A stored run with its steps in order.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowRun {
    /// The run's id.
    pub id: JobId,
    /// The workflow it runs.
    pub workflow_id: String,
    /// The definition it runs.
    pub definition: Definition,
    /// Its parameters.
    pub parameters: Map<String, Value>,
    /// Where it is.
    pub state: RunState,
    /// When it was created.
    pub created_at: Millis,
    /// When it ended.
    pub finished_at: Option<Millis>,
    /// Its steps, stage by stage, in order.
    pub steps: Vec<RunStep>,
}

/// What one advance of a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Advanced {
    /// Jobs enqueued for started steps.
    pub enqueued: Vec<JobId>,
    /// Unfinished jobs of a run that just failed: the caller cancels them.
    pub to_cancel: Vec<JobId>,
    /// The run's state after the advance (`None` if the run does not exist).
    pub state: Option<RunState>,
}

/// Workflow storage; every [`crate::store::JobStore`] is one.
#[async_trait]
pub trait WorkflowStore {
    /// Stores workflow `id`, or replaces its definition; returns whether it is new.
    async fn put_workflow(&self, id: &str, definition: &Definition, now: Millis) -> Result<bool>;

    /// One stored workflow.
    async fn workflow(&self, id: &str) -> Result<Option<StoredWorkflow>>;

    /// Deletes a workflow (its runs stay); returns whether it existed.
    async fn delete_workflow(&self, id: &str) -> Result<bool>;

    /// Stores a new `running` run with every step `pending`.
    async fn create_workflow_run(&self, run: NewWorkflowRun, now: Millis) -> Result<()>;

    /// One run, with its steps' states taken from their jobs.
    async fn workflow_run(&self, id: JobId) -> Result<Option<WorkflowRun>>;

    /// The ids of the runs still `running`, oldest first.
    async fn running_workflow_runs(&self) -> Result<Vec<JobId>>;

    /// Advances a running run by [`plan`], in one transaction.
    async fn advance_workflow_run(&self, id: JobId, now: Millis) -> Result<Advanced>;

    /// Cancels a running run: it and its unstarted steps become `cancelled`. Returns the
    /// jobs of its unfinished steps, for the caller to cancel; `None` for an unknown run.
    ///
    /// # Errors
    /// [`crate::store::Error::Conflict`] when the run already ended.
    async fn cancel_workflow_run(&self, id: JobId, now: Millis) -> Result<Option<Vec<JobId>>>;
}

/// A step's change decided by [`plan`].
#[derive(Debug, Clone)]
pub enum StepChange {
    /// Start it with this job.
    Start(Box<NewJob>),
    /// Its condition is false.
    Skip,
    /// It could not start (its args do not render), or the run ended before it started.
    End(StepState),
}

/// What an advance does to a run.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Changes by step id.
    pub changes: Vec<(String, StepChange)>,
    /// The run's end, if it ends.
    pub end: Option<RunState>,
    /// Unfinished jobs to cancel, because the run failed.
    pub to_cancel: Vec<JobId>,
}

/// Whether a step's end fails the run.
fn fails_run(step: &Step, state: StepState) -> bool {
    matches!(state, StepState::Failed | StepState::Cancelled) && !step.continue_on_failure
}

/// Decides one advance of `run`, whose steps' states already follow their jobs.
pub fn plan(run: &WorkflowRun) -> Plan {
    let mut steps: HashMap<&str, RunStep> = run
        .steps
        .iter()
        .map(|step| (step.id.as_str(), step.clone()))
        .collect();
    let mut plan = Plan::default();
    let failed = run.definition.steps().any(|(_, step)| {
        steps
            .get(step.id.as_str())
            .is_some_and(|s| fails_run(step, s.state))
    });
    if failed {
        fail(&steps, &mut plan);
        return plan;
    }
    for stage in &run.definition.stages {
        advance_stage(stage, run, &mut steps, &mut plan);
        let finished = stage.steps.iter().all(|step| {
            steps
                .get(step.id.as_str())
                .is_some_and(|s| s.state.is_final())
        });
        if !finished {
            return plan;
        }
    }
    let failed = run.definition.steps().any(|(_, step)| {
        steps
            .get(step.id.as_str())
            .is_some_and(|s| fails_run(step, s.state))
    });
    plan.end = Some(if failed {
        RunState::Failed
    } else {
        RunState::Succeeded
    });
    plan
}

/// Ends a failed run: unstarted steps are cancelled, started unfinished ones' jobs
/// cancelled.
fn fail(steps: &HashMap<&str, RunStep>, plan: &mut Plan) {
    for step in steps.values() {
        match step.job_id {
            None if !step.state.is_final() => plan
                .changes
                .push((step.id.clone(), StepChange::End(StepState::Cancelled))),
            Some(job) if !step.state.is_final() => plan.to_cancel.push(job),
            _ => {}
        }
    }
    plan.end = Some(RunState::Failed);
}

/// Starts what can start in `stage`, recording the changes in `steps` and `plan`.
fn advance_stage(
    stage: &Stage,
    run: &WorkflowRun,
    steps: &mut HashMap<&str, RunStep>,
    plan: &mut Plan,
) {
    for step in &stage.steps {
        let Some(current) = steps.get(step.id.as_str()) else {
            continue;
        };
        if current.job_id.is_none() && !current.state.is_final() {
            let change = start(step, run, steps);
            let state = match &change {
                StepChange::Start(_) => StepState::Pending,
                StepChange::Skip => StepState::Skipped,
                StepChange::End(state) => *state,
            };
            if let (Some(entry), StepChange::Start(job)) =
                (steps.get_mut(step.id.as_str()), &change)
            {
                entry.job_id = Some(job.id);
            }
            if let Some(entry) = steps.get_mut(step.id.as_str()) {
                entry.state = state;
            }
            plan.changes.push((step.id.clone(), change));
        }
        let unfinished = steps
            .get(step.id.as_str())
            .is_some_and(|s| !s.state.is_final());
        let failed = steps
            .get(step.id.as_str())
            .is_some_and(|s| fails_run(step, s.state));
        if stage.mode == Mode::Sequential && (unfinished || failed) {
            return;
        }
    }
}

/// How `step` starts: skipped by its condition, or its job.
fn start(step: &Step, run: &WorkflowRun, steps: &HashMap<&str, RunStep>) -> StepChange {
    if let Some(condition) = &step.when {
        let holds = steps.get(condition.step()).is_some_and(|target| {
            condition.holds(&StepOutcome {
                state: target.state,
                result: target.result.as_ref(),
            })
        });
        if !holds {
            return StepChange::Skip;
        }
    }
    match render(&step.args, &run.parameters) {
        Ok(args) => StepChange::Start(Box::new(NewJob {
            id: new_job_id(),
            plugin: step.plugin.clone(),
            args: JsonText::from_value(&args),
            queue: step.queue.clone().unwrap_or_else(|| "default".into()),
            priority: step.priority.unwrap_or(0),
            max_attempts: step.max_attempts.unwrap_or(1),
            run_at: None,
            repository_path: None,
            agent_id: None,
            unique_key: None,
            parents: None,
        })),
        Err(_) => StepChange::End(StepState::Failed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(definition: Value, params: Value) -> WorkflowRun {
        let definition = Definition::parse(&definition, |_| true).expect("valid");
        let steps = definition
            .stages
            .iter()
            .enumerate()
            .flat_map(|(s, stage)| {
                stage
                    .steps
                    .iter()
                    .enumerate()
                    .map(move |(i, step)| RunStep {
                        id: step.id.clone(),
                        stage: s,
                        position: i,
                        state: StepState::Pending,
                        job_id: None,
                        result: None,
                    })
            })
            .collect();
        WorkflowRun {
            id: new_job_id(),
            workflow_id: "w".into(),
            definition,
            parameters: params.as_object().cloned().unwrap_or_default(),
            state: RunState::Running,
            created_at: 0,
            finished_at: None,
            steps,
        }
    }

    fn three_stages() -> Value {
        json!({"name": "ci", "stages": [
            {"name": "one", "mode": "sequential", "steps": [
                {"id": "a", "plugin": "echo", "args": {"x": "{{params.x}}"}},
                {"id": "b", "plugin": "echo"}]},
            {"name": "two", "mode": "parallel", "steps": [
                {"id": "c", "plugin": "echo", "when": {"step": "a", "path": "/x", "equals": true}},
                {"id": "d", "plugin": "echo", "when": {"step": "a", "state": "failed"}},
                {"id": "e", "plugin": "echo", "continue_on_failure": true}]},
            {"name": "three", "mode": "sequential", "steps": [{"id": "f", "plugin": "echo"}]}]})
    }

    /// Applies `plan` as a store would, then sets the started jobs' outcomes.
    fn apply(run: &mut WorkflowRun, plan: &Plan) {
        for (id, change) in &plan.changes {
            let step = run.steps.iter_mut().find(|s| &s.id == id).expect("step");
            match change {
                StepChange::Start(job) => {
                    step.job_id = Some(job.id);
                    step.result = Some(job.args.to_value());
                }
                StepChange::Skip => step.state = StepState::Skipped,
                StepChange::End(state) => step.state = *state,
            }
        }
        if let Some(end) = plan.end {
            run.state = end;
        }
    }

    fn set(run: &mut WorkflowRun, id: &str, state: StepState) {
        let step = run.steps.iter_mut().find(|s| s.id == id).expect("step");
        step.state = state;
    }

    fn started(plan: &Plan) -> Vec<&str> {
        plan.changes
            .iter()
            .filter(|(_, c)| matches!(c, StepChange::Start(_)))
            .map(|(id, _)| id.as_str())
            .collect()
    }

    #[test]
    fn stages_run_in_order_and_parallel_steps_together() {
        let mut r = run(three_stages(), json!({"x": true}));
        let p = plan(&r);
        assert_eq!(started(&p), ["a"]);
        let StepChange::Start(job) = &p.changes[0].1 else {
            panic!("a starts")
        };
        assert_eq!(
            job.args.to_value(),
            json!({"x": true}),
            "whole placeholder keeps the bool"
        );
        apply(&mut r, &p);
        assert!(started(&plan(&r)).is_empty(), "b waits for a");
        set(&mut r, "a", StepState::Succeeded);
        let p = plan(&r);
        assert_eq!(started(&p), ["b"]);
        apply(&mut r, &p);
        set(&mut r, "b", StepState::Succeeded);
        let p = plan(&r);
        assert_eq!(started(&p), ["c", "e"]);
        assert!(
            p.changes
                .iter()
                .any(|(id, c)| id == "d" && matches!(c, StepChange::Skip))
        );
        apply(&mut r, &p);
        set(&mut r, "c", StepState::Succeeded);
        assert!(started(&plan(&r)).is_empty(), "the stage waits for e");
        set(&mut r, "e", StepState::Failed);
        let p = plan(&r);
        assert_eq!(started(&p), ["f"], "e may fail");
        apply(&mut r, &p);
        set(&mut r, "f", StepState::Succeeded);
        assert_eq!(plan(&r).end, Some(RunState::Succeeded));
    }

    #[test]
    fn a_failed_step_fails_the_run_and_cancels_the_rest() {
        let mut r = run(three_stages(), json!({"x": false}));
        let p = plan(&r);
        apply(&mut r, &p);
        set(&mut r, "a", StepState::Failed);
        let p = plan(&r);
        assert_eq!(p.end, Some(RunState::Failed));
        assert!(started(&p).is_empty());
        let cancelled = p
            .changes
            .iter()
            .filter(|(_, c)| matches!(c, StepChange::End(StepState::Cancelled)))
            .count();
        assert_eq!(cancelled, 5);
    }

    #[test]
    fn a_running_step_of_a_failed_run_is_cancelled() {
        let mut r = run(three_stages(), json!({"x": true}));
        for id in ["a", "b"] {
            let p = plan(&r);
            apply(&mut r, &p);
            set(&mut r, id, StepState::Succeeded);
        }
        let p = plan(&r);
        apply(&mut r, &p);
        set(&mut r, "c", StepState::Failed);
        set(&mut r, "e", StepState::Running);
        let p = plan(&r);
        assert_eq!(p.end, Some(RunState::Failed));
        let e = r.steps.iter().find(|s| s.id == "e").and_then(|s| s.job_id);
        assert_eq!(p.to_cancel, e.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn a_step_whose_args_do_not_render_fails() {
        let r = run(three_stages(), json!({}));
        let p = plan(&r);
        assert_eq!(p.changes.len(), 1);
        assert!(matches!(
            &p.changes[0],
            (id, StepChange::End(StepState::Failed)) if id == "a"
        ));
    }

    #[test]
    fn run_states_round_trip() {
        for state in [
            RunState::Running,
            RunState::Succeeded,
            RunState::Failed,
            RunState::Cancelled,
        ] {
            assert_eq!(state.as_str().parse::<RunState>(), Ok(state));
        }
        assert_eq!(parse_step_state("skipped"), Some(StepState::Skipped));
        assert_eq!(parse_step_state("nope"), None);
    }
}
