//! Recurring job definitions as clients and operators write them ([`RecurringSpec`]),
//! checked against the schedule syntax and the loaded plugins into a
//! [`RecurringDefinition`] the store can keep; and the config file's definitions,
//! declared at host start.
//!
//! Firing is the store's ([`crate::store::RecurringStore::fire_recurring`]); the upkeep task calls it.

use crate::cron::{Schedule, ScheduleError};
use crate::model::rules::{validate_max_attempts, validate_queue_name};
use crate::model::{Invalid, now_ms, validate_priority};
use crate::plugins::Registry;
use crate::plugins::manifest::Settings;
use crate::store::{self, JobStore, Misfire, RecurringDefinition};
use serde::Deserialize;
use serde_json::Value;

/// Longest recurring job id.
pub const MAX_ID_CHARS: usize = 128;
/// The zone of a schedule that names none.
pub const DEFAULT_TIMEZONE: &str = "UTC";

/// A recurring job as a client (`PUT /api/recurring/{id}`) or the config file
/// (`[[recurring]]`) states it; unset fields take defaults.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecurringSpec {
    /// Its id: required in the config file; in the API the path gives it, and a body
    /// that states one must state the same.
    pub id: Option<String>,
    /// A cron expression: 5 fields, 6 with seconds first, or a macro such as `@daily`.
    pub cron: String,
    /// The IANA zone the fields are read in [default: UTC].
    pub timezone: Option<String>,
    /// The plugin its jobs run; it must be loaded.
    pub plugin: String,
    /// Arguments of every job, a JSON object [default: `{}`].
    pub args: Option<Value>,
    /// Queue of its jobs [default: the plugin's].
    pub queue: Option<String>,
    /// Priority of its jobs, -100..=100 [default: 0].
    pub priority: Option<i32>,
    /// Attempts each job gets [default: the plugin's].
    pub max_attempts: Option<u32>,
    /// What missed occurrences get [default: `run_once`].
    pub misfire: Option<Misfire>,
}

/// Why a recurring job was refused; the message names the wrong part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRecurring {
    /// The id does not have the allowed form.
    #[error(
        "recurring job id `{0}` is invalid: use 1 to {MAX_ID_CHARS} characters of A-Z, a-z, 0-9, `.`, `_` and `-`"
    )]
    Id(String),
    /// The id names a route of its own.
    #[error(
        "`{RESERVED_ID}` cannot be a recurring job id: `/api/recurring/{RESERVED_ID}` previews schedules"
    )]
    Reserved,
    /// Some other part is wrong.
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

/// Checks a recurring job id: 1 to [`MAX_ID_CHARS`] characters of `A-Z a-z 0-9 . _ -`,
/// and not `preview`.
///
/// # Errors
/// [`InvalidRecurring::Id`].
pub fn validate_id(id: &str) -> Result<(), InvalidRecurring> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if id.is_empty() || id.len() > MAX_ID_CHARS || !id.chars().all(allowed) {
        return Err(InvalidRecurring::Id(crate::model::names::shown(id)));
    }
    if id == RESERVED_ID {
        return Err(InvalidRecurring::Reserved);
    }
    Ok(())
}

/// The id no recurring job may have: `/api/recurring/preview` previews schedules.
const RESERVED_ID: &str = "preview";

/// Parses a schedule that fires at least once more.
///
/// # Errors
/// [`InvalidRecurring::Invalid`] naming `cron` or `timezone`.
pub fn schedule(cron: &str, timezone: &str) -> Result<Schedule, InvalidRecurring> {
    let schedule = Schedule::parse(cron, timezone).map_err(|e| match e {
        ScheduleError::UnknownTimeZone(_) => Invalid::of("timezone")(format!("timezone: {e}")),
        _ => Invalid::of("cron")(format!("cron `{cron}`: {e}")),
    })?;
    if schedule.next_after(now_ms()).is_none() {
        return Err(Invalid::of("cron")(format!("cron `{cron}` never fires")).into());
    }
    Ok(schedule)
}

