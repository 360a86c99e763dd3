//! Browser sessions: a page logs in once with a token (`POST /api/session`) and then
//! carries an HttpOnly, SameSite=Strict cookie instead of the token, which its scripts
//! never see. Every state-changing request made with the cookie must also carry the
//! session's CSRF token (header `X-CSRF-Token`), which only a page of this host can read
//! (`GET /api/session`, or the login's answer). Sessions live in memory: a restart logs
//! everyone out; revoking a token ends its sessions.

use super::AppState;
use super::access::{Access, Caller};
use super::error::{ApiError, ApiJson};
use super::responses::{ErrorBody, SessionView};
use crate::model::token::{self, TokenHash};
use crate::model::{Millis, now_ms};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The cookie that carries a session.
pub(super) const COOKIE: &str = "orchestra_session";
/// The header that carries a session's CSRF token.
pub(super) const CSRF_HEADER: &str = "x-csrf-token";
/// The login route, which needs no token of its own.
pub(super) const LOGIN_PATH: &str = "/api/session";
/// The dashboard's login page, which needs no token either.
pub const LOGIN_PAGE: &str = "/login";
/// How long a session lasts: 12 hours.
const LIFETIME_MS: Millis = 12 * 3_600_000;
/// Most sessions at once; past it the oldest ends.
const MAX_SESSIONS: usize = 10_000;

/// The routes of this module.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login, show, logout))
}

/// One logged-in browser.
#[derive(Debug, Clone)]
pub(super) struct Session {
    /// Who it acts as.
    pub(super) caller: Caller,
    /// The hash of the token it logged in with: revoking that token ends it.
    token: TokenHash,
    /// What its state-changing requests must carry.
    pub(super) csrf: String,
    /// When it began.
    began: Millis,
}

impl Session {
    /// Whether `headers` carry this session's CSRF token (compared in constant time).
    pub(super) fn csrf_matches(&self, headers: &HeaderMap) -> bool {
        headers
            .get(CSRF_HEADER)
            .is_some_and(|given| bool::from(given.as_bytes().ct_eq(self.csrf.as_bytes())))
    }

    fn expires_at(&self) -> Millis {
        self.began + LIFETIME_MS
    }
}

/// The sessions, by the hash of their cookie's value.
#[derive(Debug, Default)]
pub(super) struct Sessions(Mutex<HashMap<TokenHash, Session>>);

impl Sessions {
    /// Starts a session for `caller`, who logged in with the token hashed `token`;
    /// returns the cookie's value and the session.
    fn start(
        &self,
        caller: Caller,
        token: TokenHash,
        now: Millis,
    ) -> Result<(String, Session), getrandom::Error> {
        let id = token::random_hex()?;
        let session = Session {
            caller,
            token,
            csrf: token::random_hex()?,
            began: now,
        };
        let mut sessions = self.0.lock().expect("sessions lock poisoned");
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, s| s.expires_at() > now);
        }
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.began)
                .map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(token::hash(&id), session.clone());
        Ok((id, session))
    }

    /// The live session whose cookie holds `id`.
    pub(super) fn find(&self, id: &str, now: Millis) -> Option<Session> {
        let key = token::hash(id);
        let mut sessions = self.0.lock().expect("sessions lock poisoned");
        match sessions.get(&key) {
            Some(session) if session.expires_at() > now => Some(session.clone()),
            Some(_) => {
                sessions.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the session whose cookie holds `id`.
    fn end(&self, id: &str) {
        let mut sessions = self.0.lock().expect("sessions lock poisoned");
        sessions.remove(&token::hash(id));
    }

    /// Ends the sessions of tokens that `usable` says may no longer be used.
    pub(super) fn keep_only(&self, usable: impl Fn(&TokenHash) -> bool) {
        let mut sessions = self.0.lock().expect("sessions lock poisoned");
        sessions.retain(|_, session| usable(&session.token));
    }
}

/// The session cookie's value in `headers`, if any.
pub(super) fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then_some(value)
        })
}

/// `POST /api/session` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Login {
    /// An API token.
    token: String,
}

/// The `Set-Cookie` value for a session cookie holding `value` for `max_age` seconds.
fn set_cookie(value: &str, max_age: Millis) -> HeaderValue {
    let cookie = format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}");
    HeaderValue::from_str(&cookie).expect("a session cookie is ASCII")
}

fn view(session: &Session) -> SessionView {
    SessionView {
        name: session.caller.name.as_deref().map(str::to_owned),
        role: session.caller.role,
        csrf_token: session.csrf.clone(),
        expires_at: crate::model::rfc3339::format(session.expires_at()),
    }
}

/// Starts a session for the caller `token` makes: its `Set-Cookie` value and the
/// session.
///
/// # Errors
/// 401 for a token that may not be used (429 past the failed-login limit).
fn start(access: &Access, token: &str) -> Result<(HeaderValue, Session), ApiError> {
    let Some(caller) = access.identify(token) else {
        return Err(access.refuse_login());
    };
    let (id, session) = access
        .sessions()
        .start(caller, token::hash(token), now_ms())
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok((set_cookie(&id, LIFETIME_MS / 1000), session))
}

