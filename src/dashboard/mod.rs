//! The web dashboard: server-rendered HTML (maud, compiled into the binary; no
//! scripts, no CDN, one stylesheet), behind a login unless `dashboard.public`.
//!
//! Pages: `/` (a week's leaderboard), `/people/{person}`, `/commits/{repo}/{sha}`
//! (the "why" of a commit), `/repos/{repo}`, `/rules`. Unknown weeks, people,
//! repositories and commits get a 404 page saying what was not found.

pub mod auth;
mod commit;
mod layout;
mod leaderboard;
mod person;
mod repo;
mod rules;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::scoring::week::Week;
use crate::server::AppState;

/// Who is looking: the token's name and the session's anti-forgery value
/// (none for the anonymous viewer of a public dashboard).
#[derive(Debug, Clone)]
pub struct Viewer {
    pub name: String,
    pub csrf: Option<String>,
    /// The person the login's token belongs to (`/me`).
    pub person: Option<String>,
}

impl Viewer {
    pub fn anonymous() -> Viewer {
        Viewer {
            name: String::new(),
            csrf: None,
            person: None,
        }
    }
}

/// The pages, behind the login; `/login`, `/logout` and the stylesheet are not.
pub fn router(state: AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(leaderboard::page))
        .route("/people/{person}", get(person::page))
        .route("/me", get(person::me))
        .route("/commits/{*path}", get(commit::page))
        .route("/repos/{*path}", get(repo::page))
        .route("/rules", get(rules::page))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            auth::require_login,
        ));
    Router::new()
        .merge(pages)
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/static/style.css", get(stylesheet))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        layout::STYLESHEET,
    )
}

/// The 404 page for a path no route knows (no login needed to be told so).
pub fn not_found_page(what: &str) -> axum::response::Response {
    layout::not_found(&Viewer::anonymous(), what)
}

/// The week a page shows: `?week=2026-W47` (or `current`), by default the
/// last complete week (as every command and the digest).
fn week_of(text: Option<&str>, state: &AppState) -> Result<Week, String> {
    Week::chosen(text, state.clock.now_ms(), state.ledger.tz()).ok_or_else(|| {
        format!(
            "There is no week {:?} (weeks look like 2026-W47, or current).",
            text.unwrap_or_default()
        )
    })
}

/// The week after `week`.
fn next_week(week: Week, tz: chrono_tz::Tz) -> Week {
    Week::of(week.bounds(tz).1, tz)
}
