//! API errors: each becomes a status and a JSON body `{"error": "..."}` saying what was
//! wrong ([`ErrorBody`]); a refused value (422) also names its `field`. Storage faults are
//! answered 507 (disk full) or 503 naming the cause; other server faults are logged and
//! answered with a generic message.

use super::responses::ErrorBody;
use crate::store;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The request is well-formed but a value in it cannot be accepted (422).
    ///
    /// `field` names the value as the client wrote it: a body field (`priority`), a path
    /// into the body (`jobs[3].priority`, `on_success.queue`,
    /// `stages[1].steps[0].max_attempts`), or a query parameter (`after`). A refusal that
    /// concerns no single value the client wrote names the part of the request it
    /// concerns: `jobs` for a
    /// batch's jobs taken together, `id` for the resource the path names, `definition`
    /// for the stored definition a workflow run starts from, and `request` for a store
    /// refusal whose handler did not say (see `refused_at`).
    #[error("{message}")]
    Invalid {
        /// The value refused.
        field: String,
        /// What is wrong with it: the answer's `error`.
        message: String,
    },
    /// No such resource (404).
    #[error("{0}")]
    NotFound(String),
    /// The resource's state forbids it (409).
    #[error("{0}")]
    Conflict(String),
    /// A rejection by an extractor, with its own status. A JSON body of the wrong shape
    /// (a missing, unknown or mistyped field) is among them: a 422 that names no `field`
    /// (the message names it, in serde's words).
    #[error("{message}")]
    Rejected {
        /// The status the extractor chose (400, 413, 415, 422…).
        status: StatusCode,
        /// What was wrong.
        message: String,
    },
    /// The database cannot take writes now (503; 507 when its disk is full).
    #[error("{message}")]
    Storage {
        /// What is wrong.
        fault: store::Fault,
        /// The fault and the database's own words.
        message: String,
    },
    /// The host failed (500); the detail is logged, not shown.
    #[error("internal error")]
    Internal(#[source] store::Error),
}

impl From<store::Error> for ApiError {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::NotFound(id) => ApiError::NotFound(format!("no job with id {id}")),
            store::Error::Conflict(message) => ApiError::Conflict(message),
            store::Error::RecurringNotFound(_)
            | store::Error::AgentNotFound(_)
            | store::Error::TokenNotFound(_) => ApiError::NotFound(e.to_string()),
            store::Error::Invalid(message) => ApiError::invalid(UNNAMED, message),
            store::Error::LeaseLost { id } => {
                ApiError::Conflict(format!("job {id} changed while the request ran"))
            }
            store::Error::Unavailable { fault, .. } => ApiError::Storage {
                fault,
                message: e.to_string(),
            },
            other => ApiError::Internal(other),
        }
    }
}

/// The field a store refusal names when its handler does not say which one.
const UNNAMED: &str = "request";

/// Maps a store error as [`From`] does, but names `field` in a refusal (422).
pub(super) fn refused_at(field: &str) -> impl FnOnce(store::Error) -> ApiError + '_ {
    move |e| match e {
        store::Error::Invalid(message) => ApiError::invalid(field, message),
        other => other.into(),
    }
}

impl From<crate::model::Invalid> for ApiError {
    fn from(refused: crate::model::Invalid) -> Self {
        ApiError::invalid(refused.field, refused.message)
    }
}

/// A refusal (422) of `field` with the message a check gave: for `map_err`.
pub(super) fn invalid(field: &str) -> impl FnOnce(String) -> ApiError + '_ {
    move |message| ApiError::invalid(field, message)
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let message = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "request body is larger than 1 MiB".to_owned(),
            _ => rejection.body_text(),
        };
        ApiError::Rejected { status, message }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

