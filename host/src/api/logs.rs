//! `GET /api/jobs/{id}/logs`: a job's whole log, page by page, in reading order (by
//! attempt, then as written). `GET /api/jobs/{id}` shows only the latest lines.

use super::AppState;
use super::error::{ApiError, refused_at};
use super::jobs::parse_id;
use super::responses::LogPage;
use crate::store::LogQuery;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

/// Default and largest page.
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// The routes of this module.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/jobs/{id}/logs", get(page))
}

/// `GET /api/jobs/{id}/logs` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    attempt: Option<String>,
    after: Option<String>,
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
