//! Mirrors inside the service: a bare "GitHub" remote made by the test, push and
//! pull_request events, a force push, an open PR, its merge and a deleted branch.
//! Each commit is stored once, with the right landed state.

use std::collections::HashMap;

use axum::http::StatusCode;
use tokentally::jobs::worker::Step;

use crate::db_test;
use crate::support::git::{Remote, TestRepo, lines};
use crate::support::{self, TestDb, send, store, webhook};

const ZERO: &str = "0000000000000000000000000000000000000000";

fn repository(remote: &Remote) -> serde_json::Value {
    serde_json::json!({
        "id": 99, "full_name": "acme/api", "default_branch": "main", "clone_url": remote.url()
    })
}

fn push_event(remote: &Remote, git_ref: &str, after: &str, forced: bool) -> String {
    serde_json::json!({
        "ref": git_ref, "before": ZERO, "after": after, "forced": forced,
        "deleted": after == ZERO, "created": false, "commits": [],
        "repository": repository(remote),
    })
    .to_string()
}

fn pull_request_event(remote: &Remote, action: &str, number: i64, head: &str) -> String {
    serde_json::json!({
        "action": action, "number": number,
        "pull_request": {
            "number": number, "state": "open", "merged": false,
            "head": { "ref": "feature", "sha": head },
            "base": { "ref": "main", "sha": ZERO },
        },
        "repository": repository(remote),
    })
    .to_string()
}

/// sha → (landed, pull request, ai, merge)
async fn stored(app: &tokentally::app::App) -> HashMap<String, (bool, Option<i64>, bool, bool)> {
    store(app)
        .commits("acme/api")
        .await
        .unwrap()
        .into_iter()
        .map(|c| {
            (
                c.sha,
                (c.landed == 1, c.pull_request, c.ai == 1, c.merge == 1),
            )
        })
        .collect()
}

use support::mirrors_on;

/// The service with mirrors on, a bare "GitHub" remote, and a work tree pushing to it.
/// A commit's committer time (epoch ms).
fn git_time(work: &TestRepo, sha: &str) -> i64 {
    let seconds = work.git(&["show", "-s", "--format=%ct", sha]);
    seconds.trim().parse::<i64>().unwrap() * 1000
}

async fn mirrored(db: &TestDb) -> (tokentally::app::App, Remote, TestRepo) {
    let app = support::app_with(mirrors_on(db)).await;
    let remote = Remote::new();
    let work = TestRepo::new();
    work.git(&["remote", "add", "origin", &remote.url()]);
    (app, remote, work)
}

