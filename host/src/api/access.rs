//! Who may use the API, and for what: every route but `/healthz` needs a token
//! (`Authorization: Bearer …`); a `read` token may only read, every change needs
//! `admin`. Requests that name a host this one does not answer to (DNS rebinding) or
//! come from another origin are refused. Failed logins are rate-limited: past the limit
//! a wrong token gets 429 instead of 401 (a valid one keeps working, so that a flood of
//! wrong ones locks nobody out; tokens have 256 random bits, so guessing is hopeless).
//! A browser may instead carry a session cookie (see `session`), with a CSRF token on
//! every change.

use super::error::ApiError;
use super::session::{self, Sessions};
use crate::model::now_ms;
use crate::model::token::{self, Role, TokenHash};
use crate::store::tokens::ActiveToken;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Failed logins allowed in [`FAILURE_WINDOW`], for all clients together.
const MAX_FAILURES: u32 = 20;
/// The window failed logins are counted in.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// The CSRF token of the session a request came with, for pages that send changes
/// (`Option<Extension<SessionCsrf>>`); absent for a request with a bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCsrf(pub String);

/// The caller of a request, for handlers that care (`Extension<Caller>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name; `None` when tokens are not asked for.
    pub name: Option<Arc<str>>,
    /// What it may do.
    pub role: Role,
}

impl Caller {
    /// `Ok` for an admin; a 403 otherwise.
    ///
    /// # Errors
    /// The caller is not an admin.
    pub fn admin(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Read => Err(forbidden("this needs an admin token")),
        }
    }
}

/// The host's access rules and the tokens that may be used.
#[derive(Debug)]
pub struct Access {
    /// Whether tokens are asked for.
    enabled: bool,
    /// Host names requests may name (lowercase, without port).
    hosts: Vec<String>,
    /// Whether any IP address may be named (the host listens on every address).
    any_ip: bool,
    /// The tokens not revoked, each with the caller it makes.
    tokens: RwLock<Vec<(TokenHash, Caller)>>,
    /// Failed logins in the current window: when it began, and how many.
    failures: Mutex<(Instant, u32)>,
    /// Browsers logged in with a token.
    sessions: Sessions,
}

impl Access {
    /// Rules for a host listening on `listen`, also reached by `names`, with `tokens`;
    /// `enabled: false` asks for no token.
    pub fn new(
        enabled: bool,
        listen: SocketAddr,
        names: &[String],
        tokens: Vec<ActiveToken>,
    ) -> Access {
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .into_iter()
            .map(str::to_owned)
            .chain(names.iter().map(|name| name.to_ascii_lowercase()))
            .collect();
        if !listen.ip().is_unspecified() {
            hosts.push(listen.ip().to_string());
        }
        Access {
            enabled,
            hosts,
            any_ip: listen.ip().is_unspecified(),
            tokens: RwLock::new(callers(tokens)),
            failures: Mutex::new((Instant::now(), 0)),
            sessions: Sessions::default(),
        }
    }

    /// Takes `tokens` as the ones that may be used (after one is made or revoked); the
    /// sessions of the others end.
    pub fn replace_tokens(&self, tokens: Vec<ActiveToken>) {
        let callers = callers(tokens);
        self.sessions
            .keep_only(|hash| callers.iter().any(|(kept, _)| kept == hash));
        *self.tokens.write().expect("tokens lock poisoned") = callers;
    }

    /// The browsers' sessions.
    pub(super) fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// The answer to a wrong token: 401, or 429 once the window's allowance of failed
    /// logins is spent.
    pub(super) fn refuse_login(&self) -> ApiError {
        if self.failed() {
            rejected(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed logins: try again in a minute",
            )
        } else {
            rejected(StatusCode::UNAUTHORIZED, "the token is not valid")
        }
    }

    /// The token `presented` is, if it may be used: every kept hash is compared, in
    /// constant time, whatever matched before.
    pub(super) fn identify(&self, presented: &str) -> Option<Caller> {
        let hash = token::hash(presented);
        let tokens = self.tokens.read().expect("tokens lock poisoned");
        let mut found = None;
        for (kept, caller) in tokens.iter() {
            if token::matches(&hash, kept) {
                found = Some(caller);
            }
        }
        found.cloned()
    }

    /// Whether a request naming `host` (a `Host` header) is for this host.
    fn answers_to(&self, host: &str) -> bool {
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => host.rsplit_once(':').map_or(host, |(name, _)| name),
        };
        self.hosts
            .iter()
            .any(|known| known.eq_ignore_ascii_case(name))
            || (self.any_ip && name.parse::<std::net::IpAddr>().is_ok())
    }

    /// Counts a failed login; whether the window's allowance is spent.
    fn failed(&self) -> bool {
        let mut failures = self.failures.lock().expect("failures lock poisoned");
        if failures.0.elapsed() > FAILURE_WINDOW {
            *failures = (Instant::now(), 0);
        }
        failures.1 += 1;
        failures.1 > MAX_FAILURES
    }
}

/// Each token's hash with the caller it makes.
fn callers(tokens: Vec<ActiveToken>) -> Vec<(TokenHash, Caller)> {
    tokens
        .into_iter()
        .map(|token| {
            let caller = Caller {
                name: Some(token.name.into()),
                role: token.role,
            };
            (token.hash, caller)
        })
        .collect()
}

fn rejected(status: StatusCode, message: &str) -> ApiError {
    ApiError::Rejected {
        status,
        message: message.to_owned(),
    }
}

fn forbidden(message: &str) -> ApiError {
    rejected(StatusCode::FORBIDDEN, message)
}

