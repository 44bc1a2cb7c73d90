//! The pull-request comment against a mock GitHub (wiremock) and a local bare
//! remote: created once, updated in place (after a restart too, and found by
//! its marker and author when its row is gone), none for a pull request
//! without AI commits, GitHub errors retried and never fatal, and a GitHub
//! App's installation token fetched and refreshed before its hour ends.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;
use tokentally::app::App;
use tokentally::clock::{Clock, ManualClock};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::db_test;
use crate::support::git::lines;
use crate::support::github::{
    CLAUDE, MARKER, Pr, ZERO, comment_requests, config, github_with_no_comments, mock,
};
use crate::support::{self, TestDb, store};

async fn a_pull_request_keeps_one_comment(db: &TestDb) {
    let github = github_with_no_comments().await;
    let app = support::app_with(config(db, &github)).await;
    let pr = Pr::new(&app).await;
    pr.work.git(&["checkout", "-q", "-b", "feature"]);
    pr.work.write("notes.md", lines("notes", 4));
    pr.work.commit("docs: notes");
    pr.work.write("fix.rs", lines("fix", 127));
    let fix = pr
        .work
        .commit(&format!("fix: stop double charge | @here <b>\n\n{CLAUDE}"));
    let head = pr.pull_request(&app, "opened", 7, json!({})).await;
    assert_eq!(head, fix);

    let sent = comment_requests(&github).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (verb, route, body) = &sent[0];
    assert_eq!(
        (verb.as_str(), route.as_str()),
        ("POST", "/repos/acme/api/issues/7/comments")
    );
    assert!(body.starts_with(MARKER), "{body}");
    // Each commit links to its page and names who gets the credit (never a raw email).
    assert!(
        body.contains(&format!(
            "| [`{}`](https://tally.example.com/commits/acme/api/{fix}) |",
            &fix[..7]
        )),
        "{body}"
    );
    assert!(
        body.contains("| alic… |") && !body.contains("alice@example.com"),
        "{body}"
    );
    // No CI yet: 10 × 0.809486 × 0.9 (no CI) × 1 = 7.285.
    assert!(body.contains("| 7.285 |"), "{body}");
    assert!(body.contains("no CI yet"), "{body}");
    assert!(body.contains("claude-code"), "{body}");
    assert!(
        body.contains("1 commit without AI assistance is not counted"),
        "{body}"
    );
    assert!(body.contains("vest 14 days after the merge"), "{body}");
    // A subject cannot break the table, mention people or inject HTML.
    assert!(body.contains(r"stop double charge \| @"), "{body}");
    assert!(!body.contains("@here") && !body.contains("<b>"), "{body}");

    // CI arrives for the head: the same comment is updated.
    pr.check_run(&app, &head, "success").await;
    let sent = comment_requests(&github).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    let (verb, route, body) = &sent[1];
    assert_eq!(
        (verb.as_str(), route.as_str()),
        ("PATCH", "/repos/acme/api/issues/comments/555")
    );
    assert!(
        body.contains("| 9.714 |") && body.contains("CI first run green"),
        "{body}"
    );
    // The same CI again changes nothing: no request.
    pr.check_run(&app, &head, "success").await;
    assert_eq!(comment_requests(&github).await.len(), 2);

    // After a restart, a new commit updates the same comment.
    drop(app);
    let app = support::app_with(config(db, &github)).await;
    pr.work.write("more.rs", lines("more", 20));
    pr.work.commit(&format!("feat: more\n\n{CLAUDE}"));
    pr.pull_request(&app, "synchronize", 7, json!({})).await;
    let sent = comment_requests(&github).await;
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(sent[2].1, "/repos/acme/api/issues/comments/555");
    assert!(sent[2].2.contains("feat: more"), "{}", sent[2].2);
    assert!(
        !sent.iter().skip(1).any(|(v, _, _)| v == "POST"),
        "never a second comment"
    );

    // A pull request with no AI-assisted commit gets no comment.
    pr.work.git(&["checkout", "-q", "main"]);
    pr.work.git(&["checkout", "-q", "-b", "human"]);
    pr.work.write("human.md", lines("human", 3));
    pr.work.commit("docs: by hand");
    pr.pull_request(&app, "opened", 8, json!({})).await;
    assert!(
        comment_requests(&github)
            .await
            .iter()
            .all(|(_, route, _)| !route.contains("/issues/8/")),
    );
}
db_test!(a_pull_request_keeps_one_comment);

