//! GitHub as the tests see it: a mock of its REST API (wiremock: `/user`,
//! issue comments, and whatever a test adds with [`mock`]), a repository on a
//! local bare remote with the webhooks GitHub would send for it ([`Pr`]), and
//! payload builders for the events.

use axum::http::StatusCode;
use serde_json::{Value, json};
use tokentally::app::App;
use tokentally::config::Config;
use tokentally::secret::Secret;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::git::{Remote, TestRepo, lines};
use super::{TestDb, send, store, webhook};

/// The trailer a Claude Code commit carries.
pub const CLAUDE: &str = "Co-Authored-By: Claude <noreply@anthropic.com>";
/// The hidden marker of tokentally's pull-request comment.
pub const MARKER: &str = "<!-- tokentally -->";
pub const ZERO: &str = "0000000000000000000000000000000000000000";

/// A repository on a local bare remote, known to the service.
pub struct Pr {
    pub remote: Remote,
    pub work: TestRepo,
    deliveries: std::cell::Cell<u32>,
}

impl Pr {
    /// A remote with `main` (one human commit) and a service that has synced it.
    pub async fn new(app: &App) -> Pr {
        let pr = Pr {
            remote: Remote::new(),
            work: TestRepo::new(),
            deliveries: Default::default(),
        };
        pr.work.git(&["remote", "add", "origin", &pr.remote.url()]);
        pr.work.write("README.md", lines("readme", 3));
        let head = pr.work.commit("docs: readme");
        pr.work.git(&["push", "-q", "origin", "main"]);
        pr.deliver(app, "push", push(pr.repository(), &head)).await;
        pr
    }

    pub fn repository(&self) -> Value {
        json!({"id": 99, "full_name": "acme/api", "default_branch": "main", "clone_url": self.remote.url()})
    }

    pub async fn deliver(&self, app: &App, event: &str, mut body: Value) {
        // A GitHub App's webhooks always name the installation they came through.
        if app.state.config.github.app_id.is_some() && body.get("installation").is_none() {
            body["installation"] = json!({"id": 42});
        }
        let n = self.deliveries.get() + 1;
        self.deliveries.set(n);
        let id = format!("pr-d-{n}-{}", body["action"].as_str().unwrap_or(""));
        let reply = send(app, webhook(event, &id, body.to_string())).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
        app.worker.drain().await.unwrap();
        let status = store(app).delivery_status(&id).await.unwrap().unwrap();
        assert_eq!(
            status.state, "processed",
            "{event}: {:?}",
            status.last_error
        );
    }

    /// Pushes branch `branch` as `refs/pull/{number}/head` and delivers `action`.
    pub async fn pull_request(&self, app: &App, action: &str, number: i64, extra: Value) -> String {
        let head = self.work.head();
        self.work.git(&[
            "push",
            "-q",
            "-f",
            "origin",
            &format!("HEAD:refs/pull/{number}/head"),
        ]);
        let mut body = pull_request(self.repository(), action, number, &head);
        if let Value::Object(extra) = extra {
            for (k, v) in extra {
                body[k] = v;
            }
        }
        self.deliver(app, "pull_request", body).await;
        head
    }

    pub async fn check_run(&self, app: &App, sha: &str, conclusion: &str) {
        let body = check_run(self.repository(), 1, "build", sha, conclusion);
        self.deliver(app, "check_run", body).await;
    }
}

pub fn config(db: &TestDb, github: &MockServer) -> Config {
    let mut config = super::mirrors_on(db);
    config.github.api_url = github.uri();
    config.github.token = Some(Secret::new("gh-test-token"));
    config.github.retry_base_ms = 5;
    config.public_url = Some("https://tally.example.com".to_string());
    config
}

pub async fn mock(server: &MockServer, verb: &str, route: &str, reply: ResponseTemplate) {
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(reply)
        .mount(server)
        .await;
}