impl RecurringSpec {
    /// Checks the spec for recurring job `id` against the plugins in `registry`.
    ///
    /// # Errors
    /// [`InvalidRecurring::Id`] for a malformed id; [`InvalidRecurring::Invalid`] for an
    /// id that differs from the spec's own, a wrong cron expression or zone, an unknown
    /// plugin, or a value out of range.
    pub fn definition(
        self,
        id: &str,
        registry: &Registry,
    ) -> Result<RecurringDefinition, InvalidRecurring> {
        validate_id(id)?;
        if let Some(own) = self.id.as_deref().filter(|own| *own != id) {
            let message = format!("id `{own}` in the body differs from `{id}` in the path");
            return Err(Invalid::of("id")(message).into());
        }
        let settings = registry
            .require(&self.plugin)
            .map_err(Invalid::of("plugin"))?;
        self.with_settings(id, &settings)
    }

    /// The definition, with the defaults of a plugin that has `settings`.
    fn with_settings(
        self,
        id: &str,
        settings: &Settings,
    ) -> Result<RecurringDefinition, InvalidRecurring> {
        let timezone = self.timezone.as_deref().unwrap_or(DEFAULT_TIMEZONE);
        let schedule = schedule(&self.cron, timezone)?;
        let args = match self.args {
            None | Some(Value::Null) => Value::Object(serde_json::Map::new()),
            Some(Value::Object(map)) => Value::Object(map),
            Some(_) => {
                return Err(Invalid::of("args")("args must be a JSON object".into()).into());
            }
        };
        let queue = self.queue.unwrap_or_else(|| settings.queue.clone());
        validate_queue_name(&queue).map_err(Invalid::of("queue"))?;
        let priority = self.priority.unwrap_or(0);
        let max_attempts = self.max_attempts.unwrap_or(settings.max_attempts);
        Ok(RecurringDefinition {
            id: id.to_owned(),
            schedule,
            plugin: self.plugin,
            args,
            queue,
            priority: validate_priority(priority).map_err(Invalid::of("priority"))?,
            max_attempts: validate_max_attempts(max_attempts)
                .map_err(Invalid::of("max_attempts"))?,
            misfire: self.misfire.unwrap_or_default(),
        })
    }
}

