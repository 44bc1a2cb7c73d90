//! The one comment tokentally keeps on a pull request: a table of its
//! AI-assisted commits with what each is on track to earn, the total, and
//! what happens next. It starts with a hidden marker and is written by our
//! own GitHub identity, so after a restart (or a lost row) it is found again
//! and updated in place — never a second one, and never someone else's.
//!
//! Refreshed on `pull_request` opened/synchronize/reopened and whenever
//! signals arrive for the pull request's head. GitHub errors are logged by
//! the caller and never fail the delivery.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::{Mutex, OnceCell};

use crate::clock::Clock;
use crate::config::Config;
use crate::digest::short;
use crate::github::client::{GithubClient, GithubError};
use crate::ledger::Ledger;
use crate::ledger::plan::Estimate;
use crate::scoring::ci::CiResult;
use crate::store::commits::CommitRow;

/// How every tokentally comment starts.
pub const MARKER: &str = "<!-- tokentally -->";
/// A creation claim older than this belongs to a creator that died.
const STALE_CLAIM_MS: i64 = 60_000;

/// One AI-assisted commit of the pull request and its estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct CommentLine {
    pub sha: String,
    pub subject: String,
    pub agent: String,
    pub kind: String,
    /// Who is credited (as public messages name people: never a raw email).
    pub credited: String,
    /// Its page on the dashboard, when `public_url` is set.
    pub url: Option<String>,
    /// What the ledger's planner says it would earn if it landed now.
    pub estimate: Estimate,
}

/// What a refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed {
    Created(i64),
    Updated(i64),
    /// The comment already says this.
    Unchanged,
    /// No AI-assisted commits (and no comment to correct): no comment.
    NoAiCommits,
    /// Another replica is creating the comment and did not finish in time.
    Busy,
}

#[derive(Debug, thiserror::Error)]
pub enum CommentError {
    #[error(transparent)]
    Github(#[from] GithubError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error("unknown repository {0}")]
    UnknownRepository(String),
}

/// Text safe inside a Markdown table cell: no pipes, no line breaks, no
/// mentions or HTML (a subject is written by anyone who can push).
fn cell(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' => out.push_str("@\u{200B}"),
            '`' => out.push('\''),
            _ => out.push(c),
        }
    }
    out
}

fn ci_text(ci: CiResult) -> &'static str {
    match ci {
        CiResult::FirstRunGreen => "CI first run green",
        CiResult::GreenAfterFailure => "CI green after a failure",
        CiResult::Red => "CI red",
        CiResult::None => "no CI yet",
    }
}

/// The comment's body (pure).
pub fn render(
    lines: &[CommentLine],
    human_commits: usize,
    vesting_days: u32,
    rules_version: &str,
    dashboard: Option<&str>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{MARKER}");
    let _ = writeln!(
        out,
        "#### tokentally · what the AI-assisted commits of this pull request are on track to earn\n"
    );
    let _ = writeln!(
        out,
        "| commit | subject | credited | agent | kind | tokens (est.) | factors |"
    );
    let _ = writeln!(out, "|:--|:--|:--|:--|:--|--:|:--|");
    for l in lines {
        let s = &l.estimate.factors;
        let short_sha = &l.sha[..l.sha.len().min(7)];
        let commit = match &l.url {
            Some(url) => format!("[`{short_sha}`]({url})"),
            None => format!("`{short_sha}`"),
        };
        let _ = writeln!(
            out,
            "| {commit} | {} | {} | {} | {} | {:.3} | {} {} × size {} × {} {} × calibration {} |",
            cell(&l.subject),
            cell(&l.credited),
            cell(&l.agent),
            cell(&l.kind),
            l.estimate.tokens as f64 / 1000.0,
            cell(&l.kind),
            short(s.tier),
            short(s.size),
            ci_text(l.estimate.ci),
            short(s.outcome),
            short(s.calibration),
        );
    }
    let total: i64 = lines.iter().map(|l| l.estimate.tokens).sum();
    let _ = writeln!(
        out,
        "| | **total** | | | | **{:.3}** | |",
        total as f64 / 1000.0
    );
    if human_commits > 0 {
        let s = if human_commits == 1 { "" } else { "s" };
        let _ = writeln!(
            out,
            "\n{human_commits} commit{s} without AI assistance {} not counted.",
            if human_commits == 1 { "is" } else { "are" }
        );
    }
    let _ = writeln!(
        out,
        "\n**What happens next:** tokens accrue when these commits land on the default branch \
         and vest {vesting_days} days after the merge unless they are reverted or need a follow-up \
         fix. The estimate follows CI and deploy results as they arrive."
    );
    let mut footer = format!("rules {rules_version}");
    if let Some(url) = dashboard {
        let _ = write!(footer, " · [dashboard]({url})");
    }
    let _ = writeln!(out, "\n<sub>{footer}</sub>");
    out
}

