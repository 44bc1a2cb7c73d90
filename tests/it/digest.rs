//! The weekly digest posted to a mock Discord (a local HTTP server): the
//! multipart message with its chart, one message per (week, destination)
//! across schedules, restarts and replicas, and Discord's 429 / 5xx / 404.

use std::sync::Arc;

use serde_json::json;
use tokentally::app::App;
use tokentally::clock::{Clock, ManualClock};
use tokentally::config::Config;
use tokentally::scoring::week::Week;
use tokentally::secret::Secret;
use wiremock::{MockServer, ResponseTemplate};

use crate::db_test;
use crate::support::discord::{self, WEBHOOK_TOKEN, accept, answer_first, executions};
use crate::support::{self, TestDb, get, store};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn config(db: &TestDb, server: &MockServer) -> Config {
    let mut config = support::test_config(db);
    config.discord.api_url = server.uri();
    config.discord.webhook_url = Some(Secret::new(discord::webhook_url()));
    config.discord.retry_base_ms = 5;
    config
}

/// A clock on the Wednesday 12:00 UTC of a coming week: the Monday 09:00
/// digest of that week (for the week before) is due.
fn wednesday() -> Arc<ManualClock> {
    let clock = ManualClock::starting_now();
    let utc: chrono_tz::Tz = "UTC".parse().unwrap();
    let next = Week::of(clock.now_ms() + 7 * DAY, utc);
    let at = next.bounds(utc).0 + 2 * DAY + 12 * HOUR;
    clock.advance_ms(at - clock.now_ms());
    clock
}

fn last_week(clock: &ManualClock) -> String {
    let utc: chrono_tz::Tz = "UTC".parse().unwrap();
    Week::of(clock.now_ms(), utc).previous(utc).label()
}

/// The `team` destination's row for the last complete week.
async fn team_post(app: &App, clock: &ManualClock) -> tokentally::store::digest_posts::DigestPost {
    store(app)
        .digest_post(&last_week(clock), "team")
        .await
        .unwrap()
        .expect("the digest is queued")
}

async fn start(config: Config, clock: &Arc<ManualClock>) -> App {
    App::connect_with_clock(config, clock.clone())
        .await
        .expect("app starts")
}

async fn one_digest_per_week_and_destination(db: &TestDb) {
    let server = discord::start().await;
    accept(&server).await;
    let clock = wednesday();
    let app = start(config(db, &server), &clock).await;
    app.scheduler().run_due().await.unwrap();

    let sent = executions(&server).await;
    assert_eq!(sent.len(), 1);
    let request = &sent[0];
    assert!(
        request
            .url
            .query()
            .unwrap_or_default()
            .contains("wait=true")
    );
    let payload = discord::payload(request);
    let week = last_week(&clock);
    let title = payload["embeds"][0]["title"].as_str().unwrap();
    assert!(title.contains(&week), "{title}");
    // Nobody ranked in this empty week: no chart is attached (an empty chart
    // says nothing the text does not); the chart itself is tested where people rank.
    assert!(payload["embeds"][0]["image"].is_null(), "{payload}");
    assert!(
        payload["attachments"]
            .as_array()
            .is_none_or(|a| a.is_empty())
    );

    let post = store(&app)
        .digest_post(&week, "team")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(post.state, "sent");
    assert_eq!(post.message_id.as_deref(), Some("998877665544"));

    // The schedule fires again, and the service restarts: nothing more.
    app.scheduler().run_due().await.unwrap();
    drop(app);
    let app = start(config(db, &server), &clock).await;
    app.scheduler().run_due().await.unwrap();
    assert_eq!(executions(&server).await.len(), 1);

    // A week later, the next week's digest.
    clock.advance_ms(7 * DAY);
    app.scheduler().run_due().await.unwrap();
    let sent = executions(&server).await;
    assert_eq!(sent.len(), 2);
    let next = last_week(&clock);
    assert_ne!(next, week);
    let title = discord::payload(&sent[1])["embeds"][0]["title"].to_string();
    assert!(title.contains(&next), "{title}");
}
db_test!(one_digest_per_week_and_destination);

