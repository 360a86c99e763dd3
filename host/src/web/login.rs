//! `/login`: a form that takes an API token and sets the session cookie, then goes back
//! to the page that asked for it.

use super::{assets, render};
use crate::api::{ApiError, AppState, login_cookie};
use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    next: String,
    error: Option<String>,
    version: &'static str,
}

/// `?next=`: where to go once logged in.
#[derive(Debug, Deserialize)]
pub(super) struct Next {
    next: Option<String>,
}

/// The form's fields.
#[derive(Debug, Deserialize)]
pub(super) struct Submitted {
    token: String,
    next: Option<String>,
}

/// `next` if it is a page of this host, else the overview: a login never sends the
/// browser elsewhere.
fn local(next: Option<String>) -> String {
    next.filter(|next| next.starts_with('/') && !next.starts_with("//") && !next.contains('\\'))
        .unwrap_or_else(|| "/".to_owned())
}

/// `GET /login`.
pub(super) async fn form(Query(query): Query<Next>) -> Result<Response, ApiError> {
    render(&LoginPage {
        next: local(query.next),
        error: None,
        version: assets::VERSION,
    })
}

/// `POST /login`: a good token sets the cookie and goes on; a wrong one shows the form
/// again (401, or 429 past the failed-login limit).
pub(super) async fn submit(
    State(state): State<AppState>,
    Form(form): Form<Submitted>,
) -> Result<Response, ApiError> {
    let next = local(form.next);
    match login_cookie(&state.access, form.token.trim()) {
        Ok(cookie) => {
            let mut response = Redirect::to(&next).into_response();
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            Ok(response)
        }
        Err(refused) => {
            let status = refused.into_response().status();
            let error = if status == StatusCode::TOO_MANY_REQUESTS {
                "Too many failed logins: try again in a minute."
            } else {
                "That token is not valid."
            };
            let page = render(&LoginPage {
                next,
                error: Some(error.to_owned()),
                version: assets::VERSION,
            })?;
            Ok((status, page).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_only_goes_on_to_this_hosts_pages() {
        assert_eq!(
            local(Some("/jobs?state=failed".into())),
            "/jobs?state=failed"
        );
        for away in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "jobs",
        ] {
            assert_eq!(local(Some(away.into())), "/", "{away}");
        }
        assert_eq!(local(None), "/");
    }
}
