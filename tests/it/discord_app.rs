//! The Discord application through the real router on both databases:
//! signed interactions (a test Ed25519 key), each command for a linked, an
//! unlinked and an unknown person, a deferred answer, `/redeem` with its
//! button, and registering the commands against a mock Discord.

use axum::http::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::db_test;
use crate::support::discord::{
    APPLICATION_ID, BOT_TOKEN, Notifying, button, command, public_key, signed,
};
use crate::support::scenario::{DAY, HOUR, Scenario, config};
use crate::support::{TestDb, send};

/// ada's Discord id, and a role allowed to redeem.
const ADA: &str = "4242";
const TREASURER: &str = "777";

async fn app_with_discord(
    db: &TestDb,
    mock: &MockServer,
    tune: impl FnOnce(&mut tokentally::config::Config),
) -> Scenario {
    let mut config = config(db);
    config.people[0].discord = Some(ADA.into());
    let d = &mut config.discord;
    d.api_url = mock.uri();
    d.public_key = Some(public_key());
    d.application_id = Some(APPLICATION_ID.into());
    d.bot_token = Some(tokentally::secret::Secret::new(BOT_TOKEN));
    d.redeem_roles = vec![TREASURER.into()];
    d.retry_base_ms = 1;
    tune(&mut config);
    Scenario::new(config).await
}

