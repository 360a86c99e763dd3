//! Where in a workflow definition (the body of `PUT /api/workflows/{id}`) a
//! [`DefinitionError`] lies, as a path into that body: `name`, `stages[1].mode`,
//! `stages[0].steps[2].priority`, `stages[0].steps[1].when.step`.
//!
//! An error names its stage by name and its step by id (or by position, when it has
//! none); the path finds them in the body: the first stage of that name (the second, for
//! a duplicate name) and, in it, the first step of that id (the second, for a duplicate
//! id in the same stage). One it cannot find is named as far as it can be: `stages`, or
//! the stage's `steps`.

use crate::workflow::DefinitionError;
use serde_json::Value;

/// The path of the value `error` concerns in `body`.
pub(super) fn definition_field(error: &DefinitionError, body: &Value) -> String {
    use DefinitionError as E;
    let found = Found { body };
    match error {
        E::Shape { at, message } => shape_field(&found, at, message),
        E::BadName => "name".into(),
        E::NoStages => "stages".into(),
        E::BadStageName { position } => format!("stages[{}].name", position.saturating_sub(1)),
        E::DuplicateStage { stage } => format!("{}.name", found.stage(stage, 1)),
        E::BadMode { stage, .. } => format!("{}.mode", found.stage(stage, 0)),
        E::NoSteps { stage } => format!("{}.steps", found.stage(stage, 0)),
        E::EmptyStepId { stage, position } => format!(
            "{}.steps[{}].id",
            found.stage(stage, 0),
            position.saturating_sub(1)
        ),
        E::DuplicateStep {
            stage,
            step,
            first_stage,
        } => {
            let nth = usize::from(first_stage == stage);
            format!("{}.id", found.step(stage, step, nth))
        }
        E::BadStepId { stage, step } => format!("{}.id", found.step(stage, step, 0)),
        E::UnknownPlugin { stage, step, .. } => format!("{}.plugin", found.step(stage, step, 0)),
        E::ArgsNotObject { stage, step } | E::BadTemplate { stage, step, .. } => {
            format!("{}.args", found.step(stage, step, 0))
        }
        E::BadQueue { stage, step, .. } => format!("{}.queue", found.step(stage, step, 0)),
        E::BadPriority { stage, step, .. } => format!("{}.priority", found.step(stage, step, 0)),
        E::BadMaxAttempts { stage, step, .. } => {
            format!("{}.max_attempts", found.step(stage, step, 0))
        }
        E::BadCondition { stage, step, .. } => format!("{}.when", found.step(stage, step, 0)),
        E::BadConditionState { stage, step, .. } => {
            format!("{}.when.state", found.step(stage, step, 0))
        }
        E::BadConditionPath { stage, step, .. } => {
            format!("{}.when.path", found.step(stage, step, 0))
        }
        E::UnknownConditionStep { stage, step, .. }
        | E::ConditionNotEarlier { stage, step, .. } => {
            format!("{}.when.step", found.step(stage, step, 0))
        }
    }
}

/// The path of a shape error: the part `at` names (`workflow`, ``stage `build` ``,
/// `stage #2`, ``step `lint` (stage `build`)``, ``step #1 (stage `build`)``), then the
/// field serde's `message` names, if it names one.
fn shape_field(found: &Found<'_>, at: &str, message: &str) -> String {
    let part = if let Some(stage) = at.strip_prefix("stage ") {
        Some(found.stage_labelled(stage))
    } else {
        at.strip_prefix("step ")
            .map(|step| match step.rsplit_once(" (stage ") {
                Some((step, stage)) => {
                    let stage = stage.strip_suffix(')').unwrap_or(stage);
                    found.step_labelled(stage, step)
                }
                None => "stages".into(),
            })
    };
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|start| message.strip_prefix(start))
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field);
    match (part, named) {
        (Some(part), Some(field)) => format!("{part}.{field}"),
        (Some(part), None) => part,
        (None, Some(field)) => field.to_owned(),
        (None, None) => "body".into(),
    }
}

/// A stage or step as an error labels it: `` `name` `` or `#position` (from 1).
enum Label<'a> {
    Name(&'a str),
    Position(usize),
}

impl<'a> Label<'a> {
    fn parse(label: &'a str) -> Option<Label<'a>> {
        if let Some(position) = label.strip_prefix('#') {
            return position.parse().ok().map(Label::Position);
        }
        let name = label.strip_prefix('`')?.strip_suffix('`')?;
        Some(Label::Name(name))
    }
}

/// Stages and steps found in the body.
struct Found<'a> {
    body: &'a Value,
}

