//! Reconciling with GitHub: a push whose webhook never arrived is attributed
//! by the periodic mirror fetch, and a landed commit without CI asks GitHub's
//! API for its check runs and statuses the day before it vests.

use std::sync::Arc;

use serde_json::{Value, json};
use tokentally::app::App;
use tokentally::clock::{Clock, ManualClock};
use wiremock::MockServer;

use crate::db_test;
use crate::support::git::lines;
use crate::support::github::{Pr, config};
use crate::support::{self, TestDb, store};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const CLAUDE: &str = "Co-Authored-By: Claude <noreply@anthropic.com>";

async fn a_push_whose_webhook_never_arrived_is_attributed(db: &TestDb) {
    let clock = ManualClock::starting_now();
    let config = support::mirrors_on(db);
    let interval = config.github.reconcile_interval_seconds as i64 * 1000;
    let app = App::connect_with_clock(config, clock.clone())
        .await
        .unwrap();
    // Webhooks are stamped with the real time; the worker goes by this clock.
    clock.advance_ms(60_000);
    let pr = Pr::new(&app).await;
    pr.work.write("fix.rs", lines("fix", 40));
    let lost = pr.work.commit(&format!(
        "fix: pushed while the webhook was lost\n\n{CLAUDE}"
    ));
    pr.work.git(&["push", "-q", "origin", "main"]);
    let known = |sha: String| {
        let app = &app;
        async move {
            store(app)
                .commits("acme/api")
                .await
                .unwrap()
                .into_iter()
                .find(|c| c.sha == sha)
                .map(|c| c.landed == 1)
        }
    };
    assert_eq!(known(lost.clone()).await, None, "no webhook, not known yet");

    let reconciler = app.reconciler();
    assert_eq!(reconciler.queue_fetches().await.unwrap(), 1);
    // Within the same interval (or from another replica) nothing more is queued.
    assert_eq!(reconciler.queue_fetches().await.unwrap(), 0);
    // Each repository's fetch has its moment within the interval.
    clock.advance_ms(interval);
    app.worker.drain().await.unwrap();
    assert_eq!(known(lost).await, Some(true), "attributed and landed");
}
db_test!(a_push_whose_webhook_never_arrived_is_attributed);

async fn ci_is_asked_of_github_the_day_before_vesting(db: &TestDb) {
    let github = MockServer::start().await;
    let clock = ManualClock::starting_now();
    clock.advance_ms(HOUR);
    let mut c = config(db, &github);
    c.github.pr_comments = false;
    let app = App::connect_with_clock(c, clock.clone()).await.unwrap();
    let pr = Pr::new(&app).await;
    let landed = clock.now_ms();
    pr.work.write("fix.rs", lines("fix", 127));
    let fix = pr
        .work
        .commit(&format!("fix: no webhook brought its CI\n\n{CLAUDE}"));
    pr.work.git(&["push", "-q", "origin", "main"]);
    let mut repository: Value = pr.repository();
    repository["pushed_at"] = (landed / 1000).into();
    pr.deliver(
        &app,
        "push",
        json!({"ref": "refs/heads/main", "before": "0000000000000000000000000000000000000000",
               "after": fix, "forced": false, "deleted": false, "created": false,
               "commits": [], "repository": repository}),
    )
    .await;
    app.settle().await.unwrap();
    let tokens = |app: &App, sha: String| {
        let ledger = app.state.ledger.clone();
        async move {
            let repository = ledger
                .store()
                .repository("acme/api")
                .await
                .unwrap()
                .unwrap();
            let commit = ledger
                .store()
                .commits_by_prefix(repository.id, &sha)
                .await
                .unwrap()
                .remove(0);
            let t = ledger.commit_tokens(&repository, &commit).await.unwrap();
            (t.tokens, t.state)
        }
    };
    // No CI: 10 × 0.809486 × 0.9 = 7.285.
    assert_eq!(tokens(&app, fix.clone()).await, (7_285, "pending"));

    let completed = tokentally::ledger::read::rfc3339(landed - 10 * 60_000);
    let check_runs = format!("/repos/acme/api/commits/{fix}/check-runs");
    support::github::check_runs(
        &github,
        &fix,
        json!([{
            "id": 31, "name": "build", "head_sha": fix, "status": "completed",
            "conclusion": "success", "completed_at": completed,
            "check_suite": {"id": 7}, "app": {"slug": "github-actions"},
        }]),
    )
    .await;
    support::github::statuses(&github, &fix, json!([])).await;
    let asked = || {
        let github = &github;
        let check_runs = check_runs.clone();
        async move {
            github
                .received_requests()
                .await
                .unwrap()
                .iter()
                .filter(|r| r.url.path() == check_runs)
                .count()
        }
    };

    // Twelve days on: not yet the day before vesting, nothing asked.
    clock.advance_ms(12 * DAY);
    app.scheduler().run_due().await.unwrap();
    assert_eq!(asked().await, 0);
    // Thirteen days and an hour: asked once; the green first run counts.
    Arc::clone(&clock).advance_ms(DAY + HOUR);
    app.scheduler().run_due().await.unwrap();
    assert_eq!(asked().await, 1);
    assert_eq!(tokens(&app, fix.clone()).await, (9_714, "pending"));
    // Day 14: it vests with it, and is never asked about again.
    clock.advance_ms(DAY);
    app.scheduler().run_due().await.unwrap();
    assert_eq!(tokens(&app, fix.clone()).await, (9_714, "vested"));
    assert_eq!(asked().await, 1);
    // The same run arriving later by webhook stores nothing twice.
    pr.deliver(
        &app,
        "check_run",
        json!({
            "action": "completed",
            "check_run": {
                "id": 31, "name": "build", "head_sha": fix, "status": "completed",
                "conclusion": "success", "completed_at": completed,
                "check_suite": {"id": 7}, "app": {"slug": "github-actions"},
            },
            "repository": pr.repository(),
        }),
    )
    .await;
    let repository = store(&app).repository("acme/api").await.unwrap().unwrap();
    let signals = store(&app)
        .signals_for_commit(repository.id, &fix)
        .await
        .unwrap();
    assert_eq!(signals.len(), 1);
    assert_eq!(signals[0].source, "github:check_run");
}
db_test!(ci_is_asked_of_github_the_day_before_vesting);
