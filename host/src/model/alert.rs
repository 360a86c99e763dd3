//! Alert rules and incidents as data: what a rule watches ([`AlertCondition`]), where it
//! tells ([`Webhook`]), the checks every rule passes wherever it comes from (the API, the
//! settings file), and how a webhook's body is signed. An [`Incident`] is one stretch of
//! time a rule's condition held for one subject.

use super::agent::validate_agent_id;
use super::names::{check_length, shown};
use super::rules::validate_queue_name;
use super::{Invalid, Millis, hex};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;
use uuid::Uuid;

/// Longest rule id.
pub const MAX_RULE_ID_CHARS: usize = 128;
/// Longest webhook URL.
pub const MAX_URL_CHARS: usize = 2048;
/// Shortest webhook secret: shorter ones are guessable.
pub const MIN_SECRET_CHARS: usize = 16;
/// Longest webhook secret.
pub const MAX_SECRET_CHARS: usize = 256;
/// Longest window a failure rate is measured over: a day.
pub const MAX_WINDOW_SECONDS: u32 = 86_400;
/// Most runs a failure rate may ask for before it counts.
pub const MAX_MIN_RUNS: u32 = 1_000_000;
/// The id no rule may have: `/api/alerts/incidents` lists incidents.
const RESERVED_ID: &str = "incidents";

/// An incident's id: a UUID v7, so ids sort by opening time.
pub type IncidentId = Uuid;

/// What a rule watches. Each kind fires for its own subjects: a job, an agent, a queue,
/// a plugin, or the jobs it counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AlertCondition {
    /// A job failed for good (a fatal error, or its attempts used up). Fires once per
    /// job; resolves when the job leaves `failed` (retried or deleted).
    JobFailed {
        /// Only jobs of this plugin.
        plugin: Option<String>,
        /// Only jobs of this queue.
        queue: Option<String>,
    },
    /// An agent takes no work: it missed its health checks (offline) or its executable
    /// could not be started (error). Resolves when it is healthy again.
    AgentOffline {
        /// Only this agent.
        agent: Option<String>,
    },
    /// More than `above` jobs wait, ready, in a queue.
    QueueDepth {
        /// The queue.
        queue: String,
        /// The most jobs that may wait.
        above: u64,
    },
    /// The longest-waiting ready job of a queue has waited more than `above_seconds`.
    QueueAge {
        /// The queue.
        queue: String,
        /// The longest wait allowed, in seconds.
        above_seconds: u32,
    },
    /// More than a share `above` of the runs that ended in the last `window_seconds`
    /// failed, once at least `min_runs` ended.
    FailureRate {
        /// Only runs of this plugin.
        plugin: Option<String>,
        /// Only runs of this queue.
        queue: Option<String>,
        /// The highest share of failed runs allowed, from 0 up to (not including) 1.
        above: f64,
        /// The window, in seconds (at most a day).
        window_seconds: u32,
        /// Runs needed in the window before the share counts [default: 1].
        #[serde(default = "one")]
        #[schema(default = 1)]
        min_runs: u32,
    },
    /// A plugin's module or manifest failed to load. Resolves when it loads (or is
    /// removed).
    PluginLoadFailed {
        /// Only this plugin.
        plugin: Option<String>,
    },
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

/// A webhook's secret: the key its bodies are signed with. It is never shown: its
/// `Debug` hides it and it cannot be serialised.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// A secret from its text, unchecked (see [`AlertSpec::rule`]).
    pub fn new(text: String) -> WebhookSecret {
        WebhookSecret(text)
    }

    /// The secret's text, to sign with or to store.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// Where a rule's incidents are posted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// An `http` or `https` URL.
    pub url: String,
    /// The key bodies are signed with (16 to 256 characters); without one, bodies go
    /// unsigned.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub secret: Option<WebhookSecret>,
}

/// A rule as a client (`PUT /api/alerts/{id}`) or the settings file (`[[alerts]]`)
/// states it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertSpec {
    /// Its id: required in the settings file; in the API the path gives it, and a body
    /// that states one must state the same.
    pub id: Option<String>,
    /// What it watches.
    pub condition: AlertCondition,
    /// Where its incidents are posted, besides the log and the event stream.
    #[serde(default)]
    pub webhook: Option<Webhook>,
    /// Whether it is evaluated [default: true].
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub enabled: bool,
}

