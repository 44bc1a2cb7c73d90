//! Money an auditor signs, through the whole service on both databases:
//! weeks close into statements that never change, every token that leaves is
//! a ledger entry, clawbacks charge what was at stake, corrections are booked
//! in the open week, CI attempts follow the runs' own times, and the ledger is
//! a hash chain that `ledger verify` checks.

use axum::http::StatusCode;
use serde_json::Value;
use tokentally::config::{Config, PayoutMode};
use tokentally::ledger::periods::Verified;
use tokentally::scoring::week::Week;

use crate::db_test;
use crate::support::scenario::{DAY, HOUR, Scenario, close, config, utc};
use crate::support::{TestDb, pages};

fn rate_mode(db: &TestDb, rate: &str) -> Config {
    let mut c = config(db);
    c.payout.mode = PayoutMode::Rate;
    c.payout.rate = rate.parse().unwrap();
    c
}

/// The statement line of `person` in a statement.
fn line_of(statement: &Value, person: &str) -> Value {
    statement["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["person"] == person)
        .unwrap_or_else(|| panic!("no line for {person}: {statement}"))
        .clone()
}

fn kinds(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

/// Every closed week's statement from `from` through `to`.
async fn statements(s: &Scenario, from: Week, to: Week) -> Vec<Value> {
    let mut out = Vec::new();
    let mut week = from;
    loop {
        out.push(s.statement(week).await);
        if week == to {
            return out;
        }
        week = week.next(utc());
    }
}

/// Finding 1 and 2: a revert that landed before the vesting date but became
/// known after the vest (and its payout) takes the vest back once — owed at
/// its factor — cancels the accrual, and claws back nothing that did not vest;
/// both corrections are dated in the open week and the closed weeks' statements
/// do not change.
async fn a_late_known_revert_before_vesting_is_charged_once(db: &TestDb) {
    let s = Scenario::new(rate_mode(db, "1")).await;
    let landed = s.now() + HOUR;
    let feature = s.ai_commit("feat", "feature.rs", 127);
    s.clock.advance_ms(HOUR);
    s.push(&feature, landed).await;
    s.work.git(&["revert", "--no-edit", &feature]);
    let revert = s.work.head();
    s.clock.advance_ms(15 * DAY);
    s.settle().await;
    let landing_week = Week::of(landed, utc());
    let vest_week = Week::of(landed + 14 * DAY, utc());
    let closed = s.close_through(vest_week).await;
    assert!(closed.contains(&vest_week.label()), "{closed:?}");
    // No CI: 8 × 0.809486 × 0.9 = 5.828 vested and paid at $1 a token.
    let paid = line_of(&s.statement(vest_week).await, "ada");
    assert!(
        close(&paid["vested"], 5.828) && close(&paid["paid"], 5.828),
        "{paid}"
    );
    assert_eq!(paid["amount_minor"], 583);
    let before = statements(&s, landing_week, vest_week).await;

    // The revert landed on day 3 (before vesting); it is known only now.
    s.push(&revert, landed + 3 * DAY).await;
    s.settle().await;
    let entries = s.entries(&feature).await;
    assert_eq!(
        kinds(&entries),
        ["accrual", "vest", "vest", "cancel"],
        "{entries:?}"
    );
    assert!(!kinds(&entries).contains(&"clawback".to_string()));
    let open_from = rfc3339(vest_week.bounds(utc()).1);
    let (unvest, cancel) = (&entries[2], &entries[3]);
    assert!(close(&unvest["amount"], -5.828));
    assert_eq!(unvest["corrects"], vest_week.label());
    assert_eq!(unvest["at"], open_from);
    assert_eq!(unvest["explanation"]["amount_milli"], -5_828);
    assert!(close(&cancel["amount"], -5.828));
    assert_eq!(cancel["corrects"], landing_week.label());
    assert_eq!(cancel["at"], open_from);
    // Paid once, owed once: 5.828 tokens, not twice that.
    let b = s.balance("ada").await;
    for (field, value) in [
        ("paid", 5.828),
        ("owed", 5.828),
        ("available", -5.828),
        ("vested", 0.0),
        ("pending", 0.0),
        ("clawed_back", 5.828),
    ] {
        assert!(close(&b[field], value), "{field}: {b}");
    }
    assert_eq!(
        statements(&s, landing_week, vest_week).await,
        before,
        "closed statements never change"
    );
    // The open week's statement shows the correction; closing it pays nothing.
    let next = vest_week.next(utc());
    s.close_through(next).await;
    let line = line_of(&s.statement(next).await, "ada");
    assert!(close(&line["corrections"], -5.828), "{line}");
    assert!(
        close(&line["closing"], -5.828) && close(&line["paid"], 0.0),
        "{line}"
    );
    assert_eq!(line["amount_minor"], 0);
    assert!(matches!(
        s.app.state.ledger.verify().await.unwrap(),
        Verified::Ok { .. }
    ));
}
db_test!(a_late_known_revert_before_vesting_is_charged_once);

/// Finding 3 and 8: a close pays the available tokens once, as a ledger entry,
/// at an exact rate (0.015 a token, rounded once per line); nothing is left to
/// redeem afterwards. The statement API answers in the documented shape.
async fn a_close_pays_once_at_an_exact_rate(db: &TestDb) {
    let s = Scenario::new(rate_mode(db, "0.015")).await;
    let landed = s.now() + HOUR;
    let fix = s.ai_commit("fix", "fix.rs", 127);
    s.check_run(&fix, "build", "success", landed - 60_000, 1)
        .await;
    s.clock.advance_ms(HOUR);
    s.push(&fix, landed).await;
    s.clock.advance_ms(15 * DAY);
    s.settle().await;
    let vest_week = Week::of(landed + 14 * DAY, utc());
    // Open: a preview, not final.
    let open = s.statement(vest_week).await;
    assert_eq!(open["closed"], false);
    assert!(close(&line_of(&open, "ada")["vested"], 9.714));
    s.close_through(vest_week).await;
    let statement = s.statement(vest_week).await;
    assert_eq!(statement["week"], vest_week.label());
    assert_eq!(statement["closed"], true);
    assert_eq!(statement["currency"], "USD");
    assert_eq!(statement["hash"].as_str().unwrap().len(), 64);
    let line = line_of(&statement, "ada");
    for field in [
        "opening",
        "vested",
        "clawed_back",
        "corrections",
        "redeemed",
        "paid",
        "closing",
        "amount_minor",
    ] {
        assert!(line.get(field).is_some(), "{field}: {line}");
    }
    // 9.714 tokens × $0.015 = 14.571 cents → 15 (whole cents per token would pay 19).
    assert_eq!(line["amount_minor"], 15, "{line}");
    assert_eq!(statement["total_minor"], 15);
    assert!(close(&line["paid"], 9.714) && close(&line["closing"], 0.0));
    let payout = s
        .app
        .state
        .ledger
        .person_entries("ada", vest_week)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.kind == tokentally::scoring::balance::EntryKind::Payout)
        .expect("the payout is a ledger entry");
    assert_eq!((payout.amount, payout.money_minor), (-9_714, Some(15)));
    // Paid tokens cannot be redeemed again.
    let b = s.balance("ada").await;
    assert!(
        close(&b["available"], 0.0) && close(&b["paid"], 9.714),
        "{b}"
    );
    let refused = s.redeem("ada", "after-payout", 1.0, "bonus").await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    // Closing again changes nothing.
    assert!(s.app.close_due().await.unwrap().is_empty());
    assert_eq!(s.statement(vest_week).await, statement);
    // The person page shows the statement, with its money.
    let session = pages::login(&s.app, &s.admin).await;
    let page = pages::page(&s.app, "/people/ada", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    let table = page
        .text
        .split_once("id=\"statements\"")
        .map(|(_, t)| t)
        .unwrap_or_else(|| panic!("no statements table: {}", page.text));
    assert!(
        table.contains(&vest_week.label()) && table.contains("$0.15"),
        "{table}"
    );
}
db_test!(a_close_pays_once_at_an_exact_rate);

/// Finding 2, 7 and 9: new rules applied by `replay --apply` and a later
/// `pay_from` are booked in the open week with `corrects`; `replay` and
/// `replay --apply` show the same differences and none after; each entry
/// explains its own amount; a redemption key used with another kind is a 409.
async fn rule_changes_are_corrections_in_the_open_week(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    assert_eq!(s.app.state.config.payout.mode, PayoutMode::Redeem);
    let landed = s.now() + HOUR;
    let fix = s.ai_commit("fix", "fix.rs", 127);
    s.check_run(&fix, "build", "success", landed - 60_000, 1)
        .await;
    s.clock.advance_ms(HOUR);
    s.push(&fix, landed).await;
    s.clock.advance_ms(15 * DAY);
    s.settle().await;
    let landing_week = Week::of(landed, utc());
    let vest_week = Week::of(landed + 14 * DAY, utc());
    s.close_through(vest_week).await;
    // Redeem mode: the close paid nothing; the tokens wait for a redemption.
    let line = line_of(&s.statement(vest_week).await, "ada");
    assert!(
        close(&line["closing"], 9.714) && close(&line["paid"], 0.0),
        "{line}"
    );
    let pto = s.redeem("ada", "r1", 2.0, "pto").await;
    assert_eq!(pto.status, StatusCode::CREATED, "{}", pto.text);
    assert_eq!(
        s.redeem("ada", "r1", 2.0, "pto").await.status,
        StatusCode::OK
    );
    let other_kind = s.redeem("ada", "r1", 2.0, "bonus").await;
    assert_eq!(
        other_kind.status,
        StatusCode::CONFLICT,
        "{}",
        other_kind.text
    );
    let before = statements(&s, landing_week, vest_week).await;

    // fix weighs 12: replay and replay --apply see the same difference.
    let mut heavier = config(db);
    heavier.scoring.tiers.insert("fix".into(), 12.0);
    let ledger = tokentally::ledger::Ledger::new(crate::support::store(&s.app).clone(), &heavier);
    let scratch = ledger.replay(s.now(), false).await.unwrap();
    let dry: Vec<_> = scratch
        .differences()
        .into_iter()
        .map(|(p, a, b)| (p.clone(), a, b))
        .collect();
    assert_eq!(dry.len(), 1, "{dry:?}");
    assert_eq!(dry[0].2[0] - dry[0].1[0], 11_657 - 9_714);
    let applied = ledger.replay(s.now(), true).await.unwrap();
    let wet: Vec<_> = applied
        .differences()
        .into_iter()
        .map(|(p, a, b)| (p.clone(), a, b))
        .collect();
    assert_eq!(dry, wet, "replay and replay --apply agree");
    assert!(
        ledger
            .replay(s.now(), false)
            .await
            .unwrap()
            .differences()
            .is_empty()
    );
    let entries = s.entries(&fix).await;
    let open_from = rfc3339(vest_week.bounds(utc()).1);
    let adjustment = &entries[entries.len() - 2];
    let vest = &entries[entries.len() - 1];
    assert_eq!(adjustment["kind"], "adjustment");
    assert_eq!(adjustment["corrects"], landing_week.label());
    assert_eq!(adjustment["at"], open_from);
    assert_eq!(adjustment["explanation"]["amount_milli"], 1_943);
    assert_eq!(adjustment["explanation"]["booked_before_milli"], 9_714);
    assert_eq!(vest["kind"], "vest");
    assert_eq!(vest["corrects"], vest_week.label());
    assert_eq!(vest["explanation"]["amount_milli"], 1_943);
    assert!(
        vest["explanation"]["arithmetic"]
            .as_str()
            .unwrap()
            .contains("= 1.943 this entry"),
        "{vest}"
    );
    assert_eq!(statements(&s, landing_week, vest_week).await, before);

    // pay_from after the landing: the commit is history now; its tokens are
    // taken back, the same in both replays, and then there is nothing left.
    let mut later = heavier.clone();
    later.scoring.pay_from = Some(tokentally::ledger::read::rfc3339(landed + DAY));
    let ledger = tokentally::ledger::Ledger::new(crate::support::store(&s.app).clone(), &later);
    let dry: Vec<_> = ledger
        .replay(s.now(), false)
        .await
        .unwrap()
        .differences()
        .into_iter()
        .map(|(p, a, b)| (p.clone(), a, b))
        .collect();
    assert_eq!(dry.len(), 1);
    assert_eq!(
        dry[0].2,
        [0, 0, 0],
        "nothing is earned under pay_from: {dry:?}"
    );
    let applied = ledger.replay(s.now(), true).await.unwrap();
    let wet: Vec<_> = applied
        .differences()
        .into_iter()
        .map(|(p, a, b)| (p.clone(), a, b))
        .collect();
    assert_eq!(dry, wet);
    assert!(
        ledger
            .replay(s.now(), false)
            .await
            .unwrap()
            .differences()
            .is_empty()
    );
    // The 2 redeemed tokens are owed now.
    assert!(close(&s.balance("ada").await["owed"], 2.0));
    assert_eq!(statements(&s, landing_week, vest_week).await, before);
}
db_test!(rule_changes_are_corrections_in_the_open_week);

/// Finding 4: reverting a merge commit reverts the commits it brought in.
async fn reverting_a_merge_reverts_what_it_brought_in(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let landed = s.now() + HOUR;
    s.work.git(&["checkout", "-q", "-b", "topic"]);
    let one = s.ai_commit("feat", "one.rs", 60);
    let two = s.ai_commit("feat", "two.rs", 60);
    s.work.git(&["checkout", "-q", "main"]);
    s.work.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "Merge branch 'topic'",
        "topic",
    ]);
    let merge = s.work.head();
    s.clock.advance_ms(HOUR);
    s.push(&merge, landed).await;
    s.settle().await;
    assert_eq!(s.tokens(&one).await["state"], "pending");
    s.clock.advance_ms(DAY);
    s.work.git(&["revert", "--no-edit", "-m", "1", &merge]);
    let revert = s.work.head();
    s.push(&revert, landed + DAY).await;
    s.settle().await;
    for sha in [&one, &two] {
        let t = s.tokens(sha).await;
        assert_eq!(t["state"], "clawed_back", "{t}");
        assert_eq!(t["hygiene_events"][0]["event"], "reverted", "{t}");
    }
}
db_test!(reverting_a_merge_reverts_what_it_brought_in);

