//! The OpenAPI document (`GET /api/openapi.json`): it lists every route the host serves
//! and no other, each with the role it needs, and real answers of a realistic scenario
//! validate against the schemas it gives for their operation and status.

use crate::common::agents::Workspace;
use crate::common::{Options, Orchestra, TIMEOUT, new_agent, now_ms, rfc3339, wait_until};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// Every operation the API serves, `(method, path)`: a route added or removed without
/// changing this table fails the test.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/agents"),
    ("POST", "/api/agents"),
    ("GET", "/api/agents/{id}"),
    ("PATCH", "/api/agents/{id}"),
    ("DELETE", "/api/agents/{id}"),
    ("POST", "/api/agents/{id}/heartbeat"),
    ("GET", "/api/alerts"),
    ("GET", "/api/alerts/incidents"),
    ("PUT", "/api/alerts/{id}"),
    ("DELETE", "/api/alerts/{id}"),
    ("GET", "/api/audit"),
    ("POST", "/api/batches"),
    ("GET", "/api/batches/{id}"),
    ("POST", "/api/batches/{id}/cancel"),
    ("GET", "/api/events"),
    ("GET", "/api/events/ws"),
    ("GET", "/api/jobs"),
    ("POST", "/api/jobs"),
    ("POST", "/api/jobs/bulk"),
    ("GET", "/api/jobs/{id}"),
    ("DELETE", "/api/jobs/{id}"),
    ("POST", "/api/jobs/{id}/cancel"),
    ("GET", "/api/jobs/{id}/logs"),
    ("POST", "/api/jobs/{id}/retry"),
    ("POST", "/api/maintenance/cleanup"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/plugins"),
    ("GET", "/api/queues"),
    ("PUT", "/api/queues/{name}/concurrency"),
    ("POST", "/api/queues/{name}/pause"),
    ("POST", "/api/queues/{name}/resume"),
    ("GET", "/api/recurring"),
    ("GET", "/api/recurring/preview"),
    ("GET", "/api/recurring/{id}"),
    ("PUT", "/api/recurring/{id}"),
    ("DELETE", "/api/recurring/{id}"),
    ("POST", "/api/recurring/{id}/pause"),
    ("POST", "/api/recurring/{id}/resume"),
    ("POST", "/api/recurring/{id}/trigger"),
    ("GET", "/api/session"),
    ("POST", "/api/session"),
    ("DELETE", "/api/session"),
    ("GET", "/api/stats"),
    ("GET", "/api/stats/series"),
    ("GET", "/api/tasks"),
    ("POST", "/api/tasks"),
    ("GET", "/api/tasks/{id}"),
    ("POST", "/api/tasks/{id}/cancel"),
    ("GET", "/api/tokens"),
    ("POST", "/api/tokens"),
    ("DELETE", "/api/tokens/{name}"),
    ("GET", "/api/workflow-runs/{id}"),
    ("POST", "/api/workflow-runs/{id}/cancel"),
    ("GET", "/api/workflows/{id}"),
    ("PUT", "/api/workflows/{id}"),
    ("DELETE", "/api/workflows/{id}"),
    ("POST", "/api/workflows/{id}/runs"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
];

/// The methods a route may be served with.
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// What a path parameter is given when any value will do: a UUID, which is also a
/// valid agent, queue, recurring job, workflow and token name.
const PLACEHOLDER: &str = "01890000-0000-7000-8000-000000000000";

/// `GET /api/openapi.json` of `host`, asserting 200.
fn document(host: &Orchestra) -> Value {
    let (status, document) = host.get("/api/openapi.json");
    assert_eq!(
        status, 200,
        "GET /api/openapi.json answered {status}: {document}"
    );
    document
}

/// Every operation of `document`: `(method, path, operation)`.
fn operations(document: &Value) -> Vec<(String, String, &Value)> {
    let paths = document["paths"]
        .as_object()
        .expect("the document has paths");
    let mut all = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(operation) = item.get(method.to_lowercase()) {
                all.push((method.to_owned(), path.clone(), operation));
            }
        }
    }
    all
}

/// The role an operation needs: its `bearer` requirement's only entry.
fn role(operation: &Value) -> Option<&str> {
    operation["security"][0]["bearer"][0].as_str()
}

/// `path` with each `{param}` replaced by [`PLACEHOLDER`].
fn filled(path: &str) -> String {
    let parts = path.split('/').map(|part| {
        if part.starts_with('{') {
            PLACEHOLDER
        } else {
            part
        }
    });
    parts.collect::<Vec<_>>().join("/")
}

