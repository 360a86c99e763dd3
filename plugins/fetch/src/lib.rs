//! `fetch`: GETs a URL over `wasi:http` and returns the response's status and body.
//!
//! The host sends a plugin's requests only to the hosts its `allowed_outbound_hosts`
//! setting lists (and the operator's list allows too); this plugin allows none by itself,
//! so its `fetch.toml` must name them, e.g.
//! `allowed_outbound_hosts = ["https://api.example.com"]`.
//!
//! Args: `{"url": "http://host[:port]/path"}`. Result: `{"status": 200, "body": "..."}`,
//! the body as text (invalid UTF-8 replaced). A request the host refuses fails the job at
//! once (fatal); one that fails on the way (connection refused, timeout) is retryable.

use orchestra_plugin::{Error, Handler, Job, log};
use serde::{Deserialize, Serialize};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, IncomingResponse, Method, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// The job's args.
#[derive(Deserialize)]
struct Args {
    /// What to GET.
    url: String,
}

/// The job's result.
#[derive(Serialize)]
struct Fetched {
    /// The HTTP status code.
    status: u16,
    /// The response body as text.
    body: String,
}

/// Bytes asked for per read of the body.
const READ_CHUNK: u64 = 64 << 10;

/// The handler exported to the host.
struct Fetch;

impl Handler for Fetch {
    fn handle(job: Job) -> Result<impl Serialize, Error> {
        let args: Args = job.args()?;
        let response = send(request(&args.url)?, &args.url)?;
        let status = response.status();
        let body = read_body(response)?;
        // Not the URL: its query may carry a secret (the host logs the request without it).
        log::info!("answered {status} with {} bytes", body.len());
        Ok(Fetched {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// A GET request for `url` (`http` or `https`, a host, then an optional path).
fn request(url: &str) -> Result<OutgoingRequest, Error> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| Error::bad_args(format!("`{url}` is not an http or https URL")))?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => {
            return Err(Error::bad_args(format!(
                "scheme `{other}` is not http or https"
            )));
        }
    };
    let (authority, path) = rest
        .find(['/', '?'])
        .map_or((rest, "/"), |at| rest.split_at(at));
    let request = OutgoingRequest::new(Fields::new());
    let invalid = |part: &str| Error::bad_args(format!("the {part} of `{url}` is invalid"));
    request
        .set_method(&Method::Get)
        .map_err(|()| invalid("method"))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| invalid("host"))?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| invalid("path"))?;
    Ok(request)
}

/// Sends `request` and waits for its response's head.
fn send(request: OutgoingRequest, url: &str) -> Result<IncomingResponse, Error> {
    let refused = |code: ErrorCode| match code {
        ErrorCode::HttpRequestDenied => {
            Error::fatal(format!("GET {url} refused by the host: {code}"))
        }
        code => Error::retryable(format!("GET {url} failed: {code}")),
    };
    let future = outgoing_handler::handle(request, None).map_err(refused)?;
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(response))) => Ok(response),
        Some(Ok(Err(code))) => Err(refused(code)),
        Some(Err(())) | None => Err(Error::retryable(format!("GET {url}: no response"))),
    }
}

/// The whole body of `response`.
fn read_body(response: IncomingResponse) -> Result<Vec<u8>, Error> {
    let unreadable = |what: &str| Error::retryable(format!("the response body {what}"));
    let body = response
        .consume()
        .map_err(|()| unreadable("was already taken"))?;
    let stream = body.stream().map_err(|()| unreadable("has no stream"))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(unreadable(&format!("failed: {}", e.to_debug_string())));
            }
        }
    }
    Ok(bytes)
}

orchestra_plugin::export!(Fetch);
