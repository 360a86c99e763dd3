//! `GET /api/openapi.json`: the API's OpenAPI 3.1 document, made from the annotations the
//! router is built from (`utoipa`): each handler's `#[utoipa::path]` gives its method,
//! path, parameters, body, answers and the role it needs, and every type it answers is
//! `ToSchema`. What every route answers alike is added here, once: the refusals of the
//! access guard and of a JSON body.

use super::AppState;
use super::responses::ErrorBody;
use crate::model::token::Role;
use axum::Extension;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The security scheme every route but `/healthz` needs: a token sent as
/// `Authorization: Bearer <token>`. An operation names the role it needs as the
/// requirement's only entry: `read` (any token) or `admin`.
const BEARER: &str = "bearer";

/// The document, as served: JSON made once.
#[derive(Debug, Clone)]
pub(super) struct Served(Bytes);

impl Served {
    /// `document` as JSON.
    pub(super) fn new(document: &OpenApi) -> Served {
        let json = serde_json::to_vec(document).expect("an OpenAPI document serializes");
        Served(Bytes::from(json))
    }
}

/// The routes of this module.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(document))
}

/// This document: every operation of the API, its parameters, bodies, answers and the
/// role it needs.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "get_openapi",
    tag = "meta",
    security(("bearer" = ["read"])),
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object))
)]
async fn document(Extension(served): Extension<Served>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], served.0)
}

/// The document before any route is added: what the API is, the bearer scheme and the
/// error body.
pub(super) fn base() -> OpenApi {
    let bearer = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .description(Some(
            "An API token (`orch_…`). A `read` token may only read; every change needs an \
             `admin` token. The first start prints an admin token; admins make more at \
             `/api/tokens`.",
        ))
        .build();
    let info = InfoBuilder::new()
        .title("Orchestra")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "A job host that runs every handler as a sandboxed WASI component. Every \
             answer but a success is JSON `{\"error\": \"...\"}`; a refused value (422) \
             also names its `field`.",
        ))
        .build();
    OpenApiBuilder::new()
        .info(info)
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme(BEARER, SecurityScheme::Http(bearer))
                .schema_from::<ErrorBody>()
                .build(),
        ))
        .build()
}

/// `document` with what every route answers alike added to each operation: the access
/// guard's refusals, a JSON body's refusals, and the role it needs in its description.
pub(super) fn finish(mut document: OpenApi) -> OpenApi {
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            guarded(operation);
            if operation.request_body.is_some() {
                takes_json(operation);
            }
        }
    }
    document
}

/// The role an operation needs, if it needs a token.
fn role(operation: &Operation) -> Option<Role> {
    let requirements = operation.security.as_ref()?;
    [Role::Read, Role::Admin]
        .into_iter()
        .find(|role| requirements.contains(&SecurityRequirement::new(BEARER, [role.as_str()])))
}

/// Adds the access guard's answers (see `access::guard`) and says which role is needed.
fn guarded(operation: &mut Operation) {
    let foreign = "The request names a host this one does not answer to, or comes from \
                   another origin.";
    let Some(role) = role(operation) else {
        refusal(operation, "403", foreign);
        return;
    };
    let (needs, forbidden) = match role {
        Role::Read => (
            "Any token may call it (role `read` or `admin`).",
            String::new(),
        ),
        Role::Admin => (
            "It needs an `admin` token.",
            "The token may only read: this needs an `admin` token. ".to_owned(),
        ),
    };
    let description = operation.description.get_or_insert_default();
    if !description.is_empty() {
        description.push_str("\n\n");
    }
    description.push_str(needs);
    refusal(operation, "401", "No token, or one that is not valid.");
    refusal(operation, "403", &format!("{forbidden}{foreign}"));
    refusal(
        operation,
        "429",
        "Too many failed logins in the last minute: try again later.",
    );
}

/// Adds the refusals of a JSON body (see `error::ApiJson` and `MAX_BODY_BYTES`).
fn takes_json(operation: &mut Operation) {
    refusal(operation, "400", "The body is not valid JSON.");
    refusal(operation, "413", "The body is larger than 1 MiB.");
    refusal(
        operation,
        "415",
        "The body is not JSON (`Content-Type: application/json`).",
    );
    refusal(
        operation,
        "422",
        "The body has a missing, unknown or mistyped field (no `field`: the message \
         names it).",
    );
}