impl ApiError {
    /// A refusal (422) of `field`, saying what is wrong with it.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// This error as one about `part` of the body (`jobs[3]`, `on_success`): a refusal
    /// names `part.field` (`jobs[3].priority`); with `tell`, a refusal's message and that
    /// of a malformed request begin with `part: ` too. Other errors are as they are.
    pub(super) fn within(self, part: &str, tell: bool) -> ApiError {
        let told = |message: String| {
            if tell {
                format!("{part}: {message}")
            } else {
                message
            }
        };
        match self {
            ApiError::Invalid { field, message } => ApiError::Invalid {
                field: format!("{part}.{field}"),
                message: told(message),
            },
            ApiError::BadRequest(message) if tell => ApiError::BadRequest(told(message)),
            other => other,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Rejected { status, .. } => *status,
            ApiError::Storage {
                fault: store::Fault::DiskFull,
                ..
            } => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Storage { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(source) => tracing::error!(error = %source, "request failed"),
            ApiError::Storage { message, .. } => {
                tracing::error!(error = %message, "request refused: storage fault");
            }
            _ => {}
        }
        let status = self.status();
        let body = match self {
            ApiError::Invalid { field, message } => ErrorBody {
                error: message,
                field: Some(field),
            },
            other => ErrorBody::new(other.to_string()),
        };
        (status, axum::Json(body)).into_response()
    }
}

/// JSON body extractor whose rejections are [`ApiError`]s.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ApiJson<T>(pub(super) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn store_errors_map_to_client_statuses() {
        let id = Uuid::nil();
        assert_eq!(
            ApiError::from(store::Error::NotFound(id)).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            ApiError::from(store::Error::Conflict("x".into())).status(),
            StatusCode::CONFLICT
        );
        assert_eq!(
            ApiError::from(store::Error::LeaseLost { id }).status(),
            StatusCode::CONFLICT
        );
        let fault = |fault| store::Error::Unavailable {
            fault,
            detail: "x".into(),
        };
        let full = ApiError::from(fault(store::Fault::DiskFull));
        assert_eq!(full.status(), StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(full.to_string(), "database disk full: x");
        for (unavailable, named) in [
            (store::Fault::ReadOnly, "read-only"),
            (store::Fault::Busy, "locked"),
            (store::Fault::Io, "I/O error"),
            (store::Fault::Replaced, "deleted or replaced"),
        ] {
            let error = ApiError::from(fault(unavailable));
            assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(error.to_string().contains(named), "{error}");
        }
        let internal = ApiError::from(store::Error::Closed);
        assert_eq!(internal.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(internal.to_string(), "internal error");
    }

    /// The status and JSON body `error` answers.
    async fn answer(error: ApiError) -> (StatusCode, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_refusal_names_its_field_and_other_errors_do_not() {
        let (status, body) = answer(ApiError::invalid("priority", "priority must be…")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            body,
            serde_json::json!({"error": "priority must be…", "field": "priority"})
        );
        let (status, body) = answer(ApiError::NotFound("no job".into())).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, serde_json::json!({"error": "no job"}));
    }

    #[tokio::test]
    async fn store_refusals_name_the_field_their_handler_gives() {
        let refusal = || store::Error::Invalid("after: 7 is not a line of job x".into());
        let (status, body) = answer(refused_at("after")(refusal())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["field"], "after");
        assert_eq!(body["error"], "after: 7 is not a line of job x");
        let (_, body) = answer(refusal().into()).await;
        assert_eq!(body["field"], UNNAMED);
        let conflict = refused_at("after")(store::Error::Conflict("busy".into()));
        assert_eq!(conflict.status(), StatusCode::CONFLICT);
    }

    #[test]
    fn a_refusal_within_a_part_names_the_path() {
        let inner = ApiError::invalid("priority", "priority must be…");
        match inner.within("jobs[3]", true) {
            ApiError::Invalid { field, message } => {
                assert_eq!(field, "jobs[3].priority");
                assert_eq!(message, "jobs[3]: priority must be…");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        let bad = ApiError::BadRequest("args is not JSON".into()).within("jobs[0]", true);
        assert_eq!(bad.to_string(), "jobs[0]: args is not JSON");
        let plain = ApiError::invalid("queue", "queue name…").within("on_success", false);
        assert!(matches!(plain, ApiError::Invalid { ref field, ref message }
            if field == "on_success.queue" && message == "queue name…"));
    }
}