/// Logs a browser in with `token`: the `Set-Cookie` value of its new session.
///
/// # Errors
/// 401 for a token that may not be used (429 past the failed-login limit).
pub fn login_cookie(access: &Access, token: &str) -> Result<HeaderValue, ApiError> {
    start(access, token).map(|(cookie, _)| cookie)
}

/// Logs a browser in: sets an HttpOnly, SameSite=Strict session cookie that stands for
/// the token, and answers the CSRF token every change made with the cookie must carry.
/// Needs no token of its own; wrong tokens count towards the failed-login limit.
#[utoipa::path(
    post,
    path = "/api/session",
    operation_id = "log_in",
    tag = "access",
    request_body = Login,
    responses(
        (status = 201, description = "Logged in; `Set-Cookie` carries the session.", body = SessionView),
        (status = 401, description = "The token is not valid.", body = ErrorBody),
        (status = 403, description = "The request comes from another site's page or names another host.", body = ErrorBody),
        (status = 429, description = "Too many failed logins: try again in a minute.", body = ErrorBody),
    )
)]
async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Login>,
) -> Result<Response, ApiError> {
    let (cookie, session) = start(&state.access, &body.token)?;
    let mut response = (StatusCode::CREATED, Json(view(&session))).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

/// The caller's session, with its CSRF token.
fn current(state: &AppState, headers: &HeaderMap) -> Result<(String, Session), ApiError> {
    let session = cookie(headers).and_then(|id| {
        let found = state.access.sessions().find(id, now_ms())?;
        Some((id.to_owned(), found))
    });
    session.ok_or_else(|| ApiError::BadRequest("this request carries no session cookie".into()))
}

/// The session the request's cookie carries, with its CSRF token.
#[utoipa::path(
    get,
    path = "/api/session",
    operation_id = "show_session",
    tag = "access",
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The session.", body = SessionView),
        (status = 400, description = "The request carries no session cookie.", body = ErrorBody),
    )
)]
async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<SessionView>, ApiError> {
    let (_, session) = current(&state, &headers)?;
    Ok(Json(view(&session)))
}

/// Ends the session the request's cookie carries (a change: it needs the session's CSRF
/// token).
#[utoipa::path(
    delete,
    path = "/api/session",
    operation_id = "log_out",
    tag = "access",
    security(("bearer" = ["read"])),
    responses(
        (status = 204, description = "Logged out; `Set-Cookie` clears the cookie."),
        (status = 400, description = "The request carries no session cookie.", body = ErrorBody),
    )
)]
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (id, _) = current(&state, &headers)?;
    state.access.sessions().end(&id);
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie("", 0));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::token::Role;

    fn caller() -> Caller {
        Caller {
            name: Some("ops".into()),
            role: Role::Admin,
        }
    }

    #[test]
    fn sessions_end_when_they_expire_or_their_token_is_revoked() {
        let sessions = Sessions::default();
        let token = token::hash("orch_one");
        let (id, session) = sessions.start(caller(), token, 1_000).unwrap();
        assert_eq!(sessions.find(&id, 2_000).unwrap().caller, caller());
        assert!(sessions.find("forged", 2_000).is_none());
        assert!(sessions.find(&id, 1_000 + LIFETIME_MS).is_none(), "expired");
        let (id, _) = sessions.start(caller(), token, 1_000).unwrap();
        sessions.keep_only(|kept| *kept != token);
        assert!(sessions.find(&id, 2_000).is_none(), "its token was revoked");
        assert_eq!(session.csrf.len(), 64);
    }

    #[test]
    fn the_csrf_token_must_match_exactly() {
        let sessions = Sessions::default();
        let (_, session) = sessions.start(caller(), [0; 32], 0).unwrap();
        let mut headers = HeaderMap::new();
        assert!(!session.csrf_matches(&headers));
        headers.insert(CSRF_HEADER, HeaderValue::from_static("nope"));
        assert!(!session.csrf_matches(&headers));
        headers.insert(CSRF_HEADER, session.csrf.parse().unwrap());
        assert!(session.csrf_matches(&headers));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; orchestra_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers), Some("abc"));
        headers.insert(header::COOKIE, "orchestra_sessionx=abc".parse().unwrap());
        assert_eq!(cookie(&headers), None);
    }

    #[test]
    fn the_oldest_session_ends_when_there_are_too_many() {
        let sessions = Sessions::default();
        let (first, _) = sessions.start(caller(), [0; 32], 0).unwrap();
        for n in 1..MAX_SESSIONS {
            sessions.start(caller(), [0; 32], n as Millis).unwrap();
        }
        let (last, _) = sessions.start(caller(), [0; 32], 99_999).unwrap();
        assert!(sessions.find(&first, 100_000).is_none());
        assert!(sessions.find(&last, 100_000).is_some());
    }
}