impl Found<'_> {
    fn stages(&self) -> &[Value] {
        self.body
            .get("stages")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    /// The index of the `nth` (from 0) stage named `name`.
    fn stage_index(&self, name: &str, nth: usize) -> Option<usize> {
        self.stages()
            .iter()
            .enumerate()
            .filter(|(_, stage)| stage.get("name").and_then(Value::as_str) == Some(name))
            .nth(nth)
            .map(|(index, _)| index)
    }

    /// The path of the `nth` stage named `name`, or `stages`.
    fn stage(&self, name: &str, nth: usize) -> String {
        self.stage_index(name, nth)
            .map_or_else(|| "stages".into(), |index| format!("stages[{index}]"))
    }

    /// The path of the stage labelled `label`, or `stages`.
    fn stage_labelled(&self, label: &str) -> String {
        match Label::parse(label) {
            Some(Label::Name(name)) => self.stage(name, 0),
            Some(Label::Position(position)) => format!("stages[{}]", position.saturating_sub(1)),
            None => "stages".into(),
        }
    }

    /// The path of the `nth` step with id `id` in the (first) stage named `stage`, or
    /// that stage's `steps`.
    fn step(&self, stage: &str, id: &str, nth: usize) -> String {
        self.find_step(stage, |steps| {
            steps
                .iter()
                .enumerate()
                .filter(|(_, step)| step.get("id").and_then(Value::as_str) == Some(id))
                .nth(nth)
                .map(|(index, _)| index)
        })
    }

    /// The path of the step labelled `step` in the stage labelled `stage`.
    fn step_labelled(&self, stage: &str, step: &str) -> String {
        let Some(Label::Name(stage)) = Label::parse(stage) else {
            return "stages".into();
        };
        match Label::parse(step) {
            Some(Label::Name(id)) => self.step(stage, id, 0),
            Some(Label::Position(position)) => {
                self.find_step(stage, |_| Some(position.saturating_sub(1)))
            }
            None => self.find_step(stage, |_| None),
        }
    }

    /// The path of the step `index` picks among the steps of the stage named `stage`.
    fn find_step(&self, stage: &str, index: impl FnOnce(&[Value]) -> Option<usize>) -> String {
        let Some(s) = self.stage_index(stage, 0) else {
            return "stages".into();
        };
        let steps = self.stages()[s].get("steps").and_then(Value::as_array);
        match steps.and_then(|steps| index(steps)) {
            Some(i) => format!("stages[{s}].steps[{i}]"),
            None => format!("stages[{s}].steps"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::Definition;
    use serde_json::json;

    /// The path of the refusal of `definition`, whose plugins are all `echo`.
    fn field(definition: Value) -> String {
        let error = Definition::parse(&definition, |plugin| plugin == "echo")
            .expect_err("a refused definition");
        definition_field(&error, &definition)
    }

    fn step(extra: Value) -> Value {
        let mut step = json!({"id": "b", "plugin": "echo"});
        for (key, value) in extra.as_object().unwrap() {
            step[key] = value.clone();
        }
        step
    }

    /// Two stages; the second's second step gets `extra`.
    fn with(extra: Value) -> Value {
        json!({"name": "ci", "stages": [
            {"name": "one", "mode": "sequential", "steps": [{"id": "a", "plugin": "echo"}]},
            {"name": "two", "mode": "parallel", "steps": [
                {"id": "z", "plugin": "echo"}, step(extra)
            ]},
        ]})
    }

    #[test]
    fn step_refusals_name_the_step_by_index() {
        let at = "stages[1].steps[1]";
        for (extra, named) in [
            (json!({"priority": 101}), "priority"),
            (json!({"max_attempts": 0}), "max_attempts"),
            (json!({"queue": "Bad Queue"}), "queue"),
            (json!({"plugin": "nosuch"}), "plugin"),
            (json!({"args": [1]}), "args"),
            (json!({"args": {"x": "{{params.}}"}}), "args"),
            (json!({"id": "bad id"}), "id"),
            (json!({"id": "a"}), "id"),
            (
                json!({"when": {"step": "nosuch", "state": "succeeded"}}),
                "when.step",
            ),
            (
                json!({"when": {"step": "z", "state": "succeeded"}}),
                "when.step",
            ),
            (
                json!({"when": {"step": "a", "state": "gone"}}),
                "when.state",
            ),
            (
                json!({"when": {"step": "a", "path": "x", "equals": 1}}),
                "when.path",
            ),
            (json!({"when": 3}), "when"),
            (json!({"colour": "red"}), "colour"),
        ] {
            assert_eq!(
                field(with(extra.clone())),
                format!("{at}.{named}"),
                "{extra}"
            );
        }
    }

    #[test]
    fn workflow_and_stage_refusals_name_their_field() {
        assert_eq!(field(json!({"name": "", "stages": []})), "name");
        assert_eq!(field(json!({"name": "ci", "stages": []})), "stages");
        assert_eq!(field(json!({"name": "ci"})), "stages");
        assert_eq!(field(json!([])), "body");
        let mut two = with(json!({}));
        two["stages"][1]["mode"] = json!("sideways");
        assert_eq!(field(two.clone()), "stages[1].mode");
        two["stages"][1]["mode"] = json!("parallel");
        two["stages"][1]["steps"] = json!([]);
        assert_eq!(field(two.clone()), "stages[1].steps");
        two["stages"][1]["name"] = json!("one");
        two["stages"][1]["steps"] = json!([{"id": "c", "plugin": "echo"}]);
        assert_eq!(field(two.clone()), "stages[1].name");
        two["stages"][1]["name"] = json!(" ");
        assert_eq!(field(two.clone()), "stages[1].name");
        two["stages"][1] = json!({"name": "two", "steps": []});
        assert_eq!(field(two.clone()), "stages[1].mode");
        two["stages"][1] = json!({"name": "two", "mode": "parallel", "steps": [{"id": ""}]});
        assert_eq!(field(two), "stages[1].steps[0].plugin");
    }
}
