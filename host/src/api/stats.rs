//! `/api/stats/series`: run counts, failure rate, run time and pickup latency over time,
//! from the rollup the group commit keeps (so the answer reads a few hundred rows, not
//! the jobs, and outlives their cleanup).

use super::AppState;
use super::error::ApiError;
use super::responses::{ErrorBody, SeriesAnswer};
use crate::model::stats::{By, Metric, Resolution, Span, series};
use crate::model::{Millis, now_ms, rfc3339};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Most buckets one answer holds: a week of minutes.
const MAX_BUCKETS: usize = 7 * 24 * 60;

/// The routes of this module.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(series_of))
}

/// `?metric=&by=&from=&to=&bucket=`: every part optional.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct SeriesQuery {
    /// Comma-separated metrics [default: all].
    metric: Option<String>,
    /// `plugin`, `queue` or `agent` [default: one series over every run].
    by: Option<String>,
    /// RFC 3339 start [default: the 60 minutes, 24 hours or 30 days up to `to`, the
    /// last one partial].
    from: Option<String>,
    /// RFC 3339 end, exclusive [default: now].
    to: Option<String>,
    /// `minute`, `hour` or `day` [default: hour].
    bucket: Option<String>,
}

/// Runs over time, per bucket: counts, failure rate and percentiles of run time and
/// pickup latency, from the rollup (so it answers from a few rows and outlives the jobs'
/// cleanup).
#[utoipa::path(
    get,
    path = "/api/stats/series",
    operation_id = "stats_series",
    tag = "stats",
    security(("bearer" = ["read"])),
    params(SeriesQuery),
    responses(
        (status = 200, description = "One series per key and metric, aligned on `times`.", body = SeriesAnswer),
        (status = 400, description = "A query parameter is malformed or unknown.", body = ErrorBody),
        (status = 422, description = "A value is refused (`bucket`, `by`, `metric`, `from`, `to`).", body = ErrorBody),
    )
)]
async fn series_of(
    State(state): State<AppState>,
    query: Result<Query<SeriesQuery>, QueryRejection>,
) -> Result<Json<SeriesAnswer>, ApiError> {
    let Query(query) = query?;
    let resolution = match query.bucket.as_deref() {
        None => Resolution::Hour,
        Some(name) => Resolution::parse(name).ok_or_else(|| {
            ApiError::invalid(
                "bucket",
                format!("bucket must be minute, hour or day, got `{name}`"),
            )
        })?,
    };
    let by = match query.by.as_deref() {
        None => None,
        Some(name) => Some(By::parse(name).ok_or_else(|| {
            ApiError::invalid(
                "by",
                format!("by must be plugin, queue or agent, got `{name}`"),
            )
        })?),
    };
    let metrics = metrics(query.metric.as_deref())?;
    let to = time("to", query.to.as_deref())?.unwrap_or_else(|| now_ms() + 1);
    let from = time("from", query.from.as_deref())?.unwrap_or_else(|| {
        resolution.bucket_of(to - 1) - (default_buckets(resolution) - 1) * resolution.millis()
    });
    if from >= to {
        return Err(ApiError::invalid("from", "from must be before to"));
    }
    let span = Span::new(from, to, resolution);
    if span.len() > MAX_BUCKETS {
        return Err(ApiError::invalid(
            "bucket",
            format!(
                "the range holds {} buckets of a {}; at most {MAX_BUCKETS}: ask for a larger \
                 bucket or a shorter range",
                span.len(),
                resolution.as_str()
            ),
        ));
    }
    let rows = state.store.rollup(resolution, span.from, span.to).await?;
    let series = series(&rows, &span, by);
    Ok(Json(SeriesAnswer::new(&span, query.by, &series, &metrics)))
}

/// Buckets shown when no `from` is given.
fn default_buckets(resolution: Resolution) -> Millis {
    match resolution {
        Resolution::Minute => 60,
        Resolution::Hour => 24,
        Resolution::Day => 30,
    }
}

/// The metrics `list` names (comma-separated, each once), or all.
fn metrics(list: Option<&str>) -> Result<Vec<Metric>, ApiError> {
    let Some(list) = list else {
        return Ok(Metric::ALL.to_vec());
    };
    let mut metrics = Vec::new();
    for name in list.split(',').map(str::trim) {
        let metric = Metric::parse(name).ok_or_else(|| {
            let known: Vec<&str> = Metric::ALL.iter().map(|m| m.as_str()).collect();
            ApiError::invalid(
                "metric",
                format!("unknown metric `{name}`; known: {}", known.join(", ")),
            )
        })?;
        if !metrics.contains(&metric) {
            metrics.push(metric);
        }
    }
    Ok(metrics)
}

/// The RFC 3339 time `text` given as `field`.
fn time(field: &str, text: Option<&str>) -> Result<Option<Millis>, ApiError> {
    text.map(|text| {
        rfc3339::parse(text).map_err(|e| ApiError::invalid(field, format!("{field}: {e}")))
    })
    .transpose()
}
