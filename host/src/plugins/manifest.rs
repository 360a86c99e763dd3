//! A plugin's settings: a manifest embedded in its module, then `NAME.toml` beside it.
//!
//! Both are TOML of the same form, every field optional. The embedded manifest is a
//! custom section named [`SECTION`] in the component (or in a core module nested in it),
//! so a plugin can carry its own defaults; a field set in `NAME.toml` overrides the same
//! field of the embedded manifest, and the host's defaults fill the rest.
//!
//! ```toml
//! fuel = 5000000000             # instructions per run
//! timeout_ms = 60000            # wall clock per run
//! memory_mb = 128               # linear memory per instance
//! result_mb = 1                 # longest result (JSON text) per run
//! log_mb = 4                    # log bytes per run (stdout, stderr, log calls)
//! disk_quota_mb = 1024          # bytes written under /repo per run
//! max_attempts = 5              # default for jobs that do not say
//! retry_delays_seconds = [10, 60, 300]   # else polynomial backoff with jitter
//! queue = "long-running"        # default queue for its jobs
//! allowed_outbound_hosts = ["https://api.example.com", "http://127.0.0.1:8080"]
//! ```
//!
//! The result is then held to the operator's [`Maxima`]: a limit above its maximum is
//! lowered to it, and the settings say which were; of `allowed_outbound_hosts` (none by
//! default), a run may reach only what the operator's list of the same name allows too,
//! and the settings name the patterns it cuts.

use crate::model::DEFAULT_QUEUE;
use crate::model::limits::MAX_MEMORY_BYTES;
use crate::model::limits::{Limits, Maxima};
use crate::model::outbound;
use crate::model::retry::RetryPolicy;
use crate::model::rules::{DEFAULT_MAX_ATTEMPTS, validate_max_attempts, validate_queue_name};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The name of the custom section that holds a module's embedded manifest.
pub const SECTION: &str = "orchestra-manifest";

/// Largest `result_mb`, `log_mb` or `disk_quota_mb` a manifest may name (1 TiB).
const MAX_SIZE_MB: u64 = 1 << 20;

/// What a manifest says; every field is optional.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    fuel: Option<u64>,
    timeout_ms: Option<u64>,
    memory_mb: Option<u64>,
    result_mb: Option<u64>,
    log_mb: Option<u64>,
    disk_quota_mb: Option<u64>,
    max_attempts: Option<u32>,
    retry_delays_seconds: Option<Vec<u64>>,
    queue: Option<String>,
    allowed_outbound_hosts: Option<Vec<String>>,
}

/// A limit a plugin asked for above the operator's maximum, which it gets instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Clamp {
    /// The manifest field.
    pub field: &'static str,
    /// What the plugin asked for (or the host's default, when that is above).
    pub asked: u64,
    /// What it gets: the maximum.
    pub max: u64,
}

/// A plugin's effective settings: its manifest over the host's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Limits for each run.
    pub limits: Limits,
    /// Attempts for jobs that do not say.
    pub max_attempts: u32,
    /// When failed attempts are retried.
    pub retry: RetryPolicy,
    /// Queue for jobs that do not say.
    pub queue: String,
    /// The limits lowered to the operator's maxima.
    pub clamped: Vec<Clamp>,
    /// The plugin's `allowed_outbound_hosts` patterns that the operator's list does not
    /// allow whole.
    pub outbound_refused: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry: RetryPolicy::default(),
            queue: DEFAULT_QUEUE.to_owned(),
            clamped: Vec::new(),
            outbound_refused: Vec::new(),
        }
    }
}

impl Settings {
    /// These settings with every limit above its maximum lowered to it, and noted in
    /// [`Settings::clamped`].
    pub fn clamped_to(mut self, max: &Maxima) -> Settings {
        let mut clamps = Vec::new();
        let mut cap = |field, asked: u64, max: u64| {
            if asked > max {
                clamps.push(Clamp { field, asked, max });
                max
            } else {
                asked
            }
        };
        let limits = &mut self.limits;
        limits.fuel = cap("fuel", limits.fuel, max.fuel);
        let timeout_ms = u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX);
        limits.timeout = Duration::from_millis(cap("timeout_ms", timeout_ms, max.timeout_ms));
        limits.memory_bytes = mib(cap("memory_mb", mb(limits.memory_bytes), max.memory_mb));
        limits.result_bytes = mib(cap("result_mb", mb(limits.result_bytes), max.result_mb));
        limits.log_bytes = mib(cap("log_mb", mb(limits.log_bytes), max.log_mb));
        let disk_mb = limits.disk_quota_bytes >> 20;
        limits.disk_quota_bytes = cap("disk_quota_mb", disk_mb, max.disk_quota_mb) << 20;
        let attempts = cap(
            "max_attempts",
            self.max_attempts.into(),
            max.max_attempts.into(),
        );
        self.max_attempts = u32::try_from(attempts).unwrap_or(max.max_attempts);
        self.clamped = clamps;
        let (allowed, refused) = outbound::capped(&limits.outbound_hosts, &max.outbound_hosts);
        self.limits.outbound_hosts = allowed;
        self.outbound_refused = refused;
        self
    }
}

