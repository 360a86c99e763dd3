//! Entries the settings file declares (`[[recurring]]`, `[[alerts]]`): each needs an
//! id, and no id may come twice.

use std::collections::HashSet;

/// The ids of `specs` (each read by `id`), in order.
///
/// # Errors
/// `(entry, reason)` for the first entry with no id (named by its position) or whose id
/// an earlier entry has.
pub(crate) fn ids<T>(
    specs: &[T],
    id: impl Fn(&T) -> Option<&String>,
) -> Result<Vec<String>, (String, String)> {
    let mut seen = HashSet::new();
    specs
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            let id =
                id(spec).ok_or_else(|| (format!("#{}", index + 1), "it has no id".to_owned()))?;
            if !seen.insert(id) {
                return Err((format!("`{id}`"), "the id is declared twice".to_owned()));
            }
            Ok(id.clone())
        })
        .collect()
}