async fn deliver(app: &tokentally::app::App, event: &str, id: &str, body: String) {
    let reply = send(app, webhook(event, id, body)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    app.worker.drain().await.unwrap();
    let status = store(app).delivery_status(id).await.unwrap().unwrap();
    assert_eq!(status.state, "processed", "{id}: {:?}", status.last_error);
}

async fn mirror_stores_each_commit_once_with_its_landed_state(db: &TestDb) {
    let (app, remote, work) = mirrored(db).await;

    // Two commits pushed to the default branch.
    work.write("src/a.rs", lines("a", 5));
    let a = work.commit("feat: a\n\nCo-Authored-By: Claude <noreply@anthropic.com>");
    work.write("src/b.rs", lines("b", 5));
    let b = work.commit("fix: b");
    work.git(&["push", "-q", "origin", "main"]);
    deliver(
        &app,
        "push",
        "push-1",
        push_event(&remote, "refs/heads/main", &b, false),
    )
    .await;
    let commits = stored(&app).await;
    assert_eq!(commits.len(), 2);
    assert_eq!(commits[&a], (true, None, true, false));
    assert_eq!(commits[&b], (true, None, false, false));
    assert!(db.data_dir().join("mirrors/acme/api.git/HEAD").exists());
    let record: serde_json::Value =
        serde_json::from_str(&store(&app).commits("acme/api").await.unwrap()[0].record).unwrap();
    assert_eq!(record["agents"], serde_json::json!(["claude-code"]));
    assert_eq!(record["lines_added"], 5);

    // One more: only it is new.
    work.write("src/c.rs", lines("c", 5));
    let c = work.commit("feat: c");
    work.git(&["push", "-q", "origin", "main"]);
    deliver(
        &app,
        "push",
        "push-2",
        push_event(&remote, "refs/heads/main", &c, false),
    )
    .await;
    assert_eq!(stored(&app).await.len(), 3);

    // Force push: c leaves the branch, d replaces it. Nothing is duplicated or lost.
    work.git(&["reset", "-q", "--hard", &b]);
    work.write("src/d.rs", lines("d", 5));
    let d = work.commit("feat: d\n\nAI-Assisted: aider");
    work.git(&["push", "-q", "-f", "origin", "main"]);
    deliver(
        &app,
        "push",
        "push-3",
        push_event(&remote, "refs/heads/main", &d, true),
    )
    .await;
    let commits = stored(&app).await;
    assert_eq!(commits.len(), 4);
    assert_eq!(commits[&d], (true, None, true, false));
    assert!(
        !commits[&c].0,
        "a commit force-pushed off the default branch is no longer landed"
    );
    let c_row = store(&app)
        .commits("acme/api")
        .await
        .unwrap()
        .into_iter()
        .find(|row| row.sha == c)
        .unwrap();
    assert!(
        c_row
            .unlanded_reason
            .as_deref()
            .unwrap()
            .contains("force-pushed"),
        "and says so: {:?}",
        c_row.unlanded_reason
    );
    assert!(c_row.unlanded_at.is_some());

    // An open pull request: its commit is stored, not landed.
    work.git(&["checkout", "-q", "-b", "feature"]);
    work.write("src/e.rs", lines("e", 5));
    let e = work.commit("feat: e\n\nCo-authored-by: Cursor Agent <cursoragent@cursor.com>");
    work.git(&["push", "-q", "origin", "feature"]);
    remote.git(&["update-ref", "refs/pull/7/head", &e]);
    deliver(
        &app,
        "pull_request",
        "pr-1",
        pull_request_event(&remote, "opened", 7, &e),
    )
    .await;
    let commits = stored(&app).await;
    assert_eq!(commits.len(), 5);
    assert_eq!(commits[&e], (false, Some(7), true, false));

    // Merged: the PR's commit lands (once), and the merge commit is recorded as a merge.
    work.git(&["checkout", "-q", "main"]);
    work.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "Merge pull request #7 from acme/feature",
        "feature",
    ]);
    let merge = work.head();
    work.git(&["push", "-q", "origin", "main"]);
    deliver(
        &app,
        "push",
        "push-4",
        push_event(&remote, "refs/heads/main", &merge, false),
    )
    .await;
    let commits = stored(&app).await;
    assert_eq!(commits.len(), 6);
    assert_eq!(commits[&e], (true, Some(7), true, false));
    assert_eq!(commits[&merge], (true, Some(7), false, true));

    // The branch is deleted: nothing is lost. A redelivery under a new id changes nothing.
    work.git(&["push", "-q", "origin", "--delete", "feature"]);
    remote.git(&["update-ref", "-d", "refs/pull/7/head"]);
    deliver(
        &app,
        "push",
        "push-5",
        push_event(&remote, "refs/heads/feature", ZERO, false),
    )
    .await;
    deliver(
        &app,
        "push",
        "push-4-again",
        push_event(&remote, "refs/heads/main", &merge, false),
    )
    .await;
    let after = stored(&app).await;
    assert_eq!(after, commits);
    let metrics = support::get(&app, "/metrics").await.text;
    assert!(
        metrics
            .lines()
            .any(|l| l == "tokentally_mirror_syncs_total{outcome=\"ok\"} 7"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tokentally_mirror_sync_duration_seconds_count 7"),
        "{metrics}"
    );
}
db_test!(mirror_stores_each_commit_once_with_its_landed_state);

