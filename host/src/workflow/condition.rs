//! Step conditions: whether a step's `when` holds for the outcome of the step it tests.

use super::{Condition, StepState};
use serde_json::Value;

/// What an earlier step ended as, for condition checks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOutcome<'a> {
    /// The step's state.
    pub state: StepState,
    /// Its job's result, if it has one.
    pub result: Option<&'a Value>,
}

impl Condition {
    /// The step the condition tests.
    pub fn step(&self) -> &str {
        match self {
            Condition::State { step, .. } | Condition::Value { step, .. } => step,
        }
    }

    /// Whether the condition holds for the tested step's outcome. A value condition
    /// whose step has no result, or whose path is not in it, does not hold.
    pub fn holds(&self, outcome: &StepOutcome<'_>) -> bool {
        match self {
            Condition::State { state, .. } => outcome.state == *state,
            Condition::Value { path, equals, .. } => outcome
                .result
                .and_then(|result| result.pointer(path))
                .is_some_and(|value| value == equals),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn state_condition_holds_only_for_its_state() {
        let condition = Condition::State {
            step: "fetch".into(),
            state: StepState::Succeeded,
        };
        assert_eq!(condition.step(), "fetch");
        let outcome = |state| StepOutcome {
            state,
            result: None,
        };
        assert!(condition.holds(&outcome(StepState::Succeeded)));
        for state in [StepState::Failed, StepState::Skipped, StepState::Running] {
            assert!(!condition.holds(&outcome(state)), "{state}");
        }
    }

    #[test]
    fn value_condition_looks_up_a_pointer_in_the_result() {
        let condition = Condition::Value {
            step: "fetch".into(),
            path: "/files/1/changed".into(),
            equals: json!(true),
        };
        let result = json!({"files": [{"changed": false}, {"changed": true}]});
        let holds = |result: &Value| {
            condition.holds(&StepOutcome {
                state: StepState::Succeeded,
                result: Some(result),
            })
        };
        assert!(holds(&result));
        assert!(!holds(
            &json!({"files": [{"changed": true}, {"changed": "yes"}]})
        ));
        // Missing path.
        assert!(!holds(&json!({"files": []})));
        // Missing result.
        assert!(!condition.holds(&StepOutcome {
            state: StepState::Succeeded,
            result: None,
        }));
    }

    #[test]
    fn value_condition_with_empty_path_compares_the_whole_result() {
        let condition = Condition::Value {
            step: "fetch".into(),
            path: String::new(),
            equals: json!({"ok": 1}),
        };
        let result = json!({"ok": 1});
        assert!(condition.holds(&StepOutcome {
            state: StepState::Succeeded,
            result: Some(&result),
        }));
    }
}