/// Bytes in whole MiB.
fn mb(bytes: usize) -> u64 {
    (bytes >> 20) as u64
}

/// MiB in bytes.
fn mib(mb: u64) -> usize {
    usize::try_from(mb << 20).unwrap_or(usize::MAX)
}

/// Checks a size in MiB given for `field`.
fn size_mb(field: &str, mb: u64) -> Result<u64, String> {
    if (1..=MAX_SIZE_MB).contains(&mb) {
        Ok(mb)
    } else {
        Err(format!(
            "{field} must be between 1 and {MAX_SIZE_MB}, got {mb}"
        ))
    }
}

impl Manifest {
    /// Parses and validates one manifest's text.
    ///
    /// # Errors
    /// A message naming the field that is wrong.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| e.to_string())?;
        manifest.settings()?;
        Ok(manifest)
    }

    /// This manifest with every field that `over` sets taken from `over`.
    pub fn overridden_by(self, over: Manifest) -> Manifest {
        Manifest {
            fuel: over.fuel.or(self.fuel),
            timeout_ms: over.timeout_ms.or(self.timeout_ms),
            memory_mb: over.memory_mb.or(self.memory_mb),
            result_mb: over.result_mb.or(self.result_mb),
            log_mb: over.log_mb.or(self.log_mb),
            disk_quota_mb: over.disk_quota_mb.or(self.disk_quota_mb),
            max_attempts: over.max_attempts.or(self.max_attempts),
            retry_delays_seconds: over.retry_delays_seconds.or(self.retry_delays_seconds),
            queue: over.queue.or(self.queue),
            allowed_outbound_hosts: over.allowed_outbound_hosts.or(self.allowed_outbound_hosts),
        }
    }

    /// The settings this manifest gives: the host's defaults where it is silent.
    ///
    /// # Errors
    /// A message naming the field that is wrong.
    pub fn settings(&self) -> Result<Settings, String> {
        let mut settings = Settings::default();
        if let Some(fuel) = self.fuel {
            if fuel == 0 {
                return Err("fuel must be greater than 0".into());
            }
            settings.limits.fuel = fuel;
        }
        if let Some(ms) = self.timeout_ms {
            if ms == 0 {
                return Err("timeout_ms must be greater than 0".into());
            }
            settings.limits.timeout = Duration::from_millis(ms);
        }
        if let Some(mb) = self.memory_mb {
            let max_mb = (MAX_MEMORY_BYTES >> 20) as u64;
            if mb == 0 || mb > max_mb {
                return Err(format!(
                    "memory_mb must be between 1 and {max_mb}, got {mb}"
                ));
            }
            settings.limits.memory_bytes = (mb as usize) << 20;
        }
        if let Some(mb) = self.result_mb {
            settings.limits.result_bytes = mib(size_mb("result_mb", mb)?);
        }
        if let Some(mb) = self.log_mb {
            settings.limits.log_bytes = mib(size_mb("log_mb", mb)?);
        }
        if let Some(mb) = self.disk_quota_mb {
            settings.limits.disk_quota_bytes = size_mb("disk_quota_mb", mb)? << 20;
        }
        if let Some(attempts) = self.max_attempts {
            settings.max_attempts = validate_max_attempts(attempts)?;
        }
        if let Some(delays) = &self.retry_delays_seconds {
            if delays.is_empty() {
                return Err("retry_delays_seconds must not be empty".into());
            }
            settings.retry = RetryPolicy::Delays(delays.clone());
        }
        if let Some(queue) = &self.queue {
            validate_queue_name(queue)?;
            settings.queue = queue.clone();
        }
        if let Some(hosts) = &self.allowed_outbound_hosts {
            settings.limits.outbound_hosts = outbound::parse_all("allowed_outbound_hosts", hosts)?;
        }
        Ok(settings)
    }
}

/// Parses and validates a manifest's text into settings.
///
/// # Errors
/// A message naming the field that is wrong.
pub fn parse(text: &str) -> Result<Settings, String> {
    Manifest::parse(text)?.settings()
}

