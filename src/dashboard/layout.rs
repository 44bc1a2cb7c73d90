//! The page shell (one stylesheet, no scripts, light and dark by
//! `prefers-color-scheme`), the not-found page, and small formatting helpers.

use crate::store::DatabaseFailure;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::Viewer;
pub use crate::digest::percent;
use crate::scoring::MilliTokens;

pub const STYLESHEET: &str = include_str!("style.css");

/// A whole page: title, navigation (with the logout form when logged in), content.
pub fn shell(title: &str, viewer: &Viewer, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · tokentally" }
                link rel="stylesheet" href="/static/style.css";
                // No favicon request (and no 404 for it).
                link rel="icon" href="data:,";
            }
            body {
                header {
                    nav {
                        a.brand href="/" { "tokentally" }
                        a href="/" { "Leaderboard" }
                        a href="/rules" { "Rules" }
                        @if viewer.person.is_some() { a href="/me" { "My tokens" } }
                        @if let Some(csrf) = &viewer.csrf {
                            form.logout method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" { "Log out " (viewer.name) }
                            }
                        }
                    }
                }
                main { (content) }
            }
        }
    }
}

/// A 404 page that says what was not found.
pub fn not_found(viewer: &Viewer, what: &str) -> Response {
    let body = shell(
        "Not found",
        viewer,
        html! {
            h1 { "Not found" }
            p.error { (what) }
            p { a href="/" { "Back to the leaderboard" } }
        },
    );
    (StatusCode::NOT_FOUND, Html(body.into_string())).into_response()
}

/// A page that cannot be shown because the database failed: 503 when it could
/// not be reached (try again), 500 when it refused the statement (a fault of
/// the service; reported in `/readyz` like the API's).
pub fn unavailable(viewer: &Viewer, error: impl DatabaseFailure) -> Response {
    let api = crate::server::error::ApiError::database(error);
    let text = if api.status == StatusCode::SERVICE_UNAVAILABLE {
        "The database did not answer; try again."
    } else {
        "The database refused to read this page. This is a fault of the service; it is logged."
    };
    let body = shell(
        "Unavailable",
        viewer,
        html! { h1 { "Unavailable" } p.error { (text) } },
    );
    api.respond_with(Html(body.into_string()))
}

pub fn ok(markup: Markup) -> Response {
    Html(markup.into_string()).into_response()
}

/// Milli-tokens as tokens with 3 decimals (the API's precision).
pub fn tokens(milli: MilliTokens) -> String {
    format!("{:.3}", milli as f64 / 1000.0)
}

/// Epoch ms as `2026-11-20 10:00 UTC`.
pub fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// A path segment, percent-encoded (person keys and repository names in links).
pub fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// A repository's path (`owner/name`, nested groups kept), each segment encoded.
pub fn repo_path(full_name: &str) -> String {
    full_name
        .split('/')
        .map(segment)
        .collect::<Vec<_>>()
        .join("/")
}
