//! Fair play: the strategies an outside audit tried against the service, each
//! through the real router on both databases, and what they earn now.
//!
//! Worked numbers (defaults, calibration 1.0, no CI: outcome 0.9):
//! s(40) = log2(41) / log2(401) = 0.619552; a 40-line fix = 10 × 0.619552 × 0.9 = 5.576.

use serde_json::Value;
use tokentally::attribution::identity::PersonConfig;
use tokentally::store::tokens::Role;

use crate::db_test;
use crate::support::git::lines;
use crate::support::scenario::{CLAUDE, DAY, HOUR, Scenario, close, config, token};
use crate::support::{TestDb, store};

fn tokens_of(t: &Value) -> f64 {
    t["tokens"].as_f64().unwrap()
}

async fn splitting_one_fix_into_ten_commits_earns_what_one_fix_earns(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let at = s.now() + HOUR;
    // One 40-line fix in one commit …
    let whole = s.ai_commit("fix", "whole.rs", 40);
    // … and the same fix split into ten 4-line commits to one file, landing
    // in two pushes an hour apart (the later five join the set).
    let mut parts = Vec::new();
    for k in 1..=10 {
        s.work.write("split.rs", lines("split_rs", 4 * k));
        parts.push(s.work.commit(&format!("fix: part {k}\n\n{CLAUDE}")));
        if k == 5 {
            s.push(&parts[4], at).await;
            s.settle().await;
        }
    }
    s.push(&parts[9], at + HOUR).await;
    s.settle().await;

    let one = tokens_of(&s.tokens(&whole).await);
    assert!((one - 5.576).abs() < 0.001, "{one}");
    let mut ten = 0.0;
    for sha in &parts {
        ten += tokens_of(&s.tokens(sha).await);
    }
    assert!(
        (ten - one).abs() <= 0.01 * one,
        "ten 4-line commits earn {ten:.3}, one 40-line commit {one:.3} (was 4.3×)"
    );
    // The explanation names the set; the first part's pending tokens were
    // adjusted when the later five joined.
    let first = s.tokens(&parts[0]).await;
    assert_eq!(first["inputs"]["change_set"]["lines"], 40, "{first}");
    assert_eq!(
        first["inputs"]["change_set"]["commits"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    let kinds: Vec<&str> = first["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["accrual", "adjustment"], "{first}");
    assert!(first["entries"][1]["amount"].as_f64().unwrap() < 0.0);
}
db_test!(splitting_one_fix_into_ten_commits_earns_what_one_fix_earns);

async fn near_duplicates_earn_nothing_and_different_fixes_are_not_duplicates(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let at = s.now() + HOUR;
    let original = s.ai_commit("feat", "a.rs", 40);
    s.push(&original, at).await;
    s.settle().await;
    // A one-character edit of the landed patch, in another file.
    let mut text = lines("a_rs", 40);
    text = text.replacen("compute_a_rs(17)", "compute_a_rs(18)", 1);
    s.work.write("b.rs", &text);
    let edited = s.work.commit(&format!("feat: b\n\n{CLAUDE}"));
    // The same lines with its two halves swapped (reordered hunks).
    let all: Vec<String> = lines("a_rs", 40).lines().map(String::from).collect();
    let swapped = [&all[20..], &all[..20]].concat().join("\n") + "\n";
    s.work.write("c.rs", swapped);
    let reordered = s.work.commit(&format!("feat: c\n\n{CLAUDE}"));
    // A different fix in the original file.
    s.work
        .write("a.rs", lines("a_rs", 40) + &lines("other_fix", 20));
    let different = s.work.commit(&format!("fix: other\n\n{CLAUDE}"));
    s.push(&different, at + 2 * DAY).await;
    s.settle().await;

    for sha in [&edited, &reordered] {
        let t = s.tokens(sha).await;
        assert!(
            close(&t["tokens"], 0.0),
            "a near-duplicate earns nothing: {t}"
        );
        assert_eq!(t["inputs"]["duplicate_of"], original.as_str());
        assert!(
            t["hygiene_events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["event"] == "duplicate"),
            "{t}"
        );
    }
    let d = s.tokens(&different).await;
    assert!(d["inputs"]["duplicate_of"].is_null(), "{d}");
    assert!(tokens_of(&d) > 0.0);
}
db_test!(near_duplicates_earn_nothing_and_different_fixes_are_not_duplicates);

async fn only_github_ties_a_commit_to_its_pull_requests_ci(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let at = s.now() + HOUR;
    // PR 42's head (never on main) went green on its first run.
    let head = "4242424242424242424242424242424242424242";
    s.check_run(head, "build", "success", at - 30 * 60_000, 1)
        .await;
    // Its squash commit, which GitHub names as the merge commit (no "(#42)"
    // needed) …
    let squash = s.ai_commit("feat", "exporter.rs", 63);
    // … and a direct push that merely says "(#42)" in its subject.
    s.work.write("twin.rs", lines("twin_rs", 63));
    let twin = s.work.commit(&format!("feat: twin (#42)\n\n{CLAUDE}"));
    s.push(&twin, at).await;
    s.pull_request_merged(42, head, &squash, at).await;
    s.settle().await;

    let sq = s.tokens(&squash).await;
    assert_eq!(sq["inputs"]["ci"], "first_run_green", "{sq}");
    assert_eq!(sq["inputs"]["ci_from_pull_request_head"], head);
    let tw = s.tokens(&twin).await;
    assert_eq!(tw["inputs"]["ci"], "none", "borrowed CI: {tw}");
    assert!(tw["inputs"]["ci_from_pull_request_head"].is_null());
    // 8 × s(63) × 1.2 against 8 × s(63) × 0.9.
    assert!(tokens_of(&sq) > tokens_of(&tw));
}
db_test!(only_github_ties_a_commit_to_its_pull_requests_ci);

async fn signals_are_granted_and_record_their_token(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let at = s.now() + HOUR;
    let rival = s.ai_commit("feat", "rival.rs", 63);
    s.push(&rival, at).await;
    s.check_run(&rival, "build", "success", at + 60_000, 1)
        .await;
    s.clock.advance_ms(2 * HOUR);
    s.settle().await;
    let before = tokens_of(&s.tokens(&rival).await);

    // A CI report token cannot post an incident …
    let refused = s.post_signal(&s.reporter, &rival, "incident", "fail").await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(refused.json["error"], "signal_not_granted");
    let message = refused.json["message"].as_str().unwrap();
    assert!(
        message.contains("may post ci only") && message.contains("--signals incident"),
        "{message}"
    );
    // … and its `ci fail` does not outrank GitHub's own green run.
    let ci = s.post_signal(&s.reporter, &rival, "ci", "fail").await;
    assert_eq!(ci.status, 201, "{}", ci.text);
    s.settle().await;
    let t = s.tokens(&rival).await;
    assert_eq!(t["inputs"]["ci"], "first_run_green", "{t}");
    assert!(close(&t["tokens"], before));

    // A token granted `incident` may post one; the signal names its token.
    let oncall = token(&s.app, "oncall", Role::Report).await;
    assert!(
        store(&s.app)
            .set_token_signals("oncall", &["incident".to_string()])
            .await
            .unwrap()
    );
    let posted = s.post_signal(&oncall, &rival, "incident", "fail").await;
    assert_eq!(posted.status, 201, "{}", posted.text);
    // Granted incident only: not ci.
    let not_ci = s.post_signal(&oncall, &rival, "ci", "pass").await;
    assert_eq!(not_ci.status, 403, "{}", not_ci.text);
    s.settle().await;
    let t = s.tokens(&rival).await;
    assert_eq!(t["state"], "clawed_back", "{t}");
    let by_token: Vec<(&str, &str)> = t["signals"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| Some((x["signal"].as_str()?, x["token"].as_str()?)))
        .collect();
    assert!(by_token.contains(&("incident", "oncall")), "{t}");
    assert!(by_token.contains(&("ci", "ci")), "{t}");
    let ids = t["signals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["token"] == "oncall")
        .all(|x| x["token_id"].as_i64().is_some());
    assert!(ids);
}
db_test!(signals_are_granted_and_record_their_token);

async fn noise_and_formatting_earn_nothing(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let at = s.now() + HOUR;
    // A 1-character typo fix (1 line deleted, 1 added).
    let old = std::fs::read_to_string(s.work.path().join("old.rs")).unwrap();
    s.work.write(
        "old.rs",
        old.replacen("compute_old(3)", "compute_old(4)", 1),
    );
    let typo = s.work.commit(&format!("fix: typo\n\n{CLAUDE}"));
    // A re-indent of the 40-line file: 80 changed lines, no content.
    let indented: String = std::fs::read_to_string(s.work.path().join("old.rs"))
        .unwrap()
        .lines()
        .map(|l| format!("    {}\n", l.replace(" = ", "  =  ")))
        .collect();
    s.work.write("old.rs", indented);
    let reformat = s.work.commit(&format!("refactor: tidy\n\n{CLAUDE}"));
    // A real 6-line refactor.
    s.work.write("small.rs", lines("small_rs", 6));
    let refactor = s.work.commit(&format!("refactor: extract\n\n{CLAUDE}"));
    s.push(&refactor, at).await;
    s.settle().await;

    for sha in [&typo, &reformat] {
        let t = s.tokens(sha).await;
        assert!(close(&t["tokens"], 0.0), "noise pays nothing: {t}");
        assert_eq!(t["inputs"]["noise"], true, "{t}");
        assert!(
            t["hygiene_events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["event"] == "noise"),
            "{t}"
        );
    }
    assert!(s.tokens(&reformat).await["inputs"]["changed_lines"].as_u64() > Some(3));
    // 6 × s(6) × 0.9 = 6 × 0.324…: more than noise.
    assert!(tokens_of(&s.tokens(&refactor).await) > 1.0);
    let board = s.leaderboard(at).await;
    // 100 − 2 × 2 (two noise commits).
    assert_eq!(board["entries"][0]["hygiene"], 96, "{board}");
}
db_test!(noise_and_formatting_earn_nothing);

async fn a_declared_kind_cannot_raise_pay(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let at = s.now() + HOUR;
    s.work.write("Cargo.lock.txt", lines("dep", 63));
    let chore = s
        .work
        .commit(&format!("chore: bump deps\n\nAI-Kind: fix\n{CLAUDE}"));
    s.push(&chore, at).await;
    s.settle().await;
    let t = s.tokens(&chore).await;
    assert_eq!(t["inputs"]["kind"], "fix", "{t}");
    assert_eq!(t["inputs"]["paid_kind"], "chore", "{t}");
    assert!(close(&t["factors"]["tier"], 2.0), "{t}");
}
db_test!(a_declared_kind_cannot_raise_pay);

async fn efficiency_divides_like_by_like(db: &TestDb) {
    let mut config = config(db);
    config.people.push(PersonConfig {
        name: "bo".into(),
        emails: vec!["bo@example.com".into()],
        github: None,
        discord: None,
        dm: true,
    });
    let s = Scenario::new(config).await;
    let at = s.now() + HOUR;
    let bo = ("Bo", "bo@example.com");
    // ada: two commits, one reporting a single usage token.
    s.ai_commit("feat", "x.rs", 100);
    s.work.write("y.rs", lines("y_rs", 100));
    s.work.commit(&format!("feat: y\n\nAI-Tokens: 1\n{CLAUDE}"));
    // bo: two commits reporting 12,000 usage tokens each.
    for f in ["p.rs", "q.rs"] {
        s.work.write(f, lines(&f.replace('.', "_"), 100));
        s.work
            .commit_as(bo, &format!("feat: {f}\n\nAI-Tokens: 12000\n{CLAUDE}"));
    }
    let head = s.work.head();
    s.push(&head, at).await;
    s.settle().await;
    let board = s
        .get(
            &format!(
                "/api/v1/leaderboard?week={}&rank_by=efficiency",
                tokentally::scoring::week::Week::of(at, crate::support::scenario::utc()).label()
            ),
            &s.admin,
        )
        .await
        .json;
    let line = |p: &str| {
        board["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["person"] == p)
            .cloned()
            .unwrap()
    };
    assert!(line("ada")["efficiency"].is_null(), "{board}");
    // bo: what his two commits earned ÷ 24,000 usage tokens, per 1,000.
    let bo_line = line("bo");
    let expected = bo_line["earned"].as_f64().unwrap() / 24.0;
    assert!(
        (bo_line["efficiency"].as_f64().unwrap() - expected).abs() < 1e-3,
        "{board}"
    );
    assert_eq!(board["entries"][0]["person"], "bo", "{board}");
}
db_test!(efficiency_divides_like_by_like);

/// `lines(prefix, n)` with lines `from..=to` rewritten.
fn rewritten(prefix: &str, n: usize, from: usize, to: usize) -> String {
    (1..=n)
        .map(|i| {
            if (from..=to).contains(&i) {
                format!("let {prefix}_{i} = checked_{prefix}({i})?;\n")
            } else {
                format!("let {prefix}_{i} = compute_{prefix}({i});\n")
            }
        })
        .collect()
}

async fn follow_up_fixes_are_found_by_blame_and_claw_back_in_proportion(db: &TestDb) {
    let mut config = config(db);
    config.people.push(PersonConfig {
        name: "bo".into(),
        emails: vec!["bo@example.com".into()],
        github: None,
        discord: None,
        dm: true,
    });
    let s = Scenario::new(config).await;
    let t0 = s.now() + HOUR;
    let parser = s.ai_commit("feat", "parser.rs", 40);
    let lexer = s.ai_commit("feat", "lexer.rs", 20);
    // A feature and its fix inside one pull request, landing together.
    let walker = s.ai_commit("feat", "walker.rs", 30);
    s.work.write("walker.rs", rewritten("walker_rs", 30, 1, 30));
    let walker_fix = s.work.commit(&format!("fix: walker\n\n{CLAUDE}"));
    s.push(&walker_fix, t0).await;
    s.settle().await;
    let earned = |t: &Value| t["entries"][0]["amount"].as_f64().unwrap();
    let parser_earned = earned(&s.tokens(&parser).await);

    // Two days later bo (another person, by hand, no `Fixes:`) fixes 10 of
    // the parser's 40 lines: a quarter.
    s.work
        .write("parser.rs", rewritten("parser_rs", 40, 11, 20));
    let partial = s
        .work
        .commit_as(("Bo", "bo@example.com"), "fix: parser bounds");
    s.push(&partial, t0 + 2 * DAY).await;
    // A day after that ada rewrites every line of the lexer.
    s.work.write("lexer.rs", rewritten("lexer_rs", 20, 1, 20));
    let rewrite = s.work.commit(&format!("fix: lexer rewrite\n\n{CLAUDE}"));
    s.push(&rewrite, t0 + 3 * DAY).await;
    s.settle().await;

    let p = s.tokens(&parser).await;
    assert_eq!(p["state"], "pending", "{p}");
    let cancel: Vec<&Value> = p["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "cancel")
        .collect();
    assert_eq!(cancel.len(), 1, "{p}");
    let quarter = (parser_earned * 0.25 * 1000.0).round() / 1000.0;
    assert!(close(&cancel[0]["amount"], -quarter), "{p}");
    assert!(close(&p["pending"], parser_earned - quarter), "{p}");
    let event = &p["hygiene_events"][0];
    assert_eq!(
        (event["event"].as_str(), event["found_by"].as_str()),
        (Some("fixed_later"), Some("blame")),
        "{p}"
    );
    assert!(close(&event["share"], 0.25), "{p}");
    assert_eq!(event["by"], partial.as_str());

    let l = s.tokens(&lexer).await;
    assert_eq!(
        l["state"], "clawed_back",
        "a full rewrite takes it all: {l}"
    );
    assert!(close(&l["pending"], 0.0), "{l}");
    assert!(close(&l["hygiene_events"][0]["share"], 1.0), "{l}");

    // Fixed inside its own pull request before landing: nothing taken.
    let w = s.tokens(&walker).await;
    assert_eq!(w["state"], "pending", "{w}");
    assert!(w["hygiene_events"].as_array().unwrap().is_empty(), "{w}");
    assert!(
        w["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["kind"] != "cancel"),
        "{w}"
    );

    // Hygiene: 100 − 10 × (0.25 + 1.0) = 87.5 → 87 (one rounding, half to even
    // is not used: 12.5 rounds away from zero to 13).
    let board = s.leaderboard(t0).await;
    let ada = board["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["person"] == "ada")
        .unwrap()
        .clone();
    assert_eq!(ada["hygiene"], 87, "{board}");
    assert!(
        close(&ada["hygiene_events"]["fixed_later"], 1.25),
        "{board}"
    );

    // The commit's page lists the follow-up fix with its share; the rules
    // page says nobody is unmapped (bo and ada are people).
    let session = crate::support::pages::login(&s.app, &s.admin).await;
    let path = format!("/commits/acme/api/{parser}");
    let page = crate::support::pages::page(&s.app, &path, &session).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text.contains("touched 25% of its added lines"),
        "{}",
        page.text
    );
    let rules = crate::support::pages::page(&s.app, "/rules", &session).await;
    assert!(
        rules.text.contains("Every author of a landed commit"),
        "{}",
        rules.text
    );
}
db_test!(follow_up_fixes_are_found_by_blame_and_claw_back_in_proportion);

async fn unmapped_authors_are_listed_and_never_shown_raw_in_public(db: &TestDb) {
    let s = Scenario::new(config(db)).await;
    let at = s.now() + HOUR;
    let sam = ("Sam Okafor", "sam.okafor@gmail.com");
    for f in ["s1.rs", "s2.rs"] {
        s.work.write(f, lines(&f.replace('.', "_"), 120));
        s.work.commit_as(sam, &format!("feat: {f}\n\n{CLAUDE}"));
    }
    let head = s.work.head();
    s.push(&head, at).await;
    s.settle().await;

    let unmapped = store(&s.app).unmapped_authors().await.unwrap();
    assert_eq!(
        unmapped
            .iter()
            .map(|(e, landed, ai, _)| (e.as_str(), *landed, *ai))
            .collect::<Vec<_>>(),
        [("sam.okafor@gmail.com", 2, 2)]
    );
    let state = &s.app.state;
    let week = tokentally::scoring::week::Week::of(at, crate::support::scenario::utc());
    let d = tokentally::digest::build(&state.ledger, &state.config, week, None)
        .await
        .unwrap();
    let text = tokentally::digest::markdown::render(&d);
    let discord = serde_json::to_string(&tokentally::digest::discord::embeds(&d, false)).unwrap();
    for public in [&text, &discord] {
        assert!(!public.contains("sam.okafor@gmail.com"), "{public}");
        assert!(public.contains("sam.o…"), "{public}");
    }
    // The (signed-in) rules page lists the email to map.
    let session = crate::support::pages::login(&s.app, &s.admin).await;
    let rules = crate::support::pages::page(&s.app, "/rules", &session).await;
    assert!(
        rules.text.contains("<code>sam.okafor@gmail.com</code>"),
        "{}",
        rules.text
    );
}
db_test!(unmapped_authors_are_listed_and_never_shown_raw_in_public);
