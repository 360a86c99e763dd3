//! Run statistics over time: what the rollup keeps per bucket and key (runs that
//! succeeded and failed, run time and pickup latency as histograms), and the series the
//! analytics endpoint answers, computed from those rows.
//!
//! A histogram counts values (in milliseconds) in logarithmic bins, eight to a doubling,
//! so that histograms of any number of buckets merge by adding counts and a percentile
//! is read back within about 5 %.

use super::Millis;
use std::collections::BTreeMap;

/// Bins per doubling of the value.
const BINS_PER_DOUBLING: f64 = 8.0;
/// The last bin; values past it count there (about 2^31 ms, 25 days).
const LAST_BIN: u16 = 248;

/// Counts of values in logarithmic bins: bin 0 holds 0 ms, bin `b` ≥ 1 holds values in
/// `[2^((b-1)/8), 2^(b/8))` ms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram(BTreeMap<u16, u64>);

impl Histogram {
    /// Counts one value of `ms` milliseconds.
    pub fn add(&mut self, ms: u64) {
        *self.0.entry(bin_of(ms)).or_default() += 1;
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &Histogram) {
        for (bin, count) in &other.0 {
            *self.0.entry(*bin).or_default() += count;
        }
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.0.values().sum()
    }

    /// The value below which a share `q` (0 to 1) of the values lie (the middle of its
    /// bin), or `None` when nothing was counted.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bin, count) in &self.0 {
            seen += count;
            if seen >= rank {
                return Some(middle_of(*bin));
            }
        }
        self.0.keys().next_back().map(|bin| middle_of(*bin))
    }

    /// The histogram as stored: a JSON object of bin to count.
    pub fn to_json(&self) -> String {
        let object: serde_json::Map<String, serde_json::Value> = self
            .0
            .iter()
            .map(|(bin, count)| (bin.to_string(), (*count).into()))
            .collect();
        serde_json::Value::Object(object).to_string()
    }

    /// A histogram as [`Histogram::to_json`] wrote it.
    ///
    /// # Errors
    /// What is wrong with `text`.
    pub fn from_json(text: &str) -> Result<Histogram, String> {
        let object: BTreeMap<String, u64> =
            serde_json::from_str(text).map_err(|e| format!("histogram: {e}"))?;
        let mut bins = BTreeMap::new();
        for (bin, count) in object {
            let bin: u16 = bin.parse().map_err(|_| format!("histogram bin `{bin}`"))?;
            bins.insert(bin.min(LAST_BIN), count);
        }
        Ok(Histogram(bins))
    }
}

/// The bin `ms` counts in.
fn bin_of(ms: u64) -> u16 {
    if ms == 0 {
        return 0;
    }
    let bin = (ms as f64).log2() * BINS_PER_DOUBLING;
    (bin.floor() as u16).saturating_add(1).min(LAST_BIN)
}

/// The geometric middle of bin `bin`, in milliseconds.
fn middle_of(bin: u16) -> f64 {
    if bin == 0 {
        return 0.0;
    }
    2f64.powf((f64::from(bin) - 0.5) / BINS_PER_DOUBLING)
}

/// How long the buckets of a series are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    /// One minute.
    Minute,
    /// One hour.
    Hour,
    /// One day (UTC).
    Day,
}

impl Resolution {
    /// Every resolution, finest first: each run counts in one bucket of each.
    pub const ALL: [Resolution; 3] = [Resolution::Minute, Resolution::Hour, Resolution::Day];

    /// The name clients use.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Minute => "minute",
            Resolution::Hour => "hour",
            Resolution::Day => "day",
        }
    }

    /// The resolution named `name`.
    pub fn parse(name: &str) -> Option<Resolution> {
        Resolution::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// A bucket's length in milliseconds.
    pub fn millis(self) -> Millis {
        match self {
            Resolution::Minute => 60_000,
            Resolution::Hour => 3_600_000,
            Resolution::Day => 86_400_000,
        }
    }

    /// The start of the bucket `at` lies in.
    pub fn bucket_of(self, at: Millis) -> Millis {
        at - at.rem_euclid(self.millis())
    }
}

/// What one bucket holds for one key: the runs that ended in it and the runs that
/// started in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rollup {
    /// Runs that succeeded.
    pub succeeded: u64,
    /// Runs that failed (retried or failed for good).
    pub failed: u64,
    /// Run times of the runs that ended.
    pub run_ms: Histogram,
    /// Waits from due to start of the runs that started.
    pub pickup_ms: Histogram,
}

impl Rollup {
    /// Adds `other` to this.
    pub fn merge(&mut self, other: &Rollup) {
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.run_ms.merge(&other.run_ms);
        self.pickup_ms.merge(&other.pickup_ms);
    }
}

