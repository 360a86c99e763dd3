//! The dashboard's pages over HTTP: a stranger is sent to log in, the login sets the
//! session cookie and goes back (never to another site), and the overview, the job
//! list with its filters and a job's page show what the API holds, escaped, with
//! buttons for admins only.

use crate::common::{Options, Orchestra};
use serde_json::json;
use std::time::Duration;

/// An answer: status, a header's value and the body's text.
pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) header: Option<String>,
    pub(crate) text: String,
}

/// Sends `method path` (no redirect followed) with `headers` and a form `body`,
/// returning the answer and its `header`.
pub(crate) fn fetch(
    host: &Orchestra,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    form: Option<&str>,
    header: &str,
) -> Page {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut request = ureq::http::Request::builder()
        .method(method)
        .uri(host.url(path))
        .header("content-type", "application/x-www-form-urlencoded");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(form.unwrap_or_default().to_owned())
        .expect("a request");
    let mut response = agent.run(request).expect("an answer");
    Page {
        status: response.status().as_u16(),
        header: response
            .headers()
            .get(header)
            .map(|v| v.to_str().unwrap().to_owned()),
        text: response.body_mut().read_to_string().unwrap_or_default(),
    }
}

/// A page as `token` sees it.
pub(crate) fn page(host: &Orchestra, token: &str, path: &str) -> Page {
    let bearer = format!("Bearer {token}");
    fetch(
        host,
        "GET",
        path,
        &[("authorization", &bearer)],
        None,
        "content-type",
    )
}

/// Logs in through the form; returns the `Cookie` header value.
fn log_in(host: &Orchestra, token: &str) -> String {
    let form = format!("token={token}&next=%2Fjobs%3Fstate%3Dfailed");
    let answer = fetch(host, "POST", "/login", &[], Some(&form), "location");
    assert_eq!(answer.status, 303, "{}", answer.text);
    assert_eq!(answer.header.as_deref(), Some("/jobs?state=failed"));
    let again = fetch(host, "POST", "/login", &[], Some(&form), "set-cookie");
    let cookie = again.header.expect("a session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    cookie.split(';').next().unwrap().to_owned()
}

#[test]
fn a_stranger_is_sent_to_log_in_and_comes_back_logged_in() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let away = fetch(&host, "GET", "/jobs?state=failed", &[], None, "location");
    assert_eq!(away.status, 303);
    assert_eq!(
        away.header.as_deref(),
        Some("/login?next=/jobs%3Fstate%3Dfailed")
    );
    let form = fetch(&host, "GET", "/login?next=/jobs", &[], None, "content-type");
    assert_eq!(form.status, 200);
    assert!(
        form.text
            .contains("<form method=\"post\" action=\"/login\">")
    );
    assert!(form.text.contains("<label for=\"token\">"));

    let wrong = fetch(
        &host,
        "POST",
        "/login",
        &[],
        Some("token=orch_nope&next=/"),
        "set-cookie",
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.header.is_none());
    assert!(wrong.text.contains("That token is not valid."));
    let elsewhere = format!("token={}&next=https://evil.example/", host.token().unwrap());
    let answer = fetch(&host, "POST", "/login", &[], Some(&elsewhere), "location");
    assert_eq!(answer.header.as_deref(), Some("/"), "never to another site");
    let foreign = fetch(
        &host,
        "POST",
        "/login",
        &[("origin", "http://evil.example")],
        Some(&elsewhere),
        "set-cookie",
    );
    assert_eq!(foreign.status, 403, "a login form on another site");

    let cookie = log_in(&host, host.token().unwrap());
    let overview = fetch(
        &host,
        "GET",
        "/",
        &[("cookie", &cookie)],
        None,
        "content-type",
    );
    assert_eq!(overview.status, 200, "{}", overview.text);
    assert!(overview.text.contains("hx-headers='{\"X-CSRF-Token\": \""));
    let stale = fetch(
        &host,
        "GET",
        "/",
        &[("cookie", "orchestra_session=0")],
        None,
        "location",
    );
    assert_eq!(stale.status, 303, "an ended session logs in again");
}

