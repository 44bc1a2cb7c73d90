//! `GET /api/v1/openapi.json`: the OpenAPI description of every `/api/v1`
//! route, generated (utoipa) from the annotations on the handlers themselves,
//! so a handler's documentation lives beside its code. A test fails when a
//! route of the router is missing from it.

use std::sync::OnceLock;

use axum::Json;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tokentally",
        description = "Outcome signals in, the token ledger out. Every route takes an API token as \
                       `Authorization: Bearer <token>` (`tokentally token create`): `report` tokens \
                       write signals, `read` tokens read, `admin` tokens do both and redeem.",
    ),
    paths(
        super::signals::post_signal,
        super::signals::commit_signals,
        super::commits::commit_record,
        super::commits::list_commits,
        super::ledger::commit_tokens,
        super::ledger::leaderboard,
        super::ledger::payouts,
        super::ledger::statements,
        super::ledger::balance,
        super::ledger::person_ledger,
        super::ledger::redeem,
        super::usage::usage,
        document,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The document, built once.
pub fn spec() -> &'static serde_json::Value {
    static SPEC: OnceLock<serde_json::Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises")
    })
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI description of /api/v1", body = serde_json::Value))
)]
pub async fn document() -> impl IntoResponse {
    Json(spec().clone())
}
