//! Host settings from flags, `ORCHESTRA_*` environment variables and an optional TOML
//! file, in that order of precedence, over built-in defaults. Validated once.

use crate::cron::Schedule;
use crate::engine::DEFAULT_QUEUES;
use crate::engine::Retention;
use crate::engine::agents::AgentSettings;
use crate::engine::recurring::RecurringSpec;
use crate::model::agent::AgentSpec;
use crate::model::alert::AlertSpec;
use crate::model::limits::MAX_MEMORY_BYTES;
use crate::model::limits::Maxima;
use crate::model::outbound;
use crate::model::rules::{MAX_ATTEMPTS_LIMIT, validate_queue_name};
use crate::store::Durability;
use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `orchestra serve` flags; each also reads `ORCHESTRA_<NAME>`.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Address the HTTP API listens on [default: 127.0.0.1:7070].
    #[arg(long, env = "ORCHESTRA_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// SQLite database file [default: orchestra.db], or a PostgreSQL URL
    /// (`postgres://…`) that several hosts share.
    #[arg(long, env = "ORCHESTRA_DB")]
    pub db: Option<PathBuf>,
    /// Also serve `/metrics`, without a token, on this address (for a Prometheus that
    /// scrapes from inside the operator's network).
    #[arg(long, env = "ORCHESTRA_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Serve the API without tokens; accepted only on a loopback address.
    #[arg(long, env = "ORCHESTRA_NO_AUTH")]
    pub no_auth: bool,
    /// A name clients may reach this host by, besides its address and `localhost`
    /// (repeatable): requests naming any other host are refused.
    #[arg(
        long = "allowed-host",
        env = "ORCHESTRA_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Option<Vec<String>>,
    /// Plugin folder: NAME.wasm (+ optional NAME.toml) per plugin [default: plugins].
    #[arg(long, env = "ORCHESTRA_PLUGINS")]
    pub plugins: Option<PathBuf>,
    /// Folder for compiled plugins [default: orchestra-cache beside the database].
    #[arg(long, env = "ORCHESTRA_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Jobs run at once [default: 2 × CPUs].
    #[arg(long, env = "ORCHESTRA_WORKERS")]
    pub workers: Option<usize>,
    /// Queues served, in order of precedence, comma-separated
    /// [default: high-priority,default,long-running,maintenance].
    #[arg(long, env = "ORCHESTRA_QUEUES", value_delimiter = ',')]
    pub queues: Option<Vec<String>>,
    /// A directory under which job repositories may lie (repeatable).
    #[arg(
        long = "repo-root",
        env = "ORCHESTRA_REPO_ROOTS",
        value_delimiter = ','
    )]
    pub repo_roots: Option<Vec<PathBuf>>,
    /// This host's name on job leases, followed by an id of each start's own
    /// [default: HOSTNAME:PORT].
    #[arg(long, env = "ORCHESTRA_HOST_ID")]
    pub host_id: Option<String>,
    /// Seconds a job lease lasts without renewal [default: 30].
    #[arg(long, env = "ORCHESTRA_LEASE_SECONDS")]
    pub lease_seconds: Option<u64>,
    /// Seconds running jobs get to finish at shutdown [default: 30].
    #[arg(long, env = "ORCHESTRA_GRACE_SECONDS")]
    pub grace_seconds: Option<u64>,
    /// Days succeeded jobs are kept [default: 7].
    #[arg(long, env = "ORCHESTRA_RETAIN_SUCCEEDED_DAYS")]
    pub retain_succeeded_days: Option<f64>,
    /// Days failed and cancelled jobs are kept [default: 30].
    #[arg(long, env = "ORCHESTRA_RETAIN_FAILED_DAYS")]
    pub retain_failed_days: Option<f64>,
    /// SQLite durability: `normal` survives a killed process, `full` also power loss.
    #[arg(long, env = "ORCHESTRA_SYNC", value_enum)]
    pub sync: Option<Durability>,
    /// When agents' health is checked: a cron expression (5 or 6 fields, UTC)
    /// [default: every minute, `0 * * * * *`].
    #[arg(long, env = "ORCHESTRA_AGENT_HEALTH_SCHEDULE")]
    pub agent_health_schedule: Option<String>,
    /// Health checks an agent may miss in a row before it is offline [default: 3].
    #[arg(long, env = "ORCHESTRA_AGENT_HEALTH_MISSES")]
    pub agent_health_misses: Option<u32>,
    /// Seconds a job holds its agent without renewal [default: 1500].
    #[arg(long, env = "ORCHESTRA_AGENT_LOCK_SECONDS")]
    pub agent_lock_seconds: Option<u64>,
    /// Most fuel a plugin may ask for per run [default: 1000000000000].
    #[arg(long, env = "ORCHESTRA_MAX_FUEL")]
    pub max_fuel: Option<u64>,
    /// Longest run time a plugin may ask for, in ms (at most 30 days) [default: 3600000].
    #[arg(long, env = "ORCHESTRA_MAX_TIMEOUT_MS")]
    pub max_timeout_ms: Option<u64>,
    /// Most linear memory a plugin may ask for, in MiB [default and at most: 4096].
    #[arg(long, env = "ORCHESTRA_MAX_MEMORY_MB")]
    pub max_memory_mb: Option<u64>,
    /// Most attempts a plugin may give its jobs by default [default: 25].
    #[arg(long, env = "ORCHESTRA_MAX_ATTEMPTS")]
    pub max_attempts: Option<u32>,
    /// Longest result a plugin may ask for, in MiB [default: 16].
    #[arg(long, env = "ORCHESTRA_MAX_RESULT_MB")]
    pub max_result_mb: Option<u64>,
    /// Most log per run a plugin may ask for, in MiB [default: 64].
    #[arg(long, env = "ORCHESTRA_MAX_LOG_MB")]
    pub max_log_mb: Option<u64>,
    /// Most bytes per run a plugin may ask to write under /repo, in MiB [default: 1024].
    #[arg(long, env = "ORCHESTRA_MAX_DISK_QUOTA_MB")]
    pub max_disk_quota_mb: Option<u64>,
    /// Hosts plugins may send HTTP requests to, at most: scheme://host[:port] patterns
    /// (`*.example.com`, `*`), comma-separated; a plugin reaches only those of its own
    /// `allowed_outbound_hosts` these allow too [default: none].
    #[arg(
        long = "allowed-outbound-host",
        env = "ORCHESTRA_ALLOWED_OUTBOUND_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_outbound_hosts: Option<Vec<String>>,
    /// Settings file (TOML with the same names, snake_case).
    #[arg(long, env = "ORCHESTRA_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The settings file: the same settings as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    db: Option<PathBuf>,
    no_auth: Option<bool>,
    allowed_hosts: Option<Vec<String>>,
    allowed_outbound_hosts: Option<Vec<String>>,
    metrics_listen: Option<SocketAddr>,
    plugins: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    workers: Option<usize>,
    queues: Option<Vec<String>>,
    repo_roots: Option<Vec<PathBuf>>,
    host_id: Option<String>,
    lease_seconds: Option<u64>,
    grace_seconds: Option<u64>,
    retain_succeeded_days: Option<f64>,
    retain_failed_days: Option<f64>,
    sync: Option<Durability>,
    agent_health_schedule: Option<String>,
    agent_health_misses: Option<u32>,
    agent_lock_seconds: Option<u64>,
    max_fuel: Option<u64>,
    max_timeout_ms: Option<u64>,
    max_memory_mb: Option<u64>,
    max_attempts: Option<u32>,
    max_result_mb: Option<u64>,
    max_log_mb: Option<u64>,
    max_disk_quota_mb: Option<u64>,
    /// `[[recurring]]` tables: only the file declares recurring jobs.
    #[serde(default)]
    recurring: Vec<RecurringSpec>,
    /// `[[agents]]` tables: agents registered at start.
    #[serde(default)]
    agents: Vec<AgentSpec>,
    /// `[[alerts]]` tables: alert rules stored at start.
    #[serde(default)]
    alerts: Vec<AlertSpec>,
}

