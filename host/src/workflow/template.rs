//! Parameter templates: `{{params.NAME}}` in the string values of a step's args.

use super::Definition;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

impl Definition {
    /// Names of the parameters the templates use (sorted, deduplicated).
    pub fn parameters(&self) -> Vec<String> {
        let mut names = BTreeSet::new();
        for (_, step) in self.steps() {
            let _ = visit_strings(&step.args, &mut |text| {
                for segment in segments(text)? {
                    if let Segment::Param(name) = segment {
                        names.insert(name.to_owned());
                    }
                }
                Ok(())
            });
        }
        names.into_iter().collect()
    }
}

/// Checks that every placeholder in the string values of `args` is well formed.
///
/// # Errors
/// What is wrong with the first malformed template.
pub(super) fn check_templates(args: &Value) -> Result<(), String> {
    visit_strings(args, &mut |text| segments(text).map(drop))
}

/// Calls `f` on every string value in `value` (not on object keys).
fn visit_strings(
    value: &Value,
    f: &mut impl FnMut(&str) -> Result<(), String>,
) -> Result<(), String> {
    match value {
        Value::String(text) => f(text),
        Value::Array(items) => items.iter().try_for_each(|item| visit_strings(item, f)),
        Value::Object(map) => map.values().try_for_each(|item| visit_strings(item, f)),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

/// A piece of a string value: literal text or a `{{params.NAME}}` placeholder.
#[derive(Debug, PartialEq)]
enum Segment<'a> {
    Text(&'a str),
    Param(&'a str),
}

/// Splits `text` into literal text and placeholders.
fn segments(text: &str) -> Result<Vec<Segment<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            out.push(Segment::Text(&rest[..open]));
        }
        let inside = &rest[open + 2..];
        let close = inside
            .find("}}")
            .ok_or_else(|| format!("unclosed `{{{{` in `{text}`"))?;
        out.push(Segment::Param(placeholder_name(&inside[..close])?));
        rest = &inside[close + 2..];
    }
    if !rest.is_empty() {
        out.push(Segment::Text(rest));
    }
    Ok(out)
}

/// The parameter name in a placeholder's inside: `params.NAME`, spaces around allowed.
fn placeholder_name(inner: &str) -> Result<&str, String> {
    let shown = format!("{{{{{inner}}}}}");
    let expression = inner.trim();
    let Some((namespace, name)) = expression.split_once('.') else {
        return Err(format!(
            "`{shown}` is not of the form `{{{{params.NAME}}}}`"
        ));
    };
    if namespace != "params" {
        return Err(format!(
            "unknown namespace `{namespace}` in `{shown}` (only `params` is known)"
        ));
    }
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "bad parameter name `{name}` in `{shown}`: use A-Z, a-z, 0-9 and _"
        ));
    }
    Ok(name)
}

/// The parameter `name`, or an error naming it.
fn lookup<'a>(params: &'a Map<String, Value>, name: &str) -> Result<&'a Value, String> {
    params
        .get(name)
        .ok_or_else(|| format!("missing parameter `{name}`"))
}

/// Replaces `{{params.NAME}}` in `args` (recursively through objects/arrays, in string
/// values only): a string that is exactly one placeholder becomes the parameter's JSON
/// value (any type); placeholders inside longer strings are replaced by the parameter's
/// text (strings without quotes, other values as compact JSON).
///
/// # Errors
/// A missing parameter (the message names it) or a malformed template.
pub fn render(args: &Value, params: &Map<String, Value>) -> Result<Value, String> {
    match args {
        Value::String(text) => render_string(text, params),
        Value::Array(items) => items
            .iter()
            .map(|item| render(item, params))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(map) => map
            .iter()
            .map(|(key, item)| Ok((key.clone(), render(item, params)?)))
            .collect::<Result<Map<_, _>, String>>()
            .map(Value::Object),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(args.clone()),
    }
}

/// Renders one string value.
fn render_string(text: &str, params: &Map<String, Value>) -> Result<Value, String> {
    let segments = segments(text)?;
    if let [Segment::Param(name)] = segments.as_slice() {
        return lookup(params, name).cloned();
    }
    let mut out = String::with_capacity(text.len());
    for segment in segments {
        match segment {
            Segment::Text(literal) => out.push_str(literal),
            Segment::Param(name) => match lookup(params, name)? {
                Value::String(value) => out.push_str(value),
                value => out.push_str(&value.to_string()),
            },
        }
    }
    Ok(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::tests::{parse, valid};
    use serde_json::json;

    fn params(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("params must be an object"),
        }
    }

    #[test]
    fn parameters_lists_sorted_unique_names() {
        let definition = parse(valid()).expect("valid");
        assert_eq!(definition.parameters(), ["depth", "env", "repo"]);
    }

    #[test]
    fn render_whole_string_placeholder_keeps_json_type() {
        let args = json!({"n": "{{params.n}}", "b": "{{ params.b }}", "o": "{{params.o}}"});
        let p = params(json!({"n": 3, "b": true, "o": {"k": [1, "two"]}}));
        assert_eq!(
            render(&args, &p),
            Ok(json!({"n": 3, "b": true, "o": {"k": [1, "two"]}}))
        );
    }

    #[test]
    fn render_embedded_placeholder_uses_text() {
        let args = json!({"s": "repo={{params.repo}} n={{params.n}} o={{params.o}}"});
        let p = params(json!({"repo": "orchestra", "n": 3, "o": {"a": 1}}));
        assert_eq!(
            render(&args, &p),
            Ok(json!({"s": "repo=orchestra n=3 o={\"a\":1}"}))
        );
    }

    #[test]
    fn render_walks_nested_objects_and_arrays() {
        let args = json!({
            "list": ["{{params.a}}", {"deep": ["x-{{params.b}}", 7, null]}],
            "{{params.a}}": false
        });
        let p = params(json!({"a": [1, 2], "b": "y"}));
        assert_eq!(
            render(&args, &p),
            Ok(json!({
                "list": [[1, 2], {"deep": ["x-y", 7, null]}],
                "{{params.a}}": false
            }))
        );
    }

    #[test]
    fn render_leaves_plain_strings_alone() {
        let args = json!({"s": "no {templates} here }}", "e": ""});
        assert_eq!(render(&args, &Map::new()), Ok(args.clone()));
    }

    #[test]
    fn render_missing_parameter_is_an_error_naming_it() {
        let args = json!({"s": "at {{params.where}}"});
        let error = render(&args, &params(json!({"other": 1}))).expect_err("missing");
        assert!(error.contains("`where`"), "{error}");
    }

    #[test]
    fn render_bad_template_is_an_error() {
        let error = render(&json!({"s": "{{env.HOME}}"}), &Map::new()).expect_err("bad");
        assert!(error.contains("`env`"), "{error}");
    }
}