/// Why the config file's recurring jobs could not be declared.
#[derive(Debug, thiserror::Error)]
pub enum DeclareError {
    /// An entry is wrong.
    #[error("recurring job {entry} in the config file: {reason}")]
    Invalid {
        /// Which entry: its id, or its position when it has none.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// The store failed.
    #[error("storing the config file's recurring jobs: {0}")]
    Store(#[from] store::Error),
}

/// Checks every entry of the config file, then stores them all (creating or updating;
/// see [`crate::store::RecurringStore::put_recurring`]). Recurring jobs the file does not name are left
/// alone. Nothing is stored unless every entry is valid.
///
/// # Errors
/// [`DeclareError::Invalid`] naming the first wrong entry; [`DeclareError::Store`].
pub async fn declare(
    store: &dyn JobStore,
    registry: &Registry,
    specs: &[RecurringSpec],
) -> Result<usize, DeclareError> {
    let invalid = |(entry, reason)| DeclareError::Invalid { entry, reason };
    let ids = super::declared::ids(specs, |spec| spec.id.as_ref()).map_err(invalid)?;
    let mut definitions = Vec::with_capacity(specs.len());
    for (spec, id) in specs.iter().zip(&ids) {
        let definition = spec
            .clone()
            .definition(id, registry)
            .map_err(|e| invalid((format!("`{id}`"), e.to_string())))?;
        definitions.push(definition);
    }
    let now = now_ms();
    for definition in definitions {
        store.put_recurring(definition, now).await?;
    }
    Ok(specs.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(cron: &str) -> RecurringSpec {
        RecurringSpec {
            id: None,
            cron: cron.into(),
            timezone: None,
            plugin: "echo".into(),
            args: None,
            queue: None,
            priority: None,
            max_attempts: None,
            misfire: None,
        }
    }

    fn refused(spec: RecurringSpec) -> Invalid {
        match spec.with_settings("r", &Settings::default()) {
            Err(InvalidRecurring::Invalid(refused)) => refused,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn refusal(spec: RecurringSpec) -> String {
        refused(spec).message
    }

    #[test]
    fn ids_are_short_and_plain() {
        for id in [
            "nightly",
            "a",
            "report.v2_eu-west",
            &"x".repeat(MAX_ID_CHARS),
        ] {
            assert_eq!(validate_id(id), Ok(()), "{id}");
        }
        for id in ["", "a b", "a/b", "ü", "a:b", &"x".repeat(MAX_ID_CHARS + 1)] {
            assert!(
                matches!(validate_id(id), Err(InvalidRecurring::Id(_))),
                "{id}"
            );
        }
        assert_eq!(validate_id("preview"), Err(InvalidRecurring::Reserved));
    }

    #[test]
    fn unset_fields_take_the_defaults() {
        let settings = Settings {
            queue: "long-running".into(),
            max_attempts: 7,
            ..Settings::default()
        };
        let definition = spec("*/5 * * * *").with_settings("r", &settings).unwrap();
        assert_eq!(definition.schedule.timezone(), "UTC");
        assert_eq!(definition.args, json!({}));
        assert_eq!(definition.queue, "long-running");
        assert_eq!(definition.priority, 0);
        assert_eq!(definition.max_attempts, 7);
        assert_eq!(definition.misfire, Misfire::RunOnce);
    }

    #[test]
    fn refusals_name_the_wrong_part() {
        assert!(refusal(spec("61 * * * *")).contains("minute field `61`"));
        assert!(refusal(spec("* * *")).contains("expected 5 or 6 fields"));
        assert!(refusal(spec("0 0 30 2 *")).contains("never fires"));
        let zone = RecurringSpec {
            timezone: Some("Mars/Olympus".into()),
            ..spec("@daily")
        };
        assert!(refusal(zone).starts_with("timezone: unknown time zone `Mars/Olympus`"));
        let args = RecurringSpec {
            args: Some(json!([1])),
            ..spec("@daily")
        };
        assert!(refusal(args).contains("args"));
        let priority = RecurringSpec {
            priority: Some(500),
            ..spec("@daily")
        };
        assert!(refusal(priority).contains("priority"));
        let attempts = RecurringSpec {
            max_attempts: Some(0),
            ..spec("@daily")
        };
        assert!(refusal(attempts).contains("max_attempts"));
        let queue = RecurringSpec {
            queue: Some("Bad!".into()),
            ..spec("@daily")
        };
        assert!(refusal(queue).contains("Bad!"));
    }

    #[test]
    fn refusals_name_their_field() {
        let field = |spec: RecurringSpec| refused(spec).field;
        assert_eq!(field(spec("61 * * * *")), "cron");
        assert_eq!(field(spec("0 0 30 2 *")), "cron");
        let zone = Some("Mars/Olympus".into());
        let with = |change: fn(&mut RecurringSpec)| {
            let mut spec = spec("@daily");
            change(&mut spec);
            spec
        };
        assert_eq!(
            field(RecurringSpec {
                timezone: zone,
                ..spec("@daily")
            }),
            "timezone"
        );
        assert_eq!(field(with(|s| s.args = Some(json!([1])))), "args");
        assert_eq!(field(with(|s| s.priority = Some(500))), "priority");
        assert_eq!(field(with(|s| s.max_attempts = Some(0))), "max_attempts");
        assert_eq!(field(with(|s| s.queue = Some("Bad!".into()))), "queue");
    }

    #[test]
    fn an_unknown_plugin_is_named() {
        let registry = Registry::default();
        let refused = spec("@daily").definition("r", &registry).unwrap_err();
        assert!(refused.to_string().contains("unknown plugin `echo`"));
        let bad_id = spec("@daily").definition("a b", &registry).unwrap_err();
        assert!(matches!(bad_id, InvalidRecurring::Id(_)));
        let other = RecurringSpec {
            id: Some("other".into()),
            ..spec("@daily")
        };
        assert!(
            other
                .definition("r", &registry)
                .unwrap_err()
                .to_string()
                .contains("differs")
        );
    }
}