/// GitHub as tokentally sees it: `/user` is tokentally-bot, pull request 7
/// has no comments, creating one gives id 555, updating works.
pub async fn github_with_no_comments() -> MockServer {
    let server = MockServer::start().await;
    mock(
        &server,
        "GET",
        "/user",
        ResponseTemplate::new(200).set_body_json(json!({"login": "tokentally-bot"})),
    )
    .await;
    mock(
        &server,
        "GET",
        "/repos/acme/api/issues/7/comments",
        ResponseTemplate::new(200).set_body_json(json!([])),
    )
    .await;
    mock(
        &server,
        "POST",
        "/repos/acme/api/issues/7/comments",
        ResponseTemplate::new(201).set_body_json(json!({"id": 555})),
    )
    .await;
    mock(
        &server,
        "PATCH",
        "/repos/acme/api/issues/comments/555",
        ResponseTemplate::new(200).set_body_json(json!({"id": 555})),
    )
    .await;
    server
}

/// The comment requests received: (method, path, body).
pub async fn comment_requests(server: &MockServer) -> Vec<(String, String, String)> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() != "GET" && r.url.path().contains("/comments"))
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            (
                r.method.to_string(),
                r.url.path().to_string(),
                body["body"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// GitHub's check runs of `sha` in acme/api: `runs` (check-run objects).
pub async fn check_runs(server: &MockServer, sha: &str, runs: Value) {
    let count = runs.as_array().map_or(0, Vec::len);
    mock(
        server,
        "GET",
        &format!("/repos/acme/api/commits/{sha}/check-runs"),
        ResponseTemplate::new(200).set_body_json(json!({"total_count": count, "check_runs": runs})),
    )
    .await;
}

/// GitHub's commit statuses of `sha` in acme/api.
pub async fn statuses(server: &MockServer, sha: &str, statuses: Value) {
    mock(
        server,
        "GET",
        &format!("/repos/acme/api/commits/{sha}/statuses"),
        ResponseTemplate::new(200).set_body_json(statuses),
    )
    .await;
}

/// A GitHub App's installation `id` hands out `token` (valid until
/// `expires_at`, RFC 3339), `times` times (`None`: always); a token mocked
/// with a limit is handed out before one without.
pub async fn installation_token(
    server: &MockServer,
    id: i64,
    token: &str,
    expires_at: &str,
    times: Option<u64>,
) {
    let mut mock = Mock::given(method("POST"))
        .and(path(format!("/app/installations/{id}/access_tokens")))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"token": token, "expires_at": expires_at})),
        );
    if let Some(times) = times {
        mock = mock.up_to_n_times(times).with_priority(1);
    }
    mock.mount(server).await;
}

/// A `push` to `main` of `repository` (a [`Pr::repository`]-like object).
pub fn push(repository: Value, after: &str) -> Value {
    json!({
        "ref": "refs/heads/main", "before": ZERO, "after": after, "forced": false,
        "deleted": false, "created": false, "commits": [], "repository": repository,
    })
}

/// A completed `check_run` of `name` for `sha`.
pub fn check_run(repository: Value, id: i64, name: &str, sha: &str, conclusion: &str) -> Value {
    json!({
        "action": "completed",
        "check_run": {
            "id": id, "name": name, "head_sha": sha, "status": "completed",
            "conclusion": conclusion, "completed_at": "2026-11-20T10:00:00Z",
            "check_suite": {"id": id + 1000}, "app": {"slug": "github-actions"},
        },
        "repository": repository,
    })
}

/// A `pull_request` event of `action` for pull request `number` with `head`.
pub fn pull_request(repository: Value, action: &str, number: i64, head: &str) -> Value {
    json!({
        "action": action, "number": number,
        "pull_request": {
            "number": number, "state": "open", "merged": false,
            "head": { "ref": "feature", "sha": head },
            "base": { "ref": "main", "sha": ZERO },
        },
        "repository": repository,
    })
}
