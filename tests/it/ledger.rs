//! Scoring and the ledger through the whole service: signed webhooks into the
//! real router, a local bare repository as the remote, API signals, and an
//! injected clock (never a sleep). Each scenario runs on SQLite and PostgreSQL.
//!
//! Worked numbers (`docs/scoring.md` defaults, calibration 1.0 with no history):
//! size(127 lines) = log2(128) / log2(401) = 7 / 8.6474584 = 0.809486;
//! a fix green on its first run = 10 × 0.809486 × 1.2 = 9.714 tokens.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tokentally::app::App;
use tokentally::scoring::balance::EntryKind;
use tokentally::scoring::week::Week;
use tokentally::store::tokens::Role;

use crate::db_test;
use crate::support::git::lines;
use crate::support::{TestDb, send, store};

use crate::support::scenario::{CLAUDE, DAY, HOUR, Scenario, close, config, rfc3339, token};

async fn an_ai_fix_green_on_its_first_run_vests_after_14_days(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let landed = s.now() + HOUR;
    let fix = s.ai_commit("fix", "fix.rs", 127);
    // CI reports before the push that lands the commit is processed.
    s.check_run(&fix, "build", "success", landed - 10 * 60_000, 1)
        .await;
    s.clock.advance_ms(HOUR);
    s.push(&fix, landed).await;
    s.settle().await;

    let t = s.tokens(&fix).await;
    assert_eq!(t["state"], "pending", "{t}");
    assert_eq!(t["person"], "ada");
    assert!(close(&t["tokens"], 9.714), "{t}");
    assert!(close(&t["factors"]["tier"], 10.0));
    assert!(close(&t["factors"]["outcome"], 1.2));
    assert!(close(&t["factors"]["calibration"], 1.0));
    assert_eq!(t["entries"][0]["kind"], "accrual");
    assert_eq!(t["entries"][0]["at"], rfc3339(landed));
    let b = s.balance("ada").await;
    assert!(
        close(&b["pending"], 9.714) && close(&b["vested"], 0.0),
        "{b}"
    );

    // Day 13: nothing vests; day 14: all of it, effective at landing + 14 days.
    s.clock.advance_ms(13 * DAY);
    assert!(s.app.scheduler().run_due().await.unwrap().len() <= 4);
    s.settle().await;
    assert_eq!(s.tokens(&fix).await["state"], "pending");
    s.clock.advance_ms(DAY);
    let ran = s.app.scheduler().run_due().await.unwrap();
    assert!(
        ran.contains(&tokentally::jobs::schedule::Job::Vesting),
        "{ran:?}"
    );
    let t = s.tokens(&fix).await;
    assert_eq!(t["state"], "vested", "{t}");
    assert_eq!(t["entries"][1]["kind"], "vest");
    assert_eq!(t["entries"][1]["at"], rfc3339(landed + 14 * DAY));
    let b = s.balance("ada").await;
    assert!(
        close(&b["pending"], 0.0) && close(&b["vested"], 9.714) && close(&b["available"], 9.714),
        "{b}"
    );
    // Running the jobs and settling again changes nothing.
    let before = s.entry_count().await;
    s.app.scheduler().run_due().await.unwrap();
    s.settle().await;
    assert_eq!(s.entry_count().await, before);

    // The history the first push brought is the baseline: never paid.
    let history = store(&s.app).commits("acme/api").await.unwrap();
    let old = history
        .iter()
        .find(|c| c.subject.starts_with("feat: old"))
        .unwrap();
    let t = s.tokens(&old.sha).await;
    assert_eq!(
        (t["state"].as_str(), t["ai"].as_bool()),
        (Some("baseline"), Some(true))
    );
    assert!(close(&t["tokens"], 0.0));
    let readme = history
        .iter()
        .find(|c| c.subject.starts_with("docs: readme"))
        .unwrap();
    assert_eq!(s.tokens(&readme.sha).await["state"], "not_ai");
}
db_test!(an_ai_fix_green_on_its_first_run_vests_after_14_days);