async fn a_long_outage_posts_the_last_complete_week_only(db: &TestDb) {
    let server = discord::start().await;
    accept(&server).await;
    let clock = wednesday();
    let app = start(config(db, &server), &clock).await;
    app.scheduler().run_due().await.unwrap();
    drop(app);
    // Down for five weeks: on start, one digest, for the last complete week.
    clock.advance_ms(5 * 7 * DAY);
    let app = start(config(db, &server), &clock).await;
    app.scheduler().run_due().await.unwrap();
    let sent = executions(&server).await;
    assert_eq!(sent.len(), 2);
    let title = discord::payload(&sent[1])["embeds"][0]["title"].to_string();
    assert!(title.contains(&last_week(&clock)), "{title}");
    assert_eq!(store(&app).digest_posts().await.unwrap().len(), 2);
}
db_test!(a_long_outage_posts_the_last_complete_week_only);

async fn rate_limited_then_sent_is_one_message(db: &TestDb) {
    let server = discord::start().await;
    answer_first(
        &server,
        1,
        ResponseTemplate::new(429).set_body_json(
            json!({"message": "You are being rate limited.", "retry_after": 0.05, "global": false}),
        ),
    )
    .await;
    accept(&server).await;
    let clock = wednesday();
    let app = start(config(db, &server), &clock).await;
    app.scheduler().run_due().await.unwrap();
    assert_eq!(
        executions(&server).await.len(),
        2,
        "one 429, then the message"
    );
    let post = team_post(&app, &clock).await;
    assert_eq!(post.state, "sent");
    let metrics = get(&app, "/metrics").await.text;
    assert!(
        metrics.contains(r#"tokentally_discord_requests_total{outcome="rate_limited"} 1"#),
        "{metrics}"
    );
}
db_test!(rate_limited_then_sent_is_one_message);

async fn server_errors_are_retried_into_one_message(db: &TestDb) {
    let server = discord::start().await;
    answer_first(&server, 2, ResponseTemplate::new(500)).await;
    accept(&server).await;
    let clock = wednesday();
    let app = start(config(db, &server), &clock).await;
    app.scheduler().run_due().await.unwrap();
    assert_eq!(executions(&server).await.len(), 3);
    let post = team_post(&app, &clock).await;
    assert_eq!((post.state.as_str(), post.attempts), ("sent", 1));
}
db_test!(server_errors_are_retried_into_one_message);

async fn a_deleted_webhook_disables_its_destination(db: &TestDb) {
    let server = discord::start().await;
    answer_first(
        &server,
        100,
        ResponseTemplate::new(404)
            .set_body_json(json!({"message": "Unknown Webhook", "code": 10015})),
    )
    .await;
    let clock = wednesday();
    let app = start(config(db, &server), &clock).await;
    app.scheduler().run_due().await.unwrap();
    assert_eq!(executions(&server).await.len(), 1);
    let post = team_post(&app, &clock).await;
    assert_eq!(post.state, "disabled");
    assert!(post.error.as_deref().unwrap().contains("404"), "{post:?}");

    // No retry storm: later ticks, later weeks and a restart send nothing.
    app.scheduler().run_due().await.unwrap();
    clock.advance_ms(7 * DAY);
    app.scheduler().run_due().await.unwrap();
    drop(app);
    let app = start(config(db, &server), &clock).await;
    app.scheduler().run_due().await.unwrap();
    assert_eq!(executions(&server).await.len(), 1);

    // Said in /readyz (still ready) and the metrics, never with the token.
    let ready = get(&app, "/readyz").await;
    assert_eq!(ready.status, 200);
    let problem = ready.json["problems"]["discord destination team"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", ready.text));
    assert!(problem.contains("404"), "{problem}");
    assert!(!ready.text.contains(WEBHOOK_TOKEN));
    assert!(!post.error.unwrap().contains(WEBHOOK_TOKEN));
    let metrics = get(&app, "/metrics").await.text;
    assert!(
        metrics.contains("tokentally_discord_destinations_disabled 1"),
        "{metrics}"
    );

    // A new webhook URL for the destination enables it again.
    let mut fixed = config(db, &server);
    fixed.discord.webhook_url = Some(Secret::new(format!(
        "https://discord.com/api/webhooks/{}/another-token",
        discord::WEBHOOK_ID
    )));
    drop(app);
    let app = start(fixed, &clock).await;
    app.scheduler().run_due().await.unwrap();
    let received = server.received_requests().await.unwrap();
    assert!(
        received
            .iter()
            .any(|r| r.url.path().ends_with("/another-token")),
        "the new webhook is tried"
    );
}
db_test!(a_deleted_webhook_disables_its_destination);

async fn two_replicas_firing_the_same_schedule_post_once(db: &TestDb) {
    let server = discord::start().await;
    accept(&server).await;
    let clock = wednesday();
    let a = start(config(db, &server), &clock).await;
    let b = start(config(db, &server), &clock).await;
    let (sa, sb) = (a.scheduler(), b.scheduler());
    let (ra, rb) = tokio::join!(sa.run_due(), sb.run_due());
    ra.unwrap();
    rb.unwrap();
    // And once more each, as a schedule firing twice.
    let (ra, rb) = tokio::join!(sa.run_due(), sb.run_due());
    ra.unwrap();
    rb.unwrap();
    assert_eq!(executions(&server).await.len(), 1);
}
db_test!(two_replicas_firing_the_same_schedule_post_once);

async fn a_restart_between_claim_and_send_posts_once(db: &TestDb) {
    let server = discord::start().await;
    accept(&server).await;
    let clock = wednesday();
    let app = start(config(db, &server), &clock).await;
    let week = last_week(&clock);
    // A sender claimed the digest, then died before sending it.
    let now = clock.now_ms();
    store(&app)
        .enqueue_digest(&week, "team", now)
        .await
        .unwrap();
    let claimed = store(&app)
        .claim_digest("a-replica-that-died", now, now + 10 * 60_000)
        .await
        .unwrap();
    assert!(claimed.is_some());
    drop(app);

    let app = start(config(db, &server), &clock).await;
    app.scheduler().run_due().await.unwrap();
    assert_eq!(executions(&server).await.len(), 0, "the claim still holds");
    // Its lease runs out: the digest goes out, once.
    clock.advance_ms(11 * 60_000);
    app.scheduler().run_due().await.unwrap();
    app.scheduler().run_due().await.unwrap();
    assert_eq!(executions(&server).await.len(), 1);
    let post = store(&app)
        .digest_post(&week, "team")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(post.state, "sent");
}
db_test!(a_restart_between_claim_and_send_posts_once);

/// `tokentally digest --post` sends once per week and destination; `--force` again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_digest_command_posts_once_unless_forced() {
    let db = TestDb::sqlite();
    let server = discord::start().await;
    accept(&server).await;
    drop(start(config(&db, &server), &wednesday()).await);
    let file = db.dir_path().join("tokentally.toml");
    std::fs::write(
        &file,
        format!(
            "database_url = {:?}\n[discord]\napi_url = {:?}\nwebhook_url = {:?}\n",
            db.url,
            server.uri(),
            discord::webhook_url()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let (ok, _, err) = crate::support::cli::run_with_config(&file, args);
        (ok, err)
    };
    let (ok, err) = run(&["digest", "--week", "2026-W40", "--post"]);
    assert!(
        ok && err.contains("posted 2026-W40 to team (message 998877665544)"),
        "{err}"
    );
    // Again: nothing is sent, and the exit says so with what to do.
    let (ok, err) = run(&["digest", "--week", "2026-W40", "--post"]);
    assert!(
        !ok && err.contains("already posted") && err.contains("--update"),
        "{err}"
    );
    assert_eq!(executions(&server).await.len(), 1);
    // --update edits the posted message in place (a PATCH, no new message).
    wiremock::Mock::given(wiremock::matchers::method("PATCH"))
        .and(wiremock::matchers::path(format!(
            "{}/messages/998877665544",
            discord::webhook_path()
        )))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"id": "998877665544"})),
        )
        .mount(&server)
        .await;
    let (ok, err) = run(&["digest", "--week", "2026-W40", "--post", "--update"]);
    assert!(ok && err.contains("updated 2026-W40 in team"), "{err}");
    assert_eq!(executions(&server).await.len(), 1);
    let (ok, err) = run(&["digest", "--week", "2026-W40", "--post", "--force"]);
    assert!(ok, "{err}");
    assert_eq!(executions(&server).await.len(), 2);
    assert!(!err.contains(WEBHOOK_TOKEN));
}

