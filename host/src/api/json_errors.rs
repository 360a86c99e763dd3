//! Every refusal is JSON: a middleware that refuses oversized request heads itself, and
//! gives any error answer without a JSON body (from axum's routing and extractors, such as
//! a path segment that is not UTF-8) the body `{"error": "..."}` with the same status.
//!
//! hyper answers a request head it cannot parse before any middleware runs, with the
//! status alone and no body: more than 100 headers, a head past its read buffer (about
//! 400 KiB) or a target past 64 KiB. The limits here lie below those, so a head between
//! them gets the JSON refusal.

use super::responses::ErrorBody;
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Largest request header block accepted (names, values and separators).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Longest request target (path and query) accepted.
pub const MAX_TARGET_BYTES: usize = 8 * 1024;
/// Most of a plain-text refusal kept as the error message.
const MAX_MESSAGE_BYTES: usize = 4096;

/// The middleware: refuses oversized heads, then passes the request on and makes the
/// answer's error body JSON if it is not.
pub(super) async fn json_errors(request: Request, next: Next) -> Response {
    if let Some(refusal) = oversized(&request) {
        return refusal;
    }
    let response = next.run(request).await;
    let status = response.status();
    if (status.is_client_error() || status.is_server_error()) && !is_json(&response) {
        return with_json_body(response).await;
    }
    response
}

/// A JSON 431 or 414 for a request head over the limits.
fn oversized(request: &Request) -> Option<Response> {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target > MAX_TARGET_BYTES {
        let message = format!("request target is longer than {MAX_TARGET_BYTES} bytes");
        return Some(refusal(StatusCode::URI_TOO_LONG, message));
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    (headers > MAX_HEADER_BYTES).then(|| {
        let message = format!("request headers are larger than {MAX_HEADER_BYTES} bytes");
        refusal(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, message)
    })
}

fn refusal(status: StatusCode, message: String) -> Response {
    (status, axum::Json(ErrorBody::new(message))).into_response()
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"))
}

/// `response` with its text (or, if it has none, its status's reason) as a JSON error.
async fn with_json_body(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let text = match to_bytes(body, MAX_MESSAGE_BYTES).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        parts
            .status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_lowercase()
    } else {
        text
    };
    let body = serde_json::to_string(&ErrorBody::new(message)).expect("an error serializes");
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn a_plain_refusal_gets_a_json_body_and_keeps_its_status() {
        let plain = (StatusCode::BAD_REQUEST, "Invalid URL: bad segment").into_response();
        let response = with_json_body(plain).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(is_json(&response));
        let bytes = to_bytes(response.into_body(), 1024).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body, json!({"error": "Invalid URL: bad segment"}));
    }

    #[tokio::test]
    async fn an_empty_refusal_is_named_by_its_status() {
        let empty = StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
        let bytes = to_bytes(with_json_body(empty).await.into_body(), 1024)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body, json!({"error": "unsupported media type"}));
    }
}
