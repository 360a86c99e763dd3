//! When a job may run, as clients say it: `delay_seconds` from now, or an RFC 3339 time
//! (`run_at` of a job, `execute_at` of a task) inside one window, from 2000-01-01 to ten
//! years ahead.

use super::error::ApiError;
use crate::model::{Millis, rfc3339};

/// Longest delay a job may ask for: ten years.
pub(super) const MAX_DELAY_SECONDS: u64 = 10 * 365 * 24 * 3600;
/// Earliest time accepted: 2000-01-01T00:00:00Z.
const EARLIEST: Millis = 946_684_800_000;

/// The RFC 3339 time `text` given as `field`, inside the window (a past time in it means
/// now).
///
/// # Errors
/// 422 naming `field`: not RFC 3339, before 2000, or more than ten years ahead.
pub(super) fn scheduled_time(field: &str, text: &str, now: Millis) -> Result<Millis, ApiError> {
    let at = rfc3339::parse(text).map_err(|e| ApiError::invalid(field, format!("{field}: {e}")))?;
    if at < EARLIEST {
        return Err(ApiError::invalid(
            field,
            format!(
                "{field} must not be before {}, got `{text}`",
                rfc3339::format(EARLIEST)
            ),
        ));
    }
    if at > now + MAX_DELAY_SECONDS as Millis * 1000 {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be within ten years from now, got `{text}`"),
        ));
    }
    Ok(at)
}

/// When a job may run: `delay_seconds` from now or the RFC 3339 `run_at`, not both.
///
/// # Errors
/// 422 when either is out of range (naming it), or both are given (naming `run_at`).
pub(super) fn run_at(
    delay_seconds: Option<u64>,
    run_at: Option<&str>,
    now: Millis,
) -> Result<Option<Millis>, ApiError> {
    match (delay_seconds, run_at) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "run_at",
            "give either delay_seconds or run_at, not both",
        )),
        (Some(delay), None) if delay > MAX_DELAY_SECONDS => Err(ApiError::invalid(
            "delay_seconds",
            format!("delay_seconds must be at most {MAX_DELAY_SECONDS}, got {delay}"),
        )),
        (Some(delay), None) => Ok((delay > 0).then(|| now + delay as Millis * 1000)),
        (None, Some(text)) => scheduled_time("run_at", text, now).map(Some),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_at_comes_from_a_delay_or_a_time_but_not_both() {
        let now = 1_700_000_000_000;
        assert_eq!(run_at(None, None, now).unwrap(), None);
        assert_eq!(run_at(Some(0), None, now).unwrap(), None);
        assert_eq!(run_at(Some(5), None, now).unwrap(), Some(now + 5000));
        let at = "2023-11-14T22:13:25Z";
        assert_eq!(
            run_at(None, Some(at), now).unwrap(),
            Some(1_700_000_005_000)
        );
        assert!(run_at(Some(5), Some(at), now).is_err());
        assert!(run_at(None, Some("soon"), now).is_err());
        let field = |result: Result<_, ApiError>| match result {
            Err(ApiError::Invalid { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(field(run_at(Some(5), Some(at), now)), "run_at");
        assert_eq!(field(run_at(None, Some("soon"), now)), "run_at");
        assert_eq!(
            field(run_at(Some(MAX_DELAY_SECONDS + 1), None, now)),
            "delay_seconds"
        );
    }

    #[test]
    fn times_lie_between_2000_and_ten_years_ahead() {
        let now = 1_700_000_000_000;
        let check = |text| scheduled_time("execute_at", text, now);
        assert_eq!(check("2000-01-01T00:00:00Z").unwrap(), EARLIEST);
        assert!(check("2020-06-01T12:00:00+02:00").is_ok());
        for refused in [
            "0000-01-01T00:00:00Z",
            "1999-12-31T23:59:59Z",
            "2999-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
        ] {
            let error = check(refused).unwrap_err();
            assert_eq!(error.status(), axum::http::StatusCode::UNPROCESSABLE_ENTITY);
            assert!(error.to_string().contains("execute_at"), "{error}");
            assert!(
                matches!(&error, ApiError::Invalid { field, .. } if field == "execute_at"),
                "{error:?}"
            );
        }
    }
}