async fn an_unreachable_remote_is_retried_a_missing_one_fails_at_once(db: &TestDb) {
    let mut config = mirrors_on(db);
    config
        .mirrors
        .allowed_remotes
        .push("http://127.0.0.1:1/".into());
    let app = support::app_with(config).await;
    let push = |name: &str, url: String| {
        serde_json::json!({
            "ref": "refs/heads/main", "before": ZERO, "after": ZERO, "commits": [],
            "repository": { "full_name": name, "default_branch": "main", "clone_url": url },
        })
        .to_string()
    };
    // A remote that does not exist will not exist on the next attempt either.
    let missing = db.data_dir().join("no-such-remote");
    let url = format!("file://{}", missing.display());
    send(&app, webhook("push", "gone", push("acme/gone", url))).await;
    let step = app.worker.step().await.unwrap();
    let status = store(&app).delivery_status("gone").await.unwrap().unwrap();
    assert_eq!(step, Step::Finished("failed"), "{:?}", status.last_error);
    assert_eq!((status.state.as_str(), status.attempts), ("failed", 1));
    assert!(
        status
            .last_error
            .unwrap()
            .contains("cannot fetch acme/gone")
    );

    // Nothing listens on port 1: the connection is refused, which may pass.
    send(
        &app,
        webhook(
            "push",
            "down",
            push("acme/down", "http://127.0.0.1:1/acme/down.git".into()),
        ),
    )
    .await;
    assert_eq!(app.worker.step().await.unwrap(), Step::Retrying);
    let status = store(&app).delivery_status("down").await.unwrap().unwrap();
    assert_eq!(status.state, "pending");
    let message = status.last_error.unwrap();
    assert!(
        message.contains("cannot fetch acme/down"),
        "the error names the repository"
    );
}
db_test!(an_unreachable_remote_is_retried_a_missing_one_fails_at_once);

async fn people_come_from_configuration_and_from_commits(db: &TestDb) {
    use tokentally::attribution::identity::PersonConfig;
    use tokentally::store::people::PersonRow;
    let mut config = mirrors_on(db);
    config.people = vec![PersonConfig {
        name: "alice".into(),
        emails: vec!["Alice@Example.com".into()],
        github: Some("alice-gh".into()),
        discord: Some("4242".into()),
        dm: true,
    }];
    let app = support::app_with(config.clone()).await;
    let remote = Remote::new();
    let work = TestRepo::new();
    work.git(&["remote", "add", "origin", &remote.url()]);
    work.write("a.rs", lines("a", 3));
    work.commit("feat: a");
    work.write("b.rs", lines("b", 3));
    work.commit_as(("Bob Builder", "bob@example.com"), "feat: b");
    work.write("c.rs", lines("c", 3));
    let c = work.commit_as(
        ("Copilot", "198982749+Copilot@users.noreply.github.com"),
        "feat: c\n\nCo-authored-by: octocat <583231+octocat@users.noreply.github.com>",
    );
    work.git(&["push", "-q", "origin", "main"]);
    deliver(
        &app,
        "push",
        "people-1",
        push_event(&remote, "refs/heads/main", &c, false),
    )
    .await;

    let people = store(&app).people().await.unwrap();
    let person =
        |key: &str, name: &str, emails: &[&str], discord: Option<&str>, configured| PersonRow {
            key: key.into(),
            display_name: name.into(),
            github_login: (key == "alice").then(|| "alice-gh".into()),
            discord_id: discord.map(Into::into),
            configured,
            emails: emails.iter().map(|e| e.to_string()).collect(),
        };
    assert_eq!(
        people,
        [
            // Known by a GitHub login only: the key says so (@login).
            person("@octocat", "@octocat", &[], None, false),
            person("alice", "alice", &["alice@example.com"], Some("4242"), true),
            person(
                "bob@example.com",
                "Bob Builder",
                &["bob@example.com"],
                None,
                false
            ),
        ]
    );

    // Configuring Bob later moves his email to the configured person.
    config.people.push(PersonConfig {
        name: "bob".into(),
        emails: vec!["bob@example.com".into()],
        github: None,
        discord: None,
        dm: true,
    });
    let app = support::app_with(config).await;
    let people = store(&app).people().await.unwrap();
    let bob = people.iter().find(|p| p.key == "bob").unwrap();
    assert_eq!(bob.emails, ["bob@example.com"]);
    let inferred = people.iter().find(|p| p.key == "bob@example.com").unwrap();
    assert!(inferred.emails.is_empty());
}
db_test!(people_come_from_configuration_and_from_commits);