async fn an_ai_feature_reverted_on_day_3_is_clawed_back(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let landed = s.now() + HOUR;
    let feature = s.ai_commit("feat", "feature.rs", 127);
    s.push(&feature, landed).await;
    s.settle().await;
    // No CI: 8 × 0.809486 × 0.9 = 5.828
    assert!(close(&s.tokens(&feature).await["tokens"], 5.828));

    s.clock.advance_ms(3 * DAY);
    s.work.git(&["revert", "--no-edit", &feature]);
    let revert = s.work.head();
    let reverted_at = landed + 3 * DAY;
    s.push(&revert, reverted_at).await;
    s.settle().await;
    let t = s.tokens(&feature).await;
    assert_eq!(t["state"], "clawed_back", "{t}");
    // Pending tokens are cancelled (no money moves): the kind says so.
    let clawback = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "cancel")
        .expect("a cancel entry");
    assert!(close(&clawback["amount"], -5.828));
    assert_eq!(clawback["at"], rfc3339(reverted_at));
    assert_eq!(t["hygiene_events"][0]["event"], "reverted");
    let b = s.balance("ada").await;
    assert!(
        close(&b["pending"], 0.0) && close(&b["clawed_back"], 5.828),
        "{b}"
    );
    // After the vesting date nothing vests.
    s.clock.advance_ms(20 * DAY);
    s.settle().await;
    assert!(close(&s.balance("ada").await["vested"], 0.0));

    // The week: one AI commit (unranked), hygiene 100 − 15 = 85.
    let board = s.leaderboard(landed).await;
    let line = &board["unranked"][0];
    assert_eq!(line["person"], "ada", "{board}");
    assert_eq!(line["hygiene"], 85);
    assert!(close(&line["earned"], 5.828) && close(&line["clawed_back"], 5.828));
    assert!(close(&line["value"], 0.0));
    assert!(close(&line["revert_rate"], 1.0));
    // The revert itself is kind revert: tier 0.
    let t = s.tokens(&revert).await;
    assert_eq!(t["kind"], "revert");
}
db_test!(an_ai_feature_reverted_on_day_3_is_clawed_back);

async fn a_fixes_follow_up_claws_back_and_costs_hygiene(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let landed = s.now() + HOUR;
    let feature = s.ai_commit("feat", "feature.rs", 127);
    s.push(&feature, landed).await;
    s.work.write("feature.rs", lines("feature_rs_fixed", 127));
    let follow_up = s.work.commit(&format!(
        "fix: feature edge case\n\nFixes: {feature}\n{CLAUDE}"
    ));
    s.push(&follow_up, landed + DAY).await;
    s.settle().await;
    let t = s.tokens(&feature).await;
    assert_eq!(t["state"], "clawed_back", "{t}");
    assert_eq!(t["hygiene_events"][0]["event"], "fixed_later");
    // The follow-up is paid as a fix of its own (no CI: 10 × size × 0.9).
    let f = s.tokens(&follow_up).await;
    assert_eq!(f["state"], "pending");
    assert!(f["tokens"].as_f64().unwrap() > 0.0);
    let board = s.leaderboard(landed).await;
    let line = &board["entries"][0];
    assert_eq!(
        (line["rank"].as_u64(), line["hygiene"].as_u64()),
        (Some(1), Some(90)),
        "{board}"
    );
    // value = (earned − clawed back) × (0.5 + 0.5 × 0.90)
    let earned = line["earned"].as_f64().unwrap() - line["clawed_back"].as_f64().unwrap();
    assert!(
        close(&line["value"], (earned * 0.95 * 1000.0).round() / 1000.0),
        "{line}"
    );
}
db_test!(a_fixes_follow_up_claws_back_and_costs_hygiene);