/// Validated host settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// Whether the API asks for tokens (off only with `--no-auth`, on loopback).
    pub auth: bool,
    /// Where `/metrics` is also served, without a token.
    pub metrics_listen: Option<SocketAddr>,
    /// Names clients may reach this host by, besides its address and `localhost`.
    pub allowed_hosts: Vec<String>,
    /// SQLite database file, or PostgreSQL URL (see [`crate::store::open`]).
    pub db: PathBuf,
    /// Plugin folder.
    pub plugins: PathBuf,
    /// Compiled-plugin cache folder.
    pub cache_dir: PathBuf,
    /// Jobs run at once.
    pub workers: usize,
    /// Queues served, in order of precedence.
    pub queues: Vec<String>,
    /// Canonical allowed repository roots.
    pub repo_roots: Vec<PathBuf>,
    /// The host's name on leases (each start adds an id of its own).
    pub host_id: String,
    /// Lease duration.
    pub lease: Duration,
    /// Shutdown grace period.
    pub grace: Duration,
    /// How long finished jobs are kept.
    pub retention: Retention,
    /// SQLite durability.
    pub durability: Durability,
    /// Recurring jobs the settings file declares, stored at host start (checked then,
    /// against the loaded plugins).
    pub recurring: Vec<RecurringSpec>,
    /// Agent health checks and locks, and the agents the settings file declares.
    pub agents: AgentSettings,
    /// Alert rules the settings file declares, stored at host start (checked then).
    pub alerts: Vec<AlertSpec>,
    /// Ceilings on the limits plugins ask for.
    pub maxima: Maxima,
}