async fn landed_reverts_and_fixes_become_signals(db: &TestDb) {
    let (app, remote, work) = mirrored(db).await;
    work.write("x.rs", lines("x", 4));
    let x = work.commit("feat: x\n\nCo-Authored-By: Claude <noreply@anthropic.com>");
    work.git(&["revert", "--no-edit", &x]);
    let revert = work.head();
    work.write("x.rs", lines("x2", 4));
    let fix = work.commit(&format!(
        "fix: x again\n\nFixes: {} (\"feat: x\")",
        &x[..12]
    ));
    work.git(&["push", "-q", "origin", "main"]);
    deliver(
        &app,
        "push",
        "links",
        push_event(&remote, "refs/heads/main", &fix, false),
    )
    .await;
    // Redelivered: still one of each.
    deliver(
        &app,
        "push",
        "links-again",
        push_event(&remote, "refs/heads/main", &fix, false),
    )
    .await;

    let repo = store(&app).repository("acme/api").await.unwrap().unwrap();
    let signals: Vec<(String, String, Option<String>)> = store(&app)
        .signals_for_commit(repo.id, &x)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.name.to_string(), s.status.to_string(), s.context))
        .collect();
    assert_eq!(
        signals,
        [
            ("reverted".to_string(), "fail".to_string(), Some(revert)),
            ("fixed_later".to_string(), "fail".to_string(), Some(fix)),
        ]
    );
    let metrics = support::get(&app, "/metrics").await.text;
    assert!(
        metrics
            .lines()
            .any(|l| l == "tokentally_signals_total{source=\"git\",result=\"created\"} 2"),
        "{metrics}"
    );
}
db_test!(landed_reverts_and_fixes_become_signals);

async fn the_merger_is_credited_for_agent_only_commits(db: &TestDb) {
    let (app, remote, work) = mirrored(db).await;
    work.write("base.rs", lines("base", 3));
    work.commit("chore: base");
    work.git(&["push", "-q", "origin", "main"]);

    work.git(&["checkout", "-q", "-b", "copilot/fix"]);
    work.write("bot.rs", lines("bot", 4));
    let agent_only = work.commit_as(
        ("Copilot", "198982749+Copilot@users.noreply.github.com"),
        "Fix the parser",
    );
    work.write("bot2.rs", lines("bot2", 4));
    let with_human = work.commit_as(
        ("Copilot", "198982749+Copilot@users.noreply.github.com"),
        "Add tests\n\nCo-authored-by: octocat <583231+octocat@users.noreply.github.com>",
    );
    work.git(&["push", "-q", "origin", "copilot/fix"]);
    remote.git(&["update-ref", "refs/pull/9/head", &with_human]);
    work.git(&["checkout", "-q", "main"]);
    work.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "Merge pull request #9 from acme/copilot/fix",
        "copilot/fix",
    ]);
    let merge = work.head();
    work.git(&["push", "-q", "origin", "main"]);

    let closed = serde_json::json!({
        "action": "closed", "number": 9,
        "pull_request": {
            "number": 9, "state": "closed", "merged": true, "merge_commit_sha": merge,
            "merged_by": { "login": "maintainer" },
            "head": { "ref": "copilot/fix", "sha": with_human },
            "base": { "ref": "main", "sha": ZERO },
        },
        "repository": repository(&remote),
    });
    deliver(&app, "pull_request", "merged-9", closed.to_string()).await;

    let commits = store(&app).commits("acme/api").await.unwrap();
    let get = |sha: &str| commits.iter().find(|c| c.sha == sha).unwrap();
    assert_eq!(
        get(&agent_only).person,
        "@maintainer",
        "no human co-author: the merger"
    );
    assert_eq!(get(&agent_only).merged_by.as_deref(), Some("maintainer"));
    assert_eq!(
        get(&with_human).person,
        "@octocat",
        "the human co-author keeps the credit"
    );
    assert_eq!(get(&agent_only).landed, 1);
    assert!(
        store(&app)
            .people()
            .await
            .unwrap()
            .iter()
            .any(|p| p.key == "@maintainer")
    );
}
db_test!(the_merger_is_credited_for_agent_only_commits);

