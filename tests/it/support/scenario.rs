//! One repository served by the whole service, for scenarios of scoring and
//! the ledger: signed webhooks into the real router, a local bare repository
//! as the remote, API signals, and an injected clock (never a sleep).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tokentally::app::App;
use tokentally::attribution::identity::PersonConfig;
use tokentally::clock::{Clock, ManualClock};
use tokentally::config::Config;
use tokentally::scoring::week::Week;
use tokentally::store::tokens::Role;

use super::git::{Remote, TestRepo, lines};
use super::{Reply, TestDb, send, store, webhook};

pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 24 * HOUR;
pub const CLAUDE: &str = "Co-Authored-By: Claude <noreply@anthropic.com>";
pub const ZERO: &str = "0000000000000000000000000000000000000000";

pub struct Scenario {
    pub app: App,
    pub clock: Arc<ManualClock>,
    pub remote: Remote,
    pub work: TestRepo,
    pub admin: String,
    pub reporter: String,
    pub deliveries: std::cell::Cell<u32>,
}

pub fn config(db: &TestDb) -> Config {
    let mut config = super::mirrors_on(db);
    config.people = vec![PersonConfig {
        name: "ada".into(),
        emails: vec!["alice@example.com".into()],
        github: None,
        discord: None,
        dm: true,
    }];
    config
}

impl Scenario {
    /// The service over `db` with its clock on a Tuesday 10:00 UTC in a
    /// coming week, and a repository whose history (one AI commit, one human
    /// commit) the first push brings: the baseline.
    pub async fn new(config: Config) -> Scenario {
        let (s, head) = Scenario::unsynced(config).await;
        s.push(&head, s.now()).await;
        s
    }