/// An answer: its status, its content type and its body (JSON when it is JSON, `null`
/// when empty or a stream, else the text as a JSON string).
struct Answer {
    status: u16,
    content_type: String,
    body: Value,
}

/// Sends `method path` as the holder of `authorization` (none: no header) with `body`
/// (its content type and bytes). A stream's body is not read.
fn send(
    host: &Orchestra,
    authorization: Option<&str>,
    method: &str,
    path: &str,
    body: Option<(&str, Vec<u8>)>,
) -> Answer {
    let headers: Vec<(&str, &str)> = authorization
        .map(|value| ("authorization", value))
        .into_iter()
        .collect();
    send_with(host, &headers, method, path, body)
}

/// Sends `method path` with `headers` and `body` (its content type and bytes).
fn send_with(
    host: &Orchestra,
    headers: &[(&str, &str)],
    method: &str,
    path: &str,
    body: Option<(&str, Vec<u8>)>,
) -> Answer {
    let mut request = ureq::http::Request::builder()
        .method(method)
        .uri(host.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let agent = new_agent(None, Duration::from_secs(30));
    let sent = match body {
        Some((content_type, bytes)) => {
            let request = request.header("content-type", content_type);
            agent.run(request.body(bytes).expect("a request"))
        }
        None => agent.run(request.body(ureq::SendBody::none()).expect("a request")),
    };
    let mut response = sent.unwrap_or_else(|e| panic!("{method} {path} failed: {e}"));
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = if content_type == "text/event-stream" {
        Value::Null
    } else {
        let text = response.body_mut().read_to_string().unwrap_or_default();
        match serde_json::from_str(&text) {
            Ok(json) if content_type.starts_with("application/json") => json,
            _ if text.is_empty() => Value::Null,
            _ => Value::String(text),
        }
    };
    Answer {
        status: response.status().as_u16(),
        content_type,
        body,
    }
}

/// Makes a token of `role` with the host's admin token; returns it.
fn make_token(host: &Orchestra, role: &str, name: &str) -> String {
    let (status, made) = host.post("/api/tokens", &json!({"role": role, "name": name}));
    assert_eq!(status, 201, "{made}");
    made["token"].as_str().expect("the token").to_owned()
}

#[test]
fn the_document_lists_every_route_served_and_no_other() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let document = document(&host);
    let version = document["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1."), "OpenAPI {version}");
    let listed: BTreeSet<(String, String)> = operations(&document)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(
        listed.difference(&expected).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented, but not in the table"
    );
    assert_eq!(
        expected.difference(&listed).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "in the table, but not documented"
    );
    let admin = host.authorization();
    let reader = format!("Bearer {}", make_token(&host, "read", "reader"));
    let paths: BTreeSet<&str> = ROUTES.iter().map(|(_, path)| *path).collect();
    for path in paths {
        let concrete = filled(path);
        for method in METHODS {
            let answer = send(&host, Some(&admin), method, &concrete, None);
            let unrouted = answer.status == 404
                && answer.body["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("no route for"));
            if let Some(operation) = document["paths"][path].get(method.to_lowercase()) {
                assert!(
                    !unrouted && answer.status != 405,
                    "documented {method} {path} is not served: {} {}",
                    answer.status,
                    answer.body
                );
                let read = send(&host, Some(&reader), method, &concrete, None);
                match role(operation) {
                    Some("admin") => assert_eq!(read.status, 403, "{method} {path} as a reader"),
                    Some("read") | None => assert!(
                        !matches!(read.status, 401 | 403),
                        "{method} {path} is documented for readers: {} {}",
                        read.status,
                        read.body
                    ),
                    Some(other) => panic!("{method} {path} needs an unknown role {other}"),
                }
            } else {
                assert_eq!(
                    answer.status, 405,
                    "{method} {path} is served but not documented: {}",
                    answer.body
                );
            }
        }
    }
}

/// The document a host serves, and the check of answers against it.
struct Contract {
    document: Value,
    /// Validators of the schemas, by their place in the document, each made once.
    validators: HashMap<String, jsonschema::Validator>,
    /// The operations seen answering a success that matched the document:
    /// `(method, path)`.
    confirmed: BTreeSet<(String, String)>,
}