/// A checked rule.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    /// Its id: 1 to [`MAX_RULE_ID_CHARS`] characters of `A-Z a-z 0-9 . _ -`.
    pub id: String,
    /// What it watches.
    pub condition: AlertCondition,
    /// Where its incidents are posted.
    pub webhook: Option<Webhook>,
    /// Whether it is evaluated.
    pub enabled: bool,
}

/// One stretch of time a rule's condition held for one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// Its id.
    pub id: IncidentId,
    /// The rule that fired.
    pub rule: String,
    /// What it is about: a job id, an agent id, a queue, a plugin, or the jobs a failure
    /// rate counts.
    pub subject: String,
    /// What was seen when it opened.
    pub summary: String,
    /// When it opened.
    pub opened_at: Millis,
    /// When its condition cleared; `None` while it is open.
    pub resolved_at: Option<Millis>,
}

/// Checks a rule id.
///
/// # Errors
/// The id is empty, too long, has other characters than `A-Z a-z 0-9 . _ -`, or is
/// `incidents`.
pub fn validate_rule_id(id: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if id.is_empty() || id.len() > MAX_RULE_ID_CHARS || !id.chars().all(allowed) {
        return Err(format!(
            "alert rule id `{}` is invalid: use 1 to {MAX_RULE_ID_CHARS} characters of A-Z, a-z, 0-9, `.`, `_` and `-`",
            shown(id)
        ));
    }
    if id == RESERVED_ID {
        return Err(format!("`{RESERVED_ID}` cannot be an alert rule id"));
    }
    Ok(())
}

impl AlertSpec {
    /// The rule `id` this spec states, checked.
    ///
    /// # Errors
    /// The field refused, and why.
    pub fn rule(self, id: &str) -> Result<AlertRule, Invalid> {
        validate_rule_id(id).map_err(Invalid::of("id"))?;
        if let Some(own) = self.id.as_deref().filter(|own| *own != id) {
            return Err(Invalid::of("id")(format!(
                "id `{}` in the body differs from `{id}` in the path",
                shown(own)
            )));
        }
        self.condition.validate()?;
        if let Some(webhook) = &self.webhook {
            webhook.validate()?;
        }
        Ok(AlertRule {
            id: id.to_owned(),
            condition: self.condition,
            webhook: self.webhook,
            enabled: self.enabled,
        })
    }
}

impl AlertCondition {
    /// The kind's name, as clients write it.
    pub fn kind(&self) -> &'static str {
        match self {
            AlertCondition::JobFailed { .. } => "job_failed",
            AlertCondition::AgentOffline { .. } => "agent_offline",
            AlertCondition::QueueDepth { .. } => "queue_depth",
            AlertCondition::QueueAge { .. } => "queue_age",
            AlertCondition::FailureRate { .. } => "failure_rate",
            AlertCondition::PluginLoadFailed { .. } => "plugin_load_failed",
        }
    }

    /// Checks names, thresholds and windows.
    ///
    /// # Errors
    /// The field refused (`condition.queue`, `condition.above`…), and why.
    pub fn validate(&self) -> Result<(), Invalid> {
        match self {
            AlertCondition::JobFailed { plugin, queue } => {
                check_plugin(plugin.as_deref())?;
                check_queue(queue.as_deref())
            }
            AlertCondition::AgentOffline { agent } => match agent {
                Some(agent) => validate_agent_id(agent).map_err(Invalid::of("condition.agent")),
                None => Ok(()),
            },
            AlertCondition::QueueDepth { queue, .. } | AlertCondition::QueueAge { queue, .. } => {
                check_queue(Some(queue))
            }
            AlertCondition::FailureRate {
                plugin,
                queue,
                above,
                window_seconds,
                min_runs,
            } => {
                check_plugin(plugin.as_deref())?;
                check_queue(queue.as_deref())?;
                if !(0.0..1.0).contains(above) {
                    return Err(Invalid::of("condition.above")(format!(
                        "above is a share of runs: at least 0 and below 1, got {above}"
                    )));
                }
                if !(1..=MAX_WINDOW_SECONDS).contains(window_seconds) {
                    return Err(Invalid::of("condition.window_seconds")(format!(
                        "window_seconds must be between 1 and {MAX_WINDOW_SECONDS}, got {window_seconds}"
                    )));
                }
                if !(1..=MAX_MIN_RUNS).contains(min_runs) {
                    return Err(Invalid::of("condition.min_runs")(format!(
                        "min_runs must be between 1 and {MAX_MIN_RUNS}, got {min_runs}"
                    )));
                }
                Ok(())
            }
            AlertCondition::PluginLoadFailed { plugin } => check_plugin(plugin.as_deref()),
        }
    }
}