/// A 401 that says how to authenticate.
fn unauthorized(message: &str) -> Response {
    with_challenge(rejected(StatusCode::UNAUTHORIZED, message))
}

/// `refused` as a response; a 401 also says how to authenticate.
fn with_challenge(refused: ApiError) -> Response {
    let mut response = refused.into_response();
    if response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// Whether `method` only reads.
fn reads(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The request's origin does not match the host it names: another site's page.
fn cross_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let authority = origin.split_once("://").map(|(_, rest)| rest);
    authority.is_none_or(|authority| Some(authority) != host)
}

/// The bearer token of a request, if it carries one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The middleware: checks the host and origin, then the token and its role; hands the
/// handler the [`Caller`].
pub(super) async fn guard(
    State(access): State<Arc<Access>>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    if let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok())
        && !access.answers_to(host)
    {
        return forbidden("this host does not answer to that name").into_response();
    }
    if cross_origin(headers) {
        return forbidden("cross-origin requests are refused").into_response();
    }
    if public(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let mut csrf = None;
    let caller = if access.enabled {
        if let Some(presented) = bearer(headers) {
            match access.identify(presented) {
                Some(caller) => caller,
                None => return with_challenge(access.refuse_login()),
            }
        } else if let Some(session) =
            session::cookie(headers).and_then(|id| access.sessions.find(id, now_ms()))
        {
            if !reads(request.method()) && !session.csrf_matches(headers) {
                return forbidden(
                    "a change made with a session cookie needs the session's CSRF token \
                     in `X-CSRF-Token`",
                )
                .into_response();
            }
            csrf = Some(SessionCsrf(session.csrf));
            session.caller
        } else if is_page(request.method(), request.uri().path()) {
            return to_login(request.uri());
        } else if session::cookie(headers).is_some() {
            return unauthorized("the session has ended: log in again");
        } else {
            return unauthorized("a token is needed: send `Authorization: Bearer <token>`");
        }
    } else {
        Caller {
            name: None,
            role: Role::Admin,
        }
    };
    // Logging out changes nothing but the caller's own session: any role may.
    let logout = request.uri().path() == session::LOGIN_PATH;
    if caller.role == Role::Read && !reads(request.method()) && !logout {
        return forbidden("this token may only read: changes need an admin token").into_response();
    }
    request.extensions_mut().insert(caller);
    if let Some(csrf) = csrf {
        request.extensions_mut().insert(csrf);
    }
    next.run(request).await
}

/// Whether `method path` needs no credentials: `/healthz`, logging in, and the
/// dashboard's static files (which hold no data).
fn public(method: &Method, path: &str) -> bool {
    path == "/healthz"
        || path == session::LOGIN_PAGE
        || path.starts_with("/static/")
        || (path == session::LOGIN_PATH && method == Method::POST)
}

/// Whether `method path` asks for a dashboard page (not the API), which a stranger is
/// sent to log in for rather than refused.
fn is_page(method: &Method, path: &str) -> bool {
    *method == Method::GET && !path.starts_with("/api/") && path != "/metrics"
}

/// A redirect to the login page, which comes back to `uri` once logged in.
fn to_login(uri: &axum::http::Uri) -> Response {
    let back = uri.path_and_query().map_or("/", |p| p.as_str());
    let location = format!("{}?next={}", session::LOGIN_PAGE, url_encoded(back));
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = header::HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// `text` percent-encoded for a query value.
fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::token::Secret;

    fn access(listen: &str) -> Access {
        Access::new(
            true,
            listen.parse().unwrap(),
            &["orchestra.example".into()],
            Vec::new(),
        )
    }

    #[test]
    fn a_host_answers_only_to_its_own_names() {
        let local = access("127.0.0.1:7070");
        for host in [
            "127.0.0.1:7070",
            "localhost:7070",
            "[::1]:7070",
            "Orchestra.Example",
        ] {
            assert!(local.answers_to(host), "{host}");
        }
        for host in [
            "evil.example:7070",
            "10.0.0.5:7070",
            "localhost.evil.example",
        ] {
            assert!(!local.answers_to(host), "{host}");
        }
        let everywhere = access("0.0.0.0:7070");
        assert!(everywhere.answers_to("10.0.0.5:7070"));
        assert!(!everywhere.answers_to("evil.example"));
    }

    #[test]
    fn tokens_are_known_by_their_hash_and_role() {
        let access = access("127.0.0.1:7070");
        let admin = Secret::generate().unwrap();
        let reader = Secret::generate().unwrap();
        access.replace_tokens(vec![
            ActiveToken {
                name: "ops".into(),
                role: Role::Admin,
                hash: admin.hash,
            },
            ActiveToken {
                name: "ci".into(),
                role: Role::Read,
                hash: reader.hash,
            },
        ]);
        let role = |t: &str| access.identify(t).map(|c| c.role);
        assert_eq!(role(&admin.text), Some(Role::Admin));
        assert_eq!(role(&reader.text), Some(Role::Read));
        assert_eq!(role("orch_nope"), None);
    }

    #[test]
    fn failed_logins_are_limited() {
        let access = access("127.0.0.1:7070");
        for _ in 0..MAX_FAILURES {
            assert!(!access.failed());
        }
        assert!(access.failed(), "over the limit");
    }

    #[test]
    fn origins_must_match_the_host() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:7070".parse().unwrap());
        assert!(
            !cross_origin(&headers),
            "no origin: not a cross-origin request"
        );
        headers.insert(header::ORIGIN, "http://127.0.0.1:7070".parse().unwrap());
        assert!(!cross_origin(&headers));
        headers.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(cross_origin(&headers));
        headers.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(cross_origin(&headers));
    }
}