impl Contract {
    fn new(document: Value) -> Contract {
        Contract {
            document,
            validators: HashMap::new(),
            confirmed: BTreeSet::new(),
        }
    }

    /// The path of the document that `path` (its query aside) is an instance of: the one
    /// whose fixed parts it matches, the most fixed parts first.
    fn template(&self, path: &str) -> String {
        let path = path.split('?').next().unwrap_or(path);
        let parts: Vec<&str> = path.split('/').collect();
        let paths = self.document["paths"].as_object().expect("paths");
        let fits = |template: &&String| {
            let fixed: Vec<&str> = template.split('/').collect();
            fixed.len() == parts.len()
                && fixed
                    .iter()
                    .zip(&parts)
                    .all(|(t, p)| t.starts_with('{') || t == p)
        };
        let literal =
            |template: &&String| template.split('/').filter(|t| !t.starts_with('{')).count();
        paths
            .keys()
            .filter(fits)
            .max_by_key(literal)
            .unwrap_or_else(|| panic!("{path} is no path of the document"))
            .clone()
    }

    /// What is wrong with `answer` to `method path` by the document: nothing when its
    /// status is listed for the operation, its content type is one the document gives
    /// for that status, and its body validates against that content's schema.
    fn problems(&mut self, method: &str, path: &str, answer: &Answer) -> Vec<String> {
        let template = self.template(path);
        let status = answer.status.to_string();
        let pointer = format!(
            "/paths/{}/{}/responses/{status}",
            template.replace('~', "~0").replace('/', "~1"),
            method.to_lowercase()
        );
        let Some(response) = self.document.pointer(&pointer) else {
            return vec![format!("{method} {template} does not list status {status}")];
        };
        let media = answer.content_type.as_str();
        let documented = response["content"]
            .as_object()
            .map(|content| content.contains_key(media));
        let stream = media == "text/event-stream";
        let problems = match documented {
            None if answer.body.is_null() => Vec::new(),
            Some(_) if answer.body.is_null() && !stream => {
                vec![format!("{method} {template} {status}: no body")]
            }
            None | Some(false) => vec![format!(
                "{method} {template} {status}: content type `{media}` is not documented"
            )],
            Some(true) if stream => Vec::new(),
            Some(true) => {
                let place = format!("{pointer}/content/{}", media.replace('/', "~1"));
                self.invalid(&place, &answer.body)
            }
        };
        let success = (200..300).contains(&answer.status) || answer.status == 101;
        if problems.is_empty() && success {
            self.confirmed.insert((method.to_owned(), template));
        }
        problems
    }

    /// What is wrong with `body` by the schema of the content at `place` in the document.
    fn invalid(&mut self, place: &str, body: &Value) -> Vec<String> {
        let document = &self.document;
        let validator = self.validators.entry(place.to_owned()).or_insert_with(|| {
            let schema = &document.pointer(place).expect("a documented content")["schema"];
            // The schema's references point into the document's components.
            let root = json!({"components": document["components"], "allOf": [schema]});
            jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&root)
                .unwrap_or_else(|e| panic!("the schema at {place} is not valid: {e}"))
        });
        validator
            .iter_errors(body)
            .map(|e| format!("{place}: {e} at `{}`", e.instance_path()))
            .collect()
    }

    /// Asserts that `answer` matches the document.
    fn check(&mut self, method: &str, path: &str, answer: &Answer) {
        let problems = self.problems(method, path, answer);
        assert!(
            problems.is_empty(),
            "{method} {path} answered {} {}, which the document does not allow:\n{}",
            answer.status,
            answer.body,
            problems.join("\n")
        );
    }
}

/// A client of a host whose every answer is checked against the document.
struct Api<'h> {
    host: &'h Orchestra,
    admin: String,
    contract: Contract,
}