async fn the_first_digest_waits_for_the_first_sync(db: &TestDb) {
    let server = discord::start().await;
    accept(&server).await;
    let mut config = crate::support::scenario::config(db);
    config.discord.api_url = server.uri();
    config.discord.webhook_url = Some(Secret::new(discord::webhook_url()));
    config.github.repositories = vec!["acme/api".into()];
    let (s, head) = crate::support::scenario::Scenario::unsynced(config).await;
    // First start: acme/api has not synced; nothing may be posted yet.
    s.app.scheduler().run_due().await.unwrap();
    s.app.scheduler().run_due().await.unwrap();
    assert!(
        executions(&server).await.is_empty(),
        "no digest before the history is in"
    );
    // The history arrives; the queued digest goes out, once.
    s.push(&head, s.now()).await;
    s.app.scheduler().run_due().await.unwrap();
    s.app.scheduler().run_due().await.unwrap();
    assert_eq!(executions(&server).await.len(), 1);
}
db_test!(the_first_digest_waits_for_the_first_sync);

async fn a_posted_digest_is_updated_in_place(db: &TestDb) {
    let server = discord::start().await;
    accept(&server).await;
    wiremock::Mock::given(wiremock::matchers::method("PATCH"))
        .and(wiremock::matchers::path(format!(
            "{}/messages/998877665544",
            discord::webhook_path()
        )))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"id": "998877665544"})),
        )
        .mount(&server)
        .await;
    let clock = wednesday();
    let app = start(config(db, &server), &clock).await;
    app.scheduler().run_due().await.unwrap();
    assert_eq!(executions(&server).await.len(), 1);
    let week = Week::parse(&last_week(&clock)).unwrap();
    let poster = app.digest_poster();
    // Posting again is refused (nothing sent) …
    assert!(poster.post_now(week, false).await.unwrap().is_empty());
    // … and --update edits the message in place.
    let updated = poster.update(week).await.unwrap();
    assert_eq!(
        updated[0].outcome,
        tokentally::notify::discord::Sent::Message("998877665544".into())
    );
    let patches: Vec<wiremock::Request> = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1);
    let body = discord::payload(&patches[0]);
    assert!(
        body["embeds"][0]["title"]
            .as_str()
            .unwrap()
            .contains(&week.label())
    );
    assert_eq!(executions(&server).await.len(), 1, "no second message");
}
db_test!(a_posted_digest_is_updated_in_place);