/// A retention in days (fractions allowed, at most ten years), or the default.
fn days(name: &str, value: Option<f64>, default: Duration) -> Result<Duration, String> {
    match value {
        None => Ok(default),
        Some(days) if (0.0..=3650.0).contains(&days) => {
            Ok(Duration::from_secs_f64(days * 86_400.0))
        }
        Some(days) => Err(format!("{name} must be between 0 and 3650, got {days}")),
    }
}

/// The longest run time an operator may allow: 30 days.
const LONGEST_TIMEOUT_MS: u64 = 30 * 24 * 3_600_000;

/// A maximum from the flags or the file, at least 1 and at most `limit`, or the default.
fn maximum<T: Copy + PartialOrd + From<u8> + std::fmt::Display>(
    name: &str,
    value: Option<T>,
    default: T,
    limit: T,
) -> Result<T, String> {
    match value {
        None => Ok(default),
        Some(n) if n >= T::from(1) && n <= limit => Ok(n),
        Some(n) => Err(format!("{name} must be between 1 and {limit}, got {n}")),
    }
}

/// The operator's maxima from the flags over the file over the defaults.
fn maxima(args: &ServeArgs, file: &FileConfig) -> Result<Maxima, String> {
    let default = Maxima::default();
    Ok(Maxima {
        fuel: maximum(
            "max_fuel",
            args.max_fuel.or(file.max_fuel),
            default.fuel,
            u64::MAX,
        )?,
        timeout_ms: maximum(
            "max_timeout_ms",
            args.max_timeout_ms.or(file.max_timeout_ms),
            default.timeout_ms,
            LONGEST_TIMEOUT_MS,
        )?,
        memory_mb: maximum(
            "max_memory_mb",
            args.max_memory_mb.or(file.max_memory_mb),
            default.memory_mb,
            (MAX_MEMORY_BYTES >> 20) as u64,
        )?,
        max_attempts: maximum(
            "max_attempts",
            args.max_attempts.or(file.max_attempts),
            default.max_attempts,
            MAX_ATTEMPTS_LIMIT,
        )?,
        result_mb: maximum(
            "max_result_mb",
            args.max_result_mb.or(file.max_result_mb),
            default.result_mb,
            u64::MAX >> 20,
        )?,
        log_mb: maximum(
            "max_log_mb",
            args.max_log_mb.or(file.max_log_mb),
            default.log_mb,
            u64::MAX >> 20,
        )?,
        disk_quota_mb: maximum(
            "max_disk_quota_mb",
            args.max_disk_quota_mb.or(file.max_disk_quota_mb),
            default.disk_quota_mb,
            u64::MAX >> 20,
        )?,
        outbound_hosts: outbound::parse_all(
            "allowed_outbound_hosts",
            args.allowed_outbound_hosts
                .as_ref()
                .or(file.allowed_outbound_hosts.as_ref())
                .map_or(&[], Vec::as_slice),
        )?,
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

fn default_workers() -> usize {
    2 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Config {
    /// Resolves flags over the settings file over defaults.
    ///
    /// # Errors
    /// A message saying which setting is wrong.
    pub fn resolve(args: ServeArgs) -> Result<Config, String> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let maxima = maxima(&args, &file)?;
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or(([127, 0, 0, 1], 7070).into());
        let no_auth = args.no_auth || file.no_auth.unwrap_or(false);
        if no_auth && !listen.ip().is_loopback() {
            return Err(format!(
                "--no-auth is accepted only on a loopback address, not {listen}: anyone who \
                 reaches the port could run commands through agents"
            ));
        }
        let allowed_hosts = args
            .allowed_hosts
            .or(file.allowed_hosts)
            .unwrap_or_default();
        let db = args.db.or(file.db).unwrap_or_else(|| "orchestra.db".into());
        let cache_dir = args.cache_dir.or(file.cache_dir).unwrap_or_else(|| {
            let beside = db.to_str().is_some_and(|db| !crate::store::is_postgres(db));
            db.parent()
                .filter(|_| beside)
                .unwrap_or(Path::new("."))
                .join("orchestra-cache")
        });
        let queues = args
            .queues
            .or(file.queues)
            .unwrap_or_else(|| DEFAULT_QUEUES.map(String::from).to_vec());
        if queues.is_empty() {
            return Err("queues must name at least one queue".into());
        }
        for queue in &queues {
            validate_queue_name(queue)?;
        }
        let repo_roots = args
            .repo_roots
            .or(file.repo_roots)
            .unwrap_or_default()
            .into_iter()
            .map(|root| {
                std::fs::canonicalize(&root)
                    .map_err(|e| format!("repo root {} cannot be used: {e}", root.display()))
            })
            .collect::<Result<_, _>>()?;
        let lease_seconds = args.lease_seconds.or(file.lease_seconds).unwrap_or(30);
        if lease_seconds == 0 {
            return Err("lease_seconds must be at least 1".into());
        }
        let workers = args
            .workers
            .or(file.workers)
            .unwrap_or_else(default_workers);
        if workers == 0 {
            return Err("workers must be at least 1".into());
        }
        Ok(Config {
            listen,
            auth: !no_auth,
            metrics_listen: args.metrics_listen.or(file.metrics_listen),
            allowed_hosts,
            plugins: args
                .plugins
                .or(file.plugins)
                .unwrap_or_else(|| "plugins".into()),
            cache_dir,
            workers: args
                .workers
                .or(file.workers)
                .unwrap_or_else(default_workers),
            queues,
            repo_roots,
            host_id: args
                .host_id
                .or(file.host_id)
                .unwrap_or_else(|| format!("{}:{}", hostname(), listen.port())),
            lease: Duration::from_secs(lease_seconds),
            grace: Duration::from_secs(args.grace_seconds.or(file.grace_seconds).unwrap_or(30)),
            retention: Retention {
                succeeded: days(
                    "retain_succeeded_days",
                    args.retain_succeeded_days.or(file.retain_succeeded_days),
                    Retention::default().succeeded,
                )?,
                failed: days(
                    "retain_failed_days",
                    args.retain_failed_days.or(file.retain_failed_days),
                    Retention::default().failed,
                )?,
            },
            durability: args.sync.or(file.sync).unwrap_or_default(),
            recurring: file.recurring,
            agents: AgentSettings {
                health_schedule: agent_health_schedule(
                    args.agent_health_schedule.or(file.agent_health_schedule),
                )?,
                health_misses: match args.agent_health_misses.or(file.agent_health_misses) {
                    None => 3,
                    Some(n @ 1..=100) => n,
                    Some(n) => {
                        return Err(format!(
                            "agent_health_misses must be between 1 and 100, got {n}"
                        ));
                    }
                },
                lock: match args.agent_lock_seconds.or(file.agent_lock_seconds) {
                    None => Duration::from_secs(1500),
                    Some(0) => return Err("agent_lock_seconds must be at least 1".into()),
                    Some(n) => Duration::from_secs(n),
                },
                declared: file.agents,
            },
            alerts: file.alerts,
            maxima,
            db,
        })
    }
}

/// The health-check schedule, in UTC.
fn agent_health_schedule(expression: Option<String>) -> Result<Schedule, String> {
    let expression = expression.unwrap_or_else(|| "0 * * * * *".to_owned());
    Schedule::parse(&expression, "UTC").map_err(|e| format!("agent_health_schedule: {e}"))
}

fn read_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("invalid config {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_work_without_any_setting() {
        let config = Config::resolve(ServeArgs::default()).unwrap();
        assert_eq!(config.listen, "127.0.0.1:7070".parse().unwrap());
        assert_eq!(config.db, PathBuf::from("orchestra.db"));
        assert_eq!(config.queues, DEFAULT_QUEUES.map(String::from));
        assert!(config.workers >= 2);
        assert!(config.host_id.ends_with(":7070"));
        assert_eq!(config.durability, Durability::Normal);
        assert_eq!(config.agents.health_misses, 3);
        assert_eq!(config.agents.lock, Duration::from_secs(1500));
        assert_eq!(config.maxima, Maxima::default());
        assert!(config.auth, "tokens are asked for by default");
    }

    #[test]
    fn no_auth_is_accepted_only_on_loopback() {
        let open = |listen: &str| {
            Config::resolve(ServeArgs {
                no_auth: true,
                listen: Some(listen.parse().unwrap()),
                ..ServeArgs::default()
            })
        };
        assert!(!open("127.0.0.1:7070").unwrap().auth);
        assert!(!open("[::1]:7070").unwrap().auth);
        let refused = open("0.0.0.0:7070").unwrap_err();
        assert!(refused.contains("only on a loopback address"), "{refused}");
    }

    #[test]
    fn maxima_come_from_flags_and_file_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("orchestra.toml");
        std::fs::write(
            &file,
            "max_fuel = 5000\nmax_log_mb = 2\nallowed_outbound_hosts = [\"https://*.example.com\"]\n",
        )
        .unwrap();
        let args = ServeArgs {
            max_fuel: Some(7000),
            max_disk_quota_mb: Some(10),
            config: Some(file),
            ..ServeArgs::default()
        };
        let maxima = Config::resolve(args).unwrap().maxima;
        assert_eq!(maxima.fuel, 7000);
        assert_eq!(maxima.log_mb, 2);
        assert_eq!(maxima.disk_quota_mb, 10);
        assert_eq!(maxima.result_mb, Maxima::default().result_mb);
        let outbound: Vec<String> = maxima
            .outbound_hosts
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(outbound, ["https://*.example.com:443"], "from the file");
        let bad_host = Config::resolve(ServeArgs {
            allowed_outbound_hosts: Some(vec!["example.com".into()]),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(
            bad_host.contains("allowed_outbound_hosts: `example.com`"),
            "{bad_host}"
        );
        for bad in [
            ServeArgs {
                max_memory_mb: Some(5000),
                ..ServeArgs::default()
            },
            ServeArgs {
                max_attempts: Some(0),
                ..ServeArgs::default()
            },
            ServeArgs {
                max_timeout_ms: Some(u64::MAX),
                ..ServeArgs::default()
            },
        ] {
            let error = Config::resolve(bad).unwrap_err();
            assert!(error.contains("must be between 1 and"), "{error}");
        }
    }

    #[test]
    fn the_file_declares_agents_and_their_checks() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("orchestra.toml");
        let toml = "agent_health_schedule = \"*/5 * * * * *\"\nagent_health_misses = 2\n\
                    [[agents]]\nid = \"a1\"\nname = \"shell\"\nrepository_path = \"/tmp\"\n\
                    command = [\"/bin/sh\", \"-c\", \"{command}\"]\n";
        std::fs::write(&file, toml).unwrap();
        let args = ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        };
        let config = Config::resolve(args).unwrap();
        assert_eq!(config.agents.health_misses, 2);
        assert_eq!(config.agents.declared[0].id, "a1");
        assert_eq!(config.agents.declared[0].max_concurrency, 1);
        let bad = ServeArgs {
            agent_health_schedule: Some("every minute".into()),
            ..ServeArgs::default()
        };
        assert!(
            Config::resolve(bad)
                .unwrap_err()
                .contains("agent_health_schedule")
        );
    }

    #[test]
    fn the_file_declares_alert_rules() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("orchestra.toml");
        let toml = "[[alerts]]\nid = \"errors\"\n\
                    condition = { kind = \"failure_rate\", plugin = \"echo\", above = 0.25, window_seconds = 300 }\n\
                    webhook = { url = \"https://example.com/hook\", secret = \"0123456789abcdef\" }\n\
                    [[alerts]]\nid = \"backlog\"\nenabled = false\n\
                    condition = { kind = \"queue_depth\", queue = \"default\", above = 100 }\n";
        std::fs::write(&file, toml).unwrap();
        let args = ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        };
        let config = Config::resolve(args).unwrap();
        let [errors, backlog] = config.alerts.as_slice() else {
            panic!("two alert rules: {:?}", config.alerts);
        };
        let errors = errors.clone().rule("errors").unwrap();
        assert_eq!(errors.condition.kind(), "failure_rate");
        assert!(errors.webhook.unwrap().secret.is_some());
        assert_eq!(backlog.id.as_deref(), Some("backlog"));
        assert!(!backlog.enabled);
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("orchestra.toml");
        std::fs::write(
            &file,
            "workers = 7\nqueues = [\"a\", \"b\"]\nsync = \"full\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            workers: Some(3),
            config: Some(file),
            ..ServeArgs::default()
        };
        let config = Config::resolve(args).unwrap();
        assert_eq!(config.workers, 3);
        assert_eq!(config.queues, ["a", "b"]);
        assert_eq!(config.durability, Durability::Full);
    }

    #[test]
    fn the_file_declares_recurring_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("orchestra.toml");
        let toml = "[[recurring]]\nid = \"nightly\"\ncron = \"0 3 * * *\"\n\
                    timezone = \"Europe/Berlin\"\nplugin = \"echo\"\nargs = { n = 1 }\n\
                    misfire = \"skip\"\n";
        std::fs::write(&file, toml).unwrap();
        let args = ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        };
        let config = Config::resolve(args).unwrap();
        let [nightly] = config.recurring.as_slice() else {
            panic!("one recurring job: {:?}", config.recurring);
        };
        assert_eq!(nightly.id.as_deref(), Some("nightly"));
        assert_eq!(nightly.args, Some(serde_json::json!({"n": 1})));
        assert_eq!(nightly.misfire, Some(crate::store::Misfire::Skip));
    }

    #[test]
    fn bad_settings_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "wrokers = 3\n").unwrap();
        let with_file = ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        };
        assert!(Config::resolve(with_file).unwrap_err().contains("wrokers"));
        let bad_queue = ServeArgs {
            queues: Some(vec!["Bad!".into()]),
            ..ServeArgs::default()
        };
        assert!(Config::resolve(bad_queue).unwrap_err().contains("Bad!"));
        let bad_retention = ServeArgs {
            retain_failed_days: Some(-1.0),
            ..ServeArgs::default()
        };
        assert!(
            Config::resolve(bad_retention)
                .unwrap_err()
                .contains("retain_failed_days")
        );
        let bad_root = ServeArgs {
            repo_roots: Some(vec!["/no/such/root".into()]),
            ..ServeArgs::default()
        };
        assert!(
            Config::resolve(bad_root)
                .unwrap_err()
                .contains("/no/such/root")
        );
    }
}