/// (repository id, pull request number).
type PullRequestKey = (i64, i64);

pub struct PrCommenter {
    github: GithubClient,
    ledger: Ledger,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    /// One refresh of a pull request at a time in this process.
    locks: Mutex<HashMap<PullRequestKey, Arc<Mutex<()>>>>,
    /// The login our comments are written by.
    login: OnceCell<String>,
}

impl PrCommenter {
    pub fn new(
        github: GithubClient,
        ledger: Ledger,
        config: Arc<Config>,
        clock: Arc<dyn Clock>,
    ) -> PrCommenter {
        PrCommenter {
            github,
            ledger,
            config,
            clock,
            locks: Mutex::new(HashMap::new()),
            login: OnceCell::new(),
        }
    }

    /// Refreshes the comments of open pull requests whose head is `sha`.
    pub async fn refresh_for_sha(&self, full_name: &str, sha: &str) -> Result<(), CommentError> {
        let Some(repository) = self.ledger.store().repository(full_name).await? else {
            return Ok(());
        };
        let numbers = self
            .ledger
            .store()
            .open_pull_requests_at(repository.id, &sha.to_ascii_lowercase())
            .await?;
        for number in numbers {
            self.refresh(full_name, number).await?;
        }
        Ok(())
    }

    /// The estimate of each AI-assisted commit of the pull request (the
    /// ledger's own planner, as if it landed now).
    async fn lines(
        &self,
        repository: (i64, &str),
        head: Option<&str>,
        commits: &[CommitRow],
    ) -> Result<Vec<CommentLine>, CommentError> {
        let (repository_id, full_name) = repository;
        let now = self.clock.now_ms();
        let mut lines = Vec::new();
        for c in commits.iter().filter(|c| c.ai == 1) {
            let estimate = self
                .ledger
                .estimate_in_pull_request(repository_id, c, head, now)
                .await?;
            let url = self
                .config
                .public_url
                .as_ref()
                .map(|u| format!("{}/commits/{full_name}/{}", u.trim_end_matches('/'), c.sha));
            let agents: Vec<String> = serde_json::from_str(&c.agents).unwrap_or_default();
            lines.push(CommentLine {
                sha: c.sha.clone(),
                subject: c.subject.clone(),
                agent: if agents.is_empty() {
                    "—".to_string()
                } else {
                    agents.join(", ")
                },
                kind: c.kind.clone(),
                credited: crate::attribution::identity::public_name(&c.person),
                url,
                estimate,
            });
        }
        Ok(lines)
    }

