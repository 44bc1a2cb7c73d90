//! `GET /api/v1/openapi.json`: the document is checked against the OpenAPI
//! rules a client relies on, and it covers every `/api/v1` route of the
//! router (both ways: each route in the router's source is documented, each
//! documented operation reaches a handler).

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;

use crate::support::{self, TestDb, get, send};

/// What is wrong with an OpenAPI 3.1 document, as a list of problems.
fn problems(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if !doc["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1"))
    {
        out.push(format!("openapi version {}", doc["openapi"]));
    }
    for field in ["title", "version"] {
        if !doc["info"][field].is_string() {
            out.push(format!("info.{field} missing"));
        }
    }
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    if scheme["type"] != "http" || scheme["scheme"] != "bearer" {
        out.push(format!("bearer security scheme: {scheme}"));
    }
    let Some(paths) = doc["paths"].as_object().filter(|p| !p.is_empty()) else {
        out.push("no paths".into());
        return out;
    };
    for (path, item) in paths {
        if !path.starts_with("/api/v1/") {
            out.push(format!("{path}: outside /api/v1"));
        }
        let templated: Vec<&str> = path
            .split('{')
            .skip(1)
            .filter_map(|s| s.split('}').next())
            .collect();
        for (method, op) in item.as_object().into_iter().flatten() {
            let at = format!("{} {path}", method.to_uppercase());
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                out.push(format!("{at}: unknown method"));
            }
            let Some(responses) = op["responses"].as_object().filter(|r| !r.is_empty()) else {
                out.push(format!("{at}: no responses"));
                continue;
            };
            for (status, response) in responses {
                if !response["description"].is_string() {
                    out.push(format!("{at} {status}: no description"));
                }
                let schema = &response["content"]["application/json"]["schema"];
                if status.starts_with('4') && schema["$ref"] != "#/components/schemas/ErrorBody" {
                    out.push(format!("{at} {status}: not the error shape: {schema}"));
                }
            }
            let params: Vec<&Value> = op["parameters"].as_array().into_iter().flatten().collect();
            for name in &templated {
                let declared = params
                    .iter()
                    .any(|p| p["name"] == *name && p["in"] == "path" && p["required"] == true);
                if !declared {
                    out.push(format!("{at}: path parameter {name} not declared"));
                }
            }
            for p in &params {
                if !(p["name"].is_string() && p["in"].is_string() && p["schema"].is_object()) {
                    out.push(format!(
                        "{at}: parameter without name, location or schema: {p}"
                    ));
                }
            }
            if path != "/api/v1/openapi.json"
                && op["security"] != serde_json::json!([{"bearer": []}])
            {
                out.push(format!("{at}: no bearer security"));
            }
        }
    }
    refs(doc, doc, &mut out);
    out
}

/// Every `$ref` must point at something in the document.
fn refs(doc: &Value, at: &Value, out: &mut Vec<String>) {
    match at {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                let target = r.strip_prefix('#').and_then(|p| doc.pointer(p));
                if target.is_none() {
                    out.push(format!("dangling $ref {r}"));
                }
            }
            map.values().for_each(|v| refs(doc, v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(doc, v, out)),
        _ => {}
    }
}

/// The router's `/api/v1` routes as written in its source: (path, methods).
fn routes_in_source() -> Vec<(String, Vec<String>)> {
    let source = include_str!("../../src/server/mod.rs");
    source
        .split(".route(\"")
        .skip(1)
        .filter_map(|rest| {
            let (path, tail) = rest.split_once('"')?;
            let call = tail.split(')').next().unwrap_or_default();
            let methods = ["get", "post", "put", "patch", "delete"]
                .iter()
                .filter(|m| call.contains(&format!("{m}(")) || call.contains(&format!(".{m}(")))
                .map(|m| m.to_string())
                .collect();
            path.starts_with("/api/v1")
                .then(|| (path.to_string(), methods))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_validates_and_covers_every_route() {
    let db = TestDb::sqlite();
    let app = support::app(&db).await;
    let reply = get(&app, "/api/v1/openapi.json").await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.json;
    let found = problems(&doc);
    assert!(found.is_empty(), "{found:#?}");
    let paths = doc["paths"].as_object().unwrap();

    // Each route of the router is documented, with its methods (a wildcard
    // route by the documented paths under it).
    let routes = routes_in_source();
    assert!(routes.len() >= 9, "{routes:?}");
    for (route, methods) in &routes {
        let documented: Vec<(&String, &Value)> = match route.split_once("{*") {
            Some((prefix, _)) => paths
                .iter()
                .filter(|(p, _)| p.starts_with(prefix))
                .collect(),
            None => paths.iter().filter(|(p, _)| *p == route).collect(),
        };
        assert!(
            !documented.is_empty(),
            "{route} is not in the OpenAPI document"
        );
        for m in methods {
            assert!(
                documented.iter().any(|(_, item)| item.get(m).is_some()),
                "{} {route} is not in the OpenAPI document",
                m.to_uppercase()
            );
        }
    }

    // Each documented operation reaches a handler (never the fallback's 404 or a 405).
    let concrete = |path: &str| {
        path.replace("{repo}", "acme/api")
            .replace("{sha}", &"a".repeat(40))
            .replace("{person}", "ada")
    };
    let no_route = |reply: &support::Reply| {
        reply.status == StatusCode::METHOD_NOT_ALLOWED
            || reply.json["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("no route"))
    };
    // (That check does see a missing route.)
    assert!(no_route(&get(&app, "/api/v1/nothing-here").await));
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let request = Request::builder()
                .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
                .uri(concrete(path))
                .body(Body::empty())
                .unwrap();
            let reply = send(&app, request).await;
            assert!(
                !no_route(&reply),
                "{method} {path}: {} {}",
                reply.status,
                reply.text
            );
        }
    }
}
