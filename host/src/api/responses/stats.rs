//! Answers of the analytics.

use crate::model::rfc3339;
use crate::model::stats::{Metric, Series, Span};
use serde::Serialize;
use utoipa::ToSchema;

/// `GET /api/stats/series`: values per bucket, one series per key and metric, aligned
/// on `times`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SeriesAnswer {
    /// Bucket length: `minute`, `hour` or `day`.
    pub(crate) bucket: &'static str,
    /// What the series are broken down by (`plugin`, `queue`, `agent`); absent for one
    /// series over every run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) by: Option<String>,
    /// The start of each bucket (RFC 3339), oldest first.
    #[schema(value_type = Vec<String>, format = DateTime)]
    pub(crate) times: Vec<String>,
    /// The series, by key, then in the order the metrics were asked.
    pub(crate) series: Vec<SeriesView>,
}

/// One key's values of one metric.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SeriesView {
    /// The plugin, queue or agent; absent for every run together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) key: Option<String>,
    /// `succeeded`, `failed`, `failure_rate`, `run_time_p50_ms`, `run_time_p95_ms`,
    /// `pickup_p50_ms` or `pickup_p95_ms`.
    pub(crate) metric: &'static str,
    /// One value per bucket of `times`: a count, a share (0 to 1) or milliseconds;
    /// `null` where there was nothing to measure (no run ended, or none started).
    pub(crate) values: Vec<Option<f64>>,
}

impl SeriesAnswer {
    /// The answer for `series` over `span`, showing `metrics`.
    pub(crate) fn new(
        span: &Span,
        by: Option<String>,
        series: &[Series],
        metrics: &[Metric],
    ) -> SeriesAnswer {
        let times = (0..span.len()).map(|i| rfc3339::format(span.start(i)));
        let series = series.iter().flat_map(|one| {
            metrics.iter().map(|metric| SeriesView {
                key: one.key.clone(),
                metric: metric.as_str(),
                values: one.buckets.iter().map(|rollup| metric.of(rollup)).collect(),
            })
        });
        SeriesAnswer {
            bucket: span.resolution.as_str(),
            by,
            times: times.collect(),
            series: series.collect(),
        }
    }
}
