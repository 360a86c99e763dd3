//! Browser sessions: a login with a token sets an HttpOnly, SameSite=Strict cookie that
//! then stands for the token; every change made with the cookie needs the session's CSRF
//! token; logins from other sites, wrong logins past the limit, a logout and a revoked
//! token all end or refuse the session.

use crate::common::{Options, Orchestra, new_agent};
use serde_json::{Value, json};
use std::time::Duration;

/// An answer: status, `Set-Cookie` (if any) and JSON body.
struct Answer {
    status: u16,
    set_cookie: Option<String>,
    body: Value,
}

/// Sends `method path` with `headers` and `body`, and no token.
fn send(
    host: &Orchestra,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Answer {
    let mut request = ureq::http::Request::builder()
        .method(method)
        .uri(host.url(path))
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(body.map(|b| b.to_string()).unwrap_or_default())
        .expect("a request");
    let mut response = new_agent(None, Duration::from_secs(30))
        .run(request)
        .expect("an answer");
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.body_mut().read_to_string().unwrap_or_default();
    Answer {
        status: response.status().as_u16(),
        set_cookie,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// Logs in with `token`; returns the `Cookie` header value and the CSRF token.
fn login(host: &Orchestra, token: &str) -> (String, String) {
    let answer = send(
        host,
        "POST",
        "/api/session",
        &[],
        Some(json!({"token": token})),
    );
    assert_eq!(answer.status, 201, "{}", answer.body);
    let set = answer.set_cookie.expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    let cookie = set.split(';').next().unwrap().to_owned();
    assert!(!cookie.contains(token), "the cookie is not the token");
    let csrf = answer.body["csrf_token"].as_str().unwrap().to_owned();
    (cookie, csrf)
}

#[test]
fn a_session_cookie_reads_and_changes_only_with_its_csrf_token() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let (cookie, csrf) = login(&host, host.token().unwrap());
    let jobs = send(&host, "GET", "/api/jobs", &[("cookie", &cookie)], None);
    assert_eq!(jobs.status, 200, "{}", jobs.body);
    let me = send(&host, "GET", "/api/session", &[("cookie", &cookie)], None);
    assert_eq!((me.status, &me.body["role"]), (200, &json!("admin")));
    assert_eq!(
        me.body["csrf_token"], csrf,
        "a page can read the token again"
    );

    let job = json!({"plugin": "echo"});
    let without = send(
        &host,
        "POST",
        "/api/jobs",
        &[("cookie", &cookie)],
        Some(job.clone()),
    );
    assert_eq!(without.status, 403, "no CSRF token: {}", without.body);
    assert!(without.body["error"].as_str().unwrap().contains("CSRF"));
    let forged = [("cookie", cookie.as_str()), ("x-csrf-token", "guess")];
    let wrong = send(&host, "POST", "/api/jobs", &forged, Some(job.clone()));
    assert_eq!(wrong.status, 403, "a wrong CSRF token: {}", wrong.body);
    let sent = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let made = send(&host, "POST", "/api/jobs", &sent, Some(job.clone()));
    assert_eq!(made.status, 201, "{}", made.body);

    let stranger = [
        ("cookie", cookie.as_str()),
        ("x-csrf-token", csrf.as_str()),
        ("origin", "http://evil.example"),
    ];
    let refused = send(&host, "POST", "/api/jobs", &stranger, Some(job.clone()));
    assert_eq!(refused.status, 403, "another site's page: {}", refused.body);

    let forged_cookie = send(
        &host,
        "GET",
        "/api/jobs",
        &[("cookie", "orchestra_session=00")],
        None,
    );
    assert_eq!(forged_cookie.status, 401, "{}", forged_cookie.body);

    let out = send(&host, "DELETE", "/api/session", &sent, None);
    assert_eq!(out.status, 204, "{}", out.body);
    assert!(out.set_cookie.unwrap().contains("Max-Age=0"));
    let after = send(&host, "GET", "/api/jobs", &[("cookie", &cookie)], None);
    assert_eq!(after.status, 401, "logged out: {}", after.body);
}

#[test]
fn a_read_session_only_reads_and_a_revoked_token_ends_its_sessions() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let (status, made) = host.post("/api/tokens", &json!({"role": "read", "name": "viewer"}));
    assert_eq!(status, 201, "{made}");
    let (cookie, csrf) = login(&host, made["token"].as_str().unwrap());
    let sent = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let read = send(&host, "GET", "/api/queues", &sent, None);
    assert_eq!(read.status, 200, "{}", read.body);
    let forged = send(&host, "POST", "/api/queues/default/pause", &sent, None);
    assert_eq!(
        forged.status, 403,
        "a read session changes nothing: {}",
        forged.body
    );

    let (again, again_csrf) = login(&host, made["token"].as_str().unwrap());
    let out = send(&host, "DELETE", "/api/session", &[("cookie", &again)], None);
    assert_eq!(
        out.status, 403,
        "logging out needs the CSRF token too: {}",
        out.body
    );
    let with_csrf = [
        ("cookie", again.as_str()),
        ("x-csrf-token", again_csrf.as_str()),
    ];
    let out = send(&host, "DELETE", "/api/session", &with_csrf, None);
    assert_eq!(out.status, 204, "a read session may log out: {}", out.body);

    let (status, revoked) = host.delete("/api/tokens/viewer");
    assert_eq!(status, 200, "{revoked}");
    let ended = send(&host, "GET", "/api/queues", &sent, None);
    assert_eq!(ended.status, 401, "its token was revoked: {}", ended.body);
}

#[test]
fn logins_are_refused_from_other_sites_and_limited_when_wrong() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let token = json!({"token": host.token().unwrap()});
    let foreign = [("origin", "http://evil.example")];
    let answer = send(&host, "POST", "/api/session", &foreign, Some(token.clone()));
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(answer.set_cookie.is_none());

    let mut statuses = Vec::new();
    for n in 0..25 {
        let wrong = json!({"token": format!("orch_wrong{n}")});
        let answer = send(&host, "POST", "/api/session", &[], Some(wrong));
        assert!(answer.set_cookie.is_none());
        statuses.push(answer.status);
    }
    assert_eq!(statuses[0], 401);
    assert_eq!(*statuses.last().unwrap(), 429, "{statuses:?}");
    let answer = send(
        &host,
        "POST",
        "/api/session",
        &[],
        Some(json!({"secret": 1})),
    );
    assert_eq!(answer.status, 422, "{}", answer.body);
    login(&host, host.token().unwrap());
}