#[test]
fn pages_show_jobs_with_their_filters_and_escape_what_they_show() {
    let host = Orchestra::start(Options::new().plugin("echo").plugin("flaky"));
    let token = host.token().unwrap().to_owned();
    let ok = host.submit("echo", json!({"note": "<script>alert(1)</script>"}));
    let failing = host.submit_job(json!({"plugin": "flaky", "args": {"fatal": true}}));
    host.wait_for_state(&ok, &["succeeded"], Duration::from_secs(60));
    host.wait_for_state(&failing, &["failed"], Duration::from_secs(60));

    let overview = page(&host, &token, "/");
    assert_eq!(overview.status, 200, "{}", overview.text);
    assert_eq!(overview.header.as_deref(), Some("text/html; charset=utf-8"));
    for part in [
        "<li id=\"tile-succeeded\"><a href=\"/jobs?state=succeeded\" class=\"state-succeeded\">succeeded</a><span class=\"n\">1</span>",
        "<a href=\"/jobs?state=failed\" class=\"state-failed\">failed</a><span class=\"n\">1</span>",
        "Runs per minute, last hour",
        "1 succeeded and 1 failed",
        "<a href=\"/jobs?queue=default\">default</a>",
        "data-events=\"/api/events\"",
    ] {
        assert!(overview.text.contains(part), "{part} in {}", overview.text);
    }

    let failed = page(&host, &token, "/jobs?state=failed");
    assert!(failed.text.contains(&failing), "{}", failed.text);
    assert!(!failed.text.contains(&ok));
    assert!(failed.text.contains("<option value=\"failed\" selected>"));
    let echo = page(&host, &token, "/jobs?plugin=echo");
    assert!(echo.text.contains(&ok) && !echo.text.contains(&failing));
    let list = page(&host, &token, "/jobs");
    for part in [
        "<form id=\"submit\" hx-post=\"/api/jobs\"",
        "<option>echo</option><option>flaky</option>",
    ] {
        assert!(list.text.contains(part), "{part} in {}", list.text);
    }
    let bad = page(&host, &token, "/jobs?state=lost");
    assert_eq!(bad.status, 422, "{}", bad.text);

    let detail = page(&host, &token, &format!("/jobs/{ok}"));
    assert_eq!(detail.status, 200, "{}", detail.text);
    assert!(!detail.text.contains("<script>alert(1)"), "escaped");
    assert!(
        detail
            .text
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{}",
        detail.text
    );
    for part in [
        "<td class=\"state-processing\">processing</td>",
        "<td class=\"state-succeeded\">succeeded</td><td>completed</td>",
        "data-events=\"/api/events?job_id=",
    ] {
        assert!(detail.text.contains(part), "{part} in {}", detail.text);
    }
    let failed = page(&host, &token, &format!("/jobs/{failing}"));
    assert!(
        failed
            .text
            .contains(&format!("hx-post=\"/api/jobs/{failing}/retry\""))
    );
    assert!(failed.text.contains("fatal: "), "{}", failed.text);
    assert_eq!(page(&host, &token, "/jobs/nope").status, 404);

    let (status, made) = host.post("/api/tokens", &json!({"role": "read", "name": "viewer"}));
    assert_eq!(status, 201, "{made}");
    let viewer = page(
        &host,
        made["token"].as_str().unwrap(),
        &format!("/jobs/{failing}"),
    );
    assert_eq!(viewer.status, 200);
    assert!(
        !viewer.text.contains("hx-post"),
        "a read token sees no buttons"
    );
    let viewers_list = page(&host, made["token"].as_str().unwrap(), "/jobs");
    assert_eq!(viewers_list.status, 200);
    assert!(
        !viewers_list.text.contains("id=\"submit\""),
        "a read token gets no form to submit jobs"
    );
}

#[test]
fn static_files_are_served_from_the_binary() {
    let host = Orchestra::start(Options::new());
    let htmx = fetch(
        &host,
        "GET",
        "/static/htmx-2.0.11.min.js",
        &[],
        None,
        "content-type",
    );
    assert_eq!(htmx.status, 200);
    assert_eq!(htmx.header.as_deref(), Some("text/javascript"));
    assert!(htmx.text.starts_with("var htmx=function()"));
    let version = env!("CARGO_PKG_VERSION");
    let css = fetch(
        &host,
        "GET",
        &format!("/static/dash-{version}.css"),
        &[],
        None,
        "content-type",
    );
    assert_eq!(css.header.as_deref(), Some("text/css"));
    let missing = fetch(
        &host,
        "GET",
        "/static/secrets.txt",
        &[],
        None,
        "content-type",
    );
    assert_eq!(missing.status, 404);
}

