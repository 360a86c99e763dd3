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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_needs_an_id_and_none_comes_twice() {
        fn id(spec: &Option<String>) -> Option<&String> {
            spec.as_ref()
        }
        let specs = [Some("a".to_owned()), Some("b".to_owned())];
        assert_eq!(ids(&specs, id), Ok(vec!["a".to_owned(), "b".to_owned()]));
        let missing = [Some("a".to_owned()), None];
        assert_eq!(ids(&missing, id), Err(("#2".into(), "it has no id".into())));
        let twice = [Some("a".to_owned()), Some("a".to_owned())];
        assert_eq!(
            ids(&twice, id),
            Err(("`a`".into(), "the id is declared twice".into()))
        );
    }
}
