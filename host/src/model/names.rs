//! Ids and names as clients give them: the longest one accepted, and how an unusable one
//! is quoted back in an error without echoing a whole oversized input.

/// Longest id or name accepted anywhere (job spec fields, labels, path segments): longer
/// ones are refused before any lookup.
pub const MAX_NAME_CHARS: usize = 200;

/// Longest excerpt of a refused value quoted in an error message.
const SHOWN_CHARS: usize = 64;

/// `text` for an error message: whole when short, else its start and its length.
pub fn shown(text: &str) -> String {
    match text.char_indices().nth(SHOWN_CHARS) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}… ({} characters)", &text[..end], text.chars().count()),
    }
}

/// Checks that `field`'s value `text` has 1 to [`MAX_NAME_CHARS`] characters.
///
/// # Errors
/// A message naming the field and the limit.
pub fn check_length(field: &str, text: &str) -> Result<(), String> {
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(format!(
            "{field} must have 1 to {MAX_NAME_CHARS} characters, got {chars}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_shown_by_their_start() {
        assert_eq!(shown("abc"), "abc");
        let long = "é".repeat(300);
        let text = shown(&long);
        assert!(text.starts_with(&"é".repeat(SHOWN_CHARS)));
        assert!(text.ends_with("… (300 characters)"), "{text}");
    }

    #[test]
    fn lengths_are_checked_in_characters() {
        assert!(check_length("name", &"é".repeat(MAX_NAME_CHARS)).is_ok());
        let error = check_length("name", &"a".repeat(MAX_NAME_CHARS + 1)).unwrap_err();
        assert!(error.contains("name") && error.contains("201"), "{error}");
        assert!(check_length("name", "").is_err());
    }
}
