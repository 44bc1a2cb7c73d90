//! The dashboard through the real router: login (CSRF, cookies, expiry,
//! revocation, logout), every page with its key numbers, the 404 pages, and
//! escaping of names and subjects. Both databases.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tokentally::app::App;
use tokentally::clock::ManualClock;
use tokentally::store::tokens::Role;

use crate::db_test;
use crate::support::pages::{
    EVIL, cookie_value, csrf_field, form, login, page, request, seeded, seeded_config, token,
    urlencode,
};
use crate::support::{self, TestDb};

async fn logging_in_and_out(db: &TestDb) {
    let clock = ManualClock::starting_now();
    let mut config = support::test_config(db);
    config.public_url = Some("https://tally.example.com".into());
    let app = App::connect_with_clock(config, clock.clone())
        .await
        .unwrap();
    let reader = token(&app, "reader", Role::Read, &["*"]).await;
    let scoped = token(&app, "scoped", Role::Read, &["acme/api"]).await;
    let reporter = token(&app, "ci", Role::Report, &["*"]).await;

    // Every page needs a login; the login returns to the page asked for.
    for path in ["/", "/rules", "/people/ada", "/repos/acme/api"] {
        let p = request(&app, Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{path}");
        assert!(p.location.unwrap().starts_with("/login?next="), "{path}");
    }
    let form_page = request(
        &app,
        Request::get("/login?next=%2Frules")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(form_page.status, StatusCode::OK);
    let csrf_cookie = form_page
        .cookies
        .iter()
        .find(|c| c.starts_with("tt_csrf="))
        .unwrap();
    assert!(csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Strict"));
    let csrf = cookie_value(&form_page.cookies, "tt_csrf").unwrap();

    // CSRF: without the cookie, or with another value, the form is refused.
    let body = format!("token={reader}&csrf={csrf}&next=%2Frules");
    let refused = request(&app, form("/login", "", &body)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let refused = request(
        &app,
        form("/login", &format!("tt_csrf={}", "0".repeat(64)), &body),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.cookies.is_empty());
    // A report token, a repository-scoped token, a wrong token: no session.
    for (bad, says) in [
        (&reporter, "only report"),
        (&scoped, "all repositories"),
        (&"nope".to_string(), "Unknown"),
    ] {
        let body = format!("token={bad}&csrf={csrf}");
        let p = request(&app, form("/login", &format!("tt_csrf={csrf}"), &body)).await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED);
        assert!(p.text.contains(says), "{}", p.text);
        assert!(cookie_value(&p.cookies, "tt_session").is_none());
    }
    // The read token: a session, back to /rules; only a local path is followed.
    let done = request(&app, form("/login", &format!("tt_csrf={csrf}"), &body)).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location.as_deref(), Some("/rules"));
    let session_cookie = done
        .cookies
        .iter()
        .find(|c| c.starts_with("tt_session="))
        .unwrap();
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
        "Path=/",
        "Max-Age=43200",
    ] {
        assert!(session_cookie.contains(attribute), "{session_cookie}");
    }
    let session = cookie_value(&done.cookies, "tt_session").unwrap();
    assert_eq!(page(&app, "/rules", &session).await.status, StatusCode::OK);
    let evil = format!("token={reader}&csrf={csrf}&next=%2F%2Fevil.example.com");
    let p = request(&app, form("/login", &format!("tt_csrf={csrf}"), &evil)).await;
    assert_eq!(p.location.as_deref(), Some("/"));
    // The session id is stored hashed, never as sent.
    let raw: Vec<(String,)> = sqlx::query_as("SELECT id_hash FROM sessions")
        .fetch_all(&sqlx::AnyPool::connect(&db.url).await.unwrap())
        .await
        .unwrap();
    assert!(raw.iter().all(|(h,)| *h != session));

    // Logout needs the session's own CSRF value.
    let rules = page(&app, "/rules", &session).await;
    let logout_csrf = csrf_field(&rules.text);
    let p = request(
        &app,
        form("/logout", &format!("tt_session={session}"), "csrf=forged"),
    )
    .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert_eq!(page(&app, "/rules", &session).await.status, StatusCode::OK);
    let p = request(
        &app,
        form(
            "/logout",
            &format!("tt_session={session}"),
            &format!("csrf={logout_csrf}"),
        ),
    )
    .await;
    assert_eq!(
        (p.status, p.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/login"))
    );
    assert_eq!(
        page(&app, "/rules", &session).await.status,
        StatusCode::SEE_OTHER
    );

    // Sessions expire after dashboard.session_hours (12).
    let session = login(&app, &reader).await;
    clock.advance_ms(11 * 3_600_000);
    assert_eq!(page(&app, "/", &session).await.status, StatusCode::OK);
    Arc::clone(&clock).advance_ms(3_600_000 + 1);
    assert_eq!(
        page(&app, "/", &session).await.status,
        StatusCode::SEE_OTHER
    );
    // And end when their token is revoked.
    let session = login(&app, &reader).await;
    app.state.store.revoke_token("reader", 0).await.unwrap();
    assert_eq!(
        page(&app, "/", &session).await.status,
        StatusCode::SEE_OTHER
    );
}
db_test!(logging_in_and_out);

async fn every_page_shows_the_ledger(db: &TestDb) {
    let (app, _pr, fix, reader) = seeded(seeded_config(db, EVIL)).await;
    let session = login(&app, &reader).await;
    let api = |path: String| {
        let app = &app;
        let reader = reader.clone();
        async move {
            let r = Request::get(path)
                .header("authorization", format!("Bearer {reader}"))
                .body(Body::empty())
                .unwrap();
            support::send(app, r).await.json
        }
    };
    let week = tokentally::scoring::week::Week::of(app.state.clock.now_ms(), app.state.ledger.tz())
        .label();
    let board = api(format!("/api/v1/leaderboard?week={week}")).await;
    let line = &board["entries"][0];
    assert_eq!(line["person"], EVIL, "{board}");

    // The default is the last complete week: the seeded work is this week's.
    let default = page(&app, "/", &session).await;
    let last = tokentally::scoring::week::Week::of(app.state.clock.now_ms(), app.state.ledger.tz());
    let last = last.previous(app.state.ledger.tz()).label();
    assert!(
        default.text.contains(&format!("Leaderboard · {last}")),
        "{}",
        default.text
    );
    let home = page(&app, "/?week=current", &session).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.text.contains(&week), "the current week");
    assert!(
        home.text
            .contains(&format!("{:.3}", line["value"].as_f64().unwrap())),
        "{}",
        home.text
    );
    assert!(
        home.text
            .contains(&format!("{:.3}", line["earned"].as_f64().unwrap()))
    );
    assert!(home.text.contains("<svg"), "the chart");
    // Markup in a name is shown, never run.
    assert!(!home.text.contains("<script>"), "{}", home.text);
    assert!(home.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let by_hygiene = page(&app, &format!("/?week={week}&rank_by=hygiene"), &session).await;
    assert!(by_hygiene.text.contains("Ranked by hygiene"));

    let person_path = format!("/people/{}?week=current", urlencode(EVIL));
    let person = page(&app, &person_path, &session).await;
    assert_eq!(person.status, StatusCode::OK, "{}", person.text);
    let balance = api(format!("/api/v1/people/{}/balance", urlencode(EVIL))).await;
    assert!(
        person.text.contains(&format!(
            r#"id="pending">{:.3}<"#,
            balance["pending"].as_f64().unwrap()
        )),
        "{}",
        person.text
    );
    assert!(!person.text.contains("<script>"));
    assert!(person.text.contains("accrual"), "the week's entries");

    let why = page(&app, &format!("/commits/acme/api/{}", &fix[..10]), &session).await;
    assert_eq!(why.status, StatusCode::OK, "{}", why.text);
    let tokens = api(format!("/api/v1/commits/acme/api/{fix}/tokens")).await;
    assert!(
        why.text.contains(&format!(
            r#"id="tokens">{:.3}<"#,
            tokens["tokens"].as_f64().unwrap()
        )),
        "{}",
        why.text
    );
    assert!(why.text.contains("first_run_green"), "the CI input");
    assert!(why.text.contains("claude-code"));
    assert!(
        why.text
            .contains(&format!("https://github.com/acme/api/commit/{fix}"))
    );
    assert!(
        why.text
            .contains("&lt;script&gt;alert('subject')&lt;/script&gt;")
    );
    assert!(!why.text.contains("<script>"));

    let repo = page(&app, "/repos/acme/api", &session).await;
    assert_eq!(repo.status, StatusCode::OK);
    assert!(repo.text.contains(&format!(r#"data-week="{week}""#)));
    // fix, feature (AI) and notes landed; the fix green on its first run.
    assert!(
        repo.text.contains(r#"<td class="num landed">3</td><td class="num">66.7%</td><td class="num">0.0%</td><td class="num">0.0%</td><td class="num">50.0%</td>"#),
        "{}",
        repo.text
    );
    let rules = page(&app, "/rules", &session).await;
    assert!(rules.text.contains(app.state.ledger.version()));
    assert!(rules.text.contains("tiers.fix"));

    // What is not there: a 404 page saying what, never a 500.
    for (path, says) in [
        ("/?week=2026-W99".to_string(), "no week"),
        ("/?rank_by=luck".to_string(), "no ranking"),
        ("/people/nobody".to_string(), "no person"),
        ("/commits/acme/api/ffffff1".to_string(), "no commit"),
        ("/commits/acme/api/nothex".to_string(), "no commit"),
        ("/commits/nobody/else/ffffff1".to_string(), "no repository"),
        ("/repos/nobody/else".to_string(), "no repository"),
    ] {
        let p = page(&app, &path, &session).await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{path}");
        assert!(p.text.contains(says), "{path}: {}", p.text);
    }
}
db_test!(every_page_shows_the_ledger);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_dashboard_needs_no_login() {
    let db = TestDb::sqlite();
    let mut config = support::test_config(&db);
    config.dashboard.public = true;
    let app = support::app_with(config).await;
    let home = request(&app, Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(!home.text.contains("Log out"));
    let css = request(
        &app,
        Request::get("/static/style.css")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(css.text.contains("prefers-color-scheme: dark"));
}

async fn a_person_login_reads_my_tokens_with_vest_dates(db: &TestDb) {
    use crate::support::scenario::{HOUR, Scenario, config, token};
    let s = Scenario::new(config(db)).await;
    let at = s.now() + HOUR;
    let fix = s.ai_commit("fix", "me.rs", 63);
    // A 1-line AI commit: noise, a hygiene event the page must list.
    s.work.write("tiny.rs", "x\n");
    let tiny = s.work.commit(&format!(
        "chore: tiny\n\n{}",
        crate::support::scenario::CLAUDE
    ));
    s.push(&tiny, at).await;
    s.settle().await;
    // A read token made for ada: its login opens her page as /me.
    let mine = token(&s.app, "ada-login", tokentally::store::tokens::Role::Read).await;
    assert!(
        support::store(&s.app)
            .set_token_person("ada-login", "ada")
            .await
            .unwrap()
    );
    let session = login(&s.app, &mine).await;
    let me = page(&s.app, "/me?week=current", &session).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert!(me.text.contains("<h1>ada</h1>"), "{}", me.text);
    assert!(
        me.text.contains(r#"href="/me""#),
        "the navigation offers My tokens"
    );
    // The commit's row: pending, with the vest date the API gives.
    let api = s.tokens(&fix).await;
    let vests = api["vests_at"].as_str().unwrap();
    let row_start = me
        .text
        .find(&format!(r#"data-sha="{fix}""#))
        .expect("a row per commit");
    let row = &me.text[row_start..row_start + me.text[row_start..].find("</tr>").unwrap()];
    assert!(row.contains("pending"), "{row}");
    assert!(row.contains(&vests[..10]), "{row} vs {vests}");
    assert!(me.text.contains(r#"id="worth""#), "the money equivalent");
    let hygiene = &me.text[me.text.find(r#"id="hygiene""#).expect("hygiene events")..];
    let hygiene = &hygiene[..hygiene.find("</table>").unwrap()];
    assert!(
        hygiene.contains("noise") && hygiene.contains(&tiny[..7]),
        "{hygiene}"
    );
    // The commit page shows the vest date too.
    let commit = page(&s.app, &format!("/commits/acme/api/{fix}"), &session).await;
    assert!(
        commit
            .text
            .contains(&format!(r#"id="vests_at">{}<"#, &vests[..10])),
        "{}",
        commit.text
    );
    // A login that belongs to nobody is told how to get a /me.
    let anyone = login(&s.app, &s.admin).await;
    let nobody = page(&s.app, "/me", &anyone).await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
    assert!(nobody.text.contains("--person"), "{}", nobody.text);
}
db_test!(a_person_login_reads_my_tokens_with_vest_dates);
