//! The dashboard as a browser sees it through the router: pages with their
//! status, redirect and cookies, logging in through the form, and a seeded
//! repository whose numbers every page shows.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokentally::app::App;
use tokentally::attribution::identity::PersonConfig;
use tokentally::clock::{Clock, ManualClock};
use tokentally::config::Config;
use tokentally::store::tokens::Role;
use tower::ServiceExt;

use super::TestDb;
use super::git::lines;
use super::github::{CLAUDE, Pr};

/// A name that is markup: it must be escaped on every page.
pub const EVIL: &str = "<b>ada</b><script>alert(1)</script>";

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub cookies: Vec<String>,
    pub text: String,
}

pub async fn request(app: &App, request: Request<Body>) -> Page {
    let response = app.router().oneshot(request).await.unwrap();
    let status = response.status();
    let header = |name| {
        response
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let location = header(header::LOCATION).pop();
    let cookies = header(header::SET_COOKIE);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        location,
        cookies,
        text: String::from_utf8_lossy(&bytes).to_string(),
    }
}

pub async fn page(app: &App, path: &str, session: &str) -> Page {
    let r = Request::get(path)
        .header(header::COOKIE, format!("tt_session={session}"))
        .body(Body::empty())
        .unwrap();
    request(app, r).await
}

pub fn form(path: &str, cookie: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookie)
        .body(Body::from(body.to_string()))
        .unwrap()
}

pub fn cookie_value(cookies: &[String], name: &str) -> Option<String> {
    cookies
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_string())
}

/// The hidden `csrf` field of a form.
pub fn csrf_field(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a csrf field") + 19;
    html[at..at + 64].to_string()
}

pub async fn token(app: &App, name: &str, role: Role, repos: &[&str]) -> String {
    let token = tokentally::api_token::generate();
    let repos: Vec<String> = repos.iter().map(|r| r.to_string()).collect();
    assert!(
        app.state
            .store
            .create_token(name, &tokentally::api_token::hash(&token), &repos, role, 0)
            .await
            .unwrap()
    );
    token
}

/// Logs in through the form with `token`; returns the session id.
pub async fn login(app: &App, token: &str) -> String {
    let form_page = request(app, Request::get("/login").body(Body::empty()).unwrap()).await;
    let csrf = cookie_value(&form_page.cookies, "tt_csrf").unwrap();
    assert_eq!(csrf_field(&form_page.text), csrf);
    let body = format!("token={token}&csrf={csrf}&next=%2F");
    let done = request(app, form("/login", &format!("tt_csrf={csrf}"), &body)).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    cookie_value(&done.cookies, "tt_session").expect("a session cookie")
}

/// A repository with one landed AI fix (green on its first run), a second AI
/// commit, a human one, a person whose name is markup, settled.
pub async fn seeded(config: Config) -> (App, Pr, String, String) {
    let clock = ManualClock::starting_now();
    clock.advance_ms(3_600_000);
    let app = App::connect_with_clock(config, clock.clone())
        .await
        .unwrap();
    let pr = Pr::new(&app).await;
    pr.work.write("fix.rs", lines("fix", 127));
    let fix = pr.work.commit(&format!(
        "fix: <script>alert('subject')</script> charge\n\n{CLAUDE}"
    ));
    pr.work.write("feature.rs", lines("feature", 60));
    pr.work.commit(&format!("feat: a feature\n\n{CLAUDE}"));
    pr.work.write("notes.md", lines("notes", 5));
    let head = pr.work.commit("docs: notes");
    pr.work.git(&["push", "-q", "origin", "main"]);
    pr.deliver(
        &app,
        "check_run",
        json!({"action": "completed", "check_run": {"id": 5, "name": "build", "head_sha": fix,
               "status": "completed", "conclusion": "success",
               "completed_at": tokentally::ledger::read::rfc3339(clock.now_ms() - 60_000),
               "check_suite": {"id": 7}, "app": {"slug": "github-actions"}},
               "repository": pr.repository()}),
    )
    .await;
    let mut repository: Value = pr.repository();
    repository["pushed_at"] = (clock.now_ms() / 1000).into();
    pr.deliver(
        &app,
        "push",
        json!({"ref": "refs/heads/main", "before": "0000000000000000000000000000000000000000",
               "after": head, "forced": false, "deleted": false, "created": false,
               "commits": [], "repository": repository}),
    )
    .await;
    app.settle().await.unwrap();
    let reader = token(&app, "reader", Role::Read, &["*"]).await;
    (app, pr, fix, reader)
}

/// `seeded`'s configuration: alice@example.com is the person `name`.
pub fn seeded_config(db: &TestDb, name: &str) -> Config {
    let mut config = super::mirrors_on(db);
    config.people = vec![PersonConfig {
        name: name.into(),
        emails: vec!["alice@example.com".into()],
        github: None,
        discord: None,
        dm: true,
    }];
    config
}

pub fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