/// Adds the error answer `status` saying `why` to `operation`; if the operation has one
/// already, `why` is added to its description.
fn refusal(operation: &mut Operation, status: &str, why: &str) {
    let responses = &mut operation.responses.responses;
    match responses.get_mut(status) {
        Some(RefOr::T(response)) => {
            response.description = format!("{} {why}", response.description);
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            let body = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build();
            let response = ResponseBuilder::new()
                .description(why)
                .content("application/json", body)
                .build();
            responses.insert(status.to_owned(), RefOr::T(response));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::BTreeSet;

    /// Every operation of the document: `(method, path, operation)`.
    fn operations(document: &OpenApi) -> Vec<(&'static str, &str, &Operation)> {
        let mut all = Vec::new();
        for (path, item) in &document.paths.paths {
            let methods = [
                ("GET", &item.get),
                ("PUT", &item.put),
                ("POST", &item.post),
                ("DELETE", &item.delete),
                ("PATCH", &item.patch),
                ("HEAD", &item.head),
                ("OPTIONS", &item.options),
                ("TRACE", &item.trace),
            ];
            for (method, operation) in methods {
                if let Some(operation) = operation {
                    all.push((method, path.as_str(), operation));
                }
            }
        }
        all
    }

    /// Every `$ref` in `value`.
    fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    found.push(target);
                }
                map.values().for_each(|v| refs(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }

    #[test]
    fn the_document_is_openapi_3_1_and_every_reference_resolves() {
        let json = serde_json::to_value(super::super::openapi()).unwrap();
        let version = json["openapi"].as_str().unwrap();
        assert!(version.starts_with("3.1."), "{version}");
        let mut found = Vec::new();
        refs(&json, &mut found);
        assert!(found.len() > 50, "the schemas refer to each other");
        for target in found {
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("a reference outside the schemas: {target}"));
            assert!(
                json["components"]["schemas"][name].is_object(),
                "{target} is not in the document"
            );
        }
    }

    #[test]
    fn every_operation_but_healthz_and_login_needs_a_token_and_every_change_an_admin() {
        let document = super::super::openapi();
        for (method, path, operation) in operations(&document) {
            let role = role(operation);
            let description = operation.description.as_deref().unwrap_or_default();
            match role {
                None => assert!(
                    path == "/healthz" || (method == "POST" && path == "/api/session"),
                    "{method} {path} needs no token"
                ),
                Some(Role::Read) => {
                    // Logging out changes only the caller's own session.
                    let logout = method == "DELETE" && path == "/api/session";
                    assert!(
                        method == "GET" || logout,
                        "{method} {path} changes: it needs admin"
                    );
                    assert!(description.contains("role `read` or `admin`"), "{path}");
                }
                Some(Role::Admin) => assert!(description.contains("`admin` token"), "{path}"),
            }
            let statuses: BTreeSet<&str> = operation
                .responses
                .responses
                .keys()
                .map(String::as_str)
                .collect();
            // A login is refused like a token: wrong (401), from another site (403), or
            // past the failed-login limit (429).
            let login = method == "POST" && path == "/api/session";
            let guard = ["401", "403", "429"];
            assert_eq!(
                guard.iter().all(|status| statuses.contains(status)),
                role.is_some() || login,
                "{method} {path} answers {statuses:?}"
            );
        }
    }

    #[test]
    fn every_operation_says_its_answers_and_errors_carry_the_error_body() {
        let document = super::super::openapi();
        let json = serde_json::to_value(&document).unwrap();
        let mut ids = BTreeSet::new();
        for (method, path, operation) in operations(&document) {
            let id = operation.operation_id.clone().unwrap_or_default();
            assert!(ids.insert(id), "{method} {path}: operation ids are unique");
            let answers = &json["paths"][path][method.to_lowercase()]["responses"];
            let answers = answers.as_object().unwrap();
            assert!(
                answers
                    .keys()
                    .any(|status| status.starts_with('2') || status == "101"),
                "{method} {path} has no success"
            );
            for (status, answer) in answers {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &answer["content"]["application/json"]["schema"];
                    assert_eq!(
                        schema["$ref"], "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
            if operation.request_body.is_some() {
                for status in ["400", "413", "415", "422"] {
                    assert!(answers.contains_key(status), "{method} {path} {status}");
                }
            }
            let named: BTreeSet<&str> = path
                .split('/')
                .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            let params = json["paths"][path][method.to_lowercase()]["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let in_path: BTreeSet<&str> = params
                .iter()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            assert_eq!(in_path, named, "{method} {path}: its path parameters");
        }
    }
}
