//! Parsing and validation of a definition: [`Definition::parse`] and [`DefinitionError`].

use super::template::check_templates;
use super::{
    Condition, Definition, MAX_STEP_ID_LEN, Mode, NotEarlier, Stage, Step, StepState, empty_object,
};
use crate::model::names::MAX_NAME_CHARS;
use crate::model::rules::{MAX_ATTEMPTS_LIMIT, validate_queue_name};
use crate::model::rules::{MAX_PRIORITY, MIN_PRIORITY};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// Why a definition was refused; every message names the step or stage concerned.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DefinitionError {
    /// The JSON does not have the definition's shape (serde's message).
    #[error("{at}: {message}")]
    Shape {
        /// `workflow`, `stage …` or `step … (stage …)`.
        at: String,
        /// What is wrong.
        message: String,
    },
    /// The workflow's name is empty or too long.
    #[error("workflow: name must have 1 to {MAX_NAME_CHARS} characters")]
    BadName,
    /// The workflow has no stages.
    #[error("workflow: needs at least one stage")]
    NoStages,
    /// A stage's name is empty or too long.
    #[error("stage #{position}: name must have 1 to {MAX_NAME_CHARS} characters")]
    BadStageName {
        /// The stage's position, from 1.
        position: usize,
    },
    /// Two stages have the same name.
    #[error("stage `{stage}`: duplicate stage name")]
    DuplicateStage {
        /// The stage.
        stage: String,
    },
    /// A stage's mode is neither `sequential` nor `parallel`.
    #[error("stage `{stage}`: unknown mode `{mode}` (use `sequential` or `parallel`)")]
    BadMode {
        /// The stage.
        stage: String,
        /// The mode given.
        mode: String,
    },
    /// A stage has no steps.
    #[error("stage `{stage}`: needs at least one step")]
    NoSteps {
        /// The stage.
        stage: String,
    },
    /// A step's id is empty.
    #[error("step #{position} (stage `{stage}`): id must not be empty")]
    EmptyStepId {
        /// The stage.
        stage: String,
        /// The step's position in its stage, from 1.
        position: usize,
    },
    /// A step's id has characters other than `A-Za-z0-9_-` or is too long.
    #[error(
        "step `{step}` (stage `{stage}`): invalid id: use 1 to {MAX_STEP_ID_LEN} characters of A-Z, a-z, 0-9, - and _"
    )]
    BadStepId {
        /// The stage.
        stage: String,
        /// The step.
        step: String,
    },
    /// Two steps have the same id.
    #[error(
        "step `{step}` (stage `{stage}`): duplicate step id (first used in stage `{first_stage}`)"
    )]
    DuplicateStep {
        /// The stage of the second use.
        stage: String,
        /// The step.
        step: String,
        /// The stage of the first use.
        first_stage: String,
    },
    /// A step names a plugin that is not loaded.
    #[error("step `{step}` (stage `{stage}`): unknown plugin `{plugin}`")]
    UnknownPlugin {
        /// The stage.
        stage: String,
        /// The step.
        step: String,
        /// The plugin named.
        plugin: String,
    },
    /// A step's args are not a JSON object.
    #[error("step `{step}` (stage `{stage}`): args must be a JSON object")]
    ArgsNotObject {
        /// The stage.
        stage: String,
        /// The step.
        step: String,
    },
    /// A step's queue name is invalid.
    #[error("step `{step}` (stage `{stage}`): {message}")]
    BadQueue {
        /// The stage.
        stage: String,
        /// The step.
        step: String,
        /// Why the queue name is invalid.
        message: String,
    },
    /// A step's priority is out of range.
    #[error(
        "step `{step}` (stage `{stage}`): priority must be between {MIN_PRIORITY} and {MAX_PRIORITY}, got {priority}"
    )]
    BadPriority {
        /// The stage.
        stage: String,
        /// The step.
        step: String,
        /// The priority given.
        priority: i32,
    },
    /// A step's max_attempts is out of range.
    #[error(
        "step `{step}` (stage `{stage}`): max_attempts must be between 1 and {MAX_ATTEMPTS_LIMIT}, got {max_attempts}"
    )]
    BadMaxAttempts {
        /// The stage.
        stage: String,
        /// The step.
        step: String,
        /// The attempts given.
        max_attempts: u32,
    },
    /// A step's `when` does not have a condition's shape.
    #[error("step `{step}` (stage `{stage}`): bad condition: {message}")]
    BadCondition {
        /// The stage.
        stage: String,
        /// The step.
        step: String,
        /// What is wrong.
        message: String,
    },
    /// A condition names a state a step does not end in.
    #[error(
        "step `{step}` (stage `{stage}`): condition state must be one of succeeded, failed, cancelled, skipped, got `{state}`"
    )]
    BadConditionState {
        /// The stage.
        stage: String,
        /// The step.
        step: String,
        /// The state given.
        state: String,
    },
    /// A condition's path is not a JSON pointer.
    #[error(
        "step `{step}` (stage `{stage}`): condition path `{path}` is not a JSON pointer (\"\" or starting with \"/\", with ~ only in ~0 and ~1)"
    )]
    BadConditionPath {
        /// The stage.
        stage: String,
        /// The step.
        step: String,
        /// The path given.
        path: String,
    },
    /// A condition names a step that does not exist.
    #[error("step `{step}` (stage `{stage}`): condition on unknown step `{target}`")]
    UnknownConditionStep {
        /// The stage.
        stage: String,
        /// The step with the condition.
        step: String,
        /// The step named.
        target: String,
    },
    /// A condition names itself, a later step or a step of the same parallel stage.
    #[error(
        "step `{step}` (stage `{stage}`): condition on step `{target}` which does not come earlier ({reason})"
    )]
    ConditionNotEarlier {
        /// The stage.
        stage: String,
        /// The step with the condition.
        step: String,
        /// The step named.
        target: String,
        /// Why it does not come earlier.
        reason: NotEarlier,
    },
    /// A step's args hold a malformed template.
    #[error("step `{step}` (stage `{stage}`): bad template in args: {message}")]
    BadTemplate {
        /// The stage.
        stage: String,
        /// The step.
        step: String,
        /// What is wrong.
        message: String,
    },
}

