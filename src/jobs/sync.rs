//! A repository's mirror sync, whole: fetch the mirror (`git::fetch`), walk
//! what is new (`attribution::mirror`), and store it as it comes, in chunks —
//! landed commits, previews of pull requests, the people credited, the signals
//! reverts and fixes imply — then what landed or was force-pushed away since.

use crate::attribution::commit::PullRequestLink;
use crate::attribution::identity::is_unmapped;
use crate::attribution::mirror::{self, KnownState, WalkRequest};
use crate::attribution::trailers::Source;
use crate::clock::now_ms;
use crate::git::fetch::{FetchRequest, fetch_mirror};
use crate::github::events::RepositoryRef;
use crate::metrics::Metrics;
use crate::scoring::signal::{SignalName, SignalStatus};
use crate::store::StoreTx;
use crate::store::signals::NewSignal;

use super::context::{DeliveryContext, HandlerContext, HandlerError};

/// Rows written per transaction when a sync stores what it found.
const SYNC_CHUNK: usize = 250;

/// Syncs `repo`'s mirror (nothing without mirrors), counted and timed in the metrics.
pub async fn sync(
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
    if first_sync {
        // Weeks wait to close until the backfill is in (each lands in its own week).
        ctx.store.set_first_sync(stored.id, Some(now_ms())).await?;
    }
    let synced = walk_and_store(
        ctx,
        repo,
        &stored,
        pr_heads,
        landed_at,
        delivery,
        first_sync,
        Remote {
            url,
            path,
            token,
            token_prefix,
            default_branch,
        },
    )
    .await;
    if first_sync {
        ctx.store.set_first_sync(stored.id, None).await?;
    }
    synced
}

/// Where a sync fetches from.
struct Remote {
    url: String,
    path: std::path::PathBuf,
    token: Option<String>,
    token_prefix: Option<String>,
    default_branch: String,
}