/// Sends a signed interaction now; the answer's JSON.
async fn interact(s: &Scenario, body: Value) -> Value {
    let reply = send(&s.app, signed(&body, s.now() / 1000)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json
}

/// `/name` with one text option, as `user` (no roles).
async fn ask(s: &Scenario, id: &str, name: &str, option: (&str, &str), user: &str) -> Value {
    let options = json!([{"name": option.0, "type": 3, "value": option.1}]);
    interact(s, command(id, name, options, user, &[])).await
}

/// Every embed field's value by name, of the first embed.
fn fields(answer: &Value) -> std::collections::BTreeMap<String, String> {
    answer["data"]["embeds"][0]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no embed: {answer}"))
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn signatures_are_checked_before_anything(db: &TestDb) {
    let mock = MockServer::start().await;
    let s = app_with_discord(db, &mock, |_| {}).await;
    let now = s.now() / 1000;
    // PING → PONG: Discord's check of the endpoint.
    let ping = json!({"id": "1", "type": 1, "token": "t", "application_id": APPLICATION_ID});
    assert_eq!(interact(&s, ping.clone()).await, json!({"type": 1}));
    // A body other than the one signed.
    let mut tampered = signed(&ping, now);
    *tampered.body_mut() = axum::body::Body::from(json!({"id": "2", "type": 1}).to_string());
    let r = send(&s.app, tampered).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert_eq!(r.json["error"], "bad_signature");
    // No signature at all.
    let unsigned = axum::http::Request::post("/discord/interactions")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(ping.to_string()))
        .unwrap();
    assert_eq!(
        send(&s.app, unsigned).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Signed, but more than 5 minutes old: a replay.
    let r = send(&s.app, signed(&ping, now - 301)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert!(r.text.contains("5 minutes"), "{}", r.text);
    // An unknown command: an answer, not an error.
    let a = interact(&s, command("9", "frobnicate", json!([]), ADA, &[])).await;
    assert_eq!(a["type"], 4);
    assert!(
        a["data"]["content"]
            .as_str()
            .unwrap()
            .contains("no command /frobnicate"),
        "{a}"
    );
    // Nothing it says pings anyone.
    assert_eq!(a["data"]["allowed_mentions"], json!({"parse": []}));
}
db_test!(signatures_are_checked_before_anything);

async fn commands_answer_with_the_dashboards_numbers(db: &TestDb) {
    let mock = MockServer::start().await;
    let s = app_with_discord(db, &mock, |_| {}).await;
    let sha = s.ai_commit("fix", "a.rs", 120);
    s.push(&sha, s.now() + HOUR).await;
    s.settle().await;
    // /tokens for the linked caller: a private card with the ledger's figures.
    let a = interact(&s, command("10", "tokens", json!([]), ADA, &[])).await;
    assert_eq!(a["type"], 4, "{a}");
    assert_eq!(a["data"]["flags"], 64, "private: {a}");
    let card = fields(&a);
    let balance = s.balance("ada").await;
    let pending = format!("{:.3}", balance["pending"].as_f64().unwrap());
    assert!(
        card["Pending"].starts_with(&pending),
        "{card:?} vs {balance}"
    );
    assert!(card["Pending"].contains("next: "), "{card:?}");
    assert!(card["Available"].starts_with("0.000 = "), "{card:?}");
    assert!(
        card.contains_key("Hygiene") && card.contains_key("This week"),
        "{card:?}"
    );
    // Someone else's card by name, asked by someone unlinked.
    let a = ask(&s, "11", "tokens", ("person", "ada"), "999").await;
    assert_eq!(fields(&a)["Pending"], card["Pending"]);
    // Unlinked, about themselves: told how to link.
    let a = interact(&s, command("12", "tokens", json!([]), "999", &[])).await;
    assert!(
        a["data"]["content"]
            .as_str()
            .unwrap()
            .contains("[[people]]"),
        "{a}"
    );
    // An unknown person.
    let a = ask(&s, "13", "tokens", ("person", "*nobody*"), ADA).await;
    assert_eq!(
        a["data"]["content"], "There is no person \\*nobody\\*.",
        "escaped: {a}"
    );
    // /leaderboard: the digest's embeds, in the channel.
    let a = ask(&s, "14", "leaderboard", ("week", "current"), ADA).await;
    assert!(a["data"].get("flags").is_none(), "public: {a}");
    assert!(
        a["data"]["embeds"][0]["title"]
            .as_str()
            .unwrap()
            .contains("W"),
        "{a}"
    );
    let a = ask(&s, "15", "leaderboard", ("week", "soon"), ADA).await;
    assert!(
        a["data"]["content"]
            .as_str()
            .unwrap()
            .contains("not a week"),
        "{a}"
    );
    // /why with a short id: the same explanation as `tokentally why`.
    let a = ask(&s, "16", "why", ("sha", &sha[..8]), "999").await;
    let text = a["data"]["content"].as_str().unwrap();
    let tokens = s.tokens(&sha).await;
    assert!(
        text.starts_with("```")
            && text.contains(&format!("tokens {:.3}", tokens["tokens"].as_f64().unwrap())),
        "{text}"
    );
    assert!(
        text.contains("tier") && text.contains("calibration"),
        "{text}"
    );
    let a = ask(&s, "17", "why", ("sha", "abcdef1"), "999").await;
    assert_eq!(a["data"]["content"], "No commit abcdef1 is known.");
    let a = ask(&s, "18", "why", ("sha", "zz"), "999").await;
    assert!(
        a["data"]["content"]
            .as_str()
            .unwrap()
            .contains("not a commit id"),
        "{a}"
    );
}
db_test!(commands_answer_with_the_dashboards_numbers);

async fn a_slow_answer_is_deferred_and_follows_up(db: &TestDb) {
    let mock = MockServer::start().await;
    let (seen, mut patches) = tokio::sync::mpsc::unbounded_channel();
    Mock::given(method("PATCH"))
        .and(path(format!(
            "/api/v10/webhooks/{APPLICATION_ID}/interaction-token-20/messages/@original"
        )))
        .respond_with(Notifying {
            answer: ResponseTemplate::new(200).set_body_json(json!({"id": "1"})),
            seen,
        })
        .mount(&mock)
        .await;
    // Every answer is "slow": it must be deferred.
    let s = app_with_discord(db, &mock, |c| c.discord.answer_within_ms = 0).await;
    let a = interact(&s, command("20", "tokens", json!([]), ADA, &[])).await;
    assert_eq!(a, json!({"type": 5, "data": {"flags": 64}}));
    let patch = tokio::time::timeout(std::time::Duration::from_secs(20), patches.recv())
        .await
        .expect("the follow-up is sent")
        .unwrap();
    let body: Value = serde_json::from_slice(&patch.body).unwrap();
    assert!(
        body["embeds"][0]["fields"]
            .as_array()
            .is_some_and(|f| !f.is_empty()),
        "{body}"
    );
    assert_eq!(body["allowed_mentions"], json!({"parse": []}));
}
db_test!(a_slow_answer_is_deferred_and_follows_up);

async fn redeem_asks_then_books_once(db: &TestDb) {
    let mock = MockServer::start().await;
    let s = app_with_discord(db, &mock, |_| {}).await;
    let sha = s.ai_commit("fix", "a.rs", 120);
    s.push(&sha, s.now() + HOUR).await;
    s.clock.advance_ms(15 * DAY);
    s.settle().await;
    let available = s.balance("ada").await["available"].as_f64().unwrap();
    assert!(available > 1.0, "vested: {available}");
    let ask = |id: &str, tokens: f64, roles: &'static [&'static str]| {
        command(
            id,
            "redeem",
            json!([{"name": "tokens", "type": 10, "value": tokens}, {"name": "kind", "type": 3, "value": "bonus"}]),
            ADA,
            roles,
        )
    };
    // Not in a redeeming role: refused, and said why.
    let a = interact(&s, ask("30", 1.0, &[])).await;
    assert!(
        a["data"]["content"]
            .as_str()
            .unwrap()
            .contains("discord.redeem_roles"),
        "{a}"
    );
    // More than available: refused with the available amount.
    let a = interact(&s, ask("31", 99_999.0, &[TREASURER])).await;
    assert!(
        a["data"]["content"]
            .as_str()
            .unwrap()
            .contains(&format!("You have {available:.3} tokens available")),
        "{a}"
    );
    // Asked to confirm with a button.
    let a = interact(&s, ask("32", 1.0, &[TREASURER])).await;
    let confirm = a["data"]["components"][0]["components"][0]["custom_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(confirm, "redeem:32:1000:bonus");
    assert_eq!(
        s.balance("ada").await["redeemed"],
        0.0,
        "nothing before the button"
    );
    // A member without the role cannot press it for someone.
    let a = interact(&s, button("33", &confirm, ADA, &[])).await;
    assert!(
        a["data"]["content"]
            .as_str()
            .unwrap()
            .contains("redeem_roles"),
        "{a}"
    );
    // Pressed: booked; pressed again (or replayed): nothing more.
    let a = interact(&s, button("34", &confirm, ADA, &[TREASURER])).await;
    assert_eq!(a["type"], 7, "{a}");
    assert!(
        a["data"]["content"]
            .as_str()
            .unwrap()
            .starts_with("Redeemed 1.000 tokens as bonus"),
        "{a}"
    );
    let a = interact(&s, button("35", &confirm, ADA, &[TREASURER])).await;
    assert!(
        a["data"]["content"]
            .as_str()
            .unwrap()
            .contains("booked already"),
        "{a}"
    );
    let balance = s.balance("ada").await;
    assert_eq!(balance["redeemed"], 1.0, "{balance}");
    assert!((balance["available"].as_f64().unwrap() - (available - 1.0)).abs() < 1e-9);
}
db_test!(redeem_asks_then_books_once);

async fn registering_is_idempotent(db: &TestDb) {
    let mock = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path(format!(
            "/api/v10/applications/{APPLICATION_ID}/commands"
        )))
        .respond_with(|r: &wiremock::Request| {
            let sent: Value = serde_json::from_slice(&r.body).unwrap();
            ResponseTemplate::new(200).set_body_json(sent)
        })
        .mount(&mock)
        .await;
    let s = app_with_discord(db, &mock, |_| {}).await;
    let chat = &s.app.state.discord.as_ref().unwrap().chat;
    let first = tokentally::chat::register::register(chat).await.unwrap();
    let second = tokentally::chat::register::register(chat).await.unwrap();
    assert_eq!(first, ["tokens", "leaderboard", "why", "redeem"]);
    assert_eq!(first, second);
    let puts = mock.received_requests().await.unwrap();
    assert_eq!(puts.len(), 2);
    assert_eq!(puts[0].body, puts[1].body, "the same commands each time");
    assert_eq!(puts[0].headers["authorization"], format!("Bot {BOT_TOKEN}"));
    let sent: Value = serde_json::from_slice(&puts[0].body).unwrap();
    let redeem = &sent[3];
    assert_eq!(
        redeem["options"][1]["choices"].as_array().unwrap().len(),
        3,
        "{redeem}"
    );
}
db_test!(registering_is_idempotent);

async fn vesting_is_told_once_by_dm(db: &TestDb) {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v10/users/@me/channels"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "9001", "type": 1})))
        .mount(&mock)
        .await;
    // The first message is rate limited: waited out and sent again.
    Mock::given(method("POST"))
        .and(path("/api/v10/channels/9001/messages"))
        .respond_with(ResponseTemplate::new(429).set_body_json(
            json!({"message": "You are being rate limited.", "retry_after": 0.05, "global": false}),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v10/channels/9001/messages"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "1", "channel_id": "9001"})),
        )
        .with_priority(5)
        .mount(&mock)
        .await;
    let mut config = None;
    let s = app_with_discord(db, &mock, |c| {
        c.discord.dm = true;
        config = Some(c.clone());
    })
    .await;
    let config = config.unwrap();
    let sha = s.ai_commit("fix", "a.rs", 120);
    s.push(&sha, s.now() + HOUR).await;
    s.settle().await;
    assert!(
        s.app.state.store.dms().await.unwrap().is_empty(),
        "nothing vested yet"
    );
    s.clock.advance_ms(15 * DAY);
    // Two instances over one database settle the same vesting: one DM.
    let other = tokentally::app::App::connect_with_clock(config.clone(), s.clock.clone())
        .await
        .unwrap();
    let (a, b) = tokio::join!(s.app.settle(), other.settle());
    a.unwrap();
    b.unwrap();
    // And after a restart, nothing is told twice.
    drop(other);
    let restarted = tokentally::app::App::connect_with_clock(config, s.clock.clone())
        .await
        .unwrap();
    restarted.settle().await.unwrap();
    s.settle().await;
    let dms = s.app.state.store.dms().await.unwrap();
    assert_eq!(dms.len(), 1, "{dms:?}");
    let (person, state, _, body) = &dms[0];
    assert_eq!(
        (person.as_str(), state.as_str()),
        ("ada", "sent"),
        "{dms:?}"
    );
    let vested = s.balance("ada").await["vested"].as_f64().unwrap();
    assert!(
        body.contains(&format!("{vested:.3} tokens vested (1 commits)")),
        "{body}"
    );
    let messages: Vec<_> = mock
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/api/v10/channels/9001/messages")
        .collect();
    assert_eq!(messages.len(), 2, "a 429, then the one message");
    let sent: Value = serde_json::from_slice(&messages[1].body).unwrap();
    assert_eq!(sent["content"], body.as_str());
    assert_eq!(sent["allowed_mentions"], json!({"parse": []}));
    assert_eq!(
        messages[1].headers["authorization"],
        format!("Bot {BOT_TOKEN}")
    );
}
db_test!(vesting_is_told_once_by_dm);

async fn people_can_opt_out_of_dms(db: &TestDb) {
    let mock = MockServer::start().await;
    let s = app_with_discord(db, &mock, |c| {
        c.discord.dm = true;
        c.people[0].dm = false;
    })
    .await;
    let sha = s.ai_commit("fix", "a.rs", 120);
    s.push(&sha, s.now() + HOUR).await;
    s.settle().await;
    s.clock.advance_ms(15 * DAY);
    s.settle().await;
    assert!(s.balance("ada").await["vested"].as_f64().unwrap() > 0.0);
    assert!(s.app.state.store.dms().await.unwrap().is_empty());
    assert!(mock.received_requests().await.unwrap().is_empty());
}
db_test!(people_can_opt_out_of_dms);

async fn each_discord_user_is_rate_limited(db: &TestDb) {
    let mock = MockServer::start().await;
    let s = app_with_discord(db, &mock, |c| c.discord.interactions_per_minute = 2).await;
    for id in ["40", "41"] {
        let a = interact(&s, command(id, "tokens", json!([]), "999", &[])).await;
        assert!(
            a["data"]["content"]
                .as_str()
                .unwrap()
                .contains("not linked"),
            "{a}"
        );
    }
    let a = interact(&s, command("42", "tokens", json!([]), "999", &[])).await;
    assert!(
        a["data"]["content"]
            .as_str()
            .unwrap()
            .starts_with("Slow down"),
        "{a}"
    );
    // Another user has their own budget.
    let a = interact(&s, command("43", "tokens", json!([]), ADA, &[])).await;
    assert!(a["data"]["embeds"][0]["fields"].is_array(), "{a}");
}
db_test!(each_discord_user_is_rate_limited);

async fn an_ambiguous_short_id_lists_the_candidates(db: &TestDb) {
    let mock = MockServer::start().await;
    let s = app_with_discord(db, &mock, |_| {}).await;
    let sha = s.ai_commit("fix", "a.rs", 120);
    s.push(&sha, s.now() + HOUR).await;
    // The same history under a second repository (a fork): the id names two commits.
    s.deliver(
        "push",
        json!({
            "ref": "refs/heads/main", "before": crate::support::scenario::ZERO, "after": sha,
            "forced": false, "deleted": false, "created": false, "commits": [],
            "repository": {
                "id": 100, "full_name": "acme/fork", "default_branch": "main",
                "clone_url": s.remote.url(), "pushed_at": (s.now() + HOUR) / 1000,
            },
        }),
    )
    .await;
    let a = ask(&s, "50", "why", ("sha", &sha[..9]), ADA).await;
    let text = a["data"]["content"].as_str().unwrap();
    assert!(text.contains("names 2 commits"), "{text}");
    assert!(
        text.contains("acme/api") && text.contains("acme/fork"),
        "{text}"
    );
}
db_test!(an_ambiguous_short_id_lists_the_candidates);