/// Finding 5: two commits with the same facts — a failed run, then a passed
/// re-run — score the same whichever webhook arrives last.
async fn ci_attempts_follow_the_runs_not_the_arrival_order(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let landed = s.now() + HOUR;
    let a = s.ai_commit("fix", "a.rs", 127);
    let b = s.ai_commit("fix", "b.rs", 127);
    let (failed, passed) = (landed - 2 * HOUR, landed - HOUR);
    s.check_run(&a, "build", "failure", failed, 1).await;
    s.check_run(&a, "build", "success", passed, 2).await;
    // b's webhooks arrive the other way round.
    s.check_run(&b, "build", "success", passed, 4).await;
    s.check_run(&b, "build", "failure", failed, 3).await;
    s.clock.advance_ms(HOUR);
    s.push(&b, landed).await;
    s.settle().await;
    // Green after a failure: 10 × 0.809486 × 1.0 = 8.095, for both.
    let (ta, tb) = (s.tokens(&a).await, s.tokens(&b).await);
    assert!(close(&ta["tokens"], 8.095), "{ta}");
    assert!(close(&tb["tokens"], 8.095), "{tb}");
}
db_test!(ci_attempts_follow_the_runs_not_the_arrival_order);

/// Finding 6: a vest carries the payout factor of the week its work landed
/// (hygiene then), and the payout values it at that factor.
async fn the_payout_factor_is_the_landing_weeks(db: &TestDb) {
    let s = Scenario::new(rate_mode(db, "1")).await;
    let landed = s.now() + HOUR;
    let fix = s.ai_commit("fix", "fix.rs", 127);
    s.check_run(&fix, "build", "success", landed - 60_000, 1)
        .await;
    let feature = s.ai_commit("feat", "feature.rs", 127);
    s.clock.advance_ms(HOUR);
    s.push(&feature, landed).await;
    // The feature is reverted the same week: hygiene 85, factor 0.925.
    s.clock.advance_ms(HOUR);
    s.work.git(&["revert", "--no-edit", &feature]);
    let revert = s.work.head();
    s.push(&revert, landed + HOUR).await;
    s.clock.advance_ms(15 * DAY);
    s.settle().await;
    let vest = s
        .entries(&fix)
        .await
        .into_iter()
        .find(|e| e["kind"] == "vest")
        .unwrap();
    assert!(close(&vest["payout_factor"], 0.925), "{vest}");
    let vest_week = Week::of(landed + 14 * DAY, utc());
    s.close_through(vest_week).await;
    // 9.714 × 0.925 = 8.98545 dollars → 899 cents.
    let line = line_of(&s.statement(vest_week).await, "ada");
    assert_eq!(line["amount_minor"], 899, "{line}");
}
db_test!(the_payout_factor_is_the_landing_weeks);