impl<'h> Api<'h> {
    fn new(host: &'h Orchestra) -> Api<'h> {
        Api {
            host,
            admin: host.authorization(),
            contract: Contract::new(document(host)),
        }
    }

    /// Sends a request as the holder of `authorization`, checks the answer and returns
    /// its status and body.
    fn send_as(
        &mut self,
        authorization: Option<&str>,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> (u16, Value) {
        let answer = send(self.host, authorization, method, path, body);
        self.contract.check(method, path, &answer);
        (answer.status, answer.body)
    }

    /// Sends a request with `headers` (a session's cookie, say), checks the answer and
    /// returns it.
    fn send_with(
        &mut self,
        headers: &[(&str, &str)],
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        let answer = send_with(self.host, headers, method, path, body);
        self.contract.check(method, path, &answer);
        answer
    }

    /// Sends a request as an admin.
    fn send(&mut self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let admin = self.admin.clone();
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        self.send_as(Some(&admin), method, path, body)
    }

    fn get(&mut self, path: &str) -> (u16, Value) {
        self.send("GET", path, None)
    }

    fn post(&mut self, path: &str, body: Value) -> (u16, Value) {
        self.send("POST", path, Some(body))
    }

    fn post_empty(&mut self, path: &str) -> (u16, Value) {
        self.send("POST", path, None)
    }

    fn put(&mut self, path: &str, body: Value) -> (u16, Value) {
        self.send("PUT", path, Some(body))
    }

    fn patch(&mut self, path: &str, body: Value) -> (u16, Value) {
        self.send("PATCH", path, Some(body))
    }

    fn delete(&mut self, path: &str) -> (u16, Value) {
        self.send("DELETE", path, None)
    }
}

/// The body of an answer of status `expected`; panics with the answer otherwise.
fn expect(expected: u16, (status, body): (u16, Value)) -> Value {
    assert_eq!(status, expected, "answered {body}");
    body
}

/// The `id` of an answer.
fn id(body: &Value) -> String {
    body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {body}"))
        .to_owned()
}

fn jobs(api: &mut Api) {
    let host = api.host;
    let answer = api.post("/api/jobs", json!({"plugin": "echo", "args": {"n": 1}}));
    let done = id(&expect(201, answer));
    host.wait_for_state(&done, &["succeeded"], TIMEOUT);
    let job = api.get(&format!("/api/jobs/{done}"));
    assert!(expect(200, job)["result"].is_object());
    expect(200, api.get(&format!("/api/jobs/{done}/logs?limit=1")));
    let page = api.get("/api/jobs?limit=1&state=succeeded");
    expect(200, page);
    let failing = json!({"plugin": "flaky", "args": {"fatal": true}, "max_attempts": 1});
    let failed = id(&expect(201, api.post("/api/jobs", failing)));
    host.wait_for_state(&failed, &["failed"], TIMEOUT);
    let job = api.get(&format!("/api/jobs/{failed}"));
    assert!(expect(200, job)["error"]["kind"].is_string());
    expect(200, api.post_empty(&format!("/api/jobs/{failed}/retry")));
    expect(409, api.post_empty(&format!("/api/jobs/{done}/retry")));
    let unique = json!({"plugin": "sleep", "args": {"ms": 60000}, "unique_key": "nap"});
    let napping = id(&expect(201, api.post("/api/jobs", unique.clone())));
    let again = expect(200, api.post("/api/jobs", unique));
    assert_eq!(again["existing"], true);
    expect(200, api.post_empty(&format!("/api/jobs/{napping}/cancel")));
    let later = json!({"plugin": "echo", "delay_seconds": 3600});
    let waiting = id(&expect(201, api.post("/api/jobs", later)));
    expect(200, api.post_empty(&format!("/api/jobs/{waiting}/cancel")));
    expect(409, api.post_empty(&format!("/api/jobs/{waiting}/cancel")));
    expect(204, api.delete(&format!("/api/jobs/{waiting}")));
    expect(404, api.get(&format!("/api/jobs/{waiting}")));
    expect(400, api.get("/api/jobs/not-a-uuid"));
    expect(400, api.get("/api/jobs?limit=0"));
    expect(422, api.get(&format!("/api/jobs/{done}/logs?after=999999")));
    let refused = expect(422, api.post("/api/jobs", json!({"plugin": "nosuch"})));
    assert_eq!(refused["field"], "plugin");
    let bulk = json!({"action": "cancel", "ids": [done]});
    let skipped = expect(200, api.post("/api/jobs/bulk", bulk));
    assert_eq!(
        skipped["skipped"], 1,
        "a finished job is not cancelled: {skipped}"
    );
    let filtered =
        json!({"action": "retry", "filter": {"state": "failed", "q": "nothing-matches"}});
    expect(200, api.post("/api/jobs/bulk", filtered));
    expect(
        422,
        api.post("/api/jobs/bulk", json!({"action": "nope", "ids": []})),
    );
    expect(200, api.get("/api/jobs?q=echo&agent=builder"));
}

fn batches(api: &mut Api) {
    let batch = json!({
        "jobs": [{"plugin": "echo"}, {"plugin": "echo", "args": {"n": 2}}],
        "on_success": {"plugin": "echo"},
        "description": "two echoes",
    });
    let created = expect(201, api.post("/api/batches", batch));
    let batch = id(&created);
    let jobs: Vec<String> = created["jobs"]
        .as_array()
        .expect("the batch's jobs")
        .iter()
        .map(|job| job.as_str().expect("a job id").to_owned())
        .collect();
    api.host.wait_for_all(&jobs, &["succeeded"], TIMEOUT);
    let member = expect(200, api.get(&format!("/api/jobs/{}", jobs[0])));
    assert_eq!(member["batch_id"], batch, "{member}");
    assert_eq!(member["continuations"].as_array().map(Vec::len), Some(1));
    expect(200, api.get(&format!("/api/batches/{batch}")));
    expect(200, api.post_empty(&format!("/api/batches/{batch}/cancel")));
    let empty = expect(422, api.post("/api/batches", json!({"jobs": []})));
    assert_eq!(empty["field"], "jobs");
    expect(404, api.get(&format!("/api/batches/{PLACEHOLDER}")));
}

fn queues(api: &mut Api) {
    expect(200, api.get("/api/queues"));
    expect(200, api.post_empty("/api/queues/spare/pause"));
    expect(200, api.post_empty("/api/queues/spare/resume"));
    let capped = json!({"concurrency": 2});
    expect(200, api.put("/api/queues/spare/concurrency", capped));
    expect(
        200,
        api.put(
            "/api/queues/spare/concurrency",
            json!({"concurrency": null}),
        ),
    );
    let zero = json!({"concurrency": 0});
    expect(422, api.put("/api/queues/spare/concurrency", zero));
    expect(400, api.post_empty("/api/queues/No%20Such/pause"));
}

fn recurring(api: &mut Api) {
    let spec = json!({"cron": "@daily", "plugin": "echo", "queue": "nowhere"});
    let created = expect(201, api.put("/api/recurring/nightly", spec.clone()));
    assert!(created["warning"].is_string(), "{created}");
    expect(200, api.put("/api/recurring/nightly", spec));
    expect(200, api.get("/api/recurring"));
    expect(200, api.get("/api/recurring/nightly"));
    expect(201, api.post_empty("/api/recurring/nightly/trigger"));
    let shown = expect(200, api.get("/api/recurring/nightly"));
    assert!(shown["last_job_id"].is_string(), "{shown}");
    expect(200, api.post_empty("/api/recurring/nightly/pause"));
    expect(200, api.post_empty("/api/recurring/nightly/resume"));
    expect(204, api.delete("/api/recurring/nightly"));
    expect(404, api.get("/api/recurring/nightly"));
    let bad = json!({"cron": "never", "plugin": "echo"});
    let refused = expect(422, api.put("/api/recurring/bad", bad));
    assert_eq!(refused["field"], "cron");
    let preview = expect(
        200,
        api.get("/api/recurring/preview?cron=0+30+9+*+*+MON-FRI&timezone=Europe%2FBerlin&count=3"),
    );
    assert_eq!(
        preview["next"].as_array().map(Vec::len),
        Some(3),
        "{preview}"
    );
    assert_eq!(preview["description"], "at 09:30 on Monday to Friday");
    let refused = expect(422, api.get("/api/recurring/preview?cron=@daily&count=51"));
    assert_eq!(refused["field"], "count");
    expect(400, api.get("/api/recurring/preview?cron=@daily&color=red"));
}

fn workflows(api: &mut Api) {
    let definition = json!({"name": "ci", "stages": [
        {"name": "get", "mode": "sequential", "steps": [
            {"id": "fetch", "plugin": "echo", "args": {"repo": "{{params.repo}}"}}]},
        {"name": "checks", "mode": "parallel", "steps": [
            {"id": "lint", "plugin": "echo", "when": {"step": "fetch", "state": "succeeded"}},
            {"id": "test", "plugin": "echo", "continue_on_failure": true,
             "when": {"step": "fetch", "path": "/repo", "equals": "x"}}]}]});
    expect(201, api.put("/api/workflows/ci", definition.clone()));
    expect(200, api.put("/api/workflows/ci", definition));
    expect(200, api.get("/api/workflows/ci"));
    let parameters = json!({"parameters": {"repo": "x"}});
    let run = id(&expect(201, api.post("/api/workflows/ci/runs", parameters)));
    let host = api.host;
    wait_until("the run to succeed", TIMEOUT, || {
        let (_, run) = host.get(&format!("/api/workflow-runs/{run}"));
        if run["state"] == "succeeded" {
            Ok(())
        } else {
            Err(run.to_string())
        }
    });
    let done = expect(200, api.get(&format!("/api/workflow-runs/{run}")));
    let fetch = done["steps"][0]["job_id"].as_str().expect("fetch's job");
    let job = expect(200, api.get(&format!("/api/jobs/{fetch}")));
    assert_eq!(job["workflow_run"]["run_id"], run, "{job}");
    expect(
        409,
        api.post_empty(&format!("/api/workflow-runs/{run}/cancel")),
    );
    let slow = json!({"name": "slow", "stages": [{"name": "one", "mode": "sequential",
        "steps": [{"id": "nap", "plugin": "sleep", "args": {"ms": 60000}}]}]});
    expect(201, api.put("/api/workflows/slow", slow));
    let run = id(&expect(
        201,
        api.post("/api/workflows/slow/runs", json!({})),
    ));
    expect(
        200,
        api.post_empty(&format!("/api/workflow-runs/{run}/cancel")),
    );
    let broken = json!({"name": "broken", "stages": [{"name": "one", "mode": "sequential",
        "steps": [{"id": "x", "plugin": "nosuch"}]}]});
    let refused = expect(422, api.put("/api/workflows/broken", broken));
    assert!(refused["field"].is_string(), "{refused}");
    expect(204, api.delete("/api/workflows/slow"));
    expect(404, api.get("/api/workflows/slow"));
    expect(404, api.get(&format!("/api/workflow-runs/{PLACEHOLDER}")));
}

fn agents_and_tasks(api: &mut Api, workspace: &Workspace) {
    let agent = workspace.shell_agent("builder");
    expect(201, api.post("/api/agents", agent.clone()));
    expect(409, api.post("/api/agents", agent));
    expect(200, api.get("/api/agents"));
    let change = json!({"name": "the builder", "health_command": null});
    expect(200, api.patch("/api/agents/builder", change));
    expect(200, api.post_empty("/api/agents/builder/heartbeat"));
    let task = json!({"command": "echo hello", "repository_path": workspace.repo()});
    let submitted = expect(201, api.post("/api/tasks", task));
    let task = submitted["task_id"].as_str().expect("a task id").to_owned();
    api.host.wait_for_task(&task, &["succeeded"], TIMEOUT);
    let shown = expect(200, api.get(&format!("/api/tasks/{task}")));
    assert_eq!(shown["exit_code"], 0, "{shown}");
    expect(200, api.get("/api/tasks?agent_id=builder"));
    expect(200, api.get("/api/agents/builder"));
    expect(409, api.post_empty(&format!("/api/tasks/{task}/cancel")));
    let later = json!({
        "command": "echo later",
        "repository_path": workspace.repo(),
        "priority": "high",
        "execute_at": rfc3339(now_ms() + 3_600_000),
    });
    let waiting = expect(201, api.post("/api/tasks", later))["task_id"].clone();
    let waiting = waiting.as_str().expect("a task id");
    expect(202, api.post_empty(&format!("/api/tasks/{waiting}/cancel")));
    let elsewhere = json!({"command": "echo", "repository_path": workspace.path("bin")});
    let refused = expect(422, api.post("/api/tasks", elsewhere));
    assert_eq!(refused["field"], "repository_path");
    expect(204, api.delete("/api/agents/builder"));
    expect(404, api.get("/api/agents/builder"));
    expect(400, api.get("/api/agents/Not%20An%20Id"));
}

fn tokens_and_access(api: &mut Api) {
    let made = expect(
        201,
        api.post("/api/tokens", json!({"role": "read", "name": "ci"})),
    );
    let reader = format!("Bearer {}", made["token"].as_str().expect("the token"));
    expect(
        409,
        api.post("/api/tokens", json!({"role": "read", "name": "ci"})),
    );
    expect(200, api.get("/api/tokens"));
    expect(200, api.get("/api/audit"));
    let as_reader = api.send_as(Some(&reader), "GET", "/api/jobs", None);
    assert_eq!(as_reader.0, 200);
    let change = Some(("application/json", b"{}".to_vec()));
    let (status, _) = api.send_as(Some(&reader), "POST", "/api/batches", change);
    assert_eq!(status, 403, "a reader changes nothing");
    let (status, _) = api.send_as(Some(&reader), "GET", "/api/audit", None);
    assert_eq!(status, 403, "only admins read the audit log");
    let (status, _) = api.send_as(None, "GET", "/api/queues", None);
    assert_eq!(status, 401);
    expect(200, api.delete("/api/tokens/ci"));
    expect(404, api.delete("/api/tokens/ci"));
    let (status, _) = api.send_as(Some(&reader), "GET", "/api/jobs", None);
    assert_eq!(status, 401, "a revoked token no longer works");
}

fn alerts(api: &mut Api) {
    let rule = json!({"condition": {"kind": "queue_depth", "queue": "default", "above": 100},
                      "webhook": {"url": "http://127.0.0.1:9/hook", "secret": "0123456789abcdef"}});
    expect(201, api.put("/api/alerts/deep", rule.clone()));
    let replaced = expect(200, api.put("/api/alerts/deep", rule));
    assert_eq!(replaced["webhook"]["has_secret"], true);
    let bad = json!({"condition": {"kind": "queue_depth", "queue": "default", "above": "lots"}});
    expect(422, api.put("/api/alerts/bad", bad));
    let listed = expect(200, api.get("/api/alerts"));
    assert!(
        !listed.to_string().contains("0123456789abcdef"),
        "never the secret"
    );
    expect(200, api.get("/api/alerts/incidents?open=true"));
    expect(400, api.get("/api/alerts/incidents?open=maybe"));
    expect(204, api.delete("/api/alerts/deep"));
    expect(404, api.delete("/api/alerts/deep"));
}

fn sessions(api: &mut Api) {
    let token = api.host.token().expect("the admin token").to_owned();
    let wrong = api.send_with(
        &[],
        "POST",
        "/api/session",
        Some(json!({"token": "orch_no"})),
    );
    assert_eq!(wrong.status, 401);
    let made = api.send_with(&[], "POST", "/api/session", Some(json!({"token": token})));
    assert_eq!(made.status, 201, "{}", made.body);
    let csrf = made.body["csrf_token"]
        .as_str()
        .expect("a CSRF token")
        .to_owned();
    let cookie = session_cookie(api.host, &token);
    let shown = api.send_with(&[("cookie", &cookie)], "GET", "/api/session", None);
    assert_eq!(shown.status, 200, "{}", shown.body);
    let without = api.send_with(&[], "GET", "/api/session", None);
    assert_eq!(without.status, 401);
    let shown_csrf = shown.body["csrf_token"].as_str().expect("its CSRF token");
    let ended = api.send_with(
        &[("cookie", &cookie), ("x-csrf-token", shown_csrf)],
        "DELETE",
        "/api/session",
        None,
    );
    assert_eq!(ended.status, 204);
    assert_ne!(csrf, shown_csrf, "each session has its own CSRF token");
}

/// A new session's `Cookie` header value, logged in with `token`.
fn session_cookie(host: &Orchestra, token: &str) -> String {
    let request = ureq::http::Request::builder()
        .method("POST")
        .uri(host.url("/api/session"))
        .header("content-type", "application/json")
        .body(json!({"token": token}).to_string())
        .expect("a request");
    let response = new_agent(None, Duration::from_secs(30))
        .run(request)
        .expect("an answer");
    let set = response.headers().get("set-cookie").expect("a cookie");
    set.to_str().unwrap().split(';').next().unwrap().to_owned()
}

fn bodies(api: &mut Api) {
    let admin = api.admin.clone();
    let send = |api: &mut Api, content_type: &str, bytes: Vec<u8>| {
        api.send_as(
            Some(&admin),
            "POST",
            "/api/jobs",
            Some((content_type, bytes)),
        )
        .0
    };
    assert_eq!(send(api, "application/json", b"{oops".to_vec()), 400);
    assert_eq!(send(api, "text/plain", b"{}".to_vec()), 415);
    assert_eq!(send(api, "application/json", vec![b' '; 2 << 20]), 413);
    let unknown = br#"{"plugin": "echo", "colour": "red"}"#.to_vec();
    assert_eq!(send(api, "application/json", unknown), 422);
}

fn host_and_streams(api: &mut Api) {
    let plugins = expect(200, api.get("/api/plugins"));
    let listed = plugins["plugins"].as_array().expect("plugins");
    assert!(
        listed
            .iter()
            .any(|p| p["name"] == "broken" && p["error"].is_string()),
        "a plugin that does not load is listed: {plugins}"
    );
    expect(200, api.get("/api/stats"));
    let series = expect(200, api.get("/api/stats/series?bucket=minute&by=plugin"));
    assert_eq!(series["times"].as_array().map(Vec::len), Some(60));
    expect(422, api.get("/api/stats/series?bucket=week"));
    expect(200, api.post_empty("/api/maintenance/cleanup"));
    let (status, _) = api.send_as(None, "GET", "/healthz", None);
    assert_eq!(status, 200);
    expect(200, api.get("/api/openapi.json"));
    let metrics = expect(200, api.get("/metrics"));
    assert!(metrics.as_str().is_some_and(|text| text.contains("# EOF")));
    expect(200, api.get("/api/events?types=job.*"));
    expect(400, api.get("/api/events?job_id=nope"));
    // The harness's client asserts the upgrade (101) and reads no body.
    drop(api.host.listen_ws("/api/events/ws"));
    let upgraded = Answer {
        status: 101,
        content_type: String::new(),
        body: Value::Null,
    };
    api.contract.check("GET", "/api/events/ws", &upgraded);
}

#[test]
fn real_answers_validate_against_the_document() {
    let workspace = Workspace::new();
    let options = workspace
        .options()
        .plugin("echo")
        .plugin("sleep")
        .plugin("flaky");
    let host = Orchestra::start(options);
    host.write_plugin_file("broken.wasm", b"not a module");
    host.wait_for_plugin("broken", "listed with its error", |p| {
        p.is_some_and(|p| p["error"].is_string())
    });
    let mut api = Api::new(&host);
    jobs(&mut api);
    batches(&mut api);
    queues(&mut api);
    recurring(&mut api);
    workflows(&mut api);
    agents_and_tasks(&mut api, &workspace);
    tokens_and_access(&mut api);
    sessions(&mut api);
    alerts(&mut api);
    bodies(&mut api);
    host_and_streams(&mut api);
    let unconfirmed: Vec<String> = operations(&api.contract.document)
        .into_iter()
        .filter(|(method, path, _)| {
            !api.contract
                .confirmed
                .contains(&(method.clone(), path.clone()))
        })
        .map(|(method, path, _)| format!("{method} {path}"))
        .collect();
    assert!(
        unconfirmed.is_empty(),
        "operations the scenario never saw succeed: {unconfirmed:?}"
    );
}

#[test]
fn a_wrong_answer_fails_validation() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let mut contract = Contract::new(document(&host));
    let id = host.submit("echo", json!({"n": 1}));
    let job = host.wait_for_state(&id, &["succeeded"], TIMEOUT);
    let path = format!("/api/jobs/{id}");
    let answer = |status: u16, body: Value| Answer {
        status,
        content_type: "application/json".to_owned(),
        body,
    };
    contract.check("GET", &path, &answer(200, job.clone()));
    let wrong = |change: &dyn Fn(&mut Value)| {
        let mut body = job.clone();
        change(&mut body);
        body
    };
    for (what, body) in [
        (
            "an unknown state",
            wrong(&|j| j["state"] = json!("running")),
        ),
        (
            "an id that is no UUID",
            wrong(&|j| j["id"] = json!("job-1")),
        ),
        (
            "a time that is no time",
            wrong(&|j| j["created_at"] = json!("yesterday")),
        ),
        (
            "a missing queue",
            wrong(&|j| {
                j.as_object_mut().unwrap().remove("queue");
            }),
        ),
        ("a count as text", wrong(&|j| j["log_count"] = json!("3"))),
        (
            "a parent without its state",
            wrong(&|j| j["parents"] = json!([{"id": id}])),
        ),
        (
            "a batch that is no id",
            wrong(&|j| j["batch_id"] = json!(7)),
        ),
    ] {
        let problems = contract.problems("GET", &path, &answer(200, body));
        assert!(!problems.is_empty(), "{what} passed validation");
    }
    let mut error =
        |status: u16, body: Value| contract.problems("GET", &path, &answer(status, body));
    assert!(error(404, json!({"error": "no job"})).is_empty());
    assert!(
        !error(404, json!({"error": 3})).is_empty(),
        "an error that is no text"
    );
    assert!(
        !error(404, json!({"message": "no job"})).is_empty(),
        "an error without `error`"
    );
    assert!(
        !error(418, json!({"error": "teapot"})).is_empty(),
        "a status the document does not list"
    );
}