/// The top level as written, before validation.
#[derive(Deserialize)]
#[serde(rename = "workflow", deny_unknown_fields)]
struct RawDefinition {
    name: String,
    stages: Vec<Value>,
}

/// A stage as written, before validation.
#[derive(Deserialize)]
#[serde(rename = "stage", deny_unknown_fields)]
struct RawStage {
    name: String,
    mode: String,
    steps: Vec<Value>,
}

/// A step as written, before validation.
#[derive(Deserialize)]
#[serde(rename = "step", deny_unknown_fields)]
struct RawStep {
    id: String,
    plugin: String,
    args: Option<Value>,
    queue: Option<String>,
    priority: Option<i32>,
    max_attempts: Option<u32>,
    when: Option<Value>,
    continue_on_failure: Option<bool>,
}

/// The step being validated, for error messages.
struct Site<'a> {
    stage: &'a str,
    step: &'a str,
}

impl Site<'_> {
    fn stage(&self) -> String {
        self.stage.to_owned()
    }

    fn step(&self) -> String {
        self.step.to_owned()
    }
}

impl Definition {
    /// Parses and validates; `plugin_exists` tells which plugins are loaded.
    ///
    /// # Errors
    /// The first problem found, naming the step (and stage) concerned.
    pub fn parse(
        json: &Value,
        plugin_exists: impl Fn(&str) -> bool,
    ) -> Result<Definition, DefinitionError> {
        let raw = RawDefinition::deserialize(json).map_err(|e| DefinitionError::Shape {
            at: "workflow".into(),
            message: e.to_string(),
        })?;
        if !name_fits(&raw.name) {
            return Err(DefinitionError::BadName);
        }
        if raw.stages.is_empty() {
            return Err(DefinitionError::NoStages);
        }
        let mut stage_names = HashSet::new();
        let mut step_stages: HashMap<String, String> = HashMap::new();
        let mut stages = Vec::with_capacity(raw.stages.len());
        for (index, value) in raw.stages.iter().enumerate() {
            let stage = parse_stage(value, index + 1, &plugin_exists, &mut step_stages)?;
            if !stage_names.insert(stage.name.clone()) {
                return Err(DefinitionError::DuplicateStage { stage: stage.name });
            }
            stages.push(stage);
        }
        let definition = Definition {
            name: raw.name,
            stages,
        };
        definition.check_condition_order()?;
        Ok(definition)
    }