/// Without its row (a new database), the comment is found by its marker and
/// author — a look-alike by someone else is left alone.
async fn the_comment_is_found_again_by_its_marker(db: &TestDb) {
    let github = MockServer::start().await;
    mock(
        &github,
        "GET",
        "/user",
        ResponseTemplate::new(200).set_body_json(json!({"login": "tokentally-bot"})),
    )
    .await;
    mock(
        &github,
        "GET",
        "/repos/acme/api/issues/7/comments",
        ResponseTemplate::new(200).set_body_json(json!([
            {"id": 444, "body": format!("{MARKER}\nfake"), "user": {"login": "mallory"}},
            {"id": 555, "body": format!("{MARKER}\nold"), "user": {"login": "tokentally-bot"}},
        ])),
    )
    .await;
    mock(
        &github,
        "PATCH",
        "/repos/acme/api/issues/comments/555",
        ResponseTemplate::new(200).set_body_json(json!({"id": 555})),
    )
    .await;
    let app = support::app_with(config(db, &github)).await;
    let pr = Pr::new(&app).await;
    pr.work.git(&["checkout", "-q", "-b", "feature"]);
    pr.work.write("fix.rs", lines("fix", 127));
    pr.work.commit(&format!("fix: a\n\n{CLAUDE}"));
    pr.pull_request(&app, "reopened", 7, json!({})).await;
    let sent = comment_requests(&github).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0].0.as_str(), sent[0].1.as_str()),
        ("PATCH", "/repos/acme/api/issues/comments/555")
    );
}
db_test!(the_comment_is_found_again_by_its_marker);