async fn a_signal_for_an_unknown_commit_is_found_once_it_lands(db: &TestDb) {
    use axum::body::Body;
    use axum::http::Request;
    let app = support::app_with(mirrors_on(db)).await;
    let token = tokentally::api_token::generate();
    let scope = vec!["acme/api".to_string()];
    store(&app)
        .create_token(
            "ci",
            &tokentally::api_token::hash(&token),
            &scope,
            tokentally::store::tokens::Role::Admin,
            tokentally::clock::now_ms(),
        )
        .await
        .unwrap();
    let remote = Remote::new();
    let work = TestRepo::new();
    work.git(&["remote", "add", "origin", &remote.url()]);
    work.write("a.rs", lines("a", 3));
    let sha = work.commit("feat: a\n\nAI-Assisted: claude-code");

    // CI reports before the push reaches tokentally, by abbreviated sha.
    let body = format!(
        r#"{{"repo":"acme/api","sha":"{}","signal":"ci","status":"pass"}}"#,
        &sha[..9]
    );
    let request = Request::post("/api/v1/signals")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(send(&app, request).await.status, StatusCode::CREATED);
    assert!(store(&app).commits("acme/api").await.unwrap().is_empty());

    work.git(&["push", "-q", "origin", "main"]);
    deliver(
        &app,
        "push",
        "late-push",
        push_event(&remote, "refs/heads/main", &sha, false),
    )
    .await;
    let commits = store(&app).commits("acme/api").await.unwrap();
    assert_eq!(
        (commits[0].sha.as_str(), commits[0].landed),
        (sha.as_str(), 1)
    );
    let request = Request::get(format!("/api/v1/commits/acme/api/{sha}/signals"))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let reply = send(&app, request).await;
    assert_eq!(reply.json["signals"][0]["signal"], "ci", "{}", reply.text);
    assert_eq!(reply.json["signals"][0]["sha"], &sha[..9]);
}
db_test!(a_signal_for_an_unknown_commit_is_found_once_it_lands);

