//! Logging in to the dashboard with an API token. Compensation data is
//! private: unless `dashboard.public`, every page needs a session.
//!
//! - `GET /login` shows the form with an anti-forgery value, also set as a
//!   cookie (`tt_csrf`); `POST /login` (fields `token`, `csrf`) needs both to
//!   match and a `read` or `admin` token for all repositories, then sets the
//!   session cookie `tt_session` (HttpOnly, SameSite=Lax, Secure when
//!   `public_url` is https). Session ids are random; only their SHA-256 is stored.
//! - `POST /logout` (field `csrf`, the session's own value) ends the session.
//! - Sessions end after `dashboard.session_hours`, at logout, or when their
//!   token is revoked.

use crate::server::extract::Form;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::Viewer;
use super::layout::{shell, unavailable};
use crate::server::AppState;
use crate::store::tokens::Role;

pub const SESSION_COOKIE: &str = "tt_session";
pub const CSRF_COOKIE: &str = "tt_csrf";

/// Compares two secrets in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A cookie's value from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn secure(state: &AppState) -> &'static str {
    match &state.config.public_url {
        Some(url) if url.starts_with("https://") => "; Secure",
        _ => "",
    }
}

/// The viewer of a request: from its session, or anonymous when the dashboard is public.
pub async fn viewer(state: &AppState, headers: &HeaderMap) -> Result<Option<Viewer>, Response> {
    if let Some(id) = cookie(headers, SESSION_COOKIE) {
        let session = state
            .store
            .session(&crate::secret::sha256_hex(id), state.clock.now_ms())
            .await
            .map_err(|e| unavailable(&Viewer::anonymous(), e))?;
        if let Some(s) = session {
            return Ok(Some(Viewer {
                name: s.token.name,
                person: s.token.person,
                csrf: Some(s.csrf),
            }));
        }
    }
    Ok(state.config.dashboard.public.then(Viewer::anonymous))
}

/// Middleware of every page: the viewer, or a redirect to the login form.
pub async fn require_login(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    match viewer(&state, request.headers()).await {
        Ok(Some(viewer)) => {
            request.extensions_mut().insert(viewer);
            next.run(request).await
        }
        Ok(None) => {
            let target = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/".to_string());
            let next = url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>();
            Redirect::to(&format!("/login?next={next}")).into_response()
        }
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// Only a path of this site is followed after login, else `/`: a `/` followed by
/// something other than `/` or `\\` (browsers read `//host` and `/\\host` as
/// another site), and printable ASCII only — no control characters (a browser
/// drops a tab, so `/<TAB>/host` would become `//host`; CR, LF and NUL cannot be
/// in a header), no spaces, no backslashes anywhere.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if is_local_path(p) => p.to_string(),
        _ => "/".to_string(),
    }
}

fn is_local_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/' | b'\\'))
        && bytes.iter().all(|&b| b.is_ascii_graphic() && b != b'\\')
}

fn login_page(csrf: &str, next: &str, problem: Option<&str>) -> maud::Markup {
    shell(
        "Log in",
        &Viewer::anonymous(),
        html! {
            div.login {
                h1 { "Log in" }
                p.muted { "Paste a " code { "read" } " or " code { "admin" } " API token for all repositories ("
                    code { "tokentally token create --name NAME --role read --all-repos" } ")." }
                @if let Some(problem) = problem { p.error role="alert" { (problem) } }
                form method="post" action="/login" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="next" value=(next);
                    label for="token" { "API token" }
                    input id="token" type="password" name="token" autocomplete="off" required;
                    button type="submit" { "Log in" }
                }
            }
        },
    )
}

/// `GET /login`.
pub async fn login_form(
    State(state): State<AppState>,
    crate::server::extract::Query(q): crate::server::extract::Query<LoginQuery>,
) -> Response {
    let csrf = crate::secret::random_hex(32);
    let next = local_path(q.next.as_deref());
    let cookie = format!(
        "{CSRF_COOKIE}={csrf}; HttpOnly; SameSite=Strict; Path=/login{}",
        secure(&state)
    );
    (
        [(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).expect("hex is a valid header"),
        )],
        Html(login_page(&csrf, &next, None).into_string()),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
    csrf: String,
    next: Option<String>,
}

fn forbidden(message: &str) -> Response {
    let body = shell(
        "Refused",
        &Viewer::anonymous(),
        html! { h1 { "Refused" } p.error { (message) } p { a href="/login" { "Log in again" } } },
    );
    (StatusCode::FORBIDDEN, Html(body.into_string())).into_response()
}

/// `POST /login`.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let Some(expected) = cookie(&headers, CSRF_COOKIE) else {
        return forbidden(
            "The login form expired or came from elsewhere (no anti-forgery cookie).",
        );
    };
    if !same(expected, &form.csrf) {
        return forbidden("The login form came from elsewhere (anti-forgery value mismatch).");
    }
    let next = local_path(form.next.as_deref());
    let token = match state
        .store
        .token_by_hash(&crate::api_token::hash(form.token.trim()))
        .await
    {
        Ok(t) => t,
        Err(e) => return unavailable(&Viewer::anonymous(), e),
    };
    let problem = match &token {
        None => Some("Unknown or revoked API token."),
        Some(t) if !matches!(t.role, Role::Read | Role::Admin) => {
            Some("This token can only report signals; log in with a read or admin token.")
        }
        Some(t) if t.role == Role::Read && !t.allows_all() => Some(
            "The dashboard shows the whole team: use a read token for all repositories (--all-repos).",
        ),
        Some(_) => None,
    };
    if let Some(problem) = problem {
        let body = login_page(&form.csrf, &next, Some(problem));
        return (StatusCode::UNAUTHORIZED, Html(body.into_string())).into_response();
    }
    let token = token.expect("checked above");
    let id = crate::secret::random_hex(32);
    let csrf = crate::secret::random_hex(32);
    let now = state.clock.now_ms();
    let hours = state.config.dashboard.session_hours;
    let expires = now + hours as i64 * 3_600_000;
    if let Err(e) = state
        .store
        .create_session(
            &crate::secret::sha256_hex(&id),
            token.id,
            &csrf,
            now,
            expires,
        )
        .await
    {
        return unavailable(&Viewer::anonymous(), e);
    }
    tracing::info!(token = %token.name, "dashboard login");
    let session = format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{}",
        hours * 3600,
        secure(&state)
    );
    let mut response = Redirect::to(&next).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        HeaderValue::from_str(&session).expect("hex is a valid header"),
    );
    headers.append(
        header::SET_COOKIE,
        HeaderValue::from_static("tt_csrf=; HttpOnly; SameSite=Strict; Path=/login; Max-Age=0"),
    );
    response
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

/// `POST /logout`.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    let Some(id) = cookie(&headers, SESSION_COOKIE) else {
        return Redirect::to("/login").into_response();
    };
    let session = match state
        .store
        .session(&crate::secret::sha256_hex(id), state.clock.now_ms())
        .await
    {
        Ok(s) => s,
        Err(e) => return unavailable(&Viewer::anonymous(), e),
    };
    match session {
        Some(s) if same(&s.csrf, &form.csrf) => {
            if let Err(e) = state
                .store
                .end_session(&crate::secret::sha256_hex(id), state.clock.now_ms())
                .await
            {
                return unavailable(&Viewer::anonymous(), e);
            }
        }
        Some(_) => {
            return forbidden("The logout form came from elsewhere (anti-forgery value mismatch).");
        }
        None => {}
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("tt_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"),
    );
    response
}