async fn duplicates_noise_and_human_commits(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let at = s.now() + HOUR;
    let first = s.ai_commit("feat", "dup.rs", 50);
    s.push(&first, at).await;
    // The same patch lands again: removed, then added back identically.
    s.work.git(&["rm", "-q", "dup.rs"]);
    s.work.commit("chore: drop dup");
    s.work.write("dup.rs", lines("dup_rs", 50));
    let again = s.work.commit(&format!("feat: dup again\n\n{CLAUDE}"));
    // A 1-line AI commit is noise; a human commit earns nothing.
    s.work.write("tiny.rs", "x\n");
    let tiny = s.work.commit(&format!("chore: tiny\n\n{CLAUDE}"));
    s.work.write("human.rs", lines("human", 30));
    let human = s.work.commit("feat: by hand");
    s.push(&human, at + HOUR).await;
    s.settle().await;

    let d = s.tokens(&again).await;
    assert!(close(&d["tokens"], 0.0), "a duplicate earns nothing: {d}");
    assert_eq!(d["inputs"]["duplicate_of"], first);
    assert!(
        d["hygiene_events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "duplicate")
    );
    // Noise pays nothing (its score would be 2 × 0.25 × 0.9 = 0.45).
    let n = s.tokens(&tiny).await;
    assert!(close(&n["tokens"], 0.0), "{n}");
    assert_eq!(n["inputs"]["noise"], true, "{n}");
    assert!(
        n["formula"]
            .as_str()
            .unwrap()
            .ends_with("= 0.450 (noise: 0)"),
        "{n}"
    );
    let h = s.tokens(&human).await;
    assert_eq!(
        (h["state"].as_str(), h["ai"].as_bool()),
        (Some("not_ai"), Some(false))
    );
    assert!(h["entries"].as_array().unwrap().is_empty());
    let board = s.leaderboard(at).await;
    let line = &board["entries"][0];
    // 3 AI commits; hygiene 100 − 3 (duplicate) − 2 (noise) = 95.
    assert_eq!(
        (line["ai_commits"].as_u64(), line["hygiene"].as_u64()),
        (Some(3), Some(95)),
        "{board}"
    );
}
db_test!(duplicates_noise_and_human_commits);

async fn one_run_reported_three_ways_counts_once(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let at = s.now() + HOUR;
    let fix = s.ai_commit("fix", "fix.rs", 127);
    let finished = rfc3339(at - 60_000);
    s.deliver(
        "workflow_run",
        json!({"action": "completed", "workflow_run": {
            "id": 501, "name": "CI", "head_sha": fix, "status": "completed",
            "conclusion": "success", "run_attempt": 1, "updated_at": finished},
            "repository": s.repository()}),
    )
    .await;
    s.deliver(
        "check_suite",
        json!({"action": "completed", "check_suite": {
            "id": 7, "head_sha": fix, "status": "completed", "conclusion": "success",
            "app": {"slug": "github-actions"}, "updated_at": finished},
            "repository": s.repository()}),
    )
    .await;
    s.check_run(&fix, "build", "success", at - 60_000, 11).await;
    s.check_run(&fix, "test", "success", at - 60_000, 12).await;
    // The job reports through the API too.
    let reply = send(
        &s.app,
        Request::post("/api/v1/signals")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", s.reporter))
            .body(Body::from(
                json!({"repo": "acme/api", "sha": fix, "signal": "ci", "status": "pass"})
                    .to_string(),
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    s.clock.advance_ms(HOUR);
    s.push(&fix, at).await;
    s.settle().await;
    let t = s.tokens(&fix).await;
    assert_eq!(t["inputs"]["ci"], "first_run_green", "{t}");
    assert!(close(&t["tokens"], 9.714));
    // A re-run of the workflow that fails later (attempt 2) is the latest attempt: red.
    s.deliver(
        "workflow_run",
        json!({"action": "completed", "workflow_run": {
            "id": 501, "name": "CI", "head_sha": fix, "status": "completed",
            "conclusion": "failure", "run_attempt": 2, "updated_at": rfc3339(at + 2 * HOUR)},
            "repository": s.repository()}),
    )
    .await;
    s.settle().await;
    let t = s.tokens(&fix).await;
    // 10 × 0.809486 × 0.3 = 2.428
    assert_eq!(t["inputs"]["ci"], "red", "{t}");
    assert!(close(&t["tokens"], 2.428), "{t}");
    let adjustment = &t["entries"][1];
    assert_eq!(adjustment["kind"], "adjustment");
    assert_eq!(adjustment["at"], rfc3339(at + 2 * HOUR));
    // Red and never green: hygiene 100 − 5.
    let board = s.leaderboard(at).await;
    assert_eq!(board["unranked"][0]["hygiene"], 95, "{board}");
    assert_eq!(board["unranked"][0]["hygiene_events"]["red_never_green"], 1);
}
db_test!(one_run_reported_three_ways_counts_once);

async fn pay_from_pays_recent_history_once(db: &TestDb) {
    let mut c = config(db);
    // The test repository's commits are dated from November 2025.
    c.scoring.pay_from = Some("2025-01-01".into());
    let s = Scenario::new(c).await;
    s.settle().await;
    let history = store(&s.app).commits("acme/api").await.unwrap();
    let old = history
        .iter()
        .find(|c| c.subject.starts_with("feat: old"))
        .unwrap();
    let t = s.tokens(&old.sha).await;
    // Landed (committed) a year ago: accrued and vested in the same pass.
    assert_eq!(t["state"], "vested", "{t}");
    let kinds: Vec<&str> = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["accrual", "vest"]);
    s.settle().await;
    assert_eq!(
        s.tokens(&old.sha).await["entries"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
db_test!(pay_from_pays_recent_history_once);

async fn a_weight_change_then_replay_apply(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let at = s.now() + HOUR;
    let fix = s.ai_commit("fix", "fix.rs", 127);
    s.check_run(&fix, "build", "success", at - 60_000, 1).await;
    s.clock.advance_ms(HOUR);
    s.push(&fix, at).await;
    s.settle().await;
    let before = s.tokens(&fix).await;
    assert!(close(&before["tokens"], 9.714));

    // New rules: fix weighs 12. The service keeps paying commits under the
    // rules they accrued under until replay --apply.
    let mut heavier = config(db);
    heavier.scoring.tiers.insert("fix".into(), 12.0);
    let ledger = tokentally::ledger::Ledger::new(store(&s.app).clone(), &heavier);
    ledger.settle(s.now()).await.unwrap();
    assert!(close(&s.tokens(&fix).await["tokens"], 9.714));
    // The scratch ledger (replay without --apply) under the new rules: 12 × 0.809486 × 1.2.
    let replay = || async {
        let mut entries = Vec::new();
        ledger
            .replay_scratch_each(s.now(), |e| entries.push(e))
            .await
            .unwrap();
        entries
    };
    let scratch = replay().await;
    let earned: i64 = scratch
        .iter()
        .filter(|e| e.sha.as_deref() == Some(&fix) && e.kind != EntryKind::Vest)
        .map(|e| e.amount)
        .sum();
    assert_eq!(earned, 11_657);
    assert_eq!(
        scratch,
        replay().await,
        "the same inputs replay to the same entries"
    );
    let report = ledger.replay_apply(s.now()).await.unwrap();
    assert_eq!(report.appended, 1);
    let after = s.tokens(&fix).await;
    assert!(close(&after["tokens"], 11.657), "{after}");
    let last = after["entries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "adjustment");
    assert_eq!(last["rules_version"], heavier.scoring.version());
    assert!(close(&last["amount"], 11.657 - 9.714));
    assert_eq!(ledger.replay_apply(s.now()).await.unwrap().appended, 0);
    // Later passes keep the commit on the rules it moved to.
    ledger.settle(s.now()).await.unwrap();
    s.settle().await;
    assert!(close(&s.tokens(&fix).await["tokens"], 11.657));
}
db_test!(a_weight_change_then_replay_apply);

async fn concurrent_redemptions_never_overdraw(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let at = s.now() + HOUR;
    let fix = s.ai_commit("fix", "fix.rs", 127);
    s.check_run(&fix, "build", "success", at - 60_000, 1).await;
    s.clock.advance_ms(HOUR);
    s.push(&fix, at).await;
    s.clock.advance_ms(15 * DAY);
    s.settle().await;
    assert!(close(&s.balance("ada").await["available"], 9.714));

    let redeem = |key: &str, tokens: f64, bearer: &str| {
        Request::post("/api/v1/redemptions")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {bearer}"))
            .body(Body::from(
                json!({"person": "ada", "tokens": tokens, "kind": "bonus", "key": key}).to_string(),
            ))
            .unwrap()
    };
    // A report token may not redeem.
    let refused = send(&s.app, redeem("r0", 1.0, &s.reporter)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    let (a, b) = tokio::join!(
        send(&s.app, redeem("r1", 6.0, &s.admin)),
        send(&s.app, redeem("r2", 6.0, &s.admin)),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::UNPROCESSABLE_ENTITY],
        "{} {}",
        a.text,
        b.text
    );
    let refused = if a.status == StatusCode::CREATED {
        &b
    } else {
        &a
    };
    assert_eq!(refused.json["error"], "insufficient_balance");
    assert!(
        refused.json["message"].as_str().unwrap().contains("3.714"),
        "{}",
        refused.text
    );
    let done = if a.status == StatusCode::CREATED {
        &a
    } else {
        &b
    };
    assert!(
        close(&done.json["balance"]["available"], 3.714),
        "{}",
        done.text
    );
    assert!(close(&done.json["entry"]["amount"], -6.0));
    // The same key again answers as the first time did; with another amount, 409.
    let key = if a.status == StatusCode::CREATED {
        "r1"
    } else {
        "r2"
    };
    let again = send(&s.app, redeem(key, 6.0, &s.admin)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    let conflict = send(&s.app, redeem(key, 2.0, &s.admin)).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{}", conflict.text);
    let b = s.balance("ada").await;
    assert!(
        close(&b["redeemed"], 6.0) && close(&b["available"], 3.714),
        "{b}"
    );
    // Bad input: 422 naming the field; unknown person 404.
    let bad = send(&s.app, redeem("r3", -1.0, &s.admin)).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.json["message"].as_str().unwrap().contains("tokens"));
    let nobody = Request::post("/api/v1/redemptions")
        .header("authorization", format!("Bearer {}", s.admin))
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"person": "nobody", "tokens": 1.0, "kind": "pto", "key": "r4"}).to_string(),
        ))
        .unwrap();
    assert_eq!(send(&s.app, nobody).await.status, StatusCode::NOT_FOUND);
}
db_test!(concurrent_redemptions_never_overdraw);

async fn read_api_roles_and_errors(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let reader = token(&s.app, "reader", Role::Read).await;
    let week = Week::of(s.now(), "UTC".parse().unwrap()).label();
    // A report token gets 403 on the read API; a read token reads.
    for path in [
        format!("/api/v1/leaderboard?week={week}"),
        "/api/v1/people/ada/balance".to_string(),
        format!("/api/v1/people/ada/ledger?week={week}"),
    ] {
        let refused = s.get(&path, &s.reporter).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            refused.text
        );
        assert_eq!(refused.json["error"], "forbidden");
        assert_eq!(s.get(&path, &reader).await.status, StatusCode::OK, "{path}");
    }
    let bad_week = s.get("/api/v1/leaderboard?week=2026-41", &reader).await;
    assert_eq!(bad_week.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_week.json["error"], "invalid_week");
    let bad_rank = s.get("/api/v1/leaderboard?rank_by=luck", &reader).await;
    assert_eq!(bad_rank.status, StatusCode::BAD_REQUEST);
    let nobody = s.get("/api/v1/people/nobody/balance", &reader).await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
    let unknown = s
        .get(
            &format!("/api/v1/commits/acme/api/{}/tokens", "ab".repeat(20)),
            &reader,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let bad_sha = s.get("/api/v1/commits/acme/api/xyz/tokens", &reader).await;
    assert_eq!(bad_sha.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A read token scoped to some repositories reads their commits, not people.
    let scoped = tokentally::api_token::generate();
    store(&s.app)
        .create_token(
            "scoped",
            &tokentally::api_token::hash(&scoped),
            &["acme/api".to_string()],
            Role::Read,
            0,
        )
        .await
        .unwrap();
    let people = s.get("/api/v1/people/ada/balance", &scoped).await;
    assert_eq!(people.status, StatusCode::FORBIDDEN);
}
db_test!(read_api_roles_and_errors);

async fn ledger_entries_are_append_only(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let at = s.now() + HOUR;
    let fix = s.ai_commit("fix", "fix.rs", 127);
    s.push(&fix, at).await;
    s.settle().await;
    assert!(s.entry_count().await > 0);
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    for statement in [
        "UPDATE ledger_entries SET amount = amount + 1000",
        "DELETE FROM ledger_entries",
    ] {
        let err = sqlx::query(statement).execute(&pool).await.unwrap_err();
        assert!(
            err.to_string().contains("append-only"),
            "{statement}: {err}"
        );
    }
    pool.close().await;
}
db_test!(ledger_entries_are_append_only);

/// A ledger from before `commit_balances` (entries, no sums yet): the store
/// sums its entries when it starts, so the weeks read what they read before.
async fn a_ledger_from_before_commit_balances_is_summed_on_start(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let fix = s.ai_commit("fix", "fix.rs", 127);
    s.push(&fix, s.now() + HOUR).await;
    s.settle().await;
    assert!(s.entry_count().await > 0);
    db.exec("DELETE FROM commit_balances; UPDATE ledger_head SET balanced_entry_id = 0")
        .await;
    store(&s.app).migrate().await.unwrap();
    s.assert_ledger_consistent().await;
}
db_test!(a_ledger_from_before_commit_balances_is_summed_on_start);

/// `why`, `balance`, `leaderboard`, `redeem`, `replay` and `token create --role`
/// as a user runs them, against the scenario's database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_commands() {
    let db = TestDb::sqlite();
    let s = Scenario::new(config(&db)).await;
    let at = s.now() + HOUR;
    let fix = s.ai_commit("fix", "fix.rs", 127);
    s.check_run(&fix, "build", "success", at - 60_000, 1).await;
    s.clock.advance_ms(HOUR);
    s.push(&fix, at).await;
    s.settle().await;
    let file = db.dir_path().join("tokentally.toml");
    std::fs::write(
        &file,
        format!(
            "database_url = {:?}\n[[people]]\nname = \"ada\"\nemails = [\"alice@example.com\"]\n",
            db.url
        ),
    )
    .unwrap();
    let run = |args: &[&str]| crate::support::cli::run_with_config(&file, args);

    let (ok, out, err) = run(&["why", &fix[..10]]);
    assert!(ok, "{err}");
    assert!(
        out.contains("person ada, AI-assisted, kind fix: pending"),
        "{out}"
    );
    assert!(
        out.contains("tokens 9.714 = 10 × 0.809486 × 1.200000 × 1.000000"),
        "{out}"
    );
    assert!(
        out.contains("size        0.809486   log2(1 + 127) / log2(1 + 400)"),
        "{out}"
    );
    assert!(out.contains("CI first_run_green"), "{out}");
    assert!(out.contains("accrual"), "{out}");
    let (ok, json, _) = run(&["why", &fix, "--repo", "Acme/API", "--format", "json"]);
    assert!(ok);
    let json: Value = serde_json::from_str(&json).unwrap();
    assert!(close(&json["tokens"], 9.714), "the API's JSON: {json}");
    let (ok, _, err) = run(&["why", "nothex"]);
    assert!(!ok && err.contains("not a commit id"), "{err}");
    let (ok, _, err) = run(&["why", &"f".repeat(40)]);
    assert!(!ok && err.contains("no commit"), "{err}");

    let (ok, out, _) = run(&["balance", "ada"]);
    assert!(ok && out.contains("pending            9.714"), "{out}");
    let (ok, _, err) = run(&["balance", "nobody"]);
    assert!(!ok && err.contains("no person"), "{err}");

    let week = Week::of(at, "UTC".parse().unwrap()).label();
    let (ok, out, err) = run(&["leaderboard", "--week", &week, "--format", "json"]);
    assert!(ok, "{err}");
    let board: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(board["week"], week);
    assert!(close(&board["unranked"][0]["earned"], 9.714), "{board}");
    let (ok, _, err) = run(&["leaderboard", "--week", "2026-W99"]);
    assert!(!ok && err.contains("not an ISO week"), "{err}");

    // Nothing has vested: a redemption is refused, saying what is available.
    let (ok, _, err) = run(&[
        "redeem", "--person", "ada", "--tokens", "1", "--kind", "bonus",
    ]);
    assert!(!ok && err.contains("0.000 tokens available"), "{err}");
    let (ok, _, err) = run(&[
        "redeem", "--person", "ada", "--tokens", "1", "--kind", "cash",
    ]);
    assert!(!ok && err.contains("--kind"), "{err}");

    let (ok, out, err) = run(&["replay"]);
    assert!(ok, "{err}");
    assert!(out.contains("no differences"), "{out}");

    let (ok, token, err) = run(&[
        "token",
        "create",
        "--name",
        "dash",
        "--role",
        "read",
        "--all-repos",
    ]);
    assert!(ok && err.contains("created read token"), "{err}");
    let reply = s.get("/api/v1/people/ada/balance", token.trim()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let (_, list, _) = run(&["token", "list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("dash") && l.contains("read")),
        "{list}"
    );

    // The digest: Markdown, JSON, the chart; --post needs a destination.
    let (ok, out, err) = run(&["digest", "--week", &week]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("**tokentally — week {week}")),
        "{out}"
    );
    assert!(out.contains("earned 9.7 tokens"), "{out}");
    let chart = db.dir_path().join("chart.png");
    let (ok, out, err) = run(&[
        "digest",
        "--week",
        &week,
        "--format",
        "json",
        "--chart",
        chart.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let digest: Value = serde_json::from_str(&out).unwrap();
    assert!(close(&digest["totals"]["earned"], 9.714), "{digest}");
    assert!(std::fs::read(&chart).unwrap().starts_with(b"\x89PNG"));
    let (ok, _, err) = run(&["digest", "--week", "2026-W60"]);
    assert!(!ok && err.contains("not an ISO week"), "{err}");
    let (ok, _, err) = run(&["digest", "--format", "html"]);
    assert!(!ok && err.contains("markdown or json"), "{err}");
    let (ok, _, err) = run(&["digest", "--post"]);
    assert!(!ok && err.contains("no Discord destination"), "{err}");

    // Statements for payroll and the chain: close the weeks through the vest.
    s.clock.advance_ms(15 * DAY);
    let vest_week = Week::of(at + 14 * DAY, "UTC".parse().unwrap());
    s.close_through(vest_week).await;
    let (ok, csv, err) = run(&[
        "statements",
        "--week",
        &vest_week.label(),
        "--format",
        "csv",
    ]);
    assert!(ok, "{err}");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows,
        [
            "week,person,opening,vested,clawed_back,corrections,redeemed,paid,closing,amount_minor,amount,currency,closed",
            &format!(
                "{},ada,0.000,9.714,0.000,0.000,0.000,0.000,9.714,0,0.00,USD,true",
                vest_week.label()
            ),
        ]
    );
    let (ok, _, err) = run(&["statements", "--format", "xml"]);
    assert!(!ok && err.contains("table, csv or json"), "{err}");
    let (ok, out, err) = run(&["ledger", "verify"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "ok: 2 entries, 1 statements");
    db.exec(
        "DROP TRIGGER ledger_entries_no_update; \
         UPDATE ledger_entries SET amount = 1 WHERE kind = 'vest'",
    )
    .await;
    let (ok, _, err) = run(&["ledger", "verify"]);
    assert!(!ok && err.contains("does not match the chain"), "{err}");
}

/// Two replicas sharing one database run each scheduled job once per
/// scheduled time; running the jobs again changes nothing.
async fn scheduled_jobs_run_once_across_replicas(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let fix = s.ai_commit("fix", "fix.rs", 127);
    let at = s.now() + HOUR;
    s.push(&fix, at).await;
    let other = App::connect_with_clock(config(db), s.clock.clone())
        .await
        .unwrap();
    let (mine, theirs) = (s.app.scheduler(), other.scheduler());
    let (a, b) = tokio::join!(mine.run_due(), theirs.run_due());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 4, "each job once: {a:?} {b:?}");
    assert!(s.app.scheduler().run_due().await.unwrap().is_empty());
    // The vesting job settled the ledger: the commit accrued.
    assert_eq!(s.tokens(&fix).await["state"], "pending");
    // At the next hour the vesting and close jobs are due again, once each.
    s.clock.advance_ms(HOUR);
    let (a, b) = tokio::join!(mine.run_due(), theirs.run_due());
    let mut ran: Vec<_> = a.unwrap().into_iter().chain(b.unwrap()).collect();
    ran.sort_by_key(|j| j.name());
    use tokentally::jobs::schedule::Job;
    assert_eq!(ran, [Job::Close, Job::Vesting]);
}
db_test!(scheduled_jobs_run_once_across_replicas);

/// Pool mode: closing the week pays each person's available vested tokens
/// (× the payout factor fixed on each vest) as a share of the pool, to the
/// cent, and the lines add up to the pool; the payouts API reads the statement.
async fn payouts_by_pool_and_by_rate(db: &TestDb) {
    let mut c = config(db);
    c.payout.mode = tokentally::config::PayoutMode::Pool;
    c.payout.weekly_pool = "1000".parse().unwrap();
    c.payout.pto_hours_per_token = Some(0.5);
    let s = Scenario::new(c).await;
    let at = s.now() + HOUR;
    let fix = s.ai_commit("fix", "fix.rs", 127);
    s.check_run(&fix, "build", "success", at - 60_000, 1).await;
    s.work.write("b.rs", lines("b", 63));
    let bob = s
        .work
        .commit_as(("Bob", "bob@example.com"), &format!("feat: b\n\n{CLAUDE}"));
    s.clock.advance_ms(HOUR);
    s.push(&bob, at).await;
    s.clock.advance_ms(15 * DAY);
    s.settle().await;
    let utc: chrono_tz::Tz = "UTC".parse().unwrap();
    let week = Week::of(at + 14 * DAY, utc);
    // Still open: no payouts yet, and it says when it closes.
    let open = s
        .get(&format!("/api/v1/payouts?week={}", week.label()), &s.admin)
        .await;
    assert_eq!(open.status, StatusCode::OK, "{}", open.text);
    assert_eq!(open.json["closed"], false, "{}", open.text);
    assert_eq!(open.json["payouts"], json!([]));
    assert!(
        open.json["message"]
            .as_str()
            .unwrap()
            .contains("still open")
    );
    // 48 hours after the week ends it closes.
    s.clock
        .advance_ms(s.app.state.ledger.closes_at(week) - s.now());
    let closed = s.app.close_due().await.unwrap();
    assert!(closed.contains(&week.label()), "{closed:?}");
    let reply = s
        .get(&format!("/api/v1/payouts?week={}", week.label()), &s.admin)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["closed"], true, "{}", reply.text);
    let payouts = reply.json["payouts"].as_array().unwrap().clone();
    assert_eq!(payouts.len(), 2, "{}", reply.text);
    // ada 9.714; bob 8 × log2(64)/log2(401) × 0.9 = 8 × 0.693845 × 0.9 = 4.996.
    let by = |p: &str| payouts.iter().find(|x| x["person"] == p).unwrap().clone();
    assert!(close(&by("ada")["tokens"], 9.714));
    assert!(
        close(&by("bob@example.com")["tokens"], 4.996),
        "{}",
        reply.text
    );
    // 100,000 cents split 9,714 : 4,996 → 66,036.71 / 33,963.29 → 66,037 + 33,963.
    assert_eq!(reply.json["total_minor"], 100_000);
    assert_eq!(by("ada")["amount_minor"], 66_037);
    assert_eq!(by("bob@example.com")["amount_minor"], 33_963);
    assert!(close(&by("ada")["pto_hours"], 4.86), "{}", reply.text);
    // The payout is a ledger entry: nothing is left to pay or redeem.
    let balance = s.balance("ada").await;
    assert!(close(&balance["paid"], 9.714), "{balance}");
    assert!(close(&balance["available"], 0.0), "{balance}");
}
db_test!(payouts_by_pool_and_by_rate);

/// The digest of a week seeded through the service: a fix green on its first
/// run, a feature reverted the next day, two human commits.
async fn the_digest_of_a_seeded_week(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let landed = s.now() + HOUR;
    let fix = s.ai_commit("fix", "fix.rs", 127);
    s.check_run(&fix, "build", "success", landed - 10 * 60_000, 1)
        .await;
    let feature = s.ai_commit("feat", "feature.rs", 127);
    s.work.write("notes.md", lines("notes", 5));
    let notes = s.work.commit("docs: notes");
    s.clock.advance_ms(HOUR);
    s.push(&notes, landed).await;
    s.settle().await;
    s.clock.advance_ms(DAY);
    s.work.git(&["revert", "--no-edit", &feature]);
    let revert = s.work.head();
    s.push(&revert, landed + DAY).await;
    s.settle().await;

    let utc: chrono_tz::Tz = "UTC".parse().unwrap();
    let week = Week::of(landed, utc);
    let state = &s.app.state;
    let d = tokentally::digest::build(&state.ledger, &state.config, week, None)
        .await
        .unwrap();
    assert_eq!(d.week, week.label());
    assert!(!d.quiet);
    // fix 9.714 + feature 5.828 earned; the feature's 5.828 clawed back; nothing vested yet.
    assert_eq!(d.totals.earned, 15_542);
    // The 12-week trend ends with this week's net tokens: earned less what
    // was taken back (15.542 − 5.828), as the chart plots them.
    let last = d.trend.last().unwrap();
    assert_eq!((last.week.as_str(), last.earned), (d.week.as_str(), 9_714));
    assert_eq!(d.totals.clawed_back, 5_828);
    assert_eq!((d.totals.vested, d.totals.payout_minor), (0, 0));
    // Landed: fix, feature, notes, the revert; 2 AI, 1 of them reverted.
    assert_eq!((d.commits.landed, d.commits.ai), (4, 2));
    assert_eq!((d.commits.ai_reverted, d.commits.human_reverted), (1, 0));
    assert!((d.commits.ai_revert_rate - 0.5).abs() < 1e-12);
    assert_eq!(
        d.agents
            .iter()
            .map(|a| (a.agent.as_str(), a.commits))
            .collect::<Vec<_>>(),
        [("claude-code", 2)]
    );
    // The leaderboard line is the API's.
    let board = s.leaderboard(landed).await;
    assert_eq!(d.leaderboard.len(), 1, "{board}");
    let line = &d.leaderboard[0];
    assert_eq!(
        (line.person.as_str(), line.rank, line.trend.as_str()),
        ("ada", 1, "new")
    );
    assert!(
        close(&board["entries"][0]["value"], line.value as f64 / 1000.0),
        "{board}"
    );
    assert_eq!(line.reverts, 1);
    let best = d.highlights.most_valuable.as_ref().unwrap();
    assert_eq!(
        best.sha,
        fix,
        "{best:?} {:?}",
        store(&s.app)
            .commits("acme/api")
            .await
            .unwrap()
            .iter()
            .map(|c| (c.sha.clone(), c.subject.clone()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        best.factors,
        "fix 10 × size 0.81 × outcome 1.2 × calibration 1 = 9.71"
    );
    let markdown = tokentally::digest::markdown::render(&d);
    assert!(
        markdown
            .contains("Landed 4 commits, 2 AI-assisted (50%) · revert rate AI 50.0% vs human 0.0%"),
        "{markdown}"
    );
    // The week after: quiet, never an error.
    let quiet = tokentally::digest::build(
        &state.ledger,
        &state.config,
        Week::of(landed + 14 * DAY, utc),
        None,
    )
    .await
    .unwrap();
    assert!(quiet.quiet, "{quiet:?}");
}
db_test!(the_digest_of_a_seeded_week);
