//! The settings file's alert rules (`[[alerts]]`), checked and stored at host start.

use super::MAX_RULES;
use crate::model::alert::AlertSpec;
use crate::model::now_ms;
use crate::store::{self, JobStore};

/// Why the settings file's alert rules could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum DeclareError {
    /// An entry is wrong.
    #[error("alert rule {entry} in the config file: {reason}")]
    Invalid {
        /// Which entry: its id, or its position when it has none.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// The store failed.
    #[error("storing the config file's alert rules: {0}")]
    Store(#[from] store::Error),
}

/// Checks every rule the settings file declares, then stores them all (creating or
/// replacing). Rules the file does not name are left alone; nothing is stored unless
/// every entry is valid.
///
/// # Errors
/// [`DeclareError::Invalid`] naming the first wrong entry; [`DeclareError::Store`].
pub async fn declare(store: &dyn JobStore, specs: &[AlertSpec]) -> Result<(), DeclareError> {
    let invalid = |entry: String, reason: String| DeclareError::Invalid { entry, reason };
    if specs.len() > MAX_RULES {
        let reason = format!(
            "the file declares {}, at most {MAX_RULES} may be kept",
            specs.len()
        );
        return Err(invalid("count".into(), reason));
    }
    let ids = crate::engine::declared::ids(specs, |spec| spec.id.as_ref())
        .map_err(|(entry, reason)| invalid(entry, reason))?;
    let mut rules = Vec::with_capacity(specs.len());
    for (spec, id) in specs.iter().zip(&ids) {
        let rule = spec
            .clone()
            .rule(id)
            .map_err(|e| invalid(format!("`{id}`"), e.to_string()))?;
        rules.push(rule);
    }
    let now = now_ms();
    for rule in rules {
        store.put_alert_rule(rule, now).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::alert::AlertCondition;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{AlertStore, Durability};

    fn spec(id: Option<&str>, queue: &str) -> AlertSpec {
        AlertSpec {
            id: id.map(str::to_owned),
            condition: AlertCondition::QueueDepth {
                queue: queue.into(),
                above: 10,
            },
            webhook: None,
            enabled: true,
        }
    }

    #[tokio::test]
    async fn every_entry_is_checked_before_any_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("jobs.db"), Durability::Normal)
            .await
            .unwrap();
        let good = spec(Some("a"), "default");
        let refusals = [
            (vec![good.clone(), spec(None, "default")], "#2"),
            (
                vec![good.clone(), spec(Some("a"), "high")],
                "declared twice",
            ),
            (vec![good.clone(), spec(Some("b"), "Bad!")], "`b`"),
        ];
        for (specs, named) in refusals {
            let refused = declare(&store, &specs).await.unwrap_err().to_string();
            assert!(refused.contains(named), "{refused}");
        }
        assert!(
            store.alert_rules().await.unwrap().is_empty(),
            "nothing stored"
        );
        declare(&store, &[good, spec(Some("b"), "high")])
            .await
            .unwrap();
        let ids: Vec<String> = store
            .alert_rules()
            .await
            .unwrap()
            .into_iter()
            .map(|stored| stored.rule.id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
        store.close().await;
    }
}
