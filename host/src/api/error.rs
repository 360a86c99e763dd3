//! API errors: each becomes a status and a JSON body `{"error": "..."}` saying what was
//! wrong. Storage faults are answered 507 (disk full) or 503 naming the cause; other
//! server faults are logged and answered with a generic message.

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
    /// The request is well-formed but cannot be accepted (422).
    #[error("{0}")]
    Unprocessable(String),
    /// No such resource (404).
    #[error("{0}")]
    NotFound(String),
    /// The resource's state forbids it (409).
    #[error("{0}")]
    Conflict(String),
    /// A rejection by an extractor, with its own status.
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
            store::Error::RecurringNotFound(_) | store::Error::AgentNotFound(_) => {
                ApiError::NotFound(e.to_string())
            }
            store::Error::Invalid(message) => ApiError::Unprocessable(message),
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
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
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
        let body = axum::Json(serde_json::json!({ "error": self.to_string() }));
        (self.status(), body).into_response()
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
}
