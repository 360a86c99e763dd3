//! JSON text that is checked once and then passed on as it came.

use serde::{Deserialize, Serialize};

/// JSON text, validated once and then kept and passed on as text: never parsed into a
/// tree or written out again on its way from a client to a guest.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = serde_json::Value)]
pub struct JsonText(Box<serde_json::value::RawValue>);

impl JsonText {
    /// `text`, if it is JSON.
    ///
    /// # Errors
    /// Where the text stops being JSON.
    pub fn parse(text: String) -> Result<JsonText, serde_json::Error> {
        serde_json::value::RawValue::from_string(text).map(JsonText)
    }

    /// The text of `value`.
    pub fn from_value(value: &serde_json::Value) -> JsonText {
        JsonText(serde_json::value::to_raw_value(value).expect("a JSON value serialises"))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// Whether the text is a JSON object.
    pub fn is_object(&self) -> bool {
        self.as_str().trim_start().starts_with('{')
    }

    /// The text parsed into a tree (off the hot path: for inspection and templates).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(self.as_str()).expect("JsonText holds valid JSON")
    }
}

/// Texts are equal when they are the same text.
impl PartialEq for JsonText {
    fn eq(&self, other: &JsonText) -> bool {
        self.as_str() == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text_is_kept_as_sent() {
        let text = JsonText::parse(r#"{ "b": 1,  "a": [true] }"#.to_owned()).unwrap();
        assert_eq!(text.as_str(), r#"{ "b": 1,  "a": [true] }"#);
        assert!(text.is_object());
        assert_eq!(text.to_value(), serde_json::json!({"a": [true], "b": 1}));
        let shown = serde_json::to_string(&[&text]).unwrap();
        assert_eq!(
            shown, r#"[{ "b": 1,  "a": [true] }]"#,
            "written out as it came"
        );
        assert!(JsonText::parse("{oops".to_owned()).is_err());
        assert!(!JsonText::from_value(&serde_json::json!([1])).is_object());
    }
}
