//! What the worker does with each kind of event. Later features hang their work here.
//!
//! Every handler is idempotent: a delivery processed twice (a lease that ran out
//! mid-way, a redelivery with a new id) leaves the same state as once.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::attribution::commit::Attributor;
use crate::attribution::mirror::{self, KnownState, Mirrors};
use crate::attribution::trailers::Source;
use crate::clock::now_ms;
use crate::github::events::PullRequestEvent;
use crate::github::events::{GithubEvent, InstallationEvent, RepositoryRef};
use crate::github::outcomes::{self, CiRules, Outcome};
use crate::github::repositories::RepositoryPolicy;
use crate::metrics::Metrics;
use crate::store::repositories::RepositoryUpdate;
use crate::store::signals::{NewSignal, SignalInsert};
use crate::store::{Store, StoreTx};

/// Rows written per transaction when a sync stores what it found.
const SYNC_CHUNK: usize = 250;

/// What handlers work with.
pub struct HandlerContext {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub ci_rules: CiRules,
    /// `None` when mirrors are disabled (`mirrors.enabled = false`).
    pub mirrors: Option<Arc<Mirrors>>,
    pub attributor: Arc<Attributor>,
    /// `github.api_url`: its web host is the only place the token is sent.
    pub github_api_url: String,
    /// Woken after a delivery was processed: the ledger settles what changed.
    pub ledger_wake: Arc<tokio::sync::Notify>,
    /// Keeps pull requests' comments (none without GitHub credentials or with them off).
    pub pr_comments: Option<Arc<crate::notify::pr_comment::PrCommenter>>,
    /// Which repositories events are taken for (`github.repositories`).
    pub repositories: RepositoryPolicy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// A handler acted on the event.
    Processed,
    /// No handler wants this event.
    Ignored,
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Retrying cannot help (the payload does not parse): the delivery fails at once.
    #[error("{0}")]
    Permanent(String),
    /// May work next time (database down, remote unreachable): retried with back-off.
    #[error(transparent)]
    Transient(#[from] anyhow::Error),
}

impl From<crate::store::StoreError> for HandlerError {
    fn from(err: crate::store::StoreError) -> Self {
        HandlerError::Transient(err.into())
    }
}

/// What a handler knows about the delivery besides its event.
#[derive(Clone)]
pub struct DeliveryContext {
    /// When the delivery arrived (epoch ms): the event's time when its payload
    /// carries none.
    pub received_at: i64,
    /// Set when the work must stop (deadline passed, lease lost, shutdown).
    pub cancel: Arc<AtomicBool>,
}

impl DeliveryContext {
    pub fn new(received_at: i64) -> DeliveryContext {
        DeliveryContext {
            received_at,
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }
}

pub async fn handle(
    ctx: &HandlerContext,
    event: &GithubEvent,
    delivery: &DeliveryContext,
) -> Result<Handled, HandlerError> {
    if let GithubEvent::Unhandled(_) = event {
        return Ok(Handled::Ignored);
    }
    let now = now_ms();
    check_branch_names(event)?;
    if let Some(repo) = event.repository() {
        if !admitted(ctx, &repo.full_name, event.installation_id()).await? {
            tracing::info!(
                repository = %repo.full_name,
                "event for a repository that is not allowed (`github.repositories`); ignored"
            );
            return Ok(Handled::Ignored);
        }
        ctx.store
            .upsert_repository(
                &RepositoryUpdate {
                    full_name: &repo.full_name,
                    github_id: repo.id,
                    default_branch: repo.default_branch.as_deref(),
                    clone_url: repo.clone_url.as_deref(),
                },
                now,
            )
            .await?;
        // An App's event says which installation reaches the repository.
        if let Some(installation) = event.installation_id() {
            ctx.store
                .set_repository_installation(&repo.full_name, repo.id, Some(installation), now)
                .await?;
        }
    }
    let outcome = outcomes::outcome(event, &ctx.ci_rules)
        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    if let Some(outcome) = &outcome {
        let occurred_at = outcome.occurred_at.unwrap_or(delivery.received_at);
        let stored = record_outcome(&ctx.store, outcome, occurred_at, now).await?;
        ctx.metrics.signal("github", stored.as_str());
    }
    match event {
        GithubEvent::Installation(installation) => {
            record_installation(&ctx.store, &ctx.repositories, installation, now).await?
        }
        GithubEvent::Push(push) => {
            // Commits land when the push happened, not when the sync ran (a retry
            // can come an hour later, in another week).
            let pushed_at = match &push.repository.pushed_at {
                Some(t) => t
                    .to_ms()
                    .map_err(|e| HandlerError::Permanent(format!("`repository.pushed_at`: {e}")))?,
                None => delivery.received_at,
            };
            sync_measured(ctx, &push.repository, Vec::new(), pushed_at, delivery).await?
        }
        // What a lost push would have landed lands when the fetch finds it.
        GithubEvent::Reconcile(r) => {
            sync_measured(
                ctx,
                &r.repository,
                Vec::new(),
                delivery.received_at,
                delivery,
            )
            .await?
        }
        GithubEvent::PullRequest(pr)
            if matches!(
                pr.action.as_str(),
                "opened" | "reopened" | "synchronize" | "closed"
            ) =>
        {
            let merged = merged_at(pr)?;
            let landed_at = merged.unwrap_or(delivery.received_at);
            record_pull_request(ctx, pr, merged, now).await?;
            let head = vec![(pr.number, pr.pull_request.head.sha.clone())];
            sync_measured(ctx, &pr.repository, head, landed_at, delivery).await?;
            if pr.action == "closed" && pr.pull_request.merged {
                record_merge(ctx, pr, now).await?;
            } else if let Some(comments) = &ctx.pr_comments {
                log_comment(comments.refresh(&pr.repository.full_name, pr.number).await);
            }
        }
        _ => {}
    }
    if let (Some(outcome), Some(comments)) = (&outcome, &ctx.pr_comments) {
        log_comment(comments.refresh_for_sha(&outcome.repo, &outcome.sha).await);
    }
    ctx.ledger_wake.notify_one();
    Ok(Handled::Processed)
}

/// A pull request comment is a courtesy: GitHub's errors are logged, never
/// fatal to the delivery.
fn log_comment<T: std::fmt::Debug>(result: Result<T, crate::notify::pr_comment::CommentError>) {
    match result {
        Ok(done) => tracing::debug!(?done, "pull request comment"),
        Err(e) => tracing::warn!(error = %e, "pull request comment not refreshed"),
    }
}

/// Keeps a pull request's head, and its merge once merged: a squash or merge
/// commit without CI of its own takes its head's CI at merge time.
async fn record_pull_request(
    ctx: &HandlerContext,
    pr: &PullRequestEvent,
    merged_at: Option<i64>,
    now: i64,
) -> Result<(), HandlerError> {
    let head = pr.pull_request.head.sha.to_ascii_lowercase();
    if !(head.len() == 40 && head.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(HandlerError::Permanent(format!(
            "`pull_request.head.sha` is not a commit id: {head:?}"
        )));
    }
    let repository_id = ctx
        .store
        .ensure_repository(&pr.repository.full_name, now)
        .await?;
    let merge = match (merged_at, pr.pull_request.merge_commit_sha.as_deref()) {
        (Some(at), Some(sha)) => Some((sha, at)),
        _ => None,
    };
    ctx.store
        .record_pull_request(repository_id, pr.number, &head, merge, now)
        .await?;
    Ok(())
}

/// When a merged pull request was merged, from its payload.
fn merged_at(pr: &PullRequestEvent) -> Result<Option<i64>, HandlerError> {
    match (&pr.pull_request.merged_at, pr.pull_request.merged) {
        (Some(text), true) => crate::github::events::parse_time(text)
            .map(Some)
            .map_err(|e| HandlerError::Permanent(format!("`pull_request.merged_at`: {e}"))),
        _ => Ok(None),
    }
}

/// A merged pull request: who merged it is credited for its agent-only commits.
async fn record_merge(
    ctx: &HandlerContext,
    pr: &crate::github::events::PullRequestEvent,
    now: i64,
) -> Result<(), HandlerError> {
    let Some(merger) = &pr.pull_request.merged_by else {
        return Ok(());
    };
    let repository_id = ctx
        .store
        .ensure_repository(&pr.repository.full_name, now)
        .await?;
    let person = ctx.attributor.directory.person_for_login(&merger.login);
    ctx.store
        .ensure_person(&person, &merger.login, "", now)
        .await?;
    ctx.store
        .record_merge(
            repository_id,
            pr.number,
            pr.pull_request.merge_commit_sha.as_deref(),
            &merger.login,
            &person,
        )
        .await?;
    Ok(())
}

/// Stores a CI or deploy result. Re-runs are numbered so "green on the first run"
/// and "green after a failure" can be told apart.
pub(crate) async fn record_outcome(
    store: &Store,
    o: &Outcome,
    occurred_at: i64,
    now: i64,
) -> Result<SignalInsert, HandlerError> {
    let repository_id = store.ensure_repository(&o.repo, now).await?;
    let sha = o.sha.clone();
    let attempt = match o.attempt {
        Some(attempt) => attempt,
        None => {
            1 + store
                .count_signals_for(repository_id, &sha, o.name, &o.context)
                .await?
        }
    };
    let stored = store
        .insert_signal(&NewSignal {
            repository_id,
            sha,
            name: o.name.to_string(),
            status: o.status.to_string(),
            value: None,
            url: o.url.clone(),
            source: o.source.to_string(),
            context: Some(o.context.clone()),
            attempt: Some(attempt),
            idempotency_key: Some(o.key.clone()),
            body_hash: None,
            occurred_at,
            received_at: now,
        })
        .await?;
    Ok(stored)
}

/// Signals a landed commit implies for others: `reverted` on each commit it
/// reverts, `fixed_later` on each commit its `Fixes:` names, at the time the
/// linking commit landed.
async fn record_links(
    tx: &mut StoreTx,
    metrics: &Metrics,
    repository_id: i64,
    record: &crate::attribution::commit::CommitRecord,
    landed_at: i64,
    now: i64,
) -> Result<(), HandlerError> {
    let links = record
        .reverts
        .iter()
        .map(|target| ("reverted", target))
        .chain(record.fixes.iter().map(|target| ("fixed_later", target)));
    for (name, target) in links {
        let stored = tx
            .insert_signal(&NewSignal {
                repository_id,
                sha: target.clone(),
                name: name.to_string(),
                status: "fail".to_string(),
                value: None,
                url: None,
                source: "git".to_string(),
                context: Some(record.sha.clone()),
                attempt: None,
                idempotency_key: Some(format!("git:{name}:{}:{target}", record.sha)),
                body_hash: None,
                occurred_at: landed_at,
                received_at: now,
            })
            .await?;
        metrics.signal("git", stored.as_str());
    }
    Ok(())
}

/// Stores one chunk of what a sync found, in one transaction: the credited
/// people, the commits (landed at `landed_at`, or previews), and the signals
/// landed reverts and fixes imply. On a repository's first sync the history
/// found on the default branch landed when it was committed: it is the
/// baseline (before `scoring.pay_from`), not work landed by this event.
async fn store_found(
    ctx: &HandlerContext,
    repository_id: i64,
    chunk: &[mirror::Found],
    landed_at: i64,
    first_sync: bool,
    now: i64,
) -> Result<(), HandlerError> {
    let mut tx = ctx.store.begin().await?;
    for item in chunk {
        let (landed_at, pr, record) = match item {
            mirror::Found::Landed(pr, record) if first_sync => {
                let committed = chrono::DateTime::parse_from_rfc3339(&record.committed_at)
                    .map(|t| t.timestamp_millis())
                    .unwrap_or(landed_at);
                (Some(committed.min(landed_at)), *pr, record)
            }
            mirror::Found::Landed(pr, record) => (Some(landed_at), *pr, record),
            mirror::Found::Preview(number, record) => (None, Some(*number), record),
        };
        // An agent author's name and email are the agent's, not the credited human's.
        let agent_author = record.evidence.iter().any(|e| e.source == Source::Author);
        let (name, email) = if agent_author {
            ("", "")
        } else {
            (record.author_name.as_str(), record.author_email.as_str())
        };
        tx.ensure_person(&record.person, name, email, now).await?;
        tx.upsert_commit(repository_id, record, landed_at, pr, now)
            .await?;
        if let Some(landed_at) = landed_at {
            record_links(&mut tx, &ctx.metrics, repository_id, record, landed_at, now).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// [`sync_repository`], counted and timed in the metrics.
async fn sync_measured(
    ctx: &HandlerContext,
    repo: &RepositoryRef,
    pr_heads: Vec<(i64, String)>,
    landed_at: i64,
    delivery: &DeliveryContext,
) -> Result<(), HandlerError> {
    if ctx.mirrors.is_none() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let result = sync_repository(ctx, repo, pr_heads, landed_at, delivery).await;
    ctx.metrics.mirror_sync(result.is_ok(), started.elapsed());
    result
}

/// Whether an event for `full_name` is taken: a repository outside the list is
/// not; one the service knows already is; an unknown one only when the policy
/// admits it (a signed event alone does not make a repository known).
async fn admitted(
    ctx: &HandlerContext,
    full_name: &str,
    installation: Option<i64>,
) -> Result<bool, HandlerError> {
    if !ctx.repositories.listed(full_name) {
        return Ok(false);
    }
    if ctx.repositories.admits(full_name, installation) {
        return Ok(true);
    }
    Ok(ctx.store.repository(full_name).await?.is_some())
}

/// Branch names from the payload (the repository's default branch, a pull
/// request's head and base) must be names git accepts: they end up in fetch
/// refspecs, where `*` or `a:b` would change what is fetched. A delivery that
/// carries another fails for good, saying which and why.
fn check_branch_names(event: &GithubEvent) -> Result<(), HandlerError> {
    let mut names = Vec::new();
    if let Some(branch) = event.repository().and_then(|r| r.default_branch.as_deref()) {
        names.push(("repository.default_branch", branch));
    }
    if let GithubEvent::PullRequest(e) = event {
        names.push((
            "pull_request.head.ref",
            e.pull_request.head.git_ref.as_str(),
        ));
        names.push((
            "pull_request.base.ref",
            e.pull_request.base.git_ref.as_str(),
        ));
    }
    for (field, name) in names {
        if let Some(why) = crate::git::invalid_branch_name(name) {
            let shown: String = name.chars().filter(|c| !c.is_control()).take(100).collect();
            return Err(HandlerError::Permanent(format!(
                "`{field}` {shown:?} is not a valid branch name ({why})"
            )));
        }
    }
    Ok(())
}

/// Fetches the repository's mirror and stores what is new: landed commits once
/// (landed at `landed_at`, the time of the push or merge), commits of open pull
/// requests as not landed, commits that have landed since, and commits a force
/// push took off the default branch.
async fn sync_repository(
    ctx: &HandlerContext,
    repo: &RepositoryRef,
    pr_heads: Vec<(i64, String)>,
    landed_at: i64,
    delivery: &DeliveryContext,
) -> Result<(), HandlerError> {
    let Some(mirrors) = &ctx.mirrors else {
        return Ok(());
    };
    let Some(stored) = ctx.store.repository(&repo.full_name).await? else {
        return Ok(());
    };
    let Some(url) = stored.clone_url.clone() else {
        tracing::warn!(repository = %repo.full_name, "no clone URL known; commits not attributed");
        return Ok(());
    };
    let default_branch = stored
        .default_branch
        .clone()
        .unwrap_or_else(|| "main".to_string());
    let path = mirrors
        .path_for(&repo.full_name)
        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    // A refused remote fails the delivery at once: no retry can make it allowed.
    mirrors
        .policy()
        .check(&url)
        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
    let token = mirrors
        .token()
        .filter(|_| mirrors.policy().sends_token_to(&url))
        .map(|t| t.expose().to_string());
    let token_prefix = token
        .as_ref()
        .map(|_| crate::git::remote::github_web_url(&ctx.github_api_url));

    let _one_at_a_time = mirrors.lock(&repo.full_name).await;
    let first_sync = ctx.store.landed_tip(stored.id).await?.is_none();
    let known = KnownState {
        commits: ctx
            .store
            .known_commits(stored.id)
            .await?
            .into_iter()
            .collect(),
        landed_tip: ctx.store.landed_tip(stored.id).await?,
        landed_subjects: ctx.store.landed_subjects(stored.id).await?,
    };
    let request = mirror::SyncRequest {
        path,
        full_name: repo.full_name.clone(),
        url,
        default_branch,
        token,
        token_prefix,
        allowed_hosts: mirrors.policy().allowed_hosts(),
        known,
        pr_heads,
        cancel: delivery.cancel.clone(),
    };
    let attributor = ctx.attributor.clone();
    let started = std::time::Instant::now();
    // The walk hands each new commit over as it is attributed; they are stored in
    // transactions of a few hundred rows while the walk goes on. A first sync of
    // a long history never holds all its records, and is one disk sync per chunk,
    // not per row (the single SQLite writer is shared with ingress between chunks).
    let (sender, mut found) = tokio::sync::mpsc::channel::<mirror::Found>(SYNC_CHUNK);
    let walk = tokio::task::spawn_blocking(move || {
        mirror::sync(&request, &attributor, &mut |item| {
            sender.blocking_send(item).is_ok()
        })
    });
    let now = now_ms();
    let mut chunk = Vec::with_capacity(SYNC_CHUNK);
    let mut stored_rows = Ok(());
    while let Some(item) = found.recv().await {
        chunk.push(item);
        if chunk.len() == SYNC_CHUNK {
            stored_rows = store_found(ctx, stored.id, &chunk, landed_at, first_sync, now).await;
            chunk.clear();
            if stored_rows.is_err() {
                break; // dropping the receiver stops the walk
            }
        }
    }
    drop(found);
    if stored_rows.is_ok() && !chunk.is_empty() {
        stored_rows = store_found(ctx, stored.id, &chunk, landed_at, first_sync, now).await;
    }
    let outcome = walk
        .await
        .map_err(|e| HandlerError::Transient(anyhow::anyhow!("mirror task failed: {e}")))?;
    // A fetch and walk of a long history leaves libgit2's freed memory in the heap.
    crate::memory::trim();
    stored_rows?;
    let outcome = outcome.map_err(|e| {
        if e.is_permanent() {
            HandlerError::Permanent(e.to_string())
        } else {
            HandlerError::Transient(e.into())
        }
    })?;

    let mut tx = ctx.store.begin().await?;
    for sha in &outcome.now_landed {
        tx.mark_landed(stored.id, sha, landed_at).await?;
    }
    let reason = format!(
        "no longer on {} (force-pushed away)",
        stored
            .default_branch
            .as_deref()
            .unwrap_or("the default branch")
    );
    for sha in &outcome.unlanded {
        tx.mark_unlanded(stored.id, sha, landed_at, &reason).await?;
    }
    tx.commit().await?;
    // Only after everything above is stored: a crash before this re-walks, idempotently.
    if let Some(head) = &outcome.default_head {
        ctx.store.set_landed_tip(stored.id, head).await?;
    }
    tracing::info!(
        repository = %repo.full_name,
        landed = outcome.landed + outcome.now_landed.len(),
        unlanded = outcome.unlanded.len(),
        pull_request_commits = outcome.pull_requests,
        fetch_ms = outcome.fetch_time.as_millis() as u64,
        attribute_and_store_ms = started.elapsed().saturating_sub(outcome.fetch_time).as_millis() as u64,
        "mirror synced"
    );
    Ok(())
}

async fn record_installation(
    store: &Store,
    repositories: &RepositoryPolicy,
    event: &InstallationEvent,
    now: i64,
) -> Result<(), HandlerError> {
    let id = event.installation.id;
    let removed_all = matches!(event.action.as_str(), "deleted");
    let listed = event.repositories.iter().flatten();
    for repo in listed
        .chain(&event.repositories_added)
        .filter(|r| repositories.listed(&r.full_name))
    {
        let installation = if removed_all { None } else { Some(id) };
        store
            .set_repository_installation(&repo.full_name, repo.id, installation, now)
            .await?;
    }
    for repo in &event.repositories_removed {
        store
            .set_repository_installation(&repo.full_name, repo.id, None, now)
            .await?;
    }
    Ok(())
}
