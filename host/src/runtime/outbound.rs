//! Outgoing `wasi:http` requests: each one is checked against the run's allowed hosts,
//! written into the job's log (method, URL without its query, status or refusal) and
//! bounded in time (by the run's deadline, connecting by [`CONNECT_TIMEOUT`]) and in
//! the size of its response body (the run's memory limit: the guest could not hold more).

use super::output::SharedSink;
use crate::model::outbound::HostPattern;
use http_body_util::{BodyExt, Limited};
use std::time::{Duration, Instant};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// Longest wait for a connection (and TLS handshake) to a host.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The future of a response, and of the connection's end, that `send_request` answers.
type Sent = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

/// A run's outgoing requests: its rules and what it was refused.
pub(super) struct Outbound {
    allowed: Vec<HostPattern>,
    sink: SharedSink,
    /// When the run's time is up (kept current by the run state before each request).
    pub(super) deadline: Instant,
    body_limit: usize,
    /// The first request refused, to name in the job's error if the run fails.
    pub(super) refused: Option<String>,
}

impl Outbound {
    /// Requests to `allowed` only, logged into `sink`, with response bodies of at most
    /// `body_limit` bytes.
    pub(super) fn new(allowed: Vec<HostPattern>, sink: SharedSink, body_limit: usize) -> Self {
        Self {
            allowed,
            sink,
            deadline: Instant::now(),
            body_limit,
            refused: None,
        }
    }

    fn log(&self, level: &str, line: &str) {
        self.sink
            .lock()
            .expect("log sink lock poisoned")
            .line(level, line);
    }

    /// Whether `uri` leads to an allowed host.
    fn allows(&self, uri: &http::Uri) -> bool {
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return false;
        };
        self.allowed
            .iter()
            .any(|pattern| pattern.allows(scheme, host, uri.port_u16()))
    }

    /// The guest's timeouts, none longer than what is left of the run.
    fn options(&self, asked: Option<RequestOptions>) -> RequestOptions {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let asked = asked.unwrap_or_default();
        let within =
            |asked: Option<Duration>, most: Duration| Some(asked.map_or(most, |a| a.min(most)));
        RequestOptions {
            connect_timeout: within(asked.connect_timeout, CONNECT_TIMEOUT.min(left)),
            first_byte_timeout: within(asked.first_byte_timeout, left),
            between_bytes_timeout: within(asked.between_bytes_timeout, left),
        }
    }
}

/// `scheme://authority/path` of `uri`: the query, which may carry secrets, shown as `?…`.
fn shown(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("");
    let authority = uri.authority().map_or("", |a| a.as_str());
    let query = if uri.query().is_some() { "?…" } else { "" };
    format!("{scheme}://{authority}{}{query}", uri.path())
}

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sent {
        drop(fut);
        let what = format!("{} {}", request.method(), shown(request.uri()));
        if !self.allows(request.uri()) {
            let host = request.uri().authority().map_or("", |a| a.as_str());
            let refusal = format!(
                "{what} refused: {host} is not among the hosts this plugin may reach \
                 (allowed_outbound_hosts in its manifest, within the host's \
                 allowed_outbound_hosts)"
            );
            self.log("warn", &refusal);
            self.refused.get_or_insert(refusal);
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let options = self.options(options);
        let sink = self.sink.clone();
        let limit = self.body_limit;
        Box::new(async move {
            let sent = wasmtime_wasi_http::default_send_request(request, Some(options)).await;
            let line = match &sent {
                Ok((response, _)) => format!("{what} → {}", response.status().as_u16()),
                Err(error) => format!("{what} failed: {error}"),
            };
            sink.lock()
                .expect("log sink lock poisoned")
                .line("info", &line);
            let (response, io) = sent?;
            let response = response.map(|body| {
                Limited::new(body, limit)
                    .map_err(move |e| match e.downcast::<Error>() {
                        Ok(error) => *error,
                        Err(_) => Error::HttpResponseBodySize(Some(limit as u64)),
                    })
                    .boxed_unsync()
            });
            Ok((response, Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_not_logged() {
        let uri: http::Uri = "https://api.example.com/v1/chat?key=secret"
            .parse()
            .unwrap();
        assert_eq!(shown(&uri), "https://api.example.com/v1/chat?…");
        let uri: http::Uri = "http://127.0.0.1:8080/".parse().unwrap();
        assert_eq!(shown(&uri), "http://127.0.0.1:8080/");
    }
}
