//! The dashboard's static files, compiled into the binary: htmx (vendored, its version
//! in its name) and the dashboard's own script and style sheet (the host's version in
//! their names, so a new host's are fetched anew).

use crate::api::ApiError;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The version in the URLs of the dashboard's own files.
pub(super) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// htmx 2.0.11 (BSD Zero Clause), as published.
const HTMX: &[u8] = include_bytes!("../../assets/htmx-2.0.11.min.js");
/// The event-stream glue.
const SCRIPT: &[u8] = include_bytes!("../../assets/dash.js");
/// The style sheet.
const STYLE: &[u8] = include_bytes!("../../assets/dash.css");

/// `GET /static/{file}`.
pub(super) async fn file(Path(name): Path<String>) -> Result<Response, ApiError> {
    let own = |ext: &str| name == format!("dash-{VERSION}.{ext}");
    let (body, kind) = if name == "htmx-2.0.11.min.js" {
        (HTMX, "text/javascript")
    } else if own("js") {
        (SCRIPT, "text/javascript")
    } else if own("css") {
        (STYLE, "text/css")
    } else {
        return Err(ApiError::NotFound(format!("no static file {name}")));
    };
    let headers = [
        (header::CONTENT_TYPE, kind),
        (header::CACHE_CONTROL, "public, max-age=86400"),
    ];
    Ok((headers, body).into_response())
}