    /// Checks that every condition names a step that comes earlier.
    fn check_condition_order(&self) -> Result<(), DefinitionError> {
        let positions: HashMap<&str, (usize, usize)> = self
            .positioned()
            .map(|(s, i, step)| (step.id.as_str(), (s, i)))
            .collect();
        for (s, stage) in self.stages.iter().enumerate() {
            for (i, step) in stage.steps.iter().enumerate() {
                let Some(condition) = &step.when else {
                    continue;
                };
                let target = condition.step();
                let site = Site {
                    stage: &stage.name,
                    step: &step.id,
                };
                let Some(&there) = positions.get(target) else {
                    return Err(DefinitionError::UnknownConditionStep {
                        stage: site.stage(),
                        step: site.step(),
                        target: target.to_owned(),
                    });
                };
                if let Some(reason) = not_earlier((s, i), there, stage.mode) {
                    return Err(DefinitionError::ConditionNotEarlier {
                        stage: site.stage(),
                        step: site.step(),
                        target: target.to_owned(),
                        reason,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Why the step at `there` cannot be waited for by the step at `here`, if it cannot.
fn not_earlier(here: (usize, usize), there: (usize, usize), mode: Mode) -> Option<NotEarlier> {
    if there == here {
        Some(NotEarlier::Itself)
    } else if there > here {
        Some(NotEarlier::Later)
    } else if there.0 == here.0 && mode == Mode::Parallel {
        Some(NotEarlier::SameParallelStage)
    } else {
        None
    }
}

/// A name to show for an item not yet validated: its `key` if a non-empty string.
fn label(value: &Value, key: &str, position: usize) -> String {
    match value.get(key).and_then(Value::as_str) {
        Some(name) if !name.trim().is_empty() => format!("`{name}`"),
        _ => format!("#{position}"),
    }
}

/// Whether a workflow or stage name is not blank and at most [`MAX_NAME_CHARS`] long.
fn name_fits(name: &str) -> bool {
    !name.trim().is_empty() && name.chars().count() <= MAX_NAME_CHARS
}

/// Parses and validates one stage; `step_stages` maps step ids seen so far to stages.
fn parse_stage(
    value: &Value,
    position: usize,
    plugin_exists: &impl Fn(&str) -> bool,
    step_stages: &mut HashMap<String, String>,
) -> Result<Stage, DefinitionError> {
    let raw = RawStage::deserialize(value).map_err(|e| DefinitionError::Shape {
        at: format!("stage {}", label(value, "name", position)),
        message: e.to_string(),
    })?;
    if !name_fits(&raw.name) {
        return Err(DefinitionError::BadStageName { position });
    }
    let mode = match raw.mode.as_str() {
        "sequential" => Mode::Sequential,
        "parallel" => Mode::Parallel,
        _ => {
            return Err(DefinitionError::BadMode {
                stage: raw.name,
                mode: raw.mode,
            });
        }
    };
    if raw.steps.is_empty() {
        return Err(DefinitionError::NoSteps { stage: raw.name });
    }
    let mut steps = Vec::with_capacity(raw.steps.len());
    for (index, value) in raw.steps.iter().enumerate() {
        let step = parse_step(value, &raw.name, index + 1, plugin_exists)?;
        if let Some(first_stage) = step_stages.get(&step.id) {
            return Err(DefinitionError::DuplicateStep {
                stage: raw.name,
                step: step.id,
                first_stage: first_stage.clone(),
            });
        }
        step_stages.insert(step.id.clone(), raw.name.clone());
        steps.push(step);
    }
    Ok(Stage {
        name: raw.name,
        mode,
        steps,
    })
}

/// Whether `id` is a valid step id.
fn valid_step_id(id: &str) -> bool {
    id.len() <= MAX_STEP_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Parses and validates one step, except for the order of its condition.
fn parse_step(
    value: &Value,
    stage: &str,
    position: usize,
    plugin_exists: &impl Fn(&str) -> bool,
) -> Result<Step, DefinitionError> {
    let raw = RawStep::deserialize(value).map_err(|e| DefinitionError::Shape {
        at: format!("step {} (stage `{stage}`)", label(value, "id", position)),
        message: e.to_string(),
    })?;
    if raw.id.is_empty() {
        return Err(DefinitionError::EmptyStepId {
            stage: stage.to_owned(),
            position,
        });
    }
    let site = Site {
        stage,
        step: &raw.id,
    };
    if !valid_step_id(&raw.id) {
        return Err(DefinitionError::BadStepId {
            stage: site.stage(),
            step: site.step(),
        });
    }
    if !plugin_exists(&raw.plugin) {
        return Err(DefinitionError::UnknownPlugin {
            stage: site.stage(),
            step: site.step(),
            plugin: raw.plugin,
        });
    }
    let args = check_args(&site, raw.args)?;
    check_job_settings(&site, raw.queue.as_deref(), raw.priority, raw.max_attempts)?;
    let when = raw
        .when
        .as_ref()
        .map(|when| parse_condition(&site, when))
        .transpose()?;
    Ok(Step {
        id: raw.id,
        plugin: raw.plugin,
        args,
        queue: raw.queue,
        priority: raw.priority,
        max_attempts: raw.max_attempts,
        when,
        continue_on_failure: raw.continue_on_failure.unwrap_or(false),
    })
}

/// The args as an object (absent → `{}`) whose templates are well formed.
fn check_args(site: &Site<'_>, args: Option<Value>) -> Result<Value, DefinitionError> {
    let args = match args {
        None => empty_object(),
        Some(Value::Object(map)) => Value::Object(map),
        Some(_) => {
            return Err(DefinitionError::ArgsNotObject {
                stage: site.stage(),
                step: site.step(),
            });
        }
    };
    check_templates(&args).map_err(|message| DefinitionError::BadTemplate {
        stage: site.stage(),
        step: site.step(),
        message,
    })?;
    Ok(args)
}

/// Checks queue, priority and attempts as `POST /api/jobs` does.
fn check_job_settings(
    site: &Site<'_>,
    queue: Option<&str>,
    priority: Option<i32>,
    max_attempts: Option<u32>,
) -> Result<(), DefinitionError> {
    if let Some(queue) = queue {
        validate_queue_name(queue).map_err(|message| DefinitionError::BadQueue {
            stage: site.stage(),
            step: site.step(),
            message,
        })?;
    }
    if let Some(priority) = priority.filter(|p| !(MIN_PRIORITY..=MAX_PRIORITY).contains(p)) {
        return Err(DefinitionError::BadPriority {
            stage: site.stage(),
            step: site.step(),
            priority,
        });
    }
    if let Some(max_attempts) = max_attempts.filter(|n| !(1..=MAX_ATTEMPTS_LIMIT).contains(n)) {
        return Err(DefinitionError::BadMaxAttempts {
            stage: site.stage(),
            step: site.step(),
            max_attempts,
        });
    }
    Ok(())
}

/// Parses a `when`: `{step, state}` or `{step, path, equals}`.
fn parse_condition(site: &Site<'_>, when: &Value) -> Result<Condition, DefinitionError> {
    let bad = |message: &str| DefinitionError::BadCondition {
        stage: site.stage(),
        step: site.step(),
        message: message.to_owned(),
    };
    let Value::Object(fields) = when else {
        return Err(bad("`when` must be an object"));
    };
    if let Some(field) = fields
        .keys()
        .find(|key| !["step", "state", "path", "equals"].contains(&key.as_str()))
    {
        return Err(bad(&format!(
            "unknown field `{field}`, expected `step` with `state`, or `step` with `path` and `equals`"
        )));
    }
    let step = match fields.get("step") {
        Some(Value::String(step)) => step.clone(),
        Some(_) => return Err(bad("`step` must be a string")),
        None => return Err(bad("missing field `step`")),
    };
    let path = fields.get("path");
    let equals = fields.get("equals");
    match (fields.get("state"), path, equals) {
        (Some(state), None, None) => {
            let state = parse_condition_state(site, state)?;
            Ok(Condition::State { step, state })
        }
        (None, Some(path), Some(equals)) => {
            let Value::String(path) = path else {
                return Err(bad("`path` must be a string"));
            };
            if !valid_pointer(path) {
                return Err(DefinitionError::BadConditionPath {
                    stage: site.stage(),
                    step: site.step(),
                    path: path.clone(),
                });
            }
            Ok(Condition::Value {
                step,
                path: path.clone(),
                equals: equals.clone(),
            })
        }
        (Some(_), _, _) => Err(bad(
            "a condition tests either `state`, or `path` and `equals`, not both",
        )),
        (None, Some(_), None) => Err(bad("`path` needs `equals`")),
        (None, None, Some(_)) => Err(bad("`equals` needs `path`")),
        (None, None, None) => Err(bad("needs `state`, or `path` and `equals`")),
    }
}

/// A condition's state: one a step ends in.
fn parse_condition_state(site: &Site<'_>, state: &Value) -> Result<StepState, DefinitionError> {
    let text = match state {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    StepState::FINAL
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or(DefinitionError::BadConditionState {
            stage: site.stage(),
            step: site.step(),
            state: text,
        })
}

/// Whether `path` is a JSON pointer (RFC 6901): empty, or `/`-separated tokens in which
/// `~` appears only as `~0` or `~1`.
fn valid_pointer(path: &str) -> bool {
    if path.is_empty() {
        return true;
    }
    if !path.starts_with('/') {
        return false;
    }
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::tests::{parse, valid};
    use serde_json::{Map, json};

    /// `valid()` with `f` applied to the step `id`.
    fn with_step(id: &str, f: impl FnOnce(&mut Map<String, Value>)) -> Value {
        let mut json = valid();
        let step = json["stages"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .flat_map(|stage| stage["steps"].as_array_mut().into_iter().flatten())
            .find(|step| step["id"] == id)
            .and_then(Value::as_object_mut)
            .expect("step exists");
        f(step);
        json
    }

    fn set(id: &str, key: &str, value: Value) -> Value {
        with_step(id, |step| {
            step.insert(key.to_owned(), value);
        })
    }

    /// Asserts `json` is refused with a message that contains every one of `parts`.
    fn refused(json: Value, parts: &[&str]) -> DefinitionError {
        let error = parse(json).expect_err("definition should be refused");
        let message = error.to_string();
        for part in parts {
            assert!(message.contains(part), "`{message}` lacks `{part}`");
        }
        error
    }

    #[test]
    fn valid_three_stage_definition_parses() {
        let definition = parse(valid()).expect("valid");
        assert_eq!(definition.name, "ci");
        let modes: Vec<Mode> = definition.stages.iter().map(|s| s.mode).collect();
        assert_eq!(modes, [Mode::Sequential, Mode::Parallel, Mode::Sequential]);
        let lint = &definition.stages[1].steps[0];
        assert_eq!(
            lint.when,
            Some(Condition::State {
                step: "fetch".into(),
                state: StepState::Succeeded
            })
        );
        let test = &definition.stages[1].steps[1];
        assert_eq!(test.args, json!({}));
        assert_eq!(test.queue.as_deref(), Some("ci"));
        assert_eq!(test.priority, Some(5));
        assert_eq!(test.max_attempts, Some(2));
        assert!(test.continue_on_failure);
        assert!(!lint.continue_on_failure);
        assert_eq!(
            definition.stages[2].steps[0].when,
            Some(Condition::Value {
                step: "inspect".into(),
                path: "/changed".into(),
                equals: json!(true)
            })
        );
    }

    #[test]
    fn empty_name_is_refused() {
        let mut json = valid();
        json["name"] = json!(" ");
        assert_eq!(refused(json, &["name"]), DefinitionError::BadName);
    }

    #[test]
    fn no_stages_is_refused() {
        let mut json = valid();
        json["stages"] = json!([]);
        assert_eq!(refused(json, &["stage"]), DefinitionError::NoStages);
    }

    #[test]
    fn unknown_top_level_field_is_refused_with_serde_message() {
        let mut json = valid();
        json["owner"] = json!("me");
        let error = refused(json, &["workflow", "unknown field `owner`"]);
        assert!(matches!(error, DefinitionError::Shape { .. }));
    }

    #[test]
    fn empty_stage_name_is_refused() {
        let mut json = valid();
        json["stages"][1]["name"] = json!("");
        let error = refused(json.clone(), &["stage #2"]);
        assert_eq!(error, DefinitionError::BadStageName { position: 2 });
        json["stages"][1]["name"] = json!("s".repeat(MAX_NAME_CHARS + 1));
        let error = refused(json, &["stage #2", "200"]);
        assert_eq!(error, DefinitionError::BadStageName { position: 2 });
    }

    #[test]
    fn duplicate_stage_name_is_refused() {
        let mut json = valid();
        json["stages"][2]["name"] = json!("checks");
        let error = refused(json, &["stage `checks`", "duplicate"]);
        assert!(matches!(error, DefinitionError::DuplicateStage { .. }));
    }

    #[test]
    fn stage_without_steps_is_refused() {
        let mut json = valid();
        json["stages"][1]["steps"] = json!([]);
        let error = refused(json, &["stage `checks`", "at least one step"]);
        assert!(matches!(error, DefinitionError::NoSteps { .. }));
    }

    #[test]
    fn unknown_mode_is_refused() {
        let mut json = valid();
        json["stages"][1]["mode"] = json!("random");
        let error = refused(json, &["stage `checks`", "`random`"]);
        assert!(matches!(error, DefinitionError::BadMode { .. }));
    }

    #[test]
    fn missing_mode_is_refused_naming_the_stage() {
        let mut json = valid();
        if let Some(stage) = json["stages"][1].as_object_mut() {
            stage.remove("mode");
        }
        let error = refused(json, &["stage `checks`", "missing field `mode`"]);
        assert!(matches!(error, DefinitionError::Shape { .. }));
    }

    #[test]
    fn empty_step_id_is_refused() {
        let error = refused(set("test", "id", json!("")), &["step #2", "stage `checks`"]);
        assert!(matches!(error, DefinitionError::EmptyStepId { .. }));
    }

    #[test]
    fn step_id_with_bad_characters_is_refused() {
        let error = refused(set("test", "id", json!("unit test")), &["step `unit test`"]);
        assert!(matches!(error, DefinitionError::BadStepId { .. }));
    }

    #[test]
    fn step_id_longer_than_64_is_refused() {
        let long = "a".repeat(MAX_STEP_ID_LEN + 1);
        let error = refused(set("test", "id", json!(long)), &[&long]);
        assert!(matches!(error, DefinitionError::BadStepId { .. }));
        let longest = "a".repeat(MAX_STEP_ID_LEN);
        assert!(parse(set("test", "id", json!(longest))).is_ok());
    }

    #[test]
    fn duplicate_step_id_across_stages_is_refused() {
        let error = refused(
            set("deploy", "id", json!("lint")),
            &["step `lint`", "stage `ship`", "duplicate", "stage `checks`"],
        );
        assert!(matches!(error, DefinitionError::DuplicateStep { .. }));
    }

    #[test]
    fn unknown_plugin_is_refused() {
        let error = refused(set("lint", "plugin", json!("nope")), &[]);
        assert_eq!(
            error.to_string(),
            "step `lint` (stage `checks`): unknown plugin `nope`"
        );
    }

    #[test]
    fn args_that_are_not_an_object_are_refused() {
        let error = refused(set("lint", "args", json!([1, 2])), &["step `lint`"]);
        assert!(matches!(error, DefinitionError::ArgsNotObject { .. }));
    }

    #[test]
    fn bad_queue_name_is_refused() {
        let error = refused(set("test", "queue", json!("Big Queue")), &["step `test`"]);
        assert!(matches!(error, DefinitionError::BadQueue { .. }));
    }

    #[test]
    fn priority_out_of_range_is_refused() {
        let error = refused(set("test", "priority", json!(101)), &["step `test`", "101"]);
        assert!(matches!(error, DefinitionError::BadPriority { .. }));
        assert!(parse(set("test", "priority", json!(-100))).is_ok());
    }

    #[test]
    fn max_attempts_out_of_range_is_refused() {
        for attempts in [0, 101] {
            let error = refused(
                set("test", "max_attempts", json!(attempts)),
                &["step `test`"],
            );
            assert!(matches!(error, DefinitionError::BadMaxAttempts { .. }));
        }
        assert!(parse(set("test", "max_attempts", json!(100))).is_ok());
    }

    #[test]
    fn unknown_step_field_is_refused_with_serde_message() {
        let error = refused(
            set("lint", "retries", json!(3)),
            &["step `lint`", "stage `checks`", "unknown field `retries`"],
        );
        assert!(matches!(error, DefinitionError::Shape { .. }));
    }

    #[test]
    fn condition_on_unknown_step_is_refused() {
        let when = json!({"step": "ghost", "state": "succeeded"});
        let error = refused(set("lint", "when", when), &["step `lint`", "`ghost`"]);
        assert!(matches!(
            error,
            DefinitionError::UnknownConditionStep { .. }
        ));
    }

    #[test]
    fn condition_on_itself_is_a_cycle() {
        let when = json!({"step": "lint", "state": "succeeded"});
        let error = refused(
            set("lint", "when", when),
            &[
                "step `lint`",
                "condition on step `lint` which does not come earlier",
                "cycle",
            ],
        );
        assert!(matches!(
            error,
            DefinitionError::ConditionNotEarlier {
                reason: NotEarlier::Itself,
                ..
            }
        ));
    }

    #[test]
    fn condition_on_a_later_step_is_a_forward_reference() {
        let when = json!({"step": "deploy", "state": "succeeded"});
        let error = refused(
            set("fetch", "when", when),
            &[
                "step `fetch`",
                "condition on step `deploy` which does not come earlier",
                "forward reference",
            ],
        );
        assert!(matches!(
            error,
            DefinitionError::ConditionNotEarlier {
                reason: NotEarlier::Later,
                ..
            }
        ));
    }

    #[test]
    fn condition_on_a_later_step_of_the_same_stage_is_refused() {
        let when = json!({"step": "inspect", "state": "succeeded"});
        let error = refused(
            set("fetch", "when", when),
            &["step `fetch`", "`inspect` which does not come earlier"],
        );
        assert!(matches!(
            error,
            DefinitionError::ConditionNotEarlier {
                reason: NotEarlier::Later,
                ..
            }
        ));
    }

    #[test]
    fn condition_within_a_parallel_stage_is_refused() {
        let when = json!({"step": "lint", "state": "failed"});
        let error = refused(
            set("test", "when", when),
            &[
                "step `test`",
                "`lint` which does not come earlier",
                "parallel",
            ],
        );
        assert!(matches!(
            error,
            DefinitionError::ConditionNotEarlier {
                reason: NotEarlier::SameParallelStage,
                ..
            }
        ));
    }

    #[test]
    fn condition_on_an_earlier_step_of_a_sequential_stage_is_accepted() {
        // `inspect` waits for `fetch` in the same sequential stage (see `valid()`).
        let definition = parse(valid()).expect("valid");
        assert_eq!(
            definition.stages[0].steps[1]
                .when
                .as_ref()
                .map(Condition::step),
            Some("fetch")
        );
    }

    #[test]
    fn condition_state_must_be_final() {
        for state in ["running", "pending", "done"] {
            let when = json!({"step": "fetch", "state": state});
            let error = refused(set("lint", "when", when), &["step `lint`", state]);
            assert!(matches!(error, DefinitionError::BadConditionState { .. }));
        }
        for state in ["succeeded", "failed", "cancelled", "skipped"] {
            let when = json!({"step": "fetch", "state": state});
            assert!(parse(set("lint", "when", when)).is_ok(), "{state}");
        }
    }

    #[test]
    fn condition_path_must_be_a_json_pointer() {
        for path in ["changed", "/a~2b", "/a~"] {
            let when = json!({"step": "fetch", "path": path, "equals": 1});
            let error = refused(set("lint", "when", when), &["step `lint`", path]);
            assert!(matches!(error, DefinitionError::BadConditionPath { .. }));
        }
        for path in ["", "/", "/a~0b/c~1d/0"] {
            let when = json!({"step": "fetch", "path": path, "equals": 1});
            assert!(parse(set("lint", "when", when)).is_ok(), "{path}");
        }
    }

    #[test]
    fn malformed_conditions_are_refused() {
        let cases = [
            json!("fetch"),
            json!({"state": "succeeded"}),
            json!({"step": "fetch"}),
            json!({"step": "fetch", "path": "/x"}),
            json!({"step": "fetch", "equals": 1}),
            json!({"step": "fetch", "state": "succeeded", "path": "/x", "equals": 1}),
            json!({"step": "fetch", "state": "succeeded", "extra": 1}),
        ];
        for when in cases {
            let error = refused(set("lint", "when", when.clone()), &["step `lint`"]);
            assert!(
                matches!(error, DefinitionError::BadCondition { .. }),
                "{when}: {error}"
            );
        }
    }

    #[test]
    fn null_equals_is_a_value() {
        let when = json!({"step": "fetch", "path": "/x", "equals": null});
        let definition = parse(set("lint", "when", when)).expect("valid");
        assert_eq!(
            definition.stages[1].steps[0].when,
            Some(Condition::Value {
                step: "fetch".into(),
                path: "/x".into(),
                equals: Value::Null
            })
        );
    }

    #[test]
    fn unclosed_template_is_refused() {
        let args = json!({"repo": "{{params.repo"});
        let error = refused(set("lint", "args", args), &["step `lint`", "unclosed"]);
        assert!(matches!(error, DefinitionError::BadTemplate { .. }));
    }

    #[test]
    fn unknown_template_namespace_is_refused() {
        let args = json!({"nested": [{"home": "dir: {{env.HOME}}"}]});
        let error = refused(set("lint", "args", args), &["step `lint`", "`env`"]);
        assert!(matches!(error, DefinitionError::BadTemplate { .. }));
    }

    #[test]
    fn malformed_placeholders_are_refused() {
        for text in [
            "{{}}",
            "{{params}}",
            "{{params.}}",
            "{{params.a-b}}",
            "{{ params . x }}",
        ] {
            let args = json!({"x": text});
            let error = refused(set("lint", "args", args), &["step `lint`"]);
            assert!(
                matches!(error, DefinitionError::BadTemplate { .. }),
                "{text}: {error}"
            );
        }
    }
}
