//! The plan of a run's advance: the run as stored ([`WorkflowRun`], [`RunStep`],
//! [`RunState`]) and [`plan`], the rule every store backend follows when it advances a run.
//!
//! A run snapshots the definition (with every step's queue and attempts filled in from
//! its plugin) and its parameters, and keeps one step per step of the definition. [`plan`]
//! takes a run whose steps' states already follow their jobs and decides which steps
//! start (with the job to enqueue), are skipped or end, which jobs to cancel and whether
//! the run ends; the store writes all of it in one transaction.

use super::{Definition, Mode, Stage, Step, StepOutcome, StepState, render};
use crate::model::{JobId, JsonText, Millis, NewJob};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
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
        Ok(args) => {
            let queue = step.queue.as_deref().unwrap_or(crate::model::DEFAULT_QUEUE);
            StepChange::Start(Box::new(NewJob {
                priority: step.priority.unwrap_or(0),
                max_attempts: step.max_attempts.unwrap_or(1),
                ..NewJob::new(&step.plugin, JsonText::from_value(&args), queue)
            }))
        }
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
            .positioned()
            .map(|(s, i, step)| RunStep {
                id: step.id.clone(),
                stage: s,
                position: i,
                state: StepState::Pending,
                job_id: None,
                result: None,
            })
            .collect();
        WorkflowRun {
            id: crate::model::new_job_id(),
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
}