    /// Creates or updates the pull request's comment.
    pub async fn refresh(&self, full_name: &str, number: i64) -> Result<Refreshed, CommentError> {
        let store = self.ledger.store();
        let repository = store
            .repository(full_name)
            .await?
            .ok_or_else(|| CommentError::UnknownRepository(full_name.to_string()))?;
        let lock = self
            .locks
            .lock()
            .await
            .entry((repository.id, number))
            .or_default()
            .clone();
        let _one_at_a_time = lock.lock().await;

        let commits = store.pull_request_commits(repository.id, number).await?;
        let head = store.pull_request_head(repository.id, number).await?;
        let lines = self
            .lines(
                (repository.id, &repository.full_name),
                head.as_deref(),
                &commits,
            )
            .await?;
        let kept = store.pr_comment(repository.id, number).await?;
        if lines.is_empty() && kept.is_none() {
            return Ok(Refreshed::NoAiCommits);
        }
        let dashboard = self
            .config
            .public_url
            .as_ref()
            .map(|u| format!("{}/repos/{}", u.trim_end_matches('/'), repository.full_name));
        let body = render(
            &lines,
            commits.iter().filter(|c| c.ai == 0).count(),
            self.ledger.rules().vesting_days,
            self.ledger.version(),
            dashboard.as_deref(),
        );
        let hash = crate::secret::sha256_hex(&body);
        let installation = repository.installation_id;
        let now = self.clock.now_ms();
        if let Some((id, kept_hash)) = &kept
            && *id != 0
        {
            if *kept_hash == hash {
                return Ok(Refreshed::Unchanged);
            }
            match self.update(installation, full_name, *id, &body).await {
                Ok(()) => {
                    store
                        .save_pr_comment(repository.id, number, *id, &hash, now)
                        .await?;
                    return Ok(Refreshed::Updated(*id));
                }
                // Deleted on GitHub: look for another of ours, or write a new one.
                Err(e) if e.status() == Some(404) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(id) = self.find(installation, full_name, number).await? {
            self.update(installation, full_name, id, &body).await?;
            store
                .save_pr_comment(repository.id, number, id, &hash, now)
                .await?;
            return Ok(Refreshed::Updated(id));
        }
        // Create it: one creator across replicas (a placeholder row).
        if kept.is_some_and(|(id, _)| id != 0)
            || store
                .claim_pr_comment(repository.id, number, now, now - STALE_CLAIM_MS)
                .await?
        {
            let created = self
                .github
                .post(
                    installation,
                    &format!("/repos/{full_name}/issues/{number}/comments"),
                    &json!({ "body": body }),
                )
                .await;
            let id = match created.map(|v| v["id"].as_i64()) {
                Ok(Some(id)) => id,
                Ok(None) => {
                    store.release_pr_comment(repository.id, number).await?;
                    return Err(GithubError::Status {
                        status: 200,
                        message: "the created comment has no id".into(),
                    }
                    .into());
                }
                Err(e) => {
                    store.release_pr_comment(repository.id, number).await?;
                    return Err(e.into());
                }
            };
            store
                .save_pr_comment(repository.id, number, id, &hash, now)
                .await?;
            return Ok(Refreshed::Created(id));
        }
        Ok(Refreshed::Busy)
    }

    async fn update(
        &self,
        installation: Option<i64>,
        full_name: &str,
        id: i64,
        body: &str,
    ) -> Result<(), GithubError> {
        self.github
            .patch(
                installation,
                &format!("/repos/{full_name}/issues/comments/{id}"),
                &json!({ "body": body }),
            )
            .await?;
        Ok(())
    }

    /// The login tokentally writes as: the token's user, or the App's bot.
    async fn login(&self, installation: Option<i64>) -> Result<String, GithubError> {
        self.login
            .get_or_try_init(|| async {
                if self.config.github.app_id.is_some() {
                    let app = self.github.get_as_app("/app").await?;
                    Ok(format!("{}[bot]", app["slug"].as_str().unwrap_or_default()))
                } else {
                    let user = self.github.get(installation, "/user").await?;
                    Ok(user["login"].as_str().unwrap_or_default().to_string())
                }
            })
            .await
            .cloned()
    }

    /// Our comment on the pull request, by its marker and author.
    async fn find(
        &self,
        installation: Option<i64>,
        full_name: &str,
        number: i64,
    ) -> Result<Option<i64>, GithubError> {
        let login = self.login(installation).await?;
        for page in 1..=50 {
            let comments = self
                .github
                .get(
                    installation,
                    &format!(
                        "/repos/{full_name}/issues/{number}/comments?per_page=100&page={page}"
                    ),
                )
                .await?;
            let list = comments.as_array().cloned().unwrap_or_default();
            let ours = list.iter().find(|c: &&Value| {
                c["body"].as_str().is_some_and(|b| b.starts_with(MARKER))
                    && c["user"]["login"].as_str() == Some(login.as_str())
            });
            if let Some(c) = ours {
                return Ok(c["id"].as_i64());
            }
            if list.len() < 100 {
                break;
            }
        }
        Ok(None)
    }
}