/// Fetches, walks and stores what the walk finds (see [`sync_repository`]).
#[allow(clippy::too_many_arguments)]
async fn walk_and_store(
    ctx: &HandlerContext,
    repo: &RepositoryRef,
    stored: &crate::store::repositories::Repository,
    pr_heads: Vec<(i64, String)>,
    landed_at: i64,
    delivery: &DeliveryContext,
    first_sync: bool,
    remote: Remote,
) -> Result<(), HandlerError> {
    let Remote {
        url,
        path,
        token,
        token_prefix,
        default_branch,
    } = remote;
    let mirrors = ctx.mirrors.as_ref().expect("a sync has mirrors");
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
    let started = std::time::Instant::now();
    let allowed_hosts = mirrors.policy().allowed_hosts();
    let full_name = repo.full_name.clone();
    let cancel = delivery.cancel.clone();
    let attributor = ctx.attributor.clone();
    let pull_requests: Vec<i64> = pr_heads.iter().map(|(number, _)| *number).collect();
    // The walk hands each new commit over as it is attributed; they are stored in
    // transactions of a few hundred rows while the walk goes on. A first sync of
    // a long history never holds all its records, and is one disk sync per chunk,
    // not per row (the single SQLite writer is shared with ingress between chunks).
    let (sender, mut found) = tokio::sync::mpsc::channel::<mirror::Found>(SYNC_CHUNK);
    let walk = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let credentials = match (token.as_deref(), token_prefix.as_deref()) {
            (Some(token), Some(prefix)) if url.starts_with(prefix) => Some((token, prefix)),
            _ => None,
        };
        let repo = fetch_mirror(&FetchRequest {
            path: &path,
            url: &url,
            credentials,
            allowed_hosts: &allowed_hosts,
            default_branch: &default_branch,
            pull_requests: &pull_requests,
            cancel: &cancel,
        })
        .map_err(|e| {
            if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                return HandlerError::Transient(anyhow::anyhow!(
                    "sync of {full_name} was cancelled (deadline passed, lease lost or shutting down)"
                ));
            }
            let message = format!("cannot fetch {full_name}: {e}");
            if e.is_permanent() {
                HandlerError::Permanent(message)
            } else {
                HandlerError::Transient(anyhow::anyhow!(message))
            }
        })?;
        let fetch_time = started.elapsed();
        // libgit2's fetch (the local transport builds a whole pack in memory) leaves
        // its freed memory in this thread's heap; give it back before the walk.
        crate::memory::trim();
        let request = WalkRequest {
            full_name: &full_name,
            default_branch: &default_branch,
            known: &known,
            pr_heads: &pr_heads,
            cancel: &cancel,
        };
        let outcome = mirror::walk(&repo, &request, &attributor, &mut |item| {
            sender.blocking_send(item).is_ok()
        })
        .map_err(|e| HandlerError::Transient(e.into()))?;
        Ok::<_, HandlerError>((outcome, fetch_time))
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
    let walked = walk
        .await
        .map_err(|e| HandlerError::Transient(anyhow::anyhow!("mirror task failed: {e}")))?;
    // A fetch and walk of a long history leaves libgit2's freed memory in the heap.
    crate::memory::trim();
    stored_rows?;
    let (outcome, fetch_time) = walked?;

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
        fetch_ms = fetch_time.as_millis() as u64,
        attribute_and_store_ms = started.elapsed().saturating_sub(fetch_time).as_millis() as u64,
        "mirror synced"
    );
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
                (Some(committed.min(landed_at)), pr.clone(), record)
            }
            mirror::Found::Landed(pr, record) => (Some(landed_at), pr.clone(), record),
            mirror::Found::Preview(number, record) => {
                (None, Some(PullRequestLink::branch(*number)), record)
            }
        };
        // An agent author's name and email are the agent's, not the credited human's.
        let agent_author = record.evidence.iter().any(|e| e.source == Source::Author);
        let (name, email) = if agent_author {
            ("", "")
        } else {
            (record.author_name.as_str(), record.author_email.as_str())
        };
        tx.ensure_person(&record.person, name, email, now).await?;
        if landed_at.is_some() && is_unmapped(&record.person) {
            warn_unmapped_once(&record.person);
        }
        tx.upsert_commit(repository_id, record, landed_at, pr.as_ref(), now)
            .await?;
        if let Some(landed_at) = landed_at {
            record_links(&mut tx, &ctx.metrics, repository_id, record, landed_at, now).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Logs an author email no `[[people]]` entry owns, once per email per process.
fn warn_unmapped_once(email: &str) {
    static WARNED: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> =
        std::sync::OnceLock::new();
    let mut warned = WARNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if warned.insert(email.to_string()) {
        tracing::warn!(
            email,
            "a landed commit's author is in no [[people]] entry (see `tokentally people unmapped`)"
        );
    }
}

/// Signals a landed commit implies for others: `reverted` on each commit it
/// reverts, `fixed_later` on each commit it follows up — found by blame (its
/// value: the share of that commit's added lines the fix touched) or named by
/// `Fixes:` (touching none of its lines: share 1, the author says so) — at the
/// time the linking commit landed.
async fn record_links(
    tx: &mut StoreTx,
    metrics: &Metrics,
    repository_id: i64,
    record: &crate::attribution::commit::CommitRecord,
    landed_at: i64,
    now: i64,
) -> Result<(), HandlerError> {
    let reverts = record
        .reverts
        .iter()
        .map(|target| (SignalName::Reverted, target.clone(), None));
    let blamed = record
        .follow_ups
        .iter()
        .filter(|f| !record.reverts.contains(&f.sha))
        .map(|f| (SignalName::FixedLater, f.sha.clone(), Some(f.share)));
    let declared = record
        .fixes
        .iter()
        .filter(|target| !record.follow_ups.iter().any(|f| &f.sha == *target))
        .map(|target| (SignalName::FixedLater, target.clone(), None));
    for (name, target, share) in reverts.chain(blamed).chain(declared) {
        let stored = tx
            .insert_signal(&NewSignal {
                repository_id,
                sha: target.clone(),
                name: name.clone(),
                status: SignalStatus::Fail,
                value: share,
                url: None,
                source: "git".to_string(),
                context: Some(record.sha.clone()),
                attempt: None,
                idempotency_key: Some(format!("git:{name}:{}:{target}", record.sha)),
                body_hash: None,
                occurred_at: landed_at,
                received_at: now,
                token_id: None,
            })
            .await?;
        metrics.signal("git", stored.as_str());
    }
    Ok(())
}
