//! The body of every error answer.

use serde::Serialize;
use utoipa::ToSchema;

/// Every 4xx and 5xx answer (see [`super::super::ApiError`]), including the refusals of
/// the HTTP layer itself.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// What was wrong.
    pub(crate) error: String,
    /// The value refused, on a 422 from a check of the API's own; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) field: Option<String>,
}

impl ErrorBody {
    /// An error that names no field.
    pub(crate) fn new(error: String) -> ErrorBody {
        ErrorBody { error, field: None }
    }
}
