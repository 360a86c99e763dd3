//! Workflow runs: creating one (checking its parameters and filling in each step's
//! plugin defaults) and the advancer, which the upkeep task calls every few hundred
//! milliseconds to move every running run on (see [`crate::store::workflows`]).

use super::held::Held;
use crate::events::{Event, EventBus, Ids};
use crate::model::{JobId, Millis, new_job_id, now_ms};
use crate::plugins::Registry;
use crate::store::workflows::{Advanced, NewWorkflowRun};
use crate::store::{self, CancelOutcome, JobStore};
use crate::workflow::Definition;
use serde_json::{Map, Value};

/// Longest workflow id.
pub const MAX_ID_CHARS: usize = 128;

/// Checks a workflow id: 1 to [`MAX_ID_CHARS`] characters of `A-Z a-z 0-9 . _ -`.
///
/// # Errors
/// A message naming the id.
pub fn validate_id(id: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if id.is_empty() || id.len() > MAX_ID_CHARS || !id.chars().all(allowed) {
        return Err(format!(
            "workflow id `{}` is invalid: use 1 to {MAX_ID_CHARS} characters of A-Z, a-z, 0-9, `.`, `_` and `-`",
            crate::model::names::shown(id)
        ));
    }
    Ok(())
}

/// Why a run could not be created.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No workflow has that id.
    #[error("no workflow with id {0}")]
    NotFound(String),
    /// The parameters do not fit the definition.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// The definition with every step's queue and max_attempts set: the step's own, else its
/// plugin's.
///
/// # Errors
/// A message naming a step whose plugin is no longer loaded.
pub fn with_plugin_defaults(
    mut definition: Definition,
    registry: &Registry,
) -> Result<Definition, String> {
    for stage in &mut definition.stages {
        for step in &mut stage.steps {
            let settings = registry
                .require(&step.plugin)
                .map_err(|e| format!("step `{}` (stage `{}`): {e}", step.id, stage.name))?;
            step.max_attempts.get_or_insert(settings.max_attempts);
            step.queue.get_or_insert(settings.queue);
        }
    }
    Ok(definition)
}

/// Checks that `parameters` is an object holding every parameter the templates use.
///
/// # Errors
/// A message naming the first missing parameter.
pub fn check_parameters(
    definition: &Definition,
    parameters: Option<Value>,
) -> Result<Map<String, Value>, String> {
    let parameters = match parameters {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err("parameters must be a JSON object".into()),
    };
    if let Some(missing) = definition
        .parameters()
        .into_iter()
        .find(|name| !parameters.contains_key(name))
    {
        return Err(format!("missing parameter `{missing}`"));
    }
    Ok(parameters)
}

/// Creates a run of workflow `workflow_id` and advances it once (starting its first
/// steps); returns the run's id.
///
/// # Errors
/// [`RunError::NotFound`], [`RunError::Invalid`] for missing parameters or a step whose
/// plugin is gone, [`RunError::Store`].
pub async fn create_run(
    store: &dyn JobStore,
    registry: &Registry,
    workflow_id: &str,
    parameters: Option<Value>,
) -> Result<(JobId, Advanced), RunError> {
    let workflow = store
        .workflow(workflow_id)
        .await?
        .ok_or_else(|| RunError::NotFound(workflow_id.to_owned()))?;
    let parameters =
        check_parameters(&workflow.definition, parameters).map_err(RunError::Invalid)?;
    let definition =
        with_plugin_defaults(workflow.definition, registry).map_err(RunError::Invalid)?;
    let run = NewWorkflowRun {
        id: new_job_id(),
        workflow_id: workflow.id,
        definition,
        parameters,
    };
    let id = run.id;
    let now = now_ms();
    store.create_workflow_run(run, now).await?;
    let advanced = store.advance_workflow_run(id, now).await?;
    Ok((id, advanced))
}

/// Advances every running run once; wakes the dispatcher when jobs were enqueued and
/// cancels the leftover jobs of runs that failed.
pub(super) async fn advance_all(store: &dyn JobStore, events: &EventBus, held: &Held) {
    let runs = match store.running_workflow_runs().await {
        Ok(runs) => runs,
        Err(e) => {
            tracing::error!(error = %e, "listing running workflow runs failed");
            return;
        }
    };
    for run in runs {
        let now = now_ms();
        match store.advance_workflow_run(run, now).await {
            Ok(advanced) => {
                published(events, run, &advanced);
                cancel_jobs(store, held, &advanced.to_cancel, now).await;
            }
            Err(e) => tracing::error!(error = %e, %run, "advancing a workflow run failed"),
        }
    }
}

/// Publishes what an advance of `run` did (its jobs' changes were published as it
/// committed): its steps' moves, then its end.
pub(super) fn published(events: &EventBus, run: JobId, advanced: &Advanced) {
    for (step, state, job) in &advanced.steps {
        let ids = job.map(Ids::job).unwrap_or_default();
        let step = step.clone();
        let state = state.as_str();
        let event = Event::WorkflowStep { run, step, state };
        events.publish(ids, event);
    }
    if let Some(state) = advanced.state.filter(|_| advanced.ended) {
        let event = Event::WorkflowEnded {
            run,
            state: state.as_str(),
        };
        events.publish(Ids::default(), event);
    }
}

/// Cancels `jobs` like [`super::Scheduler::cancel`]; jobs that already ended are left.
pub(super) async fn cancel_jobs(store: &dyn JobStore, held: &Held, jobs: &[JobId], now: Millis) {
    for &job in jobs {
        match store.cancel(job, now).await {
            Ok(cancelled) => {
                if cancelled.value == CancelOutcome::Requested {
                    held.interrupt(job);
                }
            }
            Err(store::Error::Conflict(_)) => {}
            Err(e) => tracing::warn!(error = %e, %job, "cancelling a workflow step's job failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn definition() -> Definition {
        let json = json!({"name": "w", "stages": [{"name": "s", "mode": "sequential", "steps": [
            {"id": "a", "plugin": "echo", "args": {"x": "{{params.x}}", "y": "{{params.y}}"}}]}]});
        Definition::parse(&json, |_| true).expect("valid")
    }

    #[test]
    fn ids_are_short_and_plain() {
        assert!(validate_id("ci.main_v2-x").is_ok());
        for id in ["", "a b", "a/b", &"x".repeat(MAX_ID_CHARS + 1)] {
            assert!(validate_id(id).is_err(), "{id}");
        }
    }

    #[test]
    fn every_parameter_must_be_given() {
        let given = check_parameters(&definition(), Some(json!({"x": 1, "y": 2, "z": 3})));
        assert_eq!(given.map(|p| p.len()), Ok(3));
        let missing = check_parameters(&definition(), Some(json!({"x": 1})));
        assert_eq!(missing, Err("missing parameter `y`".into()));
        assert!(check_parameters(&definition(), Some(json!([1]))).is_err());
        assert!(check_parameters(&definition(), None).is_err());
    }

    #[test]
    fn steps_of_unloaded_plugins_are_named() {
        let error = with_plugin_defaults(definition(), &Registry::default()).unwrap_err();
        assert!(error.starts_with("step `a` (stage `s`)"), "{error}");
    }
}