/// Finding 10: `ledger verify` recomputes the chain and the statements and
/// names the first entry or statement that was changed behind its back.
async fn ledger_verify_names_what_was_changed(db: &TestDb) {
    let s = Scenario::new(rate_mode(db, "1")).await;
    let landed = s.now() + HOUR;
    let fix = s.ai_commit("fix", "fix.rs", 127);
    s.clock.advance_ms(HOUR);
    s.push(&fix, landed).await;
    s.clock.advance_ms(15 * DAY);
    s.settle().await;
    let vest_week = Week::of(landed + 14 * DAY, utc());
    s.close_through(vest_week).await;
    let ledger = &s.app.state.ledger;
    let Verified::Ok {
        entries,
        statements,
    } = ledger.verify().await.unwrap()
    else {
        panic!("an untouched ledger verifies");
    };
    // Accrual, vest, payout; one line (the landing week moved no balance).
    assert_eq!((entries, statements), (3, 1));
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let (disable, enable) = if db.url.starts_with("sqlite") {
        ("DROP TRIGGER statements_no_update", "SELECT 1")
    } else {
        (
            "ALTER TABLE statements DISABLE TRIGGER statements_no_change",
            "ALTER TABLE statements ENABLE TRIGGER statements_no_change",
        )
    };
    sqlx::query(disable).execute(&pool).await.unwrap();
    sqlx::query("UPDATE statements SET closing = closing + 1000")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(enable).execute(&pool).await.unwrap();
    match ledger.verify().await.unwrap() {
        Verified::Statement { week, .. } => assert_eq!(week, vest_week.label()),
        other => panic!("a changed statement is found: {other:?}"),
    }
    let (disable, enable) = if db.url.starts_with("sqlite") {
        ("DROP TRIGGER ledger_entries_no_update", "SELECT 1")
    } else {
        (
            "ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_no_change",
            "ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_no_change",
        )
    };
    sqlx::query(disable).execute(&pool).await.unwrap();
    let (id,): (i64,) = sqlx::query_as("SELECT MIN(id) FROM ledger_entries")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE ledger_entries SET amount = amount + 1000 WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(enable).execute(&pool).await.unwrap();
    pool.close().await;
    match ledger.verify().await.unwrap() {
        Verified::Entry { id: found, .. } => assert_eq!(found, id),
        other => panic!("a changed entry is found: {other:?}"),
    }
}
db_test!(ledger_verify_names_what_was_changed);

fn rfc3339(ms: i64) -> String {
    tokentally::ledger::read::rfc3339(ms)
}