fn check_plugin(plugin: Option<&str>) -> Result<(), Invalid> {
    match plugin {
        Some(plugin) => check_length("plugin", plugin).map_err(Invalid::of("condition.plugin")),
        None => Ok(()),
    }
}

fn check_queue(queue: Option<&str>) -> Result<(), Invalid> {
    match queue {
        Some(queue) => validate_queue_name(queue).map_err(Invalid::of("condition.queue")),
        None => Ok(()),
    }
}

impl Webhook {
    /// Checks the URL (`http` or `https`, with a host, no credentials, no spaces, at
    /// most [`MAX_URL_CHARS`]) and the secret's length.
    ///
    /// # Errors
    /// `webhook.url` or `webhook.secret` refused, and why.
    pub fn validate(&self) -> Result<(), Invalid> {
        check_url(&self.url).map_err(Invalid::of("webhook.url"))?;
        if let Some(secret) = &self.secret {
            let chars = secret.expose().chars().count();
            if !(MIN_SECRET_CHARS..=MAX_SECRET_CHARS).contains(&chars) {
                return Err(Invalid::of("webhook.secret")(format!(
                    "the secret must have {MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} characters, got {chars}"
                )));
            }
            if secret.expose().chars().any(char::is_control) {
                return Err(Invalid::of("webhook.secret")(
                    "the secret must not contain control characters".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Checks a webhook URL.
fn check_url(url: &str) -> Result<(), String> {
    let chars = url.chars().count();
    if chars == 0 || chars > MAX_URL_CHARS {
        return Err(format!(
            "the URL must have 1 to {MAX_URL_CHARS} characters, got {chars}"
        ));
    }
    if !url.chars().all(|c| c.is_ascii_graphic()) {
        return Err("the URL must be ASCII without spaces (percent-encode the rest)".into());
    }
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("`{}` is not a URL: {e}", shown(url)))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(format!("`{}` must be an http or https URL", shown(url)));
    }
    let Some(authority) = uri.authority() else {
        return Err(format!("`{}` names no host", shown(url)));
    };
    if authority.as_str().contains('@') {
        return Err("the URL must not carry credentials: sign with the secret instead".into());
    }
    if authority.host().is_empty() {
        return Err(format!("`{}` names no host", shown(url)));
    }
    Ok(())
}

/// The `X-Orchestra-Signature` value of `body` signed with `secret`:
/// `sha256=` and the lowercase hex HMAC-SHA256 of the body's bytes.
pub fn signature(secret: &WebhookSecret, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(condition: serde_json::Value) -> AlertSpec {
        serde_json::from_value(json!({
            "condition": condition,
            "webhook": {"url": "https://example.com/hook?token=t", "secret": "0123456789abcdef"}
        }))
        .expect("a well-formed spec")
    }

    fn refused(spec: AlertSpec) -> Invalid {
        spec.rule("r").expect_err("a refusal")
    }

    #[test]
    fn a_valid_rule_takes_its_defaults() {
        let rule = spec(json!({"kind": "failure_rate", "above": 0.5, "window_seconds": 60}))
            .rule("errors")
            .unwrap();
        assert!(rule.enabled);
        assert_eq!(
            rule.condition,
            AlertCondition::FailureRate {
                plugin: None,
                queue: None,
                above: 0.5,
                window_seconds: 60,
                min_runs: 1
            }
        );
        assert_eq!(
            rule.webhook.unwrap().url,
            "https://example.com/hook?token=t"
        );
    }

    #[test]
    fn each_refusal_names_its_field() {
        let cases = [
            (
                json!({"kind": "job_failed", "plugin": ""}),
                "condition.plugin",
            ),
            (
                json!({"kind": "job_failed", "queue": "Bad!"}),
                "condition.queue",
            ),
            (
                json!({"kind": "agent_offline", "agent": "A B"}),
                "condition.agent",
            ),
            (
                json!({"kind": "queue_depth", "queue": "", "above": 1}),
                "condition.queue",
            ),
            (
                json!({"kind": "queue_age", "queue": "x".repeat(65), "above_seconds": 1}),
                "condition.queue",
            ),
            (
                json!({"kind": "failure_rate", "above": 1.0, "window_seconds": 60}),
                "condition.above",
            ),
            (
                json!({"kind": "failure_rate", "above": -0.1, "window_seconds": 60}),
                "condition.above",
            ),
            (
                json!({"kind": "failure_rate", "above": 0.5, "window_seconds": 0}),
                "condition.window_seconds",
            ),
            (
                json!({"kind": "failure_rate", "above": 0.5, "window_seconds": 86_401}),
                "condition.window_seconds",
            ),
            (
                json!({"kind": "failure_rate", "above": 0.5, "window_seconds": 60, "min_runs": 0}),
                "condition.min_runs",
            ),
            (
                json!({"kind": "plugin_load_failed", "plugin": "p".repeat(201)}),
                "condition.plugin",
            ),
        ];
        for (condition, field) in cases {
            assert_eq!(refused(spec(condition.clone())).field, field, "{condition}");
        }
    }

    #[test]
    fn ids_are_checked_and_must_match_the_path() {
        let ok = || spec(json!({"kind": "agent_offline"}));
        for id in ["a b", "", "incidents", &"x".repeat(MAX_RULE_ID_CHARS + 1)] {
            let refusal = ok().rule(id).unwrap_err();
            assert_eq!(refusal.field, "id", "{id}");
        }
        let other = AlertSpec {
            id: Some("other".into()),
            ..ok()
        };
        assert!(other.rule("r").unwrap_err().message.contains("differs"));
        let same = AlertSpec {
            id: Some("r".into()),
            ..ok()
        };
        assert_eq!(same.rule("r").unwrap().id, "r");
    }

    #[test]
    fn webhooks_are_http_with_a_host_and_a_secret_of_fair_length() {
        let with = |url: &str, secret: Option<&str>| AlertSpec {
            webhook: Some(Webhook {
                url: url.into(),
                secret: secret.map(|s| WebhookSecret::new(s.into())),
            }),
            ..spec(json!({"kind": "agent_offline"}))
        };
        let field = |spec: AlertSpec| refused(spec).field;
        assert!(with("http://127.0.0.1:9/x", None).rule("r").is_ok());
        for url in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "example.com/hook",
            "http://",
            "https://user:pw@example.com/",
            "https://exa mple.com/",
            "https://example.com/ä",
            &format!("https://example.com/{}", "x".repeat(MAX_URL_CHARS)),
        ] {
            assert_eq!(field(with(url, None)), "webhook.url", "{url}");
        }
        let url = "https://example.com/";
        assert_eq!(field(with(url, Some("short"))), "webhook.secret");
        assert_eq!(
            field(with(url, Some(&"s".repeat(MAX_SECRET_CHARS + 1)))),
            "webhook.secret"
        );
        assert_eq!(
            field(with(url, Some("0123456789abcdef\n"))),
            "webhook.secret"
        );
    }

    #[test]
    fn unknown_kinds_and_fields_are_refused() {
        let parse = |value: serde_json::Value| serde_json::from_value::<AlertSpec>(value);
        assert!(parse(json!({"condition": {"kind": "disk_full"}})).is_err());
        assert!(parse(json!({"condition": {"kind": "agent_offline", "agnet": "a"}})).is_err());
        assert!(parse(json!({"condition": {"kind": "queue_depth", "queue": "q"}})).is_err());
        assert!(
            parse(json!({"condition": {"kind": "agent_offline"}, "webhook": {"url": "http://x", "sekret": "y"}}))
                .is_err()
        );
    }

    #[test]
    fn the_secret_is_never_shown() {
        let secret = WebhookSecret::new("0123456789abcdef-very-secret".into());
        assert!(!format!("{secret:?}").contains("very-secret"));
    }

    #[test]
    fn signatures_are_hmac_sha256_as_rfc_4231_gives_them() {
        // RFC 4231, test case 2: key "Jefe".
        let secret = WebhookSecret::new("Jefe".into());
        assert_eq!(
            signature(&secret, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(
            signature(&secret, b"what do ya want for nothing!"),
            signature(&secret, b"what do ya want for nothing?")
        );
    }
}