async fn commits_land_when_the_push_or_merge_happened(db: &TestDb) {
    let (app, remote, work) = mirrored(db).await;
    // The repository's first sync: its history landed when it was committed
    // (the baseline); what later pushes bring lands when they were pushed.
    work.write("README.md", lines("readme", 2));
    let first = work.commit("docs: readme");
    work.git(&["push", "-q", "origin", "main"]);
    deliver(
        &app,
        "push",
        "first",
        push_event(&remote, "refs/heads/main", &first, false),
    )
    .await;
    let history = store(&app).commits("acme/api").await.unwrap();
    let committed = git_time(&work, &first);
    assert_eq!(
        history[0].landed_at,
        Some(committed),
        "history lands at its committer date"
    );

    work.write("x.rs", lines("x", 4));
    let x = work.commit("feat: x\n\nCo-Authored-By: Claude <noreply@anthropic.com>");
    work.git(&["revert", "--no-edit", &x]);
    let revert = work.head();
    work.git(&["push", "-q", "origin", "main"]);
    // Pushed on 2026-11-20 (epoch seconds, as push payloads write it); processed
    // whenever: a retry an hour later must not move the work into another week.
    let pushed_at: i64 = 1_795_132_800;
    let mut body: serde_json::Value =
        serde_json::from_str(&push_event(&remote, "refs/heads/main", &revert, false)).unwrap();
    body["repository"]["pushed_at"] = pushed_at.into();
    deliver(&app, "push", "timed", body.to_string()).await;
    let commits = store(&app).commits("acme/api").await.unwrap();
    assert_eq!(commits.len(), 3);
    for commit in commits.iter().filter(|c| c.sha != first) {
        assert_eq!(commit.landed_at, Some(pushed_at * 1000), "{}", commit.sha);
    }
    let repo = store(&app).repository("acme/api").await.unwrap().unwrap();
    let reverted = store(&app).signals_for_commit(repo.id, &x).await.unwrap();
    assert_eq!(reverted[0].name, "reverted");
    assert_eq!(
        reverted[0].occurred_at,
        pushed_at * 1000,
        "a revert counts from when it landed"
    );

    // A merged pull request lands when it was merged.
    work.git(&["checkout", "-q", "-b", "feature"]);
    work.write("y.rs", lines("y", 4));
    let y = work.commit("feat: y");
    work.git(&["push", "-q", "origin", "feature:refs/pull/5/head"]);
    work.git(&["checkout", "-q", "main"]);
    work.git(&[
        "merge",
        "-q",
        "--no-ff",
        "feature",
        "-m",
        "Merge pull request #5 from acme/feature",
    ]);
    let merge = work.head();
    work.git(&["push", "-q", "origin", "main"]);
    let closed = serde_json::json!({
        "action": "closed", "number": 5,
        "pull_request": {
            "number": 5, "state": "closed", "merged": true, "merge_commit_sha": merge,
            "merged_at": "2026-11-21T10:00:00Z", "merged_by": { "login": "maintainer" },
            "head": { "ref": "feature", "sha": y },
            "base": { "ref": "main", "sha": ZERO },
        },
        "repository": repository(&remote),
    });
    deliver(&app, "pull_request", "merged-5", closed.to_string()).await;
    let commits = store(&app).commits("acme/api").await.unwrap();
    let merged_at = 1_795_255_200_000; // 2026-11-21T10:00:00Z
    for sha in [&y, &merge] {
        let commit = commits.iter().find(|c| &c.sha == sha).unwrap();
        assert_eq!(commit.landed_at, Some(merged_at), "{sha}");
    }

    // A time that does not parse fails the delivery; it is never 1970.
    let mut bad: serde_json::Value = closed.clone();
    bad["pull_request"]["merged_at"] = "last tuesday".into();
    let reply = send(&app, webhook("pull_request", "bad-time", bad.to_string())).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    app.worker.drain().await.unwrap();
    let status = store(&app)
        .delivery_status("bad-time")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.state, "failed");
    assert!(status.last_error.unwrap().contains("merged_at"));
}
db_test!(commits_land_when_the_push_or_merge_happened);

async fn a_stranger_whose_login_is_a_configured_name_stays_a_stranger(db: &TestDb) {
    use tokentally::attribution::identity::PersonConfig;
    let mut config = mirrors_on(db);
    config.people = vec![PersonConfig {
        name: "maria".into(),
        emails: vec!["maria@corp.example".into()],
        github: Some("mgarcia".into()),
        discord: Some("111".into()),
        dm: true,
    }];
    let app = support::app_with(config).await;
    let remote = Remote::new();
    let work = TestRepo::new();
    work.git(&["remote", "add", "origin", &remote.url()]);
    work.write("a.rs", lines("a", 3));
    let stranger = work.commit_as(
        ("Maria Other", "7+maria@users.noreply.github.com"),
        "feat: a\n\nAI-Assisted: claude-code",
    );
    work.write("b.rs", lines("b", 3));
    let configured = work.commit_as(("Maria", "maria@corp.example"), "feat: b");
    work.git(&["push", "-q", "origin", "main"]);
    deliver(
        &app,
        "push",
        "who",
        push_event(&remote, "refs/heads/main", &configured, false),
    )
    .await;
    let commits = store(&app).commits("acme/api").await.unwrap();
    let person = |sha: &str| {
        commits
            .iter()
            .find(|c| c.sha == sha)
            .unwrap()
            .person
            .clone()
    };
    assert_eq!(person(&stranger), "@maria");
    assert_eq!(person(&configured), "maria");
    let people = store(&app).people().await.unwrap();
    let stranger_row = people.iter().find(|p| p.key == "@maria").unwrap();
    assert_eq!(
        stranger_row.discord_id, None,
        "the stranger never gets maria's Discord id"
    );
    let maria = people.iter().find(|p| p.key == "maria").unwrap();
    assert_eq!(maria.discord_id.as_deref(), Some("111"));
}
db_test!(a_stranger_whose_login_is_a_configured_name_stays_a_stranger);