async fn a_week_with_ranked_people_attaches_its_chart(db: &TestDb) {
    let server = discord::start().await;
    accept(&server).await;
    let mut config = crate::support::scenario::config(db);
    config.discord.api_url = server.uri();
    config.discord.webhook_url = Some(Secret::new(discord::webhook_url()));
    let s = crate::support::scenario::Scenario::new(config).await;
    s.app.scheduler().run_due().await.unwrap();
    let before = executions(&server).await.len();
    // Two AI commits land this week: ada is ranked in next Monday's digest.
    s.ai_commit("fix", "one.rs", 30);
    let head = s.ai_commit("feat", "two.rs", 60);
    s.push(&head, s.now() + HOUR).await;
    s.settle().await;
    s.clock.advance_ms(7 * DAY);
    s.app.scheduler().run_due().await.unwrap();
    let sent = executions(&server).await;
    assert_eq!(sent.len(), before + 1);
    let request = sent.last().unwrap();
    let payload = discord::payload(request);
    assert_eq!(
        payload["embeds"][0]["image"]["url"], "attachment://chart.png",
        "{payload}"
    );
    let parts = discord::parts(request);
    let file = parts
        .iter()
        .find(|p| p.name == "files[0]")
        .expect("the chart is files[0]");
    assert_eq!(file.filename.as_deref(), Some("chart.png"));
    let mut reader = png::Decoder::new(std::io::Cursor::new(file.body.clone()))
        .read_info()
        .expect("the chart is a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    assert_eq!(reader.next_frame(&mut pixels).unwrap().width, 800);
}
db_test!(a_week_with_ranked_people_attaches_its_chart);