/// The key runs are counted under in the rollup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RollupKey {
    /// The job's plugin.
    pub plugin: String,
    /// Its queue.
    pub queue: String,
    /// The agent it ran on, if any.
    pub agent: Option<String>,
}

/// One stored row of the rollup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupRow {
    /// The start of its bucket.
    pub bucket: Millis,
    /// Its key.
    pub key: RollupKey,
    /// What it counts.
    pub rollup: Rollup,
}

/// What a series is broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// The jobs' plugin.
    Plugin,
    /// Their queue.
    Queue,
    /// The agent they ran on (runs on no agent are left out).
    Agent,
}

impl By {
    /// The dimension named `name`.
    pub fn parse(name: &str) -> Option<By> {
        match name {
            "plugin" => Some(By::Plugin),
            "queue" => Some(By::Queue),
            "agent" => Some(By::Agent),
            _ => None,
        }
    }

    /// `key`'s value in this dimension, if it has one.
    fn of(self, key: &RollupKey) -> Option<&str> {
        match self {
            By::Plugin => Some(&key.plugin),
            By::Queue => Some(&key.queue),
            By::Agent => key.agent.as_deref(),
        }
    }
}

/// A value a series can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Runs that succeeded.
    Succeeded,
    /// Runs that failed.
    Failed,
    /// Failed runs over all runs that ended.
    FailureRate,
    /// Median run time, ms.
    RunTimeP50,
    /// 95th percentile of run time, ms.
    RunTimeP95,
    /// Median pickup latency, ms.
    PickupP50,
    /// 95th percentile of pickup latency, ms.
    PickupP95,
}

impl Metric {
    /// Every metric, in the order answers show them.
    pub const ALL: [Metric; 7] = [
        Metric::Succeeded,
        Metric::Failed,
        Metric::FailureRate,
        Metric::RunTimeP50,
        Metric::RunTimeP95,
        Metric::PickupP50,
        Metric::PickupP95,
    ];

    /// The name clients use.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Succeeded => "succeeded",
            Metric::Failed => "failed",
            Metric::FailureRate => "failure_rate",
            Metric::RunTimeP50 => "run_time_p50_ms",
            Metric::RunTimeP95 => "run_time_p95_ms",
            Metric::PickupP50 => "pickup_p50_ms",
            Metric::PickupP95 => "pickup_p95_ms",
        }
    }

    /// The metric named `name`.
    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// Its value over `rollup`; `None` where nothing was counted.
    pub fn of(self, rollup: &Rollup) -> Option<f64> {
        let runs = rollup.succeeded + rollup.failed;
        match self {
            Metric::Succeeded => Some(rollup.succeeded as f64),
            Metric::Failed => Some(rollup.failed as f64),
            Metric::FailureRate => (runs > 0).then(|| rollup.failed as f64 / runs as f64),
            Metric::RunTimeP50 => rollup.run_ms.quantile(0.5),
            Metric::RunTimeP95 => rollup.run_ms.quantile(0.95),
            Metric::PickupP50 => rollup.pickup_ms.quantile(0.5),
            Metric::PickupP95 => rollup.pickup_ms.quantile(0.95),
        }
    }
}

/// A time range cut into buckets: `[from, to)`, `from` at a bucket's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Start of the first bucket.
    pub from: Millis,
    /// End of the range (exclusive).
    pub to: Millis,
    /// Bucket length.
    pub resolution: Resolution,
}

impl Span {
    /// The buckets from the one holding `from` to the one holding `to - 1`.
    pub fn new(from: Millis, to: Millis, resolution: Resolution) -> Span {
        Span {
            from: resolution.bucket_of(from),
            to,
            resolution,
        }
    }

    /// Buckets in the span.
    pub fn len(&self) -> usize {
        let step = self.resolution.millis();
        usize::try_from((self.to - self.from + step - 1).max(0) / step).unwrap_or(usize::MAX)
    }

    /// Whether the span holds no bucket.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The index of the bucket starting at `bucket`, if inside.
    fn index(&self, bucket: Millis) -> Option<usize> {
        if bucket < self.from || bucket >= self.to {
            return None;
        }
        usize::try_from((bucket - self.from) / self.resolution.millis()).ok()
    }

    /// The start of bucket `index`.
    pub fn start(&self, index: usize) -> Millis {
        self.from + index as Millis * self.resolution.millis()
    }
}

/// One key's rollup in each bucket of a span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// The key's value in the dimension asked for; `None` for all runs together.
    pub key: Option<String>,
    /// One rollup per bucket of the span, in order.
    pub buckets: Vec<Rollup>,
}