#[test]
fn jobs_are_searched_by_text_and_acted_on_in_bulk() {
    let host = Orchestra::start(Options::new().plugin("echo").plugin("flaky"));
    let token = host.token().unwrap().to_owned();
    let failing: Vec<String> = (0..3)
        .map(|n| {
            host.submit_job(json!({"plugin": "flaky",
                                   "args": {"fatal": true, "customer": format!("ACME-{n}")}}))
        })
        .collect();
    let others: Vec<String> = (0..2)
        .map(|n| host.submit("echo", json!({"customer": format!("zeta-{n}")})))
        .collect();
    for id in &failing {
        host.wait_for_state(id, &["failed"], Duration::from_secs(60));
    }
    for id in &others {
        host.wait_for_state(id, &["succeeded"], Duration::from_secs(60));
    }

    let (status, found) = host.get("/api/jobs?q=acme");
    assert_eq!(status, 200, "{found}");
    let mut ids: Vec<String> = found["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected = failing.clone();
    expected.sort();
    assert_eq!(ids, expected, "args searched in any case");
    let (status, by_error) = host.get("/api/jobs?q=failed%20fatally");
    assert_eq!(status, 200);
    assert_eq!(
        by_error["jobs"].as_array().unwrap().len(),
        3,
        "error text searched"
    );

    let searched = page(&host, &token, "/jobs?q=acme&state=failed");
    assert!(
        searched.text.contains("All 3 jobs that match"),
        "{}",
        searched.text
    );
    assert!(
        searched.text.contains("value=\"acme\""),
        "the search is kept"
    );
    for id in &failing {
        assert!(searched.text.contains(id.as_str()));
    }
    let (status, made) = host.post("/api/tokens", &json!({"role": "read", "name": "viewer"}));
    assert_eq!(status, 201, "{made}");
    let viewer = page(&host, made["token"].as_str().unwrap(), "/jobs?q=acme");
    assert!(
        !viewer.text.contains("bulk"),
        "a read token gets no bulk controls"
    );

    let bearer = format!("Bearer {token}");
    let form = "action=retry&all=1&q=acme&state=failed";
    let done = fetch(
        &host,
        "POST",
        "/jobs/bulk",
        &[("authorization", &bearer)],
        Some(form),
        "content-type",
    );
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.text.contains("Retried 3 of 3 jobs."), "{}", done.text);
    for id in &failing {
        let job = host.job(id);
        let history = job["history"].as_array().unwrap();
        assert!(
            history.iter().any(|h| h["reason"] == "retried by request"),
            "{job}"
        );
    }
    let everything = fetch(
        &host,
        "POST",
        "/jobs/bulk",
        &[("authorization", &bearer)],
        Some("action=delete&all=1"),
        "content-type",
    );
    assert_eq!(everything.status, 422, "all jobs at once needs a filter");

    let (status, deleted) = host.post(
        "/api/jobs/bulk",
        &json!({"action": "delete", "ids": [others[0], others[1], failing[0]]}),
    );
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["matched"], 3);
    assert!(deleted["changed"].as_u64().unwrap() >= 2, "{deleted}");
    assert_eq!(host.get(&format!("/api/jobs/{}", others[0])).0, 404);
    for (body, field) in [
        (json!({"action": "explode", "ids": []}), "action"),
        (json!({"action": "retry"}), "ids"),
        (json!({"action": "retry", "ids": [], "filter": {}}), "ids"),
        (
            json!({"action": "retry", "filter": {"state": "lost"}}),
            "filter",
        ),
    ] {
        let (status, refused) = host.post("/api/jobs/bulk", &body);
        assert_eq!(
            (status, &refused["field"]),
            (422, &json!(field)),
            "{body}: {refused}"
        );
    }
}