async fn the_read_api_shows_what_was_attributed(db: &TestDb) {
    use axum::body::Body;
    use axum::http::Request;
    let (app, remote, work) = mirrored(db).await;
    work.write("x.rs", lines("x", 6));
    let ai = work.commit("feat: x\n\nCo-Authored-By: Claude Opus 4.5 <noreply@anthropic.com>");
    work.write("y.rs", lines("y", 6));
    let human = work.commit("fix: y");
    work.git(&["revert", "--no-edit", &ai]);
    let revert = work.head();
    work.git(&["push", "-q", "origin", "main"]);
    deliver(
        &app,
        "push",
        "read-1",
        push_event(&remote, "refs/heads/main", &revert, false),
    )
    .await;

    let token = tokentally::api_token::generate();
    store(&app)
        .create_token(
            "reader",
            &tokentally::api_token::hash(&token),
            &["acme/api".into()],
            tokentally::store::tokens::Role::Read,
            0,
        )
        .await
        .unwrap();
    let get = |path: String| {
        let token = token.clone();
        let app = &app;
        async move {
            send(
                app,
                Request::get(path)
                    .header("authorization", format!("Bearer {token}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
        }
    };
    let all = get("/api/v1/repos/acme/api/commits".into()).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    let shas: Vec<&str> = all.json["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha"].as_str().unwrap())
        .collect();
    assert_eq!(shas, [ai.as_str(), human.as_str(), revert.as_str()]);
    let only_ai = get("/api/v1/repos/Acme/API/commits?ai=true&agent=claude-code".into()).await;
    assert_eq!(
        only_ai.json["commits"].as_array().unwrap().len(),
        1,
        "{}",
        only_ai.text
    );
    assert_eq!(only_ai.json["commits"][0]["model"], "claude-opus-4.5");
    let page = get("/api/v1/repos/acme/api/commits?limit=2".into()).await;
    assert_eq!(page.json["commits"].as_array().unwrap().len(), 2);
    let after = page.json["next_after"].as_i64().expect("a next page");
    let rest = get(format!(
        "/api/v1/repos/acme/api/commits?limit=2&after={after}"
    ))
    .await;
    assert_eq!(rest.json["commits"][0]["sha"], revert.as_str());
    assert!(rest.json["next_after"].is_null());
    let future = get("/api/v1/repos/acme/api/commits?since=2999-01-01".into()).await;
    assert!(future.json["commits"].as_array().unwrap().is_empty());

    let one = get(format!("/api/v1/commits/acme/api/{}", &ai[..10])).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);
    assert_eq!(one.json["sha"], ai.as_str());
    assert_eq!(one.json["record"]["evidence"][0]["agent"], "claude-code");
    assert_eq!(one.json["record"]["kind_source"], "conventional");
    assert_eq!(one.json["record"]["lines_added"], 6);
    assert_eq!(one.json["reverted_by"], serde_json::json!([revert]));
    assert_eq!(one.json["landed"], true);

    // Errors say what was wrong.
    for (path, status, code) in [
        (
            format!("/api/v1/commits/acme/api/{}", "f".repeat(40)),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/api/v1/commits/acme/api/xyz".to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            format!("/api/v1/commits/acme/web/{}", &ai[..10]),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "/api/v1/repos/acme/api/commits?ai=maybe".to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/repos/acme/api/commits?limit=0".to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/repos/acme/api/commits?since=yesterday".to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/api/v1/repos/acme/api/pulls".to_string(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ] {
        let reply = get(path.clone()).await;
        assert_eq!(reply.status, status, "{path}: {}", reply.text);
        assert_eq!(reply.json["error"], code, "{path}");
    }
    let anonymous = support::get(&app, "/api/v1/repos/acme/api/commits").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}
db_test!(the_read_api_shows_what_was_attributed);