/// The series of `rows` (of the span's resolution) over `span`, one per value of `by`
/// (ordered by it), or one over everything when `by` is `None`.
pub fn series(rows: &[RollupRow], span: &Span, by: Option<By>) -> Vec<Series> {
    let mut by_key: BTreeMap<Option<String>, Vec<Rollup>> = BTreeMap::new();
    if by.is_none() {
        by_key.insert(None, vec![Rollup::default(); span.len()]);
    }
    for row in rows {
        let Some(index) = span.index(row.bucket) else {
            continue;
        };
        let key = match by {
            None => None,
            Some(by) => match by.of(&row.key) {
                Some(value) => Some(value.to_owned()),
                None => continue,
            },
        };
        let buckets = by_key
            .entry(key)
            .or_insert_with(|| vec![Rollup::default(); span.len()]);
        buckets[index].merge(&row.rollup);
    }
    by_key
        .into_iter()
        .map(|(key, buckets)| Series { key, buckets })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_back_within_the_bins_precision() {
        let mut h = Histogram::default();
        for ms in 1..=1000 {
            h.add(ms);
        }
        let p50 = h.quantile(0.5).unwrap();
        let p95 = h.quantile(0.95).unwrap();
        assert!((p50 - 500.0).abs() / 500.0 < 0.05, "p50 {p50}");
        assert!((p95 - 950.0).abs() / 950.0 < 0.05, "p95 {p95}");
        assert_eq!(h.count(), 1000);
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn zero_and_huge_values_have_bins() {
        let mut h = Histogram::default();
        h.add(0);
        h.add(u64::MAX);
        assert_eq!(h.quantile(0.0), Some(0.0));
        assert!(h.quantile(1.0).unwrap() > 1e9);
    }

    #[test]
    fn histograms_merge_and_survive_their_stored_form() {
        let (mut a, mut b) = (Histogram::default(), Histogram::default());
        a.add(10);
        b.add(10);
        b.add(2000);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        let stored = a.to_json();
        assert_eq!(Histogram::from_json(&stored).unwrap(), a);
        assert!(Histogram::from_json("{\"x\":1}").is_err());
        assert!(Histogram::from_json("[1]").is_err());
    }

    #[test]
    fn buckets_start_on_their_boundary() {
        assert_eq!(Resolution::Minute.bucket_of(125_000), 120_000);
        assert_eq!(Resolution::Day.bucket_of(86_400_000 + 5), 86_400_000);
        let span = Span::new(90_000, 300_000, Resolution::Minute);
        assert_eq!(span.from, 60_000);
        assert_eq!(span.len(), 4);
        assert_eq!(span.start(3), 240_000);
        assert_eq!(span.index(300_000), None);
        assert_eq!(span.index(59_999), None);
    }

    fn row(bucket: Millis, plugin: &str, agent: Option<&str>, ok: u64, failed: u64) -> RollupRow {
        RollupRow {
            bucket,
            key: RollupKey {
                plugin: plugin.into(),
                queue: "default".into(),
                agent: agent.map(Into::into),
            },
            rollup: Rollup {
                succeeded: ok,
                failed,
                ..Rollup::default()
            },
        }
    }

    #[test]
    fn series_group_by_the_dimension_asked_for() {
        let span = Span::new(0, 180_000, Resolution::Minute);
        let rows = [
            row(0, "echo", None, 2, 0),
            row(60_000, "echo", Some("a1"), 1, 1),
            row(60_000, "flaky", Some("a1"), 0, 3),
            row(600_000, "echo", None, 9, 9),
        ];
        let all = series(&rows, &span, None);
        assert_eq!(all.len(), 1);
        let counts: Vec<_> = all[0].buckets.iter().map(|r| r.succeeded).collect();
        assert_eq!(counts, [2, 1, 0]);
        let plugins = series(&rows, &span, Some(By::Plugin));
        let keys: Vec<_> = plugins.iter().map(|s| s.key.clone().unwrap()).collect();
        assert_eq!(keys, ["echo", "flaky"]);
        let agents = series(&rows, &span, Some(By::Agent));
        assert_eq!(agents.len(), 1);
        assert_eq!(agents[0].buckets[1].failed, 4);
        let rate = Metric::FailureRate.of(&agents[0].buckets[1]).unwrap();
        assert!((rate - 0.8).abs() < 1e-9);
        assert_eq!(Metric::FailureRate.of(&agents[0].buckets[0]), None);
    }

    #[test]
    fn names_parse_back() {
        for metric in Metric::ALL {
            assert_eq!(Metric::parse(metric.as_str()), Some(metric));
        }
        for resolution in Resolution::ALL {
            assert_eq!(Resolution::parse(resolution.as_str()), Some(resolution));
        }
        assert_eq!(By::parse("agent"), Some(By::Agent));
        assert_eq!(By::parse("host"), None);
    }
}
