//! `GET /api/jobs/{id}/logs`: a job's whole log, page by page, in reading order (by
//! attempt, then as written). `GET /api/jobs/{id}` shows only the latest lines.

use super::AppState;
use super::error::{ApiError, refused_at};
use super::jobs::parse_id;
use super::responses::{ErrorBody, LogPage};
use crate::store::LogQuery;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Default and largest page.
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// The routes of this module.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(page))
}

/// `GET /api/jobs/{id}/logs` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    /// Only the lines of this attempt (0: written before the first).
    #[param(value_type = Option<u32>)]
    attempt: Option<String>,
    /// The `next_cursor` of the previous page: lines after this one.
    #[param(value_type = Option<i64>, minimum = 0)]
    after: Option<String>,
    /// Lines per page [default: 100].
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

/// `text` as a whole number of type `T` in `range`, or a 400 naming `field`.
fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    field: &str,
    text: &str,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ApiError> {
    match text.parse::<T>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "{field} must be a whole number from {} to {}, got `{text}`",
            range.start(),
            range.end()
        ))),
    }
}

impl PageQuery {
    fn checked(self) -> Result<LogQuery, ApiError> {
        Ok(LogQuery {
            attempt: self
                .attempt
                .map(|a| number("attempt", &a, 0..=u32::MAX))
                .transpose()?,
            after: self
                .after
                .map(|a| number("after", &a, 0..=i64::MAX))
                .transpose()?,
            limit: self
                .limit
                .map_or(Ok(DEFAULT_PAGE), |l| number("limit", &l, 1..=MAX_PAGE))?,
        })
    }
}

/// One page of a job's whole log, in reading order (by attempt, then as written).
#[utoipa::path(
    get,
    path = "/api/jobs/{id}/logs",
    operation_id = "get_job_logs",
    tag = "jobs",
    security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "The job's id."), PageQuery),
    responses(
        (status = 200, description = "One page of lines.", body = LogPage),
        (status = 400, description = "The id is not a UUID, or a query parameter is malformed or unknown.", body = ErrorBody),
        (status = 404, description = "No such job.", body = ErrorBody),
        (status = 422, description = "`after` is not a line of this job.", body = ErrorBody),
    )
)]
async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<LogPage>, ApiError> {
    let id = parse_id(&id)?;
    let Query(query) = query?;
    // The store refuses an `after` that is not a line of this job.
    let page = state
        .store
        .logs(id, &query.checked()?)
        .await
        .map_err(refused_at("after"))?
        .ok_or_else(|| ApiError::NotFound(format!("no job with id {id}")))?;
    Ok(Json(page.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(attempt: Option<&str>, after: Option<&str>, limit: Option<&str>) -> PageQuery {
        PageQuery {
            attempt: attempt.map(str::to_owned),
            after: after.map(str::to_owned),
            limit: limit.map(str::to_owned),
        }
    }

    #[test]
    fn the_query_is_checked_with_defaults() {
        let plain = query(None, None, None).checked().unwrap();
        assert_eq!((plain.attempt, plain.after, plain.limit), (None, None, 100));
        let full = query(Some("2"), Some("41"), Some("1000"))
            .checked()
            .unwrap();
        assert_eq!(
            (full.attempt, full.after, full.limit),
            (Some(2), Some(41), 1000)
        );
        for (bad, field) in [
            (query(None, None, Some("0")), "limit"),
            (query(None, None, Some("1001")), "limit"),
            (query(None, Some("-1"), None), "after"),
            (query(Some("x"), None, None), "attempt"),
        ] {
            let error = bad.checked().unwrap_err();
            assert!(error.to_string().starts_with(field), "{error}");
        }
    }
}