/// The text of the manifest embedded in a module, if it has one.
///
/// Every custom section named [`SECTION`] counts, at any depth of nesting; there may be
/// at most one. Bytes that do not parse as WebAssembly give `Ok(None)`: compiling the
/// module reports what is wrong with them.
///
/// # Errors
/// More than one manifest section, or one that is not UTF-8.
pub fn embedded(module: &[u8]) -> Result<Option<String>, String> {
    let mut found = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        match payload {
            Ok(wasmparser::Payload::CustomSection(section)) if section.name() == SECTION => {
                found.push(section.data());
            }
            Ok(_) => {}
            Err(_) => return Ok(None),
        }
    }
    match found[..] {
        [] => Ok(None),
        [data] => String::from_utf8(data.to_vec())
            .map(Some)
            .map_err(|e| format!("the `{SECTION}` section is not UTF-8: {e}")),
        _ => Err(format!(
            "{} `{SECTION}` sections found; a module may embed one manifest",
            found.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_manifest_gives_the_defaults() {
        assert_eq!(parse("").unwrap(), Settings::default());
    }

    #[test]
    fn every_field_is_applied() {
        let settings = parse(
            "fuel = 1000\ntimeout_ms = 250\nmemory_mb = 32\nmax_attempts = 5\n\
             retry_delays_seconds = [1, 2]\nqueue = \"long-running\"\nresult_mb = 2\n\
             log_mb = 3\ndisk_quota_mb = 5\n",
        )
        .unwrap();
        assert_eq!(settings.limits.result_bytes, 2 << 20);
        assert_eq!(settings.limits.log_bytes, 3 << 20);
        assert_eq!(settings.limits.disk_quota_bytes, 5 << 20);
        assert_eq!(settings.limits.fuel, 1000);
        assert_eq!(settings.limits.timeout, Duration::from_millis(250));
        assert_eq!(settings.limits.memory_bytes, 32 << 20);
        assert_eq!(settings.max_attempts, 5);
        assert_eq!(settings.retry, RetryPolicy::Delays(vec![1, 2]));
        assert_eq!(settings.queue, "long-running");
    }

    #[test]
    fn bad_manifests_say_what_is_wrong() {
        for (text, expected) in [
            ("fuel = 0", "fuel"),
            ("timeout_ms = 0", "timeout_ms"),
            ("memory_mb = 0", "memory_mb"),
            ("memory_mb = 999999", "memory_mb"),
            ("result_mb = 0", "result_mb"),
            ("log_mb = 0", "log_mb"),
            ("disk_quota_mb = 99999999", "disk_quota_mb"),
            ("max_attempts = 0", "max_attempts"),
            ("retry_delays_seconds = []", "retry_delays_seconds"),
            ("queue = \"Bad Queue\"", "queue name"),
            ("fuell = 5", "fuell"),
            ("fuel = \"lots\"", "fuel"),
            ("not toml at all", ""),
        ] {
            let error = parse(text).expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn a_file_overrides_the_embedded_manifest_field_by_field() {
        let embedded =
            Manifest::parse("max_attempts = 3\nretry_delays_seconds = [60]\ntimeout_ms = 60000")
                .unwrap();
        let file = Manifest::parse("timeout_ms = 5000\nqueue = \"agents\"").unwrap();
        let settings = embedded.overridden_by(file).settings().unwrap();
        assert_eq!(settings.max_attempts, 3, "kept from the embedded manifest");
        assert_eq!(settings.retry, RetryPolicy::Delays(vec![60]));
        assert_eq!(
            settings.limits.timeout,
            Duration::from_millis(5000),
            "overridden"
        );
        assert_eq!(settings.queue, "agents", "added by the file");
        assert_eq!(
            settings.limits.fuel,
            Settings::default().limits.fuel,
            "default"
        );
    }

    #[test]
    fn limits_above_the_maxima_are_lowered_and_noted() {
        let asked = parse("fuel = 5000\ntimeout_ms = 9000\nmemory_mb = 64\nlog_mb = 2").unwrap();
        let max = Maxima {
            fuel: 1000,
            timeout_ms: 9000,
            memory_mb: 32,
            max_attempts: 2,
            result_mb: 1,
            log_mb: 1,
            disk_quota_mb: 100,
            outbound_hosts: Vec::new(),
        };
        let settings = asked.clamped_to(&max);
        assert_eq!(settings.limits.fuel, 1000);
        assert_eq!(
            settings.limits.timeout,
            Duration::from_millis(9000),
            "at the max"
        );
        assert_eq!(settings.limits.memory_bytes, 32 << 20);
        assert_eq!(settings.limits.log_bytes, 1 << 20);
        assert_eq!(settings.limits.result_bytes, 1 << 20, "the default fits");
        assert_eq!(
            settings.limits.disk_quota_bytes,
            100 << 20,
            "the default is above"
        );
        assert_eq!(settings.max_attempts, 2);
        let fields: Vec<_> = settings
            .clamped
            .iter()
            .map(|c| (c.field, c.asked, c.max))
            .collect();
        assert_eq!(
            fields,
            [
                ("fuel", 5000, 1000),
                ("memory_mb", 64, 32),
                ("log_mb", 2, 1),
                ("disk_quota_mb", 1024, 100),
                ("max_attempts", 3, 2),
            ]
        );
        let within = parse("fuel = 10").unwrap().clamped_to(&Maxima::default());
        assert!(within.clamped.is_empty(), "{:?}", within.clamped);
    }

    #[test]
    fn outbound_hosts_are_parsed_and_capped_by_the_operators() {
        let asked = parse(
            "allowed_outbound_hosts = [\"http://127.0.0.1:8080\", \"https://api.example.com\"]",
        )
        .unwrap();
        assert_eq!(asked.limits.outbound_hosts.len(), 2);
        let max = Maxima {
            outbound_hosts: outbound::parse_all("x", &["http://127.0.0.1:8080".into()]).unwrap(),
            ..Maxima::default()
        };
        let settings = asked.clamped_to(&max);
        let allowed: Vec<String> = settings
            .limits
            .outbound_hosts
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(allowed, ["http://127.0.0.1:8080"]);
        assert_eq!(settings.outbound_refused, ["https://api.example.com:443"]);
        let error = parse("allowed_outbound_hosts = [\"api.example.com\"]").unwrap_err();
        assert!(error.contains("allowed_outbound_hosts"), "{error}");
        assert_eq!(Settings::default().limits.outbound_hosts, []);
    }

    #[test]
    fn an_empty_file_keeps_the_embedded_manifest() {
        let embedded = Manifest::parse("max_attempts = 7").unwrap();
        let merged = embedded.clone().overridden_by(Manifest::default());
        assert_eq!(merged, embedded);
        assert_eq!(merged.settings().unwrap().max_attempts, 7);
    }

    /// A section: its id, then its length-prefixed content.
    fn section(id: u8, content: &[u8]) -> Vec<u8> {
        let mut bytes = vec![id];
        leb128(&mut bytes, content.len());
        bytes.extend_from_slice(content);
        bytes
    }

    fn leb128(bytes: &mut Vec<u8>, mut n: usize) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                bytes.push(byte);
                return;
            }
            bytes.push(byte | 0x80);
        }
    }

    fn custom_section(name: &str, data: &[u8]) -> Vec<u8> {
        let mut content = Vec::new();
        leb128(&mut content, name.len());
        content.extend_from_slice(name.as_bytes());
        content.extend_from_slice(data);
        section(0, &content)
    }

    const CORE_HEADER: &[u8] = b"\0asm\x01\0\0\0";
    const COMPONENT_HEADER: &[u8] = b"\0asm\x0d\0\x01\0";

    /// A component holding one core module with these custom sections.
    fn component_with_module(sections: &[Vec<u8>]) -> Vec<u8> {
        let module = [CORE_HEADER.to_vec(), sections.concat()].concat();
        [COMPONENT_HEADER.to_vec(), section(1, &module)].concat()
    }

    #[test]
    fn an_embedded_manifest_is_found_in_a_nested_module() {
        let component = component_with_module(&[
            custom_section("other", b"ignored"),
            custom_section(SECTION, b"max_attempts = 3\n"),
        ]);
        assert_eq!(
            embedded(&component).unwrap().as_deref(),
            Some("max_attempts = 3\n")
        );
        let top_level = [CORE_HEADER, &custom_section(SECTION, b"fuel = 1")].concat();
        assert_eq!(embedded(&top_level).unwrap().as_deref(), Some("fuel = 1"));
    }

    #[test]
    fn modules_without_one_or_not_wasm_have_no_embedded_manifest() {
        assert_eq!(embedded(&component_with_module(&[])).unwrap(), None);
        assert_eq!(embedded(b"not wasm at all").unwrap(), None);
    }

    #[test]
    fn two_manifests_or_one_not_utf8_are_refused() {
        let twice = component_with_module(&[
            custom_section(SECTION, b"fuel = 1"),
            custom_section(SECTION, b"fuel = 2"),
        ]);
        assert!(
            embedded(&twice)
                .unwrap_err()
                .contains("2 `orchestra-manifest`")
        );
        let binary = component_with_module(&[custom_section(SECTION, b"\xff\xfe")]);
        assert!(embedded(&binary).unwrap_err().contains("UTF-8"));
    }

    /// The example plugin's manifest survives its build (LTO and stripping).
    #[test]
    fn the_task_execution_module_embeds_its_manifest() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/wasm32-wasip2/plugin/task_execution.wasm");
        let module = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; build the plugins first: cargo plugins",
                path.display()
            )
        });
        let text = embedded(&module).unwrap().expect("an embedded manifest");
        let settings = parse(&text).unwrap();
        assert_eq!(settings.max_attempts, 3);
        assert_eq!(settings.retry, RetryPolicy::Delays(vec![60]));
        assert_eq!(settings.limits.timeout, Duration::from_secs(60));
    }
}