    /// [`Scenario::new`] before its first push: the history is committed
    /// (returns its head), the repository not synced yet.
    pub async fn unsynced(config: Config) -> (Scenario, String) {
        let clock = ManualClock::starting_now();
        let utc: chrono_tz::Tz = "UTC".parse().unwrap();
        let next = Week::of(clock.now_ms() + 7 * DAY, utc);
        let tuesday_ten = next.bounds(utc).0 + DAY + 10 * HOUR;
        clock.advance_ms(tuesday_ten - clock.now_ms());
        let app = App::connect_with_clock(config, clock.clone())
            .await
            .expect("app starts");
        let admin = token(&app, "admin", Role::Admin).await;
        let reporter = token(&app, "ci", Role::Report).await;
        let s = Scenario {
            app,
            clock,
            remote: Remote::new(),
            work: TestRepo::new(),
            admin,
            reporter,
            deliveries: Default::default(),
        };
        s.work.git(&["remote", "add", "origin", &s.remote.url()]);
        s.work.write("old.rs", lines("old", 40));
        s.work.commit(&format!("feat: old work\n\n{CLAUDE}"));
        s.work.write("README.md", lines("readme", 3));
        let head = s.work.commit("docs: readme");
        (s, head)
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn repository(&self) -> Value {
        json!({"id": 99, "full_name": "acme/api", "default_branch": "main", "clone_url": self.remote.url()})
    }

    pub async fn deliver(&self, event: &str, body: Value) {
        let n = self.deliveries.get() + 1;
        self.deliveries.set(n);
        let id = format!("d-{n}");
        let reply = send(&self.app, webhook(event, &id, body.to_string())).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
        self.app.worker.drain().await.unwrap();
        let status = store(&self.app)
            .delivery_status(&id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            status.state, "processed",
            "{event}: {:?}",
            status.last_error
        );
    }

    /// Pushes `main` and delivers the push, pushed at `at`.
    pub async fn push(&self, head: &str, at: i64) {
        self.work.git(&["push", "-q", "-f", "origin", "main"]);
        self.deliver(
            "push",
            json!({
                "ref": "refs/heads/main", "before": ZERO, "after": head, "forced": false,
                "deleted": false, "created": false, "commits": [],
                "repository": {
                    "id": 99, "full_name": "acme/api", "default_branch": "main",
                    "clone_url": self.remote.url(), "pushed_at": at / 1000,
                },
            }),
        )
        .await;
    }

    /// An AI commit changing `n` lines of a new file, with `kind` as its subject's type.
    pub fn ai_commit(&self, kind: &str, file: &str, n: usize) -> String {
        self.work.write(file, lines(&file.replace('.', "_"), n));
        self.work.commit(&format!("{kind}: {file}\n\n{CLAUDE}"))
    }

    pub async fn check_run(&self, sha: &str, name: &str, conclusion: &str, at: i64, id: i64) {
        self.deliver(
            "check_run",
            json!({
                "action": "completed",
                "check_run": {
                    "id": id, "name": name, "head_sha": sha, "status": "completed",
                    "conclusion": conclusion, "completed_at": rfc3339(at),
                    "check_suite": {"id": 7}, "app": {"slug": "github-actions"},
                },
                "repository": self.repository(),
            }),
        )
        .await;
    }

    /// Settles the ledger, then checks what every settle must leave: an
    /// unbroken hash chain, and each week's commit sums (kept as entries are
    /// appended) equal to the sums of the entries themselves.
    pub async fn settle(&self) {
        self.app.settle().await.unwrap();
        self.assert_ledger_consistent().await;
    }

    pub async fn assert_ledger_consistent(&self) {
        use std::collections::BTreeMap;
        use tokentally::scoring::balance::EntryKind;
        let verified = self.app.state.ledger.verify().await.unwrap();
        assert!(
            matches!(verified, tokentally::ledger::periods::Verified::Ok { .. }),
            "{verified:?}"
        );
        let store = store(&self.app);
        // (week start, commit) → [earned, vested, clawed, cancelled, flags of
        // the latest score], from the entries.
        let mut sums: BTreeMap<(i64, i64), [i64; 5]> = BTreeMap::new();
        let mut weeks: BTreeMap<i64, i64> = BTreeMap::new();
        let utc = utc();
        store
            .each_chained_entry(|e| {
                let (Some(commit), Some(landed_at)) = (e.commit_id, e.landed_at) else {
                    return;
                };
                let (from, to) = Week::of(landed_at, utc).bounds(utc);
                weeks.insert(from, to);
                let slot = match e.kind {
                    EntryKind::Accrual | EntryKind::Adjustment => 0,
                    EntryKind::Vest => 1,
                    EntryKind::Clawback => 2,
                    EntryKind::Cancel => 3,
                    _ => return,
                };
                let line = sums.entry((from, commit)).or_insert([0; 5]);
                line[slot] += e.amount;
                if slot == 0 {
                    let said = |text: &str| e.explanation.contains(text);
                    line[4] = i64::from(said(r#""ci":"red""#))
                        + 2 * i64::from(said(r#""duplicate_of":"#))
                        + 4 * i64::from(said(r#""noise":true"#));
                }
            })
            .await
            .unwrap();
        let mut read: BTreeMap<(i64, i64), [i64; 5]> = BTreeMap::new();
        for (from, to) in weeks {
            for c in store.week_commits(from, to).await.unwrap() {
                let line = [c.earned, c.vested, c.clawed, c.cancelled, c.flags];
                read.insert((from, c.id), line);
            }
        }
        assert_eq!(read, sums, "a week's commit sums differ from its entries'");
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        let request = Request::get(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        send(&self.app, request).await
    }

    pub async fn tokens(&self, sha: &str) -> Value {
        let reply = self
            .get(
                &format!("/api/v1/commits/acme/api/{sha}/tokens"),
                &self.admin,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json
    }

    pub async fn balance(&self, person: &str) -> Value {
        let reply = self
            .get(&format!("/api/v1/people/{person}/balance"), &self.admin)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json
    }

    pub async fn leaderboard(&self, at: i64) -> Value {
        let week = Week::of(at, "UTC".parse().unwrap()).label();
        let reply = self
            .get(&format!("/api/v1/leaderboard?week={week}"), &self.admin)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json
    }

    pub async fn entry_count(&self) -> usize {
        store(&self.app).commit_entries().await.unwrap().len()
    }
}

pub async fn token(app: &App, name: &str, role: Role) -> String {
    let token = tokentally::api_token::generate();
    assert!(
        store(app)
            .create_token(
                name,
                &tokentally::api_token::hash(&token),
                &["*".to_string()],
                role,
                0
            )
            .await
            .unwrap()
    );
    token
}

pub fn rfc3339(ms: i64) -> String {
    tokentally::ledger::read::rfc3339(ms)
}

pub fn close(value: &Value, expected: f64) -> bool {
    value.as_f64().is_some_and(|v| (v - expected).abs() < 1e-9)
}

pub fn utc() -> chrono_tz::Tz {
    "UTC".parse().unwrap()
}

impl Scenario {
    /// Moves the clock to the close time of `week` (if it is not past it),
    /// settles and closes what is due; returns the weeks closed.
    pub async fn close_through(&self, week: Week) -> Vec<String> {
        let closes_at = self.app.state.ledger.closes_at(week);
        if self.now() < closes_at {
            self.clock.advance_ms(closes_at - self.now());
        }
        self.settle().await;
        self.app.close_due().await.unwrap()
    }

    /// `GET /api/v1/statements?week=W` (200 asserted).
    pub async fn statement(&self, week: Week) -> Value {
        let reply = self
            .get(
                &format!("/api/v1/statements?week={}", week.label()),
                &self.admin,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json
    }

    /// `POST /api/v1/redemptions` as the admin.
    pub async fn redeem(&self, person: &str, key: &str, tokens: f64, kind: &str) -> Reply {
        let request = Request::post("/api/v1/redemptions")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", self.admin))
            .body(Body::from(
                json!({"person": person, "tokens": tokens, "kind": kind, "key": key}).to_string(),
            ))
            .unwrap();
        send(&self.app, request).await
    }

    /// A commit's entries as the API shows them.
    pub async fn entries(&self, sha: &str) -> Vec<Value> {
        self.tokens(sha).await["entries"]
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Scenario {
    /// `POST /api/v1/signals` for acme/api with `token`.
    pub async fn post_signal(&self, token: &str, sha: &str, signal: &str, status: &str) -> Reply {
        let request = Request::post("/api/v1/signals")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from(
                json!({"repo": "acme/api", "sha": sha, "signal": signal, "status": status})
                    .to_string(),
            ))
            .unwrap();
        send(&self.app, request).await
    }

    /// A merged pull request's `closed` event: GitHub's word on its head and merge commit.
    pub async fn pull_request_merged(&self, number: i64, head: &str, merge: &str, at: i64) {
        self.deliver(
            "pull_request",
            json!({
                "action": "closed", "number": number,
                "pull_request": {
                    "number": number, "state": "closed", "merged": true,
                    "merge_commit_sha": merge, "merged_at": rfc3339(at),
                    "head": {"ref": "feature", "sha": head},
                    "base": {"ref": "main", "sha": ZERO},
                },
                "repository": self.repository(),
            }),
        )
        .await;
    }
}