/// A 500 is retried; a 403 is logged and the delivery still succeeds.
async fn github_errors_are_retried_and_never_fatal(db: &TestDb) {
    let github = github_with_no_comments().await;
    // A secondary rate limit (403 saying so, with Retry-After) is waited out.
    Mock::given(method("POST"))
        .and(path("/repos/acme/api/issues/7/comments"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("retry-after", "0")
                .set_body_json(json!({"message": "You have exceeded a secondary rate limit."})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/api/issues/7/comments"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&github)
        .await;
    mock(
        &github,
        "GET",
        "/repos/acme/api/issues/9/comments",
        ResponseTemplate::new(200).set_body_json(json!([])),
    )
    .await;
    mock(
        &github,
        "POST",
        "/repos/acme/api/issues/9/comments",
        ResponseTemplate::new(403)
            .set_body_json(json!({"message": "Resource not accessible by integration"})),
    )
    .await;
    let app = support::app_with(config(db, &github)).await;
    let pr = Pr::new(&app).await;
    pr.work.git(&["checkout", "-q", "-b", "feature"]);
    pr.work.write("fix.rs", lines("fix", 127));
    pr.work.commit(&format!("fix: a\n\n{CLAUDE}"));
    pr.pull_request(&app, "opened", 7, json!({})).await;
    let sent = comment_requests(&github).await;
    assert_eq!(
        sent.len(),
        2,
        "one rate-limited POST, then the comment: {sent:?}"
    );
    // 403: `deliver` asserts the delivery was processed all the same.
    pr.work.git(&["checkout", "-q", "main"]);
    pr.work.git(&["checkout", "-q", "-b", "other"]);
    pr.work.write("other.rs", lines("other", 30));
    pr.work.commit(&format!("feat: other\n\n{CLAUDE}"));
    pr.pull_request(&app, "opened", 9, json!({})).await;
    let metrics = support::get(&app, "/metrics").await.text;
    assert!(
        metrics.contains(r#"tokentally_github_requests_total{outcome="retried"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"tokentally_github_requests_total{outcome="failed"} 1"#),
        "{metrics}"
    );
}
db_test!(github_errors_are_retried_and_never_fatal);

/// A GitHub App: the installation token is fetched with the App's JWT for the
/// installation the event names, reused, and fetched again before it expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_app_fetches_and_refreshes_its_installation_token() {
    let db = TestDb::sqlite();
    let github = MockServer::start().await;
    let clock = ManualClock::starting_now();
    // Ahead of the deliveries' arrival times, so the worker finds them due.
    clock.advance_ms(3_600_000);
    let expires =
        |clock: &ManualClock| tokentally::ledger::read::rfc3339(clock.now_ms() + 10 * 60_000);
    mock(
        &github,
        "GET",
        "/app",
        ResponseTemplate::new(200).set_body_json(json!({"slug": "tokentally"})),
    )
    .await;
    support::github::installation_token(&github, 42, "ghs_first", &expires(&clock), Some(1)).await;
    support::github::installation_token(&github, 42, "ghs_second", &expires(&clock), None).await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/api/issues/7/comments"))
        .and(header("authorization", "Bearer ghs_first"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/api/issues/7/comments"))
        .and(header("authorization", "Bearer ghs_first"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 555})))
        .mount(&github)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/acme/api/issues/comments/555"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 555})))
        .mount(&github)
        .await;

    let mut c = config(&db, &github);
    c.github.token = None;
    c.github.app_id = Some(1234);
    c.github.private_key = Some(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/it/fixtures/github-app-test-key.pem"),
    );
    let app = App::connect_with_clock(c, clock.clone()).await.unwrap();
    let pr = Pr::new(&app).await;
    pr.work.git(&["checkout", "-q", "-b", "feature"]);
    pr.work.write("fix.rs", lines("fix", 127));
    pr.work.commit(&format!("fix: a\n\n{CLAUDE}"));
    let installation = json!({"installation": {"id": 42}});
    pr.pull_request(&app, "opened", 7, installation.clone())
        .await;
    let token_requests = |requests: &[wiremock::Request]| -> Vec<String> {
        requests
            .iter()
            .filter(|r| r.url.path() == "/app/installations/42/access_tokens")
            .map(|r| {
                r.headers
                    .get("authorization")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let received = github.received_requests().await.unwrap();
    let tokens = token_requests(&received);
    assert_eq!(tokens.len(), 1);
    // The App's JWT: three base64url parts.
    assert!(
        tokens[0].starts_with("Bearer ") && tokens[0].matches('.').count() == 2,
        "{}",
        tokens[0]
    );
    assert_eq!(
        comment_requests(&github).await.len(),
        1,
        "created with ghs_first"
    );

    // Within its hour: reused.
    pr.work.write("b.rs", lines("b", 10));
    pr.work.commit(&format!("feat: b\n\n{CLAUDE}"));
    pr.pull_request(&app, "synchronize", 7, installation.clone())
        .await;
    assert_eq!(
        token_requests(&github.received_requests().await.unwrap()).len(),
        1
    );
    assert_eq!(comment_requests(&github).await.len(), 2);

    // Less than five minutes left: a new token before the next request.
    Arc::clone(&clock).advance_ms(6 * 60_000);
    pr.work.write("c.rs", lines("c", 10));
    pr.work.commit(&format!("feat: c\n\n{CLAUDE}"));
    pr.pull_request(&app, "synchronize", 7, installation).await;
    assert_eq!(
        token_requests(&github.received_requests().await.unwrap()).len(),
        2
    );
    let last = github
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .rfind(|r| r.method.as_str() == "PATCH")
        .unwrap();
    assert_eq!(
        last.headers.get("authorization").unwrap(),
        "Bearer ghs_second"
    );
}

/// The comment's estimate is what the ledger books for the same facts: its
/// own planner, the same outcome rules (a neutral CI run says nothing, an
/// incident is not an outcome, a custom signal reported pass and fail at the
/// same moment counts the same way), the same calibration.
async fn the_comment_equals_what_the_ledger_books(db: &TestDb) {
    let github = github_with_no_comments().await;
    let clock = ManualClock::starting_now();
    clock.advance_ms(60_000);
    let mut c = config(db, &github);
    c.scoring.signals.insert(
        "perf".into(),
        tokentally::scoring::rules::SignalWeight {
            pass: 1.1,
            fail: 0.8,
        },
    );
    let app = App::connect_with_clock(c, clock.clone()).await.unwrap();
    let token =
        crate::support::pages::token(&app, "ci", tokentally::store::tokens::Role::Report, &["*"])
            .await;
    app.state
        .store
        .set_token_signals("ci", &["*".to_string()])
        .await
        .unwrap();
    let pr = Pr::new(&app).await;
    pr.work.git(&["checkout", "-q", "-b", "feature"]);
    pr.work.write("fix.rs", lines("fix", 60));
    let fix = pr.work.commit(&format!("fix: bounded retries\n\n{CLAUDE}"));
    pr.pull_request(&app, "opened", 7, json!({})).await;
    pr.check_run(&app, &fix, "success").await;
    // A re-run cancelled by a newer push: neutral, it says nothing.
    pr.deliver(
        &app,
        "check_run",
        support::github::check_run(pr.repository(), 2, "build", &fix, "cancelled"),
    )
    .await;
    for (signal, status, key) in [
        ("perf", "pass", "p1"),
        ("perf", "fail", "p2"),
        ("incident", "pass", "i1"),
    ] {
        let reply = support::send(
            &app,
            axum::http::Request::post("/api/v1/signals")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(
                    json!({"repo": "acme/api", "sha": fix, "signal": signal,
                           "status": status, "key": key})
                    .to_string(),
                ))
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }
    // The comment as it stands when the pull request merges.
    app.state
        .pr_comments
        .as_ref()
        .unwrap()
        .refresh("acme/api", 7)
        .await
        .unwrap();
    let body = comment_requests(&github).await.last().unwrap().2.clone();
    let estimate: f64 = body
        .lines()
        .find(|l| l.contains(&format!("`{}`", &fix[..7])))
        .and_then(|l| l.split('|').nth(6))
        .map(|cell| cell.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("{body}"));

    // It merges (the commit itself lands, as a merge commit's second parent).
    pr.work.git(&["checkout", "-q", "main"]);
    pr.work.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "Merge pull request #7",
        "feature",
    ]);
    let merge = pr.work.head();
    pr.work.git(&["push", "-q", "origin", "main"]);
    let merged_at = chrono::DateTime::from_timestamp_millis(clock.now_ms())
        .unwrap()
        .to_rfc3339();
    pr.deliver(
        &app,
        "pull_request",
        json!({
            "action": "closed", "number": 7,
            "pull_request": {
                "number": 7, "state": "closed", "merged": true, "merge_commit_sha": merge,
                "merged_at": merged_at,
                "head": { "ref": "feature", "sha": fix },
                "base": { "ref": "main", "sha": ZERO },
            },
            "repository": pr.repository(),
        }),
    )
    .await;
    app.settle().await.unwrap();
    let repository = store(&app).repository("acme/api").await.unwrap().unwrap();
    let commit = &store(&app)
        .commits_by_prefix(repository.id, &fix)
        .await
        .unwrap()[0];
    let booked: i64 = store(&app)
        .entries_of_commit(commit.id)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind.is_earning())
        .map(|e| e.amount)
        .sum();
    assert!(booked > 0);
    assert_eq!(
        (estimate * 1000.0).round() as i64,
        booked,
        "the comment said {estimate}, the ledger booked {booked}: {body}"
    );
}
db_test!(the_comment_equals_what_the_ledger_books);

async fn the_comment_follows_the_new_heads_ci(db: &TestDb) {
    let github = github_with_no_comments().await;
    let app = support::app_with(config(db, &github)).await;
    let pr = Pr::new(&app).await;
    pr.work.git(&["checkout", "-q", "-b", "feature"]);
    pr.work.write("fix.rs", lines("fix", 127));
    let first = pr.work.commit(&format!("fix: first try\n\n{CLAUDE}"));
    pr.pull_request(&app, "opened", 7, json!({})).await;
    pr.check_run(&app, &first, "failure").await;
    let sent = comment_requests(&github).await;
    assert!(sent.last().unwrap().2.contains("CI red"), "{sent:?}");
    // A new head goes green: the first commit's estimate follows it.
    pr.work.write("more.rs", lines("more", 20));
    let second = pr.work.commit(&format!("feat: more\n\n{CLAUDE}"));
    pr.pull_request(&app, "synchronize", 7, json!({})).await;
    pr.check_run(&app, &second, "success").await;
    let body = comment_requests(&github).await.last().unwrap().2.clone();
    assert!(!body.contains("CI red"), "{body}");
    let first_line = body
        .lines()
        .find(|l| l.contains(&first[..7]))
        .unwrap()
        .to_string();
    // 10 × 0.809486 × 1.2 = 9.714, as it will be when the pull request lands.
    assert!(
        first_line.contains("| 9.714 |") && first_line.contains("CI first run green"),
        "{first_line}"
    );
    // The commit's page shows the same estimate, marked as such.
    let reader =
        crate::support::pages::token(&app, "r", tokentally::store::tokens::Role::Read, &["*"])
            .await;
    let session = crate::support::pages::login(&app, &reader).await;
    let page =
        crate::support::pages::page(&app, &format!("/commits/acme/api/{first}"), &session).await;
    assert!(
        page.text
            .contains("9.714 tokens</b> — estimate, not landed"),
        "{}",
        page.text
    );
}
db_test!(the_comment_follows_the_new_heads_ci);
