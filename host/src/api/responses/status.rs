//! Answers about the host itself: its plugins and its health. (`GET /api/stats` answers
//! [`crate::engine::filters::Counts`] as it is.)

use crate::model::limits::Limits;
use crate::model::retry::RetryPolicy;
use crate::model::rfc3339;
use crate::plugins::manifest::Clamp;
use crate::plugins::{Plugin, PluginStatus};
use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema, ToSchema};

/// `GET /api/plugins`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PluginList {
    /// Every plugin found, loaded or not.
    pub(crate) plugins: Vec<PluginView>,
}

/// One plugin of [`PluginList`].
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PluginView {
    /// Its name.
    pub(crate) name: String,
    /// Where its latest module is.
    pub(crate) status: PluginState,
    /// Why its latest module or manifest could not be loaded; `null` if it could.
    pub(crate) error: Option<String>,
    /// The version jobs run; its fields are absent when none is loaded.
    #[serde(flatten)]
    #[schema(schema_with = loaded_fields)]
    pub(crate) loaded: Option<LoadedPlugin>,
}

/// Where a plugin's latest module is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PluginState {
    /// Being compiled: its jobs are accepted and wait for it, or run the version loaded
    /// before it.
    Compiling,
    /// Loaded: new jobs run it (or, when `error` is set, the version loaded before the
    /// module that failed).
    Loaded,
    /// Refused (`error` says why), and no version loaded: its jobs fail with the error.
    Failed,
}

/// The loaded version of a [`PluginView`].
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LoadedPlugin {
    /// sha256 of its module.
    pub(crate) digest: String,
    /// When it was loaded (RFC 3339).
    #[schema(format = DateTime)]
    pub(crate) loaded_at: String,
    /// Its limits per run.
    #[schema(inline)]
    pub(crate) limits: PluginLimits,
    /// The limits lowered to the operator's maxima.
    #[schema(inline)]
    pub(crate) clamped: Vec<Clamp>,
    /// Where its runs may send HTTP requests: its `allowed_outbound_hosts` within the
    /// operator's, as `scheme://host:port` patterns.
    pub(crate) allowed_outbound_hosts: Vec<String>,
    /// Its `allowed_outbound_hosts` patterns the operator's list does not allow whole.
    pub(crate) outbound_refused: Vec<String>,
    /// Attempts for jobs that do not say.
    pub(crate) max_attempts: u32,
    /// When failed attempts are retried.
    #[schema(inline)]
    pub(crate) retry: Retry,
    /// The queue of jobs that do not say.
    pub(crate) queue: String,
}

/// The `limits` of a [`LoadedPlugin`].
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PluginLimits {
    /// Fuel per run.
    pub(crate) fuel: u64,
    /// Wall-clock time per run.
    pub(crate) timeout_ms: u64,
    /// Linear memory, in MiB.
    pub(crate) memory_mb: usize,
    /// Longest result, in MiB.
    pub(crate) result_mb: usize,
    /// Most log, in MiB.
    pub(crate) log_mb: usize,
    /// Most written under `/repo`, in MiB.
    pub(crate) disk_quota_mb: u64,
}

/// The `retry` of a [`LoadedPlugin`]: `{"delays_seconds": [...]}`, or `"backoff"`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum Retry {
    /// Fixed waits.
    Delays {
        /// The waits in seconds, one per retry; the last repeats.
        delays_seconds: Vec<u64>,
    },
    /// Polynomial backoff with jitter: always `backoff`.
    Backoff(&'static str),
}

/// The fields of a [`LoadedPlugin`] within a [`PluginView`]: none required, since they
/// are absent when no version is loaded. (Its parts are inline: a schema made here is
/// not collected with the document's.)
fn loaded_fields() -> RefOr<Schema> {
    let mut schema = LoadedPlugin::schema();
    if let RefOr::T(Schema::Object(object)) = &mut schema {
        object.required.clear();
    }
    schema
}

/// `GET /healthz` (200).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    pub(crate) status: &'static str,
}

impl From<PluginStatus> for PluginView {
    fn from(status: PluginStatus) -> PluginView {
        let state = match (&status.compiling, &status.current) {
            (Some(_), _) => PluginState::Compiling,
            (None, Some(_)) => PluginState::Loaded,
            (None, None) => PluginState::Failed,
        };
        PluginView {
            name: status.name,
            status: state,
            error: status.error,
            loaded: status.current.as_deref().map(LoadedPlugin::from),
        }
    }
}

impl From<&Plugin> for LoadedPlugin {
    fn from(plugin: &Plugin) -> LoadedPlugin {
        let settings = &plugin.settings;
        LoadedPlugin {
            digest: plugin.digest.clone(),
            loaded_at: rfc3339::format(plugin.loaded_at),
            limits: PluginLimits::from(&settings.limits),
            clamped: settings.clamped.clone(),
            allowed_outbound_hosts: (settings.limits.outbound_hosts.iter())
                .map(ToString::to_string)
                .collect(),
            outbound_refused: settings.outbound_refused.clone(),
            max_attempts: settings.max_attempts,
            retry: match &settings.retry {
                RetryPolicy::Delays(delays) => Retry::Delays {
                    delays_seconds: delays.clone(),
                },
                RetryPolicy::Backoff => Retry::Backoff("backoff"),
            },
            queue: settings.queue.clone(),
        }
    }
}

impl From<&Limits> for PluginLimits {
    fn from(limits: &Limits) -> PluginLimits {
        PluginLimits {
            fuel: limits.fuel,
            timeout_ms: limits.timeout.as_millis() as u64,
            memory_mb: limits.memory_bytes >> 20,
            result_mb: limits.result_bytes >> 20,
            log_mb: limits.log_bytes >> 20,
            disk_quota_mb: limits.disk_quota_bytes >> 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_plugin_not_loaded_shows_only_its_name_and_error() {
        let view = PluginView {
            name: "broken".into(),
            status: PluginState::Failed,
            error: Some("no manifest".into()),
            loaded: None,
        };
        assert_eq!(
            serde_json::to_value(&view).unwrap(),
            json!({"name": "broken", "status": "failed", "error": "no manifest"})
        );
    }

    #[test]
    fn retry_is_a_list_of_delays_or_the_word_backoff() {
        let delays = Retry::Delays {
            delays_seconds: vec![1, 5],
        };
        assert_eq!(
            serde_json::to_value(&delays).unwrap(),
            json!({"delays_seconds": [1, 5]})
        );
        assert_eq!(
            serde_json::to_value(Retry::Backoff("backoff")).unwrap(),
            json!("backoff")
        );
    }
}
